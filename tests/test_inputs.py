"""What people type and what they point at is checked the same way everywhere:
who someone is, what a command would do, what an artifact is, where a credential hides."""

from __future__ import annotations

import json
import os
import socket
import textwrap
import threading
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from catalog import Registry
from catalog.errors import (
    ArtifactNotRegular,
    ControlCharacter,
    GateFailed,
    IllegalTransition,
    InvalidValue,
    UnsafeURI,
)
from catalog.schema import SCHEMA_VERSION, VERSIONS

from .conftest import snapshot

# -- item 5: one person, however their name is spelled -------------------------------


@pytest.fixture
def policy(tmp_path, lake):
    """A factory: policy(toml)(actor) opens the test lake under that catalog.toml."""

    def write(text: str):
        path = tmp_path / "catalog.toml"
        path.write_text(textwrap.dedent(text))
        return lambda actor: Registry(lake, actor=actor, durable=False, config=path)

    return write


def test_two_spellings_of_one_name_do_not_make_a_quorum(policy, lake):
    as_ = policy("[policy]\napprovals = 2\n")
    as_("ana").register("churn", "s3://m/churn/1", capture_git=False)
    assert as_("bob").approve("churn", 1).state is None  # 1 of 2
    before = snapshot(lake)
    for spelling in ("Bob", "BOB", "ｂｏｂ"):
        with pytest.raises(GateFailed, match="distinct-approver"):
            as_(spelling).approve("churn", 1)
    assert snapshot(lake) == before
    assert as_("carol").approve("churn", 1).state == "approved"


def test_four_eyes_refuses_the_registrant_under_another_case(policy, lake):
    as_ = policy("[policy]\nfour_eyes = true\n")
    as_("ana").register("churn", "s3://m/churn/1", capture_git=False)
    before = snapshot(lake)
    for spelling in ("Ana", "ANA", "ａｎａ"):
        with pytest.raises(GateFailed, match="four-eyes"):
            as_(spelling).approve("churn", 1)
    assert snapshot(lake) == before


def test_approver_lists_admit_one_person_however_spelled(policy):
    as_ = policy(
        """
        [policy.models.churn]
        approvers = ["bob", "carol"]
        [policy.owners.risk]
        approvers = ["Dan"]
        [policy.targets."prod*"]
        approvers = ["carol"]
        """
    )
    as_("ana").register("churn", "s3://m/churn/1", capture_git=False)
    as_("ana").register("fraud", "s3://m/fraud/1", owner="Risk", capture_git=False)
    for spelling in ("bob", "BOB", "Bob", "ｂｏｂ"):
        assert as_(spelling).check("churn", 1).passed, spelling
    assert not as_("bobby").check("churn", 1).passed
    # the owner table applies to the owner however spelled, its list to the approver likewise
    assert not as_("bob").check("fraud", 1).passed
    assert as_("DAN").check("fraud", 1).passed
    as_("CAROL").approve("churn", 1)
    gate = as_("ops").check("churn", 1, target="prod-eu").gates[0]
    assert gate.gate == "target:prod*:approver" and gate.passed, gate
    assert as_("ops").deploy("churn", 1, target="prod-eu").evidence["gates"][0]["passed"]
    assert as_("ops").show("churn", 1).deployed_to == ["prod-eu"]
    # the name is stored as typed
    assert [e.actor for e in as_("ops").history("churn") if e.kind == "approve"] == ["CAROL"]


@pytest.mark.parametrize("name", ["bob\n", "bob\x9b31m", "bo\u200bb", "bob\u202egnp", "bob\u2028"], ids=repr)
def test_an_actor_with_a_control_or_invisible_character_is_refused_with_exit_2(cli, lake, name):
    assert cli("register", "churn", "s3://m/churn/1", "--no-git").exit_code == 0
    before = snapshot(lake)
    with pytest.raises(InvalidValue, match="invalid actor"):
        Registry(lake, actor=name, durable=False)
    by_option = cli.runner.invoke(cli_app(), ["--lake", str(lake), "--actor", name, "approve", "churn", "1"])
    by_env = cli.runner.invoke(cli_app(), ["--lake", str(lake), "approve", "churn", "1"], env={"CATALOG_ACTOR": name})
    for result in (by_option, by_env):
        assert result.exit_code == 2, result.output
        assert "invalid actor" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert snapshot(lake) == before


def cli_app():
    from catalog.cli import app

    return app


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


# -- item 9: credentials anywhere an address fits; control characters ---------------

CREDENTIALS = [
    ("params", {"db": "postgres://u:pw@db.example.com/db"}),
    ("params", {"export": "https://h.example.com/x?token=abc"}),
    ("tags", {"source": "https://ghp_abc123@github.com/acme/churn"}),
    ("runtime_image", "user:pass@registry.example.com/img:1"),
    ("description", "reads from postgres://etl:s3cret@db.example.com/features nightly"),
]


@pytest.mark.parametrize(("field", "value"), CREDENTIALS, ids=lambda x: repr(x)[:40])
def test_a_credential_outside_the_uri_fields_is_refused(registry, lake, field, value):
    reg = registry("ana")
    reg.register("seed", "s3://m/seed", capture_git=False)
    before = snapshot(lake)
    with pytest.raises(UnsafeURI) as refused:
        reg.register("m", "s3://m/x", capture_git=False, **{field: value})
    assert "pw" not in str(refused.value) and "s3cret" not in str(refused.value) and "abc" not in str(refused.value)
    with pytest.raises(UnsafeURI):
        reg.register_many([{"model": "m", "artifact_uri": "s3://m/x", field: value}])
    assert snapshot(lake) == before
    # what only looks like one stays accepted: an image digest, an '@' that is no user info
    kept = reg.register(
        "m", "s3://m/x", capture_git=False,
        runtime_image="python:3.11@sha256:" + "ab" * 32,
        params={"table": "bq://project.table@snapshot-12", "who": "ana@example.com"},
        tags={"q": "why?"}, description="mail ana@example.com: https://wiki.example.com/churn?page=2",
    )
    assert kept.params["table"] == "bq://project.table@snapshot-12"


def test_the_cli_refuses_a_credential_in_a_param_or_an_image_with_exit_2(cli, lake):
    assert cli("register", "seed", "s3://m/seed", "--no-git").exit_code == 0
    before = snapshot(lake)
    for option in (["--param", "db=postgres://u:pw@h/db"], ["--image", "user:pass@registry.example.com/img:1"]):
        result = cli("register", "m", "s3://m/x", "--no-git", *option)
        assert result.exit_code == 2 and "credential" in result.stderr, result.output
        assert "pw@" not in result.stderr and "pass@" not in result.stderr
    assert snapshot(lake) == before


def test_control_characters_are_refused_in_owners_and_text_but_line_breaks_stay_in_descriptions(registry, lake):
    reg = registry("ana")
    reg.register("seed", "s3://m/seed", capture_git=False)
    before = snapshot(lake)
    for fields in ({"owner": "ana\x1b[31m"}, {"owner": "a\u200bna"}, {"description": "a\x1b[2Jb"},
                   {"params": {"k": "v\x07"}}, {"description": "c1 \x9b31m"}):
        with pytest.raises(ControlCharacter):
            reg.register("m", "s3://m/x", capture_git=False, **fields)
        with pytest.raises(ControlCharacter):
            reg.register_many([{"model": "m", "artifact_uri": "s3://m/x", **fields}])
    with pytest.raises(ControlCharacter):
        reg.approve("seed", 1, note="ok\x1b]0;pwned\x07")
    assert snapshot(lake) == before
    v = reg.register("m", "s3://m/x", description="line one\nline two\twith a tab", capture_git=False)
    assert v.description == "line one\nline two\twith a tab"


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
