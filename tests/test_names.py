"""Names as MLflow accepts them (``RM1``, ``original name``, any script, '@'): stored and
returned exactly, and encoded wherever a name becomes a file or object path
(``validate.path_segment``). Each lake test runs on a local folder and on the S3 test server."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog import Registry, validate
from catalog.doctor import doctor
from catalog.errors import GateFailed, InvalidName, InvalidReference
from catalog.lake import open_storage
from catalog.lake.rules import _name_rule, _target_rule

from .conftest import snapshot

LONGEST = "L" + "x" * (validate.NAME_BYTES - 1)  # not a strict name: encoded, at the longest segment
LONGEST_WIDE = "é" * (validate.NAME_BYTES // 2)  # 150 bytes of UTF-8 in 75 characters
NAMES = ["RM1", "rm1", "original name", "모델-χ", "a@b", "CON", LONGEST, LONGEST_WIDE]
TARGET = "Prod-EU"  # an MLflow alias: capitals are fine


@pytest.fixture(params=["local", "s3"])
def backend(request, tmp_path) -> str:
    """Where the lake lives: a local folder, or a fresh s3:// prefix on the test server."""
    if request.param == "s3":
        return str(request.getfixturevalue("s3_lake"))
    return str(tmp_path / "lake")


def _paths(location: str) -> list[str]:
    """Every lake-relative path of the lake at ``location``, read through its Storage."""
    storage = open_storage(location)
    return [rel for folder in ("versions", "events", "_claims", "_decisions") for rel, _ in storage.walk(folder)]


def _populated(backend: str) -> Registry:
    ana, bob = Registry(backend, actor="ana", durable=False), Registry(backend, actor="bob", durable=False)
    for name in NAMES:
        ana.register(name, f"s3://models/{len(name)}/1.pkl", owner="ana", capture_git=False)
    ana.register("RM1", "s3://models/RM1/2.pkl", capture_git=False)
    for name in NAMES:
        bob.approve(name, 1, note="ok")
        bob.deploy(name, 1, target=TARGET)
    bob.approve("RM1", 2)
    return ana


# -- the API, on a folder and on a bucket ---------------------------------------------


def test_each_name_is_a_model_of_its_own_kept_exactly_through_every_command(backend):
    reg = _populated(backend)
    assert sorted(m.model for m in reg.list()) == sorted(NAMES)
    assert [v.version for v in reg.show("RM1").versions] == [1, 2]  # RM1 and rm1 are two models
    assert [v.version for v in reg.show("rm1").versions] == [1]
    for name in NAMES:
        info = reg.show(name)
        assert info.model == name and info.latest_approved == (2 if name == "RM1" else 1)
        assert [d.target for d in info.deployments] == [TARGET]
        assert reg.show(name, 1).model == name
        assert {e.model for e in reg.history(name)} == {name}
        uri = f"s3://models/{len(name)}/1.pkl"
        assert reg.resolve(f"{name}@{TARGET}") == uri
        assert reg.resolve(f"{name}:1") == uri
    assert reg.resolve("RM1@latest") == "s3://models/RM1/2.pkl"
    assert reg.resolve("a@b@latest") == reg.resolve("a@b:1")  # parsed from the right
    rows = reg.sql("select model, count(*) as n from versions group by model order by model").rows
    assert {r["model"]: r["n"] for r in rows} == {**{n: 1 for n in NAMES}, "RM1": 2}


def test_no_path_holds_a_raw_name_and_strict_names_keep_theirs(backend):
    reg = _populated(backend)
    reg.register("churn", "s3://models/churn/1.pkl", capture_git=False)
    paths = _paths(backend)
    parts = {part for rel in paths for part in rel.split("/")}
    for name in NAMES:
        segment = validate.path_segment(name)
        assert segment.isascii() and segment == segment.lower() and len(segment) <= 241
        assert f"_claims/{segment}/1" in paths and f"_decisions/{segment}/1" in paths
        if name != "rm1":  # a strict name is its own segment
            assert segment.startswith("~") and name not in parts
    assert "_claims/churn/1" in paths  # an existing lake's paths stay as they were
    assert len(validate.path_segment(LONGEST)) == len(validate.path_segment(LONGEST_WIDE)) == 241


def test_the_longest_name_and_one_byte_more(backend):
    reg = Registry(backend, actor="ana", durable=False)
    for name in (LONGEST, LONGEST_WIDE):
        assert reg.register(name, "s3://m/1", capture_git=False).model == name
        with pytest.raises(InvalidName, match="bytes long in UTF-8; the limit is 150"):
            reg.register(name + "x", "s3://m/1", capture_git=False)
    assert sorted(m.model for m in reg.list()) == sorted([LONGEST, LONGEST_WIDE])


def test_doctor_finds_such_a_lake_sound_and_reports_folders_that_are_no_models(backend):
    reg = _populated(backend)
    assert doctor(reg._lake).ok
    storage = reg._lake.storage
    slash = "~" + base64.b32encode(b"a/b").decode().rstrip("=").lower()  # a name with a path in it
    assert validate.path_segment("a@b") != slash
    foreign = ["_claims/~zzzz-not-base32", "_claims/Bad Name", f"_claims/{slash}", "_decisions/~kjgtc0", "_decisions/RM1"]
    for folder in foreign:
        assert storage.create_exclusive(f"{folder}/1", b'{"by": "mallory", "last": 9}')
    report = doctor(reg._lake)
    assert sorted((f.severity, f.path) for f in report.findings) == sorted(("warning", f) for f in foreign)
    assert all("is not a model's" in f.problem for f in report.findings)
    # never read as a model: the next version of RM1 is still 3, and nothing else changed
    assert reg.register("RM1", "s3://m/3", capture_git=False).version == 3


def test_repair_writes_the_claim_and_the_event_of_an_encoded_name(backend):
    from catalog.lake.lake import _decision_body
    from catalog.lifecycle import event_row

    reg = _populated(backend)
    storage = reg._lake.storage
    segment = validate.path_segment("RM1")
    storage.remove(f"_claims/{segment}/2")
    report = doctor(reg._lake)
    assert [(f.severity, f.path) for f in report.problems] == [("error", f"_claims/{segment}")]
    assert "'RM1' has records up to v2" in report.problems[0].problem
    doctor(reg._lake, repair=True)
    assert storage.exists(f"_claims/{segment}/2")
    assert reg.register("RM1", "s3://m/3", capture_git=False).version == 3
    boss = Registry(backend, actor="bob", durable=False)
    boss.approve("RM1", 3)
    row = event_row(boss._s, "RM1", 3, "deploy", None, target="canary", evidence={"from_version": None})
    n = max(int(n) for n in storage.listdir(f"_decisions/{segment}")) + 1
    assert storage.create_exclusive(f"_decisions/{segment}/{n}", _decision_body(row))  # its decider died here
    report = doctor(reg._lake)
    assert [(f.severity, f.path) for f in report.findings] == [("warning", f"_decisions/{segment}/{n}")]
    doctor(reg._lake, repair=True)
    assert doctor(reg._lake).ok
    assert Registry(backend, actor="c", durable=False).resolve("RM1@canary") == "s3://m/3"


def test_copy_keeps_names_paths_and_numbering(backend, tmp_path):
    reg = _populated(backend)
    reg._lake.storage.create_exclusive("_claims/Bad Name/1", b"{}")  # no model's: left behind
    report = reg.copy_to(tmp_path / "copy")
    assert report.left_behind["other"] == 1
    copy = Registry(tmp_path / "copy", actor="eve", durable=False)
    assert sorted(m.model for m in copy.list()) == sorted(NAMES)
    assert sorted(p for p in _paths(str(tmp_path / "copy")) if p.startswith("_")) == sorted(
        p for p in _paths(backend) if p.startswith("_") and not p.startswith("_claims/Bad Name"))
    assert copy.register("original name", "s3://m/2", capture_git=False).version == 2
    assert copy.resolve(f"모델-χ@{TARGET}") == f"s3://models/{len('모델-χ')}/1.pkl"


# -- the CLI (the typer app and the fast `catalog resolve` path agree) -----------------


def test_the_cli_takes_such_names_quoted(cli, lake):
    for name in ("original name", "RM1", "rm1", "a@b"):
        result = cli("register", name, "s3://m/1", "--no-git")
        assert result.exit_code == 0 and result.output.strip() == f"{name} v1", result.output
        assert cli("approve", name, "1", actor="bob").exit_code == 0
        assert cli("deploy", name, "1", "--target", TARGET, actor="bob").exit_code == 0
        assert cli("resolve", f"{name}@{TARGET}").output.strip() == "s3://m/1"
        assert json.loads(cli("show", name, "--json").output)["model"] == name
        assert {e["model"] for e in json.loads(cli("history", name, "--json").output)} == {name}
    # a name starting with '-' comes after '--', as any such argument
    assert cli("register", "--no-git", "--", "-dash", "s3://m/1").output.strip() == "-dash v1"
    out = cli("sql", "select distinct model from versions order by model", "--format", "json").output
    assert [r["model"] for r in json.loads(out)] == sorted(["original name", "RM1", "rm1", "a@b", "-dash"])


def test_the_fast_resolve_path_parses_refs_as_the_api_does(cli, lake, tmp_path):
    if not isinstance(lake, Path):
        pytest.skip("runs `catalog` in a subprocess against a folder")
    for name in ("a@b", "original name", "모델-χ"):
        assert cli("register", name, f"s3://m/{len(name)}", "--no-git").exit_code == 0
        assert cli("approve", name, "1", actor="bob").exit_code == 0
        assert cli("deploy", name, "1", "--target", TARGET, actor="bob").exit_code == 0
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    for ref in ("a@b@Prod-EU", "a@b:1", "a@b@latest", "original name@Prod-EU", "모델-χ:1"):
        fast = subprocess.run([sys.executable, "-m", "catalog", "--lake", str(lake), "resolve", ref],
                              capture_output=True, text=True, env=env, cwd=tmp_path)
        assert fast.returncode == 0, fast.stderr
        assert fast.stdout == cli("resolve", ref).output
    bad = subprocess.run([sys.executable, "-m", "catalog", "--lake", str(lake), "resolve", "a:b@Prod-EU"],
                         capture_output=True, text=True, env=env, cwd=tmp_path)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert bad.stderr == cli("resolve", "a:b@Prod-EU").output


@pytest.mark.parametrize("name", ["a/b", "a:b", "..x", ".", "  ", "a\x1bb", "a\u200bb", "x" * 151, ""], ids=repr)
def test_a_refused_name_is_one_line_exit_2_and_writes_nothing(cli, lake, name):
    assert cli("register", "seed", "s3://m/1", "--no-git").exit_code == 0
    before = snapshot(lake) if isinstance(lake, Path) else None
    for args in (["register", "--no-git", "--", name, "s3://m/1"], ["show", "--", name],
                 ["resolve", "--", f"{name}@prod"], ["deploy", "seed", "1", "--target", name]):
        result = cli(*args)
        assert result.exit_code == 2, (args, result.output)
        assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    if before is not None:
        assert snapshot(lake) == before


@pytest.mark.parametrize("target", ["latest", "Latest", "v2", "V12", "prod eu", "prod.EU", "a@b", "x" * 151])
def test_a_refused_target_is_exit_2(cli, lake, target):
    assert cli("register", "seed", "s3://m/1", "--no-git").exit_code == 0
    assert cli("approve", "seed", "1", actor="bob").exit_code == 0
    result = cli("deploy", "seed", "1", "--target", target, actor="bob")
    assert result.exit_code == 2 and "invalid target name" in result.output


def test_targets_take_mlflow_aliases_and_the_old_names(registry):
    reg = registry("ana")
    reg.register("m", "s3://m/1", capture_git=False)
    registry("bob").approve("m", 1)
    for target in ("Prod-EU", "prod.eu", "_blue", "ステージ", "v2x", "con"):
        registry("bob").deploy("m", 1, target=target)
        assert reg.resolve(f"m@{target}") == "s3://m/1"


def test_policy_tables_take_such_names(registry, lake):
    if not isinstance(lake, Path):
        pytest.skip("writes catalog.toml beside the lake folder")
    lake.mkdir(parents=True, exist_ok=True)
    (lake / "catalog.toml").write_text('[policy.models."original name"]\nrequired = ["owner"]\n')
    reg = registry("ana")
    reg.register("original name", "s3://m/1", capture_git=False)
    reg.register("Original Name", "s3://m/1", capture_git=False)
    with pytest.raises(GateFailed):
        registry("bob").approve("original name", 1)
    registry("bob").approve("Original Name", 1)  # another model: the policy is not its


def test_refs_parse_from_the_right():
    from catalog.resolving import parse_ref

    assert parse_ref("a@b@prod") == ("a@b", "target", "prod")
    assert parse_ref("a@b@latest") == ("a@b", "latest", "latest")
    assert parse_ref("a@b:3") == ("a@b", "pin", "3")
    assert parse_ref("original name@Prod-EU") == ("original name", "target", "Prod-EU")
    for bad in ("a:b@prod", "a@b", "x@Latest", "@prod", "m:", "m:0", "m:٣"):
        if bad == "a@b":
            assert parse_ref(bad) == ("a", "target", "b")
            continue
        with pytest.raises(InvalidReference):
            parse_ref(bad)


# -- the encoding and the row rules, as properties --------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=80))
def test_a_segment_stands_for_exactly_one_name(text):
    try:
        validate.name(text)
    except InvalidName:
        with pytest.raises(InvalidName):
            validate.path_segment(text)
        return
    segment = validate.path_segment(text)
    assert validate.from_segment(segment) == text
    assert segment.isascii() and segment == segment.lower() and segment not in (".", "..")
    assert "/" not in segment and "\\" not in segment and len(segment.encode()) <= 255
    assert segment == text or segment.startswith("~")


@pytest.mark.parametrize("segment", ["~zzzz-not-base32", "~", "~a", "~MFAGE", "~mfagf", "~mfage=", "Bad Name",
                                     "~mnxw4x", "~nzwq", "~mexwe", ".", "..", "con"])
def test_from_segment_refuses_what_path_segment_never_makes(segment):
    with pytest.raises(InvalidName):
        validate.from_segment(segment)


_SQL = duckdb.connect()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=12) | st.sampled_from(["RM1", "original name", ".", "..x", "a:b", "latest", "LATEST", "v3",
                                                "prod.eu", "ステージ", "\u3000", "a\u2028", "x" * 151]))
def test_the_row_rules_read_every_name_and_target_validate_accepts(text):
    in_sql = _SQL.execute(f"select {_name_rule('$1')}, {_target_rule('$1')}", [text]).fetchone()
    assert in_sql is not None
    for check, sql_ok in ((validate.name, in_sql[0]), (validate.target, in_sql[1])):
        try:
            check(text)
        except InvalidName:
            continue
        assert sql_ok, (check.__name__, text)  # a row written with it is read


def test_the_row_rules_drop_what_validate_refuses():
    con = _SQL
    for text in ["a/b", "../x", "..", ".", "a:b", "", " ", "\u3000", "a\x1b", "a\u200b", "x" * 151]:
        assert not con.execute(f"select {_name_rule('$1')}", [text]).fetchone()[0], text
    for text in ["latest", "LaTeSt", "prod eu", "Prod.eu", "a/b", "x" * 151]:
        assert not con.execute(f"select {_target_rule('$1')}", [text]).fetchone()[0], text


def test_a_redaction_scrubs_the_decisions_of_an_encoded_name(backend):
    reg = Registry(backend, actor="ana", durable=False)
    reg.register("original name", "s3://m/1", capture_git=False)
    Registry(backend, actor="bob", durable=False).approve("original name", 1, note="call 555-0100 for the key")
    reg.redact("original name", 1, fields=["note"], reason="a phone number in a note")
    storage = reg._lake.storage
    folder = f"_decisions/{validate.path_segment('original name')}"
    bodies = [storage.read_bytes(f"{folder}/{n}") for n in storage.listdir(folder)]
    assert bodies and not any(b"555-0100" in body for body in bodies)
    assert [e.note for e in reg.history("original name") if e.kind == "approve"] == [None]
