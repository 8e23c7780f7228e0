"""Starting and looking after a lake: ``init``, ``doctor``, ``compact``, ``snapshot``."""

from __future__ import annotations

import os
from typing import Any

from .errors import CatalogError, LakeNotFound
from .lake import compact as compact_table
from .lake.snapshot import publish, publish_all, published
from .records import InitReport
from .session import Session


def init(s: Session, config_file: str | os.PathLike[str] | None) -> InitReport:
    from .config import FILE_NAME, STARTER

    chosen = config_file or (s.config_arg if isinstance(s.config_arg, (str, os.PathLike)) else None)
    path = os.path.abspath(os.fspath(chosen or FILE_NAME))
    lake_created = s.lake.create()
    config_created = False
    if not os.path.exists(path):
        with open(path, "x", encoding="utf-8") as fh:
            fh.write(STARTER)
        config_created = True
    return InitReport(lake=s.lake.storage.location, lake_created=lake_created, config=path, config_created=config_created)


def doctor(s: Session, repair: bool, verify_artifacts: bool) -> Any:
    from .doctor import Finding, doctor
    from .doctor import wording as say
    from .errors import ConfigInvalid

    def config_check(root: str) -> list[Finding]:
        try:
            config = s.config
        except ConfigInvalid as exc:
            return [Finding("error", str(getattr(exc, "path", "catalog.toml")), *say.config_invalid(exc.detail))]
        if config.permissive:
            return [Finding("info", "catalog.toml", *say.no_policy_file())]
        return []

    report = doctor(s.lake, repair=repair, verify_artifacts=verify_artifacts, checks=[config_check], progress=s.progress)
    if repair:  # a file moved aside leaves the snapshot too, where there is one
        for table in ("versions", "events"):
            if published(s.lake, table).version >= 0:
                publish(s.lake, table)
    return _with_documents(s, report, repair)


def _with_documents(s: Session, report: Any, repair: bool) -> Any:
    """The doctor's report and the resolve documents' findings (catalog.resolving), checked
    after any repair of the tables, since they derive from them; with ``repair``, the
    documents found missing, stale or wrong are written again."""
    from dataclasses import replace

    from .doctor import Finding
    from .resolving import check_documents, repair_documents

    if not any(f.severity == "error" for f in report.findings) or repair:
        try:
            found = check_documents(s)
        except CatalogError:
            return report  # the tables' findings say why the lake cannot be read
    else:
        return report  # the views cannot be trusted until the tables are repaired
    done = repair_documents(s, [model for *_, model in found if model]) if repair else set()
    extra = [Finding(severity, path, problem, action,
                     repaired="written again from the events" if model and model in done else None)
             for severity, path, problem, action, model in found]
    return replace(report, findings=(*report.findings, *extra))


def compact_documents(s: Session) -> int:
    """Write the resolve documents that are missing (``catalog compact``); returns how many."""
    from .resolving import rebuild

    try:
        return len(rebuild(s))
    except CatalogError:
        return 0  # the lake cannot be read now (a damaged file: doctor says which); resolve queries it


def compact(s: Session) -> dict[str, dict[str, int]]:
    if not s.lake.exists():
        raise LakeNotFound(lake=s.location)
    out = {}
    for done, table in enumerate(("versions", "events")):
        if s.progress is not None:
            s.progress(f"compact {table}", done, 2)
        files, rows = compact_table(s.lake, table)
        out[table] = {"files_merged": files, "rows": rows}
        publish(s.lake, table)  # the snapshot, even when the table was already compact
    if s.progress is not None:
        s.progress("compact", 2, 2)
    compact_documents(s)  # derived: the lake's own files come first
    return out


def snapshot(s: Session) -> dict[str, dict[str, Any]]:
    """Publish the lake's current files as a Delta log per table (catalog.lake.snapshot)."""
    if not s.lake.exists():
        raise LakeNotFound(lake=s.location)
    return publish_all(s.lake)
