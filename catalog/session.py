"""What every part of the registry shares: one lake, who acts, the clock, the policy.

A :class:`Session` is handed to the functions of ``reading``, ``resolving``,
``registering``, ``lifecycle`` and ``redaction``: they reach the lake and its
reader through it, never back through the ``Registry``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from . import validate as check
from .config import Config
from .config import load as load_config
from .errors import (
    CatalogError,
    LakeNotFound,
    ModelDeleted,
    ModelNotFound,
    ModelRenamed,
    VersionDeleted,
    VersionNotFound,
)
from .lake import Lake, compact
from .progress import Progress
from .queries import Reader
from .records import Version

# A table holding this many small appended files is compacted (minor) by the writer
# that adds the last one: cheap amortised over the writes, and no read ever scans more
# than this many tiny files (DuckDB pays a fixed cost for every file it opens).
AUTO_COMPACT_PARTS = 100


class Session:
    """One registry's lake, reader, actor, clock, policy and progress callback."""

    def __init__(
        self,
        lake: Lake,
        location: str,
        actor: str,
        clock: Callable[[], datetime],
        config: str | os.PathLike[str] | Config | None,
        progress: Progress | None,
    ) -> None:
        self.lake = lake
        self.location = location
        self.actor = actor
        self.clock = clock
        self.config_arg = config
        self._config: Config | None = config if isinstance(config, Config) else None
        self.progress = progress  # fn(task, done, total) for long work: hashing, bulk loads, compaction, doctor
        self._reader: Reader | None = None
        # Per thread, inside one_listing(): False until its first query has listed the
        # lake, then True (another thread's queries list as usual).
        self._listing = threading.local()
        self._tops: dict[str, int] | None = None

    def recorded_tops(self) -> dict[str, int]:
        """The highest version recorded of every model, read once per session (see
        registering._floor for why that holds)."""
        if self._tops is None:
            self._tops = {r["model"]: int(r["version"]) for r in self.q("all_top_versions")}
        return self._tops

    @property
    def config(self) -> Config:
        """The catalog.toml in force (loaded on first use; permissive when there is none)."""
        if self._config is None:
            # (the lake's location, not its private mirror on an object store, names its catalog.toml)
            self._config = load_config(self.config_arg, self.lake.storage.location, self._lake_file)  # type: ignore[arg-type]
        return self._config

    def _lake_file(self, name: str) -> bytes | None:
        """A file of the lake (its catalog.toml), read through its Storage; None if absent."""
        storage = self.lake.storage
        return storage.read_bytes(name) if storage.exists(name) else None

    def policy_source(self) -> str | None:
        """Where the policy came from, as recorded in evidence: lake-relative when it lives in the lake."""
        source = self.config.source
        if source is None:
            return None
        if "://" in source:  # the catalog.toml of an object-store lake
            return "<lake>/" + source.rsplit("/", 1)[-1]
        full = os.path.abspath(source)
        if os.path.dirname(full) == self.lake.root:
            return "<lake>/" + os.path.basename(full)
        return full

    # -- reading -------------------------------------------------------------------

    def reader(self) -> Reader:
        if not self.lake.exists():
            raise LakeNotFound(lake=self.location)
        if self._reader is None:
            self._reader = Reader(self.lake)
        return self._reader

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        close = getattr(self.lake.storage, "close", None)
        if close is not None:
            close()  # an object store's private local mirror (catalog.lake.s3)

    def q(self, name: str, as_of: datetime | None = None, **params: Any) -> list[dict[str, Any]]:
        """The rows of the named query (inside :meth:`one_listing`, over the files its first
        query listed)."""
        listed = getattr(self._listing, "listed", None)
        rows = self.reader().query(name, as_of, relist=listed is not True, **params)
        if listed is False:
            self._listing.listed = True
        return rows

    @contextmanager
    def one_listing(self) -> Iterator[None]:
        """The queries run inside read the lake as its first one listed it: one listing
        (two requests on an object store) per decision's checks rather than one per query.
        For the checks a decision runs between reading the model's latest decision and
        claiming the next: whatever another decision changes meanwhile makes that claim
        fail and the checks run again, listed afresh. (A file a compaction removes since
        is still listed afresh by the reader, which runs its query again.)"""
        before = getattr(self._listing, "listed", None)
        self._listing.listed = False
        try:
            yield
        finally:
            self._listing.listed = before

    def require_model(self, model: str, as_of: datetime | None = None) -> None:
        if not self.q("model_exists", as_of, model=model)[0]["n"] and not self.q("model_created", as_of, model=model)[0]["n"]:
            raise self.not_found(model, as_of)

    def not_found(self, model: str, as_of: datetime | None = None) -> CatalogError:
        """Why ``model`` is not a live model: renamed, deleted, or never registered."""
        status = self.q("name_status", as_of, model=model)[0]
        if status["renamed_to"] is not None:
            return ModelRenamed(model=model, new_name=status["renamed_to"])
        if status["deleted_at"] is not None:
            return ModelDeleted(model=model, at=f"{status['deleted_at']:%Y-%m-%d %H:%M:%SZ}", by=status["deleted_by"])
        return ModelNotFound(model=model)

    def version(self, model: str, version: int, as_of: datetime | None = None) -> Version:
        rows = self.q("version", as_of, model=model, version=version)
        if not rows:
            self.require_model(model, as_of)
            if self.q("deleted_version", as_of, model=model, version=version)[0]["n"]:
                raise VersionDeleted(model=model, version=version)
            raise VersionNotFound(model=model, version=version)
        return Version.from_row(rows[0])

    # -- writing -------------------------------------------------------------------

    def append(self, table: str, rows: list[dict[str, Any]], now: datetime) -> None:
        """Write rows as one file, then compact if the table has collected enough small files."""
        self.lake.append(table, rows, now=now)
        self.auto_compact(table)

    def auto_compact(self, table: str) -> None:
        """Past AUTO_COMPACT_PARTS small files, a minor compaction, so that reads never
        have to scan thousands of tiny files."""
        if self.lake.part_count(table) >= AUTO_COMPACT_PARTS:
            try:
                compact(self.lake, table, minor=True)
            except (CatalogError, OSError):
                pass  # the records are written; another writer is compacting, or doctor will tell


def moment(value: str | datetime | None) -> datetime | None:
    """An ``as_of`` argument as a UTC moment (None: now)."""
    return None if value is None else check.moment(value)
