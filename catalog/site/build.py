"""Build the catalog site: read the lake, compute the document, render, run MkDocs.

Reads go through the Registry API only (the stable views, the same the CLI
uses), with a handful of bulk queries rather than one query per model.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import gc
import http.server
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Container, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from mkdocs.plugins import BasePlugin

from ..engine import named_sql
from ..errors import InvalidPort, InvalidValue, PortUnavailable, SiteAssetsUnavailable, SiteBuildFailed, UnsafeSitePath
from ..progress import stages
from ..records import Candidate, Event, Exclusion, LineageEdge, Version
from ..registry import Registry
from . import incremental, parallel, wasm
from .context import SiteRecords, api_model, api_models, make_document
from .layers import layered_config
from .output import Skeleton, check_folder, listed_files, safe_join, staged
from .render import Renderer, _fallback, pages, template_cache
from .sqlpage import PAGE, Ahead, snapshot_files, write_sql_page


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
    reused: int = 0  # pages taken unchanged from the previous site (an incremental build)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "out_dir": self.out_dir, "pages": self.pages, "models": self.models, "versions": self.versions,
            "timings": {k: round(v, 3) for k, v in self.timings.items()}, "problems": self.problems,
            "reused": self.reused,
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


@dataclass
class Written:
    """What :func:`write_pages` wrote: page count, problems, and each page's key (incremental builds)."""

    pages: int
    problems: dict[str, list[str]]
    state: dict[str, dict[str, Any]] = field(default_factory=dict)
    unchanged: set[str] = field(default_factory=set)
    # Pages MkDocs gets without a file (:class:`incremental.Unchanged`): the unchanged ones, and
    # in a part of a parallel build the other parts' pages.
    stubs: list[str] = field(default_factory=list)
    # Files of the previous site whose bytes are the ones this build would write (api/ JSON):
    # not written, linked into the new site after MkDocs. Site path -> what the file was when read.
    kept: dict[str, incremental.Seen] = field(default_factory=dict)
    # Pages rendered into memory rather than files (Markdown path -> Markdown), for :class:`incremental.Unchanged`.
    texts: dict[str, str] = field(default_factory=dict)

    def plugin(self, *more_stubs: str) -> incremental.Unchanged:
        """The MkDocs plugin for these pages (:class:`incremental.Unchanged`): the stubs, ``more_stubs``
        and the pages in memory, which are handed over (no longer held here)."""
        texts, self.texts = self.texts, {}
        return incremental.Unchanged([*self.stubs, *more_stubs], texts)


def write_pages(document: Mapping[str, Any], build_dir: Path, renderer: Renderer,
                extra: Mapping[str, Any] | None = None, *, keys: incremental.Keys | None = None,
                previous: Mapping[str, Mapping[str, Any]] | None = None,
                old_site: Path | None = None, only: Container[str] | None = None, assets: bool = True,
                unchanged: Mapping[str, incremental.Seen] | None = None, old_files: Container[str] = (),
                in_memory: bool = False) -> Written:
    """Write the Markdown pages, static assets and api/ JSON into ``build_dir``.

    Every path is made by :func:`safe_join`: a page or file whose name would leave
    ``build_dir`` (a forged model name such as ``../../x``) is skipped and reported.
    With ``keys``, each page's key is noted; a page in ``unchanged`` (its key and HTML the
    same as in the site ``old_site``, whose keys are ``previous``: found by :func:`reusable_pages`)
    is a stub instead of being rendered (:mod:`catalog.site.incremental`). With ``only`` (one part of a
    parallel build, :mod:`catalog.site.parallel`), the pages not in it are stubs that
    another part builds; without ``assets``, the static files and api/ JSON are left to another part.
    A stub is no file: it is listed in the result's ``stubs`` for :class:`incremental.Unchanged`.
    An api/ JSON file of ``old_site`` (listed in ``old_files``) that holds the bytes this build
    would write is not written but noted in ``kept``, to be linked into the new site.
    ``in_memory``: the pages go to the result's ``texts`` instead of files (static files and api/
    JSON are still written: MkDocs copies them from the folder).
    """
    extra = dict(extra or {})
    problems: dict[str, list[str]] = {}
    done = Written(0, problems)
    for template, path, context in pages(document):
        target = _target(build_dir, path, context["model"]["name"] if "model" in context else path,
                         problems if only is None or path in only else {})
        if target is None:
            continue
        if only is not None and path not in only:
            done.stubs.append(path)
            continue
        before = (previous or {}).get(path)
        if unchanged is not None and path in unchanged:
            assert isinstance(before, Mapping)
            done.stubs.append(path)
            done.state[path] = dict(before)
            done.unchanged.add(path)
            done.pages += 1
            continue
        if not in_memory:
            target.parent.mkdir(parents=True, exist_ok=True)
        recording = incremental.Recording(document)
        try:
            text = renderer.render(template, path, recording, **extra, **context)
        except jinja2.TemplateError as exc:
            if "model" not in context:
                raise
            name = context["model"]["name"]
            problems.setdefault(name, []).append(f"page {path} failed to render: {type(exc).__name__}: {exc}")
            text = _fallback(name)
        if in_memory:   # (as MkDocs would read the file back: universal newlines)
            done.texts[path] = text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text
        else:
            target.write_text(text, encoding="utf-8")
        done.pages += 1
        if keys is not None:
            reads = sorted(recording.read)
            done.state[path] = {"key": keys.key(template, path, context, reads), "reads": reads}
    if not assets:
        return done
    for rel, source in renderer.static_files().items():
        target = _target(build_dir, rel, rel, problems)
        if target is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
    api = build_dir / "api"
    (api / "models").mkdir(parents=True, exist_ok=True)
    (api / "models.json").write_bytes(_json(api_models(document)))
    for model in document["models"]:
        rel = f"api/models/{model['segment'] or model['name']}.json"
        target = _target(build_dir, rel, model["name"], problems)
        if target is None:
            continue
        data = _json(api_model(model))
        found = incremental.same_bytes(safe_join(old_site, rel), data) if old_site is not None and rel in old_files else None
        if found is not None:
            done.kept[rel] = found
        else:
            target.write_bytes(data)
    return done


def reusable_pages(document: Mapping[str, Any], keys: incremental.Keys,
                   previous: Mapping[str, Mapping[str, Any]] | None, old_site: Path) -> dict[str, incremental.Seen]:
    """The pages whose key and HTML are unchanged since the build of ``old_site``, each with what
    its HTML file was when its bytes were checked (:func:`incremental.link_seen` links it only if
    it is still that file)."""
    if not previous:
        return {}
    # (the HTML is read and hashed on a thread, which runs while the keys are computed: hashlib and
    # file reads let go of the interpreter)
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        checks = {path: pool.submit(_html_seen, old_site, *same)
                  for template, path, context in pages(document)
                  if (same := _same_key(keys, template, path, context, previous.get(path))) is not None}
        return {path: seen for path, check in checks.items() if (seen := check.result()) is not None}


def _same_key(keys: incremental.Keys, template: str, path: str, context: Mapping[str, Any],
              before: Any) -> tuple[str, str] | None:
    """The previous page's HTML file and its sha256, when its key is this build's; else None."""
    if not isinstance(before, Mapping) or not isinstance(before.get("reads"), list):
        return None
    dest, sha = before.get("dest"), before.get("sha256")
    if not isinstance(dest, str) or not isinstance(sha, str):
        return None
    return (dest, sha) if keys.key(template, path, context, list(before["reads"])) == before.get("key") else None


def _html_seen(old_site: Path, dest: str, sha: str) -> incremental.Seen | None:
    """What ``old_site``/``dest`` was when read, when its bytes are the ones with ``sha``; else None."""
    try:
        found = incremental.sha256_seen(safe_join(old_site, dest))
    except UnsafeSitePath:
        return None
    return found[1] if found is not None and found[0] == sha else None


def _target(root: Path, rel: str, key: str, problems: dict[str, list[str]]) -> Path | None:
    try:
        return safe_join(root, rel)
    except UnsafeSitePath as exc:
        problems.setdefault(key, []).append(f"skipped: {exc}")
        return None


def _json(data: Any) -> bytes:
    # (compact: with an indent, Python's JSON encoder is its slow pure-Python one)
    return (json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def run_mkdocs(build_dir: Path, out_dir: Path, config_file: Path | None = None, *, accelerate: bool = True,
               plugins: Mapping[str, Any] | None = None, compiled: jinja2.BytecodeCache | None = None,
               keep_folders: bool = False) -> list[str]:
    """``mkdocs build --strict`` with docs_dir = ``build_dir`` and site_dir = ``out_dir``;
    ``config_file`` (a site owner's mkdocs.yml) is laid over the default configuration.
    ``accelerate``: with :mod:`catalog.site.accel` (the same output, faster). ``compiled``: where
    the theme's templates are kept compiled between builds (:func:`catalog.site.render.template_cache`).
    ``keep_folders``: ``out_dir`` is a fresh folder of ours that holds empty folders only (being made
    by :class:`catalog.site.output.Skeleton`): MkDocs does not empty it first (its ``dirty`` build,
    which into a folder with no files writes every file, as a clean build does; its warning that
    a dirty build may leave stale files is left out, as there are none)."""
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
        if compiled is not None:
            config.plugins["catalog-compiled-templates"] = _CompiledTemplates(compiled)
        for name, plugin in (plugins or {}).items():
            config.plugins[name] = plugin
        if keep_folders:
            with _without(logging.getLogger("mkdocs.commands.build"), _DIRTY_WARNING):
                build(config, dirty=True)
        else:
            build(config)
    except (Abort, ConfigurationError) as exc:
        detail = "; ".join(collect.messages[:5]) or str(exc)
        raise SiteBuildFailed(detail) from None
    finally:
        logger.removeHandler(collect)
    return collect.messages


_DIRTY_WARNING = "A 'dirty' build is being performed"


@contextlib.contextmanager
def _without(logger: logging.Logger, prefix: str) -> Iterator[None]:
    """``logger``'s records whose message starts with ``prefix`` dropped, for the block."""
    def keep(record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(prefix)

    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


class _CompiledTemplates(BasePlugin):
    """MkDocs side: the theme's templates compiled once and kept between builds (the theme's
    Jinja environment gets the site's bytecode cache, unless it has one of its own)."""

    def __init__(self, cache: jinja2.BytecodeCache) -> None:
        super().__init__()
        self.cache = cache

    def on_env(self, env: jinja2.Environment, *, config: Any, files: Any) -> jinja2.Environment:
        if env.bytecode_cache is None:
            env.bytecode_cache = self.cache
        return env


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
    sql_page: bool | None = None,
    jobs: int | None = None,
) -> BuildReport:
    """Render the catalog site of ``registry`` into ``out_dir``; returns a report.

    ``config`` (a mapping or a settings object) may carry ``dashboard_templates``
    or ``dashboards`` (name → URL with ``{model}``, ``{version}``, ``{target}``),
    ``templates`` (an overrides folder) and ``mkdocs_config``; the keyword
    arguments of the same names win. ``build_dir`` keeps the generated Markdown
    (default: the pages go to MkDocs in memory, the static files and api/ JSON
    through a temporary folder, removed afterwards).

    ``out_dir`` and ``build_dir`` are replaced only when they are new, empty, or hold
    nothing but what an earlier build wrote there (its ``.catalog-site`` marker lists
    it); a folder that is, contains or lies inside the lake is refused. Refusals
    (:class:`OutputInLake`, :class:`OutputNotOurs`, :class:`OutputNotFolder`) come
    before anything is read or written.

    ``sql_page`` adds the SQL page (``query/``: DuckDB-WASM over Parquet snapshots of
    the lake, see :mod:`catalog.site.sqlpage`); its files come from the npm registry
    once, then from a cache (:mod:`catalog.site.wasm`). Left as None, the page is added
    when its files can be had, and otherwise says why it is missing (the report's
    ``warnings`` too): a site is not refused for want of its SQL page. True refuses the
    build without it (:class:`SiteAssetsUnavailable`); False leaves it out.

    ``jobs``: processes that render and run MkDocs, each over a part of the pages
    (:mod:`catalog.site.parallel`; default: the cores free, at most 4; 1 builds in this
    process alone). The site is the same either way.
    """
    if dashboard_templates is None:
        dashboard_templates = _option(config, "dashboard_templates", "dashboards")
    dashboards = dict(dashboard_templates or {})
    overrides = templates if templates is not None else _option(config, "templates")
    own_mkdocs = mkdocs_config or _option(config, "mkdocs_config")
    mkdocs_file = Path(own_mkdocs) if own_mkdocs else None
    out = check_folder(out_dir, registry.root)
    kept = None if build_dir is None else check_folder(build_dir, registry.root)
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise InvalidValue(f"jobs must be a whole number of processes, 1 or more (got {jobs!r})")
    if kept is not None and (kept == out or out in kept.parents or kept in out.parents):
        raise InvalidValue(f"build_dir {os.fspath(build_dir or kept)!r} and the site folder {os.fspath(out_dir)!r} overlap: "
                           "keep the Markdown in a folder of its own")
    plan = _Plan(out=out, kept=kept, dashboards=dashboards, overrides=overrides, mkdocs_file=mkdocs_file,
                 as_of=as_of, sql_page=sql_page, jobs=jobs)
    with _Collector() as collector:
        return _build(registry, plan, collector)


@dataclass(frozen=True)
class _Plan:
    """What :func:`build_site` was asked for, checked: the site folder, the folder keeping the
    Markdown (None: a temporary one), the dashboards, the overrides, the site owner's
    mkdocs.yml, the moment, the SQL page and the processes."""

    out: Path
    kept: Path | None
    dashboards: dict[str, str]
    overrides: Any
    mkdocs_file: Path | None
    as_of: str | datetime | None
    sql_page: bool | None
    jobs: int | None


def _build(registry: Registry, plan: _Plan, collector: _Collector) -> BuildReport:
    out, kept, mkdocs_file, as_of, sql_page = plan.out, plan.kept, plan.mkdocs_file, plan.as_of, plan.sql_page
    timings: dict[str, float] = {}
    step = stages(getattr(registry, "progress", None), "build", ("reading the lake", "rendering pages", "running MkDocs"))

    step()
    start = time.perf_counter()
    listed = listed_files(out) if out.is_dir() else None
    with contextlib.ExitStack() as stack:
        # The new site's folder, swapped in (swap.close()) once the site is complete.
        swap = stack.enter_context(contextlib.ExitStack())
        site = swap.enter_context(staged(out))
        # (the SQL page's imports and DuckDB-WASM files, on a thread while DuckDB runs the reads below)
        ahead = None if sql_page is False else Ahead()
        records = read_records(registry, as_of=as_of)
        timings["read"] = time.perf_counter() - start
        # (the previous site's folders made in the new one on a thread from here on, while one core
        # is left free: DuckDB used both for the reads, the document and the pages use one)
        skeleton = swap.enter_context(Skeleton(site, listed or ()))

        start = time.perf_counter()
        document = make_document(records, plan.dashboards)
        timings["document"] = time.perf_counter() - start

        if kept is None:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="catalog-build-")))
        else:
            folder = stack.enter_context(staged(kept))
        step()
        start = time.perf_counter()
        renderer = Renderer(plan.overrides)
        extra = {"views_sql": _portable_views(registry)}
        engine = incremental.engine_key(
            [renderer.defaults] + ([renderer.overrides] if renderer.overrides else []), mkdocs_file,
            {**extra, "sql_page": sql_page})
        renderer.env.bytecode_cache = template_cache(engine)
        # (with the Markdown kept in build_dir, every page is written: that folder is for running MkDocs by hand)
        previous = incremental.load(out, engine, listed) if kept is None else None
        in_memory = kept is None   # (a kept folder gets every page as a file)
        keys = incremental.Keys(document, engine)
        unchanged = reusable_pages(document, keys, previous, out)
        collector.settle()   # (the document and its keys made: pages and MkDocs make garbage with cycles)
        skipped: str | None = None   # (why the site has no SQL page, when its files could not be had)
        wasm_files = None
        if ahead is not None:   # (ended before any part is forked)
            try:
                wasm_files = ahead.result()
            except SiteAssetsUnavailable as exc:
                if sql_page:
                    raise
                skipped = str(exc)
        split = parallel.plan(pages(document), document, plan.jobs, unchanged)
        others = parallel.Parts()
        if split is not None:
            skeleton.wait()   # (no thread of ours runs when the parts are forked)
            parts_root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="catalog-parts-")))
            stack.callback(others.stop)   # (before the parts' folders go)

            def part(only: set[str], where: Path) -> dict[str, Any]:
                return _build_part(document, where, renderer, extra, keys, previous, out, only, unchanged, mkdocs_file,
                                   in_memory=in_memory)

            for i, only in enumerate(split[1:], start=1):
                others.start(only, parts_root / f"part-{i}", part)
        # (the SQL page's snapshots are read and written on a thread while the pages render: DuckDB
        # and Parquet let go of the interpreter; started after the parts are forked)
        snapshots = None if wasm_files is None else stack.enter_context(
            concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="catalog-snapshots"),
        ).submit(snapshot_files, registry, as_of)
        written = write_pages(document, folder, renderer, extra, keys=keys, previous=previous, old_site=out,
                              only=split[0] if split else None, unchanged=unchanged,
                              old_files=set(listed or ()) if kept is None else (),   # (a kept folder gets every file)
                              in_memory=in_memory)
        timings["render"] = time.perf_counter() - start
        start = time.perf_counter()
        vendored = write_sql_page(registry, folder, renderer, document, as_of=as_of, enabled=sql_page is not False,
                                  why=skipped, snapshots=snapshots, files=wasm_files)
        timings["sql"] = time.perf_counter() - start

        step()
        start = time.perf_counter()
        tracker = written.plugin()
        warnings = run_mkdocs(folder, site, mkdocs_file, plugins={"catalog-unchanged": tracker},
                              compiled=renderer.env.bytecode_cache, keep_folders=bool(skeleton.folders))
        if split is not None:
            results = others.join()
            warnings = _gather(site, results, written, tracker, warnings)
            if kept is not None:   # (the Markdown kept: every part's pages, for running MkDocs by hand)
                for result in results:
                    for path in result["state"]:
                        safe_join(folder, path).parent.mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(safe_join(Path(result["md"]), path), safe_join(folder, path))
        if skipped is not None:
            warnings = [*warnings, f"the site has no SQL page: {skipped}"]
        _finish(site, out, written, tracker, listed or [], engine, unchanged)
        for rel, (unpacked, sha) in vendored.items():
            target = safe_join(site, rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            wasm.place(rel.rsplit("/", 1)[1], unpacked, sha, target, safe_join(out, rel) if rel in (listed or []) else None)
        swap.close()   # (the folders left empty removed, the site marked and swapped in)
        timings["mkdocs"] = time.perf_counter() - start
        step()

    problems = {k: list(v) for k, v in document["problems"].items()}
    for key, found in written.problems.items():
        problems.setdefault(key, []).extend(found)
    return BuildReport(
        out_dir=str(out), pages=written.pages + 1, models=len(document["models"]), versions=document["counts"]["versions"],
        timings=timings, problems=problems, warnings=warnings, reused=len(written.unchanged),
    )


class _Collector:
    """Python's cyclic garbage collector during a build.

    Reading the lake and making the data document create hundreds of thousands of small
    containers that all live until the build ends, and every pass of the collector walks them
    all again: at 1,000 models that was half the document's time and a fifth of the read's. So
    the collector is paused while they are made (they hold no cycles; reference counting frees
    the rest), then :meth:`settle` freezes what exists out of its sight (``gc.freeze``: which also
    keeps the forked parts of a parallel build from touching those pages) and turns it back on
    for rendering and MkDocs. Both are undone when the build ends, however it ends; a caller's
    own choice (the collector off, objects frozen) is left as it was.
    """

    def __enter__(self) -> _Collector:
        self._was_on = gc.isenabled()
        self._froze = False
        gc.disable()
        return self

    def settle(self) -> None:
        if not self._was_on or gc.isenabled():
            return
        if gc.get_freeze_count() == 0:
            gc.freeze()
            self._froze = True
        gc.enable()

    def __exit__(self, *exc: object) -> None:
        if self._froze:
            gc.unfreeze()
        if self._was_on:
            gc.enable()


def _build_part(document: Mapping[str, Any], where: Path, renderer: Renderer, extra: Mapping[str, Any],
                keys: incremental.Keys, previous: Mapping[str, Mapping[str, Any]] | None, old_site: Path,
                only: set[str], unchanged: Mapping[str, incremental.Seen], mkdocs_file: Path | None, *,
                in_memory: bool) -> dict[str, Any]:
    """One part of a parallel build (in its own process): its pages rendered and built by MkDocs
    into ``where``/site, the others as stubs; what the first part needs to put the site together."""
    folder, site = where / "md", where / "site"
    written = write_pages(document, folder, renderer, extra, keys=keys, previous=previous, old_site=old_site,
                          only=only, assets=False, unchanged=unchanged, in_memory=in_memory)
    folder.mkdir(parents=True, exist_ok=True)   # (MkDocs' docs folder, empty when the pages are in memory)
    tracker = written.plugin(PAGE)   # (the SQL page is the first part's)
    warnings = run_mkdocs(folder, site, mkdocs_file, plugins={"catalog-unchanged": tracker},
                          compiled=renderer.env.bytecode_cache)
    own = {tracker.urls[p] for p in tracker.built}   # (once: not for every search entry)
    return {"site": str(site), "md": str(folder), "pages": written.pages, "state": written.state, "problems": written.problems,
            "unchanged": sorted(written.unchanged), "built": tracker.built, "warnings": warnings,
            "search": [e for e in parallel.search_entries(site) if e.get("location", "").split("#", 1)[0] in own]}


def _gather(site: Path, results: list[dict[str, Any]], written: Written, tracker: incremental.Unchanged,
            warnings: list[str]) -> list[str]:
    """Put the other parts' pages, keys, problems and search entries into the first part's site."""
    entries: list[dict[str, Any]] = []
    for result in results:
        parallel.take_pages(site, Path(result["site"]), list(result["built"].values()))
        written.pages += result["pages"]
        written.state.update(result["state"])
        written.unchanged.update(result["unchanged"])
        for key, found in result["problems"].items():
            written.problems.setdefault(key, []).extend(found)
        for src, dest in result["built"].items():
            tracker.stubs.pop(src, None)
            tracker.built[src] = dest
        entries.extend(result["search"])
        warnings = [*warnings, *(w for w in result["warnings"] if w not in warnings)]
    index = site / "search" / "search_index.json"
    if entries and index.is_file():
        incremental.add_search_entries(index, entries, tracker.order)
    return warnings


def _finish(site: Path, old: Path, written: Written, tracker: incremental.Unchanged, listed: list[str],
            engine: str, unchanged: Mapping[str, incremental.Seen]) -> None:
    """After MkDocs: the unchanged pages' HTML and search entries and the api/ JSON kept from the
    previous site, the page keys for the next build, and unchanged files linked to their previous
    copies. A file taken from the previous site is the one whose bytes were checked (``unchanged``,
    ``written.kept``), not rewritten since."""
    kept = {dest: (path, unchanged.get(path)) for path, (_url, dest) in tracker.stubs.items()}
    kept.update((rel, (rel, seen)) for rel, seen in written.kept.items())
    for dest, (path, seen) in kept.items():
        source, target = safe_join(old, dest), safe_join(site, dest)
        if (path in written.state and written.state[path].get("dest") != dest) or seen is None \
                or not incremental.link_seen(source, target, seen):
            raise SiteBuildFailed(f"{dest} changed in {old} during the build: build again")
    kept_urls = {url for url, _ in tracker.stubs.values()}
    index = Path("search", "search_index.json")
    if kept_urls and (site / index).is_file():
        if index.as_posix() not in listed or incremental.sha256_file(old / index) is None:
            raise SiteBuildFailed(f"the search index of {old} is not the one its build wrote: build into a new folder")
        incremental.merge_search(site / index, old / index, kept_urls, tracker.order)
    for path, dest in tracker.built.items():
        if path in written.state:
            written.state[path]["dest"] = dest
            written.state[path]["sha256"] = incremental.sha256_file(safe_join(site, dest))
    incremental.save(site, engine, written.state)
    if listed:
        incremental.link_unchanged(site, old, listed, kept)


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
