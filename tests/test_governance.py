"""Promotion gates, approvals with evidence, deploy rules, audit and redaction."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from catalog import Registry
from catalog.config import load
from catalog.errors import ConfigInvalid, GateFailed, IllegalTransition, InvalidValue

from .conftest import snapshot

POLICY = textwrap.dedent(
    """
    [policy]
    required = ["owner", "code_version", "data_refs"]
    metrics = { auc = ">= 0.80", latency_p95_ms = "<= 50" }
    challenger = { auc = ">= -0.01" }

    [policy.models.churn]
    approvers = ["bob", "carol", "dan"]

    [policy.owners.risk-team]
    approvals = 2

    [policy.targets."prod*"]
    approvers = ["carol"]
    after = "staging*"

    [dashboards]
    grafana = "https://grafana.example.com/d/m?var-model={model}&var-version={version}&var-target={target}"
    """
)


@pytest.fixture
def gated(tmp_path, lake):
    path = tmp_path / "catalog.toml"
    path.write_text(POLICY)

    def make(actor: str) -> Registry:
        return Registry(lake, actor=actor, durable=False, config=path)

    return make


def good(reg: Registry, model: str = "churn", **overrides):
    fields = dict(owner="ana", code_version="abc", data_refs=["s3://d@1"], metrics={"auc": 0.85, "latency_p95_ms": 20})
    fields.update(overrides)
    return reg.register(model, f"s3://m/{model}/{fields['metrics'].get('auc')}", capture_git=False, **fields)


def test_a_version_that_passes_every_gate_is_approved_with_evidence(gated):
    good(gated("ana"))
    event = gated("bob").approve("churn", 1, note="looks good")
    assert event.state == "approved"
    gates = {g["gate"]: g for g in event.evidence["gates"]}
    assert set(gates) == {"required:owner", "required:code_version", "required:data_refs", "metric:auc",
                          "metric:latency_p95_ms", "challenger:auc", "approver", "four-eyes"}
    assert all(g["passed"] for g in gates.values())
    assert gates["metric:auc"]["seen"] == 0.85 and gates["metric:auc"]["expected"] == ">= 0.8"
    assert len(event.evidence["policy_sha256"]) == 64 and event.evidence["policy_source"].endswith("catalog.toml")
    # the evidence is in the lake, queryable
    stored = gated("bob").sql("select evidence from events where kind = 'approve'").rows[0]["evidence"]
    assert json.loads(stored)["gates"][0]["gate"] == "required:owner"


@pytest.mark.parametrize(
    "overrides, approver, failing",
    [
        ({"owner": None}, "bob", {"required:owner"}),
        ({"data_refs": []}, "bob", {"required:data_refs"}),
        ({"metrics": {"auc": 0.79, "latency_p95_ms": 20}}, "bob", {"metric:auc"}),
        ({"metrics": {"auc": 0.9, "latency_p95_ms": 51}}, "bob", {"metric:latency_p95_ms"}),
        ({"metrics": {"latency_p95_ms": 20}}, "bob", {"metric:auc"}),
        ({}, "eve", {"approver"}),
        ({}, "ana", {"approver", "four-eyes"}),
    ],
)
def test_each_failing_gate_refuses_and_writes_nothing(gated, lake, overrides, approver, failing):
    good(gated("ana"), **overrides)
    before = snapshot(lake)
    with pytest.raises(GateFailed) as caught:
        gated(approver).approve("churn", 1)
    assert {g.gate for g in caught.value.failures} == failing
    assert all(name in str(caught.value) for name in failing)
    assert snapshot(lake) == before
    assert gated("bob").show("churn", 1).state == "candidate"


def test_four_eyes_is_on_in_a_policy_file_and_switchable(tmp_path, lake):
    plain = tmp_path / "plain.toml"
    plain.write_text("[policy]\n")
    Registry(lake, actor="ana", config=plain).register("m", "s3://m", capture_git=False)
    with pytest.raises(GateFailed, match="four-eyes"):
        Registry(lake, actor="ana", config=plain).approve("m", 1)
    off = tmp_path / "off.toml"
    off.write_text("[policy]\nfour_eyes = false\n")
    assert Registry(lake, actor="ana", config=off).approve("m", 1).state == "approved"


def test_no_policy_file_means_permissive(registry, lake):
    reg = registry("ana")
    reg.register("m", "s3://m", capture_git=False)
    assert reg.config.permissive
    assert reg.approve("m", 1).state == "approved"  # the registrant may approve


def test_challenger_compares_with_the_approved_champion(gated):
    good(gated("ana"), metrics={"auc": 0.90, "latency_p95_ms": 20})
    gated("bob").approve("churn", 1)
    good(gated("ana"), metrics={"auc": 0.885, "latency_p95_ms": 20})  # -0.015: worse than allowed
    good(gated("ana"), metrics={"auc": 0.895, "latency_p95_ms": 20})  # -0.005: within the margin
    with pytest.raises(GateFailed, match=r"challenger:auc: auc 0.885 vs champion v1 0.9"):
        gated("bob").approve("churn", 2)
    assert gated("bob").approve("churn", 3).state == "approved"


def test_quorum_needs_distinct_approvers(gated):
    good(gated("ana"), "fraud", owner="risk-team")
    first = gated("bob").approve("fraud", 1)
    assert first.state is None and first.evidence["approvals"] == 1 and first.evidence["quorum"] == 2
    assert gated("bob").show("fraud", 1).state == "candidate"
    with pytest.raises(GateFailed, match="already approved"):
        gated("bob").approve("fraud", 1)
    second = gated("carol").approve("fraud", 1)
    assert second.state == "approved" and second.evidence["approvals"] == 2
    with pytest.raises(IllegalTransition):
        gated("dan").approve("fraud", 1)


def test_prod_targets_need_a_prod_approver_and_staging_first(gated, lake):
    good(gated("ana"))
    gated("bob").approve("churn", 1)
    before = snapshot(lake)
    with pytest.raises(GateFailed) as caught:
        gated("ops").deploy("churn", 1, target="prod-eu")
    assert {g.gate for g in caught.value.failures} == {"target:prod*:approver", "target:prod*:after"}
    assert snapshot(lake) == before
    gated("ops").deploy("churn", 1, target="staging-eu")
    with pytest.raises(GateFailed, match="needs an approval from one of carol"):
        gated("ops").deploy("churn", 1, target="prod-eu")
    good(gated("ana"))
    gated("carol").approve("churn", 2)
    gated("ops").deploy("churn", 2, target="staging")
    event = gated("ops").deploy("churn", 2, target="prod-eu")
    assert {g["gate"] for g in event.evidence["gates"]} == {"target:prod*:approver", "target:prod*:after"}
    # rollback is the emergency path: it goes to a version that already ran there
    assert gated("ops").deploy("churn", 1, target="dev").target == "dev"


def test_check_is_a_dry_run(gated, lake, cli, tmp_path):
    good(gated("ana"), metrics={"auc": 0.7, "latency_p95_ms": 20})
    before = snapshot(lake)
    report = gated("bob").check("churn", 1)
    assert not report.passed and [g.gate for g in report.gates if not g.passed] == ["metric:auc"]
    assert gated("bob").check("churn", 1, target="prod-eu").passed is False
    result = cli("--config", str(tmp_path / "catalog.toml"), "check", "churn", "1", "--json", actor="bob")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["passed"] is False
    table = cli("--config", str(tmp_path / "catalog.toml"), "check", "churn", "1", actor="bob")
    assert re.search(r"FAIL\s+metric:auc\s+auc = 0.7 \(needs >= 0.8\)", table.stdout)
    assert snapshot(lake) == before


def test_the_cli_lists_every_failing_gate_on_one_line(gated, cli, tmp_path):
    good(gated("ana"), owner=None, metrics={"auc": 0.5, "latency_p95_ms": 20})
    result = cli("--config", str(tmp_path / "catalog.toml"), "approve", "churn", "1", actor="eve")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "refused by 3 gate(s)" in lines[0]
    for gate in ("required:owner", "metric:auc", "approver"):
        assert gate in lines[0]


@pytest.mark.parametrize(
    "text, words",
    [
        ("[policy]\naproval = 2\n", "[policy]: unknown key 'aproval'"),
        ("[policy]\napprovals = 0\n", "[policy] approvals: must be a whole number"),
        ("[policy]\nmetrics = { auc = 'high' }\n", "[policy] metrics.auc: 'high' is not a threshold"),
        ("[policy]\nrequired = ['colour']\n", "[policy] required: must list fields"),
        ("[policy.models.churn]\nfour_eyes = 'yes'\n", "[policy.models.churn] four_eyes: must be true or false"),
        ("[policy.targets.'prod*']\nbefore = 'x'\n", "unknown key 'before'"),
        ("[dashboards]\ng = 'javascript:alert(1)'\n", "[dashboards] g: must be an http(s) URL template"),
        ("[dashboards]\ng = 'https://g/{modle}'\n", "unknown placeholder(s) ['modle']"),
        ("[colour]\n", "top level: unknown key 'colour'"),
        ("not toml = = =", "not valid TOML"),
    ],
)
def test_bad_configuration_names_the_file_and_key(tmp_path, text, words, cli):
    path = tmp_path / "catalog.toml"
    path.write_text(text)
    with pytest.raises(ConfigInvalid) as caught:
        load(path, str(tmp_path))
    assert str(path) in str(caught.value) and words in str(caught.value)
    cli("register", "m", "s3://m", "--no-git")
    result = cli("--config", str(path), "approve", "m", "1", actor="bob")
    assert result.exit_code == 2 and words in result.stderr


def test_configuration_is_found_in_the_lake_root(lake, registry):
    registry("ana").register("m", "s3://m", capture_git=False)
    (lake / "catalog.toml").write_text("[policy]\napprovers = ['zed']\n")
    with pytest.raises(GateFailed, match="approver"):
        Registry(lake, actor="bob").approve("m", 1)
    assert Registry(lake, actor="zed").approve("m", 1).evidence["policy_source"] == "<lake>/catalog.toml"


def test_dashboard_templates_fill_in_model_version_and_target(gated):
    links = gated("ana").config.dashboard_links("churn", 3, "prod-eu")
    assert links == {"grafana": "https://grafana.example.com/d/m?var-model=churn&var-version=3&var-target=prod-eu"}


def test_history_by_model_target_and_actor_and_as_of(gated):
    good(gated("ana"))
    approval = gated("carol").approve("churn", 1)
    gated("ops").deploy("churn", 1, target="staging")
    gated("ops").deploy("churn", 1, target="prod-eu")
    reg = gated("x")
    assert [e.kind for e in reg.history("churn")] == ["register", "approve", "deploy", "deploy"]
    assert [(e.kind, e.target) for e in reg.history(target="prod-eu")] == [("deploy", "prod-eu")]
    assert [e.kind for e in reg.history(actor="carol")] == ["approve"]
    assert reg.history(actor="carol")[0].evidence["gates"]
    assert [e.kind for e in reg.history("churn", as_of=approval.at)] == ["register", "approve"]
    assert reg.show("churn", 1, as_of=approval.at).state == "approved"


def test_as_of_before_and_after_a_decision(gated):
    v = good(gated("ana"))
    approval = gated("bob").approve("churn", 1)
    reg = gated("x")
    assert reg.show("churn", 1, as_of=v.created_at).state == "candidate"
    assert reg.show("churn", 1, as_of=approval.at).state == "approved"
    assert reg.sql("select count(*) as n from latest_approved", as_of=v.created_at).rows == [{"n": 0}]
    assert reg.list(as_of=approval.at)[0].latest_approved == 1


# -- redaction -------------------------------------------------------------------

SECRET = "jane.doe.medical-7f3a9c"


def all_lake_text(lake: Path) -> tuple[bytes, str]:
    """Every file's raw bytes, and every Parquet value (decoded) as text."""
    raw, decoded = b"", []
    for path in lake.rglob("*"):
        if path.is_file():
            raw += path.read_bytes()
            if path.suffix == ".parquet":
                decoded.append(str(pq.read_table(path).to_pylist()))
                decoded.append(str(pq.ParquetFile(path).metadata.to_dict()))
    return raw, "\n".join(decoded)


def test_redaction_removes_the_value_from_every_file_and_keeps_the_audit(registry, lake):
    ana, bob = registry("ana"), registry("bob")
    ana.register("churn", "s3://m/1", description=f"trained on {SECRET}", data_refs=[f"s3://people/{SECRET}@1"], capture_git=False)
    ana.register("churn", "s3://m/2", description="fine", capture_git=False)
    bob.approve("churn", 1, note=f"checked {SECRET} consent")
    ana.compact()  # the value now sits in a compacted file with other rows
    ana.register("churn", "s3://m/3", description=f"again {SECRET}", capture_git=False)
    raw, text = all_lake_text(lake)
    assert SECRET in text
    event = registry("dpo").redact("churn", fields=["description", "data_refs", "note"], reason="GDPR request 118")
    raw, text = all_lake_text(lake)
    assert SECRET.encode() not in raw and SECRET not in text
    assert event.kind == "redact" and event.note == "GDPR request 118"
    assert event.evidence["fields"] == ["description", "data_refs", "note"] and event.evidence["files_rewritten"] >= 3
    reg = registry("x")
    assert reg.show("churn", 2).description is None
    assert [e.kind for e in reg.history("churn")][-1] == "redact"
    assert reg.history("churn")[-1].actor == "dpo"
    assert reg.sql("select count(*) as n from versions").rows == [{"n": 3}]  # nothing else lost
    assert reg.show("churn", 1).state == "approved"


def test_redacting_one_version_leaves_the_others(registry):
    ana = registry("ana")
    ana.register("m", "s3://m/1", description="one", capture_git=False)
    ana.register("m", "s3://m/2", description="two", capture_git=False)
    ana.redact("m", 1, fields=["description"], reason="request")
    assert [v.description for v in ana.show("m").versions] == [None, "two"]


def test_redaction_refuses_unknown_fields_and_blank_reasons(registry, lake):
    ana = registry("ana")
    ana.register("m", "s3://m/1", capture_git=False)
    before = snapshot(lake)
    with pytest.raises(InvalidValue, match="cannot redact 'artifact_uri'"):
        ana.redact("m", fields=["artifact_uri"], reason="x")
    with pytest.raises(InvalidValue, match="reason is required"):
        ana.redact("m", fields=["description"], reason=" ")
    assert snapshot(lake) == before


@pytest.mark.local_only
def test_an_interrupted_redaction_leaves_the_lake_whole_and_a_rerun_finishes(registry, lake, monkeypatch):
    from catalog.lake import storage

    ana = registry("ana")
    for n in range(1, 4):
        ana.register("m", f"s3://m/{n}", description=f"{SECRET} #{n}", capture_git=False)
    real = storage.LocalStorage.write_atomic
    calls = {"n": 0}

    def crash_on_second(self, path, data):
        calls["n"] += path.startswith("versions/")  # table files (leases are renewed with writes too)
        if calls["n"] == 2 and path.startswith("versions/"):
            raise OSError("disk pulled out")
        return real(self, path, data)

    monkeypatch.setattr(storage.LocalStorage, "write_atomic", crash_on_second)
    with pytest.raises(OSError):
        ana.redact("m", fields=["description"], reason="GDPR")
    monkeypatch.setattr(storage.LocalStorage, "write_atomic", real)
    reader = registry("x")
    rows = reader.sql("select version, description from versions order by version").rows
    assert [r["version"] for r in rows] == [1, 2, 3]  # complete and readable
    assert rows[0]["description"] is None and rows[1]["description"] == f"{SECRET} #2"  # half done
    assert not [e for e in reader.history("m") if e.kind == "redact"]  # not claimed done
    assert not list(lake.rglob("*.tmp"))
    ana.redact("m", fields=["description"], reason="GDPR")
    raw, text = all_lake_text(lake)
    assert SECRET not in text and SECRET.encode() not in raw


def test_redact_from_the_cli(cli, lake):
    cli("register", "m", "s3://m/1", "--no-git", "--description", SECRET)
    out = cli("redact", "m", "1", "--field", "description", "--reason", "GDPR 7", actor="dpo")
    assert out.exit_code == 0, out.stderr
    assert "m v1: description removed from 1 file(s) by dpo" in out.stdout
    assert SECRET.encode() not in b"".join(p.read_bytes() for p in lake.rglob("*") if p.is_file())
