"""The catalog and MLflow side by side: the same workload, measured in the same run.

    python benchmarks/vs_mlflow.py                  # 500 models x 4 versions, one deployed per model
    python benchmarks/vs_mlflow.py --models 100     # smaller, while the machine is busy

MLflow is installed by this script into an environment of its own (never the
project's): ``~/.cache/catalog-bench/mlflow-<version>`` (``CATALOG_BENCH_CACHE``
moves it), made with ``python -m venv`` and ``pip install mlflow==<version>`` on
first use; ``--mlflow-python`` names another interpreter that has MLflow. MLflow
keeps its registry in SQLite (``sqlite:///.../mlflow.db``, the usual serverless
set-up); the catalog in a local lake folder, written durably.

Every measurement runs in a fresh process of its side (one JSON line out, with its
peak RSS): the load (register every version through the API, then deploy one
version per model: the catalog's approve + deploy, MLflow's alias), the serving
process (a warm process resolving each model once, in random order: the catalog's
``resolve("m@prod")``, MLflow's ``get_model_version_by_alias``; then the latest
version of every model: the catalog's ``latest_approved`` view, MLflow's
``search_registered_models``), fresh processes that resolve once (``catalog resolve``
against a client that resolves the alias) and that register once (``catalog
register`` against ``mlflow.register_model``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

# The newest MLflow the package index here installs: 3.18.0 is listed, but it needs
# mlflow-skinny==3.18.0, which the index does not have (pip: "No matching distribution").
MLFLOW_VERSION = "3.17.2"

_RSS = """
def peak_rss_mb():
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    import resource
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
"""

# Each side's workload, run by that side's interpreter: ``python -c SCRIPT PHASE LOCATION JSON``.
MLFLOW_SIDE = _RSS + textwrap.dedent(
    """
    import json, logging, os, random, statistics, sys, time, warnings
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    phase, db, opts = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    uri = "sqlite:///" + db
    from mlflow import MlflowClient
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    out = {}
    models = [f"model-{i:05d}" for i in range(opts["models"])]
    if phase == "create":
        client.search_registered_models(max_results=1)  # creates the schema (alembic), not timed
    elif phase == "load":
        # From an empty registry, as the catalog's: its first register of a model makes the
        # model, MLflow's needs create_registered_model first (timed too).
        t = time.perf_counter()
        for m in models:
            client.create_registered_model(m)
        for v in range(1, opts["versions"] + 1):
            for m in models:
                client.create_model_version(m, f"s3://models/{m}/{v}/model.pkl")
        out["register_s"] = time.perf_counter() - t
        t = time.perf_counter()
        for m in models:
            client.set_registered_model_alias(m, "prod", str(opts["deployed"]))
        out["deploy_s"] = time.perf_counter() - t
    elif phase == "serve":
        order = list(models)
        random.Random(7).shuffle(order)
        firsts = []
        for m in order:
            t = time.perf_counter()
            source = client.get_model_version_by_alias(m, "prod").source
            firsts.append(time.perf_counter() - t)
            assert source.endswith(f"/{opts['deployed']}/model.pkl"), source
        out["first_resolve_ms"] = statistics.median(firsts) * 1e3
        out["resolve_rss_mb"] = peak_rss_mb()  # a serving process: what it holds once it has resolved
        times = []
        for _ in range(opts["repeat"]):
            t = time.perf_counter()
            latest, token = {}, None
            while True:
                page = client.search_registered_models(max_results=1000, page_token=token)
                for rm in page:
                    latest[rm.name] = max(v.version for v in rm.latest_versions)
                token = page.token
                if not token:
                    break
            times.append(time.perf_counter() - t)
            assert len(latest) == len(models)
        out["latest_all_ms"] = statistics.median(times) * 1e3
    elif phase == "resolve_once":
        print(client.get_model_version_by_alias(opts["model"], "prod").source)
    elif phase == "register_once":
        import mlflow
        mlflow.set_registry_uri(uri)
        mlflow.register_model(opts["artifact"], opts["model"])
    out["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(out))
    """
)

CATALOG_SIDE = _RSS + textwrap.dedent(
    """
    import json, random, statistics, sys, time
    phase, lake, opts = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    out = {}
    models = [f"model-{i:05d}" for i in range(opts["models"])]
    if phase == "load":
        import pyarrow.parquet  # noqa: F401  (what writing imports, before the clock)
        from catalog import Registry
        ana, bob = Registry(lake, actor="ana"), Registry(lake, actor="bob")
        t = time.perf_counter()
        for v in range(1, opts["versions"] + 1):
            for m in models:
                ana.register(m, f"s3://models/{m}/{v}/model.pkl", capture_git=False)
        out["register_s"] = time.perf_counter() - t
        t = time.perf_counter()
        for m in models:
            bob.approve(m, opts["deployed"])
            bob.deploy(m, opts["deployed"], target="prod")
        out["deploy_s"] = time.perf_counter() - t
    elif phase == "serve":
        from catalog import Registry
        reg = Registry(lake, actor="svc")
        order = list(models)
        random.Random(7).shuffle(order)
        firsts = []
        for m in order:
            t = time.perf_counter()
            uri = reg.resolve(f"{m}@prod")
            firsts.append(time.perf_counter() - t)
            assert uri.endswith(f"/{opts['deployed']}/model.pkl"), uri
        out["first_resolve_ms"] = statistics.median(firsts) * 1e3
        out["resolve_rss_mb"] = peak_rss_mb()  # a serving process: what it holds once it has resolved
        out["resolve_imports"] = sorted({m.split(".")[0] for m in sys.modules} & {"duckdb", "pyarrow", "pandas"})
        times = []
        for _ in range(opts["repeat"]):
            t = time.perf_counter()
            table = reg.sql_arrow("select model, version, artifact_uri from latest_approved")
            times.append(time.perf_counter() - t)
            assert table.num_rows == len(models)
        out["latest_all_ms"] = statistics.median(times) * 1e3
    out["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(out))
    """
)


def cache_dir() -> Path:
    return Path(os.environ.get("CATALOG_BENCH_CACHE") or Path.home() / ".cache" / "catalog-bench")


def mlflow_python(version: str = MLFLOW_VERSION, log: Any = print) -> str:
    """The interpreter of MLflow's own environment, made (venv + pip) on first use."""
    venv = cache_dir() / f"mlflow-{version}"
    python = venv / "bin" / "python"
    ready = venv / ".installed"
    if not ready.exists():
        log(f"  installing mlflow=={version} into {venv} (once; a few minutes)")
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", f"mlflow=={version}"], check=True)
        ready.touch()
    return str(python)


def _side(python: str, script: str, phase: str, location: str, opts: dict[str, Any], cwd: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "CATALOG_ACTOR": "bench", "MLFLOW_TRACKING_USERNAME": "bench"}
    done = subprocess.run([python, "-c", script, phase, location, json.dumps(opts)], capture_output=True, text=True,
                          env=env, cwd=cwd)
    if done.returncode != 0:
        raise RuntimeError(f"{phase} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _fresh(argv: list[str], runs: int, cwd: str, expect: str | None = None) -> float:
    """Median wall time (ms) of ``runs`` fresh processes ``argv``."""
    times = []
    env = {**os.environ, "PYTHONPATH": str(REPO), "CATALOG_ACTOR": "bench"}
    for _ in range(runs):
        t = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd)
        times.append(time.perf_counter() - t)
        if done.returncode != 0 or (expect is not None and expect not in done.stdout.splitlines()):
            raise RuntimeError(f"{argv[0]} ... {argv[-3:]} failed: {done.stdout[-500:]} {done.stderr[-2000:]}")
    return statistics.median(times) * 1e3


def catalog_exe() -> list[str]:
    exe = Path(sys.executable).with_name("catalog")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "catalog"]


def run(models: int = 500, versions: int = 4, *, fresh_runs: int = 5, repeat: int = 5, python: str | None = None,
        work: str | None = None, log: Any = None) -> dict[str, Any]:
    """Both sides' figures for one workload (see the module)."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    python = python or mlflow_python(log=log)
    version = subprocess.run([python, "-c", "import mlflow; print(mlflow.__version__)"], capture_output=True,
                             text=True, check=True).stdout.strip()
    base = Path(work or tempfile.mkdtemp(prefix="catalog-vs-mlflow-"))
    base.mkdir(parents=True, exist_ok=True)
    opts = {"models": models, "versions": versions, "deployed": max(1, versions // 2), "repeat": repeat}
    lake, db = str(base / "lake"), str(base / "mlflow.db")
    shutil.rmtree(lake, ignore_errors=True)
    if os.path.exists(db):
        os.remove(db)
    got: dict[str, Any] = {"mlflow_version": version, "models": models, "versions": versions}
    try:
        t = time.perf_counter()
        _side(python, MLFLOW_SIDE, "create", db, opts, str(base))
        got["mlflow_load"] = _side(python, MLFLOW_SIDE, "load", db, opts, str(base))
        log(f"  MLflow load: {time.perf_counter() - t:.0f} s")
        t = time.perf_counter()
        got["catalog_load"] = _side(sys.executable, CATALOG_SIDE, "load", lake, opts, str(base))
        log(f"  catalog load: {time.perf_counter() - t:.0f} s")
        got["mlflow_serve"] = _side(python, MLFLOW_SIDE, "serve", db, opts, str(base))
        got["catalog_serve"] = _side(sys.executable, CATALOG_SIDE, "serve", lake, opts, str(base))
        rng = random.Random(11)
        model = rng.choice([f"model-{i:05d}" for i in range(models)])
        expect = f"s3://models/{model}/{opts['deployed']}/model.pkl"
        got["mlflow_resolve_once_ms"] = _fresh(
            [python, "-c", MLFLOW_SIDE, "resolve_once", db, json.dumps({**opts, "model": model})],
            fresh_runs, str(base), expect)
        got["catalog_resolve_once_ms"] = _fresh([*catalog_exe(), "--lake", lake, "resolve", f"{model}@prod"],
                                                fresh_runs * 2, str(base), expect)
        got["python_ms"] = _fresh([sys.executable, "-c", "pass"], fresh_runs, str(base))
        got["mlflow_register_once_ms"] = statistics.median(
            _fresh([python, "-c", MLFLOW_SIDE, "register_once", db,
                    json.dumps({**opts, "model": model, "artifact": f"s3://models/{model}/fresh-{k}/model.pkl"})],
                   1, str(base)) for k in range(fresh_runs))
        got["catalog_register_once_ms"] = statistics.median(
            _fresh([*catalog_exe(), "--lake", lake, "register", model, f"s3://models/{model}/fresh-{k}/model.pkl",
                    "--no-git"], 1, str(base)) for k in range(fresh_runs))
        log("  fresh processes: done")
    finally:
        if work is None:
            shutil.rmtree(base, ignore_errors=True)
    return got


def run_catalog(models: int = 500, versions: int = 4, *, fresh_runs: int = 5) -> dict[str, Any]:
    """The catalog's half alone (no MLflow): the load, the serving process and fresh
    ``catalog register`` processes, for comparing two checkouts of the catalog."""
    base = Path(tempfile.mkdtemp(prefix="catalog-half-"))
    opts = {"models": models, "versions": versions, "deployed": max(1, versions // 2), "repeat": 5}
    lake, model = str(base / "lake"), "model-00000"
    try:
        got: dict[str, Any] = {"repo": str(REPO), "models": models, "versions": versions}
        got["catalog_load"] = _side(sys.executable, CATALOG_SIDE, "load", lake, opts, str(base))
        got["catalog_serve"] = _side(sys.executable, CATALOG_SIDE, "serve", lake, opts, str(base))
        got["catalog_register_once_ms"] = statistics.median(
            _fresh([*catalog_exe(), "--lake", lake, "register", model, f"s3://models/{model}/fresh-{k}/model.pkl",
                    "--no-git"], 1, str(base)) for k in range(fresh_runs))
        got["python_ms"] = _fresh([sys.executable, "-c", "pass"], fresh_runs, str(base))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return got


def table(got: dict[str, Any]) -> str:
    """The side-by-side table, each row with its target from issue #16 and ✓/✗."""
    n = got["models"] * got["versions"]
    ml, ca = got["mlflow_load"], got["catalog_load"]
    ms, cs = got["mlflow_serve"], got["catalog_serve"]
    rows = []

    def row(name: str, mlflow: str, catalog: str, ratio: float, target: str, ok: bool | None) -> None:
        mark = "" if ok is None else (" ✓" if ok else " ✗")
        rows.append(f"| {name} | {mlflow} | {catalog} | {ratio:.1f}× | {target}{mark} |")

    m_rate, c_rate = n / ml["register_s"], n / ca["register_s"]
    row(f"register through the API ({n:,} versions, durable)", f"{m_rate:,.0f} versions/s", f"{c_rate:,.0f} versions/s",
        c_rate / m_rate, "≥ 2.5×", c_rate / m_rate >= 2.5)
    row("a fresh process that registers once", f"{got['mlflow_register_once_ms']:,.0f} ms",
        f"{got['catalog_register_once_ms']:,.0f} ms", got["mlflow_register_once_ms"] / got["catalog_register_once_ms"],
        "≥ 10×", got["mlflow_register_once_ms"] / got["catalog_register_once_ms"] >= 10)
    row("first resolve of a model in a warm process (each model once, random order), median",
        f"{ms['first_resolve_ms']:.2f} ms", f"{cs['first_resolve_ms']:.3f} ms",
        ms["first_resolve_ms"] / cs["first_resolve_ms"], "≥ 10×", ms["first_resolve_ms"] / cs["first_resolve_ms"] >= 10)
    row("a fresh process that resolves once (`catalog resolve` / a client resolving the alias)",
        f"{got['mlflow_resolve_once_ms']:,.0f} ms", f"{got['catalog_resolve_once_ms']:,.0f} ms "
        f"(python alone {got['python_ms']:.0f} ms)", got["mlflow_resolve_once_ms"] / got["catalog_resolve_once_ms"],
        "≥ 50×", got["mlflow_resolve_once_ms"] / got["catalog_resolve_once_ms"] >= 50)
    row(f"latest version of every model ({got['models']:,} models)", f"{ms['latest_all_ms']:.0f} ms",
        f"{cs['latest_all_ms']:.1f} ms", ms["latest_all_ms"] / cs["latest_all_ms"], "≥ 10×",
        ms["latest_all_ms"] / cs["latest_all_ms"] >= 10)
    m_rss, c_rss = max(ml["peak_rss_mb"], ms["peak_rss_mb"]), max(ca["peak_rss_mb"], cs["peak_rss_mb"])
    row("peak RSS of the workload processes (load / serve)", f"{ml['peak_rss_mb']:.0f} / {ms['peak_rss_mb']:.0f} MB",
        f"{ca['peak_rss_mb']:.0f} / {cs['peak_rss_mb']:.0f} MB", m_rss / c_rss, "≥ 2× (≤ ½)", m_rss / c_rss >= 2)
    if "resolve_rss_mb" in ms and "resolve_rss_mb" in cs:
        row("peak RSS of a serving process (the resolves above, before the whole-lake query)",
            f"{ms['resolve_rss_mb']:.0f} MB", f"{cs['resolve_rss_mb']:.0f} MB", ms["resolve_rss_mb"] / cs["resolve_rss_mb"],
            "≥ 2× (≤ ½)", ms["resolve_rss_mb"] / cs["resolve_rss_mb"] >= 2)
    head = (f"### Side by side: MLflow {got['mlflow_version']} on SQLite and the catalog, same workload, same run "
            f"({got['models']:,} models × {got['versions']} versions, one deployed per model)\n\n"
            "| | MLflow | catalog | catalog's advantage | target |\n| --- | --- | --- | --- | --- |")
    return "\n".join([head, *rows, ""])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", type=int, default=500)
    p.add_argument("--versions", type=int, default=4, help="versions per model")
    p.add_argument("--fresh-runs", type=int, default=5, help="fresh processes per figure (the catalog's resolve: twice as many)")
    p.add_argument("--mlflow-python", help="an interpreter with MLflow (default: its own venv, made on first use)")
    p.add_argument("--work", help="keep the lake and the SQLite file here")
    p.add_argument("--json", dest="json_out", help="also write the raw figures as JSON to this file")
    p.add_argument("--catalog-only", action="store_true",
                   help="the catalog's figures alone, as JSON (to compare two checkouts; no MLflow)")
    a = p.parse_args(argv)
    if a.catalog_only:
        print(json.dumps(run_catalog(a.models, a.versions, fresh_runs=a.fresh_runs)))
        return 0
    got = run(a.models, a.versions, fresh_runs=a.fresh_runs, python=a.mlflow_python, work=a.work)
    print(table(got))
    if a.json_out:
        Path(a.json_out).write_text(json.dumps(got, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
