"""Nothing typed by a user can name a file outside the lake, leak a credential, or write through SQL."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog import Registry
from catalog.errors import InvalidInput, InvalidName, InvalidValue, QueryFailed, QueryRefused, UnsafeURI
from catalog.lake import Lake, LocalStorage
from catalog.lake.storage import check_relative

from .conftest import snapshot

# -- names that would leave the lake ---------------------------------------------

ESCAPING_NAMES = [
    "../evil", "..", ".", "a/../../b", "/etc/passwd", "a/b", "a\\b", "..\\..\\x", "a\x00b", "\x00",
    "", " ", "~root", "$HOME", "churn/", "/", "C:\\models", "con", "nul", "aux.v2", "com1", "lpt9.x",
    "Churn", "churn\n", "churn ", "a" * 101, ".hidden", "-flag", "_claims", "é", "ｃｈｕｒｎ",
]


@pytest.mark.parametrize("name", ESCAPING_NAMES, ids=repr)
def test_model_names_that_could_escape_are_refused_and_write_nothing(registry, lake, name):
    reg = registry("ana")
    reg.register("seed", "s3://m/seed", capture_git=False)
    before = snapshot(lake)
    with pytest.raises(InvalidInput):
        reg.register(name, "s3://m/x", capture_git=False)
    with pytest.raises(InvalidInput):
        reg.register("seed", "s3://m/x", parents=[(name, 1)], capture_git=False)
    assert snapshot(lake) == before
    assert not any((lake.parent / p).exists() for p in ("evil", "b", "x"))


@pytest.mark.parametrize("name", ESCAPING_NAMES, ids=repr)
def test_names_that_could_escape_are_refused_by_the_cli_with_exit_2(cli, lake, name):
    if "\x00" in name:
        pytest.skip("a command line cannot carry NUL")
    assert cli("register", "seed", "s3://m/seed", "--no-git").exit_code == 0
    before = snapshot(lake)
    for args in (
        ["register", name, "s3://m/x", "--no-git"],
        ["approve", name, "1"],
        ["deploy", "seed", "1", "--target", name],
        ["show", name],
        ["history", name],
        ["resolve", f"{name}@prod"],
        ["candidates", "seed", "--target", name],
    ):
        result = cli(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output
    assert snapshot(lake) == before


@pytest.mark.parametrize(
    "path", ["../x", "/etc/passwd", "a/../../x", "a/./b", "a//b", "a\\b", "a\x00b", "", "_claims/../../x", "a/.."]
)
def test_the_storage_layer_refuses_any_path_that_leaves_the_lake(tmp_path, path):
    storage = LocalStorage(tmp_path / "lake")
    with pytest.raises(InvalidValue):
        check_relative(path)
    for call in (
        lambda: storage.write_atomic(path, b"x"),
        lambda: storage.create_exclusive(path, b"x"),
        lambda: storage.read_bytes(path),
        lambda: storage.remove(path),
        lambda: storage.move(path, "x"),
        lambda: storage.move("x", path),
    ):
        with pytest.raises(InvalidValue):
            call()
    assert list(tmp_path.iterdir()) == []


def test_the_lake_layer_cannot_be_steered_out_by_a_model_name(tmp_path):
    lake = Lake(LocalStorage(tmp_path / "lake"))
    for name in ("../../outside", "..", "a/../../b"):
        with pytest.raises(InvalidValue):
            lake.claim_version(name, "ana", floor=lambda: 0)
    assert [p.name for p in tmp_path.iterdir()] in ([], ["lake"])  # nothing beside the lake
    assert not (tmp_path / "lake" / "_claims").exists()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(min_size=1, max_size=40))
def test_any_accepted_name_stays_inside_the_lake(tmp_path, name):
    from catalog import validate

    try:
        validate.name(name)
    except InvalidName:
        return
    storage = LocalStorage(tmp_path / "lake")
    for rel in (f"_claims/{name}/1", f"_decisions/{name}/1"):
        full = os.path.realpath(storage.local_path(rel))
        assert full.startswith(str(tmp_path / "lake") + os.sep)
        assert os.path.basename(os.path.dirname(full)) == name


# -- credentials in URIs -----------------------------------------------------------

SECRET_URIS = [
    "https://ana:hunter2@models.example.com/churn.pkl",
    "s3://AKIAXXX:wJalrXUtnFEMI@bucket/churn.pkl",
    "ftp://user:pass@host/model.bin",
    "https://ghp_abcdef0123456789@github.com/acme/churn",
    "https://bucket.s3.amazonaws.com/m.pkl?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=deadbeef",
    "https://bucket.s3.amazonaws.com/m.pkl?X-Amz-Credential=AKIA%2F2026&X-Amz-Date=20261101",
    "https://bucket.s3.amazonaws.com/m.pkl?x-amz-security-token=FQoGZXIvYXdz",
    "https://storage.googleapis.com/b/m.pkl?X-Goog-Signature=abc",
    "https://acct.blob.core.windows.net/c/m.pkl?sv=2024-01-01&sig=abc%3D",
    "https://models.example.com/m.pkl?token=abc123",
    "https://models.example.com/m.pkl?access_token=abc123",
    "https://models.example.com/m.pkl?api_key=abc123",
    "https://models.example.com/m.pkl?a=1&Password=abc",
]


@pytest.mark.parametrize("uri", SECRET_URIS)
@pytest.mark.parametrize("field", ["artifact", "data", "dashboard", "code_repo"])
def test_uris_carrying_credentials_are_refused_everywhere_and_never_echoed(cli, lake, uri, field):
    assert cli("register", "seed", "s3://m/seed", "--no-git").exit_code == 0
    before = snapshot(lake)
    args = {
        "artifact": ["register", "m", uri, "--no-git"],
        "data": ["register", "m", "s3://m/1", "--no-git", "--data", uri],
        "dashboard": ["register", "m", "s3://m/1", "--no-git", "--dashboard", f"grafana={uri}"],
        "code_repo": ["register", "m", "s3://m/1", "--code-repo", uri, "--code-version", "abc"],
    }[field]
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert "credential" in result.stderr
    for secret in ("hunter2", "wJalrXUtnFEMI", "deadbeef", "abc123", "FQoGZXIvYXdz", "ghp_abcdef"):
        assert secret not in result.output
    assert snapshot(lake) == before


def test_credential_checks_through_the_api(registry):
    reg = registry("ana")
    for uri in SECRET_URIS:
        with pytest.raises(UnsafeURI):
            reg.register("m", uri, capture_git=False)
    # '@' as this registry's version separator is not a credential
    v = reg.register("m", "bq://project.dataset.table@snapshot-12", capture_git=False)
    assert reg.resolve(f"m:{v.version}") == "bq://project.dataset.table@snapshot-12"


# -- crafted SQL -------------------------------------------------------------------


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """Files beside the lake that `catalog sql` must not read."""
    folder = tmp_path
    pq.write_table(pa.table({"secret": ["s3cr3t"]}), folder / "outside.parquet")
    (folder / "outside.csv").write_text("secret\ns3cr3t\n")
    (folder / "outside.json").write_text('{"secret": "s3cr3t"}\n')
    return folder


CRAFTED = [
    # reading files beside the lake, however the path is spelled
    "select * from read_parquet('/etc/../{lake}/../outside.parquet')",
    "select * from read_parquet('{lake}/../outside.parquet')",
    "select * from read_parquet('{lake}/versions/../../outside.parquet')",
    "select * from read_parquet('file://{out}/outside.parquet')",
    "select * from read_parquet(['{lake}/versions/schema-v2.parquet', '{out}/outside.parquet'])",
    "select * from read_csv('{lake}/../*.csv')",
    "select * from read_csv('{lake}/[.][.]/outside.csv')",
    "select * from read_json_auto('{out}/outside.json')",
    "select * from read_text('{out}/outside.csv')",
    "select * from read_blob('/etc/hostname')",
    "select * from sniff_csv('/etc/passwd')",
    "select * from parquet_metadata('{out}/outside.parquet')",
    "select * from parquet_schema('{out}/outside.parquet')",
    # replacement scans: a quoted file name in FROM
    "select * from '{out}/outside.csv'",
    "select * from '{lake}/../outside.parquet'",
    "from '{out}/outside.json'",
    "select * from query_table('{out}/outside.csv')",
    "select * from query_table(['versions', '{out}/outside.csv'])",
    # globs outside the lake
    "select * from glob('/etc/*')",
    "select * from glob('{lake}/../*')",
    "select * from glob('{lake}/**/../../*')",
    # remote reads
    "select * from read_parquet('s3://bucket/x.parquet')",
    "select * from read_csv('https://example.com/x.csv')",
    # writing, attaching, extensions, configuration
    "copy versions to '{lake}/versions/evil.parquet'",
    "copy (select 1) to '{out}/evil.csv'",
    "explain analyze copy (select 1) to '{lake}/versions/evil.parquet'",
    "/* comment */ EXPLAIN (ANALYZE) copy (select 1) to '{lake}/versions/evil.parquet'",
    "explain analyze create table t as select 1",
    "explain analyze insert into versions select * from versions",
    "attach '{lake}/evil.db' as evil",
    "attach ':memory:' as m",
    "detach memory",
    "install httpfs",
    "load httpfs",
    "load '{out}/evil.duckdb_extension'",
    "set allowed_directories = ['/']",
    "set enable_external_access = true",
    "reset lock_configuration",
    "pragma enable_profiling",
    "call pragma_version()",
    "create macro m(x) as x",
    "create view versions as select 1",
    "drop view versions",
    "export database '{lake}/dump'",
    "vacuum",
    "checkpoint",
    "use memory",
    "select 1; copy (select 1) to '{lake}/x.csv'",
    "select getenv('HOME')",
    "select * from duckdb_secrets() where 1 = (select count(*) from read_csv('{out}/outside.csv'))",
]


@pytest.mark.parametrize("query", CRAFTED)
def test_crafted_sql_cannot_write_attach_load_or_read_outside_the_lake(cli, lake, outside, query):
    assert cli("register", "seed", "s3://m/seed", "--no-git").exit_code == 0
    before = snapshot(lake)
    beside = sorted(p.name for p in outside.iterdir())
    result = cli("sql", query.format(lake=lake, out=outside))
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("Error: ") and len(result.stderr.strip().splitlines()) == 1
    assert "s3cr3t" not in result.output
    assert snapshot(lake) == before
    assert sorted(p.name for p in outside.iterdir()) == beside


@pytest.mark.parametrize(
    "query",
    [
        "select count(*) as n from versions",
        "explain select * from versions",
        "explain analyze select count(*) from versions",
        "with x as (select * from versions) select count(*) from x",
        "from versions select model",
        "select count(*) from read_parquet('{lake}/versions/*.parquet', union_by_name = true)",
        "select count(*) from glob('{lake}/versions/*')",
        "select * from query_table('versions')",
    ],
)
def test_reading_inside_the_lake_still_works(registry, lake, query):
    reg = registry("ana")
    reg.register("seed", "s3://m/seed", capture_git=False)
    before = snapshot(lake)
    assert reg.sql(query.format(lake=lake)).rows
    assert snapshot(lake) == before


def test_sql_refusals_are_typed(registry, lake, outside):
    reg = registry("ana")
    reg.register("seed", "s3://m/seed", capture_git=False)
    with pytest.raises(QueryRefused):
        reg.sql(f"explain analyze copy (select 1) to '{lake}/versions/evil.parquet'")
    with pytest.raises(QueryRefused):
        reg.sql(f"select * from '{outside}/outside.csv'")
    with pytest.raises(QueryFailed):
        reg.sql("select getenv('HOME')")
    assert not (lake / "versions" / "evil.parquet").exists()


def test_a_symlink_in_the_lake_does_not_open_a_way_out(registry, lake, outside):
    reg = registry("ana")
    reg.register("seed", "s3://m/seed", capture_git=False)
    (lake / "notes.csv").symlink_to(outside / "outside.csv")
    with pytest.raises((QueryRefused, QueryFailed)):
        reg.sql(f"select * from read_csv('{lake}/notes.csv')")


def test_registry_api_reads_confined_even_for_a_fresh_registry(tmp_path, outside):
    reg = Registry(tmp_path / "lake", actor="ana", durable=False)
    reg.register("seed", "s3://m/seed", capture_git=False)
    with pytest.raises(QueryRefused):
        reg.sql(f"select * from read_parquet('{outside}/outside.parquet')")
    reg.close()
