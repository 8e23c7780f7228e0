"""The Registry: every command of the catalog as a method returning typed records.

The CLI, the site generator and serving code all go through this class. It
never prints and never exits: it returns records and raises CatalogErrors.
"""

from __future__ import annotations

import functools
import getpass
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from . import validate as check
from .config import Config
from .config import load as load_config
from .errors import (
    CatalogError,
    GateFailed,
    IllegalTransition,
    InvalidInput,
    InvalidReference,
    InvalidValue,
    LakeNotFound,
    ModelNotFound,
    NoApprovedVersion,
    NoRollbackCandidate,
    NotRollbackCandidate,
    TargetNotDeployed,
    VersionNotFound,
)
from .lake import Lake, open_storage, rewrite_file, settled
from .progress import Progress, ticker
from .provenance import check_data_ref, git_info, inspect_artifact
from .queries import Reader, views_sql
from .policy import GateResult, approval_gates, deploy_gates, failures
from .records import (
    Candidate,
    Counts,
    GateReport,
    Deployment,
    InitReport,
    Event,
    Exclusion,
    Lineage,
    LineageEdge,
    ModelInfo,
    ModelSummary,
    Parent,
    QueryResult,
    RollbackOptions,
    Version,
)
from .schema import SCHEMA_VERSION

DEFAULT_LAKE = os.path.join("data", "lake")

# A table holding this many small appended files is compacted (minor) by the writer
# that adds the last one: about 1 ms a write amortised, and no read ever scans more
# than this many tiny files (DuckDB pays ~0.25 ms a file).
AUTO_COMPACT_PARTS = 100


ParentLike = Parent | tuple[str, int] | tuple[str, int, str] | str


def default_lake() -> str:
    return os.environ.get("CATALOG_LAKE") or DEFAULT_LAKE


def default_actor() -> str:
    env = os.environ.get("CATALOG_ACTOR")
    if env:
        return env
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def parse_ref(ref: str) -> tuple[str, str, str]:
    """Split MODEL@TARGET / MODEL@latest / MODEL:VERSION into (model, kind, key)."""
    if not isinstance(ref, str):
        raise InvalidReference(value=ref)
    if "@" in ref:
        model, _, key = ref.partition("@")
        kind = "latest" if key == "latest" else "target"
    elif ":" in ref:
        model, _, key = ref.partition(":")
        kind = "pin"
        if not key.isdigit() or int(key) < 1:
            raise InvalidReference(value=ref)
        key = str(int(key))
    else:
        raise InvalidReference(value=ref)
    try:
        check.name(model)
        if kind == "target":
            check.target(key)
    except InvalidInput:
        raise InvalidReference(value=ref) from None
    return model, kind, key


def parse_parent(value: ParentLike) -> Parent:
    """A parent from ``Parent``, ``(model, version[, relation])`` or ``"model:version[:relation]"``."""
    if isinstance(value, Parent):
        model, version, relation = value.model, value.version, value.relation
    elif isinstance(value, str):
        bits = value.split(":")
        if len(bits) not in (2, 3) or not bits[1].isdigit():
            raise InvalidValue(
                f"invalid parent {value!r}: write MODEL:VERSION or MODEL:VERSION:RELATION "
                "(e.g. bert-base:3:fine-tuned)"
            )
        model, version, relation = bits[0], int(bits[1]), (bits[2] if len(bits) == 3 else "derived")
    else:
        seq = tuple(value)
        if len(seq) not in (2, 3):
            raise InvalidValue(f"invalid parent {value!r}: give (model, version) or (model, version, relation)")
        model, version = seq[0], seq[1]
        relation = seq[2] if len(seq) == 3 else "derived"
    check.name(model)
    check.version(version)
    check.key(relation, "parent relation")
    return Parent(model, version, relation)


class _ResolveIndex:
    """What ``resolve`` knows, per model, for one state of the lake."""

    __slots__ = ("by_model", "stamp", "built_at")

    def __init__(self, stamp: tuple[int, int], built_at: float) -> None:
        self.by_model: dict[str, dict[tuple[str, str], str]] = {}
        self.stamp = stamp
        self.built_at = built_at

    def fresh(self, stamp: tuple[int, int]) -> bool:
        return stamp == self.stamp and settled(stamp, self.built_at)


class Registry:
    """A model registry over one metadata lake.

    >>> reg = Registry("data/lake")                         # doctest: +SKIP
    >>> reg.resolve("churn@prod-eu")                        # doctest: +SKIP
    's3://models/churn/7.pkl'
    """

    def __init__(
        self,
        lake: str | os.PathLike[str] | None = None,
        *,
        actor: str | None = None,
        durable: bool = True,
        config: str | os.PathLike[str] | Config | None = None,
        clock: Callable[[], datetime] | None = None,
        new_id: Callable[[], str] | None = None,
        progress: Progress | None = None,
    ) -> None:
        location = os.fspath(lake) if lake is not None else default_lake()
        self._config_arg = config
        self._config: Config | None = config if isinstance(config, Config) else None
        self.location = location
        self.actor = check.actor(actor if actor is not None else default_actor())
        self._lake = Lake(open_storage(location, durable=durable), new_id=new_id)
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._reader_obj: Reader | None = None
        self._index: _ResolveIndex | None = None
        self._index_lock = threading.Lock()
        self.progress = progress  # fn(task, done, total) for long work: hashing, bulk loads, compaction, doctor

    @classmethod
    def open(cls, lake: str | os.PathLike[str] | None = None, **options: Any) -> Registry:
        """Same as ``Registry(lake, ...)``."""
        return cls(lake, **options)

    def __repr__(self) -> str:
        return f"Registry({self.location!r})"

    def close(self) -> None:
        if self._reader_obj is not None:
            self._reader_obj.close()
            self._reader_obj = None

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def root(self) -> str:
        """The lake's absolute location."""
        return self._lake.root

    def _policy_source(self) -> str | None:
        """Where the policy came from, as recorded in evidence: lake-relative when it lives in the lake."""
        source = self.config.source
        if source is None:
            return None
        full = os.path.abspath(source)
        if os.path.dirname(full) == self._lake.root:
            return "<lake>/" + os.path.basename(full)
        return full

    @property
    def config(self) -> Config:
        """The catalog.toml in force (loaded on first use; permissive when there is none)."""
        if self._config is None:
            self._config = load_config(self._config_arg, self._lake.root)  # type: ignore[arg-type]
        return self._config

    # -- starting ----------------------------------------------------------------

    def init(self, config_file: str | os.PathLike[str] | None = None) -> InitReport:
        """Start a registry: an empty lake at this location and, unless one exists, a
        commented starter policy at ``config_file`` (default: the ``--config`` given, else
        ``./catalog.toml``). Whatever is already there is kept as it is."""
        from .config import FILE_NAME, STARTER

        chosen = config_file or (self._config_arg if isinstance(self._config_arg, (str, os.PathLike)) else None)
        path = os.path.abspath(os.fspath(chosen or FILE_NAME))
        lake_created = self._lake.create()
        config_created = False
        if not os.path.exists(path):
            with open(path, "x", encoding="utf-8") as fh:
                fh.write(STARTER)
            config_created = True
        return InitReport(lake=self.root, lake_created=lake_created, config=path, config_created=config_created)

    # -- reading ---------------------------------------------------------------

    def _reader(self) -> Reader:
        if not self._lake.exists():
            raise LakeNotFound(lake=self.location)
        if self._reader_obj is None:
            self._reader_obj = Reader(self._lake)
        return self._reader_obj

    def _q(self, name: str, as_of: datetime | None = None, **params: Any) -> list[dict[str, Any]]:
        return self._reader().query(name, as_of, **params)

    def _require_model(self, model: str, as_of: datetime | None = None) -> None:
        if not self._q("model_exists", as_of, model=model)[0]["n"]:
            raise ModelNotFound(model=model)

    def _version(self, model: str, version: int, as_of: datetime | None = None) -> Version:
        rows = self._q("version", as_of, model=model, version=version)
        if not rows:
            self._require_model(model, as_of)
            raise VersionNotFound(model=model, version=version)
        return Version.from_row(rows[0])

    def views_sql(self) -> str:
        """The stable views' definitions, with this lake's paths, for any DuckDB client."""
        return views_sql(self._lake.glob("versions"), self._lake.glob("events"))

    def show(self, model: str, version: int | None = None, *, as_of: str | datetime | None = None) -> ModelInfo | Version:
        """A model (every version, where it runs) or one version, optionally as of a past time."""
        check.name(model)
        when = _as_of(as_of)
        if version is not None:
            return self._version(model, check.version(version), when)
        rows = self._q("model_versions", when, model=model)
        if not rows:
            raise ModelNotFound(model=model)
        summary = ModelSummary.from_row(self._q("models", when, model=model)[0])
        return ModelInfo(
            model=model,
            owner=summary.owner,
            description=summary.description,
            tags=summary.tags,
            versions=[Version.from_row(r) for r in rows],
            deployments=[Deployment.from_row(r) for r in self._q("model_deployments", when, model=model)],
            latest_approved=summary.latest_approved,
        )

    def list(self, *, as_of: str | datetime | None = None) -> list[ModelSummary]:
        """Every model with its version counts and where it runs."""
        when = _as_of(as_of)
        running: dict[str, dict[str, int]] = {}
        for d in self._q("deployments", when):
            running.setdefault(d["model"], {})[d["target"]] = d["version"]
        return [
            ModelSummary.from_row({**r, "deployed_to": running.get(r["model"], {})})
            for r in self._q("models", when, model=None)
        ]

    def counts(self, *, as_of: str | datetime | None = None) -> Counts:
        """Models, versions and decisions (lifecycle events, registrations not included)."""
        return Counts.from_row(self._q("counts", _as_of(as_of))[0])

    def deployments(self, *, as_of: str | datetime | None = None) -> list[Deployment]:
        """What every target runs, for every model."""
        return [Deployment.from_row(r) for r in self._q("deployments", _as_of(as_of))]

    def history(
        self,
        model: str | None = None,
        *,
        target: str | None = None,
        actor: str | None = None,
        as_of: str | datetime | None = None,
    ) -> list[Event]:
        """Every registration and decision, oldest first: for a model, a target, an actor, or all."""
        if model is not None:
            check.name(model)
        if target is not None:
            check.target(target)
        when = _as_of(as_of)
        if model is not None:
            self._require_model(model, when)
        rows = self._q("audit", when, model=model, target=target, actor=actor)
        return [Event.from_row(r) for r in rows]

    def candidates(self, model: str, *, target: str, as_of: str | datetime | None = None) -> list[Candidate]:
        """The versions ``target`` can roll back to, first choice first."""
        check.name(model)
        check.target(target)
        when = _as_of(as_of)
        self._require_model(model, when)
        return [Candidate.from_row(r) for r in self._q("candidates", when, model=model, target=target)]

    def rollback_options(self, model: str, *, target: str, as_of: str | datetime | None = None) -> RollbackOptions:
        """The rollback candidates of ``target`` (first choice first) and the versions that
        ran there but are excluded, each with why (running now, rolled back from, no longer
        approved), most recently run first; both read at the same moment."""
        check.name(model)
        check.target(target)
        when = _as_of(as_of)
        self._require_model(model, when)
        return self._rollback_options(model, target, when)

    def _rollback_options(self, model: str, target: str, as_of: datetime | None = None) -> RollbackOptions:
        rows = self._q("rollback_options", as_of, model=model, target=target)
        return RollbackOptions(
            model=model, target=target,
            candidates=[Candidate.from_row(r) for r in rows if r["reason"] is None],
            excluded=[Exclusion.from_row(r) for r in rows if r["reason"] is not None],
        )

    def lineage(self, model: str, version: int, *, as_of: str | datetime | None = None) -> Lineage:
        """Ancestors (models, data, code, image) and descendants of a version, recursively."""
        check.name(model)
        check.version(version)
        when = _as_of(as_of)
        self._version(model, version, when)
        up = [LineageEdge.from_row(r) for r in self._q("ancestors", when, model=model, version=version)]
        down = [LineageEdge.from_row(r) for r in self._q("descendants", when, model=model, version=version)]
        return Lineage(model=model, version=version, ancestors=up, descendants=down)

    def sql(self, query: str, *, as_of: str | datetime | None = None) -> QueryResult:
        """Run one read-only SELECT over the stable views."""
        check.text(query, "query", required=True)
        columns, rows = self._reader().user_query(query, _as_of(as_of))
        return QueryResult(columns=columns, rows=rows)

    def sql_arrow(self, query: str, *, as_of: str | datetime | None = None) -> Any:
        """:meth:`sql`, answered as a ``pyarrow.Table``: for large answers, which it
        returns without building a Python object per row (67k rows: ~5 ms instead of ~230 ms)."""
        check.text(query, "query", required=True)
        return self._reader().user_query_arrow(query, _as_of(as_of))

    # -- resolve: what serving code calls -------------------------------------

    def resolve(self, ref: str, *, as_of: str | datetime | None = None) -> str:
        """The artifact URI for ``MODEL@TARGET``, ``MODEL@latest`` or ``MODEL:VERSION``.

        Cheap to call repeatedly: answers come from an in-memory index that is
        rebuilt only when a file enters or leaves the lake. With ``as_of``, the
        answer the registry gave at that moment (read afresh, not cached).
        """
        model, kind, key = parse_ref(ref)
        when = _as_of(as_of)
        if when is None:
            answers = self._resolve_model(model)
        else:
            answers = _answers(self._q("resolve_model", when, model=model))
        uri = answers.get((kind, key))
        if uri is not None:
            return uri
        if not answers:
            raise ModelNotFound(model=model)
        if kind == "latest":
            raise NoApprovedVersion(model=model)
        if kind == "pin":
            raise VersionNotFound(model=model, version=int(key))
        raise TargetNotDeployed(model=model, target=key, detail="")

    def _resolve_model(self, model: str) -> dict[tuple[str, str], str]:
        """The model's answers from the in-memory index, loaded with one filtered query on
        first use and dropped whenever a file enters or leaves the lake (two stat calls)."""
        stamp = self._lake.stamp()
        index = self._index
        if index is None or not index.fresh(stamp):
            with self._index_lock:
                index = self._index = _ResolveIndex(stamp, time.time())
        answers = index.by_model.get(model)
        if answers is None:
            answers = index.by_model[model] = _answers(self._q("resolve_model", model=model))
        return answers

    # -- writing -----------------------------------------------------------------

    def register(
        self,
        model: str,
        artifact_uri: str,
        *,
        owner: str | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        code_repo: str | None = None,
        code_version: str | None = None,
        runtime_image: str | None = None,
        data_refs: Sequence[str] | None = None,
        parents: Iterable[ParentLike] | None = None,
        metrics: Mapping[str, float] | None = None,
        params: Mapping[str, object] | None = None,
        dashboards: Mapping[str, str] | None = None,
        artifact_sha256: str | None = None,
        capture_git: bool = True,
        allow_missing_data: bool = False,
    ) -> Version:
        """Append a new version of ``model``; returns it with its number."""
        row = self._prepare(
            model, artifact_uri, owner=owner, description=description, tags=tags, code_repo=code_repo,
            code_version=code_version, runtime_image=runtime_image, data_refs=data_refs, parents=parents,
            metrics=metrics, params=params, dashboards=dashboards, artifact_sha256=artifact_sha256,
            capture_git=capture_git, allow_missing_data=allow_missing_data,
        )
        row["version"] = self._lake.claim_version(model, self.actor, floor=lambda: self._floor(model))
        row["created_at"] = self._clock()
        self._append("versions", [row], row["created_at"])
        return _registered(row)

    def register_many(self, records: Iterable[Mapping[str, Any]], *, capture_git: bool = False) -> Sequence[Version]:
        """Register many versions at once (imports, back-fills): one Parquet file, all or nothing.

        Each record holds ``register``'s keywords plus ``model`` and
        ``artifact_uri``. Every record is checked as ``register`` checks it
        before anything is claimed or written; a refusal names the record's
        index. Versions of one model are numbered in the order given. Records
        may come from a generator: they are kept in a temporary file, not in
        memory, and the returned sequence reads them back as it is indexed.
        """
        from . import bulk

        lean = bulk.LeanCheck(self.actor, functools.cache(git_info), parse_parent)
        spill = bulk.Spill()
        counts: dict[str, int] = {}
        parents: list[tuple[str, int, int]] = []  # (model, version, record index)
        tick = ticker(self.progress, "register", len(records) if isinstance(records, Sequence) else None)
        try:
            for i, record in enumerate(records):
                if tick is not None:
                    tick()
                fields = dict(record)
                try:
                    model, uri = fields.pop("model"), fields.pop("artifact_uri")
                except KeyError as missing:
                    raise InvalidValue(f"record {i}: {missing.args[0]} is required") from None
                unknown = fields.keys() - _REGISTER_KEYWORDS
                if unknown:
                    raise InvalidValue(f"record {i}: unknown field(s) {sorted(unknown)}")
                fields.setdefault("capture_git", capture_git)
                row = lean.row(model, uri, fields)
                if row is None:
                    try:
                        row = self._prepare(model, uri, check_parents=False, **fields)
                    except CatalogError as exc:
                        raise _in_record(i, exc)
                spill.add(row)
                counts[model] = counts.get(model, 0) + 1
                parents += [(p["model"], p["version"], i) for p in row["parents"]]
            if not counts:
                spill.close()
                return []
            self._require_parents(parents)
            first = self._lake.claim_many(counts, self.actor, floors=self._floors)
            now = self._clock()
            self._lake.append_batches("versions", spill.numbered(first, now), now=now)
            if tick is not None:
                tick.finish()
        except BaseException:
            spill.close()
            raise
        self._auto_compact("versions")
        return bulk.Registered(spill, now, _registered)

    def _require_parents(self, refs: list[tuple[str, int, int]]) -> None:
        """``_require_versions`` for a bulk load: the refusal names the first record at fault."""
        try:
            self._require_versions([(m, v) for m, v, _ in refs])
        except (ModelNotFound, VersionNotFound) as exc:
            raise _in_record(next(i for m, v, i in refs if m == exc.model and getattr(exc, "version", v) == v), exc)

    def _floors(self, models: list[str]) -> dict[str, int]:
        """The highest recorded version of each of ``models`` that has one: one query."""
        top: dict[str, int] = {}
        if models and self._lake.exists():
            for r in self._q("existing_versions", models=models):
                top[r["model"]] = max(top.get(r["model"], 0), r["version"])
        return top

    def _auto_compact(self, table: str) -> None:
        """Past AUTO_COMPACT_PARTS small files, a minor compaction, so that reads never
        have to scan thousands of tiny files."""
        if self._lake.part_count(table) >= AUTO_COMPACT_PARTS:
            try:
                self._lake.compact(table, minor=True)
            except (CatalogError, OSError):
                pass  # the records are written; another writer is compacting, or doctor will tell

    def _prepare(
        self,
        model: str,
        artifact_uri: str,
        *,
        owner: str | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        code_repo: str | None = None,
        code_version: str | None = None,
        runtime_image: str | None = None,
        data_refs: Sequence[str] | None = None,
        parents: Iterable[ParentLike] | None = None,
        metrics: Mapping[str, float] | None = None,
        params: Mapping[str, object] | None = None,
        dashboards: Mapping[str, str] | None = None,
        artifact_sha256: str | None = None,
        capture_git: bool = True,
        allow_missing_data: bool = False,
        check_parents: bool = True,
    ) -> dict[str, Any]:
        """Validate one registration and build its row (all but version and time); writes nothing."""
        check.name(model)
        check.uri(artifact_uri)
        record: dict[str, Any] = {
            "owner": check.line(owner, "owner", limit=200),
            "description": _no_credentials(check.text(description, "description"), "description"),
            "tags": check.mapping(tags, "tag"),
            "runtime_image": _no_credentials(check.text(runtime_image, "runtime image", limit=1_000), "runtime image", bare=True),
            "metrics": check.metrics(metrics),
            "params": check.mapping(params, "param"),
            "dashboards": {k: check.uri(u, f"dashboard {k!r}") for k, u in check.mapping(dashboards, "dashboard").items()},
        }
        refs = [check.uri(check.text(r, "data ref", required=True) or "", "data ref") for r in data_refs or []]
        if len(set(refs)) != len(refs):
            raise InvalidValue("a data ref is given twice: give each once")
        record["data_refs"] = [check_data_ref(r, allow_missing_data) for r in refs]
        parent_list = [parse_parent(p) for p in parents or []]
        if len({(p.model, p.version) for p in parent_list}) != len(parent_list):
            raise InvalidValue("a parent is given twice: give each once")
        if artifact_sha256 is not None and not _is_sha256(artifact_sha256):
            raise InvalidValue(f"invalid sha256 {artifact_sha256!r}: give 64 hexadecimal digits")
        repo = check.text(code_repo, "code repo", limit=1_000)
        commit = check.text(code_version, "code version", limit=200)
        dirty: bool | None = None
        if commit is None and capture_git:
            found = git_info()
            commit, dirty = found.commit, found.dirty
            repo = repo or found.repo
        if repo:
            check.uri(repo, "code repo")
        artifact = inspect_artifact(artifact_uri, self.progress)
        if artifact.sha256 and artifact_sha256 and artifact.sha256 != artifact_sha256.lower():
            raise InvalidValue(
                f"artifact {artifact.uri} has sha256 {artifact.sha256}, not the {artifact_sha256} given"
            )
        if parent_list and check_parents:
            self._require_versions([(p.model, p.version) for p in parent_list])
        return {
            **record,
            "schema_version": SCHEMA_VERSION,
            "model": model,
            "artifact_uri": artifact.uri,
            "artifact_sha256": artifact.sha256 or (artifact_sha256.lower() if artifact_sha256 else None),
            "artifact_bytes": artifact.bytes,
            "code_repo": repo,
            "code_version": commit,
            "code_dirty": dirty,
            "parents": [{"model": p.model, "version": p.version, "relation": p.relation} for p in parent_list],
            "created_by": self.actor,
        }

    def _require_versions(self, refs: Sequence[tuple[str, int]]) -> None:
        """Raise unless every (model, version) is registered: one query however many."""
        if not refs:
            return
        if not self._lake.exists():
            raise ModelNotFound(model=refs[0][0])
        models = sorted({m for m, _ in refs})
        reader = self._reader()
        # Records are never removed: what the files as last listed hold is there now;
        # the lake is listed again only when some parent was not among them.
        known = {(r["model"], r["version"]) for r in reader.query("existing_versions", relist=False, models=models)}
        if not set(refs) <= known:
            known = {(r["model"], r["version"]) for r in reader.query("existing_versions", models=models)}
        for model, version in refs:
            if (model, version) not in known:
                if not any(m == model for m, _ in known):
                    raise ModelNotFound(model=model)
                raise VersionNotFound(model=model, version=version)

    def _append(self, table: str, rows: list[dict[str, Any]], now: datetime) -> None:
        """Write rows as one file, then compact if the table has collected enough small files."""
        self._lake.append(table, rows, now=now)
        self._auto_compact(table)

    def _floor(self, model: str) -> int:
        if not self._lake.exists():
            return 0
        return int(self._q("max_version", model=model)[0]["n"])

    def approve(self, model: str, version: int, *, note: str | None = None) -> Event:
        """Run the promotion gates and record an approval; the version turns
        ``approved`` when the policy's quorum of distinct approvers is reached.
        Exactly what :meth:`check` runs, then the write."""
        check.name(model)
        check.version(version)
        note = check.text(note, "note")
        with self._lake.model_lock(model):
            report = self._approval_report(model, version)
            _raise_failures("approval", report)
            state = "approved" if report.approvals >= report.quorum else None
            return self._record(model, version, "approve", state=state, note=note, evidence=report.evidence())

    def check(self, model: str, version: int, *, target: str | None = None) -> GateReport:
        """Run what an approval (or, with ``target``, a deployment) by this actor would
        run, lifecycle rules included; write nothing. It passes exactly when the command
        would succeed now."""
        check.name(model)
        check.version(version)
        if target is not None:
            check.target(target)
            return self._deploy_report(model, version, target)[0]
        return self._approval_report(model, version)

    def _approval_report(self, model: str, version: int) -> GateReport:
        current = self._version(model, version)
        config = self.config
        rules = config.rules_for(model, current.owner)
        prior = [r["actor"] for r in self._q("approvers", model=model, version=version)]
        champion_rows = self._q("champion", model=model, version=version)
        champion = Version.from_row(champion_rows[0]) if champion_rows else None
        gates = approval_gates(current, self.actor, rules, champion, prior)
        if current.state != "candidate":
            gates.insert(0, GateResult(_LIFECYCLE, False, _why_not("approve", current), current.state, "candidate"))
        return GateReport(
            model=model, version=version, action="approve", actor=self.actor,
            passed=not failures(gates), gates=gates, policy_source=self._policy_source(),
            policy_sha256=config.sha256, approvals=len(check.people(prior)) + 1, quorum=rules.approvals,
            subject=current,
        )

    def _deploy_report(self, model: str, version: int, target: str) -> tuple[GateReport, int | None]:
        """The gates of deploying to ``target``, lifecycle rules included, and the version
        ``target`` runs now (None when it runs none)."""
        current = self._version(model, version)
        config = self.config
        approvers = [r["actor"] for r in self._q("approvers", model=model, version=version)]
        ran_on = [r["target"] for r in self._q("deployed_targets", model=model, version=version)]
        running = self._q("deployment", model=model, target=target)
        previous = running[0]["version"] if running else None
        gates = deploy_gates(current, target, config.target_rules(target), approvers, ran_on)
        if previous == version:
            gates.insert(0, GateResult(_LIFECYCLE, False, f"'{target}' already runs {model} v{version}", previous, "another version"))
        if current.state != "approved":
            gates.insert(0, GateResult(_LIFECYCLE, False, _why_not("deploy", current), current.state, "approved"))
        report = GateReport(
            model=model, version=version, action="deploy", actor=self.actor, passed=not failures(gates),
            gates=gates, policy_source=self._policy_source(), policy_sha256=config.sha256, target=target, subject=current,
        )
        return report, previous

    def reject(self, model: str, version: int, *, note: str | None = None) -> Event:
        """candidate → rejected."""
        return self._transition(model, version, "reject", "rejected", note, allowed=("candidate",))

    def deprecate(self, model: str, version: int, *, note: str | None = None) -> Event:
        """approved → deprecated: no longer offered for deployment or rollback."""
        return self._transition(model, version, "deprecate", "deprecated", note, allowed=("approved",))

    def _transition(self, model: str, version: int, kind: str, state: str, note: str | None, *, allowed: tuple[str, ...]) -> Event:
        check.name(model)
        check.version(version)
        note = check.text(note, "note")
        with self._lake.model_lock(model):
            current = self._version(model, version)
            if current.state not in allowed:
                raise IllegalTransition(
                    _why_not(kind, current), model=model, version=version, state=current.state, action=kind
                )
            return self._record(model, version, kind, state=state, note=note, evidence={"from_state": current.state})

    def deploy(self, model: str, version: int, *, target: str, note: str | None = None) -> Event:
        """Record that ``target`` now runs this (approved) version."""
        check.name(model)
        check.version(version)
        check.target(target)
        note = check.text(note, "note")
        with self._lake.model_lock(model):
            report, previous = self._deploy_report(model, version, target)
            _raise_failures("deployment", report)
            evidence = {"from_version": previous, **report.evidence()}
            return self._record(model, version, "deploy", target=target, note=note, evidence=evidence)

    def rollback(self, model: str, *, target: str, note: str, to: int | None = None) -> Event:
        """Move ``target`` back to a rollback candidate (by default the one it ran before)."""
        check.name(model)
        check.target(target)
        note = check.text(note, "rollback note", required=True)
        if to is not None:
            check.version(to)
        with self._lake.model_lock(model):
            self._require_model(model)
            running = self._q("deployment", model=model, target=target)
            if not running:
                raise TargetNotDeployed(model=model, target=target, detail=", so there is nothing to roll back")
            found = self._rollback_options(model, target)
            options, excluded = found.candidates, found.excluded
            if to is None:
                chosen = options[0] if options else None
            else:
                chosen = next((c for c in options if c.version == to), None)
            if chosen is None:
                named = next((e for e in excluded if e.version == to), None)
                if named is not None:
                    raise NotRollbackCandidate(named.detail, model=model, target=target, version=to, reason=named.reason)
                if not options:
                    raise NoRollbackCandidate.because(model, target, [(e.version, e.reason, e.detail) for e in excluded])
                listed = ", ".join(f"v{c.version}" for c in options)
                raise NoRollbackCandidate(f" at version {to} (candidates: {listed})", model=model, target=target)
            return self._record(
                model, chosen.version, "rollback", target=target, note=note,
                evidence={"from_version": running[0]["version"], "rank": chosen.rank},
            )

    def _record(self, model: str, version: int | None, kind: str, *, state: str | None = None,
                target: str | None = None, note: str | None = None, evidence: dict[str, Any] | None = None) -> Event:
        at = self._clock()
        row = {
            "schema_version": SCHEMA_VERSION,
            "event_id": f"{at.strftime('%Y%m%dT%H%M%S%fZ')}-{self._lake._new_id()}",
            "at": at,
            "actor": self.actor,
            "model": model,
            "version": version,
            "kind": kind,
            "state": state,
            "target": target,
            "note": note,
            "evidence": json.dumps(evidence or {}, sort_keys=True),
        }
        self._append("events", [row], at)
        return Event.from_row(row)

    # -- redaction -------------------------------------------------------------------

    def redact(self, model: str, version: int | None = None, *, fields: Sequence[str], reason: str) -> Event:
        """Remove the values of ``fields`` from every lake file (one version, or every
        version of the model) and record a ``redact`` event: who, when, why, which
        fields, never the removed value. Re-running after an interruption finishes it."""
        check.name(model)
        if version is not None:
            check.version(version)
        reason = check.text(reason, "redaction reason", required=True)
        wanted = list(dict.fromkeys(fields))
        unknown = [f for f in wanted if f not in REDACTABLE]
        if not wanted or unknown:
            raise InvalidValue(
                f"cannot redact {', '.join(map(repr, unknown)) or 'nothing'}: give --field among {', '.join(REDACTABLE)}"
            )
        version_fields = [f for f in wanted if f != "note"]
        with self._lake.model_lock(model):
            if version is None:
                self._require_model(model)
            else:
                self._version(model, version)
            with self._lake.rewrite_lock():
                rewritten = 0
                if version_fields:
                    for path in self._files("files_with_versions", model, version):
                        rewritten += rewrite_file(
                            self._lake.storage, path, _blank(model, version, version_fields, skip_kind=None)
                        )
                if "note" in wanted:
                    for path in self._files("files_with_events", model, version):
                        rewritten += rewrite_file(self._lake.storage, path, _blank(model, version, ["note"], skip_kind="redact"))
            return self._record(
                model, version, "redact", note=reason, evidence={"fields": wanted, "files_rewritten": rewritten}
            )

    def _files(self, query: str, model: str, version: int | None) -> list[str]:
        root = self._lake.root
        return [os.path.relpath(r["filename"], root).replace(os.sep, "/") for r in self._q(query, model=model, version=version)]

    # -- maintenance ---------------------------------------------------------------

    def doctor(self, *, repair: bool = False, verify_artifacts: bool = False) -> Any:
        """Check the lake (files, rows, claims, the policy file, optionally artifacts);
        with ``repair``, quarantine bad files and tidy leftovers, never deleting a record."""
        from .doctor import Finding, doctor
        from .errors import ConfigInvalid

        def config_check(root: str) -> list[Finding]:
            try:
                config = self.config
            except ConfigInvalid as exc:
                return [Finding("error", str(getattr(exc, "path", "catalog.toml")), exc.detail,
                                "fix the key named, then run `catalog doctor` again")]
            if config.permissive:
                return [Finding("info", "catalog.toml", "no policy file: approvals run no gates and the registrant may approve",
                                "write a catalog.toml (see README, Governance) to require checks")]
            return []

        return doctor(self._lake, repair=repair, verify_artifacts=verify_artifacts, checks=[config_check],
                      progress=self.progress)

    def compact(self) -> dict[str, dict[str, int]]:
        """Merge each table's small files into one; safe to interrupt, safe beside writers."""
        if not self._lake.exists():
            raise LakeNotFound(lake=self.location)
        out = {}
        for done, table in enumerate(("versions", "events")):
            if self.progress is not None:
                self.progress(f"compact {table}", done, 2)
            files, rows = self._lake.compact(table)
            out[table] = {"files_merged": files, "rows": rows}
        if self.progress is not None:
            self.progress("compact", 2, 2)
        return out


_REGISTER_KEYWORDS = {
    "owner", "description", "tags", "code_repo", "code_version", "runtime_image", "data_refs", "parents",
    "metrics", "params", "dashboards", "artifact_sha256", "capture_git", "allow_missing_data",
}


def _in_record(i: int, exc: CatalogError) -> CatalogError:
    """``exc``, its message prefixed with the index of the bulk-loaded record at fault."""
    exc.record = i  # type: ignore[attr-defined]
    exc.fields["record"] = i
    exc.args = (f"record {i}: {exc}",)
    return exc


def _registered(row: dict[str, Any]) -> Version:
    return Version.from_row({**row, "state": "candidate", "state_at": row["created_at"], "state_by": row["created_by"]})


REDACTABLE = ("description", "owner", "tags", "data_refs", "params", "dashboards", "runtime_image", "code_repo", "note")


def _blank(model: str, version: int | None, fields: Sequence[str], *, skip_kind: str | None) -> Callable[[Any], Any]:
    """A file transform that nulls ``fields`` on the rows of (model, version)."""

    def transform(table: Any) -> Any:
        import pyarrow as pa

        models = table.column("model").to_pylist()
        versions = table.column("version").to_pylist()
        kinds = table.column("kind").to_pylist() if skip_kind else [None] * len(models)
        rows = [
            i for i, (m, v, k) in enumerate(zip(models, versions, kinds))
            if m == model and (version is None or v == version) and (skip_kind is None or k != skip_kind)
        ]
        changed = False
        for name in fields:
            if name not in table.column_names or not rows:
                continue
            values = table.column(name).to_pylist()
            if all(values[i] is None for i in rows):
                continue
            for i in rows:
                values[i] = None
            index = table.schema.get_field_index(name)
            table = table.set_column(index, table.schema.field(index), pa.array(values, type=table.schema.field(index).type))
            changed = True
        return table if changed else None

    return transform


def _answers(rows: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    return {(r["kind"], r["key"]): r["artifact_uri"] for r in rows}


# The gate of the lifecycle rules (what state a version must be in, what a target must
# not already run): it appears in a report only when it fails, and refuses as an
# IllegalTransition rather than a GateFailed.
_LIFECYCLE = "state"


def _no_credentials(value: str | None, what: str, *, bare: bool = False) -> str | None:
    return None if value is None else check.no_credentials(value, what, bare=bare)


def _raise_failures(action: str, report: GateReport) -> None:
    """The one way a report refuses: ``approve``, ``deploy`` and ``check`` agree by construction."""
    failed = [g for g in report.gates if not g.passed]
    lifecycle = next((g for g in failed if g.gate == _LIFECYCLE), None)
    if lifecycle is not None:
        state = report.subject.state if report.subject is not None else None
        raise IllegalTransition(
            lifecycle.detail, model=report.model, version=report.version, state=state, action=report.action
        )
    if failed:
        raise GateFailed(
            "; ".join(f"{g.gate}: {g.detail}" for g in failed),
            action=action, model=report.model, version=report.version, count=len(failed), failures=failed,
        )


def _as_of(value: str | datetime | None) -> datetime | None:
    return None if value is None else check.moment(value)


def _is_sha256(value: str) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdefABCDEF" for c in value)


def _why_not(action: str, v: Version) -> str:
    """Why ``action`` is refused on a version in its current state, and what to do."""
    ref = f"version {v.version} of '{v.model}'"
    if action == "deploy":
        if v.state == "candidate":
            return f"{ref} is a candidate; approve it before deploying: catalog approve {v.model} {v.version}"
        return f"{ref} is {v.state}; only approved versions deploy (see `catalog history {v.model}`)"
    if v.state == {"approve": "approved", "reject": "rejected", "deprecate": "deprecated"}[action]:
        return f"{ref} is already {v.state}"
    if action == "approve":
        return f"{ref} is {v.state}; a {v.state} version cannot be approved again: register a new version"
    if action == "reject":
        if v.state == "approved":
            return f"{ref} is approved; retire it instead: catalog deprecate {v.model} {v.version} --note WHY"
        return f"{ref} is {v.state}; only candidates can be rejected"
    if v.state == "candidate":
        return f"{ref} is a candidate, not approved; reject it instead: catalog reject {v.model} {v.version} --note WHY"
    return f"{ref} is {v.state}; only approved versions can be deprecated"
