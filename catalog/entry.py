"""The `catalog` console script: the plain `catalog resolve`, else the typer app.

`catalog resolve` sits on the path of every serving start-up, so its plain form
(`catalog [--lake L] [--actor A] [--config C] resolve REF [--json]`) is answered
here without importing the CLI framework (typer's import and parameter handling
cost more than the lookup itself), from the model's resolve document alone
(catalog.lake.serving: one small file, no DuckDB, no pyarrow) when it can say,
else through the Registry's query path; everything else goes to the typer app in
``catalog.cli``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from .terminal import funnel

_GLOBAL_VALUE_OPTIONS = {"--lake": "lake", "--actor": "actor", "--config": "config"}


def plain_resolve(argv: Sequence[str]) -> dict[str, Any] | None:
    """The options of a plain `catalog [--lake L] [--actor A] [--config C] resolve REF [--json]`,
    or None for anything else (which typer then parses as usual)."""
    found: dict[str, Any] = {"json": False}
    args = list(argv)
    while len(args) > 1 and args[0] in _GLOBAL_VALUE_OPTIONS:
        option, value = args.pop(0), args.pop(0)
        found[_GLOBAL_VALUE_OPTIONS[option]] = value
    if not args or args.pop(0) != "resolve":
        return None
    if "--json" in args:
        args.remove("--json")
        found["json"] = True
    if len(args) != 1 or args[0].startswith("-"):
        return None
    found["ref"] = args[0]
    return found


def _resolve(options: dict[str, Any]) -> None:
    env = os.environ.get
    lake, actor = options.get("lake") or env("CATALOG_LAKE"), options.get("actor") or env("CATALOG_ACTOR")
    uri = _from_document(lake, actor, options["ref"])
    if uri is None:  # the query path: DuckDB
        from .registry import Registry

        registry = Registry(lake, actor=actor, config=options.get("config") or env("CATALOG_CONFIG"))
        uri = registry.resolve(options["ref"])
    if options["json"]:
        print(json.dumps({"ref": options["ref"], "artifact_uri": uri}, indent=2, ensure_ascii=False))
    else:
        print(uri)


def _from_document(lake: str | None, actor: str | None, ref: str) -> str | None:
    """The answer of the model's resolve document (catalog.lake.serving), read without
    DuckDB or pyarrow; None when the query path must answer (no document, not current,
    a pin it lacks, or a refusal it cannot word exactly as the query path would)."""
    from . import validate
    from .lake.storage import DEFAULT_LAKE, open_storage
    from .resolving import resolve_plain

    if actor is not None:
        validate.actor(actor)  # refused as Registry(actor=...) refuses it
    return resolve_plain(open_storage(lake or DEFAULT_LAKE), ref)


def main() -> None:
    """Console entry point (`catalog`, `python -m catalog`)."""
    try:
        options = plain_resolve(sys.argv[1:])
        if options is None:
            from .cli import app  # the slow part of start-up: Ctrl+C here is caught below
            from .engine import note_interrupts

            note_interrupts()   # (a Ctrl+C that DuckDB keeps to itself is raised after its query)
            app()
            return
        code = funnel(lambda: _resolve(options), as_json=options["json"])
    except KeyboardInterrupt:
        # Ctrl+C outside a command's funnel (while importing, parsing): no traceback.
        print("Interrupted.", file=sys.stderr, flush=True)
        code = 130
    sys.exit(code)
