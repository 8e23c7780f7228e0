"""The one door to DuckDB: every connection the catalog opens comes from here.

A connection is made for a purpose and, when it reads a lake, confined to it:
:func:`confine` lets it read only inside the lake's folder, load no extension
and change no setting afterwards (what ``catalog sql`` relies on). Timestamps
come back in UTC whatever the machine's zone, and DuckDB's progress bar (which
would print to the terminal) is off.
"""

from __future__ import annotations

import contextlib
import re
import threading
import types
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb


def connect(*, threads: int = 2, memory_limit: str | None = None, temp_directory: str | None = None) -> duckdb.DuckDBPyConnection:
    """A new in-memory connection, not yet confined (see :func:`confine`). DuckDB is
    imported here, on the first connection: a process that never queries (serving code
    answered by the resolve documents, a plain register) never loads it."""
    import duckdb

    config: dict[str, str | bool | int | float | list[str]] = {"threads": threads}
    if memory_limit is not None:
        config["memory_limit"] = memory_limit
    if temp_directory is not None:
        config["temp_directory"] = temp_directory
    con = duckdb.connect(":memory:", config=config)
    settings = named_sql(__package__ or "catalog", "engine.sql")
    con.execute(settings["quiet"])
    # Without the ICU extension DuckDB knows no other zone, and the setting is not even offered.
    with contextlib.suppress(duckdb.Error):
        con.execute(settings["utc"])
    return con


# Ctrl+C while DuckDB runs a query. DuckDB's Python client runs Python's SIGINT handler itself
# while it works, and answers the KeyboardInterrupt with RuntimeError("Query interrupted") (or,
# between its checks, with nothing at all: the Ctrl+C is lost and the command goes on). The CLI
# notes each SIGINT (note_interrupts), and the reader turns either into the KeyboardInterrupt it
# was (after_query), so that Ctrl+C stops a command where it is, as it does anywhere else.
_INTERRUPTED = threading.Event()


def note_interrupts() -> None:
    """Note every SIGINT (then raise KeyboardInterrupt, as Python's own handler does): only in the
    main thread and while the handler is Python's own (a program's own handler is left alone)."""
    import signal

    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return

    def noted(signum: int, frame: types.FrameType | None) -> None:
        _INTERRUPTED.set()
        signal.default_int_handler(signum, frame)

    signal.signal(signal.SIGINT, noted)


def is_interrupt(exc: BaseException) -> bool:
    """Whether ``exc`` is how DuckDB reports a Ctrl+C that came while it ran a query."""
    import duckdb

    return isinstance(exc, getattr(duckdb, "InterruptException", ())) or \
        (type(exc) is RuntimeError and str(exc).startswith("Query interrupted"))


def after_query() -> None:
    """Raise the KeyboardInterrupt of a Ctrl+C that came while DuckDB ran a query and that it kept
    to itself (see :func:`note_interrupts`); once."""
    if _INTERRUPTED.is_set():
        _INTERRUPTED.clear()
        raise KeyboardInterrupt


def defers_binding(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether ``con``'s DuckDB can create a view without binding it (``WITH (DEFER_BINDING)``,
    DuckDB 1.5 and later). Asked once per process, on the first connection that asks."""
    global _DEFERS
    if _DEFERS is None:
        import duckdb

        try:
            con.execute(named_sql(__package__ or "catalog", "engine.sql")["defer_binding_probe"])
            _DEFERS = True
        except duckdb.Error:   # (an older DuckDB: views are bound when created)
            _DEFERS = False
    return _DEFERS


_DEFERS: bool | None = None


def confine(con: duckdb.DuckDBPyConnection, root: str) -> None:
    """Let ``con`` read only below the folder ``root``, load no extension, and change no
    setting from now on (the sandbox every reader of a lake runs in)."""
    folder = root.rstrip("/") + "/"
    settings = named_sql(__package__ or "catalog", "engine.sql")
    con.execute(settings["confine_to"], {"folders": [folder]})
    con.execute(settings["confine"])


def statements(sql: str) -> list[duckdb.Statement]:
    """The statements of ``sql`` as DuckDB parses them (no connection to a lake needed)."""
    with connect(threads=1) as con:
        return con.extract_statements(sql)


def quote_literal(text: str) -> str:
    """A SQL string literal for ``text``: the one place a value is spelled into SQL text
    (only where DuckDB takes no parameter: a view definition printed for other clients)."""
    return "'" + text.replace("'", "''") + "'"


def quote_identifier(name: str) -> str:
    """A SQL identifier for ``name`` (a column or table name), double-quoted: the one
    place a name is spelled into SQL text."""
    return '"' + name.replace('"', '""') + '"'


def identifiers(names: Sequence[str]) -> str:
    """``a, b, c`` for the names, each through :func:`quote_identifier`."""
    return ", ".join(map(quote_identifier, names))


_NAME = re.compile(r"^-- name: (\w+)\s*$", re.M)


@cache
def named_sql(package: str, file: str) -> dict[str, str]:
    """Every statement of the ``.sql`` file ``file`` beside the package ``package``, by the
    name of its ``-- name: <name>`` section (the package's module is not imported)."""
    text = resources.files(package).joinpath(file).read_text(encoding="utf-8")
    parts = _NAME.split(text)
    return {parts[i]: parts[i + 1].strip() for i in range(1, len(parts), 2)}


class Session:
    """The one DuckDB connection a lake and its reader share, made on first use.

    A catalog that reads (the views) also reads Parquet footers and file schemas
    (listing the lake); both go through this connection, so a process opens one
    connection however it reads, and one that only reads never imports pyarrow.
    ``lock`` serialises its use across threads. Closing it drops the connection;
    the next use opens a fresh one.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._con: duckdb.DuckDBPyConnection | None = None

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        with self.lock:
            if self._con is None:
                self._con = connect()
            return self._con

    @property
    def open(self) -> bool:
        return self._con is not None

    def close(self) -> None:
        with self.lock:
            if self._con is not None:
                self._con.close()
                self._con = None
