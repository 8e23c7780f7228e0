"""The doctor's reads of rows: the queries of ``doctor.sql``, run by name with bound
values on a connection from :func:`catalog.engine.connect`. Nothing here writes."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from .. import engine
from ..queries import row_problems_sql, sound_rows_sql

if TYPE_CHECKING:
    import duckdb

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.M)


@cache
def _queries() -> dict[str, str]:
    text = resources.files(__package__).joinpath("doctor.sql").read_text(encoding="utf-8")
    parts = _NAME.split(text)
    return {parts[i]: parts[i + 1].strip() for i in range(1, len(parts), 2)}


def query(name: str, table: str | None = None) -> str:
    """The query ``name`` of doctor.sql, with the readers' row rules of ``table`` put in."""
    text = _queries()[name]
    if table is not None:
        text = text.replace("{row_problems}", row_problems_sql(table)).replace("{sound_rows}", sound_rows_sql(table))
    return text


def _tuples(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Rows as tuples, through Arrow (fetchall would need pytz for time zones)."""
    return [tuple(r.values()) for r in con.sql(sql, params=params or None).to_arrow_table().to_pylist()]


class Rows:
    """The rows of the files the doctor judged sound, per table (a temporary table each).

    Use as a context manager; a table with no sound file has no rows.
    """

    def __init__(self, files: Mapping[str, Collection[str]]) -> None:
        self._files = {table: list(paths) for table, paths in files.items()}
        self._con: duckdb.DuckDBPyConnection | None = None

    def __enter__(self) -> Rows:
        self._con = engine.connect()
        for table, paths in self._files.items():
            if paths:
                self._con.execute(query(f"load_{table}"), {"files": paths})
        return self

    def __exit__(self, *exc: object) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def _run(self, name: str, table: str, **params: Any) -> list[tuple[Any, ...]]:
        if not self._files.get(table):
            return []
        assert self._con is not None, "Rows is used as a context manager"
        return _tuples(self._con, query(name, table), params)

    def versions(self) -> list[tuple[Any, ...]]:
        """(model, version, filename, why it breaks the rules or '') of every versions row."""
        return self._run("versions_rows", "versions")

    def events(self) -> list[tuple[Any, ...]]:
        """(event_id, model, version, kind, filename, why or '') of one row per event id."""
        return self._run("events_rows", "events")

    def copies(self, table: str, current: Collection[str]) -> list[tuple[Any, ...]]:
        """(*key, files, content hashes, authors) of each record that ``current`` files hold twice."""
        return self._run(f"{table}_copies", table, current=sorted(current))

    def per_file(self, table: str, current: Collection[str]) -> dict[str, int]:
        """How many rows each of the ``current`` files holds."""
        return {file: rows for file, rows in self._run(f"{table}_per_file", table, current=sorted(current))}


def artifact_rows(files: Sequence[str]) -> list[tuple[Any, ...]]:
    """(model, version, artifact_uri, artifact_sha256, artifact_bytes) of every version in ``files``."""
    if not files:
        return []
    with engine.connect() as con:
        return _tuples(con, query("artifacts"), {"files": list(files)})
