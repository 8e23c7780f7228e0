"""The committed sample lake: what it must show, and that the script reproduces it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from catalog import Registry
from catalog.sample import build_sample_lake

from .conftest import REPO

SAMPLE = REPO / "data" / "lake"

RECORDS = {
    "versions": "select * exclude (schema_version) from versions order by model, version",
    "events": "select * exclude (schema_version) from events order by \"at\", event_id",
}


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Registry:
    copy = tmp_path_factory.mktemp("sample") / "lake"
    shutil.copytree(SAMPLE, copy)
    return Registry(copy, actor="reader")


def one(reg: Registry, sql: str):
    return next(iter(reg.sql(sql).rows[0].values()))


def test_sample_lake_is_realistic(sample):
    assert one(sample, "select count(distinct model) from versions") >= 8
    assert one(sample, "select count(distinct owner) from versions") >= 3
    assert one(sample, "select count(*) from versions") >= 40
    assert one(sample, "select count(distinct target) from deployments") >= 3
    assert one(sample, "select count(*) from model_versions where state = 'rejected'") >= 1
    assert one(sample, "select count(*) from model_versions where state = 'deprecated'") >= 1
    assert one(sample, "select count(*) from events where kind = 'rollback' and note is not null") >= 1
    assert one(sample, "select count(*) from lineage where parent_kind = 'model' and relation = 'distilled'") >= 1
    assert one(sample, "select count(*) from lineage where parent_kind = 'data'") >= 40
    assert one(sample, "select count(*) from versions where cardinality(dashboards) > 0") >= 40
    # metrics move across versions
    assert one(sample, "select count(distinct metrics['auc']) from versions where model = 'churn'") >= 5


def test_sample_lake_is_compact(sample):
    assert len(list((SAMPLE / "versions").glob("*.parquet"))) == 2
    assert len(list((SAMPLE / "events").glob("*.parquet"))) == 2


def test_the_script_reproduces_the_committed_sample(tmp_path, sample):
    fresh = build_sample_lake(tmp_path / "lake")
    for table, sql in RECORDS.items():
        assert fresh.sql(sql).rows == sample.sql(sql).rows, f"{table} differs: run `make sample` and commit data/lake"


def test_demo_tours_the_sample_and_builds_its_site(sample, tmp_path):
    from typer.testing import CliRunner

    from catalog.cli import app

    site = tmp_path / "site"
    out = CliRunner().invoke(app, ["--lake", sample.root, "demo", "--out", str(site)])
    assert out.exit_code == 0, out.stderr
    assert "Running now:" in out.stdout and "Rollback candidates" in out.stdout
    assert "churn" in out.stdout and "prod-eu" in out.stdout
    assert "approval 2/2" in out.stdout  # the sample policy's quorum shows as evidence
    assert (site / "index.html").exists() and (site / "models" / "churn" / "index.html").exists()
    assert "catalog serve --out" in out.stdout


def test_demo_creates_the_sample_where_there_is_no_lake(tmp_path):
    from typer.testing import CliRunner

    from catalog.cli import app

    out = CliRunner().invoke(app, ["--lake", str(tmp_path / "new"), "demo", "--no-site", "--json"])
    assert out.exit_code == 0, out.stderr
    assert '"created": true' in out.stdout


def test_make_sample_replaces_only_a_sample_lake(tmp_path: Path) -> None:
    from catalog.errors import InvalidValue
    from catalog.sample import replace_sample_lake

    other = tmp_path / "lake"
    Registry(other, actor="ana", durable=False).register("churn", "s3://m/1.pkl", capture_git=False)
    before = sorted(p.name for p in (other / "versions").iterdir())
    with pytest.raises(InvalidValue):
        replace_sample_lake(other)
    assert sorted(p.name for p in (other / "versions").iterdir()) == before
