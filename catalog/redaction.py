"""Redaction: removing the values of some fields from every lake file, and
recording that it was done (who, when, why, which fields; never the value).

Which fields may be removed is declared in ``fields.FIELDS`` (``redactable``),
plus the ``note`` of events.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from typing import Any

from . import validate as check
from .errors import InvalidValue
from .fields import FIELDS
from .lake.lease import lease_seconds
from .lake.rewrite import rewrite_to_new_file
from .lake.snapshot import publish, retire
from .lifecycle import record
from .records import Event
from .session import Session

REDACTABLE: tuple[str, ...] = (*(f.name for f in FIELDS if f.redactable), "note")
# What events hold of a redactable field: the note, and what describe, tag and create
# events set later (a redaction of tags removes the keys deleted too).
IN_EVENTS: dict[str, tuple[str, ...]] = {"note": ("note",), "description": ("description",),
                                         "tags": ("tags", "tags_deleted")}


def redact(s: Session, model: str, version: int | None, fields: Sequence[str], reason: str) -> Event:
    check.name(model)
    if version is not None:
        check.version(version)
    reason = check.text(reason, "redaction reason", required=True)
    wanted = list(dict.fromkeys(fields))
    unknown = [f for f in wanted if f not in REDACTABLE]
    if not wanted or unknown:
        raise InvalidValue(
            f"cannot redact {', '.join(map(repr, unknown)) or 'nothing'}: give --field among {', '.join(REDACTABLE)}"
        )
    version_fields = [f for f in wanted if f != "note"]
    event_fields = [c for f in wanted for c in IN_EVENTS.get(f, ())]
    if version is None:
        s.require_model(model)
    else:
        s.version(model, version)
    # Every name the model's records were written under (it may have been renamed).
    names = [r["name"] for r in s.q("stored_names", model=model)]
    # Both tables' compaction leases: no compaction merges a file while it is rewritten
    # (its merged file would keep the value). Each rewrite first checks they are still
    # held (renewing them); one lost (this process froze past it) stops the redaction,
    # and running it again finishes the job. A running compaction is waited for (up to
    # a lease's time: one whose process died holding it is taken over once it expires).
    # Each file is rewritten to a new name that supersedes the old one, which goes once
    # the snapshot's Delta log no longer lists it (catalog.lake.snapshot).
    with s.lake.rewriting(wait=lease_seconds() + 5.0) as leases:
        replaced: list[str] = []
        if version_fields:
            blank = _blank(names, version, version_fields, skip_kind=None)
            for path in _files(s, "files_with_versions", names, version):
                leases.check()
                replaced += [path] if rewrite_to_new_file(s.lake.storage, path, blank) else []
        if event_fields:
            blank = _blank(names, version, event_fields, skip_kind="redact")
            for path in _files(s, "files_with_events", names, version):
                leases.check()
                replaced += [path] if rewrite_to_new_file(s.lake.storage, path, blank) else []
            for name in names:
                _scrub_decisions(s, name, version, event_fields)
        leases.check()
        retire(s.lake, replaced)
        # A bucket with versioning keeps the older copies of what was rewritten or removed
        # (here, in the decision claims, and by every earlier compaction): they go too (a
        # folder's storage: no-op).
        for prefix in ("versions", "events", *(f"_decisions/{name}" for name in names)):
            s.lake.storage.purge_history(prefix)
    evidence = {"fields": wanted, "files_rewritten": len(replaced)}
    event = record(s, model, version, "redact", note=reason, evidence=evidence)
    publish(s.lake, "events")  # the snapshot shows the redaction's own record too
    return event


def _scrub_decisions(s: Session, model: str, version: int | None, columns: Sequence[str]) -> None:
    """Null ``columns`` in the event rows the model's decision claims hold (each carries its
    event row, see ``Lake.decide``), as the events' files are: no copy of the value is left."""
    storage = s.lake.storage
    for name in storage.listdir(f"_decisions/{model}"):
        if not name.isdigit():
            continue
        path = f"_decisions/{model}/{name}"
        found = storage.read_tagged(path)
        if found is None:
            continue
        try:
            row = json.loads(found[0])
        except ValueError:
            continue
        if (not isinstance(row, dict) or all(row.get(c) is None for c in columns) or row.get("kind") == "redact"
                or (version is not None and row.get("version") != version)):
            continue
        row.update((c, None) for c in columns)
        storage.replace_if(path, json.dumps(row, sort_keys=True).encode(), found[1])


def _files(s: Session, query: str, names: list[str], version: int | None) -> list[str]:
    root = s.lake.root
    return [os.path.relpath(r["filename"], root).replace(os.sep, "/") for r in s.q(query, models=names, version=version)]


def _blank(names: Sequence[str], version: int | None, fields: Sequence[str], *, skip_kind: str | None) -> Callable[[Any], Any]:
    """A file transform that nulls ``fields`` on the rows of (a model stored under ``names``, version)."""

    def transform(table: Any) -> Any:
        import pyarrow as pa

        models = table.column("model").to_pylist()
        versions = table.column("version").to_pylist()
        kinds = table.column("kind").to_pylist() if skip_kind else [None] * len(models)
        rows = [
            i for i, (m, v, k) in enumerate(zip(models, versions, kinds))
            if m in names and (version is None or v == version) and (skip_kind is None or k != skip_kind)
        ]
        changed = False
        for name in fields:
            if name not in table.column_names or not rows:
                continue
            values = table.column(name).to_pylist()
            if all(values[i] is None for i in rows):
                continue
            for i in rows:
                values[i] = None
            index = table.schema.get_field_index(name)
            table = table.set_column(index, table.schema.field(index), pa.array(values, type=table.schema.field(index).type))
            changed = True
        return table if changed else None

    return transform
