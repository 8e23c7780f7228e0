"""Build the catalog site: read the lake, compute the document, render, run MkDocs.

Reads go through the Registry API only (the stable views, the same the CLI
uses), with a handful of bulk queries rather than one query per model.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..engine import named_sql
from ..errors import InvalidPort, InvalidValue, PortUnavailable, SiteBuildFailed, UnsafeSitePath
from ..progress import stages
from ..records import Candidate, Event, Exclusion, LineageEdge, Version
from ..registry import Registry
from .context import SiteRecords, api_model, api_models, make_document
from .layers import layered_config
from .output import check_folder, safe_join, staged
from .render import Renderer, render_pages
from .sqlpage import write_sql_page


@dataclass
class BuildReport:
    """What a build did: where the site is, how many pages, how long each stage took."""

    out_dir: str
    pages: int
    models: int
    versions: int
    timings: dict[str, float] = field(default_factory=dict)
    problems: dict[str, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "out_dir": self.out_dir, "pages": self.pages, "models": self.models, "versions": self.versions,
            "timings": {k: round(v, 3) for k, v in self.timings.items()}, "problems": self.problems,
        }


# The bulk reads the site makes (site.sql), by name.
_READS = ("versions", "events", "candidates", "excluded", "lineage")


def read_records(registry: Registry, *, as_of: str | datetime | None = None) -> SiteRecords:
    """Everything the site shows, in a handful of bulk reads over the stable views."""
    queries = named_sql(__package__, "site.sql")
    rows = {name: registry.sql(queries[name], as_of=as_of).rows for name in _READS}
    return SiteRecords(
        versions=[Version.from_row(r) for r in rows["versions"]],
        deployments=registry.deployments(as_of=as_of),
        events=[Event.from_row(r) for r in rows["events"]],
        candidates=[Candidate.from_row(r) for r in rows["candidates"]],
        excluded=[Exclusion.from_row(r) for r in rows["excluded"]],
        lineage=[LineageEdge.from_row(r) for r in rows["lineage"]],
        summaries=registry.list(as_of=as_of),
        counts=registry.counts(as_of=as_of),
        lake=registry.location,
    )


def write_pages(document: Mapping[str, Any], build_dir: Path, renderer: Renderer,
                extra: Mapping[str, Any] | None = None) -> tuple[int, dict[str, list[str]]]:
    """Write the Markdown pages, static assets and api/ JSON into ``build_dir``.

    Every path is made by :func:`safe_join`: a page or file whose name would leave
    ``build_dir`` (a forged model name such as ``../../x``) is skipped and reported.
    """
    rendered, problems = render_pages(renderer, document, extra)
    written = 0
    for rel, text in rendered.items():
        target = _target(build_dir, rel, rel, problems)
        if target is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            written += 1
    for rel, source in renderer.static_files().items():
        target = _target(build_dir, rel, rel, problems)
        if target is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
    api = build_dir / "api"
    (api / "models").mkdir(parents=True, exist_ok=True)
    _dump(api / "models.json", api_models(document))
    for model in document["models"]:
        target = _target(build_dir, f"api/models/{model['segment'] or model['name']}.json", model["name"], problems)
        if target is not None:
            _dump(target, api_model(model, document["generated_at"]))
    return written, problems


def _target(root: Path, rel: str, key: str, problems: dict[str, list[str]]) -> Path | None:
    try:
        return safe_join(root, rel)
    except UnsafeSitePath as exc:
        problems.setdefault(key, []).append(f"skipped: {exc}")
        return None


def _dump(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def run_mkdocs(build_dir: Path, out_dir: Path, config_file: Path | None = None, *, accelerate: bool = True) -> list[str]:
    """``mkdocs build --strict`` with docs_dir = ``build_dir`` and site_dir = ``out_dir``;
    ``config_file`` (a site owner's mkdocs.yml) is laid over the default configuration.
    ``accelerate``: with :mod:`catalog.site.accel` (the same output, faster)."""
    from mkdocs.commands.build import build
    from mkdocs.config import load_config
    from mkdocs.exceptions import Abort, ConfigurationError

    from .accel import Accelerator, RawBlocks

    collect = _Collect()
    logger = logging.getLogger("mkdocs")
    logger.addHandler(collect)
    try:
        config = load_config(
            config_file=layered_config(config_file), docs_dir=str(build_dir), site_dir=str(out_dir), strict=True,
        )
        if accelerate:
            blocks = RawBlocks()
            config.markdown_extensions.append(blocks)
            config.plugins["catalog-accelerator"] = Accelerator(blocks)
        build(config)
    except (Abort, ConfigurationError) as exc:
        detail = "; ".join(collect.messages[:5]) or str(exc)
        raise SiteBuildFailed(detail) from None
    finally:
        logger.removeHandler(collect)
    return collect.messages


def build_site(
    registry: Registry,
    out_dir: str | os.PathLike[str] = "site",
    config: Any = None,
    *,
    dashboard_templates: Mapping[str, str] | None = None,
    templates: str | os.PathLike[str] | None = None,
    mkdocs_config: str | os.PathLike[str] | None = None,
    build_dir: str | os.PathLike[str] | None = None,
    as_of: str | datetime | None = None,
    sql_page: bool = True,
) -> BuildReport:
    """Render the catalog site of ``registry`` into ``out_dir``; returns a report.

    ``config`` (a mapping or a settings object) may carry ``dashboard_templates``
    or ``dashboards`` (name → URL with ``{model}``, ``{version}``, ``{target}``),
    ``templates`` (an overrides folder) and ``mkdocs_config``; the keyword
    arguments of the same names win. ``build_dir`` keeps the generated Markdown
    (default: a temporary folder, removed afterwards).

    ``out_dir`` and ``build_dir`` are replaced only when they are new, empty, or hold
    nothing but what an earlier build wrote there (its ``.catalog-site`` marker lists
    it); a folder that is, contains or lies inside the lake is refused. Refusals
    (:class:`OutputInLake`, :class:`OutputNotOurs`, :class:`OutputNotFolder`) come
    before anything is read or written.

    ``sql_page`` adds the SQL page (``query/``: DuckDB-WASM over Parquet snapshots of
    the lake, see :mod:`catalog.site.sqlpage`); its files come from the npm registry
    once, then from a cache (:mod:`catalog.site.wasm`).
    """
    if dashboard_templates is None:
        dashboard_templates = _option(config, "dashboard_templates", "dashboards")
    dashboards = dict(dashboard_templates or {})
    overrides = templates if templates is not None else _option(config, "templates")
    own_mkdocs = mkdocs_config or _option(config, "mkdocs_config")
    mkdocs_file = Path(own_mkdocs) if own_mkdocs else None
    out = check_folder(out_dir, registry.root)
    kept = None if build_dir is None else check_folder(build_dir, registry.root)
    if kept is not None and (kept == out or out in kept.parents or kept in out.parents):
        raise InvalidValue(f"build_dir {os.fspath(build_dir or kept)!r} and the site folder {os.fspath(out_dir)!r} overlap: "
                           "keep the Markdown in a folder of its own")
    timings: dict[str, float] = {}
    step = stages(getattr(registry, "progress", None), "build", ("reading the lake", "rendering pages", "running MkDocs"))

    step()
    start = time.perf_counter()
    records = read_records(registry, as_of=as_of)
    timings["read"] = time.perf_counter() - start

    start = time.perf_counter()
    document = make_document(records, dashboards)
    timings["document"] = time.perf_counter() - start

    with contextlib.ExitStack() as stack:
        if kept is None:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="catalog-build-")))
        else:
            folder = stack.enter_context(staged(kept))
        step()
        start = time.perf_counter()
        renderer = Renderer(overrides)
        count, render_problems = write_pages(document, folder, renderer, {"views_sql": _portable_views(registry)})
        timings["render"] = time.perf_counter() - start
        start = time.perf_counter()
        count += write_sql_page(registry, folder, renderer, document, as_of=as_of, enabled=sql_page)
        timings["sql"] = time.perf_counter() - start

        step()
        start = time.perf_counter()
        with staged(out) as site:
            warnings = run_mkdocs(folder, site, mkdocs_file)
        timings["mkdocs"] = time.perf_counter() - start
        step()

    problems = {k: list(v) for k, v in document["problems"].items()}
    for key, found in render_problems.items():
        problems.setdefault(key, []).extend(found)
    return BuildReport(
        out_dir=str(out), pages=count, models=len(document["models"]), versions=document["counts"]["versions"],
        timings=timings, problems=problems, warnings=warnings,
    )


def _option(config: Any, *names: str) -> Any:
    for name in names:
        value = config.get(name) if isinstance(config, Mapping) else getattr(config, name, None)
        if value is not None:
            return value
    return None


def _portable_views(registry: Registry) -> str:
    """The view definitions with this machine's lake path replaced by a placeholder."""
    return registry.views_sql().replace(registry._lake.root.rstrip("/"), "LAKE")  # (an object store's: its mirror)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass


def make_server(out_dir: str | os.PathLike[str] = "site", port: int = 8000, host: str = "127.0.0.1",
                quiet: bool = True) -> http.server.ThreadingHTTPServer:
    """An HTTP server for the built site, bound to ``host:port`` (port 0 picks a free one); not started.

    Raises :class:`InvalidPort` for a port outside 0-65535 and :class:`PortUnavailable`
    when the port is taken (or not permitted), before anything is served.
    """
    root = Path(out_dir)
    if not (root / "index.html").is_file():
        raise SiteBuildFailed(f"{root} holds no built site (no index.html): run `catalog build --out {root}` first")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise InvalidPort(port=port)
    handler = functools.partial(_QuietHandler if quiet else http.server.SimpleHTTPRequestHandler, directory=str(root))
    try:
        return http.server.ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise PortUnavailable(port=port, host=host, detail=exc.strerror or str(exc)) from None


def run_server(server: http.server.ThreadingHTTPServer) -> None:
    """Serve until interrupted (Ctrl+C), then close the server."""
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def serve(out_dir: str | os.PathLike[str] = "site", port: int = 8000, host: str = "127.0.0.1") -> None:
    """Serve the built site on http://127.0.0.1:PORT/ until interrupted."""
    run_server(make_server(out_dir, port, host, quiet=False))
