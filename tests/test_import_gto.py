"""`catalog import gto`: a git repository tagged by GTO itself (its `gto` command, run in
the test) brought into a lake: registrations as versions (semantic versions kept), stage
assignments as deployments, unassignments, deregistrations and deprecations, with the
taggers and dates; annotations from artifacts.yaml; re-runs bring only what is new; a
clash is refused with the lake unchanged."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from catalog import Registry
from catalog.errors import ImportConflict

from .conftest import snapshot

GTO = shutil.which("gto", path=str(Path(sys.executable).parent)) or shutil.which("gto")
pytestmark = pytest.mark.skipif(GTO is None, reason="gto is not installed (pip install -e '.[test]')")

ANNOTATIONS = """\
churn:
  type: model
  path: models/churn.pkl
  labels: [tabular, churn]
  description: {description}
old:
  type: model
  path: s3://bucket/old.pkl
"""


class Repo:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir()
        self.git("init", "-q")

    def env(self, who: str) -> dict[str, str]:
        email = f"{who.lower()}@example.com"
        return {**os.environ, "GIT_AUTHOR_NAME": who, "GIT_AUTHOR_EMAIL": email, "GIT_COMMITTER_NAME": who,
                "GIT_COMMITTER_EMAIL": email, "HOME": str(self.root.parent)}

    def git(self, *args: str, who: str = "Ana") -> str:
        return subprocess.run(["git", *args], cwd=self.root, env=self.env(who), check=True, capture_output=True,
                              text=True).stdout

    def gto(self, *args: str, who: str) -> None:
        assert GTO is not None
        subprocess.run([GTO, *args], cwd=self.root, env=self.env(who), check=True, capture_output=True, text=True)

    def commit(self, description: str) -> str:
        (self.root / "artifacts.yaml").write_text(ANNOTATIONS.format(description=description))
        self.git("add", "artifacts.yaml")
        self.git("commit", "-qm", description)
        return self.git("rev-parse", "HEAD").strip()

    def tag_date(self, name: str) -> datetime:
        out = self.git("for-each-ref", f"refs/tags/{name}", "--format=%(taggerdate:iso-strict)").strip()
        return datetime.fromisoformat(out).astimezone(timezone.utc)


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    """churn v1.0.0 (Ana) to prod (Bob); churn v1.1.0 (Ana, a later commit) to staging, then
    to prod, then off staging (Bob); v1.0.0 deregistered and 'old' deprecated (Carol); a
    lightweight tag and a tag that is not GTO's."""
    r = Repo(tmp_path / "models-repo")
    r.first = r.commit("weekly churn")  # type: ignore[attr-defined]
    r.gto("register", "churn", "--version", "v1.0.0", who="Ana")
    r.gto("register", "old", "--version", "v0.1.0", who="Ana")
    r.gto("assign", "churn", "--version", "v1.0.0", "--stage", "prod", who="Bob")
    r.second = r.commit("weekly churn, retrained")  # type: ignore[attr-defined]
    r.gto("register", "churn", "--version", "v1.1.0", who="Ana")
    r.gto("assign", "churn", "--version", "v1.1.0", "--stage", "staging", who="Bob")
    r.gto("assign", "churn", "--version", "v1.1.0", "--stage", "prod", who="Bob")
    r.gto("deprecate", "churn", "v1.1.0", "staging", who="Bob")
    r.gto("deprecate", "churn", "v1.0.0", who="Carol")
    r.gto("deprecate", "old", who="Carol")
    r.git("tag", "churn@v9.9.9")  # lightweight: GTO ignores it
    r.git("tag", "-a", "release-1", "-m", "not GTO's")
    return r


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "lake", actor="importer", durable=False)


def test_registrations_are_versions_with_semver_tagger_date_and_annotations(repo: Repo, reg: Registry) -> None:
    report = reg.import_gto(repo.root)
    assert report.models == ["churn", "old"] and report.versions == 3
    v1, v2 = reg.show("churn").versions
    root = repo.root.resolve()
    assert (v1.origin["semver"], v2.origin["semver"]) == ("v1.0.0", "v1.1.0")
    assert (v1.created_by, v2.created_by) == ("Ana", "Ana")
    assert v1.created_at == repo.tag_date("churn@v1.0.0") and v2.created_at == repo.tag_date("churn@v1.1.0")
    assert v1.imported_by == "importer"
    assert (v1.code_version, v2.code_version) == (repo.first, repo.second)  # type: ignore[attr-defined]
    assert v1.artifact_uri == f"git+file://{root}@{repo.first}#models/churn.pkl"  # type: ignore[attr-defined]
    assert v1.description == "weekly churn" and v2.description == "weekly churn, retrained"  # at each commit
    assert v1.tags == {"type": "model", "labels": "tabular,churn"}
    assert v1.origin["system"] == "gto" and v1.origin["source"] == str(root) and v1.origin["id"] == "churn@v1.0.0"
    assert v1.origin["tagger_email"] == "ana@example.com"
    (old,) = reg.show("old").versions
    assert old.artifact_uri == "s3://bucket/old.pkl"  # a path that is an address stays one


def test_stages_are_deployments_and_deprecations_retire(repo: Repo, reg: Registry) -> None:
    report = reg.import_gto(repo.root)
    assert {(d.model, d.target, d.version) for d in reg.deployments()} == {("churn", "prod", 2)}  # staging unassigned
    states = {v.version: v.state for v in reg.show("churn").versions}
    assert states == {1: "deprecated", 2: "approved"}  # v1 ran in prod, then was deregistered
    assert [v.state for v in reg.show("old").versions] == ["rejected"]  # deprecated while a candidate
    history = [e for e in reg.history("churn") if e.kind != "register"]
    by_kind = [(e.kind, e.version, e.target, e.actor) for e in history]
    assert ("deploy", 1, "prod", "Bob") in by_kind and ("deploy", 2, "staging", "Bob") in by_kind
    assert ("deploy", 2, "prod", "Bob") in by_kind and ("undeploy", 2, "staging", "Bob") in by_kind
    assert ("deprecate", 1, None, "Carol") in by_kind
    added = [e for e in history if e.kind == "approve"]
    assert [(e.version, e.actor) for e in added] == [(1, "importer"), (2, "importer")] and report.approvals_added == 2
    assert all("approved by the import" in (e.note or "") for e in added)
    deploy = next(e for e in history if e.kind == "deploy" and e.version == 1)
    assert deploy.at == repo.tag_date("churn#prod#1") and deploy.origin["id"] == "churn#prod#1"
    assert [e.at for e in history] == sorted(e.at for e in history)
    assert any("churn@v9.9.9" in line and "lightweight" in line for line in report.not_brought)


def test_a_rerun_is_a_no_op_and_new_tags_are_brought(repo: Repo, reg: Registry, tmp_path: Path) -> None:
    seen: list[tuple[str, int, int | None]] = []
    reg.progress = lambda task, done, total: seen.append((task, done, total))
    reg.import_gto(repo.root)
    for task in ("import reading GTO tags", "register", "import gto decisions"):  # each reported, and ended
        assert any(t == task and done == total for t, done, total in seen), (task, seen)
    reg.progress = None
    before = snapshot(tmp_path / "lake")
    again = reg.import_gto(repo.root)
    assert (again.versions, again.events) == (0, 0)
    assert snapshot(tmp_path / "lake") == before
    repo.commit("weekly churn, third")
    repo.gto("register", "churn", "--version", "v2.0.0", who="Dan")
    repo.gto("assign", "churn", "--version", "v2.0.0", "--stage", "prod", who="Bob")
    third = reg.import_gto(repo.root)
    assert third.versions == 1 and third.events == 2  # the importer's approval, then the deploy
    v3 = reg.show("churn", 3)
    assert v3.origin["semver"] == "v2.0.0" and v3.created_by == "Dan"
    assert reg.resolve("churn@prod") == v3.artifact_uri


def test_a_clash_with_the_lake_is_refused_and_the_lake_is_unchanged(repo: Repo, reg: Registry, tmp_path: Path) -> None:
    reg.register("old", "s3://models/old/1.pkl", capture_git=False)
    before = snapshot(tmp_path / "lake")
    with pytest.raises(ImportConflict) as refused:
        reg.import_gto(repo.root)
    assert refused.value.conflicts == ["model 'old' is already in the lake and was not imported from this source"]
    assert snapshot(tmp_path / "lake") == before


def test_the_cli_imports_with_json_and_refuses_what_is_not_a_repository(repo: Repo, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from catalog.cli import app

    lake = tmp_path / "lake"
    done = CliRunner().invoke(app, ["--lake", str(lake), "--actor", "importer", "import", "gto", "--repo",
                                    str(repo.root), "--json"])
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout)["versions"] == 3
    dry = CliRunner().invoke(app, ["--lake", str(tmp_path / "dry"), "import", "gto", "--repo", str(repo.root), "--dry-run"])
    assert dry.exit_code == 0 and dry.stdout.startswith("would import") and not (tmp_path / "dry").exists()
    (tmp_path / "plain").mkdir()
    bad = CliRunner().invoke(app, ["--lake", str(tmp_path / "other"), "import", "gto", "--repo", str(tmp_path / "plain")])
    assert bad.exit_code == 2 and bad.stderr.startswith("Error: cannot import") and bad.stderr.count("\n") == 1
    assert not (tmp_path / "other").exists()
