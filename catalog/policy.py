"""Promotion gates as pure functions over records: no I/O, no clock.

People are compared by :func:`catalog.validate.identity_key` (NFKC, case folded)
wherever a gate compares them: 'Bob' approving counts as bob.

Each gate returns a :class:`GateResult` saying what it checked, what it saw,
what it expected and whether it passed. ``approve`` and ``deploy`` record the
list as evidence on their event; ``catalog check`` shows it without writing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .config import Rules, TargetRule
from .records import Record, Version
from .validate import identity_key, people, same_person


@dataclass(frozen=True)
class GateResult(Record):
    gate: str
    passed: bool
    detail: str
    seen: Any = None
    expected: Any = None


def _present(version: Version, field: str) -> bool:
    value = getattr(version, field)
    return value not in (None, "", [], {}, ())


def approval_gates(
    version: Version,
    actor: str,
    rules: Rules,
    champion: Version | None,
    prior_approvers: Sequence[str],
) -> list[GateResult]:
    """Every gate an approval of ``version`` by ``actor`` must pass."""
    results = []
    for field in rules.required:
        ok = _present(version, field)
        results.append(GateResult(f"required:{field}", ok, f"{field} is {'set' if ok else 'missing'}", ok, True))
    for metric, threshold in rules.metrics.items():
        seen = version.metrics.get(metric)
        ok = seen is not None and threshold.holds(seen)
        detail = f"{metric} = {seen:g} (needs {threshold})" if seen is not None else f"{metric} is not recorded (needs {threshold})"
        results.append(GateResult(f"metric:{metric}", ok, detail, seen, str(threshold)))
    for metric, margin in rules.challenger.items():
        if champion is None:
            results.append(GateResult(f"challenger:{metric}", True, "no approved champion to compare with", None, str(margin)))
            continue
        new, old = version.metrics.get(metric), champion.metrics.get(metric)
        if new is None or old is None:
            missing = "this version" if new is None else f"champion v{champion.version}"
            results.append(GateResult(f"challenger:{metric}", False, f"{metric} is not recorded on {missing}", None, str(margin)))
            continue
        delta = new - old
        ok = margin.holds(delta)
        results.append(GateResult(
            f"challenger:{metric}", ok,
            f"{metric} {new:g} vs champion v{champion.version} {old:g}: change {delta:+g} (allowed {margin})",
            round(delta, 12), str(margin),
        ))
    if rules.approvers is not None:
        ok = identity_key(actor) in people(rules.approvers)
        results.append(GateResult("approver", ok, f"{actor} is {'' if ok else 'not '}on the approver list", actor, list(rules.approvers)))
    if rules.four_eyes:
        ok = not same_person(actor, version.created_by)
        results.append(GateResult(
            "four-eyes", ok,
            f"approver {actor} {'is not' if ok else 'is'} the registrant {version.created_by}", actor, f"not {version.created_by}",
        ))
    if identity_key(actor) in people(prior_approvers):
        results.append(GateResult("distinct-approver", False, f"{actor} has already approved this version", actor, "a new approver"))
    return results


def deploy_gates(
    version: Version,
    target: str,
    rules: Sequence[TargetRule],
    approvers: Sequence[str],
    deployed_to: Sequence[str],
) -> list[GateResult]:
    """Every rule of the targets matching ``target``."""
    import fnmatch

    results = []
    for rule in rules:
        if rule.approvers is not None:
            allowed = people(rule.approvers)
            found = sorted({a for a in approvers if identity_key(a) in allowed})
            results.append(GateResult(
                f"target:{rule.pattern}:approver", bool(found),
                f"approved by {', '.join(found)}" if found else f"needs an approval from one of {', '.join(rule.approvers)} (has: {', '.join(approvers) or 'none'})",
                list(approvers), list(rule.approvers),
            ))
        if rule.after is not None:
            earlier = sorted(t for t in deployed_to if fnmatch.fnmatchcase(t, rule.after))
            results.append(GateResult(
                f"target:{rule.pattern}:after", bool(earlier),
                f"ran on {', '.join(earlier)} first" if earlier else f"must run on a {rule.after} target before {target}",
                list(deployed_to), rule.after,
            ))
    return results


def failures(results: Sequence[GateResult]) -> list[GateResult]:
    return [r for r in results if not r.passed]
