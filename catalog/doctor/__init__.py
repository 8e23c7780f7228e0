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
* version claims (``_claims/<model>/<n>``, ``<model>`` the name's path segment:
  ``validate.path_segment``) without a record, and records beyond the highest
  claim (the next register would reuse their number); a folder of ``_claims`` or
  ``_decisions`` whose name is not a model's segment is reported, never read;
* the newest decision of each model (``_decisions/<model>/<n>``) whose event is
  not in the lake (its decider died between the two; ``repair`` writes the event
  from the claim, as the model's next decision would);
* with ``verify_artifacts``, the checksum and size of every local artifact.

``repair`` never deletes a record: damaged or foreign files are *moved* to
``_quarantine/<utc>/<their path>``; temporary files older than ``tmp_grace``
are removed (they hold a write that was never acknowledged); missing anchors
and missing claims are written. Claims without a record are left alone: the
number may belong to a register still running, and a gap in the version
numbers is harmless where a number handed out twice is not.

The library never prints: :func:`doctor` returns a :class:`DoctorReport`.

Find, then fix: the checks (:mod:`.checks`) only read and return findings, each
with the fixes ``repair`` would apply (:mod:`.findings`); one repair step
(:mod:`.repair`) applies them; every word is in :mod:`.wording`; the row reads
are the queries of ``doctor.sql`` (:mod:`.rows`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence

from ..errors import LakeNotFound
from ..lake import Lake, open_storage
from ..lake.lease import Leases
from ..progress import Progress
from . import checks as check
from .checks import TABLES
from .findings import DoctorReport, Finding, Fix
from .repair import repair as apply_fixes
from .rows import Rows, artifact_rows

__all__ = ["Check", "DoctorReport", "Finding", "Fix", "TMP_GRACE_SECONDS", "doctor"]

# A temporary file younger than this may belong to a write in progress.
TMP_GRACE_SECONDS = 600.0
SEVERITIES = ("error", "warning", "info")

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
        raise LakeNotFound(lake=os.fspath(lake) if not isinstance(lake, Lake) else lake.storage.location)
    quarantine = None
    with _exclusive(the_lake, repair) as leases:
        findings, checked = _examine(the_lake, repairing=repair, verify_artifacts=verify_artifacts,
                                     tmp_grace=tmp_grace, progress=progress)
        for extra in checks:
            findings.extend(extra(the_lake.root))
        if repair:
            if leases is not None:
                leases.check()  # still ours (renewed): no compaction started meanwhile
            findings, quarantine = apply_fixes(the_lake, findings)
    return DoctorReport(lake=the_lake.storage.location, findings=tuple(findings), checked=checked, repair=repair,
                        quarantine=quarantine)


@contextlib.contextmanager
def _exclusive(lake: Lake, repair: bool) -> Iterator[Leases | None]:
    """A repair moves table files: no compaction (nor another repair) may run meanwhile,
    so it holds both tables' compaction leases (LakeBusy while someone else does). A
    check only reads: it takes nothing, and writes nothing."""
    if not repair:
        yield None
        return
    with Leases(lake.storage, [f"compact-{table}" for table in TABLES]) as held:
        yield held


def _examine(lake: Lake, *, repairing: bool, verify_artifacts: bool, tmp_grace: float,
             progress: Progress | None) -> tuple[list[Finding], dict[str, int]]:
    """Run every check in the order findings are reported: (findings, counts of what was looked at)."""
    storage, root, now = lake.storage, lake.root, time.time()
    findings: list[Finding] = []
    checked = {"files": 0, "versions": 0, "events": 0, "claims": 0, "artifacts": 0}
    sound: dict[str, list[str]] = {}
    for table in TABLES:
        found, sound[table], looked = check.table_files(storage, table, tmp_grace=tmp_grace, now=now)
        findings += found
        checked["files"] += looked
    findings += check.compaction_temps(storage, tmp_grace=tmp_grace, now=now)
    findings += check.anchors(storage)
    found, current, leftovers = check.compactions(lake, sound)
    findings += found
    # A repair removes the leftovers (their records are in the merged file): the row
    # checks read what will be left.
    read = {t: [f for f in sound[t] if f not in leftovers[t]] if repairing else sound[t] for t in TABLES}
    with Rows(read) as rows:
        found, keys = check.version_rows(rows.versions(), root)
        findings += found
        checked["versions"] = len(keys)
        events = rows.events()
        checked["events"] = len(events)
        findings += check.event_rows(events, keys, root)
        findings += check.decisions(storage, {e[0] for e in events})
        for table in TABLES:
            if current[table]:
                findings += check.copies(
                    table, rows.copies(table, current[table]),
                    functools.partial(rows.per_file, table, current[table]),
                    lambda model, version: check.claimed_by(storage, model, version),
                    root,
                )
    found, checked["claims"] = check.claims(check.claim_listing(storage), keys)
    findings += found
    if verify_artifacts and read["versions"]:
        found, checked["artifacts"] = check.artifacts(artifact_rows(read["versions"]), progress)
        findings += found
    return findings, checked
