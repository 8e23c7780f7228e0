"""What ``Registry.register_many`` needs to load many versions fast and in little memory.

``register``'s checks spend most of their time in ``urllib.parse``.
:class:`LeanCheck` vouches, with a few string operations, for a record whose every field has the
plain shape (remote URIs that plainly carry no credential, printable text
within its limit, string tags...) and answers None for anything else, which
then goes through ``register``'s own checks: a bulk load therefore refuses
exactly what ``register`` refuses, with the same message.

:class:`Spill` keeps the checked rows column by column in an anonymous
temporary Arrow file until their version numbers are claimed, so a load holds
one chunk of rows in memory whatever its size; :class:`Registered` reads them
back as ``Version`` records only when asked.
"""

from __future__ import annotations

import bisect
import math
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any, overload

import pyarrow as pa
import pyarrow.compute as pc

from . import validate as check
from .errors import CatalogError
from .fields import BY_NAME, FIELDS
from .provenance import GitInfo
from .records import Parent, Version
from .schema import SCHEMA_VERSION, VERSIONS

# Columns known once the numbers are claimed (unless an import names them: null until then).
_LATER = ("version", "created_at")
SPILLED = pa.schema([f.with_nullable(True) if f.name in _LATER else f for f in VERSIONS])
# The C allocator gives back what a chunk used once it is freed; Arrow's default
# pool (mimalloc) keeps it, which raises the peak of a large load.
_POOL = pa.system_memory_pool()
_HEX64 = re.compile(r"[0-9a-fA-F]{64}\Z")
_KNOWN_KEYS = 10_000  # tag, param and metric names remembered as valid (they repeat)
# The fields LeanCheck vouches for, each the way its row in ``fields.FIELDS`` says; a record
# that sets a field the table does not let it vouch for takes register's checks.
_UNVOUCHED = tuple(f.name for f in FIELDS if not f.lean)
_LIMIT = {f.name: f.limit or check.MAX_TEXT for f in FIELDS}
_FREE = frozenset(f.name for f in FIELDS if f.credentials == "free")


class _Unsure(Exception):
    """The lean check cannot vouch for a record: it takes register's own checks."""


class LeanCheck:
    """``registering.prepare`` for plain records: the same row, or None when unsure."""

    def __init__(self, actor: str, git: Callable[[], GitInfo], parse_parent: Callable[[Any], Parent]) -> None:
        self._actor = actor
        self._git = git
        self._parse_parent = parse_parent
        self._names: set[str] = set()
        self._keys: set[str] = set()

    def row(self, model: Any, artifact_uri: Any, fields: Mapping[str, Any]) -> dict[str, Any] | None:
        try:
            return self._row(model, artifact_uri, fields)
        except _Unsure:
            return None

    def _row(self, model: Any, uri: Any, fields: Mapping[str, Any]) -> dict[str, Any]:
        get = fields.get
        if _UNVOUCHED and any(get(name) is not None for name in _UNVOUCHED):
            raise _Unsure
        if type(model) is not str or (model not in self._names and not self._valid_name(model)):
            raise _Unsure
        self._remote(uri)
        sha = get("artifact_sha256")
        if sha is not None:
            if type(sha) is not str or not _HEX64.match(sha):
                raise _Unsure
            sha = sha.lower()
        repo = _text(get("code_repo"), "code_repo")
        commit = _text(get("code_version"), "code_version")
        dirty = None
        if commit is None and get("capture_git"):
            found = self._git()
            commit, dirty = found.commit, found.dirty
            repo = repo or found.repo
        if repo and not check.plain_uri(repo):
            raise _Unsure
        refs = get("data_refs")
        if refs is None:
            refs = []
        elif type(refs) not in (list, tuple) or len(set(map(self._remote, refs))) != len(refs):
            raise _Unsure
        dashboards = self._mapping(get("dashboards"), _LIMIT["dashboards"])
        if not all(map(check.plain_uri, dashboards.values())):
            raise _Unsure
        row = {
            "schema_version": SCHEMA_VERSION,
            "model": model,
            "artifact_uri": uri,
            "artifact_sha256": sha,
            "artifact_bytes": None,
            "owner": _text(get("owner"), "owner"),
            "description": _text(get("description"), "description"),
            "tags": self._mapping(get("tags"), _LIMIT["tags"]),
            "code_repo": repo,
            "code_version": commit,
            "code_dirty": dirty,
            "runtime_image": _text(get("runtime_image"), "runtime_image"),  # no '@' nor '?': no credential
            "data_refs": list(refs),
            "parents": self._parents(get("parents")),
            "metrics": self._metrics(get("metrics")),
            "params": self._mapping(get("params"), _LIMIT["params"]),
            "dashboards": dashboards,
            "created_by": self._actor,
            "origin": None,
            "imported_at": None,
            "imported_by": None,
        }
        if _UNVOUCHED:
            row.update((name, BY_NAME[name].empty()) for name in _UNVOUCHED)
        return row

    def _valid_name(self, model: str) -> bool:
        try:
            check.name(model)
        except CatalogError:
            return False
        self._names.add(model)
        return True

    def _key(self, key: Any) -> None:
        if key in self._keys:
            return
        if type(key) is not str:
            raise _Unsure
        try:
            check.key(key, "")
        except CatalogError:
            raise _Unsure from None
        if len(self._keys) < _KNOWN_KEYS:
            self._keys.add(key)

    @staticmethod
    def _remote(uri: Any) -> str:
        """A URI ``register`` keeps as given: no credential, not a local path to hash or find."""
        if not check.plain_uri(uri) or not check.remote_uri(uri):
            raise _Unsure
        return uri

    def _mapping(self, values: Any, limit: int) -> dict[str, str]:
        if values is None:
            return {}
        if type(values) is not dict:
            raise _Unsure
        for key, value in values.items():
            self._key(key)
            if type(value) is not str or not _plain(value) or len(value) > limit:
                raise _Unsure
        return dict(values)  # a copy, as register makes: a caller may reuse its dict for the next record

    def _metrics(self, values: Any) -> dict[str, float]:
        if values is None:
            return {}
        if type(values) is not dict:
            raise _Unsure
        out = {}
        for key, value in values.items():
            self._key(key)
            if type(value) is int and abs(value) < 2**63:
                value = float(value)
            elif type(value) is not float or not math.isfinite(value):
                raise _Unsure
            out[key] = value
        return out

    def _parents(self, values: Any) -> list[dict[str, Any]]:
        if values is None:
            return []
        if type(values) not in (list, tuple):
            raise _Unsure  # a generator would be used up before register's checks see it
        try:
            parents = [self._parse_parent(p) for p in values]
        except (CatalogError, TypeError, ValueError):
            raise _Unsure from None
        if len({(p.model, p.version) for p in parents}) != len(parents):
            raise _Unsure
        return [{"model": p.model, "version": p.version, "relation": p.relation} for p in parents]


def _plain(value: str) -> bool:
    """Printable on one line (no control, format or line-break character: ``check.line``
    accepts it) and without '@' or '?' (``check.no_credentials`` has nothing to look at)."""
    return value.isprintable() and "@" not in value and "?" not in value


def _text(value: Any, field: str) -> str | None:
    """``check.text`` (and ``check.line``, ``check.no_credentials``) of ``field`` for the
    plain cases; free text may hold '@' and '?' outside an address (``://``)."""
    if value is None:
        return None
    if type(value) is not str or len(value) > _LIMIT[field]:
        raise _Unsure
    if not (_plain(value) or (field in _FREE and value.isprintable() and "://" not in value)):
        raise _Unsure
    return value if value.strip() else None


class Spill:
    """Checked rows, column by column, in an anonymous temporary Arrow file (removed
    when closed, or when the process dies): a load holds one chunk in memory."""

    def __init__(self, chunk: int = 2048) -> None:
        self._file = tempfile.TemporaryFile()
        # zstd: a quarter of the bytes for the claims' sync to flush; one thread: each
        # thread of Arrow's pool would keep memory of its own.
        options = pa.ipc.IpcWriteOptions(compression="zstd", use_threads=False)
        self._writer: pa.ipc.RecordBatchFileWriter | None = pa.ipc.new_file(self._file, SPILLED, options=options)
        self._reader: pa.ipc.RecordBatchFileReader | None = None
        self._take = itemgetter(*SPILLED.names)
        self._pending: list[tuple[Any, ...]] = []
        self._chunk = chunk
        self.numbers: list[pa.Array] = []

    def add(self, row: Mapping[str, Any]) -> None:
        self._pending.append(self._take(row))
        if len(self._pending) >= self._chunk:
            self._flush()

    def _flush(self) -> None:
        if self._pending and self._writer is not None:
            columns = zip(*self._pending)
            self._writer.write_batch(pa.record_batch(
                [pa.array(c, type=f.type, memory_pool=_POOL) for c, f in zip(columns, SPILLED)], schema=SPILLED
            ))
        self._pending = []

    def batches(self) -> Iterator[pa.RecordBatch]:
        """The rows, in the order added, a chunk at a time."""
        reader = self._read()
        for k in range(reader.num_record_batches):
            yield reader.get_batch(k)

    def batch(self, k: int) -> pa.RecordBatch:
        return self._read().get_batch(k)

    def _read(self) -> pa.ipc.RecordBatchFileReader:
        if self._reader is None:
            self._flush()
            assert self._writer is not None
            self._writer.close()
            self._writer = None
            self._reader = pa.ipc.open_file(self._file, memory_pool=_POOL)
        return self._reader

    def numbered(self, first: dict[str, int], now: datetime) -> Iterator[pa.RecordBatch]:
        """The rows as ``versions`` batches: each model numbered on from ``first[model]``
        in the order added (a row that names its number keeps it, and the next ones follow
        it), created at ``now`` unless a row says its original time; each batch's numbers
        are kept in :attr:`numbers`."""
        numbers = self.numbers = []
        following = dict(first)
        created_at = pa.scalar(now, VERSIONS.field("created_at").type)
        for batch in self.batches():
            column = []
            given = batch.column("version")
            explicit = given.to_pylist() if given.null_count < batch.num_rows else None
            for k, model in enumerate(batch.column("model").to_pylist()):
                if explicit is not None and explicit[k] is not None:
                    following[model] = explicit[k]
                column.append(following[model])
                following[model] += 1
            numbers.append(pa.array(column, pa.int64(), memory_pool=_POOL))
            columns = dict(zip(SPILLED.names, batch.columns))
            times = batch.column("created_at")
            now_column = pa.repeat(created_at, batch.num_rows, memory_pool=_POOL)
            columns.update(version=numbers[-1],
                           created_at=now_column if times.null_count == batch.num_rows else pc.coalesce(times, now_column))
            yield pa.record_batch([columns[f.name] for f in VERSIONS], schema=VERSIONS)

    def close(self) -> None:
        self._file.close()


class Registered(Sequence[Version]):
    """The versions a bulk load registered, in the order given: read back from its spill
    file one chunk at a time, since 100,000 ``Version`` records would take ~300 MB."""

    def __init__(self, spill: Spill, now: datetime, make: Callable[[dict[str, Any]], Version]) -> None:
        self._spill = spill
        self._now = now
        self._make = make
        self._starts = [0]  # each chunk's first index
        for chunk in spill.numbers:
            self._starts.append(self._starts[-1] + len(chunk))
        self._cached: tuple[int, list[Version]] = (-1, [])

    def __len__(self) -> int:
        return self._starts[-1]

    def __repr__(self) -> str:
        return f"<{len(self)} versions registered>"

    @overload
    def __getitem__(self, i: int) -> Version: ...
    @overload
    def __getitem__(self, i: slice) -> list[Version]: ...

    def __getitem__(self, i: int | slice) -> Version | list[Version]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError("register_many result index out of range")
        k = bisect.bisect_right(self._starts, i) - 1
        return self._chunk(k)[i - self._starts[k]]

    def _chunk(self, k: int) -> list[Version]:
        if self._cached[0] != k:
            rows = self._spill.batch(k).to_pylist()
            for row, number in zip(rows, self._spill.numbers[k].to_pylist()):
                row["version"] = number
                row["created_at"] = row["created_at"] or self._now
            self._cached = (k, [self._make(row) for row in rows])
        return self._cached[1]
