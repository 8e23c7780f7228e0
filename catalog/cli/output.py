"""How the CLI shows what the library returns: lines and tables for people, JSON for scripts.

Lake text is input like any other: every value shown to people goes through
:func:`safe` (one line, terminal controls escaped); ``--json`` is exact instead.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import typer

from .. import terminal

# Characters a terminal acts on (C0, DEL, C1) or that reorder what it shows (bidi
# controls): lake text is input like any other, and reaches a terminal escaped.
_UNSAFE = {c: f"\\x{c:02x}" for c in [*range(0x00, 0x20), *range(0x7F, 0xA0)]}
_UNSAFE.update({c: f"\\u{c:04x}" for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]})
_UNSAFE.update({ord("\n"): " ", ord("\t"): " "})


def safe(value: Any) -> str:
    """``value`` as text fit for a terminal: one line, control characters escaped
    (ESC shows as \\x1b). ``--json`` output is exact instead."""
    return str(value).translate(_UNSAFE)


def cell(value: Any) -> str:
    """``value`` as one table cell: UTC times to the second, floats short, maps as k=v."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%SZ") if value.utcoffset() is not None else value.isoformat()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return ", ".join(f"{safe(k)}={cell(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(cell(v) for v in value)
    return safe(value)


def table(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], *, empty: str = "(none)", width: int = 60
) -> None:
    """``rows`` as a table on stdout (rich on a terminal, plain columns cut at ``width`` when piped), or ``empty``."""
    if not rows:
        typer.echo(empty)
        return
    cells = [[cell(r.get(c)) for c in columns] for r in rows]
    if terminal.is_terminal(sys.stdout):
        terminal.print_table(columns, cells)
        return
    header = [safe(c).upper() for c in columns]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(header)]
    widths = [min(w, width) for w in widths]
    typer.echo("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
    for row in cells:
        typer.echo("  ".join((v if len(v) <= w else v[: w - 1] + "…").ljust(w) for v, w in zip(row, widths)).rstrip())


def dump_json(value: Any) -> None:
    """``value`` (a record, a list of records or plain data) as indented JSON on stdout."""
    from ..records import _plain

    if hasattr(value, "to_dict"):
        value = value.to_dict()
    elif isinstance(value, list):
        value = [v.to_dict() if hasattr(v, "to_dict") else v for v in value]
    typer.echo(json.dumps(_plain(value), indent=2, ensure_ascii=False, default=str))



def say_event(event: Any, as_json: bool) -> None:
    """The one line that confirms a decision (approve, deploy, rollback, redact, ...), or its JSON."""
    if as_json:
        dump_json(event)
        return
    where = f" on {event.target}" if event.target else ""
    what = {"approve": "approved", "reject": "rejected", "deprecate": "deprecated", "deploy": "deployed"}.get(event.kind, event.kind)
    if event.kind == "approve" and event.state is None:
        got, need = event.evidence.get("approvals"), event.evidence.get("quorum")
        typer.echo(f"{event.model} v{event.version}: approval {got} of {need} recorded by {safe(event.actor)}; still a candidate")
    elif event.kind == "redact":
        fields = ", ".join(event.evidence.get("fields", []))
        scope = f"v{event.version}" if event.version else "every version"
        typer.echo(f"{event.model} {scope}: {fields} removed from {event.evidence.get('files_rewritten')} file(s) by {safe(event.actor)}")
    elif event.kind == "rollback":
        typer.echo(f"{event.target}: {event.model} rolled back to v{event.version} (from v{event.evidence.get('from_version')}) by {safe(event.actor)}")
    elif event.kind == "undeploy":
        typer.echo(f"{event.target}: runs no version of {event.model} any more (was v{event.version}); by {safe(event.actor)}")
    elif event.kind == "rename":
        typer.echo(f"{event.renamed_from} renamed to {event.model} by {safe(event.actor)}")
    elif event.kind in ("tag", "describe", "delete", "create"):
        scope = f"{event.model} v{event.version}" if event.version else event.model
        done = {"tag": "tags changed", "describe": "description changed" if event.description else "description cleared",
                "delete": "deleted", "create": "created"}[event.kind]
        typer.echo(f"{scope}: {done} by {safe(event.actor)}")
    else:
        typer.echo(f"{event.model} v{event.version} {what}{where} by {safe(event.actor)}")
