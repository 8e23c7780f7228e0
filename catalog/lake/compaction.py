"""Compaction: merging a table's files into one, and the protocol that keeps it safe.

The merged file is written beside its inputs and renamed in *before* they are
removed; it names the inputs it replaces in its footer (``SUPERSEDES``), and
``_compactions/<table>`` is rewritten in between so that a reader whose listing
overlapped the removals runs its query again (see ``catalog.lake.lake``).
The merge itself is DuckDB's sort over the inputs, streamed into a Parquet file.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .. import engine
from ..errors import ConflictingCopies, LakeDamaged
from ..schema import COLUMNS, SCHEMA_VERSION, arrow_tables
from .footers import ROWS_CHECKED, SUPERSEDES, first_line
from .lake import KEY, ORDER, ROW_GROUP_ROWS, Lake, _file_id, compaction_marker
from .lease import Lease
from .rows import flags
from .rules import sound_rows_sql
from .snapshot import publish

if TYPE_CHECKING:
    import pyarrow as pa

# How a compaction merges files: (input paths, output path, footer metadata, whether every
# input has the current columns) -> rows written. merge_files, unless a test steps in.
Merge = Callable[[list[str], str, dict[bytes, bytes], bool], int]

# What DuckDB may hold in memory while it sorts a compaction; beyond it, it spills
# to a temporary folder. (Its readers and Python's Arrow batches come on top.)
MERGE_MEMORY = "128MB"
MERGE_PARALLEL_BYTES = 16 * 2**20


def minor_inputs(lake: Lake, files: list[str]) -> list[str]:
    """Size-tiered choice: every part file, plus compacted files, smallest first, while
    each holds at most twice the rows merged so far. Files stay O(log n) in number and
    each record is rewritten O(log n) times. (Rows, not bytes: small appends are
    written uncompressed, so by bytes a hundred of them would outweigh a compacted
    file of thousands of rows and every minor compaction would rewrite it.)"""
    storage = lake.storage
    rows = {f: lake.footers.summary(storage.local_path(f))[1] for f in files if storage.exists(f)}
    parts = [f for f in rows if f.split("/")[-1].startswith("part-")]
    merged = sum(rows[f] for f in parts)
    chosen = list(parts)
    for f in sorted((f for f in rows if f not in parts), key=rows.__getitem__):
        if rows[f] > 2 * merged:
            break
        chosen.append(f)
        merged += rows[f]
    return chosen


def compact(lake: Lake, table: str, *, minor: bool = False, merge: Merge | None = None) -> tuple[int, int]:
    """Merge the table's record files into one; returns (files merged, rows kept).

    With ``minor``, merge only the small appended files and the compacted files
    of a similar size (see :func:`minor_inputs`): what writers run automatically.

    The merged file (:func:`merge_files`: one row per key of the inputs, in
    ``ORDER``) is renamed in before its inputs are removed, so a kill at any
    instant leaves every record readable (possibly twice on disk, never twice in
    the views); running it again finishes the job. Only the files listed at the
    start are merged and removed: a file a writer adds while this runs is left
    for the next compaction. A damaged input stops the compaction before
    anything is written (LakeDamaged, see `catalog doctor`). ``merge`` stands in
    for merge_files (tests that act while a merge runs).

    A compaction holds the table's lease (``_leases/compact-<table>``, see
    ``catalog.lake.lease``): a second one raises LakeBusy while it is held. The
    lease is renewed while the merge runs and checked once more after it, before
    the merged file goes in: a compactor that lost it (frozen past its expiry
    while another took over) stops there with LeaseLost, leaving the lake as it
    was. Frozen after that check and resumed later, it puts in a merged file that
    overlaps the newer one; readers notice (``Lake.superseded``) and keep one row
    per key until the next compaction merges the two.
    """
    storage = lake.storage
    with Lease(storage, f"compact-{table}") as lease:
        lake.finish_compactions(table)
        files = lake.data_files(table)
        if minor:
            files = minor_inputs(lake, files)
        names = [f.split("/")[-1] for f in files]
        # One compacted file is already compact, unless an older catalog wrote it without
        # the list of inputs it replaced, or without saying its rows keep the readers'
        # rules (then every read checks them): rewriting it records both.
        if (len(files) <= 1 and all(n.startswith("compacted-") for n in names) and lake.superseded(table, names)[1]
                and all(lake.rows_checked(storage.local_path(f)) for f in files)):
            return (0, 0)
        found = lake.checked.first_problem_in([storage.local_path(f) for f in files], table)
        if found:
            raise LakeDamaged(found[1], path=found[0])
        lake._ensure_anchor(table)
        anchor = f"{table}/schema-v{SCHEMA_VERSION}.parquet"
        inputs = [storage.local_path(f) for f in files]
        # The anchor gives every current column when some file lacks one (an older file).
        same = all(lake.checked.current_schema(p, table) for p in inputs)
        if not same:
            inputs.insert(0, storage.local_path(anchor))
        replaced = json.dumps(sorted(names)).encode()
        now = datetime.now(timezone.utc)
        # Compaction names its files from its own ids, not the injected generator,
        # so that when a compaction runs never changes the ids records get.
        out = f"{table}/compacted-{_file_id(now, uuid.uuid4().hex[:16])}.parquet"
        footer = {SUPERSEDES: replaced}
        if merge is None:
            bytes_in = sum(storage.size(f) for f in files)

            def run(dest: str) -> int:
                return merge_files(table, inputs, dest, footer, same, bytes_in=bytes_in)
        else:
            chosen = merge

            def run(dest: str) -> int:
                return chosen(inputs, dest, footer, same)

        def merged_then_checked(dest: str) -> int:
            rows = run(dest)
            lease.check()  # still ours: the merged file may go in
            return rows

        rows = storage.write_atomic_with(out, merged_then_checked)
        # The snapshot other engines read (a Delta log) drops the inputs and lists the merged
        # file before any input goes, so it never names a missing file (catalog.lake.snapshot).
        publish(lake, table, operation="OPTIMIZE", rearranged={out.split("/", 1)[1]: names})
        # Readers whose listing overlapped the removals below see this change and re-run.
        storage.write_atomic(compaction_marker(table), uuid.uuid4().hex.encode())
        for f in files:
            storage.remove(f)
        return (len(files), rows)


def merge_sql(table: str) -> str:
    """The SELECT a merge of ``table``'s files streams (lake.sql, ``merge``)."""
    columns = engine.identifiers(COLUMNS[table])
    return (
        engine.named_sql(__package__, "lake.sql")["merge"]
        .replace("{columns}", columns)
        .replace("{order}", engine.identifiers(ORDER[table]))
        .replace("{sound}", sound_rows_sql(table))
    )


def merge_files(
    table: str,
    paths: list[str],
    dest: str,
    metadata: dict[bytes, bytes],
    same_schema: bool = False,
    *,
    bytes_in: int | None = None,
) -> int:
    """Write the rows of a table's files to the Parquet file ``dest`` in ``ORDER``,
    each record once, with ``metadata`` in its footer; returns how many rows (compaction).

    DuckDB sorts within MERGE_MEMORY (spilling beyond it) and hands the rows over
    in batches that are written as they come, so compacting a large lake needs
    little more memory than a small one. Copies of a record (same key) sort next
    to each other: all but the first are dropped on the way when they are identical;
    copies that differ stop the merge (ConflictingCopies, naming both files) before
    anything replaces its inputs: compaction never picks one. ``same_schema`` says
    every file has the current columns, so they need not be matched up by name.
    ``bytes_in`` (the inputs' total size, from the lake's storage) lets a merge of
    small inputs use two threads.
    """
    import duckdb

    schema = arrow_tables()[table].with_metadata(metadata)
    # Two threads read many small files twice as fast, but a large sort within the
    # budget needs every byte of it: only merges of small inputs get the second one,
    # and one that runs out of its budget all the same (a few MB of Parquet can hold
    # hundreds of thousands of rows) is run again on one thread, from the start.
    if bytes_in is not None and bytes_in < MERGE_PARALLEL_BYTES:
        try:
            return _merge(table, paths, dest, schema, same_schema, threads=2)
        except duckdb.OutOfMemoryException:
            pass   # (run again below, on one thread)
    return _merge(table, paths, dest, schema, same_schema, threads=1)


def _merge(table: str, paths: list[str], dest: str, schema: pa.Schema, same_schema: bool, threads: int) -> int:
    """One attempt of :func:`merge_files` with ``threads`` threads (``dest`` written afresh)."""
    import duckdb
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    rows = 0
    with tempfile.TemporaryDirectory(prefix="catalog-merge-") as spill:
        with engine.connect(threads=threads, memory_limit=MERGE_MEMORY, temp_directory=spill) as con, \
                pq.ParquetWriter(dest, schema, compression="zstd") as out:
            try:
                batches = con.sql(merge_sql(table), params={"files": paths, "union": not same_schema}).to_arrow_reader(ROW_GROUP_ROWS)
                last: tuple[Any, ...] | None = None
                false = flags()[1]
                checked = True
                for batch in batches:
                    checked = checked and batch.num_rows == pc.sum(pc.fill_null(batch.column("_sound"), false)).as_py()
                    batch, last = _drop_copies(batch, table, last)
                    out.write_batch(batch.select(list(COLUMNS[table])).cast(schema), row_group_size=ROW_GROUP_ROWS)
                    rows += batch.num_rows
                if checked:  # every row keeps the readers' rules: they need not check them again
                    out.add_key_value_metadata({ROWS_CHECKED: b"1"})
            except duckdb.Error as exc:
                damaged = damaged_file(str(exc), "/")
                if damaged:
                    raise LakeDamaged(first_line(str(exc)), path=damaged) from None
                raise
    return rows


def damaged_file(message: str, lake_root: str) -> str | None:
    """The lake file a DuckDB error is about, if it is about one."""
    for match in re.finditer(r"(/[^\s\"'*]+\.parquet)", message):
        if match.group(1).startswith(lake_root):
            return match.group(1)
    return None


def _drop_copies(batch: pa.RecordBatch, table: str, last: tuple[Any, ...] | None) -> tuple[pa.RecordBatch, tuple[Any, ...] | None]:
    """``batch`` without the rows whose key equals the previous row's (``last`` is the
    key, content hash and file of the row before the batch, each a one-row array), and
    those of its last row.
    Raises ConflictingCopies when such a row's content differs from the previous row's."""
    import pyarrow as pa
    import pyarrow.compute as pc

    key = KEY[table]
    n = batch.num_rows
    if n == 0:
        return batch, last
    names = [*key, "_content", "_file"]

    def previous(i: int, name: str) -> pa.Array:
        column = batch.column(name)
        # (the row before as a slice of its batch: pa.array of Python values would import pandas)
        return pa.concat_arrays([pa.nulls(1, column.type) if last is None else last[i], column.slice(0, n - 1)])

    true, false = flags()
    keep = None
    for i, name in enumerate(key):
        differs = pc.fill_null(pc.not_equal(batch.column(name), previous(i, name)), true)
        keep = differs if keep is None else pc.or_(keep, differs)
    other = pc.fill_null(pc.not_equal(batch.column("_content"), previous(len(key), "_content")), false)
    clash = pc.and_(pc.invert(keep), other)
    if pc.any(clash).as_py():
        row = pc.index(clash, true).as_py()
        files = previous(len(key) + 1, "_file")
        record = {name: batch.column(name)[row].as_py() for name in key}
        raise ConflictingCopies(
            table=table,
            what=f"version {record['version']} of '{record['model']}'" if table == "versions" else f"event {record['event_id']}",
            first=_in_lake(files[row].as_py()),
            second=_in_lake(batch.column("_file")[row].as_py()),
        )
    return batch.filter(keep), tuple(batch.column(name).slice(n - 1, 1) for name in names)


def _in_lake(path: str) -> str:
    """A table file's lake path (``<table>/<name>``) from its absolute path."""
    return "/".join(path.replace(os.sep, "/").split("/")[-2:])
