"""The metadata lake: two append-only Parquet tables under one root."""

from .compaction import compact
from .lake import SETTLE_SECONDS, Lake, open_storage, parse_claim, settled
from .rewrite import rewrite_file
from .storage import LocalStorage, Storage

__all__ = ["Lake", "compact", "LocalStorage", "Storage", "open_storage", "parse_claim", "rewrite_file", "settled", "SETTLE_SECONDS"]
