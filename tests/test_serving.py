"""Resolve without a query: the per-model resolve documents (catalog.lake.serving).

Each test runs against a local folder and, where it says ``backend``, against the S3
test server too. What is proven: the documents hold exactly what the query path
answers; a document is never trusted past the next decision (a crash between an
event and its document included, with a real killed process); missing pins and
missing documents fall back to the query path; writers never put an older document
back; `compact` writes the missing ones and `doctor` checks them; and the plain
`catalog resolve` answers from them without importing DuckDB or pyarrow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from catalog import Registry
from catalog.errors import CatalogError
from catalog.lake import open_storage, serving
from catalog.resolving import resolve_plain

REPO = Path(__file__).resolve().parents[1]
_FAR = "2999-01-01T00:00:00Z"  # an as-of question takes the query path


@pytest.fixture(params=["local", "s3"])
def backend(request, tmp_path) -> str:
    """Where the lake lives: a local folder, or a fresh s3:// prefix on the test server."""
    if request.param == "s3":
        return str(request.getfixturevalue("s3_lake"))
    return str(tmp_path / "lake")


def _lifecycle(lake: str) -> None:
    """Three versions of m (v1 deployed then rolled back to, v2 deprecated...), one of n."""
    ana, bob = Registry(lake, actor="ana"), Registry(lake, actor="bob")
    for i in (1, 2, 3):
        ana.register("m", f"s3://m/{i}", capture_git=False)
    ana.register("n", "s3://n/1", capture_git=False)
    bob.approve("m", 1)
    bob.approve("m", 2)
    bob.deploy("m", 1, target="prod")
    bob.deploy("m", 2, target="prod", note="canary passed")
    bob.deploy("m", 2, target="staging")
    bob.rollback("m", target="prod", note="latency")
    bob.approve("m", 3)
    bob.deprecate("m", 3, note="bias found")


REFS = ["m@prod", "m@staging", "m@latest", "m:1", "m:2", "m:3", "m:4", "m@canary", "n@latest", "n:1", "n@prod",
        "zz@prod", "zz:1", "zz@latest"]


def _answer(fn, ref: str) -> tuple[str, str]:
    try:
        return "ok", fn(ref)
    except CatalogError as exc:
        return type(exc).__name__, str(exc)


def test_documents_answer_exactly_what_the_query_path_answers(backend):
    _lifecycle(backend)
    reg = Registry(backend)
    for ref in REFS:
        assert _answer(reg.resolve, ref) == _answer(lambda r: reg.resolve(r, as_of=_FAR), ref), ref
    # A fresh registry answers the common references without opening DuckDB at all.
    fresh = Registry(backend)
    assert [fresh.resolve(r) for r in ("m@prod", "m@staging", "m@latest", "m:3", "n:1")] == \
        ["s3://m/1", "s3://m/2", "s3://m/2", "s3://m/3", "s3://n/1"]
    assert fresh._s._reader is None


def test_each_write_leaves_the_document_its_decision_computes(backend):
    storage = open_storage(backend)
    reg = Registry(backend, actor="ana")
    reg.register("m", "s3://m/1", capture_git=False)
    doc = serving.read(storage, "m")[0]
    assert (doc.decision, dict(doc.pins), doc.latest, dict(doc.targets)) == (0, {1: "s3://m/1"}, None, {})
    Registry(backend, actor="bob").approve("m", 1)
    reg.register("m", "s3://m/2", capture_git=False)
    Registry(backend, actor="bob").deploy("m", 1, target="prod")
    doc = serving.read(storage, "m")[0]
    assert (doc.decision, dict(doc.pins), doc.latest, dict(doc.targets)) == \
        (2, {1: "s3://m/1", 2: "s3://m/2"}, "s3://m/1", {"prod": "s3://m/1"})
    assert serving.current(storage, doc)


def test_a_document_behind_the_decisions_is_never_trusted(backend, monkeypatch):
    """A crash between an event and its document (here: the document write skipped)
    leaves a document naming an older decision while the next one exists: every
    resolve then takes the query path, and the next decision writes it again."""
    import catalog.resolving as resolving

    _lifecycle(backend)
    storage = open_storage(backend)
    before = serving.read(storage, "m")[0]
    monkeypatch.setattr(resolving.serving, "publish", lambda *a, **k: False)
    Registry(backend, actor="bob").deploy("m", 2, target="prod", note="again")
    assert serving.read(storage, "m")[0] == before and not serving.current(storage, before)
    assert Registry(backend).resolve("m@prod") == "s3://m/2"
    assert resolve_plain(storage, "m@prod") is None  # the document cannot say: query path
    monkeypatch.undo()
    Registry(backend, actor="bob").deploy("m", 3 - 2, target="staging")
    doc = serving.read(storage, "m")[0]
    assert serving.current(storage, doc) and doc.targets == {"prod": "s3://m/2", "staging": "s3://m/1"}


def test_a_process_killed_between_event_and_document_leaves_no_stale_answer(backend):
    _lifecycle(backend)
    script = textwrap.dedent(
        """
        import os, sys
        import catalog.resolving as resolving
        from catalog import Registry
        resolving.serving.publish = lambda *a, **k: os._exit(9)  # dies right after the event
        Registry(sys.argv[1], actor="bob").deploy("m", 2, target="prod", note="again")
        """
    )
    done = subprocess.run([sys.executable, "-c", script, backend], env={**os.environ, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True)
    assert done.returncode == 9, done.stderr
    assert Registry(backend).resolve("m@prod") == "s3://m/2"
    plain = subprocess.run([sys.executable, "-m", "catalog", "--lake", backend, "resolve", "m@prod"],
                           capture_output=True, text=True, cwd=str(REPO))
    assert plain.stdout == "s3://m/2\n", plain.stderr


def test_a_warm_registry_sees_each_decision_and_registration(backend):
    serving_reg = Registry(backend)
    ana, bob = Registry(backend, actor="ana"), Registry(backend, actor="bob")
    ana.register("m", "s3://m/1", capture_git=False)
    assert serving_reg.resolve("m:1") == "s3://m/1"
    bob.approve("m", 1)
    bob.deploy("m", 1, target="prod")
    assert serving_reg.resolve("m@prod") == "s3://m/1"
    ana.register("m", "s3://m/2", capture_git=False)
    assert serving_reg.resolve("m:2") == "s3://m/2"
    bob.approve("m", 2)
    bob.deploy("m", 2, target="prod")
    assert serving_reg.resolve("m@prod") == "s3://m/2"
    bob.rollback("m", target="prod", note="errors")
    assert serving_reg.resolve("m@prod") == "s3://m/1"


def test_pins_missing_from_a_document_come_from_the_query_path(backend):
    reg = Registry(backend, actor="ana")
    reg.register("m", "s3://m/1", capture_git=False)
    reg.register_many([{"model": "m", "artifact_uri": "s3://m/2"}])  # a bulk load adds no pin
    storage = open_storage(backend)
    assert dict(serving.read(storage, "m")[0].pins) == {1: "s3://m/1"}
    assert resolve_plain(storage, "m:2") is None
    assert Registry(backend).resolve("m:2") == "s3://m/2"
    with pytest.raises(CatalogError, match="version 3"):
        Registry(backend).resolve("m:3")


def test_unreadable_or_foreign_documents_are_read_as_none(tmp_path):
    lake = str(tmp_path / "lake")
    _lifecycle(lake)
    storage = open_storage(lake)
    path = storage.local_path(serving.document_path("m"))
    for body in (b"", b"{not json", json.dumps({"format": 1, "model": "n", "decision": 99, "targets": {},
                                                "latest": None, "pins": {}}).encode()):
        with open(path, "wb") as fh:
            fh.write(body)
        assert serving.read(storage, "m") is None
        assert Registry(lake).resolve("m@prod") == "s3://m/1"


def test_writers_never_put_an_older_document_back(tmp_path):
    storage = open_storage(str(tmp_path / "lake"))
    newer = serving.Document("m", 5, {"prod": "s3://m/5"}, "s3://m/5", {5: "s3://m/5"})
    assert serving.publish(storage, newer)
    assert not serving.publish(storage, serving.Document("m", 4, {"prod": "s3://m/4"}))
    assert not serving.publish(storage, serving.Document("m", 5, {"prod": "s3://m/4"}))
    assert serving.read(storage, "m")[0] == newer


def test_a_registrant_adds_its_pin_only_to_the_document_it_read_before_writing(tmp_path):
    """A decision made meanwhile (say, one that hides the new version) wrote a newer
    document: the pin is not added to it (the query path answers that pin)."""
    storage = open_storage(str(tmp_path / "lake"))
    serving.publish(storage, serving.Document("m", 3, pins={1: "s3://m/1"}))
    seen = serving.read(storage, "m")
    serving.publish(storage, serving.Document("m", 4, pins={1: "s3://m/1"}))
    assert not serving.add_pin(storage, seen, "m", 2, "s3://m/2", first=False)
    assert 2 not in serving.read(storage, "m")[0].pins
    # Another registrant's pin at the same decision is no obstacle.
    seen = serving.read(storage, "m")
    serving.add_pin(storage, serving.read(storage, "m"), "m", 3, "s3://m/3", first=False)
    assert serving.add_pin(storage, seen, "m", 2, "s3://m/2", first=False)
    assert dict(serving.read(storage, "m")[0].pins) == {1: "s3://m/1", 2: "s3://m/2", 3: "s3://m/3"}


def test_concurrent_registrants_and_deciders_leave_a_current_document(backend):
    """Processes registering and deciding on one model at once: when they are done, the
    model's document is current and agrees with the query path."""
    Registry(backend, actor="ana").register("m", "s3://m/0", capture_git=False)
    Registry(backend, actor="bob").approve("m", 1)
    script = textwrap.dedent(
        """
        import sys
        from catalog import Registry
        lake, me = sys.argv[1], int(sys.argv[2])
        reg = Registry(lake, actor=f"w{me}", durable=False)
        for i in range(4):
            if me % 2:
                reg.register("m", f"s3://m/w{me}/{i}", capture_git=False)
            else:
                reg.deploy("m", 1, target=f"t{me}-{i}")
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "CATALOG_DECISION_GRACE": "0.3"}
    procs = [subprocess.Popen([sys.executable, "-c", script, backend, str(k)], env=env, stderr=subprocess.PIPE, text=True)
             for k in range(4)]
    for p in procs:
        assert p.wait() == 0, p.stderr.read() if p.stderr else ""
    storage = open_storage(backend)
    doc = serving.load(storage, "m")
    assert doc is not None and doc.decision == 9 and len(doc.targets) == 8
    reg = Registry(backend)
    for ref in [*(f"m@{t}" for t in doc.targets), "m@latest", *(f"m:{v}" for v in range(1, 10))]:
        assert _answer(reg.resolve, ref) == _answer(lambda r: reg.resolve(r, as_of=_FAR), ref), ref


def test_compact_writes_missing_documents_and_doctor_checks_them(tmp_path):
    lake = str(tmp_path / "lake")
    _lifecycle(lake)
    storage = open_storage(lake)
    reg = Registry(lake)
    assert not reg.doctor().findings or all("resolve document" not in f.problem for f in reg.doctor().findings)
    good = serving.read(storage, "m")[0]
    storage.remove(serving.document_path("m"))
    storage.write_atomic(serving.document_path("n"), serving.Document("n", 0, {"prod": "s3://wrong"}).to_bytes())
    found = {f.path: f for f in reg.doctor().findings if "resolve document" in f.problem}
    assert set(found) == {serving.document_path("m"), serving.document_path("n")}
    assert found[serving.document_path("m")].severity == "info"
    assert found[serving.document_path("n")].severity == "error"
    repaired = reg.doctor(repair=True)
    assert all(f.repaired for f in repaired.findings if "resolve document" in f.problem)
    assert serving.read(storage, "m")[0] == good
    assert serving.load(storage, "n").targets == {}
    storage.remove(serving.document_path("m"))
    reg.compact()
    assert serving.read(storage, "m")[0] == good


def _imports(argv: list[str], cwd: Path) -> list[str]:
    probe = (
        "import sys, runpy; sys.argv = ['catalog'] + sys.argv[1:]\n"
        "try:\n    runpy.run_module('catalog', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'pyarrow', 'duckdb', 'typer', 'pandas', 'numpy'}))"
    )
    done = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, cwd=str(cwd),
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_plain_catalog_resolve_imports_neither_duckdb_nor_pyarrow(backend, tmp_path):
    """The serving path's own check: this fails as soon as anything on the plain
    `catalog resolve` path imports DuckDB or pyarrow (or typer, pandas, numpy)."""
    _lifecycle(backend)
    for ref, uri in (("m@prod", "s3://m/1"), ("m@latest", "s3://m/2"), ("m:3", "s3://m/3"), ("n:1", "s3://n/1")):
        assert _imports(["--lake", backend, "resolve", ref], tmp_path) == [uri, "[]"], ref
    out = _imports(["--lake", backend, "resolve", "m@prod", "--json"], tmp_path)
    assert json.loads("\n".join(out[:-1])) == {"ref": "m@prod", "artifact_uri": "s3://m/1"} and out[-1] == "[]"


def test_documents_of_names_that_are_not_their_own_path(backend):
    from catalog.lake.lake import decisions_folder

    names = ["RM1", "rm1", "original name", "modèle", "a@b"]
    for name in names:
        assert serving.decision_path(name, 7) == f"{decisions_folder(name)}/7"
        assert name not in serving.document_path(name) or name == "rm1"
        Registry(backend, actor="ana").register(name, f"s3://{len(name)}/{name}", capture_git=False)
        Registry(backend, actor="bob").approve(name, 1)
        Registry(backend, actor="bob").deploy(name, 1, target="prod")
    storage = open_storage(backend)
    for name in names:
        assert resolve_plain(storage, f"{name}@prod") == f"s3://{len(name)}/{name}"
        assert resolve_plain(storage, f"{name}:1") == f"s3://{len(name)}/{name}"


def test_a_damaged_table_file_does_not_stop_serving_from_its_documents(tmp_path):
    """Serving does not read the tables: a table file damaged after the last decision
    leaves the document's answer (the last the sound lake gave); a question that
    queries the tables names the damaged file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from catalog.errors import LakeDamaged

    lake = str(tmp_path / "lake")
    _lifecycle(lake)
    bad = Path(lake) / "events" / "part-20991231T000000000000Z-00000000000000ff.parquet"
    pq.write_table(pa.table({"schema_version": [1], "event_id": ["x"], "at": [5], "actor": ["a"], "model": ["m"],
                             "kind": ["approve"]}), bad)
    assert Registry(lake).resolve("m@prod") == "s3://m/1"
    with pytest.raises(LakeDamaged, match=bad.name):
        Registry(lake).resolve("m@prod", as_of=_FAR)



def test_new_event_kinds_keep_documents_and_queries_in_agreement(backend):
    """undeploy, delete (a version, a model), rename, create, tag and describe: after each,
    every reference answers from the documents exactly as the query path does."""
    ana, bob = Registry(backend, actor="ana"), Registry(backend, actor="bob")
    refs = ["m@prod", "m@staging", "m@latest", "m:1", "m:2", "m:3", "r@prod", "r@latest", "r:1", "r:2", "r:3",
            "c@latest", "c:1", "gone@latest", "gone:1"]

    def agree(step: str) -> None:
        reg = Registry(backend)
        for ref in refs:
            assert _answer(reg.resolve, ref) == _answer(lambda r: reg.resolve(r, as_of=_FAR), ref), (step, ref)

    for i in (1, 2, 3):
        ana.register("m", f"s3://m/{i}", capture_git=False)
    bob.approve("m", 1)
    bob.approve("m", 2)
    bob.deploy("m", 2, target="prod")
    bob.deploy("m", 1, target="staging")
    agree("deployed")
    bob.undeploy("m", target="staging", note="retired")
    agree("undeploy")
    bob.delete("m", 3, note="mistake")
    agree("delete a version")
    bob.tag("m", 1, set={"team": "x"})
    bob.describe("m", description="churn")
    agree("tag, describe")
    bob.rename("m", "r", note="new name")
    agree("rename")
    assert Registry(backend).resolve("r@prod") == "s3://m/2"
    assert serving.load(open_storage(backend), "r") is not None
    ana.register("r", "s3://r/4", capture_git=False)
    agree("register after rename")
    bob.create_model("c", description="empty for now")
    agree("create")
    ana.register("c", "s3://c/1", capture_git=False)
    agree("register after create")
    ana.register("gone", "s3://g/1", capture_git=False)
    bob.approve("gone", 1)
    bob.delete("gone", note="obsolete")
    agree("delete a model")
