"""The one rule rows of a table must keep to be read, as SQL conditions.

Declared once, from the catalog's own declarations (the required columns, the
name rules of ``catalog.validate``, the event kinds and states of the schema):
the views keep only rows meeting every condition, compaction records whether
every row it merged did (``ROWS_CHECKED``), and ``catalog doctor`` reports the
rows the views drop, with the reasons given here.
"""

from __future__ import annotations

from collections.abc import Sequence

from .. import validate
from ..engine import quote_identifier, quote_literal
from ..schema import EVENT_KINDS, STATES
from .files import REQUIRED


def _text_list(values: Sequence[str]) -> str:
    return "(" + ", ".join(quote_literal(v) for v in sorted(values)) + ")"


def _categories(categories: Sequence[str]) -> str:
    return "".join(f"\\p{{{c}}}" for c in categories)


def _name_rule(column: str) -> str:
    """SQL true when ``column`` holds a name validate.name accepts (or is null: the null
    rule speaks for that), built from validate's declarations: a path ('/', '..'), ':',
    a control, format or line-break character, a blank name and an overlong one are out.
    (Byte lengths: DuckDB's strlen counts UTF-8 bytes, as NAME_BYTES does.)"""
    refused = "[" + "".join("\\" + c for c in validate.NAME_REFUSED) + _categories(validate.INVISIBLE) + "]"
    return (
        f"({column} IS NULL OR (strlen({column}) BETWEEN 1 AND {validate.NAME_BYTES}"
        f" AND NOT regexp_matches({column}, {quote_literal(refused)})"
        f" AND NOT regexp_full_match({column}, {quote_literal(_categories([validate.BLANK]) + '*')})"
        f" AND {column} <> '.' AND NOT starts_with({column}, '..')))"
    )


def _target_rule(column: str) -> str:
    """SQL true when ``column`` holds a target validate.target accepts (or is null). A
    v<digits> target of a lake written before MLflow's reservation was adopted is still read."""
    strict = validate._STRICT.pattern.removeprefix("^").removesuffix("\\Z")
    alias = "[" + _categories(validate.TARGET_CATEGORIES) + "".join("\\" + c for c in validate.TARGET_CHARACTERS) + "]+"
    return (
        f"({column} IS NULL OR ((regexp_full_match({column}, {quote_literal(strict)})"
        f" OR regexp_full_match({column}, {quote_literal(alias)}))"
        f" AND strlen({column}) <= {validate.NAME_BYTES} AND lower({column}) <> 'latest'))"
    )


def _shown(column: str) -> str:
    """SQL text: the value of ``column`` in single quotes, as a message shows it."""
    return "'''' || " + column + " || ''''"


def row_rules(table: str) -> list[tuple[str, str]]:
    """The one rule rows of ``table`` must keep to be read: (SQL condition true for a
    sound row, SQL text saying why a row is not). The views keep only rows meeting
    every condition; ``catalog doctor`` reports the rows they drop, with these reasons."""
    rules = [(f"{quote_identifier(c)} IS NOT NULL", quote_literal(f"null {c}")) for c in REQUIRED[table]]
    rules.append((_name_rule("model"), "'invalid model name ' || " + _shown("model")))
    rules.append(("(version IS NULL OR version >= 1)", "'version ' || version || ' is below 1'"))
    if table == "events":
        rules.append((f"(kind IS NULL OR kind IN {_text_list(EVENT_KINDS)})", "'unknown kind ' || " + _shown("kind")))
        rules.append((f"(state IS NULL OR state IN {_text_list(STATES)})", "'unknown state ' || " + _shown("state")))
        rules.append((_target_rule("target"), "'invalid target name ' || " + _shown("target")))
    return rules


def sound_rows_sql(table: str, *, checked: bool = False) -> str:
    """A SQL condition true for the rows of ``table`` every reader reads (see row_rules).
    With ``checked``, rows of the files in the variable ``catalog_<table>_checked`` pass
    unchecked (compaction checked them: catalog.lake.lake.ROWS_CHECKED)."""
    rule = "\n  AND ".join(condition for condition, _ in row_rules(table))
    if not checked:
        return rule
    return f"(list_contains(getvariable('catalog_{table}_checked'), filename)\n  OR ({rule}))"


def row_problems_sql(table: str) -> str:
    """A SQL expression: why a row of ``table`` breaks row_rules ('; '-separated), or ''."""
    parts = [f"CASE WHEN NOT coalesce({condition}, false) THEN {why} END" for condition, why in row_rules(table)]
    return "concat_ws('; ', " + ", ".join(parts) + ")"
