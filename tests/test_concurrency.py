"""Writers in separate processes never share a version number and never lose an event."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from catalog import Registry

WRITER = textwrap.dedent(
    """
    import sys, time
    from catalog import Registry
    lake, who, count, start = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    reg = Registry(lake, actor=who)
    while time.time() < start:
        time.sleep(0.001)
    for i in range(count):
        v = reg.register("shared", f"s3://m/{who}/{i}", capture_git=False)
        print(v.version, flush=True)
    """
)


def test_four_processes_registering_the_same_model_get_distinct_versions(tmp_path):
    import time

    lake = tmp_path / "lake"
    Registry(lake, actor="setup").register("shared", "s3://m/setup/0", capture_git=False)
    start = time.time() + 1.5  # every process is up and waiting before the first write
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(lake), f"w{i}", "25", str(start)],
                         stdout=subprocess.PIPE, text=True)
        for i in range(4)
    ]
    printed: list[int] = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        printed += [int(line) for line in out.split()]
    assert sorted(printed) == list(range(2, 102))  # every acknowledged number unique
    reg = Registry(lake, actor="check")
    rows = reg.sql("select version, artifact_uri from versions where model = 'shared' order by version").rows
    assert [r["version"] for r in rows] == list(range(1, 102))  # no duplicate, no gap
    assert len({r["artifact_uri"] for r in rows}) == 101  # no record lost or overwritten


DECIDER = textwrap.dedent(
    """
    import sys
    from catalog import Registry
    lake, model = sys.argv[1], sys.argv[2]
    reg = Registry(lake, actor="deployer-" + model)
    for target in range(10):
        reg.deploy(model, 1, target=f"t{target}")
    """
)


def test_concurrent_decisions_on_several_models_lose_no_event(tmp_path):
    lake = tmp_path / "lake"
    reg = Registry(lake, actor="ana")
    for model in ("a", "b", "c", "d"):
        reg.register(model, f"s3://{model}", capture_git=False)
        Registry(lake, actor="bob").approve(model, 1)
    procs = [subprocess.Popen([sys.executable, "-c", DECIDER, str(lake), m]) for m in ("a", "b", "c", "d")]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    counts = reg.sql("select model, count(*) as n from deployments group by model order by model").rows
    assert counts == [{"model": m, "n": 10} for m in ("a", "b", "c", "d")]
