"""The built catalog site in a real headless Chromium: search, model page, no outside requests.

Needs the ``playwright`` Python package and Debian's Chromium at /usr/bin/chromium
(``apt-get install -y chromium``); ``playwright install`` is never used.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from catalog import Registry
from catalog.site import build_site, make_server

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
GRAFANA = "https://grafana.example.com/d/x?var-model={model}&var-version={version}&var-target={target}"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}

# Locally the test skips when the browser is missing; CI sets CATALOG_REQUIRE_BROWSER=1
# so that a missing browser fails the run instead of passing it silently.
_REQUIRED = os.environ.get("CATALOG_REQUIRE_BROWSER") == "1"
try:
    import playwright.sync_api as playwright_api
except ImportError:
    if _REQUIRED:
        raise
    pytest.skip("the browser test needs the playwright package (pip install playwright)", allow_module_level=True)
if not CHROMIUM.exists():
    if _REQUIRED:
        raise RuntimeError("CATALOG_REQUIRE_BROWSER=1 but /usr/bin/chromium is missing (apt-get install -y chromium)")
    pytest.skip("the browser test needs Chromium at /usr/bin/chromium (apt-get install -y chromium)",
                allow_module_level=True)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("browser")
    shutil.copytree(REPO / "data" / "lake", root / "lake")
    with Registry(root / "lake", durable=False) as reg:
        build_site(reg, root / "site", dashboard_templates={"grafana-site": GRAFANA})
    server = make_server(root / "site", port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture
def browser_page(served: str):
    requests: list[str] = []
    with playwright_api.sync_playwright() as p:
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
        yield page, requests
        context.close()
        browser.close()


def search(page, words: str, expect: str) -> None:
    box = page.locator("input.md-search__input")
    box.click()
    box.fill("")
    box.type(words, delay=30)
    results = page.locator(".md-search-result__item", has_text=expect)
    results.first.wait_for(state="visible", timeout=15_000)


def test_search_open_a_model_and_see_its_dashboards_and_charts(served: str, browser_page, tmp_path: Path) -> None:
    page, requests = browser_page
    page.goto(served)
    page.wait_for_load_state("networkidle")
    assert "Model Catalog" in page.title()
    assert page.locator("table.catalog-running tbody tr").count() > 0
    page.screenshot(path=str(tmp_path / "home.png"))

    search(page, "ravi", "fraud-score")            # an owner
    search(page, "retention", "churn")             # a tag value
    page.locator('.md-search-result__item a[href*="models/churn/"]').first.click()
    page.wait_for_url(lambda url: "/models/churn/" in url)
    page.wait_for_load_state("networkidle")

    assert page.locator("h1").first.inner_text().strip().startswith("churn")
    dashboards = page.locator("a.dashboard-link")
    assert dashboards.count() >= 2
    hrefs = [dashboards.nth(i).get_attribute("href") for i in range(dashboards.count())]
    assert any(h.startswith("https://grafana.example.com/d/x?var-model=churn") for h in hrefs)
    assert all(h.startswith("https://") for h in hrefs)
    assert page.locator("svg.catalog-chart").count() >= 1
    assert page.locator("svg.catalog-lineage").count() == 1
    assert page.locator("svg.catalog-chart").first.bounding_box()["width"] > 100
    assert page.locator("#v1").count() == 1
    page.screenshot(path=str(tmp_path / "model.png"))

    assert (tmp_path / "home.png").stat().st_size > 0 and (tmp_path / "model.png").stat().st_size > 0
    outside = [u for u in requests if (urlsplit(u).hostname or "") not in LOCAL_HOSTS]
    assert outside == [], f"requests left the machine: {outside}"
    assert any(u.endswith("search_index.json") for u in requests)


def test_sortable_table_sorts_on_click(served: str, browser_page) -> None:
    page, requests = browser_page
    page.goto(served + "models/")
    first = lambda: page.locator("table.catalog-models tbody tr td:first-child").first.inner_text().strip()  # noqa: E731
    assert first() == "churn"
    page.locator("table.catalog-models th", has_text="model").click()
    page.locator("table.catalog-models th", has_text="model").click()
    assert first() == "text-encoder"
    assert all((urlsplit(u).hostname or "") in LOCAL_HOSTS for u in requests)
