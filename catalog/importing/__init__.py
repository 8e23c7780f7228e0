"""Bringing a registry across from another system: ``catalog import mlflow`` and ``catalog import gto``.

Plan, then commit (as a maintenance step does). Each reader (:mod:`.mlflow`, :mod:`.gto`)
turns its source into a :class:`Plan`: versions with their original numbers, times and
actors, and the decisions the source recorded, each with an ``origin`` (system, source,
id), in plain values (nothing of the source's library leaves the reader). :func:`apply`
drops what the lake already holds from this source (a re-run imports only what is new),
simulates the lifecycle over what remains (an alias or stage assignment of a candidate
gets an approval first, recorded as the importer's with a note saying why), checks every
clash with the lake, and only then writes: the versions in one ``register_many`` (all or
nothing), then the decisions, oldest first, through ``Registry.import_event``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from .. import validate as check
from ..errors import CatalogError, ImportConflict, ImportUnsupported, LakeNotFound
from ..progress import ticker
from ..records import Record

if TYPE_CHECKING:
    from ..registry import Registry

__all__ = ["ImportReport", "Plan", "PlannedEvent", "PlannedVersion", "apply", "import_gto", "import_mlflow"]

TICK = timedelta(microseconds=1)  # how far apart two decisions the source dates alike are recorded
MAX_LISTED = 5  # conflicts named in the one-line refusal (the report's JSON field holds them all)


@dataclass
class PlannedVersion:
    """One version to register: ``record`` holds ``register_many``'s keywords."""

    model: str
    record: dict[str, Any]
    origin: dict[str, str]
    label: str  # how the source names it, for messages ("MLflow churn v3", "GTO tag churn@v1.0.0")

    @property
    def id(self) -> str:
        return self.origin["id"]

    @property
    def version(self) -> int | None:
        number = self.record.get("version")
        return int(number) if number is not None else None


@dataclass
class PlannedEvent:
    """One decision the source recorded. ``version_id`` is the origin id of the version it
    concerns (None for the whole model); ``kind`` is an event kind, or ``retire`` (reject a
    candidate, deprecate an approved version, nothing for one already retired) or
    ``retire-all`` (retire every version of the model)."""

    model: str
    version_id: str | None
    kind: str
    at: datetime
    actor: str
    origin: dict[str, str]
    label: str
    target: str | None = None
    note: str | None = None
    tags: dict[str, str] | None = None
    description: str | None = None

    @property
    def id(self) -> str:
        return self.origin["id"]


@dataclass
class Plan:
    """What a source holds, in the catalog's terms; ``not_brought`` says what is left behind and why."""

    system: str
    source: str
    models: list[str] = field(default_factory=list)
    versions: list[PlannedVersion] = field(default_factory=list)
    events: list[PlannedEvent] = field(default_factory=list)
    not_brought: list[str] = field(default_factory=list)

    def origin(self, id: str, **more: str | None) -> dict[str, str]:
        """The origin of one record of this source: system, source, id and ``more`` (None left out)."""
        return {"system": self.system, "source": self.source, "id": id,
                **{k: v for k, v in more.items() if v is not None and v != ""}}


@dataclass(frozen=True)
class ImportReport(Record):
    """What an import brought (or, with ``dry_run``, would bring) into the lake."""

    system: str
    source: str
    dry_run: bool
    models: list[str]
    versions: int
    events: int
    approvals_added: int
    already_imported: int
    not_brought: list[str]


def import_mlflow(reg: Registry, tracking_uri: str, *, dry_run: bool = False) -> ImportReport:
    """``Registry.import_mlflow``: the MLflow registry at ``tracking_uri``, brought into the lake."""
    from . import mlflow

    return apply(reg, mlflow.read(tracking_uri, reg.progress), dry_run=dry_run)


def import_gto(reg: Registry, repo: str, *, dry_run: bool = False) -> ImportReport:
    """``Registry.import_gto``: the GTO registry in the git repository ``repo``, brought into the lake."""
    from . import gto

    return apply(reg, gto.read(repo, reg.progress), dry_run=dry_run)


def apply(reg: Registry, plan: Plan, *, dry_run: bool = False) -> ImportReport:
    """Write what ``plan`` holds that the lake does not have yet; refuse, writing nothing,
    when any of it clashes with the lake. With ``dry_run``, check everything and write nothing."""
    exists = _has_lake(reg)
    known = reg.origins(plan.system, plan.source) if exists else set()
    lake = _LakeState.read(reg, plan) if exists else _LakeState({}, {}, {}, set(), {}, {})
    versions = [v for v in plan.versions if v.id not in known]
    conflicts = _version_conflicts(plan, versions, lake)
    events, approvals, skipped = _decisions(reg, plan, versions, known, lake, conflicts)
    if conflicts:
        shown = "; ".join(conflicts[:MAX_LISTED]) + (f"; and {len(conflicts) - MAX_LISTED} more" if len(conflicts) > MAX_LISTED else "")
        raise ImportConflict(shown, source=plan.source, conflicts=conflicts)
    already = len(plan.versions) - len(versions) + skipped
    touched = sorted({v.model for v in versions} | {e.model for e in events})
    report = ImportReport(plan.system, plan.source, dry_run, touched, len(versions), len(events), approvals,
                          already, list(plan.not_brought))
    if dry_run:
        return report
    numbers = _register(reg, plan, versions)
    lake.numbers.update(numbers)
    tick = ticker(reg.progress, f"import {plan.system} decisions", len(events))
    for event in events:
        number = lake.numbers[event.version_id][1] if event.version_id is not None else None
        reg.import_event(event.model, number, event.kind, at=event.at, actor=event.actor, origin=event.origin,
                         target=event.target, note=event.note, tags=event.tags, description=event.description)
        if tick is not None:
            tick()
    if tick is not None:
        tick.finish()
    return report


# -- the lake as the import finds it ------------------------------------------------


@dataclass
class _LakeState:
    versions: dict[tuple[str, int], str | None]  # (model, version) -> origin id when it came from this source
    states: dict[tuple[str, int], str]
    numbers: dict[str, tuple[str, int]]  # origin id of this source -> (model, version)
    ours: set[str]  # models holding a record from this source
    last_decision: dict[str, datetime]
    running: dict[tuple[str, str], int]  # (model, target) -> version
    # current (description, tags) of each version, and of each model itself (version None)
    meta: dict[tuple[str, int | None], tuple[str | None, dict[str, str]]] = field(default_factory=dict)

    @classmethod
    def read(cls, reg: Registry, plan: Plan) -> _LakeState:
        def mine(origin: Any) -> str | None:
            origin = dict(origin or {})
            same = origin.get("system") == plan.system and origin.get("source") == plan.source
            return origin.get("id") if same else None

        state = cls({}, {}, {}, set(), {}, {})
        for row in reg.sql("select model, version, state, origin, description, tags from model_versions").rows:
            key = (row["model"], int(row["version"]))
            state.meta[key] = (row["description"], dict(row["tags"] or {}))
            state.versions[key] = mine(row["origin"])
            state.states[key] = row["state"]
            if state.versions[key] is not None:
                state.numbers[state.versions[key]] = key  # type: ignore[index]
                state.ours.add(row["model"])
        for row in reg.sql('select model, max("at") as last_at, list(origin) as origins from events group by model').rows:
            state.last_decision[row["model"]] = row["last_at"]
            if any(mine(o) for o in row["origins"] or []):
                state.ours.add(row["model"])
        for row in reg.sql("select model, target, version from deployments").rows:
            state.running[(row["model"], row["target"])] = int(row["version"])
        edits = reg.sql('select model, kind, description, tags, tags_deleted from events where version is null and '
                        "kind in ('create', 'describe', 'tag') order by model, \"at\"").rows
        for row in edits:  # what the model itself says (the models view falls back on its versions)
            description, tags = state.meta.get((row["model"], None), (None, {}))
            if row["kind"] in ("create", "describe"):
                description = row["description"]
            if row["kind"] in ("create", "tag"):
                tags = {k: v for k, v in tags.items() if k not in (row["tags_deleted"] or [])} | dict(row["tags"] or {})
            state.meta[(row["model"], None)] = (description, tags)
        return state

    def models(self) -> set[str]:
        return {m for m, _ in self.versions} | set(self.last_decision)


def _has_lake(reg: Registry) -> bool:
    try:
        reg.counts()
    except LakeNotFound:
        return False
    return True


def _version_conflicts(plan: Plan, versions: list[PlannedVersion], lake: _LakeState) -> list[str]:
    conflicts = []
    present = lake.models()
    for model in sorted({v.model for v in versions} | {e.model for e in plan.events}):
        if model in present and model not in lake.ours:
            conflicts.append(f"model '{model}' is already in the lake and was not imported from this source")
    for v in versions:
        if v.model in lake.ours and v.version is not None and (v.model, v.version) in lake.versions:
            conflicts.append(f"{v.label} would be {v.model} v{v.version}, which the lake already holds")
    return conflicts


# -- decisions: lifecycle simulated before anything is written ------------------------


def _decisions(reg: Registry, plan: Plan, versions: list[PlannedVersion], known: set[str], lake: _LakeState,
               conflicts: list[str]) -> tuple[list[PlannedEvent], int, int]:
    """The events to write, oldest first per model, with the approvals the lifecycle needs;
    how many approvals were added and how many planned decisions the lake already holds."""
    # Each version by its origin id: (model, number), or a stand-in number (negative)
    # for one register_many numbers, until it is written.
    key_of = dict(lake.numbers)
    state = dict(lake.states)
    for i, v in enumerate(versions):
        key_of[v.id] = (v.model, v.version if v.version is not None else -i - 1)
        state[key_of[v.id]] = "candidate"
    meta = dict(lake.meta)
    for v in versions:
        meta[key_of[v.id]] = (v.record.get("description"), dict(v.record.get("tags") or {}))
    sim = _Lifecycle(reg.actor, key_of, state, {k: (k[0], n) for k, n in lake.running.items()}, plan.not_brought,
                     meta)
    by_model: dict[str, list[PlannedEvent]] = defaultdict(list)
    for e in plan.events:
        by_model[e.model].append(e)
    out: list[PlannedEvent] = []
    skipped = 0
    for model, planned in by_model.items():
        planned.sort(key=lambda e: e.at)
        latest = lake.last_decision.get(model)
        previous = latest
        for e in planned:
            if e.id in known:
                skipped += 1
                continue
            if e.version_id is not None and e.version_id not in key_of:
                skipped += 1
                plan.not_brought.append(f"{e.label}: its version is no longer in the lake (deleted there)")
                continue
            for step in sim.steps(e):
                if previous is not None and step.at <= previous:
                    if previous is latest:
                        conflicts.append(f"{e.label} is dated {step.at.isoformat()}, not after the lake's latest "
                                         f"decision on '{model}' ({latest.isoformat()})")
                        break
                    step = replace(step, at=previous + TICK)  # dated alike in the source: kept in order
                previous = step.at
                _validated(plan, step)
                out.append(step)
    return out, sim.approvals, skipped


class _Lifecycle:
    """The catalog's lifecycle rules replayed over the planned decisions, so that every
    event is known to be accepted before the first is written."""

    def __init__(self, importer: str, key_of: dict[str, tuple[str, int]], state: dict[tuple[str, int], str],
                 running: dict[tuple[str, str], tuple[str, int]], not_brought: list[str],
                 meta: dict[tuple[str, int | None], tuple[str | None, dict[str, str]]]) -> None:
        self.importer, self.key_of, self.state, self.running = importer, key_of, state, running
        self.not_brought, self.meta = not_brought, meta
        self.approvals = 0

    def steps(self, e: PlannedEvent) -> Iterable[PlannedEvent]:
        """The events one planned decision becomes, given the states so far (updated)."""
        key = self.key_of[e.version_id] if e.version_id is not None else None
        if e.kind == "approve":
            assert key is not None
            if self.state.get(key) == "candidate":
                self.state[key] = "approved"
                yield e
        elif e.kind == "deploy":
            assert key is not None and e.target is not None
            target = e.target
            now = self.state.get(key)
            if now not in ("candidate", "approved"):
                self.not_brought.append(f"{e.label}: the version is {now} here, and only approved versions deploy")
                return
            if self.running.get((e.model, target)) == key:
                return
            if now == "candidate":
                self.state[key] = "approved"
                self.approvals += 1
                yield replace(e, kind="approve", actor=self.importer, target=None, at=e.at - TICK,
                              origin={**e.origin, "id": e.id + "+approve"},
                              note=f"approved by the import: {e.label} puts this version in service, and "
                                   f"the catalog deploys approved versions only")
            self.running[(e.model, target)] = key
            yield e
        elif e.kind == "undeploy":
            assert e.target is not None
            runs = self.running.get((e.model, e.target))
            if runs is None or (key is not None and runs != key):
                return  # the target runs another version (or nothing) by now
            del self.running[(e.model, e.target)]
            yield replace(e, version_id=None)
        elif e.kind in ("create", "describe", "tag"):
            # What the source says now: written only where it differs from the lake's.
            where = (e.model, key[1] if key is not None else None)
            description, tags = self.meta.get(where, (None, {}))
            if e.kind == "create":
                self.meta[where] = (e.description, dict(e.tags or {}))
                yield e
            elif e.kind == "describe" and e.description != description:
                self.meta[where] = (e.description, tags)
                yield e
            elif e.kind == "tag":
                wanted = e.tags or {}
                changed = {k: v for k, v in wanted.items() if tags.get(k) != v}
                gone = sorted(tags.keys() - wanted.keys())
                if gone:
                    self.not_brought.append(f"{e.label}: tag(s) {', '.join(gone)} deleted there stay here "
                                            "(an imported decision sets tags, it cannot delete one)")
                if changed:
                    self.meta[where] = (description, {**tags, **changed})
                    yield replace(e, tags=changed)
        elif e.kind in ("retire", "retire-all"):
            ids = {k: i for i, k in self.key_of.items()}  # this source's versions only
            keys = [key] if key is not None else sorted(k for k in ids if k[0] == e.model)
            for k in keys:
                now = self.state.get(k)
                if now not in ("candidate", "approved"):
                    continue
                self.state[k] = "rejected" if now == "candidate" else "deprecated"
                more = "" if key is not None else f"+{ids[k]}"
                yield replace(e, kind="reject" if now == "candidate" else "deprecate", version_id=ids[k],
                              origin={**e.origin, "id": e.id + more})
                e = replace(e, at=e.at + TICK)
        else:
            yield e


def _validated(plan: Plan, e: PlannedEvent) -> None:
    """What ``import_event`` would refuse as malformed, refused now, before anything is written."""
    try:
        check.actor(e.actor)
        if e.target is not None:
            check.target(e.target)
        check.text(e.note, "note")
        check.text(e.description, "description")
        check.mapping(e.tags, "tag")
    except CatalogError as exc:
        raise ImportUnsupported(str(exc), what=e.label, source=plan.source) from None


# -- versions ---------------------------------------------------------------------


def _register(reg: Registry, plan: Plan, versions: list[PlannedVersion]) -> dict[str, tuple[str, int]]:
    if not versions:
        return {}
    records = [{**v.record, "model": v.model, "origin": v.origin, "allow_missing_data": True} for v in versions]
    try:
        written = reg.register_many(records, capture_git=False)
    except CatalogError as exc:
        # register_many names the record by its index: name it as the source does
        text = str(exc)
        if text.startswith("record ") and text[7:].partition(":")[0].isdigit():
            index, _, rest = text[7:].partition(":")
            raise type(exc)(f"{versions[int(index)].label}:{rest}", **exc.fields) from None
        raise
    return {v.id: (w.model, w.version) for v, w in zip(versions, written)}


def utc_from_millis(ms: int | None) -> datetime | None:
    """A time the source keeps in milliseconds since the epoch, as a UTC datetime."""
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc) if ms is not None else None
