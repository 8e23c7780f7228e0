"""The metadata lake: two append-only Parquet tables under one root.

The names below are imported on first use: the serving path (``catalog.lake.serving``
over ``catalog.lake.storage``) reads the lake without importing DuckDB or pyarrow,
which the rest of the package needs.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Lake": "lake",
    "SETTLE_SECONDS": "lake",
    "parse_claim": "lake",
    "settled": "lake",
    "open_storage": "storage",
    "compact": "compaction",
    "rewrite_file": "rewrite",
    "LocalStorage": "storage",
    "Storage": "storage",
}

__all__ = ["SETTLE_SECONDS", "Lake", "LocalStorage", "Storage", "compact", "open_storage", "parse_claim",
           "rewrite_file", "settled"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'catalog.lake' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:  # pragma: no cover
    from .compaction import compact
    from .lake import SETTLE_SECONDS, Lake, parse_claim, settled
    from .rewrite import rewrite_file
    from .storage import LocalStorage, Storage, open_storage
