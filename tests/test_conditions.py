"""Normal conditions of a machine are refused in one line that says what to do, never as a bug."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from catalog.errors import InvalidPort, LakeReadOnly, PortUnavailable
from catalog.schema import SCHEMA_VERSION
from catalog.site import build_site, make_server

from .conftest import REPO, churn_scenario, snapshot


def _error_line(result) -> str:
    lines = result.output.strip().splitlines()
    assert lines and lines[-1].startswith("Error: "), result.output
    assert "unexpected" not in lines[-1] and "--traceback" not in lines[-1], lines[-1]
    return lines[-1]


@pytest.fixture
def read_only_lake(registry, lake, tmp_path):
    """The churn lake copied onto a real read-only mount (root ignores permission bits, not ro mounts)."""
    churn_scenario(registry)
    mount = tmp_path / "ro"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(mount)], capture_output=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here (needs root in a namespace that allows it): {done.stderr.decode().strip()}")
    try:
        shutil.copytree(lake, mount / "lake")
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        yield mount / "lake"
    finally:
        subprocess.run(["umount", str(mount)], check=False)


@pytest.mark.local_only
def test_writes_to_a_read_only_lake_are_refused_as_read_only(read_only_lake, cli):
    from catalog import Registry

    reg = Registry(read_only_lake, actor="bob", durable=False)
    with pytest.raises(LakeReadOnly) as caught:
        reg.approve("churn", 3, note="ok")
    assert caught.value.lake == str(read_only_lake)
    cli.lake = read_only_lake
    before = snapshot(read_only_lake)
    for args in (("register", "churn", "s3://models/churn/9.pkl"), ("approve", "churn", "3")):
        result = cli(*args, actor="bob")
        assert result.exit_code == 1, result.output
        assert "read-only" in _error_line(result)
    assert snapshot(read_only_lake) == before
    assert cli("show", "churn").exit_code == 0  # reads still work


def test_a_lake_path_that_is_a_file_is_a_one_line_usage_error(cli, tmp_path):
    cli.lake = tmp_path / "notes.txt"
    cli.lake.write_text("not a lake\n")
    for args in (("list",), ("register", "churn", "s3://m/1.pkl")):
        result = cli(*args)
        assert result.exit_code == 2, result.output
        assert "is a file" in _error_line(result)
    assert cli.lake.read_text() == "not a lake\n"


def test_doctor_repair_moves_a_file_that_sits_where_a_table_folder_belongs(registry, cli, lake):
    churn_scenario(registry)
    shutil.rmtree(lake / "versions")
    (lake / "versions").write_text("oops\n")
    assert cli("list").exit_code == 1  # a read says what is wrong, in one line
    result = cli("doctor", "--repair")
    assert "Traceback" not in result.output and "unexpected" not in result.output
    assert "versions" in result.output and "quarantine" in result.output
    (moved,) = (lake / "_quarantine").glob("*/versions")
    assert moved.read_text() == "oops\n"  # moved aside, never deleted
    assert (lake / "versions").is_dir() and (lake / "versions" / f"schema-v{SCHEMA_VERSION}.parquet").is_file()


def test_a_missing_schema_anchor_is_explained_on_read_and_restored_by_a_write(registry, cli, lake):
    churn_scenario(registry)
    (lake / "versions" / f"schema-v{SCHEMA_VERSION}.parquet").unlink()
    result = cli("list")
    assert result.exit_code == 1
    assert "doctor --repair" in _error_line(result)
    assert cli("register", "churn", "s3://models/churn/4.pkl").exit_code == 0
    assert (lake / "versions" / f"schema-v{SCHEMA_VERSION}.parquet").is_file()
    assert cli("list").exit_code == 0


@pytest.fixture
def site(registry, tmp_path) -> Path:
    churn_scenario(registry)
    out = tmp_path / "public"
    build_site(registry("ana"), out)
    return out


def test_serving_on_a_busy_port_is_refused_before_saying_serving(site):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        with pytest.raises(PortUnavailable):
            make_server(site, port)
        done = subprocess.run([sys.executable, "-m", "catalog", "serve", "--out", str(site), "--port", str(port)],
                              capture_output=True, text=True, timeout=60, cwd=REPO)
    finally:
        taken.close()
    assert done.returncode == 1
    assert "Serving" not in done.stdout
    assert done.stderr.startswith("Error: port") and done.stderr.count("\n") == 1, done.stderr


@pytest.mark.parametrize("port", ["70000", "-1"])
def test_a_port_out_of_range_is_a_usage_error(site, cli, port):
    with pytest.raises(InvalidPort):
        make_server(site, int(port))
    result = cli("serve", "--out", str(site), "--port", port)
    assert result.exit_code == 2
    assert "Serving" not in result.output
    assert "1 to 65535" in _error_line(result)


def _as_from_a_terminal() -> None:
    """A child's SIGINT as a terminal leaves it (its default): a shell without job control starts
    a background job with SIGINT ignored, and a test run from one (CI) would pass that on, so
    that Python would install no handler and the Ctrl+C these tests send would do nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("delay", [0.0, 0.1])
def test_ctrl_c_while_the_cli_starts_prints_no_traceback(registry, lake, tmp_path, delay):
    churn_scenario(registry)
    # The child says "ready" once Python itself has started and our entry point is imported,
    # so the signal lands in the catalog's start-up (importing the CLI, parsing) or the build.
    # (argv is set before "ready", so that nothing of the test's own code but the call itself
    # lies between "ready" and the entry point's handler: a signal landing there would be the
    # test's traceback, not the catalog's)
    code = ("import sys; import catalog.entry as entry; "
            f"sys.argv = ['catalog', '--lake', {str(lake)!r}, 'build', '--out', {str(tmp_path / 'site')!r}]; "
            "print('ready', flush=True); entry.main()")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, cwd=REPO, preexec_fn=_as_from_a_terminal)
    assert child.stdout.readline().strip() == "ready"
    time.sleep(delay)
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=60)
    assert "Traceback" not in err, err
    assert child.returncode == 130, (child.returncode, err)
    assert not (tmp_path / "site").exists()


# A question DuckDB works on for seconds (~9 s here), over the lake's reader like any other.
_LONG_QUERY = "select count(*) as n from range(3000000000) t(i) where i % 7 = 3"


def test_ctrl_c_while_duckdb_runs_a_query_stops_the_command_as_interrupted(registry, lake):
    """DuckDB's client answers a Ctrl+C during a query with RuntimeError("Query interrupted"),
    which the CLI reported as a bug to report; it is an interruption like any other."""
    churn_scenario(registry)
    # (through the API in a child that says when the query starts: the signal lands in DuckDB)
    code = ("import sys; from catalog import Registry; from catalog.engine import note_interrupts; "
            f"note_interrupts(); reg = Registry({str(lake)!r}, actor='ops'); reg.sql('select 1'); "
            "print('querying', flush=True)\n"
            "try:\n"
            f"    reg.sql({_LONG_QUERY!r})\n"
            "    print('finished')\n"
            "except KeyboardInterrupt:\n"
            "    print('interrupted'); sys.exit(130)\n")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, cwd=REPO, preexec_fn=_as_from_a_terminal)
    assert child.stdout.readline().strip() == "querying"
    time.sleep(1.0)
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=60)
    assert (child.returncode, out.strip()) == (130, "interrupted"), (out, err)
    # and the CLI, as a person meets it: one line, exit 130, no "report it"
    child = subprocess.Popen([sys.executable, "-m", "catalog", "--lake", str(lake), "sql", _LONG_QUERY],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                             preexec_fn=_as_from_a_terminal)
    time.sleep(3.0)
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=60)
    assert (child.returncode, err.strip()) == (130, "Interrupted."), (out, err)


def test_a_ctrl_c_duckdb_kept_to_itself_is_raised_when_its_query_returns(registry):
    """Between its checks DuckDB can drop the KeyboardInterrupt altogether; the CLI's handler
    notes the signal, and the reader raises it once the query is back."""
    from catalog import engine

    s = churn_scenario(registry)
    reg = s["bob"]
    reg.sql("select 1")
    engine._INTERRUPTED.set()   # (what note_interrupts' handler does on a SIGINT)
    try:
        with pytest.raises(KeyboardInterrupt):
            reg.sql("select count(*) from versions")
        assert reg.sql("select count(*) as n from versions").rows[0]["n"] > 0   # once
    finally:
        engine._INTERRUPTED.clear()
