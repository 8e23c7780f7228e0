"""Resolve documents: what ``MODEL@TARGET``, ``MODEL@latest`` and ``MODEL:N`` name, per
model, in one small JSON file that serving reads instead of querying the lake.

``_serving/<model>.json`` (the model's path segment, as for ``_claims`` and
``_decisions``) holds the answers of the ``resolve_model`` query for one model and
the number of the model's decision they reflect::

    {"format": 1, "model": "churn", "decision": 7,
     "targets": {"prod-eu": "s3://..."}, "latest": "s3://...", "pins": {"1": "s3://...", ...}}

The documents are derived: every decision writes its model's document after its
event is in the lake, every registration adds its version's pin, ``catalog compact``
writes the missing ones and ``catalog doctor`` checks them against the events
(``--repair`` rewrites them). Nothing depends on them being there or durable.

Why an answer read from a document is never stale
-------------------------------------------------
Targets and ``@latest`` change only by decisions, and a model's decisions are a
dense sequence ``_decisions/<model>/1, 2, ...`` (each created only if absent). A
document says it reflects decision ``n``: its writer computed it after the event
of decision ``n`` (and so of every decision before it) was in the lake. A reader
trusts it only while decision ``n + 1`` does not exist: one ``stat`` on a folder,
one ``HEAD`` on an object store. A crash between an event and its document leaves
a document that names an older decision while the next one exists: readers then
take the query path, until the model's next decision, ``compact`` or ``doctor
--repair`` writes it again. Writers replace a document by compare-and-swap and
never with one that reflects an older decision, so two writers on two machines
cannot put an older answer back.

Pins (``MODEL:N``) may be missing from a document (a version registered by a bulk
load, or whose registrant lost a race for the document): a missing pin sends the
reader to the query path, never to an error. A registrant adds its pin only to
the document it read *before* writing its version, compared and swapped: any
decision that could hide the version (a deletion) comes after the version is
written, so it has a higher number than that document, which readers then no
longer trust.

This module reads and writes documents through :class:`Storage` alone, and imports
neither DuckDB nor pyarrow: the plain ``catalog resolve`` reads it and nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from .. import validate as check
from .storage import Storage

FOLDER = "_serving"
FORMAT = 1
# How often a registrant tries to add its pin when other registrants of the same model
# replace the document first (a pin left out only sends its readers to the query path).
PIN_ATTEMPTS = 3



def document_path(model: str) -> str:
    """The lake path of ``model``'s resolve document (the name's path segment: any name
    MLflow accepts makes a safe, case-distinct file name)."""
    return f"{FOLDER}/{check.path_segment(model)}.json"


def decision_path(model: str, n: int) -> str:
    """The lake path of decision ``n`` of ``model``: ``Lake.decide``'s, without importing
    the lake's writer (tests/test_serving.py holds the two to each other)."""
    return f"_decisions/{check.path_segment(model)}/{n}"


class Document:
    """The answers of one model as of one of its decisions. (A plain class: dataclasses
    import ``inspect``, which the serving path would pay for at every start-up.)"""

    __slots__ = ("model", "decision", "targets", "latest", "pins")

    def __init__(self, model: str, decision: int, targets: Mapping[str, str] | None = None,
                 latest: str | None = None, pins: Mapping[int, str] | None = None) -> None:
        self.model = model
        self.decision = decision
        self.targets: Mapping[str, str] = dict(targets or {})
        self.latest = latest
        self.pins: Mapping[int, str] = dict(pins or {})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Document) and (self.model, self.decision) == (other.model, other.decision) \
            and self.same_answers(other)

    def __hash__(self) -> int:
        return hash((self.model, self.decision))

    def __repr__(self) -> str:
        return (f"Document({self.model!r}, {self.decision}, targets={dict(self.targets)!r}, latest={self.latest!r}, "
                f"pins={dict(self.pins)!r})")

    @classmethod
    def from_rows(cls, model: str, decision: int, rows: Iterable[Mapping[str, Any]]) -> Document:
        """The document of the rows of the ``resolve_model`` query (kind, key, artifact_uri)."""
        targets: dict[str, str] = {}
        pins: dict[int, str] = {}
        latest = None
        for row in rows:
            kind, key, uri = row["kind"], row["key"], row["artifact_uri"]
            if kind == "target":
                targets[key] = uri
            elif kind == "latest":
                latest = uri
            elif kind == "pin":
                pins[int(key)] = uri
        return cls(model, decision, targets, latest, pins)

    def answer(self, kind: str, key: str) -> str | None:
        """The artifact URI of a parsed reference (see ``resolving.parse_ref``), or None."""
        if kind == "target":
            return self.targets.get(key)
        if kind == "latest":
            return self.latest
        return self.pins.get(int(key))

    def empty(self) -> bool:
        return not (self.targets or self.latest or self.pins)

    def with_pin(self, version: int, uri: str) -> Document:
        return Document(self.model, self.decision, self.targets, self.latest, {**self.pins, version: uri})

    def same_answers(self, other: Document) -> bool:
        return (dict(self.targets), self.latest, dict(self.pins)) == (dict(other.targets), other.latest, dict(other.pins))

    def to_bytes(self) -> bytes:
        body = {
            "format": FORMAT, "model": self.model, "decision": self.decision, "targets": dict(self.targets),
            "latest": self.latest, "pins": {str(v): u for v, u in sorted(self.pins.items())},
        }
        return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes, model: str) -> Document | None:
        """The document ``data`` holds, if it is a well-formed document of ``model``; else None
        (a torn or foreign file is read as no document: the reader takes the query path)."""
        try:
            body = json.loads(data)
            if not isinstance(body, dict) or body.get("format") != FORMAT or body.get("model") != model:
                return None
            decision, targets, latest, pins = body["decision"], body["targets"], body["latest"], body["pins"]
            if not (isinstance(decision, int) and decision >= 0 and isinstance(targets, dict) and isinstance(pins, dict)):
                return None
            if not (latest is None or isinstance(latest, str)):
                return None
            if not all(isinstance(k, str) and isinstance(u, str) for k, u in targets.items()):
                return None
            parsed_pins = {int(k): u for k, u in pins.items() if isinstance(u, str)}
            if len(parsed_pins) != len(pins) or any(v < 1 for v in parsed_pins):
                return None
        except (ValueError, TypeError, KeyError):
            return None
        return cls(model, decision, targets, latest, parsed_pins)


def read(storage: Storage, model: str) -> tuple[Document, str] | None:
    """(``model``'s document, its tag), or None when it has none (or an unreadable one)."""
    try:
        found = storage.read_tagged(document_path(model))
    except OSError:  # not a file we can read (a folder in its place...): as if there were none
        return None
    if found is None:
        return None
    doc = Document.from_bytes(found[0], model)
    return None if doc is None else (doc, found[1])


def current(storage: Storage, doc: Document) -> bool:
    """Whether ``doc`` still holds the model's answers: no decision came after the one it
    reflects (one stat; one HEAD on an object store)."""
    try:
        storage.stat(decision_path(doc.model, doc.decision + 1))
    except FileNotFoundError:
        return True
    except OSError:  # something other than a decision in its place: do not trust the document
        return False
    return False


def load(storage: Storage, model: str) -> Document | None:
    """``model``'s document if it is there and current, else None (take the query path)."""
    found = read(storage, model)
    if found is None or not current(storage, found[0]):
        return None
    return found[0]


# -- writing ------------------------------------------------------------------------------


def publish(storage: Storage, doc: Document, *, replace_same: bool = False) -> bool:
    """Write ``doc`` unless the model's document already reflects its decision or a later
    one (with ``replace_same``, only a later one: a repair); compare-and-swap, so a
    concurrent writer's newer document is never replaced. Returns whether ``doc`` was
    written. Not made durable: a document lost in a crash is rebuilt, and one left
    behind by it is stale, which readers see."""
    data = doc.to_bytes()
    path = document_path(doc.model)
    while True:
        found = storage.read_tagged(path)
        tag = None
        if found is not None:
            there = Document.from_bytes(found[0], doc.model)
            if there is not None and (there.decision > doc.decision or
                                      (there.decision == doc.decision and (not replace_same or there == doc))):
                return False
            tag = found[1]
        if storage.replace_if(path, data, tag, sync=False):
            return True


def add_pin(storage: Storage, seen: tuple[Document, str] | None, model: str, version: int, uri: str, *,
            first: bool) -> bool:
    """Add the pin of a version just registered to the document ``seen`` (read before the
    version was written; see the module), if it is still the model's document at the
    same decision. With no document seen and ``first`` (version 1 of a model with no
    decision), start one at decision 0. Returns whether the pin was written."""
    if seen is None:
        if not first:
            return False
        if storage.replace_if(document_path(model), Document(model, 0, pins={version: uri}).to_bytes(), None, sync=False):
            return True
        seen = read(storage, model)
        if seen is None or seen[0].decision != 0:
            return False
    doc, tag = seen
    for _ in range(PIN_ATTEMPTS):
        if doc.pins.get(version) == uri:
            return True
        if storage.replace_if(document_path(model), doc.with_pin(version, uri).to_bytes(), tag, sync=False):
            return True
        found = read(storage, model)
        if found is None or found[0].decision != doc.decision:
            return False  # a decision came meanwhile: its document is the one to trust
        doc, tag = found
    return False  # registrants of one model racing: the pin is left to the query path
