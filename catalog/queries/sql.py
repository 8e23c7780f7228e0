"""The SQL text of the query layer: the named queries and the stable views.

SQL lives in the ``.sql`` files beside this module and nowhere else. Values are
bound as parameters; the only text spliced in is what a view definition cannot
take as a parameter (it is printed for other DuckDB clients by ``catalog sql
--print-views``): the files a view reads, through :func:`quote_literal`, and the
row rules (``catalog.lake.rules``), derived from the catalog's declarations.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache

from ..engine import named_sql, quote_identifier, quote_literal
from ..lake.rules import sound_rows_sql
from ..schema import duckdb_columns

TABLES = ("versions", "events")
_ONE_PER_KEY = {"versions": "DISTINCT ON (model, version)", "events": "DISTINCT ON (model, event_id)"}


def named_queries(file: str = "named.sql") -> dict[str, str]:
    """Every query in a ``.sql`` file of ``-- name:`` sections (``named.sql`` by default), by name."""
    return named_sql(__package__, file)


def sql_file(name: str) -> str:
    """The whole text of the ``.sql`` file ``name`` beside this module."""
    from importlib import resources

    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def files_literal(files: str | Sequence[str]) -> str:
    """A glob, or a list of paths, as the SQL value read_parquet takes."""
    if isinstance(files, str):
        return quote_literal(files)
    return "[" + ", ".join(map(quote_literal, files)) + "]"


def views_sql(
    versions_files: str | Sequence[str],
    events_files: str | Sequence[str],
    *,
    exact: tuple[bool, bool] = (False, False),
    checked: bool = False,
) -> str:
    """The definitions of every stable view, ready for any DuckDB client.

    Each table is read from a glob or an explicit list of files. ``exact`` says,
    per table, that the files hold each record once (see Lake.current_files), so
    the views need not keep one row per key; through a glob they must. With
    ``checked`` (the catalog's reader), the rows of the files listed in the variable
    ``catalog_<table>_checked`` (compacted files whose rows compaction checked) are
    not checked again.
    """
    text = (
        sql_file("views.sql")
        .replace("{versions_files}", files_literal(versions_files))
        .replace("{events_files}", files_literal(events_files))
    )
    for table, known in zip(TABLES, exact):
        text = text.replace("{%s_columns}" % table, _columns_sql(table))
        text = text.replace("{%s_one_per_key}" % table, "" if known else _ONE_PER_KEY[table])
        text = text.replace("{%s_sound}" % table, sound_rows_sql(table, checked=checked))
    return text


_VIEW = re.compile(r"^(CREATE OR REPLACE VIEW \w+) AS\b", re.M)


def unbound(text: str) -> str:
    """``text`` with each view it creates made ``WITH (DEFER_BINDING)`` (DuckDB 1.5 and later):
    created without being bound, and bound when a query reads it, as every query does anyway.
    Creating the stable views bound takes ~0.5 s (each binds every view below it); unbound,
    ~0.02 s. Only the catalog's own reader does this (see catalog.engine.defers_binding): the
    text printed for other clients stays plain."""
    return _VIEW.sub(r"\1 WITH (DEFER_BINDING) AS", text)


@cache
def reader_query(name: str) -> str:
    """A statement of the reader's own (reader.sql), with the row rules filled in."""
    text = named_queries("reader.sql")[name]
    for table in TABLES:
        text = text.replace("{%s_sound}" % table, sound_rows_sql(table, checked=True))
    return text


def _columns_sql(table: str) -> str:
    """A SELECT of no row with every current column of ``table``, typed (and the file name
    read_parquet adds): what lets an older lake read with its newer columns null."""
    typed = [f"NULL::{kind} AS {quote_identifier(name)}" for name, kind in duckdb_columns(table)]
    return "SELECT " + ", ".join([*typed, "NULL::VARCHAR AS filename"]) + " WHERE false"
