"""The catalog's reader: one confined DuckDB connection with the stable views over a lake."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypeVar

from .. import engine
from ..errors import AnchorMissing, LakeDamaged, QueryFailed, QueryRefused
from ..lake.compaction import damaged_file
from ..lake.files import ANCHOR, file_problem
from ..lake.footers import first_line
from . import copies
from .sandbox import check_read_only
from .sql import TABLES, named_queries, reader_query, unbound, views_sql

if TYPE_CHECKING:
    import pyarrow as pa

    from ..lake import Lake

T = TypeVar("T")

# Errors DuckDB raises when a file vanished between its listing and its reading
# (a compaction removed it): the query is simply run again, for up to this long.
_VANISHED = ("No such file", "No files found that match", "cannot open file", "Could not open file")
_RETRY_SECONDS = 10.0
# How often a query is run again because a compaction removed files while it ran.
_MAX_RERUNS = 20

# Named queries that read the rows of their $model alone: a second copy of a record
# is looked for in that model only. Every other read (a whole-lake view, lineage,
# catalog sql) looks across the whole lake first.
ONE_MODEL = frozenset({
    "model_exists", "model_created", "max_version", "version", "model_versions", "models", "model_summary", "model_deployments", "deployment",
    "candidates", "resolve_model", "approvers", "deployed_targets", "champion",
    "files_with_versions", "files_with_events",
})
# What _attempt is asked to look for copies in: nothing (opening the reader).
_NO_CHECK = object()
# An appended file at most this big is read once into the reader's memory (reader.sql)
# rather than opened by every query: one-record files are ~10 KB, a bulk load's far more.
TAIL_BYTES = 256 * 1024


class Reader:
    """A read-only DuckDB connection with the stable views over one lake.

    The connection is the lake's DuckDB session (``lake.session``, which also reads
    the lake's footers): it may read only inside the lake folder, cannot load
    extensions, and cannot change its own configuration; :meth:`user_query`
    further accepts a single SELECT (or EXPLAIN) so no statement can write.
    """

    def __init__(self, lake: Lake) -> None:
        self.lake_root = lake.root
        self._lake = lake
        self._sources: tuple[list[str], list[str]] | None = None
        self._exact: tuple[bool, bool] | None = None
        self._tails: dict[str, dict[str, tuple[int, int]]] = {table: {} for table in TABLES}
        self._lock = lake.session.lock
        # The files last listed (tails with their identity), the models (None: all)
        # already searched for second copies over them, and whether the views skip some.
        self._file_set: object = None
        self._anchors: list[list[str]] = [[], []]
        # Whether the lake has renames, deletes and edits (see _define_views). Before the
        # first look, the usual answer (none): the views are bound once, in their plain
        # shape, and bound again only when the lake turns out to have some (binding them
        # all takes ~0.5 s).
        self._structure: tuple[bool, ...] | None = (False, False, False)
        self._copies_checked: set[str | None] = set()
        self._skipping = False
        self._con = lake.session.con
        for table in TABLES:
            self._con.execute(reader_query(f"set_{table}_checked"), {"files": []})
        try:
            # Creating the views reads the footers of the files they list.
            self._attempt(lambda: None, copies=_NO_CHECK)
        except BaseException:
            lake.session.close()
            raise
        engine.confine(self._con, self.lake_root)
        self._as_of: datetime | None = None

    def close(self) -> None:
        self._lake.session.close()

    def _set_as_of(self, as_of: datetime | None) -> None:
        if as_of == self._as_of:
            return
        if as_of is None:
            self._con.execute(reader_query("reset_as_of"))
        else:
            self._con.execute(reader_query("set_as_of"), {"moment": as_of.astimezone(timezone.utc)})
        self._as_of = as_of

    def _point_at_files(self) -> None:
        """Point the views at the tables' current files, refusing any no reader can trust.

        Small appended files go to the in-memory tail tables (reader.sql); the
        views read the others from the explicit lists in two variables. When
        every file holds each record once (no compaction leftovers from an older
        catalog), the views are defined without the per-key dedupe.
        """
        lake = self._lake
        listed = [lake.current_files(table) for table in TABLES]
        for table, (paths, _) in zip(TABLES, listed):
            found = lake.checked.first_problem_in(paths, table, lake.footers.columns)
            if found:
                raise LakeDamaged(found[1], path=found[0])
            if not any(ANCHOR.match(os.path.basename(p)) for p in paths):  # the views bind over the anchor
                raise AnchorMissing(lake=self.lake_root, table=table)
        exact = (listed[0][1], listed[1][1])
        tails = [self._tail_files(table, paths) for table, (paths, _) in zip(TABLES, listed)]
        versions, events = ([p for p in paths if p not in tail] for (paths, _), tail in zip(listed, tails))
        if exact != self._exact:
            # Creating a view binds it, reading the footer of every file it lists; bound
            # over the zero-row anchors alone that is cheap, and a query binds it again
            # over the files the variables below name.
            self._anchors = [[p for p in paths if ANCHOR.match(os.path.basename(p))] or paths for paths in (versions, events)]
            self._define_views(exact)
            self._exact = exact
            self._sources = None
            self._file_set = None
            self._skipping = False
        if (versions, events) != self._sources:
            self._set_files(versions, events)
        self._sources = (versions, events)
        for table, tail in zip(TABLES, tails):
            self._sync_tail(table, tail)
        file_set = (versions, events, tails)
        if file_set != self._file_set:
            self._file_set = file_set
            self._copies_checked.clear()
            if self._skipping:
                self._views(named_queries("reader.sql")["clear_skips"])
                self._skipping = False
            self._con.execute(reader_query("hold_structure"))
            structure = tuple(self._con.execute(reader_query("structure_kinds")).fetchall()[0])
            if structure != self._structure:
                # Renames or deletes appeared (or the first look): the views that map names
                # and hide deleted records are defined only when the lake has some.
                self._structure = structure
                self._define_views(self._exact)
                self._set_files(versions, events)

    def _define_views(self, exact: tuple[bool, bool] | None) -> None:
        """(Re)define the stable views over the files last listed, leaving out the work of
        renames and deletes while the lake has none (see reader.sql, plain_names)."""
        assert exact is not None
        queries = named_queries("reader.sql")
        self._views(views_sql(*self._anchors, exact=exact, checked=True))
        self._views(queries["create_tails"])
        self._con.execute(queries["create_skips"])
        renames, deletes, edits = self._structure if self._structure is not None else (True, True, True)
        if not renames:
            self._views(queries["plain_names"])
        if not deletes:
            self._views(queries["plain_deletes"])
        if not edits:
            self._views(queries["plain_edits"])

    def _views(self, sql: str) -> None:
        """Run statements that (re)define views: unbound where DuckDB can (see :func:`unbound`)."""
        self._con.execute(unbound(sql) if engine.defers_binding(self._con) else sql)

    def _set_files(self, versions: list[str], events: list[str]) -> None:
        for table, paths in zip(TABLES, (versions, events)):
            self._con.execute(reader_query(f"set_{table}_files"), {"files": paths})
            self._con.execute(reader_query(f"set_{table}_checked"), {"files": [p for p in paths if self._lake.rows_checked(p)]})
        if self._skipping:
            self._views(reader_query("skip_copies"))

    def _check_copies(self, model: str | None) -> None:
        """Look for second copies of the records ``model`` has (None: of every record)
        among the files listed; once per model and listing (see catalog.queries.copies).
        An identical copy is left out of the views from then on: the record reads once."""
        if None in self._copies_checked or model in self._copies_checked:
            return
        skips = copies.find_copies(self._con, self._sources or ([], []), model, self._relative)
        copies.skip(self._con, skips)
        if skips and not self._skipping:
            self._views(reader_query("skip_copies"))
            self._skipping = True
        self._copies_checked.add(model)

    def _relative(self, path: str) -> str:
        return os.path.relpath(path, self.lake_root).replace(os.sep, "/")

    def _tail_files(self, table: str, paths: list[str]) -> dict[str, tuple[int, int]]:
        """The small appended files among ``paths`` (with their identity: inode and
        modification time, which a rewrite in place changes) that the tail tables hold."""
        out = {}
        for path in paths:
            if not os.path.basename(path).startswith("part-") or not self._lake.checked.current_columns_only(path, table):
                continue
            found = self._lake.identity(path)
            if found is None:
                continue  # removed by a compaction: _attempt sees its marker and runs again
            size, mtime_ns, inode = found
            if size <= TAIL_BYTES:
                out[path] = (inode, mtime_ns)
        return out

    def _sync_tail(self, table: str, files: dict[str, tuple[int, int]]) -> None:
        """Make ``table``'s tail table hold exactly the rows of ``files``: read what is new
        (or was rewritten in place), drop what left. Each statement is all or nothing."""
        held = self._tails[table]
        stale = [p for p, ident in held.items() if files.get(p) != ident]
        new = [p for p, ident in files.items() if held.get(p) != ident]
        if stale:
            self._con.execute(reader_query(f"{table}_tail_drop"), {"files": stale})
            for path in stale:
                del held[path]
        if new:
            self._con.execute(reader_query(f"{table}_tail_add"), {"files": new})
            held.update((p, files[p]) for p in new)

    def _attempt(self, work: Any, *, relist: bool = True, copies: object = None) -> Any:
        """Run ``work`` over a consistent view of the lake's files.

        Damaged files are refused before DuckDB sees them. A file removed by a
        compaction between DuckDB's listing and its reading makes DuckDB fail:
        the work is run again. A compaction that removed files while the work
        ran may have hidden a record from the listing: the work is run again.
        Without ``relist``, the files as last listed are read (see :meth:`query`).
        ``copies`` is the model whose records the work reads (None: any), looked
        for second copies first (see :meth:`_check_copies`).
        """
        import duckdb  # (loaded with the connection: named here for its errors)

        deadline = time.monotonic() + _RETRY_SECONDS
        reruns = 0
        pause = 0.005
        relist = relist or self._sources is None
        while True:
            before = self._lake.markers()
            try:
                if relist:
                    self._point_at_files()
                relist = True
                if copies is not _NO_CHECK:
                    self._check_copies(copies)  # type: ignore[arg-type]
                result = work()
            except (duckdb.IOException, duckdb.InvalidInputException) as exc:
                message = str(exc)
                if any(m in message for m in _VANISHED) and time.monotonic() < deadline:
                    time.sleep(pause)
                    pause = min(pause * 2, 0.2)
                    continue
                damaged = damaged_file(message, self.lake_root)
                if damaged:
                    raise LakeDamaged(_why_damaged(damaged) or first_line(message), path=damaged) from None
                raise
            except (RuntimeError, duckdb.Error) as exc:
                if engine.is_interrupt(exc):   # (Ctrl+C while DuckDB worked: see catalog.engine)
                    raise KeyboardInterrupt from None
                raise
            engine.after_query()
            if self._lake.markers() != before and reruns < _MAX_RERUNS:
                reruns += 1
                continue
            return result

    def _arrow(self, sql: str, params: dict[str, Any] | None, as_of: datetime | None) -> pa.Table:
        with self._lock:
            self._set_as_of(as_of)
            return self._attempt(lambda: self._con.sql(sql, params=params or None).to_arrow_table())

    def _run(
        self, sql: str, params: dict[str, Any] | None, as_of: datetime | None, *, relist: bool = True, model: str | None = None
    ) -> tuple[list[str], list[dict[str, Any]]]:
        """(column names, a dict per row), as Python values straight from DuckDB."""

        def work() -> tuple[list[str], list[tuple[Any, ...]]]:
            result = self._con.sql(sql, params=params or None)
            return list(result.columns), result.fetchall()

        with self._lock:
            self._set_as_of(as_of)
            columns, rows = self._attempt(work, relist=relist, copies=model)
        return columns, [dict(zip(columns, row)) for row in rows]

    def query(self, name: str, as_of: datetime | None = None, *, relist: bool = True, **params: Any) -> list[dict[str, Any]]:
        """Run a named query from ``named.sql``.

        With ``relist=False`` it reads the files as last listed, skipping the look
        for new ones: for a question whose yes never turns into no (records are never
        removed, so a record found then is there now), asked again with a fresh
        listing only when the answer is no.
        """
        model = params.get("model") if name in ONE_MODEL else None
        return self._run(named_queries()[name], params, as_of, relist=relist, model=model)[1]

    def user_query(
        self, sql: str, as_of: datetime | None = None, params: dict[str, Any] | None = None
    ) -> tuple[list[str], list[dict[str, Any]]]:
        """Run one read-only statement a person typed (``params`` bound to its ``$name``
        placeholders); refuse anything else."""
        return self._user(sql, lambda: self._run(sql, params, as_of))

    def user_query_arrow(self, sql: str, as_of: datetime | None = None) -> pa.Table:
        """:meth:`user_query`, answered as an Arrow table (no Python objects per row)."""
        return self._user(sql, lambda: self._arrow(sql, None, as_of))

    def _user(self, sql: str, answer: Callable[[], T]) -> T:
        """``answer()`` if ``sql`` is one read-only statement; refusals and failures as CatalogErrors."""
        import duckdb

        with self._lock:
            check_read_only(self._con, sql)
            try:
                return answer()
            except duckdb.PermissionException as exc:
                raise QueryRefused(
                    "catalog sql reads only the lake's views and files: " + first_line(str(exc))
                ) from None
            except duckdb.Error as exc:
                raise QueryFailed(first_line(str(exc))) from None


def _why_damaged(path: str) -> str | None:
    """A plain account of what is wrong with a lake file DuckDB could not read."""
    table = "events" if f"{os.sep}events{os.sep}" in path else "versions"
    try:
        return file_problem(path, table)
    except OSError:
        return None
