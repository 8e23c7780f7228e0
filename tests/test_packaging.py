"""The catalog as users meet it: a wheel installed into a fresh environment, run from
an empty folder that is not the checkout; and a site owner's own files laid over
the defaults the package ships."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from catalog import Registry
from catalog.config import STARTER, parse
from catalog.site import build_site

REPO = Path(__file__).resolve().parents[1]


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(REPO)], cwd=out)
    # setuptools warns about a deprecated or invalid pyproject.toml on every install (make demo shows it)
    assert "BuildBackendWarning" not in built.stderr and "deprecated" not in built.stderr.lower(), built.stderr
    (found,) = out.glob("model_catalog-*.whl")
    return found


def test_the_wheel_carries_the_site_defaults_types_and_license_and_nothing_of_the_checkout(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("catalog/site/defaults/model.md.j2", "catalog/site/defaults/_version.md.j2",
                   "catalog/site/defaults/mkdocs.yml", "catalog/site/defaults/assets/extra.css",
                   "catalog/queries/views.sql", "catalog/py.typed", "catalog/site/cookbook.sql",
                   "catalog/site/defaults/query/index.md.j2", "catalog/site/defaults/query/query.js",
                   "catalog/site/defaults/query/query.css"):
        assert needed in names, f"{needed} is not in the wheel"
    templates = {p.relative_to(REPO / "site_src").as_posix() for p in (REPO / "site_src").rglob("*.j2")}
    assert templates == {n.removeprefix("catalog/site/defaults/") for n in names
                         if n.startswith("catalog/site/defaults/") and n.endswith(".j2")}
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert not [n for n in names if n.startswith(("tests/", "data/", "site_src/", "benchmarks/"))]
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: Apache-2.0" in metadata


def test_pyproject_declares_an_spdx_license_not_the_deprecated_table() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"
    assert (REPO / "LICENSE").is_file() and (REPO / "catalog" / "py.typed").is_file()


def test_installed_wheel_runs_init_register_approve_deploy_build_resolve_from_an_empty_folder(
    wheel: Path, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)], cwd=tmp_path)
    work = tmp_path / "project"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CATALOG_", "PYTHON", "VIRTUAL_ENV"))}
    env["HOME"] = str(tmp_path)
    # DuckDB-WASM for the SQL page: from the tarballs already cached on this machine (npm pack
    # fills the cache the first time), as a pip-installed catalog finds them
    from catalog.site.wasm import cache_dir

    env["CATALOG_ASSET_CACHE"] = str(cache_dir())
    catalog = str(venv / "bin" / "catalog")

    def run(*args: str, actor: str = "ana") -> str:
        return _run([catalog, "--actor", actor, *args], cwd=work, env=env).stdout

    assert "Created the lake" in run("init")
    assert (work / "catalog.toml").read_text() == STARTER
    (work / "model.pkl").write_bytes(b"weights")
    assert run("register", "churn", "model.pkl", "--owner", "ana").strip() == "churn v1"
    run("approve", "churn", "1", "--note", "offline eval passed", actor="bob")  # four eyes: the starter's rule
    run("deploy", "churn", "1", "--target", "prod", actor="bob")
    built = run("build", "--out", "site")
    assert "Built" in built
    page = (work / "site" / "models" / "churn" / "index.html").read_text()
    assert "offline eval passed" in page
    assert (work / "site" / "assets" / "extra.css").is_file()
    assert (work / "site" / "query" / "duckdb" / "duckdb-eh.wasm").is_file()
    assert (work / "site" / "query" / "events.arrow").is_file() and (work / "site" / "query" / "query.js").is_file()
    assert run("resolve", "churn@prod").strip() == str(work / "model.pkl")
    located = _run([str(venv / "bin" / "python"), "-c", "import catalog.site.layers as l; print(l.DEFAULTS)"],
                   cwd=work, env=env).stdout.strip()
    assert located.startswith(str(venv)), f"the installed catalog reads its templates from {located}"


def test_init_writes_a_starter_policy_that_parses_and_keeps_what_is_there(tmp_path: Path) -> None:
    config = parse(tomllib.loads(STARTER), "catalog.toml", "0" * 64)
    assert config.rules_for("any", None).four_eyes is True
    reg = Registry(tmp_path / "lake", actor="ana", durable=False)
    first = reg.init(tmp_path / "catalog.toml")
    assert first.lake_created and first.config_created
    (tmp_path / "catalog.toml").write_text("[policy]\nfour_eyes = false\n")
    again = reg.init(tmp_path / "catalog.toml")
    assert not again.lake_created and not again.config_created
    assert (tmp_path / "catalog.toml").read_text() == "[policy]\nfour_eyes = false\n"
    assert reg.list() == []


def test_a_site_owners_mkdocs_yml_lays_over_the_defaults(registry, tmp_path: Path) -> None:
    reg = registry("ana")
    reg.register("churn", "s3://m/1.pkl", capture_git=False)
    own = tmp_path / "mine" / "mkdocs.yml"
    own.parent.mkdir()
    own.write_text("site_name: Acme model catalog\ntheme:\n  palette:\n    - scheme: slate\n")
    build_site(reg, tmp_path / "site", mkdocs_config=own)
    home = (tmp_path / "site" / "index.html").read_text()
    assert "Acme model catalog</title>" in home
    assert 'data-md-color-scheme="slate"' in home
    # the rest comes from the defaults: the search plugin, the assets, no web fonts
    assert (tmp_path / "site" / "search" / "search_index.json").is_file()
    assert "assets/extra.css" in home and "fonts.googleapis" not in home
    assert not (tmp_path / "site" / "mkdocs.yml").exists()
