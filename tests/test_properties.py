"""Arbitrary unicode in, through the API and the CLI: stored and read back exactly, or refused (exit 2) writing nothing."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import event as tally
from hypothesis import strategies as st
from typer.testing import CliRunner

from catalog import Registry
from catalog.cli import app
from catalog.errors import InvalidInput

from .conftest import snapshot

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Mostly-valid names shrink towards the interesting edges faster than pure noise.
_valid_name = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,10}", fullmatch=True)
_valid_key = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,6}", fullmatch=True)
names = st.one_of(st.text(max_size=12), _valid_name, _valid_name)
keys = st.one_of(st.text(max_size=8), _valid_key, _valid_key, _valid_key)
texts = st.one_of(st.none(), st.text(max_size=40))
_finite = st.floats(allow_nan=False, allow_infinity=False)
numbers = st.one_of(_finite, _finite, st.integers(min_value=-(10**20), max_value=10**20), st.floats(), st.booleans(),
                    st.text(max_size=6))


def _expected_text(value: str | None) -> str | None:
    return None if value is None or not value.strip() else value


def _seeded(lake: Path) -> Registry:
    reg = Registry(lake, actor="ana", durable=False)
    reg.register("seed", "s3://m/seed", capture_git=False)
    return reg


@SETTINGS
@given(model=names, description=texts, tags=st.dictionaries(keys, st.text(max_size=20), max_size=2),
       metrics=st.dictionaries(keys, numbers, max_size=2), params=st.dictionaries(keys, st.text(max_size=20), max_size=2),
       owner=texts, note=texts)
def test_api_stores_exactly_or_refuses_writing_nothing(model, description, tags, metrics, params, owner, note):
    with tempfile.TemporaryDirectory() as tmp:
        lake = Path(tmp) / "lake"
        reg = _seeded(lake)
        before = snapshot(lake)
        try:
            v = reg.register(model, "s3://m/x", description=description, tags=tags, metrics=metrics,
                             params=params, owner=owner, capture_git=False)
        except InvalidInput:
            tally("api: refused")
            assert snapshot(lake) == before
            reg.close()
            return
        tally("api: stored")
        got = reg.show(model, v.version)
        assert got.model == model
        assert got.description == _expected_text(description)
        assert got.owner == _expected_text(owner)
        assert got.tags == tags
        assert got.params == params
        assert got.metrics == {k: float(x) for k, x in metrics.items()}
        assert all(math.isfinite(x) for x in got.metrics.values())
        reader = Registry(lake, actor="bob", durable=False)
        before = snapshot(lake)
        try:
            event = reader.approve(model, v.version, note=note)
        except InvalidInput:
            assert snapshot(lake) == before
        else:
            assert event.note == _expected_text(note)
            assert reader.history(model)[-1].note == _expected_text(note)
        reader.close()
        reg.close()


def _cli(lake: Path, *args: str):
    return CliRunner().invoke(app, ["--lake", str(lake), "--actor", "ana", *args])


@SETTINGS
@given(model=names, description=st.text(max_size=40), tags=st.dictionaries(keys, st.text(max_size=20), max_size=2),
       metrics=st.dictionaries(keys, st.one_of(_finite, _finite, st.floats(), st.text(max_size=6)).map(str), max_size=2),
       params=st.dictionaries(keys, st.text(max_size=20), max_size=2), note=st.text(max_size=40))
def test_cli_stores_exactly_or_refuses_with_exit_2(model, description, tags, metrics, params, note):
    with tempfile.TemporaryDirectory() as tmp:
        lake = Path(tmp) / "lake"
        _seeded(lake).close()
        before = snapshot(lake)
        args = ["register", model, "s3://m/x", "--no-git", f"--description={description}"]
        args += [f"--tag={k}={v}" for k, v in tags.items()]
        args += [f"--metric={k}={v}" for k, v in metrics.items()]
        args += [f"--param={k}={v}" for k, v in params.items()]
        result = _cli(lake, *args, "--json")
        assert result.exit_code in (0, 2), result.output
        assert "Traceback" not in result.output
        tally(f"cli: exit {result.exit_code}")
        if result.exit_code == 2:
            assert snapshot(lake) == before
            return
        version = json.loads(result.stdout)["version"]
        shown: dict[str, Any] = json.loads(_cli(lake, "show", model, str(version), "--json").stdout)
        assert shown["model"] == model
        assert shown["description"] == _expected_text(description)
        assert shown["tags"] == tags
        assert shown["params"] == params
        assert shown["metrics"] == {k: float(v) for k, v in metrics.items()}

        before = snapshot(lake)
        approved = CliRunner().invoke(app, ["--lake", str(lake), "--actor", "bob", "approve", model, str(version),
                                            f"--note={note}", "--json"])
        assert approved.exit_code in (0, 1, 2), approved.output
        assert "Traceback" not in approved.output
        if approved.exit_code == 0:
            assert json.loads(approved.stdout)["note"] == _expected_text(note)
        else:
            assert snapshot(lake) == before


@settings(max_examples=40, deadline=None)
@given(ref=st.text(max_size=20))
def test_resolve_refs_of_any_text_answer_or_refuse_cleanly(ref):
    with tempfile.TemporaryDirectory() as tmp:
        lake = Path(tmp) / "lake"
        _seeded(lake).close()
        result = _cli(lake, "resolve", ref)
        assert result.exit_code in (0, 1, 2), result.output
        assert "Traceback" not in result.output and "unexpected" not in result.output
        if result.exit_code == 0:
            assert result.stdout.strip() == "s3://m/seed"


# Well formed: no control character a terminal acts on (tab and line breaks are text),
# and no '@' (where a credential would sit: user:password@host).
_clean_text = st.text(
    st.one_of(st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="@"), st.sampled_from("\t\n")),
    max_size=60,
)


@settings(max_examples=40, deadline=None)
@given(model=_valid_name.filter(lambda n: n.split(".")[0] not in {"con", "prn", "aux", "nul"} and n[:3] not in {"com", "lpt"}),
       description=_clean_text, tags=st.dictionaries(_valid_key, _clean_text, max_size=3),
       metrics=st.dictionaries(_valid_key, _finite, max_size=3), params=st.dictionaries(_valid_key, _clean_text, max_size=3))
def test_well_formed_unicode_always_round_trips(model, description, tags, metrics, params):
    with tempfile.TemporaryDirectory() as tmp:
        reg = Registry(Path(tmp) / "lake", actor="ana", durable=False)
        v = reg.register(model, "s3://m/x", description=description, tags=tags, metrics=metrics, params=params,
                         capture_git=False)
        got = reg.show(model, v.version)
        assert (got.description, got.tags, got.metrics, got.params) == (_expected_text(description), tags, metrics, params)
        reg.close()
