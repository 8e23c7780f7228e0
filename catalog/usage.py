"""Usage errors follow the one-line error rule.

typer reports a missing option, a bad value or an unknown command in a boxed,
multi-line panel. :class:`OneLineUsage`, the app's group class, turns them into
the one line every other error is: ``Error: missing option '--target' / '-t'
(see: catalog deploy --help)`` on stderr, exit 2, or a JSON object when
``--json`` is among the arguments. Living in the group's ``main`` it holds for
the console script and for ``CliRunner().invoke(app, ...)`` alike.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, Optional

import typer
from typer.core import TyperGroup

from .terminal import error_line


class OneLineUsage(TyperGroup):
    def main(  # type: ignore[override]
        self,
        args: Optional[Sequence[str]] = None,
        prog_name: Optional[str] = None,
        complete_var: Optional[str] = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        argv = list(sys.argv[1:] if args is None else args)
        try:
            result = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.TyperException as exc:  # typer's usage errors all derive from it
            code = getattr(exc, "exit_code", 2)
            if type(exc).__name__ != "NoArgsIsHelpError":  # `catalog` alone: the help is already shown
                print(usage_line(exc, argv, code), file=sys.stderr, flush=True)
            sys.exit(code)
        except typer.Abort:
            print("Aborted.", file=sys.stderr, flush=True)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)


def usage_line(exc: Any, argv: Sequence[str], code: int) -> str:
    """One line for a typer usage error, pointing at the help of the command it concerns."""
    message = " ".join(exc.format_message().split()).rstrip(".")
    message = message[:1].lower() + message[1:]
    ctx = getattr(exc, "ctx", None)
    command = ctx.command_path if ctx is not None else "catalog"
    as_json = "--json" in argv[: argv.index("--")] if "--" in argv else "--json" in argv
    return error_line(f"{message} (see: {command} --help)", exit_code=code, kind="UsageError",
                      fields={"command": command}, as_json=as_json)
