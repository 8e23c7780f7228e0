"""A read snapshot of the lake that other engines read without the catalog: a Delta
Lake transaction log over each table folder (``versions/_delta_log/``,
``events/_delta_log/``).

A glob of a table folder is not the table: while a compaction is between renaming
its merged file in and removing the inputs, a record sits in two files, and an
engine that reads every ``*.parquet`` counts it twice (the catalog's own reader
skips the inputs the merged file names in its footer). The Delta log lists the
files that make up the table now, each record in exactly one of them, in a form
Spark, Trino/Athena, delta-rs, Polars, DataFusion and DuckDB already understand.

What the log holds:

- commit 0: ``protocol`` (reader 1, writer 2: no table features), ``metaData``
  (the table's columns, converted from ``catalog.schema``; no partitions) and one
  ``add`` per current file;
- each later commit: ``remove`` for the files that left the table (compaction
  merged them, redaction replaced them) and ``add`` for the files that entered it
  (a merged file, the files appended since the last commit). A changed schema
  gets a new ``metaData``.

``add`` actions carry no column statistics (``stats``): a redaction removes a
value from the files, and no copy of it may stay in the log. The anchors
(zero-row ``schema-v<N>.parquet``) are not listed: the log's ``metaData`` carries
the schema, and they hold no rows. No checkpoints are written (they would be
``*.parquet`` files inside the table folder), so a reader replays every commit;
there is one per compaction.

Who writes it: compaction (after its merged file is in and before the marker and
the removal of its inputs, see ``compaction.compact``), redaction (after the
rewritten files are in, before the old ones go), :meth:`Lake.finish_compactions`
(before it removes the leftovers of an interrupted compaction) and
``catalog snapshot``. Every file leaves a table folder only after a commit that
removed it from the log, so a process killed at any instant leaves a log whose
files all exist. A commit is created with ``Storage.create_exclusive``
(put-if-absent, what Delta needs on S3); two publishers racing for one version
number cannot both win, and the loser reads the log again and recomputes.
Because the publisher reads the log *before* it lists the folder, a file that
was removed after the listing was removed by a commit the loser will now see:
so no lock is needed to publish, and nothing is written when nothing changed.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from ..errors import LakeBusy, LakeDamaged, Refused
from ..schema import COLUMNS, arrow_tables
from .files import ANCHOR

if TYPE_CHECKING:
    import pyarrow as pa

    from .lake import Lake

LOG = "_delta_log"
PROTOCOL = {"minReaderVersion": 1, "minWriterVersion": 2}
_COMMIT = re.compile(r"^(\d{20})\.json$")
# How many times a publisher re-reads the log after losing a race for a version number.
ATTEMPTS = 20


def log_folder(table: str) -> str:
    """The lake path of a table's Delta log."""
    return f"{table}/{LOG}"


def commit_path(table: str, version: int) -> str:
    return f"{log_folder(table)}/{version:020d}.json"


# -- the schema ------------------------------------------------------------------------


def delta_type(kind: pa.DataType) -> Any:
    """A Delta Lake schema type (a name, or a dict for nested types) for a pyarrow type."""
    import pyarrow as pa

    simple = (
        (pa.types.is_int8, "byte"), (pa.types.is_int16, "short"), (pa.types.is_int32, "integer"),
        (pa.types.is_int64, "long"), (pa.types.is_float32, "float"), (pa.types.is_float64, "double"),
        (pa.types.is_boolean, "boolean"), (pa.types.is_date32, "date"),
        (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t), "string"),
        (lambda t: pa.types.is_binary(t) or pa.types.is_large_binary(t), "binary"),
    )
    for test, name in simple:
        if test(kind):
            return name
    if pa.types.is_timestamp(kind):
        # Delta's "timestamp" is microseconds since the epoch, adjusted to UTC; a
        # timestamp without a zone is "timestamp_ntz" (a table feature: reader 3).
        if kind.tz is None:
            raise ValueError("timestamps without a time zone need Delta's timestampNtz feature")
        return "timestamp"
    if pa.types.is_map(kind):
        return {"type": "map", "keyType": delta_type(kind.key_type), "valueType": delta_type(kind.item_type),
                "valueContainsNull": kind.item_field.nullable}
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return {"type": "array", "elementType": delta_type(kind.value_type), "containsNull": kind.value_field.nullable}
    if pa.types.is_struct(kind):
        return delta_struct([kind.field(i) for i in range(kind.num_fields)])
    raise ValueError(f"no Delta Lake type for {kind}")


def delta_struct(fields: Collection[pa.Field]) -> dict[str, Any]:
    return {
        "type": "struct",
        "fields": [{"name": f.name, "type": delta_type(f.type), "nullable": f.nullable, "metadata": {}} for f in fields],
    }


def schema_string(table: str) -> str:
    """The Delta ``schemaString`` of a table's current columns (catalog.schema)."""
    return json.dumps(delta_struct(list(arrow_tables()[table])), separators=(",", ":"))


# -- reading the log -----------------------------------------------------------------------


@dataclass
class Published:
    """What a table's Delta log says now."""

    version: int = -1  # the last commit's number; -1 when there is no log
    files: dict[str, int] = field(default_factory=dict)  # path (relative to the table folder) -> size
    table_id: str | None = None
    schema: str | None = None


def published(lake: Lake, table: str) -> Published:
    """Replay a table's Delta log (every commit: no checkpoints are written)."""
    storage = lake.storage
    commits = sorted(int(m.group(1)) for n, _ in storage.entries(log_folder(table)) if (m := _COMMIT.match(n)))
    out = Published()
    for version in commits:
        try:
            text = storage.read_bytes(commit_path(table, version)).decode()
        except FileNotFoundError:
            continue
        out.version = version
        for line in text.splitlines():
            if not line.strip():
                continue
            action = json.loads(line)
            if "add" in action:
                out.files[unquote(action["add"]["path"])] = int(action["add"].get("size", 0))
            elif "remove" in action:
                out.files.pop(unquote(action["remove"]["path"]), None)
            elif "metaData" in action:
                out.table_id = action["metaData"]["id"]
                out.schema = action["metaData"]["schemaString"]
    return out


def files_of_log(lake: Lake, table: str) -> list[str]:
    """Local paths of the files the table's Delta log lists now."""
    folder = lake.storage.local_path(table)
    return [os.path.join(folder, *p.split("/")) for p in sorted(published(lake, table).files)]


# -- writing it ------------------------------------------------------------------------------


def current(lake: Lake, table: str, *, strict: bool = True) -> dict[str, tuple[int, int]] | None:
    """The files that make up ``table`` now, each record in one of them: path relative to
    the table folder -> (size, modification time in ms). None when that set cannot be
    told (a compacted file written by an older catalog, or two compactions that replaced
    the same files: the catalog's reader then keeps one row per key itself, which a
    plain engine cannot).

    A file the catalog's reader would refuse (damaged, or foreign to the table: see
    ``catalog doctor``) raises LakeDamaged when ``strict``; otherwise it is left out,
    so that a compaction still publishes (and never leaves the log naming the inputs
    it removes): the catalog itself refuses to read until doctor moved it aside."""
    storage = lake.storage
    paths, exact = lake.current_files(table)
    if not exact:
        return None
    folder = storage.local_path(table)
    rows = [p for p in paths if not (os.path.dirname(p) == folder and ANCHOR.match(os.path.basename(p)))]
    while found := lake.checked.first_problem_in(rows, table):
        if strict:
            raise LakeDamaged(found[1], path=found[0])
        rows.remove(found[0])
    out = {}
    for path in rows:
        rel = os.path.relpath(path, folder).replace(os.sep, "/")
        try:
            size, mtime_ns, _ = storage.stat(f"{table}/{rel}")
        except FileNotFoundError:
            continue  # removed since the listing: by a commit this publisher will see
        out[rel] = (size, mtime_ns // 1_000_000)
    return out


def publish(
    lake: Lake,
    table: str,
    *,
    operation: str = "WRITE",
    rearranged: Mapping[str, Collection[str]] | None = None,
    strict: bool = False,
) -> int | None:
    """Bring the table's Delta log up to the table's current files; returns the number of
    the commit written, or None when the log already said so (or, unless ``strict``, when
    the current files cannot be told: see :func:`current`; ``strict`` raises then, and
    when a file is damaged, which is otherwise left out).

    ``rearranged`` maps a new file (relative to the table folder) to the files it holds
    the rows of and nothing else (a compaction's merged file and its inputs): when all
    of those were published, the commit marks both sides ``dataChange: false``, so a
    stream tailing the log does not read the rows again.
    """
    for _ in range(ATTEMPTS):
        log = published(lake, table)  # before the listing: see the module's docstring
        want = current(lake, table, strict=strict)
        if want is None:
            if strict:
                raise Refused(
                    f"the {table} table holds a compacted file that does not say which files it "
                    "replaced: run `catalog compact` first, then publish"
                )
            return None
        schema = schema_string(table)
        removed = sorted(set(log.files) - set(want))
        # A file changed in place (an older catalog's redaction) is added again: the
        # latest add of a path wins. (A remove and an add of one path in one commit is
        # not a valid Delta version.)
        added = sorted(p for p in want if log.files.get(p) != want[p][0])
        if log.version >= 0 and not removed and not added and log.schema == schema:
            return None
        now = int(time.time() * 1000)
        quiet: set[str] = set()
        for new, inputs in (rearranged or {}).items():
            if new in added and inputs and all(i in log.files and i in removed for i in inputs):
                quiet.update([new, *inputs])
        actions: list[dict[str, Any]] = [{"commitInfo": {
            "timestamp": now, "operation": operation, "operationParameters": {},
            "engineInfo": "model-catalog", "isBlindAppend": not removed,
        }}]
        if log.version < 0:
            actions.append({"protocol": dict(PROTOCOL)})
        if log.version < 0 or log.schema != schema:
            actions.append({"metaData": {
                "id": log.table_id or str(uuid.uuid4()), "name": table,
                "format": {"provider": "parquet", "options": {}},
                "schemaString": schema, "partitionColumns": [], "configuration": {}, "createdTime": now,
            }})
        for path in removed:
            actions.append({"remove": {
                "path": quote(path), "deletionTimestamp": now, "dataChange": path not in quiet,
                "extendedFileMetadata": True, "partitionValues": {}, "size": log.files[path],
            }})
        for path in added:
            actions.append({"add": {
                "path": quote(path), "partitionValues": {}, "size": want[path][0],
                "modificationTime": want[path][1], "dataChange": path not in quiet,
            }})
        body = "".join(json.dumps(a, separators=(",", ":")) + "\n" for a in actions).encode()
        if lake.storage.create_exclusive(commit_path(table, log.version + 1), body):
            return log.version + 1
    raise LakeBusy(f"the {table} table's Delta log kept changing while it was published; try again")


def publish_all(lake: Lake, *, strict: bool = True) -> dict[str, dict[str, Any]]:
    """Publish both tables (``catalog snapshot``): per table, the commit written (None when
    the log was current), the log's last commit and how many files it lists."""
    out: dict[str, dict[str, Any]] = {}
    for table in COLUMNS:
        lake._ensure_anchor(table)
        wrote = publish(lake, table, operation="WRITE", strict=strict)
        log = published(lake, table)
        out[table] = {"committed": wrote, "version": log.version, "files": len(log.files),
                      "log": f"{lake.storage.location.rstrip('/')}/{log_folder(table)}"}
    return out


def retire(lake: Lake, old: Collection[str]) -> None:
    """Finish a rewrite to new files (redaction, see rewrite.rewrite_to_new_file): publish
    each table concerned (the log drops the old files and adds the new ones), rewrite its
    compaction marker (so a reader whose listing overlapped the removals runs again), and
    only then remove the old files: the order compaction keeps."""
    from .lake import compaction_marker

    for table in sorted({p.split("/", 1)[0] for p in old}):
        publish(lake, table, operation="UPDATE")
        lake.storage.write_atomic(compaction_marker(table), uuid.uuid4().hex.encode())
    for path in old:
        lake.storage.remove(path)
