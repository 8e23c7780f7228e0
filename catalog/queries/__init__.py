"""The query layer: the stable views and named queries, run by DuckDB.

SQL lives in the ``.sql`` files beside this module and nowhere else. Values are
always bound as parameters; the only text spliced into SQL is a path or a
timestamp, and both go through :func:`quote_literal`. Results are materialised
(lists of dicts) before they leave this module.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, TypeVar

import duckdb

if TYPE_CHECKING:
    import pyarrow as pa

    from ..lake import Lake

from .. import engine, validate
from ..errors import AnchorMissing, ConflictingCopies, LakeDamaged, QueryFailed, QueryRefused
from ..lake.lake import KEY, ORDER, ROW_GROUP_ROWS, ROWS_CHECKED
from ..lake.files import ANCHOR, REQUIRED, FileCheck, duckdb_family, file_problem
from ..schema import COLUMNS, EVENT_KINDS, STATES, arrow_tables

T = TypeVar("T")

# A function giving a table's current files and whether each record is in one of them.
FileLister = Callable[[str], tuple[list[str], bool]]

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.M)


def quote_literal(text: str) -> str:
    """A SQL string literal for ``text`` (the one place text enters SQL)."""
    return "'" + text.replace("'", "''") + "'"


@cache
def _sql_file(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


@cache
def named_queries(file: str = "named.sql") -> dict[str, str]:
    """Every query in a ``.sql`` file of ``-- name:`` sections (``named.sql`` by default), by name."""
    text = _sql_file(file)
    parts = _NAME.split(text)
    return {parts[i]: parts[i + 1].strip() for i in range(1, len(parts), 2)}


def files_literal(files: str | Sequence[str]) -> str:
    """A glob, or a list of paths, as the SQL value read_parquet takes."""
    if isinstance(files, str):
        return quote_literal(files)
    return "[" + ", ".join(map(quote_literal, files)) + "]"


_ONE_PER_KEY = {"versions": "DISTINCT ON (model, version)", "events": "DISTINCT ON (model, event_id)"}


def _text_list(values: Sequence[str]) -> str:
    return "(" + ", ".join(quote_literal(v) for v in sorted(values)) + ")"


def _name_rule(column: str) -> str:
    """SQL true when ``column`` holds a name validate.name accepts (or is null: the null
    rule speaks for that). The pattern and reserved names are validate's own."""
    pattern = validate._NAME.pattern.removeprefix("^").removesuffix("\\Z")
    return (
        f"({column} IS NULL OR (regexp_full_match({column}, {quote_literal(pattern)}) "
        f"AND split_part({column}, '.', 1) NOT IN {_text_list(validate._RESERVED)}))"
    )


def _shown(column: str) -> str:
    """SQL text: the value of ``column`` in single quotes, as a message shows it."""
    return "'''' || " + column + " || ''''"


def row_rules(table: str) -> list[tuple[str, str]]:
    """The one rule rows of ``table`` must keep to be read: (SQL condition true for a
    sound row, SQL text saying why a row is not). The views keep only rows meeting
    every condition; ``catalog doctor`` reports the rows they drop, with these reasons."""
    rules = [(f'"{c}" IS NOT NULL', quote_literal(f"null {c}")) for c in REQUIRED[table]]
    rules.append((_name_rule("model"), "'invalid model name ' || " + _shown("model")))
    rules.append(("(version IS NULL OR version >= 1)", "'version ' || version || ' is below 1'"))
    if table == "events":
        rules.append((f"(kind IS NULL OR kind IN {_text_list(EVENT_KINDS)})", "'unknown kind ' || " + _shown("kind")))
        rules.append((f"(state IS NULL OR state IN {_text_list(STATES)})", "'unknown state ' || " + _shown("state")))
        rules.append(
            (f"(target IS NULL OR ({_name_rule('target')} AND target <> 'latest'))", "'invalid target name ' || " + _shown("target"))
        )
    return rules


def sound_rows_sql(table: str, *, checked: bool = False) -> str:
    """A SQL condition true for the rows of ``table`` every reader reads (see row_rules).
    With ``checked``, rows of the files in the variable ``catalog_<table>_checked`` pass
    unchecked (compaction checked them: catalog.lake.lake.ROWS_CHECKED)."""
    rule = "\n  AND ".join(condition for condition, _ in row_rules(table))
    if not checked:
        return rule
    return f"(list_contains(getvariable('catalog_{table}_checked'), filename)\n  OR ({rule}))"


def row_problems_sql(table: str) -> str:
    """A SQL expression: why a row of ``table`` breaks row_rules ('; '-separated), or ''."""
    parts = [f"CASE WHEN NOT coalesce({condition}, false) THEN {why} END" for condition, why in row_rules(table)]
    return "concat_ws('; ', " + ", ".join(parts) + ")"


def views_sql(
    versions_files: str | Sequence[str],
    events_files: str | Sequence[str],
    *,
    exact: tuple[bool, bool] = (False, False),
    checked: bool = False,
) -> str:
    """The definitions of every stable view, ready for any DuckDB client.

    Each table is read from a glob or an explicit list of files. ``exact`` says,
    per table, that the files hold each record once (see Lake.current_files), so
    the views need not keep one row per key; through a glob they must. With
    ``checked`` (the catalog's reader), the rows of the files listed in the variable
    ``catalog_<table>_checked`` (compacted files whose rows compaction checked) are
    not checked again.
    """
    text = (
        _sql_file("views.sql")
        .replace("{versions_files}", files_literal(versions_files))
        .replace("{events_files}", files_literal(events_files))
    )
    for table, known in zip(_TABLES, exact):
        text = text.replace("{%s_one_per_key}" % table, "" if known else _ONE_PER_KEY[table])
        text = text.replace("{%s_sound}" % table, sound_rows_sql(table, checked=checked))
    return text


def timestamp_literal(moment: datetime) -> str:
    return "TIMESTAMPTZ " + quote_literal(moment.astimezone(timezone.utc).isoformat())


# Errors DuckDB raises when a file vanished between its listing and its reading
# (a compaction removed it): the query is simply run again, for up to this long.
_VANISHED = ("No such file", "No files found that match", "cannot open file", "Could not open file")
_RETRY_SECONDS = 10.0
# How often a query is run again because a compaction removed files while it ran.
_MAX_RERUNS = 20
_TABLES = ("versions", "events")

_READ_ONLY_TYPES = ("SELECT",)
# Named queries that read the rows of their $model alone: a second copy of a record
# is looked for in that model only. Every other read (a whole-lake view, lineage,
# catalog sql) looks across the whole lake first.
ONE_MODEL = frozenset({
    "model_exists", "max_version", "version", "model_versions", "models", "model_deployments", "deployment",
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

    The connection may read only inside the lake folder, cannot load
    extensions, and cannot change its own configuration; :meth:`user_query`
    further accepts a single SELECT (or EXPLAIN) so no statement can write.
    """

    def __init__(self, lake: Lake) -> None:
        self.lake_root = lake.root
        self._list_files: FileLister = lake.current_files
        self._rows_checked: Callable[[str], bool] = lake.rows_checked
        self._sources: tuple[list[str], list[str]] | None = None
        self._exact: tuple[bool, bool] | None = None
        self._tails: dict[str, dict[str, tuple[int, int]]] = {table: {} for table in _TABLES}
        self._lock = threading.RLock()
        self._files: FileCheck = lake.checked
        # The files last listed (tails with their identity), the models (None: all)
        # already searched for second copies over them, and whether the views skip some.
        self._file_set: object = None
        self._copies_checked: set[str | None] = set()
        self._skipping = False
        self._con = engine.connect()
        # Footers and file checks go through this connection too: a process that only
        # reads (serving code calling resolve) never imports pyarrow.
        lake.read_footer = self._footer
        self._con.execute(
            "SET VARIABLE catalog_versions_checked = []::VARCHAR[]; SET VARIABLE catalog_events_checked = []::VARCHAR[]"
        )
        try:
            # Creating the views reads the footers of the files they list.
            self._attempt(lambda: None, copies=_NO_CHECK)
        except BaseException:
            self._con.close()
            raise
        engine.confine(self._con, self.lake_root)
        self._as_of: datetime | None = None

    def close(self) -> None:
        self._con.close()

    def _set_as_of(self, as_of: datetime | None) -> None:
        if as_of == self._as_of:
            return
        if as_of is None:
            self._con.execute("RESET VARIABLE catalog_as_of")
        else:
            self._con.execute(f"SET VARIABLE catalog_as_of = {timestamp_literal(as_of)}")
        self._as_of = as_of

    def _point_at_files(self) -> None:
        """Point the views at the tables' current files, refusing any no reader can trust.

        Small appended files go to the in-memory tail tables (reader.sql); the
        views read the others from the explicit lists in two variables. When
        every file holds each record once (no compaction leftovers from an older
        catalog), the views are defined without the per-key dedupe.
        """
        listed = [self._list_files(table) for table in _TABLES]
        for table, (paths, _) in zip(_TABLES, listed):
            found = self._files.first_problem_in(paths, table, self._columns_of)
            if found:
                raise LakeDamaged(found[1], path=found[0])
            if not any(ANCHOR.match(os.path.basename(p)) for p in paths):  # the views bind over the anchor
                raise AnchorMissing(lake=self.lake_root, table=table)
        exact = (listed[0][1], listed[1][1])
        tails = [self._tail_files(table, paths) for table, (paths, _) in zip(_TABLES, listed)]
        versions, events = ([p for p in paths if p not in tail] for (paths, _), tail in zip(listed, tails))
        if exact != self._exact:
            # Creating a view binds it, reading the footer of every file it lists; bound
            # over the zero-row anchors alone that is cheap, and a query binds it again
            # over the files the variables below name.
            anchors = [[p for p in paths if ANCHOR.match(os.path.basename(p))] or paths for paths in (versions, events)]
            self._con.execute(views_sql(*anchors, exact=exact, checked=True))
            self._con.execute(named_queries("reader.sql")["create_tails"])
            self._con.execute(named_queries("reader.sql")["create_skips"])
            self._exact = exact
            self._sources = None
            self._file_set = None
            self._skipping = False
        if (versions, events) != self._sources:
            checked = [[p for p in paths if self._rows_checked(p)] for paths in (versions, events)]
            self._con.execute(
                f"SET VARIABLE catalog_versions_files = {files_literal(versions)}; "
                f"SET VARIABLE catalog_events_files = {files_literal(events)}; "
                f"SET VARIABLE catalog_versions_checked = {files_literal(checked[0])}::VARCHAR[]; "
                f"SET VARIABLE catalog_events_checked = {files_literal(checked[1])}::VARCHAR[]"
            )
        self._sources = (versions, events)
        for table, tail in zip(_TABLES, tails):
            self._sync_tail(table, tail)
        file_set = (versions, events, tails)
        if file_set != self._file_set:
            self._file_set = file_set
            self._copies_checked.clear()
            if self._skipping:
                self._con.execute(named_queries("reader.sql")["clear_skips"])
                self._skipping = False

    def _check_copies(self, model: str | None) -> None:
        """Look for second copies of the records ``model`` has (None: of every record)
        among the files listed; once per model and listing.

        An identical copy (a file copied under another name) is left out of the
        views from then on: the record reads once. Copies that differ raise
        ConflictingCopies naming both files: no read of that record guesses which
        is right. Only the key columns are grouped, so a look costs one scan of
        the model's rows (or the table's); the content is hashed for repeated keys alone.
        """
        if None in self._copies_checked or model in self._copies_checked:
            return
        queries = {
            name: text.replace("{versions_sound}", sound_rows_sql("versions", checked=True)).replace(
                "{events_sound}", sound_rows_sql("events", checked=True)
            )
            for name, text in named_queries("reader.sql").items()
        }
        scope = "all" if model is None else "of"
        skips = []
        for table, sources in zip(_TABLES, self._sources or ([], [])):
            if not sources:
                continue  # no file yet (a lake being created): nothing a read could show twice
            params = {} if model is None else {"model": model}
            # The keys held twice first (key columns only: what every look costs), then
            # the copies of those alone, with their files and content.
            repeated = [k for (k,) in self._con.execute(queries[f"{table}_repeated_{scope}"], params).fetchall()]
            if not repeated:
                continue
            found = {"keys": repeated if model else [], "hashes": [] if model else repeated}
            for key, key_model, version, files, contents in self._con.execute(queries[f"{table}_copies"], found).fetchall():
                if len(set(contents)) > 1:
                    other = next(f for f, c in zip(files, contents) if c != contents[0])
                    raise ConflictingCopies(
                        table=table,
                        what=f"version {version} of '{key_model}'" if table == "versions" else f"event {key}",
                        first=self._relative(files[0]),
                        second=self._relative(other),
                    )
                later = [f for f in files if f != files[0]]
                if later:
                    skips.append((table, later, key, key_model, version))
        for table, later, key, key_model, version in skips:
            if table == "versions":
                self._con.execute(queries["versions_skip_add"], {"files": later, "model": key_model, "version": version})
            else:
                self._con.execute(queries["events_skip_add"], {"files": later, "key": key})
        if skips and not self._skipping:
            self._con.execute(queries["skip_copies"])
            self._skipping = True
        self._copies_checked.add(model)

    def _relative(self, path: str) -> str:
        return os.path.relpath(path, self.lake_root).replace(os.sep, "/")

    def _tail_files(self, table: str, paths: list[str]) -> dict[str, tuple[int, int]]:
        """The small appended files among ``paths`` (with their identity: inode and
        modification time, which a rewrite in place changes) that the tail tables hold."""
        out = {}
        for path in paths:
            if not os.path.basename(path).startswith("part-") or not self._files.current_columns_only(path, table):
                continue
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue  # removed by a compaction: _attempt sees its marker and runs again
            if st.st_size <= TAIL_BYTES:
                out[path] = (st.st_ino, st.st_mtime_ns)
        return out

    def _sync_tail(self, table: str, files: dict[str, tuple[int, int]]) -> None:
        """Make ``table``'s tail table hold exactly the rows of ``files``: read what is new
        (or was rewritten in place), drop what left. Each statement is all or nothing."""
        held = self._tails[table]
        stale = [p for p, ident in held.items() if files.get(p) != ident]
        new = [p for p, ident in files.items() if held.get(p) != ident]
        queries = named_queries("reader.sql")
        if stale:
            self._con.execute(queries[f"{table}_tail_drop"], {"files": stale})
            for path in stale:
                del held[path]
        if new:
            self._con.execute(queries[f"{table}_tail_add"], {"files": new})
            held.update((p, files[p]) for p in new)

    def _columns_of(self, paths: list[str]) -> dict[str, list[tuple[str, str]]]:
        """The top-level columns (name, kind of value) of each Parquet file at ``paths``,
        read from their footers in one query; {} when one cannot be read (each is then
        checked alone, see FileCheck)."""
        try:
            rows = self._con.execute(named_queries("reader.sql")["file_columns"], {"files": paths}).fetchall()
        except duckdb.Error:
            return {}
        out: dict[str, list[tuple[str, str]]] = {}
        left: dict[str, list[int]] = {}  # per file, the children still to come at each depth
        for file, name, children, duckdb_type in rows:
            stack = left.setdefault(file, [])
            if stack and len(stack) == 1:  # a child of the root: a column
                out.setdefault(file, []).append((name, duckdb_family(duckdb_type or "")))
            if stack:
                stack[-1] -= 1
            if children:
                stack.append(children)
            while stack and stack[-1] == 0:
                stack.pop()
        return out

    def _footer(self, path: str) -> tuple[dict[bytes, bytes], int]:
        """A Parquet file's key/value metadata and row count (catalog.lake.FooterReader)."""
        with self._lock:
            try:
                rows, pairs = self._con.execute(named_queries("reader.sql")["footer"], {"file": path}).fetchall()[0]
            except duckdb.Error as exc:
                if not os.path.exists(path):
                    raise FileNotFoundError(path) from None
                raise ValueError(_first_line(str(exc))) from None
        return {p["key"]: p["value"] for p in pairs or []}, int(rows)

    def _markers(self) -> tuple[bytes, ...]:
        """What compaction last wrote before removing files (see catalog.lake.lake)."""
        out = []
        for table in _TABLES:
            try:
                with open(f"{self.lake_root}/_compactions/{table}", "rb") as fh:
                    out.append(fh.read())
            except FileNotFoundError:
                out.append(b"")
        return tuple(out)

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
        deadline = time.monotonic() + _RETRY_SECONDS
        reruns = 0
        pause = 0.005
        relist = relist or self._sources is None
        while True:
            before = self._markers()
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
                damaged = _damaged_file(message, self.lake_root)
                if damaged:
                    raise LakeDamaged(_why_damaged(damaged) or _first_line(message), path=damaged) from None
                raise
            if self._markers() != before and reruns < _MAX_RERUNS:
                reruns += 1
                continue
            return result

    def _arrow(self, sql: str, params: dict[str, Any] | None, as_of: datetime | None) -> "pa.Table":
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

    def user_query(self, sql: str, as_of: datetime | None = None) -> tuple[list[str], list[dict[str, Any]]]:
        """Run one read-only statement a person typed; refuse anything else."""
        return self._user(sql, lambda: self._run(sql, None, as_of))

    def user_query_arrow(self, sql: str, as_of: datetime | None = None) -> "pa.Table":
        """:meth:`user_query`, answered as an Arrow table (no Python objects per row)."""
        return self._user(sql, lambda: self._arrow(sql, None, as_of))

    def _user(self, sql: str, answer: Callable[[], T]) -> T:
        """``answer()`` if ``sql`` is one read-only statement; refusals and failures as CatalogErrors."""
        with self._lock:
            try:
                statements = self._con.extract_statements(sql)
            except duckdb.Error as exc:
                raise QueryFailed(_first_line(str(exc))) from None
            if len(statements) != 1:
                raise QueryRefused(
                    f"give exactly one statement (got {len(statements)}): catalog sql runs one read-only query"
                )
            kind = statements[0].type.name
            if kind == "EXPLAIN":
                # EXPLAIN ANALYZE runs the statement it explains: only a SELECT may be explained.
                kind = _explained_kind(sql)
            if kind not in _READ_ONLY_TYPES:
                raise QueryRefused(
                    f"catalog sql is read-only: {kind} statements are refused; "
                    "write a SELECT over the views (catalog sql --print-views lists them)"
                )
            try:
                return answer()
            except duckdb.PermissionException as exc:
                raise QueryRefused(
                    "catalog sql reads only the lake's views and files: " + _first_line(str(exc))
                ) from None
            except duckdb.Error as exc:
                raise QueryFailed(_first_line(str(exc))) from None


def _explained_kind(sql: str) -> str:
    """The type of the statement an EXPLAIN [ANALYZE] [(options)] wraps (e.g. "SELECT", "COPY")."""
    tokens = [(pos, kind) for pos, kind in duckdb.tokenize(sql) if kind != duckdb.token_type.comment]

    def word(i: int) -> str:
        if i >= len(tokens):
            return ""
        end = tokens[i + 1][0] if i + 1 < len(tokens) else len(sql)
        return sql[tokens[i][0]:end].strip().lower()

    i = 1 if word(0) == "explain" else 0
    if word(i) in ("analyze", "analyse"):
        i += 1
    if word(i) == "(" and word(i + 1) not in ("select", "with", "from", "values", "("):
        depth = 0
        while i < len(tokens):
            depth += {"(": 1, ")": -1}.get(word(i), 0)
            i += 1
            if depth == 0:
                break
    if i >= len(tokens):
        return "EXPLAIN"
    try:
        inner = engine.statements(sql[tokens[i][0]:])
    except duckdb.Error:
        return "EXPLAIN"
    return inner[0].type.name if len(inner) == 1 else "MULTI"


def _why_damaged(path: str) -> str | None:
    """A plain account of what is wrong with a lake file DuckDB could not read."""
    table = "events" if f"{os.sep}events{os.sep}" in path else "versions"
    try:
        return file_problem(path, table)
    except OSError:
        return None


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else message


def _damaged_file(message: str, lake_root: str) -> str | None:
    """The lake file a DuckDB error is about, if it is about one."""
    for match in re.finditer(r"(/[^\s\"'*]+\.parquet)", message):
        if match.group(1).startswith(lake_root):
            return match.group(1)
    return None


# What DuckDB may hold in memory while it sorts a compaction; beyond it, it spills
# to a temporary folder. (Its readers and Python's Arrow batches come on top.)
MERGE_MEMORY = "128MB"
MERGE_PARALLEL_BYTES = 16 * 2**20


def merge_files(table: str, paths: list[str], dest: str, metadata: dict[bytes, bytes], same_schema: bool = False) -> int:
    """Write the rows of a table's files to the Parquet file ``dest`` in :data:`ORDER`,
    each record once, with ``metadata`` in its footer; returns how many rows (compaction).

    DuckDB sorts within MERGE_MEMORY (spilling beyond it) and hands the rows over
    in batches that are written as they come, so compacting a large lake needs
    little more memory than a small one. Copies of a record (same key) sort next
    to each other: all but the first are dropped on the way when they are identical;
    copies that differ stop the merge (ConflictingCopies, naming both files) before
    anything replaces its inputs: compaction never picks one. ``same_schema`` says
    every file has the current columns, so they need not be matched up by name.
    """
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    order = ", ".join(f'"{c}"' for c in ORDER[table])
    columns = ", ".join(f'"{c}"' for c in COLUMNS[table])
    listing = "[" + ", ".join(quote_literal(p) for p in paths) + "]"
    # Each row's content hash and file come along, so that copies of a record that
    # differ are caught where they meet (next to each other in the sort).
    sql = (
        f"SELECT {columns}, hash({columns}) AS _content, filename AS _file, ({sound_rows_sql(table)}) AS _sound "
        f"FROM read_parquet({listing}, union_by_name = {not same_schema}, filename = true) ORDER BY {order}"
    )
    schema = arrow_tables()[table].with_metadata(metadata)
    rows = 0
    # Two threads read many small files twice as fast, but a large sort within the
    # budget needs every byte of it: only merges of small inputs get the second one.
    threads = 2 if sum(os.path.getsize(p) for p in paths) < MERGE_PARALLEL_BYTES else 1
    with tempfile.TemporaryDirectory(prefix="catalog-merge-") as spill:
        with engine.connect(threads=threads, memory_limit=MERGE_MEMORY, temp_directory=spill) as con, \
                pq.ParquetWriter(dest, schema, compression="zstd") as out:
            try:
                batches = con.sql(sql).to_arrow_reader(ROW_GROUP_ROWS)
                last: tuple[Any, ...] | None = None
                checked = True
                for batch in batches:
                    checked = checked and batch.num_rows == pc.sum(pc.fill_null(batch.column("_sound"), False)).as_py()
                    batch, last = _drop_copies(batch, table, last)
                    out.write_batch(batch.select(list(COLUMNS[table])).cast(schema), row_group_size=ROW_GROUP_ROWS)
                    rows += batch.num_rows
                if checked:  # every row keeps the readers' rules: they need not check them again
                    out.add_key_value_metadata({ROWS_CHECKED: b"1"})
            except duckdb.Error as exc:
                damaged = _damaged_file(str(exc), "/")
                if damaged:
                    raise LakeDamaged(_first_line(str(exc)), path=damaged) from None
                raise
    return rows


def _drop_copies(batch: "pa.RecordBatch", table: str, last: tuple[Any, ...] | None) -> tuple["pa.RecordBatch", tuple[Any, ...] | None]:
    """``batch`` without the rows whose key equals the previous row's (``last`` is the
    key, content hash and file of the row before the batch), and those of its last row.
    Raises ConflictingCopies when such a row's content differs from the previous row's."""
    import pyarrow as pa
    import pyarrow.compute as pc

    key = KEY[table]
    n = batch.num_rows
    if n == 0:
        return batch, last
    names = [*key, "_content", "_file"]

    def previous(i: int, name: str) -> pa.Array:
        column = batch.column(name)
        return pa.concat_arrays([pa.array([None if last is None else last[i]], column.type), column.slice(0, n - 1)])

    keep = None
    for i, name in enumerate(key):
        differs = pc.fill_null(pc.not_equal(batch.column(name), previous(i, name)), True)
        keep = differs if keep is None else pc.or_(keep, differs)
    other = pc.fill_null(pc.not_equal(batch.column("_content"), previous(len(key), "_content")), False)
    clash = pc.and_(pc.invert(keep), other)
    if pc.any(clash).as_py():
        row = pc.index(clash, True).as_py()
        files = previous(len(key) + 1, "_file")
        record = {name: batch.column(name)[row].as_py() for name in key}
        raise ConflictingCopies(
            table=table,
            what=f"version {record['version']} of '{record['model']}'" if table == "versions" else f"event {record['event_id']}",
            first=_in_lake(files[row].as_py()),
            second=_in_lake(batch.column("_file")[row].as_py()),
        )
    return batch.filter(keep), tuple(batch.column(name)[n - 1].as_py() for name in names)


def _in_lake(path: str) -> str:
    """A table file's lake path (``<table>/<name>``) from its absolute path."""
    return "/".join(path.replace(os.sep, "/").split("/")[-2:])
