"""The fields of a version are declared once (catalog.fields): the API, the CLI, the
schema, the policy, redaction and the bulk path all agree with that table."""

from __future__ import annotations

import inspect

from catalog import Registry, config, fields, schema
from catalog.bulk import SPILLED, LeanCheck
from catalog.provenance import GitInfo
from catalog.redaction import REDACTABLE
from catalog.registering import IMPORT_KEYWORDS, KEYWORDS, parse_parent

# Options of `catalog register` that set no field of the version.
_NOT_FIELDS = {"--no-git", "--allow-missing-data", "--json"}


def _register_options() -> dict[str, str]:
    """Each option of `catalog register` → the parameter it sets."""
    from typer.main import get_command

    from catalog.cli import app

    command = get_command(app).commands["register"]  # type: ignore[attr-defined]
    return {opt: param.name for param in command.params for opt in param.opts if opt.startswith("--")}


def test_every_field_has_a_register_option_and_every_option_is_a_field():
    options = _register_options()
    assert {f.option for f in fields.FIELDS} <= options.keys(), "a field has no `catalog register` option"
    assert options.keys() - {f.option for f in fields.FIELDS} == _NOT_FIELDS


def test_register_takes_every_field_as_a_keyword_and_nothing_else():
    keywords = [p.name for p in inspect.signature(Registry.register).parameters.values() if p.kind is p.KEYWORD_ONLY]
    assert keywords == [*fields.NAMES, "capture_git", "allow_missing_data", *IMPORT_KEYWORDS]
    assert KEYWORDS == set(keywords)


def test_each_field_is_a_nullable_versions_column_of_its_declared_type():
    declared = {name: (kind, nullable) for name, kind, nullable in schema._DECLARED["versions"]}
    for f in fields.FIELDS:
        assert declared[f.name] == (f.column, True), f.name


def test_what_a_policy_may_require_and_a_redaction_may_remove_come_from_the_table():
    assert config.REQUIRABLE == tuple(f.name for f in fields.FIELDS if f.requirable)
    assert set(REDACTABLE) == {f.name for f in fields.FIELDS if f.redactable} | {"note"}


def test_every_field_has_a_known_kind_and_credential_rule():
    for f in fields.FIELDS:
        assert f.kind in ("line", "text", "uri", "mapping", "data", "parents", "metrics", "sha256"), f.name
        assert f.credentials in (None, "uri", "free", "bare"), f.name
        assert f.limit is None or f.limit > 0, f.name


def test_the_lean_check_vouches_for_a_plain_record_setting_every_field_it_may():
    plain = {
        "owner": "ana", "description": "weekly churn", "tags": {"team": "retention"},
        "code_repo": "https://github.com/acme/churn", "code_version": "abc123",
        "runtime_image": "ghcr.io/acme/train:1", "data_refs": ["s3://data/churn@2026-11-01"],
        "parents": ["base:1"], "metrics": {"auc": 0.91}, "params": {"lr": "0.1"},
        "dashboards": {"grafana": "https://grafana.example.com/d/churn"}, "artifact_sha256": "ab" * 32,
    }
    assert set(plain) == {f.name for f in fields.FIELDS if f.lean}
    lean = LeanCheck("ana", lambda: GitInfo(None, None, None), parse_parent)
    row = lean.row("churn", "s3://models/churn/1.pkl", plain)
    assert row is not None
    assert set(row) == set(SPILLED.names)


def test_the_lean_check_holds_each_text_to_the_limit_of_its_field():
    lean = LeanCheck("ana", lambda: GitInfo(None, None, None), parse_parent)
    for f in fields.FIELDS:
        if f.kind in ("line", "text", "uri") and f.limit is not None:
            assert lean.row("churn", "s3://m/1.pkl", {f.name: "a" * (f.limit + 1)}) is None, f.name
            if f.kind != "uri":  # "aaa" is no address: refused whatever its length
                assert lean.row("churn", "s3://m/1.pkl", {f.name: "a" * 50}) is not None, f.name


def test_the_redact_help_names_every_redactable_field():
    from typer.main import get_command

    from catalog.cli import app

    command = get_command(app).commands["redact"]  # type: ignore[attr-defined]
    (field,) = [p for p in command.params if "--field" in p.opts]
    for name in REDACTABLE:
        assert name in (field.help or ""), name


def test_every_field_is_read_back_on_the_version(registry):
    from catalog.records import Version

    assert {f.name for f in fields.FIELDS} <= {f for f in Version.__dataclass_fields__}
    reg = registry("ana")
    reg.register("base", "s3://m/base", capture_git=False)
    given = {
        "owner": "ana", "description": "weekly churn", "tags": {"team": "retention"},
        "code_repo": "https://github.com/acme/churn", "code_version": "abc123",
        "runtime_image": "ghcr.io/acme/train:1", "data_refs": ["s3://data/churn@2026-11-01"],
        "parents": ["base:1"], "metrics": {"auc": 0.91}, "params": {"lr": "0.1"},
        "dashboards": {"grafana": "https://grafana.example.com/d/churn"}, "artifact_sha256": "ab" * 32,
    }
    assert set(given) == set(fields.NAMES)
    shown = reg.show("churn", reg.register("churn", "s3://m/churn", **given).version)
    for f in fields.FIELDS:
        value = getattr(shown, f.name)
        assert value not in (None, [], {}), f.name
