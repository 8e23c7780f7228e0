"""Files written into the lake by any tool: rows that break the rules, links, second copies of a record.

Bad files are forged the way another tool would write them: real Parquet with the
catalog's schema and file naming, put straight into the table folders.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from catalog.doctor import doctor
from catalog.schema import TABLES

from .conftest import churn_scenario

NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def forge(lake: Path, table: str, rows: list[dict], *, folder: Path | None = None) -> Path:
    """Write ``rows`` as a new part file of ``table``, every column nullable (as a foreign writer may)."""
    schema = pa.schema([f.with_nullable(True) for f in TABLES[table]])
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    path = (folder or lake / table) / f"part-{stamp}-{uuid.uuid4().hex[:16]}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


def version_row(model: str, version: int, uri: str = "s3://forged/x.pkl", **more) -> dict:
    return {"schema_version": 1, "model": model, "version": version, "artifact_uri": uri,
            "created_at": NOW, "created_by": "mallory", **more}


def event_row(event_id: str, model: str, version: int | None, kind: str, **more) -> dict:
    return {"schema_version": 1, "event_id": event_id, "at": NOW, "actor": "mallory", "model": model,
            "version": version, "kind": kind, **more}


@pytest.fixture
def scenario(registry):
    churn_scenario(registry)
    return registry


def _json(cli, *args):
    result = cli(*args, "--format", "json") if args[0] == "sql" else cli(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


# -- rows that break the rules ------------------------------------------------------


def test_a_row_with_a_path_for_a_name_is_skipped_by_every_read_and_reported_by_doctor(scenario, cli, lake):
    bad = forge(lake, "versions", [version_row("../../../../tmp/x", 1)])
    listed = _json(cli, "list")
    assert [m["model"] for m in listed] == ["churn"]
    rows = _json(cli, "sql", "select model from versions")
    assert {r["model"] for r in rows} == {"churn"}
    assert cli("resolve", "../../../../tmp/x:1").exit_code != 0
    assert cli("show", "../../../../tmp/x").exit_code != 0
    report = doctor(lake)
    errors = [f for f in report.findings if f.severity == "error"]
    assert [(f.path, f.problem) for f in errors] == [
        (f"versions/{bad.name}", "versions row ../../../../tmp/x:1 breaks the schema (invalid model name '../../../../tmp/x')")
    ]


def test_rows_breaking_the_rules_are_skipped_alike_by_views_show_and_resolve(scenario, cli, lake):
    # 'con' and 'Churn' are names now (MLflow's, encoded where they become paths); ':' is not
    forge(lake, "versions", [version_row("ghost", 0), version_row("a:b", 1), version_row("churn", 9, created_by=None)])
    forge(lake, "events", [
        # an unknown kind and an unknown state would make churn v3 approved, then deployable
        event_row("e-kind", "churn", 3, "bless", state="approved"),
        event_row("e-state", "churn", 3, "approve", state="blessed"),
        event_row("e-target", "churn", 1, "deploy", target="../../etc"),
        event_row("e-latest", "churn", 2, "deploy", target="latest"),
        event_row("e-Latest", "churn", 2, "deploy", target="LaTeST"),
        event_row("e-space", "churn", 2, "deploy", target="prod eu"),
        event_row("e-zero", "churn", 0, "approve", state="approved"),
    ])
    assert [m["model"] for m in _json(cli, "list")] == ["churn"]
    assert cli("show", "ghost").exit_code == 1
    assert _json(cli, "show", "churn", "3")["state"] == "candidate"
    assert [v["version"] for v in _json(cli, "show", "churn")["versions"]] == [1, 2, 3]
    targets = _json(cli, "sql", "select target from deployments")
    assert [r["target"] for r in targets] == ["prod"]
    assert _json(cli, "sql", "select count(*) as n from events where event_id like 'e-%'") == [{"n": 0}]
    assert cli("resolve", "churn:9").exit_code == 1
    report = doctor(lake)
    broken = sorted(f.problem for f in report.findings if "breaks the schema" in f.problem)
    assert broken == sorted([
        "versions row ghost:0 breaks the schema (version 0 is below 1)",
        "versions row a:b:1 breaks the schema (invalid model name 'a:b')",
        "versions row churn:9 breaks the schema (null created_by)",
        "event e-kind breaks the schema (unknown kind 'bless')",
        "event e-state breaks the schema (unknown state 'blessed')",
        "event e-target breaks the schema (invalid target name '../../etc')",
        "event e-latest breaks the schema (invalid target name 'latest')",
        "event e-Latest breaks the schema (invalid target name 'LaTeST')",
        "event e-space breaks the schema (invalid target name 'prod eu')",
        "event e-zero breaks the schema (version 0 is below 1)",
    ])
    assert all(f.severity == "error" for f in report.findings if "breaks the schema" in f.problem)


def test_printed_views_skip_the_same_rows_in_any_duckdb_client(scenario, registry, lake):
    import duckdb

    forge(lake, "versions", [version_row("../../../../tmp/x", 1)])
    con = duckdb.connect()
    con.execute(registry().views_sql())
    assert con.sql("select distinct model from versions").fetchall() == [("churn",)]


# -- links and other entries that are not the lake's own files ----------------------


@pytest.fixture
def other_lake(tmp_path, scenario):
    """Another lake beside the test lake, with a model of its own."""
    from catalog import Registry

    other = tmp_path / "other"
    reg = Registry(other, actor="eve", durable=False)
    reg.register("intruder", "s3://elsewhere/intruder.pkl", capture_git=False)
    reg.close()
    return other


def _link_file(lake: Path, other: Path) -> Path:
    target = sorted((other / "versions").glob("part-*.parquet"))[0]
    link = lake / "versions" / f"part-20300101T000000000000Z-{uuid.uuid4().hex[:16]}.parquet"
    link.symlink_to(target)
    return link


def _link_folder(lake: Path, other: Path) -> Path:
    link = lake / "versions" / "sub"
    link.symlink_to(other / "versions", target_is_directory=True)
    return link


def _link_table(lake: Path, other: Path) -> Path:
    """The lake's events folder replaced by a link to another lake's."""
    (lake / "events").rename(lake / "events-real")
    link = lake / "events"
    link.symlink_to(other / "events", target_is_directory=True)
    return link


@pytest.mark.parametrize("place", [_link_file, _link_folder], ids=["file", "folder"])
def test_a_link_to_another_lake_is_not_read_and_doctor_quarantines_the_link(scenario, registry, cli, lake, other_lake, place):
    from .conftest import snapshot

    link = place(lake, other_lake)
    before = snapshot(other_lake)
    assert [m["model"] for m in _json(cli, "list")] == ["churn"]
    assert cli("resolve", "intruder:1").exit_code == 1
    assert _json(cli, "sql", "select count(*) as n from versions where model = 'intruder'") == [{"n": 0}]
    registry().compact()
    assert [m["model"] for m in _json(cli, "list")] == ["churn"]
    report = doctor(lake)
    rel = str(link.relative_to(lake))
    assert [(f.severity, f.path) for f in report.problems] == [("error", rel)]
    assert "symbolic link" in report.problems[0].problem
    repaired = doctor(lake, repair=True)
    moved = lake / repaired.quarantine / rel
    assert moved.is_symlink() and not link.exists() and not link.is_symlink()
    assert snapshot(other_lake) == before
    assert doctor(lake).ok
    assert [m["model"] for m in _json(cli, "list")] == ["churn"]


def test_a_table_folder_that_is_a_link_is_not_read(scenario, cli, lake, other_lake):
    from .conftest import snapshot

    before = snapshot(other_lake)
    _link_table(lake, other_lake)
    history = cli("history", "intruder")
    assert history.exit_code == 1
    report = doctor(lake)
    assert ("error", "events") in [(f.severity, f.path) for f in report.problems]
    assert "the events folder itself is a symbolic link" in " ".join(f.problem for f in report.problems)
    # writing an event would write into the other lake: refused, nothing written
    assert cli("approve", "churn", "3").exit_code == 1
    assert snapshot(other_lake) == before
    doctor(lake, repair=True)
    assert snapshot(other_lake) == before
    assert not (lake / "events").is_symlink()


def test_a_lake_given_as_a_link_to_its_folder_is_that_folder(scenario, registry, cli, lake, tmp_path):
    from catalog import Registry

    from .conftest import Cli

    alias = tmp_path / "alias"
    alias.symlink_to(lake, target_is_directory=True)
    reg = Registry(alias, durable=False)
    assert reg.root == str(lake.resolve())  # resolved once; nothing below it may be a link
    reg.close()
    assert [m["model"] for m in _json(Cli(alias), "list")] == ["churn"]
    assert doctor(alias).ok


# -- a second record with an existing key -------------------------------------------


def _copy_part(lake: Path, table: str, index: int = 0) -> tuple[Path, Path]:
    """A byte copy of one of the table's part files under a new part name."""
    source = sorted((lake / table).glob("part-*.parquet"))[index]
    copy = lake / table / f"part-20300101T000000000000Z-{uuid.uuid4().hex[:16]}.parquet"
    copy.write_bytes(source.read_bytes())
    return source, copy


def test_an_identical_copy_of_a_file_reads_as_one_record_everywhere(scenario, registry, cli, lake):
    events = _json(cli, "sql", "select count(*) as n from events")
    _copy_part(lake, "versions", 0)
    _copy_part(lake, "events", 0)
    assert [(m["model"], m["versions"]) for m in _json(cli, "list")] == [("churn", 3)]
    assert [v["version"] for v in _json(cli, "show", "churn")["versions"]] == [1, 2, 3]
    assert _json(cli, "sql", "select count(*) as n from versions") == [{"n": 3}]
    assert _json(cli, "sql", "select count(*) as n from events") == events
    assert len(_json(cli, "history", "churn")) == len(registry().history("churn"))
    problems = [f.problem for f in doctor(lake).problems]
    assert any("sit in two current files" in p for p in problems)
    registry().compact()
    assert doctor(lake).ok
    assert _json(cli, "sql", "select count(*) as n from versions") == [{"n": 3}]


def _forge_second_v1(lake: Path) -> tuple[Path, Path]:
    original = sorted((lake / "versions").glob("part-*.parquet"))[0]
    assert pq.read_table(original).to_pylist()[0]["version"] == 1
    forged = forge(lake, "versions", [version_row("churn", 1, "s3://forged/evil.pkl")])
    return original, forged


CONFLICTED_READS = [
    ["list"],
    ["show", "churn"],
    ["show", "churn", "1"],
    # (a plain resolve answers from the model's resolve document, which the catalog wrote
    # and a forged table file does not change; the query path fails closed)
    ["resolve", "churn:1", "--as-of", "2100-01-01T00:00:00Z"],
    ["resolve", "churn@prod", "--as-of", "2100-01-01T00:00:00Z"],
    ["history", "churn"],
    ["candidates", "churn", "--target", "prod"],
    ["sql", "select * from versions"],
    ["sql", "select * from events"],
    ["approve", "churn", "3"],
]


def test_a_differing_copy_of_a_version_fails_every_read_of_it_closed(scenario, registry, cli, lake):
    from catalog.errors import ConflictingCopies
    from catalog.site import read_records

    registry("ana").register("other", "s3://models/other/1.pkl", capture_git=False)
    original, forged = _forge_second_v1(lake)
    names = (f"versions/{original.name}", f"versions/{forged.name}")
    for args in CONFLICTED_READS:
        result = cli(*args)
        assert result.exit_code == 1, (args, result.output)
        message = result.output.strip()
        assert len(message.splitlines()) == 1 and "catalog doctor" in message, (args, message)
        assert names[0] in message and names[1] in message, (args, message)
        assert "s3://forged" not in result.stdout
    with pytest.raises(ConflictingCopies) as caught:
        read_records(registry())
    assert {caught.value.first, caught.value.second} == set(names)
    # reads of another model proceed
    assert _json(cli, "show", "other")["model"] == "other"
    assert cli("resolve", "other:1").output.strip() == "s3://models/other/1.pkl"


def test_compaction_refuses_to_merge_differing_copies_and_writes_nothing(scenario, registry, lake):
    from catalog.errors import ConflictingCopies

    from .conftest import snapshot

    _forge_second_v1(lake)
    before = snapshot(lake)
    with pytest.raises(ConflictingCopies):
        registry().compact()
    assert snapshot(lake) == before


def test_doctor_reports_differing_copies_and_repair_keeps_the_one_the_claim_vouches_for(scenario, registry, cli, lake):
    original, forged = _forge_second_v1(lake)
    report = doctor(lake)
    conflict = [f for f in report.problems if "with different content" in f.problem]
    assert len(conflict) == 1 and conflict[0].severity == "error"
    assert f"versions/{original.name}" in conflict[0].problem and f"versions/{forged.name}" in conflict[0].problem
    repaired = doctor(lake, repair=True)
    assert (lake / repaired.quarantine / "versions" / forged.name).is_file()
    assert original.is_file() and not forged.exists()
    assert cli("resolve", "churn:1").output.strip() == "s3://models/churn/1.pkl"
    assert doctor(lake).ok


def test_a_differing_copy_of_an_event_fails_reads_and_repair_quarantines_both(scenario, registry, cli, lake):
    first = sorted((lake / "events").glob("part-*.parquet"))[0]
    row = pq.read_table(first).to_pylist()[0]
    forged = forge(lake, "events", [{**row, "actor": "mallory", "note": "forged"}])
    result = cli("history", "churn")
    assert result.exit_code == 1 and first.name in result.output and forged.name in result.output
    assert cli("sql", "select count(*) from events").exit_code == 1
    report = doctor(lake)
    assert any("with different content" in f.problem and f.severity == "error" for f in report.problems)
    repaired = doctor(lake, repair=True)
    for path in (first, forged):  # no claim vouches for an event: neither copy is kept
        assert (lake / repaired.quarantine / "events" / path.name).is_file()
    assert cli("history", "churn").exit_code == 0


def test_compaction_vouches_only_for_files_whose_rows_keep_the_rules(scenario, registry, cli, lake):
    registry().compact()
    clean = next((lake / "versions").glob("compacted-*.parquet"))
    assert pq.read_metadata(clean).metadata.get(b"catalog.rows_checked") == b"1"
    forge(lake, "versions", [version_row("../../../../tmp/x", 1)])
    registry().compact()
    merged = next((lake / "versions").glob("compacted-*.parquet"))
    assert b"catalog.rows_checked" not in (pq.read_metadata(merged).metadata or {})
    assert [m["model"] for m in _json(cli, "list")] == ["churn"]
    assert any("invalid model name" in f.problem for f in doctor(lake).problems)


def test_compact_rewrites_a_compacted_file_that_does_not_say_its_rows_keep_the_rules(registry, lake):
    """A lake last compacted by an older catalog: readers check every row of its file on
    every read until `catalog compact` rewrites it, which it must do even when the file
    is the table's only one."""
    from catalog.lake import Lake, LocalStorage
    from catalog.lake.footers import ROWS_CHECKED, SUPERSEDES

    reg = registry("ana")
    for n in range(3):
        reg.register("churn", f"s3://m/{n}", capture_git=False)
    reg.compact()
    (merged,) = (lake / "versions").glob("compacted-*.parquet")
    table = pq.read_table(merged)
    older = table.replace_schema_metadata({SUPERSEDES: b"[]"})  # what an older catalog wrote
    merged.unlink()
    pq.write_table(older, lake / "versions" / merged.name)
    assert not Lake(LocalStorage(lake)).rows_checked(str(lake / "versions" / merged.name))
    assert registry("bob").compact()["versions"]["files_merged"] == 1
    (rewritten,) = (lake / "versions").glob("compacted-*.parquet")
    assert pq.read_metadata(rewritten).metadata[ROWS_CHECKED] == b"1"
    assert registry("carol").compact()["versions"]["files_merged"] == 0
    assert [v.version for v in registry("dan").show("churn").versions] == [1, 2, 3]
