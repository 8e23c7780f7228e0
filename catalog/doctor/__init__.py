"""`catalog doctor`: check a lake, and with ``repair`` put it right without losing data.

What is checked, in order:

* every entry in ``versions/`` and ``events/`` (and any real folder below them):
  links, FIFOs, devices and sockets, and folders named like a table file (not
  the lake's own: readers skip them; ``repair`` moves them, a link itself and
  never what it points to), unreadable or wrong-schema Parquet, files that are not Parquet at all,
  Parquet files with a name the catalog never writes, temporary files left by
  an interrupted write;
* the zero-row schema anchors each table folder needs;
* compaction: inputs an interrupted compaction left beside its merged file
  (readers skip them; ``repair`` removes them), a record held by two current
  files (identical copies read once and ``catalog compact`` merges them; copies
  that differ fail every read of the record, and ``repair`` quarantines the copy
  the version's claim does not vouch for, or every copy when it cannot tell), and
  compacted files from an older catalog that do not name their inputs (reads
  keep one row per key, slower, until ``catalog compact``);
* every row: the rule readers apply (``catalog.queries.row_rules``: required
  fields present, names valid, states and event kinds from the vocabulary),
  reporting exactly the rows the views skip; events that point at a version the
  lake does not have;
* version claims (``_claims/<model>/<n>``) without a record, and records
  beyond the highest claim (the next register would reuse their number);
* with ``verify_artifacts``, the checksum and size of every local artifact.

``repair`` never deletes a record: damaged or foreign files are *moved* to
``_quarantine/<utc>/<their path>``; temporary files older than ``tmp_grace``
are removed (they hold a write that was never acknowledged); missing anchors
and missing claims are written. Claims without a record are left alone: the
number may belong to a register still running, and a gap in the version
numbers is harmless where a number handed out twice is not.

The library never prints: :func:`doctor` returns a :class:`DoctorReport`.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

import duckdb

from . import engine
from .errors import ArtifactNotRegular, LakeNotFound
from .lake import Lake, open_storage
from .lake.lake import parse_claim
from .lake.files import ANCHOR, PART, REQUIRED, file_problem
from .lake.storage import DIR, FILE, LINK
from .progress import Progress
from .provenance import checksum, local_path, regular_artifact
from .queries import quote_literal, row_problems_sql, sound_rows_sql
from .schema import SCHEMA_VERSION

# A temporary file younger than this may belong to a write in progress.
TMP_GRACE_SECONDS = 600.0
TABLES = ("versions", "events")
SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True)
class Finding:
    """One problem: how bad, where, what is wrong, what to do, what ``repair`` did."""

    severity: str  # "error" (data unreadable or wrong), "warning" (needs a look), "info"
    path: str  # lake-relative path, an artifact path, or MODEL:VERSION
    problem: str
    action: str
    repaired: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DoctorReport:
    """Everything a doctor run found, with counts of what it looked at."""

    lake: str
    findings: tuple[Finding, ...]
    checked: dict[str, int] = field(default_factory=dict)
    repair: bool = False
    quarantine: str | None = None  # lake-relative folder files were moved to, if any

    @property
    def problems(self) -> list[Finding]:
        """Findings that are not merely informational."""
        return [f for f in self.findings if f.severity != "info"]

    @property
    def ok(self) -> bool:
        """True when nothing but information was found."""
        return not self.problems

    @property
    def exit_code(self) -> int:
        """0 when the lake is clean, 1 when a problem was found (repaired or not)."""
        return 0 if self.ok else 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "lake": self.lake,
            "ok": self.ok,
            "repair": self.repair,
            "quarantine": self.quarantine,
            "checked": dict(self.checked),
            "findings": [f.to_dict() for f in self.findings],
        }


# A further check (the catalog.toml check plugs in here): given the lake root,
# yields findings. Passed through ``doctor(..., checks=[...])``.
Check = Callable[[str], Iterable[Finding]]


def doctor(
    lake: str | os.PathLike[str] | Lake,
    *,
    repair: bool = False,
    verify_artifacts: bool = False,
    tmp_grace: float = TMP_GRACE_SECONDS,
    checks: Sequence[Check] = (),
    progress: Progress | None = None,
) -> DoctorReport:
    """Check the lake at ``lake``; with ``repair``, quarantine and tidy what is wrong.

    Raises LakeNotFound when there is no lake there, LakeBusy when ``repair``
    is asked while a compaction (or another repair) runs.
    """
    the_lake = lake if isinstance(lake, Lake) else Lake(open_storage(lake))
    if not the_lake.exists():
        raise LakeNotFound(lake=os.fspath(lake) if not isinstance(lake, Lake) else lake.root)
    run = _Run(the_lake, repair=repair, tmp_grace=tmp_grace)
    with run.exclusive():
        good = run.check_files()
        run.check_anchors()
        current = run.check_compactions(good)
        keys = run.check_rows(good, current)
        run.check_claims(keys)
        if verify_artifacts:
            run.check_artifacts(good["versions"], progress)
        for extra in checks:
            run.findings.extend(extra(the_lake.root))
    return DoctorReport(
        lake=the_lake.root,
        findings=tuple(run.findings),
        checked=run.checked,
        repair=repair,
        quarantine=run.quarantine if run.moved else None,
    )


class _Run:
    def __init__(self, lake: Lake, *, repair: bool, tmp_grace: float) -> None:
        self.lake = lake
        self.storage = lake.storage
        self.repair = repair
        self.tmp_grace = tmp_grace
        self.findings: list[Finding] = []
        self.checked: dict[str, int] = {"files": 0, "versions": 0, "events": 0, "claims": 0, "artifacts": 0}
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        self.quarantine = f"_quarantine/{stamp}"
        self.moved = False

    def add(self, severity: str, path: str, problem: str, action: str, repaired: str | None = None) -> None:
        self.findings.append(Finding(severity, path, problem, action, repaired))

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """A repair moves table files: no compaction (nor another repair) may run meanwhile."""
        if not self.repair:
            yield
            return
        with self.storage.lock("compact-versions", wait=False), self.storage.lock("compact-events", wait=False):
            yield

    def _quarantined(self, rel: str) -> str | None:
        if not self.repair:
            return None
        to = f"{self.quarantine}/{rel}"
        try:
            self.storage.move(rel, to)
        except FileNotFoundError:
            return None
        self.moved = True
        return f"moved to {to}"

    # -- files ------------------------------------------------------------------

    def check_files(self) -> dict[str, list[str]]:
        """Judge every file under the table folders; returns the sound Parquet files per table."""
        good: dict[str, list[str]] = {t: [] for t in TABLES}
        for table in TABLES:
            for rel, kind in self.storage.walk(table):
                name = rel.rsplit("/", 1)[-1]
                if kind == DIR and not name.endswith(".parquet"):
                    continue
                self.checked["files"] += 1
                if kind != FILE:
                    self._not_a_file(table, rel, kind)
                    continue
                full = self.storage.local_path(rel)
                try:
                    if self._check_file(table, rel, full, name, rel.count("/") > 1):
                        good[table].append(full)
                except FileNotFoundError:
                    continue  # removed meanwhile (a compaction): nothing to judge
        marker_folder = self.storage.local_path("_compactions")
        for name in sorted(os.listdir(marker_folder)) if os.path.isdir(marker_folder) else []:
            if name.startswith(".") and name.endswith(".tmp"):
                with contextlib.suppress(FileNotFoundError):
                    self._check_file("_compactions", f"_compactions/{name}", os.path.join(marker_folder, name), name, False)
        return good

    def _not_a_file(self, table: str, rel: str, kind: str) -> None:
        """A link, a FIFO, a device or a socket, or a folder named like a table file:
        not part of the lake, and never read (Lake.table_files lists regular files only)."""
        what = {LINK: "symbolic link", DIR: "folder named like a table file"}.get(kind, "special file (FIFO, device or socket)")
        where = f"the {table} folder itself is a {what}" if rel == table else f"{what} in the {table} folder"
        self.add("error", rel, f"{where}: not the lake's own file, readers skip it",
                 "run `catalog doctor --repair` to move it to _quarantine (a link is moved, never what it points to)",
                 self._quarantined(rel))

    def _check_file(self, table: str, rel: str, full: str, name: str, nested: bool) -> bool:
        if name.endswith(".tmp") and name.startswith("."):
            age = time.time() - os.stat(full).st_mtime
            if age < self.tmp_grace:
                self.add("info", rel, f"temporary file {age:.0f}s old: a write may be in progress",
                         "nothing; run `catalog doctor` again later if it stays")
                return False
            done = None
            if self.repair:
                self.storage.remove(rel)
                done = "removed (it held a write that was never acknowledged)"
            self.add("warning", rel, "temporary file left by an interrupted write",
                     "run `catalog doctor --repair` to remove it", done)
            return False
        if not name.endswith(".parquet"):
            self.add("warning", rel, f"foreign file in the {table} folder (readers ignore it, the catalog never writes it)",
                     "run `catalog doctor --repair` to move it to _quarantine, or move it out by hand",
                     self._quarantined(rel))
            return False
        problem = file_problem(full, table)
        if problem:
            self.add("error", rel, problem,
                     "run `catalog doctor --repair` to move it to _quarantine (reads fail until then); "
                     "restore its records from a backup if they matter",
                     self._quarantined(rel))
            return False
        if nested or not (PART.match(name) or ANCHOR.match(name)):
            self.add("warning", rel,
                     "Parquet file the catalog did not write: its rows show in the views, but compaction never merges it",
                     "if its rows belong, leave it; otherwise move it out of the lake")
        return True

    def check_anchors(self) -> None:
        for table in TABLES:
            rel = f"{table}/schema-v{SCHEMA_VERSION}.parquet"
            if self.storage.exists(rel):
                continue
            done = None
            if self.repair:
                self.lake._ensure_anchor(table)
                done = "written"
            self.add("warning", rel, "schema anchor missing: files of older layouts may lose columns in reads",
                     "run `catalog doctor --repair` to write it", done)

    def check_compactions(self, good: dict[str, list[str]]) -> dict[str, set[str]]:
        """Leftovers of interrupted compactions and older compacted files; returns, per
        table, the sound files a reader lists (see Lake.current_files). With repair, the
        leftovers are removed and dropped from ``good``."""
        current: dict[str, set[str]] = {}
        for table in TABLES:
            listed, exact = self.lake.current_files(table)
            current[table] = set(listed) & set(good[table])
            leftovers = sorted(set(good[table]) - set(listed))
            done = None
            if leftovers and self.repair:
                self.lake.finish_compactions(table)
                good[table] = [f for f in good[table] if f not in leftovers]  # later checks read what is left
                done = "removed (its records are in the merged file)"
            for full in leftovers:
                self.add("info", self._rel(full), "input of an interrupted compaction, already merged: readers skip it",
                         "nothing; `catalog compact` or `catalog doctor --repair` removes it", done)
            if not exact:
                self.add("info", table, "compacted by an older catalog version, whose files do not name the inputs "
                         "they replaced: reads keep one row per key, which is slower on a large lake",
                         "run `catalog compact` once")
        return current

    # -- rows -------------------------------------------------------------------

    def check_rows(self, good: dict[str, list[str]], current: dict[str, set[str]]) -> set[tuple[str, int]]:
        """Row-level checks over the sound files; returns the recorded (model, version) keys."""
        with engine.connect() as con:
            for table in TABLES:
                files = good[table] or []
                select = (
                    f"SELECT * FROM read_parquet([{', '.join(quote_literal(f) for f in files)}], "
                    "union_by_name = true, filename = true)"
                    if files else f"SELECT * FROM ({_empty(table)})"
                )
                con.execute(f"CREATE VIEW {table} AS {select}")
            keys = self._check_versions(con)
            self._check_events(con, keys)
            self._check_twice(con, current)
        return keys

    def _check_twice(self, con: duckdb.DuckDBPyConnection, current: dict[str, set[str]]) -> None:
        """Records in two files a reader lists (a file copied or forged into the lake).

        Identical copies read once (the reader leaves the later ones out) and
        ``catalog compact`` keeps one. Copies that differ make every read of the
        record fail (ConflictingCopies): ``repair`` quarantines the copies the
        version's claim does not vouch for (its ``by`` is not the copy's
        ``created_by``), or every copy when it cannot tell (an event has no claim).
        A file that also holds other records is never moved: that is left to a person.
        """
        keys = {"versions": "model, version", "events": "event_id"}
        author = {"versions": "created_by", "events": "actor"}
        for table in TABLES:
            if not current[table]:
                continue
            listing = ", ".join(quote_literal(f) for f in sorted(current[table]))
            rows = _tuples(con.sql(
                f"WITH cur AS (SELECT * FROM {table} WHERE filename IN ({listing}) AND {sound_rows_sql(table)}), "
                f"dup AS (SELECT {keys[table]} FROM cur GROUP BY ALL HAVING count(*) > 1) "
                f"SELECT {keys[table]}, list(filename ORDER BY filename) AS files, "
                f"list(hash(*COLUMNS(* EXCLUDE (filename))) ORDER BY filename) AS contents, "
                f"list({author[table]} ORDER BY filename) AS authors "
                f"FROM cur SEMI JOIN dup USING ({keys[table]}) GROUP BY ALL ORDER BY ALL"
            ))
            identical = [r for r in rows if len(set(r[-2])) == 1]
            if identical:
                self.add("error", table, f"{len(identical)} {table} record(s) sit in two current files: "
                         "reads show each once", "run `catalog compact`, which keeps one copy of each")
            sizes = dict(_tuples(con.sql(
                f"SELECT filename, count(*) FROM {table} WHERE filename IN ({listing}) GROUP BY ALL"
            ))) if len(identical) < len(rows) else {}
            for row in rows:
                *key, files, contents, authors = row
                if len(set(contents)) == 1:
                    continue
                what = f"version {key[1]} of '{key[0]}'" if table == "versions" else f"event {key[0]}"
                names = sorted({self._rel(f) for f in files})
                by = self._claimed_by(*key) if table == "versions" else None
                vouched = [f for f, a in zip(files, authors) if by is not None and a == by]
                wrong = sorted(set(files) - set(vouched)) if len(set(vouched)) == 1 else sorted(set(files))
                done = []
                for full in wrong:
                    if sizes.get(full, 0) > files.count(full):
                        done.append(f"left {self._rel(full)} (it holds other records too)")
                    else:
                        done.append(self._quarantined(self._rel(full)) or "")
                self.add("error", names[0] if len(names) == 1 else table,
                         f"{what} is recorded {len(files)} times with different content, in {' and '.join(names)}: "
                         "every read of it fails until one copy is gone",
                         "run `catalog doctor --repair` to quarantine the copy its claim does not vouch for "
                         "(every copy when it cannot tell), then restore the right one from _quarantine if needed",
                         "; ".join(d for d in done if d) or None)

    def _claimed_by(self, model: str, version: int) -> str | None:
        """Who claimed ``version`` of ``model`` (the ``by`` of its claim file), if a claim says."""
        for name in self.storage.listdir(f"_claims/{model}"):
            claimed = parse_claim(name)
            if claimed and claimed[0] <= version <= claimed[1]:
                try:
                    return json.loads(self.storage.read_bytes(f"_claims/{model}/{name}")).get("by")
                except (OSError, ValueError, AttributeError):
                    return None
        return None

    def _rel(self, path: str | None) -> str:
        return os.path.relpath(path, self.lake.root).replace(os.sep, "/") if path else "?"

    def _check_versions(self, con: duckdb.DuckDBPyConnection) -> set[tuple[str, int]]:
        # Which rows break the rule is the readers' own rule (row_rules): exactly what the views skip.
        rows = _tuples(con.sql(f"SELECT model, version, filename, {row_problems_sql('versions')} AS why FROM versions"))
        keys: set[tuple[str, int]] = set()
        for model, version, filename, why in rows:
            if why:
                self.add("error", self._rel(filename), f"versions row {model}:{version} breaks the schema ({why})",
                         "readers skip it; move the file out of the lake if it holds nothing else, "
                         "and register the version again")
            else:
                keys.add((model, int(version)))
        self.checked["versions"] = len(keys)
        return keys

    def _check_events(self, con: duckdb.DuckDBPyConnection, keys: set[tuple[str, int]]) -> None:
        models = {m for m, _ in keys}
        rows = _tuples(con.sql(
            f"SELECT DISTINCT ON (event_id) event_id, model, version, kind, filename, {row_problems_sql('events')} AS why "
            "FROM events"
        ))
        self.checked["events"] = len(rows)
        for event_id, model, version, kind, filename, why in rows:
            where = self._rel(filename)
            if why:
                self.add("error", where, f"event {event_id} breaks the schema ({why})",
                         "readers skip it; move the file out of the lake if it holds nothing else")
                continue
            if version is not None and (model, int(version)) not in keys:
                self.add("warning", where, f"event {event_id} ({kind}) points at {model}:{version}, which is not recorded",
                         "restore the version's file from _quarantine or a backup; until then the event is ignored")
            elif version is None and model not in models:
                self.add("warning", where, f"event {event_id} ({kind}) is about model '{model}', which has no version",
                         "restore the model's files from _quarantine or a backup")

    # -- claims -----------------------------------------------------------------

    def check_claims(self, keys: set[tuple[str, int]]) -> None:
        recorded: dict[str, list[int]] = {}
        for model, version in keys:
            recorded.setdefault(model, []).append(version)
        for model in self.storage.listdir("_claims"):
            if not os.path.isdir(self.storage.local_path(f"_claims/{model}")):
                self.add("warning", f"_claims/{model}", "foreign file among the version claims", "move it out of the lake")
                continue
            numbers = []
            for name in self.storage.listdir(f"_claims/{model}"):
                self.checked["claims"] += 1
                claimed = parse_claim(name)
                if not claimed:
                    self.add("warning", f"_claims/{model}/{name}", "foreign file among the version claims",
                             "move it out of the lake")
                    continue
                numbers.append(claimed[1])
                unrecorded = [n for n in range(claimed[0], claimed[1] + 1) if (model, n) not in keys]
                if unrecorded:
                    which = (f"version {unrecorded[0]}" if len(unrecorded) == 1
                             else f"{len(unrecorded)} versions ({unrecorded[0]}..{unrecorded[-1]})")
                    self.add("info", f"_claims/{model}/{name}",
                             f"{which} of '{model}' claimed but never recorded "
                             "(a register that crashed, or one still running)",
                             "nothing: the numbers stay unused; a gap is safer than a number handed out twice")
            top = max(recorded.get(model, [0]))
            if numbers and top > max(numbers):
                done = None
                if self.repair:
                    self.lake.storage.create_exclusive(f"_claims/{model}/{top}", b'{"by": "catalog doctor"}')
                    done = f"claimed version {top}"
                self.add("error", f"_claims/{model}",
                         f"'{model}' has records up to v{top} but claims only up to v{max(numbers)}: "
                         "the next register would reuse a number",
                         "run `catalog doctor --repair` to claim the recorded numbers", done)

    # -- artifacts --------------------------------------------------------------

    def check_artifacts(self, files: list[str], progress: Progress | None = None) -> None:
        if not files:
            return
        listing = ", ".join(quote_literal(f) for f in files)
        with engine.connect() as con:
            rows = con.sql(
                f"SELECT DISTINCT ON (model, version) model, version, artifact_uri, artifact_sha256, artifact_bytes "
                f"FROM read_parquet([{listing}], union_by_name = true) WHERE model IS NOT NULL ORDER BY model, version"
            ).to_arrow_table().to_pylist()
        for done, (model, version, uri, sha, size) in enumerate(tuple(r.values()) for r in rows):
            if progress is not None:
                progress("verify artifacts", done, len(rows))
            path = local_path(uri) if uri else None
            if path is None:
                continue  # remote: verified by whoever can reach it
            self.checked["artifacts"] += 1
            ref = f"{model}:{version}"
            if not os.path.exists(path):
                self.add("warning", ref, f"artifact {path} is missing",
                         "restore the artifact, or deprecate the version (catalog deprecate ...)")
                continue
            try:
                # checked before any read: a pipe or a device put in its place is never opened
                seen, seen_size = checksum(path, progress) if sha else (regular_artifact(path), None)
            except ArtifactNotRegular as exc:
                self.add("error", ref, f"artifact {exc.path} is {exc.kind}{exc.detail}, not a regular file or a folder of them",
                         "restore the artifact as it was registered, or deprecate the version (catalog deprecate ...)")
                continue
            if not sha:
                continue
            if seen != sha:
                self.add("error", ref, f"artifact {path} has sha256 {seen}, but {sha} was registered",
                         "the file changed after registration: restore it, or register it as a new version")
            elif size is not None and seen_size != size:
                self.add("error", ref, f"artifact {path} is {seen_size} bytes, but {size} were registered",
                         "restore it, or register it as a new version")
        if progress is not None:
            progress("verify artifacts", len(rows), len(rows))


def _tuples(relation: duckdb.DuckDBPyRelation) -> list[tuple[Any, ...]]:
    """Rows as tuples, through Arrow (fetchall would need pytz for time zones)."""
    return [tuple(r.values()) for r in relation.to_arrow_table().to_pylist()]


def _empty(table: str) -> str:
    """A zero-row SELECT with the columns the row checks read."""
    columns = {*REQUIRED[table], "filename"} | (
        {"artifact_sha256", "artifact_bytes"} if table == "versions" else {"version", "state", "target"}
    )
    kinds = {"version": "BIGINT", "schema_version": "INTEGER"}
    return "SELECT " + ", ".join(f"NULL::{kinds.get(c, 'VARCHAR')} AS \"{c}\"" for c in sorted(columns)) + " WHERE false"
