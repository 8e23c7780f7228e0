"""The lake as an MLflow model-registry backend (the optional ``mlflow`` extra).

MLflow finds registry stores by the scheme of its registry URI, through the
``mlflow.model_registry_store`` entry points this package declares::

    MLFLOW_REGISTRY_URI=catalog:///path/to/lake       # a lake in a folder
    MLFLOW_REGISTRY_URI=catalog+s3://bucket/prefix    # a lake in a bucket (s3://bucket/prefix)

Every call goes through :class:`catalog.Registry` with the catalog's semantics
(an alias is a deployment target, with its gates). Nothing outside this package
imports MLflow, and this module imports it only when MLflow asks for a store.
"""

from __future__ import annotations

from typing import Any

from .uri import lake_location

__all__ = ["lake_location", "make_store"]


def make_store(store_uri: str, tracking_uri: str | None = None) -> Any:
    """The store MLflow builds for a ``catalog:`` / ``catalog+s3:`` registry URI."""
    from .store import CatalogStore

    return CatalogStore(store_uri, tracking_uri)
