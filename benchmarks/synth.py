"""A synthetic metadata lake of realistic shape, for the benchmarks.

Shape: models with 1–50 versions (about 8 on average), several targets
(staging, canary, three production regions, a batch job), about 10 lifecycle
events per version, lineage (fine-tunes and ensembles of earlier models), data
refs, code, images, metrics, tags and dashboards on every version.

Lifecycle semantics are kept: a version is approved or rejected once; only
approved versions are deployed (staging first, then the others); a rollback
moves a target back to the version it ran before that is still approved; only
versions running nowhere are deprecated.

This is *synthetic data*: the history is written in bulk through the lake layer
(``Registry._lake.append``) with past timestamps, in chunks (as if compacted
from time to time) followed by a *tail* of one-row files (the activity since the
last compaction). The measured write paths (``register``, ``register_many``,
the CLI) go through the public API; see benchmarks/README.md.

    python benchmarks/synth.py LAKE --versions 10000
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

TARGETS = ("staging", "canary", "prod-eu", "prod-us", "prod-ap", "batch-nightly")
PROD = TARGETS[1:]
PEOPLE = [f"user{i:02d}" for i in range(30)]
APPROVERS = ["bob", "carol", "dan", "erin", "frank"]
TEAMS = ["retention", "search", "ads", "fraud", "risk", "growth", "vision", "speech", "ranking", "pricing"]
TASKS = ["classification", "regression", "ranking", "embedding", "forecasting", "detection"]
WORDS = (
    "weekly daily churn score fraud detector ranking model embeddings for search ads click "
    "through rate forecast demand vision speech transcription retrained on fresh data with "
    "calibration and a new feature set baseline challenger distilled quantised"
).split()
# Evidence as the registry records it (GateReport.evidence()), under the permissive default policy.
GATES = {
    "gates": [{"gate": "required", "passed": True, "detail": "owner, code_version, data_refs present",
               "seen": None, "expected": None}],
    "policy_sha256": None, "policy_source": None,
}
EPOCH = datetime(2025, 1, 1, tzinfo=timezone.utc)


def model_name(i: int) -> str:
    return f"{TEAMS[i % len(TEAMS)]}-{TASKS[(i // len(TEAMS)) % len(TASKS)]}-{i:05d}"


def version_sizes(n_versions: int, rng: random.Random, most: int = 50) -> list[int]:
    """Versions per model: 1–``most``, skewed (median ~6, mean ~8 for 50), summing to ``n_versions``."""
    sizes: list[int] = []
    total = 0
    while total < n_versions:
        k = max(1, min(most, int(rng.lognormvariate(1.8, 0.9))))
        k = min(k, n_versions - total)
        sizes.append(k)
        total += k
    return sizes


def _hex(rng: random.Random, n: int) -> str:
    return "%0*x" % (n, rng.getrandbits(4 * n))


def version_record(rng: random.Random, model: str, index: int, version: int,
                   parents: list[tuple[str, int, str]]) -> dict[str, Any]:
    """The keyword arguments of ``Registry.register`` (plus ``model``) for one version."""
    team = TEAMS[index % len(TEAMS)]
    words = rng.sample(WORDS, 8)
    return {
        "model": model,
        "artifact_uri": f"s3://models/{model}/{version}/model.pkl",
        "owner": PEOPLE[index % len(PEOPLE)],
        "description": " ".join(words).capitalize() + ".",
        "tags": {"team": team, "task": TASKS[(index // len(TEAMS)) % len(TASKS)], "tier": rng.choice(["gold", "silver"])},
        "code_repo": f"https://github.com/acme/{team}",
        "code_version": _hex(rng, 40),
        "runtime_image": f"ghcr.io/acme/train:{rng.randint(1, 3)}.{rng.randint(0, 9)}",
        "data_refs": list(dict.fromkeys(f"s3://data/{team}/{model}@2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
                                        for _ in range(rng.randint(1, 3)))),
        "parents": parents,
        "metrics": {"auc": round(rng.uniform(0.80, 0.97), 4), "f1": round(rng.uniform(0.5, 0.9), 4),
                    "latency_ms": round(rng.uniform(2, 80), 2)},
        "params": {"lr": str(rng.choice([0.1, 0.03, 0.01, 0.003])), "epochs": str(rng.randint(3, 40))},
        "dashboards": {"grafana": f"https://grafana.example.com/d/{model}?v={version}"},
        "artifact_sha256": _hex(rng, 64),
    }


def version_records(n_versions: int, seed: int = 7, most: int = 50) -> Iterator[dict[str, Any]]:
    """``register``'s keywords (plus ``model``) for ``n_versions`` versions of models of
    ``generate``'s shape, made one at a time, without parents, events or history: the
    input of a bulk load."""
    rng = random.Random(seed)
    for i, k in enumerate(version_sizes(n_versions, rng, most)):
        model = model_name(i)
        for v in range(1, k + 1):
            yield version_record(rng, model, i, v, [])


@dataclass
class Synth:
    """The generated history: version rows and event rows (lake schema), in time order."""

    versions: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    # What resolve can answer, for the benchmark to ask: (model, target) now deployed.
    deployed: list[tuple[str, str]] = field(default_factory=list)
    with_parents: list[tuple[str, int]] = field(default_factory=list)
    latest: dict[str, int] = field(default_factory=dict)
    approved: list[str] = field(default_factory=list)  # models with an approved version (MODEL@latest)


def generate(n_versions: int, seed: int = 7, events_per_version: float = 10.0, most: int = 50) -> Synth:
    """Build the rows of a lake with ``n_versions`` versions (nothing is written)."""
    from catalog.schema import SCHEMA_VERSION

    rng = random.Random(seed)
    out = Synth()
    sizes = version_sizes(n_versions, rng, most)
    span = timedelta(days=700)
    registered: list[tuple[datetime, str, int]] = []  # for choosing parents created earlier
    # Extra redeploy/rollback cycles per approved version, tuned so the lake averages
    # about ``events_per_version`` events per version.
    cycles = max(0.0, (events_per_version - 4.0) / 2.0)
    for i, k in enumerate(sizes):
        model = model_name(i)
        out.models.append(model)
        start = EPOCH + span * (i / max(1, len(sizes))) * 0.5 + timedelta(minutes=rng.randint(0, 600))
        gap = timedelta(hours=rng.uniform(12, 24 * 14))
        state: dict[int, str] = {}
        running: dict[str, int] = {}
        history: dict[str, list[int]] = {t: [] for t in TARGETS}
        fine_tune = registered and rng.random() < 0.25
        clock = [start]
        for v in range(1, k + 1):
            at = start + gap * (v - 1)
            parents: list[tuple[str, int, str]] = []
            if v > 1 and rng.random() < 0.3:
                parents.append((model, v - 1, "fine-tuned"))
            if fine_tune and registered:
                pm, pv = rng.choice(registered[-2000:])[1:]
                if pm != model:
                    parents.append((pm, pv, rng.choice(["fine-tuned", "distilled", "ensembled"])))
            rec = version_record(rng, model, i, v, parents)
            registrant = PEOPLE[(i + v) % len(PEOPLE)]
            out.versions.append({
                "schema_version": SCHEMA_VERSION, "model": model, "version": v,
                "artifact_uri": rec["artifact_uri"], "artifact_sha256": rec["artifact_sha256"],
                "artifact_bytes": rng.randint(10_000, 2_000_000_000), "owner": rec["owner"],
                "description": rec["description"], "tags": rec["tags"], "code_repo": rec["code_repo"],
                "code_version": rec["code_version"], "code_dirty": False, "runtime_image": rec["runtime_image"],
                "data_refs": rec["data_refs"],
                "parents": [{"model": m, "version": n, "relation": r} for m, n, r in parents],
                "metrics": rec["metrics"], "params": rec["params"], "dashboards": rec["dashboards"],
                "created_at": at, "created_by": registrant,
            })
            if parents:
                out.with_parents.append((model, v))
            registered.append((at, model, v))
            clock[0] = max(clock[0], at)  # one model's events stay in order across its versions

            def event(kind: str, version: int, *, state_after: str | None = None, target: str | None = None,
                      note: str | None = None, evidence: dict[str, Any] | None = None) -> None:
                clock[0] += timedelta(minutes=rng.randint(5, 600))
                t = clock[0]
                out.events.append({
                    "schema_version": SCHEMA_VERSION,
                    "event_id": f"{t.strftime('%Y%m%dT%H%M%S%fZ')}-{_hex(rng, 16)}",
                    "at": t, "actor": rng.choice([a for a in APPROVERS if a != registrant]),
                    "model": model, "version": version, "kind": kind, "state": state_after,
                    "target": target, "note": note, "evidence": json.dumps(evidence or {}, sort_keys=True),
                })

            if rng.random() < 0.15:
                event("reject", v, state_after="rejected", note="offline metrics below the champion",
                      evidence={"from_state": "candidate"})
                state[v] = "rejected"
                continue
            event("approve", v, state_after="approved", note="passed offline eval",
                  evidence={**GATES, "approvals": 1, "quorum": 1})
            state[v] = "approved"

            def deploy(target: str, version: int, kind: str = "deploy", note: str | None = None) -> None:
                previous = running.get(target)
                ev = {"from_version": previous, **GATES}
                if kind == "rollback":
                    ev["rank"] = 1
                event(kind, version, target=target, note=note, evidence=ev)
                running[target] = version
                history[target].append(version)

            targets = ["staging"] + rng.sample(PROD, rng.randint(2, len(PROD)))
            for target in targets:
                deploy(target, v)
            # Incidents: roll back to the previous approved version, then fix forward.
            n_cycles = int(cycles) + (1 if rng.random() < cycles - int(cycles) else 0)
            for _ in range(n_cycles):
                target = rng.choice(targets)
                back = next((p for p in reversed(history[target])
                             if p != running[target] and state.get(p) == "approved"), None)
                if back is None:
                    deploy(target, v, note="redeploy") if running[target] != v else None
                    continue
                deploy(target, back, kind="rollback", note="p95 latency regression")
                deploy(target, v, note="fixed forward")
            # Retire versions no target runs any more (keep the last two approved).
            live = set(running.values())
            for old in [p for p, s in state.items() if s == "approved" and p < v - 2 and p not in live]:
                if rng.random() < 0.7:
                    event("deprecate", old, state_after="deprecated", note="superseded",
                          evidence={"from_state": "approved"})
                    state[old] = "deprecated"
        out.latest[model] = k
        if "approved" in state.values():
            out.approved.append(model)
        out.deployed.extend((model, t) for t in running)
    out.events.sort(key=lambda e: (e["at"], e["event_id"]))
    return out


def _chunks(rows: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for i in range(0, len(rows), size):
        yield rows[i:i + size]


def write_lake(lake: str, synth: Synth, *, tail: int = 1000, version_chunk: int = 5000,
               event_chunk: int = 25000) -> dict[str, int]:
    """Write ``synth`` into ``lake``: the history in chunks, then ``tail`` one-row files.

    Each chunk is written as a compacted file (sorted by model, naming no inputs),
    as the writers' minor compactions leave a lake; the tail is the most recent
    rows (a tenth of them versions, the rest events), one file each: the small
    files a lake collects between compactions. Version claims are written (the
    highest version of each model) so that later registrations number on from
    them. Not durable (synthetic data).
    """
    from catalog import Registry

    reg = Registry(lake, durable=False, actor="synth")
    store = reg._lake
    tail_versions = min(len(synth.versions), tail // 10)
    tail_events = min(len(synth.events), tail - tail_versions)
    files = 0
    head_v = synth.versions[: len(synth.versions) - tail_versions]
    head_e = synth.events[: len(synth.events) - tail_events]
    for rows in _chunks(head_v, version_chunk):
        _write_compacted(store, "versions", rows)
        files += 1
    for rows in _chunks(head_e, event_chunk):
        _write_compacted(store, "events", rows)
        files += 1
    for row in synth.versions[len(head_v):]:
        store.append("versions", [row], now=row["created_at"])
        files += 1
    for row in synth.events[len(head_e):]:
        store.append("events", [row], now=row["at"])
        files += 1
    for model, top in synth.latest.items():
        store.storage.create_exclusive(f"_claims/{model}/{top}", b"{}")
    reg.close()
    return {"files": files, "versions": len(synth.versions), "events": len(synth.events),
            "models": len(synth.models)}


def _write_compacted(store: Any, table: str, rows: list[dict[str, Any]]) -> None:
    """One compacted file of ``rows``, as a minor compaction writes it."""
    import uuid

    import pyarrow as pa

    from catalog.lake.lake import ORDER, ROW_GROUP_ROWS, SUPERSEDES, _file_id, _to_parquet
    from catalog.schema import TABLES

    data = pa.Table.from_pylist(rows, schema=TABLES[table]).sort_by([(c, "ascending") for c in ORDER[table]])
    data = data.replace_schema_metadata({SUPERSEDES: b"[]"})
    for name in TABLES:
        store._ensure_anchor(name)
    path = f"{table}/compacted-{_file_id(rows[-1]['at' if table == 'events' else 'created_at'], uuid.uuid4().hex[:16])}.parquet"
    store.storage.write_atomic(path, _to_parquet(data, row_group_size=ROW_GROUP_ROWS))


def site_lake(lake: str, n_models: int, seed: int = 11) -> dict[str, int]:
    """A lake for the site build: ``n_models`` models with 1–5 versions each (about 3)."""
    size = n_models * 3
    while True:
        synth = generate(size, seed=seed, most=5)
        if len(synth.models) > n_models:
            break
        size = int(size * 1.3) + 1
    keep = set(synth.models[:n_models])
    versions = [r for r in synth.versions if r["model"] in keep]
    events = [e for e in synth.events if e["model"] in keep]
    have = {(r["model"], r["version"]) for r in versions}
    for r in versions:  # parents among dropped models are dropped too
        r["parents"] = [p for p in r["parents"] if (p["model"], p["version"]) in have]
    cut = Synth(versions=versions, events=events, models=synth.models[:n_models],
                latest={m: synth.latest[m] for m in keep})
    return write_lake(lake, cut, tail=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lake")
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--tail", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    t = time.perf_counter()
    synth = generate(args.versions, seed=args.seed)
    counts = write_lake(args.lake, synth, tail=args.tail)
    counts["seconds"] = round(time.perf_counter() - t, 2)
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
