"""Commands that read: what to load (resolve), what there is (show, list), what
happened (history, lineage), where a rollback can go (candidates), any
question in SQL (sql), and whether a decision would pass (check).
"""

from __future__ import annotations

import sys
from typing import Annotated, Any, Optional

import typer

from .output import cell, dump_json, safe, table
from .shell import AsOfOpt, JsonOpt, ModelArg, TargetOpt, VersionArg, open_registry, through_funnel


@through_funnel
def resolve(
    ref: Annotated[str, typer.Argument(metavar="REF", help="MODEL@TARGET, MODEL@latest or MODEL:VERSION. Example: churn@prod-eu", show_default=False)],
    as_of: AsOfOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the artifact URI to load, and nothing else.

    MODEL@latest is the latest approved version, never a candidate.

    Example: catalog resolve churn@prod-eu
    """
    uri = open_registry().resolve(ref, as_of=as_of)
    if as_json:
        dump_json({"ref": ref, "artifact_uri": uri})
    else:
        typer.echo(uri)


_VERSION_FIELDS = (
    "model", "version", "state", "deployed_to", "artifact_uri", "artifact_sha256", "artifact_bytes",
    "owner", "description", "tags", "code_repo", "code_version", "code_dirty", "runtime_image",
    "data_refs", "parents", "metrics", "params", "dashboards", "created_at", "created_by",
    "origin", "imported_at", "imported_by",
)


@through_funnel
def show(
    model: ModelArg,
    version: Annotated[Optional[int], typer.Argument(metavar="[VERSION]", help="A version; omit for the whole model. Example: 3", show_default=False)] = None,
    as_of: AsOfOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a model (its versions and where it runs) or one version in full.

    Example: catalog show churn --as-of 2026-11-20T14:00:00Z
    """
    from ..records import Version

    info = open_registry().show(model, version, as_of=as_of)
    if as_json:
        dump_json(info)
        return
    if isinstance(info, Version):
        record = info.to_dict()
        record["parents"] = [str(p) for p in info.parents]
        width = max(len(f) for f in _VERSION_FIELDS)
        for field in _VERSION_FIELDS:
            typer.echo(f"{field.ljust(width)}  {cell(record[field])}")
        return
    typer.echo(f"{info.model}  owner: {safe(info.owner or '-')}  latest approved: {('v' + str(info.latest_approved)) if info.latest_approved else '-'}")
    if info.description:
        for text_line in info.description.splitlines():
            typer.echo(safe(text_line))
    if info.tags:
        typer.echo("tags: " + cell(info.tags))
    typer.echo("\nRunning now:")
    table([d.to_dict() | {"since": d.since} for d in info.deployments], ["target", "version", "since", "by", "how"], empty="(not deployed)")
    typer.echo("\nVersions:")
    table(
        [v.to_dict() | {"created_at": v.created_at} for v in info.versions],
        ["version", "state", "deployed_to", "metrics", "created_at", "created_by"],
    )


@through_funnel
def list_models(as_of: AsOfOpt = None, as_json: JsonOpt = False) -> None:
    """List every model with its latest and latest approved version and where it runs.

    Example: catalog list --json
    """
    models = open_registry().list(as_of=as_of)
    if as_json:
        dump_json(models)
        return
    table(
        [m.to_dict() | {"updated_at": m.updated_at} for m in models],
        ["model", "owner", "versions", "latest_version", "latest_approved", "deployed_to", "updated_at"],
        empty="(no models)",
    )


@through_funnel
def history(
    model: Annotated[Optional[str], typer.Argument(metavar="[MODEL]", help="Only this model. Example: churn", show_default=False)] = None,
    target: Annotated[Optional[str], typer.Option("--target", "-t", help="Only events on this target. Example: --target prod-eu", show_default=False)] = None,
    by: Annotated[Optional[str], typer.Option("--by", help="Only what this person did. Example: --by carol", show_default=False)] = None,
    as_of: AsOfOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Who did what, when, why and on what evidence: for a model, a target, a person, or everything.

    Example: catalog history churn --target prod-eu
    """
    events = open_registry().history(model, target=target, actor=by, as_of=as_of)
    if as_json:
        dump_json(events)
        return
    rows = [e.to_dict() | {"at": e.at, "gates": _gate_summary(e.evidence), "detail": _detail(e)} for e in events]
    columns = ["at", "actor", "kind", "model", "version", "target", "note", "gates", "detail"]
    table(rows, columns if model is None else [c for c in columns if c != "model"], empty="(no events)")


def _detail(e: Any) -> str:
    """What a rename, tag or describe event changed, and who imported an imported record when."""
    parts = []
    if e.renamed_from:
        parts.append(f"renamed from {e.renamed_from}")
    if e.kind in ("tag", "create") and (e.tags or e.tags_deleted):
        parts.append(", ".join([*(f"{k}={v}" for k, v in e.tags.items()), *(f"-{k}" for k in e.tags_deleted)]))
    if e.kind == "describe" and e.description is None:
        parts.append("description cleared")
    elif e.kind in ("describe", "create") and e.description:
        parts.append("description: " + e.description.splitlines()[0][:60])
    if e.imported_by:
        source = e.origin.get("system", "elsewhere")
        parts.append(f"imported from {source} by {e.imported_by} at {e.imported_at:%Y-%m-%d %H:%M:%SZ}")
    return "; ".join(parts)


def _gate_summary(evidence: dict[str, Any]) -> str:
    gates = evidence.get("gates") or []
    if not gates:
        return ""
    passed = sum(1 for g in gates if g.get("passed"))
    quorum = f", approval {evidence['approvals']}/{evidence['quorum']}" if "quorum" in evidence else ""
    return f"{passed}/{len(gates)} gates passed{quorum}"


@through_funnel
def lineage(model: ModelArg, version: VersionArg, as_of: AsOfOpt = None, as_json: JsonOpt = False) -> None:
    """Where a version came from (models, data, code, image) and what was derived from it, recursively.

    Example: catalog lineage churn-distilled 2
    """
    graph = open_registry().lineage(model, version, as_of=as_of)
    if as_json:
        dump_json(graph)
        return
    typer.echo(f"Ancestors of {model}:{version}:")
    table([e.to_dict() for e in graph.ancestors], ["depth", "child_model", "child_version", "parent_kind", "parent", "relation"])
    typer.echo(f"\nDescendants of {model}:{version}:")
    table([e.to_dict() for e in graph.descendants], ["depth", "child_model", "child_version", "relation"])


@through_funnel
def candidates(
    model: ModelArg,
    target: TargetOpt,
    as_of: AsOfOpt = None,
    as_json: JsonOpt = False,
    excluded: Annotated[bool, typer.Option("--excluded", help="With --json, also list the versions that ran on TARGET but are not candidates (\"candidate\": false, with reason and detail); the table always shows them. Example: --json --excluded")] = False,
) -> None:
    """The versions TARGET can roll back to; rank 1 is what `rollback` picks by default.
    Below them, the versions that ran there and are not candidates, and why.

    Example: catalog candidates churn --target prod
    """
    found = open_registry().rollback_options(model, target=target, as_of=as_of)
    if as_json:
        rows = [c.to_dict() | {"candidate": True} for c in found.candidates]
        if excluded:
            rows += [e.to_dict() | {"rank": None, "candidate": False} for e in found.excluded]
        dump_json(rows)
        return
    table(
        [c.to_dict() | {"last_deployed_at": c.last_deployed_at} for c in found.candidates],
        ["rank", "version", "last_deployed_at", "artifact_uri"],
        empty=f"(no rollback candidates for {model} on {target})",
    )
    if found.excluded:
        typer.echo(f"\nNot candidates (ran on {target}, most recent first):")
        for e in found.excluded:
            typer.echo(f"v{e.version}  {e.detail}")


@through_funnel
def sql(
    query: Annotated[Optional[str], typer.Argument(metavar="[QUERY]", help="One read-only SELECT over the views. Example: 'select * from latest_approved'", show_default=False)] = None,
    format: Annotated[str, typer.Option("--format", "-f", help="table, csv or json. Example: --format csv")] = "table",
    print_views: Annotated[bool, typer.Option("--print-views", help="Print the view definitions for any DuckDB client. Example: --print-views")] = False,
    as_of: AsOfOpt = None,
) -> None:
    """Run read-only SQL over the stable views (versions, events, model_versions,
    latest_approved, deployments, rollback_candidates, lineage, audit_log).

    Example: catalog sql "select model, version from latest_approved" --format csv
    """
    from ..errors import InvalidValue

    if format not in ("table", "csv", "json"):
        raise InvalidValue(f"unknown format {format!r}: use table, csv or json")
    registry = open_registry()
    if print_views:
        typer.echo(registry.views_sql())
        return
    if not query:
        raise InvalidValue("give a query, e.g. catalog sql 'select * from latest_approved', or --print-views")
    result = registry.sql(query, as_of=as_of)
    if format == "json":
        dump_json(result.rows)
    elif format == "csv":
        import csv

        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(result.columns)
        for row in result.rows:
            writer.writerow([cell(row[c]) for c in result.columns])
    else:
        table(result.rows, result.columns, empty="(no rows)")


@through_funnel
def check(
    model: ModelArg,
    version: VersionArg,
    target: Annotated[Optional[str], typer.Option("--target", "-t", help="Check the deploy rules of this target instead of approval. Example: --target prod-eu", show_default=False)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run what approve (or deploy, with --target) would run, lifecycle rules included, without writing (a dry run for CI); exit 1 if the command would be refused.

    Example: catalog --actor bob check churn 3 --json
    """
    report = open_registry().check(model, version, target=target)
    if as_json:
        dump_json(report)
    else:
        what = f"deploy to {target}" if target else "approval"
        typer.echo(f"{model} v{version} {what} by {safe(report.actor)}: {'passes' if report.passed else 'FAILS'}"
                   f" (policy {safe(report.policy_source or 'none: permissive defaults')})")
        # the detail in full: it is the reason the command itself would give
        table([g.to_dict() | {"result": "pass" if g.passed else "FAIL"} for g in report.gates],
               ["result", "gate", "detail"], empty="(no gates apply)", width=1_000)
    if not report.passed:
        raise typer.Exit(1)
