"""The lake's protocols without locks, proven with real processes on real storage.

Version claims (exclusive creates), decisions (a per-model sequence with optimistic
concurrency), compaction leases (a frozen compactor resumed after losing its lease).
Each test runs against a local folder and, when the S3 backend (``catalog.lake.s3``)
is installed, against the S3 test server (tests/s3server.py): the same code for both.
Sized for two shared cores; the figures are printed with -s.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from catalog import Registry
from catalog.lake import Lake, compact
from catalog.lake.compaction import merge_files
from catalog.lake.footers import SUPERSEDES

from .conftest import snapshot
from .test_torture import MIRROR, READER, _same

REPO = Path(__file__).resolve().parents[1]
# Lease time in the tests that freeze or kill compactors, and how long a decision waits
# for the event of a writer killed between its claim and its event file.
LEASE = 1.5
GRACE = 0.3


@pytest.fixture(params=["local", "s3"])
def backend(request, tmp_path) -> str:
    """Where the lake lives: a local folder, or a fresh s3:// prefix on the test server."""
    if request.param == "s3":
        return str(request.getfixturevalue("s3_lake"))
    return str(tmp_path / "lake")


@pytest.fixture(autouse=True)
def short_times(monkeypatch):
    monkeypatch.setenv("CATALOG_LEASE_SECONDS", str(LEASE))
    monkeypatch.setenv("CATALOG_DECISION_GRACE", str(GRACE))


def _spawn(script: str, *args: object, cwd: Path | None = None, stdin: bool = False) -> subprocess.Popen[str]:
    """A real process, in a working folder of its own (no state shared but the lake)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if cwd is not None:
        cwd.mkdir(parents=True, exist_ok=True)
        env.update(TMPDIR=str(cwd), HOME=str(cwd), XDG_CACHE_HOME=str(cwd / ".cache"))
    return subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.PIPE if stdin else None,
        text=True, env=env, cwd=cwd,
    )


# -- version claims ----------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys, time
    from catalog import Registry
    lake, me, count, start = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    reg = Registry(lake, actor=f"w{me}", durable=False)
    while time.time() < start:
        time.sleep(0.001)
    for i in range(count):
        v = reg.register("shared", f"s3://m/w{me}/{i}", capture_git=False)
        print(v.version, flush=True)
    """
)


def test_eight_writers_without_shared_state_get_versions_exactly_1_to_800(backend, tmp_path):
    writers, each = 8, 100
    started = time.monotonic()
    start = time.time() + 3.0
    procs = [_spawn(WRITER, backend, me, each, start, cwd=tmp_path / f"w{me}") for me in range(writers)]
    printed: list[int] = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        printed += [int(line) for line in out.split()]
    assert sorted(printed) == list(range(1, writers * each + 1))  # every acknowledged number once
    check = Registry(backend, actor="check", durable=False)
    rows = check.sql("select version, artifact_uri from versions where model = 'shared' order by version").rows
    assert [r["version"] for r in rows] == list(range(1, writers * each + 1))  # no duplicate, no gap
    assert len({r["artifact_uri"] for r in rows}) == writers * each  # none lost or overwritten
    assert check.doctor().ok
    print(f"\n[claims] {writers} processes x {each} registrations of one model: 1..{writers * each}, "
          f"{time.monotonic() - started:.1f}s")


# -- decisions ---------------------------------------------------------------------------

DEPLOYER = textwrap.dedent(
    """
    import sys, time
    from catalog import Registry
    lake, version, start = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    reg = Registry(lake, actor=f"deployer{version}", durable=False)
    reg.show("m", version)  # warm: the reader is open before the race starts
    while time.time() < start:
        time.sleep(0.001)
    e = reg.deploy("m", version, target="prod")
    print(e.event_id, flush=True)
    """
)


def test_ten_concurrent_deploys_to_one_target_form_one_chain(backend, tmp_path):
    reg = Registry(backend, actor="ana", durable=False)
    boss = Registry(backend, actor="bob", durable=False)
    for n in range(1, 11):
        reg.register("m", f"s3://m/{n}", capture_git=False)
        boss.approve("m", n)
    start = time.time() + 4.0
    procs = [_spawn(DEPLOYER, backend, n, start, cwd=tmp_path / f"d{n}") for n in range(1, 11)]
    acked = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        acked.append(out.strip())
    check = Registry(backend, actor="check", durable=False)
    deploys = [e for e in check.history("m") if e.kind == "deploy"]
    assert sorted(e.event_id for e in deploys) == sorted(acked)  # all ten, each once
    deploys.sort(key=lambda e: (e.at, e.event_id))
    chain = [(e.evidence["from_version"], e.version) for e in deploys]
    assert chain[0][0] is None
    assert all(chain[i][0] == chain[i - 1][1] for i in range(1, len(chain))), chain  # no fork
    assert sorted(v for _, v in chain) == list(range(1, 11))
    assert check.resolve("m@prod") == f"s3://m/{chain[-1][1]}"


def test_a_refused_decision_leaves_the_lake_unchanged(backend):
    from catalog.errors import IllegalTransition

    reg = Registry(backend, actor="ana", durable=False)
    reg.register("m", "s3://m/1", capture_git=False)
    Registry(backend, actor="bob", durable=False).approve("m", 1)
    storage = reg._lake.storage
    reg.deploy("m", 1, target="prod")
    before = sorted(rel for rel, _ in storage.walk("_decisions"))
    with pytest.raises(IllegalTransition):
        reg.deploy("m", 1, target="prod")  # prod already runs v1
    assert sorted(rel for rel, _ in storage.walk("_decisions")) == before  # the refusal claimed nothing
    if not backend.startswith("s3://"):
        state = snapshot(Path(backend))
        with pytest.raises(IllegalTransition):
            reg.deploy("m", 1, target="prod")
        assert snapshot(Path(backend)) == state


def test_a_decision_whose_writer_died_before_its_event_is_rolled_forward_once(backend):
    from catalog.lake.lake import _decision_body
    from catalog.lifecycle import event_row

    reg = Registry(backend, actor="ana", durable=False)
    reg.register("m", "s3://m/1", capture_git=False)
    reg.register("m", "s3://m/2", capture_git=False)
    boss = Registry(backend, actor="bob", durable=False)
    boss.approve("m", 1)
    boss.approve("m", 2)
    boss.deploy("m", 1, target="prod")
    # What a deployer killed between its claim and its event file leaves: claim 4 holds
    # the event (a deploy of v2 after v1), no event file exists.
    s = boss._s
    row = event_row(s, "m", 2, "deploy", None, target="prod", evidence={"from_version": 1})
    storage = s.lake.storage
    assert storage.create_exclusive("_decisions/m/4", _decision_body(row))
    assert not [e for e in boss.history("m") if e.event_id == row["event_id"]]
    # The next decision waits for it (GRACE), then writes it from the claim, and decides on top.
    started = time.monotonic()
    other = Registry(backend, actor="carol", durable=False)
    back = other.rollback("m", target="prod", note="roll forward, then back")
    assert time.monotonic() - started >= GRACE
    events = [e for e in other.history("m") if e.kind in ("deploy", "rollback")]
    assert [e.event_id for e in events].count(row["event_id"]) == 1
    assert back.version == 1 and back.evidence["from_version"] == 2
    # The dead writer's own write, were it to come now, adds nothing.
    assert s.lake.append_event(row) and [e.event_id for e in other.history("m")].count(row["event_id"]) == 1


def test_doctor_reports_a_decision_without_its_event_and_repair_writes_it(backend):
    from catalog.doctor import doctor
    from catalog.lake.lake import _decision_body
    from catalog.lifecycle import event_row

    reg = Registry(backend, actor="ana", durable=False)
    reg.register("m", "s3://m/1", capture_git=False)
    boss = Registry(backend, actor="bob", durable=False)
    boss.approve("m", 1)
    row = event_row(boss._s, "m", 1, "deploy", None, target="prod", evidence={"from_version": None})
    assert boss._s.lake.storage.create_exclusive("_decisions/m/2", _decision_body(row))  # its decider died here
    report = doctor(reg._lake)
    assert [(f.severity, f.path) for f in report.findings] == [("warning", "_decisions/m/2")]
    repaired = doctor(reg._lake, repair=True)
    assert "wrote event" in (repaired.findings[0].repaired or "")
    assert doctor(reg._lake).ok
    assert Registry(backend, actor="c", durable=False).resolve("m@prod") == "s3://m/1"


# -- SIGKILL ---------------------------------------------------------------------------------

CRASHER = textwrap.dedent(
    """
    import sys
    from catalog import Registry
    lake, me, run = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    reg = Registry(lake, actor=f"crasher{me}")        # durable, as in production
    boss = Registry(lake, actor="boss")
    print("ready", flush=True)
    i = 0
    while True:
        v = reg.register("crash", f"s3://crash/{me}/{run}/{i}", metrics={"i": i}, capture_git=False)
        print("v", v.version, v.artifact_uri, flush=True)
        if i % 2 == 0:
            e = boss.approve("crash", v.version, note=f"{me}/{run}/{i}")
            print("e", e.event_id, flush=True)
        i += 1
    """
)


def test_writers_killed_at_random_moments_lose_no_acknowledged_record(backend, tmp_path):
    Registry(backend, actor="setup", durable=False).register("crash", "s3://crash/seed", capture_git=False)
    rng = random.Random(11)
    acked_versions: dict[int, str] = {1: "s3://crash/seed"}
    acked_events: set[str] = set()
    rounds, writers, started = 10, 3, time.monotonic()
    for run in range(rounds):
        procs = [_spawn(CRASHER, backend, me, run, cwd=tmp_path / f"c{me}") for me in range(writers)]
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
        time.sleep(rng.uniform(0.5, 1.5))
        for proc in procs:
            time.sleep(rng.uniform(0.0, 0.1))
            proc.send_signal(signal.SIGKILL)
        for proc in procs:
            out, _ = proc.communicate(timeout=30)
            for line in out.splitlines():
                bits = line.split()
                if bits[0] == "v" and len(bits) == 3:
                    acked_versions[int(bits[1])] = bits[2]
                elif bits[0] == "e" and len(bits) == 2:
                    acked_events.add(bits[1])
        reg = Registry(backend, actor="check", durable=False)
        rows = reg.sql("select version, artifact_uri, created_by, metrics from versions where model = 'crash'").rows
        assert all(r["artifact_uri"] and r["created_by"] for r in rows)  # nothing partial
        seen = {r["version"]: r["artifact_uri"] for r in rows}
        assert len(seen) == len(rows)  # no version twice
        assert all(seen.get(v) == uri for v, uri in acked_versions.items())
        events = {r["event_id"] for r in reg.sql("select event_id from events").rows}
        assert acked_events <= events
        reg.close()
    # A decision after the kills settles whatever a killed writer left between claim and event.
    final = Registry(backend, actor="check", durable=False)
    last = final.register("crash", "s3://crash/final", capture_git=False)
    Registry(backend, actor="boss2", durable=False).approve("crash", last.version)
    events = [r["event_id"] for r in final.sql("select event_id from events").rows]
    assert len(events) == len(set(events)) and acked_events <= set(events)
    print(f"\n[kill] {rounds} rounds x {writers} writers SIGKILLed: {len(acked_versions)} acknowledged versions "
          f"and {len(acked_events)} events all present, {time.monotonic() - started:.1f}s")


# -- compaction: leases and a frozen compactor -----------------------------------------------------

FROZEN = textwrap.dedent(
    """
    import sys
    from catalog import Registry
    from catalog.errors import LakeBusy
    from catalog.lake import compact
    from catalog.lake.compaction import merge_files
    reg = Registry(sys.argv[1], actor="frozen", durable=False)

    def merge(paths, dest, footer, same):
        rows = merge_files("versions", paths, dest, footer, same_schema=same)
        print("merged", len(paths), flush=True)
        sys.stdin.readline()  # the test freezes this process here, past its lease
        return rows

    try:
        print("done", compact(reg._lake, "versions", merge=merge), flush=True)
    except LakeBusy as exc:
        print("lost", type(exc).__name__, flush=True)
    """
)


def test_compaction_under_fire_with_a_frozen_compactor_matches_an_uncompacted_mirror(backend, tmp_path):
    a, b, stop = backend, tmp_path / "mirror", tmp_path / "stop"
    writers, each = 4, 30
    started = time.monotonic()
    start = time.time() + 3.0
    procs = [_spawn(MIRROR, a, b, me, each, start, cwd=tmp_path / f"m{me}") for me in range(writers)]
    while time.time() < start + 1.0:
        time.sleep(0.05)
    reader = _spawn(READER, a, stop, cwd=tmp_path / "reader")
    compactor = Registry(a, actor="compactor", durable=False)
    frozen = _spawn(FROZEN, a, cwd=tmp_path / "frozen", stdin=True)
    assert frozen.stdout is not None and frozen.stdin is not None
    line = frozen.stdout.readline().split()
    assert line and line[0] == "merged", frozen.stderr.read() if frozen.stderr else ""
    frozen.send_signal(signal.SIGSTOP)  # frozen with its merged file ready, holding the lease
    frozen_at = time.monotonic()
    compactions = busy = 0
    while any(p.poll() is None for p in procs) or time.monotonic() - frozen_at < 2 * LEASE:
        try:
            compactor.compact()  # LakeBusy until the frozen one's lease expires, then takes over
            compactions += 1
        except Exception as exc:  # noqa: BLE001
            assert type(exc).__name__ == "LakeBusy", exc
            busy += 1
        time.sleep(0.2)
    frozen.send_signal(signal.SIGCONT)
    frozen.stdin.write("go\n")
    frozen.stdin.flush()
    out, err = frozen.communicate(timeout=60)
    assert out.split()[:2] == ["lost", "LeaseLost"], (out, err)  # it checked before putting its file in
    for proc in procs:
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
    stop.touch()
    out, err = reader.communicate(timeout=120)
    assert reader.returncode == 0, err
    compactor.compact()
    checked = _same(a, b)  # type: ignore[arg-type]
    assert checked == writers * each + writers * (each // 4 + (each % 4 > 0))
    assert compactions >= 1 and busy >= 1
    print(f"\n[frozen] {writers} writers x {each}, reader looped {out.split()[0]} times, {compactions} "
          f"compactions ({busy} refused while the frozen one held its lease), {checked} records identical "
          f"to the mirror, {time.monotonic() - started:.1f}s")


def test_overlapping_compacted_files_read_once_and_the_next_compaction_merges_them(backend):
    """What a compactor frozen *after* its last lease check leaves when it resumes: its
    merged file beside the one of the compactor that took over, both replacing the same
    inputs. Readers see the overlap and keep one row per key; the next compaction cleans up."""
    reg = Registry(backend, actor="ana", durable=False)
    for n in range(6):
        reg.register("m", f"s3://m/{n}", metrics={"n": n}, capture_git=False)
    before = reg.sql("select model, version, artifact_uri, metrics from versions order by version").rows
    lake: Lake = reg._lake
    storage = lake.storage
    files = lake.data_files("versions")
    inputs = [storage.local_path(f) for f in files]
    names = sorted(f.split("/")[-1] for f in files)
    footer = {SUPERSEDES: json.dumps(names).encode()}
    made = []
    for k in range(2):  # the same inputs merged twice, as two compactors would
        out = f"versions/compacted-20260101T00000{k}000000Z-{k:016x}.parquet"
        storage.write_atomic_with(out, lambda dest: merge_files("versions", inputs, dest, footer, same_schema=True))
        made.append(out)
    for f in files:
        storage.remove(f)
    top = [n for n, _ in storage.entries("versions")]
    assert lake.superseded("versions", top)[1] is False  # the overlap is seen
    check = Registry(backend, actor="check", durable=False)
    assert check.sql("select model, version, artifact_uri, metrics from versions order by version").rows == before
    assert check.sql("select count(*) as n from versions").rows[0]["n"] == 6
    assert compact(lake, "versions")[0] == 2
    after = Registry(backend, actor="after", durable=False)
    assert after.sql("select model, version, artifact_uri, metrics from versions order by version").rows == before
    assert lake.superseded("versions", [n for n, _ in storage.entries("versions")])[1] is True


def test_a_lease_is_refused_while_held_and_taken_over_once_expired(backend):
    from catalog.errors import LakeBusy
    from catalog.lake.lease import Lease, LeaseLost

    storage = Registry(backend, actor="x", durable=False)._lake.storage
    first = Lease(storage, "compact-test", ttl=0.5, heartbeat=False)
    first.acquire()
    with pytest.raises(LakeBusy):
        Lease(storage, "compact-test", ttl=0.5).acquire()
    time.sleep(0.6)
    second = Lease(storage, "compact-test", ttl=5.0)
    second.acquire()  # the first expired: taken over with If-Match on what was read
    with pytest.raises(LeaseLost):
        first.check()
    second.release()
    third = Lease(storage, "compact-test", ttl=5.0)
    third.acquire()  # released: free at once
    third.release()


def test_nothing_in_the_catalog_takes_a_lock():
    import catalog.lake.storage as storage_module

    assert not hasattr(storage_module.LocalStorage, "lock")
    assert "lock" not in storage_module.Storage.__dict__
    found = subprocess.run(["grep", "-rn", "storage.lock(\\|\\.lock(\"", str(REPO / "catalog")],
                           capture_output=True, text=True)
    assert found.stdout == ""


def test_a_local_lake_is_never_written_by_a_refused_command_or_a_read(tmp_path):
    lake = tmp_path / "lake"
    reg = Registry(lake, actor="ana", durable=False)
    reg.register("m", "s3://m/1", capture_git=False)
    state = snapshot(lake)
    reader = Registry(lake, actor="r", durable=False)
    reader.resolve("m:1")
    reader.show("m")
    reader.sql("select count(*) from versions")
    from catalog.errors import IllegalTransition

    with pytest.raises(IllegalTransition):
        reader.deploy("m", 1, target="prod")  # a candidate: refused
    assert snapshot(lake) == state
    assert not (lake / "_locks").exists()


def test_a_merge_out_of_its_memory_on_two_threads_runs_again_on_one(tmp_path, monkeypatch) -> None:
    """A few MB of Parquet can hold more rows than two threads sort within the merge's budget
    (320k events of a 10,000-model lake did): that merge runs again on one thread, from the
    start, and the compacted lake holds every record once. Here DuckDB itself runs out: the
    two-thread attempt gets 1 MB."""
    from catalog import engine

    reg = Registry(tmp_path / "lake", actor="ana", durable=False)
    for i in range(12):
        reg.register(f"m{i % 3}", f"s3://m/{i}.pkl", capture_git=False)
    reg.approve("m0", 1, note="ok")
    events = sorted(r["event_id"] for r in reg.sql("SELECT event_id FROM events").rows)
    attempts: list[int] = []
    real = engine.connect

    def tight(*args, **kwargs):
        if str(kwargs.get("temp_directory", "")).rsplit("/", 1)[-1].startswith("catalog-merge-"):
            attempts.append(kwargs["threads"])
            if kwargs["threads"] == 2:
                kwargs["memory_limit"] = "1MB"
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "connect", tight)
    reg.compact()
    assert attempts[:2] == [2, 1] and attempts.count(2) == attempts.count(1) >= 2   # (versions, then events)
    monkeypatch.undo()
    after = Registry(tmp_path / "lake", actor="ana", durable=False)
    assert sorted(r["event_id"] for r in after.sql("SELECT event_id FROM events").rows) == events
    assert after.sql("SELECT count(*) AS n FROM versions").rows[0]["n"] == 12
    assert len(list((tmp_path / "lake" / "events").rglob("compacted-*.parquet"))) == 1


def test_a_merge_out_of_memory_on_one_thread_fails_and_changes_nothing(tmp_path, monkeypatch) -> None:
    from catalog.lake import compaction

    reg = Registry(tmp_path / "lake", actor="ana", durable=False)
    for i in range(4):
        reg.register("m", f"s3://m/{i}.pkl", capture_git=False)
    before = snapshot(tmp_path / "lake")
    monkeypatch.setattr(compaction, "MERGE_MEMORY", "1MB")
    with pytest.raises(Exception, match="Out of Memory"):
        reg.compact()
    assert snapshot(tmp_path / "lake") == before
