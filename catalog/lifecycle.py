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

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from . import resolving
from . import validate as check
from .errors import (
    GateFailed,
    IllegalTransition,
    ImportOutOfOrder,
    InvalidValue,
    NameTaken,
    NoRollbackCandidate,
    NotRollbackCandidate,
    TargetNotDeployed,
    VersionDeployed,
)
from .policy import GateResult, approval_gates, deploy_gates, failures
from .reading import rollback_options
from .records import Event, GateReport, Version
from .schema import SCHEMA_VERSION
from .session import Session

# The columns of events that a create, describe, tag or rename event sets.
_SET_BY_EVENTS = ("description", "tags", "tags_deleted", "renamed_from")
# The kinds import_event records (a decision made in another system).
IMPORTABLE = ("create", "approve", "reject", "deprecate", "deploy", "undeploy", "tag", "describe", "delete")


@dataclass(frozen=True)
class Imported:
    """A decision made in another system: its original time and actor, and where it came from."""

    at: datetime
    actor: str
    origin: dict[str, str]


# The gate of the lifecycle rules (what state a version must be in, what a target must
# not already run): it appears in a report only when it fails, and refuses as an
# IllegalTransition rather than a GateFailed.
_LIFECYCLE = "state"


def approve(s: Session, model: str, version: int, note: str | None, imported: Imported | None = None) -> Event:
    check.name(model)
    check.version(version)
    note = check.text(note, "note")

    def attempt(after: datetime | None) -> dict[str, Any]:
        if imported is not None:  # decided elsewhere: the lifecycle rule alone, and final
            _follows(s, model, after, imported, "approve")
            current = s.version(model, version)
            if current.state != "candidate":
                raise IllegalTransition(why_not("approve", current), model=model, version=version,
                                        state=current.state, action="approve")
            return event_row(s, model, version, "approve", after, state="approved", note=note,
                             evidence=_evidence(imported), imported=imported)
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
               allowed: tuple[str, ...], imported: Imported | None = None) -> Event:
    """A change of state with no gates (reject, deprecate), allowed from ``allowed`` only."""
    check.name(model)
    check.version(version)
    note = check.text(note, "note")

    def attempt(after: datetime | None) -> dict[str, Any]:
        _follows(s, model, after, imported, kind)
        current = s.version(model, version)
        if current.state not in allowed:
            raise IllegalTransition(
                why_not(kind, current), model=model, version=version, state=current.state, action=kind
            )
        return event_row(s, model, version, kind, after, state=state, note=note,
                         evidence={"from_state": current.state, **_evidence(imported)}, imported=imported)

    return decide(s, model, attempt)


def deploy(s: Session, model: str, version: int, target: str, note: str | None, imported: Imported | None = None) -> Event:
    check.name(model)
    check.version(version)
    check.target(target)
    note = check.text(note, "note")

    def attempt(after: datetime | None) -> dict[str, Any]:
        _follows(s, model, after, imported, "deploy")
        report, previous = deploy_report(s, model, version, target)
        if imported is not None:  # decided elsewhere: the lifecycle rules alone
            report = dataclasses.replace(report, gates=[g for g in report.gates if g.gate == _LIFECYCLE])
            raise_failures("deployment", report)
            evidence = {"from_version": previous, **_evidence(imported)}
        else:
            raise_failures("deployment", report)
            evidence = {"from_version": previous, **report.evidence()}
        return event_row(s, model, version, "deploy", after, target=target, note=note, evidence=evidence,
                         imported=imported)

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
    def checked(after: datetime | None) -> dict[str, Any]:
        with s.one_listing():
            return attempt(after)

    # (The document is computed after the event is written, listed afresh: outside one_listing.)
    row = s.lake.decide(model, checked, lambda event_id: _recorded(s, event_id),
                        lambda n, row: resolving.publish(s, model, n, row))
    s.auto_compact("events")
    return Event.from_row(row)


def _recorded(s: Session, event_id: str) -> bool:
    """Whether the lake's reader sees the event ``event_id`` (in whatever file)."""
    literal = event_id.replace("'", "''")
    rows = s.reader().user_query(f"select count(*) as n from events where event_id = '{literal}'")[1]
    return bool(rows[0]["n"])


def event_row(s: Session, model: str, version: int | None, kind: str, after: datetime | None, *,
              state: str | None = None, target: str | None = None, note: str | None = None,
              evidence: dict[str, Any] | None = None, imported: Imported | None = None,
              **columns: Any) -> dict[str, Any]:
    """The row of one event by this session's actor, now: later than ``after`` (the time of
    the model's decision before it), whatever this machine's clock says. ``columns``: what
    a create, describe, tag or rename event sets (description, tags, tags_deleted,
    renamed_from). An ``imported`` decision keeps its original time and actor instead, and
    this session's go to imported_at and imported_by."""
    unknown = columns.keys() - _SET_BY_EVENTS
    if unknown:
        raise TypeError(f"event_row() got unexpected columns {sorted(unknown)}")
    now = s.clock()
    if imported is not None:
        at, actor = imported.at, imported.actor
    else:
        at, actor = now, s.actor
        if after is not None and at <= after:
            at = after + timedelta(microseconds=1)
    return {
        "schema_version": SCHEMA_VERSION,
        "event_id": f"{at.strftime('%Y%m%dT%H%M%S%fZ')}-{s.lake._new_id()}",
        "at": at,
        "actor": actor,
        "model": model,
        "version": version,
        "kind": kind,
        "state": state,
        "target": target,
        "note": note,
        "evidence": json.dumps(evidence or {}, sort_keys=True),
        **{c: columns.get(c) for c in _SET_BY_EVENTS},
        "origin": imported.origin if imported is not None else None,
        "imported_at": now if imported is not None else None,
        "imported_by": s.actor if imported is not None else None,
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



# -- the events of models' lives beyond approval (#15) --------------------------------


def create_model(s: Session, model: str, description: str | None, tags: Mapping[str, str] | None,
                 note: str | None, imported: Imported | None = None) -> Event:
    check.name(model)
    description = _description(description)
    values = _tags(tags)
    note = check.text(note, "note")

    def attempt(after: datetime | None) -> dict[str, Any]:
        _follows(s, model, after, imported, "create")
        _require_free(s, model, "create")
        return event_row(s, model, None, "create", after, note=note, evidence=_evidence(imported),
                         imported=imported, description=description, tags=values)

    return decide(s, model, attempt)


def undeploy(s: Session, model: str, target: str, note: str | None, imported: Imported | None = None) -> Event:
    check.name(model)
    check.target(target)
    note = check.text(note, "undeploy note", required=imported is None)

    def attempt(after: datetime | None) -> dict[str, Any]:
        _follows(s, model, after, imported, "undeploy")
        s.require_model(model)
        running = s.q("deployment", model=model, target=target)
        if not running:
            raise TargetNotDeployed(model=model, target=target, detail=", so there is nothing to undeploy")
        version = running[0]["version"]
        return event_row(s, model, version, "undeploy", after, target=target, note=note,
                         evidence={"from_version": version, **_evidence(imported)}, imported=imported)

    return decide(s, model, attempt)


def tag(s: Session, model: str, version: int | None, set_: Mapping[str, str], delete: Sequence[str],
        note: str | None, imported: Imported | None = None) -> Event:
    check.name(model)
    if version is not None:
        check.version(version)
    values = _tags(set_)
    if isinstance(delete, str):
        delete = [delete]
    keys = [check.key(k, "tag") for k in delete]
    if len(set(keys)) != len(keys):
        raise InvalidValue("a tag to delete is given twice: give each once")
    both = sorted(set(keys) & set(values))
    if both:
        raise InvalidValue(f"tag {both[0]!r} is both set and deleted: give it once")
    if not values and not keys:
        raise InvalidValue("give a tag to set (KEY=VALUE) or to delete (--delete KEY)")
    note = check.text(note, "note")

    def attempt(after: datetime | None) -> dict[str, Any]:
        _follows(s, model, after, imported, "tag")
        _require(s, model, version)
        return event_row(s, model, version, "tag", after, note=note, evidence=_evidence(imported), imported=imported,
                         tags=values, tags_deleted=keys)

    return decide(s, model, attempt)


def describe(s: Session, model: str, version: int | None, description: str | None, note: str | None,
             imported: Imported | None = None) -> Event:
    check.name(model)
    if version is not None:
        check.version(version)
    description = _description(description)
    note = check.text(note, "note")

    def attempt(after: datetime | None) -> dict[str, Any]:
        _follows(s, model, after, imported, "describe")
        _require(s, model, version)
        return event_row(s, model, version, "describe", after, note=note, evidence=_evidence(imported),
                         imported=imported, description=description)

    return decide(s, model, attempt)


def delete(s: Session, model: str, version: int | None, note: str | None, imported: Imported | None = None) -> Event:
    check.name(model)
    if version is not None:
        check.version(version)
    note = check.text(note, "note")

    def attempt(after: datetime | None) -> dict[str, Any]:
        _follows(s, model, after, imported, "delete")
        evidence = _evidence(imported)
        if version is None:
            s.require_model(model)
            running = s.q("model_deployments", model=model)
            if running:
                d = running[0]
                raise VersionDeployed(what=f"'{model}' (v{d['version']})", model=model, target=d["target"],
                                      version=d["version"])
            # Every version it has now: a version registered later brings the model back.
            evidence["through"] = int(s.q("max_version", model=model)[0]["n"])
        else:
            current = s.version(model, version)
            if current.deployed_to:
                raise VersionDeployed(what=f"version {version} of '{model}'", model=model,
                                      target=current.deployed_to[0], version=version)
        return event_row(s, model, version, "delete", after, note=note, evidence=evidence, imported=imported)

    return decide(s, model, attempt)


def rename(s: Session, model: str, new_name: str, note: str | None) -> Event:
    check.name(model)
    check.name(new_name)
    if new_name == model:
        raise InvalidValue(f"'{model}' already has that name: give another name to rename it to")
    note = check.text(note, "note")

    def attempt(after: datetime | None) -> dict[str, Any]:
        s.require_model(model)
        _require_free(s, new_name, "rename to", renaming=model)
        # The new name's numbers continue after the old's: its claims start with one that
        # holds every number the old name has used (a plain register of the new name then
        # claims the next), and that claim also keeps the new name from being registered
        # by anyone else meanwhile.
        end = max(s.lake.claimed_end(model), int(s.q("max_version", model=model)[0]["n"]))
        if end and not s.lake.reserve_numbers(new_name, end, renamed_from=model):
            raise NameTaken(action="rename to", model=new_name,
                            detail=f"versions of '{new_name}' were registered meanwhile: pick another name")
        return event_row(s, new_name, None, "rename", after, note=note, renamed_from=model,
                         evidence={"from": model, "versions_through": end})

    return decide(s, model, attempt)


def import_event(s: Session, model: str, version: int | None, kind: str, *, at: str | datetime, actor: str,
                 origin: Mapping[str, str], target: str | None = None, note: str | None = None,
                 tags: Mapping[str, str] | None = None, description: str | None = None) -> Event:
    """A decision made in another system, recorded with its original time and actor: no gate
    runs (the evidence says it was imported), the lifecycle rules do."""
    if kind not in IMPORTABLE:
        raise InvalidValue(f"cannot import a {kind!r} event: give one of {', '.join(IMPORTABLE)}")
    imported = Imported(check.moment(at), check.actor(actor), check_origin(origin))
    needs_version = kind in ("approve", "reject", "deprecate", "deploy")
    if needs_version and version is None:
        raise InvalidValue(f"an imported {kind} needs the version it was made on")
    if kind in ("deploy", "undeploy") and target is None:
        raise InvalidValue(f"an imported {kind} needs its target")
    if kind == "create":
        return create_model(s, model, description, tags, note, imported)
    if kind == "undeploy":
        return undeploy(s, model, target or "", note, imported)
    if kind == "tag":
        return tag(s, model, version, tags or {}, (), note, imported)
    if kind == "describe":
        return describe(s, model, version, description, note, imported)
    if kind == "delete":
        return delete(s, model, version, note, imported)
    assert version is not None
    if kind == "approve":
        return approve(s, model, version, note, imported)
    if kind == "deploy":
        return deploy(s, model, version, target or "", note, imported)
    state, allowed = {"reject": ("rejected", ("candidate",)), "deprecate": ("deprecated", ("approved",))}[kind]
    return transition(s, model, version, kind, state, note, allowed=allowed, imported=imported)


def check_origin(origin: Mapping[str, str] | None) -> dict[str, str]:
    """Where an imported record came from: ``system``, ``source`` and ``id`` at least."""
    if not isinstance(origin, Mapping):
        raise InvalidValue("origin must map system, source and id (e.g. {'system': 'mlflow', 'source': URI, 'id': ...})")
    values = check.mapping(origin, "origin")
    missing = [k for k in ("system", "source", "id") if not (values.get(k) or "").strip()]
    if missing:
        raise InvalidValue(f"origin lacks {', '.join(missing)}: an imported record says its system, source and id")
    return values


def _evidence(imported: Imported | None) -> dict[str, Any]:
    if imported is None:
        return {}
    return {"imported": True, "gates_run": False, "decided_in": imported.origin["system"]}


def _follows(s: Session, model: str, after: datetime | None, imported: Imported | None, kind: str) -> None:
    """An imported decision goes after the model's latest decision (the views order by time)."""
    if imported is None:
        return
    latest = s.q("latest_decision", model=model)[0]["at"] if s.lake.exists() else None
    if after is not None and (latest is None or after > latest):
        latest = after
    if latest is not None and imported.at <= latest:
        raise ImportOutOfOrder(kind=kind, model=model, at=imported.at.isoformat(), latest=latest.isoformat(),
                               detail="it is not after the latest decision")


def _require(s: Session, model: str, version: int | None) -> None:
    if version is None:
        s.require_model(model)
    else:
        s.version(model, version)


def _require_free(s: Session, name: str, action: str, renaming: str | None = None) -> None:
    """Refuse a name a model cannot take: a live model's, or one renamed away (reserved)."""
    if not s.lake.exists():
        return
    status = s.q("name_status", model=name)[0]
    if status["renamed_to"] is not None:
        raise NameTaken(action=action, model=name, detail=(
            f"it was renamed to '{status['renamed_to']}' and stays reserved to that model, so that "
            f"{name}:N never means another model; pick another name"))
    if status["live"]:
        raise NameTaken(action=action, model=name, detail=f"a model of that name exists (see `catalog show {name}`)")
    if renaming is not None and status["used"]:
        raise NameTaken(action=action, model=name, detail=(
            "a model of that name was deleted and its name stays reserved to it; pick another name"))


def _description(value: str | None) -> str | None:
    from .fields import BY_NAME
    from .registering import checked_field

    return checked_field(BY_NAME["description"], value)


def _tags(values: Mapping[str, str] | None) -> dict[str, str]:
    from .fields import BY_NAME
    from .registering import checked_field

    if values is not None and not isinstance(values, Mapping):
        raise InvalidValue("tags must map names to values (KEY=VALUE)")
    return checked_field(BY_NAME["tags"], values)
