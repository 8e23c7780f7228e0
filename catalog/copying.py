"""Moving a lake: ``catalog copy SRC DST`` copies a lake between folders and buckets,
in any direction, and checks the copy record by record.

What is copied, every byte read and written through the two lakes' ``Storage``:

* the current record files of both tables (``versions/``, ``events/``), their
  schema anchors included; never an input a compaction has already merged into
  a compacted file (the leftovers of an interrupted compaction stay behind, so
  each record is copied once);
* the version claims (``_claims/<model>/<n>``) and the decision sequence
  (``_decisions/<model>/<n>``; ``<model>`` is the name's path segment, copied as
  it is), so that version numbers and the order of
  decisions continue in the copy where they stopped in the source;
* the lake's policy, ``catalog.toml``, when there is one.

Not copied: lock and lease files (``_locks``, ``_leases``), the compaction
markers (``_compactions``), the write probe (``_probe``), quarantined files
(``_quarantine``), temporary files of writes under way, and anything that is
not a regular file in a real folder (links are never followed). Nor the read
snapshot other engines read (the Delta log ``<table>/_delta_log/``): it names
files of the source, some of which are not copied; where the catalog publishes
snapshots, the copy publishes its own once verified.

The table files are listed before the claims and decisions: a record is written
after its number is claimed, so every record copied finds its claim in the copy
and a version registered in the copy never reuses a number. Records written to
the source while it is copied may or may not be in the copy; a compaction of the
source during the copy stops it (copy again).

Files are created in the destination with ``create_exclusive``: the destination
must be empty, and two copies into one place cannot interleave: the schema
anchors, which every lake holds under the same names, are created first, so the
second copy stops at its first file, having written nothing. Nothing is ever overwritten or
removed in the destination, nor written in the source.

Verification, after the files are in: every record of both tables is compared
by key and content hash between the source files copied and the copy's current
files (DuckDB, ``copying.sql``); the copy's current files are exactly those
copied, and its claims and decisions too; every copied file is read back from
the destination and its bytes compared (sha256); the copy opens as a lake the
catalog reads. Any difference is a
:class:`~catalog.errors.CopyMismatch`.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, TypeVar

from . import engine, validate
from .errors import (
    CopyConflict,
    CopyDestinationNotEmpty,
    CopyMismatch,
    CopyOverlap,
    CopySourceNotLake,
    InvalidName,
    LakeNotFolder,
)
from .lake import Lake, Storage, open_storage
from .lake.files import ANCHOR
from .lake.lake import KEY
from .lake.storage import DIR, FILE, relative
from .progress import Progress, ticker
from .records import Record
from .schema import COLUMNS

T = TypeVar("T")

TABLES = ("versions", "events")
# Files copied (and read back) at a time: an object store answers each request in tens
# of milliseconds, so eight in flight copy a lake of many small files ~6x faster.
COPY_THREADS = 8
CONFIG_FILE = "catalog.toml"
# Folders of numbered claims copied as they are: version claims and the per-model
# decision sequence. Their files are <folder>/<model>/<n> (or <first>-<last>).
SEQUENCES = ("_claims", "_decisions")
# The read snapshot other engines read (a Delta log in each table folder), published
# by compaction; the copy publishes its own (see _publish_snapshot).
SNAPSHOT_LOG = "_delta_log"
_SEQUENCE_NAME = re.compile(r"^\d+(?:-\d+)?$")
# Every top-level name a lake may hold: a destination where any of them exists is
# not empty (on a folder, any entry at all is enough).
LAKE_NAMES = (
    *TABLES, *SEQUENCES, CONFIG_FILE, "_locks", "_leases", "_probe", "_quarantine", "_compactions",
)


@dataclass(frozen=True)
class CopyReport(Record):
    """What `catalog copy` copied and checked."""

    source: str
    destination: str
    # Files copied, by kind: versions, events, claims, decisions, config.
    files: dict[str, int] = field(default_factory=dict)
    bytes: int = 0
    # Records found identical in the source and the copy, by table.
    records: dict[str, int] = field(default_factory=dict)
    # Files of the source left behind: inputs a compaction already merged
    # (superseded), the source's published read snapshot (snapshot: the Delta log in
    # each table folder), and files that are not the lake's (temporary files, links, strays).
    left_behind: dict[str, int] = field(default_factory=dict)
    # Whether the copy's own read snapshot was published (when the source had one).
    snapshot_published: bool = False
    seconds: float = 0.0


@dataclass
class _Plan:
    """The source's files to copy, in the order they are written."""

    config: list[str] = field(default_factory=list)
    sequences: dict[str, list[str]] = field(default_factory=dict)
    tables: dict[str, list[str]] = field(default_factory=dict)
    superseded: int = 0
    snapshot: int = 0
    other: int = 0

    def stages(self) -> list[list[str]]:
        """The files in the order they are copied. The schema anchors first: every lake has
        them under the same names, so a second copy racing into the same place stops at its
        first file, having written nothing. Then the policy, claims and decisions, then the
        records: a partial copy never holds a record without its claim."""
        tables = [f for t in TABLES for f in self.tables.get(t, [])]
        anchors = [f for f in tables if ANCHOR.match(f.rsplit("/", 1)[-1])]
        numbers = [*self.config, *(f for folder in SEQUENCES for f in self.sequences.get(folder, []))]
        return [anchors, numbers, [f for f in tables if f not in anchors]]

    def counts(self) -> dict[str, int]:
        return {
            **{t: len(self.tables.get(t, [])) for t in TABLES},
            "claims": len(self.sequences.get("_claims", [])),
            "decisions": len(self.sequences.get("_decisions", [])),
            "config": len(self.config),
        }


def copy_lake(
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    *,
    progress: Progress | None = None,
    durable: bool = True,
    on_copied: Callable[[Storage], None] | None = None,
) -> CopyReport:
    """Copy the lake at ``source`` to ``destination`` (folders or ``s3://`` URLs, either
    way) and verify the copy record by record; returns what was copied.

    Refuses, before writing anything, a source that is not a readable lake, a
    destination that holds anything, and locations inside one another. A
    difference found by the verification raises CopyMismatch; the copy is then
    left as it is for inspection (nothing is ever removed). ``on_copied`` is
    called with the destination's storage after the files are written and before
    they are verified (tests use it to damage a copy).
    """
    started = time.monotonic()
    src = open_storage(source)
    try:
        dst = _open_destination(destination, durable)
    except BaseException:
        _close(src)
        raise
    source_lake: Lake | None = None
    try:
        _refuse_overlap(src, dst)
        source_lake = _readable_lake(src)
        _refuse_occupied(dst)
        plan = _plan(source_lake)
        digests = _copy_files(src, dst, plan, progress)
        if on_copied is not None:
            on_copied(dst)
        # Checked through a storage opened afresh: on an object store, one whose local
        # mirror holds what the server returns, not what this process wrote.
        fresh = open_storage(destination, durable=durable)
        copy = Lake(fresh)
        try:
            records = verify(source_lake, copy, plan, digests, progress)
            published = _publish_snapshot(copy) if plan.snapshot else False
        finally:
            copy.session.close()
            _close(fresh)
        return CopyReport(
            source=src.location, destination=dst.location, files=plan.counts(),
            bytes=sum(size for _, size in digests.values()), records=records,
            left_behind={"superseded": plan.superseded, "snapshot": plan.snapshot, "other": plan.other},
            snapshot_published=published, seconds=round(time.monotonic() - started, 3),
        )
    finally:
        if source_lake is not None:
            source_lake.session.close()
        _close(src)
        _close(dst)


def _close(storage: Storage) -> None:
    close = getattr(storage, "close", None)  # an object store's storage removes its local mirror
    if callable(close):
        close()


def _publish_snapshot(lake: Lake) -> bool:
    """Publish the copy's own read snapshot (the Delta log other engines read), where
    this catalog has one (catalog.lake.snapshot): the source's log names files of the
    source, some of which may not be copied, so it is never copied itself."""
    from .lake.snapshot import publish_all

    publish_all(lake)
    return True


# -- refusals -----------------------------------------------------------------------


def _open_destination(destination: str | os.PathLike[str], durable: bool) -> Storage:
    try:
        return open_storage(destination, durable=durable)
    except LakeNotFolder:
        raise CopyDestinationNotEmpty(destination=os.fspath(destination), what="a file, not a folder") from None


def _refuse_overlap(src: Storage, dst: Storage) -> None:
    a, b = src.location.rstrip("/") + "/", dst.location.rstrip("/") + "/"
    if a.startswith(b) or b.startswith(a):
        raise CopyOverlap(source=src.location, destination=dst.location)


def _readable_lake(src: Storage) -> Lake:
    """The source as a lake, refused unless the catalog reads it (anchors, sound files)."""
    from .queries import Reader

    lake = Lake(src)
    if not lake.exists():
        raise CopySourceNotLake(source=src.location)
    Reader(lake).close()  # AnchorMissing, LakeDamaged: what `catalog doctor` explains
    return lake


def _refuse_occupied(dst: Storage) -> None:
    """Refuse a destination that holds anything (a lake, or any file at all)."""
    found = [name for name in LAKE_NAMES if dst.exists(name)]
    if found:
        what = "a lake" if any(n in TABLES for n in found) else f"lake files ({', '.join(found)})"
        raise CopyDestinationNotEmpty(destination=dst.location, what=what)
    # A folder: any entry at all. (An object store's prefix is checked by the names above.)
    if dst.location == dst.root and os.path.isdir(dst.root) and os.listdir(dst.root):
        raise CopyDestinationNotEmpty(destination=dst.location, what=f"other files ({sorted(os.listdir(dst.root))[0]}, ...)")


# -- copying ------------------------------------------------------------------------


def _plan(lake: Lake) -> _Plan:
    """What to copy. The tables are listed first, then claims and decisions (see the module)."""
    storage = lake.storage
    plan = _Plan()
    for table in TABLES:
        current, _ = lake.current_files(table)
        plan.tables[table] = sorted(relative(storage, p) for p in current)
        chosen = set(plan.tables[table])
        for rel, kind in storage.walk(table):
            if kind == DIR or rel in chosen:
                continue
            if rel.startswith(f"{table}/{SNAPSHOT_LOG}/"):
                plan.snapshot += 1
            elif kind == FILE and rel.endswith(".parquet"):
                plan.superseded += 1
            else:
                plan.other += 1
    for folder in SEQUENCES:
        found = []
        for rel, kind in storage.walk(folder):
            parts = rel.split("/")
            # <folder>/<segment>/<n>, the segment a model's (validate.path_segment): copied
            # as it is, so the copy's paths are the source's; a folder that is no model's is left.
            if kind == FILE and len(parts) == 3 and _SEQUENCE_NAME.match(parts[2]) and _model_segment(parts[1]):
                found.append(rel)
            elif kind != DIR:
                plan.other += 1
        plan.sequences[folder] = sorted(found)
    # A regular file, never a link; an object store may list no "kind" for a single key.
    found_config = storage.walk(CONFIG_FILE)
    if found_config == [(CONFIG_FILE, FILE)] or (not found_config and storage.exists(CONFIG_FILE)):
        plan.config = [CONFIG_FILE]
    elif found_config:
        plan.other += 1
    return plan


def _model_segment(segment: str) -> bool:
    try:
        validate.from_segment(segment)
    except InvalidName:
        return False
    return True


def _copy_files(src: Storage, dst: Storage, plan: _Plan, progress: Progress | None) -> dict[str, tuple[str, int]]:
    """Copy the files of ``plan``, each created exclusively; returns {path: (sha256, size)}
    of what was read. In three stages, each finished before the next starts (see
    :meth:`_Plan.stages`); within a stage, COPY_THREADS files at a time (an object
    store answers each request in tens of milliseconds)."""
    stages = plan.stages()
    tick = ticker(progress, "copy files", sum(map(len, stages)))
    digests: dict[str, tuple[str, int]] = {}

    def copy_one(rel: str) -> tuple[str, tuple[str, int]]:
        try:
            data = src.read_bytes(rel)
        except FileNotFoundError:
            raise CopyConflict(f"{rel} left the source {src.location} (a compaction ran)", destination=dst.location) from None
        if not dst.create_exclusive(rel, data, sync=False):
            raise CopyConflict(f"{rel} was created by someone else", destination=dst.location)
        return rel, (hashlib.sha256(data).hexdigest(), len(data))

    for number, stage in enumerate(stages):
        # The anchors one by one: a copy racing into the same place stops at the first.
        for rel, digest in _each(copy_one, stage, threads=1 if number == 0 else COPY_THREADS):
            digests[rel] = digest
            if tick:
                tick()
    dst.sync()
    if tick:
        tick.finish()
    return digests


def _each(work: Callable[[str], T], items: list[str], *, threads: int) -> Iterator[T]:
    """``work(item)`` for every item, ``threads`` at a time, yielded as they finish; the
    first failure stops the rest (those not started are cancelled) and is raised."""
    if threads <= 1 or len(items) <= 1:
        yield from map(work, items)
        return
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="catalog-copy") as pool:
        futures = [pool.submit(work, item) for item in items]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            for future in futures:
                future.cancel()


# -- verification -------------------------------------------------------------------


def verify(source: Lake, copy: Lake, plan: _Plan, digests: dict[str, tuple[str, int]],
           progress: Progress | None = None) -> dict[str, int]:
    """Check the lake ``copy`` against the source files ``plan`` lists (``digests``: the
    sha256 and size of each file as read from the source); returns the records compared,
    by table. Raises CopyMismatch at the first difference."""
    from .queries import Reader

    dst = copy.storage

    def mismatch(detail: str) -> CopyMismatch:
        return CopyMismatch(detail, source=source.storage.location, destination=dst.location)

    records: dict[str, int] = {}
    with engine.connect() as con:
        for table in TABLES:
            if progress is not None:
                progress(f"verify {table}", 0, 1)
            copied, _ = copy.current_files(table)
            records[table] = _compare_records(con, table, [source.storage.local_path(f) for f in plan.tables[table]],
                                              copied, mismatch)
            names = sorted(relative(dst, p) for p in copied)
            if names != plan.tables[table]:
                odd = _first(sorted(set(names) ^ set(plan.tables[table])))
                raise mismatch(f"the copy's {table} files differ from those copied ({odd})")
            if progress is not None:
                progress(f"verify {table}", 1, 1)
    for folder in SEQUENCES:
        extra = _first(rel for rel, kind in dst.walk(folder) if kind == FILE and rel not in digests)
        if extra:
            raise mismatch(f"{extra} is in the copy but was not copied")
    tick = ticker(progress, "verify files", len(digests))

    def check_one(rel: str) -> None:
        try:
            data = dst.read_bytes(rel)
        except FileNotFoundError:
            raise mismatch(f"{rel} is missing") from None
        if hashlib.sha256(data).hexdigest() != digests[rel][0]:
            raise mismatch(f"{rel} differs from the source's")

    for _ in _each(check_one, sorted(digests), threads=COPY_THREADS):
        if tick:
            tick()
    if tick:
        tick.finish()
    Reader(copy).close()  # the copy opens as a lake: anchors there, every file sound
    return records


def _compare_records(con: Any, table: str, source: list[str], copy: list[str],
                     mismatch: Callable[[str], CopyMismatch]) -> int:
    import duckdb

    sql = engine.named_sql(__package__ or "catalog", "copying.sql")
    fill = {"{key}": engine.identifiers(KEY[table]), "{columns}": engine.identifiers(COLUMNS[table])}
    params = {"source": source, "copy": copy}

    def query(name: str) -> list[tuple[Any, ...]]:
        text = sql[name]
        for mark, value in fill.items():
            text = text.replace(mark, value)
        try:
            return con.execute(text, params).fetchall()
        except duckdb.Error as exc:
            gone = _first(p for p in source if not os.path.exists(p))
            if gone is not None:  # the source, not the copy: a compaction removed a file meanwhile
                found = mismatch("")
                raise CopyConflict(f"{os.path.basename(gone)} left the {table} table of {found.source} (a compaction ran)",
                                   destination=found.destination) from None
            raise mismatch(f"its {table} table cannot be read ({str(exc).splitlines()[0]})") from None

    (source_rows, copy_rows), = query("records")
    differences = query("differences")
    if differences:
        row = differences[0]
        key = ", ".join(f"{name}={value!r}" for name, value in zip(KEY[table], row))
        raise mismatch(f"the {table} record {key} differs ({row[-2]} row(s) in the source, {row[-1]} in the copy)")
    if source_rows != copy_rows:
        raise mismatch(f"the {table} table holds {source_rows} rows in the source and {copy_rows} in the copy")
    return int(source_rows)


def _first(items: Iterable[str]) -> str | None:
    return next(iter(items), None)
