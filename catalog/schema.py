"""The lake's two tables, declared once.

Every row carries ``schema_version``. A reader upgrades older rows in one place:
the ``versions`` and ``events`` views in ``queries/views.sql`` select every
column of the current schema, and each lake table folder keeps a zero-row
*anchor* file written with the current schema, so that DuckDB's
``union_by_name`` always yields every column, null where an older file lacks it.
"""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = 1

_STR_MAP = pa.map_(pa.string(), pa.string())
_TS = pa.timestamp("us", tz="UTC")

VERSIONS = pa.schema(
    [
        pa.field("schema_version", pa.int32(), nullable=False),
        pa.field("model", pa.string(), nullable=False),
        pa.field("version", pa.int64(), nullable=False),
        pa.field("artifact_uri", pa.string(), nullable=False),
        pa.field("artifact_sha256", pa.string()),
        pa.field("artifact_bytes", pa.int64()),
        pa.field("owner", pa.string()),
        pa.field("description", pa.string()),
        pa.field("tags", _STR_MAP),
        pa.field("code_repo", pa.string()),
        pa.field("code_version", pa.string()),
        pa.field("code_dirty", pa.bool_()),
        pa.field("runtime_image", pa.string()),
        pa.field("data_refs", pa.list_(pa.string())),
        pa.field(
            "parents",
            pa.list_(
                pa.struct(
                    [
                        pa.field("model", pa.string()),
                        pa.field("version", pa.int64()),
                        pa.field("relation", pa.string()),
                    ]
                )
            ),
        ),
        pa.field("metrics", pa.map_(pa.string(), pa.float64())),
        pa.field("params", _STR_MAP),
        pa.field("dashboards", _STR_MAP),
        pa.field("created_at", _TS, nullable=False),
        pa.field("created_by", pa.string(), nullable=False),
    ]
)

EVENTS = pa.schema(
    [
        pa.field("schema_version", pa.int32(), nullable=False),
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("at", _TS, nullable=False),
        pa.field("actor", pa.string(), nullable=False),
        pa.field("model", pa.string(), nullable=False),
        pa.field("version", pa.int64()),
        pa.field("kind", pa.string(), nullable=False),
        # The approval state the version is in after this event (null when the
        # event does not change it). Decided by the writer under the model's
        # lock, so that state is a plain "last non-null" over the events.
        pa.field("state", pa.string()),
        pa.field("target", pa.string()),
        pa.field("note", pa.string()),
        pa.field("evidence", pa.string()),  # JSON text
    ]
)

TABLES: dict[str, pa.Schema] = {"versions": VERSIONS, "events": EVENTS}

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
)
