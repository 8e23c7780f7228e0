"""A damaged lake: every command says which file and points at `catalog doctor`; doctor finds and repairs."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from catalog.doctor import DoctorReport, doctor
from catalog.errors import LakeBusy, LakeDamaged, LakeNotFound
from catalog.lake import open_storage
from catalog.schema import SCHEMA_VERSION, TABLES

from .conftest import churn_scenario, snapshot


def _relaxed(table: str) -> pa.Schema:
    """The table's schema with every field nullable: how a foreign writer could write it."""
    return pa.schema([f.with_nullable(True) for f in TABLES[table]])


def _parts(lake: Path, table: str) -> list[Path]:
    return sorted((lake / table).glob("part-*.parquet"))


def truncate(lake: Path) -> Path:
    path = _parts(lake, "versions")[0]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def zero_bytes(lake: Path) -> Path:
    path = lake / "events" / "part-20991231T000000000000Z-0123456789abcdef.parquet"
    path.write_bytes(b"")
    return path


def wrong_schema(lake: Path) -> Path:
    path = lake / "versions" / "exported.parquet"
    pq.write_table(pa.table({"name": ["churn"], "score": [0.9]}), path)
    return path


def wrong_type(lake: Path) -> Path:
    path = lake / "events" / "part-20991231T000000000000Z-00000000000000ff.parquet"
    table = pa.table({"schema_version": [1], "event_id": ["x"], "at": [5], "actor": ["a"], "model": ["churn"], "kind": ["approve"]})
    pq.write_table(table, path)
    return path


def stray_text(lake: Path) -> Path:
    path = lake / "versions" / "notes.txt"
    path.write_text("remember to compact\n")
    return path


PARQUET_DAMAGE = [truncate, zero_bytes, wrong_schema, wrong_type]
READS = [
    ["list"],
    ["show", "churn"],
    ["show", "churn", "2"],
    ["history", "churn"],
    ["resolve", "churn@prod"],
    ["candidates", "churn", "--target", "prod"],
    ["sql", "select count(*) from versions"],
    ["approve", "churn", "3"],
    ["deploy", "churn", "1", "--target", "staging"],
    ["rollback", "churn", "--target", "prod", "--note", "why"],
]


@pytest.fixture
def scenario(registry):
    churn_scenario(registry)
    return registry


@pytest.mark.parametrize("damage", PARQUET_DAMAGE, ids=lambda f: f.__name__)
@pytest.mark.parametrize("args", READS, ids=lambda a: " ".join(a[:2]))
def test_every_command_names_the_damaged_file_and_points_at_doctor(scenario, cli, lake, damage, args):
    bad = damage(lake)
    result = cli(*args, actor="bob")
    assert result.exit_code == 1, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: the lake has a damaged file")
    assert bad.name in lines[0]
    assert "catalog doctor" in lines[0]
    assert "Traceback" not in result.output


@pytest.mark.parametrize("damage", PARQUET_DAMAGE, ids=lambda f: f.__name__)
def test_compaction_refuses_a_damaged_input_and_writes_nothing(scenario, lake, registry, damage):
    bad = damage(lake)
    table = bad.parent.name
    before = {k: v for k, v in snapshot(lake).items() if k.startswith(table + "/")}
    if bad.name.startswith("part-"):
        with pytest.raises(LakeDamaged) as caught:
            registry("ana").compact()
        assert caught.value.path == str(bad)
        assert {k: v for k, v in snapshot(lake).items() if k.startswith(table + "/")} == before
    # a foreign-named file is not the catalog's: compaction leaves it where it is
    else:
        registry("ana").compact()
        assert bad.exists()


@pytest.mark.parametrize("damage", PARQUET_DAMAGE, ids=lambda f: f.__name__)
def test_register_into_a_damaged_lake_appends_or_refuses_cleanly(scenario, cli, lake, damage):
    """Registering reads nothing but the claims, so it may succeed; it never shows a traceback."""
    damage(lake)
    result = cli("register", "churn", "s3://m/4", "--no-git")
    assert result.exit_code in (0, 1) and "Traceback" not in result.output
    assert result.exit_code == 0 or "catalog doctor" in result.stderr


def test_a_stray_text_file_is_harmless_to_reads_and_found_by_doctor(scenario, cli, lake):
    before = cli("sql", "select * from audit_log order by event_id", "--format", "json").stdout
    stray = stray_text(lake)
    assert cli("sql", "select * from audit_log order by event_id", "--format", "json").stdout == before
    assert cli("resolve", "churn@prod").stdout.strip() == "s3://models/churn/1.pkl"
    report = doctor(lake)
    assert [(f.severity, f.path) for f in report.findings] == [("warning", "versions/notes.txt")]
    assert report.exit_code == 1
    repaired = doctor(lake, repair=True)
    moved = lake / repaired.quarantine / "versions" / "notes.txt"
    assert moved.read_text() == "remember to compact\n" and not stray.exists()
    assert doctor(lake).exit_code == 0


@pytest.mark.parametrize("damage", PARQUET_DAMAGE, ids=lambda f: f.__name__)
def test_doctor_finds_quarantines_and_reads_work_again(scenario, cli, lake, damage):
    bad = damage(lake)
    content = bad.read_bytes()
    rel = str(bad.relative_to(lake))
    found = doctor(lake)
    errors = [f for f in found.findings if f.severity == "error"]
    assert [f.path for f in errors] == [rel]
    assert found.exit_code == 1 and not found.ok
    assert bad.exists()  # without --repair nothing moves

    repaired = doctor(lake, repair=True)
    assert repaired.quarantine is not None
    quarantined = lake / repaired.quarantine / rel
    assert quarantined.read_bytes() == content  # moved, never deleted
    assert "moved to _quarantine/" in next(f.repaired for f in repaired.findings if f.path == rel)
    assert cli("list").exit_code == 0
    assert cli("sql", "select count(*) from versions").exit_code == 0


def test_doctor_on_a_clean_lake_exits_zero_and_changes_nothing(scenario, lake):
    before = snapshot(lake)
    report = doctor(lake, repair=True, verify_artifacts=True)
    assert isinstance(report, DoctorReport)
    assert report.ok and report.exit_code == 0 and report.findings == ()
    assert report.checked["versions"] == 3 and report.checked["events"] == 5
    assert snapshot(lake) == before
    assert report.to_dict()["ok"] is True


def test_doctor_on_a_missing_lake_is_a_refusal(tmp_path):
    with pytest.raises(LakeNotFound):
        doctor(tmp_path / "nowhere")


def test_leftover_temporary_files_are_removed_only_once_old(scenario, lake):
    tmp = lake / "versions" / ".part-20991231T000000000000Z-0123456789abcdef.parquet.1a2b3c4d.tmp"
    tmp.write_bytes(b"PAR1 half a file")
    young = doctor(lake, repair=True)
    assert [(f.severity, f.path) for f in young.findings] == [("info", str(tmp.relative_to(lake)))]
    assert young.exit_code == 0 and tmp.exists()  # may be a write in progress

    old = doctor(lake, tmp_grace=0)
    assert [(f.severity, f.path) for f in old.findings] == [("warning", str(tmp.relative_to(lake)))]
    assert tmp.exists()
    doctor(lake, repair=True, tmp_grace=0)
    assert not tmp.exists()
    assert doctor(lake, tmp_grace=0).exit_code == 0


def test_a_claim_without_a_record_is_reported_and_left_as_a_gap(scenario, lake, registry):
    (lake / "_claims" / "churn" / "4").write_text("{}")  # a register that crashed after claiming
    report = doctor(lake, repair=True)
    assert [(f.severity, f.path) for f in report.findings] == [("info", "_claims/churn/4")]
    assert report.exit_code == 0
    assert (lake / "_claims" / "churn" / "4").exists()
    assert registry("ana").register("churn", "s3://m/next", capture_git=False).version == 5


def test_claims_behind_the_records_are_an_error_repair_claims_them(scenario, lake, registry):
    (lake / "_claims" / "churn" / "3").unlink()  # e.g. a lake restored without its newest claim
    report = doctor(lake)
    assert [(f.severity, f.path) for f in report.findings] == [("error", "_claims/churn")]
    doctor(lake, repair=True)
    assert (lake / "_claims" / "churn" / "3").exists()
    assert registry("ana").register("churn", "s3://m/next", capture_git=False).version == 4
    assert doctor(lake).exit_code == 0


def test_rows_that_break_the_schema_are_reported(scenario, lake):
    from datetime import datetime, timezone

    now = datetime.now(timezone.utc)
    events = pa.Table.from_pylist(
        [
            {"schema_version": 1, "event_id": "e-bad-kind", "at": now, "actor": "x", "model": "churn",
             "version": 1, "kind": "explode", "state": None},
            {"schema_version": 1, "event_id": "e-bad-state", "at": now, "actor": "x", "model": "churn",
             "version": 1, "kind": "approve", "state": "blessed"},
            {"schema_version": 1, "event_id": "e-dangling", "at": now, "actor": "x", "model": "churn",
             "version": 99, "kind": "approve", "state": "approved"},
        ],
        schema=_relaxed("events"),
    )
    pq.write_table(events, lake / "events" / "part-20991231T000000000000Z-00000000000000aa.parquet")
    versions = pa.Table.from_pylist(
        [
            {"schema_version": 1, "model": "churn", "version": 7, "artifact_uri": "s3://x", "created_at": now,
             "created_by": None},
            {"schema_version": 1, "model": "../evil", "version": 1, "artifact_uri": "s3://x", "created_at": now,
             "created_by": "x"},
            {"schema_version": 1, "model": "churn", "version": 1, "artifact_uri": "s3://other", "created_at": now,
             "created_by": "x"},
        ],
        schema=_relaxed("versions"),
    )
    pq.write_table(versions, lake / "versions" / "part-20991231T000000000000Z-00000000000000bb.parquet")
    problems = " | ".join(f"{f.severity}: {f.problem}" for f in doctor(lake).findings)
    assert "error: event e-bad-kind breaks the schema (unknown kind 'explode')" in problems
    assert "error: event e-bad-state breaks the schema (unknown state 'blessed')" in problems
    assert "warning: event e-dangling (approve) points at churn:99" in problems
    assert "error: versions row churn:7 breaks the schema (null created_by)" in problems
    assert "invalid model name '../evil'" in problems
    assert "version 1 of 'churn' is recorded 2 times with different content" in problems


def test_a_missing_anchor_is_written_back(scenario, lake, cli):
    (lake / "events" / f"schema-v{SCHEMA_VERSION}.parquet").unlink()
    assert [f.path for f in doctor(lake).findings] == [f"events/schema-v{SCHEMA_VERSION}.parquet"]
    doctor(lake, repair=True)
    assert (lake / "events" / f"schema-v{SCHEMA_VERSION}.parquet").exists()
    assert doctor(lake).exit_code == 0


def test_verify_artifacts_rehashes_local_artifacts(registry, lake, tmp_path):
    good, changed, gone = (tmp_path / f"{n}.bin" for n in ("good", "changed", "gone"))
    for path in (good, changed, gone):
        path.write_bytes(os.urandom(512))
    reg = registry("ana")
    for path in (good, changed, gone):
        reg.register("m", str(path), capture_git=False)
    reg.register("m", "s3://remote/model.bin", capture_git=False)
    assert doctor(lake, verify_artifacts=True).ok
    changed.write_bytes(os.urandom(512))
    gone.unlink()
    report = doctor(lake, verify_artifacts=True)
    assert report.checked["artifacts"] == 3
    found = {(f.severity, f.path) for f in report.findings}
    assert found == {("error", "m:2"), ("warning", "m:3")}
    assert doctor(lake).ok  # artifacts are only checked when asked


def test_repair_waits_for_no_compaction(scenario, lake):
    from catalog.lake.lease import Lease

    storage = open_storage(lake)
    with Lease(storage, "compact-events"):  # a compaction holds the events table's lease
        with pytest.raises(LakeBusy):
            doctor(lake, repair=True)
        assert doctor(lake).ok  # a plain check takes no lease
    # released: a repair may run (and gives the leases back)
    assert doctor(lake, repair=True).ok


def test_doctor_cli(scenario, cli, lake):
    """`catalog doctor`: exit 1 with findings, 0 when clean."""
    assert cli("doctor").exit_code == 0
    stray_text(lake)
    result = cli("doctor")
    assert result.exit_code == 1 and "versions/notes.txt" in result.output
    assert cli("doctor", "--repair").exit_code == 1
    assert cli("doctor", "--json").exit_code == 0


def test_range_claims_from_bulk_registration_are_understood(registry, lake):
    reg = registry("ana")
    reg.register_many([{"model": "bulk", "artifact_uri": f"s3://bulk/{n}"} for n in range(3)])
    assert doctor(lake).ok
    (lake / "_claims" / "bulk" / "4-6").write_text("{}")  # an older catalog's bulk load that crashed after claiming
    report = doctor(lake)
    assert report.ok and [f.path for f in report.findings] == ["_claims/bulk/4-6"]
    (lake / "_claims" / "bulk" / "7").write_text('{"by": "ana", "last": 9}')  # today's form: the body says the last
    report = doctor(lake)
    assert report.ok and [f.path for f in report.findings] == ["_claims/bulk/4-6", "_claims/bulk/7"]
    assert "3 versions (7..9)" in str(report.findings[1])
