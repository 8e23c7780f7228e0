"""Second copies of a record among the files a reader lists.

A record sits in one file; a second row with its key (a file copied or forged
into the lake) is read once when it is an identical copy, and refused when it
differs: no read of that record guesses which copy is right.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ConflictingCopies
from .sql import TABLES, reader_query

if TYPE_CHECKING:
    import duckdb

# (table, the files of the later copies, key, model, version) of a record read once.
Skip = tuple[str, list[str], Any, str, Any]


def find_copies(
    con: duckdb.DuckDBPyConnection,
    sources: Sequence[Sequence[str]],
    model: str | None,
    relative: Callable[[str], str],
) -> list[Skip]:
    """The later identical copies of the records ``model`` has (None: of every record),
    over the tables' listed files (``sources``, per table); raises ConflictingCopies
    naming both files (through ``relative``) when two copies differ.

    Only the key columns are grouped, so a look costs one scan of the model's rows
    (or the table's); the content is hashed for repeated keys alone.
    """
    scope = "all" if model is None else "of"
    skips: list[Skip] = []
    for table, files in zip(TABLES, sources):
        if not files:
            continue  # no file yet (a lake being created): nothing a read could show twice
        params = {} if model is None else {"model": model}
        # The keys held twice first (key columns only: what every look costs), then
        # the copies of those alone, with their files and content.
        repeated = [k for (k,) in con.execute(reader_query(f"{table}_repeated_{scope}"), params).fetchall()]
        if not repeated:
            continue
        found = {"keys": repeated if model else [], "hashes": [] if model else repeated}
        for key, key_model, version, paths, contents in con.execute(reader_query(f"{table}_copies"), found).fetchall():
            if len(set(contents)) > 1:
                other = next(f for f, c in zip(paths, contents) if c != contents[0])
                raise ConflictingCopies(
                    table=table,
                    what=f"version {version} of '{key_model}'" if table == "versions" else f"event {key}",
                    first=relative(paths[0]),
                    second=relative(other),
                )
            later = [f for f in paths if f != paths[0]]
            if later:
                skips.append((table, later, key, key_model, version))
    return skips


def skip(con: duckdb.DuckDBPyConnection, skips: list[Skip]) -> None:
    """Leave the later copies in ``skips`` out of the views' files from now on."""
    for table, later, key, key_model, version in skips:
        if table == "versions":
            con.execute(reader_query("versions_skip_add"), {"files": later, "model": key_model, "version": version})
        else:
            con.execute(reader_query("events_skip_add"), {"files": later, "key": key})
