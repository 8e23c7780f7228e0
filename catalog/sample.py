"""The sample lake in ``data/lake``: realistic, deterministic, built through the API.

``python scripts/make_sample_lake.py`` rebuilds it; a test rebuilds it in a
temporary folder and checks that the committed copy holds the same records.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from .errors import InvalidValue
from .lake import open_storage
from .registry import Registry

START = datetime(2026, 9, 1, 8, 0, tzinfo=timezone.utc)
QUORUM = {"fraud-score": 2}
SAMPLE_CONFIG = """\
# The sample lake's policy: every approval and deployment in data/lake passed these
# gates, and each event records the evidence (catalog history churn, catalog check).

[policy]
required = ["owner", "code_version", "data_refs"]
four_eyes = true

[policy.models.churn]
metrics = { auc = ">= 0.80" }
challenger = { auc = ">= -0.02" }

[policy.models.fraud-score]
approvals = 2
metrics = { auc = ">= 0.90" }
challenger = { auc = ">= -0.01" }

[policy.models.demand-forecast]
metrics = { mape = "<= 0.20" }
challenger = { mape = "<= 0.01" }

[policy.owners.mei]
approvers = ["bob", "carol"]

[policy.targets."prod*"]
approvers = ["bob", "carol"]
after = "staging*"

[dashboards]
serving = "https://grafana.acme.example/d/serving?var-model={model}&var-version={version}&var-target={target}"
"""
REVIEWERS = ("bob", "carol")
GRAFANA = "https://grafana.acme.example/d/model-health?var-model={model}&var-version={version}"


@dataclass
class Step:
    at: datetime
    actor: str
    action: Callable[[Registry], Any]
    order: int = 0


@dataclass
class Plan:
    rng: random.Random
    steps: list[Step] = field(default_factory=list)

    def add(self, at: datetime, actor: str, action: Callable[[Registry], Any]) -> None:
        self.steps.append(Step(at, actor, action, len(self.steps)))


def _call(method: str, *args: Any, **kwargs: Any) -> Callable[[Registry], Any]:
    """A step that calls one Registry method with these arguments (bound now, not when the step runs)."""
    return lambda reg: getattr(reg, method)(*args, **kwargs)


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def _model(
    plan: Plan,
    name: str,
    *,
    owner: str,
    team: str,
    description: str,
    start: datetime,
    every_days: int,
    repo: str,
    image: str,
    data: Callable[[int, datetime], list[str]],
    metrics: Callable[[int], dict[str, float]],
    params: Callable[[int], dict[str, str]],
    fates: dict[int, str],
    deploys: dict[int, list[str]],
    parents: Callable[[int], list[tuple[str, int, str]]] = lambda n: [],
    extra: Callable[[Plan, datetime], None] | None = None,
    versions: int,
) -> None:
    """Plan ``versions`` registrations of one model, each with its review and rollout."""
    rng = plan.rng
    for n in range(1, versions + 1):
        at = start + timedelta(days=every_days * (n - 1), hours=rng.randint(0, 6), minutes=rng.randint(0, 59))
        commit = _hex(rng, 40)

        def do_register(reg: Registry, n: int = n, at: datetime = at, commit: str = commit) -> None:
            reg.register(
                name,
                f"s3://acme-models/{name}/v{n}/model.tar.gz",
                owner=owner,
                description=description,
                tags={"team": team, "tier": "critical" if "prod-eu" in str(deploys) else "standard"},
                code_repo=repo,
                code_version=commit,
                runtime_image=image,
                data_refs=data(n, at),
                parents=parents(n),
                metrics=metrics(n),
                params=params(n),
                dashboards={"grafana": GRAFANA.format(model=name, version=n)},
                artifact_sha256=hashlib.sha256(f"{name}/v{n}".encode()).hexdigest(),
                capture_git=False,
            )

        plan.add(at, owner, do_register)
        fate = fates.get(n, "approved")
        reviewer = REVIEWERS[n % 2]
        decided = at + timedelta(hours=rng.randint(2, 30))
        if fate == "rejected":
            plan.add(decided, reviewer, _call("reject", name, n, note="offline eval shows label leakage from the cancellation field"))
            continue
        if fate == "candidate":
            continue
        plan.add(decided, reviewer, _call("approve", name, n, note="offline eval and bias checks passed"))
        if QUORUM.get(name, 1) > 1:
            decided += timedelta(hours=1)
            second = REVIEWERS[(n + 1) % 2]
            plan.add(decided, second, _call("approve", name, n, note="second review: agree"))
        for i, target in enumerate(deploys.get(n, [])):
            when = decided + timedelta(hours=3 + 20 * i)
            plan.add(when, "deploy-bot", _call("deploy", name, n, target=target, note="rollout pipeline"))
    if extra:
        extra(plan, start)


def _churn_incidents(plan: Plan, start: datetime) -> None:
    day = timedelta(days=1)
    plan.add(start + 60 * day, "carol", lambda reg: reg.rollback("churn", target="prod-eu", note="p95 latency regression after v7 rollout (18 ms to 45 ms)"))
    plan.add(start + 61 * day, "carol", lambda reg: reg.deprecate("churn", 3, note="trained on the pre-migration subscriber table"))


def _plan(seed: int = 7) -> Plan:
    plan = Plan(random.Random(seed))
    day = timedelta(days=1)

    def snapshot(uri: str) -> Callable[[int, datetime], list[str]]:
        return lambda n, at: [f"{uri}@{(at - 2 * day).date().isoformat()}"]

    _model(
        plan, "text-encoder", owner="li", team="search",
        description="Multilingual sentence encoder shared by search and support models.",
        start=START, every_days=20, versions=3,
        repo="https://github.com/acme/encoders", image="ghcr.io/acme/train-torch:2.4",
        data=lambda n, at: [f"s3://acme-lake/corpora/web-text@snapshot-{n:03d}", "hf://datasets/acme/queries@rev-" + str(n)],
        metrics=lambda n: {"sts_spearman": 0.78 + 0.03 * n, "latency_p95_ms": 18 - n},
        params=lambda n: {"dim": "384", "epochs": str(2 + n)},
        fates={}, deploys={3: ["batch-embeddings"]},
    )
    _model(
        plan, "search-ranker", owner="li", team="search",
        description="Learning-to-rank model for product search, fine-tuned from the text encoder.",
        start=START + 9 * day, every_days=9, versions=6,
        repo="https://github.com/acme/search-ranking", image="ghcr.io/acme/train-torch:2.4",
        data=snapshot("s3://acme-lake/search/click-logs"),
        metrics=lambda n: {"ndcg_at_10": round(0.61 + 0.012 * n - (0.03 if n == 4 else 0), 4), "latency_p95_ms": 31 + (9 if n == 6 else n)},
        params=lambda n: {"learning_rate": str(0.0005 * n), "negatives": "8"},
        parents=lambda n: [("text-encoder", 1 if n < 4 else 2, "fine-tuned")],
        fates={4: "rejected", 6: "candidate"}, deploys={1: ["staging", "prod-eu"], 2: ["staging", "prod-eu"], 3: ["staging", "prod-eu"], 5: ["staging"]},
    )
    _model(
        plan, "churn", owner="ana", team="retention",
        description="Predicts which subscribers cancel within 30 days; scores feed the retention campaigns.",
        start=START + 2 * day, every_days=8, versions=8,
        repo="https://github.com/acme/churn", image="ghcr.io/acme/train-sklearn:1.5",
        data=lambda n, at: [f"s3://acme-lake/retention/subscribers@{(at - 2 * day).date().isoformat()}", f"bq://acme.analytics.sessions@snapshot-{1200 + n}"],
        metrics=lambda n: {"auc": round(0.80 + 0.011 * n - (0.02 if n == 5 else 0), 4), "precision_at_10": round(0.41 + 0.01 * n, 3), "latency_p95_ms": 12 + n},
        params=lambda n: {"model": "gradient-boosting", "max_depth": str(4 + n % 3), "n_estimators": str(200 + 50 * n)},
        fates={5: "rejected", 8: "candidate"},
        deploys={1: ["staging", "prod-eu"], 2: ["staging", "prod-eu", "prod-us"], 3: ["staging", "prod-eu"], 4: ["staging", "prod-eu", "prod-us"], 6: ["staging", "prod-eu"], 7: ["staging", "prod-eu", "prod-us"]},
        extra=_churn_incidents,
    )
    _model(
        plan, "churn-distilled", owner="ana", team="retention",
        description="Small churn model distilled from the full one, for the mobile app.",
        start=START + 45 * day, every_days=6, versions=3,
        repo="https://github.com/acme/churn", image="ghcr.io/acme/train-torch:2.4",
        data=snapshot("s3://acme-lake/retention/subscribers"),
        metrics=lambda n: {"auc": 0.84 + 0.005 * n, "size_mb": 12.0 - n},
        params=lambda n: {"temperature": "2.0", "student": "mlp-3x128"},
        parents=lambda n: [("churn", 6, "distilled")],
        fates={}, deploys={1: ["edge-mobile"], 3: ["edge-mobile"]},
    )
    _model(
        plan, "fraud-graph-embed", owner="ravi", team="risk",
        description="Graph embeddings of the merchant-card network, input to the fraud score.",
        start=START + 1 * day, every_days=25, versions=3,
        repo="https://github.com/acme/risk-graph", image="ghcr.io/acme/train-dgl:2.1",
        data=snapshot("s3://acme-lake/risk/transactions-graph"),
        metrics=lambda n: {"link_auc": 0.88 + 0.01 * n},
        params=lambda n: {"walk_length": "40", "dim": "128"},
        fates={}, deploys={2: ["batch-nightly"], 3: ["batch-nightly"]},
    )
    _model(
        plan, "fraud-score", owner="ravi", team="risk",
        description="Real-time card fraud score; an ensemble over transaction features and graph embeddings.",
        start=START + 4 * day, every_days=10, versions=7,
        repo="https://github.com/acme/fraud", image="ghcr.io/acme/train-xgboost:2.1",
        data=lambda n, at: [f"s3://acme-lake/risk/transactions@{(at - 1 * day).date().isoformat()}", "s3://acme-lake/risk/chargebacks@v" + str(40 + n)],
        metrics=lambda n: {"auc": round(0.90 + 0.006 * n, 4), "recall_at_1pct_fpr": round(0.52 + 0.02 * n - (0.05 if n == 3 else 0), 3), "latency_p95_ms": 7 + n % 3},
        params=lambda n: {"max_depth": "8", "eta": "0.05", "rounds": str(600 + 40 * n)},
        parents=lambda n: [("fraud-graph-embed", 1 if n < 6 else 2, "ensembled")] if n >= 3 else [],
        fates={7: "candidate"},
        deploys={1: ["staging", "prod-us"], 2: ["staging", "prod-us", "prod-eu"], 3: ["staging"], 4: ["staging", "prod-us", "prod-eu"], 5: ["staging", "prod-us"], 6: ["staging", "prod-us", "prod-eu"]},
        extra=lambda plan, start: plan.add(start + 55 * day, "ravi", lambda reg: reg.deprecate("fraud-score", 3, note="recall dropped on card-not-present traffic")),
    )
    _model(
        plan, "demand-forecast", owner="mei", team="supply",
        description="Daily demand per store and SKU, 28 days ahead; runs as a nightly batch job.",
        start=START + 3 * day, every_days=11, versions=6,
        repo="https://github.com/acme/forecasting", image="ghcr.io/acme/train-lightgbm:4.3",
        data=lambda n, at: [f"s3://acme-lake/supply/sales-daily@{(at - 1 * day).date().isoformat()}", "s3://acme-lake/supply/calendar@v3"],
        metrics=lambda n: {"mape": round(0.182 - 0.009 * n + (0.02 if n == 5 else 0), 4), "bias": round(0.02 - 0.004 * n, 4)},
        params=lambda n: {"horizon_days": "28", "num_leaves": str(31 + 8 * n)},
        fates={5: "rejected"}, deploys={1: ["batch-nightly"], 2: ["batch-nightly"], 3: ["batch-nightly"], 4: ["batch-nightly"], 6: ["staging", "batch-nightly"]},
        extra=lambda plan, start: plan.add(start + 58 * day, "mei", lambda reg: reg.rollback("demand-forecast", target="batch-nightly", note="stores in the new region got zero forecasts; back to v4 while we fix the join")),
    )
    _model(
        plan, "support-intent", owner="mei", team="support",
        description="Routes support tickets to the right queue from their first message.",
        start=START + 15 * day, every_days=12, versions=4,
        repo="https://github.com/acme/support-ml", image="ghcr.io/acme/train-torch:2.4",
        data=snapshot("s3://acme-lake/support/tickets-labelled"),
        metrics=lambda n: {"macro_f1": round(0.71 + 0.03 * n, 3), "latency_p95_ms": 22.0},
        params=lambda n: {"epochs": "3", "max_len": "256"},
        parents=lambda n: [("text-encoder", 2 if n > 1 else 1, "fine-tuned")],
        fates={}, deploys={1: ["staging", "prod-eu"], 2: ["staging"], 3: ["staging", "prod-eu"], 4: ["staging"]},
    )
    _model(
        plan, "pricing-elasticity", owner="ravi", team="pricing",
        description="Price elasticity per category for the weekly pricing review.",
        start=START + 20 * day, every_days=14, versions=3,
        repo="https://github.com/acme/pricing", image="ghcr.io/acme/train-statsmodels:0.14",
        data=snapshot("s3://acme-lake/pricing/orders"),
        metrics=lambda n: {"r2": round(0.55 + 0.05 * n, 3)},
        params=lambda n: {"regularisation": "ridge", "alpha": str(0.1 * n)},
        fates={2: "rejected"}, deploys={1: ["batch-weekly"], 3: ["batch-weekly"]},
    )
    return plan


def build_sample_lake(path: str | os.PathLike[str], *, seed: int = 7) -> Registry:
    """Write the sample lake at ``path`` (which must not exist yet) and compact it."""
    plan = _plan(seed)
    rng = random.Random(seed + 1)
    storage = open_storage(path, durable=False)
    storage.write_atomic("catalog.toml", SAMPLE_CONFIG.encode("utf-8"))
    now = {"t": START}
    registries: dict[str, Registry] = {}

    def registry(actor: str) -> Registry:
        if actor not in registries:
            registries[actor] = Registry(
                path, actor=actor, durable=False,
                # an object-store lake's catalog.toml is read through its storage (no local path)
                config=None if "://" in os.fspath(path) else os.path.join(path, "catalog.toml"),
                clock=lambda: now["t"], new_id=lambda: _hex(rng, 16),
            )
        return registries[actor]

    for step in sorted(plan.steps, key=lambda s: (s.at, s.order)):
        now["t"] = step.at
        step.action(registry(step.actor))
    result = registry("catalog-admin")
    result.compact()
    for reg in registries.values():
        reg.close()
    for name in storage.listdir("_leases"):  # leases hold no record: the sample ships without them
        storage.remove(f"_leases/{name}")
    return Registry(path)


def replace_sample_lake(path: str | os.PathLike[str]) -> None:
    """Rebuild the sample lake beside ``path`` and swap it in. Only a sample lake is
    replaced (its catalog.toml is the sample's): any other folder is refused, untouched."""
    target = os.path.abspath(os.fspath(path))
    if os.path.lexists(target):
        policy = os.path.join(target, "catalog.toml")
        try:
            with open(policy, encoding="utf-8") as fh:
                ours = os.path.isdir(target) and not os.path.islink(target) and fh.read() == SAMPLE_CONFIG
        except OSError:
            ours = False
        if not ours:
            raise InvalidValue(
                f"{target} is not the sample lake (its catalog.toml is not the sample's): "
                "give a new folder, or remove that one yourself"
            )
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    work = tempfile.mkdtemp(prefix=".sample-", dir=parent)
    build_sample_lake(os.path.join(work, "lake"))
    if os.path.exists(target):
        shutil.rmtree(target)
    os.rename(os.path.join(work, "lake"), target)
    shutil.rmtree(work)


def tour(registry: Registry) -> dict[str, Any]:
    """What the demo shows: counts, what runs where, what can be rolled back (and what a
    rollback moved away from, which only a new deploy brings back)."""
    created = False
    if not registry._lake.exists():
        build_sample_lake(registry.root)
        created = True
    counts = registry.counts().to_dict()
    deployments = [dataclasses.asdict(d) for d in registry.deployments()]
    latest = registry.sql("select model, version, approved_at, approved_by from latest_approved order by model").rows
    rollback = registry.sql(
        "select model, target, version, last_deployed_at from rollback_candidates where rank = 1 order by model, target"
    ).rows
    rolled_back = registry.sql(
        "select model, target, version, detail from rollback_excluded where reason = 'rolled back' "
        "order by model, target, last_deployed_at desc, version desc"
    ).rows
    approvals = registry.sql(
        "select \"at\", actor, model, version, state, evidence from events where kind = 'approve' "
        "order by \"at\" desc limit 5"
    ).rows
    for row in approvals:
        evidence = json.loads(row.pop("evidence") or "{}")
        gates = evidence.get("gates", [])
        row["gates"] = f"{sum(g['passed'] for g in gates)}/{len(gates)} passed" + (
            f", approval {evidence['approvals']}/{evidence['quorum']}" if evidence.get("quorum", 1) > 1 else ""
        )
    first = deployments[0] if deployments else {"model": "churn", "target": "prod-eu"}
    return {
        "lake": registry.root,
        "created": created,
        **counts,
        "deployments": deployments,
        "latest_approved": latest,
        "rollback": rollback,
        "rolled_back": rolled_back,
        "approvals": approvals,
        "policy": registry.config.source,
        "try": [
            f"show {first['model']}",
            f"resolve {first['model']}@{first['target']}",
            f"history {first['model']}",
            f"candidates {first['model']} --target {first['target']}",
            "lineage churn-distilled 1",
            "--actor carol check churn 8",
            "sql \"select model, version, approved_by from latest_approved\"",
        ],
    }
