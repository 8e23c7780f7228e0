"""`catalog build` never deletes what it did not write, and never writes outside its folder."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from catalog import schema
from catalog.errors import (
    CatalogError,
    InvalidName,
    OutputInLake,
    OutputNotFolder,
    OutputNotOurs,
    SiteBuildFailed,
    UnsafeSitePath,
)
from catalog.site import build_site
from catalog.site.output import MARKER, remove_listed, safe_join

from .conftest import churn_scenario, snapshot


def _tree(root: Path, skip: tuple[Path, ...] = ()) -> dict[str, str]:
    """Every file and link under ``root`` (outside ``skip``), with its content or link target."""
    out = {}
    for path in sorted(root.rglob("*")):
        if any(path == s or s in path.parents for s in skip):
            continue
        if path.is_symlink():
            out[str(path)] = "-> " + os.readlink(path)
        elif path.is_file():
            out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.fixture
def reg(registry):
    churn_scenario(registry)
    return registry("ana")


def _one_line_error(result) -> str:
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.mark.parametrize("where", ["lake", "parent", "inside"])
def test_build_refuses_an_out_folder_that_is_holds_or_lies_in_the_lake(reg, lake, tmp_path, where):
    out = {"lake": lake, "parent": tmp_path, "inside": lake / "site"}[where]
    before = _tree(tmp_path)
    with pytest.raises(OutputInLake) as caught:
        build_site(reg, out)
    assert caught.value.relation == {"lake": "is", "parent": "contains", "inside": "lies inside"}[where]
    assert _tree(tmp_path) == before


def test_build_refuses_a_symlink_that_leads_to_the_lake(reg, lake, tmp_path):
    link = tmp_path / "public"
    link.symlink_to(lake, target_is_directory=True)
    before = snapshot(lake)
    with pytest.raises(OutputInLake):
        build_site(reg, link)
    assert snapshot(lake) == before and len(before) > 3


def test_cli_build_into_the_lake_is_refused_in_one_line_and_the_lake_is_kept(reg, cli, lake):
    before = snapshot(lake)
    result = cli("build", "--out", str(lake))
    assert result.exit_code == 1
    assert "outside the lake" in _one_line_error(result)
    assert snapshot(lake) == before


def test_cli_build_refuses_a_non_empty_folder_it_did_not_write(reg, cli, tmp_path):
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "src" / "train.py").write_text("print('hi')\n")
    (project / "notes.txt").write_text("keep me\n")
    before = _tree(project)
    result = cli("build", "--out", str(project))
    assert result.exit_code == 1
    assert "choose a new or empty folder" in _one_line_error(result)
    assert _tree(project) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lake", "project"]  # no staging left beside it


def test_build_refuses_an_out_that_is_a_file(reg, cli, tmp_path):
    target = tmp_path / "site.txt"
    target.write_text("not a folder\n")
    with pytest.raises(OutputNotFolder):
        build_site(reg, target)
    result = cli("build", "--out", str(target))
    assert result.exit_code == 2
    assert "is a file" in _one_line_error(result)
    assert target.read_text() == "not a folder\n"


def test_build_into_an_empty_folder_marks_it_and_a_rebuild_replaces_only_its_own_files(reg, tmp_path):
    out = tmp_path / "public"
    out.mkdir()
    build_site(reg, out)
    marker = json.loads((out / MARKER).read_text())
    assert marker["format"] == 1 and "index.html" in marker["files"] and "models/churn/index.html" in marker["files"]
    stale = out / "models" / "churn" / "index.html"
    stale.write_text("stale")
    build_site(reg, out)
    assert "stale" not in stale.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lake", "public"]


def test_rebuild_refuses_when_someone_added_a_file_to_the_site(reg, tmp_path):
    out = tmp_path / "public"
    build_site(reg, out)
    (out / "CNAME").write_text("models.example.com\n")
    with pytest.raises(OutputNotOurs) as caught:
        build_site(reg, out)
    assert "CNAME" in caught.value.detail
    assert (out / "CNAME").read_text() == "models.example.com\n"


def test_rebuild_refuses_a_site_whose_folder_was_replaced_by_a_symlink_out(reg, tmp_path):
    out = tmp_path / "public"
    build_site(reg, out)
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "churn").mkdir(parents=True)
    (elsewhere / "churn" / "index.html").write_text("precious")
    os.rename(out / "models", tmp_path / "models-moved")
    (out / "models").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(OutputNotOurs):
        build_site(reg, out)
    assert (elsewhere / "churn" / "index.html").read_text() == "precious"


def test_removing_a_listed_file_never_follows_a_symlinked_folder(tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    (old / "mine.html").write_text("ours")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "index.html").write_text("precious")
    (old / "models").symlink_to(elsewhere, target_is_directory=True)
    remove_listed(old, ["mine.html", "models/index.html", "../elsewhere/index.html"])
    assert (elsewhere / "index.html").read_text() == "precious"
    assert not (old / "mine.html").exists() and (old / "models").is_symlink()


def test_a_failed_build_keeps_the_previous_site_whole(reg, tmp_path):
    out = tmp_path / "public"
    build_site(reg, out)
    before = _tree(out)
    broken = tmp_path / "overrides"
    broken.mkdir()
    (broken / "home.md.j2").write_text("# Home\n\n[nowhere](missing-page.md)\n")
    with pytest.raises(SiteBuildFailed):
        build_site(reg, out, templates=broken)
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lake", "overrides", "public"]


def test_build_dir_that_holds_foreign_files_is_refused_not_emptied(reg, tmp_path):
    kept = tmp_path / "docs"
    kept.mkdir()
    (kept / "handbook.md").write_text("# ours, not the catalog's\n")
    with pytest.raises(OutputNotOurs):
        build_site(reg, tmp_path / "public", build_dir=kept)
    assert (kept / "handbook.md").read_text() == "# ours, not the catalog's\n"
    assert not (tmp_path / "public").exists()


def test_build_dir_written_by_a_build_is_replaced_by_the_next(reg, tmp_path):
    kept = tmp_path / "docs"
    build_site(reg, tmp_path / "public", build_dir=kept)
    assert (kept / "models" / "churn" / "index.md").is_file() and (kept / MARKER).is_file()
    build_site(reg, tmp_path / "public", build_dir=kept)
    assert (kept / "index.md").is_file()


def test_demo_refuses_out_in_the_lake_before_creating_the_sample(cli, lake):
    result = cli("demo", "--out", str(lake))
    assert result.exit_code == 1
    _one_line_error(result)
    assert not lake.exists()


# -- every value that becomes a path is checked where the path is made ----------


def _forge_version(lake: Path, model: str) -> None:
    """A row written by some other tool straight into the versions table."""
    row = {name: None for name in schema.VERSIONS.names}
    row.update(schema_version=1, model=model, version=1, artifact_uri="s3://x/1.pkl", tags=[], data_refs=[],
               parents=[], metrics=[], params=[], dashboards=[], created_at=datetime.now(timezone.utc),
               created_by="mallory", owner="mallory")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    pq.write_table(pa.Table.from_pylist([row], schema=schema.VERSIONS), lake / "versions" / f"part-{stamp}-{'ab' * 8}.parquet")


def test_a_forged_model_name_never_makes_the_build_write_outside_its_folder(reg, lake, tmp_path):
    escape = tmp_path / "escaped"
    # From <tmp>/<staging>/models/<name>/index.md, enough '..' reach '/', then back down into tmp_path.
    _forge_version(lake, "../" * 40 + str(escape).lstrip("/"))
    out = tmp_path / "public"
    outside = _tree(Path(tmp_path), skip=(out, lake))
    try:
        report = build_site(reg, out)
    except CatalogError as exc:  # a refusal is acceptable, as one line
        assert "\n" not in str(exc)
    else:
        # the reader skips a row whose name breaks the rules, so the site never sees it
        assert (out / "models" / "churn" / "index.html").is_file()
        assert report.models == 1
    assert not escape.exists() and not Path(f"{escape}.json").exists()
    assert _tree(Path(tmp_path), skip=(out, lake)) == outside


@pytest.mark.parametrize("rel", ["../x", "models/../../x", "/etc/passwd", "a\\b", "a/./b", "", "a//b", "a\x1bb/index.md"])
def test_every_site_path_is_joined_by_one_checked_helper(tmp_path, rel):
    # the page writer's own defence, whatever reaches it (a row the reader let through, a template)
    with pytest.raises(UnsafeSitePath):
        safe_join(tmp_path, rel)
    assert safe_join(tmp_path, "models/churn/index.md") == tmp_path / "models" / "churn" / "index.md"


def test_claim_and_lock_paths_cannot_be_made_from_a_name_with_a_slash_or_dots(reg, lake):
    for name in ("../x", "a/b", ".."):
        with pytest.raises(InvalidName):
            reg.register(name, "s3://x/1.pkl", capture_git=False)
    storage = reg._lake.storage
    for rel in ("_claims/../../x", "_decisions/../../x/1", "_leases/../../x", "_claims//x", "/etc/passwd"):
        with pytest.raises(CatalogError):
            storage.local_path(rel)
    from catalog.lake.lease import Lease

    with pytest.raises(CatalogError), Lease(storage, "../../x"):
        pass
    assert not (lake.parent / "x").exists()
