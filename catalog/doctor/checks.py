"""The doctor's checks: each a standalone function that reads (through the lake's
:class:`~catalog.lake.Storage`, or rows already read) and returns findings, each
with the fixes ``repair`` would apply. No check writes anything.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from typing import Any

from .. import validate
from ..errors import ArtifactNotRegular, InvalidName
from ..lake import Lake, Storage
from ..lake.files import ANCHOR, PART, file_problem
from ..lake.lake import claim_ranges, claims_folder, decision_row, decisions_folder
from ..lake.storage import DIR, FILE
from ..progress import Progress
from ..provenance import checksum, local_path, regular_artifact
from ..schema import SCHEMA_VERSION
from . import wording as say
from .findings import (
    Finding,
    FinishCompaction,
    Fix,
    Leave,
    Quarantine,
    RemoveTemp,
    RollForward,
    WriteAnchor,
    WriteClaim,
)

TABLES = ("versions", "events")
Key = tuple[str, int]


def _finding(severity: str, path: str, words: say.Words, *fix: Fix) -> Finding:
    problem, action = words
    return Finding(severity, path, problem, action, fix=fix)


def relative(root: str, path: str | None) -> str:
    """``path`` (a local path DuckDB or the lake gave) as a lake-relative one."""
    return os.path.relpath(path, root).replace(os.sep, "/") if path else "?"


def is_temp(name: str) -> bool:
    """A temporary name the storage writes through (``.<final name>.<random>.tmp``)."""
    return name.startswith(".") and name.endswith(".tmp")


# -- files --------------------------------------------------------------------


def table_files(storage: Storage, table: str, *, tmp_grace: float, now: float) -> tuple[list[Finding], list[str], int]:
    """Judge every entry under the ``table`` folder: (findings, the sound Parquet files as
    local paths, how many entries were looked at)."""
    findings: list[Finding] = []
    sound: list[str] = []
    looked = 0
    for rel, kind in storage.walk(table):
        if rel.startswith(f"{table}/_delta_log/") or (rel == f"{table}/_delta_log" and kind == DIR):
            continue  # the snapshot's Delta log (catalog.lake.snapshot): not table files
        name = rel.rsplit("/", 1)[-1]
        if kind == DIR and not name.endswith(".parquet"):
            continue
        looked += 1
        if kind != FILE:
            # A link, a FIFO, a device or a socket, or a folder named like a table file: not
            # part of the lake, and never read (Lake.table_files lists regular files only).
            findings.append(_finding("error", rel, say.not_a_file(table, rel, kind), Quarantine(rel)))
            continue
        full = storage.local_path(rel)
        try:
            found, readable = _file(storage, table, rel, full, name, rel.count("/") > 1, tmp_grace=tmp_grace, now=now)
        except FileNotFoundError:
            continue  # removed meanwhile (a compaction): nothing to judge
        if readable:
            sound.append(full)
        if found is not None:
            findings.append(found)
    return findings, sound, looked


def compaction_temps(storage: Storage, *, tmp_grace: float, now: float) -> list[Finding]:
    """Temporary files an interrupted compaction left among its markers."""
    findings = []
    for name, _ in storage.entries("_compactions"):
        if is_temp(name):
            try:
                found = _temp(storage, f"_compactions/{name}", tmp_grace=tmp_grace, now=now)
            except FileNotFoundError:
                continue
            findings.append(found)
    return findings


def _file(storage: Storage, table: str, rel: str, full: str, name: str, nested: bool, *,
          tmp_grace: float, now: float) -> tuple[Finding | None, bool]:
    """(what is wrong with the regular file at ``rel`` or None, whether its rows are read)."""
    if is_temp(name):
        return _temp(storage, rel, tmp_grace=tmp_grace, now=now), False
    if not name.endswith(".parquet"):
        return _finding("warning", rel, say.foreign_file(table), Quarantine(rel)), False
    problem = file_problem(full, table)
    if problem:
        return _finding("error", rel, say.damaged_file(problem), Quarantine(rel)), False
    if nested or not (PART.match(name) or ANCHOR.match(name)):
        return _finding("warning", rel, say.unknown_parquet()), True  # readers read it all the same
    return None, True


def _temp(storage: Storage, rel: str, *, tmp_grace: float, now: float) -> Finding:
    stamp = storage.stamp(rel)
    if not stamp:
        raise FileNotFoundError(rel)  # the write it belonged to finished meanwhile
    age = now - stamp / 1e9
    if age < tmp_grace:
        return _finding("info", rel, say.young_temp(age))
    return _finding("warning", rel, say.stale_temp(), RemoveTemp(rel))


def anchors(storage: Storage) -> list[Finding]:
    """The zero-row schema anchor each table folder needs."""
    findings = []
    for table in TABLES:
        rel = f"{table}/schema-v{SCHEMA_VERSION}.parquet"
        if not storage.exists(rel):
            findings.append(_finding("warning", rel, say.missing_anchor(), WriteAnchor(table)))
    return findings


def compactions(lake: Lake, sound: dict[str, list[str]]) -> tuple[list[Finding], dict[str, set[str]], dict[str, list[str]]]:
    """Leftovers of interrupted compactions and older compacted files: (findings, per table
    the sound files a reader lists (see Lake.current_files), per table the leftovers)."""
    findings: list[Finding] = []
    current: dict[str, set[str]] = {}
    leftovers: dict[str, list[str]] = {}
    for table in TABLES:
        listed, exact = lake.current_files(table)
        current[table] = set(listed) & set(sound[table])
        leftovers[table] = sorted(set(sound[table]) - set(listed))
        for full in leftovers[table]:
            findings.append(_finding("info", relative(lake.root, full), say.compaction_leftover(), FinishCompaction(table)))
        if not exact:
            findings.append(_finding("info", table, say.inexact_compaction()))
    return findings, current, leftovers


# -- rows -----------------------------------------------------------------------


def version_rows(rows: Sequence[tuple[Any, ...]], root: str) -> tuple[list[Finding], set[Key]]:
    """Versions rows that break the readers' rule (exactly those the views skip):
    (findings, the recorded (model, version) keys)."""
    findings = []
    keys: set[Key] = set()
    for model, version, filename, why in rows:
        if why:
            findings.append(_finding("error", relative(root, filename), say.bad_version_row(model, version, why)))
        else:
            keys.add((model, int(version)))
    return findings, keys


def event_rows(rows: Sequence[tuple[Any, ...]], keys: set[Key], root: str) -> list[Finding]:
    """Events that break the readers' rule, and events about versions or models the lake lacks."""
    models = {m for m, _ in keys}
    findings = []
    for event_id, model, version, kind, filename, why in rows:
        where = relative(root, filename)
        if why:
            findings.append(_finding("error", where, say.bad_event_row(event_id, why)))
        elif version is not None and (model, int(version)) not in keys:
            findings.append(_finding("warning", where, say.event_without_version(event_id, kind, model, version)))
        elif version is None and model not in models:
            findings.append(_finding("warning", where, say.event_without_model(event_id, kind, model)))
    return findings


def copies(
    table: str,
    rows: Sequence[tuple[Any, ...]],
    rows_per_file: Callable[[], dict[str, int]],
    claimed_by: Callable[[str, int], str | None],
    root: str,
) -> list[Finding]:
    """Records in two files a reader lists (a file copied or forged into the lake).

    ``rows`` are (*key, files, content hashes, authors) per record held twice.
    Identical copies read once (the reader leaves the later ones out) and
    ``catalog compact`` keeps one. Copies that differ make every read of the
    record fail (ConflictingCopies): the fix quarantines the copies the version's
    claim does not vouch for (its ``by`` is not the copy's ``created_by``), or
    every copy when it cannot tell (an event has no claim). A file that also
    holds other records is never moved: that is left to a person.
    """
    findings = []
    identical = [r for r in rows if len(set(r[-2])) == 1]
    if identical:
        findings.append(_finding("error", table, say.identical_copies(len(identical), table)))
    sizes = rows_per_file() if len(identical) < len(rows) else {}
    for row in rows:
        *key, files, contents, authors = row
        if len(set(contents)) == 1:
            continue
        names = sorted({relative(root, f) for f in files})
        by = claimed_by(key[0], key[1]) if table == "versions" else None
        vouched = [f for f, a in zip(files, authors) if by is not None and a == by]
        wrong = sorted(set(files) - set(vouched)) if len(set(vouched)) == 1 else sorted(set(files))
        fix: list[Fix] = [
            Leave(relative(root, full)) if sizes.get(full, 0) > files.count(full) else Quarantine(relative(root, full))
            for full in wrong
        ]
        findings.append(_finding("error", names[0] if len(names) == 1 else table,
                                 say.differing_copies(table, tuple(key), len(files), names), *fix))
    return findings


# -- claims ---------------------------------------------------------------------

# Per entry of _claims: its name, the model it stands for (None when the name is not a
# model's path segment: never read as one, its claims then []), and its claims (None
# when it is not a real folder): (file name, (first, last) or None when the name is not a claim's).
ClaimListing = list[tuple[str, "str | None", "list[tuple[str, tuple[int, int] | None]] | None"]]


def model_of(segment: str) -> str | None:
    """The model a folder of ``_claims`` or ``_decisions`` stands for, or None when its
    name is not what validate.path_segment makes of a valid name."""
    try:
        return validate.from_segment(segment)
    except InvalidName:
        return None


def _claims_of(storage: Storage, model: str) -> list[tuple[str, tuple[int, int] | None]]:
    """The claims of ``model`` with the numbers each holds (a claim ``<first>`` says its
    ``last`` in its body, read only where the names leave it open, see claim_ranges);
    hidden temporary files of an interrupted create are left out."""
    folder = claims_folder(model)
    names = [n for n in storage.listdir(folder) if not n.startswith(".")]

    def read(name: str) -> bytes | None:
        try:
            return storage.read_bytes(f"{folder}/{name}")
        except (FileNotFoundError, IsADirectoryError):
            return None

    ranges = {name: (first, last) for name, first, last, _ in claim_ranges(names, read)}
    return [(name, ranges.get(name)) for name in names]


def claim_listing(storage: Storage) -> ClaimListing:
    """The version claims of every model, with the numbers each holds."""
    listing: ClaimListing = []
    for segment, kind in storage.entries("_claims"):
        model = model_of(segment)
        if kind != DIR:
            listing.append((segment, model, None))
        else:
            listing.append((segment, model, _claims_of(storage, model) if model is not None else []))
    return listing


def claimed_by(storage: Storage, model: str, version: int) -> str | None:
    """Who claimed ``version`` of ``model`` (the ``by`` of its claim file), if a claim says."""
    for name, claimed in _claims_of(storage, model):
        if claimed and claimed[0] <= version <= claimed[1]:
            try:
                return json.loads(storage.read_bytes(f"{claims_folder(model)}/{name}")).get("by")
            except (OSError, ValueError, AttributeError):
                return None
    return None


def claims(listing: ClaimListing, keys: set[Key]) -> tuple[list[Finding], int]:
    """Claims without a record (a gap, left alone) and records beyond the highest claim
    (the next register would reuse their number): (findings, claim files looked at)."""
    recorded: dict[str, list[int]] = {}
    for recorded_model, version in keys:
        recorded.setdefault(recorded_model, []).append(version)
    findings = []
    looked = 0
    for segment, model, found in listing:
        if found is None:
            findings.append(_finding("warning", f"_claims/{segment}", say.foreign_claim()))
            continue
        if model is None:
            findings.append(_finding("warning", f"_claims/{segment}", say.foreign_folder("version claims", segment)))
            continue
        numbers = []
        for name, claimed in found:
            looked += 1
            if not claimed:
                findings.append(_finding("warning", f"_claims/{segment}/{name}", say.foreign_claim()))
                continue
            numbers.append(claimed[1])
            unrecorded = [n for n in range(claimed[0], claimed[1] + 1) if (model, n) not in keys]
            if unrecorded:
                findings.append(_finding("info", f"_claims/{segment}/{name}", say.unrecorded_claim(model, unrecorded)))
        top = max(recorded.get(model, [0]))
        if numbers and top > max(numbers):
            findings.append(_finding("error", f"_claims/{segment}", say.claims_behind(model, top, max(numbers)),
                                     WriteClaim(model, top)))
    return findings, looked


# -- decisions ------------------------------------------------------------------


def decisions(storage: Storage, event_ids: set[str]) -> list[Finding]:
    """The newest decision of each model whose event is not in the lake (only the newest
    can be: a decision takes its number after making sure the one before is in). A
    folder whose name is not a model's path segment is reported, never read."""
    findings = []
    for segment, kind in storage.entries("_decisions"):
        if kind != DIR:
            continue
        model = model_of(segment)
        if model is None:
            findings.append(_finding("warning", f"_decisions/{segment}", say.foreign_folder("decisions", segment)))
            continue
        folder = decisions_folder(model)
        numbers = [int(n) for n in storage.listdir(folder) if n.isdigit()]
        if not numbers:
            continue
        n = max(numbers)
        try:
            row = decision_row(storage.read_bytes(f"{folder}/{n}"))
        except FileNotFoundError:
            continue
        if row is not None and row["event_id"] not in event_ids:
            findings.append(_finding("warning", f"{folder}/{n}",
                                     say.unfinished_decision(model, n, row["event_id"]), RollForward(model, n)))
    return findings


# -- artifacts ------------------------------------------------------------------


def artifacts(rows: Sequence[tuple[Any, ...]], progress: Progress | None = None) -> tuple[list[Finding], int]:
    """The checksum and size of every local artifact (remote ones are verified by whoever
    can reach them): (findings, local artifacts looked at). Reads artifact files, never the lake."""
    findings = []
    looked = 0
    for done, (model, version, uri, sha, size) in enumerate(rows):
        if progress is not None:
            progress("verify artifacts", done, len(rows))
        path = local_path(uri) if uri else None
        if path is None:
            continue
        looked += 1
        ref = f"{model}:{version}"
        if not os.path.exists(path):
            findings.append(_finding("warning", ref, say.artifact_missing(path)))
            continue
        try:
            # checked before any read: a pipe or a device put in its place is never opened
            if not sha:
                regular_artifact(path)
                continue
            seen, seen_size = checksum(path, progress)
        except ArtifactNotRegular as exc:
            findings.append(_finding("error", ref, say.artifact_not_regular(exc.path, exc.kind, exc.detail)))
            continue
        if seen != sha:
            findings.append(_finding("error", ref, say.artifact_changed(path, seen, sha)))
        elif size is not None and seen_size != size:
            findings.append(_finding("error", ref, say.artifact_resized(path, seen_size, size)))
    if progress is not None:
        progress("verify artifacts", len(rows), len(rows))
    return findings, looked
