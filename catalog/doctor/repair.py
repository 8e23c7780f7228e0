"""The one step that writes: apply the fixes the checks attached to their findings.

Fixes run in a safe order, whatever order the findings came in: first damaged
and foreign files leave the tables (moved to ``_quarantine/<utc>/<their path>``,
never deleted), then leftovers are removed (stale temporary files, which hold a
write that was never acknowledged, and the inputs of a compaction whose merged
file holds their records), last what is missing is written (anchors, claims, the event of a decision whose
decider died).
No fix deletes a record. Each distinct fix runs once; a finding's ``repaired``
says what its fixes did.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timezone

from ..lake import Lake
from ..lake.lake import claims_folder, decision_row, decisions_folder
from . import wording as say
from .checks import is_temp
from .findings import (
    Finding,
    FinishCompaction,
    Fix,
    Leave,
    Quarantine,
    RemoveTemp,
    RollForward,
    WriteAnchor,
    WriteClaim,
)

_ORDER = (Quarantine, Leave, RemoveTemp, FinishCompaction, WriteAnchor, WriteClaim, RollForward)


class _Repair:
    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        self.quarantine = f"_quarantine/{stamp}"
        self.moved = False

    def apply(self, fix: Fix) -> str | None:
        storage = self.lake.storage
        if isinstance(fix, Quarantine):
            to = f"{self.quarantine}/{fix.path}"
            try:
                storage.move(fix.path, to)
            except FileNotFoundError:
                return None  # gone meanwhile: nothing to move
            self.moved = True
            return say.moved(to)
        if isinstance(fix, Leave):
            return say.left(fix.path)
        if isinstance(fix, RemoveTemp):
            if not is_temp(fix.path.rsplit("/", 1)[-1]):
                return None  # only ever a temporary file: never a table file
            storage.remove(fix.path)
            return say.DONE_TEMP
        if isinstance(fix, FinishCompaction):
            self.lake.finish_compactions(fix.table)
            return say.DONE_COMPACTION
        if isinstance(fix, WriteAnchor):
            self.lake._ensure_anchor(fix.table)
            return say.DONE_ANCHOR
        if isinstance(fix, WriteClaim):
            storage.create_exclusive(f"{claims_folder(fix.model)}/{fix.version}", say.CLAIM_BODY)
            return say.claimed(fix.version)
        if isinstance(fix, RollForward):
            try:
                row = decision_row(storage.read_bytes(f"{decisions_folder(fix.model)}/{fix.n}"))
            except FileNotFoundError:
                return None
            if row is None:
                return None
            self.lake.append_event(row)  # created only if absent: a decider finishing meanwhile adds nothing
            return say.rolled_forward(row["event_id"])
        raise TypeError(f"not a doctor fix: {fix!r}")


def repair(lake: Lake, findings: Sequence[Finding]) -> tuple[list[Finding], str | None]:
    """Apply the fixes of ``findings``: (the findings, each saying what was done, the
    lake-relative quarantine folder if a file was moved there)."""
    fixes = list(dict.fromkeys(fix for finding in findings for fix in finding.fix))
    fixes.sort(key=lambda fix: _ORDER.index(type(fix)))
    run = _Repair(lake)
    done = {fix: run.apply(fix) for fix in fixes}
    repaired = [
        replace(f, repaired="; ".join(d for d in (done[fix] for fix in f.fix) if d) or None) if f.fix else f
        for f in findings
    ]
    return repaired, run.quarantine if run.moved else None
