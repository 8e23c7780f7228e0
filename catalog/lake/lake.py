"""Where lake files go and how they are written, claimed and compacted.

Layout under the lake root::

    versions/part-<utc>-<id>.parquet     one file per append (usually one row)
    versions/compacted-<utc>-<id>.parquet  merged by `catalog compact`
    versions/schema-v<N>.parquet         zero-row anchor with the current schema
    events/...                           the same for lifecycle events
    _claims/<model>/<first>              version numbers, claimed by exclusive create
    _decisions/<model>/<n>               the model's decision sequence (each holds its event)

where ``<model>`` is the model's path segment (``validate.path_segment``: the name
itself for a lowercase name of the old rule, else ``~`` and its base32).
    _leases/<name>                       who compacts or rewrites a table, until when
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
killed at any instant therefore loses nothing and shows nothing twice. Two
compacted files whose ``supersedes`` lists overlap (a compactor frozen past its
lease that resumed after another compacted the same inputs) hold copies of the
same records: the reader then keeps one row per key (``superseded`` answers
``known=False``) until the next compaction merges them.
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
import functools
import hashlib
import json
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .. import validate
from ..engine import Session
from ..schema import COLUMNS, SCHEMA_VERSION, arrow_tables
from .files import PART, FileCheck
from .footers import ROWS_CHECKED, SUPERSEDES, Footers  # noqa: F401  (the footer keys, named here for writers of lake files)
from .lease import Leases
from .rows import table as arrow_rows
from .storage import FILE, Storage, open_storage, relative  # noqa: F401  (open_storage: its old home)

if TYPE_CHECKING:
    import pyarrow as pa

_PART = PART
# The snapshot's Delta log in each table folder (catalog.lake.snapshot): not part of the table.
DELTA_LOG = "_delta_log"


def compaction_marker(table: str) -> str:
    """The lake path compaction rewrites before removing files of ``table``."""
    return f"_compactions/{table}"


def claims_folder(model: str) -> str:
    """The lake folder of the version claims of ``model`` (its name encoded as a path segment)."""
    return f"_claims/{validate.path_segment(model)}"


def decisions_folder(model: str) -> str:
    """The lake folder of the decision sequence of ``model`` (its name encoded as a path segment)."""
    return f"_decisions/{validate.path_segment(model)}"


_CLAIM = re.compile(r"^(\d+)(?:-(\d+))?$")
# A bulk load claiming numbers of at most this many models fsyncs their folders one
# by one; for more, one sync of the machine is cheaper (benchmarks/run.py measures it).
SYNC_FOLDERS_UP_TO = 500
# How long a decision waits for the event of the decision before it (its writer is
# between its claim and its event file, normally for a few ms) before writing that
# event itself from the claim; CATALOG_DECISION_GRACE overrides it. Writing it early
# is harmless (both create the same file name; see Lake.decide): the wait only spares
# the work.
DECISION_GRACE_SECONDS = 0.5


def _claim_body(actor: str, last: int) -> bytes:
    return json.dumps({"by": actor, "last": last, "pid": os.getpid(), "at": time.time()}).encode()


def parse_claim(name: str) -> tuple[int, int] | None:
    """The (first, last) version numbers a claim file name says, or None if it is not a
    claim. A claim named ``<first>`` may hold more numbers: its body's ``last`` says
    (see :func:`claim_ranges`); ``<first>-<last>`` is how older catalogs named them."""
    match = _CLAIM.match(name)
    if not match:
        return None
    first = int(match.group(1))
    last = int(match.group(2) or first)
    return (first, last) if last >= first >= 1 else None


def claim_last(data: bytes | None, first: int) -> int | None:
    """The last number a claim ``<first>`` holds, from its body (an older catalog's body,
    without ``last``, held ``first`` alone); None when the body is missing or unreadable
    (its content lost in a crash: only its name was made durable)."""
    if data is None:
        return None
    try:
        body = json.loads(data)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    last = body.get("last", first)
    return last if isinstance(last, int) and last >= first else None


def claim_ranges(names: Sequence[str], read: Callable[[str], bytes | None]) -> list[tuple[str, int, int, bool]]:
    """(name, first, last, sure) of each claim among ``names``, by first number.

    A claim's body is read (``read(name)``) only where its range is not plain from
    the names: a claim followed at once by the next number's claim holds one
    number. ``sure`` is False where the body could not say (lost in a crash): the
    range is then the name's own.
    """
    parsed = sorted((c[0], c[1], n) for n in names if not n.startswith(".") and (c := parse_claim(n)))
    out = []
    for i, (first, last, name) in enumerate(parsed):
        sure = True
        if "-" not in name and not (i + 1 < len(parsed) and parsed[i + 1][0] == first + 1):
            said = claim_last(read(name), first)
            sure = said is not None
            last = said if said is not None else first
        out.append((name, first, last, sure))
    return out


# Folder modification times come from the kernel's coarse clock (a few ms a tick),
# so a write in the same tick as an earlier one may leave a folder's time unchanged.
SETTLE_SECONDS = 0.05


def settled(stamp: tuple[int, ...], read_at: float, *, exact: bool = False) -> bool:
    """Whether a cache built at ``read_at`` (time.time()) from a lake with ``stamp`` can
    rely on the stamp to change at the next write. With ``exact`` stamps (a storage whose
    stamp is a listing digest, ``Storage.exact_stamps``) always; with folder times only
    once the stamp is SETTLE_SECONDS old."""
    if exact:
        return True
    return read_at - max(stamp) / 1e9 > SETTLE_SECONDS


def _file_id(now: datetime, rand: str) -> str:
    return f"{now.strftime('%Y%m%dT%H%M%S%fZ')}-{rand}"


def _one_floor(floors: Callable[[list[str]], dict[str, int]], model: str) -> int:
    return floors([model]).get(model, 0)


def decision_grace() -> float:
    value = os.environ.get("CATALOG_DECISION_GRACE")
    try:
        return float(value) if value else DECISION_GRACE_SECONDS
    except ValueError:
        return DECISION_GRACE_SECONDS


_EVENT_ID = re.compile(r"^[0-9TZ]+-[0-9a-f]+$")


def event_file(event_id: str) -> str:
    """The file a decision's event goes to: named from the event id, so every writer of
    it (its decider, or one rolling it forward) names it alike."""
    if _EVENT_ID.match(event_id):
        return f"events/part-{event_id}.parquet"
    stamp = event_id.split("-", 1)[0]
    stamp = stamp if re.fullmatch(r"[0-9TZ]+", stamp) else "0"
    return f"events/part-{stamp}-{hashlib.sha256(event_id.encode()).hexdigest()[:16]}.parquet"


def _decision_body(row: dict[str, Any]) -> bytes:
    """A decision claim's body: the event row, as JSON (its time as ISO 8601)."""
    return json.dumps({k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()},
                      sort_keys=True).encode()


def decision_row(data: bytes) -> dict[str, Any] | None:
    """The event row a decision claim holds; None when it holds none (content lost)."""
    try:
        row = json.loads(data)
        row["at"] = datetime.fromisoformat(row["at"])
        if row.get("imported_at") is not None:
            row["imported_at"] = datetime.fromisoformat(row["imported_at"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return row if isinstance(row.get("event_id"), str) else None


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
        # The schema anchors this Lake has seen or written (see _ensure_anchor).
        self._anchored: set[str] = set()
        # What this process knows of claims (their bodies never change) and of each
        # model's decision sequence (the highest decision whose event it saw in the lake).
        self._claim_ends: dict[tuple[str, str], int] = {}
        self._settled: dict[str, tuple[int, datetime]] = {}
        # The latest decision of each model seen not to be a rename away (see renamed_to).
        self._not_renames: dict[str, int] = {}

    # -- locations ---------------------------------------------------------

    @property
    def root(self) -> str:
        return self.storage.root

    def exists(self) -> bool:
        return self.storage.exists("versions") or self.storage.exists("events")

    def glob(self, table: str) -> str:
        """The path pattern any engine reads a table with: below the folder, or below the
        bucket's prefix for an object-store lake (``s3://bucket/prefix/versions/**/*.parquet``,
        which a DuckDB with the httpfs extension reads), never this process's mirror."""
        if self.storage.location != self.storage.root:
            return f"{self.storage.location}/{table}/**/*.parquet"
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
        """(names in ``names`` a compacted file there replaced, whether each record is in
        one of the rest only).

        The second is False when a compacted file does not say what it replaced (an
        older catalog wrote it) or when two compacted files say they replaced a same
        file: a compactor that lost its lease (frozen past it) and resumed put its
        merged file in beside the one of the compactor that took over, so both hold
        those records. Readers then keep one row per key; the next compaction merges
        the two.
        """
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
                if gone & replaced:
                    known = False
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
        how many. Call with the table's compaction lease held (compact, redaction)."""
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

    def _ensure_anchor(self, table: str, *, known: bool = False) -> None:
        """Write the table's schema anchor if it is missing. With ``known``, an anchor this
        Lake already saw is taken to be there still (appends: no request per record on
        an object store); compaction and ``create`` always look."""
        name = f"{table}/schema-v{SCHEMA_VERSION}.parquet"
        if known and name in self._anchored:
            return
        if not self.storage.exists(name):
            self.storage.write_atomic(name, _to_parquet(arrow_rows([], arrow_tables()[table])))
        self._anchored.add(name)

    def append(self, table: str, rows: Sequence[dict[str, Any]], *, now: datetime | None = None) -> str:
        """Append rows as one new Parquet file; returns its relative path."""
        for name in COLUMNS:  # both, so that either table reads before its first record
            self._ensure_anchor(name, known=True)
        data = arrow_rows(rows, arrow_tables()[table])
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
            self._ensure_anchor(name, known=True)
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

    def claim_many(self, counts: dict[str, int | Callable[[int], int]], actor: str,
                   floors: Callable[[list[str]], dict[str, int]]) -> dict[str, int]:
        """Claim ``counts[model]`` consecutive numbers of each model (a bulk load); returns
        each model's first.

        Each model gets one claim ``_claims/<model>/<first>`` whose body says its
        ``last``, made as :meth:`claim_versions` makes one (no lock: a conflict means
        re-reading that model's end and trying again). The claims are made durable
        together: a folder fsync each for a few models, else one ``sync`` of the
        machine, whose cost depends on what else waits to be written (0.1 s and more
        on a busy disk) but not on how many models. ``floors`` gives the highest
        recorded version of the models without claims, in one go. A count may be a
        function of the model's end (the highest number claimed), for loads that name
        some numbers themselves (imports): it raises to refuse.
        """
        have = set(self.storage.listdir("_claims"))
        ends = {m: self._claimed_end(m) if validate.path_segment(m) in have else (0, False) for m in counts}
        unsure = [m for m, (_, sure) in ends.items() if not sure]
        floor = floors(unsure) if unsure else {}
        first = {}
        for model, count in counts.items():
            end, sure = ends[model]
            first[model] = self._claim(model, count, actor, end if sure else max(end, floor.get(model, 0)),
                                       functools.partial(_one_floor, floors, model), sync=False)
        if len(counts) <= SYNC_FOLDERS_UP_TO:
            self.storage.sync([*(claims_folder(m) for m in counts), "_claims"])
        else:
            self.storage.sync()
        return first

    def claim_versions(self, model: str, count: int | Callable[[int], int], actor: str, floor: Callable[[], int], *, sync: bool = True) -> int:
        """Claim ``count`` consecutive version numbers of ``model``; returns the first.

        A claim is an object ``_claims/<model>/<first>`` created only if absent
        (``Storage.create_exclusive``: O_EXCL-like link on a folder, ``If-None-Match:
        *`` on S3); its body says its ``last`` number. The model's end is the
        ``last`` of its highest claim; a writer claims the number after it, and when
        another writer created that claim first it reads the end again and retries.
        Every claim thus starts right after an existing one, so claims never overlap
        and no number is handed out twice, with no lock. ``floor`` gives the highest
        recorded version and is only asked when the model has no claims yet (a lake
        copied without its ``_claims`` folder).
        """
        end, sure = self._claimed_end(model)
        return self._claim(model, count, actor, end if sure else max(end, floor()), floor, sync=sync)

    def ends(self, models: Sequence[str], floors: Callable[[list[str]], dict[str, int]]) -> dict[str, int]:
        """The highest number claimed (or recorded, where the claims cannot tell) of each model."""
        have = set(self.storage.listdir("_claims"))
        ends = {m: self._claimed_end(m) if validate.path_segment(m) in have else (0, False) for m in models}
        unsure = [m for m, (_, sure) in ends.items() if not sure]
        floor = floors(unsure) if unsure else {}
        return {m: end if sure else max(end, floor.get(m, 0)) for m, (end, sure) in ends.items()}

    def _claim(self, model: str, count: int | Callable[[int], int], actor: str, end: int, floor: Callable[[], int],
               *, sync: bool) -> int:
        while True:
            first = end + 1
            n = count(end) if callable(count) else count
            body = _claim_body(actor, first + n - 1)
            # With ``sync``, the claim's name and body are durable before a record uses it.
            if self.storage.create_exclusive(f"{claims_folder(model)}/{first}", body, sync=sync):
                self._claim_ends[(model, str(first))] = first + n - 1
                return first
            # Another writer has that number: its claim says how far it reaches; follow
            # it, and read the end again (it may have moved on further).
            found = self._claim_end_of(model, str(first))
            latest, sure = self._claimed_end(model)
            end = max(found if found is not None else first, latest)
            if not sure:
                end = max(end, floor())

    def claimed_end(self, model: str) -> int:
        """The highest version number claimed for ``model`` (0: none)."""
        return self._claimed_end(model)[0]

    def reserve_numbers(self, model: str, last: int, *, renamed_from: str) -> bool:
        """Claim numbers 1 to ``last`` of ``model`` at once, as a rename does for the model's
        new name (whose numbers continue after the old name's); False when ``model`` has a
        claim already that is not such a reservation from ``renamed_from`` (an earlier try of
        the same rename, run again after another decision came first)."""
        path = f"{claims_folder(model)}/1"
        body = json.dumps({"by": "rename", "last": last, "renamed_from": renamed_from, "pid": os.getpid(),
                           "at": time.time()}).encode()
        if self.storage.create_exclusive(path, body, sync=True):
            self._claim_ends[(model, "1")] = last
            return True
        try:
            held = json.loads(self.storage.read_bytes(path))
        except (FileNotFoundError, ValueError):
            return False
        names = [n for n in self.storage.listdir(claims_folder(model)) if parse_claim(n)]
        return (isinstance(held, dict) and held.get("renamed_from") == renamed_from and names == ["1"]
                and isinstance(held.get("last"), int) and held["last"] >= last)

    def _claim_end_of(self, model: str, name: str) -> int | None:
        """The last number the claim ``name`` of ``model`` holds, when its body says."""
        known = self._claim_ends.get((model, name))
        if known is not None:
            return known
        parsed = parse_claim(name)
        if parsed is None:
            return None
        try:
            data = self.storage.read_bytes(f"{claims_folder(model)}/{name}")
        except FileNotFoundError:
            return None
        last = claim_last(data, parsed[0])
        if last is not None:
            self._claim_ends[(model, name)] = last
        return last

    def _claimed_end(self, model: str) -> tuple[int, bool]:
        """(the highest number claimed for ``model``, whether the claims tell it alone): the
        ``last`` of its highest claim (and of any ``<first>-<last>`` claim of an older
        catalog). Not alone when it has no claim yet, or when a crash lost the body of
        its highest claim (a bulk load makes the names durable, the bodies may follow):
        the highest recorded version then counts too (records come after their claim)."""
        names = self.storage.listdir(claims_folder(model))
        parsed = [(c, n) for n in names if not n.startswith(".") and (c := parse_claim(n))]
        if not parsed:
            return 0, False
        (first, last), name = max(parsed)
        said = self._claim_end_of(model, name) if "-" not in name else last
        top = max(c[1] for c, _ in parsed)
        return max(said if said is not None else first, top), said is not None

    # -- decisions ---------------------------------------------------------------

    def decide(self, model: str, attempt: Callable[[datetime | None], dict[str, Any]],
               recorded: Callable[[str], bool],
               decided: Callable[[int, dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Append the event ``attempt()`` builds for ``model``, with optimistic concurrency.

        Each decision on a model takes the next number of the model's sequence:
        ``_decisions/<model>/<n>``, created only if absent, whose body holds the
        event row. A decider reads the highest ``n``, makes sure the event of
        decision ``n`` is in the lake (:meth:`_settle`), then calls ``attempt``, which
        reads the state, runs the rules and gates and returns the event row, or
        raises to refuse (the lake is then unchanged); it is given the time of
        decision ``n``, which its event's time must follow (clocks of machines
        differ; the views order events by time). It claims ``n + 1``; when
        another decider claimed it first, the state has changed: it starts again,
        re-reading the state and re-checking the rules. Two deciders acting on the
        same state therefore never both win. Last, the event is written to a file
        named from its id (``events/part-<event_id>.parquet``), created only if
        absent, so the writer and anyone rolling its decision forward add it once.
        ``recorded(event_id)`` says whether the lake's reader sees an event;
        ``decided(n, row)`` is called with the decision's number and event once the
        event is in.
        """
        while True:
            n = self._decision_head(model)
            after = self._settle(model, n, recorded) if n else None
            row = attempt(after)
            claim = f"{decisions_folder(model)}/{n + 1}"
            # The claim need not be durable by itself: the event file is, before the
            # decision is acknowledged; a claim lost in a crash is one never acknowledged.
            if self.storage.create_exclusive(claim, _decision_body(row), sync=False):
                self.append_event(row)
                self._settled[model] = (n + 1, row["at"])
                if decided is not None:
                    decided(n + 1, row)
                return row

    def renamed_to(self, model: str) -> str | None:
        """The name ``model`` was renamed to, when its latest decision is that rename (a
        name renamed away takes no decision after it): what register checks with a listing
        and a read rather than a query."""
        n = self._decision_head(model)
        if not n or self._not_renames.get(model) == n:
            return None
        try:
            row = decision_row(self.storage.read_bytes(f"{decisions_folder(model)}/{n}"))
        except FileNotFoundError:
            return None
        if row is None or row.get("kind") != "rename" or row.get("renamed_from") != model:
            if row is not None:
                self._not_renames[model] = n  # (a decision's body never changes: not read again)
            return None
        return str(row["model"])

    def _decision_head(self, model: str) -> int:
        return max((int(n) for n in self.storage.listdir(decisions_folder(model)) if n.isdigit()), default=0)

    def _settle(self, model: str, n: int, recorded: Callable[[str], bool]) -> datetime | None:
        """Make sure the event of decision ``n`` of ``model`` is in the lake: it is when its
        file is there or the reader sees it (compacted). Its writer may be between its
        claim and its event file: wait for it, up to the grace time; past it (the writer
        died or is frozen), write the event from the claim, as the writer would have.
        Returns the time of that event (None when the claim holds none)."""
        known = self._settled.get(model)
        if known is not None and known[0] == n:
            return known[1]
        try:
            row = decision_row(self.storage.read_bytes(f"{decisions_folder(model)}/{n}"))
        except FileNotFoundError:
            row = None
        if row is None:  # a claim whose content a crash lost: its writer never acknowledged it
            return None
        path = event_file(row["event_id"])
        deadline = time.monotonic() + decision_grace()
        pause = 0.005
        while not (self.storage.exists(path) or recorded(row["event_id"])):
            if time.monotonic() >= deadline:
                self.append_event(row)  # roll the decision forward
                break
            time.sleep(pause)
            pause = min(pause * 2, 0.1)
        self._settled[model] = (n, row["at"])
        return row["at"]

    def append_event(self, row: dict[str, Any]) -> str:
        """Write one decision's event to its own file, named from its id, created only if
        absent (a second writer of the same decision adds nothing); returns its path."""
        for name in COLUMNS:
            self._ensure_anchor(name, known=True)
        path = event_file(row["event_id"])
        data = arrow_rows([row], arrow_tables()["events"])
        if self.storage.create_exclusive(path, _to_parquet(data)):
            local = self.storage.local_path(path)
            self.checked.wrote(local, "events")
            self.footers.wrote(local, 1)
        return path

    @contextlib.contextmanager
    def rewriting(self, *, wait: float = 0.0) -> Iterator[Leases]:
        """Held while files are rewritten in place (redaction) or moved (doctor's repair):
        both tables' compaction leases, so no compaction runs meanwhile (LakeBusy while one
        does). Leftovers of an interrupted compaction are removed first, so that every copy
        of a record sits in a file the reader lists (and a redaction reaches). The holder
        calls ``check()`` on what it gets before each step that changes the lake. ``wait``:
        how long to keep trying while a compaction holds a lease."""
        with Leases(self.storage, [f"compact-{table}" for table in COLUMNS], wait=wait) as held:
            for table in COLUMNS:
                self.finish_compactions(table)
            yield held

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
