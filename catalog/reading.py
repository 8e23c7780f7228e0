"""Read-only questions over the lake: models, versions, history, rollback options,
lineage and user SQL. Each answer is read at one moment (now, or ``as_of``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from . import validate as check
from .queries import views_sql as _views_sql
from .records import (
    Candidate,
    Counts,
    Deployment,
    Event,
    Exclusion,
    Lineage,
    LineageEdge,
    ModelInfo,
    ModelSummary,
    QueryResult,
    RollbackOptions,
    Version,
)
from .session import Session, moment


def views_sql(s: Session) -> str:
    return _views_sql(s.lake.glob("versions"), s.lake.glob("events"))


def show(s: Session, model: str, version: int | None, as_of: str | datetime | None) -> ModelInfo | Version:
    check.name(model)
    when = moment(as_of)
    if version is not None:
        return s.version(model, check.version(version), when)
    found = s.q("model_summary", when, model=model)
    if not found:
        raise s.not_found(model, when)
    summary = ModelSummary.from_row(found[0])
    rows = s.q("model_versions", when, model=model) if summary.versions else []
    return ModelInfo(
        model=model,
        owner=summary.owner,
        description=summary.description,
        tags=summary.tags,
        versions=[Version.from_row(r) for r in rows],
        deployments=[Deployment.from_row(r) for r in s.q("model_deployments", when, model=model)],
        latest_approved=summary.latest_approved,
        created_at=summary.created_at,
        updated_at=summary.updated_at,
    )


def models(s: Session, as_of: str | datetime | None) -> list[ModelSummary]:
    when = moment(as_of)
    running: dict[str, dict[str, int]] = {}
    for d in s.q("deployments", when):
        running.setdefault(d["model"], {})[d["target"]] = d["version"]
    return [
        ModelSummary.from_row({**r, "deployed_to": running.get(r["model"], {})})
        for r in s.q("models", when, model=None)
    ]


def counts(s: Session, as_of: str | datetime | None) -> Counts:
    return Counts.from_row(s.q("counts", moment(as_of))[0])


def deployments(s: Session, as_of: str | datetime | None) -> list[Deployment]:
    return [Deployment.from_row(r) for r in s.q("deployments", moment(as_of))]


def history(
    s: Session, model: str | None, target: str | None, actor: str | None, as_of: str | datetime | None
) -> list[Event]:
    if model is not None:
        check.name(model)
    if target is not None:
        check.target(target)
    when = moment(as_of)
    if (model is not None and not s.q("model_exists", when, model=model)[0]["n"]
            and not s.q("name_status", when, model=model)[0]["used"]):
        raise s.not_found(model, when)  # (a deleted model's history is kept, and shown)
    rows = s.q("audit", when, model=model, target=target, actor=actor)
    return [Event.from_row(r) for r in rows]


def candidates(s: Session, model: str, target: str, as_of: str | datetime | None) -> list[Candidate]:
    check.name(model)
    check.target(target)
    when = moment(as_of)
    s.require_model(model, when)
    return [Candidate.from_row(r) for r in s.q("candidates", when, model=model, target=target)]


def checked_rollback_options(s: Session, model: str, target: str, as_of: str | datetime | None) -> RollbackOptions:
    check.name(model)
    check.target(target)
    when = moment(as_of)
    s.require_model(model, when)
    return rollback_options(s, model, target, when)


def rollback_options(s: Session, model: str, target: str, when: datetime | None = None) -> RollbackOptions:
    """The candidates and the excluded versions of ``target``, read at one moment."""
    rows = s.q("rollback_options", when, model=model, target=target)
    return RollbackOptions(
        model=model, target=target,
        candidates=[Candidate.from_row(r) for r in rows if r["reason"] is None],
        excluded=[Exclusion.from_row(r) for r in rows if r["reason"] is not None],
    )


def lineage(s: Session, model: str, version: int, as_of: str | datetime | None) -> Lineage:
    check.name(model)
    check.version(version)
    when = moment(as_of)
    s.version(model, version, when)
    # (two queries: the walk, then the lineage of the few versions it found, which a
    # filter on their models reads from one row group each rather than every version)
    walk = s.q("ancestor_walk", when, model=model, version=version)
    found = {"models": [r["model"] for r in walk], "versions": [r["version"] for r in walk],
             "depths": [r["depth"] for r in walk]}
    up = [LineageEdge.from_row(r) for r in s.q("ancestors_of", when, **found)]
    down = [LineageEdge.from_row(r) for r in s.q("descendants", when, model=model, version=version)]
    return Lineage(model=model, version=version, ancestors=up, descendants=down)


def sql(s: Session, query: str, as_of: str | datetime | None, params: Mapping[str, Any] | None = None) -> QueryResult:
    check.text(query, "query", required=True)
    columns, rows = s.reader().user_query(query, moment(as_of), dict(params) if params else None)
    return QueryResult(columns=columns, rows=rows)


def sql_arrow(s: Session, query: str, as_of: str | datetime | None) -> Any:
    check.text(query, "query", required=True)
    return s.reader().user_query_arrow(query, moment(as_of))


def origins(s: Session, system: str, source: str) -> set[str]:
    check.text(system, "origin system", required=True)
    check.text(source, "origin source", required=True)
    if not s.lake.exists():
        return set()
    return {r["id"] for r in s.q("origins", system=system, source=source)}
