"""Decisions on versions: approve, reject, deprecate, deploy, rollback, and ``check``,
which runs exactly the gates an approval or a deployment would run.

Each decision is one event, appended with optimistic concurrency on the model's
decision sequence (``Lake.decide``): the state is read, the rules and gates run,
and the decision takes the model's next sequence number only if no other decision
took it meanwhile; otherwise the state is read and the rules run again. A refusal
writes nothing. A gate report refuses in one way (:func:`raise_failures`), so
``check`` and the commands agree by construction.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from . import resolving
from . import validate as check
from .errors import GateFailed, IllegalTransition, NoRollbackCandidate, NotRollbackCandidate, TargetNotDeployed
from .policy import GateResult, approval_gates, deploy_gates, failures
from .reading import rollback_options
from .records import Event, GateReport, Version
from .schema import SCHEMA_VERSION
from .session import Session

# The gate of the lifecycle rules (what state a version must be in, what a target must
# not already run): it appears in a report only when it fails, and refuses as an
# IllegalTransition rather than a GateFailed.
_LIFECYCLE = "state"


def approve(s: Session, model: str, version: int, note: str | None) -> Event:
    check.name(model)
    check.version(version)
    note = check.text(note, "note")

    def attempt(after: datetime | None) -> dict[str, Any]:
        report = approval_report(s, model, version)
        raise_failures("approval", report)
        state = "approved" if report.approvals >= report.quorum else None
        return event_row(s, model, version, "approve", after, state=state, note=note, evidence=report.evidence())

    return decide(s, model, attempt)


def gate_report(s: Session, model: str, version: int, target: str | None) -> GateReport:
    """What ``check`` answers: the report of an approval, or of a deployment to ``target``."""
    check.name(model)
    check.version(version)
    if target is not None:
        check.target(target)
        return deploy_report(s, model, version, target)[0]
    return approval_report(s, model, version)


def approval_report(s: Session, model: str, version: int) -> GateReport:
    current = s.version(model, version)
    config = s.config
    rules = config.rules_for(model, current.owner)
    prior = [r["actor"] for r in s.q("approvers", model=model, version=version)]
    champion_rows = s.q("champion", model=model, version=version)
    champion = Version.from_row(champion_rows[0]) if champion_rows else None
    gates = approval_gates(current, s.actor, rules, champion, prior)
    if current.state != "candidate":
        gates.insert(0, GateResult(_LIFECYCLE, False, why_not("approve", current), current.state, "candidate"))
    return GateReport(
        model=model, version=version, action="approve", actor=s.actor,
        passed=not failures(gates), gates=gates, policy_source=s.policy_source(),
        policy_sha256=config.sha256, approvals=len(check.people(prior)) + 1, quorum=rules.approvals,
        subject=current,
    )


def deploy_report(s: Session, model: str, version: int, target: str) -> tuple[GateReport, int | None]:
    """The gates of deploying to ``target``, lifecycle rules included, and the version
    ``target`` runs now (None when it runs none)."""
    current = s.version(model, version)
    config = s.config
    approvers = [r["actor"] for r in s.q("approvers", model=model, version=version)]
    ran_on = [r["target"] for r in s.q("deployed_targets", model=model, version=version)]
    running = s.q("deployment", model=model, target=target)
    previous = running[0]["version"] if running else None
    gates = deploy_gates(current, target, config.target_rules(target), approvers, ran_on)
    if previous == version:
        gates.insert(0, GateResult(_LIFECYCLE, False, f"'{target}' already runs {model} v{version}", previous, "another version"))
    if current.state != "approved":
        gates.insert(0, GateResult(_LIFECYCLE, False, why_not("deploy", current), current.state, "approved"))
    report = GateReport(
        model=model, version=version, action="deploy", actor=s.actor, passed=not failures(gates),
        gates=gates, policy_source=s.policy_source(), policy_sha256=config.sha256, target=target, subject=current,
    )
    return report, previous


def transition(s: Session, model: str, version: int, kind: str, state: str, note: str | None, *,
               allowed: tuple[str, ...]) -> Event:
    """A change of state with no gates (reject, deprecate), allowed from ``allowed`` only."""
    check.name(model)
    check.version(version)
    note = check.text(note, "note")

    def attempt(after: datetime | None) -> dict[str, Any]:
        current = s.version(model, version)
        if current.state not in allowed:
            raise IllegalTransition(
                why_not(kind, current), model=model, version=version, state=current.state, action=kind
            )
        return event_row(s, model, version, kind, after, state=state, note=note, evidence={"from_state": current.state})

    return decide(s, model, attempt)


def deploy(s: Session, model: str, version: int, target: str, note: str | None) -> Event:
    check.name(model)
    check.version(version)
    check.target(target)
    note = check.text(note, "note")

    def attempt(after: datetime | None) -> dict[str, Any]:
        report, previous = deploy_report(s, model, version, target)
        raise_failures("deployment", report)
        evidence = {"from_version": previous, **report.evidence()}
        return event_row(s, model, version, "deploy", after, target=target, note=note, evidence=evidence)

    return decide(s, model, attempt)


def rollback(s: Session, model: str, target: str, note: str, to: int | None) -> Event:
    check.name(model)
    check.target(target)
    note = check.text(note, "rollback note", required=True)
    if to is not None:
        check.version(to)

    def attempt(after: datetime | None) -> dict[str, Any]:
        s.require_model(model)
        running = s.q("deployment", model=model, target=target)
        if not running:
            raise TargetNotDeployed(model=model, target=target, detail=", so there is nothing to roll back")
        found = rollback_options(s, model, target)
        options, excluded = found.candidates, found.excluded
        if to is None:
            chosen = options[0] if options else None
        else:
            chosen = next((c for c in options if c.version == to), None)
        if chosen is None:
            named = next((e for e in excluded if e.version == to), None)
            if named is not None:
                raise NotRollbackCandidate(named.detail, model=model, target=target, version=named.version, reason=named.reason)
            if not options:
                raise NoRollbackCandidate.because(model, target, [(e.version, e.reason, e.detail) for e in excluded])
            listed = ", ".join(f"v{c.version}" for c in options)
            raise NoRollbackCandidate(f" at version {to} (candidates: {listed})", model=model, target=target)
        return event_row(
            s, model, chosen.version, "rollback", after, target=target, note=note,
            evidence={"from_version": running[0]["version"], "rank": chosen.rank},
        )

    return decide(s, model, attempt)


def record(s: Session, model: str, version: int | None, kind: str, *, state: str | None = None,
           target: str | None = None, note: str | None = None, evidence: dict[str, Any] | None = None) -> Event:
    """Append one event by this session's actor, now, as a decision on ``model`` with no
    rule to check (a redaction's record); returns it."""
    return decide(s, model, lambda after: event_row(s, model, version, kind, after, state=state, target=target,
                                                    note=note, evidence=evidence))


def decide(s: Session, model: str, attempt: Callable[[datetime | None], dict[str, Any]]) -> Event:
    """Take the model's next decision with the event ``attempt`` builds after checking the
    rules on the state it reads (run again whenever another decision came first)."""
    row = s.lake.decide(model, attempt, lambda event_id: _recorded(s, event_id),
                        lambda n: resolving.publish(s, model, n))
    s.auto_compact("events")
    return Event.from_row(row)


def _recorded(s: Session, event_id: str) -> bool:
    """Whether the lake's reader sees the event ``event_id`` (in whatever file)."""
    literal = event_id.replace("'", "''")
    rows = s.reader().user_query(f"select count(*) as n from events where event_id = '{literal}'")[1]
    return bool(rows[0]["n"])


def event_row(s: Session, model: str, version: int | None, kind: str, after: datetime | None, *,
              state: str | None = None, target: str | None = None, note: str | None = None,
              evidence: dict[str, Any] | None = None) -> dict[str, Any]:
    """The row of one event by this session's actor, now: later than ``after`` (the time of
    the model's decision before it), whatever this machine's clock says."""
    at = s.clock()
    if after is not None and at <= after:
        at = after + timedelta(microseconds=1)
    return {
        "schema_version": SCHEMA_VERSION,
        "event_id": f"{at.strftime('%Y%m%dT%H%M%S%fZ')}-{s.lake._new_id()}",
        "at": at,
        "actor": s.actor,
        "model": model,
        "version": version,
        "kind": kind,
        "state": state,
        "target": target,
        "note": note,
        "evidence": json.dumps(evidence or {}, sort_keys=True),
    }


def raise_failures(action: str, report: GateReport) -> None:
    """The one way a report refuses: ``approve``, ``deploy`` and ``check`` agree by construction."""
    failed = [g for g in report.gates if not g.passed]
    lifecycle = next((g for g in failed if g.gate == _LIFECYCLE), None)
    if lifecycle is not None:
        state = report.subject.state if report.subject is not None else None
        raise IllegalTransition(
            lifecycle.detail, model=report.model, version=report.version, state=state, action=report.action
        )
    if failed:
        raise GateFailed(
            "; ".join(f"{g.gate}: {g.detail}" for g in failed),
            action=action, model=report.model, version=report.version, count=len(failed), failures=failed,
        )


def why_not(action: str, v: Version) -> str:
    """Why ``action`` is refused on a version in its current state, and what to do."""
    ref = f"version {v.version} of '{v.model}'"
    if action == "deploy":
        if v.state == "candidate":
            return f"{ref} is a candidate; approve it before deploying: catalog approve {v.model} {v.version}"
        return f"{ref} is {v.state}; only approved versions deploy (see `catalog history {v.model}`)"
    if v.state == {"approve": "approved", "reject": "rejected", "deprecate": "deprecated"}[action]:
        return f"{ref} is already {v.state}"
    if action == "approve":
        return f"{ref} is {v.state}; a {v.state} version cannot be approved again: register a new version"
    if action == "reject":
        if v.state == "approved":
            return f"{ref} is approved; retire it instead: catalog deprecate {v.model} {v.version} --note WHY"
        return f"{ref} is {v.state}; only candidates can be rejected"
    if v.state == "candidate":
        return f"{ref} is a candidate, not approved; reject it instead: catalog reject {v.model} {v.version} --note WHY"
    return f"{ref} is {v.state}; only approved versions can be deprecated"
