"""MLflow's search filters and orderings, translated to SQL over the catalog's views.

The filter is parsed by MLflow's own parser (``mlflow.utils.search_utils``), so the
grammar is exactly MLflow's; each clause becomes ``<column> <operator> $pN`` with the
column and the operator taken from the fixed tables below and the value bound as a
parameter. The queries themselves live in ``search.sql``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.prompt.constants import IS_PROMPT_TAG_KEY
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.store.model_registry import (
    SEARCH_MODEL_VERSION_MAX_RESULTS_THRESHOLD,
    SEARCH_REGISTERED_MODEL_MAX_RESULTS_THRESHOLD,
)
from mlflow.utils.search_utils import SearchModelUtils, SearchModelVersionUtils, SearchUtils

from ..engine import named_sql, quote_identifier

# MLflow's comparators and the SQL that answers each (LIKE and ILIKE mean the same in both).
_OPERATORS = {"=": "=", "!=": "<>", "LIKE": "LIKE", "ILIKE": "ILIKE", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
# MLflow's attribute names (in filters and order_by) and the column of search.sql that holds each.
_MODEL_COLUMNS = {"name": "name", "creation_timestamp": "created_at", "last_updated_timestamp": "updated_at"}
_VERSION_COLUMNS = {
    "name": "name", "version_number": "version", "run_id": "run_id", "source_path": "source",
    "creation_timestamp": "created_at", "last_updated_timestamp": "updated_at",
}
_NUMERIC = {"version"}
_DEFAULT_VERSION_ORDER = ["last_updated_timestamp DESC", "name ASC", "version_number DESC"]


@dataclass
class Query:
    """One page of a search: the SQL, its parameters, and where the page starts."""

    sql: str
    params: dict[str, Any] = field(default_factory=dict)
    offset: int = 0
    limit: int = 0

    def next_token(self, rows_found: int) -> str | None:
        """The page token of the next page when this one came back full (one row more was asked)."""
        return SearchUtils.create_page_token(self.offset + self.limit) if rows_found > self.limit else None


def registered_models(filter_string: str | None, max_results: int, order_by: list[str] | None,
                      page_token: str | None) -> Query:
    """The query of ``search_registered_models``."""
    _check_max(max_results, SEARCH_REGISTERED_MODEL_MAX_RESULTS_THRESHOLD)
    clauses = SearchModelUtils.parse_search_filter(filter_string)
    order = [SearchModelUtils.parse_order_by_for_search_registered_models(o) for o in order_by or []]
    return _query("registered_models", clauses, order, _MODEL_COLUMNS, [("name", True)], max_results, page_token)


def one_model(name: str) -> Query:
    """The query of ``get_registered_model``: the model named exactly so."""
    clause = {"type": "attribute", "key": "name", "comparator": "=", "value": name}
    return _query("registered_models", [clause], [], _MODEL_COLUMNS, [("name", True)], 1, None)


def model_versions(filter_string: str | None, max_results: int, order_by: list[str] | None,
                   page_token: str | None) -> Query:
    """The query of ``search_model_versions``."""
    _check_max(max_results, SEARCH_MODEL_VERSION_MAX_RESULTS_THRESHOLD)
    clauses = SearchModelVersionUtils.parse_search_filter(filter_string)
    order = [SearchModelVersionUtils.parse_order_by_for_search_model_versions(o)
             for o in order_by or _DEFAULT_VERSION_ORDER]
    ties = [("name", True), ("version_number", False)]
    return _query("model_versions", clauses, order, _VERSION_COLUMNS, ties, max_results, page_token)


def related(name: str) -> str:
    """A named query of search.sql that takes only parameters (``versions_of``, ``aliases_of``)."""
    return named_sql(__package__ or "catalog.bridge", "search.sql")[name]


def _check_max(max_results: int, most: int) -> None:
    if isinstance(max_results, bool) or not isinstance(max_results, int) or not 1 <= max_results <= most:
        raise MlflowException(
            f"Invalid value for max_results: it must be a whole number from 1 to {most}, but got {max_results!r}",
            INVALID_PARAMETER_VALUE,
        )


def _query(name: str, clauses: list[dict[str, Any]], order: list[tuple[str, str, bool]], columns: dict[str, str],
           ties: list[tuple[str, bool]], max_results: int, page_token: str | None) -> Query:
    params: dict[str, Any] = {}
    where = [_condition(c, columns, params) for c in clauses] or ["true"]
    keys: list[tuple[str, bool]] = []
    for kind, key, ascending in order:
        if kind != "attribute" or key not in columns:
            raise MlflowException.invalid_parameter_value(f"Invalid order_by key {key!r}: use one of {sorted(columns)}")
        keys.append((key, ascending))
    keys += [tie for tie in ties if tie[0] not in {k for k, _ in keys}]
    sql_order = ", ".join(f"{quote_identifier(columns[k])} {'ASC' if asc else 'DESC'}" for k, asc in keys)
    offset = SearchUtils.parse_start_offset_from_page_token(page_token)
    params.update(limit=max_results + 1, offset=offset)
    text = related(name).replace("{where}", " AND ".join(where)).replace("{order}", sql_order)
    return Query(text, params, offset, max_results)


def _condition(clause: dict[str, Any], columns: dict[str, str], params: dict[str, Any]) -> str:
    """One parsed clause as SQL; its value (and a tag's key) go into ``params``."""
    comparator, key, value = clause["comparator"].upper(), clause["key"], clause["value"]
    n = len(params)
    if clause["type"] == "tag":
        if comparator not in ("=", "!=", "LIKE", "ILIKE"):
            raise MlflowException.invalid_parameter_value(f"Invalid comparator for a tag: {comparator}")
        params[f"k{n}"], params[f"v{n}"] = key, value
        if key == IS_PROMPT_TAG_KEY:  # MLflow's clients exclude prompts: a model without the tag is not one
            return f"coalesce(tags[$k{n}], 'false') {_OPERATORS[comparator]} $v{n}"
        return f"tags[$k{n}] {_OPERATORS[comparator]} $v{n}"
    column = columns.get(key)
    if clause["type"] != "attribute" or column is None:
        raise MlflowException.invalid_parameter_value(f"Invalid filter key {key!r}")
    if comparator in ("IN", "NOT IN"):
        params[f"v{n}"] = [_typed(column, v) for v in value]
        return f"{'NOT ' if comparator == 'NOT IN' else ''}list_contains($v{n}, {quote_identifier(column)})"
    ordering = comparator in ("<", "<=", ">", ">=")
    pattern = comparator in ("LIKE", "ILIKE")
    if comparator not in _OPERATORS or (column in _NUMERIC and pattern) or (column not in _NUMERIC and ordering):
        raise MlflowException.invalid_parameter_value(f"Invalid comparator {comparator!r} for {key!r}")
    params[f"v{n}"] = _typed(column, value)
    return f"{quote_identifier(column)} {_OPERATORS[comparator]} $v{n}"


def _typed(column: str, value: Any) -> Any:
    if column not in _NUMERIC:
        return str(value)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise MlflowException.invalid_parameter_value(f"Invalid version number {value!r}: use a whole number") from None
