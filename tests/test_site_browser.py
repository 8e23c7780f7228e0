"""The built catalog site in a real headless Chromium: accessibility (axe-core), the target
(incident) pages, lineage legibility, a phone-sized screen, search ranking, no outside requests.

Needs the ``playwright`` Python package and Debian's Chromium at /usr/bin/chromium
(``apt-get install -y chromium``); ``playwright install`` is never used. axe-core comes
from the npm registry (``npm pack``, a pinned version and checksum) into a cache folder
outside the checkout the first time, and is read from there offline afterwards.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import threading
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import pytest

from catalog import Registry
from catalog.site import build_site, make_server
from catalog.site.context import rollback_command

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
GRAFANA = "https://grafana.example.com/d/x?var-model={model}&var-version={version}&var-target={target}"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 360, "height": 740}   # a small phone, in CSS pixels

AXE_VERSION = "4.14.1"
AXE_SHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"   # package/axe.min.js

# A model whose name is not a plain lowercase one: its page lives under validate.path_segment's folder.
ODD_NAME = "Churn Legacy"
LONG_NOTE = ("Rolled out after the weekend freeze because the retention campaign needed the new scores "
             "before Monday; watch the p95 latency panel and the calibration drift panel closely")

# Locally the test skips when the browser is missing; CI sets CATALOG_REQUIRE_BROWSER=1
# so that a missing browser (or axe-core) fails the run instead of passing it silently.
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


def _cache() -> Path:
    base = os.environ.get("CATALOG_TEST_CACHE") or os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "model-catalog" / f"axe-core-{AXE_VERSION}"


def axe_source() -> str:
    """axe-core's script: from the cache, else fetched once with ``npm pack`` (checksum checked)."""
    script = _cache() / "axe.min.js"
    if script.is_file() and hashlib.sha256(script.read_bytes()).hexdigest() == AXE_SHA256:
        return script.read_text(encoding="utf-8")
    npm = shutil.which("npm")
    if npm is None:
        message = f"axe-core {AXE_VERSION} is not cached at {script} and npm is missing (apt-get install -y npm)"
        if _REQUIRED:
            raise RuntimeError(message)
        pytest.skip(message)
    with tempfile.TemporaryDirectory(prefix="axe-core-") as tmp:
        done = subprocess.run([npm, "pack", f"axe-core@{AXE_VERSION}", "--pack-destination", tmp, "--silent"],
                              capture_output=True, text=True, timeout=300, cwd=tmp)
        packed = sorted(Path(tmp).glob("axe-core-*.tgz"))
        if done.returncode != 0 or not packed:
            message = f"npm pack axe-core@{AXE_VERSION} failed: {done.stderr.strip()[-300:]}"
            if _REQUIRED:
                raise RuntimeError(message)
            pytest.skip(message)
        with tarfile.open(packed[0]) as tar:
            member = tar.extractfile("package/axe.min.js")
            assert member is not None
            data = member.read()
    assert hashlib.sha256(data).hexdigest() == AXE_SHA256, f"axe-core {AXE_VERSION} from npm is not the pinned file"
    script.parent.mkdir(parents=True, exist_ok=True)
    part = script.with_name(f".axe.min.js.{os.getpid()}")
    part.write_bytes(data)
    os.replace(part, script)
    return data.decode("utf-8")


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample lake, plus a model with an unusual name and long values (a copy: data/ is untouched)."""
    root = tmp_path_factory.mktemp("browser")
    shutil.copytree(REPO / "data" / "lake", root / "lake")
    ana = Registry(root / "lake", actor="ana", durable=False)
    bob = Registry(root / "lake", actor="bob", durable=False)
    carol = Registry(root / "lake", actor="carol", durable=False)
    try:
        for n in (1, 2):
            ana.register(
                ODD_NAME, f"s3://acme-models/churn-legacy/v{n}/model.tar.gz", owner="ana", capture_git=False,
                description="The churn model before the 2026 rewrite, kept for the partners who still call it. "
                            "Its scores are not comparable with churn's: they use the old thirty-day window.",
                code_repo="https://github.com/acme/churn-legacy", code_version=f"{n}" * 40,
                data_refs=[f"s3://acme-lake/retention/subscribers-with-a-rather-long-folder-name/snapshot-2026-0{n}"
                           f"-01T00:00:00Z/part-00000-{n}.parquet"],
                tags={"team": "retention", "contract": "partners-of-the-legacy-scoring-interface-until-2027"},
            )
            bob.approve(ODD_NAME, n, note="checked against the partner contract")
            carol.deploy(ODD_NAME, n, target="staging", note="staging first")
            carol.deploy(ODD_NAME, n, target="prod-eu", note=LONG_NOTE)
    finally:
        ana.close()
        bob.close()
        carol.close()
    return root / "lake"


@pytest.fixture(scope="module")
def served(lake: Path):
    site = lake.parent / "site"
    with Registry(lake, durable=False) as reg:
        report = build_site(reg, site, dashboard_templates={"grafana-site": GRAFANA})
    assert report.problems == {}
    server = make_server(site, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def reg(lake: Path):
    with Registry(lake, durable=False) as registry:
        yield registry


@pytest.fixture(scope="module")
def chromium():
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


def _open(chromium, viewport: dict[str, int] = DESKTOP):
    requests: list[str] = []
    context = chromium.new_context(viewport=viewport)

    def guard(route) -> None:
        requests.append(route.request.url)
        if (urlsplit(route.request.url).hostname or "") in LOCAL_HOSTS:
            route.continue_()
        else:
            route.abort()

    context.route("**/*", guard)
    return context, context.new_page(), requests


@pytest.fixture
def browser_page(chromium):
    context, page, requests = _open(chromium)
    yield page, requests
    context.close()


@pytest.fixture
def phone_page(chromium):
    context, page, requests = _open(chromium, PHONE)
    yield page, requests
    context.close()


def _outside(requests: list[str]) -> list[str]:
    return [u for u in requests if (urlsplit(u).hostname or "") not in LOCAL_HOSTS]


def search(page, words: str, expect: str) -> None:
    box = page.locator("input.md-search__input")
    box.click()
    box.fill("")
    box.type(words, delay=30)
    results = page.locator(".md-search-result__item", has_text=expect)
    results.first.wait_for(state="visible", timeout=15_000)


def ranked(page, words: str) -> list[str]:
    """The pages search lists for ``words``, best first (once the list has settled)."""
    box = page.locator("input.md-search__input")
    box.click()
    box.fill("")
    box.type(words, delay=30)
    page.locator(".md-search-result__item").first.wait_for(state="visible", timeout=15_000)
    links = page.locator("li.md-search-result__item > a")
    seen: list[str] = []
    for _ in range(40):
        page.wait_for_timeout(150)
        now = [urlsplit(h).path for h in links.evaluate_all("els => els.map(e => e.href)")]
        if now and now == seen:
            return now
        seen = now
    return seen


# Every kind of page the site has.
PAGE_TYPES = {
    "home": "",
    "models": "models/",
    "model": "models/churn/",
    "model with an encoded name": "models/~inuhk4toebggkz3bmn4q/",
    "owners": "owners/",
    "targets": "targets/",
    "target": "targets/prod-eu/",
    "tags": "tags/",
    "audit log": "audit/",
    "audit log of a month": "audit/2026-10/",   # (a month of the sample lake's events)
    "sql cookbook": "sql/",
    "sql query": "query/",
}

AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map(v => ({id: v.id, help: v.help, nodes: v.nodes.map(n => n.target.join(" ") + ": " + n.failureSummary)}));
}"""


def axe_violations(page) -> list[str]:
    page.add_script_tag(content=axe_source())
    found = page.evaluate(AXE_RUN)
    return [f"{v['id']} ({v['help']}) x{len(v['nodes'])}: " + " | ".join(n.replace("\n", " ") for n in v["nodes"][:4])
            for v in found]


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_axe_finds_no_violation_on_any_kind_of_page(served: str, chromium, viewport) -> None:
    context, page, requests = _open(chromium, viewport)
    try:
        report = {}
        for kind, rel in PAGE_TYPES.items():
            page.goto(served + rel)
            page.wait_for_load_state("networkidle")
            assert page.locator("article h1").count() == 1, kind
            report[kind] = axe_violations(page)
        # the states a reader opens: every <details> (gate evidence, view SQL) and the search results
        page.goto(served + "audit/")
        page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
        report["audit log, evidence open"] = axe_violations(page)
        page.goto(served)
        if viewport is PHONE:
            page.locator("label.md-header__button[for='__search']").click()
        search(page, "churn", "churn")
        report["search results"] = axe_violations(page)
    finally:
        context.close()
    failing = [f"{kind}: {line}" for kind, lines in report.items() for line in lines]
    assert failing == [], "axe-core found:\n" + "\n".join(failing)
    assert _outside(requests) == []


def test_axe_finds_no_violation_on_the_sql_page_with_an_answer(served: str, browser_page) -> None:
    page, requests = browser_page
    page.goto(served + "query/")
    settled = "s => s.includes(document.getElementById('catalog-sql-status').dataset.state)"
    page.wait_for_function(settled, arg=["ready", "error"], timeout=120_000)
    assert page.locator("#catalog-sql-status").get_attribute("data-state") == "ready", \
        page.inner_text("#catalog-sql-status")
    page.click("#catalog-sql-run")
    page.wait_for_function(settled, arg=["done", "error"], timeout=60_000)
    assert page.locator("#catalog-sql-result table").count() == 1, page.inner_text("#catalog-sql-status")
    assert axe_violations(page) == []
    assert _outside(requests) == []


# -- the target page: what an on-call engineer needs, two clicks from home ---------------------


def test_the_target_page_answers_the_incident_questions(served: str, browser_page, reg) -> None:
    page, requests = browser_page
    page.goto(served)
    page.locator("article a", has_text="prod-eu").first.click()    # home -> the target page: one click
    page.wait_for_url(lambda url: url.endswith("/targets/prod-eu/"))
    assert page.locator("article h1").inner_text().strip().startswith("prod-eu")

    running = sorted((d for d in reg.deployments() if d.target == "prod-eu"), key=lambda d: d.model)
    rows = page.locator("table.catalog-target-running tbody tr")
    assert rows.count() == len(running) >= 4
    for i, d in enumerate(running):
        cells = [c.strip() for c in rows.nth(i).locator("td").all_inner_texts()]
        assert cells[0] == d.model and cells[1] == f"v{d.version}"
        assert cells[2] == d.since.strftime("%Y-%m-%d %H:%M UTC") and cells[3] == d.by
        approvers = {e.actor for e in reg.history(d.model) if e.kind == "approve" and e.version == d.version}
        assert approvers and set(cells[5].split(", ")) == approvers
        dashboards = rows.nth(i).locator("a.dashboard-link")
        assert GRAFANA.format(model=quote(d.model, safe=""), version=d.version, target="prod-eu") in [
            dashboards.nth(j).get_attribute("href") for j in range(dashboards.count())]

    commands = [c.strip() for c in page.locator(".catalog-incident code.command").all_inner_texts()]
    expected = []
    for d in running:
        first = reg.candidates(d.model, target="prod-eu")
        if first:
            expected.append(rollback_command(d.model, "prod-eu", first[0].version))
    assert commands == expected and len(expected) >= 4
    assert "catalog rollback churn --target prod-eu --to 4 --note 'why you roll back'" in commands
    assert f"catalog rollback '{ODD_NAME}' --target prod-eu --to 1 --note 'why you roll back'" in commands
    assert page.locator(".catalog-incident button.md-clipboard, .catalog-incident .md-code__button").count() >= 4

    history = page.locator("table.catalog-events tbody tr")
    n_events = reg.sql("SELECT count(*) AS n FROM events WHERE target = 'prod-eu'").rows[0]["n"]
    assert history.count() == n_events
    assert "rollback" in history.first.inner_text() or "deploy" in history.first.inner_text()
    assert _outside(requests) == []


# -- lineage: every dataset once, what differs shown, nothing cut to identical text ---------------


def test_lineage_labels_are_distinct_and_every_reference_is_shown_in_full(served: str, browser_page, reg) -> None:
    page, _ = browser_page
    for model in ("churn", ODD_NAME, "churn-distilled"):
        page.goto(served + f"models/{quote_segment(model)}/")
        labels = svg_texts(page, "svg.catalog-lineage text.node-label")
        details = svg_texts(page, "svg.catalog-lineage text.node-detail")
        assert labels and len(labels) == len(set(labels)), labels
        assert len(details) == len(set(zip(labels, details)))
        table = page.locator("table.catalog-lineage-refs").inner_text()
        refs = {r for v in reg.show(model).versions for r in v.data_refs}
        assert refs and all(r in table for r in refs), (model, refs)
    # churn: eight snapshots of each of two datasets, one node per dataset with what differs
    page.goto(served + "models/churn/")
    labels = svg_texts(page, "svg.catalog-lineage text.node-label")
    assert sum(1 for t in labels if t.startswith("data: ")) == 2
    assert svg_texts(page, "svg.catalog-lineage text.node-detail").count("8 snapshots (v1\u2013v8)") == 2
    bold = page.locator("table.catalog-lineage-refs strong.ref-detail").all_inner_texts()
    assert "@snapshot-1201" in bold and "@snapshot-1208" in bold


def svg_texts(page, selector: str) -> list[str]:
    return [t.strip() for t in page.locator(selector).evaluate_all("els => els.map(e => e.textContent)")]


def quote_segment(name: str) -> str:
    from catalog.validate import path_segment

    return path_segment(name)


# -- a phone: no page scrolls sideways, text wraps between words --------------------------------

OVERFLOW = """() => {
  const article = document.querySelector("article.md-content__inner");
  const limit = Math.min(document.documentElement.clientWidth, article.getBoundingClientRect().right) + 1;
  const out = [];
  const scrolls = new Map();
  const inScrollBox = el => {   // inside a box that scrolls on its own (a wide table, the diagram, code): fine
    for (let a = el.parentElement; a && a !== article; a = a.parentElement) {
      if (!scrolls.has(a)) scrolls.set(a, ["auto", "scroll"].includes(getComputedStyle(a).overflowX));
      if (scrolls.get(a)) return true;
    }
    return false;
  };
  for (const el of article.querySelectorAll("*")) {
    if (inScrollBox(el)) continue;
    const r = el.getBoundingClientRect();
    if (r.width > 0 && r.right > limit) out.push(`${el.tagName.toLowerCase()}.${el.className} ends at ${Math.round(r.right)} > ${Math.round(limit)}`);
  }
  return {page: document.documentElement.scrollWidth, viewport: document.documentElement.clientWidth, out: out.slice(0, 8)};
}"""

# Words of notes and descriptions split over two lines (a break inside a word that would fit on a line).
BROKEN_WORDS = """() => {
  const out = [];
  for (const el of document.querySelectorAll("td.note, .model-description, .catalog-incident .note")) {
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const re = /[A-Za-z]{4,}/g;
      for (let m = re.exec(node.data); m; m = re.exec(node.data)) {
        const range = document.createRange();
        range.setStart(node, m.index);
        range.setEnd(node, m.index + m[0].length);
        const lines = new Set(Array.from(range.getClientRects()).filter(r => r.width > 0).map(r => Math.round(r.top)));
        if (lines.size > 1) out.push(m[0]);
      }
    }
  }
  return out;
}"""


@pytest.mark.parametrize("kind", ["home", "models", "model", "model with an encoded name", "targets", "target",
                                  "tags", "audit log", "sql query"])
def test_on_a_phone_nothing_runs_off_the_page_and_words_stay_whole(served: str, phone_page, kind: str) -> None:
    page, _ = phone_page
    page.goto(served + PAGE_TYPES[kind])
    page.wait_for_load_state("networkidle")
    found = page.evaluate(OVERFLOW)
    broken = page.evaluate(BROKEN_WORDS)
    assert (found["page"] <= found["viewport"], found["out"], broken) == (True, [], []), found


def test_on_a_wide_screen_tables_stay_out_of_the_table_of_contents(served: str, browser_page) -> None:
    page, _ = browser_page
    for rel in ("", "models/", "models/churn/", "targets/prod-eu/", "audit/"):
        page.goto(served + rel)
        found = page.evaluate(OVERFLOW)
        assert found["out"] == [], (rel, found)
        toc = page.locator(".md-sidebar--secondary").bounding_box()
        for box in page.locator(".catalog-scroll").all():
            assert box.bounding_box()["x"] + box.bounding_box()["width"] <= toc["x"] + 1, rel


# -- search ---------------------------------------------------------------------------------------


def test_an_exact_name_ranks_first_in_search(served: str, browser_page) -> None:
    page, requests = browser_page
    page.goto(served)
    page.wait_for_load_state("networkidle")
    assert ranked(page, "churn")[0].endswith("/models/churn/")
    assert "/models/churn-distilled/" in ranked(page, "churn")
    assert ranked(page, "churn-distilled")[0].endswith("/models/churn-distilled/")
    assert ranked(page, "fraud-score")[0].endswith("/models/fraud-score/")
    assert ranked(page, "prod-eu")[0].endswith("/targets/prod-eu/")
    assert unquote(ranked(page, ODD_NAME)[0]).endswith(f"/models/{quote_segment(ODD_NAME)}/")
    assert any(u.endswith("search_index.json") for u in requests)


def test_search_open_a_model_and_see_its_dashboards_and_charts(served: str, browser_page, tmp_path: Path) -> None:
    page, requests = browser_page
    page.goto(served)
    page.wait_for_load_state("networkidle")
    assert "Model Catalog" in page.title()
    assert page.locator("table.catalog-targets tbody tr").count() > 0   # every target, one row each

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
    outside = _outside(requests)
    assert outside == [], f"requests left the machine: {outside}"
    assert any(u.endswith("search_index.json") for u in requests)


def test_sortable_table_sorts_on_click_and_from_the_keyboard(served: str, browser_page) -> None:
    page, requests = browser_page
    page.goto(served + "models/")
    first = lambda: page.locator("table.catalog-models tbody tr td:first-child").first.inner_text().strip()  # noqa: E731
    assert first() == ODD_NAME       # capital letters sort first, as the lake lists them
    heading = page.locator("table.catalog-models th", has_text="model")
    heading.click()
    assert first() == "churn" and heading.get_attribute("aria-sort") == "ascending"
    heading.locator("button").focus()
    page.keyboard.press("Enter")
    assert first() == "text-encoder" and heading.get_attribute("aria-sort") == "descending"
    assert all((urlsplit(u).hostname or "") in LOCAL_HOSTS for u in requests)


def test_every_model_and_target_link_leads_to_a_page(served: str, browser_page, reg) -> None:
    page, _ = browser_page
    page.goto(served + "models/")
    hrefs = page.locator("table.catalog-models tbody a").evaluate_all("els => els.map(e => e.href)")
    page.goto(served + "targets/")
    hrefs += page.locator("article a").evaluate_all("els => els.map(e => e.href)")
    local = sorted({h.split("#")[0] for h in hrefs if urlsplit(h).hostname in LOCAL_HOSTS})
    assert any(re.search(r"/models/~[a-z2-7]+/$", h) for h in local)
    for href in local:
        response = page.goto(href)
        assert response is not None and response.status == 200, href
