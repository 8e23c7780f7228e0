"""The site build's speed-ups give the site a full, plain build gives.

- catalog.site.accel: MkDocs with the raw-block stash and the lighter search input
  writes byte-identical pages and search index;
- catalog.site.incremental: a build into an existing site after a decision renders
  only what changed, and the site it leaves is the one a full build writes.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from catalog import Registry
from catalog.site import build_site
from catalog.site.build import run_mkdocs

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
        '<div>\n<p>a</p>\n</div>\n<p>after, on the next line</p>\n\n<table><tr><td>one line</td></tr></table>\n\nend\n',
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


def test_after_a_decision_a_rebuild_renders_only_what_changed_and_equals_a_full_build(lake: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    with Registry(lake, actor="bob", durable=False) as reg:
        first = build_site(reg, site)
        assert first.reused == 0
        page = site / "models" / "fraud-score" / "index.html"
        other = site / "models" / "search-ranker" / "index.html"
        wasm = site / "query" / "duckdb" / "duckdb-eh.wasm"
        before = {p: os.stat(p).st_ino for p in (page, other, wasm)}
        reg.register("churn", "s3://m/churn-new.pkl", capture_git=False, owner="ana")
        again = build_site(reg, site)
        full = build_site(reg, tmp_path / "full")
    assert 0 < again.reused < again.pages - 1      # churn's page (and the pages listing it) were rendered again
    assert os.stat(other).st_ino == before[other]  # an unchanged page is the same file, not rewritten
    assert os.stat(wasm).st_ino == before[wasm]
    assert _normalised(site, Path(full.out_dir)) == _normalised(Path(full.out_dir), site)


def test_a_page_changed_on_disk_since_the_last_build_is_rendered_again(lake: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    with Registry(lake, actor="bob", durable=False) as reg:
        build_site(reg, site)
        page = site / "models" / "search-ranker" / "index.html"
        page.write_text(page.read_text().replace("search-ranker", "tampered"))
        again = build_site(reg, site)
    assert "tampered" not in page.read_text()
    assert again.reused > 0


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
    assert _normalised(a, b) == _normalised(b, a)
    assert _normalised(Path(kept.out_dir), b) == _normalised(b, Path(kept.out_dir))
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
    assert _normalised(site, Path(full.out_dir)) == _normalised(Path(full.out_dir), site)


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
