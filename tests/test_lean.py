"""What the lean processes load: serving through the Python API and a plain register.

A serving process (``Registry(lake).resolve(...)`` answered from the resolve
documents) imports neither DuckDB nor pyarrow, and answers what the query path
answers; a process that registers a version of a model it has registered before
(no parent to check, nothing to compact) imports no DuckDB and no pandas (pyarrow,
to write the Parquet file, it needs). Each check runs in a fresh interpreter,
since this test process has long imported everything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pytest

from catalog import Registry
from catalog.errors import ModelRenamed
from catalog.lake.lake import _to_parquet
from catalog.lake.rows import table
from catalog.schema import arrow_tables

REPO = Path(__file__).resolve().parents[1]
_HEAVY = ("duckdb", "pyarrow", "pandas", "numpy")


def _run(script: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script), *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _lake(tmp_path: Path) -> str:
    lake = str(tmp_path / "lake")
    ana, bob = Registry(lake, actor="ana"), Registry(lake, actor="bob")
    for i in (1, 2, 3):
        ana.register("m", f"s3://m/{i}", capture_git=False)
    bob.approve("m", 1)
    bob.approve("m", 2)
    bob.deploy("m", 1, target="prod")
    return lake


SERVE = """
    import json, sys
    from catalog import Registry
    reg = Registry(sys.argv[1], actor="svc")
    answers = {ref: reg.resolve(ref) for ref in sys.argv[2:]}
    print(json.dumps({"answers": answers, "loaded": sorted({m.split(".")[0] for m in sys.modules} & set(%r))}))
""" % (_HEAVY,)


def test_a_serving_process_through_the_api_imports_neither_duckdb_nor_pyarrow(tmp_path):
    lake = _lake(tmp_path)
    refs = ["m@prod", "m@latest", "m:1", "m:3"]
    got = _run(SERVE, lake, *refs)
    assert got["loaded"] == []
    # The same answers as the query path's (an as-of question always takes it).
    reg = Registry(lake)
    assert got["answers"] == {ref: reg.resolve(ref, as_of="2999-01-01T00:00:00Z") for ref in refs}
    assert got["answers"] == {"m@prod": "s3://m/1", "m@latest": "s3://m/2", "m:1": "s3://m/1", "m:3": "s3://m/3"}


def test_a_document_that_cannot_say_still_answers_through_the_query_path(tmp_path):
    """The lean path only ever adds a way to answer: without documents the query path
    (DuckDB) answers as before, in the same kind of process."""
    lake = _lake(tmp_path)
    for doc in (Path(lake) / "_serving").iterdir():
        doc.unlink()
    got = _run(SERVE, lake, "m@prod", "m:2")
    assert got["answers"] == {"m@prod": "s3://m/1", "m:2": "s3://m/2"}
    assert "duckdb" in got["loaded"]


REGISTER = """
    import json, sys
    from catalog import Registry
    v = Registry(sys.argv[1], actor="ana").register(sys.argv[2], sys.argv[3], capture_git=False)
    print(json.dumps({"version": v.version, "loaded": sorted({m.split(".")[0] for m in sys.modules} & set(%r))}))
""" % (_HEAVY,)


def test_a_register_process_imports_no_duckdb_and_no_pandas(tmp_path):
    lake = _lake(tmp_path)
    got = _run(REGISTER, lake, "m", "s3://m/4")
    assert got["version"] == 4
    assert "duckdb" not in got["loaded"] and "pandas" not in got["loaded"]
    reg = Registry(lake)
    assert reg.show("m", 4).artifact_uri == "s3://m/4"
    assert reg.resolve("m:4") == "s3://m/4" == reg.resolve("m:4", as_of="2999-01-01T00:00:00Z")
    # A new lake (its schema anchors written too) needs no pandas either.
    got = _run(REGISTER, str(tmp_path / "new"), "n", "s3://n/1")
    assert got["version"] == 1 and got["loaded"] == ["numpy", "pyarrow"]
    assert Registry(tmp_path / "new").show("n", 1).artifact_uri == "s3://n/1"


def test_the_cli_register_process_imports_no_duckdb(tmp_path):
    lake = _lake(tmp_path)
    probe = (
        "import sys, runpy; sys.argv = ['catalog'] + sys.argv[1:]\n"
        "try:\n    runpy.run_module('catalog', run_name='__main__')\n"
        "except SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'duckdb', 'pandas'}))"
    )
    done = subprocess.run([sys.executable, "-c", probe, "--lake", lake, "register", "m", "s3://m/4", "--no-git"],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO), "CATALOG_ACTOR": "ana"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"
    assert Registry(lake).show("m", 4).artifact_uri == "s3://m/4"


def _version_row(**changes):
    row = {
        "schema_version": 2, "model": "m", "version": 3, "artifact_uri": "s3://é/1", "artifact_sha256": None,
        "artifact_bytes": 12, "owner": "ana", "description": "a\nb", "tags": {"a": "b", "ü": ""}, "code_dirty": True,
        "data_refs": ["s3://d/1", "s3://d/2"], "parents": [{"model": "p", "version": 1, "relation": "derived"}],
        "metrics": {"auc": 0.9, "n": 3}, "params": {}, "dashboards": None,
        "created_at": datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=2))), "created_by": "ana",
        "origin": {"system": "mlflow"}, "imported_at": datetime(2026, 1, 3, tzinfo=timezone.utc), "imported_by": "bob",
    }
    return {**row, **changes}


def test_rows_built_from_buffers_equal_pyarrows_own_conversion():
    """The appended files are the same bytes as pa.Table.from_pylist would give; values it
    does not build (a naive time, an int too wide, a subclass) go to from_pylist itself."""
    versions, events = arrow_tables()["versions"], arrow_tables()["events"]
    samples = [
        [_version_row()],
        [_version_row(), _version_row(version=4, tags=None, data_refs=[], parents=[], code_dirty=None, metrics=None,
                                      origin=None, imported_at=None, artifact_bytes=None, description="")],
        [_version_row(parents=[{"model": "a", "version": 2, "relation": "x"}, {"model": "b", "version": 9,
                                                                                "relation": "y"}], code_dirty=False)],
        [_version_row(created_at=datetime(2026, 1, 2, 3, 4, 5))],  # naive: from_pylist's reading of it
        [_version_row(metrics={"loss": float("inf"), "x": -0.0})],
        [],
    ]
    for rows in samples:
        built, reference = table(rows, versions), pa.Table.from_pylist(rows, schema=versions)
        built.validate(full=True)
        assert built.equals(reference) and _to_parquet(built) == _to_parquet(reference)
    event = {"schema_version": 2, "event_id": "e1", "at": datetime.fromisoformat("2026-01-02T00:00:00+00:00"),
             "actor": "bob", "model": "m", "version": None, "kind": "tag", "tags": {"k": "v"}, "tags_deleted": ["old"]}
    assert _to_parquet(table([event], events)) == _to_parquet(pa.Table.from_pylist([event], schema=events))
    # What from_pylist refuses is refused the same way.
    for bad in (_version_row(version=2**70), _version_row(model=3), _version_row(tags={"a": 1})):
        with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError)) as built_error:
            table([bad], versions)
        with pytest.raises(type(built_error.value)):
            pa.Table.from_pylist([bad], schema=versions)


def test_a_warm_registrant_still_sees_a_rename_made_since(tmp_path):
    """register reads the model's latest decision once per decision (it never changes):
    a rename decided by another process after that is still seen."""
    lake = str(tmp_path / "lake")
    ana, bob = Registry(lake, actor="ana"), Registry(lake, actor="bob")
    ana.register("m", "s3://m/1", capture_git=False)
    bob.approve("m", 1)
    ana.register("m", "s3://m/2", capture_git=False)  # its latest decision (an approval) read
    bob.rename("m", "n")
    with pytest.raises(ModelRenamed):
        ana.register("m", "s3://m/3", capture_git=False)
    assert ana.register("n", "s3://n/3", capture_git=False).version == 3
