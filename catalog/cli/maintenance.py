"""Commands that look after the lake: check and repair it (doctor), merge its
small files (compact), publish its snapshot for other engines (snapshot).
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from .output import dump_json, safe
from .shell import JsonOpt, open_registry, through_funnel


@through_funnel
def doctor(
    repair: Annotated[bool, typer.Option("--repair", help="Move damaged and foreign files to <lake>/_quarantine/<utc>/ (never deleting them), remove leftover temporary files, write missing anchors and claims. Example: --repair")] = False,
    verify_artifacts: Annotated[bool, typer.Option("--verify-artifacts", help="Re-hash every local artifact and compare it with its registered sha256 and size. Example: --verify-artifacts")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Check the lake: damaged or foreign files, leftovers of crashed writes, rows that break the schema, claims never recorded, the policy file. Exit 1 when something is found.

    Example: catalog doctor --repair --verify-artifacts
    """
    report = open_registry().doctor(repair=repair, verify_artifacts=verify_artifacts)
    if as_json:
        dump_json(report)
    else:
        for f in report.findings:
            typer.echo(f"{f.severity.upper():7}  {safe(f.path)}: {safe(f.problem)}")
            typer.echo(f"         {safe('repaired: ' + f.repaired if f.repaired else 'to do: ' + f.action)}")
        c = report.checked
        summary = (f"checked {c['files']} files, {c['versions']} versions, {c['events']} events, {c['claims']} claims"
                   + (f", {c['artifacts']} local artifacts" if verify_artifacts else ""))
        typer.echo(("clean: " if report.ok else f"{len(report.problems)} problem(s) found; ") + summary)
        if report.quarantine:
            typer.echo(f"quarantined files are in {os.path.join(report.lake, report.quarantine)}")
    if report.exit_code:
        raise typer.Exit(report.exit_code)


@through_funnel
def compact(as_json: JsonOpt = False) -> None:
    """Merge each table's small files into one (safe beside writers, safe to interrupt).

    Example: catalog compact
    """
    result = open_registry().compact()
    if as_json:
        dump_json(result)
        return
    for table, figures in result.items():
        if figures["files_merged"]:
            typer.echo(f"{table}: {figures['files_merged']} files merged into one ({figures['rows']} records)")
        else:
            typer.echo(f"{table}: already compact")


@through_funnel
def snapshot(as_json: JsonOpt = False) -> None:
    """Publish the current state as a Delta Lake log per table, for Spark, Trino, DuckDB, Polars and friends (compact publishes too).

    Example: catalog snapshot
    """
    result = open_registry().snapshot()
    if as_json:
        dump_json(result)
        return
    for table, figures in result.items():
        state = "published" if figures["committed"] is not None else "already current"
        typer.echo(f"{table}: {state}: Delta log {safe(figures['log'])} at version {figures['version']}, {figures['files']} file(s)")
