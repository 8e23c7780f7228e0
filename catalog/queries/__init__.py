"""The query layer: the stable views and named queries, run by DuckDB.

SQL lives in the ``.sql`` files beside this module and nowhere else. Values are
always bound as parameters; the only text spliced into SQL is a path or a
timestamp, and both go through :func:`quote_literal`. Results are materialised
(lists of dicts) before they leave this module.
"""

from __future__ import annotations

import re
import threading
import time
from datetime import datetime, timezone
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import duckdb

if TYPE_CHECKING:
    import pyarrow as pa

from ..errors import LakeDamaged, QueryFailed, QueryRefused

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.M)


def quote_literal(text: str) -> str:
    """A SQL string literal for ``text`` (the one place text enters SQL)."""
    return "'" + text.replace("'", "''") + "'"


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@cache
def _sql_file(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


@cache
def named_queries() -> dict[str, str]:
    """Every query in ``named.sql``, by name."""
    text = _sql_file("named.sql")
    parts = _NAME.split(text)
    return {parts[i]: parts[i + 1].strip() for i in range(1, len(parts), 2)}


def views_sql(versions_glob: str, events_glob: str) -> str:
    """The definitions of every stable view, ready for any DuckDB client."""
    return (
        _sql_file("views.sql")
        .replace("{versions_glob}", quote_literal(versions_glob))
        .replace("{events_glob}", quote_literal(events_glob))
    )


def _statements(script: str) -> list[str]:
    body = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]


def timestamp_literal(moment: datetime) -> str:
    return "TIMESTAMPTZ " + quote_literal(moment.astimezone(timezone.utc).isoformat())


# Errors DuckDB raises when a file vanished between its listing and its reading
# (a compaction removed it): the query is simply run again.
_VANISHED = ("No such file", "No files found that match", "cannot open file", "Could not open file")

_READ_ONLY_TYPES = ("SELECT", "EXPLAIN")


class Reader:
    """A read-only DuckDB connection with the stable views over one lake.

    The connection may read only inside the lake folder, cannot load
    extensions, and cannot change its own configuration; :meth:`user_query`
    further accepts a single SELECT (or EXPLAIN) so no statement can write.
    """

    def __init__(self, lake_root: str, versions_glob: str, events_glob: str) -> None:
        self.lake_root = lake_root
        self._lock = threading.RLock()
        self._con = duckdb.connect(":memory:", config={"threads": 2})
        for statement in _statements(views_sql(versions_glob, events_glob)):
            self._con.execute(statement)
        root = lake_root.rstrip("/") + "/"
        self._con.execute(f"SET allowed_directories = [{quote_literal(root)}]")
        self._con.execute("SET autoinstall_known_extensions = false")
        self._con.execute("SET autoload_known_extensions = false")
        self._con.execute("SET enable_external_access = false")
        self._con.execute("SET lock_configuration = true")
        self._as_of: datetime | None = None

    def close(self) -> None:
        self._con.close()

    def _set_as_of(self, as_of: datetime | None) -> None:
        if as_of == self._as_of:
            return
        if as_of is None:
            self._con.execute("RESET VARIABLE catalog_as_of")
        else:
            self._con.execute(f"SET VARIABLE catalog_as_of = {timestamp_literal(as_of)}")
        self._as_of = as_of

    def _run(self, sql: str, params: dict[str, Any] | None, as_of: datetime | None) -> tuple[list[str], list[dict[str, Any]]]:
        with self._lock:
            self._set_as_of(as_of)
            for attempt in range(4):
                try:
                    table = self._con.sql(sql, params=params or None).to_arrow_table()
                    return table.column_names, table.to_pylist()
                except (duckdb.IOException, duckdb.InvalidInputException) as exc:
                    message = str(exc)
                    if attempt < 3 and any(m in message for m in _VANISHED):
                        time.sleep(0.01 * (attempt + 1))
                        continue
                    damaged = _damaged_file(message, self.lake_root)
                    if damaged:
                        raise LakeDamaged(_first_line(message), path=damaged) from None
                    raise
        raise AssertionError("unreachable")

    def query(self, name: str, as_of: datetime | None = None, **params: Any) -> list[dict[str, Any]]:
        """Run a named query from ``named.sql``."""
        return self._run(named_queries()[name], params, as_of)[1]

    def user_query(self, sql: str, as_of: datetime | None = None) -> tuple[list[str], list[dict[str, Any]]]:
        """Run one read-only statement a person typed; refuse anything else."""
        with self._lock:
            try:
                statements = self._con.extract_statements(sql)
            except duckdb.Error as exc:
                raise QueryFailed(_first_line(str(exc))) from None
            if len(statements) != 1:
                raise QueryRefused(
                    f"give exactly one statement (got {len(statements)}): catalog sql runs one read-only query"
                )
            kind = statements[0].type.name
            if kind not in _READ_ONLY_TYPES:
                raise QueryRefused(
                    f"catalog sql is read-only: {kind} statements are refused; "
                    "write a SELECT over the views (catalog sql --print-views lists them)"
                )
            try:
                return self._run(sql, None, as_of)
            except duckdb.PermissionException as exc:
                raise QueryRefused(
                    "catalog sql reads only the lake's views and files: " + _first_line(str(exc))
                ) from None
            except duckdb.Error as exc:
                raise QueryFailed(_first_line(str(exc))) from None


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else message


def _damaged_file(message: str, lake_root: str) -> str | None:
    """The lake file a DuckDB error is about, if it is about one."""
    match = re.search(r"(/[^\s\"']+\.parquet)", message)
    if match and match.group(1).startswith(lake_root):
        return match.group(1)
    return None


def merge_files(table: str, paths: list[str]) -> "pa.Table":
    """Read a table's files and return one row per key, in key order (for compaction)."""
    keys = {"versions": "model, version", "events": "event_id"}[table]
    order = {"versions": "model, version", "events": '"at", event_id'}[table]
    listing = "[" + ", ".join(quote_literal(p) for p in paths) + "]"
    with duckdb.connect(":memory:", config={"threads": 2}) as con:
        sql = (
            f"SELECT DISTINCT ON ({keys}) * FROM read_parquet({listing}, union_by_name = true) "
            f"ORDER BY {order}"
        )
        try:
            return con.sql(sql).to_arrow_table()
        except duckdb.Error as exc:
            damaged = _damaged_file(str(exc), "/")
            if damaged:
                raise LakeDamaged(_first_line(str(exc)), path=damaged) from None
            raise
