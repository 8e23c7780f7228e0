"""Smoke test of the benchmark harness at a tiny size: every row is there, numbers are positive.

No timing assertion: the targets are the benchmark's business, not the test suite's.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_generator_keeps_lifecycle_semantics():
    synth = _load("synth").generate(300, seed=3)
    assert len(synth.versions) == 300
    assert len(synth.events) > 5 * 300
    state: dict[tuple[str, int], str] = {}
    running: dict[tuple[str, str], int] = {}
    ran: dict[tuple[str, str], list[int]] = {}
    for e in synth.events:
        key = (e["model"], e["version"])
        if e["kind"] in ("approve", "reject", "deprecate"):
            assert e["state"] == {"approve": "approved", "reject": "rejected", "deprecate": "deprecated"}[e["kind"]]
            assert state.get(key, "candidate") == ("approved" if e["kind"] == "deprecate" else "candidate")
            if e["kind"] == "deprecate":
                assert key[1] not in [v for (m, _), v in running.items() if m == key[0]]
            state[key] = e["state"]
        else:
            assert e["state"] is None and e["target"]
            assert state.get(key) == "approved", e  # only approved versions deploy or are rolled back to
            where = (e["model"], e["target"])
            if e["kind"] == "rollback":
                assert e["version"] in ran[where] and e["version"] != running[where]
            running[where] = e["version"]
            ran.setdefault(where, []).append(e["version"])
    assert {"approve", "reject", "deploy", "rollback", "deprecate"} <= {e["kind"] for e in synth.events}
    assert any(r["parents"] for r in synth.versions)
    assert len({e["event_id"] for e in synth.events}) == len(synth.events)


def test_harness_prints_every_row(tmp_path):
    run = _load("run")
    args = run.parse_args([
        "--versions", "200", "--sites", "", "--work", str(tmp_path), "--tail", "50",
        "--register-n", "10", "--cli-n", "3", "--proc-n", "1", "--repeat", "1", "--repeat-before", "1",
        "--calls", "200", "--cold-runs", "1", "--cold-runs-before", "1",
    ])
    text, results = run.run(args, log=lambda msg: None)
    for row in (
        "synthetic lake: models / versions / events", "register, API, durable", "register, CLI in-process",
        "`catalog register` processes", "register_many", "compact",
    ):
        assert row in text, row
    for label in ("before compact", "after compact"):
        for row in ("open registry", "resolve warm median / p95", "cold `catalog resolve` process",
                    "latest_approved", "deployments", "rollback_candidates", "lineage(model, version)"):
            assert f"[{label}] {row}" in text, (label, row)
    got = results["sizes"][200]
    for key in ("reads_before", "reads_after"):
        r = got[key]
        assert r["resolve_median_us"] > 0 and r["resolve_p95_us"] > 0 and r["open_ms"] > 0
        for view in ("latest_approved", "deployments", "rollback_candidates", "lineage"):
            assert r[view]["median_ms"] > 0 and r[view]["rows"] > 0, (key, view)
    assert got["register_api"]["per_s"] > 0 and got["register_cli"]["per_s"] > 0
    assert got["register_proc"]["per_s"] > 0
    assert got["cold_before"]["median_ms"] > 0 and got["cold_after"]["median_ms"] > 0
    assert got["compact"]["result"]["events"]["rows"] > 0
    for measured in got.values():
        assert measured.get("peak_rss_mb") is None or measured["peak_rss_mb"] > 0
    # Every table row carries a number or a verdict, and the table is Markdown.
    assert re.search(r"^\| measurement +\| result", text, re.M)


def test_site_build_row(tmp_path):
    run = _load("run")
    args = run.parse_args(["--versions", "", "--sites", "10", "--work", str(tmp_path)])
    text, results = run.run(args, log=lambda msg: None)
    site = results["sites"][10]
    assert site["pages"] > 10 and site["search_index_kb"] > 0 and site["mkdocs_s"] > 0
    assert "10 models: MkDocs" in text
    assert "10 models: rebuild after one decision" in text  # benchmarks/site_build.py
