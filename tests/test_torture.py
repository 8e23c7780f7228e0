"""Torture: many writers at once, SIGKILL at random moments, compaction under fire.

Each test is bounded (subprocess timeouts) and sized for two shared cores. The
figures (processes, kills, records checked) are asserted and printed with -s.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from catalog import Registry
from catalog.cli import app
from catalog.doctor import doctor
from catalog.errors import LakeBusy
from catalog.lake import Lake, LocalStorage, compact

ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


# Lease time (seconds) in the tests that kill compactors: how long their lease outlives them.
LEASE = 1.5


def _spawn(script: str, *args: object, stdin: bool = False) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.PIPE if stdin else None,
        text=True, env={**os.environ, **ENV},
    )


def _when_free(work):
    """``work()``, waiting out the lease a killed compactor left behind (LakeBusy)."""
    deadline = time.monotonic() + 4 * LEASE
    while True:
        try:
            return work()
        except LakeBusy:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _versions(reg: Registry, model: str) -> list[int]:
    return [r["version"] for r in reg.sql(f"select version from versions where model = '{model}' order by version").rows]


# -- compaction: the edges, in one process ---------------------------------------------


def test_compaction_never_removes_a_file_added_after_its_listing(registry, lake):
    reg = registry("ana")
    for n in range(5):
        reg.register("m", f"s3://m/{n}", capture_git=False)
    raw = Lake(LocalStorage(lake))
    added: list[str] = []

    def merge_while_a_writer_appends(paths: list[str], dest: str, footer: dict[bytes, bytes], same: bool) -> int:
        from catalog.lake.compaction import merge_files

        # a writer lands a new record after the listing, while the merge runs
        added.append(raw.append("versions", [_row("m", 99)]))
        return merge_files("versions", paths, dest, footer, same_schema=same)

    files, rows = compact(raw, "versions", merge=merge_while_a_writer_appends)
    assert (files, rows) == (5, 5)
    assert (lake / added[0]).exists()
    assert _versions(registry("bob"), "m") == [1, 2, 3, 4, 5, 99]


def test_compaction_is_idempotent_and_exclusive(registry, lake):
    from .conftest import churn_scenario, snapshot

    churn_scenario(registry)
    reg = registry("ana")
    before = reg.sql("select * from audit_log order by event_id").rows
    first = reg.compact()
    assert first["versions"]["files_merged"] == 3 and first["events"]["files_merged"] == 5
    state = snapshot(lake)
    assert reg.compact() == {"versions": {"files_merged": 0, "rows": 0}, "events": {"files_merged": 0, "rows": 0}}
    assert snapshot(lake) == state
    assert registry("bob").sql("select * from audit_log order by event_id").rows == before
    from catalog.lake.lease import Lease

    with Lease(LocalStorage(lake), "compact-versions"):  # another compactor holds the table's lease
        with pytest.raises(LakeBusy):
            reg.compact()


def test_a_compaction_killed_between_rename_and_removal_shows_each_record_once(registry, lake, monkeypatch):
    reg = registry("ana")
    for n in range(6):
        reg.register("m", f"s3://m/{n}", capture_git=False)
    storage = LocalStorage(lake, durable=False)
    removed: list[str] = []

    def die_after_two(path: str) -> None:
        if len(removed) == 2:
            raise KeyboardInterrupt  # the process dies here
        removed.append(path)
        os.unlink(storage.local_path(path))

    monkeypatch.setattr(storage, "remove", die_after_two)
    from catalog.lake.compaction import merge_files

    with pytest.raises(KeyboardInterrupt):
        compact(Lake(storage), "versions", merge=lambda p, d, f, same: merge_files("versions", p, d, f, same_schema=same))
    on_disk = registry("x").sql("select count(*) as n from read_parquet('%s/versions/*.parquet')" % lake).rows[0]["n"]
    assert on_disk == 6 + 4  # four records sit in two files for now
    assert _versions(registry("bob"), "m") == [1, 2, 3, 4, 5, 6]
    monkeypatch.undo()
    # running it again finishes the job: the four inputs the merged file names are removed
    assert registry("carol").compact()["versions"] == {"files_merged": 0, "rows": 0}
    assert _versions(registry("dan"), "m") == [1, 2, 3, 4, 5, 6]
    assert len(list((lake / "versions").glob("*.parquet"))) == 2  # the merged file and the anchor


def _row(model: str, version: int) -> dict[str, object]:
    from datetime import datetime, timezone

    return {"schema_version": 1, "model": model, "version": version, "artifact_uri": f"s3://{model}/{version}",
            "created_at": datetime.now(timezone.utc), "created_by": "test"}


# -- 1. concurrent writers ------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys, time
    from catalog import Registry
    lake, me, count, start = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    reg = Registry(lake, actor=f"w{me}", durable=False)
    ops = Registry(lake, actor=f"ops{me}", durable=False)
    while time.time() < start:
        time.sleep(0.001)
    for i in range(count):
        v = reg.register("shared", f"s3://m/w{me}/{i}", metrics={"i": i}, capture_git=False)
        print("v", v.version, flush=True)
        if i % 5 == 4:  # a decision on this writer's own model: approve-free redeploy, alternating versions
            e = ops.deploy(f"own{me}", 1 + (i // 5) % 2, target="prod")
            print("e", e.event_id, flush=True)
    """
)


def test_eight_writers_registering_one_model_and_deciding_on_others(tmp_path):
    lake = tmp_path / "lake"
    writers, each = 8, 100
    setup = Registry(lake, actor="setup", durable=False)
    approver = Registry(lake, actor="bob", durable=False)
    for me in range(writers):
        for n in (1, 2):
            setup.register(f"own{me}", f"s3://own{me}/{n}", capture_git=False)
            approver.approve(f"own{me}", n)
    started = time.monotonic()
    start = time.time() + 2.0
    procs = [_spawn(WRITER, lake, me, each, start) for me in range(writers)]
    # Keep the lake compact while they write: decisions read it, and small files make reads slow.
    compactions = 0
    while any(p.poll() is None for p in procs):
        time.sleep(1.0)
        try:
            setup.compact()
            compactions += 1
        except LakeBusy:
            pass
    versions, events = [], []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        for line in out.splitlines():
            kind, value = line.split()
            (versions if kind == "v" else events).append(int(value) if kind == "v" else value)
    wall = time.monotonic() - started
    assert sorted(versions) == list(range(1, writers * each + 1))  # every acknowledged number once
    check = Registry(lake, actor="check", durable=False)
    rows = check.sql("select version, artifact_uri from versions where model = 'shared' order by version").rows
    assert [r["version"] for r in rows] == list(range(1, writers * each + 1))  # no duplicate, no gap
    assert len({r["artifact_uri"] for r in rows}) == writers * each  # none lost or overwritten
    recorded = {r["event_id"] for r in check.sql("select event_id from events where kind = 'deploy'").rows}
    assert set(events) <= recorded and len(events) == writers * (each // 5)
    assert doctor(lake).ok
    print(f"\n[writers] {writers} processes x {each} registrations + {len(events)} deploys, "
          f"{compactions} compactions meanwhile, {wall:.1f}s")


# -- 2. SIGKILL at random moments -------------------------------------------------------------

CRASHER = textwrap.dedent(
    """
    import sys
    from catalog import Registry
    lake, run = sys.argv[1], int(sys.argv[2])
    reg = Registry(lake, actor="crasher")           # durable: fsync and rename, as in production
    boss = Registry(lake, actor="boss")
    print("ready", flush=True)
    i = 0
    while True:
        v = reg.register("crash", f"s3://crash/{run}/{i}", owner="ana", metrics={"run": run, "i": i},
                         capture_git=False)
        print("v", v.version, v.artifact_uri, flush=True)
        if i % 3 == 0:
            e = boss.approve("crash", v.version, note=f"run {run}")
            print("e", e.event_id, flush=True)
        i += 1
    """
)


def test_sigkill_at_random_moments_loses_no_acknowledged_record(tmp_path, monkeypatch):
    # A writer killed in an automatic compaction leaves its lease to expire: short here.
    monkeypatch.setenv("CATALOG_LEASE_SECONDS", str(LEASE))
    lake = tmp_path / "lake"
    Registry(lake, actor="setup", durable=False).register("crash", "s3://crash/seed", capture_git=False)
    Registry(lake, actor="bob", durable=False).approve("crash", 1)
    rng = random.Random(5)
    acked_versions: dict[int, str] = {1: "s3://crash/seed"}
    acked_events: set[str] = set()
    runner = CliRunner()
    kills, started, tidied = 50, time.monotonic(), 0
    for run in range(kills):
        proc = _spawn(CRASHER, lake, run)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
        time.sleep(rng.uniform(0.0, 0.25))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        for line in out.splitlines():
            bits = line.split()
            if bits[0] == "v" and len(bits) == 3:
                acked_versions[int(bits[1])] = bits[2]
            elif bits[0] == "e" and len(bits) == 2:
                acked_events.add(bits[1])

        # every command still works, and nothing half-written is visible
        for args in (["list"], ["show", "crash"], ["history", "crash"], ["resolve", "crash@latest"],
                     ["sql", "select count(*) from audit_log"]):
            result = runner.invoke(app, ["--lake", str(lake), *args])
            assert result.exit_code == 0, (run, args, result.output)
        reg = Registry(lake, actor="check", durable=False)
        rows = reg.sql("select version, artifact_uri, owner, created_by from versions where model = 'crash'").rows
        seen = {r["version"]: r["artifact_uri"] for r in rows}
        assert all(r["artifact_uri"] and r["created_by"] for r in rows)
        assert all(seen.get(v) == uri for v, uri in acked_versions.items())
        events = {r["event_id"] for r in reg.sql("select event_id from events").rows}
        assert acked_events <= events

        # doctor --repair leaves a clean lake that still holds every acknowledged record
        report = _when_free(lambda: doctor(lake, repair=True, tmp_grace=0))
        assert all(f.severity != "error" for f in report.findings), report.findings
        tidied += sum(1 for f in report.findings if f.repaired)
        assert doctor(lake, tmp_grace=0).ok
        reg.close()
        reg = Registry(lake, actor="check", durable=False)
        assert set(acked_versions) <= set(_versions(reg, "crash"))
        if run % 10 == 9:
            _when_free(reg.compact)
        reg.close()
    final = Registry(lake, actor="check", durable=False)
    numbers = _versions(final, "crash")
    assert len(numbers) == len(set(numbers))
    gaps = len(set(range(1, max(numbers) + 1)) - set(numbers))
    print(f"\n[crash] {kills} SIGKILLs, {len(acked_versions)} acknowledged versions and {len(acked_events)} "
          f"events all present ({len(numbers)} recorded, {gaps} claimed numbers left as gaps, "
          f"{tidied} leftovers tidied by doctor --repair), {time.monotonic() - started:.1f}s")


# -- 3. compaction under fire ----------------------------------------------------------------------

# Each writer appends the same records to lake A (compacted meanwhile) and lake B (never
# compacted): same clock, same ids, so the two lakes must read identically at the end.
MIRROR = textwrap.dedent(
    """
    import sys, time
    from datetime import datetime, timedelta, timezone
    from catalog import Registry
    a, b, me, count, start = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])

    def pair(lake):
        ticks, ids = [0], [0]
        def clock():
            ticks[0] += 1
            return datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=me * 10_000 + ticks[0])
        def new_id():
            ids[0] += 1
            return f"{me:02x}{ids[0]:014x}"
        opts = dict(durable=False, clock=clock, new_id=new_id)
        return Registry(lake, actor=f"w{me}", **opts), Registry(lake, actor="bob", **opts)

    lakes = [pair(a), pair(b)]
    while time.time() < start:
        time.sleep(0.001)
    for i in range(count):
        for reg, boss in lakes:
            v = reg.register(f"fire{me}", f"s3://fire/{me}/{i}", metrics={"i": i}, capture_git=False)
            if i % 4 == 0:
                boss.approve(f"fire{me}", v.version, note=f"i={i}")
    print("done", flush=True)
    """
)

READER = textwrap.dedent(
    """
    import sys, time
    from catalog import Registry
    lake, stop = sys.argv[1], sys.argv[2]
    import os
    reg = Registry(lake, actor="reader")
    loops, last_versions, last_approved = 0, 0, 0
    while not os.path.exists(stop):
        n = reg.sql("select count(*) as n from versions").rows[0]["n"]
        approved = reg.sql("select count(*) as n, sum(version) as s from latest_approved").rows[0]
        assert n >= last_versions, f"versions went from {last_versions} to {n}"
        assert approved["n"] >= last_approved, f"latest_approved went from {last_approved} to {approved['n']}"
        last_versions, last_approved = n, approved["n"]
        loops += 1
    print(loops, last_versions, flush=True)
    """
)

COMPACTOR = textwrap.dedent(
    """
    import sys
    from catalog import Registry
    reg = Registry(sys.argv[1], actor="compactor")
    print("ready", flush=True)
    sys.stdin.readline()
    reg.compact()
    print("done", flush=True)
    """
)

_VERSIONS_SQL = "select model, version, artifact_uri, metrics, created_at, created_by from versions order by model, version"
_EVENTS_SQL = "select event_id, \"at\", actor, model, version, kind, state, note from events order by event_id"


def _same(a: Path, b: Path) -> int:
    ra, rb = Registry(a, actor="x", durable=False), Registry(b, actor="x", durable=False)
    try:
        va, vb = ra.sql(_VERSIONS_SQL).rows, rb.sql(_VERSIONS_SQL).rows
        ea, eb = ra.sql(_EVENTS_SQL).rows, rb.sql(_EVENTS_SQL).rows
        assert va == vb
        assert ea == eb
        return len(va) + len(ea)
    finally:
        ra.close()
        rb.close()


def test_compaction_under_fire_then_killed_at_random_moments(tmp_path, monkeypatch):
    # A killed compactor's lease is taken over once it expires: short here, so rounds go on.
    monkeypatch.setenv("CATALOG_LEASE_SECONDS", str(LEASE))
    a, b, stop = tmp_path / "a", tmp_path / "b", tmp_path / "stop"
    writers, each = 4, 40
    started = time.monotonic()
    start = time.time() + 2.0
    procs = [_spawn(MIRROR, a, b, me, each, start) for me in range(writers)]
    while not (a / "versions").exists():
        time.sleep(0.05)
    reader = _spawn(READER, a, stop)
    compactor = Registry(a, actor="compactor", durable=False)
    compactions = 0
    while any(p.poll() is None for p in procs):
        compactor.compact()
        compactions += 1
        time.sleep(0.2)
    for proc in procs:
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
    stop.touch()
    out, err = reader.communicate(timeout=120)
    assert reader.returncode == 0, err
    loops = int(out.split()[0])
    compactor.compact()
    checked = _same(a, b)
    assert checked == writers * each + writers * (each // 4)
    fire_wall = time.monotonic() - started

    # Now kill compactions at random moments; each round first adds records to both lakes.
    rng = random.Random(7)
    mirrors = [Registry(a, actor="w", durable=False, **_mirrored("a")), Registry(b, actor="w", durable=False, **_mirrored("b"))]
    rounds = 20
    stages = {"before the rename": 0, "while removing inputs": 0, "after it finished": 0}
    for round_ in range(rounds):
        for n in range(15):
            for reg in mirrors:
                reg.register("killed", f"s3://killed/{round_}/{n}", capture_git=False)
        listed = _data_files(a)
        time.sleep(LEASE)  # the lease of the compactor killed last round has expired
        proc = _spawn(COMPACTOR, a, stdin=True)
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline().strip() == "ready"
        proc.stdin.write("go\n")
        proc.stdin.flush()
        time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        now = _data_files(a)
        stage = ("before the rename" if now == listed else
                 "after it finished" if not (now & listed) else "while removing inputs")
        stages[stage] += 1
        checked = _same(a, b)
    time.sleep(LEASE)
    report = doctor(a, repair=True, tmp_grace=0)
    assert all(f.severity != "error" for f in report.findings)
    Registry(a, actor="compactor", durable=False).compact()
    assert doctor(a).ok
    checked = _same(a, b)
    assert stages["before the rename"] >= 3, stages
    print(f"\n[fire] {writers} writers x {each} registrations, {compactions} compactions under fire, "
          f"reader looped {loops} times, {fire_wall:.1f}s; then {rounds} compactions SIGKILLed "
          f"(killed {stages}), {checked} records identical to the uncompacted copy, "
          f"{time.monotonic() - started:.1f}s in all")


def _data_files(lake: Path) -> set[str]:
    return {p.name for p in (lake / "versions").glob("*.parquet") if not p.name.startswith("schema-")}


def _mirrored(seed: str) -> dict[str, object]:
    """A clock and id source that give two lakes the same records."""
    from datetime import datetime, timedelta, timezone

    ticks, ids = [0], [0]

    def clock():
        ticks[0] += 1
        return datetime(2026, 6, 1, tzinfo=timezone.utc) + timedelta(seconds=ticks[0])

    def new_id():
        ids[0] += 1
        return f"ff{ids[0]:014x}"

    return {"clock": clock, "new_id": new_id}
