"""A few rows as an Arrow table, built from their buffers.

``pa.Table.from_pylist`` asks pyarrow's pandas shim whether each column is a pandas
object, which imports pandas when it is installed: ~50 MB and a few hundred ms
that a process appending one registration or one event (``Lake.append``,
``Lake.append_event``) would pay for nothing. :func:`table` builds the same table
from the rows' values with ``pa.Array.from_buffers`` (never asking about pandas)
for the column types the lake declares (``catalog.schema``), and leaves anything
else, a value of an unexpected kind included, to ``from_pylist``, whose result
(and refusal) is the reference: ``tests/test_lean.py`` holds the two to each other.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


class _Unbuilt(Exception):
    """A value this module does not build: ``from_pylist`` converts (or refuses) it."""


def table(rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    """The table ``pa.Table.from_pylist(rows, schema=schema)`` makes, without importing pandas."""
    import pyarrow as pa

    if sys.byteorder == "little":
        try:
            columns = [_array(field.type, [row.get(field.name) for row in rows]) for field in schema]
            return pa.Table.from_arrays(columns, schema=schema)
        except (_Unbuilt, OverflowError):
            pass
    return pa.Table.from_pylist(list(rows), schema=schema)


def flags() -> tuple[pa.BooleanScalar, pa.BooleanScalar]:
    """Arrow's true and false, for compute functions (given as Python values, they are
    converted by ``pa.scalar``, which asks about pandas too)."""
    import pyarrow as pa

    both = _array(pa.bool_(), [True, False])
    return both[0], both[1]


def _array(kind: pa.DataType, values: list[Any]) -> pa.Array:
    import pyarrow as pa

    n = len(values)
    valid = [v is not None for v in values]
    bitmap = _bits(valid) if not all(valid) else None
    nulls = n - sum(valid)
    t = pa.types
    if t.is_string(kind):
        data = [_text(v).encode() if v is not None else b"" for v in values]
        return pa.Array.from_buffers(kind, n, [bitmap, _offsets(len(d) for d in data), pa.py_buffer(b"".join(data))],
                                     null_count=nulls)
    if t.is_int32(kind) or t.is_int64(kind):
        code = "i" if t.is_int32(kind) else "q"
        return _fixed(kind, code, [_int(v) if v is not None else 0 for v in values], bitmap, nulls)
    if t.is_float64(kind):
        return _fixed(kind, "d", [_float(v) if v is not None else 0.0 for v in values], bitmap, nulls)
    if t.is_boolean(kind):
        return pa.Array.from_buffers(kind, n, [bitmap, _bits([_bool(v) for v in values])], null_count=nulls)
    if t.is_timestamp(kind) and kind.unit == "us" and kind.tz in ("UTC", "+00:00"):
        return _fixed(kind, "q", [_micros(v) if v is not None else 0 for v in values], bitmap, nulls)
    if t.is_map(kind):
        pairs = [list(_mapping(v).items()) if v is not None else [] for v in values]
        entries = pa.struct([kind.key_field, kind.item_field])
        flat = [p for each in pairs for p in each]
        keys = _array(kind.key_type, [k for k, _ in flat])
        items = _array(kind.item_type, [i for _, i in flat])
        if keys.null_count:
            raise _Unbuilt("a map key is null")
        child = pa.Array.from_buffers(entries, len(flat), [None], children=[keys, items])
        return pa.Array.from_buffers(kind, n, [bitmap, _offsets(len(p) for p in pairs)], null_count=nulls,
                                     children=[child])
    if t.is_list(kind):
        lists = [_sequence(v) if v is not None else [] for v in values]
        child = _array(kind.value_type, [x for each in lists for x in each])
        return pa.Array.from_buffers(kind, n, [bitmap, _offsets(len(x) for x in lists)], null_count=nulls,
                                     children=[child])
    if t.is_struct(kind):
        dicts = [_mapping(v) if v is not None else {} for v in values]
        children = [_array(f.type, [d.get(f.name) for d in dicts]) for f in kind]
        return pa.Array.from_buffers(kind, n, [bitmap], null_count=nulls, children=children)
    raise _Unbuilt(f"column type {kind}")


def _fixed(kind: pa.DataType, code: str, numbers: list[Any], bitmap: pa.Buffer | None, nulls: int) -> pa.Array:
    import pyarrow as pa

    return pa.Array.from_buffers(kind, len(numbers), [bitmap, pa.py_buffer(array(code, numbers).tobytes())],
                                 null_count=nulls)


def _offsets(lengths: Any) -> pa.Buffer:
    import pyarrow as pa

    out = array("i", [0])
    for length in lengths:
        out.append(out[-1] + length)
    return pa.py_buffer(out.tobytes())


def _bits(flags: list[bool]) -> pa.Buffer:
    import pyarrow as pa

    out = bytearray((len(flags) + 7) // 8)
    for i, flag in enumerate(flags):
        if flag:
            out[i >> 3] |= 1 << (i & 7)
    return pa.py_buffer(bytes(out))


def _text(value: Any) -> str:
    if type(value) is not str:
        raise _Unbuilt(type(value).__name__)
    return value


def _int(value: Any) -> int:
    if type(value) is not int:
        raise _Unbuilt(type(value).__name__)
    return value


def _float(value: Any) -> float:
    if type(value) not in (float, int):
        raise _Unbuilt(type(value).__name__)
    return float(value)


def _bool(value: Any) -> bool:
    if value is not None and type(value) is not bool:
        raise _Unbuilt(type(value).__name__)
    return bool(value)


def _micros(value: Any) -> int:
    if type(value) is not datetime or value.tzinfo is None:
        raise _Unbuilt("not an aware datetime")
    return (value - _EPOCH) // _MICROSECOND


def _mapping(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _Unbuilt(type(value).__name__)
    return value


def _sequence(value: Any) -> Sequence[Any]:
    if type(value) not in (list, tuple):
        raise _Unbuilt(type(value).__name__)
    return value
