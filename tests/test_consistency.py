"""One answer everywhere: a model's description, and the sample lake's counts, agree
between the API, the CLI, the demo, the site and the README."""

from __future__ import annotations

import json
import re
import shutil

from typer.testing import CliRunner

from catalog import Registry
from catalog.cli import app
from catalog.site import build_site, make_document, read_records

from .conftest import REPO
from .test_site import read_page

# -- a model's owner, description and tags: those of its latest version that has one --


def _described_then_bare(registry) -> Registry:
    """churn v1 with an owner, a description and tags; v2 registered without any of them."""
    ana = registry("ana")
    ana.register("churn", "s3://models/churn/1.pkl", owner="ana", description="first",
                 tags={"team": "retention"}, capture_git=False)
    ana.register("churn", "s3://models/churn/2.pkl", capture_git=False)
    return ana


def test_show_and_list_keep_the_description_of_the_latest_version_that_has_one(registry, cli):
    reg = _described_then_bare(registry)
    info = reg.show("churn")
    assert (info.owner, info.description, info.tags) == ("ana", "first", {"team": "retention"})
    [summary] = reg.list()
    assert (summary.owner, summary.description, summary.tags) == ("ana", "first", {"team": "retention"})
    # each version keeps its own
    assert [v.description for v in info.versions] == ["first", None]

    shown = json.loads(cli("show", "churn", "--json").stdout)
    assert (shown["owner"], shown["description"], shown["tags"]) == ("ana", "first", {"team": "retention"})
    [listed] = json.loads(cli("list", "--json").stdout)
    assert (listed["owner"], listed["description"], listed["tags"]) == ("ana", "first", {"team": "retention"})
    assert "first" in cli("show", "churn").stdout


def test_the_site_keeps_the_description_of_the_latest_version_that_has_one(registry, tmp_path):
    reg = _described_then_bare(registry)
    [model] = make_document(read_records(reg))["models"]
    assert (model["owner"], model["description"], model["tags"]) == ("ana", "first", [["team", "retention"]])

    build_site(reg, tmp_path / "site")
    page = read_page(tmp_path / "site", "models/churn/index.html").text
    assert "first" in page and "No description" not in page
    catalog = json.loads((tmp_path / "site" / "api" / "models.json").read_text())
    assert catalog["models"][0]["description"] == "first"


def test_tags_are_the_whole_set_of_the_latest_version_that_has_any(registry):
    ana = registry("ana")
    ana.register("m", "s3://m/1", tags={"team": "a", "tier": "gold"}, description="one", capture_git=False)
    ana.register("m", "s3://m/2", tags={"team": "b"}, capture_git=False)
    ana.register("m", "s3://m/3", description="three", capture_git=False)
    info = ana.show("m")
    assert info.tags == {"team": "b"}          # v2's set, not merged with v1's
    assert info.description == "three"         # the newest description wins once there is one
    assert ana.list()[0].tags == {"team": "b"}
    # as of before v3, v1's description is the answer
    assert ana.show("m", as_of=ana.show("m", 2).created_at).description == "one"


# -- the sample lake's counts: README, Registry.counts(), demo and site agree ------------

SAMPLE = REPO / "data" / "lake"
README = (REPO / "README.md").read_text()


def test_readme_demo_and_site_count_the_sample_lake_the_same_way(tmp_path):
    copy = tmp_path / "lake"
    shutil.copytree(SAMPLE, copy)
    reg = Registry(copy, actor="reader")
    counts = reg.counts()
    assert counts.decisions == reg.sql("select count(*) as n from events").rows[0]["n"]
    assert counts.decisions == reg.sql("select count(*) as n from audit_log where kind <> 'register'").rows[0]["n"]

    said = re.search(r"`data/lake` holds (\d+) models from \d+ owners \((\d+) versions, (\d+) decisions\)", README)
    assert said, "the README's Sample lake section no longer states the counts"
    assert tuple(map(int, said.groups())) == (counts.models, counts.versions, counts.decisions)

    site = tmp_path / "site"
    out = CliRunner().invoke(app, ["--lake", str(copy), "demo", "--out", str(site)])
    assert out.exit_code == 0, out.stderr
    assert f"{counts.models} models, {counts.versions} versions, {counts.decisions} decisions" in out.stdout

    home = read_page(site, "index.html").text
    assert f"{counts.models} models · {counts.versions} versions" in home
    assert f"{counts.decisions} decisions" in home
    audit = read_page(site, "audit/index.html").text
    assert f"{counts.versions} registrations, {counts.decisions} decisions" in audit


def test_counts_follow_as_of(registry):
    ana, bob = registry("ana"), registry("bob")
    ana.register("churn", "s3://m/1", capture_git=False)
    first = bob.approve("churn", 1)
    ana.register("churn", "s3://m/2", capture_git=False)
    bob.approve("churn", 2)
    assert ana.counts().to_dict() == {"models": 1, "versions": 2, "decisions": 2}
    assert ana.counts(as_of=first.at).to_dict() == {"models": 1, "versions": 1, "decisions": 1}


def test_a_registration_is_not_a_decision(registry):
    reg = registry("ana")
    reg.register("churn", "s3://m/1", capture_git=False)
    assert reg.counts().decisions == 0
