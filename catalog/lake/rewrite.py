"""Rewriting a table file (redaction): in place, under the same name (rewrite_file), or as a
new file that supersedes the old one (rewrite_to_new_file, what redaction does: see
catalog.lake.snapshot for why a Delta log needs a new name)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from .footers import SUPERSEDES
from .lake import ROW_GROUP_ROWS, _file_id, _to_parquet
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
    data = _rewritten(storage, path, transform)
    if data is None:
        return False
    storage.write_atomic(path, data)
    return True


def rewrite_to_new_file(storage: Storage, path: str, transform: Callable[[pa.Table], pa.Table | None]) -> str | None:
    """Write ``transform(the rows of the table file at path)`` to a new compacted file beside
    it that names ``path`` as the one file it replaces (footer ``SUPERSEDES``); returns the
    new file's lake path, None when the transform changed nothing.

    The old file stays until the caller removes it (after publishing the snapshot and
    rewriting the compaction marker, as compaction does); meanwhile every reader skips
    it, and a redaction or compaction run later removes it if the caller never did.
    A file's bytes therefore never change under a name a Delta log lists with its size.
    """
    data = _rewritten(storage, path, transform, supersedes=[path.rsplit("/", 1)[-1]])
    if data is None:
        return None
    table = path.rsplit("/", 1)[0]
    new = f"{table}/compacted-{_file_id(datetime.now(timezone.utc), uuid.uuid4().hex[:16])}.parquet"
    storage.write_atomic(new, data)
    return new


def _rewritten(storage: Storage, path: str, transform: Callable[[pa.Table], pa.Table | None],
               supersedes: list[str] | None = None) -> bytes | None:
    """The Parquet bytes of ``transform(the file's rows)``; None when it changed nothing.
    The footer keeps its metadata (a compacted file keeps naming the inputs it replaced),
    or names ``supersedes`` as the files replaced."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(pa.BufferReader(storage.read_bytes(path)))
    # A writer may have declared a column required because it held no null (DuckDB
    # does); the transform writes nulls, so every column is declared nullable again.
    table = table.cast(pa.schema([f.with_nullable(True) for f in table.schema], metadata=table.schema.metadata))
    changed = transform(table)
    if changed is None:
        return None
    replaced = (table.schema.metadata or {}).get(SUPERSEDES)
    if supersedes is not None:
        replaced = json.dumps(sorted(supersedes)).encode()
    if replaced is not None:  # a compacted file keeps naming the inputs it replaced
        changed = changed.replace_schema_metadata({**(changed.schema.metadata or {}), SUPERSEDES: replaced})
    return _to_parquet(changed, row_group_size=ROW_GROUP_ROWS)
