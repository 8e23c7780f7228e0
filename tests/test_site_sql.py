"""The site's SQL page: DuckDB-WASM vendored from npm, snapshots of the lake, the views'
SQL rewritten for them; and in real headless Chromium, a query and an as-of query
answered as `catalog sql` answers them.

The browser part needs the ``playwright`` package and Debian's Chromium at
/usr/bin/chromium (``apt-get install -y chromium``; ``playwright install`` is never
used); it skips without them unless CATALOG_REQUIRE_BROWSER=1. Everything needs the
two npm tarballs: in the cache (``CATALOG_ASSET_CACHE`` or ~/.cache/model-catalog/npm)
or from the npm registry through ``npm pack`` (fetched once, then cached).
"""

from __future__ import annotations

import os
import shutil
import threading
from datetime import timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow.ipc
import pyarrow.parquet as pq
import pytest

from catalog import Registry
from catalog.errors import SiteAssetsUnavailable
from catalog.site import build_site, make_server, wasm
from catalog.site.sqlpage import browser_views, cookbook

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
_REQUIRED = os.environ.get("CATALOG_REQUIRE_BROWSER") == "1"

DEPLOYED = "SELECT model, target, version, \"by\" FROM deployments ORDER BY model, target"


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("sqlpage")
    shutil.copytree(REPO / "data" / "lake", root / "lake")
    reg = Registry(root / "lake", actor="site-test", durable=False)
    report = build_site(reg, root / "site")
    yield reg, report, root / "site"
    reg.close()


# -- what the build writes ------------------------------------------------------------


def test_the_sql_page_its_snapshots_views_and_duckdb_are_written_beside_the_pages(sample) -> None:
    reg, report, site = sample
    query = site / "query"
    assert (query / "index.html").is_file() and report.problems == {}
    for name in ("duckdb-browser.js", "duckdb-browser-eh.worker.js", "duckdb-eh.wasm", "arrow.min.js", "NOTICE.txt"):
        assert (query / "duckdb" / name).stat().st_size > 0
    module = (query / "duckdb" / "duckdb-browser.js").read_text(encoding="utf-8")
    assert 'from"apache-arrow"' not in module and "globalThis.Arrow" in module
    for table in ("versions", "events"):
        expected = reg.sql(f"SELECT count(*) AS n FROM {table}").rows[0]["n"]
        assert pq.read_table(query / f"{table}.parquet").num_rows == expected
        assert pyarrow.ipc.open_stream((query / f"{table}.arrow").read_bytes()).read_all().num_rows == expected
    views = (query / "views.sql").read_text(encoding="utf-8")
    assert "read_parquet" not in views and reg.root not in views
    assert "FROM _versions_snapshot;" in views and "FROM _events_snapshot;" in views
    assert "catalog_as_of" in views


def test_the_page_offers_every_cookbook_query_escaped(sample) -> None:
    _, _, site = sample
    html = (site / "query" / "index.html").read_text(encoding="utf-8")
    assert html.count('class="catalog-sql-example"') == len(cookbook()) >= 5
    assert '<script type="module" src="query.js"></script>' in html
    assert "<script>" not in html.split('id="catalog-sql"', 1)[1].split("</noscript>", 1)[0]


def test_every_cookbook_query_runs_through_catalog_sql(sample) -> None:
    reg, _, _ = sample
    for query in cookbook():
        reg.sql(query["sql"])


def test_the_views_read_the_snapshots_in_plain_duckdb_and_answer_like_the_catalog(sample, tmp_path: Path) -> None:
    import duckdb

    reg, _, site = sample
    con = duckdb.connect()
    for table in ("versions", "events"):
        arrow = pyarrow.ipc.open_stream((site / "query" / f"{table}.arrow").read_bytes()).read_all()
        con.register(f"_{table}_arrow", arrow)
        con.execute(f"CREATE TABLE _{table}_snapshot AS SELECT * FROM _{table}_arrow")
    con.execute(browser_views(reg))
    got = con.execute(DEPLOYED).fetchall()
    assert got == [tuple(r.values()) for r in reg.sql(DEPLOYED).rows]


def test_a_site_without_the_sql_page_still_builds_whole(tmp_path: Path) -> None:
    shutil.copytree(REPO / "data" / "lake", tmp_path / "lake")
    with Registry(tmp_path / "lake", durable=False) as reg:
        report = build_site(reg, tmp_path / "site", sql_page=False)
    assert report.problems == {}
    assert not (tmp_path / "site" / "query" / "duckdb").exists()
    assert "--no-sql-page" in (tmp_path / "site" / "query" / "index.html").read_text(encoding="utf-8")


# -- where DuckDB-WASM comes from -----------------------------------------------------


def test_a_cached_tarball_that_is_not_the_pinned_one_is_replaced(tmp_path: Path) -> None:
    package = wasm.APACHE_ARROW
    good = wasm.tarball(package)           # the real cache (fetched by npm pack the first time)
    (tmp_path / package.tarball).write_bytes(b"not the tarball")
    if shutil.which("npm") is None:
        pytest.skip("needs npm to fetch the pinned tarball again")
    assert wasm.tarball(package, tmp_path) == good
    assert (tmp_path / package.tarball).read_bytes() == good


def test_neither_cache_nor_npm_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no-npm-here"))   # a real PATH without npm on it
    monkeypatch.setenv("CATALOG_ASSET_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(SiteAssetsUnavailable) as raised:
        wasm.vendor_files()
    message = str(raised.value)
    assert "\n" not in message
    assert "npm is not installed" in message and "npm pack @duckdb/duckdb-wasm@1.32.0" in message
    assert "--no-sql-page" in message


def test_a_site_is_built_without_its_sql_page_when_its_files_cannot_be_had(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A build is not refused for want of DuckDB-WASM: the page says why it is missing, the
    report and the CLI say so, and only an explicit sql_page=True refuses."""
    shutil.copytree(REPO / "data" / "lake", tmp_path / "lake")
    monkeypatch.setenv("CATALOG_ASSET_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("PATH", str(tmp_path / "no-npm-here"))   # a real PATH without npm on it
    snapshots: list[object] = []
    monkeypatch.setattr("catalog.site.build.snapshot_files", lambda *a: snapshots.append(a) or {})
    with Registry(tmp_path / "lake", durable=False) as reg:
        report = build_site(reg, tmp_path / "site")
        assert report.problems == {}
        assert snapshots == []   # (no page, so no snapshots made for it)
        assert [w for w in report.warnings if w.startswith("the site has no SQL page") and "npm is not installed" in w]
        page = (tmp_path / "site" / "query" / "index.html").read_text(encoding="utf-8")
        assert "were not at hand" in page and "npm pack @duckdb/duckdb-wasm@1.32.0" in page
        assert not (tmp_path / "site" / "query" / "duckdb").exists()
        assert (tmp_path / "site" / "models" / "churn" / "index.html").is_file()
        with pytest.raises(SiteAssetsUnavailable):
            build_site(reg, tmp_path / "site2", sql_page=True)
    assert not (tmp_path / "site2").exists() or not any((tmp_path / "site2").iterdir())


def test_an_unreachable_registry_is_the_same_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if shutil.which("npm") is None:
        pytest.skip("needs npm")
    monkeypatch.setenv("CATALOG_ASSET_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("npm_config_registry", "http://127.0.0.1:9/")     # nothing listens on port 9
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "npm-cache"))  # not the machine's npm cache
    monkeypatch.setenv("npm_config_fetch_retries", "0")
    monkeypatch.setenv("npm_config_offline", "false")
    with pytest.raises(SiteAssetsUnavailable, match=r"npm pack failed: .*npm pack apache-arrow@17\.0\.0|npm pack failed"):
        wasm.tarball(wasm.APACHE_ARROW)
    assert not list((tmp_path / "empty-cache").glob("*.tgz"))


# -- in the browser -------------------------------------------------------------------


def _browser():
    try:
        import playwright.sync_api as api
    except ImportError:
        if _REQUIRED:
            raise
        pytest.skip("the browser test needs the playwright package (pip install playwright)")
    if not CHROMIUM.exists():
        if _REQUIRED:
            raise RuntimeError("CATALOG_REQUIRE_BROWSER=1 but /usr/bin/chromium is missing (apt-get install -y chromium)")
        pytest.skip("the browser test needs Chromium at /usr/bin/chromium (apt-get install -y chromium)")
    return api


@pytest.fixture(scope="module")
def served(sample):
    _, _, site = sample
    server = make_server(site, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def sql_page(served: str):
    api = _browser()
    requests: list[str] = []
    with api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})

        def guard(route) -> None:
            requests.append(route.request.url)
            if (urlsplit(route.request.url).hostname or "") in LOCAL_HOSTS:
                route.continue_()
            else:
                route.abort()

        context.route("**/*", guard)
        page = context.new_page()
        page.goto(served + "query/")
        _settle(page, ("ready", "error"), timeout=90_000)
        assert page.locator("#catalog-sql-status").get_attribute("data-state") == "ready", \
            page.inner_text("#catalog-sql-status")
        yield page, requests
        context.close()
        browser.close()


def _settle(page, states: tuple[str, ...], timeout: int = 30_000) -> None:
    page.wait_for_function(
        "states => states.includes(document.getElementById('catalog-sql-status').dataset.state)",
        arg=list(states), timeout=timeout)


def _run(page, query: str, as_of: str = "") -> list[list[str]]:
    page.fill("#catalog-sql-query", query)
    page.fill("#catalog-sql-as-of", as_of)
    page.evaluate("document.getElementById('catalog-sql-status').dataset.state = 'waiting'")
    page.click("#catalog-sql-run")
    _settle(page, ("done", "error"))
    status = page.inner_text("#catalog-sql-status")
    assert page.locator("#catalog-sql-status").get_attribute("data-state") == "done", status
    return page.evaluate(
        "() => [...document.querySelectorAll('#catalog-sql-result tbody tr')]"
        ".map(tr => [...tr.cells].map(td => td.textContent))")


def _as_text(rows: list[dict]) -> list[list[str]]:
    return [["" if v is None else str(v) for v in r.values()] for r in rows]


def test_a_query_in_the_browser_answers_what_catalog_sql_answers(sample, sql_page) -> None:
    reg, _, _ = sample
    page, requests = sql_page
    assert _run(page, DEPLOYED) == _as_text(reg.sql(DEPLOYED).rows)
    headers = page.evaluate("[...document.querySelectorAll('#catalog-sql-result th')].map(th => th.textContent)")
    assert headers == ["model", "target", "version", "by"]
    counts = "SELECT (SELECT count(*) FROM versions) AS versions, (SELECT count(*) FROM audit_log) AS events"
    assert _run(page, counts) == _as_text(reg.sql(counts).rows)
    assert all((urlsplit(u).hostname or "") in LOCAL_HOSTS for u in requests), requests


def test_an_as_of_query_shows_what_ran_where_then_without_a_rebuild(sample, sql_page) -> None:
    reg, _, _ = sample
    page, _ = sql_page
    times = [r["at"] for r in reg.sql("SELECT \"at\" FROM events WHERE kind IN ('deploy', 'rollback') ORDER BY \"at\"").rows]
    moment = (times[len(times) // 2] + timedelta(seconds=1)).replace(microsecond=0)
    then = reg.sql(DEPLOYED, as_of=moment).rows
    assert then != reg.sql(DEPLOYED).rows                   # the sample lake changed after that moment
    shown = moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")    # the control is in UTC
    assert _run(page, DEPLOYED, as_of=shown) == _as_text(then)
    assert "as of" in page.inner_text("#catalog-sql-status")
    assert _run(page, DEPLOYED) == _as_text(reg.sql(DEPLOYED).rows)   # cleared: now again


def test_every_cookbook_query_runs_in_the_browser_in_one_click(sql_page) -> None:
    page, requests = sql_page
    for index, query in enumerate(cookbook()):
        page.evaluate("document.getElementById('catalog-sql-status').dataset.state = 'waiting'")
        page.locator(".catalog-sql-example").nth(index).click()
        _settle(page, ("done", "error"))
        assert page.locator("#catalog-sql-status").get_attribute("data-state") == "done", \
            (query["title"], page.inner_text("#catalog-sql-status"))
        assert page.input_value("#catalog-sql-query") == query["sql"]
    assert all((urlsplit(u).hostname or "") in LOCAL_HOSTS for u in requests), requests


def test_an_error_is_shown_as_text_and_the_page_keeps_working(sample, sql_page) -> None:
    page, _ = sql_page
    page.fill("#catalog-sql-query", "SELECT <b>oops</b> FROM nowhere")
    page.evaluate("document.getElementById('catalog-sql-status').dataset.state = 'waiting'")
    page.click("#catalog-sql-run")
    _settle(page, ("done", "error"))
    assert page.inner_text("#catalog-sql-status").startswith("Error:")
    assert page.locator("#catalog-sql-status b").count() == 0
    assert _run(page, "SELECT 42 AS answer") == [["42"]]
