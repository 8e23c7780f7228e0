"""The `catalog` console script, and the one error funnel every command goes through.

`catalog resolve` sits on the path of every serving start-up, so its plain form
(`catalog [--lake L] [--actor A] [--config C] resolve REF [--json]`) is answered
here without importing the CLI framework (typer: ~35 ms to import, ~100 ms to
validate parameters); everything else goes to the typer app in ``catalog.cli``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .terminal import catalog_error_line, error_line

_GLOBAL_VALUE_OPTIONS = {"--lake": "lake", "--actor": "actor", "--config": "config"}


def funnel(
    work: Callable[[], object], *, traceback: bool = False, passthrough: tuple[type[BaseException], ...] = (),
    as_json: bool = False,
) -> int:
    """Run ``work``; return 0, or the exit code of its failure after one line on stderr:
    a CatalogError says what to do (1 refused, 2 malformed), anything unexpected asks
    for a re-run with --traceback. Exceptions in ``passthrough`` propagate. With ``as_json``
    the line is a JSON object (see :func:`catalog.terminal.error_line`)."""
    from .errors import CatalogError

    try:
        work()
        return 0
    except passthrough:
        raise
    except CatalogError as exc:
        print(catalog_error_line(exc, exit_code=exc.exit_code, as_json=as_json), file=sys.stderr, flush=True)
        return exc.exit_code
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr, flush=True)
        return 130
    except BrokenPipeError:
        # The reader went away (`catalog list | head`): stop quietly, as shell tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:  # noqa: BLE001 - the funnel's last resort
        if traceback:
            raise
        print(error_line(f"unexpected {type(exc).__name__}: {exc}. Re-run with --traceback and report it.",
                         exit_code=1, kind="unexpected", as_json=as_json), file=sys.stderr, flush=True)
        return 1


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
