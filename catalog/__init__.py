"""Model Catalog: a model registry that needs no server.

Registrations and decisions are appended as Parquet to a metadata lake; DuckDB
answers the questions; a generator publishes a static catalog site.

The names below are imported on first use, so that ``catalog --help`` and the
CLI's start-up do not pay for DuckDB and pyarrow before they need them.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Registry": "registry",
    "CatalogError": "errors",
    "InvalidInput": "errors",
    "Refused": "errors",
    "Candidate": "records",
    "Counts": "records",
    "Deployment": "records",
    "Event": "records",
    "Exclusion": "records",
    "GateReport": "records",
    "Lineage": "records",
    "LineageEdge": "records",
    "ModelInfo": "records",
    "ModelSummary": "records",
    "Parent": "records",
    "QueryResult": "records",
    "RollbackOptions": "records",
    "Version": "records",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'catalog' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:  # pragma: no cover
    from .errors import CatalogError, InvalidInput, Refused
    from .records import (
        Candidate,
        Deployment,
        Event,
        Exclusion,
        GateReport,
        Lineage,
        LineageEdge,
        ModelInfo,
        ModelSummary,
        Parent,
        QueryResult,
        RollbackOptions,
        Version,
    )
    from .registry import Registry
