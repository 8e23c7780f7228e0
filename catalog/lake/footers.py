"""What the footers of a lake's Parquet files say, read through DuckDB.

A Parquet footer tells how many rows a file holds, which columns it has and
its key/value metadata (what a compacted file replaced, whether its rows were
checked). The lake reads them through the DuckDB session it shares with its
reader (:class:`catalog.engine.Session`): a process that only reads (serving
code calling resolve) opens one connection and never imports pyarrow.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from ..engine import Session, named_sql
from .files import duckdb_family
from .storage import Storage, relative

# Footer key of a compacted file: the JSON list of the file names it replaced.
SUPERSEDES = b"catalog.supersedes"
# Footer key of a compacted file whose every row keeps the rules readers apply
# (catalog.lake.rules.row_rules), checked as compaction merged them: the reader then
# applies the rules only to the rows of other files.
ROWS_CHECKED = b"catalog.rows_checked"

# What a compacted file's footer says: (the file names it replaced, None when it was
# written before compactions recorded them; how many rows it holds; whether compaction
# found every row keeping the rules).
Summary = tuple[frozenset[str] | None, int, bool]


def _sql(name: str) -> str:
    return named_sql(__package__, "lake.sql")[name]


def first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else message


class Footers:
    """The footers of one lake's files, each read once per version of the file."""

    def __init__(self, storage: Storage, session: Session) -> None:
        self.storage = storage
        self.session = session
        self._seen: dict[str, tuple[tuple[int, int], Summary]] = {}

    def read(self, path: str) -> tuple[dict[bytes, bytes], int]:
        """The key/value metadata and row count of the Parquet file at ``path`` (local).
        Raises FileNotFoundError when the file is gone and ValueError when it is not Parquet."""
        import duckdb

        with self.session.lock:
            try:
                rows, pairs = self.session.con.execute(_sql("footer"), {"file": path}).fetchall()[0]
            except duckdb.Error as exc:
                if not self.storage.exists(relative(self.storage, path)):
                    raise FileNotFoundError(path) from None
                raise ValueError(first_line(str(exc))) from None
        return {p["key"]: p["value"] for p in pairs or []}, int(rows)

    def summary(self, path: str) -> Summary:
        """What the footer of the file at ``path`` (local) says (see Summary), read once per
        version of the file. Raises FileNotFoundError if it is gone."""
        size, mtime_ns, _ = self.storage.stat(relative(self.storage, path))
        key = (mtime_ns, size)
        seen = self._seen.get(path)
        if seen is not None and seen[0] == key:
            return seen[1]
        try:
            metadata, rows = self.read(path)
            raw = metadata.get(SUPERSEDES)
            found = (None if raw is None else frozenset(json.loads(raw)), rows, metadata.get(ROWS_CHECKED) == b"1")
        except FileNotFoundError:
            raise
        except (OSError, ValueError):
            found = (frozenset(), 0, False)  # damaged: the file check names it, no reader trusts it
        self._seen[path] = (key, found)
        return found

    def wrote(self, path: str, rows: int) -> None:
        """Record the footer of a file this process just wrote (a plain append) at ``path``."""
        size, mtime_ns, _ = self.storage.stat(relative(self.storage, path))
        self._seen[path] = ((mtime_ns, size), (None, rows, False))

    def columns(self, paths: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
        """The top-level columns (name, kind of value) of each Parquet file at ``paths``,
        read from their footers in one query; {} when one cannot be read (each is then
        checked alone, see FileCheck)."""
        import duckdb

        with self.session.lock:
            try:
                rows = self.session.con.execute(_sql("file_columns"), {"files": list(paths)}).fetchall()
            except duckdb.Error:
                return {}
        out: dict[str, list[tuple[str, str]]] = {}
        left: dict[str, list[int]] = {}  # per file, the children still to come at each depth
        for file, name, children, duckdb_type in rows:
            stack = left.setdefault(file, [])
            if stack and len(stack) == 1:  # a child of the root: a column
                out.setdefault(file, []).append((name, duckdb_family(duckdb_type or "")))
            if stack:
                stack[-1] -= 1
            if children:
                stack.append(children)
            while stack and stack[-1] == 0:
                stack.pop()
        return out
