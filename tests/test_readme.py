"""The README's examples are a contract: the SQL and read examples run on the sample lake,
and every command block runs, in order, on a fresh lake."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from catalog import Registry
from catalog.cli import app

from .conftest import REPO

README = (REPO / "README.md").read_text()
EXAMPLES = sorted(
    e for e in set(re.findall(r"`(catalog (?:sql|show|list|history|lineage|candidates|resolve)[^`]*)`", README))
    if len(shlex.split(e)) > 2 or e == "catalog list"
)


@pytest.fixture(scope="module")
def sample_lake(tmp_path_factory):
    copy = tmp_path_factory.mktemp("readme") / "lake"
    shutil.copytree(REPO / "data" / "lake", copy)
    return copy


def test_the_readme_has_read_examples():
    assert len(EXAMPLES) >= 15


@pytest.mark.parametrize("example", EXAMPLES)
def test_readme_read_example_runs_on_the_sample(sample_lake, example):
    args = shlex.split(example)[1:]
    result = CliRunner().invoke(app, ["--lake", str(sample_lake), *args])
    assert result.exit_code == 0, (example, result.stderr)
    assert result.stdout.strip() and "(no rows)" not in result.stdout, example


# -- every command block runs, in order, on a fresh lake ----------------------------
#
# Every ```sh block of the README runs, in the order it appears, in one bash session
# (so `cd` and `export` carry from one block to the next, as in a reader's terminal),
# in an empty temporary folder: a fresh lake, the venv's `catalog` first on PATH, HOME
# and TMPDIR inside the temporary folder, no CATALOG_* settings from outside. Each
# command must exit 0 (`set -e`). A block that cannot run in a test says why in a
# marker on the line right before it, visible in the README's source:
#
#     <!-- readme-test: skip (the reason) -->
#
# Any other block runs; a new block that fails makes the test fail. Blocks are `sh`,
# `python` (run too, see below), or data (`toml`, `text`): a block without a language
# fails the test, so no command can hide in one.

FENCE = re.compile(r"^```([A-Za-z]*)[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
MARKER = re.compile(r"<!-- readme-test: (.*?) -->")
SKIP = re.compile(r"skip \((?P<why>[^)]+)\)")
LANGUAGES = {"sh", "python", "toml", "text"}
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Block:
    language: str
    code: str
    line: int
    skip: str | None


def readme_blocks(text: str = README) -> list[Block]:
    blocks = []
    for m in FENCE.finditer(text):
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
        marker = MARKER.fullmatch(before)
        skip = SKIP.fullmatch(marker.group(1)) if marker else None
        assert not marker or skip, f"README line {text.count(chr(10), 0, m.start())}: unknown marker {before!r}"
        blocks.append(Block(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1, skip and skip.group("why")))
    return blocks


def _clean_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CATALOG_")}
    for name in ("home", "tmp"):
        (tmp / name).mkdir(exist_ok=True)
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        HOME=str(tmp / "home"),
        TMPDIR=str(tmp / "tmp"),
        CATALOG_LAKE=str(tmp / "lake"),  # for a block that names no lake: fresh, inside the test's folder
    )
    return env


def test_every_readme_block_has_a_language_and_every_marker_a_block():
    blocks = readme_blocks()
    assert {b.language for b in blocks} <= LANGUAGES, [(b.line, b.language) for b in blocks if b.language not in LANGUAGES]
    assert all(b.language == "sh" for b in blocks if b.skip), "only sh blocks can be skipped"
    assert len(MARKER.findall(README)) == sum(1 for b in blocks if b.skip), "a readme-test marker is not right before a block"
    assert sum(1 for b in blocks if b.language == "sh" and not b.skip) >= 2
    # a marker covers only the block right after it: a new block below it runs
    text = "x\n\n<!-- readme-test: skip (blocks) -->\n```sh\ncatalog serve\n```\n\n```sh\nfalse\n```\n"
    assert [(b.code, b.skip) for b in readme_blocks(text)] == [("catalog serve\n", "blocks"), ("false\n", None)]


def run_sh_blocks(blocks: list[Block], tmp: Path) -> subprocess.CompletedProcess[str]:
    """Run the blocks in order in one bash session; stop at the first command that fails."""
    lines = [
        "set -eE -o pipefail",
        "trap 'echo \"README command failed with exit $?: $BASH_COMMAND\" >&2' ERR",
    ]
    for b in blocks:
        if b.language == "sh" and not b.skip:
            lines += [f"echo '### README block at line {b.line}'", b.code]
    (tmp / "work").mkdir(exist_ok=True)
    return subprocess.run(
        ["bash", "-c", "\n".join(lines)], cwd=tmp / "work", env=_clean_env(tmp),
        capture_output=True, text=True, timeout=600,
    )


def test_every_sh_block_of_the_readme_runs_in_order_on_a_fresh_lake(tmp_path):
    assert shutil.which("catalog", path=str(BIN)), f"no catalog command beside {sys.executable}"
    run = run_sh_blocks(readme_blocks(), tmp_path)
    assert run.returncode == 0, f"{run.stderr[-3000:]}\n--- stdout ---\n{run.stdout[-3000:]}"

    # The tour made its lake in a fresh folder inside the test's TMPDIR, and ended where it says.
    [tour_lake] = [p.parent for p in (tmp_path / "tmp").glob("*/lake/versions")]
    with Registry(tour_lake) as reg:
        assert reg.resolve("churn@prod").endswith("/model-v1.pkl")  # rolled back from v2 to v1
        assert [(e.kind, e.version) for e in reg.history("churn") if e.kind == "rollback"] == [("rollback", 1)]
        assert reg.show("churn").description == "weekly churn score"
    assert "rolled back to v1" in run.stdout
    assert (tour_lake.parent / "site" / "index.html").exists()  # the site block built the tour's lake


def test_the_python_api_block_runs_in_an_empty_folder(tmp_path):
    [block] = [b for b in readme_blocks() if b.language == "python"]
    (tmp_path / "work").mkdir()
    run = subprocess.run(
        [sys.executable, "-c", block.code], cwd=tmp_path / "work", env=_clean_env(tmp_path),
        capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    with Registry(tmp_path / "work" / "my-lake") as reg:
        assert reg.resolve("churn@prod-eu") == "s3://models/churn/1.pkl"
        assert reg.counts().versions == 1 + 2 + 1000
