"""Nothing on the read path writes to the lake.

Every read command (resolve, show, list, history, lineage, candidates, sql,
check, doctor without --repair, build) and every decision the registry refuses
leaves the lake exactly as it was: every file and folder, lock files included,
with the same content. And every read command works on a lake no one may write
to (``chmod -R a-w``); when the tests run as root, whom file modes do not stop,
the commands run without the capabilities that let root write anywhere (``setpriv``),
so the file modes hold for them as for anyone.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Cli, churn_scenario

ENV = {**os.environ, "CATALOG_ACTOR": "bob", "PYTHONDONTWRITEBYTECODE": "1"}
POLICY = """\
[policy]
four_eyes = true
metrics = { auc = ">= 0.82" }

[policy.targets."live*"]
after = "staging*"
"""


def snapshot(root: Path) -> dict[str, str]:
    """Every file and folder under ``root``, lock files included: a file by its content
    hash, a folder as such, a link by where it points."""
    out = {}
    for path in sorted(root.rglob("*")):
        name = str(path.relative_to(root))
        if path.is_symlink():
            out[name] = "link " + os.readlink(path)
        elif path.is_dir():
            out[name] = "folder"
        else:
            out[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.fixture
def lake(tmp_path: Path, registry) -> Path:
    """churn v1-v4 (v4 under the metric threshold), decisions, a policy in the lake, and
    no lock file left from building it (a lake fresh from `catalog copy`, say)."""
    churn_scenario(registry)
    registry("ana").register("churn", "s3://models/churn/4.pkl", metrics={"auc": 0.5}, capture_git=False)
    root = tmp_path / "lake"
    (root / "catalog.toml").write_text(POLICY)
    shutil.rmtree(root / "_locks", ignore_errors=True)
    return root


# Read commands that answer "no" (exit 1) on this lake: a gate report that fails, a
# model that did not exist yet.
SAYS_NO = (["check", "churn", "4"], ["check", "churn", "1", "--target", "live-eu"],
           ["show", "churn", "--as-of", "2020-01-01T00:00:00Z"])


def read_commands(out: Path) -> list[list[str]]:
    return [
        ["resolve", "churn@prod"], ["resolve", "churn@latest"], ["resolve", "churn:3"], ["resolve", "churn@prod", "--json"],
        ["show", "churn"], ["show", "churn", "2", "--json"], ["show", "churn", "--as-of", "2020-01-01T00:00:00Z"],
        ["list"], ["list", "--json"],
        ["history"], ["history", "churn"], ["history", "--target", "prod"],
        ["lineage", "churn", "1"],
        ["candidates", "churn", "--target", "prod"],
        ["sql", "select model, version, state from model_versions order by version"], ["sql", "--print-views"],
        ["check", "churn", "3"], ["check", "churn", "4"], ["check", "churn", "1", "--target", "live-eu"],
        ["doctor"], ["doctor", "--json"],
        ["build", "--out", str(out)],
    ]


# Decisions the registry refuses, each for its own reason; (arguments, actor).
REFUSED = [
    (["approve", "churn", "1"], "bob"),                               # already approved
    (["approve", "churn", "3"], "ana"),                               # four eyes: ana registered it
    (["approve", "churn", "4"], "bob"),                               # auc under the threshold
    (["approve", "churn", "9"], "bob"),                               # no such version
    (["approve", "ghost", "1"], "bob"),                               # no such model
    (["deploy", "churn", "3", "--target", "prod"], "bob"),            # not approved
    (["deploy", "churn", "1", "--target", "prod"], "bob"),            # prod runs it already
    (["deploy", "churn", "1", "--target", "live-eu"], "bob"),         # never ran on staging
    (["rollback", "churn", "--target", "staging", "--note", "x"], "bob"),  # not deployed there
    (["rollback", "churn", "--target", "prod", "--note", "x", "--to", "3"], "bob"),  # not a candidate
    (["reject", "churn", "1"], "bob"),                                # approved, not a candidate
    (["deprecate", "churn", "3"], "bob"),                             # a candidate, not approved
]


def test_read_commands_leave_the_lake_as_it_was(lake: Path, tmp_path: Path) -> None:
    cli = Cli(lake)
    for args in read_commands(tmp_path / "site"):
        before = snapshot(lake)
        done = cli(*args, actor="bob")
        assert done.exit_code == (1 if args in SAYS_NO else 0), (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr, (args, done.stderr)
        assert snapshot(lake) == before, args
    assert (tmp_path / "site" / "index.html").exists()


def test_the_library_reads_leave_the_lake_as_it_was(lake: Path) -> None:
    from catalog import Registry

    before = snapshot(lake)
    with Registry(lake, actor="bob") as reg:
        reg.resolve("churn@prod")
        reg.resolve("churn:1", as_of="2030-01-01T00:00:00Z")
        reg.show("churn")
        reg.list()
        reg.counts()
        reg.deployments()
        reg.history("churn")
        reg.candidates("churn", target="prod")
        reg.rollback_options("churn", target="prod")
        reg.lineage("churn", 1)
        reg.sql("select count(*) from versions")
        reg.sql_arrow("select * from events")
        reg.views_sql()
        reg.check("churn", 4)
        reg.check("churn", 3, target="prod")
        reg.doctor(verify_artifacts=True)
        assert reg.config.sha256
    assert snapshot(lake) == before


@pytest.mark.parametrize("missing", ["events", "versions", "_claims", "catalog.toml"])
def test_reads_of_a_lake_that_lacks_a_part_leave_it_as_it_was(lake: Path, tmp_path: Path, missing: str) -> None:
    """A lake without one of its folders is refused or read, never mended by a read."""
    gone = lake / missing
    shutil.rmtree(gone) if gone.is_dir() else gone.unlink()
    cli = Cli(lake)
    for args in read_commands(tmp_path / "site"):
        before = snapshot(lake)
        done = cli(*args, actor="bob")
        assert done.exit_code in (0, 1), (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr and "unexpected" not in done.stderr, (args, done.stderr)
        assert snapshot(lake) == before, args


# A refused decision writes nothing: not a claim, not a lock file (the lake takes none).
@pytest.mark.parametrize("args, actor", REFUSED, ids=[" ".join(a) for a, _ in REFUSED])
def test_refused_decisions_leave_the_lake_as_it_was(lake: Path, args: list[str], actor: str) -> None:
    before = snapshot(lake)
    done = Cli(lake)(*args, actor=actor)
    assert done.exit_code == 1, (args, done.stdout, done.stderr)
    assert done.stderr.startswith("Error: ")
    assert snapshot(lake) == before


def test_refused_decisions_write_no_record(lake: Path) -> None:
    """What holds today as well: nothing but lock files appears."""
    before = snapshot(lake)
    for args, actor in REFUSED:
        done = Cli(lake)(*args, actor=actor)
        assert done.exit_code == 1, (args, done.stdout, done.stderr)
    after = snapshot(lake)
    changed = {n for n in set(before) | set(after) if before.get(n) != after.get(n)}
    assert all(n.split(os.sep)[0] == "_locks" for n in changed), changed


# -- a lake no one may write to -------------------------------------------------------


# Root ignores file modes through these capabilities; without them root is held to
# the modes like anyone (it owns the files, and their owner may not write either).
_DROP = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner"]


@pytest.fixture
def read_only_lake(lake: Path, tmp_path: Path) -> Iterator[tuple[Path, Path, list[str]]]:
    """(the lake with every write permission removed, a writable folder for the site,
    what to run a process with so that file modes stop it). As root, that process
    runs without the capabilities that let root write anywhere (setpriv)."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root, and no setpriv to drop the capabilities that ignore file modes")
        prefix = _DROP
    out = tmp_path / "site"
    out.mkdir()
    for path in [lake, *lake.rglob("*")]:
        if not path.is_symlink():
            path.chmod(stat.S_IMODE(path.stat().st_mode) & ~0o222)
    try:
        yield lake, out, prefix
    finally:
        for path in [lake, *lake.rglob("*")]:
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o755)


def test_every_read_command_works_on_a_read_only_lake(read_only_lake) -> None:
    root, out, prefix = read_only_lake
    catalog = [*prefix, sys.executable, "-m", "catalog", "--lake", str(root)]
    probe = [*prefix, sys.executable, "-c", f"open({str(root / 'probe')!r}, 'w')"]
    refused = subprocess.run(probe, capture_output=True, text=True, env=ENV)
    assert refused.returncode != 0 and "PermissionError" in refused.stderr  # the lake is really read-only for it
    before = snapshot(root)
    for args in read_commands(out):
        done = subprocess.run([*catalog, *args], capture_output=True, text=True, cwd=out, timeout=300, env=ENV)
        assert done.returncode == (1 if args in SAYS_NO else 0), (args, done.stdout, done.stderr)
        assert "read-only" not in done.stderr and "Traceback" not in done.stderr, (args, done.stderr)
    assert snapshot(root) == before
    assert (out / "index.html").exists()


def test_a_refused_decision_on_a_read_only_lake_says_why_it_was_refused(read_only_lake) -> None:
    """A decision the rules refuse names the rule, not the missing write permission."""
    root, out, prefix = read_only_lake
    done = subprocess.run([*prefix, sys.executable, "-m", "catalog", "--lake", str(root), "deploy", "churn", "3", "--target", "prod"], capture_output=True, text=True,
                          cwd=out, timeout=300, env=ENV)
    assert done.returncode == 1
    assert "approve it before deploying" in done.stderr, done.stderr


# -- an object-store lake, read with read-only credentials ------------------------------


def test_every_read_command_works_on_s3_with_read_only_credentials(lake: Path, tmp_path: Path, s3_server) -> None:
    """The lake copied to the S3 test server (catalog copy), then read by processes whose
    credentials may only read and list: every read command answers, no object changes."""
    from catalog.copying import copy_lake

    url = s3_server.new_url()
    copy_lake(lake, url)
    bucket, _, prefix = url.removeprefix("s3://").partition("/")

    def objects() -> dict[str, str]:
        pages = s3_server.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/")
        return {o["Key"]: o["ETag"] for page in pages for o in page.get("Contents", [])}

    before = objects()
    env = {**os.environ, **s3_server.read_only_env(), "CATALOG_ACTOR": "bob", "PYTHONDONTWRITEBYTECODE": "1"}
    for args in read_commands(tmp_path / "site"):
        done = subprocess.run([sys.executable, "-m", "catalog", "--lake", url, *args], capture_output=True,
                              text=True, cwd=tmp_path, timeout=300, env=env)
        assert done.returncode == (1 if args in SAYS_NO else 0), (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr, (args, done.stderr)
    assert objects() == before
    assert (tmp_path / "site" / "index.html").exists()
