"""The site's target pages, lineage grouping, page folders and event kinds, checked in the built
HTML (no browser: tests/test_site_browser.py drives Chromium over the same pages)."""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalog import Registry
from catalog.site import build_site
from catalog.site.context import group_refs, rollback_command, search_boost, split_ref
from catalog.site.svg import distinct_labels
from catalog.validate import path_segment

REPO = Path(__file__).resolve().parents[1]


def text_of(path: Path) -> str:
    """The article of a built page as plain text (tags dropped, references decoded)."""
    raw = path.read_text(encoding="utf-8")
    article = raw[raw.index("<article"):raw.index("</article>")]
    article = re.sub(r"<(script|style)\b.*?</\1>", " ", article, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", article)).split())


def rows(path: Path, table_class: str) -> list[list[str]]:
    raw = path.read_text(encoding="utf-8")
    table = re.search(rf'<table class="{table_class}[" ].*?</table>', raw, re.S)
    assert table, table_class
    body = table.group(0).split("<tbody>", 1)[1]
    return [[re.sub(r" ([:,])", r"\1", " ".join(html.unescape(re.sub(r"<[^>]+>", " ", cell)).split()))
             for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)]


def hrefs(path: Path) -> list[str]:
    return [html.unescape(h) for h in re.findall(r'href="([^"]*)"', path.read_text(encoding="utf-8"))]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("pages")
    shutil.copytree(REPO / "data" / "lake", root / "lake")
    reg = Registry(root / "lake", actor="site-test", durable=False)
    report = build_site(reg, root / "site")
    yield reg, report, root / "site"
    reg.close()


# -- target pages ----------------------------------------------------------------------------


def test_every_target_that_ran_something_has_its_page(sample) -> None:
    reg, report, site = sample
    targets = {r["target"] for r in reg.sql("SELECT DISTINCT target FROM events WHERE target IS NOT NULL").rows}
    assert targets == {p.parent.name for p in (site / "targets").glob("*/index.html")}
    assert report.problems == {}
    home = hrefs(site / "index.html")
    for t in targets:
        assert f"./targets/{t}/" in home        # one click from the home page


def test_the_target_page_shows_what_runs_who_approved_and_how_to_roll_back(sample) -> None:
    reg, _, site = sample
    page = site / "targets" / "prod-eu" / "index.html"
    running = sorted((d for d in reg.deployments() if d.target == "prod-eu"), key=lambda d: d.model)
    table = rows(page, "catalog-running catalog-target-running")
    assert [r[0] for r in table] == [d.model for d in running]
    for row, d in zip(table, running):
        approvers = {e.actor for e in reg.history(d.model) if e.kind == "approve" and e.version == d.version}
        assert row[1] == f"v{d.version}" and row[3] == d.by and set(row[5].split(", ")) == approvers
        assert (d.note or "") in row[7]
    text = text_of(page)
    for d in running:
        first = reg.candidates(d.model, target="prod-eu")[0]
        assert rollback_command(d.model, "prod-eu", first.version) in text
    history = rows(page, "catalog-events")
    assert len(history) == reg.sql("SELECT count(*) AS n FROM events WHERE target = 'prod-eu'").rows[0]["n"]
    assert history[0][2].startswith("rollback")       # the latest change on prod-eu: churn's rollback


def test_a_long_target_history_shows_its_latest_events_and_says_where_the_rest_are(
        sample, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = rows(sample[2] / "targets" / "prod-eu" / "index.html", "catalog-events")   # (every event: fewer than 500)
    assert "Every deploy, rollback and undeploy on prod-eu, newest first." in text_of(sample[2] / "targets" / "prod-eu" / "index.html")
    monkeypatch.setattr("catalog.site.context.TARGET_LATEST", 2)
    shutil.copytree(REPO / "data" / "lake", tmp_path / "lake")
    with Registry(tmp_path / "lake", actor="site-test", durable=False) as reg:
        build_site(reg, tmp_path / "site", sql_page=False, jobs=1)
        total = reg.sql("SELECT count(*) AS n FROM events WHERE target = 'prod-eu'").rows[0]["n"]
    page = tmp_path / "site" / "targets" / "prod-eu" / "index.html"
    assert total == len(whole) > 2
    assert rows(page, "catalog-events") == whole[:2]   # the latest two
    text = text_of(page)
    assert f"The latest 2 of the {total} deploys, rollbacks and undeploys on prod-eu, newest first." in text
    assert "catalog history --target prod-eu prints them all" in text
    assert "../../audit/" in hrefs(page)


def test_the_rollback_command_is_exact_and_quoted_for_a_shell() -> None:
    assert rollback_command("churn", "prod-eu", 4) == (
        "catalog rollback churn --target prod-eu --to 4 --note 'why you roll back'")
    assert rollback_command("original name", "Prod_EU", 2).startswith("catalog rollback 'original name' --target Prod_EU")
    assert rollback_command("it's", "p", 1).startswith("catalog rollback 'it'\"'\"'s' ")


# -- lineage ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("ref", "kind", "split"), [
    ("bq://acme.analytics.sessions@snapshot-1201", "data", ("bq://acme.analytics.sessions", "@snapshot-1201")),
    ("s3://acme-lake/retention/subscribers@2026-09-01", "data", ("s3://acme-lake/retention/subscribers", "@2026-09-01")),
    ("https://github.com/acme/churn@9969e58b", "code", ("https://github.com/acme/churn", "@9969e58b")),
    ("ghcr.io/acme/train-sklearn:1.5", "image", ("ghcr.io/acme/train-sklearn", ":1.5")),
    ("ghcr.io/acme/img@sha256:abcd", "image", ("ghcr.io/acme/img", "@sha256:abcd")),
    ("s3://bucket/table?versionId=3", "data", ("s3://bucket/table", "?versionId=3")),
    ("ssh://git@github.com/acme/x", "code", ("ssh://git@github.com/acme/x", "")),   # a user, not a version
    ("s3://bucket/key.parquet", "data", ("s3://bucket/key.parquet", "")),
])
def test_a_reference_splits_into_what_it_names_and_which_variant(ref: str, kind: str, split: tuple[str, str]) -> None:
    assert split_ref(ref, kind) == split


def test_references_group_by_dataset_with_what_differs_per_version() -> None:
    groups = group_refs("data", [
        ("bq://a.b.sessions@snap-1", 1), ("bq://a.b.sessions@snap-2", 2), ("bq://a.b.sessions@snap-2", 3),
        ("s3://lake/events/dt=2026-10-01", 1), ("s3://lake/events/dt=2026-10-02", 2),
        ("s3://other/one-file.parquet", 3),
    ])
    assert [g["source"] for g in groups] == ["bq://a.b.sessions", "s3://lake/events", "s3://other/one-file.parquet"]
    sessions = groups[0]
    assert [(v["detail"], v["span"]) for v in sessions["variants"]] == [("@snap-1", "v1"), ("@snap-2", "v2, v3")]
    assert sessions["summary"] == "2 snapshots (v1\u2013v3)"
    assert [v["detail"] for v in groups[1]["variants"]] == ["/dt=2026-10-01", "/dt=2026-10-02"]
    assert groups[2]["summary"] == "used by v3"
    for g in groups:   # the full reference is the common part followed by what differs
        assert all(v["common"] + v["detail"] == v["ref"] for v in g["variants"])


@given(st.lists(st.text(min_size=1, max_size=80), min_size=1, max_size=30, unique=True), st.integers(8, 50))
def test_diagram_labels_are_never_alike_and_never_too_long(labels: list[str], limit: int) -> None:
    out = distinct_labels(labels, limit)
    assert len(set(out)) == len(out) == len(labels)
    assert all(len(t) <= limit for t in out)


def test_the_model_page_shows_each_dataset_once_and_every_reference_in_full(sample) -> None:
    reg, _, site = sample
    raw = (site / "models" / "churn" / "index.html").read_text()
    svg = re.search(r'<svg class="catalog-lineage".*?</svg>', raw, re.S).group(0)
    labels = [html.unescape(t) for t in re.findall(r'<text class="node-label"[^>]*>(.*?)</text>', svg)]
    assert len(labels) == len(set(labels)) and sum(t.startswith("data: ") for t in labels) == 2
    table = " ".join(" ".join(r) for r in rows(site / "models" / "churn" / "index.html", "catalog-lineage-refs"))
    for v in reg.show("churn").versions:
        for ref in v.data_refs:
            assert ref in table.replace(" ", "")
    assert "churn-distilled" in table      # derived models are listed too, with links


# -- search weights ----------------------------------------------------------------------------


@given(st.from_regex(r"[a-z0-9]{1,6}(-[a-z0-9]{1,6}){0,3}", fullmatch=True),
       st.from_regex(r"[a-z0-9]{1,6}(-[a-z0-9]{1,6}){1,3}", fullmatch=True))
def test_a_page_title_holding_all_the_query_words_outweighs_one_holding_fewer(name: str, extra: str) -> None:
    # the exact name n words; a longer name holding it scores n words at a lower weight;
    # a shorter name holding k < n of its words scores k words (see search_boost)
    words = name.split("-")
    longer = f"{name}-{extra}"
    assert search_boost(name) > search_boost(longer)
    for k in range(1, len(words)):
        shorter = "-".join(words[:k])
        assert len(words) * search_boost(name) > k * search_boost(shorter)


def test_model_and_target_pages_carry_their_search_weight(sample) -> None:
    _, _, site = sample
    index = json.loads((site / "search" / "search_index.json").read_text())
    boost = {d["location"]: d.get("boost") for d in index["docs"]}
    assert boost["models/churn/"] == search_boost("churn") > boost["models/churn-distilled/"]
    assert boost["targets/prod-eu/"] == search_boost("prod-eu")


# -- names that are not plain: their pages live under validate.path_segment's folder ----------------


@pytest.fixture(scope="module")
def lifecycle_site(tmp_path_factory: pytest.TempPathFactory):
    """A lake with every event kind: create, undeploy, tag, describe, delete, rename."""
    root = tmp_path_factory.mktemp("events")
    lake = root / "lake"
    ana = Registry(lake, actor="ana", durable=False)
    bob = Registry(lake, actor="bob", durable=False)
    ana.create_model("planned", description="Nothing registered yet", tags={"team": "growth"}, note="kick-off")
    for n in (1, 2, 3):
        ana.register("Churn EU", f"s3://m/churn-eu/{n}", owner="ana", capture_git=False,
                     data_refs=[f"bq://acme.sessions@snapshot-{n}"])
    bob.approve("Churn EU", 1)
    bob.approve("Churn EU", 2)
    bob.deploy("Churn EU", 1, target="Staging_EU", note="first")
    bob.deploy("Churn EU", 2, target="Staging_EU", note="second")
    bob.undeploy("Churn EU", target="Staging_EU", note="staging is retired")
    ana.tag("Churn EU", set={"tier": "gold", "region": "eu"}, note="tiering")
    ana.tag("Churn EU", delete=["region"])
    ana.describe("Churn EU", description="Churn for the <b>EU</b> market", note="docs")
    ana.describe("Churn EU", 2, description=None)
    ana.delete("Churn EU", 3, note="bad upload")
    ana.register("old-name", "s3://m/old/1", owner="ana", capture_git=False)
    ana.rename("old-name", "new-name", note="rebrand")
    ana.register("gone", "s3://m/gone/1", owner="ana", capture_git=False)
    ana.delete("gone", note="a mistake")
    report = build_site(ana, root / "site")
    yield ana, report, root / "site"
    ana.close()
    bob.close()


def test_pages_of_unusual_names_live_under_their_encoded_folder(lifecycle_site) -> None:
    _, report, site = lifecycle_site
    assert report.problems == {}
    model = site / "models" / path_segment("Churn EU") / "index.html"
    target = site / "targets" / path_segment("Staging_EU") / "index.html"
    assert path_segment("Churn EU").startswith("~") and model.is_file() and target.is_file()
    assert not (site / "models" / "Churn EU").exists()
    assert f"../models/{path_segment('Churn EU')}/" in hrefs(site / "models" / "index.html")
    assert "Churn EU" in text_of(model)
    api = json.loads((site / "api" / "models" / f"{path_segment('Churn EU')}.json").read_text())
    assert api["model"] == "Churn EU"
    listed = {m["model"]: m["page"] for m in json.loads((site / "api" / "models.json").read_text())["models"]}
    assert listed["Churn EU"] == f"models/{path_segment('Churn EU')}/"
    for folder in (site / "models").iterdir():
        assert folder.name == "index.html" or folder.name == path_segment(folder.name) or folder.name.startswith("~")


def test_a_model_with_no_version_has_a_page(lifecycle_site) -> None:
    _, _, site = lifecycle_site
    text = text_of(site / "models" / "planned" / "index.html")
    assert "no version yet" in text and "No version registered yet" in text
    assert "Nothing registered yet" in text and "create (a model with no version yet)" in text
    assert "team : growth" in text or "team: growth" in text


def test_every_event_kind_reads_sensibly_in_the_history(lifecycle_site) -> None:
    _, _, site = lifecycle_site
    history = [r[2] + " | " + r[-1] for r in rows(site / "models" / path_segment("Churn EU") / "index.html",
                                                  "catalog-events")]
    joined = "\n".join(history)
    assert "undeploy (stopped running v2)" in joined
    assert "tag (the model) | tags set: region: eu, tier: gold" in joined
    assert "tag (the model) | tags removed: region" in joined
    assert "describe (the model) | description: Churn for the <b>EU</b> market" in joined
    assert "describe (this version) | description cleared" in joined
    assert "delete (this version)" in joined
    renamed = text_of(site / "models" / "new-name" / "index.html")
    assert "rename from old-name to new-name" in renamed
    audit = text_of(site / "audit" / "index.html")
    assert "delete (the whole model: v1)" in audit and "a mistake" in audit
    assert not (site / "models" / "gone").exists() and not (site / "models" / "old-name").exists()
    raw = (site / "audit" / "index.html").read_text()
    links = hrefs(site / "audit" / "index.html")
    assert "<b>EU</b>" not in raw and not any("models/gone/" in h for h in links)   # escaped; no page to link
    # a deleted version is not linked to an anchor its page no longer has
    assert f"../models/{path_segment('Churn EU')}/#v2" in links
    assert f"../models/{path_segment('Churn EU')}/#v3" not in links


def test_a_target_that_runs_nothing_now_still_has_its_page_and_history(lifecycle_site) -> None:
    _, _, site = lifecycle_site
    page = site / "targets" / path_segment("Staging_EU") / "index.html"
    text = text_of(page)
    assert "runs nothing now" in text and "Nothing to roll back" in text
    assert [r[2] for r in rows(page, "catalog-events")][:1] == ["undeploy (stopped running v2)"]


# -- the event table's cells: macros, overridable like any template -----------------------------------

# The event table as it was before its cells became macros: an include per cell, per row. A site's own
# _events.md.j2 written that way must keep working, and give the same page as the default.
EVENTS_BY_INCLUDES = """\
{% set with_target = show_target is not defined or show_target %}
{% if events %}
<div class="catalog-scroll" role="region" tabindex="0" aria-label="{{ label }}" data-search-exclude>
<table class="catalog-events sortable">
<thead><tr><th>when</th><th>who</th><th>what</th>{% if show_model %}<th>model</th>{% endif %}<th>version</th>\
{% if with_target %}<th>target</th>{% endif %}<th>note</th><th>evidence</th></tr></thead>
<tbody>
{% for e in events %}
<tr class="event-{{ e.kind }}"><td>{{ e.at | when }}</td><td>{{ e.actor }}</td><td>{% include "_event_what.md.j2" %}</td>\
{% if show_model %}<td>{% with m=e.model, v=none %}{% include "_model_link.md.j2" %}{% endwith %}</td>{% endif %}\
<td>{% if e.version is not none %}{% set vurl = version_url(e.model, e.version) %}{% if vurl %}<a href="{{ vurl }}">\
v{{ e.version }}</a>{% else %}v{{ e.version }}{% endif %}{% endif %}</td>{% if with_target %}<td>{% if e.target %}\
{% with t=e.target %}{% include "_target_link.md.j2" %}{% endwith %}{% endif %}</td>{% endif %}\
<td class="note">{{ e.note or "" }}</td><td class="evidence">{% include "_evidence.md.j2" %}</td></tr>
{% endfor %}
</tbody>
</table>
</div>
{% else %}
<p class="empty">No events.</p>
{% endif %}
"""


@pytest.fixture(scope="module")
def lifecycle_document(lifecycle_site):
    from catalog.site.build import read_records
    from catalog.site.context import make_document

    ana, _, _ = lifecycle_site
    return make_document(read_records(ana))


def events_table(document, templates: Path | None = None, **context) -> str:
    from catalog.site.render import Renderer

    context = {"events": document["events"], "show_model": True, "label": "All events", **context}
    return Renderer(templates).render("_events.md.j2", "audit.md", document, **context)


def test_an_events_table_that_includes_its_cells_row_by_row_gives_the_same_page(lifecycle_document, tmp_path: Path) -> None:
    (tmp_path / "_events.md.j2").write_text(EVENTS_BY_INCLUDES)
    for show_target in (True, False):
        default = events_table(lifecycle_document, show_target=show_target)
        assert events_table(lifecycle_document, tmp_path, show_target=show_target) == default
        assert default.count("<tr class=") == len(lifecycle_document["events"])


def test_an_override_of_an_event_cell_macro_applies_and_can_wrap_the_default(lifecycle_document, tmp_path: Path) -> None:
    (tmp_path / "_event_what.md.j2").write_text(
        '{% from "default:_event_what.md.j2" import event_what as default_what with context %}\n'
        '{% macro event_what(e) %}{{ default_what(e) }} <em class="house">{{ e.actor ~ "*" }}</em>{% endmacro %}\n')
    (tmp_path / "_target_link.md.j2").write_text('{% macro target_link(t) %}<b>{{ t }}</b>{% endmacro %}\n')
    table = events_table(lifecycle_document, tmp_path)
    default = events_table(lifecycle_document)
    rows_ = table.split("<tr class=")[1:]
    assert len(rows_) == len(lifecycle_document["events"]) and all('<em class="house">' in r for r in rows_)
    assert "bob&#42;</em>" in table                                      # still escaped
    assert "<b>Staging&#95;EU</b>" in table and "<b>Staging&#95;EU</b>" not in default
    undeploy = next(r for r in rows_ if "undeploy" in r)
    assert '<span class="kind kind-undeploy">undeploy</span> (stopped running v2) <em class="house">' in undeploy


def test_an_override_written_as_an_include_still_applies_to_every_row(lifecycle_document, tmp_path: Path) -> None:
    (tmp_path / "_event_what.md.j2").write_text('<em class="house">{{ e.kind }} by {{ e.actor }}</em>')
    (tmp_path / "_model_link.md.j2").write_text('[{{ m }}{% if v is not none %} v{{ v }}{% endif %}]')
    table = events_table(lifecycle_document, tmp_path)
    assert table.count('<em class="house">') == len(lifecycle_document["events"])
    assert '<em class="house">undeploy by bob</em>' in table
    assert "&#91;Churn EU&#93;" not in table and "[Churn EU]</td>" in table   # the override's own brackets


def test_the_cells_still_work_as_includes(lifecycle_document) -> None:
    from catalog.site.render import Renderer

    env = Renderer().env
    undeploy = next(e for e in lifecycle_document["events"] if e["kind"] == "undeploy")
    what = env.from_string('{% include "_event_what.md.j2" %}').render(e=undeploy)
    assert what == '<span class="kind kind-undeploy">undeploy</span> (stopped running v2)'
    link = env.from_string('{% with m="Churn EU", v=2 %}{% include "_model_link.md.j2" %}{% endwith %}').render(
        doc=lifecycle_document, root="../")
    assert html.unescape(link) == (f'<a href="../models/{path_segment("Churn EU")}/">Churn EU</a> '
                    f'<a href="../models/{path_segment("Churn EU")}/#v2">v2</a>')


def test_every_printed_value_is_escaped_however_it_is_printed() -> None:
    from catalog.site.render import Renderer

    env = Renderer().env
    source = ('{{ x }}|{{ x ~ "!" }}|{{ x | e }}|{% autoescape false %}{{ x }}{% endautoescape %}|'
              '{% macro m(v) %}{{ v }}{% endmacro %}{{ m(x) }}|{{ n }}|{{ y }}')
    out = env.from_string(source).render(x="<a href='x'>[y](javascript:1)</a>*", n=3, y=None)
    assert "<a" not in out and "[y]" not in out and "*" not in out and "javascript&#58;" in out
    assert out.split("|")[-2:] == ["3", ""]
    long = "<b>" * 1000
    assert env.from_string("{{ x }}{{ x }}").render(x=long) == "&#60;b&#62;" * 2000


def test_the_tag_and_dashboard_partials_are_macros_and_includes_alike() -> None:
    from catalog.site.render import Renderer

    env = Renderer().env
    tags = [{"key": "tier*", "value": "<gold>", "anchor": "tier-gold"}]
    dashboards = [{"name": "grafana", "url": "https://g.example/d?x=1", "link": True},
                  {"name": "x", "url": "javascript:alert(1)", "link": False}]
    for partial, macro, name, value in (("_tags.md.j2", "tag_links", "tags", tags),
                                        ("_dashboards.md.j2", "dashboard_links", "dashboards", dashboards)):
        included = env.from_string(f'{{% include "{partial}" %}}').render({name: value, "root": "../"})
        called = env.from_string(f'{{% from "{partial}" import {macro} with context %}}{{{{ {macro}(v) }}}}').render(
            v=value, root="../")
        assert included == called and included.count("</") >= 2 and "<gold>" not in included


def test_a_cell_file_imported_where_its_include_variables_mean_something_else_renders_nothing_at_import(
        lifecycle_document) -> None:
    from catalog.site.render import Renderer

    env = Renderer().env
    source = ('{% for t in doc.targets %}{% with m=t, v=none, e="x", tags=3, dashboards="y" %}'
              '{% from "_target_link.md.j2" import target_link with context %}'
              '{% from "_model_link.md.j2" import model_link with context %}'
              '{% from "_event_what.md.j2" import event_what with context %}'
              '{% from "_tags.md.j2" import tag_links with context %}'
              '{% from "_dashboards.md.j2" import dashboard_links with context %}'
              '{{ target_link(t.target) }}|{{ model_link("Churn EU", none) }}{% endwith %}{% endfor %}')
    out = html.unescape(env.from_string(source).render(doc=lifecycle_document, root="../"))
    assert out == (f'<a href="../targets/{path_segment("Staging_EU")}/">Staging_EU</a>|'
                   f'<a href="../models/{path_segment("Churn EU")}/">Churn EU</a>')


def test_jinjas_own_code_generator_and_context_render_every_page_the_same(lifecycle_document, monkeypatch) -> None:
    """The shortcuts into Jinja's internals (render._CodeGenerator, render._Context) are taken on
    Jinja 3.1 only; without them every page is the same text (and records the same reads)."""
    from jinja2.compiler import CodeGenerator
    from jinja2.runtime import Context

    from catalog.site import incremental
    from catalog.site.render import Renderer, _Environment, pages

    def render_all() -> list[tuple[str, list[str]]]:
        renderer = Renderer()
        out = []
        for template, path, context in pages(lifecycle_document):
            recording = incremental.Recording(lifecycle_document)
            out.append((renderer.render(template, path, recording, views_sql="", **context), sorted(recording.read)))
        return out

    fast = render_all()
    assert _Environment.code_generator_class is not CodeGenerator and _Environment.context_class is not Context
    monkeypatch.setattr(_Environment, "code_generator_class", CodeGenerator)
    monkeypatch.setattr(_Environment, "context_class", Context)
    assert render_all() == fast and len(fast) > 10
