"""The lake's two tables, declared once.

Every row carries ``schema_version``. A reader upgrades older rows in one place:
the ``versions`` and ``events`` views in ``queries/views.sql`` select every
column of the current schema, and each lake table folder keeps a zero-row
*anchor* file written with the current schema, so that DuckDB's
``union_by_name`` always yields every column, null where an older file lacks it.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from .fields import BY_NAME

if TYPE_CHECKING:
    import pyarrow as pa

# 2: versions and events gained ``origin``, ``imported_at`` and ``imported_by`` (imports);
# events gained ``description``, ``tags``, ``tags_deleted`` and ``renamed_from`` (the
# describe, tag, create and rename events). A row of version 1 reads with them null.
SCHEMA_VERSION = 2


def _given(name: str) -> tuple[str, str, bool]:
    """The column of a field a registrant gives: its type as ``fields.FIELDS`` declares it."""
    return name, BY_NAME[name].column, True


# Each table's columns: (name, type, nullable). The types are spelled here and turned
# into pyarrow types by _arrow_type, so that a reader needs no pyarrow to know the
# columns (``COLUMNS``, ``FAMILIES``) and pyarrow is imported only to write.
_DECLARED: dict[str, tuple[tuple[str, str, bool], ...]] = {
    "versions": (
        ("schema_version", "int32", False),
        ("model", "string", False),
        ("version", "int64", False),
        ("artifact_uri", "string", False),
        _given("artifact_sha256"),
        ("artifact_bytes", "int64", True),
        _given("owner"),
        _given("description"),
        _given("tags"),
        _given("code_repo"),
        _given("code_version"),
        ("code_dirty", "bool", True),
        _given("runtime_image"),
        _given("data_refs"),
        _given("parents"),  # parent: struct<model string, version int64, relation string>
        _given("metrics"),
        _given("params"),
        _given("dashboards"),
        ("created_at", "timestamp", False),
        ("created_by", "string", False),
        # Where an imported version came from (system, source, id, ...), and who
        # imported it when; created_at/created_by then keep the original's.
        ("origin", "map<string,string>", True),
        ("imported_at", "timestamp", True),
        ("imported_by", "string", True),
    ),
    "events": (
        ("schema_version", "int32", False),
        ("event_id", "string", False),
        ("at", "timestamp", False),
        ("actor", "string", False),
        ("model", "string", False),
        ("version", "int64", True),
        ("kind", "string", False),
        # The approval state the version is in after this event (null when the
        # event does not change it). Decided by the writer on the state its
        # decision followed in the model's decision sequence, so that state is
        # a plain "last non-null" over the events.
        ("state", "string", True),
        ("target", "string", True),
        ("note", "string", True),
        ("evidence", "string", True),  # JSON text
        # What a create, describe or tag event sets: the description (null with a
        # describe: cleared), the tags set and the tag keys deleted.
        ("description", "string", True),
        ("tags", "map<string,string>", True),
        ("tags_deleted", "list<string>", True),
        # A rename's event is the new name's (model) and says the old one here.
        ("renamed_from", "string", True),
        # As on versions: an imported decision keeps its original at/actor.
        ("origin", "map<string,string>", True),
        ("imported_at", "timestamp", True),
        ("imported_by", "string", True),
    ),
}

COLUMNS: dict[str, tuple[str, ...]] = {t: tuple(c[0] for c in cols) for t, cols in _DECLARED.items()}

_FAMILY = {"int32": "integer", "int64": "integer", "string": "text", "bool": "bool", "timestamp": "timestamp"}
# The kind of value each column holds (text, integer, float, timestamp, bool, map,
# list, struct), whatever its width or unit: what a file's column must match.
FAMILIES: dict[str, dict[str, str]] = {
    t: {name: _FAMILY.get(kind) or kind.split("<")[0] for name, kind, _ in cols} for t, cols in _DECLARED.items()
}


def _arrow_type(kind: str) -> pa.DataType:
    import pyarrow as pa

    return {
        "int32": pa.int32(),
        "int64": pa.int64(),
        "string": pa.string(),
        "bool": pa.bool_(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "map<string,string>": pa.map_(pa.string(), pa.string()),
        "map<string,double>": pa.map_(pa.string(), pa.float64()),
        "list<string>": pa.list_(pa.string()),
        "list<parent>": pa.list_(
            pa.struct([pa.field("model", pa.string()), pa.field("version", pa.int64()), pa.field("relation", pa.string())])
        ),
    }[kind]


@cache
def arrow_tables() -> dict[str, pa.Schema]:
    """The tables' pyarrow schemas (importing pyarrow: only writers and checks need them)."""
    import pyarrow as pa

    return {
        table: pa.schema([pa.field(name, _arrow_type(kind), nullable=nullable) for name, kind, nullable in cols])
        for table, cols in _DECLARED.items()
    }


def __getattr__(name: str) -> Any:
    """``TABLES``, ``VERSIONS`` and ``EVENTS``: the pyarrow schemas, built on first use."""
    if name == "TABLES":
        return arrow_tables()
    if name in ("VERSIONS", "EVENTS"):
        return arrow_tables()[name.lower()]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Lifecycle vocabulary shared by the registry and the views.
STATES = ("candidate", "approved", "rejected", "deprecated")
EVENT_KINDS = (
    "register",
    "approve",
    "reject",
    "deprecate",
    "deploy",
    "rollback",
    "annotate",
    "redact",
    "create",
    "undeploy",
    "tag",
    "describe",
    "delete",
    "rename",
)

# Each column as DuckDB types it when it reads the lake's Parquet: the views declare
# every current column through these, so an older lake (whose files and anchor lack
# the newer columns) reads with them null (queries/sql.py).
_DUCKDB = {
    "int32": "INTEGER", "int64": "BIGINT", "string": "VARCHAR", "bool": "BOOLEAN",
    "timestamp": "TIMESTAMP WITH TIME ZONE", "map<string,string>": "MAP(VARCHAR, VARCHAR)",
    "map<string,double>": "MAP(VARCHAR, DOUBLE)", "list<string>": "VARCHAR[]",
    "list<parent>": "STRUCT(model VARCHAR, \"version\" BIGINT, relation VARCHAR)[]",
}


def duckdb_columns(table: str) -> tuple[tuple[str, str], ...]:
    """(name, DuckDB type) of each column of ``table``, in order."""
    return tuple((name, _DUCKDB[kind]) for name, kind, _ in _DECLARED[table])
