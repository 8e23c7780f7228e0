"""Benchmark the catalog from 1k to 100k versions and print a table per size.

    python benchmarks/run.py                          # 1k, 10k and 100k versions, plus the site builds
    python benchmarks/run.py --quick                  # 1k versions and the 100-model site only
    python benchmarks/run.py --versions 1000,10000 --out benchmarks/results.md

Every measurement runs in a fresh Python process (``run.py --one MEASURE ...``)
that prints one JSON line, so the peak RSS reported (VmHWM of that process, and
of the processes it starts) belongs to that measurement alone.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

RSS_LIMIT_MB = 150.0


# --------------------------------------------------------------------------- helpers


def peak_rss_mb() -> float:
    """Peak resident memory of this process and of every child it waited for (MB)."""
    own = 0.0
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    own = int(line.split()[1]) / 1024
    except OSError:
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return round(max(own, children), 1)


def rss_now_mb() -> float:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


def catalog_exe() -> list[str]:
    exe = Path(sys.executable).with_name("catalog")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "catalog"]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def _timed(fn: Any, repeat: int) -> tuple[float, float, Any]:
    """(first call ms, median ms of ``repeat`` further calls, last result)."""
    t = time.perf_counter()
    result = fn()
    first = time.perf_counter() - t
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return _ms(first), _ms(statistics.median(times)) if times else _ms(first), result


def load_meta(lake: str) -> dict[str, Any]:
    with open(lake.rstrip("/") + ".meta.json") as fh:
        return json.load(fh)


def register_records(meta: dict[str, Any], n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` realistic registrations of new versions of existing models (10% with a parent)."""
    from synth import version_record

    rng = random.Random(seed)
    models = meta["models"]
    latest = meta["latest"]
    out = []
    for k in range(n):
        i = rng.randrange(len(models))
        model = models[i]
        parents = [(model, latest[model], "fine-tuned")] if rng.random() < 0.1 else []
        rec = version_record(rng, model, i, 10_000 + k, parents)
        rec["artifact_uri"] = f"s3://models/{model}/bench-{seed}-{k}/model.pkl"
        out.append(rec)
    return out


def cli_args(rec: dict[str, Any]) -> list[str]:
    args = ["register", rec["model"], rec["artifact_uri"], "--owner", rec["owner"],
            "--description", rec["description"], "--code-repo", rec["code_repo"],
            "--code-version", rec["code_version"], "--image", rec["runtime_image"],
            "--sha256", rec["artifact_sha256"]]
    for d in rec["data_refs"]:
        args += ["--data", d]
    for m, v, r in rec["parents"]:
        args += ["--parent", f"{m}:{v}:{r}"]
    for flag, key in (("--metric", "metrics"), ("--param", "params"), ("--tag", "tags"), ("--dashboard", "dashboards")):
        for k, v in rec[key].items():
            args += [flag, f"{k}={v}"]
    return args


def count_files(lake: str) -> dict[str, int]:
    out = {}
    for table in ("versions", "events"):
        folder = os.path.join(lake, table)
        out[table] = sum(1 for n in os.listdir(folder) if n.endswith(".parquet") and not n.startswith("schema-"))
    return out


# --------------------------------------------------------------------------- measurements (child side)


def m_generate(a: argparse.Namespace) -> dict[str, Any]:
    from synth import generate, write_lake

    t = time.perf_counter()
    synth = generate(a.size, seed=a.seed)
    built = time.perf_counter() - t
    counts = write_lake(a.lake, synth, tail=a.tail)
    meta = {
        "models": synth.models, "latest": synth.latest, "deployed": synth.deployed,
        "with_parents": synth.with_parents, "approved": synth.approved,
    }
    with open(a.lake.rstrip("/") + ".meta.json", "w") as fh:
        json.dump(meta, fh)
    return {**counts, "seconds": round(time.perf_counter() - t, 2), "build_rows_s": round(built, 2),
            "files_by_table": count_files(a.lake)}


def m_reads(a: argparse.Namespace) -> dict[str, Any]:
    import catalog.queries  # noqa: F401  (duckdb, pyarrow: counted in rss_import_mb)
    from catalog import Registry

    meta = load_meta(a.lake)
    rng = random.Random(3)
    rss_import = rss_now_mb()
    t = time.perf_counter()
    reg = Registry(a.lake, actor="bench")
    reg._s.reader()  # the DuckDB connection and its views (reads every file's footer)
    open_ms = _ms(time.perf_counter() - t)
    out: dict[str, Any] = {"open_ms": open_ms, "files": count_files(a.lake), "rss_import_mb": rss_import,
                           "rss_open_mb": rss_now_mb()}
    model, version = rng.choice(meta["with_parents"]) if meta["with_parents"] else (meta["models"][0], 1)
    # A deployed model of the same size in every lake (10 versions, or the nearest), so
    # that the answers to the one-model questions do not grow with the lake.
    deployed_model, target = min(meta["deployed"], key=lambda d: (abs(meta["latest"][d[0]] - QUESTION_VERSIONS), d))
    # Whole-lake views, answered as Arrow tables (Registry.sql_arrow); their answers grow with the lake.
    views = {
        "latest_approved": lambda: reg.sql_arrow("select * from latest_approved"),
        "deployments": lambda: reg.sql_arrow("select * from deployments"),
        "rollback_candidates": lambda: reg.sql_arrow("select * from rollback_candidates"),
        "deployments_dicts": lambda: reg.sql("select * from deployments").rows,
    }
    # Questions about one model, whose answers do not grow with the lake.
    questions = {
        "lineage": lambda: reg.lineage(model, version),
        "show": lambda: reg.show(deployed_model),
        "candidates": lambda: reg.candidates(deployed_model, target=target),
        "history": lambda: reg.history(deployed_model),
    }
    for name, fn in {**views, **questions}.items():
        first, median, result = _timed(fn, a.repeat)
        if hasattr(result, "num_rows"):
            rows = result.num_rows
        elif hasattr(result, "ancestors"):
            rows = len(result.ancestors) + len(result.descendants)
        elif hasattr(result, "versions"):
            rows = len(result.versions)
        else:
            rows = len(result)
        out[name] = {"first_ms": first, "median_ms": median, "rows": rows, "rss_mb": rss_now_mb()}

    # resolve: the first call builds the in-memory index; later calls are lookups.
    refs = []
    for m, target in rng.sample(meta["deployed"], min(200, len(meta["deployed"]))):
        refs.append(f"{m}@{target}")
    for m in rng.sample(meta["approved"], min(100, len(meta["approved"]))):
        refs += [f"{m}@latest", f"{m}:{meta['latest'][m]}"]
    # The first lookup of a model loads its answers with one filtered query; every
    # later lookup is a dictionary hit until a file enters or leaves the lake.
    firsts, seen = [], set()
    for ref in refs:
        model = ref.replace(":", "@").split("@")[0]
        t = time.perf_counter()
        reg.resolve(ref)
        if model not in seen:
            firsts.append(time.perf_counter() - t)
            seen.add(model)
    out["resolve_first_ms"] = _ms(statistics.median(firsts))
    samples = []
    clock = time.perf_counter_ns
    for k in range(a.calls):
        ref = refs[k % len(refs)]
        t0 = clock()
        reg.resolve(ref)
        samples.append(clock() - t0)
    samples.sort()
    out["resolve_median_us"] = round(samples[len(samples) // 2] / 1000, 1)
    out["resolve_p95_us"] = round(samples[int(len(samples) * 0.95)] / 1000, 1)
    out["models"] = len(meta["models"])
    reg.close()
    return out


_PHASES = r"""
import sys, time, json
t0 = time.perf_counter()
from catalog.registry import Registry
t1 = time.perf_counter()
reg = Registry(sys.argv[1], actor="bench")
reg._s.reader()
t2 = time.perf_counter()
reg.resolve(sys.argv[2])
t3 = time.perf_counter()
print(json.dumps({"import_ms": (t1 - t0) * 1e3, "open_ms": (t2 - t1) * 1e3, "index_ms": (t3 - t2) * 1e3}))
"""


def m_cold_resolve(a: argparse.Namespace) -> dict[str, Any]:
    meta = load_meta(a.lake)
    rng = random.Random(5)
    model, target = rng.choice(meta["deployed"])
    ref = f"{model}@{target}"
    times = []
    env = {**os.environ, "CATALOG_ACTOR": "bench"}
    for _ in range(a.runs):
        t = time.perf_counter()
        done = subprocess.run([*catalog_exe(), "--lake", a.lake, "resolve", ref], capture_output=True, text=True, env=env)
        times.append(time.perf_counter() - t)
        if done.returncode != 0:
            raise SystemExit(f"catalog resolve failed: {done.stderr.strip()}")
    t = time.perf_counter()
    startup = subprocess.run([sys.executable, "-c", "pass"], env=env)
    python_ms = _ms(time.perf_counter() - t)
    phases = json.loads(subprocess.run([sys.executable, "-c", _PHASES, a.lake, ref], capture_output=True,
                                       text=True, env=env, cwd=str(REPO), check=True).stdout)
    return {"median_ms": _ms(statistics.median(times)), "min_ms": _ms(min(times)), "python_ms": python_ms,
            "phases": {k: round(v, 1) for k, v in phases.items()}, "startup_rc": startup.returncode}


def _write_imports() -> None:
    """Import what writing needs before the clock starts: the read path imports no
    pyarrow, so a writer pays for it (~60 ms) on its first write, once a process."""
    import pyarrow.parquet  # noqa: F401

    import catalog.bulk  # noqa: F401


def m_register_api(a: argparse.Namespace) -> dict[str, Any]:
    from catalog import Registry

    _write_imports()

    records = register_records(load_meta(a.lake), a.n, seed=a.seed)
    reg = Registry(a.lake, actor="bench", durable=True)
    spent = {True: 0.0, False: 0.0}
    count = {True: 0, False: 0}
    t = time.perf_counter()
    for rec in records:
        kwargs = {k: v for k, v in rec.items() if k != "model"}
        t0 = time.perf_counter()
        reg.register(rec["model"], kwargs.pop("artifact_uri"), capture_git=False, **kwargs)
        spent[bool(rec["parents"])] += time.perf_counter() - t0
        count[bool(rec["parents"])] += 1
    seconds = time.perf_counter() - t
    return {"n": a.n, "per_s": round(a.n / seconds, 1), "seconds": round(seconds, 3),
            "with_parents": count[True],
            "plain_per_s": round(count[False] / spent[False], 1) if count[False] else None,
            "parent_ms_each": _ms(spent[True] / count[True]) if count[True] else None}


def m_register_cli(a: argparse.Namespace) -> dict[str, Any]:
    """In-process CliRunner invocations (argument parsing + a fresh Registry each time)."""
    from typer.testing import CliRunner

    from catalog.cli import app

    records = register_records(load_meta(a.lake), a.n, seed=a.seed)
    runner = CliRunner()
    env = {"CATALOG_ACTOR": "bench"}
    t = time.perf_counter()
    for rec in records:
        result = runner.invoke(app, ["--lake", a.lake, *cli_args(rec), "--no-git"], env=env)
        if result.exit_code != 0:
            raise SystemExit(f"catalog register failed: {result.output.strip()}")
    seconds = time.perf_counter() - t
    return {"n": a.n, "per_s": round(a.n / seconds, 1), "seconds": round(seconds, 3)}


def m_register_proc(a: argparse.Namespace) -> dict[str, Any]:
    """Real `catalog register` processes, one after another (interpreter start included)."""
    records = register_records(load_meta(a.lake), a.n, seed=a.seed)
    env = {**os.environ, "CATALOG_ACTOR": "bench"}
    t = time.perf_counter()
    for rec in records:
        done = subprocess.run([*catalog_exe(), "--lake", a.lake, *cli_args(rec), "--no-git"],
                              capture_output=True, text=True, env=env)
        if done.returncode != 0:
            raise SystemExit(f"catalog register failed: {done.stderr.strip()}")
    seconds = time.perf_counter() - t
    return {"n": a.n, "per_s": round(a.n / seconds, 1), "ms_each": _ms(seconds / a.n)}


def m_bulk(a: argparse.Namespace) -> dict[str, Any]:
    """Registry.register_many into a fresh lake (durable), all records in one call.

    The records are made while the registry reads them (a generator), so the peak
    RSS is the registry's, not a list of 100k dicts; the time spent making them is
    measured and left out of ``per_s`` (``input_s``; ``wall_per_s`` includes it)."""
    from catalog import Registry

    _write_imports()

    from synth import version_records

    making = 0.0

    def records() -> Iterator[dict[str, Any]]:
        nonlocal making
        made = version_records(a.n, seed=a.seed)
        while True:
            t0 = time.perf_counter()
            rec = next(made, None)
            making += time.perf_counter() - t0
            if rec is None:
                return
            yield rec

    reg = Registry(a.lake, actor="bench", durable=True)
    if not hasattr(reg, "register_many"):
        return {"n": a.n, "missing": True}
    t = time.perf_counter()
    out = reg.register_many(records(), capture_git=False)
    seconds = time.perf_counter() - t
    assert len(out) == a.n
    return {"n": a.n, "per_s": round(a.n / (seconds - making), 1), "seconds": round(seconds - making, 3),
            "input_s": round(making, 3), "wall_per_s": round(a.n / seconds, 1), "files": count_files(a.lake)}


def m_compact(a: argparse.Namespace) -> dict[str, Any]:
    from catalog import Registry

    before = count_files(a.lake)
    t = time.perf_counter()
    out = Registry(a.lake, actor="bench").compact()
    return {"seconds": round(time.perf_counter() - t, 2), "files_before": before, "result": out}


def m_site(a: argparse.Namespace) -> dict[str, Any]:
    from catalog import Registry
    from catalog.site import build_site
    from synth import site_lake

    t = time.perf_counter()
    counts = site_lake(a.lake, a.models)
    Registry(a.lake, actor="bench").compact()
    lake_s = time.perf_counter() - t
    out_dir = a.lake.rstrip("/") + "-site"
    t = time.perf_counter()
    report = build_site(Registry(a.lake, actor="bench"), out_dir)
    total = time.perf_counter() - t
    index = Path(out_dir, "search", "search_index.json")
    generator = sum(v for k, v in report.timings.items() if k != "mkdocs")
    return {
        "models": report.models, "versions": report.versions, "events": counts["events"], "pages": report.pages,
        "seconds": round(total, 2), "generator_s": round(generator, 2),
        "mkdocs_s": round(report.timings.get("mkdocs", 0.0), 2),
        "timings": {k: round(v, 2) for k, v in report.timings.items()},
        "search_index_kb": round(index.stat().st_size / 1024, 1) if index.exists() else None,
        "site_mb": round(sum(f.stat().st_size for f in Path(out_dir).rglob("*") if f.is_file()) / 2**20, 1),
        "problems": sum(len(v) for v in report.problems.values()), "lake_s": round(lake_s, 2),
    }


MEASURES = {
    "generate": m_generate, "reads": m_reads, "cold_resolve": m_cold_resolve, "register_api": m_register_api,
    "register_cli": m_register_cli, "register_proc": m_register_proc, "bulk": m_bulk, "compact": m_compact,
    "site": m_site,
}


def child(a: argparse.Namespace) -> int:
    t = time.perf_counter()
    result = MEASURES[a.one](a)
    result["wall_s"] = round(time.perf_counter() - t, 2)
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))
    return 0


# --------------------------------------------------------------------------- orchestration (parent side)


def one(measure: str, **options: Any) -> dict[str, Any]:
    """Run one measurement in a fresh process; returns its JSON result."""
    args = [sys.executable, str(Path(__file__).resolve()), "--one", measure]
    for key, value in options.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    env = {**os.environ, "CATALOG_ACTOR": "bench", "PYTHONHASHSEED": "0"}
    done = subprocess.run(args, capture_output=True, text=True, env=env, cwd=str(REPO))
    if done.returncode != 0:
        raise RuntimeError(f"measurement {measure} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _mark(ok: bool | None) -> str:
    return "" if ok is None else ("✓" if ok else "✗")


class Table:
    def __init__(self, title: str) -> None:
        self.title = title
        self.rows: list[tuple[str, str, str, str, str]] = []

    def add(self, name: str, value: str, target: str = "", ok: bool | None = None, rss: float | None = None,
            rss_limit: float | None = RSS_LIMIT_MB) -> None:
        rss_text = "" if rss is None else f"{rss:.0f}"
        if rss is not None and rss_limit is not None:
            rss_text += " " + _mark(rss <= rss_limit)
        self.rows.append((name, value, target, _mark(ok), rss_text))

    def markdown(self) -> str:
        head = ("measurement", "result", "target", "ok", "peak RSS MB")
        widths = [max(len(r[i]) for r in [head, *self.rows]) for i in range(5)]
        line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
        sep = "| " + " | ".join("-" * w for w in widths) + " |"
        return "\n".join([f"### {self.title}", "", line(head), sep, *map(line, self.rows), ""])


def bench_size(n: int, work: Path, a: argparse.Namespace, log: Any) -> tuple[Table, dict[str, Any]]:
    lake = str(work / f"lake-{n}")
    shutil.rmtree(lake, ignore_errors=True)
    got: dict[str, Any] = {}
    table = Table(f"{n:,} versions")

    def step(key: str, measure: str, **options: Any) -> dict[str, Any]:
        t = time.perf_counter()
        got[key] = one(measure, **options)
        log(f"  {n:>7,} versions: {key} {time.perf_counter() - t:.1f} s")
        return got[key]

    g = step("generate", "generate", lake=lake, size=n, tail=a.tail)
    table.add("synthetic lake: models / versions / events", f"{g['models']:,} / {g['versions']:,} / {g['events']:,}")
    table.add("synthetic lake: files (compacted chunks + one-row tail)",
              f"{g['files']:,} in {g['seconds']:.1f} s", rss=g["peak_rss_mb"], rss_limit=None)

    r0 = step("reads_before", "reads", lake=lake, repeat=a.repeat_before, calls=a.calls)
    c0 = step("cold_before", "cold_resolve", lake=lake, runs=a.cold_runs_before)
    ra = step("register_api", "register_api", lake=lake, n=a.register_n, seed=1)
    rc = step("register_cli", "register_cli", lake=lake, n=a.cli_n, seed=2)
    rp = step("register_proc", "register_proc", lake=lake, n=a.proc_n, seed=3)
    bulk_lake = str(work / f"bulk-{n}")
    shutil.rmtree(bulk_lake, ignore_errors=True)
    try:
        b = step("bulk", "bulk", lake=bulk_lake, n=min(n, a.bulk_max), seed=4)
    except RuntimeError as exc:  # register_many is new: report, don't stop the run
        b = got["bulk"] = {"n": min(n, a.bulk_max), "error": str(exc).strip().splitlines()[-1], "peak_rss_mb": None}
    shutil.rmtree(bulk_lake, ignore_errors=True)
    k = step("compact", "compact", lake=lake)
    r1 = step("reads_after", "reads", lake=lake, repeat=a.repeat, calls=a.calls)
    c1 = step("cold_after", "cold_resolve", lake=lake, runs=a.cold_runs)

    table.add(f"register, API, durable (n={ra['n']}, {ra['with_parents']} with a parent)",
              f"{ra['per_s']:,.0f} versions/s", "≥ 400/s", ra["per_s"] >= 400, ra["peak_rss_mb"])
    if ra.get("plain_per_s"):
        table.add("  of which: versions without a parent", f"{ra['plain_per_s']:,.0f} versions/s", "≥ 400/s",
                  ra["plain_per_s"] >= 400)
    if ra.get("parent_ms_each"):
        table.add("  of which: versions with a parent (parent looked up in the lake)",
                  f"{ra['parent_ms_each']:,.0f} ms each")
    table.add(f"register, CLI in-process (CliRunner, n={rc['n']})", f"{rc['per_s']:,.0f} versions/s", "", None,
              rc["peak_rss_mb"])
    table.add(f"register, `catalog register` processes (n={rp['n']})",
              f"{rp['per_s']:,.1f} versions/s ({rp['ms_each']:.0f} ms each)", "", None, rp["peak_rss_mb"])
    if b.get("error"):
        table.add(f"register_many, bulk (n={b['n']:,})", "failed: " + b["error"][:80], "≥ 20,000/s", False)
    elif b.get("missing"):
        table.add(f"register_many, bulk (n={b['n']})", "n/a: Registry.register_many missing", "≥ 20,000/s", False,
                  b["peak_rss_mb"])
    else:
        table.add(f"register_many, bulk, durable (n={b['n']:,})", f"{b['per_s']:,.0f} versions/s", "≥ 20,000/s",
                  b["per_s"] >= 20_000, b["peak_rss_mb"])

    models = r1["models"]
    la_target = 20.0 if models <= 500 else 100.0
    for label, r, c, files in (("before compact", r0, c0, r0["files"]), ("after compact", r1, c1, r1["files"])):
        after = r is r1
        table.add(f"[{label}] files versions / events", f"{files['versions']:,} / {files['events']:,}")
        table.add(f"[{label}] open registry (DuckDB views)", f"{r['open_ms']:.0f} ms", "", None, r["peak_rss_mb"])
        table.add(f"[{label}] RSS after imports / after open / after views",
                  f"{r['rss_import_mb']:.0f} / {r['rss_open_mb']:.0f} / {r['lineage']['rss_mb']:.0f} MB")
        table.add(f"[{label}] resolve, first lookup of a model (one query), median", f"{r['resolve_first_ms']:.1f} ms")
        table.add(f"[{label}] resolve warm median / p95",
                  f"{r['resolve_median_us']:.1f} / {r['resolve_p95_us']:.1f} µs", "median ≤ 300 µs",
                  r["resolve_median_us"] <= 300)
        ph = c["phases"]
        table.add(f"[{label}] cold `catalog resolve` process (median of {a.cold_runs if after else a.cold_runs_before})",
                  f"{c['median_ms']:.0f} ms (python {c['python_ms']:.0f}, import {ph['import_ms']:.0f}, "
                  f"open {ph['open_ms']:.0f}, index {ph['index_ms']:.0f})",
                  "≤ 300 ms", c["median_ms"] <= 300, c["peak_rss_mb"])
        for view in ("latest_approved", "deployments", "rollback_candidates", "deployments_dicts", *QUESTIONS):
            v = r[view]
            name = QUESTIONS.get(view) or WHOLE.get(view, view)
            target, ok = "", None
            if view == "latest_approved" and after:
                target, ok = f"≤ {la_target:.0f} ms at {models:,} models", v["median_ms"] <= la_target
            elif not after:
                ratio = v["median_ms"] / max(r1[view]["median_ms"], 1e-3)
                target = f"{ratio:.1f}× compacted"
            table.add(f"[{label}] {name} ({v['rows']:,} rows)", f"{v['median_ms']:.1f} ms (first {v['first_ms']:.0f})",
                      target, ok)
        if not after:
            table.add("compact", f"{k['seconds']:.1f} s ({sum(k['files_before'].values()):,} files)", "", None,
                      k["peak_rss_mb"])
    return table, got


def bench_sites(sizes: list[int], work: Path, log: Any) -> tuple[Table, dict[str, Any]]:
    table = Table("catalog build (site)")
    got = {}
    for m in sizes:
        lake = str(work / f"site-{m}")
        shutil.rmtree(lake, ignore_errors=True)
        shutil.rmtree(lake + "-site", ignore_errors=True)
        t = time.perf_counter()
        try:
            s = got[m] = one("site", lake=lake, models=m)
        except RuntimeError as exc:
            got[m] = {"error": str(exc)}
            table.add(f"{m:,} models: build", "failed: " + str(exc).strip().splitlines()[-1][:80], "", False)
            continue
        log(f"  site, {m:,} models: {time.perf_counter() - t:.1f} s")
        share = s["generator_s"] / max(s["seconds"], 1e-9)
        ok = None if m < 1000 else s["seconds"] <= 60
        table.add(f"{s['models']:,} models / {s['versions']:,} versions: build",
                  f"{s['seconds']:.1f} s ({s['pages']:,} pages, {s['problems']} problems)",
                  "≤ 60 s" if m >= 1000 else "", ok, s["peak_rss_mb"], rss_limit=None)
        t = s["timings"]
        table.add(f"{s['models']:,} models: generator (read {t.get('read', 0):.2f} + document "
                  f"{t.get('document', 0):.2f} + render {t.get('render', 0):.2f})",
                  f"{s['generator_s']:.2f} s ({share:.0%})", "≤ 20% of build", share <= 0.20)
        table.add(f"{s['models']:,} models: MkDocs", f"{s['mkdocs_s']:.1f} s")
        table.add(f"{s['models']:,} models: search index / whole site",
                  f"{s['search_index_kb']:,.0f} KB / {s['site_mb']:.1f} MB")
    return table, got


QUESTION_VERSIONS = 10
QUESTIONS = {
    "show": "show(model): its versions, states, targets",
    "candidates": "candidates(model, target=...)",
    "history": "history(model)",
    "lineage": "lineage(model, version)",
}
WHOLE = {
    "latest_approved": "latest_approved, every model (Arrow)",
    "deployments": "deployments, every model (Arrow)",
    "rollback_candidates": "rollback_candidates, every model (Arrow)",
    "deployments_dicts": "deployments, every model (sql(): a dict per row)",
}


def scaling_table(results: dict[int, dict[str, Any]]) -> Table | None:
    sizes = sorted(results)
    if len(sizes) < 2:
        return None
    lo, hi = sizes[0], sizes[-1]
    table = Table(f"scaling, compacted reads: {hi:,} vs {lo:,} versions")
    for view in QUESTIONS:
        a = results[lo]["reads_after"][view]["median_ms"]
        b = results[hi]["reads_after"][view]["median_ms"]
        ratio = b / max(a, 1e-3)
        table.add(QUESTIONS[view], f"{a:.1f} → {b:.1f} ms ({ratio:.1f}×)", "within 2×", ratio <= 2)
    for view in ("latest_approved", "deployments", "rollback_candidates"):
        ra, rb = results[lo]["reads_after"][view], results[hi]["reads_after"][view]
        per_a = 1000 * ra["median_ms"] / max(ra["rows"], 1)
        per_b = 1000 * rb["median_ms"] / max(rb["rows"], 1)
        table.add(f"{WHOLE[view]}: answer {ra['rows']:,} → {rb['rows']:,} rows",
                  f"{ra['median_ms']:.1f} → {rb['median_ms']:.1f} ms; {per_a:.0f} → {per_b:.0f} µs per row",
                  "grows with the answer")
    a, b = results[lo]["reads_after"]["resolve_median_us"], results[hi]["reads_after"]["resolve_median_us"]
    table.add("resolve warm median", f"{a:.1f} → {b:.1f} µs ({b / max(a, 1e-3):.1f}×)", "within 2×", b <= 2 * a)
    a, b = results[lo]["cold_after"]["median_ms"], results[hi]["cold_after"]["median_ms"]
    table.add("cold `catalog resolve`", f"{a:.0f} → {b:.0f} ms ({b / max(a, 1e-3):.1f}×)", "within 2×", b <= 2 * a)
    return table


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Benchmark the catalog (see benchmarks/README.md).")
    p.add_argument("--versions", default="1000,10000,100000", help="lake sizes, comma-separated")
    p.add_argument("--quick", action="store_true", help="1k versions and the 100-model site only")
    p.add_argument("--sites", default="100,1000", help="models per site build, comma-separated ('' for none)")
    p.add_argument("--out", help="also write the tables as Markdown to this file")
    p.add_argument("--json", dest="json_out", help="also write the raw results as JSON to this file")
    p.add_argument("--work", help="where the lakes go (default: a temporary folder, removed afterwards)")
    p.add_argument("--tail", type=int, default=110,
                   help="one-row files in each lake before compaction (default: ~99 in events, the most a lake "
                        "whose writers compact at 100 small files per table holds)")
    p.add_argument("--register-n", type=int, default=400, help="versions registered through the API")
    p.add_argument("--cli-n", type=int, default=20, help="versions registered through the CLI in-process")
    p.add_argument("--proc-n", type=int, default=5, help="`catalog register` processes")
    p.add_argument("--bulk-max", type=int, default=100_000, help="largest register_many call")
    p.add_argument("--repeat", type=int, default=9, help="timed repeats of each view")
    p.add_argument("--calls", type=int, default=5000, help="warm resolve calls")
    p.add_argument("--cold-runs", type=int, default=10, help="cold `catalog resolve` processes")
    p.add_argument("--repeat-before", type=int, default=2, help="timed repeats of each view before compaction")
    p.add_argument("--cold-runs-before", type=int, default=3, help="cold `catalog resolve` processes before compaction")
    # child side
    p.add_argument("--one", choices=sorted(MEASURES), help=argparse.SUPPRESS)
    p.add_argument("--lake", help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, default=1000, help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, default=100, help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=7, help=argparse.SUPPRESS)
    p.add_argument("--runs", type=int, default=10, help=argparse.SUPPRESS)
    p.add_argument("--models", type=int, default=100, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def run(a: argparse.Namespace, log: Any = None) -> tuple[str, dict[str, Any]]:
    """Run every measurement; returns (Markdown tables, raw results)."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    sizes = [1000] if a.quick else [int(s.replace("_", "")) for s in a.versions.split(",") if s.strip()]
    sites = [100] if a.quick and a.sites == "100,1000" else [int(s) for s in a.sites.split(",") if s.strip()]
    temporary = a.work is None
    work = Path(tempfile.mkdtemp(prefix="catalog-bench-") if temporary else a.work)
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    parts: list[str] = []
    results: dict[str, Any] = {"sizes": {}, "sites": {}}
    try:
        for n in sizes:
            table, got = bench_size(n, work, a, log)
            results["sizes"][n] = got
            print(table.markdown(), flush=True)
            parts.append(table.markdown())
        scaling = scaling_table(results["sizes"])
        if scaling:
            print(scaling.markdown(), flush=True)
            parts.append(scaling.markdown())
        if sites:
            table, got = bench_sites(sites, work, log)
            results["sites"] = got
            print(table.markdown(), flush=True)
            parts.append(table.markdown())
            parts.append(__import__("site_build").section(sites, work, log)[0].markdown())  # benchmarks/site_build.py
    finally:
        if temporary:
            shutil.rmtree(work, ignore_errors=True)
    total = time.perf_counter() - start
    footer = (f"Total {total:.0f} s on {os.cpu_count()} CPU(s), Python {sys.version.split()[0]}. "
              f"Peak RSS target: ≤ {RSS_LIMIT_MB:.0f} MB for everything but the site build.\n")
    print(footer)
    parts.append(footer)
    results["total_s"] = round(total, 1)
    return "\n".join(parts), results


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if a.one:
        return child(a)
    text, results = run(a)
    if a.out:
        Path(a.out).write_text(text, encoding="utf-8")
    if a.json_out:
        Path(a.json_out).write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
