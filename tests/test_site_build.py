"""The site build's speed-ups give the site a full, plain build gives.

- catalog.site.accel: MkDocs with the raw-block stash and the lighter search input
  writes byte-identical pages and search index;
- catalog.site.incremental: a build into an existing site after a decision renders
  only what changed, and the site it leaves is the one a full build writes.
"""

from __future__ import annotations

import difflib
import itertools
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from catalog import Registry
from catalog.site import build_site
from catalog.site.build import read_records, run_mkdocs, write_pages
from catalog.site.context import make_document
from catalog.site.render import Renderer

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "data" / "lake", tmp_path / "lake")
    return tmp_path / "lake"


def _files(site: Path) -> dict[str, bytes]:
    return {p.relative_to(site).as_posix(): p.read_bytes() for p in site.rglob("*") if p.is_file()}


def test_the_accelerated_mkdocs_writes_the_same_bytes(lake: Path, tmp_path: Path) -> None:
    with Registry(lake, actor="ana", durable=False) as reg:
        reg.register("x-hostile", "s3://m/x.pkl", capture_git=False,
                     description='<div class="a">\n\n<script>alert(1)</script></div> [link](javascript:x) *em*')
        build_site(reg, tmp_path / "site", build_dir=tmp_path / "md", sql_page=False)
    # a page of blocks the templates do not write: a heading with an id in an excluded block (the
    # search indexer still makes it a section), a <pre>, a block closed before its last line
    (tmp_path / "md" / "odd.md").write_text(
        '# Odd\n\n<div class="x" data-search-exclude>\n<h3 id="inside">Inside</h3>\n<p>hidden</p>\n</div>\n\n'
        '<div class="y" data-search-exclude>\n<div class="highlight"><pre><code>catalog rollback x</code></pre></div>\n</div>\n\n'
        '<div>\n<p>a</p>\n</div>\n<p>after, on the next line</p>\n\n<table><tr><td>one line</td></tr></table>\n\n'
        # (tags and unsafe parts in other cases, a character whose lower case is two, "İ", and
        # characters the case-blind patterns fold but lower() keeps: each block as Markdown writes it)
        '<DIV class="u" data-search-exclude>\n<P>Upper → “quoted”</P>\n</Div>\n\n'
        '<div class="i">\n<p>İstanbul</p>\n<H2 ID="up">Up</H2>\n</DIV>\n\n'
        '<div>\n<SCRIPT>x</SCRIPT>\n</div>\n\n<div>\n<!-- NOTE -->\n</div>\n\n'
        '<div>\n<p>ſcript and Kelvin: <ſcript> K</p>\n</div>\n\n<section Markdown="1">\n*x*\n</section>\n\nend\n',
        encoding="utf-8")
    run_mkdocs(tmp_path / "md", tmp_path / "fast", accelerate=True)
    run_mkdocs(tmp_path / "md", tmp_path / "plain", accelerate=False)
    fast, plain = _files(tmp_path / "fast"), _files(tmp_path / "plain")
    assert fast.keys() == plain.keys()
    assert [name for name in fast if fast[name] != plain[name]] == []


def _stamp(site: Path) -> str:
    return json.loads((site / "api" / "models.json").read_text())["generated_at"]   # 2026-12-02T11:07:18Z


def _normalised(site: Path, *others: Path) -> dict[str, bytes]:
    """The site's files with the build times of it and of ``others`` written out (a full
    build made later has another; a version registered in the second of one build shows
    that time too, so every site compared gets every build's time replaced)."""
    stamps = {_stamp(site), *(_stamp(o) for o in others)}
    out = {}
    for name, data in _files(site).items():
        if name in (".catalog-site", ".catalog-build.json") or name.endswith(".arrow") or name.endswith(".parquet"):
            continue
        for stamp in sorted(stamps):
            shown = stamp.replace("T", " ")[:16] + " UTC"
            data = data.replace(stamp.encode(), b"<T>").replace(shown.encode(), b"<T>")
        out[name] = data
    return out


def _same_site(a: Path, b: Path) -> None:
    """``a`` and ``b`` hold the same files, build times aside; else the first difference, as a diff."""
    left, right = _normalised(a, b), _normalised(b, a)
    assert left.keys() == right.keys()
    for name in sorted(left):
        if left[name] != right[name]:
            diff = difflib.unified_diff(left[name].decode(errors="replace").splitlines(),
                                        right[name].decode(errors="replace").splitlines(), lineterm="", n=1)
            pytest.fail(f"{name} differs:\n" + "\n".join(line[:300] for line in itertools.islice(diff, 40)))


def test_after_a_decision_a_rebuild_renders_only_what_changed_and_equals_a_full_build(lake: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    with Registry(lake, actor="bob", durable=False) as reg:
        first = build_site(reg, site)
        assert first.reused == 0
        page = site / "models" / "fraud-score" / "index.html"
        other = site / "models" / "search-ranker" / "index.html"
        wasm = site / "query" / "duckdb" / "duckdb-eh.wasm"
        api = site / "api" / "models" / "search-ranker.json"
        before = {p: os.stat(p).st_ino for p in (page, other, wasm, api)}
        reg.register("churn", "s3://m/churn-new.pkl", capture_git=False, owner="ana")
        again = build_site(reg, site)
        full = build_site(reg, tmp_path / "full")
    assert 0 < again.reused < again.pages - 1      # churn's page (and the pages listing it) were rendered again
    assert os.stat(other).st_ino == before[other]  # an unchanged page is the same file, not rewritten
    assert os.stat(wasm).st_ino == before[wasm]
    assert os.stat(api).st_ino == before[api]      # and so is an unchanged model's api/ JSON
    _same_site(site, Path(full.out_dir))
    assert _folders(site) == _folders(Path(full.out_dir))
    assert again.warnings == []   # (MkDocs' own warning about building into a folder it did not empty is not passed on)


def _folders(site: Path) -> set[str]:
    return {p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_dir()}


def test_a_rebuild_makes_the_previous_sites_folders_ahead_and_leaves_none_empty(lake: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    with Registry(lake, actor="bob", durable=False) as reg:
        build_site(reg, site)
        assert (site / "query" / "duckdb").is_dir()
        again = build_site(reg, site, sql_page=False)   # (the previous site's query/duckdb/ gets no file now)
        full = build_site(reg, tmp_path / "full", sql_page=False)
    assert not (site / "query" / "duckdb").exists()
    assert _folders(site) == _folders(Path(full.out_dir))
    assert not [p for p in site.rglob("*") if p.is_dir() and not any(p.iterdir())]
    assert again.warnings == []
    _same_site(site, Path(full.out_dir))


def test_the_skeleton_makes_folders_only_inside_its_root_and_the_ones_left_empty_are_not_swapped_in(tmp_path: Path) -> None:
    from catalog.site.output import Skeleton, staged

    target = tmp_path / "site"
    files = ["models/a/index.html", "models/b/index.html", "index.html", "../outside/x.html", "deep/er/still/x.html",
             "models//x.html", "/abs/x.html", 7]
    with staged(target) as root, Skeleton(root, files) as skeleton:   # type: ignore[arg-type]
        skeleton.wait()
        assert (root / "models" / "a").is_dir() and (root / "models" / "b").is_dir()
        assert (root / "deep" / "er" / "still").is_dir()
        (root / "models" / "a" / "index.html").write_text("kept")
    assert not (tmp_path / "outside").exists() and not Path("/abs").exists()
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*")) == [
        ".catalog-site", "models", "models/a", "models/a/index.html"]
    assert json.loads((target / ".catalog-site").read_text())["files"] == ["models/a/index.html"]


def test_a_page_changed_on_disk_since_the_last_build_is_rendered_again(lake: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    with Registry(lake, actor="bob", durable=False) as reg:
        build_site(reg, site)
        page = site / "models" / "search-ranker" / "index.html"
        page.write_text(page.read_text().replace("search-ranker", "tampered"))
        again = build_site(reg, site)
    assert "tampered" not in page.read_text()
    assert again.reused > 0


def test_a_rebuild_with_nothing_changed_converts_no_kept_page_through_markdown(
        lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import markdown

    site = tmp_path / "site"
    with Registry(lake, actor="bob", durable=False) as reg:
        build_site(reg, site, jobs=1)
        first = _stamp(site)
        converted: list[str] = []
        convert = markdown.Markdown.convert

        def counting(self: markdown.Markdown, source: str) -> str:
            converted.append(source)
            return convert(self, source)

        monkeypatch.setattr(markdown.Markdown, "convert", counting)
        again = build_site(reg, site, jobs=1)
        full = build_site(reg, tmp_path / "full", jobs=1)
    # all but the SQL page and, when the build's time (to the second) moved on, the home page
    home = int(_stamp(site) != first)
    assert again.reused == again.pages - 1 - home
    assert len(converted) == 1 + home + full.pages  # those here, every page in the full build
    _same_site(site, Path(full.out_dir))


def test_a_changed_api_file_of_an_unchanged_model_is_written_again(lake: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    with Registry(lake, actor="bob", durable=False) as reg:
        build_site(reg, site, sql_page=False)
        api = site / "api" / "models" / "search-ranker.json"
        good = api.read_bytes()
        api.write_bytes(good.replace(b"search-ranker", b"search-rankex"))   # (same size, other bytes)
        again = build_site(reg, site, sql_page=False)
    assert again.reused > 0
    assert api.read_bytes() == good


def test_a_kept_page_rewritten_during_the_build_fails_it_and_keeps_the_site(
        lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its bytes were checked before MkDocs ran; rewritten after (even with the same bytes and
    its mtime put back), it is not linked: the build stops and the site stays as it was."""
    from catalog.errors import SiteBuildFailed
    from catalog.site import build as build_module

    site = tmp_path / "site"
    with Registry(lake, actor="bob", durable=False) as reg:
        build_site(reg, site, jobs=1, sql_page=False)
        page = site / "models" / "search-ranker" / "index.html"
        real = build_module.run_mkdocs

        def then_rewrite(*args: object, **kwargs: object) -> list[str]:
            out = real(*args, **kwargs)  # type: ignore[arg-type]
            info = os.stat(page)
            page.write_bytes(page.read_bytes())
            os.utime(page, ns=(info.st_atime_ns, info.st_mtime_ns))
            return out

        monkeypatch.setattr(build_module, "run_mkdocs", then_rewrite)
        before = _files(site)
        reg.register("churn", "s3://m/churn-new.pkl", capture_git=False, owner="ana")
        with pytest.raises(SiteBuildFailed, match="changed .* during the build"):
            build_site(reg, site, jobs=1, sql_page=False)
    assert _files(site) == before
    assert not list(tmp_path.glob(".catalog-*"))


def test_a_changed_model_changes_the_key_of_its_page_and_no_other() -> None:
    import copy

    from catalog.site.build import read_records
    from catalog.site.context import make_document
    from catalog.site.incremental import Keys
    from catalog.site.render import pages

    with Registry(REPO / "data" / "lake", actor="bob") as reg:
        document = make_document(read_records(reg), {})
    changed = copy.deepcopy(document)
    model = next(m for m in changed["models"] if m["name"] == "churn")
    deep = next(v for v in model["versions"] if isinstance(v, dict))
    field = next(k for k, v in deep.items() if isinstance(v, str))
    deep[field] += " (changed)"                     # one string, deep inside one model's context

    def keys_of(doc: dict) -> dict[str, str]:
        keys = Keys(doc, "engine")
        return {path: keys.key(template, path, context, ["models", "*"] if "model" not in context else [])
                for template, path, context in pages(doc)}

    before, after = keys_of(document), keys_of(changed)
    assert before == keys_of(copy.deepcopy(document))   # the same data, built again: the same keys
    differ = sorted(path for path in before if before[path] != after[path])
    assert "models/churn/index.md" in differ
    assert not [p for p in differ if p.startswith("models/") and p != "models/churn/index.md" and p != "models/index.md"]
    assert "index.md" in differ                       # (it reads the whole document, here)


def test_a_digest_depends_on_the_values_alone() -> None:
    from catalog.site.incremental import digest

    shared = {"note": "".join(["rolled ", "back"])}
    twice = [shared, shared]                                   # one object met twice
    copies = [{"note": "rolled back"}, {"note": "".join(["rolled", " back"])}]
    assert digest(twice) == digest(copies)
    assert digest(twice) != digest([shared, {"note": "rolled back!"}])
    looped: list[object] = [1]
    looped.append(looped)
    assert digest(looped) == digest(looped)                     # (pickled the usual way)


def test_a_file_is_linked_only_while_it_is_the_one_whose_bytes_were_checked(tmp_path: Path) -> None:
    from catalog.site import incremental

    old = tmp_path / "old.html"
    old.write_bytes(b"<p>page</p>")
    seen = incremental.same_bytes(old, b"<p>page</p>")
    assert seen is not None and incremental.same_bytes(old, b"<p>other</p>") is None
    assert incremental.link_seen(old, tmp_path / "new" / "a.html", seen)
    assert os.stat(tmp_path / "new" / "a.html").st_ino == os.stat(old).st_ino
    found = incremental.sha256_seen(old)
    assert found is None    # (linked twice now: no longer a singly linked file)
    os.unlink(tmp_path / "new" / "a.html")
    found = incremental.sha256_seen(old)
    assert found is not None
    old.write_bytes(b"<p>page</p>")                   # rewritten in place, the same bytes
    assert not incremental.link_seen(old, tmp_path / "new" / "b.html", found[1])
    assert not (tmp_path / "new" / "b.html").exists()


def test_kept_pages_take_the_place_mkdocs_walk_of_the_folder_gives_them(tmp_path: Path) -> None:
    """Kept pages are no files: the plugin puts each where MkDocs would have found it (page
    order is the order of the sitemap and the search index)."""
    from mkdocs.config import load_config
    from mkdocs.structure.files import get_files

    from catalog.site.incremental import Unchanged
    from catalog.site.layers import layered_config

    names = ["index.md", "a.md", "Z.md", "models/index.md", "models/b-1/index.md", "models/b/index.md",
             "models/b/x.md", "models/B/index.md", "audit.md", "audit/2025-01.md", "audit/2025-02.md", "targets/index.md",
             "targets/a/index.md", "z/index.md", "assets/x.css"]
    docs = tmp_path / "docs"
    for name in names:
        (docs / name).parent.mkdir(parents=True, exist_ok=True)
        (docs / name).write_text("# x\n")
    config = load_config(config_file=layered_config(None), docs_dir=str(docs), site_dir=str(tmp_path / "site"))
    walked = [f.src_uri for f in get_files(config)]
    kept = {"index.md", "models/b/index.md", "models/B/index.md", "audit/2025-02.md", "z/index.md", "a.md"}
    for name in kept:
        (docs / name).unlink()
    files = get_files(config)
    files.add_files_from_theme(config.theme.get_env(), config)
    config.plugins["catalog-unchanged"] = Unchanged(kept)
    merged = [f.src_uri for f in config.plugins.on_files(files, config=config)]
    assert merged[:len(walked)] == walked
    assert {f.src_uri for f in files} - set(walked) == set(merged[len(walked):])   # (the theme's files after)


def test_a_kept_build_dir_gets_every_page_in_full(lake: Path, tmp_path: Path) -> None:
    with Registry(lake, actor="bob", durable=False) as reg:
        build_site(reg, tmp_path / "site", sql_page=False)
        again = build_site(reg, tmp_path / "site", build_dir=tmp_path / "md", sql_page=False)
    assert again.reused == 0
    assert "catalog_unchanged" not in (tmp_path / "md" / "models" / "churn" / "index.md").read_text()


@pytest.fixture
def parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Split even the sample lake's site into parts (a real site needs 150 pages)."""
    monkeypatch.setattr("catalog.site.parallel.MIN_PAGES", 0)


@pytest.mark.usefixtures("parts")
def test_a_parallel_build_writes_the_site_a_serial_build_writes(lake: Path, tmp_path: Path) -> None:
    with Registry(lake, actor="bob", durable=False) as reg:
        serial = build_site(reg, tmp_path / "serial", jobs=1)
        three = build_site(reg, tmp_path / "three", jobs=3)
        kept = build_site(reg, tmp_path / "kept", jobs=2, build_dir=tmp_path / "md")   # the Markdown of every part
    assert three.pages == serial.pages and three.problems == serial.problems
    a, b = Path(serial.out_dir), Path(three.out_dir)
    _same_site(a, b)
    _same_site(Path(kept.out_dir), b)
    assert not [p for p in (tmp_path / "md").rglob("*.md") if "catalog_unchanged" in p.read_text()]
    state = json.loads((b / ".catalog-build.json").read_text())["pages"]
    assert len(state) == serial.pages - 1 and all("sha256" in page for page in state.values())   # (all but the SQL page)


@pytest.mark.usefixtures("parts")
def test_a_parallel_rebuild_after_a_decision_equals_a_full_build(lake: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    with Registry(lake, actor="bob", durable=False) as reg:
        build_site(reg, site, jobs=2)
        reg.register("churn", "s3://m/churn-2.pkl", capture_git=False, owner="ana")
        again = build_site(reg, site, jobs=2)
        full = build_site(reg, tmp_path / "full", jobs=1)
    assert 0 < again.reused < again.pages - 1
    _same_site(site, Path(full.out_dir))


@pytest.mark.usefixtures("parts")
def test_a_part_that_fails_fails_the_build_in_one_line_and_leaves_the_site_as_it_was(
        lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from catalog.errors import SiteBuildFailed

    site = tmp_path / "site"
    with Registry(lake, actor="bob", durable=False) as reg:
        build_site(reg, site, jobs=1, sql_page=False)
        before = _files(site)

        def broken(*args: object, **kwargs: object) -> None:
            raise RuntimeError("disk full\nsecond line")

        monkeypatch.setattr("catalog.site.build._build_part", broken)   # (inherited by the forked part)
        with pytest.raises(SiteBuildFailed, match="RuntimeError: disk full") as failed:
            build_site(reg, site, jobs=2, sql_page=False)
    assert "\n" not in str(failed.value)
    assert _files(site) == before
    assert not list(tmp_path.glob(".catalog-*"))   # no staging folder left beside the site


def test_jobs_must_be_a_whole_number_of_processes(lake: Path, tmp_path: Path) -> None:
    from catalog.errors import InvalidValue

    with Registry(lake, actor="bob", durable=False) as reg:
        for bad in (0, -1, True, 1.5):
            with pytest.raises(InvalidValue, match="jobs"):
                build_site(reg, tmp_path / "site", jobs=bad)  # type: ignore[arg-type]
    assert not (tmp_path / "site").exists()


def test_a_build_leaves_the_garbage_collector_as_it_found_it(
        lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    site = tmp_path / "site"
    with Registry(lake, actor="bob", durable=False) as reg:
        assert gc.isenabled() and gc.get_freeze_count() == 0
        build_site(reg, site, jobs=1, sql_page=False)
        assert gc.isenabled() and gc.get_freeze_count() == 0   # paused, frozen, and undone
        gc.disable()
        try:
            build_site(reg, site, jobs=1, sql_page=False)
            assert not gc.isenabled()   # a caller's choice is kept
        finally:
            gc.enable()

        def broken(*args: object, **kwargs: object) -> None:
            raise OSError("disk full")

        monkeypatch.setattr("catalog.site.build.run_mkdocs", broken)   # (after the document is frozen)
        with pytest.raises(OSError, match="disk full"):
            build_site(reg, tmp_path / "other", jobs=1, sql_page=False)
        assert gc.isenabled() and gc.get_freeze_count() == 0


def test_compiled_templates_are_kept_and_a_damaged_one_is_compiled_again(lake: Path, tmp_path: Path) -> None:
    from catalog.site.build import read_records
    from catalog.site.context import make_document
    from catalog.site.render import Renderer, TemplateCache, pages

    with Registry(lake, actor="bob", durable=False) as reg:
        document = make_document(read_records(reg))
    template, path, context = next((t, p, c) for t, p, c in pages(document) if "model" in c)

    def render(cache: TemplateCache | None) -> str:
        renderer = Renderer()
        renderer.env.bytecode_cache = cache
        return renderer.render(template, path, document, views_sql="", **context)

    plain = render(None)
    folder = tmp_path / "cache"
    folder.mkdir()
    assert render(TemplateCache("salt", str(folder))) == plain
    entries = sorted(folder.iterdir())
    assert entries   # compiled templates kept
    assert render(TemplateCache("salt", str(folder))) == plain   # and read back
    for entry in entries:
        entry.write_bytes(entry.read_bytes()[:40])   # damaged: cut short
    assert render(TemplateCache("salt", str(folder))) == plain
    assert all(e.stat().st_size > 40 for e in entries)   # compiled again, and kept again
    assert render(TemplateCache("other salt", str(folder))) == plain
    assert len(list(folder.iterdir())) == 2 * len(entries)   # another salt: entries of its own


def test_mkdocs_keeps_the_themes_templates_compiled_in_the_cache_it_is_given(lake: Path, tmp_path: Path) -> None:
    from catalog.site.render import TemplateCache

    with Registry(lake, actor="ana", durable=False) as reg:
        build_site(reg, tmp_path / "site", build_dir=tmp_path / "md", sql_page=False)   # (the Markdown kept)
    folder = tmp_path / "cache"
    folder.mkdir()
    run_mkdocs(tmp_path / "md", tmp_path / "plain")
    assert list(folder.iterdir()) == []
    run_mkdocs(tmp_path / "md", tmp_path / "first", compiled=TemplateCache("theme", str(folder)))
    entries = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert len(entries) > 10   # (Material's main.html and its partials: no template of the site's own)
    run_mkdocs(tmp_path / "md", tmp_path / "again", compiled=TemplateCache("theme", str(folder)))
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == entries   # read back, not written again
    assert _files(tmp_path / "again")["index.html"] == _files(tmp_path / "plain")["index.html"]


def test_the_template_cache_removes_only_its_own_stale_entries(tmp_path: Path) -> None:
    """Other salts' entries (another install, an older engine) go after KEEP_DAYS; the entries of
    this salt, recent ones, other programs' Jinja entries, other files and links stay."""
    import time

    from catalog.site.render import KEEP_DAYS, TemplateCache

    folder = tmp_path / "cache"
    folder.mkdir()
    cache = TemplateCache("a" * 64, str(folder))
    old = time.time() - (KEEP_DAYS + 1) * 86400

    def entry(name: str, at: float = old) -> Path:
        path = folder / name
        path.write_bytes(b"compiled")
        os.utime(path, (at, at))
        return path

    stale = entry("catalog-" + "b" * 16 + "-1.cache")
    kept = [entry("catalog-" + "b" * 16 + "-2.cache", time.time()), entry("catalog-" + "a" * 16 + "-3.cache"),
            entry("__jinja2_4.cache"), entry("catalog-notes.txt")]
    link = folder / ("catalog-" + "c" * 16 + "-5.cache")
    link.symlink_to(kept[2])
    os.utime(link, (old, old), follow_symlinks=False)
    assert cache.prune() == 1
    assert not stale.exists()
    assert sorted(p.name for p in folder.iterdir()) == sorted([p.name for p in kept] + [link.name])
    assert cache.prune() == 0


def test_a_page_weighs_what_it_holds_so_that_parts_come_out_even(lake: Path) -> None:
    from catalog.site import parallel
    from catalog.site.build import read_records
    from catalog.site.context import make_document
    from catalog.site.render import pages

    with Registry(lake, actor="bob", durable=False) as reg:
        document = make_document(read_records(reg))
    weights = {path: parallel.weight(path, context, document) for _t, path, context in pages(document)}
    months = {m["path"]: len(m["events"]) for m in document["audit_pages"]}
    month_weights = {path: w for path, w in weights.items() if path.startswith("audit/")}
    assert len(month_weights) == len(months) > 1
    # the audit index shows the latest events only; each month page holds its month's, all of them
    assert weights["audit.md"] < sum(month_weights.values())
    busiest = max(months, key=months.get)
    assert month_weights[busiest] == max(month_weights.values())


def test_the_accelerator_takes_its_shortcuts_through_markdown_where_its_copies_hold() -> None:
    import markdown

    from catalog.site.accel import RawBlocks, _RawHtml, _Whitespace

    md = markdown.Markdown(extensions=[RawBlocks()])
    installed = (type(md.preprocessors["normalize_whitespace"]), type(md.postprocessors["raw_html"]))
    if not markdown.__version__.startswith("3.11."):
        pytest.skip(f"Markdown {markdown.__version__}: the copies are of 3.11's code; each is used only if it still is")
    assert installed == (_Whitespace, _RawHtml)
    text = "<div>\n<p>a</p>\n</div>\n\n  \nx  \ny\n\n<span>inline</span>\n"
    assert md.convert(text) == markdown.Markdown().convert(text)


def test_pages_in_memory_are_the_pages_a_folder_of_markdown_gives(lake: Path, tmp_path: Path) -> None:
    with Registry(lake, actor="ana", durable=False) as reg:
        reg.register("cr-notes", "s3://m/cr.pkl", capture_git=False, description="line one\r\nline two\rline three",
                     tags={"note": "a\r\nb\rc"})
        document = make_document(read_records(reg), {})
        on_disk = build_site(reg, tmp_path / "files", build_dir=tmp_path / "md", sql_page=False, jobs=1)
        in_memory = build_site(reg, tmp_path / "memory", sql_page=False, jobs=1)
    renderer = Renderer()
    held = write_pages(document, tmp_path / "held", renderer, {"views_sql": ""}, in_memory=True)
    write_pages(document, tmp_path / "written", renderer, {"views_sql": ""})
    assert not list((tmp_path / "held").rglob("*.md"))   # no page went to a file
    assert held.texts.keys() == {p.relative_to(tmp_path / "written").as_posix()
                                 for p in (tmp_path / "written").rglob("*.md")}
    assert all(text == (tmp_path / "written" / path).read_text(encoding="utf-8")   # (read back as MkDocs reads)
               for path, text in held.texts.items())
    a, b = Path(on_disk.out_dir), Path(in_memory.out_dir)
    _same_site(a, b)


def test_the_first_part_gets_less_of_the_pages_for_the_work_it_has_besides_them(lake: Path) -> None:
    from catalog.site import parallel
    from catalog.site.render import pages

    with Registry(lake, actor="bob", durable=False) as reg:
        document = make_document(read_records(reg))
    entries = pages(document)
    weights = {path: parallel.weight(path, context, document) for _t, path, context in entries}
    head = sum(weights.values()) // 4
    even, ahead = parallel.split(entries, document, 2), parallel.split(entries, document, 2, first=head)
    load = [sum(weights[p] for p in part) for part in ahead]
    assert sum(weights[p] for p in ahead[0]) < sum(weights[p] for p in even[0])
    assert abs(head + load[0] - load[1]) <= max(weights.values())   # (even, counting the head start)


def test_a_templates_file_with_a_pages_name_fails_the_build_in_one_line(lake: Path, tmp_path: Path) -> None:
    from catalog.errors import SiteBuildFailed

    (tmp_path / "overrides").mkdir()
    (tmp_path / "overrides" / "owners.md").write_text("# Not the owners page\n", encoding="utf-8")
    with Registry(lake, actor="bob", durable=False) as reg, pytest.raises(SiteBuildFailed) as failed:
        build_site(reg, tmp_path / "site", templates=tmp_path / "overrides", sql_page=False, jobs=1)
    assert "owners.md is both a page the build makes and a file" in str(failed.value)
    assert "\n" not in str(failed.value) and not (tmp_path / "site").exists()


def test_a_busy_month_of_the_audit_log_is_split_into_pages_and_a_decision_renders_its_last_page_alone(
        lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from collections import defaultdict

    from catalog.site import context

    monkeypatch.setattr(context, "AUDIT_PAGE", 2)
    site = tmp_path / "site"
    with Registry(lake, actor="bob", durable=False) as reg:
        for i in range(3):
            reg.register("churn", f"s3://m/churn-{i}.pkl", capture_git=False, owner="ana")
        build_site(reg, site, sql_page=False)
        document = make_document(read_records(reg))
        month = document["audit_months"][0]["month"]   # (this month: 3 events, on pages 1-2 and 3)
        first_page = site / "audit" / month / "1" / "index.html"
        before = os.stat(first_page).st_ino
        reg.register("churn", "s3://m/churn-3.pkl", capture_git=False, owner="ana")
        rendered: list[str] = []
        render = Renderer.render

        def noting(self: Renderer, template: str, path: str, *args: Any, **kwargs: Any) -> str:
            rendered.append(path)
            return render(self, template, path, *args, **kwargs)

        monkeypatch.setattr(Renderer, "render", noting)
        again = build_site(reg, site, sql_page=False, jobs=1)
        monkeypatch.setattr(Renderer, "render", render)
        full = build_site(reg, tmp_path / "full", sql_page=False)
        document = make_document(read_records(reg))
        counts = {r["month"]: r["n"] for r in reg.sql(
            """SELECT strftime("at", '%Y-%m') AS month, count(*) AS n FROM audit_log GROUP BY ALL""").rows}
    assert f"audit/{month}.md" in rendered and f"audit/{month}/1.md" not in rendered   # (events 1-2: not again)
    assert os.stat(first_page).st_ino == before
    assert again.reused > 0
    _same_site(site, Path(full.out_dir))
    # every event of a month on exactly one of its pages, each page at most AUDIT_PAGE, the month's
    # own address its last page (the latest events), every link between them to a page of the site
    by_month: dict[str, list[str]] = defaultdict(list)
    for page in document["audit_pages"]:
        assert 0 < len(page["events"]) <= 2
        by_month[page["month"]].extend(e["event_id"] for e in page["events"])
        html_page = site / page["url"] / "index.html"
        assert html_page.read_text().count('<tr class="event-') == len(page["events"])
        for link in ("older", "newer", "latest"):
            assert page.get(link) is None or (site / page[link] / "index.html").is_file()
        assert (page["url"] == f"audit/{page['month']}/") == page["last_page"]
    assert {m: len(ids) for m, ids in by_month.items()} == counts
    assert all(len(set(ids)) == len(ids) for ids in by_month.values())
    assert [p["page"] for p in document["audit_pages"] if p["month"] == month] == [1, 2]
    latest = (site / "audit" / month / "index.html").read_text()
    assert "events 3–4 of 4" in latest and f'href="../../audit/{month}/1/"' in latest


def test_every_table_of_every_page_is_a_block_of_its_own(lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A raw HTML block glued to the paragraph before it (no blank line) is one block that starts
    with <p>: the accelerator's shortcut and the search indexer's skip of the event tables no longer
    apply to it, and MkDocs parsed every table's HTML, twice (a month page had it: the full build
    took 28 s at 1,000 models instead of 17)."""
    from catalog.site import context

    monkeypatch.setattr(context, "AUDIT_PAGE", 10)   # (the audit month's pages of every kind)
    with Registry(lake, actor="bob", durable=False) as reg:
        document = make_document(read_records(reg))
    held = write_pages(document, Path("unused"), Renderer(), {"views_sql": ""}, in_memory=True, assets=False)
    kinds = {path.split("/")[0] for path in held.texts}
    assert {"audit", "models", "targets", "index.md"} <= kinds
    for path, text in held.texts.items():
        lines = text.split("\n")
        glued = [i for i, line in enumerate(lines) if line.startswith('<div class="catalog-scroll"') and i and lines[i - 1].strip()]
        assert not glued, f"{path}: a table's block follows line {glued[0]} without a blank line: {lines[glued[0] - 1][:80]!r}"
