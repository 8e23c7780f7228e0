"""What a file in a table folder is, and whether a reader can trust it.

One judgement shared by the query layer (which refuses to read a damaged lake),
compaction (which refuses to merge a damaged file) and ``catalog doctor``
(which reports and quarantines). Only the Parquet footer is read, so checking
a file costs a few tens of microseconds whatever its size.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from ..schema import COLUMNS, FAMILIES

if TYPE_CHECKING:
    import pyarrow as pa

PART = re.compile(r"^(part|compacted)-[0-9TZ]+-[0-9a-f]+\.parquet$")
ANCHOR = re.compile(r"^schema-v(\d+)\.parquet$")

# Columns every file of a table carries, in every schema version: without them a
# row cannot be placed (no key) or dated (no time), so the file is not a table file.
REQUIRED = {
    "versions": ("schema_version", "model", "version", "artifact_uri", "created_at", "created_by"),
    "events": ("schema_version", "event_id", "at", "actor", "model", "kind"),
}


def _family(kind: pa.DataType) -> str:
    """The kind of value a column holds, ignoring width, unit and field names."""
    import pyarrow as pa

    checks = (
        ("text", lambda t: pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)),
        ("integer", pa.types.is_integer),
        ("float", pa.types.is_floating),
        ("timestamp", pa.types.is_timestamp),
        ("bool", pa.types.is_boolean),
        ("map", pa.types.is_map),
        ("list", lambda t: pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t)),
        ("struct", pa.types.is_struct),
    )
    for family, test in checks:
        if test(kind):
            return family
    return str(kind)


def schema_problem(table: str, schema: pa.Schema) -> str | None:
    """Why a file with ``schema`` cannot belong to ``table``, or None when it can."""
    names = set(schema.names)
    missing = [c for c in REQUIRED[table] if c not in names]
    if missing:
        return f"wrong schema for the {table} table: it lacks column(s) {', '.join(missing)}"
    from ..schema import TABLES

    current = TABLES[table]
    for field in schema:
        index = current.get_field_index(field.name)
        if index >= 0 and _family(field.type) != _family(current.field(index).type):
            return (
                f"wrong schema for the {table} table: column {field.name} is {field.type}, "
                f"not {current.field(index).type}"
            )
    return None


def file_problem(path: str, table: str) -> str | None:
    """Why the Parquet file at ``path`` is unreadable or foreign to ``table``, or None.

    Raises FileNotFoundError when the file vanished (compaction removed it).
    """
    return _inspect(path, table)[0]


def _inspect(path: str, table: str) -> tuple[str | None, pa.Schema | None]:
    """(why the file cannot be trusted or None, its schema when readable)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    size = os.path.getsize(path)
    if size == 0:
        return "empty file (0 bytes), not Parquet", None
    try:
        schema = pq.read_schema(path)
    except FileNotFoundError:
        raise
    except (OSError, pa.ArrowException):
        return f"not readable as Parquet ({size} bytes): truncated or corrupt", None
    return schema_problem(table, schema), schema


class FileCheck:
    """Finds the table files a reader must not trust, remembering those found sound.

    Every ``*.parquet`` a table glob would read gets the footer and schema check
    (a footer read, whatever the file's size): a file with the catalog's own name but a foreign
    schema would otherwise be read silently, its columns cast or nulled. Table
    files never change schema once written (a redaction rewrites values only),
    so each is checked once per process, and compaction keeps their number small.
    """

    def __init__(self) -> None:
        # path -> the names of the file's columns, in order
        self._sound: dict[str, tuple[str, ...]] = {}

    def first_problem_in(self, paths: list[str], table: str, columns_of: ColumnReader | None = None) -> tuple[str, str] | None:
        """(path, problem) of the first of ``table``'s files at ``paths`` a reader must not trust.

        ``columns_of`` may read the columns of many files at once (the reader asks
        DuckDB, so that it needs no pyarrow); a file it cannot vouch for is checked
        alone with pyarrow, whose verdict (and wording) counts.
        """
        todo = [p for p in paths if p not in self._sound]
        if not todo:
            return None
        found = columns_of(todo) if columns_of is not None else {}
        for path in todo:
            columns = found.get(path)
            if columns is not None and _fits(table, columns):
                self._sound[path] = tuple(name for name, _ in columns)
                continue
            try:
                problem, schema = _inspect(path, table)
            except FileNotFoundError:
                continue
            if problem or schema is None:
                return path, problem or "unreadable"
            self._sound[path] = tuple(schema.names)
        return None

    def wrote(self, path: str, table: str) -> None:
        """Record that this process wrote ``path`` itself, with the current schema."""
        self._sound[path] = COLUMNS[table]

    def current_columns_only(self, path: str, table: str) -> bool:
        """Whether a file found sound holds no column the current schema lacks."""
        names = self._sound.get(path)
        return names is not None and _CURRENT_SET[table].issuperset(names)

    def current_schema(self, path: str, table: str) -> bool:
        """Whether a file found sound has exactly the current schema's columns, in order."""
        return self._sound.get(path) == COLUMNS[table]


_CURRENT_SET = {table: frozenset(names) for table, names in COLUMNS.items()}

# (column name, kind of value) of each file asked about; files it could not read are left out.
ColumnReader = Callable[[list[str]], Mapping[str, Sequence[tuple[str, str]]]]


def _fits(table: str, columns: Sequence[tuple[str, str]]) -> bool:
    """Whether columns (name, kind) hold every required one, each known one of its kind."""
    kinds = dict(columns)
    known = FAMILIES[table]
    return all(c in kinds for c in REQUIRED[table]) and all(known.get(n, k) == k for n, k in kinds.items())


def duckdb_family(duckdb_type: str) -> str:
    """The kind of value (as in schema.FAMILIES) of a DuckDB column type."""
    t = duckdb_type.upper()
    if t.endswith("]"):
        return "list"
    for prefix, family in (("MAP(", "map"), ("STRUCT(", "struct"), ("TIMESTAMP", "timestamp"), ("DECIMAL", "float")):
        if t.startswith(prefix):
            return family
    simple = {"VARCHAR": "text", "BOOLEAN": "bool", "FLOAT": "float", "DOUBLE": "float"}
    if t in simple:
        return simple[t]
    if t in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"):
        return "integer"
    return t
