"""catalog.toml → a frozen settings object; load errors name the file and the key.

Found via ``--config``, ``CATALOG_CONFIG``, ``./catalog.toml``, else the lake
root. No file at all means a permissive registry (no gates, no four-eyes) and
``doctor`` says so. In a file, ``four_eyes`` is on unless switched off.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import validate
from .errors import ConfigInvalid, InvalidName
from .fields import FIELDS
from .validate import identity_key, people

FILE_NAME = "catalog.toml"
POLICY_KEYS = {"required", "four_eyes", "approvals", "metrics", "approvers", "challenger"}
TARGET_KEYS = {"approvers", "after"}
TOP_KEYS = {"policy", "dashboards"}
REQUIRABLE = tuple(f.name for f in FIELDS if f.requirable)
_THRESHOLD = re.compile(r"^\s*(>=|<=|==|>|<)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")
_PLACEHOLDERS = {"model", "version", "target"}


@dataclass(frozen=True)
class Threshold:
    op: str
    value: float

    def holds(self, seen: float) -> bool:
        return {
            ">=": seen >= self.value, "<=": seen <= self.value, ">": seen > self.value,
            "<": seen < self.value, "==": seen == self.value,
        }[self.op]

    def __str__(self) -> str:
        return f"{self.op} {self.value:g}"


@dataclass(frozen=True)
class Rules:
    """The approval policy in force for one model."""

    required: tuple[str, ...] = ()
    four_eyes: bool = False
    approvals: int = 1
    metrics: Mapping[str, Threshold] = field(default_factory=dict)
    approvers: tuple[str, ...] | None = None
    challenger: Mapping[str, Threshold] = field(default_factory=dict)


@dataclass(frozen=True)
class TargetRule:
    pattern: str
    approvers: tuple[str, ...] | None = None
    after: str | None = None

    def matches(self, target: str) -> bool:
        return fnmatch.fnmatchcase(target, self.pattern)


@dataclass(frozen=True)
class Config:
    source: str | None = None
    sha256: str = "none"
    defaults: Mapping[str, Any] = field(default_factory=dict)
    owners: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    models: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    targets: tuple[TargetRule, ...] = ()
    dashboards: Mapping[str, str] = field(default_factory=dict)

    @property
    def permissive(self) -> bool:
        return self.source is None

    def rules_for(self, model: str, owner: str | None) -> Rules:
        """Defaults, then the owner's overrides, then the model's (most specific wins)."""
        merged: dict[str, Any] = {"four_eyes": not self.permissive}
        merged.update(self.defaults)
        # an owner is a person: 'Ana' gets the rules of [policy.owners.ana]
        key = identity_key(owner) if owner else None
        merged.update(next((t for name, t in self.owners.items() if identity_key(name) == key), {}))
        merged.update(self.models.get(model, {}))
        return Rules(**merged)

    def target_rules(self, target: str) -> list[TargetRule]:
        return [rule for rule in self.targets if rule.matches(target)]

    def dashboard_links(self, model: str, version: int, target: str) -> dict[str, str]:
        return {name: t.format(model=model, version=version, target=target) for name, t in self.dashboards.items()}


def load(
    explicit: str | os.PathLike[str] | None, lake_root: str, read_lake_file: Callable[[str], bytes | None] | None = None
) -> Config:
    """The configuration, found by the documented order (--config or CATALOG_CONFIG, then
    ./catalog.toml, then catalog.toml in the lake); permissive when there is none.
    ``read_lake_file(name)`` reads a file of the lake (through its Storage: the lake may
    not be a local folder), None when there is no such file."""
    chosen = explicit or os.environ.get("CATALOG_CONFIG")
    if chosen:
        if not os.path.isfile(chosen):
            raise ConfigInvalid(path=os.fspath(chosen), detail="no such file (given by --config or CATALOG_CONFIG)")
        path = os.fspath(chosen)
        raw_bytes: bytes | None = _read(path)
    elif os.path.isfile(FILE_NAME):
        path, raw_bytes = FILE_NAME, _read(FILE_NAME)
    else:
        path = os.path.join(lake_root, FILE_NAME)
        raw_bytes = read_lake_file(FILE_NAME) if read_lake_file else (_read(path) if os.path.isfile(path) else None)
    if raw_bytes is None:
        return Config()
    import tomllib

    try:
        data = tomllib.loads(raw_bytes.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigInvalid(path=path, detail=f"not valid TOML: {exc}") from None
    return parse(data, path, hashlib.sha256(raw_bytes).hexdigest())


def _read(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def parse(data: Mapping[str, Any], path: str, sha256: str) -> Config:
    def fail(where: str, what: str) -> ConfigInvalid:
        return ConfigInvalid(path=path, detail=f"{where}: {what}")

    _unknown(data, TOP_KEYS, "top level", fail)
    policy = dict(data.get("policy", {}))
    if not isinstance(data.get("policy", {}), dict):
        raise fail("[policy]", "must be a table")
    models = policy.pop("models", {})
    owners = policy.pop("owners", {})
    targets = policy.pop("targets", {})
    defaults = _policy(policy, "[policy]", fail)
    parsed_models = {}
    for name, table in _tables(models, "[policy.models]", fail).items():
        try:
            validate.name(name)
        except InvalidName as exc:
            raise fail(f"[policy.models.{name}]", f"not a valid model name ({exc.detail})") from None
        parsed_models[name] = _policy(table, f"[policy.models.{name}]", fail)
    parsed_owners = {
        name: _policy(table, f"[policy.owners.{name}]", fail) for name, table in _tables(owners, "[policy.owners]", fail).items()
    }
    if len(people(parsed_owners)) != len(parsed_owners):
        raise fail("[policy.owners]", "two tables name the same person (names compare without case): merge them")
    rules = []
    for pattern, table in _tables(targets, "[policy.targets]", fail).items():
        where = f'[policy.targets."{pattern}"]'
        _unknown(table, TARGET_KEYS, where, fail)
        after = table.get("after")
        if after is not None and (not isinstance(after, str) or not after):
            raise fail(f"{where} after", "must be a target name or pattern such as \"staging*\"")
        rules.append(TargetRule(pattern, _names(table, "approvers", where, fail), after))
    dashboards = {}
    for name, template in _tables_or_values(data.get("dashboards", {}), "[dashboards]", fail).items():
        dashboards[name] = _template(template, f"[dashboards] {name}", fail)
    return Config(path, sha256, defaults, parsed_owners, parsed_models, tuple(rules), dashboards)


def _unknown(table: Mapping[str, Any], allowed: set[str], where: str, fail: Any) -> None:
    for key in table:
        if key not in allowed:
            raise fail(where, f"unknown key {key!r} (known: {', '.join(sorted(allowed))})")


def _tables(value: Any, where: str, fail: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise fail(where, "must hold tables, e.g. [policy.models.churn]")
    return value


def _tables_or_values(value: Any, where: str, fail: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise fail(where, "must be a table of name = \"https://...\" entries")
    return value


def _names(table: Mapping[str, Any], key: str, where: str, fail: Any) -> tuple[str, ...] | None:
    if key not in table:
        return None
    value = table[key]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() and v.isprintable() for v in value):
        raise fail(f"{where} {key}", "must be a list of user names, e.g. [\"bob\", \"carol\"]")
    return tuple(value)


def _thresholds(value: Any, where: str, fail: Any) -> dict[str, Threshold]:
    if not isinstance(value, dict):
        raise fail(where, "must be a table of metric = \">= 0.8\" entries")
    out = {}
    for metric, text in value.items():
        match = _THRESHOLD.match(text) if isinstance(text, str) else None
        if not match:
            raise fail(f"{where}.{metric}", f"{text!r} is not a threshold: write e.g. \">= 0.80\" or \"<= 50\"")
        out[metric] = Threshold(match.group(1), float(match.group(2)))
    return out


def _policy(table: Mapping[str, Any], where: str, fail: Any) -> dict[str, Any]:
    _unknown(table, POLICY_KEYS, where, fail)
    out: dict[str, Any] = {}
    if "required" in table:
        required = table["required"]
        if not isinstance(required, list) or any(r not in REQUIRABLE for r in required):
            raise fail(f"{where} required", f"must list fields among: {', '.join(REQUIRABLE)}")
        out["required"] = tuple(required)
    if "four_eyes" in table:
        if not isinstance(table["four_eyes"], bool):
            raise fail(f"{where} four_eyes", "must be true or false")
        out["four_eyes"] = table["four_eyes"]
    if "approvals" in table:
        n = table["approvals"]
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 10:
            raise fail(f"{where} approvals", "must be a whole number from 1 to 10")
        out["approvals"] = n
    if "metrics" in table:
        out["metrics"] = _thresholds(table["metrics"], f"{where} metrics", fail)
    if "challenger" in table:
        out["challenger"] = _thresholds(table["challenger"], f"{where} challenger", fail)
    approvers = _names(table, "approvers", where, fail)
    if approvers is not None:
        out["approvers"] = approvers
    return out


def _template(value: Any, where: str, fail: Any) -> str:
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        raise fail(where, "must be an http(s) URL template")
    try:
        names = {f for _, f, _, _ in string.Formatter().parse(value) if f is not None}
    except ValueError as exc:
        raise fail(where, f"bad placeholder: {exc}") from None
    if names - _PLACEHOLDERS:
        raise fail(where, f"unknown placeholder(s) {sorted(names - _PLACEHOLDERS)}; use {{model}}, {{version}}, {{target}}")
    return value


# What `catalog init` writes: a policy a team can start from, every other rule
# shown commented out with an example. It parses to a valid Config (a test checks).
STARTER = """\
# catalog.toml: the policy of this model registry (README, "Governance").
# Found via --config, CATALOG_CONFIG, ./catalog.toml, else the lake root.
# Unknown keys and bad values are errors that name the file and the key.

[policy]                     # every model
four_eyes = true             # the approver is not the registrant
# required = ["owner", "code_version", "data_refs"]   # fields a version needs before approval
# approvals = 2              # distinct approvers needed (quorum)
# metrics = { auc = ">= 0.80" }                       # thresholds on offline metrics

# [policy.models.churn]      # per model (most specific wins: model > owner > default)
# challenger = { auc = ">= -0.02" }   # allowed change against the approved champion

# [policy.owners.ana]        # per owner
# approvers = ["bob", "carol"]        # who may approve

# [policy.targets."prod*"]   # deploy rules for matching targets
# approvers = ["bob", "carol"]        # the version carries an approval from one of them
# after = "staging*"                  # and ran on a matching target first

# [dashboards]               # links added to every deployment on the site
# serving = "https://grafana.example.com/d/serving?var-model={model}&var-version={version}&var-target={target}"
"""

