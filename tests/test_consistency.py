"""One answer everywhere: a model's description agrees between the API, the CLI and the site."""

from __future__ import annotations

import json

from catalog import Registry
from catalog.site import build_site, make_document, read_records

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
