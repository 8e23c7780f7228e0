"""Every word the doctor says, in one place (as :mod:`catalog.errors` is for errors).

Each function names a condition and returns ``(problem, action)`` for its
finding; the ``DONE_*`` texts and :func:`moved` say what ``repair`` did.
"""

from __future__ import annotations

from ..lake.storage import DIR, LINK

Words = tuple[str, str]

TO_QUARANTINE = "run `catalog doctor --repair` to move it to _quarantine"


# -- files --------------------------------------------------------------------


def not_a_file(table: str, rel: str, kind: str) -> Words:
    what = {LINK: "symbolic link", DIR: "folder named like a table file"}.get(kind, "special file (FIFO, device or socket)")
    where = f"the {table} folder itself is a {what}" if rel == table else f"{what} in the {table} folder"
    return (f"{where}: not the lake's own file, readers skip it",
            f"{TO_QUARANTINE} (a link is moved, never what it points to)")


def young_temp(age: float) -> Words:
    return (f"temporary file {age:.0f}s old: a write may be in progress",
            "nothing; run `catalog doctor` again later if it stays")


def stale_temp() -> Words:
    return "temporary file left by an interrupted write", "run `catalog doctor --repair` to remove it"


def foreign_file(table: str) -> Words:
    return (f"foreign file in the {table} folder (readers ignore it, the catalog never writes it)",
            f"{TO_QUARANTINE}, or move it out by hand")


def damaged_file(problem: str) -> Words:
    return (problem,
            f"{TO_QUARANTINE} (reads fail until then); restore its records from a backup if they matter")


def unknown_parquet() -> Words:
    return ("Parquet file the catalog did not write: its rows show in the views, but compaction never merges it",
            "if its rows belong, leave it; otherwise move it out of the lake")


def missing_anchor() -> Words:
    return ("schema anchor missing: files of older layouts may lose columns in reads",
            "run `catalog doctor --repair` to write it")


# -- compaction -----------------------------------------------------------------


def compaction_leftover() -> Words:
    return ("input of an interrupted compaction, already merged: readers skip it",
            "nothing; `catalog compact` or `catalog doctor --repair` removes it")


def inexact_compaction() -> Words:
    return ("compacted by an older catalog version, whose files do not name the inputs "
            "they replaced: reads keep one row per key, which is slower on a large lake",
            "run `catalog compact` once")


def identical_copies(count: int, table: str) -> Words:
    return (f"{count} {table} record(s) sit in two current files: reads show each once",
            "run `catalog compact`, which keeps one copy of each")


def differing_copies(table: str, key: tuple[object, ...], copies: int, names: list[str]) -> Words:
    what = f"version {key[1]} of '{key[0]}'" if table == "versions" else f"event {key[0]}"
    return (f"{what} is recorded {copies} times with different content, in {' and '.join(names)}: "
            "every read of it fails until one copy is gone",
            "run `catalog doctor --repair` to quarantine the copy its claim does not vouch for "
            "(every copy when it cannot tell), then restore the right one from _quarantine if needed")


# -- rows -----------------------------------------------------------------------


def bad_version_row(model: str, version: object, why: str) -> Words:
    return (f"versions row {model}:{version} breaks the schema ({why})",
            "readers skip it; move the file out of the lake if it holds nothing else, and register the version again")


def bad_event_row(event_id: str, why: str) -> Words:
    return (f"event {event_id} breaks the schema ({why})",
            "readers skip it; move the file out of the lake if it holds nothing else")


def event_without_version(event_id: str, kind: str, model: str, version: object) -> Words:
    return (f"event {event_id} ({kind}) points at {model}:{version}, which is not recorded",
            "restore the version's file from _quarantine or a backup; until then the event is ignored")


def event_without_model(event_id: str, kind: str, model: str) -> Words:
    return (f"event {event_id} ({kind}) is about model '{model}', which has no version",
            "restore the model's files from _quarantine or a backup")


# -- claims ---------------------------------------------------------------------


def foreign_claim() -> Words:
    return "foreign file among the version claims", "move it out of the lake"


def foreign_folder(what: str, segment: str) -> Words:
    return (f"folder {segment!r} among the {what} is not a model's: its name is neither a lowercase name nor "
            "'~' and the base32 of a valid name", "move it out of the lake")


def unrecorded_claim(model: str, unrecorded: list[int]) -> Words:
    which = (f"version {unrecorded[0]}" if len(unrecorded) == 1
             else f"{len(unrecorded)} versions ({unrecorded[0]}..{unrecorded[-1]})")
    return (f"{which} of '{model}' claimed but never recorded (a register that crashed, or one still running)",
            "nothing: the numbers stay unused; a gap is safer than a number handed out twice")


def claims_behind(model: str, top: int, claimed: int) -> Words:
    return (f"'{model}' has records up to v{top} but claims only up to v{claimed}: the next register would reuse a number",
            "run `catalog doctor --repair` to claim the recorded numbers")


# -- artifacts ------------------------------------------------------------------


def artifact_missing(path: str) -> Words:
    return f"artifact {path} is missing", "restore the artifact, or deprecate the version (catalog deprecate ...)"


def artifact_not_regular(path: str, kind: str, detail: str) -> Words:
    return (f"artifact {path} is {kind}{detail}, not a regular file or a folder of them",
            "restore the artifact as it was registered, or deprecate the version (catalog deprecate ...)")


def artifact_changed(path: str, seen: str, registered: str) -> Words:
    return (f"artifact {path} has sha256 {seen}, but {registered} was registered",
            "the file changed after registration: restore it, or register it as a new version")


def artifact_resized(path: str, seen: int | None, registered: int) -> Words:
    return f"artifact {path} is {seen} bytes, but {registered} were registered", "restore it, or register it as a new version"


# -- the policy file (the check Registry.doctor plugs in) ---------------------------


def config_invalid(detail: str) -> Words:
    return detail, "fix the key named, then run `catalog doctor` again"


def no_policy_file() -> Words:
    return ("no policy file: approvals run no gates and the registrant may approve",
            "write a catalog.toml (see README, Governance) to require checks")


# -- what repair did ------------------------------------------------------------

DONE_TEMP = "removed (it held a write that was never acknowledged)"
DONE_COMPACTION = "removed (its records are in the merged file)"
DONE_ANCHOR = "written"
CLAIM_BODY = b'{"by": "catalog doctor"}'


def moved(to: str) -> str:
    return f"moved to {to}"


def unfinished_decision(model: str, n: int, event_id: str) -> Words:
    return (f"decision {n} of '{model}' took its number but its event {event_id} is not in the lake "
            "(a decider that died between the two, or one still running)",
            "run `catalog doctor --repair`, or make the model's next decision: either writes the event from its claim")


def rolled_forward(event_id: str) -> str:
    return f"wrote event {event_id} from its claim"


def claimed(version: int) -> str:
    return f"claimed version {version}"


def left(rel: str) -> str:
    return f"left {rel} (it holds other records too)"
