"""What the CLI shows people at a terminal, the one shape of an error line, and the
one error funnel every command goes through (the typer commands and the plain
`catalog resolve` alike).

Tables go through rich only when stdout is a terminal, and progress bars only
when stderr is one; piped output stays plain text and ``--json`` stays JSON.
rich is imported only then, so piped runs (and the plain `catalog resolve`,
which uses :func:`error_line`) never pay for it. Registry text is data, never
markup: every cell and task name is shown literally.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any, Optional


def is_terminal(stream: IO[Any]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # replaced or closed streams
        return False


def error_line(message: str, *, exit_code: int, kind: str, fields: Optional[Mapping[str, Any]] = None,
               as_json: bool = False) -> str:
    """``Error: message``, or with ``as_json`` one JSON object on one line:
    ``{"error": message, "exit_code": 1, "kind": "ModelNotFound", "fields": {"model": "churn"}}``."""
    if not as_json:
        return f"Error: {message}"
    return json.dumps({"error": message, "exit_code": exit_code, "kind": kind, "fields": dict(fields or {})},
                      ensure_ascii=False, default=str)


def catalog_error_line(exc: BaseException, *, exit_code: int, as_json: bool) -> str:
    """:func:`error_line` for an exception: a CatalogError's class names its kind and its fields go along."""
    return error_line(str(exc), exit_code=exit_code, kind=type(exc).__name__,
                      fields=getattr(exc, "fields", None), as_json=as_json)


def funnel(
    work: Callable[[], object], *, traceback: bool = False, passthrough: tuple[type[BaseException], ...] = (),
    as_json: bool = False,
) -> int:
    """Run ``work``; return 0, or the exit code of its failure after one line on stderr:
    a CatalogError says what to do (1 refused, 2 malformed), anything unexpected asks
    for a re-run with --traceback. Exceptions in ``passthrough`` propagate. With ``as_json``
    the line is a JSON object (see :func:`error_line`)."""
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
        if "duckdb" in sys.modules:   # (Ctrl+C while DuckDB worked, outside the reader: see catalog.engine)
            from .engine import is_interrupt

            if is_interrupt(exc):
                print("Interrupted.", file=sys.stderr, flush=True)
                return 130
        if traceback:
            raise
        print(error_line(f"unexpected {type(exc).__name__}: {exc}. Re-run with --traceback and report it.",
                         exit_code=1, kind="unexpected", as_json=as_json), file=sys.stderr, flush=True)
        return 1


def print_table(columns: Sequence[str], cells: Sequence[Sequence[str]]) -> None:
    """A rich table on stdout; every header and cell is literal text (no markup, no highlighting)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(header_style="bold")
    for column in columns:
        table.add_column(Text(column.upper()))
    for row in cells:
        table.add_row(*(Text(_printable(value)) for value in row))
    Console(file=sys.stdout, markup=False, highlight=False, emoji=False).print(table)


class ProgressBar:
    """A ``progress(task, done, total)`` callable that draws rich bars on stderr.

    One bar per kind of work (the task's first word); a bar goes when its task
    ends (``done == total``), and the display stops when no bar is left, so
    lines printed between two long steps are not overdrawn.
    """

    def __init__(self) -> None:
        self._bar: Any = None
        self._tasks: dict[str, Any] = {}

    def __call__(self, task: str, done: int, total: Optional[int]) -> None:
        task = _printable(task)
        key = task.split(" ", 1)[0]
        if total is not None and done >= total:
            if key in self._tasks:
                self._bar.remove_task(self._tasks.pop(key))
                if not self._tasks:
                    self.close()
            return
        if self._bar is None:
            self._bar = _start_bar()
        if key not in self._tasks:
            self._tasks[key] = self._bar.add_task(task, total=total)
        self._bar.update(self._tasks[key], description=task, completed=done, total=total)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar, self._tasks = None, {}


def progress_on_stderr() -> Optional[ProgressBar]:
    """A :class:`ProgressBar` when stderr is a terminal, else None (no progress at all)."""
    return ProgressBar() if is_terminal(sys.stderr) else None


def _start_bar() -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("{task.description}", markup=False), BarColumn(), TaskProgressColumn(), TimeRemainingColumn(),
        console=Console(stderr=True, markup=False, highlight=False, emoji=False),
        transient=True, redirect_stdout=False, redirect_stderr=False,
    )
    bar.start()
    return bar


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
