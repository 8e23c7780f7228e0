"""Rollback walks back through what ran on a target and never returns to a version
that a rollback moved the target away from, unless a new deploy brought it back.

The rule: version V is excluded on target T when a rollback on T moved T away from
V (V ran on T just before the rollback, by ("at", event_id)) and no deploy of V on T
came after that rollback.
"""

from __future__ import annotations

import html
import json
import shutil

import pytest

from catalog import Registry
from catalog.errors import NoRollbackCandidate
from catalog.site.build import read_records
from catalog.site.context import make_document
from catalog.site.render import Renderer, render_pages

from .conftest import REPO, snapshot


@pytest.fixture
def prod(registry):
    """m v1, v2, v3 approved and deployed in turn on prod (prod runs v3)."""
    ana, bob = registry("ana"), registry("bob")
    for n in (1, 2, 3):
        ana.register("m", f"s3://m/{n}", owner="ana", capture_git=False)
        bob.approve("m", n)
        bob.deploy("m", n, target="prod")
    return bob


def everywhere(reg: Registry, cli, model: str, target: str) -> dict[str, object]:
    """The candidates and the excluded versions with their reasons, as the API, the views,
    the CLI's JSON and the site's document each give them."""
    options = reg.rollback_options(model, target=target)
    api = ([c.version for c in options.candidates], [(e.version, e.detail) for e in options.excluded])
    ranked = reg.sql(f"SELECT version FROM rollback_candidates WHERE model = '{model}' AND target = '{target}' ORDER BY rank").rows
    excluded = reg.sql(
        f"SELECT version, detail FROM rollback_excluded WHERE model = '{model}' AND target = '{target}' "
        "ORDER BY last_deployed_at DESC, version DESC"
    ).rows
    views = ([r["version"] for r in ranked], [(r["version"], r["detail"]) for r in excluded])
    out = cli("candidates", model, "--target", target, "--json", "--excluded")
    assert out.exit_code == 0, out.stderr
    rows = json.loads(out.stdout)
    as_json = ([r["version"] for r in rows if r["candidate"]], [(r["version"], r["detail"]) for r in rows if not r["candidate"]])
    page = next(m for m in make_document(read_records(reg))["models"] if m["name"] == model)
    site = ([c["version"] for c in page["candidates"].get(target, [])],
            [(e["version"], e["detail"]) for e in page["rollback_excluded"].get(target, [])])
    assert api == views == as_json == site, (api, views, as_json, site)
    assert [c.version for c in reg.candidates(model, target=target)] == api[0]
    return {"candidates": api[0], "excluded": api[1]}


def test_rolling_back_twice_walks_further_back_never_to_the_version_left(prod, lake):
    first = prod.rollback("m", target="prod", note="p95 regression")
    assert (first.version, first.evidence["from_version"]) == (2, 3)
    assert [c.version for c in prod.candidates("m", target="prod")] == [1]
    second = prod.rollback("m", target="prod", note="still slow")
    assert (second.version, second.evidence["from_version"]) == (1, 2)
    assert prod.resolve("m@prod") == "s3://m/1"
    assert prod.candidates("m", target="prod") == []
    # a third rollback has nothing left, says why, and writes nothing
    before = snapshot(lake)
    with pytest.raises(NoRollbackCandidate) as caught:
        prod.rollback("m", target="prod", note="again")
    message = str(caught.value)
    assert "v2 rolled back from on" in message and "by bob: still slow" in message
    assert "v3 rolled back from on" in message and "by bob: p95 regression" in message
    assert "catalog deploy m 2 --target prod" in message
    assert snapshot(lake) == before


def test_rollback_to_a_version_rolled_back_from_is_refused_with_the_reason(prod, lake):
    prod.rollback("m", target="prod", note="p95 regression")
    before = snapshot(lake)
    with pytest.raises(NoRollbackCandidate) as caught:
        prod.rollback("m", target="prod", note="put it back", to=3)
    assert (caught.value.version, caught.value.reason) == (3, "rolled back")
    assert "rolled back from on" in str(caught.value) and "p95 regression" in str(caught.value)
    assert "catalog deploy m 3 --target prod" in str(caught.value)
    assert snapshot(lake) == before
    assert prod.resolve("m@prod") == "s3://m/2"


def test_only_a_new_deploy_brings_a_rolled_back_version_back(prod, registry):
    prod.rollback("m", target="prod", note="p95 regression")
    prod.rollback("m", target="prod", note="still slow")
    redeployed = prod.deploy("m", 3, target="prod", note="fixed the cache")
    assert "gates" in redeployed.evidence  # the deploy ran its gates
    # v3 runs again; v1 is a candidate again (a deploy, not a rollback, moved away from it);
    # v2 is still excluded: nothing deployed it since it was rolled back from
    assert [c.version for c in prod.candidates("m", target="prod")] == [1]
    registry("ana").register("m", "s3://m/4", capture_git=False)
    prod.approve("m", 4)
    prod.deploy("m", 4, target="prod")
    assert [c.version for c in prod.candidates("m", target="prod")] == [3, 1]
    assert prod.rollback("m", target="prod", note="v4 misroutes").version == 3


def test_every_reader_gives_the_same_order_and_reasons(prod, cli):
    prod.rollback("m", target="prod", note="p95 regression")
    prod.deprecate("m", 1, note="old features")
    seen = everywhere(prod, cli, "m", "prod")
    assert seen["candidates"] == []
    reasons = dict(seen["excluded"])
    assert list(reasons) == [2, 3, 1]  # most recently run first
    assert reasons[2] == "running now"
    assert reasons[3].startswith("rolled back from on ") and reasons[3].endswith(" by bob: p95 regression")
    assert reasons[1].startswith("deprecated on ") and reasons[1].endswith(" by bob")
    table = cli("candidates", "m", "--target", "prod").stdout
    assert "no rollback candidates" in table and "v3  rolled back from on" in table
    prod.deploy("m", 3, target="prod")
    seen = everywhere(prod, cli, "m", "prod")
    assert seen["candidates"] == [2] and dict(seen["excluded"])[3] == "running now"
    # plain --json stays the list of candidates
    assert [r["version"] for r in json.loads(cli("candidates", "m", "--target", "prod", "--json").stdout)] == [2]


def test_the_cli_refuses_an_excluded_version_with_the_reason(prod, cli):
    prod.rollback("m", target="prod", note="p95 regression")
    result = cli("rollback", "m", "--target", "prod", "--note", "back", "--to", "3", actor="carol")
    assert result.exit_code == 1
    assert "cannot roll 'prod' back to m v3: rolled back from on" in result.stderr
    assert "p95 regression" in result.stderr and "catalog deploy m 3 --target prod" in result.stderr


def test_the_sample_lake_no_longer_offers_the_churn_version_prod_eu_left(tmp_path, cli):
    copy = tmp_path / "lake"
    shutil.copytree(REPO / "data" / "lake", copy)
    reg = Registry(copy, actor="reader")
    running = reg.resolve("churn@prod-eu")
    assert running.endswith("/v6/model.tar.gz")
    cli.lake = copy
    seen = everywhere(reg, cli, "churn", "prod-eu")
    assert 7 not in seen["candidates"] and seen["candidates"][0] == 4
    assert dict(seen["excluded"])[7].startswith("rolled back from on 2026-11-02 08:00:00Z by carol: p95 latency")
    with pytest.raises(NoRollbackCandidate, match="deploy churn 7 --target prod-eu"):
        reg.rollback("churn", target="prod-eu", note="try v7 again", to=7)
    # the model page shows v7 among the versions prod-eu cannot go back to, with the note
    pages, problems = render_pages(Renderer(), make_document(read_records(reg)), only=["models/churn/index.md"])
    page = html.unescape(pages["models/churn/index.md"])
    assert not problems
    excluded = page[page.index('<table class="catalog-rollback-excluded">'):]
    row = next(line for line in excluded.splitlines() if ">prod-eu</a></td>" in line and "#v7" in line)
    assert "rolled back from on 2026-11-02 08:00:00Z by carol: p95 latency regression" in row
    candidates = page[page.index('<table class="catalog-candidates">'):page.index('<table class="catalog-rollback-excluded">')]
    assert not any("<td>prod-eu</td>" in line and "#v7" in line for line in candidates.splitlines())
