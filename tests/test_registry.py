"""Behaviour of the Registry API: records, lifecycle, views, resolve, as-of."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

import pytest

from catalog import Registry, Version
from catalog.errors import (
    ArtifactNotFound,
    DataRefNotFound,
    IllegalTransition,
    InvalidName,
    InvalidReference,
    InvalidValue,
    LakeNotFound,
    ModelNotFound,
    NoApprovedVersion,
    NoRollbackCandidate,
    TargetNotDeployed,
    UnsafeURI,
    VersionNotFound,
)

from .conftest import churn_scenario, snapshot


def test_register_records_every_field_and_numbers_from_one(registry, artifact):
    reg = registry("ana")
    v = reg.register(
        "churn",
        str(artifact),
        owner="ana",
        description="weekly churn",
        tags={"team": "retention"},
        code_repo="https://github.com/acme/churn",
        code_version="abc123",
        runtime_image="ghcr.io/acme/train:1",
        data_refs=["s3://data/churn@2026-11-01"],
        metrics={"auc": 0.91},
        params={"lr": "0.1"},
        dashboards={"grafana": "https://grafana.example.com/d/churn"},
    )
    assert (v.model, v.version, v.state) == ("churn", 1, "candidate")
    assert v.artifact_sha256 == hashlib.sha256(artifact.read_bytes()).hexdigest()
    assert v.artifact_bytes == 2048
    back = reg.show("churn", 1)
    assert isinstance(back, Version)
    for field in ("owner", "description", "tags", "code_repo", "code_version", "runtime_image",
                  "data_refs", "metrics", "params", "dashboards", "artifact_uri", "artifact_sha256"):
        assert getattr(back, field) == getattr(v, field), field
    assert back.created_by == "ana" and back.created_at.tzinfo is not None
    assert reg.register("churn", "s3://m/2.pkl", capture_git=False).version == 2
    assert reg.register("other", "s3://m/o.pkl", capture_git=False).version == 1


def test_folder_artifact_hash_covers_names_and_content(registry, tmp_path):
    folder = tmp_path / "saved_model"
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"graph")
    (folder / "variables" / "v.data").write_bytes(b"weights")
    reg = registry()
    first = reg.register("tf", str(folder), capture_git=False)
    (folder / "variables" / "v.data").write_bytes(b"weightz")
    second = reg.register("tf", str(folder), capture_git=False)
    assert first.artifact_bytes == 12
    assert first.artifact_sha256 != second.artifact_sha256


def test_git_capture_marks_a_dirty_tree(registry, tmp_path, monkeypatch):
    import subprocess

    repo = tmp_path / "train"
    repo.mkdir()
    for args in (["init", "-q"], ["config", "user.email", "a@b"], ["config", "user.name", "a"]):
        subprocess.run(["git", *args], cwd=repo, check=True)
    (repo / "train.py").write_text("print(1)\n")
    subprocess.run(["git", "add", "."], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-qm", "x"], cwd=repo, check=True)
    subprocess.run(["git", "remote", "add", "origin", "https://user:secret@github.com/acme/train.git"], cwd=repo, check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    monkeypatch.chdir(repo)
    reg = registry()
    clean = reg.register("m", "s3://m/1.pkl")
    assert (clean.code_version, clean.code_dirty) == (head, False)
    assert clean.code_repo == "https://github.com/acme/train.git"  # the credential is stripped
    (repo / "train.py").write_text("print(2)\n")
    assert reg.register("m", "s3://m/2.pkl").code_dirty is True


def test_lifecycle_transitions_and_refusals_write_nothing(registry, lake):
    ana, bob = registry("ana"), registry("bob")
    for n in (1, 2, 3):
        ana.register("churn", f"s3://m/{n}.pkl", capture_git=False)
    bob.approve("churn", 1)
    bob.reject("churn", 2, note="leak")
    refusals = [
        (lambda: bob.deploy("churn", 3, target="prod"), IllegalTransition, "approve it before deploying"),
        (lambda: bob.deploy("churn", 2, target="prod"), IllegalTransition, "only approved versions deploy"),
        (lambda: bob.approve("churn", 2), IllegalTransition, "cannot be approved"),
        (lambda: bob.approve("churn", 1), IllegalTransition, "already approved"),
        (lambda: bob.reject("churn", 1), IllegalTransition, "deprecate"),
        (lambda: bob.deprecate("churn", 3), IllegalTransition, "reject it instead"),
        (lambda: bob.rollback("churn", target="prod", note="x"), TargetNotDeployed, "nothing to roll back"),
        (lambda: bob.approve("churn", 9), VersionNotFound, "version 9"),
        (lambda: bob.approve("nope", 1), ModelNotFound, "nope"),
    ]
    before = snapshot(lake)
    for call, error, words in refusals:
        with pytest.raises(error) as caught:
            call()
        assert words in str(caught.value)
        assert caught.value.exit_code == 1
    assert snapshot(lake) == before
    bob.deploy("churn", 1, target="prod")
    with pytest.raises(IllegalTransition, match="already runs"):
        bob.deploy("churn", 1, target="prod")
    with pytest.raises(NoRollbackCandidate):
        bob.rollback("churn", target="prod", note="no earlier version ran here")
    err = pytest.raises(VersionNotFound, bob.approve, "churn", 9).value
    assert (err.model, err.version) == ("churn", 9)


@pytest.mark.parametrize(
    "call, error",
    [
        (lambda r: r.register("Churn\x1b[2J", "s3://m/1"), InvalidName),
        (lambda r: r.register("../etc", "s3://m/1"), InvalidName),
        (lambda r: r.register("a/b", "s3://m/1"), InvalidName),
        (lambda r: r.register("a:b", "s3://m/1"), InvalidName),
        (lambda r: r.register("  ", "s3://m/1"), InvalidName),
        (lambda r: r.register("x" * 151, "s3://m/1"), InvalidName),
        (lambda r: r.register("ok", "s3://m/1", metrics={"auc": float("nan")}), InvalidValue),
        (lambda r: r.register("ok", "s3://m/1", metrics={"auc": "high"}), InvalidValue),
        (lambda r: r.register("ok", "s3://m/1", metrics={"auc": float("inf")}), InvalidValue),
        (lambda r: r.register("ok", "s3://m/1", tags={"bad key": "v"}), InvalidValue),
        (lambda r: r.register("ok", "/definitely/not/here.pkl"), ArtifactNotFound),
        (lambda r: r.register("ok", "https://u:p@host/m.pkl"), UnsafeURI),
        (lambda r: r.register("ok", "https://host/m.pkl?X-Amz-Signature=abc"), UnsafeURI),
        (lambda r: r.register("ok", "s3://m/1", data_refs=["/no/such/data.csv"]), DataRefNotFound),
        (lambda r: r.register("ok", "s3://m/1", data_refs=["s3://d@1", "s3://d@1"]), InvalidValue),
        (lambda r: r.register("ok", "s3://m/1", parents=["base"]), InvalidValue),
        (lambda r: r.register("ok", "s3://m/1", artifact_sha256="xyz"), InvalidValue),
        (lambda r: r.register("ok", "s3://m/1", description="a\x00b"), InvalidValue),
        (lambda r: r.deploy("ok", 1, target="latest"), InvalidName),
        (lambda r: r.deploy("ok", 1, target="LATEST"), InvalidName),
        (lambda r: r.deploy("ok", 1, target="v2"), InvalidName),
        (lambda r: r.deploy("ok", 1, target="prod eu"), InvalidName),
        (lambda r: r.rollback("ok", target="prod", note="  "), InvalidValue),
        (lambda r: r.approve("ok", 0), InvalidValue),
        (lambda r: r.resolve("churn"), InvalidReference),
        (lambda r: r.resolve("churn:x"), InvalidReference),
        (lambda r: r.resolve("../x@prod"), InvalidReference),
    ],
)
def test_malformed_input_is_refused_with_exit_2_and_writes_nothing(registry, lake, call, error):
    reg = registry()
    reg.register("seed", "s3://m/seed", capture_git=False)
    before = snapshot(lake)
    with pytest.raises(error) as caught:
        call(reg)
    assert caught.value.exit_code == 2
    assert snapshot(lake) == before


def test_missing_data_is_accepted_when_asked(registry):
    v = registry().register("ok", "s3://m/1", data_refs=["/mnt/share/train.csv"], allow_missing_data=True, capture_git=False)
    assert v.data_refs == ["/mnt/share/train.csv"]


def test_unknown_parent_is_refused(registry):
    reg = registry()
    reg.register("base", "s3://m/b", capture_git=False)
    with pytest.raises(VersionNotFound):
        reg.register("child", "s3://m/c", parents=[("base", 2)], capture_git=False)


def test_reading_a_missing_lake_says_how_to_start(tmp_path):
    with pytest.raises(LakeNotFound, match="register a model there first"):
        Registry(tmp_path / "nowhere").list()


def test_rollback_scenario_and_candidates(registry):
    s = churn_scenario(registry)
    bob = s["bob"]
    assert s["rollback"].version == 1 and s["rollback"].evidence["from_version"] == 2
    assert bob.resolve("churn@prod") == "s3://models/churn/1.pkl"
    # v2 is what the rollback moved prod away from: not a way back (tests/test_rollback.py)
    assert bob.candidates("churn", target="prod") == []
    assert [(e.version, e.reason) for e in bob.rollback_options("churn", target="prod").excluded] == [
        (1, "running"), (2, "rolled back")]
    bob.deprecate("churn", 2, note="regression")
    assert bob.candidates("churn", target="prod") == []
    with pytest.raises(NoRollbackCandidate):
        bob.rollback("churn", target="prod", note="again")


def test_rollback_candidates_rank_most_recent_first_and_to_picks_one(registry):
    ana, bob = registry("ana"), registry("bob")
    for n in range(1, 5):
        ana.register("m", f"s3://m/{n}", capture_git=False)
        bob.approve("m", n)
        bob.deploy("m", n, target="prod")
    assert [(c.version, c.rank) for c in bob.candidates("m", target="prod")] == [(3, 1), (2, 2), (1, 3)]
    with pytest.raises(NoRollbackCandidate, match="running now"):
        bob.rollback("m", target="prod", note="x", to=4)
    with pytest.raises(NoRollbackCandidate, match="candidates: v3, v2, v1"):
        bob.rollback("m", target="prod", note="x", to=9)
    event = bob.rollback("m", target="prod", note="bad release", to=1)
    assert event.version == 1 and bob.resolve("m@prod") == "s3://m/1"
    assert [c.version for c in bob.candidates("m", target="prod")] == [3, 2]  # not v4: rolled back from


def test_latest_approved_skips_candidates_rejected_and_deprecated(registry):
    ana, bob = registry("ana"), registry("bob")
    for n in range(1, 6):
        ana.register("m", f"s3://m/{n}", capture_git=False)
    with pytest.raises(NoApprovedVersion):
        bob.resolve("m@latest")
    bob.approve("m", 1)
    bob.approve("m", 3)
    bob.reject("m", 4)
    assert bob.resolve("m@latest") == "s3://m/3"  # v5 is a candidate, v4 rejected
    bob.deprecate("m", 3)
    assert bob.resolve("m@latest") == "s3://m/1"
    row = bob.sql("select version, approved_by from latest_approved where model = 'm'").rows
    assert row == [{"version": 1, "approved_by": "bob"}]


def test_resolve_sees_writes_from_another_process_object(registry):
    serving, ops = registry("svc"), registry("ops")
    ops.register("m", "s3://m/1", capture_git=False)
    ops.register("m", "s3://m/2", capture_git=False)
    ops.approve("m", 1)
    ops.approve("m", 2)
    ops.deploy("m", 1, target="prod")
    assert serving.resolve("m@prod") == "s3://m/1"
    for _ in range(3):  # warm: answered from the index
        assert serving.resolve("m@prod") == "s3://m/1"
    ops.deploy("m", 2, target="prod")
    assert serving.resolve("m@prod") == "s3://m/2"
    assert serving.resolve("m:1") == "s3://m/1"
    with pytest.raises(TargetNotDeployed):
        serving.resolve("m@staging")
    with pytest.raises(VersionNotFound):
        serving.resolve("m:7")
    with pytest.raises(ModelNotFound):
        serving.resolve("zz@prod")


def test_as_of_answers_as_the_registry_would_have(registry):
    s = churn_scenario(registry)
    bob = s["bob"]
    before_rollback = s["rollback"].at.replace(microsecond=max(s["rollback"].at.microsecond - 1, 0))
    assert s["deployed_v2"].at < before_rollback < s["rollback"].at
    then = bob.show("churn", as_of=before_rollback)
    assert {d.target: d.version for d in then.deployments} == {"prod": 2}
    assert {d.target: d.version for d in bob.show("churn").deployments} == {"prod": 1}
    assert [c.version for c in bob.candidates("churn", target="prod", as_of=before_rollback)] == [1]
    assert bob.resolve("churn@prod", as_of=before_rollback) == "s3://models/churn/2.pkl"
    assert bob.resolve("churn@prod") == "s3://models/churn/1.pkl"
    early = datetime(2000, 1, 1, tzinfo=timezone.utc)
    assert bob.list(as_of=early) == []
    count = bob.sql("select count(*) as n from events", as_of=before_rollback).rows[0]["n"]
    assert count == 4
    assert bob.sql("select count(*) as n from events").rows[0]["n"] == 5


def test_history_has_every_step_with_actor_and_note(registry):
    s = churn_scenario(registry)
    steps = [(e.kind, e.version, e.actor, e.target, e.note) for e in s["bob"].history("churn")]
    assert steps == [
        ("register", 1, "ana", None, None),
        ("register", 2, "ana", None, None),
        ("register", 3, "ana", None, None),
        ("approve", 1, "bob", None, "ok"),
        ("approve", 2, "bob", None, "better"),
        ("deploy", 1, "bob", "prod", None),
        ("deploy", 2, "bob", "prod", None),
        ("rollback", 1, "bob", "prod", "p95 latency regression"),
    ]


def test_lineage_walks_ancestors_and_descendants(registry):
    reg = registry()
    reg.register("base", "s3://m/b", data_refs=["s3://corpus@v1"], runtime_image="img:1",
                 code_repo="https://github.com/acme/x", code_version="c0ffee", capture_git=False)
    reg.register("tuned", "s3://m/t", parents=[("base", 1, "fine-tuned")], capture_git=False)
    reg.register("small", "s3://m/s", parents=["tuned:1:distilled"], capture_git=False)
    up = reg.lineage("small", 1).ancestors
    assert {(e.child_model, e.parent_kind, e.parent, e.depth) for e in up} == {
        ("small", "model", "tuned:1", 1),
        ("tuned", "model", "base:1", 2),
        ("base", "data", "s3://corpus@v1", 3),
        ("base", "image", "img:1", 3),
        ("base", "code", "https://github.com/acme/x@c0ffee", 3),
    }
    down = reg.lineage("base", 1).descendants
    assert [(e.child_model, e.relation, e.depth) for e in down] == [("tuned", "fine-tuned", 1), ("small", "distilled", 2)]
    kinds = reg.sql("select parent_kind, count(*) n from lineage group by 1 order by 1").rows
    assert kinds == [{"parent_kind": "code", "n": 1}, {"parent_kind": "data", "n": 1},
                     {"parent_kind": "image", "n": 1}, {"parent_kind": "model", "n": 2}]


def test_model_versions_and_audit_log_views(registry):
    s = churn_scenario(registry)
    rows = s["bob"].sql("select version, state, deployed_to from model_versions order by version").rows
    assert rows == [
        {"version": 1, "state": "approved", "deployed_to": ["prod"]},
        {"version": 2, "state": "approved", "deployed_to": []},
        {"version": 3, "state": "candidate", "deployed_to": []},
    ]
    audit = s["bob"].sql('select kind, actor, note, artifact_uri from audit_log where kind = \'rollback\'').rows
    assert audit == [{"kind": "rollback", "actor": "bob", "note": "p95 latency regression", "artifact_uri": "s3://models/churn/1.pkl"}]


def test_compaction_keeps_every_record_once_and_is_idempotent(registry, lake):
    s = churn_scenario(registry)
    bob = s["bob"]
    query = "select * from audit_log order by event_id"
    before = bob.sql(query).rows
    result = bob.compact()
    assert result["versions"] == {"files_merged": 3, "rows": 3}
    assert result["events"] == {"files_merged": 5, "rows": 5}
    assert sorted(p.name.split("-")[0] for p in (lake / "events").glob("*.parquet")) == ["compacted", "schema"]
    assert bob.sql(query).rows == before
    assert bob.compact()["events"] == {"files_merged": 0, "rows": 0}
    assert bob.sql(query).rows == before
    assert bob.resolve("churn@prod") == "s3://models/churn/1.pkl"


def test_a_compaction_killed_before_removing_its_inputs_shows_each_record_once(registry, lake):
    import pyarrow.parquet as pq

    s = churn_scenario(registry)
    bob = s["bob"]
    query = "select * from audit_log order by event_id"
    before = bob.sql(query).rows
    inputs = {p.name: p.read_bytes() for p in (lake / "events").glob("part-*.parquet")}
    bob.compact()
    merged = next((lake / "events").glob("compacted-*.parquet"))
    assert json.loads(pq.read_metadata(merged).metadata[b"catalog.supersedes"]) == sorted(inputs)
    for name, data in inputs.items():  # as if the compaction died before its removals
        (lake / "events" / name).write_bytes(data)
    assert bob.sql(query).rows == before
    assert bob.sql("select count(*) as n from events").rows == [{"n": len(inputs)}]
    report = bob.doctor()
    assert report.ok and sum("interrupted compaction" in f.problem for f in report.findings) == len(inputs)
    assert bob.compact()["events"] == {"files_merged": 0, "rows": 0}  # removing the leftovers is all it does
    assert not list((lake / "events").glob("part-*.parquet"))
    assert bob.sql(query).rows == before
    for name, data in inputs.items():  # doctor --repair removes them too
        (lake / "events" / name).write_bytes(data)
    repaired = bob.doctor(repair=True)
    assert sum(f.repaired is not None and "interrupted compaction" in f.problem for f in repaired.findings) == len(inputs)
    assert not list((lake / "events").glob("part-*.parquet"))
    assert bob.sql(query).rows == before


def test_a_record_copied_into_a_second_file_is_reported_and_compaction_keeps_one(registry, lake):
    s = churn_scenario(registry)
    bob = s["bob"]
    query = "select * from audit_log order by event_id"
    before = bob.sql(query).rows
    bob.compact()
    merged = next((lake / "events").glob("compacted-*.parquet"))
    (lake / "events" / "part-20990101T000000000000Z-0000000000000000.parquet").write_bytes(merged.read_bytes())
    report = bob.doctor()
    assert not report.ok
    assert any("sit in two current files" in f.problem and f.severity == "error" for f in report.findings)
    bob.compact()
    assert bob.sql(query).rows == before
    assert bob.doctor().ok


def test_claims_fall_back_to_the_records_when_the_claims_folder_is_gone(registry, lake):
    import shutil

    reg = registry()
    reg.register("m", "s3://m/1", capture_git=False)
    reg.register("m", "s3://m/2", capture_git=False)
    shutil.rmtree(lake / "_claims")
    assert reg.register("m", "s3://m/3", capture_git=False).version == 3


@pytest.mark.local_only  # a plain DuckDB reads s3:// globs only with httpfs, which cannot be downloaded here
def test_views_sql_runs_in_a_plain_duckdb_client(registry):
    import duckdb

    s = churn_scenario(registry)
    con = duckdb.connect()
    con.execute(s["bob"].views_sql())  # the whole script, as a user pastes it
    assert con.execute("select version from deployments where model = 'churn'").fetchall() == [(1,)]


def test_the_reader_creates_its_views_unbound_and_prints_them_plain(registry):
    """Creating the views bound took ~0.5 s per process; the reader creates them unbound where
    DuckDB can (1.5+), so every view a reader defines must get the clause, and the text printed
    for other clients must not (a DuckDB-WASM or older client may not know it)."""
    import duckdb

    from catalog import engine
    from catalog.queries.sql import named_queries, unbound

    s = churn_scenario(registry)
    reg = s["bob"]
    made = "\n".join([reg.views_sql(), *named_queries("reader.sql").values()])
    creates = made.count("CREATE OR REPLACE VIEW")
    assert creates > 30 and unbound(made).count("WITH (DEFER_BINDING) AS") == creates
    assert "DEFER_BINDING" not in reg.views_sql()
    assert engine.defers_binding(duckdb.connect()) is (tuple(map(int, duckdb.__version__.split(".")[:2])) >= (1, 5))
    assert [tuple(row.values()) for row in reg.sql("SELECT version FROM deployments WHERE model = 'churn'").rows] == [(1,)]
    if engine.defers_binding(duckdb.connect()):   # (a new reader's first question: no view read yet)
        fresh = registry("carol")
        bound = {r["view_name"]: r["is_bound"] for r in fresh.sql(
            "SELECT view_name, is_bound FROM duckdb_views() WHERE view_name IN ('lineage', 'models')").rows}
        assert bound == {"lineage": False, "models": False}


def test_register_many_writes_one_file_numbers_in_order_and_checks_parents(registry, lake):
    reg = registry()
    reg.register("base", "s3://b/1", capture_git=False)
    before = snapshot(lake)
    with pytest.raises(VersionNotFound):
        reg.register_many([{"model": "x", "artifact_uri": "s3://x"}, {"model": "y", "artifact_uri": "s3://y", "parents": [("base", 9)]}])
    with pytest.raises(InvalidValue, match="record 1: unknown field"):
        reg.register_many([{"model": "x", "artifact_uri": "s3://x"}, {"model": "y", "artifact_uri": "s3://y", "colour": "red"}])
    with pytest.raises(InvalidName):
        reg.register_many([{"model": "x", "artifact_uri": "s3://x"}, {"model": "a/b", "artifact_uri": "s3://y"}])
    assert snapshot(lake) == before  # all or nothing
    files = set((lake / "versions").glob("part-*.parquet"))
    made = reg.register_many(
        [{"model": "a", "artifact_uri": f"s3://a/{i}", "metrics": {"auc": i / 10}} for i in range(5)]
        + [{"model": "base", "artifact_uri": "s3://b/2", "parents": [("base", 1, "retrained")]}]
    )
    assert [(v.model, v.version) for v in made] == [("a", 1), ("a", 2), ("a", 3), ("a", 4), ("a", 5), ("base", 2)]
    assert len(set((lake / "versions").glob("part-*.parquet")) - files) == 1
    assert sorted(p.name for p in (lake / "_claims" / "a").iterdir()) == ["1"]  # one claim, numbers 1 to 5
    assert json.loads((lake / "_claims" / "a" / "1").read_text())["last"] == 5
    assert reg.register("a", "s3://a/next", capture_git=False).version == 6
    assert reg.show("a", 3).metrics == {"auc": 0.2}
    assert reg.lineage("base", 2).ancestors[0].parent == "base:1"


def test_writers_compact_automatically_and_files_stay_few(registry, lake):
    from catalog.registry import AUTO_COMPACT_PARTS

    reg = registry("ana")
    total = 5 * AUTO_COMPACT_PARTS + 7
    for n in range(total):
        reg.register("m", f"s3://m/{n}", capture_git=False)
    files = [p.name for p in (lake / "versions").glob("*.parquet")]
    parts = [f for f in files if f.startswith("part-")]
    compacted = [f for f in files if f.startswith("compacted-")]
    assert len(parts) < AUTO_COMPACT_PARTS
    assert 1 <= len(compacted) <= 4  # size-tiered: O(log n) files, not one per batch
    rows = reg.sql("select version from versions order by version").rows
    assert [r["version"] for r in rows] == list(range(1, total + 1))


def test_automatic_compaction_leaves_a_much_larger_compacted_file_alone(registry, lake):
    """Minor compactions tier by rows: a hundred one-row appends (uncompressed, so
    larger on disk per row) must not drag a compacted file of thousands of rows in."""
    from catalog.registry import AUTO_COMPACT_PARTS

    reg = registry("ana")
    reg.register_many([{"model": "bulk", "artifact_uri": f"s3://bulk/{n}"} for n in range(3000)])
    reg.compact()
    big = {p.name for p in (lake / "versions").glob("compacted-*.parquet")}
    assert len(big) == 1
    for n in range(AUTO_COMPACT_PARTS):
        reg.register("m", f"s3://m/{n}", capture_git=False)
    files = {p.name for p in (lake / "versions").glob("*.parquet")}
    assert big <= files and len(files - big) == 2  # the untouched big file, one small merged file, the anchor
    assert reg.sql("select count(*) as n from versions").rows == [{"n": 3000 + AUTO_COMPACT_PARTS}]


def test_sql_arrow_answers_as_sql_does_and_refuses_the_same(registry):
    s = churn_scenario(registry)
    bob = s["bob"]
    query = "select * from model_versions order by version"
    table = bob.sql_arrow(query)
    assert table.column_names == bob.sql(query).columns
    # Arrow spells a map as a list of (key, value) pairs; sql() gives a dict.
    maps = [f.name for f in table.schema if str(f.type).startswith("map<")]
    as_arrow = [{k: (dict(v) if k in maps and v is not None else v) for k, v in row.items()} for row in table.to_pylist()]
    assert maps and as_arrow == bob.sql(query).rows
    from catalog.errors import QueryRefused

    with pytest.raises(QueryRefused):
        bob.sql_arrow("create table t as select 1")


def test_a_long_lived_reader_follows_appends_compactions_and_rewrites(registry):
    """The reader keeps small files in memory (reader.sql): it must never serve a stale,
    missing or doubled row whatever other writers do to the files meanwhile."""
    reader, writer = registry("ana"), registry("bob")
    writer.register("m", "s3://m/1", description="first", capture_git=False)
    assert [v.version for v in reader.show("m").versions] == [1]
    writer.register("m", "s3://m/2", capture_git=False)
    assert [v.version for v in reader.show("m").versions] == [1, 2]
    writer.compact()  # the two small files leave; one compacted file holds both rows
    assert [v.version for v in reader.show("m").versions] == [1, 2]
    writer.register("m", "s3://m/3", description="third", capture_git=False)
    writer.redact("m", 3, fields=["description"], reason="request")  # rewrites a small file in place
    shown = reader.show("m").versions
    assert [(v.version, v.description) for v in shown] == [(1, "first"), (2, None), (3, None)]
    assert reader.sql("select count(*) as n from versions").rows == [{"n": 3}]


def test_a_writer_with_an_open_reader_compacts_then_checks_parents(registry):
    """The reader's DuckDB connection also reads footers for compaction: a query right
    after (a parent check on the files as last listed) must still run."""
    from catalog.registry import AUTO_COMPACT_PARTS

    registry("ana").register("base", "s3://base/1", capture_git=False)
    writer = registry("bob")
    writer.show("base")  # opens the reader
    # Two minor compactions: the second reads the footer of the file the first wrote.
    for n in range(2 * AUTO_COMPACT_PARTS):
        writer.register("m", f"s3://m/{n}", capture_git=False)
    child = writer.register("child", "s3://child/1", parents=[("base", 1)], capture_git=False)
    assert child.parents[0].model == "base"
    assert writer.lineage("child", 1).ancestors[0].parent == "base:1"
