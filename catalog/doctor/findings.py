"""What a doctor run reports: findings, each with the fixes ``repair`` would apply.

A fix is a small value naming one repair (move a file to quarantine, remove a
stale temporary file, finish a compaction, write an anchor, a claim or the event of
a decision whose decider died); the
checks only describe fixes, :mod:`catalog.doctor.repair` applies them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union


@dataclass(frozen=True)
class Quarantine:
    """Move the lake file (or link, or folder) at ``path`` to ``_quarantine/<utc>/<path>``."""

    path: str


@dataclass(frozen=True)
class RemoveTemp:
    """Remove the temporary file at ``path``: it holds a write that was never acknowledged."""

    path: str


@dataclass(frozen=True)
class FinishCompaction:
    """Remove the inputs an interrupted compaction of ``table`` left beside its merged file."""

    table: str


@dataclass(frozen=True)
class WriteAnchor:
    """Write the zero-row schema anchor of ``table``."""

    table: str


@dataclass(frozen=True)
class WriteClaim:
    """Claim ``version`` of ``model`` (and so every number below it)."""

    model: str
    version: int


@dataclass(frozen=True)
class RollForward:
    """Write the event decision ``n`` of ``model`` holds: its decider died between its
    claim and its event file (what the model's next decision would do anyway)."""

    model: str
    n: int


@dataclass(frozen=True)
class Leave:
    """Move nothing: the file at ``path`` also holds other records (left to a person)."""

    path: str


Fix = Union[Quarantine, RemoveTemp, FinishCompaction, WriteAnchor, WriteClaim, RollForward, Leave]


@dataclass(frozen=True)
class Finding:
    """One problem: how bad, where, what is wrong, what to do, what ``repair`` did.

    ``fix`` lists what ``repair`` would do about it (nothing when a person must
    decide); it is not part of :meth:`to_dict`.
    """

    severity: str  # "error" (data unreadable or wrong), "warning" (needs a look), "info"
    path: str  # lake-relative path, an artifact path, or MODEL:VERSION
    problem: str
    action: str
    repaired: str | None = None
    fix: tuple[Fix, ...] = field(default=(), compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "path": self.path,
            "problem": self.problem,
            "action": self.action,
            "repaired": self.repaired,
        }


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
