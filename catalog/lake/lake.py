"""Where lake files go and how they are written, claimed and compacted.

Layout under the lake root::

    versions/part-<utc>-<id>.parquet     one file per append (usually one row)
    versions/compacted-<utc>-<id>.parquet  merged by `catalog compact`
    versions/schema-v<N>.parquet         zero-row anchor with the current schema
    events/...                           the same for lifecycle events
    _claims/<model>/<version>            version numbers, claimed with O_EXCL
    _locks/<name>.lock                   advisory locks (decisions, claims, compaction)
    _compactions/<table>                 rewritten by each compaction before it removes files
    _quarantine/<utc>/...                files `catalog doctor --repair` moved aside

Every table file is written to a temporary name and renamed in, so a reader
sees a whole file or none. Compaction renames the merged file in *before*
deleting its inputs; in between, a record sits in two files. The merged file
names the inputs it replaces in its own Parquet footer (key
``catalog.supersedes``), so the catalog's reader, which reads the explicit list
:meth:`Lake.current_files` gives, skips them and needs no per-key dedupe; a
plain glob reader (``catalog sql --print-views``) keeps one row per key instead.
The next compaction, or a redaction, first removes such leftovers. A compaction
killed at any instant therefore loses nothing and shows nothing twice.
Compaction only removes the files it listed and merged: a file a writer adds
meanwhile stays.

A reader lists a folder while a compaction may be renaming a file in and
removing others; a directory listing is not a snapshot, so a listing could miss
both the new merged file and an input removed under it. Compaction therefore
rewrites ``_compactions/<table>`` after the merged file is in and before any
input is removed, and the query layer runs a query again when that marker
changed while it ran (see ``catalog.queries.Reader``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..engine import Session
from ..schema import COLUMNS, SCHEMA_VERSION, arrow_tables
from .files import PART, FileCheck
from .footers import ROWS_CHECKED, SUPERSEDES, Footers  # noqa: F401  (the footer keys, named here for writers of lake files)
from .storage import FILE, LocalStorage, Storage, relative

if TYPE_CHECKING:
    import pyarrow as pa

_PART = PART
# The snapshot's Delta log in each table folder (catalog.lake.snapshot): not part of the table.
DELTA_LOG = "_delta_log"


def compaction_marker(table: str) -> str:
    """The lake path compaction rewrites before removing files of ``table``."""
    return f"_compactions/{table}"


_CLAIM = re.compile(r"^(\d+)(?:-(\d+))?$")
# Taken shared by each single claim, exclusively by a bulk load's claims.
CLAIMS_LOCK = "claims"
# A bulk load claiming numbers of at most this many models fsyncs their folders one
# by one; for more, one sync of the machine is cheaper (benchmarks/run.py measures it).
SYNC_FOLDERS_UP_TO = 500


def _claim_name(first: int, count: int) -> str:
    return str(first) if count == 1 else f"{first}-{first + count - 1}"


def _claim_body(actor: str) -> bytes:
    return json.dumps({"by": actor, "pid": os.getpid(), "at": time.time()}).encode()


def parse_claim(name: str) -> tuple[int, int] | None:
    """The (first, last) version numbers a claim file name holds, or None if it is not a claim."""
    match = _CLAIM.match(name)
    if not match:
        return None
    first = int(match.group(1))
    last = int(match.group(2) or first)
    return (first, last) if last >= first >= 1 else None


# Folder modification times come from the kernel's coarse clock (a few ms a tick),
# so a write in the same tick as an earlier one may leave a folder's time unchanged.
SETTLE_SECONDS = 0.05


def settled(stamp: tuple[int, ...], read_at: float) -> bool:
    """Whether a cache built at ``read_at`` (time.time()) from a lake with ``stamp`` can
    rely on the stamp to change at the next write: it must be SETTLE_SECONDS old."""
    return read_at - max(stamp) / 1e9 > SETTLE_SECONDS


def open_storage(location: str | os.PathLike[str], *, durable: bool = True) -> Storage:
    """The storage for a lake location: a folder (or ``file://`` URL), or ``s3://bucket/prefix``
    (an object store, through the optional ``s3`` extra; see catalog.lake.s3)."""
    text = os.fspath(location)
    if text.startswith("s3://"):
        import importlib.util

        if importlib.util.find_spec("boto3") is None:  # the optional extra's client (imported on first use)
            from ..errors import ObjectStoreExtraMissing

            raise ObjectStoreExtraMissing(lake=text) from None
        from .s3 import S3Storage

        return S3Storage(text)
    if "://" in text and not text.startswith("file://"):
        from ..errors import InvalidValue

        raise InvalidValue(
            f"lake {text!r}: use a local folder, file://PATH or s3://BUCKET/PREFIX "
            "(other object stores through their S3-compatible endpoint)"
        )
    return LocalStorage(text.removeprefix("file://"), durable=durable)


def _file_id(now: datetime, rand: str) -> str:
    return f"{now.strftime('%Y%m%dT%H%M%S%fZ')}-{rand}"


class Lake:
    """The two tables of one lake, and the primitives that keep them whole."""

    def __init__(self, storage: Storage, *, new_id: Callable[[], str] | None = None, session: Session | None = None) -> None:
        self.storage = storage
        self._new_id = new_id or (lambda: uuid.uuid4().hex[:16])
        # The DuckDB connection the lake reads footers with, shared with its reader
        # (catalog.queries.Reader): one per lake, opened on first use.
        self.session = session or Session()
        self.footers = Footers(storage, self.session)
        # Which table files are known sound: checked once, or written by this process.
        self.checked = FileCheck()

    # -- locations ---------------------------------------------------------

    @property
    def root(self) -> str:
        return self.storage.root

    def exists(self) -> bool:
        return self.storage.exists("versions") or self.storage.exists("events")

    def glob(self, table: str) -> str:
        """The path pattern any engine reads a table with."""
        return os.path.join(self.storage.local_path(table), "**", "*.parquet")

    def data_files(self, table: str) -> list[str]:
        """Relative paths of the table's record files (anchors excluded): regular files
        only, never a link or anything else placed under such a name."""
        return [f"{table}/{n}" for n, kind in self.storage.entries(table) if kind == FILE and _PART.match(n)]

    def table_files(self, table: str) -> list[str]:
        """Absolute paths of every ``*.parquet`` regular file in ``table``'s folder and the
        real folders below it (what a ``<table>/**/*.parquet`` glob matches, less links
        and whatever is not a regular file: those are not the lake's, see ``catalog doctor``)."""
        return [
            self.storage.local_path(rel)
            for rel, kind in self.storage.walk(table)
            if kind == FILE and rel.endswith(".parquet") and not rel.startswith(f"{table}/{DELTA_LOG}/")
        ]

    def rows_checked(self, path: str) -> bool:
        """Whether the compacted file at ``path`` (absolute) says compaction found every row
        keeping the readers' rules (see ROWS_CHECKED); False for any other file."""
        if not os.path.basename(path).startswith("compacted-"):
            return False
        try:
            return self.footers.summary(path)[2]
        except FileNotFoundError:
            return False

    def superseded(self, table: str, names: Sequence[str]) -> tuple[set[str], bool]:
        """(names in ``names`` a compacted file there replaced, whether every compacted file said)."""
        folder = self.storage.local_path(table)
        gone: set[str] = set()
        known = True
        for name in names:
            if not name.startswith("compacted-"):
                continue
            try:
                replaced = self.footers.summary(os.path.join(folder, name))[0]
            except FileNotFoundError:
                continue
            if replaced is None:
                known = False
            else:
                gone |= replaced
        return gone & set(names), known

    def current_files(self, table: str) -> tuple[list[str], bool]:
        """(absolute paths of every file that makes up ``table`` now, whether each record
        is in exactly one of them).

        Every ``*.parquet`` a ``<table>/**/*.parquet`` glob matches, less the inputs
        a compaction has replaced but not yet removed. A compacted file written
        before compactions recorded their inputs (an older catalog) may sit beside
        its inputs, so the second value is False while such a file exists: the
        reader then keeps one row per key itself.
        """
        folder = self.storage.local_path(table)
        paths = self.table_files(table)
        top = [os.path.basename(p) for p in paths if os.path.dirname(p) == folder]
        gone, known = self.superseded(table, top)
        if gone:
            paths = [p for p in paths if not (os.path.dirname(p) == folder and os.path.basename(p) in gone)]
        return paths, known

    def finish_compactions(self, table: str) -> int:
        """Remove the inputs an interrupted compaction left beside its merged file; returns
        how many. Call with the table's compaction lock held (compact, redaction)."""
        names = [n for n, kind in self.storage.entries(table) if kind == FILE]
        gone, _ = self.superseded(table, names)
        if gone:  # the snapshot's Delta log stops listing them before they go
            from .snapshot import publish

            publish(self, table)
        for name in sorted(gone):
            self.storage.remove(f"{table}/{name}")
        return len(gone)

    def markers(self) -> tuple[bytes, ...]:
        """What compaction last wrote before removing files of each table (see compaction_marker)."""
        out = []
        for table in COLUMNS:
            try:
                out.append(self.storage.read_bytes(compaction_marker(table)))
            except FileNotFoundError:
                out.append(b"")
        return tuple(out)

    def identity(self, path: str) -> tuple[int, int, int] | None:
        """(size, modification time in ns, inode) of the table file at ``path`` (local):
        what a rewrite in place changes; None when it is gone."""
        try:
            return self.storage.stat(relative(self.storage, path))
        except FileNotFoundError:
            return None

    def stamp(self) -> tuple[int, int]:
        """Changes whenever a file enters or leaves either table (a rename in included).
        Trust it only through :func:`settled`."""
        return (self.storage.stamp("versions"), self.storage.stamp("events"))

    # -- writing -------------------------------------------------------------

    def create(self) -> bool:
        """Make an empty lake here (both tables' schema anchors); False if it was one already."""
        existed = self.exists()
        for name in COLUMNS:
            self._ensure_anchor(name)
        return not existed

    def _ensure_anchor(self, table: str) -> None:
        name = f"{table}/schema-v{SCHEMA_VERSION}.parquet"
        if not self.storage.exists(name):
            self.storage.write_atomic(name, _to_parquet(arrow_tables()[table].empty_table()))

    def append(self, table: str, rows: Sequence[dict[str, Any]], *, now: datetime | None = None) -> str:
        """Append rows as one new Parquet file; returns its relative path."""
        for name in COLUMNS:  # both, so that either table reads before its first record
            self._ensure_anchor(name)
        import pyarrow as pa

        data = pa.Table.from_pylist(list(rows), schema=arrow_tables()[table])
        stamp = now or datetime.now(timezone.utc)
        path = f"{table}/part-{_file_id(stamp, self._new_id())}.parquet"
        self.storage.write_atomic(path, _to_parquet(data))
        local = self.storage.local_path(path)
        self.checked.wrote(local, table)
        self.footers.wrote(local, data.num_rows)
        return path

    def append_batches(self, table: str, batches: Iterable[pa.RecordBatch], *, now: datetime) -> str:
        """:meth:`append` for a bulk load: the batches are streamed into one zstd Parquet
        file (a row group each), so neither the table nor the file is ever whole in memory.
        No dictionary encoding: its buffers would add ~10 MB to a 100k-row load, and
        compaction rewrites the file anyway."""
        for name in COLUMNS:
            self._ensure_anchor(name)
        path = f"{table}/part-{_file_id(now, self._new_id())}.parquet"

        import pyarrow.parquet as pq

        def write(tmp: str) -> None:
            with pq.ParquetWriter(tmp, arrow_tables()[table], compression="zstd", use_dictionary=False) as out:
                for batch in batches:
                    out.write_batch(batch)

        self.storage.write_atomic_with(path, write)
        return path

    # -- version numbers -------------------------------------------------------

    def claim_version(self, model: str, actor: str, floor: Callable[[], int]) -> int:
        """Claim the next free version number of ``model``."""
        return self.claim_versions(model, 1, actor, floor)

    def claim_many(self, counts: dict[str, int], actor: str, floors: Callable[[list[str]], dict[str, int]]) -> dict[str, int]:
        """Claim ``counts[model]`` consecutive numbers of each model (a bulk load); returns
        each model's first.

        Each model gets one claim ``_claims/<model>/<first>-<last>`` (``<first>`` for
        one number). The lake's ``claims`` lock is held exclusively, so no single
        claim runs meanwhile and no per-model lock is needed. The claims are made
        durable together: a folder fsync each for a few models, else one ``sync``
        of the machine, whose cost depends on what else waits to be written (0.1 s
        and more on a busy disk) but not on how many models. ``floors`` gives the
        highest recorded version of the models without claims, in one go.
        """
        body = _claim_body(actor)
        with self.storage.lock(CLAIMS_LOCK):
            have = set(self.storage.listdir("_claims"))
            ends = {m: self._claimed(m) if m in have else [] for m in counts}
            floor = floors([m for m, e in ends.items() if not e])
            first = {}
            for model, count in counts.items():
                start = (max(ends[model]) if ends[model] else floor.get(model, 0)) + 1
                while not self.storage.create_exclusive(f"_claims/{model}/{_claim_name(start, count)}", body, sync=False):
                    start += 1  # only a writer that ignores the locks gets here
                first[model] = start
            if len(counts) <= SYNC_FOLDERS_UP_TO:
                self.storage.sync([*(f"_claims/{m}" for m in counts), "_claims"])
            else:
                self.storage.sync()
        return first

    def claim_versions(self, model: str, count: int, actor: str, floor: Callable[[], int], *, sync: bool = True) -> int:
        """Claim ``count`` consecutive version numbers of ``model``; returns the first.

        A claim is a file ``_claims/<model>/<first>`` (or ``<first>-<last>`` for
        a bulk load) created with O_EXCL while holding the model's claim lock and
        the lake's claims lock shared (:meth:`claim_many` takes it exclusively),
        so no two processes ever get the same number. ``floor`` gives the
        highest recorded version and is only asked when the model has no claims
        yet (a lake copied without its ``_claims`` folder).
        """
        body = _claim_body(actor)
        with self.storage.lock(CLAIMS_LOCK, shared=True), self.storage.lock(f"claims-{model}"):
            ends = self._claimed(model)
            first = (max(ends) if ends else floor()) + 1
            while not self.storage.create_exclusive(f"_claims/{model}/{_claim_name(first, count)}", body, sync=sync):
                first += 1  # only a writer that ignores the locks gets here
            return first

    def _claimed(self, model: str) -> list[int]:
        """The last number of each claim of ``model``."""
        return [c[1] for c in map(parse_claim, self.storage.listdir(f"_claims/{model}")) if c]

    @contextlib.contextmanager
    def rewrite_lock(self) -> Iterator[None]:
        """Held while files are rewritten in place: no compaction may run meanwhile.
        Leftovers of an interrupted compaction are removed first, so that every copy
        of a record sits in a file the reader lists (and a redaction reaches)."""
        with self.storage.lock("compact-versions"), self.storage.lock("compact-events"):
            for table in COLUMNS:
                self.finish_compactions(table)
            yield

    @contextlib.contextmanager
    def model_lock(self, model: str) -> Iterator[None]:
        """Serialise read-decide-write on one model's lifecycle."""
        with self.storage.lock(f"model-{model}"):
            yield

    # -- compaction --------------------------------------------------------------

    def part_count(self, table: str) -> int:
        """How many small appended files the table holds (what a minor compaction merges)."""
        return sum(1 for f in self.data_files(table) if f.split("/")[-1].startswith("part-"))


# Rows per row group of a compacted file. Files are sorted by model, so a question
# about one model decodes one row group per file: 16k rows keep that a few ms while
# the footer (read by every query) stays short.
ROW_GROUP_ROWS = 16_384
# The order compacted files are written in (events by model first, so that a query
# about one model skips the other row groups), and each table's key.
ORDER = {"versions": ("model", "version"), "events": ("model", "at", "event_id")}
KEY = {"versions": ("model", "version"), "events": ("event_id",)}


def _to_parquet(table: pa.Table, *, row_group_size: int | None = None) -> bytes:
    """Parquet bytes: zstd for merged files; small appends plain, since zstd's set-up
    alone outweighs a one-row file's write and compaction compresses them later."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    if table.num_rows > 100:
        pq.write_table(table, sink, compression="zstd", row_group_size=row_group_size)
    else:
        pq.write_table(table, sink, compression="none", use_dictionary=False, row_group_size=row_group_size)
    return sink.getvalue().to_pybytes()
