"""``resolve``: what serving code calls, answered from the model's resolve document.

A model's answers are read from its resolve document (``catalog.lake.serving``):
one small file, trusted while the decision after the one it reflects does not
exist (one stat per lookup, one HEAD on an object store). Where there is none, or
it is not current, or it cannot say (a pin it does not hold, an as-of question),
the answer comes from the query path: an in-memory index dropped whenever a file
enters or leaves the lake (the tables' stamps tell: two stat calls on a folder, a
listing digest on an object store, whose stamps are exact and need no settle time),
and loaded again one model at a time with one filtered query.

The writers' side is here too: :func:`publish` writes a model's document after each
decision, :func:`pinning` adds a version's pin to it as it is registered, and
:func:`rebuild` writes the documents ``compact`` and ``doctor --repair`` find missing
or stale, all computed from the ``resolve_model`` query (the same views the query
path reads), so the two paths cannot drift apart.

Importing this module costs no DuckDB or pyarrow (``catalog resolve`` reads the
documents alone); the query path imports them when it is first taken.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from . import validate as check
from .errors import (
    CatalogError,
    InvalidInput,
    InvalidReference,
    ModelNotFound,
    NoApprovedVersion,
    TargetNotDeployed,
    VersionNotFound,
)
from .lake import serving
from .lake.storage import Storage

if TYPE_CHECKING:
    from .session import Session


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
    """What the query path knows, per model, for one state of the lake."""

    __slots__ = ("by_model", "stamp", "built_at", "exact")

    def __init__(self, stamp: tuple[int, int], built_at: float, exact: bool) -> None:
        self.by_model: dict[str, dict[tuple[str, str], str]] = {}
        self.stamp = stamp
        self.built_at = built_at
        self.exact = exact

    def fresh(self, stamp: tuple[int, int]) -> bool:
        from .lake import settled

        return stamp == self.stamp and settled(stamp, self.built_at, exact=self.exact)


class Documents:
    """Answers from the models' resolve documents, each kept in memory while it is current.

    :meth:`answer` returns the URI, raises the refusal the query path would raise,
    or returns None when the document cannot say (take the query path).
    """

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._docs: dict[str, serving.Document] = {}

    def answer(self, model: str, kind: str, key: str) -> str | None:
        doc = self._docs.get(model)
        if doc is None or not serving.current(self._storage, doc):
            doc = self._load(model)
            if doc is None:
                return None
        uri = doc.answer(kind, key)
        if uri is None and kind == "pin":
            doc = self._load(model)  # a version registered since: its registrant adds its pin
            uri = doc.answer(kind, key) if doc is not None else None
            if uri is None:
                return None  # a pin may be missing from a document (see catalog.lake.serving)
        if uri is not None:
            return uri
        if doc is None or doc.empty():
            return None  # which refusal depends on versions the document may not list
        if kind == "latest":
            raise NoApprovedVersion(model=model)
        raise TargetNotDeployed(model=model, target=key, detail="")

    def _load(self, model: str) -> serving.Document | None:
        doc = serving.load(self._storage, model)
        if doc is None:
            self._docs.pop(model, None)
        else:
            self._docs[model] = doc
        return doc


class Resolver:
    """Answers references for one session: from the resolve documents, else the query path."""

    def __init__(self, session: Session) -> None:
        self._s = session
        self._documents = Documents(session.lake.storage)
        self._index: _Index | None = None
        self._lock = threading.Lock()

    def resolve(self, ref: str, as_of: str | datetime | None = None) -> str:
        model, kind, key = parse_ref(ref)
        if as_of is None:
            uri = self._documents.answer(model, kind, key)
            if uri is not None:
                return uri
            answers = self._answers(model)
        else:
            from .session import moment

            answers = _answers(self._s.q("resolve_model", moment(as_of), model=model))
        return _pick(answers, model, kind, key)

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


def resolve_plain(storage: Storage, ref: str) -> str | None:
    """``ref`` answered from its model's resolve document alone (what the plain ``catalog
    resolve`` does before anything else), or None when the query path must answer."""
    model, kind, key = parse_ref(ref)
    return Documents(storage).answer(model, kind, key)


def _pick(answers: dict[tuple[str, str], str], model: str, kind: str, key: str) -> str:
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


def _answers(rows: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    return {(r["kind"], r["key"]): r["artifact_uri"] for r in rows}


# -- writing the documents ------------------------------------------------------------------


def publish(s: Session, model: str, decision: int, event: Mapping[str, Any] | None = None) -> None:
    """Write ``model``'s resolve document after its decision ``decision`` (whose event, and
    every earlier one's, is in the lake), from the ``resolve_model`` query. A failure
    leaves the document stale, which readers see: the decision stands either way.

    A rename is a decision of the old name that gives the new name its answers: the
    new name's document is written too, at the new name's own latest decision (read
    before the query). Until then the new name has none, or an empty one (it had no
    versions), which readers never take as an answer."""
    try:
        storage = s.lake.storage
        renamed = event.get("model") if event is not None and event.get("renamed_from") == model else None
        head = decision_head(storage, renamed) if renamed else 0
        rows = s.q("resolve_model", model=model)
        serving.publish(storage, serving.Document.from_rows(model, decision, rows))
        if renamed:
            # (replacing one at the same decision: it can only have been empty before the rename)
            serving.publish(storage, serving.Document.from_rows(renamed, head, s.q("resolve_model", model=renamed)),
                            replace_same=True)
    except (CatalogError, OSError):
        pass


def pinning(s: Session, row: dict[str, Any], write: Callable[[], None]) -> None:
    """``write()`` the registration ``row``, adding its version's pin to the model's resolve
    document read *before* the write (see catalog.lake.serving for why)."""
    storage, model, version = s.lake.storage, row["model"], row["version"]
    seen = first = None
    try:
        seen = serving.read(storage, model)
        first = seen is None and version == 1 and serving.current(storage, serving.Document(model, 0))
    except (CatalogError, OSError):
        seen = first = None
    write()
    if seen is not None or first:
        try:
            serving.add_pin(storage, seen, model, version, row["artifact_uri"], first=bool(first))
        except (CatalogError, OSError):
            pass


def rebuild(s: Session, *, models: Any = None, stale: bool = False) -> dict[str, serving.Document]:
    """Write the resolve document of every model that has none (with ``stale``, also of
    every one whose document is not current or unreadable); ``models`` narrows it to those.
    Returns the documents written, by model.

    The decision each document reflects is read *before* the query that computes it,
    so a decision made meanwhile makes it stale, never wrong."""
    storage = s.lake.storage
    wanted = set(all_answers(s)) if models is None else set(models)
    have = {name for name in storage.listdir(serving.FOLDER) if name.endswith(".json")}
    todo = []
    for model in sorted(wanted):
        there = serving.document_path(model).rsplit("/", 1)[-1] in have
        if not there or (stale and serving.load(storage, model) is None):
            todo.append(model)
    if not todo:
        return {}
    heads = {model: decision_head(storage, model) for model in todo}
    by_model = all_answers(s)
    written = {}
    for model in todo:
        doc = serving.Document.from_rows(model, heads[model], by_model.get(model, []))
        if serving.publish(storage, doc):
            written[model] = doc
    return written


def all_answers(s: Session) -> dict[str, list[dict[str, Any]]]:
    """The ``resolve_model`` rows of every model, by model (one query)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for row in s.q("resolve_all"):
        out.setdefault(row["model"], []).append(row)
    return out


def decision_head(storage: Storage, model: str) -> int:
    """The number of ``model``'s latest decision (0: none)."""
    folder = serving.decision_path(model, 0).rsplit("/", 1)[0]
    return max((int(n) for n in storage.listdir(folder) if n.isdigit()), default=0)


# -- checking the documents (catalog doctor) -------------------------------------------------


def check_documents(s: Session) -> list[tuple[str, str, str, str, str]]:
    """What is wrong with the resolve documents, as (severity, path, problem, action,
    model): missing (info: resolve takes the query path), stale or unreadable (warning:
    the same), answering otherwise than the events (error). Reads only.

    Each model's latest decision is read before the query that computes its answers,
    and read again before a difference is reported: a decision made meanwhile is not
    mistaken for a wrong document."""
    storage = s.lake.storage
    listed = {name for name in storage.listdir(serving.FOLDER) if name.endswith(".json")}
    models = set(all_answers(s))
    heads = {model: decision_head(storage, model) for model in models}
    answers = all_answers(s)
    out = []
    for model in sorted(models | set(answers)):
        path = serving.document_path(model)
        listed.discard(path.rsplit("/", 1)[-1])
        found = serving.read(storage, model)
        head = heads.get(model, decision_head(storage, model))
        if found is None:
            if storage.exists(path):
                out.append(("warning", path, f"the resolve document of '{model}' is unreadable or not this model's: "
                            "resolve answers it through a query, more slowly", _REWRITE, model))
            else:
                out.append(("info", path, f"'{model}' has no resolve document yet (a bulk load, or a lake from an "
                            "older catalog): resolve answers it through a query, more slowly", _WRITE, model))
            continue
        doc = found[0]
        if doc.decision < head:
            out.append(("warning", path, f"the resolve document of '{model}' reflects decision {doc.decision}, not the "
                        f"latest ({head}): its writer stopped between the event and the document; resolve answers "
                        "the model through a query until it is written again", _REWRITE, model))
            continue
        if doc.decision > head:
            continue  # a decision made while this ran: its writer writes the document
        expected = serving.Document.from_rows(model, head, answers.get(model, []))
        if _agrees(doc, expected) or decision_head(storage, model) != head:
            continue
        out.append(("error", path, f"the resolve document of '{model}' answers otherwise than its events "
                    f"({_difference(doc, expected)})", _REWRITE, model))
    for name in sorted(listed):
        if name.startswith("."):
            continue
        out.append(("warning", f"{serving.FOLDER}/{name}", "a file in the resolve documents' folder that is not the "
                    "document of a model with versions: resolve never reads it", "remove it if nobody else put it there",
                    ""))
    return out


_WRITE = "run `catalog compact` or `catalog doctor --repair` to write it"
_REWRITE = "run `catalog doctor --repair` to write it again from the events"


def repair_documents(s: Session, models: Any) -> set[str]:
    """Write the resolve documents of ``models`` again from the events (doctor --repair);
    returns the models whose document was written."""
    storage = s.lake.storage
    models = sorted(set(models))
    heads = {model: decision_head(storage, model) for model in models}
    answers = all_answers(s)
    done = set()
    for model in models:
        if serving.publish(storage, serving.Document.from_rows(model, heads[model], answers.get(model, [])),
                           replace_same=True):
            done.add(model)
        else:
            found = serving.read(storage, model)
            if found is not None and found[0].decision >= heads[model]:
                done.add(model)  # a newer (or identical) document is there
    return done


def _agrees(doc: serving.Document, expected: serving.Document) -> bool:
    """Whether ``doc`` answers as ``expected`` does (it may lack pins, never add or change one)."""
    return (dict(doc.targets) == dict(expected.targets) and doc.latest == expected.latest
            and all(expected.pins.get(v) == u for v, u in doc.pins.items()))


def _difference(doc: serving.Document, expected: serving.Document) -> str:
    for target in sorted(set(doc.targets) | set(expected.targets)):
        if doc.targets.get(target) != expected.targets.get(target):
            return f"@{target}: {doc.targets.get(target)} instead of {expected.targets.get(target)}"
    if doc.latest != expected.latest:
        return f"@latest: {doc.latest} instead of {expected.latest}"
    for version in sorted(doc.pins):
        if expected.pins.get(version) != doc.pins[version]:
            return f":{version}: {doc.pins[version]} instead of {expected.pins.get(version)}"
    return "?"
