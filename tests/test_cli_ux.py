"""The CLI people expect: tables on a terminal, plain text down a pipe, progress on
stderr for long work, usage errors on one line, errors as JSON under --json."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import catalog.progress
from catalog import Registry
from catalog.cli import app
from catalog.schema import SCHEMA_VERSION, VERSIONS

CATALOG = [sys.executable, "-m", "catalog"]
BOX = "┃━│─"


def run_on_pty(args: list[str], *, stdout_tty: bool = True, stderr_tty: bool = False,
               env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run ``catalog ARGS`` with stdout and/or stderr on a pseudo-terminal; returns (code, stdout, stderr)."""
    leader, follower = pty.openpty()
    piped = subprocess.PIPE
    process = subprocess.Popen(
        [*CATALOG, *args], stdin=subprocess.DEVNULL,
        stdout=follower if stdout_tty else piped, stderr=follower if stderr_tty else piped,
        env={**os.environ, "COLUMNS": "200", "LINES": "50", "TERM": "xterm-256color", **(env or {})},
    )
    os.close(follower)
    seen = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the follower side closed: the process is done with the terminal
                break
            if not chunk:
                break
            seen += chunk
        elif process.poll() is not None:
            break
    piped_out, piped_err = process.communicate(timeout=60)
    os.close(leader)
    text = seen.decode("utf-8", "replace")
    out = text if stdout_tty else piped_out.decode()
    err = text if stderr_tty else piped_err.decode()
    return process.returncode, out, err


@pytest.fixture
def seeded(lake: Path) -> Path:
    reg = Registry(lake, actor="ana", durable=False)
    reg.register("churn", "s3://m/churn/1", owner="[bold]ana[/] [link=https://evil.example]x[/link]",
                 capture_git=False)
    reg.close()
    # A control character cannot be registered; a foreign writer can still put one in the lake.
    row = {f.name: None for f in VERSIONS}
    row.update(schema_version=SCHEMA_VERSION, model="forged", version=1, artifact_uri="s3://m/forged",
               description="\x1b[31mred", created_at=datetime(2026, 11, 20, tzinfo=timezone.utc),
               created_by="mallory", tags=[], metrics=[], params=[], dashboards=[], data_refs=[], parents=[])
    pq.write_table(pa.Table.from_pylist([row], schema=VERSIONS),
                   lake / "versions" / "part-20261120T000000000000Z-00000000000000ee.parquet")
    return lake


# -- tables ----------------------------------------------------------------------


def test_a_terminal_gets_a_rich_table_and_a_pipe_the_plain_one(seeded: Path) -> None:
    code, out, _ = run_on_pty(["--lake", str(seeded), "list"])
    assert code == 0, out
    assert any(c in out for c in BOX) and "MODEL" in out and "churn" in out
    piped = subprocess.run([*CATALOG, "--lake", str(seeded), "list"], capture_output=True, text=True, check=True)
    assert re.match(r"MODEL +OWNER ", piped.stdout) and not any(c in piped.stdout for c in BOX)
    assert "\x1b" not in piped.stdout


def test_json_is_the_same_on_a_terminal_and_down_a_pipe(seeded: Path) -> None:
    _, on_tty, _ = run_on_pty(["--lake", str(seeded), "list", "--json"])
    piped = subprocess.run([*CATALOG, "--lake", str(seeded), "list", "--json"], capture_output=True, text=True, check=True)
    assert on_tty.replace("\r\n", "\n") == piped.stdout
    assert json.loads(piped.stdout)[0]["model"] == "churn"


def test_registry_text_in_a_terminal_table_is_literal(seeded: Path) -> None:
    _, out, _ = run_on_pty(["--lake", str(seeded), "sql", "select owner, description from versions"])
    assert "[bold]ana[/] [link=https://evil.example]x[/link]" in out  # shown, not interpreted as markup
    assert "\x1b]8;" not in out  # no hyperlink escape was emitted
    assert "\x1b[31mred" not in out  # the control character in the cell never reaches the terminal raw


# -- progress --------------------------------------------------------------------


def test_hashing_reports_increasing_progress_through_the_api(lake: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(catalog.progress, "INTERVAL", 0.0)  # every chunk, so the test sees them all
    big = tmp_path / "model.bin"
    big.write_bytes(os.urandom(1 << 20) * 5 + b"tail")
    calls: list[tuple[str, int, int | None]] = []
    Registry(lake, actor="ana", durable=False, progress=lambda *call: calls.append(call)).register(
        "m", str(big), capture_git=False)
    size = big.stat().st_size
    assert {task for task, _, _ in calls} == {"hash model.bin"} and {total for _, _, total in calls} == {size}
    done = [d for _, d, _ in calls]
    assert done[0] == 0 and done[-1] == size and len(done) >= 6 and done == sorted(done)


def test_bulk_loads_compaction_doctor_and_build_report_progress(lake: Path, tmp_path: Path, artifact: Path) -> None:
    from catalog.site import build_site

    calls: list[tuple[str, int, int | None]] = []
    reg = Registry(lake, actor="ana", durable=False, progress=lambda *call: calls.append(call))
    reg.register_many([{"model": "m", "artifact_uri": str(artifact)}, {"model": "m", "artifact_uri": "s3://m/2"}])
    assert calls[-1] == ("register", 2, 2) and calls[0][0] == "register"
    calls.clear()
    reg.compact()
    assert calls == [("compact versions", 0, 2), ("compact events", 1, 2), ("compact", 2, 2)]
    calls.clear()
    reg.doctor(verify_artifacts=True)
    assert ("verify artifacts", 0, 2) in calls and calls[-1] == ("verify artifacts", 2, 2)
    assert any(task == "hash model.pkl" for task, _, _ in calls)
    calls.clear()
    build_site(reg, tmp_path / "site")
    assert [(d, t) for _, d, t in calls] == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert calls[0][0] == "build reading the lake" and calls[2][0] == "build running MkDocs"


def test_a_long_register_shows_progress_on_a_terminal_and_none_down_a_pipe(lake: Path, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    with open(big, "wb") as fh:  # sparse: quick to make, a few hundred milliseconds to hash
        fh.truncate(800 << 20)
    code, out, err = run_on_pty(["--lake", str(lake), "register", "m", str(big), "--no-git"],
                                stdout_tty=False, stderr_tty=True)
    assert code == 0 and out == "m v1\n", (out, err)
    assert "hash big.bin" in err and "%" in err
    piped = subprocess.run([*CATALOG, "--lake", str(lake), "register", "m", str(big), "--no-git"],
                           capture_output=True, text=True)
    assert (piped.returncode, piped.stdout, piped.stderr) == (0, "m v2\n", "")


def test_the_progress_bar_keeps_markup_and_control_characters_literal() -> None:
    from catalog.terminal import ProgressBar

    bar = ProgressBar()
    bar("hash [bold]x\x1b[31m.bin", 1, 4)
    (task,) = bar._bar.tasks
    assert task.description == "hash [bold]x\\x1b[31m.bin"
    bar("hash done", 4, 4)
    assert bar._bar is None  # the display stops once no task is left


# -- usage errors ----------------------------------------------------------------

USAGE = [
    (["deploy", "churn", "1"], "Error: missing option '--target' / '-t' (see: catalog deploy --help)"),
    (["approve", "churn", "two"], "Error: invalid value for 'VERSION': "),
    (["lst"], "Error: no such command 'lst'. Did you mean 'list'? (see: catalog --help)"),
    (["list", "--bogus"], "Error: no such option: --bogus (see: catalog list --help)"),
]


@pytest.mark.parametrize("args, line", USAGE)
def test_usage_errors_are_one_line_exit_2_in_process(lake: Path, args: list[str], line: str) -> None:
    result = CliRunner().invoke(app, ["--lake", str(lake), *args])
    assert result.exit_code == 2
    assert result.stdout == "" and result.stderr.count("\n") == 1 and result.stderr.startswith(line)


@pytest.mark.parametrize("args, line", USAGE[:1] + USAGE[2:3])
def test_usage_errors_are_one_line_from_the_console_script(lake: Path, args: list[str], line: str) -> None:
    result = subprocess.run([*CATALOG, "--lake", str(lake), *args], capture_output=True, text=True)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.replace("python -m catalog", "catalog") == line + "\n"


def test_help_still_works() -> None:
    runner = CliRunner()
    for flag in ("--help", "-h"):
        assert runner.invoke(app, [flag]).exit_code == 0
        helped = runner.invoke(app, ["deploy", flag])
        assert helped.exit_code == 0 and "--target" in helped.stdout
    bare = runner.invoke(app, [])
    assert "Usage" in bare.stdout and "register" in bare.stdout and "Error" not in bare.stderr


# -- errors as JSON --------------------------------------------------------------


def test_errors_are_one_json_line_on_stderr_under_json(cli) -> None:
    cli("register", "seed", "s3://m/seed", "--no-git")
    missing = cli("show", "ghost", "--json")
    assert missing.exit_code == 1 and missing.stdout == ""
    assert missing.stderr.count("\n") == 1
    error = json.loads(missing.stderr)
    assert error == {"error": error["error"], "exit_code": 1, "kind": "ModelNotFound", "fields": {"model": "ghost"}}
    assert "catalog list" in error["error"]
    bad = json.loads(cli("register", "Bad/Name", "s3://m/1", "--json").stderr)
    assert (bad["kind"], bad["exit_code"], bad["fields"]["kind"], bad["fields"]["value"]) == ("InvalidName", 2, "model", "Bad/Name")
    usage = cli("deploy", "seed", "1", "--json")
    assert usage.exit_code == 2
    assert json.loads(usage.stderr) == {"error": "missing option '--target' / '-t' (see: catalog deploy --help)",
                                        "exit_code": 2, "kind": "UsageError", "fields": {"command": "catalog deploy"}}
    assert cli("show", "ghost").stderr.startswith("Error: model 'ghost'")


def test_the_plain_resolve_fast_path_answers_errors_in_json_like_typer(lake: Path) -> None:
    Registry(lake, actor="ana", durable=False).register("m", "s3://m/1", capture_git=False)
    for ref, code, kind in (("m@prod", 1, "TargetNotDeployed"), ("m", 2, "InvalidReference")):
        fast = subprocess.run([*CATALOG, "--lake", str(lake), "resolve", ref, "--json"], capture_output=True, text=True)
        slow = subprocess.run([*CATALOG, f"--lake={lake}", "resolve", ref, "--json"], capture_output=True, text=True)
        assert (fast.returncode, fast.stdout, fast.stderr) == (slow.returncode, slow.stdout, slow.stderr)
        error = json.loads(fast.stderr)
        assert (fast.returncode, error["exit_code"], error["kind"]) == (code, code, kind)


# -- completion ------------------------------------------------------------------


def test_shell_completion_can_be_shown_for_bash(monkeypatch) -> None:
    # Name the shell rather than let typer detect it from the process tree (under make's
    # `sh -c` it would find sh, which it does not support).
    monkeypatch.setenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")
    shown = CliRunner().invoke(app, ["--show-completion", "bash"], env={"SHELL": "/bin/bash"})
    assert shown.exit_code == 0 and "complete" in shown.stdout and "catalog" in shown.stdout, (shown.output, shown.exception)
