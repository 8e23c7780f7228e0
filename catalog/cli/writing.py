"""Commands that write to the lake: register a version, decide on it (approve,
reject, deprecate), record where it runs (deploy, rollback), redact it, and
start a registry (init).
"""

from __future__ import annotations

import os
from typing import Annotated, Optional

import typer

from .output import dump_json, say_event
from .shell import JsonOpt, ModelArg, NoteOpt, TargetOpt, VersionArg, open_registry, pairs, through_funnel


@through_funnel
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
    version = open_registry().register(
        model,
        artifact,
        owner=owner,
        description=description,
        tags=pairs(tag, "tag"),
        code_repo=code_repo,
        code_version=code_version,
        runtime_image=image,
        data_refs=data or [],
        parents=parent or [],
        metrics=pairs(metric, "metric"),
        params=pairs(param, "param"),
        dashboards=pairs(dashboard, "dashboard"),
        artifact_sha256=sha256,
        capture_git=not no_git,
        allow_missing_data=allow_missing_data,
    )
    if as_json:
        dump_json(version)
    else:
        typer.echo(f"{version.model} v{version.version}")


@through_funnel
def approve(model: ModelArg, version: VersionArg, note: NoteOpt = None, as_json: JsonOpt = False) -> None:
    """Approve a candidate version.

    Example: catalog approve churn 3 --note "passed offline eval"
    """
    say_event(open_registry().approve(model, version, note=note), as_json)


@through_funnel
def reject(model: ModelArg, version: VersionArg, note: NoteOpt = None, as_json: JsonOpt = False) -> None:
    """Reject a candidate version.

    Example: catalog reject churn 4 --note "leaks the label"
    """
    say_event(open_registry().reject(model, version, note=note), as_json)


@through_funnel
def deprecate(model: ModelArg, version: VersionArg, note: NoteOpt = None, as_json: JsonOpt = False) -> None:
    """Retire an approved version: it no longer deploys or serves as a rollback candidate.

    Example: catalog deprecate churn 2 --note "regression on new segment"
    """
    say_event(open_registry().deprecate(model, version, note=note), as_json)


@through_funnel
def deploy(model: ModelArg, version: VersionArg, target: TargetOpt, note: NoteOpt = None, as_json: JsonOpt = False) -> None:
    """Record that TARGET now runs this approved version.

    Example: catalog deploy churn 3 --target prod-eu
    """
    say_event(open_registry().deploy(model, version, target=target, note=note), as_json)


@through_funnel
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
    say_event(open_registry().rollback(model, target=target, note=note, to=to), as_json)



@through_funnel
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
    say_event(open_registry().redact(model, version, fields=field, reason=reason), as_json)


OptionalVersionArg = Annotated[
    Optional[int],
    typer.Argument(metavar="[VERSION]", help="One version; omit for the model itself. Example: 3", show_default=False),
]


@through_funnel
def undeploy(
    model: ModelArg,
    target: TargetOpt,
    note: Annotated[str, typer.Option("--note", "-m", help="Why (required). Example: --note 'region retired'", show_default=False)],
    as_json: JsonOpt = False,
) -> None:
    """Record that TARGET stops running MODEL (what an MLflow alias deletion does); deploy again to start it.

    Example: catalog undeploy churn --target staging --note "region retired"
    """
    say_event(open_registry().undeploy(model, target=target, note=note), as_json)


@through_funnel
def tag(
    model: ModelArg,
    args: Annotated[Optional[list[str]], typer.Argument(metavar="[VERSION] [KEY=VALUE]...", help="A version (omit for the model itself), then tags to set. Example: 3 team=retention", show_default=False)] = None,
    delete: Annotated[Optional[list[str]], typer.Option("--delete", help="A tag to delete, repeatable. Example: --delete stage", show_default=False)] = None,
    note: NoteOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Set and delete tags of a model or of one version, recorded as one event with its history.

    Example: catalog tag churn 3 team=retention --delete stage
    """
    from ..errors import InvalidValue

    items = list(args or [])
    version = None
    if items and "=" not in items[0]:
        if not items[0].isdigit():
            raise InvalidValue(f"invalid version {items[0]!r}: give a number, or KEY=VALUE tags to set")
        version = int(items.pop(0))
    say_event(open_registry().tag(model, version, set=pairs(items, "tag"), delete=delete or [], note=note), as_json)


@through_funnel
def describe(
    model: ModelArg,
    args: Annotated[Optional[list[str]], typer.Argument(metavar="[VERSION] TEXT", help="A version (omit for the model itself), then the description. Example: 3 'weekly churn score'", show_default=False)] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the description instead. Example: --clear")] = False,
    note: NoteOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change the description of a model or of one version (the earlier one stays in the history).

    Example: catalog describe churn 3 "weekly churn score, retrained on November data"
    """
    from ..errors import InvalidValue

    items = list(args or [])
    version = int(items.pop(0)) if len(items) > 1 and items[0].isdigit() else None
    if clear == bool(items) or len(items) > 1:
        raise InvalidValue("give one description TEXT (quote it), or --clear to remove it")
    say_event(open_registry().describe(model, version, description=None if clear else items[0], note=note), as_json)


@through_funnel
def delete(
    model: ModelArg,
    version: OptionalVersionArg = None,
    note: NoteOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Hide a version, or a whole model, from every view but the history (redact removes the values).

    A version a target runs is refused: undeploy it first.

    Example: catalog delete churn 4 --note "registered by mistake"
    """
    say_event(open_registry().delete(model, version, note=note), as_json)


@through_funnel
def rename(
    model: ModelArg,
    new_name: Annotated[str, typer.Argument(metavar="NEW", help="The model's new name. Example: churn-eu", show_default=False)],
    note: NoteOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Rename a model: every view shows NEW, whose numbers continue; the old name stays reserved to it.

    Example: catalog rename churn churn-eu
    """
    say_event(open_registry().rename(model, new_name, note=note), as_json)


@through_funnel
def init(as_json: JsonOpt = False) -> None:
    """Start a registry here: an empty lake (--lake, default data/lake) and a commented
    starter policy in ./catalog.toml (or --config). Keeps whatever is already there.

    Example: catalog init
    """
    report = open_registry().init()
    if as_json:
        dump_json(report.to_dict())
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
