"""A build on several cores: the pages split into parts, each part rendered and run through
MkDocs by a process of its own, the parts' pages and search entries put together after.

Rendering (Jinja) and MkDocs (Markdown, the theme, the search indexer) are pure Python and
take one core each; a 1,000-model site spends nearly all its time there. A part is the
same build with the other parts' pages as stubs, the mechanism of the incremental build
(:mod:`catalog.site.incremental`): a stub is still a page for MkDocs' navigation, links
and sitemap, but makes no output and no search entry. So every part writes the same
navigation, sitemap and assets, its own pages' HTML and search entries; the first part
(the building process itself) writes the static files and the api/ JSON, takes the other
parts' HTML into its site and merges their search entries in page order. A test holds the
site of a parallel build byte for byte to the serial one's.

Parts are forked (the data document is shared, not copied through a pipe) where ``fork``
exists and more than one core is free; elsewhere, and for small sites, the build is serial.
A part that fails fails the build with its one-line reason; the parts' folders are
temporary and removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import traceback
from collections.abc import Callable, Container, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import SiteBuildFailed
from .output import safe_join

# Below this many pages to render a build stays in one process (forking and a second MkDocs
# run cost more than they save).
MIN_PAGES = 150
# What the first part does besides its pages, per model, in the units of :func:`weight`: the api/
# JSON (encoded, written, then copied by MkDocs) and the static files. At 10,000 models it ran 12 s
# longer than the other part's 147 s before it had this head start (~11 a model).
FIRST_PART_PER_MODEL = 11
RESULT = "part.json"


def jobs_available() -> int:
    """Cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def weight(path: str, context: Mapping[str, Any], document: Mapping[str, Any]) -> int:
    """A rough cost of rendering and building one page (its rows), in proportion to the bytes it
    comes to (at 10,000 models: ~2,500-3,500 per MB of Markdown for every kind of page)."""
    if "model" in context:
        m = context["model"]
        return 40 + 12 * len(m.get("versions", ())) + len(m.get("history", ()))
    if "target" in context:
        t = context["target"]
        return 40 + 8 * len(t.get("deployments", ())) + len(t.get("history", ()))
    if "month" in context:   # (a month of the audit log: its events, each a row of the full event table)
        return 40 + 2 * len(context["month"].get("events", ()))
    if path == "audit.md":   # (the latest events only)
        return 40 + 2 * len(document.get("audit_latest", ()))
    return 40 + 2 * len(document.get("models", ()))


def split(entries: Sequence[tuple[str, str, Mapping[str, Any]]], document: Mapping[str, Any],
          parts: int, unchanged: Container[str] = (), first: int = 0) -> list[set[str]]:
    """The pages in ``parts`` sets of about equal weight (heaviest first, each to the lightest
    part); a page ``unchanged`` since the last build weighs next to nothing. The first part
    starts with ``first``: the work it has besides its pages."""
    load = [first] + [0] * (parts - 1)
    out: list[set[str]] = [set() for _ in range(parts)]
    weighted = sorted(((1 if path in unchanged else weight(path, ctx, document), path) for _t, path, ctx in entries),
                      reverse=True)
    for w, path in weighted:
        i = load.index(min(load))
        out[i].add(path)
        load[i] += w
    return out


def plan(entries: Sequence[tuple[str, str, Mapping[str, Any]]], document: Mapping[str, Any],
         jobs: int | None, unchanged: Container[str] = ()) -> list[set[str]] | None:
    """The parts of a parallel build, or None for a serial one (one core, a small site, or a
    rebuild with few pages to render: a part's MkDocs run over the others' stubs costs more)."""
    if jobs is None:
        jobs = min(jobs_available(), 4)
    if jobs < 2 or not hasattr(os, "fork"):
        return None
    if sum(1 for _t, path, _c in entries if path not in unchanged) < MIN_PAGES:
        return None
    return split(entries, document, jobs, unchanged, first=FIRST_PART_PER_MODEL * len(document.get("models", ())))


class Parts:
    """The other parts, each forked to run ``work(only, folder) -> result``; ``join`` collects them."""

    def __init__(self) -> None:
        self.children: list[tuple[int, Path]] = []

    def start(self, only: set[str], folder: Path, work: Callable[[set[str], Path], Mapping[str, Any]]) -> None:
        folder.mkdir(parents=True)
        pid = os.fork()
        if pid == 0:  # the part: do its work, write its result, and leave without returning
            code = 1
            try:
                signal.signal(signal.SIGINT, signal.SIG_DFL)   # (Ctrl+C: the parent reports it)
                result = dict(work(only, folder))
                (folder / RESULT).write_text(json.dumps(result, default=str), encoding="utf-8")
                code = 0
            except BaseException as exc:  # noqa: BLE001 - anything: reported by the parent, in one line
                with contextlib.suppress(BaseException):
                    detail = str(exc) if isinstance(exc, SiteBuildFailed) else f"{type(exc).__name__}: {exc}"
                    detail = " ".join(detail.split())   # (one line)
                    (folder / RESULT).write_text(json.dumps({"error": detail, "trace": traceback.format_exc()}),
                                                 encoding="utf-8")
            finally:
                os._exit(code)
        self.children.append((pid, folder))

    def join(self) -> list[dict[str, Any]]:
        """Wait for every part; their results, or :class:`SiteBuildFailed` for the first that failed."""
        results: list[dict[str, Any]] = []
        failure: str | None = None
        while self.children:
            pid, folder = self.children.pop(0)
            _, status = os.waitpid(pid, 0)
            try:
                result = json.loads((folder / RESULT).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                result = {"error": f"a part of the build stopped ({_how(status)})"}
            if "error" in result:
                failure = failure or str(result["error"])
                continue
            results.append(result)
        if failure is not None:
            raise SiteBuildFailed(failure)
        return results

    def stop(self) -> None:
        """End the parts still running (the build is being abandoned)."""
        for pid, _ in self.children:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
        for pid, _ in self.children:
            with contextlib.suppress(OSError):
                os.waitpid(pid, 0)
        self.children.clear()


def _how(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"exit status {os.WEXITSTATUS(status)}" if os.WIFEXITED(status) else f"status {status}"


def take_pages(site: Path, part_site: Path, dests: Sequence[str]) -> None:
    """Move the HTML a part built (``dests``, relative paths it wrote) into ``site``."""
    for dest in dests:
        source, target = safe_join(part_site, dest), safe_join(site, dest)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(source, target)


def search_entries(site: Path) -> list[dict[str, Any]]:
    """The entries of a site's search index (none without one)."""
    index = site / "search" / "search_index.json"
    if not index.is_file():
        return []
    docs = json.loads(index.read_text(encoding="utf-8")).get("docs", [])
    return docs if isinstance(docs, list) else []
