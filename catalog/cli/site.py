"""Commands for the catalog site: build it, serve it, and the demo that tours the
sample lake and builds its site.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from .output import dump_json, safe, table
from .shell import AsOfOpt, JsonOpt, open_registry, through_funnel

if TYPE_CHECKING:
    from ..registry import Registry


OutOpt = Annotated[str, typer.Option("--out", "-o", help="The site folder. Example: --out public")]


TemplatesOpt = Annotated[Optional[str], typer.Option(
    "--templates", help="A folder of your own templates (and assets) that win over the defaults. Example: --templates site_templates")]
NoSqlPageOpt = Annotated[bool, typer.Option(
    "--no-sql-page", help="Leave out the SQL page (DuckDB-WASM, fetched once from the npm registry, then cached). Example: --no-sql-page")]
JobsOpt = Annotated[Optional[int], typer.Option(
    "--jobs", "-j", min=1, help="Processes that render pages and run MkDocs, each over a part of the site (default: the cores free, at most 4). Example: --jobs 1")]
MkdocsOpt = Annotated[Optional[str], typer.Option(
    "--mkdocs-config", help="Your own mkdocs.yml, laid over the default configuration. Example: --mkdocs-config mkdocs.yml")]


def _build(registry: Registry, out: str, as_of: str | None = None, *,
           templates: str | None = None, mkdocs_config: str | None = None, sql_page: bool | None = None,
           jobs: int | None = None) -> Any:
    from ..site import build_site

    typer.echo(f"Building the catalog site of {registry.location} into {out} ...", err=True)
    report = build_site(registry, out, registry.config, as_of=as_of, templates=templates, mkdocs_config=mkdocs_config,
                        sql_page=sql_page, jobs=jobs)
    for model, found in report.problems.items():
        for problem in found:
            typer.echo(f"warning: {model}: {safe(problem)}", err=True)
    return report


@through_funnel
def build(out: OutOpt = "site", as_of: AsOfOpt = None, templates: TemplatesOpt = None,
          mkdocs_config: MkdocsOpt = None, no_sql_page: NoSqlPageOpt = False, jobs: JobsOpt = None,
          as_json: JsonOpt = False) -> None:
    """Render the searchable catalog site (MkDocs Material, strict) from the lake.

    Example: catalog build --out site
    """
    report = _build(open_registry(), out, as_of, templates=templates, mkdocs_config=mkdocs_config,
                    sql_page=False if no_sql_page else None, jobs=jobs)
    for warning in report.warnings:
        if warning.startswith("the site has no SQL page"):
            typer.echo(f"note: {warning}", err=True)
    if as_json:
        dump_json(report.to_dict())
        return
    seconds = sum(report.timings.values())
    typer.echo(f"Built {report.pages} pages for {report.models} models ({report.versions} versions) "
               f"into {report.out_dir} in {seconds:.1f} s.")
    typer.echo(f"Open it: catalog serve --out {out}   (then http://127.0.0.1:8000/)")


@through_funnel
def serve(
    out: OutOpt = "site",
    port: Annotated[int, typer.Option("--port", "-p", help="Port on 127.0.0.1. Example: --port 8000")] = 8000,
) -> None:
    """Serve the built site on 127.0.0.1 (Ctrl+C stops it).

    Example: catalog serve --port 8000
    """
    from ..site import make_server, run_server

    server = make_server(out, port, quiet=False)  # bound first: a busy port is refused before we say "Serving"
    typer.echo(f"Serving {out} at http://127.0.0.1:{server.server_address[1]}/ (Ctrl+C to stop)")
    run_server(server)



@through_funnel
def demo(
    out: OutOpt = "site",
    no_site: Annotated[bool, typer.Option("--no-site", help="Only the tour; do not build the site. Example: --no-site")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Tour the sample lake (created at --lake if it is not there yet) and build its site.

    Example: catalog demo
    """
    from ..sample import tour

    registry = open_registry()
    if not no_site:
        from ..site import check_folder

        check_folder(out, registry.root)  # refuse before the sample lake is created
    report = tour(registry)
    if as_json:
        dump_json(report)
        return
    lake = registry.root
    if "://" not in lake and not os.path.relpath(lake).startswith(".."):
        lake = os.path.relpath(lake)
    typer.echo(f"Model Catalog demo: lake {lake}{' (sample created)' if report['created'] else ''}")
    typer.echo(f"{report['models']} models, {report['versions']} versions, {report['decisions']} decisions\n")
    typer.echo("Running now:")
    table(report["deployments"], ["model", "target", "version", "since", "by", "how"])
    typer.echo("\nLatest approved:")
    table(report["latest_approved"], ["model", "version", "approved_at", "approved_by"])
    typer.echo(f"\nRecent approvals, with the gates they passed (policy: {report['policy'] or 'none'}):")
    table(report["approvals"], ["at", "actor", "model", "version", "state", "gates"])
    typer.echo("\nRollback candidates (first choice per target):")
    table(report["rollback"], ["model", "target", "version", "last_deployed_at"])
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
