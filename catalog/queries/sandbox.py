"""What ``catalog sql`` accepts: one read-only statement (a SELECT, or an EXPLAIN of one)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import engine
from ..errors import QueryFailed, QueryRefused
from ..lake.footers import first_line

if TYPE_CHECKING:
    import duckdb

_READ_ONLY_TYPES = ("SELECT",)


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Raise QueryRefused unless ``sql`` is one read-only statement (QueryFailed when
    DuckDB cannot parse it). The connection itself is confined too (engine.confine):
    this is the first of two fences, and the one that says what to do instead."""
    import duckdb

    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryFailed(first_line(str(exc))) from None
    if len(statements) != 1:
        raise QueryRefused(
            f"give exactly one statement (got {len(statements)}): catalog sql runs one read-only query"
        )
    kind = statements[0].type.name
    if kind == "EXPLAIN":
        # EXPLAIN ANALYZE runs the statement it explains: only a SELECT may be explained.
        kind = _explained_kind(sql)
    if kind not in _READ_ONLY_TYPES:
        raise QueryRefused(
            f"catalog sql is read-only: {kind} statements are refused; "
            "write a SELECT over the views (catalog sql --print-views lists them)"
        )


def _explained_kind(sql: str) -> str:
    """The type of the statement an EXPLAIN [ANALYZE] [(options)] wraps (e.g. "SELECT", "COPY")."""
    import duckdb

    tokens = [(pos, kind) for pos, kind in duckdb.tokenize(sql) if kind != duckdb.token_type.comment]

    def word(i: int) -> str:
        if i >= len(tokens):
            return ""
        end = tokens[i + 1][0] if i + 1 < len(tokens) else len(sql)
        return sql[tokens[i][0]:end].strip().lower()

    i = 1 if word(0) == "explain" else 0
    if word(i) in ("analyze", "analyse"):
        i += 1
    if word(i) == "(" and word(i + 1) not in ("select", "with", "from", "values", "("):
        depth = 0
        while i < len(tokens):
            depth += {"(": 1, ")": -1}.get(word(i), 0)
            i += 1
            if depth == 0:
                break
    if i >= len(tokens):
        return "EXPLAIN"
    try:
        inner = engine.statements(sql[tokens[i][0]:])
    except duckdb.Error:
        return "EXPLAIN"
    return inner[0].type.name if len(inner) == 1 else "MULTI"
