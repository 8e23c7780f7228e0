"""The `catalog` command: a thin shell over :class:`catalog.Registry`.

Each command parses its options, calls one library function and formats what
it returns: a table or a line for people, ``--json`` for scripts. Every
CatalogError goes through one funnel (:func:`catalog.terminal.funnel`): one ``Error: ...`` line
on stderr, exit 1 for a refusal, 2 for malformed input.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Optional, TypeVar

import typer

from . import terminal
from .terminal import funnel
from .usage import OneLineUsage

if TYPE_CHECKING:
    from .registry import Registry

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    name="catalog",
    help=(
        "Model Catalog: a model registry that needs no server.\n\n"
        "Register trained models, approve them, record deployments and rollbacks, "
        "resolve what to load, and query it all with SQL.\n\n"
        "Example: catalog register churn ./model.pkl --owner ana --metric auc=0.91"
    ),
    cls=OneLineUsage,
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class _State:
    lake: str | None = None
    actor: str | None = None
    config: str | None = None
    traceback: bool = False
    progress: Optional[terminal.ProgressBar] = None


STATE = _State()


@app.callback()
def _global(
    lake: Annotated[
        Optional[str],
        typer.Option(
            "--lake",
            envvar="CATALOG_LAKE",
            help="The metadata lake folder. Example: --lake /srv/models/lake (default ./data/lake).",
            show_default=False,
        ),
    ] = None,
    actor: Annotated[
        Optional[str],
        typer.Option(
            "--actor",
            envvar="CATALOG_ACTOR",
            help="Who is acting, recorded on every write. Example: --actor ana (default: the OS user).",
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        Optional[str],
        typer.Option(
            "--config",
            envvar="CATALOG_CONFIG",
            help="The policy file (default ./catalog.toml, else catalog.toml in the lake). Example: --config ci/catalog.toml",
            show_default=False,
        ),
    ] = None,
    traceback: Annotated[
        bool, typer.Option("--traceback", help="Show the full traceback of an unexpected error. Example: --traceback")
    ] = False,
) -> None:
    STATE.lake, STATE.actor, STATE.config, STATE.traceback = lake, actor, config, traceback


def _registry() -> Registry:
    from .registry import Registry

    return Registry(STATE.lake, actor=STATE.actor, config=STATE.config, progress=STATE.progress)


def _funnel(func: F) -> F:
    """Map CatalogError to one stderr line and its exit code; hide other tracebacks."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        STATE.progress = terminal.progress_on_stderr()
        try:
            code = funnel(lambda: func(*args, **kwargs), traceback=STATE.traceback, passthrough=(typer.Exit, typer.Abort),
                          as_json=bool(kwargs.get("as_json")))
        finally:
            if STATE.progress is not None:
                STATE.progress.close()
        if code:
            raise typer.Exit(code)

    return wrapper  # type: ignore[return-value]


# -- output helpers ----------------------------------------------------------


# Characters a terminal acts on (C0, DEL, C1) or that reorder what it shows (bidi
# controls): lake text is input like any other, and reaches a terminal escaped.
_UNSAFE = {c: f"\\x{c:02x}" for c in [*range(0x00, 0x20), *range(0x7F, 0xA0)]}
_UNSAFE.update({c: f"\\u{c:04x}" for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]})
_UNSAFE.update({ord("\n"): " ", ord("\t"): " "})


def _safe(value: Any) -> str:
    """``value`` as text fit for a terminal: one line, control characters escaped
    (ESC shows as \\x1b). ``--json`` output is exact instead."""
    return str(value).translate(_UNSAFE)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%SZ") if value.utcoffset() is not None else value.isoformat()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return ", ".join(f"{_safe(k)}={_cell(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_cell(v) for v in value)
    return _safe(value)


def _table(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], *, empty: str = "(none)", width: int = 60
) -> None:
    if not rows:
        typer.echo(empty)
        return
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    if terminal.is_terminal(sys.stdout):
        terminal.print_table(columns, cells)
        return
    header = [_safe(c).upper() for c in columns]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(header)]
    widths = [min(w, width) for w in widths]
    typer.echo("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
    for row in cells:
        typer.echo("  ".join((v if len(v) <= w else v[: w - 1] + "…").ljust(w) for v, w in zip(row, widths)).rstrip())


def _json(value: Any) -> None:
    from .records import _plain

    if hasattr(value, "to_dict"):
        value = value.to_dict()
    elif isinstance(value, list):
        value = [v.to_dict() if hasattr(v, "to_dict") else v for v in value]
    typer.echo(json.dumps(_plain(value), indent=2, ensure_ascii=False, default=str))


def _pairs(items: Optional[list[str]], what: str) -> dict[str, str]:
    from .validate import pairs

    return pairs(items or [], what)


JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON with stable keys, for scripts. Example: --json")]
AsOfOpt = Annotated[
    Optional[str],
    typer.Option(
        "--as-of",
        help="Answer as the registry would have at this UTC time. Example: --as-of 2026-11-20T14:00:00Z",
        show_default=False,
    ),
]
NoteOpt = Annotated[
    Optional[str],
    typer.Option("--note", "-m", help="Why, recorded on the event. Example: --note 'passed offline eval'", show_default=False),
]
ModelArg = Annotated[str, typer.Argument(metavar="MODEL", help="Model name. Example: churn", show_default=False)]
VersionArg = Annotated[int, typer.Argument(metavar="VERSION", help="Version number. Example: 3", show_default=False)]
TargetOpt = Annotated[
    str, typer.Option("--target", "-t", help="Deployment target. Example: --target prod-eu", show_default=False)
]


def _say_event(event: Any, as_json: bool) -> None:
    if as_json:
        _json(event)
        return
    where = f" on {event.target}" if event.target else ""
    what = {"approve": "approved", "reject": "rejected", "deprecate": "deprecated", "deploy": "deployed"}.get(event.kind, event.kind)
    if event.kind == "approve" and event.state is None:
        got, need = event.evidence.get("approvals"), event.evidence.get("quorum")
        typer.echo(f"{event.model} v{event.version}: approval {got} of {need} recorded by {_safe(event.actor)}; still a candidate")
    elif event.kind == "redact":
        fields = ", ".join(event.evidence.get("fields", []))
        scope = f"v{event.version}" if event.version else "every version"
        typer.echo(f"{event.model} {scope}: {fields} removed from {event.evidence.get('files_rewritten')} file(s) by {_safe(event.actor)}")
    elif event.kind == "rollback":
        typer.echo(f"{event.target}: {event.model} rolled back to v{event.version} (from v{event.evidence.get('from_version')}) by {_safe(event.actor)}")
    else:
        typer.echo(f"{event.model} v{event.version} {what}{where} by {_safe(event.actor)}")


# -- writing commands ------------------------------------------------------------


@app.command()
@_funnel
def register(
    model: ModelArg,
    artifact: Annotated[
        str,
        typer.Argument(metavar="ARTIFACT", help="Artifact path or URI. Example: s3://models/churn/7.pkl or ./model.pkl", show_default=False),
    ],
    owner: Annotated[Optional[str], typer.Option(help="Who is answerable for it. Example: --owner ana", show_default=False)] = None,
    description: Annotated[Optional[str], typer.Option(help="Free text. Example: --description 'weekly churn score'", show_default=False)] = None,
    code_repo: Annotated[Optional[str], typer.Option(help="Code repository (default: this git remote). Example: --code-repo https://github.com/acme/churn", show_default=False)] = None,
    code_version: Annotated[Optional[str], typer.Option(help="Commit (default: this git HEAD, marked dirty if the tree is). Example: --code-version 1a2b3c4", show_default=False)] = None,
    image: Annotated[Optional[str], typer.Option(help="Runtime image the training ran in. Example: --image ghcr.io/acme/train:1.4", show_default=False)] = None,
    data: Annotated[Optional[list[str]], typer.Option("--data", help="Training data pointer with a version, repeatable. Example: --data s3://data/churn@2026-11-01", show_default=False)] = None,
    parent: Annotated[Optional[list[str]], typer.Option("--parent", help="Upstream model version, repeatable. Example: --parent churn-base:3:fine-tuned", show_default=False)] = None,
    metric: Annotated[Optional[list[str]], typer.Option("--metric", help="Offline metric, repeatable. Example: --metric auc=0.91", show_default=False)] = None,
    param: Annotated[Optional[list[str]], typer.Option("--param", help="Training parameter, repeatable. Example: --param lr=0.01", show_default=False)] = None,
    tag: Annotated[Optional[list[str]], typer.Option("--tag", help="Search tag, repeatable. Example: --tag team=retention", show_default=False)] = None,
    dashboard: Annotated[Optional[list[str]], typer.Option("--dashboard", help="Monitoring link, repeatable. Example: --dashboard grafana=https://grafana/d/churn", show_default=False)] = None,
    sha256: Annotated[Optional[str], typer.Option("--sha256", help="Checksum of a remote artifact (local ones are hashed). Example: --sha256 9f86d08...", show_default=False)] = None,
    no_git: Annotated[bool, typer.Option("--no-git", help="Do not capture the code version from git. Example: --no-git")] = False,
    allow_missing_data: Annotated[bool, typer.Option("--allow-missing-data", help="Accept a local data path that does not exist here. Example: --allow-missing-data")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Register a new version of MODEL; prints `MODEL vN`.

    Example: catalog register churn ./model.pkl --owner ana --metric auc=0.91 --data s3://data/churn@2026-11-01
    """
    version = _registry().register(
        model,
        artifact,
        owner=owner,
        description=description,
        tags=_pairs(tag, "tag"),
        code_repo=code_repo,
        code_version=code_version,
        runtime_image=image,
        data_refs=data or [],
        parents=parent or [],
        metrics=_pairs(metric, "metric"),
        params=_pairs(param, "param"),
        dashboards=_pairs(dashboard, "dashboard"),
        artifact_sha256=sha256,
        capture_git=not no_git,
        allow_missing_data=allow_missing_data,
    )
    if as_json:
        _json(version)
    else:
        typer.echo(f"{version.model} v{version.version}")


@app.command()
@_funnel
def approve(model: ModelArg, version: VersionArg, note: NoteOpt = None, as_json: JsonOpt = False) -> None:
    """Approve a candidate version.

    Example: catalog approve churn 3 --note "passed offline eval"
    """
    _say_event(_registry().approve(model, version, note=note), as_json)


@app.command()
@_funnel
def reject(model: ModelArg, version: VersionArg, note: NoteOpt = None, as_json: JsonOpt = False) -> None:
    """Reject a candidate version.

    Example: catalog reject churn 4 --note "leaks the label"
    """
    _say_event(_registry().reject(model, version, note=note), as_json)


@app.command()
@_funnel
def deprecate(model: ModelArg, version: VersionArg, note: NoteOpt = None, as_json: JsonOpt = False) -> None:
    """Retire an approved version: it no longer deploys or serves as a rollback candidate.

    Example: catalog deprecate churn 2 --note "regression on new segment"
    """
    _say_event(_registry().deprecate(model, version, note=note), as_json)


@app.command()
@_funnel
def deploy(model: ModelArg, version: VersionArg, target: TargetOpt, note: NoteOpt = None, as_json: JsonOpt = False) -> None:
    """Record that TARGET now runs this approved version.

    Example: catalog deploy churn 3 --target prod-eu
    """
    _say_event(_registry().deploy(model, version, target=target, note=note), as_json)


@app.command()
@_funnel
def rollback(
    model: ModelArg,
    target: TargetOpt,
    note: Annotated[str, typer.Option("--note", "-m", help="Why (required). Example: --note 'p95 latency regression'", show_default=False)],
    to: Annotated[Optional[int], typer.Option("--to", help="The version to go back to (default: the one that ran before). Example: --to 2", show_default=False)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Move TARGET back to an earlier approved version that ran there.

    Example: catalog rollback churn --target prod --note "p95 latency regression"
    """
    _say_event(_registry().rollback(model, target=target, note=note, to=to), as_json)


# -- reading commands --------------------------------------------------------------


@app.command()
@_funnel
def resolve(
    ref: Annotated[str, typer.Argument(metavar="REF", help="MODEL@TARGET, MODEL@latest or MODEL:VERSION. Example: churn@prod-eu", show_default=False)],
    as_of: AsOfOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the artifact URI to load, and nothing else.

    MODEL@latest is the latest approved version, never a candidate.

    Example: catalog resolve churn@prod-eu
    """
    uri = _registry().resolve(ref, as_of=as_of)
    if as_json:
        _json({"ref": ref, "artifact_uri": uri})
    else:
        typer.echo(uri)


_VERSION_FIELDS = (
    "model", "version", "state", "deployed_to", "artifact_uri", "artifact_sha256", "artifact_bytes",
    "owner", "description", "tags", "code_repo", "code_version", "code_dirty", "runtime_image",
    "data_refs", "parents", "metrics", "params", "dashboards", "created_at", "created_by",
)


@app.command()
@_funnel
def show(
    model: ModelArg,
    version: Annotated[Optional[int], typer.Argument(metavar="[VERSION]", help="A version; omit for the whole model. Example: 3", show_default=False)] = None,
    as_of: AsOfOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a model (its versions and where it runs) or one version in full.

    Example: catalog show churn --as-of 2026-11-20T14:00:00Z
    """
    from .records import Version

    info = _registry().show(model, version, as_of=as_of)
    if as_json:
        _json(info)
        return
    if isinstance(info, Version):
        record = info.to_dict()
        record["parents"] = [str(p) for p in info.parents]
        width = max(len(f) for f in _VERSION_FIELDS)
        for field in _VERSION_FIELDS:
            typer.echo(f"{field.ljust(width)}  {_cell(record[field])}")
        return
    typer.echo(f"{info.model}  owner: {_safe(info.owner or '-')}  latest approved: {('v' + str(info.latest_approved)) if info.latest_approved else '-'}")
    if info.description:
        for text_line in info.description.splitlines():
            typer.echo(_safe(text_line))
    if info.tags:
        typer.echo("tags: " + _cell(info.tags))
    typer.echo("\nRunning now:")
    _table([d.to_dict() | {"since": d.since} for d in info.deployments], ["target", "version", "since", "by", "how"], empty="(not deployed)")
    typer.echo("\nVersions:")
    _table(
        [v.to_dict() | {"created_at": v.created_at} for v in info.versions],
        ["version", "state", "deployed_to", "metrics", "created_at", "created_by"],
    )


@app.command("list")
@_funnel
def list_models(as_of: AsOfOpt = None, as_json: JsonOpt = False) -> None:
    """List every model with its latest and latest approved version and where it runs.

    Example: catalog list --json
    """
    models = _registry().list(as_of=as_of)
    if as_json:
        _json(models)
        return
    _table(
        [m.to_dict() | {"updated_at": m.updated_at} for m in models],
        ["model", "owner", "versions", "latest_version", "latest_approved", "deployed_to", "updated_at"],
        empty="(no models)",
    )


@app.command()
@_funnel
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
    events = _registry().history(model, target=target, actor=by, as_of=as_of)
    if as_json:
        _json(events)
        return
    rows = [e.to_dict() | {"at": e.at, "gates": _gate_summary(e.evidence)} for e in events]
    columns = ["at", "actor", "kind", "model", "version", "target", "note", "gates"]
    _table(rows, columns if model is None else [c for c in columns if c != "model"], empty="(no events)")


def _gate_summary(evidence: dict[str, Any]) -> str:
    gates = evidence.get("gates") or []
    if not gates:
        return ""
    passed = sum(1 for g in gates if g.get("passed"))
    quorum = f", approval {evidence['approvals']}/{evidence['quorum']}" if "quorum" in evidence else ""
    return f"{passed}/{len(gates)} gates passed{quorum}"


@app.command()
@_funnel
def lineage(model: ModelArg, version: VersionArg, as_of: AsOfOpt = None, as_json: JsonOpt = False) -> None:
    """Where a version came from (models, data, code, image) and what was derived from it, recursively.

    Example: catalog lineage churn-distilled 2
    """
    graph = _registry().lineage(model, version, as_of=as_of)
    if as_json:
        _json(graph)
        return
    typer.echo(f"Ancestors of {model}:{version}:")
    _table([e.to_dict() for e in graph.ancestors], ["depth", "child_model", "child_version", "parent_kind", "parent", "relation"])
    typer.echo(f"\nDescendants of {model}:{version}:")
    _table([e.to_dict() for e in graph.descendants], ["depth", "child_model", "child_version", "relation"])


@app.command()
@_funnel
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
    found = _registry().rollback_options(model, target=target, as_of=as_of)
    if as_json:
        rows = [c.to_dict() | {"candidate": True} for c in found.candidates]
        if excluded:
            rows += [e.to_dict() | {"rank": None, "candidate": False} for e in found.excluded]
        _json(rows)
        return
    _table(
        [c.to_dict() | {"last_deployed_at": c.last_deployed_at} for c in found.candidates],
        ["rank", "version", "last_deployed_at", "artifact_uri"],
        empty=f"(no rollback candidates for {model} on {target})",
    )
    if found.excluded:
        typer.echo(f"\nNot candidates (ran on {target}, most recent first):")
        for e in found.excluded:
            typer.echo(f"v{e.version}  {e.detail}")


@app.command()
@_funnel
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
    from .errors import InvalidValue

    if format not in ("table", "csv", "json"):
        raise InvalidValue(f"unknown format {format!r}: use table, csv or json")
    registry = _registry()
    if print_views:
        typer.echo(registry.views_sql())
        return
    if not query:
        raise InvalidValue("give a query, e.g. catalog sql 'select * from latest_approved', or --print-views")
    result = registry.sql(query, as_of=as_of)
    if format == "json":
        _json(result.rows)
    elif format == "csv":
        import csv

        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(result.columns)
        for row in result.rows:
            writer.writerow([_cell(row[c]) for c in result.columns])
    else:
        _table(result.rows, result.columns, empty="(no rows)")


# -- governance ------------------------------------------------------------------


@app.command()
@_funnel
def check(
    model: ModelArg,
    version: VersionArg,
    target: Annotated[Optional[str], typer.Option("--target", "-t", help="Check the deploy rules of this target instead of approval. Example: --target prod-eu", show_default=False)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run what approve (or deploy, with --target) would run, lifecycle rules included, without writing (a dry run for CI); exit 1 if the command would be refused.

    Example: catalog --actor bob check churn 3 --json
    """
    report = _registry().check(model, version, target=target)
    if as_json:
        _json(report)
    else:
        what = f"deploy to {target}" if target else "approval"
        typer.echo(f"{model} v{version} {what} by {_safe(report.actor)}: {'passes' if report.passed else 'FAILS'}"
                   f" (policy {_safe(report.policy_source or 'none: permissive defaults')})")
        # the detail in full: it is the reason the command itself would give
        _table([g.to_dict() | {"result": "pass" if g.passed else "FAIL"} for g in report.gates],
               ["result", "gate", "detail"], empty="(no gates apply)", width=1_000)
    if not report.passed:
        raise typer.Exit(1)


@app.command()
@_funnel
def redact(
    model: ModelArg,
    version: Annotated[Optional[int], typer.Argument(metavar="[VERSION]", help="One version; omit for every version of the model. Example: 3", show_default=False)] = None,
    field: Annotated[list[str], typer.Option("--field", help="A field to remove, repeatable: description, owner, tags, data_refs, params, dashboards, runtime_image, code_repo, note. Example: --field data_refs", show_default=False)] = ...,  # type: ignore[assignment]
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded on the redact event). Example: --reason 'GDPR request 2026-118'", show_default=False)] = ...,  # type: ignore[assignment]
    as_json: JsonOpt = False,
) -> None:
    """Remove field values from every file of the lake (e.g. a GDPR request); the audit trail keeps who, when, why and which fields.

    Example: catalog redact churn 3 --field data_refs --field description --reason "GDPR request 2026-118"
    """
    _say_event(_registry().redact(model, version, fields=field, reason=reason), as_json)


# -- starting ---------------------------------------------------------------------


@app.command()
@_funnel
def init(as_json: JsonOpt = False) -> None:
    """Start a registry here: an empty lake (--lake, default data/lake) and a commented
    starter policy in ./catalog.toml (or --config). Keeps whatever is already there.

    Example: catalog init
    """
    report = _registry().init()
    if as_json:
        _json(report.to_dict())
        return
    lake, config = _here(report.lake), _here(report.config)
    typer.echo(f"{'Created the lake' if report.lake_created else 'Kept the lake already'} at {lake}")
    typer.echo(f"{'Wrote a starter policy to' if report.config_created else 'Kept the policy in'} {config}"
               + (" (four eyes on; edit it: README, Governance)" if report.config_created else ""))
    typer.echo("Next: catalog register MODEL ARTIFACT --owner NAME   (then approve, deploy, resolve)")


def _here(path: str) -> str:
    """``path`` relative to the current folder when it lies below it, else as it is."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


# -- the catalog site ------------------------------------------------------------

OutOpt = Annotated[str, typer.Option("--out", "-o", help="The site folder. Example: --out public")]


TemplatesOpt = Annotated[Optional[str], typer.Option(
    "--templates", help="A folder of your own templates (and assets) that win over the defaults. Example: --templates site_templates")]
MkdocsOpt = Annotated[Optional[str], typer.Option(
    "--mkdocs-config", help="Your own mkdocs.yml, laid over the default configuration. Example: --mkdocs-config mkdocs.yml")]


def _build(registry: Registry, out: str, as_of: str | None = None, *,
           templates: str | None = None, mkdocs_config: str | None = None) -> Any:
    from .site import build_site

    typer.echo(f"Building the catalog site of {registry.location} into {out} ...", err=True)
    report = build_site(registry, out, registry.config, as_of=as_of, templates=templates, mkdocs_config=mkdocs_config)
    for model, found in report.problems.items():
        for problem in found:
            typer.echo(f"warning: {model}: {_safe(problem)}", err=True)
    return report


@app.command()
@_funnel
def build(out: OutOpt = "site", as_of: AsOfOpt = None, templates: TemplatesOpt = None,
          mkdocs_config: MkdocsOpt = None, as_json: JsonOpt = False) -> None:
    """Render the searchable catalog site (MkDocs Material, strict) from the lake.

    Example: catalog build --out site
    """
    report = _build(_registry(), out, as_of, templates=templates, mkdocs_config=mkdocs_config)
    if as_json:
        _json(report.to_dict())
        return
    seconds = sum(report.timings.values())
    typer.echo(f"Built {report.pages} pages for {report.models} models ({report.versions} versions) "
               f"into {report.out_dir} in {seconds:.1f} s.")
    typer.echo(f"Open it: catalog serve --out {out}   (then http://127.0.0.1:8000/)")


@app.command()
@_funnel
def serve(
    out: OutOpt = "site",
    port: Annotated[int, typer.Option("--port", "-p", help="Port on 127.0.0.1. Example: --port 8000")] = 8000,
) -> None:
    """Serve the built site on 127.0.0.1 (Ctrl+C stops it).

    Example: catalog serve --port 8000
    """
    from .site import make_server, run_server

    server = make_server(out, port, quiet=False)  # bound first: a busy port is refused before we say "Serving"
    typer.echo(f"Serving {out} at http://127.0.0.1:{server.server_address[1]}/ (Ctrl+C to stop)")
    run_server(server)


# -- maintenance ---------------------------------------------------------------


@app.command()
@_funnel
def doctor(
    repair: Annotated[bool, typer.Option("--repair", help="Move damaged and foreign files to <lake>/_quarantine/<utc>/ (never deleting them), remove leftover temporary files, write missing anchors and claims. Example: --repair")] = False,
    verify_artifacts: Annotated[bool, typer.Option("--verify-artifacts", help="Re-hash every local artifact and compare it with its registered sha256 and size. Example: --verify-artifacts")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Check the lake: damaged or foreign files, leftovers of crashed writes, rows that break the schema, claims never recorded, the policy file. Exit 1 when something is found.

    Example: catalog doctor --repair --verify-artifacts
    """
    report = _registry().doctor(repair=repair, verify_artifacts=verify_artifacts)
    if as_json:
        _json(report)
    else:
        for f in report.findings:
            typer.echo(f"{f.severity.upper():7}  {_safe(f.path)}: {_safe(f.problem)}")
            typer.echo(f"         {_safe('repaired: ' + f.repaired if f.repaired else 'to do: ' + f.action)}")
        c = report.checked
        summary = (f"checked {c['files']} files, {c['versions']} versions, {c['events']} events, {c['claims']} claims"
                   + (f", {c['artifacts']} local artifacts" if verify_artifacts else ""))
        typer.echo(("clean: " if report.ok else f"{len(report.problems)} problem(s) found; ") + summary)
        if report.quarantine:
            typer.echo(f"quarantined files are in {os.path.join(report.lake, report.quarantine)}")
    if report.exit_code:
        raise typer.Exit(report.exit_code)


@app.command()
@_funnel
def compact(as_json: JsonOpt = False) -> None:
    """Merge each table's small files into one (safe beside writers, safe to interrupt).

    Example: catalog compact
    """
    result = _registry().compact()
    if as_json:
        _json(result)
        return
    for table, figures in result.items():
        if figures["files_merged"]:
            typer.echo(f"{table}: {figures['files_merged']} files merged into one ({figures['rows']} records)")
        else:
            typer.echo(f"{table}: already compact")


@app.command()
@_funnel
def demo(
    out: OutOpt = "site",
    no_site: Annotated[bool, typer.Option("--no-site", help="Only the tour; do not build the site. Example: --no-site")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Tour the sample lake (created at --lake if it is not there yet) and build its site.

    Example: catalog demo
    """
    from .sample import tour

    registry = _registry()
    if not no_site:
        from .site import check_folder

        check_folder(out, registry.root)  # refuse before the sample lake is created
    report = tour(registry)
    if as_json:
        _json(report)
        return
    lake = os.path.relpath(registry.root) if not os.path.relpath(registry.root).startswith("..") else registry.root
    typer.echo(f"Model Catalog demo: lake {lake}{' (sample created)' if report['created'] else ''}")
    typer.echo(f"{report['models']} models, {report['versions']} versions, {report['decisions']} decisions\n")
    typer.echo("Running now:")
    _table(report["deployments"], ["model", "target", "version", "since", "by", "how"])
    typer.echo("\nLatest approved:")
    _table(report["latest_approved"], ["model", "version", "approved_at", "approved_by"])
    typer.echo(f"\nRecent approvals, with the gates they passed (policy: {report['policy'] or 'none'}):")
    _table(report["approvals"], ["at", "actor", "model", "version", "state", "gates"])
    typer.echo("\nRollback candidates (first choice per target):")
    _table(report["rollback"], ["model", "target", "version", "last_deployed_at"])
    typer.echo("\nNot offered for rollback until deployed again (a rollback moved away from them):")
    for row in report["rolled_back"]:
        typer.echo(f"{row['model']} v{row['version']} on {row['target']}: {row['detail']}")
    if not report["rolled_back"]:
        typer.echo("(none)")
    flag = "" if os.path.normpath(lake) == os.path.normpath("data/lake") else f" --lake {lake}"
    typer.echo("\nTry:")
    for line in report["try"]:
        typer.echo(f"  catalog{flag} {line}")
    if not no_site:
        site = _build(registry, out)
        typer.echo(f"\nThe catalog site: {site.pages} pages in {site.out_dir}")
        typer.echo(f"Open it: catalog serve --out {out}   (then http://127.0.0.1:8000/)")

