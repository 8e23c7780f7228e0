"""``resolve``: what serving code calls, answered from an in-memory index.

The index holds, per model, the answer to every reference the model has; it is
dropped whenever a file enters or leaves the lake (the tables' stamps tell: two
stat calls on a folder, a listing digest on an object store, whose stamps are
exact and need no settle time), and loaded again one model at a time with one
filtered query.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any

from . import validate as check
from .errors import (
    InvalidInput,
    InvalidReference,
    ModelNotFound,
    NoApprovedVersion,
    TargetNotDeployed,
    VersionNotFound,
)
from .lake import settled
from .session import Session, moment


def parse_ref(ref: str) -> tuple[str, str, str]:
    """Split MODEL@TARGET / MODEL@latest / MODEL:VERSION into (model, kind, key), from the
    right: a name may hold '@' (never ':'), a target neither, so ``a@b@prod`` is target
    ``prod`` of model ``a@b`` and ``a@b:3`` is its version 3."""
    if not isinstance(ref, str):
        raise InvalidReference(value=ref)
    if ":" in ref:
        model, _, key = ref.rpartition(":")
        kind = "pin"
        if not key.isascii() or not key.isdigit() or int(key) < 1:
            raise InvalidReference(value=ref)
        key = str(int(key))
    elif "@" in ref:
        model, _, key = ref.rpartition("@")
        kind = "latest" if key == "latest" else "target"
    else:
        raise InvalidReference(value=ref)
    try:
        check.name(model)
        if kind == "target":
            check.target(key)
    except InvalidInput:
        raise InvalidReference(value=ref) from None
    return model, kind, key


class _Index:
    """What ``resolve`` knows, per model, for one state of the lake."""

    __slots__ = ("by_model", "stamp", "built_at", "exact")

    def __init__(self, stamp: tuple[int, int], built_at: float, exact: bool) -> None:
        self.by_model: dict[str, dict[tuple[str, str], str]] = {}
        self.stamp = stamp
        self.built_at = built_at
        self.exact = exact

    def fresh(self, stamp: tuple[int, int]) -> bool:
        return stamp == self.stamp and settled(stamp, self.built_at, exact=self.exact)


class Resolver:
    """Answers references for one session, keeping the index between calls."""

    def __init__(self, session: Session) -> None:
        self._s = session
        self._index: _Index | None = None
        self._lock = threading.Lock()

    def resolve(self, ref: str, as_of: str | datetime | None = None) -> str:
        model, kind, key = parse_ref(ref)
        when = moment(as_of)
        if when is None:
            answers = self._answers(model)
        else:
            answers = _answers(self._s.q("resolve_model", when, model=model))
        uri = answers.get((kind, key))
        if uri is not None:
            return uri
        if not answers:
            raise ModelNotFound(model=model)
        if kind == "latest":
            raise NoApprovedVersion(model=model)
        if kind == "pin":
            raise VersionNotFound(model=model, version=int(key))
        raise TargetNotDeployed(model=model, target=key, detail="")

    def _answers(self, model: str) -> dict[tuple[str, str], str]:
        """The model's answers from the in-memory index, loaded with one filtered query on
        first use and dropped whenever a file enters or leaves the lake (two stat calls)."""
        stamp = self._s.lake.stamp()
        index = self._index
        if index is None or not index.fresh(stamp):
            with self._lock:
                index = self._index = _Index(stamp, time.time(), self._s.lake.storage.exact_stamps)
        answers = index.by_model.get(model)
        if answers is None:
            answers = index.by_model[model] = _answers(self._s.q("resolve_model", model=model))
        return answers


def _answers(rows: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    return {(r["kind"], r["key"]): r["artifact_uri"] for r in rows}
