"""`catalog import mlflow`: a real MLflow registry (a SQLite file populated through MLflow's
own client in the test) brought into a lake with numbers, times, users, runs, tags,
descriptions, stages and aliases kept; a re-run brings only what is new; a clash is
refused with the lake unchanged."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

pytest.importorskip("mlflow")

from mlflow.entities import Dataset, DatasetInput, InputTag  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from catalog import Registry  # noqa: E402
from catalog.errors import ImportConflict, ImportSourceInvalid  # noqa: E402

from .conftest import snapshot  # noqa: E402

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _ms(ts: int) -> datetime:
    return datetime.fromtimestamp(ts / 1000, tz=timezone.utc)


class Source:
    """An MLflow registry in a SQLite file, written through MlflowClient."""

    def __init__(self, folder: Path) -> None:
        self.db = folder / "mlflow.db"
        self.uri = f"sqlite:///{self.db}"
        self.client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        self.experiment = self.client.create_experiment("churn", artifact_location=(folder / "artifacts").as_uri())

    def run(self, auc: float, user: str = "ana") -> str:
        c = self.client
        run = c.create_run(self.experiment, tags={
            "mlflow.user": user, "mlflow.source.git.commit": COMMIT, "mlflow.source.git.branch": "main",
            "mlflow.source.git.repoURL": "https://github.com/acme/churn", "team": "retention",
        })
        rid = run.info.run_id
        c.log_param(rid, "lr", "0.01")
        c.log_param(rid, "depth", "6")
        c.log_metric(rid, "auc", auc - 0.1)
        c.log_metric(rid, "auc", auc)  # the latest value is the one brought
        c.log_inputs(rid, [DatasetInput(Dataset("churn-train", "d1g35t", "s3", '{"uri": "s3://data/churn.parquet"}'),
                                        [InputTag("mlflow.data.context", "training")])])
        c.log_text(rid, "artifact_path: model\n", "model/MLmodel")
        c.set_terminated(rid)
        return rid


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """churn v1..v6 with v3 and v4 deleted (gaps), v1 Archived, v2 in Production, aliases
    prod-eu -> v2 and canary -> v5, version and model tags and descriptions; 'original name'
    (a name MLflow accepts and the catalog keeps exactly); 'empty' (a model with no version)."""
    folder = tmp_path_factory.mktemp("mlflow")
    src = Source(folder)
    c = src.client
    c.create_registered_model("churn", tags={"team": "retention"}, description="weekly churn score")
    for n in range(1, 6):
        rid = src.run(0.8 + n / 100)
        c.create_model_version("churn", f"runs:/{rid}/model", run_id=rid, tags={"n": str(n)}, description=f"try {n}")
    c.delete_model_version("churn", "3")
    c.delete_model_version("churn", "4")
    c.transition_model_version_stage("churn", "1", "Archived")
    c.transition_model_version_stage("churn", "2", "Production")
    c.set_registered_model_alias("churn", "prod-eu", "2")
    c.set_registered_model_alias("churn", "canary", "5")
    c.create_registered_model("original name")
    c.create_model_version("original name", "s3://bucket/original/1", run_id=None)
    c.transition_model_version_stage("original name", "1", "Staging")
    c.create_registered_model("empty", description="nothing yet")
    c.copy_model_version("models:/churn/2", "churn-copy")  # its source: models:/churn/2
    return folder


@pytest.fixture
def source(template: Path, tmp_path: Path) -> Source:
    """A copy of the template registry this test may change (the runs' artifacts stay shared)."""
    folder = tmp_path / "mlflow"
    folder.mkdir()
    shutil.copy(template / "mlflow.db", folder / "mlflow.db")
    src = Source.__new__(Source)
    src.db = folder / "mlflow.db"
    src.uri = f"sqlite:///{src.db}"
    src.client = MlflowClient(tracking_uri=src.uri, registry_uri=src.uri)
    src.experiment = src.client.get_experiment_by_name("churn").experiment_id
    return src


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "lake", actor="importer", durable=False)


def test_versions_keep_their_numbers_times_users_runs_and_origin(source: Source, reg: Registry) -> None:
    report = reg.import_mlflow(source.uri)
    assert (report.versions, report.models) == (5, ["churn", "churn-copy", "empty", "original name"])
    churn = reg.show("churn")
    assert [v.version for v in churn.versions] == [1, 2, 5]  # the gaps MLflow has, kept
    for v in churn.versions:
        mv = source.client.get_model_version("churn", str(v.version))
        run = source.client.get_run(mv.run_id)
        assert v.created_at == _ms(mv.creation_timestamp)
        assert v.created_by == "ana"  # MLflow records no version creator: the run's user
        assert v.imported_by == "importer" and v.imported_at is not None and v.imported_at > v.created_at
        # where MLflow stored it (runs:/ resolved); a local artifact is hashed as register hashes one
        assert v.artifact_uri == run.info.artifact_uri.removeprefix("file://") + "/model"
        assert v.artifact_sha256 is not None
        assert v.metrics == {"auc": pytest.approx(0.8 + v.version / 100)}
        assert v.params == {"lr": "0.01", "depth": "6"}
        assert (v.code_repo, v.code_version) == ("https://github.com/acme/churn", COMMIT)
        assert v.data_refs == ["s3://data/churn.parquet@d1g35t"]
        assert v.description == f"try {v.version}" and v.tags == {"n": str(v.version)}
        assert v.origin["system"] == "mlflow" and v.origin["source"] == f"sqlite:///{source.db}"
        assert v.origin["id"] == f"model_versions/churn/{v.version}"
        assert v.origin["run_id"] == mv.run_id and v.origin["source_uri"] == mv.source
        assert v.origin["git_branch"] == "main"
    (copied,) = reg.show("churn-copy").versions  # a copy's artifact is where its original's is
    assert copied.artifact_uri == reg.show("churn", 2).artifact_uri and copied.origin["source_uri"] == "models:/churn/2"
    original = reg.show("original name")
    assert [(v.version, v.artifact_uri, v.created_by) for v in original.versions] == [(1, "s3://bucket/original/1", "unknown")]


def test_model_descriptions_tags_and_a_model_without_versions(source: Source, reg: Registry) -> None:
    reg.import_mlflow(source.uri)
    churn = reg.show("churn")
    assert churn.description == "weekly churn score" and churn.tags == {"team": "retention"}
    models = {r["model"]: r for r in reg.sql("select model, description, latest_version from models").rows}
    assert models["empty"]["description"] == "nothing yet" and models["empty"]["latest_version"] is None


def test_stages_and_aliases_become_approvals_and_deployments(source: Source, reg: Registry) -> None:
    report = reg.import_mlflow(source.uri)
    states = {v.version: v.state for v in reg.show("churn").versions}
    assert states == {1: "rejected", 2: "approved", 5: "approved"}  # Archived candidate: rejected
    staged = reg.show("original name", 1)  # Staging is a test stage: still a candidate, the stage kept
    assert staged.state == "candidate" and staged.origin["stage"] == "Staging"
    assert reg.resolve("churn@prod-eu") == reg.show("churn", 2).artifact_uri
    assert reg.resolve("churn@canary") == reg.show("churn", 5).artifact_uri
    history = [e for e in reg.history("churn") if e.kind not in ("register",)]
    kinds = [(e.kind, e.version, e.target, e.actor) for e in history if e.kind in ("approve", "reject", "deploy")]
    # v2 was approved by its Production stage (MLflow records no actor); v5 is approved by
    # the importer only so that its alias can deploy it, and says so
    assert ("approve", 2, None, "unknown") in kinds and ("reject", 1, None, "unknown") in kinds
    added = [e for e in history if e.kind == "approve" and e.version == 5]
    assert len(added) == 1 and added[0].actor == "importer" and "approved by the import" in added[0].note
    assert report.approvals_added == 1
    deploys = [e for e in history if e.kind == "deploy"]
    assert {e.target for e in deploys} == {"prod-eu", "canary"}
    assert all(e.origin["id"].startswith("registered_models/churn/aliases/") for e in deploys)
    assert all(h.at > a.at for h in deploys for a in history if a.kind == "approve" and a.version == h.version)


def test_a_rerun_is_a_no_op_and_later_changes_are_brought(source: Source, reg: Registry, tmp_path: Path) -> None:
    reg.import_mlflow(source.uri)
    before = snapshot(tmp_path / "lake")
    again = reg.import_mlflow(source.uri)
    assert (again.versions, again.events) == (0, 0) and again.already_imported > 0
    assert snapshot(tmp_path / "lake") == before
    # later in MLflow: a new version (numbered on after the deleted ones), and the alias moves to it
    c = source.client
    rid = Source.run(source, 0.95)
    mv = c.create_model_version("churn", f"runs:/{rid}/model", run_id=rid)
    c.set_registered_model_alias("churn", "prod-eu", mv.version)
    c.update_model_version("churn", "1", description="first try")  # edits of what was imported already
    c.set_model_version_tag("churn", "1", "n", "one")
    c.delete_model_version_tag("churn", "2", "n")
    c.update_registered_model("churn", description="weekly churn score, v2")
    third = reg.import_mlflow(source.uri)
    # the new version; the importer's approval, then the deploy; v1's description and tag; the model's description
    assert third.versions == 1 and third.events == 5
    assert reg.resolve("churn@prod-eu") == reg.show("churn", int(mv.version)).artifact_uri
    assert [v.version for v in reg.show("churn").versions] == [1, 2, 5, int(mv.version)]
    v1 = reg.show("churn", 1)
    assert (v1.description, v1.tags) == ("first try", {"n": "one"})
    assert reg.show("churn").description == "weekly churn score, v2" and reg.show("churn").tags == {"team": "retention"}
    edits = [e for e in reg.history("churn") if e.kind in ("describe", "tag") and e.version == 1]
    assert [(e.kind, e.actor, e.at) for e in edits] == [
        ("describe", "unknown", _ms(c.get_model_version("churn", "1").last_updated_timestamp)),
        ("tag", "unknown", _ms(c.get_model_version("churn", "1").last_updated_timestamp) + timedelta(microseconds=1)),
    ]
    assert reg.show("churn", 2).tags == {"n": "2"}  # a tag deleted in MLflow stays: said in the report
    assert any("tag(s) n deleted there stay here" in line for line in third.not_brought)
    settled = snapshot(tmp_path / "lake")
    assert reg.import_mlflow(source.uri).events == 0 and snapshot(tmp_path / "lake") == settled


def test_a_clash_with_the_lake_is_refused_and_the_lake_is_unchanged(source: Source, reg: Registry, tmp_path: Path) -> None:
    reg.register("churn", "s3://models/churn/1.pkl", capture_git=False)  # a churn of the lake's own
    before = snapshot(tmp_path / "lake")
    with pytest.raises(ImportConflict) as refused:
        reg.import_mlflow(source.uri)
    assert "model 'churn' is already in the lake" in str(refused.value)
    assert snapshot(tmp_path / "lake") == before
    assert "original name" not in {m.model for m in reg.list()}  # not even the models that do not clash


def test_dry_run_writes_nothing_and_says_what_it_would_do(source: Source, reg: Registry, tmp_path: Path) -> None:
    report = reg.import_mlflow(source.uri, dry_run=True)
    assert report.dry_run and report.versions == 5 and report.events > 0
    assert snapshot(tmp_path / "lake") == {}


def test_the_cli_imports_with_json_and_refuses_bad_input_in_one_line(source: Source, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from catalog.cli import app

    lake = tmp_path / "lake"
    run = CliRunner().invoke
    done = run(app, ["--lake", str(lake), "--actor", "importer", "import", "mlflow", "--from", str(source.db), "--json"])
    assert done.exit_code == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["versions"] == 5 and report["source"] == f"sqlite:///{source.db}" and report["dry_run"] is False
    text = run(app, ["--lake", str(lake), "import", "mlflow", "--from", source.uri])
    assert text.exit_code == 0 and "imported from" in text.stdout and "already in the lake" in text.stdout
    missing = run(app, ["--lake", str(tmp_path / "other"), "import", "mlflow", "--from", str(tmp_path / "nope.db")])
    assert missing.exit_code == 2 and missing.stderr.count("\n") == 1 and missing.stderr.startswith("Error: cannot import")
    assert not (tmp_path / "nope.db").exists() and not (tmp_path / "other").exists()  # nothing created
    with pytest.raises(ImportSourceInvalid):
        Registry(tmp_path / "other").import_mlflow("ftp://example.com/mlflow")
    Registry(lake, actor="bob").register("mine", "s3://m/1", capture_git=False)
    (tmp_path / "src2").mkdir()
    shutil.copy(source.db, tmp_path / "src2" / "mlflow.db")
    clash = run(app, ["--lake", str(lake), "import", "mlflow", "--from", str(tmp_path / "src2" / "mlflow.db")])
    assert clash.exit_code == 1 and clash.stderr.startswith("Error: import from") and clash.stderr.count("\n") == 1


def test_the_commands_have_help_with_examples_and_the_cli_never_imports_mlflow_unasked() -> None:
    from typer.main import get_command

    from catalog.cli import app

    group = get_command(app).commands["import"]  # type: ignore[attr-defined]
    assert "Example:" in (group.help or "")
    for name in ("mlflow", "gto"):
        command = group.commands[name]
        assert "Example:" in (command.help or "")
        for param in command.params:
            assert param.name == "help" or "Example" in (getattr(param, "help", "") or ""), (name, param.name)
    probe = ("import sys\nfrom typer.testing import CliRunner\nfrom catalog.cli import app\n"
             "CliRunner().invoke(app, ['import', 'mlflow', '--help'])\n"
             "CliRunner().invoke(app, ['list', '--help'])\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('mlflow', 'gto', 'yaml')))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
