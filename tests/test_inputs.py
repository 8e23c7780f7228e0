"""What people type and what they point at is checked the same way everywhere:
who someone is, what a command would do, what an artifact is, where a credential hides."""

from __future__ import annotations

import json
import os
import socket
import threading
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from catalog import Registry
from catalog.errors import (
    ArtifactNotRegular,
    IllegalTransition,
)
from catalog.schema import SCHEMA_VERSION, VERSIONS

from .conftest import snapshot

# -- item 7: check runs what the command runs ---------------------------------------


def _in_state(registry, state: str) -> None:
    ana, bob = registry("ana"), registry("bob")
    ana.register("churn", "s3://m/churn/1", capture_git=False)
    if state == "rejected":
        bob.reject("churn", 1, note="leaks the label")
    else:
        bob.approve("churn", 1)
    if state == "deprecated":
        bob.deprecate("churn", 1, note="retired")


@pytest.mark.parametrize("state", ["rejected", "approved", "deprecated"])
def test_check_fails_with_the_reason_approve_gives_on_a_version_past_candidate(registry, lake, cli, state):
    _in_state(registry, state)
    before = snapshot(lake)
    with pytest.raises(IllegalTransition) as refused:
        registry("carol").approve("churn", 1)
    report = registry("carol").check("churn", 1)
    assert not report.passed
    assert [g.detail for g in report.gates if not g.passed] == [str(refused.value)]
    result = cli("check", "churn", "1", actor="carol")
    assert result.exit_code == 1, result.output
    assert "FAILS" in result.stdout and str(refused.value) in result.stdout
    assert snapshot(lake) == before


def test_check_target_fails_like_deploy_when_the_target_already_runs_the_version(registry, lake, cli):
    _in_state(registry, "approved")
    registry("ops").deploy("churn", 1, target="prod")
    before = snapshot(lake)
    with pytest.raises(IllegalTransition, match="already runs") as refused:
        registry("ops").deploy("churn", 1, target="prod")
    report = registry("ops").check("churn", 1, target="prod")
    assert not report.passed
    assert [g.detail for g in report.gates if not g.passed] == [str(refused.value)]
    result = cli("check", "churn", "1", "--target", "prod", actor="ops")
    assert result.exit_code == 1 and str(refused.value) in result.stdout, result.output
    assert registry("ops").check("churn", 1, target="staging").passed
    assert snapshot(lake) == before


# -- item 8: only regular files and folders of them are artifacts --------------------


def _within(seconds: float, call, unblock: Path | None = None):
    """``call()``'s result or exception, or AssertionError when it is still running after
    ``seconds`` (a FIFO opened for reading waits for a writer: ``unblock`` is then opened
    for writing, which lets the stuck reader finish)."""
    out: dict[str, object] = {}

    def run() -> None:
        try:
            out["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            out["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        if unblock is not None:
            os.close(os.open(unblock, os.O_WRONLY | os.O_NONBLOCK))
            worker.join(10)
        raise AssertionError(f"still running after {seconds} s: it opened a FIFO")
    if "error" in out:
        raise out["error"]  # type: ignore[misc]
    return out.get("value")


@pytest.fixture
def unix_socket(tmp_path):
    path = tmp_path / "s.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    yield path
    server.close()


@pytest.mark.parametrize("kind", ["fifo", "device", "socket"])
def test_a_fifo_device_or_socket_is_refused_as_an_artifact_without_being_opened(registry, lake, cli, tmp_path, kind, request):
    registry("ana").register("seed", "s3://m/seed", capture_git=False)
    if kind == "fifo":
        path = tmp_path / "pipe"
        os.mkfifo(path)
        words = "named pipe"
    elif kind == "device":
        path, words = Path(os.devnull), "character device"
    else:
        path, words = request.getfixturevalue("unix_socket"), "socket"
    before = snapshot(lake)
    unblock = path if kind == "fifo" else None
    with pytest.raises(ArtifactNotRegular, match=words) as refused:
        _within(5, lambda: registry("ana").register("m", str(path), capture_git=False), unblock)
    assert refused.value.path == str(path)
    with pytest.raises(ArtifactNotRegular, match=words):
        _within(5, lambda: registry("ana").register_many([{"model": "m", "artifact_uri": str(path)}]), unblock)
    result = _within(5, lambda: cli("register", "m", str(path), "--no-git"), unblock)
    assert result.exit_code == 2 and str(path) in result.stderr and words in result.stderr, result.output
    assert snapshot(lake) == before


@pytest.mark.parametrize("inside", ["symlink", "fifo", "nothing", "only a symlink"])
def test_a_folder_holding_a_link_a_fifo_or_no_file_is_refused(registry, lake, tmp_path, inside):
    registry("ana").register("seed", "s3://m/seed", capture_git=False)
    folder = tmp_path / "model"
    (folder / "weights").mkdir(parents=True)
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"anything")
    if inside in ("symlink", "fifo"):
        (folder / "config.json").write_text("{}")
    if inside in ("symlink", "only a symlink"):
        (folder / "weights" / "w.bin").symlink_to(outside)
    if inside == "fifo":
        os.mkfifo(folder / "weights" / "w.bin")
    before = snapshot(lake)
    unblock = folder / "weights" / "w.bin" if inside == "fifo" else None
    with pytest.raises(ArtifactNotRegular) as refused:
        _within(5, lambda: registry("ana").register("m", str(folder), capture_git=False), unblock)
    if inside == "nothing":
        assert refused.value.path == str(folder) and "no files" in str(refused.value)
    else:
        assert refused.value.path == str(folder / "weights" / "w.bin")
        assert ("symbolic link" if "symlink" in inside else "named pipe") in str(refused.value)
    assert snapshot(lake) == before


def test_a_symlink_given_as_the_artifact_records_the_file_it_points_to(registry, artifact, tmp_path):
    link = tmp_path / "current.pkl"
    link.symlink_to(artifact)
    v = registry("ana").register("m", str(link), capture_git=False)
    assert v.artifact_uri == str(artifact.resolve())
    assert v.artifact_bytes == 2048
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "w.bin").write_bytes(b"w")
    (folder / "a.json").write_text("{}")
    assert registry("ana").register("m", str(folder), capture_git=False).artifact_bytes == 3


def test_doctor_reports_an_artifact_that_is_no_longer_a_regular_file(registry, cli, artifact, tmp_path):
    reg = registry("ana")
    reg.register("m", str(artifact), capture_git=False)
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "w.bin").write_bytes(b"weights")
    reg.register("f", str(folder), capture_git=False)
    artifact.unlink()
    os.mkfifo(artifact)
    (folder / "w.bin").unlink()
    (folder / "w.bin").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "elsewhere").write_bytes(b"weights")  # the same bytes, through a link
    report = _within(10, lambda: reg.doctor(verify_artifacts=True), artifact)
    errors = {f.path: f.problem for f in report.findings if f.severity == "error"}
    assert "named pipe" in errors.get("m:1", ""), report.findings
    assert "symbolic link" in errors.get("f:1", ""), report.findings
    result = _within(10, lambda: cli("doctor", "--verify-artifacts"), artifact)
    assert result.exit_code == 1 and "named pipe" in result.stdout, result.output


# -- item 9: lake text reaches a terminal escaped -------------------------------------


def _forge(lake: Path, **fields) -> None:
    """A versions row written straight into the lake, past every check (as a foreign writer could)."""
    row = {f.name: None for f in VERSIONS}
    row.update(schema_version=SCHEMA_VERSION, model="forged", version=1, artifact_uri="s3://m/forged",
               created_at=datetime(2026, 11, 20, tzinfo=timezone.utc), created_by="mallory",
               tags=[], metrics=[], params=[], dashboards=[], data_refs=[], parents=[])
    row.update(fields)
    pq.write_table(pa.Table.from_pylist([row], schema=VERSIONS),
                   lake / "versions" / "part-20261120T000000000000Z-00000000000000ee.parquet")


def test_control_characters_in_the_lake_reach_a_terminal_escaped(registry, lake, cli):
    registry("ana").register("seed", "s3://m/seed", capture_git=False)
    _forge(lake, description="evil\x1b[31mred\x07", owner="mal\x1b]0;x\x07", tags=[("k", "v\x1b[2J")])
    outputs = {
        "sql": cli("sql", "select model, owner, description, tags from versions where model = 'forged'"),
        "sql csv": cli("sql", "select description from versions where model = 'forged'", "--format", "csv"),
        "show version": cli("show", "forged", "1"),
        "show model": cli("show", "forged"),
    }
    for what, result in outputs.items():
        assert result.exit_code == 0, (what, result.output)
        assert "\x1b" not in result.stdout and "\x07" not in result.stdout, what
        assert "evil\\x1b[31mred\\x07" in result.stdout, (what, result.stdout)
        if what != "sql csv":
            assert "mal\\x1b]0;x\\x07" in result.stdout, (what, result.stdout)
    exact = cli("sql", "select description from versions where model = 'forged'", "--format", "json")
    assert json.loads(exact.stdout)[0]["description"] == "evil\x1b[31mred\x07"
    assert json.loads(cli("show", "forged", "1", "--json").stdout)["owner"] == "mal\x1b]0;x\x07"
