"""`catalog copy`: a lake moved between folders and buckets, checked record by record.

Real lakes, real files: a copy is damaged by writing real files into it between the
copy and its verification (the ``on_copied`` hook), never by mocks. The S3 round trips
run against the session's S3 test server once ``catalog.lake.s3`` exists (the S3
backend); until then they skip.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from catalog import Registry
from catalog.config import STARTER
from catalog.copying import copy_lake
from catalog.errors import (
    CopyConflict,
    CopyDestinationNotEmpty,
    CopyMismatch,
    CopyOverlap,
    CopySourceNotLake,
)
from catalog.lake import Lake, LocalStorage, compact

from .conftest import Cli, churn_scenario

POLICY = STARTER.encode()


def files(root: Path) -> dict[str, str]:
    """Every file below ``root`` (links included, not followed) with its content hash."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            out[str(path.relative_to(root))] = "link -> " + os.readlink(path)
        elif path.is_file():
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def everything(reg: Registry) -> dict[str, object]:
    """What a reader sees of a lake: every version, every event, the deployments."""
    return {
        "versions": reg.sql("select * from versions order by model, version").rows,
        "events": reg.sql("select * from events order by event_id").rows,
        "history": [e.to_dict() for e in reg.history()],
        "list": [m.to_dict() for m in reg.list()],
    }


@pytest.fixture
def source(tmp_path: Path, registry) -> Path:
    """A lake with records, decisions, a bulk claim, a policy file, a compacted file and
    the leftovers of an interrupted compaction, a read snapshot's log, plus files that
    are not the lake's (a temporary file, a quarantined file, a lock, a link)."""
    lake = tmp_path / "lake"
    churn_scenario(registry)
    ana = registry("ana")
    ana.register_many([{"model": "bulk", "artifact_uri": f"s3://bulk/{n}"} for n in range(5)])
    # An interrupted compaction: the merged file is in, its inputs not yet removed.
    parts = {p: p.read_bytes() for p in (lake / "versions").glob("part-*.parquet")}
    assert compact(Lake(LocalStorage(lake, durable=False)), "versions") == (len(parts), 8)
    for path, data in parts.items():
        path.write_bytes(data)
    ana.register("churn", "s3://models/churn/4.pkl", capture_git=False)  # a part file after the compacted one
    (lake / "catalog.toml").write_bytes(POLICY)
    if not (lake / "_decisions").exists():  # written by decisions once the protocol branch merges
        for n in (1, 2, 3):
            (lake / "_decisions" / "churn").mkdir(parents=True, exist_ok=True)
            (lake / "_decisions" / "churn" / str(n)).write_text(json.dumps({"n": n}))
    (lake / "versions" / ".part-x.parquet.1234abcd.tmp").write_bytes(b"half a write")
    if not (lake / "versions" / "_delta_log").exists():  # published by compaction where snapshots exist
        (lake / "versions" / "_delta_log").mkdir()
        (lake / "versions" / "_delta_log" / "00000000000000000000.json").write_text('{"commitInfo": {}}\n')
    (lake / "_quarantine" / "20260101T000000Z").mkdir(parents=True)
    (lake / "_quarantine" / "20260101T000000Z" / "bad.parquet").write_bytes(b"bad")
    (lake / "_locks").mkdir(exist_ok=True)
    (lake / "_locks" / "model-churn.lock").write_bytes(b"")
    outside = tmp_path / "outside.parquet"
    outside.write_bytes(next(iter(parts.values())))
    (lake / "events" / "part-20260101T000000000000Z-0123456789abcdef.parquet").symlink_to(outside)
    return lake


def test_folder_to_folder_copies_the_current_records_once_and_numbering_continues(source: Path, tmp_path: Path) -> None:
    before = files(source)
    dest = tmp_path / "copy"
    report = copy_lake(source, dest, durable=False)
    assert files(source) == before  # the source is only read

    copied = files(dest)
    # the interrupted compaction's inputs stay behind: each record is copied once
    assert report.left_behind["superseded"] == 4
    assert not set(copied) & _superseded(source) and len(_superseded(source)) == 4
    # the source's read snapshot is not copied: where the catalog publishes one, the copy gets its own
    logs = {n for n in before if "/_delta_log/" in n}
    assert report.left_behind["snapshot"] == len(logs) >= 1
    assert all(copied.get(n) != before[n] for n in logs)
    assert report.snapshot_published
    copied = {n: h for n, h in copied.items() if "/_delta_log/" not in n}
    # (resolve documents, _serving/, are derived: the copy answers by query until `compact` writes its own)
    assert set(copied) == set(before) - _superseded(source) - logs - {
        n for n in before if n.startswith(("_locks", "_leases", "_probe", "_quarantine", "_compactions", "_serving")) or n.endswith(".tmp")
        or "0123456789abcdef" in n
    }
    assert all(copied[n] == before[n] for n in copied)  # byte for byte
    assert not [p for p in ("_locks", "_leases", "_probe", "_quarantine", "_compactions") if (dest / p).exists()]
    assert (dest / "catalog.toml").read_bytes() == POLICY
    claims = sorted(p.name for p in (source / "_claims" / "bulk").iterdir())  # one claim for the bulk load
    assert len(claims) == 1 and sorted(p.name for p in (dest / "_claims" / "bulk").iterdir()) == claims
    assert sorted(p.name for p in (dest / "_decisions" / "churn").iterdir())[:3] == ["1", "2", "3"]

    assert report.records == {"versions": 9, "events": 5}
    assert report.files["claims"] == len(list((source / "_claims").rglob("*"))) - 2  # less the two model folders
    assert report.to_dict()["source"] == str(source) and report.to_dict()["destination"] == str(dest)

    src, dst = Registry(source, actor="ana", durable=False), Registry(dest, actor="ana", durable=False)
    try:
        assert everything(dst) == everything(src)
        assert dst.resolve("churn@prod") == src.resolve("churn@prod")
        # numbering continues in the copy: no number is reused
        assert dst.register("churn", "s3://models/churn/5.pkl", capture_git=False).version == 5
        assert dst.register("bulk", "s3://bulk/6", capture_git=False).version == 6
        assert dst.doctor().ok
    finally:
        src.close()
        dst.close()


def _superseded(lake: Path) -> set[str]:
    found, _ = Lake(LocalStorage(lake, durable=False)).superseded(
        "versions", [p.name for p in (lake / "versions").iterdir()])
    return {f"versions/{n}" for n in found}


def test_the_copy_of_a_copy_reads_the_same(source: Path, tmp_path: Path) -> None:
    copy_lake(source, tmp_path / "one", durable=False)
    copy_lake(tmp_path / "one", tmp_path / "two", durable=False)
    def lake_files(root: Path) -> dict[str, str]:  # each copy publishes its own read snapshot, if any
        return {n: h for n, h in files(root).items() if "/_delta_log/" not in n}

    assert lake_files(tmp_path / "one") == lake_files(tmp_path / "two")


@pytest.mark.parametrize("occupant", ["lake", "stray file", "empty lake folder", "lock only", "file"])
def test_a_destination_that_holds_anything_is_refused_and_nothing_is_written(source: Path, tmp_path: Path, occupant: str) -> None:
    dest = tmp_path / "dest"
    if occupant == "lake":
        copy_lake(source, dest, durable=False)
    elif occupant == "stray file":
        dest.mkdir()
        (dest / "notes.txt").write_text("mine")
    elif occupant == "empty lake folder":
        (dest / "versions").mkdir(parents=True)
    elif occupant == "lock only":
        (dest / "_locks").mkdir(parents=True)
        (dest / "_locks" / "claims.lock").write_bytes(b"")
    else:
        dest.write_text("a file")
    before_src, before_dst = files(source), (files(dest) if dest.is_dir() else dest.read_bytes())
    with pytest.raises(CopyDestinationNotEmpty) as refused:
        copy_lake(source, dest, durable=False)
    assert "nothing was written" in str(refused.value) and "\n" not in str(refused.value)
    assert files(source) == before_src
    assert (files(dest) if dest.is_dir() else dest.read_bytes()) == before_dst


def test_an_empty_destination_folder_is_fine(source: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert copy_lake(source, tmp_path / "empty", durable=False).records["versions"] == 9


@pytest.mark.parametrize("kind", ["missing", "empty folder", "not a lake"])
def test_a_source_that_is_not_a_lake_is_refused_and_nothing_is_written(tmp_path: Path, kind: str) -> None:
    src = tmp_path / "src"
    if kind != "missing":
        src.mkdir()
    if kind == "not a lake":
        (src / "notes.txt").write_text("hello")
        (src / "_claims" / "m").mkdir(parents=True)
        (src / "_claims" / "m" / "1").write_text("{}")
    with pytest.raises(CopySourceNotLake):
        copy_lake(src, tmp_path / "dest", durable=False)
    assert not (tmp_path / "dest").exists()


def test_locations_inside_one_another_are_refused(source: Path) -> None:
    with pytest.raises(CopyOverlap):
        copy_lake(source, source / "backup", durable=False)
    with pytest.raises(CopyOverlap):
        copy_lake(source, source, durable=False)
    assert not (source / "backup").exists()


def _rewrite(path: Path, change=None) -> None:
    """Rewrite the Parquet file at ``path`` (its rows changed by ``change``), keeping its footer."""
    table = pq.read_table(path)
    if change is not None:
        table = change(table)
    pq.write_table(table, path, compression="gzip")


def test_a_record_changed_in_the_copy_is_caught(source: Path, tmp_path: Path) -> None:
    import pyarrow as pa

    def tamper(storage) -> None:
        (compacted,) = Path(storage.root, "versions").glob("compacted-*.parquet")

        def other_uri(table: pa.Table) -> pa.Table:
            uris = table.column("artifact_uri").to_pylist()
            uris[1] = "s3://evil/model.pkl"
            return table.set_column(table.schema.get_field_index("artifact_uri"), "artifact_uri", pa.array(uris))

        _rewrite(compacted, other_uri)

    with pytest.raises(CopyMismatch, match=r"the versions record model='bulk', version=2 differs"):
        copy_lake(source, tmp_path / "copy", durable=False, on_copied=tamper)


def test_a_record_missing_from_the_copy_is_caught(source: Path, tmp_path: Path) -> None:
    def tamper(storage) -> None:
        (part,) = Path(storage.root, "versions").glob("part-*.parquet")
        part.unlink()

    with pytest.raises(CopyMismatch, match=r"model='churn', version=4 differs \(1 row\(s\) in the source, 0 in the copy\)"):
        copy_lake(source, tmp_path / "copy", durable=False, on_copied=tamper)


def test_bytes_changed_with_the_same_records_claims_lost_or_added_are_caught(source: Path, tmp_path: Path) -> None:
    def recompress(storage) -> None:
        _rewrite(next(Path(storage.root, "events").glob("part-*.parquet")))

    with pytest.raises(CopyMismatch, match=r"events/part-.*\.parquet differs from the source's"):
        copy_lake(source, tmp_path / "a", durable=False, on_copied=recompress)

    def lose_claim(storage) -> None:
        Path(storage.root, "_claims", "churn", "4").unlink()

    with pytest.raises(CopyMismatch, match=r"_claims/churn/4 is missing"):
        copy_lake(source, tmp_path / "b", durable=False, on_copied=lose_claim)

    def add_claim(storage) -> None:
        Path(storage.root, "_claims", "churn", "9").write_text("{}")

    with pytest.raises(CopyMismatch, match=r"_claims/churn/9 is in the copy but was not copied"):
        copy_lake(source, tmp_path / "c", durable=False, on_copied=add_claim)


def test_a_file_someone_else_creates_during_the_copy_stops_it(source: Path, tmp_path: Path) -> None:
    """Two copies into one place cannot interleave: every file is created exclusively."""
    dest = tmp_path / "dest"

    def other_copy(task: str, done: int, total: int | None) -> None:
        if task == "copy files" and done == 0:
            (dest / "_claims" / "churn").mkdir(parents=True)
            (dest / "_claims" / "churn" / "1").write_text("the other copy's")

    with pytest.raises(CopyConflict, match="_claims/churn/1 was created by someone else"):
        copy_lake(source, dest, durable=False, progress=other_copy)
    assert (dest / "_claims" / "churn" / "1").read_text() == "the other copy's"  # never overwritten


def test_a_compaction_of_the_source_during_the_copy_stops_it(tmp_path: Path, registry) -> None:
    reg = registry("ana")
    for n in range(3):
        reg.register("m", f"s3://m/{n}", capture_git=False)

    def compaction(task: str, done: int, total: int | None) -> None:
        if task == "copy files" and done == 0:
            reg.compact()

    with pytest.raises(CopyConflict, match=r"left the source .* \(a compaction ran\)"):
        copy_lake(tmp_path / "lake", tmp_path / "dest", durable=False, progress=compaction)


def test_registry_copy_to(source: Path, tmp_path: Path) -> None:
    with Registry(source, actor="ana", durable=False) as reg:
        assert reg.copy_to(tmp_path / "copy").records["versions"] == 9


# -- the command --------------------------------------------------------------------


def test_the_copy_command(source: Path, tmp_path: Path) -> None:
    cli = Cli(tmp_path / "unused")
    done = cli("copy", str(source), str(tmp_path / "a"))
    assert done.exit_code == 0, done.stderr
    assert f"copied {source} to {tmp_path / 'a'}:" in done.stdout
    assert "verified: 9 versions and" in done.stdout and "left behind: 4 file(s)" in done.stdout
    as_json = cli("copy", str(source), str(tmp_path / "b"), "--json")
    assert as_json.exit_code == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    assert set(report) == {"source", "destination", "files", "bytes", "records", "left_behind", "snapshot_published", "seconds"}
    assert report["records"]["versions"] == 9 and report["files"]["config"] == 1
    refused = cli("copy", str(source), str(tmp_path / "a"))
    assert refused.exit_code == 1
    assert refused.stderr.startswith("Error: ") and len(refused.stderr.strip().splitlines()) == 1
    assert "already holds a lake" in refused.stderr
    not_lake = cli("copy", str(tmp_path / "nothing"), str(tmp_path / "c"), "--json")
    assert not_lake.exit_code == 1 and json.loads(not_lake.stderr)["kind"] == "CopySourceNotLake"
    assert not (tmp_path / "unused").exists() and not (tmp_path / "c").exists()


# -- S3 (with the S3 backend) -----------------------------------------------------------

def test_folder_to_s3_to_folder_round_trip(source: Path, tmp_path: Path, s3_lake: str) -> None:
    up = copy_lake(source, s3_lake, durable=False)
    assert up.destination == s3_lake and up.records["versions"] == 9 and up.left_behind["superseded"] == 4
    down = copy_lake(s3_lake, tmp_path / "back", durable=False)
    assert down.records == up.records and down.files == up.files
    back = {n: h for n, h in files(tmp_path / "back").items() if "/_delta_log/" not in n}
    assert back == {n: h for n, h in files(source).items() if n in back}  # byte for byte, there and back
    with Registry(source, actor="ana", durable=False) as src, Registry(s3_lake, actor="ana") as remote, \
            Registry(tmp_path / "back", actor="ana", durable=False) as back:
        assert everything(remote) == everything(src) == everything(back)
        assert remote.register("churn", "s3://models/churn/5.pkl", capture_git=False).version == 5
    with pytest.raises(CopyDestinationNotEmpty):
        copy_lake(source, s3_lake, durable=False)


def test_s3_to_s3_and_refusals_on_s3(source: Path, s3_lake: str, s3_server) -> None:
    copy_lake(source, s3_lake, durable=False)
    other = s3_server.new_url()
    report = copy_lake(s3_lake, other)
    assert report.records["versions"] == 9
    with Registry(s3_lake, actor="ana") as a, Registry(other, actor="ana") as b:
        assert everything(a) == everything(b)
    with pytest.raises(CopySourceNotLake):
        copy_lake(s3_server.new_url(), s3_server.new_url())


def test_a_linked_policy_file_is_not_followed(tmp_path: Path, registry) -> None:
    registry("ana").register("m", "s3://m/1", capture_git=False)
    (tmp_path / "policy.toml").write_bytes(POLICY)
    (tmp_path / "lake" / "catalog.toml").symlink_to(tmp_path / "policy.toml")
    report = copy_lake(tmp_path / "lake", tmp_path / "copy", durable=False)
    assert report.files["config"] == 0 and report.left_behind["other"] == 1
    assert not (tmp_path / "copy" / "catalog.toml").exists()


def test_two_copies_racing_into_one_place_never_both_succeed(tmp_path: Path, registry) -> None:
    import subprocess
    import sys

    for name in ("a", "b"):
        reg = Registry(tmp_path / name, actor="ana", durable=False)
        reg.register_many([{"model": f"{name}{n % 7}", "artifact_uri": f"s3://{name}/{n}"} for n in range(300)])
        for n in range(20):
            reg.register(f"{name}-single", f"s3://{name}/s{n}", capture_git=False)
        reg.close()
    dest = tmp_path / "dest"
    runs = [subprocess.Popen([sys.executable, "-m", "catalog", "copy", str(tmp_path / name), str(dest)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for name in ("a", "b")]
    outcomes = [(run.wait(timeout=120), run.stdout.read(), run.stderr.read()) for run in runs]  # type: ignore[union-attr]
    won = [i for i, (code, _, _) in enumerate(outcomes) if code == 0]
    assert len(won) == 1, outcomes  # the anchors go first: the loser stops at its first file
    for code, _, err in outcomes:
        if code:
            assert code == 1 and err.startswith("Error: ") and len(err.strip().splitlines()) == 1, err
    if won:  # the winner's copy is whole: the loser wrote nothing into it
        source = tmp_path / ("a", "b")[won[0]]
        with Registry(source, durable=False) as src, Registry(dest, durable=False) as dst:
            assert everything(dst) == everything(src)


def test_a_compaction_of_the_source_before_the_check_is_named_as_such(tmp_path: Path, registry) -> None:
    reg = registry("ana")
    for n in range(3):
        reg.register("m", f"s3://m/{n}", capture_git=False)
    with pytest.raises(CopyConflict, match=r"part-.*\.parquet left the versions table of .* \(a compaction ran\)"):
        copy_lake(tmp_path / "lake", tmp_path / "dest", durable=False, on_copied=lambda _: reg.compact())


def test_a_record_changed_on_the_server_is_caught(source: Path, s3_lake: str) -> None:
    """The check reads the copy back from the server (a fresh storage, not this process's mirror)."""
    import io

    import pyarrow as pa

    def tamper(storage) -> None:
        (name,) = [rel for rel, _ in storage.walk("versions") if "/compacted-" in rel]
        table = pq.read_table(io.BytesIO(storage.read_bytes(name)))
        uris = table.column("artifact_uri").to_pylist()
        uris[0] = "s3://evil/model.pkl"
        table = table.set_column(table.schema.get_field_index("artifact_uri"), "artifact_uri", pa.array(uris))
        out = io.BytesIO()
        pq.write_table(table, out)
        storage.write_atomic(name, out.getvalue())

    with pytest.raises(CopyMismatch, match=r"the versions record model='bulk', version=1 differs"):
        copy_lake(source, s3_lake, on_copied=tamper)
