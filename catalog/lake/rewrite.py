"""Rewriting a table file in place (redaction): atomically, under the same name."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .footers import SUPERSEDES
from .lake import ROW_GROUP_ROWS, _to_parquet
from .storage import Storage

if TYPE_CHECKING:
    import pyarrow as pa


def rewrite_file(storage: Storage, path: str, transform: Callable[[pa.Table], pa.Table | None]) -> bool:
    """Replace one table file by ``transform(its rows)``, atomically, under the same name.

    The new file is renamed over the old one, so a reader sees the old file or
    the new one and a crash leaves one of the two whole. A compacted file keeps
    the list of inputs it replaced. Returns False when the
    transform changed nothing (the file is left as it is).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(pa.BufferReader(storage.read_bytes(path)))
    # A writer may have declared a column required because it held no null (DuckDB
    # does); the transform writes nulls, so every column is declared nullable again.
    table = table.cast(pa.schema([f.with_nullable(True) for f in table.schema], metadata=table.schema.metadata))
    changed = transform(table)
    if changed is None:
        return False
    replaced = (table.schema.metadata or {}).get(SUPERSEDES)
    if replaced is not None:  # a compacted file keeps naming the inputs it replaced
        changed = changed.replace_schema_metadata({**(changed.schema.metadata or {}), SUPERSEDES: replaced})
    storage.write_atomic(path, _to_parquet(changed, row_group_size=ROW_GROUP_ROWS))
    return True
