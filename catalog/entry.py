"""The `catalog` console script: the plain `catalog resolve`, else the typer app.

`catalog resolve` sits on the path of every serving start-up, so its plain form
(`catalog [--lake L] [--actor A] [--config C] resolve REF [--json]`) is answered
here without importing the CLI framework (typer's import and parameter handling
cost more than the lookup itself); everything else goes to the typer app in
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
    from .registry import Registry

    env = os.environ.get
    registry = Registry(options.get("lake") or env("CATALOG_LAKE"), actor=options.get("actor") or env("CATALOG_ACTOR"),
                        config=options.get("config") or env("CATALOG_CONFIG"))
    uri = registry.resolve(options["ref"])
    if options["json"]:
        print(json.dumps({"ref": options["ref"], "artifact_uri": uri}, indent=2, ensure_ascii=False))
    else:
        print(uri)


def main() -> None:
    """Console entry point (`catalog`, `python -m catalog`)."""
    try:
        options = plain_resolve(sys.argv[1:])
        if options is None:
            from .cli import app  # the slow part of start-up: Ctrl+C here is caught below

            app()
            return
        code = funnel(lambda: _resolve(options), as_json=options["json"])
    except KeyboardInterrupt:
        # Ctrl+C outside a command's funnel (while importing, parsing): no traceback.
        print("Interrupted.", file=sys.stderr, flush=True)
        code = 130
    sys.exit(code)
