"""The snapshot other engines read (catalog.lake.snapshot): a Delta Lake log per table.

Engines other than the catalog read it and must give the catalog's answers (rows per
model, the set of keys with no key twice, what each target runs) before, during and
after a compaction killed at each point of its protocol, and after a redaction, which
must leave no removed value in any file the log lists nor in the log: delta-rs,
Polars (over delta-rs), DataFusion (delta-rs's table provider), DuckDB (reading the
log's file list) and Spark in local mode (the file list too: Delta's jars cannot be
fetched here). The README's snippets for them run here as well.
"""

from __future__ import annotations

import ast
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from catalog import Registry
from catalog.lake import Lake, LocalStorage
from catalog.lake.compaction import compact, merge_files
from catalog.lake.snapshot import files_of_log, published, schema_string

from .conftest import REPO
from .test_readme import readme_blocks

deltalake = pytest.importorskip("deltalake")
pl = pytest.importorskip("polars")
datafusion = pytest.importorskip("datafusion")

TABLES = ("versions", "events")

# The questions every engine answers, in SQL that DuckDB, DataFusion and Spark all take
# ({q} quotes an identifier: "at" is a keyword in DuckDB 2).
COUNTS = "select model, count(*) as n from {table} group by model"
VERSION_KEYS = "select model, version from versions"
EVENT_KEYS = "select event_id from events"
DEPLOYED = (
    "select model, target, version from (select model, target, version, row_number() over "
    "(partition by model, target order by {at} desc, event_id desc) as rn from events "
    "where kind in ('deploy', 'rollback')) as t where rn = 1"
)
SECRET = "jane.doe.medical-7f3a9c"


def answers(run: Callable[[str], list[tuple[Any, ...]]], at: str) -> dict[str, Any]:
    """Each question's answer from an engine that runs SQL and returns rows as tuples."""
    return {
        "versions per model": sorted(run(COUNTS.format(table="versions"))),
        "events per model": sorted(run(COUNTS.format(table="events"))),
        "version keys": sorted(run(VERSION_KEYS)),  # sorted lists, not sets: a key twice shows
        "event keys": sorted(run(EVENT_KEYS)),
        "deployed": sorted(run(DEPLOYED.format(at=at))),
    }


def catalog_answers(lake: Path) -> dict[str, Any]:
    """The catalog's own answers (`catalog sql` over its views, and Registry.deployments)."""
    with Registry(lake, actor="reader") as reg:
        def run(query: str) -> list[tuple[Any, ...]]:
            return [tuple(r.values()) for r in reg.sql(query.replace("{at}", '"at"')).rows]

        out = answers(run, '"at"')
        assert out["deployed"] == sorted((d.model, d.target, d.version) for d in reg.deployments())
        return out


def log_files(lake: Path, table: str) -> list[str]:
    return files_of_log(Lake(LocalStorage(lake)), table)


def delta_rs(lake: Path) -> dict[str, Any]:
    """delta-rs reads each table; the questions run in DuckDB over its Arrow tables."""
    import duckdb

    con = duckdb.connect()
    for table in TABLES:
        con.register(table, deltalake.DeltaTable(str(lake / table)).to_pyarrow_table())
    return answers(lambda q: con.sql(q).fetchall(), '"at"')


def polars_answers(lake: Path) -> dict[str, Any]:
    """Polars reads each table through its Delta reader; the questions as Polars expressions."""
    v, e = (pl.read_delta(str(lake / t)) for t in TABLES)
    latest = (
        e.filter(pl.col("kind").is_in(["deploy", "rollback"]))
        .sort(["at", "event_id"], descending=True)
        .group_by(["model", "target"], maintain_order=True).first()
    )
    return {
        "versions per model": sorted(v.group_by("model").len().rows()),
        "events per model": sorted(e.group_by("model").len().rows()),
        "version keys": sorted(v.select("model", "version").rows()),
        "event keys": sorted(e.select("event_id").rows()),
        "deployed": sorted(latest.select("model", "target", "version").rows()),
    }


def datafusion_answers(lake: Path) -> dict[str, Any]:
    """DataFusion with delta-rs's table provider."""
    ctx = datafusion.SessionContext()
    for table in TABLES:
        ctx.register_table(table, deltalake.DeltaTable(str(lake / table)))
    return answers(lambda q: [tuple(r.values()) for r in ctx.sql(q).to_pylist()], '"at"')


def duckdb_answers(lake: Path) -> dict[str, Any]:
    """DuckDB over the file list the log gives (its delta extension cannot be downloaded here)."""
    import duckdb

    con = duckdb.connect()
    for table in TABLES:
        files = deltalake.DeltaTable(str(lake / table)).file_uris()
        if files:
            con.read_parquet(files, union_by_name=True).create_view(table)
        else:  # a table with no rows yet: its columns from the log's schema
            con.register(table, deltalake.DeltaTable(str(lake / table)).to_pyarrow_table())
    return answers(lambda q: con.sql(q).fetchall(), '"at"')


ENGINES = {"delta-rs": delta_rs, "polars": polars_answers, "datafusion": datafusion_answers, "duckdb": duckdb_answers}


def check_snapshot(lake: Path, expected: dict[str, Any] | None = None, *, spark: Any = None) -> dict[str, Any]:
    """Every engine gives the catalog's answers from the published snapshot, and the log
    lists only files that exist, never one beside a file that replaced it."""
    lake_obj = Lake(LocalStorage(lake))
    for table in TABLES:
        listed = files_of_log(lake_obj, table)
        assert all(os.path.exists(f) for f in listed), f"the {table} log lists a missing file"
        names = [os.path.basename(f) for f in listed]
        gone, exact = lake_obj.superseded(table, names)
        assert exact and not gone, f"the {table} log lists a file beside the file that replaced it"
    expected = expected or catalog_answers(lake)
    for name, engine in ENGINES.items():
        assert engine(lake) == expected, name
    if spark is not None:
        assert spark_answers(spark, lake) == expected, "spark"
    return expected


def scenario(lake: Path) -> None:
    """Three models, decisions, deployments and a rollback: many small files in both tables."""
    with Registry(lake, actor="ana", durable=False) as ana, Registry(lake, actor="bob", durable=False) as bob:
        for model in ("churn", "fraud", "ltv"):
            for n in range(1, 4):
                ana.register(model, f"s3://models/{model}/{n}.pkl", metrics={"auc": 0.8 + n / 100},
                             tags={"team": "risk"}, description=f"{model} v{n}", capture_git=False)
            bob.approve(model, 1, note="ok")
            bob.approve(model, 2, note="better")
            bob.deploy(model, 1, target="prod")
            bob.deploy(model, 2, target="prod")
        bob.rollback("churn", target="prod", note="p95 latency regression")
        bob.deploy("fraud", 1, target="staging")


# -- Spark: one local session for the module -----------------------------------------


@pytest.fixture(scope="module")
def spark():
    import shutil

    missing = None if shutil.which("java") else "java (.ci/run installs openjdk-17-jre-headless)"
    try:
        import pyspark  # noqa: F401
    except ImportError:
        missing = "pyspark (the test extra)"
    if missing:
        if os.environ.get("CATALOG_REQUIRE_SPARK"):
            pytest.fail(f"CATALOG_REQUIRE_SPARK is set but {missing} is missing")
        pytest.skip(f"no {missing}")
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[1]").appName("catalog-snapshot-test")
        .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "1")
        .config("spark.sql.session.timeZone", "UTC").getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def spark_answers(spark: Any, lake: Path) -> dict[str, Any]:
    """Spark reads the files the Delta log lists, as plain Parquet."""
    for table in TABLES:
        files = log_files(lake, table)
        frame = spark.read.parquet(*files) if files else spark.createDataFrame([], _spark_schema(spark, lake, table))
        frame.createOrReplaceTempView(table)
    return answers(lambda q: [tuple(r) for r in spark.sql(q).collect()], "`at`")


def _spark_schema(spark: Any, lake: Path, table: str) -> Any:
    from pyspark.sql.types import StructType

    return StructType.fromJson(json.loads(published(Lake(LocalStorage(lake)), table).schema or schema_string(table)))


# -- a compaction killed at each point of its protocol ------------------------------------

KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from catalog.lake import Lake, LocalStorage
    from catalog.lake.compaction import compact

    lake, table, point = sys.argv[1:]

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    class Dying(LocalStorage):
        removed = 0

        def create_exclusive(self, path, data, *, sync=True):
            if point == "merged-in" and "/_delta_log/" in path:
                die()  # the merged file is in; the log still lists the inputs
            return super().create_exclusive(path, data, sync=sync)

        def write_atomic(self, path, data):
            if point == "committed" and path.startswith("_compactions/"):
                die()  # the log lists the merged file; the inputs are all still there
            return super().write_atomic(path, data)

        def remove(self, path):
            Dying.removed += 1
            if point == "removing" and Dying.removed == 2:
                die()  # one input removed, the others not
            return super().remove(path)

    compact(Lake(Dying(lake, durable=False)), table)
    sys.exit("the compaction was not killed")
    """
)


# The killed compactor's lease (where compaction takes leases: catalog.lake.lease) is
# this short, and the next compaction waits it out.
LEASE = 1.0


def kill_compaction(lake: Path, table: str, point: str) -> None:
    env = {**os.environ, "CATALOG_LEASE_SECONDS": str(LEASE)}
    run = subprocess.run([sys.executable, "-c", KILLER, str(lake), table, point], capture_output=True, text=True, env=env)
    assert run.returncode == -signal.SIGKILL, run.stderr


def wait_out_the_lease() -> None:
    import time

    time.sleep(LEASE + 0.2)


@pytest.mark.parametrize("point", ["merged-in", "committed", "removing"])
def test_engines_match_the_catalog_before_during_and_after_a_killed_compaction(lake, point):
    scenario(lake)
    with Registry(lake, durable=False) as reg:
        assert reg.snapshot()["events"]["committed"] == 0
    before = check_snapshot(lake)
    parts = sorted(p.name for p in (lake / "events").glob("part-*.parquet"))
    assert len(parts) > 10

    kill_compaction(lake, "events", point)
    merged = list((lake / "events").glob("compacted-*.parquet"))
    assert len(merged) == 1  # killed with the merged file in
    log = published(Lake(LocalStorage(lake)), "events")
    assert set(log.files) == ({merged[0].name} if point != "merged-in" else set(parts))
    # a plain glob now counts records twice; the snapshot does not
    globbed = Counter(r[0] for r in _glob_event_ids(lake))
    assert max(globbed.values()) == 2
    assert check_snapshot(lake) == before

    wait_out_the_lease()
    with Registry(lake, durable=False) as reg:  # the next compaction finishes the job
        reg.compact()
    assert [p.name for p in (lake / "events").glob("*.parquet") if not p.name.startswith("schema-")] == [
        f.rsplit("/", 1)[-1] for f in log_files(lake, "events")]
    assert check_snapshot(lake) == before


def _glob_event_ids(lake: Path) -> list[tuple[str]]:
    import duckdb

    return duckdb.sql(f"select event_id from read_parquet('{lake}/events/**/*.parquet', union_by_name = true)").fetchall()


def test_a_compaction_that_fails_before_its_merged_file_is_in_changes_nothing(lake):
    scenario(lake)
    with Registry(lake, durable=False) as reg:
        reg.snapshot()
    before = check_snapshot(lake)
    log = sorted((lake / "events" / "_delta_log").iterdir())

    def failing(paths, dest, footer, same):
        merge_files("events", paths, dest, footer, same)
        raise OSError("disk pulled out")

    with pytest.raises(OSError):
        compact(Lake(LocalStorage(lake, durable=False)), "events", merge=failing)
    assert sorted((lake / "events" / "_delta_log").iterdir()) == log
    assert check_snapshot(lake) == before


def test_the_snapshot_follows_appends_compactions_and_redactions_and_spark_reads_it(lake, spark):
    scenario(lake)
    with Registry(lake, actor="ana", durable=False) as reg:
        reg.register("churn", "s3://models/churn/4.pkl", description=f"trained on {SECRET}", capture_git=False)
        reg.approve("churn", 4, note=f"checked {SECRET} consent")
        reg.snapshot()
        before = check_snapshot(lake, spark=spark)

        # appended after the last publish: not in the snapshot until the next one
        reg.register("ltv", "s3://models/ltv/4.pkl", capture_git=False)
        assert delta_rs(lake) == before
        reg.compact()
        after_compact = check_snapshot(lake, spark=spark)
        assert after_compact["versions per model"] != before["versions per model"]

        # a compaction killed between its commit and the removal of its inputs
        reg.deploy("churn", 4, target="canary")
        reg.snapshot()
        mid = check_snapshot(lake)
        kill_compaction(lake, "events", "committed")
        assert check_snapshot(lake, mid, spark=spark) == catalog_answers(lake)
        wait_out_the_lease()

        # redaction: new files replace the old ones in the log, and the old ones go
        reg.register("churn", "s3://models/churn/5.pkl", description=f"again {SECRET}", capture_git=False)
        reg.redact("churn", fields=["description", "note"], reason="GDPR request 118")
    redacted = check_snapshot(lake, spark=spark)
    assert ("churn", 5) in redacted["version keys"]
    for table in TABLES:
        log = b"".join(p.read_bytes() for p in (lake / table / "_delta_log").iterdir())
        assert SECRET.encode() not in log
        for path in log_files(lake, table):
            assert SECRET.encode() not in Path(path).read_bytes()
        frame = deltalake.DeltaTable(str(lake / table)).to_pyarrow_table()
        assert SECRET not in str(frame.to_pylist())
    assert not any(SECRET.encode() in p.read_bytes() for p in lake.rglob("*") if p.is_file())
    commits = [json.loads(line) for p in sorted((lake / "versions" / "_delta_log").iterdir())
               for line in p.read_text().splitlines()]
    assert not any("stats" in a.get("add", {}) for a in commits)


def test_the_log_is_valid_delta_and_compaction_commits_only_rearrange(lake):
    scenario(lake)
    with Registry(lake, durable=False) as reg:
        reg.snapshot()
        reg.compact()
        reg.compact()  # already compact: no new commit
    table = deltalake.DeltaTable(str(lake / "events"))
    assert table.version() == 1
    protocol = table.protocol()
    assert (protocol.min_reader_version, protocol.min_writer_version) == (1, 2)
    history = table.history()
    assert [h["operation"] for h in history] == ["OPTIMIZE", "WRITE"]
    lines = (lake / "events" / "_delta_log" / f"{1:020d}.json").read_text().splitlines()
    actions = [json.loads(line) for line in lines]
    changes = [a.get("add") or a.get("remove") for a in actions if "add" in a or "remove" in a]
    assert changes and all(c["dataChange"] is False for c in changes)
    # the schema the engines see is the catalog's
    arrow = table.schema().to_arrow()
    from catalog.schema import arrow_tables

    assert [f.name for f in arrow] == [f.name for f in arrow_tables()["events"]]


def test_the_doctor_and_the_reader_ignore_the_log(lake):
    scenario(lake)
    with Registry(lake, durable=False) as reg:
        reg.snapshot()
        report = reg.doctor()
        assert report.ok, report.findings
        assert not any("_delta_log" in f.path for f in report.findings)
        before = reg.sql("select count(*) as n from versions").rows
        # a checkpoint another tool might write inside the log is not read as records
        (lake / "versions" / "_delta_log" / "00000000000000000000.checkpoint.parquet").write_bytes(
            next((lake / "versions").glob("part-*.parquet")).read_bytes())
    with Registry(lake, durable=False) as reg:
        assert reg.sql("select count(*) as n from versions").rows == before
        assert reg.doctor().ok


def test_catalog_snapshot_from_the_cli(cli, lake):
    assert cli("register", "m", "s3://m/1", "--no-git").exit_code == 0
    out = cli("snapshot")
    assert out.exit_code == 0, out.stderr
    assert "versions: published: Delta log" in out.stdout and "at version 0, 1 file(s)" in out.stdout
    again = cli("snapshot", "--json")
    assert json.loads(again.stdout)["versions"]["committed"] is None
    assert deltalake.DeltaTable(str(lake / "versions")).to_pyarrow_table().num_rows == 1


# -- the README's snippets ---------------------------------------------------------------

SECTION = "## Reading the lake from Spark, Trino and friends"


def readme_snippets() -> list[Any]:
    text = (REPO / "README.md").read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + 1)
    section = text[start:end if end >= 0 else None]
    return readme_blocks(section)


def test_the_readme_section_has_snippets_for_every_engine():
    code = "\n".join(b.code for b in readme_snippets())
    for engine in ("deltalake", "polars", "datafusion", "duckdb", "pyspark", "delta_scan", "trino", "ATHENA", "location"):
        assert engine.lower() in code.lower(), engine


def test_the_readme_snippets_run_and_agree_with_the_catalog(tmp_path, spark, monkeypatch, capsys):
    """Each snippet marked as run here runs in a folder whose data/lake is a lake: the
    `catalog snapshot` block publishes it, and each python heredoc prints as its last
    line the versions per model, which must be the catalog's count. (The heredocs run
    in this process, so that the Spark one reuses the module's one session.)"""
    lake = tmp_path / "data" / "lake"
    scenario(lake)
    with Registry(lake, durable=False) as reg:
        expected = [tuple(r.values()) for r in reg.sql("select model, count(*) as n from versions group by model order by model").rows]
    monkeypatch.chdir(tmp_path)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env = {k: v for k, v in env.items() if not k.startswith("CATALOG_")}
    ran = []
    for block in readme_snippets():
        if block.language != "sh":
            continue
        assert block.skip, f"README line {block.line}: every snippet here says where it runs"
        if not block.skip.startswith("run by tests/test_snapshot.py"):
            continue
        heredoc = re.fullmatch(r"python3? - <<'EOF'\n(.*?)^EOF\n", block.code, re.S | re.M)
        if heredoc is None:
            run = subprocess.run(["bash", "-c", block.code], cwd=tmp_path, env=env, capture_output=True, text=True)
            assert run.returncode == 0, (block.line, run.stderr)
        else:
            exec(compile(heredoc.group(1), f"README.md:{block.line}", "exec"), {"__name__": "__readme__"})
            printed = capsys.readouterr().out.strip().splitlines()
            assert [tuple(r) for r in ast.literal_eval(printed[-1])] == expected, block.line
        ran.append(block.line)
    assert len(ran) >= 5  # catalog snapshot, delta-rs + Polars, DataFusion, DuckDB, Spark


# -- on S3 ----------------------------------------------------------------------------------


def test_delta_rs_reads_the_snapshot_on_s3(s3_lake, tmp_path):
    """A lake copied into a bucket object by object, published there by `Registry.snapshot`
    (put-if-absent commits, no lock), read by delta-rs from the bucket: the catalog's answers."""
    import boto3

    local = tmp_path / "lake"
    scenario(local)
    bucket, _, prefix = s3_lake.removeprefix("s3://").partition("/")
    client = boto3.client("s3")
    for path in sorted(p for p in local.rglob("*") if p.is_file() and "_locks" not in p.parts):
        client.put_object(Bucket=bucket, Key=f"{prefix}/{path.relative_to(local).as_posix()}", Body=path.read_bytes())
    with Registry(s3_lake, actor="reader") as reg:
        published_now = reg.snapshot()
        assert published_now["versions"]["committed"] == 0 and published_now["versions"]["log"] == f"{s3_lake}/versions/_delta_log"
        counts = sorted(tuple(r.values()) for r in reg.sql(COUNTS.format(table="versions")).rows)
        deployed = sorted((d.model, d.target, d.version) for d in reg.deployments())
    assert counts == catalog_answers(local)["versions per model"]
    names = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION")
    options = {k: os.environ[k] for k in names if k in os.environ}
    options["AWS_ALLOW_HTTP"] = "true"
    import duckdb

    con = duckdb.connect()
    for table in TABLES:
        con.register(table, deltalake.DeltaTable(f"{s3_lake}/{table}", storage_options=options).to_pyarrow_table())
    assert sorted(con.sql(COUNTS.format(table="versions")).fetchall()) == counts
    assert sorted(con.sql(DEPLOYED.format(at='"at"')).fetchall()) == deployed


# -- publishers racing: no lock, put-if-absent commits --------------------------------------

WRITER = textwrap.dedent(
    """
    import sys
    from catalog import Registry

    lake, count = sys.argv[1], int(sys.argv[2])
    with Registry(lake, actor="ana", durable=False) as reg:
        for n in range(1, count + 1):
            reg.register("m", f"s3://m/{n}", capture_git=False)
            if n % 4 == 0:
                reg.compact()  # publishes
    """
)
PUBLISHER = textwrap.dedent(
    """
    import os, sys
    from catalog import Registry

    lake, stop = sys.argv[1:]
    with Registry(lake, actor="bob", durable=False) as reg:
        while not os.path.exists(stop):
            reg.snapshot()
    """
)


def test_publishers_race_without_a_lock_and_every_read_is_whole(lake, tmp_path):
    """A writer compacting (and so publishing) every few records while another process
    publishes in a loop and delta-rs reads the latest snapshot in a loop: every read
    holds versions 1..k of the model, each once, never a gap; no commit adds and removes
    one path; the last one lists files that exist and every version."""
    import time

    with Registry(lake, durable=False) as reg:
        reg.register("m", "s3://m/0", capture_git=False)
        reg.snapshot()
    stop = tmp_path / "stop"
    publisher = subprocess.Popen([sys.executable, "-c", PUBLISHER, str(lake), str(stop)])
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(lake), "24"])
    reads, stale = [], 0
    try:
        while writer.poll() is None:
            try:
                got = sorted(deltalake.DeltaTable(str(lake / "versions")).to_pyarrow_table().column("version").to_pylist())
            except Exception:  # an input removed after the commit this read started from: read again
                stale += 1
                continue
            assert got == list(range(1, len(got) + 1)), got
            reads.append(len(got))
            time.sleep(0.05)
    finally:
        stop.touch()
        publisher.wait(timeout=60)
        writer.wait(timeout=60)
    assert writer.returncode == 0 and publisher.returncode == 0
    assert len(reads) >= 3 and reads == sorted(reads), (reads, stale)
    with Registry(lake, durable=False) as reg:
        reg.snapshot()
        assert reg.sql("select count(*) as n from versions").rows == [{"n": 25}]
    commits = sorted((lake / "versions" / "_delta_log").iterdir())
    assert [p.name for p in commits] == [f"{n:020d}.json" for n in range(len(commits))]
    for commit in commits:
        actions = [json.loads(line) for line in commit.read_text().splitlines()]
        added = [a["add"]["path"] for a in actions if "add" in a]
        removed = [a["remove"]["path"] for a in actions if "remove" in a]
        assert not set(added) & set(removed) and len(set(added)) == len(added) and len(set(removed)) == len(removed)
    assert all(os.path.exists(p) for p in log_files(lake, "versions"))
    assert sorted(deltalake.DeltaTable(str(lake / "versions")).to_pyarrow_table().column("version").to_pylist()) == list(range(1, 26))
