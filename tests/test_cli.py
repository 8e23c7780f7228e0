"""The `catalog` command: wiring, exit codes, output formats and the issue's scenario."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from datetime import datetime, timezone

import pytest

from catalog.cli import app

from .conftest import REPO, snapshot


def ok(result):
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result.stdout


def test_the_issue_scenario_end_to_end(cli, artifact):
    for n in (1, 2, 3):
        assert ok(cli("register", "churn", str(artifact), "--metric", f"auc=0.8{n}", "--owner", "ana", "--no-git")) == f"churn v{n}\n"
    ok(cli("approve", "churn", "1", "--note", "passed offline eval", actor="bob"))
    ok(cli("approve", "churn", "2", actor="bob"))
    ok(cli("deploy", "churn", "1", "--target", "prod", actor="bob"))
    assert "churn v2 deployed on prod by bob" in ok(cli("deploy", "churn", "2", "--target", "prod", actor="bob"))
    time.sleep(0.01)
    before_rollback = datetime.now(timezone.utc)
    time.sleep(0.01)
    out = ok(cli("rollback", "churn", "--target", "prod", "--note", "p95 latency regression", actor="carol"))
    assert "rolled back to v1 (from v2)" in out
    uri = json.loads(ok(cli("show", "churn", "1", "--json")))["artifact_uri"]
    assert ok(cli("resolve", "churn@prod")) == uri + "\n"
    history = json.loads(ok(cli("history", "churn", "--json")))
    assert [(e["kind"], e["version"], e["actor"]) for e in history] == [
        ("register", 1, "ana"), ("register", 2, "ana"), ("register", 3, "ana"),
        ("approve", 1, "bob"), ("approve", 2, "bob"), ("deploy", 1, "bob"), ("deploy", 2, "bob"),
        ("rollback", 1, "carol"),
    ]
    assert history[-1]["note"] == "p95 latency regression" and history[3]["note"] == "passed offline eval"
    table = ok(cli("history", "churn"))
    assert "p95 latency regression" in table and "carol" in table
    # v2 is what the rollback moved prod away from: only a new deploy brings it back
    assert json.loads(ok(cli("candidates", "churn", "--target", "prod", "--json"))) == []
    assert "v2  rolled back from on" in ok(cli("candidates", "churn", "--target", "prod"))
    ok(cli("deprecate", "churn", "2", "--note", "regression", actor="bob"))
    assert json.loads(ok(cli("candidates", "churn", "--target", "prod", "--json"))) == []
    assert "no rollback candidates" in ok(cli("candidates", "churn", "--target", "prod"))
    then = json.loads(ok(cli("show", "churn", "--as-of", before_rollback.isoformat(), "--json")))
    assert [(d["target"], d["version"]) for d in then["deployments"]] == [("prod", 2)]
    assert "prod" in ok(cli("show", "churn", "--as-of", before_rollback.isoformat()))


def test_json_keys_are_stable(cli):
    ok(cli("register", "m", "s3://m/1", "--no-git", "--tag", "team=x"))
    ok(cli("approve", "m", "1", actor="bob"))
    ok(cli("deploy", "m", "1", "--target", "prod", actor="bob"))
    version = json.loads(ok(cli("show", "m", "1", "--json")))
    assert {"model", "version", "state", "deployed_to", "artifact_uri", "artifact_sha256", "owner", "tags",
            "code_repo", "code_version", "runtime_image", "data_refs", "parents", "metrics", "params",
            "dashboards", "created_at", "created_by"} <= set(version)
    summary = json.loads(ok(cli("list", "--json")))
    assert summary[0]["deployed_to"] == {"prod": 1} and summary[0]["latest_approved"] == 1
    assert json.loads(ok(cli("resolve", "m@prod", "--json"))) == {"ref": "m@prod", "artifact_uri": "s3://m/1"}
    lineage = json.loads(ok(cli("lineage", "m", "1", "--json")))
    assert set(lineage) == {"model", "version", "ancestors", "descendants"}
    rows = json.loads(ok(cli("sql", "select model, version from latest_approved", "--format", "json")))
    assert rows == [{"model": "m", "version": 1}]
    assert ok(cli("sql", "select model, version from latest_approved", "--format", "csv")) == "model,version\nm,1\n"


@pytest.mark.parametrize(
    "args, code, words",
    [
        (["register", "Bad/Name", "s3://m/1"], 2, "invalid model name"),
        (["register", "m", "s3://m/1", "--metric", "auc=high"], 2, "not a number"),
        (["register", "m", "s3://m/1", "--metric", "auc=nan"], 2, "not a finite number"),
        (["register", "m", "s3://m/1", "--metric", "auc=0.9", "--metric", "auc=0.8"], 2, "given twice"),
        (["register", "m", "s3://m/1", "--tag", "novalue"], 2, "KEY=VALUE"),
        (["register", "m", "./nope.pkl"], 2, "does not exist"),
        (["register", "m", "https://me:pw@host/m.pkl"], 2, "credential"),
        (["register", "../up", "s3://m/1"], 2, "invalid model name"),
        (["rollback", "seed", "--target", "prod"], 2, "--note"),
        (["rollback", "seed", "--target", "prod", "--note", ""], 2, "rollback note is required"),
        (["approve", "seed", "two"], 2, "valid integer"),
        (["resolve", "seed"], 2, "MODEL@TARGET"),
        (["deploy", "seed", "1", "--target", "latest"], 2, "reserved"),
        (["sql", "select 1", "--format", "xml"], 2, "unknown format"),
        (["show", "seed", "--as-of", "yesterday"], 2, "ISO 8601"),
        (["approve", "seed", "7"], 1, "version 7 of 'seed' is not registered"),
        (["approve", "ghost", "1"], 1, "model 'ghost' is not registered"),
        (["deploy", "seed", "1", "--target", "prod"], 1, "approve it before deploying: catalog approve seed 1"),
        (["rollback", "seed", "--target", "prod", "--note", "x"], 1, "not deployed"),
        (["resolve", "seed@latest"], 1, "no approved version"),
        (["resolve", "seed@prod"], 1, "not deployed"),
    ],
)
def test_errors_are_one_line_with_the_right_exit_code_and_write_nothing(cli, lake, args, code, words):
    ok(cli("register", "seed", "s3://m/seed", "--no-git"))
    before = snapshot(lake)
    result = cli(*args)
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert words in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert snapshot(lake) == before


def test_missing_lake_is_a_clear_refusal(cli):
    result = cli("list")
    assert result.exit_code == 1 and "no lake at" in result.stderr


@pytest.mark.parametrize(
    "query, words",
    [
        ("copy versions to '{lake}/versions/evil.parquet'", "read-only: COPY"),
        ("copy (select 1) to '/tmp/evil.csv'", "read-only: COPY"),
        ("attach '/tmp/evil.db' as evil", "read-only: ATTACH"),
        ("install httpfs", "read-only"),
        ("load httpfs", "read-only"),
        ("create table t as select 1", "read-only: CREATE"),
        ("insert into versions select * from versions", "read-only"),
        ("set enable_external_access = true", "read-only: SET"),
        ("select 1; select 2", "exactly one statement"),
        ("select * from read_csv('/etc/passwd')", "reads only the lake"),
        ("select * from read_text('/etc/hostname')", "reads only the lake"),
        ("select * from read_parquet('/tmp/../etc/passwd')", "reads only the lake"),
        ("pragma version", "read-only"),
    ],
)
def test_sql_is_read_only_and_confined_to_the_lake(cli, lake, query, words):
    ok(cli("register", "seed", "s3://m/seed", "--no-git"))
    before = snapshot(lake)
    result = cli("sql", query.format(lake=lake))
    assert result.exit_code == 1, result.stdout
    assert words in result.stderr
    assert snapshot(lake) == before
    assert not (lake / "versions" / "evil.parquet").exists()


def test_sql_reads_views_and_print_views(cli, lake):
    ok(cli("register", "seed", "s3://m/seed", "--no-git"))
    assert "seed" in ok(cli("sql", "select model from versions"))
    views = ok(cli("sql", "--print-views"))
    for view in ("versions", "events", "model_versions", "latest_approved", "deployments",
                 "rollback_candidates", "lineage", "audit_log"):
        assert f"CREATE OR REPLACE VIEW {view} AS" in views
    assert str(lake) in views
    failed = cli("sql", "select nope from versions")
    assert failed.exit_code == 1 and failed.stderr.startswith("Error: query failed")


def _commands() -> list[str]:
    return sorted(c.name or c.callback.__name__ for c in app.registered_commands)


def test_every_command_and_option_has_help_with_an_example():
    from typer.main import get_command

    group = get_command(app)
    for name in _commands():
        command = group.commands[name]
        assert "Example:" in (command.help or ""), f"{name} has no example in its help"
        for param in command.params:
            if param.name == "help":
                continue
            text = getattr(param, "help", None)
            assert text and "Example" in text, f"{name} {param.name} has no help with an example"


def test_every_command_is_in_the_readme():
    readme = (REPO / "README.md").read_text()
    for name in _commands():
        assert re.search(rf"catalog(?: --\S+ \S+)* {name}\b", readme), f"catalog {name} is not in the README"


def test_python_dash_m_and_help_run_in_a_real_process():
    out = subprocess.run([sys.executable, "-m", "catalog", "--help"], capture_output=True, text=True, check=True)
    assert "register" in out.stdout and "rollback" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "catalog", "resolve", "nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("Error: invalid reference")


def test_the_plain_resolve_fast_path_answers_like_typer(lake):
    from catalog import Registry

    reg = Registry(lake, actor="ana")
    reg.register("m", "s3://m/1", capture_git=False)
    Registry(lake, actor="bob").approve("m", 1)
    Registry(lake, actor="bob").deploy("m", 1, target="prod")
    catalog = [sys.executable, "-m", "catalog"]
    for ref, code in (("m@prod", 0), ("m@latest", 0), ("m:1", 0), ("m@staging", 1), ("m", 2), ("zz@prod", 1)):
        fast = subprocess.run([*catalog, "--lake", str(lake), "resolve", ref], capture_output=True, text=True)
        slow = subprocess.run([*catalog, f"--lake={lake}", "resolve", ref], capture_output=True, text=True)
        assert (fast.returncode, fast.stdout, fast.stderr) == (slow.returncode, slow.stdout, slow.stderr), ref
        assert fast.returncode == code, (ref, fast.stderr)
    assert subprocess.run([*catalog, "--lake", str(lake), "resolve", "m@prod"], capture_output=True, text=True).stdout == "s3://m/1\n"
    as_json = subprocess.run([*catalog, "--lake", str(lake), "resolve", "m@prod", "--json"], capture_output=True, text=True)
    assert json.loads(as_json.stdout) == {"ref": "m@prod", "artifact_uri": "s3://m/1"}


def test_resolve_and_help_import_only_what_they_need(lake):
    """Serving code pays for every import of a cold `catalog resolve`: it reads the model's
    resolve document (no DuckDB, no pyarrow, no typer), and --help loads neither DuckDB nor
    pyarrow (tests/test_serving.py has the serving path's own checks)."""
    from catalog import Registry

    reg = Registry(lake, actor="ana")
    reg.register("m", "s3://m/1", capture_git=False)
    probe = (
        "import sys, runpy; sys.argv = ['catalog'] + sys.argv[1:]\n"
        "try:\n    runpy.run_module('catalog', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'pyarrow', 'typer', 'duckdb', 'mkdocs', 'jinja2'}))"
    )
    resolved = subprocess.run([sys.executable, "-c", probe, "--lake", str(lake), "resolve", "m:1"],
                              capture_output=True, text=True, check=True)
    assert resolved.stdout.splitlines() == ["s3://m/1", "[]"]
    helped = subprocess.run([sys.executable, "-c", probe, "--help"], capture_output=True, text=True, check=True)
    assert helped.stdout.splitlines()[-1] == "['typer']"


def test_sql_answers_maps_as_objects(cli):
    ok(cli("register", "m", "s3://m/1", "--tag", "team=search", "--no-git"))
    rows = json.loads(ok(cli("sql", "select tags, created_at from versions", "--format", "json")))
    assert rows[0]["tags"] == {"team": "search"} and rows[0]["created_at"].endswith("Z")
    assert "team=search" in ok(cli("sql", "select tags from versions"))
