"""``catalog import mlflow`` and ``catalog import gto``: bring another registry into the lake.

Each command is one call into the API (``Registry.import_mlflow`` / ``import_gto``); the
readers of MLflow and git live in ``catalog.importing`` and are imported only when a
command runs.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ..usage import OneLineUsage
from .output import dump_json, safe
from .shell import JsonOpt, open_registry, through_funnel

app = typer.Typer(
    name="import",
    help=(
        "Bring a registry across from MLflow or GTO, with its version numbers, times and actors.\n\n"
        "Example: catalog import mlflow --from sqlite:///mlflow.db"
    ),
    cls=OneLineUsage,
    no_args_is_help=True,
)

DryRunOpt = Annotated[
    bool,
    typer.Option("--dry-run", help="Read the source and check everything against the lake; write nothing. Example: --dry-run"),
]


@app.command("mlflow")
@through_funnel
def mlflow(
    tracking_uri: Annotated[
        str,
        typer.Option("--from", metavar="TRACKING_URI", help="The MLflow registry: a SQLite file (path or sqlite:///path) or a server URL. Example: --from sqlite:///mlflow.db", show_default=False),
    ],
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Import an MLflow model registry: models, versions (numbers, times, users, runs, metrics, params, git, datasets), tags, descriptions, stages and aliases (as deployments). Re-running imports only what is new.

    Example: catalog import mlflow --from sqlite:///mlflow.db
    """
    _say(open_registry().import_mlflow(tracking_uri, dry_run=dry_run), as_json)


@app.command("gto")
@through_funnel
def gto(
    repo: Annotated[
        str,
        typer.Option("--repo", metavar="PATH", help="The git repository GTO keeps its registry in. Example: --repo ./models-repo", show_default=False),
    ],
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Import a GTO registry from its git tags (registrations, stage assignments, deprecations, with taggers and dates) and artifacts.yaml. Re-running imports only what is new.

    Example: catalog import gto --repo ./models-repo
    """
    _say(open_registry().import_gto(repo, dry_run=dry_run), as_json)


def _say(report: Any, as_json: bool) -> None:
    if as_json:
        dump_json(report)
        return
    verb = "would import" if report.dry_run else "imported"
    typer.echo(f"{verb} from {safe(report.source)}: {report.versions} version(s) and {report.events} decision(s) "
               f"of {len(report.models)} model(s)"
               + (f", {report.approvals_added} approval(s) added by the import" if report.approvals_added else "")
               + (f"; {report.already_imported} already in the lake" if report.already_imported else ""))
    for line in report.not_brought:
        typer.echo(f"  not brought: {safe(line)}")
