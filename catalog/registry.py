"""The Registry: every command of the catalog as a method returning typed records.

The CLI, the site generator and serving code all go through this class. It
never prints and never exits: it returns records and raises CatalogErrors.
Each method is a short call into the module that owns its concern: ``reading``,
``resolving``, ``registering``, ``lifecycle``, ``redaction``, ``maintenance``; they share one
``session.Session`` (the lake, its reader, the actor, the clock, the policy).
"""

from __future__ import annotations

import builtins
import getpass
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from . import lifecycle, maintenance, reading, redaction, registering
from . import validate as check
from .config import Config
from .lake import Lake, open_storage
from .progress import Progress
from .records import (
    Candidate,
    Counts,
    Deployment,
    Event,
    GateReport,
    InitReport,
    Lineage,
    ModelInfo,
    ModelSummary,
    QueryResult,
    RollbackOptions,
    Version,
)
from .registering import ParentLike, parse_parent
from .resolving import Resolver, parse_ref
from .session import AUTO_COMPACT_PARTS, Session

__all__ = ["AUTO_COMPACT_PARTS", "DEFAULT_LAKE", "ParentLike", "Registry", "default_actor", "default_lake",
           "parse_parent", "parse_ref"]

DEFAULT_LAKE = os.path.join("data", "lake")


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
        self.location = location
        self.actor = check.actor(actor if actor is not None else default_actor())
        self._s = Session(
            Lake(open_storage(location, durable=durable), new_id=new_id),
            location,
            self.actor,
            clock or (lambda: datetime.now(timezone.utc)),
            config,
            progress,
        )
        self._resolver = Resolver(self._s)

    @classmethod
    def open(cls, lake: str | os.PathLike[str] | None = None, **options: Any) -> Registry:
        """Same as ``Registry(lake, ...)``."""
        return cls(lake, **options)

    def __repr__(self) -> str:
        return f"Registry({self.location!r})"

    def close(self) -> None:
        self._s.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def root(self) -> str:
        """The lake's absolute location: its folder, or its s3:// URL."""
        return self._s.lake.storage.location

    @property
    def config(self) -> Config:
        """The catalog.toml in force (loaded on first use; permissive when there is none)."""
        return self._s.config

    @property
    def progress(self) -> Progress | None:
        """fn(task, done, total), called during long work: hashing, bulk loads, compaction, doctor."""
        return self._s.progress

    @progress.setter
    def progress(self, value: Progress | None) -> None:
        self._s.progress = value

    @property
    def _lake(self) -> Lake:
        return self._s.lake

    # -- starting ----------------------------------------------------------------

    def init(self, config_file: str | os.PathLike[str] | None = None) -> InitReport:
        """Start a registry: an empty lake at this location and, unless one exists, a
        commented starter policy at ``config_file`` (default: the ``--config`` given, else
        ``./catalog.toml``). Whatever is already there is kept as it is."""
        return maintenance.init(self._s, config_file)

    # -- reading ---------------------------------------------------------------

    def views_sql(self) -> str:
        """The stable views' definitions, with this lake's paths, for any DuckDB client."""
        return reading.views_sql(self._s)

    def show(self, model: str, version: int | None = None, *, as_of: str | datetime | None = None) -> ModelInfo | Version:
        """A model (every version, where it runs) or one version, optionally as of a past time."""
        return reading.show(self._s, model, version, as_of)

    def list(self, *, as_of: str | datetime | None = None) -> builtins.list[ModelSummary]:
        """Every model with its version counts and where it runs."""
        return reading.models(self._s, as_of)

    def counts(self, *, as_of: str | datetime | None = None) -> Counts:
        """Models, versions and decisions (lifecycle events, registrations not included)."""
        return reading.counts(self._s, as_of)

    def deployments(self, *, as_of: str | datetime | None = None) -> builtins.list[Deployment]:
        """What every target runs, for every model."""
        return reading.deployments(self._s, as_of)

    def history(
        self,
        model: str | None = None,
        *,
        target: str | None = None,
        actor: str | None = None,
        as_of: str | datetime | None = None,
    ) -> builtins.list[Event]:
        """Every registration and decision, oldest first: for a model, a target, an actor, or all."""
        return reading.history(self._s, model, target, actor, as_of)

    def candidates(self, model: str, *, target: str, as_of: str | datetime | None = None) -> builtins.list[Candidate]:
        """The versions ``target`` can roll back to, first choice first."""
        return reading.candidates(self._s, model, target, as_of)

    def rollback_options(self, model: str, *, target: str, as_of: str | datetime | None = None) -> RollbackOptions:
        """The rollback candidates of ``target`` (first choice first) and the versions that
        ran there but are excluded, each with why (running now, rolled back from, no longer
        approved), most recently run first; both read at the same moment."""
        return reading.checked_rollback_options(self._s, model, target, as_of)

    def lineage(self, model: str, version: int, *, as_of: str | datetime | None = None) -> Lineage:
        """Ancestors (models, data, code, image) and descendants of a version, recursively."""
        return reading.lineage(self._s, model, version, as_of)

    def sql(self, query: str, *, as_of: str | datetime | None = None) -> QueryResult:
        """Run one read-only SELECT over the stable views."""
        return reading.sql(self._s, query, as_of)

    def sql_arrow(self, query: str, *, as_of: str | datetime | None = None) -> Any:
        """:meth:`sql`, answered as a ``pyarrow.Table``: for large answers, which it
        returns without building a Python object per row."""
        return reading.sql_arrow(self._s, query, as_of)

    # -- resolve: what serving code calls -------------------------------------

    def resolve(self, ref: str, *, as_of: str | datetime | None = None) -> str:
        """The artifact URI for ``MODEL@TARGET``, ``MODEL@latest`` or ``MODEL:VERSION``.

        Cheap to call repeatedly: answers come from an in-memory index that is
        rebuilt only when a file enters or leaves the lake. With ``as_of``, the
        answer the registry gave at that moment (read afresh, not cached).
        """
        return self._resolver.resolve(ref, as_of)

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
        metrics: Mapping[str, float | str] | None = None,
        params: Mapping[str, object] | None = None,
        dashboards: Mapping[str, str] | None = None,
        artifact_sha256: str | None = None,
        capture_git: bool = True,
        allow_missing_data: bool = False,
        version: int | None = None,
        created_at: str | datetime | None = None,
        created_by: str | None = None,
        origin: Mapping[str, str] | None = None,
    ) -> Version:
        """Append a new version of ``model``; returns it with its number.

        An import keeps what another system recorded: ``version`` (an explicit number,
        refused unless it is free), ``created_at`` and ``created_by`` (the original time
        and actor; this registry's actor and clock then go to ``imported_by`` and
        ``imported_at``) and ``origin`` (where it came from: ``system``, ``source``,
        ``id``, and e.g. ``semver``, ``run_id``, ``run_link``)."""
        given = {
            "owner": owner, "description": description, "tags": tags, "code_repo": code_repo,
            "code_version": code_version, "runtime_image": runtime_image, "data_refs": data_refs,
            "parents": parents, "metrics": metrics, "params": params, "dashboards": dashboards,
            "artifact_sha256": artifact_sha256,
        }
        imported = {"version": version, "created_at": created_at, "created_by": created_by, "origin": origin}
        return registering.register(
            self._s, model, artifact_uri, given, capture_git=capture_git, allow_missing_data=allow_missing_data,
            imported=imported,
        )

    def register_many(self, records: Iterable[Mapping[str, Any]], *, capture_git: bool = False) -> Sequence[Version]:
        """Register many versions at once (imports, back-fills): one Parquet file, all or nothing.

        Each record holds ``register``'s keywords plus ``model`` and
        ``artifact_uri``. Every record is checked as ``register`` checks it
        before anything is claimed or written; a refusal names the record's
        index. Versions of one model are numbered in the order given, unless a
        record names its ``version`` (which must be unclaimed, else the whole load is
        refused before anything is written; later plain records of that model number
        on after the highest). A record may also carry ``created_at``, ``created_by``
        and ``origin`` (see :meth:`register`). Records may come from a generator: they
        are kept in a temporary file, not in memory, and the returned sequence reads
        them back as it is indexed.
        """
        return registering.register_many(self._s, records, capture_git)

    # -- decisions ---------------------------------------------------------------

    def approve(self, model: str, version: int, *, note: str | None = None) -> Event:
        """Run the promotion gates and record an approval; the version turns
        ``approved`` when the policy's quorum of distinct approvers is reached.
        Exactly what :meth:`check` runs, then the write."""
        return lifecycle.approve(self._s, model, version, note)

    def check(self, model: str, version: int, *, target: str | None = None) -> GateReport:
        """Run what an approval (or, with ``target``, a deployment) by this actor would
        run, lifecycle rules included; write nothing. It passes exactly when the command
        would succeed now."""
        return lifecycle.gate_report(self._s, model, version, target)

    def reject(self, model: str, version: int, *, note: str | None = None) -> Event:
        """candidate → rejected."""
        return lifecycle.transition(self._s, model, version, "reject", "rejected", note, allowed=("candidate",))

    def deprecate(self, model: str, version: int, *, note: str | None = None) -> Event:
        """approved → deprecated: no longer offered for deployment or rollback."""
        return lifecycle.transition(self._s, model, version, "deprecate", "deprecated", note, allowed=("approved",))

    def deploy(self, model: str, version: int, *, target: str, note: str | None = None) -> Event:
        """Record that ``target`` now runs this (approved) version."""
        return lifecycle.deploy(self._s, model, version, target, note)

    def rollback(self, model: str, *, target: str, note: str, to: int | None = None) -> Event:
        """Move ``target`` back to a rollback candidate (by default the one it ran before)."""
        return lifecycle.rollback(self._s, model, target, note, to)

    def create_model(self, model: str, *, description: str | None = None, tags: Mapping[str, str] | None = None,
                     note: str | None = None) -> Event:
        """Start a model with no version yet (MLflow's create_registered_model), with an
        optional description and tags; refused when the name is taken."""
        return lifecycle.create_model(self._s, model, description, tags, note)

    def undeploy(self, model: str, *, target: str, note: str) -> Event:
        """Record that ``target`` stops running ``model``: ``deployments`` has no row for it
        after this, and a later deploy starts it again."""
        return lifecycle.undeploy(self._s, model, target, note)

    def tag(self, model: str, version: int | None = None, *, set: Mapping[str, str] | None = None,
            delete: Sequence[str] = (), note: str | None = None) -> Event:
        """Set and delete tags of a model (no ``version``) or of one version, in one event."""
        return lifecycle.tag(self._s, model, version, set or {}, delete, note)

    def describe(self, model: str, version: int | None = None, *, description: str | None,
                 note: str | None = None) -> Event:
        """Change the description of a model (no ``version``) or of one version; None clears it."""
        return lifecycle.describe(self._s, model, version, description, note)

    def delete(self, model: str, version: int | None = None, *, note: str | None = None) -> Event:
        """Hide a version, or a whole model, from every read view (the audit keeps it; its
        bytes stay until a redaction). Refused for a version a target runs."""
        return lifecycle.delete(self._s, model, version, note)

    def rename(self, model: str, new_name: str, *, note: str | None = None) -> Event:
        """Rename a model: every view shows ``new_name``, whose numbering continues after the
        old name's; the old name stays reserved to this model."""
        return lifecycle.rename(self._s, model, new_name, note)

    def import_event(self, model: str, version: int | None, kind: str, *, at: str | datetime, actor: str,
                     origin: Mapping[str, str], target: str | None = None, note: str | None = None,
                     tags: Mapping[str, str] | None = None, description: str | None = None) -> Event:
        """Record a decision made in another system with its original time and actor (this
        registry's actor and clock go to ``imported_by``/``imported_at``). No gate runs (the
        evidence says it was imported); the lifecycle rules still apply, and ``at`` must
        follow the model's latest decision."""
        return lifecycle.import_event(self._s, model, version, kind, at=at, actor=actor, origin=origin,
                                      target=target, note=note, tags=tags, description=description)

    def origins(self, system: str, source: str) -> set[str]:
        """The origin ids already in the lake from ``source`` of ``system`` (versions and
        events alike): what an import skips when run again."""
        return reading.origins(self._s, system, source)

    # -- redaction -------------------------------------------------------------------

    def redact(self, model: str, version: int | None = None, *, fields: Sequence[str], reason: str) -> Event:
        """Remove the values of ``fields`` from every lake file (one version, or every
        version of the model) and record a ``redact`` event: who, when, why, which
        fields, never the removed value. Re-running after an interruption finishes it."""
        return redaction.redact(self._s, model, version, fields, reason)

    # -- maintenance ---------------------------------------------------------------

    def doctor(self, *, repair: bool = False, verify_artifacts: bool = False) -> Any:
        """Check the lake (files, rows, claims, the policy file, optionally artifacts);
        with ``repair``, quarantine bad files and tidy leftovers, never deleting a record."""
        return maintenance.doctor(self._s, repair, verify_artifacts)

    def copy_to(self, destination: str | os.PathLike[str]) -> Any:
        """Copy this lake to ``destination`` (an empty folder or ``s3://`` prefix) and verify
        the copy record by record; returns a :class:`catalog.copying.CopyReport`. The same
        as ``catalog.copying.copy_lake(registry.location, destination)``."""
        from .copying import copy_lake

        return copy_lake(self.location, destination, progress=self._s.progress)

    def compact(self) -> dict[str, dict[str, int]]:
        """Merge each table's small files into one; safe to interrupt, safe beside writers."""
        return maintenance.compact(self._s)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Publish the current state for other engines: a Delta Lake log in each table folder
        (``versions/_delta_log``, ``events/_delta_log``) listing the files that make up the
        table now, each record once. Compaction and redaction publish too; this publishes
        on demand. Per table: the commit written (None when the log was current), the log's
        last commit, how many files it lists and where it is."""
        return maintenance.snapshot(self._s)
