"""The catalog site: built from real lakes through the public API, checked in its HTML."""

from __future__ import annotations

import html
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalog import Registry
from catalog.site import build_site, make_document, make_server, read_records
from catalog.site.context import commit_url, is_web_url
from catalog.site.render import page_root
from catalog.site.svg import esc

REPO = Path(__file__).resolve().parents[1]
GRAFANA = "https://grafana.example.com/d/x?var-model={model}&var-version={version}&var-target={target}"


class Page(HTMLParser):
    """A built HTML page: its text, every link/asset address (decoded), its scripts."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.text_parts: list[str] = []
        self.urls: list[tuple[str, str, str]] = []   # (tag, attribute, value)
        self.scripts: list[str] = []
        self.ids: set[str] = set()
        self._in: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src", "xlink:href", "action", "formaction") and value is not None:
                self.urls.append((tag, name, value))
            if name == "id" and value:
                self.ids.add(value)
        if tag == "script":
            self.scripts.append(dict(attrs).get("src") or "")
        if tag in ("script", "style"):
            self._in.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._in:
            self._in.pop()

    def handle_data(self, data: str) -> None:
        if not self._in:
            self.text_parts.append(data)

    @property
    def text(self) -> str:
        return "".join(self.text_parts)

    def links(self) -> list[str]:
        return [v for tag, attr, v in self.urls if tag == "a"]


def read_page(site: Path, rel: str) -> Page:
    return Page((site / rel).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("sample")
    shutil.copytree(REPO / "data" / "lake", root / "lake")
    reg = Registry(root / "lake", actor="site-test", durable=False)
    report = build_site(reg, root / "site", dashboard_templates={"grafana-site": GRAFANA})
    yield reg, report, root / "site"
    reg.close()


# -- the sample lake's site -----------------------------------------------------


def test_sample_builds_strict_with_a_clean_report(sample) -> None:
    reg, report, site = sample
    models = reg.list()
    assert report.models == len(models) == 9
    targets = reg.sql("SELECT DISTINCT target FROM events WHERE target IS NOT NULL").rows
    # the index pages, the SQL page (query/), one page per model, one per target, one per month of events
    months = reg.sql("""SELECT count(DISTINCT date_trunc('month', "at")) AS n FROM audit_log""").rows[0]["n"]
    assert report.pages == 8 + len(models) + len(targets) + months
    assert report.problems == {}
    assert set(report.timings) == {"read", "document", "render", "sql", "mkdocs"}
    assert (site / "index.html").is_file() and (site / "search" / "search_index.json").is_file()


def test_every_model_has_its_page_and_every_version_its_anchor(sample) -> None:
    reg, _, site = sample
    for summary in reg.list():
        page = read_page(site, f"models/{summary.model}/index.html")
        info = reg.show(summary.model)
        assert {f"v{v.version}" for v in info.versions} <= page.ids
        assert summary.model in page.text
        assert (info.owner or "") in page.text
        assert (info.description or "") in page.text
        for key, value in info.tags.items():
            assert f"{key}: {value}" in page.text


def test_index_pages_count_what_the_views_count(sample) -> None:
    reg, _, site = sample
    n_models = reg.sql("SELECT count(DISTINCT model) AS n FROM versions").rows[0]["n"]
    n_events = reg.sql("SELECT count(*) AS n FROM audit_log").rows[0]["n"]
    n_running = reg.sql("SELECT count(*) AS n FROM deployments").rows[0]["n"]
    models_html = (site / "models" / "index.html").read_text()
    assert models_html.count('class="model-row"') == n_models
    assert f'<span id="model-count">{n_models}</span>' in models_html
    months = sorted((site / "audit").glob("*/index.html"))
    assert len(months) == reg.sql("""SELECT count(DISTINCT date_trunc('month', "at")) AS n FROM audit_log""").rows[0]["n"] > 1
    assert sum(p.read_text().count('<tr class="event-') for p in months) == n_events   # each event on its month's page
    audit_html = (site / "audit" / "index.html").read_text()
    assert audit_html.count('<tr class="event-') == min(n_events, 100)                 # the index: the latest 100
    home_html = (site / "index.html").read_text()
    assert '<table class="catalog-running' not in home_html   # (every deployment is on its target's page)
    table = re.search(r'<table class="catalog-targets.*?</table>', home_html, re.S).group(0)
    counts = [int(n) for n in re.findall(r'<tr id="target-[^"]*"><td>.*?</td><td>(\d+)</td>', table)]
    n_targets = reg.sql("SELECT count(DISTINCT target) AS n FROM events WHERE target IS NOT NULL").rows[0]["n"]
    assert len(counts) == n_targets and sum(counts) == n_running
    targets = read_page(site, "targets/index.html")
    for row in reg.sql("SELECT DISTINCT target FROM deployments").rows:
        assert f"target-{row['target']}" in targets.ids
    owners = read_page(site, "owners/index.html").text
    for row in reg.sql("SELECT DISTINCT owner FROM latest_approved JOIN versions USING (model, version)").rows:
        assert row["owner"] in owners
    tags = read_page(site, "tags/index.html").text
    for row in reg.sql("SELECT DISTINCT unnest(map_keys(tags)) AS k FROM versions").rows:
        assert row["k"] in tags


def test_home_leads_to_each_target_and_shows_the_latest_decisions_with_rollback_notes(sample) -> None:
    reg, _, site = sample
    home = read_page(site, "index.html")
    for d in reg.deployments():
        assert d.target in home.text and f"./targets/{d.target}/" in home.links()
        assert d.model in read_page(site, f"targets/{d.target}/index.html").text
    home_text = home.text   # (the latest decisions, rollbacks with their notes, stay on the home page)
    rollback = reg.sql("SELECT note FROM audit_log WHERE kind = 'rollback' ORDER BY \"at\" DESC LIMIT 1").rows[0]
    assert rollback["note"] in home_text


def test_api_json_matches_resolve(sample) -> None:
    reg, _, site = sample
    catalog = json.loads((site / "api" / "models.json").read_text())
    assert [m["model"] for m in catalog["models"]] == sorted(s.model for s in reg.list())
    total = 0
    for entry in catalog["models"]:
        assert len(entry["versions"]) == len(reg.show(entry["model"]).versions)
        per_model = json.loads((site / "api" / "models" / f"{entry['model']}.json").read_text())
        assert per_model["deployments"] == entry["deployments"]
        for d in per_model["deployments"]:
            assert reg.resolve(f"{d['model']}@{d['target']}") == d["artifact_uri"]
            assert reg.show(d["model"], d["version"]).artifact_sha256 == d["sha256"]
            total += 1
        if entry["latest_approved"] is not None:
            assert reg.resolve(f"{entry['model']}@latest").endswith(f"v{entry['latest_approved']}/model.tar.gz")
    assert total == len(reg.deployments())


def test_dashboards_from_versions_and_templates_are_linked(sample) -> None:
    reg, _, site = sample
    for d in reg.deployments():
        links = read_page(site, f"models/{d.model}/index.html").links()
        expected = GRAFANA.format(model=d.model, version=d.version, target=d.target)
        assert expected in links
        own = reg.show(d.model, d.version).dashboards
        assert set(own.values()) <= set(links)


def test_model_pages_have_charts_lineage_candidates_history_and_commit_links(sample) -> None:
    reg, _, site = sample
    raw = (site / "models" / "churn" / "index.html").read_text()
    page = Page(raw)
    assert raw.count('<svg class="catalog-chart"') == len(reg.show("churn").versions[0].metrics)
    assert raw.count('<svg class="catalog-lineage"') == 1
    v1 = reg.show("churn", 1)
    assert f"https://github.com/acme/churn/commit/{v1.code_version}" in page.links()
    for c in reg.candidates("churn", target="prod-eu"):
        assert f"#v{c.version}" in page.links()
    assert len(re.findall(r'<tr class="event-', raw)) == len(reg.history("churn"))
    # the lineage diagram links parent and derived models to their pages
    derived = read_page(site, "models/churn-distilled/index.html")
    assert "../../models/churn/" in derived.links()
    assert "../../models/churn-distilled/" in page.links()


def test_search_index_finds_models_by_name_owner_tag_and_description(sample) -> None:
    reg, _, site = sample
    index = json.loads((site / "search" / "search_index.json").read_text())
    by_page: dict[str, str] = {}
    for doc in index["docs"]:
        page = doc["location"].split("#")[0]
        by_page[page] = by_page.get(page, "") + " " + doc["title"] + " " + html.unescape(doc["text"])
    for summary in reg.list():
        text = by_page[f"models/{summary.model}/"]
        info = reg.show(summary.model)
        assert summary.model in text and (info.owner or "") in text
        assert all(v in text for v in info.tags.values())
        assert " ".join((info.description or "").split()[:4]) in text
    # Event tables (the audit log, each model's history) are left out of the index: on
    # a large lake they were most of it (20 MB at 1,000 models, 8 MB without them).
    notes = [r["note"] for r in reg.sql("SELECT note FROM audit_log WHERE note IS NOT NULL").rows]
    audit_html = html.unescape("".join(p.read_text() for p in (site / "audit").glob("*/index.html")))
    assert notes and all(n in audit_html for n in notes)
    assert not any(n in by_page[page] for n in notes for page in by_page if page.startswith("audit/"))
    # and so are the listings (what runs now, every model): they repeat the model pages
    listed = [s.model for s in reg.list()]
    assert not any(m in by_page.get(page, "") for m in listed for page in ("", "models/", "targets/"))


def test_the_site_loads_nothing_from_the_internet(sample) -> None:
    _, _, site = sample
    for path in site.rglob("*.html"):
        page = read_page(site, str(path.relative_to(site)))
        for tag, attr, value in page.urls:
            if tag in ("script", "link", "img", "iframe", "source", "video", "audio", "embed", "object"):
                assert not re.match(r"^\s*(https?:)?//", value), f"{path}: <{tag} {attr}={value}>"
    css_js = [p.read_text(errors="replace") for p in site.rglob("*.css")] + [
        p.read_text(errors="replace") for p in site.rglob("*.html")]
    assert not any("fonts.googleapis.com" in text or "fonts.gstatic.com" in text for text in css_js)


# -- hostile input ------------------------------------------------------------------

HOSTILE = '<script>alert("pwned")</script> <img src=x onerror=alert(2)> [x](javascript:alert(1)) **bold** `code` <b>raw</b>'


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("hostile")
    lake = root / "lake"
    ana = Registry(lake, actor="ana", durable=False)
    bob = Registry(lake, actor="<b>bob</b>", durable=False)
    long_text = ("A long description. " * 520)[:10_240]
    tags = {"team": "<script>alert(3)</script>", "langue": "données-日本語-🚀", "link": "[y](javascript:alert(4))"}
    ana.register(
        "evil", "s3://models/evil/1.pkl", owner="<script>alert('owner')</script>", capture_git=False,
        description=HOSTILE + "\n\n# not a heading\n\n" + long_text,
        tags=tags,
        dashboards={"evil": "javascript:alert(5)", "data": "data:text/html,<script>alert(6)</script>",
                    "ok": "https://grafana.example.com/d/ok"},
        params={"p": "<iframe src=javascript:alert(7)>"}, metrics={"auc": 0.9, "f1_score:macro/x": 1.0},
        code_repo="https://github.com/acme/evil", code_version="abc123",
        data_refs=["s3://data/[z](javascript:alert(8))"], runtime_image="img:<script>",
        allow_missing_data=True,
    )
    ana.register("evil", "s3://models/evil/2.pkl", owner="ana", description="second", capture_git=False, tags=tags,
                 parents=[("evil", 1, "fine-tuned")], metrics={"auc": 0.95})
    bob.approve("evil", 1, note="[click](javascript:alert(9)) <script>alert(10)</script>")
    bob.approve("evil", 2, note="ok")
    bob.deploy("evil", 1, target="prod")
    bob.deploy("evil", 2, target="prod")
    bob.rollback("evil", target="prod", note="<img src=x onerror=alert(11)> rollback")
    report = build_site(ana, root / "site", dashboard_templates={"tmpl": "javascript:alert('{model}')",
                                                                    "grafana": GRAFANA, "broken": "https://x/{nope}"})
    yield ana, report, root / "site"
    ana.close()
    bob.close()


def test_hostile_lake_builds_and_reports_its_problems(hostile) -> None:
    _, report, site = hostile
    assert (site / "models" / "evil" / "index.html").is_file()
    problems = " ".join(report.problems["evil"])
    assert "'evil' of evil v1 is not an http(s) URL" in problems
    assert "'tmpl' of evil@prod is not an http(s) URL" in problems
    assert "'broken' cannot be filled in" in problems


@pytest.mark.parametrize("rel", ["models/evil/index.html", "index.html", "models/index.html", "owners/index.html",
                                 "tags/index.html", "audit/index.html", "targets/index.html"])
def test_hostile_text_is_shown_inert(hostile, rel: str) -> None:
    _, _, site = hostile
    raw = (site / rel).read_text(encoding="utf-8")
    page = Page(raw)
    # no script, image, iframe or link came from user text
    assert "<script>alert" not in raw and "<img src=x" not in raw and "<iframe" not in raw and "<b>bob" not in raw
    assert all(src == "" or src.startswith(("../", "assets/", "search/")) or "/assets/" in src
               for src in page.scripts)
    for tag, attr, value in page.urls:
        assert not re.match(r"^\s*(javascript|data|vbscript):", value, re.I), (tag, attr, value)
    assert "alert" not in "".join(v for _, _, v in page.urls)
    assert "<strong>bold</strong>" not in raw and "<b>raw</b>" not in raw


def test_hostile_text_reads_as_typed_on_the_model_page(hostile) -> None:
    _, _, site = hostile
    text = read_page(site, "models/evil/index.html").text
    assert '<script>alert("pwned")</script>' in text
    assert "[x](javascript:alert(1)) **bold** `code` <b>raw</b>" in text
    assert "# not a heading" in text
    assert "données-日本語-🚀" in text
    assert "javascript:alert(5)" in text          # shown as text, not linked
    assert "<iframe src=javascript:alert(7)>" in text
    assert "[click](javascript:alert(9)) <script>alert(10)</script>" in text
    assert "A long description." in text
    links = read_page(site, "models/evil/index.html").links()
    assert "https://grafana.example.com/d/ok" in links
    assert "https://github.com/acme/evil/commit/abc123" in links
    tags = read_page(site, "tags/index.html").text
    assert "données-日本語-🚀" in tags and "[y](javascript:alert(4))" in tags


def test_hostile_text_stays_escaped_in_the_search_index(hostile) -> None:
    _, _, site = hostile
    raw = (site / "search" / "search_index.json").read_text(encoding="utf-8")
    for doc in json.loads(raw)["docs"]:
        assert "<script" not in doc["text"] and "<img" not in doc["text"] and "<iframe" not in doc["text"]
    assert "alert(3)" in raw   # (the hostile tag, shown in the model's summary, is indexed, as text)


def test_templates_can_be_overridden_and_still_extend_the_defaults(tmp_path: Path) -> None:
    shutil.copytree(REPO / "data" / "lake", tmp_path / "lake")
    overrides = tmp_path / "templates"
    overrides.mkdir()
    (overrides / "model.md.j2").write_text(
        '{% extends "default:model.md.j2" %}\n{% block summary %}{{ super() }}\n'
        '<p class="house-note">Owned by {{ model.owner }} at Acme</p>\n{% endblock %}\n'
    )
    with Registry(tmp_path / "lake", durable=False) as reg:
        report = build_site(reg, tmp_path / "site", templates=overrides, build_dir=tmp_path / "build")
    raw = (tmp_path / "site" / "models" / "churn" / "index.html").read_text()
    assert '<p class="house-note">Owned by ana at Acme</p>' in raw
    assert 'id="v1"' in raw and '<svg class="catalog-lineage"' in raw
    assert (tmp_path / "build" / "models" / "churn" / "index.md").is_file()
    assert report.problems == {}


def test_the_document_is_json_and_versioned(tmp_path: Path) -> None:
    shutil.copytree(REPO / "data" / "lake", tmp_path / "lake")
    with Registry(tmp_path / "lake", durable=False) as reg:
        document = make_document(read_records(reg))
    assert document["schema"] == 1
    assert json.loads(json.dumps(document)) == document
    assert document["counts"]["versions"] == reg.sql("SELECT count(*) AS n FROM versions").rows[0]["n"]


# -- pure helpers ---------------------------------------------------------------------


@given(st.text())
def test_escaped_text_decodes_to_itself_and_carries_no_markup(text: str) -> None:
    out = str(esc(text))
    assert html.unescape(out) == text.replace("\r", "")
    assert not set("<>&[]()`*_\\|#!\"'") & set(out.replace("&#", ""))


@pytest.mark.parametrize(("url", "ok"), [
    ("https://grafana.example.com/d/x", True), ("http://localhost:3000", True), ("HTTPS://EXAMPLE.COM", True),
    ("javascript:alert(1)", False), (" javascript:alert(1)", False), ("data:text/html,x", False),
    ("//evil.example.com", False), ("https://", False), ("https://exa mple.com", False), ("ftp://x.y", False),
])
def test_only_http_urls_become_links(url: str, ok: bool) -> None:
    assert is_web_url(url) is ok


@pytest.mark.parametrize(("repo", "commit", "url"), [
    ("https://github.com/acme/churn", "abc", "https://github.com/acme/churn/commit/abc"),
    ("https://github.com/acme/churn.git", "abc", "https://github.com/acme/churn/commit/abc"),
    ("git@github.com:acme/churn.git", "abc", "https://github.com/acme/churn/commit/abc"),
    ("https://gitlab.com/acme/ml/churn", "abc", "https://gitlab.com/acme/ml/churn/-/commit/abc"),
    ("https://bitbucket.org/acme/churn", "abc", "https://bitbucket.org/acme/churn/commits/abc"),
    ("https://git.example.com/acme/churn", "abc", None),
    ("https://github.com/acme", "abc", None),
    ("https://github.com/acme/churn", "abc\"><script>", None),
    ("javascript://github.com/acme/churn", "abc", None),
    (None, "abc", None),
])
def test_commit_links_only_for_known_hosts(repo, commit, url) -> None:
    assert commit_url(repo, commit) == url


@pytest.mark.parametrize(("path", "root"), [
    ("index.md", "./"), ("owners.md", "../"), ("models/index.md", "../"), ("models/churn/index.md", "../../"),
])
def test_page_roots(path: str, root: str) -> None:
    assert page_root(path) == root


def test_config_mapping_supplies_dashboards_and_strict_warnings_fail_the_build(tmp_path: Path) -> None:
    from catalog.site import SiteBuildFailed

    shutil.copytree(REPO / "data" / "lake", tmp_path / "lake")
    with Registry(tmp_path / "lake", durable=False) as reg:
        build_site(reg, tmp_path / "site", {"dashboards": {"kibana": "https://kibana.example.com/{target}/{model}"}})
        assert "https://kibana.example.com/prod-eu/churn" in read_page(tmp_path / "site", "models/churn/index.html").links()
        broken = tmp_path / "broken"
        broken.mkdir()
        (broken / "sql.md.j2").write_text("# SQL\n\n[gone](missing.md)\n")
        with pytest.raises(SiteBuildFailed, match="missing.md"):
            build_site(reg, tmp_path / "site2", templates=broken)


def test_serving_needs_a_built_site(tmp_path: Path) -> None:
    from catalog.site import SiteBuildFailed

    with pytest.raises(SiteBuildFailed, match="catalog build"):
        make_server(tmp_path, port=0)


def test_audit_pages_show_the_gate_evidence_of_each_approval(sample) -> None:
    reg, _, site = sample
    approvals = reg.sql("select count(*) as n from events where kind = 'approve'").rows[0]["n"]
    text = " ".join(read_page(site, str(p.relative_to(site))).text for p in (site / "audit").glob("*/index.html"))
    assert text.count("gates passed") >= approvals
    assert "approval 2/2" in text and "approval 1/2" in text  # the sample's quorum
    assert "required:owner" in text and "four-eyes" in text and "sha256" in text
    churn = read_page(site, "models/churn/index.html").text
    assert "challenger:auc" in churn
