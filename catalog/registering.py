"""Registering versions: one at a time (``register``) or many (``register_many``).

Every field a registrant gives is checked as ``fields.FIELDS`` declares it; a
bulk load checks each record the same way (or, for the plain ones, the lean way
of ``bulk.LeanCheck``, which refuses nothing ``register`` accepts) before it
claims a single version number.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from . import resolving
from . import validate as check
from .errors import CatalogError, InvalidValue, ModelNotFound, ModelRenamed, VersionNotFound, VersionTaken
from .fields import FIELDS, NAMES, Field
from .progress import ticker
from .provenance import check_data_ref, git_info, inspect_artifact
from .records import Parent, Version
from .schema import SCHEMA_VERSION
from .session import Session

ParentLike = Parent | tuple[str, int] | tuple[str, int, str] | str

# What an import may say of a version besides its fields: its number, original time and
# author, and where it came from.
IMPORT_KEYWORDS = ("version", "created_at", "created_by", "origin")
# What a bulk-loaded record may hold besides ``model`` and ``artifact_uri``.
KEYWORDS = frozenset((*NAMES, *IMPORT_KEYWORDS, "capture_git", "allow_missing_data"))


def import_fields(given: Mapping[str, Any]) -> dict[str, Any]:
    """The import keywords given (``IMPORT_KEYWORDS``), checked: {} when none is. A record
    with an original time or author, or an origin, is an import (imported_at and
    imported_by are then set when it is written)."""
    out: dict[str, Any] = {}
    if given.get("version") is not None:
        out["version"] = check.version(given["version"])
    if given.get("created_at") is not None:
        out["created_at"] = check.moment(given["created_at"])
    if given.get("created_by") is not None:
        out["created_by"] = check.actor(given["created_by"])
    if given.get("origin") is not None:
        from .lifecycle import check_origin

        out["origin"] = check_origin(given["origin"])
    return out


def _stamp(row: dict[str, Any], extra: Mapping[str, Any], actor: str, now: Callable[[], datetime]) -> None:
    """Put the import keywords ``extra`` into ``row`` (not its number: claimed later)."""
    if "created_by" in extra:
        row["created_by"] = extra["created_by"]
    row["created_at"] = extra.get("created_at")
    if extra.keys() & {"created_at", "created_by", "origin"}:
        row["origin"] = extra.get("origin")
        row["imported_at"] = now()
        row["imported_by"] = actor


def numbering(model: str, entries: Sequence[int | None]) -> Callable[[int], int]:
    """How many numbers a model's records need past its end (the highest claimed), each
    entry an explicit number or None (the next one): gaps between explicit numbers are
    claimed too and stay gaps. Raises VersionTaken when an explicit number is not past
    the end."""

    def count(end: int) -> int:
        current = end
        for number in entries:
            if number is None:
                current += 1
            elif number <= current:
                raise VersionTaken(model=model, version=number, end=end,
                                   detail="numbers are never given twice; import it under another number or skip it")
            else:
                current = number
        return current - end

    return count


def _in_order(model: str, entries: list[int | None], number: int | None, i: int) -> None:
    """Refuse an explicit number not above the ones given before it for its model in a load."""
    if number is None:
        return
    before = [n for n in entries if n is not None]
    if before and number <= max(before):
        raise InvalidValue(f"record {i}: version {number} of '{model}' comes after version {max(before)} in this "
                           "load: give each model's versions in increasing order")


def parse_parent(value: ParentLike) -> Parent:
    """A parent from ``Parent``, ``(model, version[, relation])`` or ``"model:version[:relation]"``."""
    if isinstance(value, Parent):
        model, version, relation = value.model, value.version, value.relation
    elif isinstance(value, str):
        bits = value.split(":")
        if len(bits) not in (2, 3) or not bits[1].isdigit():
            raise InvalidValue(
                f"invalid parent {value!r}: write MODEL:VERSION or MODEL:VERSION:RELATION "
                "(e.g. bert-base:3:fine-tuned)"
            )
        model, version, relation = bits[0], int(bits[1]), (bits[2] if len(bits) == 3 else "derived")
    else:
        seq: tuple[Any, ...] = tuple(value)
        if len(seq) not in (2, 3):
            raise InvalidValue(f"invalid parent {value!r}: give (model, version) or (model, version, relation)")
        model, version = seq[0], seq[1]
        relation = seq[2] if len(seq) == 3 else "derived"
    check.name(model)
    check.version(version)
    check.key(relation, "parent relation")
    return Parent(model, version, relation)


def register(s: Session, model: str, artifact_uri: str, given: Mapping[str, Any], *,
             capture_git: bool, allow_missing_data: bool, imported: Mapping[str, Any] | None = None) -> Version:
    extra = import_fields(imported or {})
    row = prepare(s, model, artifact_uri, given, capture_git=capture_git, allow_missing_data=allow_missing_data)
    renamed = s.lake.renamed_to(model)  # its latest decision, read without opening the reader
    if renamed is not None:
        raise ModelRenamed(model=model, new_name=renamed)
    _stamp(row, extra, s.actor, s.clock)
    number = extra.get("version")
    first = s.lake.claim_versions(model, numbering(model, [number]), s.actor, floor=lambda: _floor(s, model))
    row["version"] = number or first
    now = s.clock()
    row["created_at"] = row["created_at"] or now
    resolving.pinning(s, row, lambda: s.append("versions", [row], now))
    return registered(row)


def require_registrable(s: Session, models: Iterable[str]) -> None:
    """Refuse names renamed away: they stay reserved to their model (one query)."""
    if not s.lake.exists():
        return
    for r in s.q("renamed_names", models=sorted(set(models))):
        raise ModelRenamed(model=r["old"], new_name=r["model"])


def register_many(s: Session, records: Iterable[Mapping[str, Any]], capture_git: bool) -> Sequence[Version]:
    from . import bulk

    lean = bulk.LeanCheck(s.actor, functools.cache(git_info), parse_parent)
    spill = bulk.Spill()
    counts: dict[str, int] = {}
    numbers: dict[str, list[int | None]] = {}  # of the models whose records name some numbers
    started = functools.cache(s.clock)
    parents: list[tuple[str, int, int]] = []  # (model, version, record index)
    tick = ticker(s.progress, "register", len(records) if isinstance(records, Sequence) else None)
    try:
        for i, record in enumerate(records):
            if tick is not None:
                tick()
            fields = dict(record)
            try:
                model, uri = fields.pop("model"), fields.pop("artifact_uri")
            except KeyError as missing:
                raise InvalidValue(f"record {i}: {missing.args[0]} is required") from None
            unknown = fields.keys() - KEYWORDS
            if unknown:
                raise InvalidValue(f"record {i}: unknown field(s) {sorted(unknown)}")
            fields.setdefault("capture_git", capture_git)
            given = {k: fields.pop(k) for k in IMPORT_KEYWORDS if k in fields}
            try:
                extra = import_fields(given)
            except CatalogError as exc:
                raise _in_record(i, exc) from None
            row = lean.row(model, uri, fields)
            if row is None:
                try:
                    row = prepare(
                        s, model, uri, fields, capture_git=fields.pop("capture_git"),
                        allow_missing_data=fields.pop("allow_missing_data", False), check_parents=False,
                    )
                except CatalogError as exc:
                    raise _in_record(i, exc) from None
            _stamp(row, extra, s.actor, started)
            number = row["version"] = extra.get("version")
            if number is not None or model in numbers:
                entries = numbers.setdefault(model, [None] * counts.get(model, 0))
                _in_order(model, entries, number, i)
                entries.append(number)
            spill.add(row)
            counts[model] = counts.get(model, 0) + 1
            parents += [(p["model"], p["version"], i) for p in row["parents"]]
        if not counts:
            spill.close()
            return []
        _require_parents(s, parents)
        require_registrable(s, counts)
        planned: dict[str, int | Callable[[int], int]] = {**counts}
        if numbers:
            # Every explicit number is checked against the models' ends before any is claimed.
            ends = s.lake.ends(sorted(numbers), floors=lambda models: _floors(s, models))
            for model, entries in numbers.items():
                numbering(model, entries)(ends[model])
                planned[model] = numbering(model, entries)
        first = s.lake.claim_many(planned, s.actor, floors=lambda models: _floors(s, models))
        now = s.clock()
        s.lake.append_batches("versions", spill.numbered(first, now), now=now)
        if tick is not None:
            tick.finish()
    except BaseException:
        spill.close()
        raise
    s.auto_compact("versions")
    return bulk.Registered(spill, now, registered)


def prepare(s: Session, model: str, artifact_uri: str, given: Mapping[str, Any], *,
            capture_git: bool = True, allow_missing_data: bool = False, check_parents: bool = True) -> dict[str, Any]:
    """Validate one registration and build its row (all but version and time); writes nothing.

    ``given`` maps field names (``fields.NAMES``) to values; a field not given is unset."""
    check.name(model)
    check.uri(artifact_uri)
    record = {f.name: _checked(f, given.get(f.name), allow_missing_data) for f in FIELDS}
    parent_list: list[Parent] = record.pop("parents")
    artifact_sha256: str | None = record["artifact_sha256"]
    repo, commit = record["code_repo"], record["code_version"]
    dirty: bool | None = None
    if commit is None and capture_git:
        found = git_info()
        commit, dirty = found.commit, found.dirty
        if not repo and found.repo:
            repo = check.uri(found.repo, "code repo")
    artifact = inspect_artifact(artifact_uri, s.progress)
    if artifact.sha256 and artifact_sha256 and artifact.sha256 != artifact_sha256.lower():
        raise InvalidValue(
            f"artifact {artifact.uri} has sha256 {artifact.sha256}, not the {artifact_sha256} given"
        )
    if parent_list and check_parents:
        require_versions(s, [(p.model, p.version) for p in parent_list])
    return {
        **record,
        "schema_version": SCHEMA_VERSION,
        "model": model,
        "artifact_uri": artifact.uri,
        "artifact_sha256": artifact.sha256 or (artifact_sha256.lower() if artifact_sha256 else None),
        "artifact_bytes": artifact.bytes,
        "code_repo": repo,
        "code_version": commit,
        "code_dirty": dirty,
        "parents": [{"model": p.model, "version": p.version, "relation": p.relation} for p in parent_list],
        "created_by": s.actor,
        "origin": None,
        "imported_at": None,
        "imported_by": None,
    }


def checked_field(f: Field, value: Any) -> Any:
    """``value`` of the field ``f`` checked as ``register`` checks it (what a describe or a
    tag event sets takes the same checks)."""
    return _checked(f, value, False)


def _checked(f: Field, value: Any, allow_missing_data: bool) -> Any:
    """``value`` of field ``f`` as the lake keeps it, or an InvalidInput naming the field."""
    kind, what = f.kind, f.label
    if kind == "line":
        return check.line(value, what, limit=f.limit or check.MAX_TEXT)
    if kind in ("text", "uri"):
        text = check.text(value, what, limit=f.limit or check.MAX_TEXT)
        if text is None:
            return None
        if f.credentials == "uri":
            return check.uri(text, what)
        return text if f.credentials is None else check.no_credentials(text, what, bare=f.credentials == "bare")
    if kind == "mapping":
        values = check.mapping(value, what, limit=f.limit or check.MAX_VALUE)
        return {k: check.uri(u, f"{what} {k!r}") for k, u in values.items()} if f.credentials == "uri" else values
    if kind == "metrics":
        return check.metrics(value)
    if kind == "data":
        refs = [check.uri(check.text(r, what, required=True) or "", what) for r in value or []]
        if len(set(refs)) != len(refs):
            raise InvalidValue(f"a {what} is given twice: give each once")
        return [check_data_ref(r, allow_missing_data) for r in refs]
    if kind == "parents":
        parents = [parse_parent(p) for p in value or []]
        if len({(p.model, p.version) for p in parents}) != len(parents):
            raise InvalidValue(f"a {what} is given twice: give each once")
        return parents
    if kind == "sha256":
        if value is not None and not _is_sha256(value):
            raise InvalidValue(f"invalid sha256 {value!r}: give 64 hexadecimal digits")
        return value
    raise AssertionError(f"field {f.name!r} has no check for kind {kind!r}")


def require_versions(s: Session, refs: Sequence[tuple[str, int]]) -> None:
    """Raise unless every (model, version) is registered: one query however many."""
    if not refs:
        return
    if not s.lake.exists():
        raise ModelNotFound(model=refs[0][0])
    models = sorted({m for m, _ in refs})
    reader = s.reader()
    # Records are never removed: what the files as last listed hold is there now;
    # the lake is listed again only when some parent was not among them.
    known = {(r["model"], r["version"]) for r in reader.query("existing_versions", relist=False, models=models)}
    if not set(refs) <= known:
        known = {(r["model"], r["version"]) for r in reader.query("existing_versions", models=models)}
    for model, version in refs:
        if (model, version) not in known:
            if not any(m == model for m, _ in known):
                raise ModelNotFound(model=model)
            raise VersionNotFound(model=model, version=version)


def _require_parents(s: Session, refs: list[tuple[str, int, int]]) -> None:
    """``require_versions`` for a bulk load: the refusal names the first record at fault."""
    try:
        require_versions(s, [(m, v) for m, v, _ in refs])
    except (ModelNotFound, VersionNotFound) as exc:
        raise _in_record(next(i for m, v, i in refs if m == exc.model and getattr(exc, "version", v) == v), exc) from None


def _floor(s: Session, model: str) -> int:
    """The highest recorded version of ``model``, asked when its claims cannot tell.

    A model with no claim at all takes it from one whole-lake query per session
    (:meth:`Session.recorded_tops`): records without claims only come with a lake copied
    without its ``_claims`` folder, never while writers use it (every writer claims before
    it records), so the answer read once holds, and a load of new models asks once rather
    than once per model. A model whose highest claim lost its body in a crash asks afresh."""
    if not s.lake.exists():
        return 0
    if s.lake.claimed_end(model) == 0:
        return s.recorded_tops().get(model, 0)
    return int(s.q("max_version", model=model)[0]["n"])


def _floors(s: Session, models: list[str]) -> dict[str, int]:
    """The highest recorded version of each of ``models`` that has one: one query."""
    top: dict[str, int] = {}
    if models and s.lake.exists():
        for r in s.q("top_versions", models=models):
            top[r["model"]] = r["version"]
    return top


def _in_record(i: int, exc: CatalogError) -> CatalogError:
    """``exc``, its message prefixed with the index of the bulk-loaded record at fault."""
    exc.record = i  # type: ignore[attr-defined]
    exc.fields["record"] = i
    exc.args = (f"record {i}: {exc}",)
    return exc


def registered(row: dict[str, Any]) -> Version:
    """The version a freshly written row records: a candidate, as its registrant left it."""
    return Version.from_row({**row, "state": "candidate", "state_at": row["created_at"], "state_by": row["created_by"]})


def _is_sha256(value: str) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdefABCDEF" for c in value)
