"""A newer reader reads every older lake: lakes written by older layouts are kept here."""

from __future__ import annotations

import shutil

import pyarrow.parquet as pq
import pytest

from catalog import Registry
from catalog.schema import SCHEMA_VERSION, TABLES

from .conftest import REPO

FIXTURES = REPO / "tests" / "fixtures"


@pytest.mark.parametrize("layout", ["lake-v1"])
def test_old_lake_reads_and_accepts_new_writes(tmp_path, layout):
    lake = tmp_path / "lake"
    shutil.copytree(FIXTURES / layout, lake)
    reg = Registry(lake, actor="carol")
    assert reg.resolve("churn@prod") == "s3://m/churn/1.pkl"
    assert reg.resolve("churn@latest") == "s3://m/churn/2.pkl"
    assert [e.kind for e in reg.history("churn")][-1] == "rollback"
    assert reg.show("churn", 2).parents[0].relation == "retrained"
    assert reg.register("churn", "s3://m/churn/3.pkl", capture_git=False).version == 3
    reg.compact()
    assert reg.sql("select count(*) as n from versions").rows == [{"n": 3}]


def test_every_written_row_carries_the_schema_version(registry, lake):
    registry().register("m", "s3://m/1", capture_git=False)
    for table, schema in TABLES.items():
        for path in (lake / table).glob("part-*.parquet"):
            data = pq.read_table(path)
            assert data.schema.names == schema.names
            assert set(data.column("schema_version").to_pylist()) <= {SCHEMA_VERSION}


def test_a_compacted_file_from_an_older_catalog_is_read_with_the_dedupe_until_compacted(registry, lake):
    """Older compactions did not name their inputs: a leftover beside such a file still shows once."""
    from catalog.lake import Lake, open_storage

    reg = registry("ana")
    for n in range(4):
        reg.register("m", f"s3://m/{n}", capture_git=False)
    inputs = {p.name: p.read_bytes() for p in (lake / "versions").glob("part-*.parquet")}
    reg.compact()
    merged = next((lake / "versions").glob("compacted-*.parquet"))
    pq.write_table(pq.read_table(merged).replace_schema_metadata(None), merged)  # as an older catalog wrote it
    name, data = next(iter(inputs.items()))
    (lake / "versions" / name).write_bytes(data)  # and a leftover of its interrupted compaction
    assert Lake(open_storage(lake)).current_files("versions")[1] is False
    fresh = registry("bob")
    assert [v.version for v in fresh.show("m").versions] == [1, 2, 3, 4]
    assert any("older catalog" in f.problem for f in fresh.doctor().findings)
    fresh.compact()
    assert Lake(open_storage(lake)).current_files("versions")[1] is True
    assert [v.version for v in registry("carol").show("m").versions] == [1, 2, 3, 4]
    assert not any("older catalog" in f.problem for f in registry("dan").doctor().findings)
