"""The lifecycle events beyond approval (create, undeploy, tag, describe, delete, rename),
imports with their original numbers, times and authors, and decisions made elsewhere."""

from __future__ import annotations

import json
import shutil
import threading
from datetime import datetime, timedelta, timezone

import pytest

from catalog import Registry
from catalog.errors import (
    CatalogError,
    IllegalTransition,
    ImportOutOfOrder,
    InvalidInput,
    ModelDeleted,
    ModelNotFound,
    ModelRenamed,
    NameTaken,
    TargetNotDeployed,
    VersionDeleted,
    VersionDeployed,
    VersionNotFound,
    VersionTaken,
)

from .conftest import REPO, snapshot

ORIGIN = {"system": "mlflow", "source": "sqlite:///mlflow.db"}


def recorded(reg: Registry) -> tuple:
    """What the lake holds, read through the API (works on a bucket too)."""
    rows = reg.sql("select event_id from events union all select model || ':' || version from _versions_named").rows
    return tuple(sorted(r["event_id"] for r in rows))


def deployed(reg: Registry) -> dict:
    """prod runs churn v2; v1 is approved and ran there before; v3 is a candidate."""
    for n in (1, 2, 3):
        reg.register("churn", f"s3://m/churn/{n}.pkl", owner="ana", tags={"team": "retention"},
                     description=f"v{n}", capture_git=False)
    reg.approve("churn", 1)
    reg.approve("churn", 2)
    reg.deploy("churn", 1, target="prod")
    return {"deploy": reg.deploy("churn", 2, target="prod")}


# -- undeploy ----------------------------------------------------------------------


def test_undeploy_leaves_the_target_running_nothing_until_a_new_deploy(registry):
    reg = registry("ana")
    deployed(reg)
    event = reg.undeploy("churn", target="prod", note="region retired")
    assert (event.kind, event.version, event.target, event.evidence["from_version"]) == ("undeploy", 2, "prod", 2)
    assert reg.deployments() == []
    assert reg.show("churn", 2).deployed_to == []
    with pytest.raises(TargetNotDeployed):
        reg.resolve("churn@prod")
    with pytest.raises(TargetNotDeployed, match="nothing to roll back"):
        reg.rollback("churn", target="prod", note="go back")
    reg.deploy("churn", 1, target="prod")
    assert reg.resolve("churn@prod") == "s3://m/churn/1.pkl"
    assert [e.kind for e in reg.history("churn", target="prod")] == ["deploy", "deploy", "undeploy", "deploy"]


def test_undeploy_refusals_write_nothing(registry):
    reg = registry("ana")
    deployed(reg)
    before = recorded(reg)
    with pytest.raises(InvalidInput):
        reg.undeploy("churn", target="prod", note="  ")
    with pytest.raises(TargetNotDeployed):
        reg.undeploy("churn", target="staging", note="never ran there")
    with pytest.raises(ModelNotFound):
        reg.undeploy("nope", target="prod", note="x")
    assert recorded(reg) == before


def test_as_of_before_an_undeploy_shows_what_ran(registry):
    reg = registry("ana")
    deployed(reg)
    moment = reg.history("churn")[-1].at
    reg.undeploy("churn", target="prod", note="retired")
    assert [d.version for d in reg.deployments(as_of=moment)] == [2]
    assert reg.resolve("churn@prod", as_of=moment) == "s3://m/churn/2.pkl"


def test_two_deciders_undeploying_at_once_record_one_undeploy(lake):
    Registry(lake, actor="setup", durable=False).close()
    reg = Registry(lake, actor="ana", durable=False)
    deployed(reg)
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def undeploy(who: str) -> None:
        mine = Registry(lake, actor=who, durable=False)
        mine.show("churn")  # the reader is open before the race starts
        barrier.wait()
        try:
            outcomes.append(mine.undeploy("churn", target="prod", note=f"by {who}").kind)
        except CatalogError as exc:
            outcomes.append(type(exc))
        finally:
            mine.close()

    threads = [threading.Thread(target=undeploy, args=(w,)) for w in ("bob", "carol")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(map(str, outcomes)) == sorted(["undeploy", str(TargetNotDeployed)])
    assert [e.kind for e in reg.history("churn", target="prod")].count("undeploy") == 1


def test_a_deploy_and_an_undeploy_at_once_leave_a_state_their_order_explains(lake):
    reg = Registry(lake, actor="ana", durable=False)
    deployed(reg)
    barrier = threading.Barrier(2)

    def act(who: str, what: str) -> None:
        mine = Registry(lake, actor=who, durable=False)
        mine.show("churn")
        barrier.wait()
        try:
            if what == "deploy":
                mine.deploy("churn", 1, target="prod")
            else:
                mine.undeploy("churn", target="prod", note="stop")
        except CatalogError:
            pass
        finally:
            mine.close()

    threads = [threading.Thread(target=act, args=a) for a in (("bob", "deploy"), ("carol", "undeploy"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    moves = [e for e in reg.history("churn", target="prod") if e.kind in ("deploy", "undeploy")][2:]
    assert moves, "at least one of the two decisions was recorded"
    running = {d.target: d.version for d in reg.deployments()}
    if moves[-1].kind == "undeploy":
        assert running == {}
        assert moves[-1].version == (1 if len(moves) == 2 else 2)  # it stopped what ran just before it
    else:
        assert running == {"prod": 1}


# -- tag and describe --------------------------------------------------------------------


def test_tags_of_a_version_change_as_events_with_history(registry):
    reg = registry("ana")
    reg.register("churn", "s3://m/1", tags={"team": "retention", "stage": "dev", "keep": "1"}, capture_git=False)
    first = reg.tag("churn", 1, set={"stage": "prod", "region": "eu"}, delete=["team"], note="promoted")
    assert (first.kind, first.version, first.tags, first.tags_deleted) == ("tag", 1, {"stage": "prod", "region": "eu"}, ["team"])
    assert reg.show("churn", 1).tags == {"stage": "prod", "region": "eu", "keep": "1"}
    reg.tag("churn", 1, set={"team": "growth"}, delete=["region"])
    assert reg.show("churn", 1).tags == {"stage": "prod", "keep": "1", "team": "growth"}
    assert reg.show("churn", 1, as_of=first.at).tags == {"stage": "prod", "region": "eu", "keep": "1"}
    rows = reg.sql("select tags['team'] as team from model_versions where model = 'churn'").rows
    assert rows == [{"team": "growth"}]
    assert [e.kind for e in reg.history("churn")] == ["register", "tag", "tag"]


def test_tags_of_a_model_are_its_own_once_set(registry):
    reg = registry("ana")
    reg.register("churn", "s3://m/1", tags={"team": "retention"}, capture_git=False)
    assert reg.show("churn").tags == {"team": "retention"}  # from its latest tagged version until then
    reg.tag("churn", set={"domain": "growth", "tier": "1"})
    reg.tag("churn", delete=["tier"])
    assert reg.show("churn").tags == {"domain": "growth"}
    assert reg.show("churn", 1).tags == {"team": "retention"}
    assert reg.list()[0].tags == {"domain": "growth"}


def test_describe_sets_and_clears_descriptions(registry):
    reg = registry("ana")
    reg.register("churn", "s3://m/1", description="first draft", capture_git=False)
    reg.describe("churn", 1, description="weekly churn score")
    assert reg.show("churn", 1).description == "weekly churn score"
    assert reg.show("churn").description == "weekly churn score"  # the model's falls back to its versions'
    reg.describe("churn", description="the churn model")
    assert reg.show("churn").description == "the churn model"
    cleared = reg.describe("churn", 1, description=None)
    assert cleared.description is None
    assert reg.show("churn", 1).description is None
    # (just before the clear: a whole second earlier may be before the registration itself)
    assert reg.show("churn", 1, as_of=cleared.at - timedelta(microseconds=1)).description == "weekly churn score"


def test_tag_and_describe_refusals_write_nothing(registry):
    reg = registry("ana")
    reg.register("churn", "s3://m/1", capture_git=False)
    before = recorded(reg)
    for bad in (
        lambda: reg.tag("churn", 1),
        lambda: reg.tag("churn", 1, set={"a": "1"}, delete=["a"]),
        lambda: reg.tag("churn", 1, set={"bad key": "1"}),
        lambda: reg.tag("churn", 1, set={"k": "https://user:pw@host/x"}),
        lambda: reg.describe("churn", 1, description="\x1b[31mred"),
    ):
        with pytest.raises(InvalidInput):
            bad()
    with pytest.raises(VersionNotFound):
        reg.tag("churn", 9, set={"a": "1"})
    with pytest.raises(ModelNotFound):
        reg.describe("nope", description="x")
    assert recorded(reg) == before


# -- create ------------------------------------------------------------------------------


def test_a_created_model_has_no_version_yet_and_its_numbers_start_at_one(registry):
    reg = registry("ana")
    event = reg.create_model("fraud", description="card fraud", tags={"team": "risk"}, note="new project")
    assert (event.kind, event.version, event.description, event.tags) == ("create", None, "card fraud", {"team": "risk"})
    summary = reg.list()[0]
    assert (summary.model, summary.versions, summary.latest_version, summary.description, summary.tags) == (
        "fraud", 0, None, "card fraud", {"team": "risk"})
    info = reg.show("fraud")
    assert info.versions == [] and info.description == "card fraud"
    assert reg.counts().models == 1
    with pytest.raises(NameTaken, match="exists"):
        reg.create_model("fraud")
    assert reg.register("fraud", "s3://m/fraud/1", capture_git=False).version == 1
    assert reg.show("fraud").description == "card fraud"


# -- delete ------------------------------------------------------------------------------


def test_a_deleted_version_is_hidden_from_every_view_but_the_history(registry):
    reg = registry("ana")
    deployed(reg)
    event = reg.delete("churn", 1, note="trained on the wrong data")
    assert event.kind == "delete"
    assert [v.version for v in reg.show("churn").versions] == [2, 3]
    with pytest.raises(VersionDeleted):
        reg.show("churn", 1)
    with pytest.raises(VersionNotFound):
        reg.resolve("churn:1")
    for view in ("versions", "model_versions", "lineage"):
        assert not reg.sql(f"select * from {view} where {'child_' if view == 'lineage' else ''}version = 1").rows
    assert [c.version for c in reg.candidates("churn", target="prod")] == []  # v1 was the candidate
    assert any(e.kind == "delete" and e.version == 1 for e in reg.history("churn"))
    assert reg.sql("select count(*) as n from audit_log where version = 1").rows[0]["n"] >= 3
    assert reg.sql("select count(*) as n from events where version = 1").rows[0]["n"] >= 2
    assert reg.register("churn", "s3://m/churn/4.pkl", capture_git=False).version == 4  # never given twice


def test_a_version_a_target_runs_cannot_be_deleted(registry):
    reg = registry("ana")
    deployed(reg)
    before = recorded(reg)
    with pytest.raises(VersionDeployed, match="catalog undeploy churn --target prod") as refused:
        reg.delete("churn", 2)
    assert (refused.value.target, refused.value.version) == ("prod", 2)
    with pytest.raises(VersionDeployed):
        reg.delete("churn")
    assert recorded(reg) == before


def test_latest_approved_skips_a_deleted_version(registry):
    reg = registry("ana")
    deployed(reg)
    reg.approve("churn", 3)
    assert reg.resolve("churn@latest") == "s3://m/churn/3.pkl"
    reg.delete("churn", 3)
    assert reg.resolve("churn@latest") == "s3://m/churn/2.pkl"


def test_a_deleted_model_leaves_every_read_and_comes_back_when_registered_again(registry):
    reg = registry("ana")
    reg.register("churn", "s3://m/1", capture_git=False)
    reg.register("churn", "s3://m/2", capture_git=False)
    reg.tag("churn", set={"team": "x"})
    gone = reg.delete("churn", note="project closed")
    assert gone.evidence["through"] == 2
    assert reg.list() == [] and reg.counts().models == 0
    with pytest.raises(ModelDeleted, match="deleted on"):
        reg.show("churn")
    with pytest.raises(ModelNotFound):
        reg.resolve("churn:2")
    assert [e.kind for e in reg.history()][-1] == "delete"
    back = reg.register("churn", "s3://m/3", capture_git=False)
    assert back.version == 3  # churn:1 and churn:2 never mean anything else
    assert [v.version for v in reg.show("churn").versions] == [3]
    assert reg.show("churn").tags == {}  # what was set on the model before it was deleted went with it


# -- rename ------------------------------------------------------------------------------


def test_a_renamed_model_shows_under_its_new_name_everywhere(registry):
    reg = registry("ana")
    deployed(reg)
    event = reg.rename("churn", "churn-eu", note="EU only")
    assert (event.kind, event.model, event.renamed_from) == ("rename", "churn-eu", "churn")
    assert reg.resolve("churn-eu@prod") == "s3://m/churn/2.pkl"
    assert reg.resolve("churn-eu:1") == "s3://m/churn/1.pkl"
    assert [m.model for m in reg.list()] == ["churn-eu"]
    assert [v.version for v in reg.show("churn-eu").versions] == [1, 2, 3]
    assert [e.kind for e in reg.history("churn-eu")][-1] == "rename"
    assert [e.kind for e in reg.history("churn-eu")][:2] == ["register", "register"]
    assert {r["model"] for r in reg.sql("select model from events union select model from model_versions").rows} == {"churn-eu"}
    reg.rollback("churn-eu", target="prod", note="back to v1")
    assert reg.resolve("churn-eu@prod") == "s3://m/churn/1.pkl"
    assert reg.register("churn-eu", "s3://m/churn/4.pkl", capture_git=False).version == 4  # numbering continues


def test_the_old_name_stays_reserved_to_the_renamed_model(registry):
    reg = registry("ana")
    reg.register("churn", "s3://m/1", capture_git=False)
    reg.rename("churn", "churn-eu")
    before = recorded(reg)
    with pytest.raises(ModelRenamed, match="renamed to 'churn-eu'"):
        reg.register("churn", "s3://other/1", capture_git=False)
    with pytest.raises(ModelRenamed):
        reg.register_many([{"model": "churn", "artifact_uri": "s3://other/1"}])
    with pytest.raises(NameTaken, match="reserved"):
        reg.create_model("churn")
    with pytest.raises(ModelRenamed):
        reg.show("churn")
    reg.register("fraud", "s3://f/1", capture_git=False)
    with pytest.raises(NameTaken, match="exists"):
        reg.rename("fraud", "churn-eu")
    with pytest.raises(NameTaken, match="reserved"):
        reg.rename("fraud", "churn")
    assert recorded(reg) == tuple(sorted([*before, "fraud:1"]))


def test_as_of_before_a_rename_shows_the_old_name(registry):
    reg = registry("ana")
    reg.register("churn", "s3://m/1", capture_git=False)
    moment = reg.history("churn")[-1].at
    reg.rename("churn", "churn-eu")
    reg.rename("churn-eu", "churn-global")
    assert [m.model for m in reg.list(as_of=moment)] == ["churn"]
    assert reg.resolve("churn:1", as_of=moment) == "s3://m/1"
    assert [m.model for m in reg.list()] == ["churn-global"]
    assert reg.resolve("churn-global:1") == "s3://m/1"


# -- redaction reaches what tag and describe set later --------------------------------------


@pytest.mark.local_only
def test_redaction_removes_descriptions_and_tags_set_by_later_events(registry, lake):
    reg = registry("ana")
    reg.register("churn", "s3://m/1", capture_git=False)
    reg.describe("churn", 1, description="contains SECRET-DESCRIPTION")
    reg.tag("churn", 1, set={"owner-email": "SECRET-TAG@example.com"})
    reg.tag("churn", set={"k": "SECRET-MODEL-TAG"})
    reg.rename("churn", "churn-eu")
    reg.redact("churn-eu", fields=["description", "tags"], reason="GDPR request")
    for path in lake.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"SECRET-" not in data, path
    v = reg.show("churn-eu", 1)
    assert v.description is None and v.tags == {}
    assert reg.show("churn-eu").tags == {}


# -- imports: explicit numbers, original times and authors, origins ------------------------------


def test_register_many_keeps_explicit_numbers_and_gaps(registry):
    reg = registry("importer")
    records = [
        {"model": "churn", "artifact_uri": f"s3://m/{n}", "version": n, "created_at": f"2024-0{n}-01T10:00:00Z",
         "created_by": "alice", "origin": {**ORIGIN, "id": f"churn/{n}", "run_id": f"r{n}"}}
        for n in (1, 2, 5)
    ]
    done = reg.register_many(records)
    assert [v.version for v in done] == [1, 2, 5]
    first = reg.show("churn", 1)
    assert (first.created_by, first.created_at) == ("alice", datetime(2024, 1, 1, 10, tzinfo=timezone.utc))
    assert (first.imported_by, first.origin["run_id"]) == ("importer", "r1")
    assert first.imported_at is not None and first.imported_at > first.created_at
    assert reg.register("churn", "s3://m/6", capture_git=False).version == 6
    assert reg.show("churn", 6).imported_by is None
    assert reg.origins("mlflow", "sqlite:///mlflow.db") == {"churn/1", "churn/2", "churn/5"}
    assert reg.origins("mlflow", "elsewhere") == set()
    assert [v.version for v in reg.show("churn", as_of="2024-03-01").versions] == [1, 2]


def test_plain_records_after_an_explicit_number_follow_it(registry):
    reg = registry("ana")
    done = reg.register_many([
        {"model": "a", "artifact_uri": "s3://a/1"},
        {"model": "a", "artifact_uri": "s3://a/7", "version": 7},
        {"model": "a", "artifact_uri": "s3://a/8"},
        {"model": "b", "artifact_uri": "s3://b/3", "version": 3},
    ])
    assert [(v.model, v.version) for v in done] == [("a", 1), ("a", 7), ("a", 8), ("b", 3)]
    assert reg.register("b", "s3://b/4", capture_git=False).version == 4


def test_a_claimed_number_is_refused_before_anything_is_written(registry):
    reg = registry("ana")
    reg.register("churn", "s3://m/1", capture_git=False)
    reg.register("churn", "s3://m/2", capture_git=False)
    before = recorded(reg)
    with pytest.raises(VersionTaken) as refused:
        reg.register_many([
            {"model": "fresh", "artifact_uri": "s3://f/1"},
            {"model": "churn", "artifact_uri": "s3://m/2b", "version": 2},
        ])
    assert (refused.value.model, refused.value.version, refused.value.end) == ("churn", 2, 2)
    with pytest.raises(VersionTaken):
        reg.register("churn", "s3://m/1b", version=1, capture_git=False)
    with pytest.raises(InvalidInput, match="record 1"):
        reg.register_many([{"model": "x", "artifact_uri": "s3://x/5", "version": 5},
                           {"model": "x", "artifact_uri": "s3://x/3", "version": 3}])
    with pytest.raises(InvalidInput, match="origin lacks id"):
        reg.register("x", "s3://x/1", origin={"system": "mlflow", "source": "s"}, capture_git=False)
    assert recorded(reg) == before


def test_register_takes_an_explicit_number_time_and_author(registry):
    reg = registry("importer")
    v = reg.register("churn", "s3://m/3", version=3, created_at="2023-05-01T00:00:00Z", created_by="bob",
                     origin={**ORIGIN, "id": "churn/3"}, capture_git=False)
    assert (v.version, v.created_by, v.imported_by, v.origin["id"]) == (3, "bob", "importer", "churn/3")
    assert reg.register("churn", "s3://m/4", capture_git=False).version == 4


def test_imported_decisions_keep_their_time_and_author_and_say_who_imported_them(registry):
    reg = registry("importer")
    reg.register("churn", "s3://m/1", version=1, created_at="2024-01-01T00:00:00Z", created_by="alice",
                 origin={**ORIGIN, "id": "churn/1"}, capture_git=False)
    approve = reg.import_event("churn", 1, "approve", at="2024-01-02T00:00:00Z", actor="bob",
                               origin={**ORIGIN, "id": "churn/1/stage/Production"})
    assert (approve.actor, approve.state, approve.imported_by) == ("bob", "approved", "importer")
    assert approve.evidence == {"imported": True, "gates_run": False, "decided_in": "mlflow"}
    reg.import_event("churn", 1, "deploy", at="2024-01-03T00:00:00Z", actor="carol", target="prod",
                     origin={**ORIGIN, "id": "churn@prod"})
    reg.import_event("churn", 1, "tag", at="2024-01-04T00:00:00Z", actor="carol", tags={"stage": "live"},
                     origin={**ORIGIN, "id": "churn/1/tag/stage"})
    assert reg.resolve("churn@prod") == "s3://m/1"
    assert reg.resolve("churn@prod", as_of="2024-01-03T12:00:00Z") == "s3://m/1"
    with pytest.raises(TargetNotDeployed):
        reg.resolve("churn@prod", as_of="2024-01-02T12:00:00Z")
    audit = reg.history("churn")
    assert [(e.kind, e.actor, e.imported_by) for e in audit] == [
        ("register", "alice", "importer"), ("approve", "bob", "importer"), ("deploy", "carol", "importer"),
        ("tag", "carol", "importer")]
    rows = reg.sql("select actor, imported_by, origin['id'] as id from audit_log where kind = 'deploy'").rows
    assert rows == [{"actor": "carol", "imported_by": "importer", "id": "churn@prod"}]
    assert "churn@prod" in reg.origins("mlflow", "sqlite:///mlflow.db")


def test_imported_decisions_keep_the_lifecycle_rules_and_their_order(registry):
    reg = registry("importer")
    reg.register("churn", "s3://m/1", capture_git=False)
    reg.register("churn", "s3://m/2", capture_git=False)
    reg.approve("churn", 1)
    before = recorded(reg)
    with pytest.raises(IllegalTransition, match="candidate"):
        reg.import_event("churn", 2, "deploy", at="2099-01-01T00:00:00Z", actor="bob", target="prod",
                         origin={**ORIGIN, "id": "d"})
    with pytest.raises(ImportOutOfOrder):
        reg.import_event("churn", 2, "approve", at="2020-01-01T00:00:00Z", actor="bob", origin={**ORIGIN, "id": "a"})
    with pytest.raises(InvalidInput):
        reg.import_event("churn", 2, "rollback", at="2099-01-01T00:00:00Z", actor="bob", origin={**ORIGIN, "id": "r"})
    with pytest.raises(InvalidInput):
        reg.import_event("churn", 2, "approve", at="2099-01-01T00:00:00Z", actor="bob", origin={"system": "x"})
    assert recorded(reg) == before


# -- older lakes, files --------------------------------------------------------------------------


@pytest.mark.local_only
def test_an_older_lake_takes_the_new_events(tmp_path):
    lake = tmp_path / "lake"
    shutil.copytree(REPO / "tests" / "fixtures" / "lake-v1", lake)
    reg = Registry(lake, actor="carol")
    reg.tag("churn", 2, set={"stage": "eu"})
    reg.describe("churn", description="the churn model")
    reg.rename("churn", "churn-eu")
    assert reg.show("churn-eu", 2).tags["stage"] == "eu"
    assert reg.resolve("churn-eu@prod") == "s3://m/churn/1.pkl"
    reg.compact()
    assert reg.show("churn-eu").description == "the churn model"
    assert reg.register("churn-eu", "s3://m/churn/3.pkl", capture_git=False).version == 3


@pytest.mark.local_only
def test_refused_events_leave_every_file_as_it_was(registry, lake):
    reg = registry("ana")
    deployed(reg)
    before = snapshot(lake)
    for refused in (
        lambda: reg.delete("churn", 2),
        lambda: reg.undeploy("churn", target="nowhere", note="x"),
        lambda: reg.rename("churn", "churn"),
        lambda: reg.create_model("churn"),
        lambda: reg.tag("churn", 7, set={"a": "b"}),
    ):
        with pytest.raises(CatalogError):
            refused()
    assert snapshot(lake) == before


# -- CLI ------------------------------------------------------------------------------------------


def test_cli_commands_of_the_new_events(cli):
    assert cli("register", "churn", "s3://m/1", "--no-git").exit_code == 0
    assert cli("approve", "churn", "1").exit_code == 0
    assert cli("deploy", "churn", "1", "--target", "prod").exit_code == 0
    result = cli("tag", "churn", "1", "team=retention", "stage=prod", "--delete", "old")
    assert result.exit_code == 0 and "tags changed" in result.output
    assert cli("tag", "churn", "domain=growth").exit_code == 0
    assert cli("describe", "churn", "1", "weekly churn score").exit_code == 0
    assert cli("describe", "churn", "--clear").exit_code == 0
    refused = cli("delete", "churn", "1")
    assert refused.exit_code == 1 and "catalog undeploy churn --target prod" in refused.output
    assert cli("undeploy", "churn", "--target", "prod").exit_code == 2  # --note is required
    assert cli("undeploy", "churn", "--target", "prod", "--note", "retired").exit_code == 0
    shown = cli("show", "churn", "1", "--json")
    assert json.loads(shown.output)["tags"] == {"team": "retention", "stage": "prod"}
    renamed = cli("rename", "churn", "churn-eu", "--json")
    assert renamed.exit_code == 0 and json.loads(renamed.output)["renamed_from"] == "churn"
    assert cli("register", "churn", "s3://m/x", "--no-git").exit_code == 1
    assert cli("tag", "churn-eu", "1", "bad key=v").exit_code == 2
    assert cli("describe", "churn-eu").exit_code == 2
    deleted = cli("delete", "churn-eu", "1", "--note", "mistake")
    assert deleted.exit_code == 0 and "deleted" in deleted.output
    history = cli("history", "churn-eu")
    assert "renamed from churn" in history.output and "undeploy" in history.output
