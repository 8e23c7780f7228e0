"""Benchmark `catalog build`: a full build, where its time goes, an incremental rebuild after one
decision, the search index in Chromium, and Zensical side by side.

    python benchmarks/site_build.py                       # 1,000 and 10,000 models
    python benchmarks/site_build.py --models 1000 --zensical --out benchmarks/site_build.md

Each measurement runs in a fresh process (``--one MEASURE``) that prints one JSON line,
so the peak RSS reported (VmHWM, and its children's) is that measurement's alone.
benchmarks/run.py calls :func:`section` for its site rows.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
for _p in (str(REPO), str(HERE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from run import Table, peak_rss_mb  # noqa: E402  (the shared table and RSS helpers)

ZENSICAL = "zensical==0.0.73"
CLI_ROUNDS = 3   # rebuilds by `catalog build`, each after a decision of its own: the median is reported
CHROMIUM = Path("/usr/bin/chromium")


# --------------------------------------------------------------------------- measurements (child side)


def _size_mb(folder: Path) -> float:
    return round(sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20, 1)


def m_full(a: argparse.Namespace) -> dict[str, Any]:
    """A lake of ``models`` models (synth.site_lake, compacted), then a full build into a new folder."""
    from catalog import Registry
    from catalog.site import build_site
    from synth import site_lake

    lake = Path(a.lake)
    if not lake.exists():
        site_lake(str(lake), a.size)   # written as compacted chunks already
        try:
            Registry(str(lake), actor="bench").compact()
        except Exception as exc:  # noqa: BLE001 - a compaction that fails (memory) leaves the lake as it was
            print(f"compaction skipped: {exc!s:.200}", file=sys.stderr)
    out = Path(a.site)
    t = time.perf_counter()
    report = build_site(Registry(str(lake), actor="bench"), out, build_dir=a.md or None)
    seconds = time.perf_counter() - t
    index = out / "search" / "search_index.json"
    html = sum(f.stat().st_size for f in out.rglob("*.html"))
    return {"models": report.models, "versions": report.versions, "pages": report.pages,
            "seconds": round(seconds, 2), "timings": {k: round(v, 2) for k, v in report.timings.items()},
            "problems": sum(len(v) for v in report.problems.values()),
            "search_index_mb": round(index.stat().st_size / 2**20, 2), "html_mb": round(html / 2**20, 1),
            "site_mb": _size_mb(out)}


def _one_decision(lake: str) -> None:
    """An approval of a candidate, else a deploy of an approved version."""
    from catalog import Registry

    reg = Registry(lake, actor="bench-approver")
    row = reg.sql("SELECT model, version FROM model_versions WHERE state = 'candidate' ORDER BY model, version LIMIT 1").rows
    if row:
        reg.approve(row[0]["model"], row[0]["version"], note="benchmark: one decision")
    else:
        row = reg.sql("SELECT model, version FROM model_versions WHERE state = 'approved' "
                      "AND NOT list_contains(deployed_to, 'bench-target') ORDER BY model, version LIMIT 1").rows
        reg.deploy(row[0]["model"], row[0]["version"], target="bench-target", note="benchmark: one decision")


def m_incremental(a: argparse.Namespace) -> dict[str, Any]:
    """One decision, then a build into the same site (build_site, timed by stage); then, three
    times, another decision and ``catalog build`` as a person runs it (a new process: start-up
    and imports included), timed from outside."""
    from catalog import Registry
    from catalog.site import build_site

    _one_decision(a.lake)
    out = Path(a.site)
    inodes = {p.relative_to(out).as_posix(): p.stat().st_ino for p in out.rglob("*") if p.is_file()}
    t = time.perf_counter()
    report = build_site(Registry(a.lake, actor="bench"), out)
    seconds = time.perf_counter() - t
    after = {p.relative_to(out).as_posix(): p.stat().st_ino for p in out.rglob("*") if p.is_file()}
    rewritten = sorted(k for k, ino in after.items() if inodes.get(k) != ino)
    runs, reused = [], []
    # (with the catalog's modules compiled, as pip leaves an installed package: run from a checkout
    # with PYTHONDONTWRITEBYTECODE=1, each process would compile them again; __pycache__ is ignored by git)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "catalog")], check=True, capture_output=True)
    for _ in range(CLI_ROUNDS):
        _one_decision(a.lake)
        t = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "catalog", "--lake", a.lake, "build", "--out", str(out), "--json"],
                              capture_output=True, text=True)
        runs.append(round(time.perf_counter() - t, 2))
        if done.returncode != 0:
            raise RuntimeError(f"catalog build failed: {done.stderr.strip()[-500:]}")
        reused.append(json.loads(done.stdout)["reused"])
    return {"seconds": round(seconds, 2), "timings": {k: round(v, 2) for k, v in report.timings.items()},
            "pages": report.pages, "reused": report.reused, "files": len(after), "rewritten": len(rewritten),
            "rewritten_pages": [k for k in rewritten if k.endswith(".html")][:20],
            "cli_s": sorted(runs)[len(runs) // 2], "cli_runs": runs, "cli_reused": min(reused)}


def m_plain_mkdocs(a: argparse.Namespace) -> dict[str, Any]:
    """MkDocs alone over the kept Markdown, with and without catalog.site.accel."""
    from catalog.site.build import run_mkdocs

    out = {}
    for accelerate in (True, False):
        target = Path(tempfile.mkdtemp(prefix="bench-mkdocs-"))
        t = time.perf_counter()
        run_mkdocs(Path(a.md), target / "site", accelerate=accelerate)
        out["accelerated_s" if accelerate else "plain_s"] = round(time.perf_counter() - t, 2)
        shutil.rmtree(target, ignore_errors=True)
    return out


def m_search(a: argparse.Namespace) -> dict[str, Any]:
    """Chromium: from opening the home page to the first result for a model's name."""
    from playwright.sync_api import sync_playwright

    from catalog.site import make_server

    server = make_server(a.site, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    name = json.loads(Path(a.site, "api", "models.json").read_text())["models"][-1]["model"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page()
        t = time.perf_counter()
        page.goto(url)
        box = page.locator("input.md-search__input")
        box.click()
        box.fill(name.split("-")[0])            # a word of the model names (a team)
        page.locator(".md-search-result__item").first.wait_for(state="visible", timeout=300_000)
        first = time.perf_counter() - t
        # (fill replaces the query: emptying the box first resets Material's search to its
        # "Type to start searching" state, which the next query then never leaves)
        t = time.perf_counter()
        box.fill(name.split("-")[1])
        page.locator(".md-search-result__item").first.wait_for(state="visible", timeout=300_000)
        again = time.perf_counter() - t
        browser.close()
    server.shutdown()
    return {"first_result_s": round(first, 2), "next_query_s": round(again, 2), "query": name}


def m_zensical(a: argparse.Namespace) -> dict[str, Any]:
    """Zensical (its own venv) over the same Markdown and configuration."""
    from catalog.site.layers import DEFAULT_MKDOCS

    project = Path(tempfile.mkdtemp(prefix="bench-zensical-"))
    shutil.copytree(a.md, project / "docs")
    config = DEFAULT_MKDOCS.read_text(encoding="utf-8") + "\ndocs_dir: docs\nsite_dir: site\n"
    (project / "mkdocs.yml").write_text(config, encoding="utf-8")
    t = time.perf_counter()
    done = subprocess.run([a.zensical_exe, "build", "-f", "mkdocs.yml"], cwd=project, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    result = {"seconds": round(seconds, 2), "ok": done.returncode == 0,
              "search_index_mb": round((project / "site" / "search.json").stat().st_size / 2**20, 2)
              if (project / "site" / "search.json").exists() else None,
              "tail": (done.stdout + done.stderr).strip().splitlines()[-3:]}
    shutil.rmtree(project, ignore_errors=True)
    return result


MEASURES = {"full": m_full, "incremental": m_incremental, "plain_mkdocs": m_plain_mkdocs, "search": m_search,
            "zensical": m_zensical}


# --------------------------------------------------------------------------- orchestration (parent side)


def one(measure: str, **options: Any) -> dict[str, Any]:
    args = [sys.executable, str(Path(__file__).resolve()), "--one", measure]
    for key, value in options.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    env = {**os.environ, "CATALOG_ACTOR": "bench", "PYTHONHASHSEED": "0"}
    done = subprocess.run(args, capture_output=True, text=True, env=env, cwd=str(REPO))
    if done.returncode != 0:
        raise RuntimeError(f"measurement {measure} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def zensical_exe(work: Path, log: Any) -> str:
    """Zensical installed into a venv of its own (never the project's)."""
    venv = work / "zensical-venv"
    exe = venv / "bin" / "zensical"
    if not exe.exists():
        log(f"  installing {ZENSICAL} into {venv} ...")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", ZENSICAL], check=True)
    return str(exe)


def section(sizes: list[int], work: Path, log: Any, *, zensical: bool = False,
            browser: bool = True, plain: bool = True) -> tuple[Table, dict[str, Any]]:
    """Every site-build row, for each size of ``sizes`` (models)."""
    table = Table("catalog build (site): full, incremental, search, engines")
    got: dict[str, Any] = {}
    base: float | None = None
    for m in sizes:
        lake, site, md = work / f"sitebuild-{m}", work / f"sitebuild-{m}-site", work / f"sitebuild-{m}-md"
        for p in (site, md) if os.environ.get("SITE_BENCH_REUSE_LAKES") == "1" else (lake, site, md):
            shutil.rmtree(p, ignore_errors=True)
        t = time.perf_counter()
        # (the Markdown is kept in a folder only for the measurements that run an engine over it;
        # `catalog build` hands MkDocs its pages in memory)
        full = one("full", lake=lake, site=site, size=m, md=md if zensical or (plain and m <= 1000) else "")
        log(f"  site build, {m:,} models: {time.perf_counter() - t:.0f} s")
        got[m] = {"full": full}
        tm = full["timings"]
        ok = full["seconds"] <= 30 if m == 1000 else (full["seconds"] <= 10 * base if base else None)
        target = "≤ 30 s" if m == 1000 else ("≤ 10× the 1k build" if base else "")
        table.add(f"{m:,} models / {full['versions']:,} versions: full build ({full['pages']:,} pages)",
                  f"{full['seconds']:.1f} s: read {tm.get('read', 0):.1f}, document {tm.get('document', 0):.1f}, "
                  f"render {tm.get('render', 0):.1f}, SQL page {tm.get('sql', 0):.1f}, MkDocs {tm.get('mkdocs', 0):.1f}",
                  target, ok, full["peak_rss_mb"], rss_limit=None)
        table.add(f"{m:,} models: generated HTML / search index / whole site",
                  f"{full['html_mb']:.0f} MB / {full['search_index_mb']:.1f} MB / {full['site_mb']:.0f} MB")
        if m == 1000:
            base = full["seconds"]
        if plain and m <= 1000:
            mk = got[m]["mkdocs"] = one("plain_mkdocs", md=md)
            table.add(f"{m:,} models: MkDocs alone, plain → with catalog.site.accel",
                      f"{mk['plain_s']:.1f} → {mk['accelerated_s']:.1f} s (same bytes)")
        inc = got[m]["incremental"] = one("incremental", lake=lake, site=site)
        ti = inc["timings"]
        table.add(f"{m:,} models: rebuild after one decision (build_site)",
                  f"{inc['seconds']:.1f} s: read {ti.get('read', 0):.1f}, document {ti.get('document', 0):.1f}, "
                  f"render {ti.get('render', 0):.1f}, SQL page {ti.get('sql', 0):.1f}, MkDocs {ti.get('mkdocs', 0):.1f}; "
                  f"{inc['pages'] - inc['reused']:,} of {inc['pages']:,} pages rendered, "
                  f"{inc['rewritten']:,} of {inc['files']:,} files rewritten", "", None, inc["peak_rss_mb"], rss_limit=None)
        table.add(f"{m:,} models: rebuild after one decision, `catalog build` (a new process)",
                  f"{inc['cli_s']:.1f} s, the median of {', '.join(f'{r:.1f}' for r in inc['cli_runs'])}; "
                  f"at most {inc['pages'] - inc['cli_reused']:,} pages rendered",
                  "≤ 5 s" if m == 1000 else "", inc["cli_s"] <= 5 if m == 1000 else None)
        if browser and CHROMIUM.exists():
            try:
                s = got[m]["search"] = one("search", site=site)
                table.add(f"{m:,} models: Chromium, home page opened → first search result",
                          f"{s['first_result_s']:.1f} s (next query {s['next_query_s']:.2f} s)")
            except RuntimeError as exc:
                table.add(f"{m:,} models: Chromium search", "failed: " + str(exc).strip().splitlines()[-1][:80])
        if zensical:
            z = got[m]["zensical"] = one("zensical", md=md, zensical_exe=zensical_exe(work, log))
            table.add(f"{m:,} models: Zensical over the same pages",
                      f"{z['seconds']:.1f} s{'' if z['ok'] else ' (failed)'}; search index "
                      f"{z['search_index_mb'] or 0:.1f} MB", "", None, z["peak_rss_mb"], rss_limit=None)
    return table, got


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Benchmark catalog build (see the module docstring).")
    p.add_argument("--models", default="1000,10000", help="models per site, comma-separated")
    p.add_argument("--zensical", action="store_true", help=f"also build with {ZENSICAL} (installed in its own venv)")
    p.add_argument("--no-browser", action="store_true", help="skip the Chromium search measurement")
    p.add_argument("--no-plain", action="store_true", help="skip MkDocs without the accelerator")
    p.add_argument("--work", help="where lakes and sites go (default: a temporary folder, removed afterwards)")
    p.add_argument("--out", help="also write the table as Markdown to this file")
    p.add_argument("--json", dest="json_out", help="also write the raw results as JSON to this file")
    p.add_argument("--one", choices=sorted(MEASURES), help=argparse.SUPPRESS)
    for name in ("lake", "site", "md", "zensical-exe"):
        p.add_argument(f"--{name}", help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if a.one:
        t = time.perf_counter()
        result = MEASURES[a.one](a)
        result["wall_s"] = round(time.perf_counter() - t, 2)
        result["peak_rss_mb"] = peak_rss_mb()
        print(json.dumps(result))
        return 0
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    temporary = a.work is None
    work = Path(tempfile.mkdtemp(prefix="catalog-site-bench-") if temporary else a.work)
    work.mkdir(parents=True, exist_ok=True)
    try:
        sizes = [int(s) for s in a.models.split(",") if s.strip()]
        table, got = section(sizes, work, log, zensical=a.zensical, browser=not a.no_browser, plain=not a.no_plain)
    finally:
        if temporary:
            shutil.rmtree(work, ignore_errors=True)
    text = table.markdown() + f"\nOn {os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f} at the end.\n"
    print(text)
    if a.out:
        Path(a.out).write_text(text, encoding="utf-8")
    if a.json_out:
        Path(a.json_out).write_text(json.dumps(got, indent=1, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
