"""How long work reports how far it has got, without printing anything.

The library never prints; a caller who wants progress passes one callable,
``Registry(..., progress=fn)``, called as ``fn(task, done, total)``: ``task``
names the work, its first word the kind of work and the rest the step now under
way ("hash model.pkl", "compact events", "build rendering pages"), ``done``
grows, ``total`` is None when unknown; ``done == total`` ends the task. The CLI draws a bar on stderr from it
when stderr is a terminal. Calls are throttled (:class:`Ticker`), so a callable
may be slow-ish without slowing the loop that reports.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Optional

Progress = Callable[[str, int, Optional[int]], None]

INTERVAL = 0.1  # seconds between two reports of one task


class Ticker:
    """Counts ``done`` for one task and reports it at most every :data:`INTERVAL`
    seconds, plus once at the start and once at the end (:meth:`finish`)."""

    __slots__ = ("_progress", "task", "total", "done", "_next")

    def __init__(self, progress: Progress, task: str, total: int | None = None) -> None:
        self._progress, self.task, self.total, self.done = progress, task, total, 0
        self._next = time.monotonic() + INTERVAL
        progress(task, 0, total)

    def __call__(self, amount: int = 1) -> None:
        self.done += amount
        if time.monotonic() >= self._next:
            self._next = time.monotonic() + INTERVAL
            self._progress(self.task, self.done, self.total)

    def finish(self) -> None:
        self._progress(self.task, self.done, self.total if self.total is not None else self.done)


def ticker(progress: Progress | None, task: str, total: int | None = None) -> Ticker | None:
    """A :class:`Ticker` for ``task``, or None when nobody listens."""
    return Ticker(progress, task, total) if progress is not None else None


def stages(progress: Progress | None, task: str, names: tuple[str, ...]) -> Callable[[], None]:
    """A callable that reports the next stage of ``task`` each time it is called
    ("build rendering pages", 2 of 4); the call after the last stage ends the task."""
    done = -1

    def step() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(f"{task} {names[done]}" if done < len(names) else task, done, len(names))

    return step
