"""Typed records the API returns. ``to_dict()`` gives the stable JSON keys."""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from datetime import datetime
from typing import Any, TypeVar

T = TypeVar("T", bound="Record")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _map(value: Any) -> dict[str, Any]:
    """Arrow maps arrive as lists of (key, value) pairs."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return dict(value)
    return dict(value)


class _Shape:
    """A record class's fields: their names, the ones a row must give, and the others' defaults."""

    def __init__(self, cls: type) -> None:
        every = fields(cls)
        self.names = frozenset(f.name for f in every)
        self.required = frozenset(f.name for f in every if f.default is MISSING and f.default_factory is MISSING)
        self.defaults = [(f.name, f.default, f.default_factory) for f in every if f.name not in self.required]
        self.plain = (not hasattr(cls, "__post_init__") and all(f.init for f in every)
                      and "__slots__" not in vars(cls))   # (the fields go into the instance's __dict__)


_SHAPES: dict[type, _Shape] = {}


class Record:
    def to_dict(self) -> dict[str, Any]:
        return _plain(asdict(self))  # type: ignore[call-overload]

    @classmethod
    def from_row(cls: type[T], row: dict[str, Any]) -> T:
        """The record of a row (a mapping of column names; columns that are no field are left out).

        Made without the frozen dataclass's ``__init__``, which sets each field through
        ``object.__setattr__`` (half the cost of reading 35,000 events for the site): the
        same fields, the same values, the defaults of the fields the row leaves out. A row
        that lacks a field with no default goes through ``__init__``, for its TypeError."""
        shape = _SHAPES.get(cls)
        if shape is None:
            shape = _SHAPES[cls] = _Shape(cls)
        values = {k: v for k, v in row.items() if k in shape.names}
        cls._adapt(values)
        if not shape.plain or len(values) < len(shape.names) and not shape.required <= values.keys():
            return cls(**values)
        made = object.__new__(cls)
        if len(values) < len(shape.names):
            for name, default, factory in shape.defaults:
                if name not in values:
                    values[name] = default if factory is MISSING else factory()
        made.__dict__.update(values)
        return made

    @classmethod
    def _adapt(cls, values: dict[str, Any]) -> None:
        """Turn a row's values (its columns that are fields) into the fields' own, in place: DuckDB's
        maps, lists and JSON into dicts and lists. The values are a copy the caller made."""


@dataclass(frozen=True)
class Parent(Record):
    model: str
    version: int
    relation: str = "derived"

    def __str__(self) -> str:
        return f"{self.model}:{self.version}"


@dataclass(frozen=True)
class Version(Record):
    """One registered model version, with its current state when read back."""

    model: str
    version: int
    artifact_uri: str
    created_at: datetime
    created_by: str
    artifact_sha256: str | None = None
    artifact_bytes: int | None = None
    owner: str | None = None
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    code_repo: str | None = None
    code_version: str | None = None
    code_dirty: bool | None = None
    runtime_image: str | None = None
    data_refs: list[str] = field(default_factory=list)
    parents: list[Parent] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    dashboards: dict[str, str] = field(default_factory=dict)
    state: str = "candidate"
    state_at: datetime | None = None
    state_by: str | None = None
    deployed_to: list[str] = field(default_factory=list)
    schema_version: int = 1
    # An imported version: where it came from (system, source, id...), and who brought
    # it across when (created_at/created_by keep the original's).
    origin: dict[str, str] = field(default_factory=dict)
    imported_at: datetime | None = None
    imported_by: str | None = None

    @classmethod
    def _adapt(cls, values: dict[str, Any]) -> None:
        for key in ("tags", "metrics", "params", "dashboards", "origin"):
            values[key] = _map(values.get(key))
        values["data_refs"] = list(values.get("data_refs") or [])
        values["parents"] = [Parent(**p) for p in values.get("parents") or []]
        values["deployed_to"] = list(values.get("deployed_to") or [])

    @property
    def ref(self) -> str:
        return f"{self.model}:{self.version}"


@dataclass(frozen=True)
class Event(Record):
    """One lifecycle decision (or, in history, a registration).

    ``description``, ``tags`` and ``tags_deleted`` are what a create, describe or tag
    event set; ``renamed_from`` the old name of a rename (whose ``model`` is the new
    one). An imported event keeps the original ``at`` and ``actor`` and says who
    imported it when (``imported_by``, ``imported_at``) and from where (``origin``)."""

    event_id: str
    at: datetime
    actor: str
    model: str
    kind: str
    version: int | None = None
    state: str | None = None
    target: str | None = None
    note: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    tags_deleted: list[str] = field(default_factory=list)
    renamed_from: str | None = None
    origin: dict[str, str] = field(default_factory=dict)
    imported_at: datetime | None = None
    imported_by: str | None = None

    @classmethod
    def _adapt(cls, values: dict[str, Any]) -> None:
        raw = values.get("evidence")
        values["evidence"] = json.loads(raw) if isinstance(raw, str) and raw else (raw or {})
        values["tags"] = _map(values.get("tags"))
        values["origin"] = _map(values.get("origin"))
        values["tags_deleted"] = list(values.get("tags_deleted") or [])


@dataclass(frozen=True)
class Deployment(Record):
    model: str
    target: str
    version: int
    since: datetime
    by: str
    artifact_uri: str
    how: str = "deploy"
    note: str | None = None


@dataclass(frozen=True)
class Candidate(Record):
    model: str
    target: str
    version: int
    rank: int
    last_deployed_at: datetime
    artifact_uri: str


@dataclass(frozen=True)
class Exclusion(Record):
    """A version that ran on a target and that the target cannot roll back to, and why.

    ``reason`` is ``running`` (the target runs it now), ``rolled back`` (a rollback
    moved the target away from it and no deploy brought it back since) or the
    version's state when it is no longer approved (``deprecated``); ``detail`` says
    it in one sentence with when, who and the rollback's note.
    """

    model: str
    target: str
    version: int
    reason: str
    detail: str
    last_deployed_at: datetime
    artifact_uri: str
    decided_at: datetime | None = None
    decided_by: str | None = None
    note: str | None = None
    rolled_back_to: int | None = None


@dataclass(frozen=True)
class RollbackOptions(Record):
    """What a target can roll back to (first choice first) and what ran there but cannot, and why."""

    model: str
    target: str
    candidates: list[Candidate]
    excluded: list[Exclusion]


@dataclass(frozen=True)
class LineageEdge(Record):
    child_model: str
    child_version: int
    parent_kind: str
    parent: str
    depth: int
    parent_model: str | None = None
    parent_version: int | None = None
    relation: str | None = None


@dataclass(frozen=True)
class Lineage(Record):
    model: str
    version: int
    ancestors: list[LineageEdge]
    descendants: list[LineageEdge]


@dataclass(frozen=True)
class ModelSummary(Record):
    """A model as ``catalog list`` presents it.

    ``description`` and ``tags`` are those set on the model itself (create, describe,
    tag), else those of the latest version that has one; ``owner`` is the latest
    version's that has one (the ``models`` view declares the rule; ``show`` and the
    site use it). A model created with no version yet has ``versions == 0`` and no
    ``latest_version``.
    """

    model: str
    versions: int
    latest_version: int | None
    updated_at: datetime
    owner: str | None = None
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    latest_approved: int | None = None
    deployed_to: dict[str, int] = field(default_factory=dict)
    created_at: datetime | None = None

    @classmethod
    def _adapt(cls, values: dict[str, Any]) -> None:
        values["tags"] = _map(values.get("tags"))


@dataclass(frozen=True)
class Counts(Record):
    """How much a lake holds, as the README, ``catalog demo`` and the site count it.

    ``versions`` counts registrations; ``decisions`` counts lifecycle events
    (approve, reject, deprecate, deploy, rollback, redact...), never a registration.
    """

    models: int
    versions: int
    decisions: int


@dataclass(frozen=True)
class ModelInfo(Record):
    """A model as ``catalog show MODEL`` presents it (description and tags: the model's
    own, see :class:`ModelSummary`)."""

    model: str
    owner: str | None
    description: str | None
    tags: dict[str, str]
    versions: list[Version]
    deployments: list[Deployment]
    latest_approved: int | None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class QueryResult(Record):
    columns: list[str]
    rows: list[dict[str, Any]]


@dataclass(frozen=True)
class GateReport(Record):
    """What the gates said about an approval or a deployment (``catalog check``)."""

    model: str
    version: int
    action: str
    actor: str
    passed: bool
    gates: list[Any]
    policy_source: str | None
    policy_sha256: str
    approvals: int = 0
    quorum: int = 1
    target: str | None = None
    subject: Any = None

    def evidence(self) -> dict[str, Any]:
        """What the event records: each gate with the value seen, and the policy in force."""
        out: dict[str, Any] = {
            "gates": [g.to_dict() for g in self.gates],
            "policy_sha256": self.policy_sha256,
            "policy_source": self.policy_source,
        }
        if self.action == "approve":
            out.update(approvals=self.approvals, quorum=self.quorum)
        return out

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data.pop("subject", None)
        return data


@dataclass(frozen=True)
class InitReport(Record):
    """What `catalog init` found and made: the lake and the policy file (never overwritten)."""

    lake: str
    lake_created: bool
    config: str
    config_created: bool
