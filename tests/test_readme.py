"""The README's examples are a contract: the SQL and read examples run on the sample lake."""

from __future__ import annotations

import re
import shlex
import shutil

import pytest
from typer.testing import CliRunner

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
