"""Model Catalog: a model registry that needs no server.

Registrations and decisions are appended as Parquet to a metadata lake; DuckDB
answers the questions; a generator publishes a static catalog site.
"""

from .errors import CatalogError, InvalidInput, Refused
from .records import (
    Candidate,
    Deployment,
    Event,
    Lineage,
    LineageEdge,
    ModelInfo,
    ModelSummary,
    Parent,
    QueryResult,
    Version,
)
from .registry import Registry

__version__ = "0.1.0"

__all__ = [
    "Candidate",
    "CatalogError",
    "Deployment",
    "Event",
    "InvalidInput",
    "Lineage",
    "LineageEdge",
    "ModelInfo",
    "ModelSummary",
    "Parent",
    "QueryResult",
    "Refused",
    "Registry",
    "Version",
]
