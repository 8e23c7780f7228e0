"""The one door to DuckDB: every connection the catalog opens comes from here.

A connection is made for a purpose and, when it reads a lake, confined to it:
:func:`confine` lets it read only inside the lake's folder, load no extension
and change no setting afterwards (what ``catalog sql`` relies on). Timestamps
come back in UTC whatever the machine's zone, and DuckDB's progress bar (which
would print to the terminal) is off.
"""

from __future__ import annotations

import contextlib

import duckdb


def connect(*, threads: int = 2, memory_limit: str | None = None, temp_directory: str | None = None) -> duckdb.DuckDBPyConnection:
    """A new in-memory connection, not yet confined (see :func:`confine`)."""
    config: dict[str, object] = {"threads": threads}
    if memory_limit is not None:
        config["memory_limit"] = memory_limit
    if temp_directory is not None:
        config["temp_directory"] = temp_directory
    con = duckdb.connect(":memory:", config=config)
    con.execute("SET enable_progress_bar = false")
    # Without the ICU extension DuckDB knows no other zone, and the setting is not even offered.
    with contextlib.suppress(duckdb.Error):
        con.execute("SET TimeZone = 'UTC'")
    return con


def confine(con: duckdb.DuckDBPyConnection, root: str) -> None:
    """Let ``con`` read only below the folder ``root``, load no extension, and change no
    setting from now on (the sandbox every reader of a lake runs in)."""
    folder = root.rstrip("/") + "/"
    con.execute("SET allowed_directories = $folders", {"folders": [folder]})
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def statements(sql: str) -> list[duckdb.Statement]:
    """The statements of ``sql`` as DuckDB parses them (no connection to a lake needed)."""
    with connect(threads=1) as con:
        return con.extract_statements(sql)
