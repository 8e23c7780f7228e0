"""Pure checks on what users type. Each raises an InvalidInput subclass (exit 2)."""

from __future__ import annotations

import base64
import binascii
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Literal, overload
from urllib.parse import parse_qsl, urlsplit

from .errors import ControlCharacter, InvalidName, InvalidValue, UnsafeURI

# The names of model and target, declared once: ``name``, ``target``, ``path_segment``
# and the lake's row rules (catalog.lake.rules, in SQL) are built from these.
#
# A name is what MLflow 3.18's registry accepts (mlflow.utils.validation._validate_model_name:
# not blank, no '/' or ':', not '.' nor starting with '..'), stored exactly (case kept),
# less what cannot be shown on one line or kept as a path: control, format, surrogate and
# line-break characters, and more than NAME_BYTES bytes of UTF-8.
NAME_BYTES = 150  # so that the encoded path segment (at most 241 bytes) fits a 255-byte file name
NAME_REFUSED = "/:"
# Unicode categories refused in a name or target: control (ESC, NUL...), format (zero-width
# space, bidi overrides), surrogate, line and paragraph separator.
INVISIBLE = ("Cc", "Cf", "Cs", "Zl", "Zp")
# Unassigned in this Python's Unicode tables: refused too, since a newer table (DuckDB's,
# which reads the row rules) may call it a format character and then skip the row.
UNASSIGNED = "Cn"
BLANK = "Zs"  # a name of nothing but spaces is blank
# A target is an MLflow alias (mlflow.utils.validation._validate_alias_name: Python's \w,
# i.e. the Unicode categories L* and N*, plus '_' and '-'), or a name the old rule below
# accepts (targets such as 'batch.nightly' of existing lakes stay valid).
TARGET_CATEGORIES = ("L", "N")
TARGET_CHARACTERS = "_-"
# Reserved by MLflow for aliases: 'latest' in any case (MODEL@latest is the latest approved
# version) and v<digits> (a version).
TARGET_VERSION = re.compile(r"^[vV][0-9]+\Z")

# The old name rule: a name it accepts is its own path segment, so lakes written before
# names were widened keep their paths. Every other name is encoded (path_segment).
_STRICT = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}\Z")
# Names that are devices on Windows: a file or folder named so breaks there (encoded).
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
SEGMENT_MARK = "~"
_SEGMENT = re.compile(r"^~[a-z2-7]+\Z")
_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,99}\Z")
# Control characters a terminal acts on (ESC, BEL, C1...): refused in any text. Tab and
# line breaks stay allowed where text may span lines (descriptions, notes).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# A user name written without a URL scheme, e.g. an image reference
# 'user:pass@registry.example.com/img:1', and the OCI digest that may follow '@'
# legitimately ('python:3.11@sha256:<hex>').
_BARE_USERINFO = re.compile(r"^[^\s/@:]+:[^\s/@]*@(?P<rest>\S*)")
_DIGEST = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{32,}")
_EMBEDDED_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s<>\"']+")
_SECRET_PARAMS = re.compile(
    r"^(x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature|x-goog-credential|"
    r"sig|signature|token|access_token|auth|api_key|apikey|key|password|secret|sv|se)$",
    re.I,
)
MAX_TEXT = 100_000  # the longest free text (a description, a note)
MAX_VALUE = 10_000  # the longest value of a tag, a parameter or a dashboard link


def name(value: str, kind: str = "model") -> str:
    """A model name as MLflow accepts it (see NAME_BYTES above), returned exactly."""
    if _strict(value):
        return value  # the common case, valid by construction: no per-character look-ups
    if not isinstance(value, str) or not value:
        raise InvalidName(kind=kind, value=value, detail="give a name (it cannot be empty)")
    odd = next((c for c in value if unicodedata.category(c) in INVISIBLE), None)
    if odd is not None:
        raise InvalidName(kind=kind, value=value, detail=f"it holds the invisible character {odd!r}; "
                          "control, format and line-break characters are refused")
    odd = next((c for c in value if unicodedata.category(c) == UNASSIGNED), None)
    if odd is not None:
        raise InvalidName(kind=kind, value=value, detail=f"it holds {odd!r}, a character Unicode "
                          f"{unicodedata.unidata_version} does not assign")
    if all(unicodedata.category(c) == BLANK for c in value):
        raise InvalidName(kind=kind, value=value, detail="give a name (it cannot be blank)")
    refused = next((c for c in value if c in NAME_REFUSED), None)
    if refused is not None:
        raise InvalidName(kind=kind, value=value, detail=f"{refused!r} is not allowed in a name (nor is "
                          f"{'/' if refused == ':' else ':'!r}, as in MLflow)")
    if value == "." or value.startswith(".."):
        raise InvalidName(kind=kind, value=value, detail="a name cannot be '.' or start with '..'")
    _fits(value, kind)
    return value


def _fits(value: str, kind: str) -> None:
    size = len(value.encode("utf-8"))
    if size > NAME_BYTES:
        raise InvalidName(kind=kind, value=value,
                          detail=f"it is {size} bytes long in UTF-8; the limit is {NAME_BYTES}")


def target(value: str) -> str:
    """A deployment target: an MLflow alias (letters of any script and case, digits, '_',
    '-'), or a lowercase name with '.' as the old rule allowed; not 'latest' (any case)
    nor v<digits>, which MLflow reserves."""
    if not isinstance(value, str) or not value:
        raise InvalidName(kind="target", value=value, detail="give a target (it cannot be empty)")
    if not (_STRICT.match(value) or all(_target_character(c) for c in value)):
        raise InvalidName(kind="target", value=value, detail=(
            "use letters, digits, '_' and '-' (as in an MLflow alias), or a lowercase name with '.'"))
    if value.lower() == "latest":
        raise InvalidName(kind="target", value=value,
                          detail="'latest' is reserved for MODEL@latest (the latest approved version)")
    if TARGET_VERSION.match(value):
        raise InvalidName(kind="target", value=value,
                          detail="v<digits> is reserved for versions (as in MLflow): pick another target name")
    _fits(value, "target")
    return value


def _target_character(c: str) -> bool:
    return c in TARGET_CHARACTERS or unicodedata.category(c)[0] in TARGET_CATEGORIES


def path_segment(value: str, kind: str = "model") -> str:
    """The file or object path segment that stands for a model or target name: the name
    itself when the old strict rule accepts it (lowercase ASCII, digits, '.', '_', '-',
    not a Windows device name), so existing lakes keep their paths; else ``~`` and the
    name's UTF-8 in unpadded lowercase base32 (``RM1`` -> ``~kjgtc``). Safe on
    case-insensitive file systems and as an S3 key, never '.', '..' or a device name,
    at most 241 bytes, and one-to-one (:func:`from_segment` inverts it). A name
    :func:`name` refuses is refused here too (InvalidName): it never becomes a path."""
    if _strict(value):
        return value
    name(value, kind)
    return SEGMENT_MARK + base64.b32encode(value.encode("utf-8")).decode("ascii").rstrip("=").lower()


def from_segment(segment: str) -> str:
    """The name a path segment stands for (inverse of :func:`path_segment`). Refused
    (InvalidName) unless ``segment`` is exactly what :func:`path_segment` makes of a
    name :func:`name` accepts: a folder someone else put in the lake is never read as a model."""
    if not isinstance(segment, str):
        raise InvalidName(kind="path segment", value=segment, detail="not text")
    if _strict(segment):
        return segment
    if not _SEGMENT.match(segment):
        raise InvalidName(kind="path segment", value=segment,
                          detail="neither a plain lowercase name nor '~' and base32 (lowercase, unpadded)")
    body = segment[1:].upper()
    try:
        decoded = base64.b32decode(body + "=" * (-len(body) % 8)).decode("utf-8")
    except (binascii.Error, ValueError):
        raise InvalidName(kind="path segment", value=segment, detail="its base32 does not decode to UTF-8 text") from None
    try:
        encoded = path_segment(decoded)
    except InvalidName as exc:
        raise InvalidName(kind="path segment", value=segment, detail=f"it stands for {decoded!r}, not a valid name") from exc
    if encoded != segment:
        raise InvalidName(kind="path segment", value=segment,
                          detail=f"not how {decoded!r} is encoded (that is {encoded!r})")
    return decoded


def _strict(value: str) -> bool:
    return isinstance(value, str) and bool(_STRICT.match(value)) and value.split(".")[0] not in _RESERVED


def version(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidValue(f"invalid version {value!r}: versions are whole numbers from 1")
    return value


@overload
def text(value: str | None, what: str, *, required: Literal[True], limit: int = MAX_TEXT) -> str: ...
@overload
def text(value: str | None, what: str, *, required: bool = False, limit: int = MAX_TEXT) -> str | None: ...
def text(value: str | None, what: str, *, required: bool = False, limit: int = MAX_TEXT) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InvalidValue(f"{what} is required and cannot be blank")
        return None
    if not isinstance(value, str):
        raise InvalidValue(f"{what} must be text, not {type(value).__name__}")
    if "\x00" in value:
        raise InvalidValue(f"{what} contains a NUL character")
    if len(value) > limit:
        raise InvalidValue(f"{what} is {len(value)} characters long; the limit is {limit}")
    found = _CONTROL.search(value)
    if found:
        raise ControlCharacter(what=what, char=found.group())
    return value


def line(value: str | None, what: str, *, required: bool = False, limit: int = 200) -> str | None:
    """:func:`text` on one line with no invisible characters: what names a person
    (owner, actor), shown in tables and compared by :func:`identity_key`."""
    checked = text(value, what, required=required, limit=limit)
    if checked is not None:
        odd = next((c for c in checked if unicodedata.category(c)[0] == "C" or unicodedata.category(c) in ("Zl", "Zp")), None)
        if odd is not None:
            raise ControlCharacter(what=what, char=odd)
    return checked


def actor(value: str) -> str:
    """A user name as given (surrounding spaces dropped); refused when it holds a
    control, format or line-break character (a newline, ESC, a zero-width space)."""
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise InvalidValue(f"invalid actor {value!r}: give a user name with --actor or CATALOG_ACTOR")
    try:
        line(value, "actor")
    except ControlCharacter as exc:
        raise InvalidValue(f"invalid actor {value!r}: it holds the invisible character {exc.char!r}; "
                           "give a plain user name with --actor or CATALOG_ACTOR") from None
    return value.strip()


def identity_key(value: str) -> str:
    """The form in which two people's names compare: Unicode NFKC, then case folded
    ('Bob', 'BOB' and fullwidth 'ｂｏｂ' are one person). Names are stored as given."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).casefold())


def same_person(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and identity_key(a) == identity_key(b)


def people(names: Iterable[str]) -> set[str]:
    """The distinct people among ``names``, as identity keys."""
    return {identity_key(n) for n in names}


def key(value: str, what: str) -> str:
    if not isinstance(value, str) or not _KEY.match(value):
        raise InvalidValue(
            f"invalid {what} name {value!r}: use letters, digits, '_', '.', ':', '/' or '-', at most 100 characters"
        )
    return value


def pairs(items: Iterable[str], what: str) -> dict[str, str]:
    """Parse K=V items (as typed on the command line); duplicate keys are refused."""
    out: dict[str, str] = {}
    for item in items:
        k, sep, v = item.partition("=")
        if not sep:
            raise InvalidValue(f"invalid --{what} {item!r}: write it as KEY=VALUE")
        if k in out:
            raise InvalidValue(f"--{what} {k!r} is given twice: give each key once")
        out[k] = v
    return out


def mapping(values: Mapping[str, object] | None, what: str, *, limit: int = MAX_VALUE) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in (values or {}).items():
        key(k, what)
        value = str(v)
        text(value, f"{what} {k!r}", limit=limit)
        no_credentials(value, f"{what} {k!r}", bare=True)
        out[k] = value  # stored exactly as given, blanks included
    return out


def metrics(values: Mapping[str, object] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in (values or {}).items():
        key(k, "metric")
        try:
            number = float(v)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise InvalidValue(f"metric {k!r} = {v!r} is not a number") from None
        if isinstance(v, bool) or not math.isfinite(number):
            raise InvalidValue(f"metric {k!r} = {v!r} is not a finite number")
        out[k] = number
    return out


def uri(value: str, what: str = "artifact URI") -> str:
    """Refuse URIs that carry a credential: they would end up in the lake and on the site."""
    text(value, what, required=True, limit=4_096)
    if any(c in value for c in "\t\n\r"):
        raise InvalidValue(f"{what} {value!r} contains a control character")
    _url_credentials(value, what)
    return value


def no_credentials(value: str, what: str, *, bare: bool = False) -> str:
    """Refuse text that carries a credential: every ``scheme://`` address in it is checked
    as :func:`uri` checks one (user:password@, a secret query parameter); with ``bare``
    (a value that may be an address written without a scheme: a parameter, a tag, an
    image reference), also a leading ``user:password@host``."""
    if "@" not in value and "?" not in value:
        return value  # no user info, no query: nothing that can hold a credential
    if "://" in value:
        for found in _EMBEDDED_URL.finditer(value):
            _url_credentials(found.group(), what)
    if bare:
        userinfo = _BARE_USERINFO.match(value)
        if userinfo and not _DIGEST.match(userinfo.group("rest")):
            raise UnsafeURI(field=what, value=_redacted_bare(value), detail="user:password@ in the address")
    return value


def _url_credentials(value: str, what: str) -> None:
    if "@" not in value and "?" not in value:
        return
    parts = urlsplit(value)
    userinfo = parts.netloc.rpartition("@")[0] if parts.scheme and "@" in parts.netloc else ""
    # 'user:password@' is a secret anywhere; a bare 'token@' is one on http(s) (a personal
    # access token as user name). Elsewhere '@' is this registry's version separator
    # (bq://project.table@snapshot-12), so it is left alone.
    if ":" in userinfo or (userinfo and parts.scheme in ("http", "https")):
        raise UnsafeURI(field=what, value=_redacted(value), detail="user:password@ in the address")
    for param, _ in parse_qsl(parts.query, keep_blank_values=True):
        if _SECRET_PARAMS.match(param):
            raise UnsafeURI(field=what, value=_redacted(value), detail=f"query parameter {param!r}")


def _redacted_bare(value: str) -> str:
    return value.partition("@")[2]


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*\Z")


def plain_uri(value: object) -> bool:
    """True only if :func:`uri` accepts ``value`` as it is; False when unsure (then ask
    :func:`uri`). A few string operations instead of ``urlsplit``: for bulk loads."""
    if type(value) is not str or not value or len(value) > 4_096 or not value.isprintable() or value.isspace():
        return False  # control characters are not printable
    if "@" not in value and "?" not in value:
        return True
    netloc = _plain_netloc(value)
    if netloc is None or "@" in netloc:
        return False  # user info, or what urlsplit may refuse
    if "?" not in value:
        return True
    query = value.partition("?")[2]
    if "#" in query or "%" in query or "+" in query:
        return False  # names parse_qsl would decode
    return not any(_SECRET_PARAMS.match(part.partition("=")[0]) for part in query.split("&"))


def remote_uri(value: str) -> bool:
    """True only for ``<scheme>://...`` with a scheme the catalog never reads locally
    (``file``, and one letter, a Windows drive, are local) and a host ``urlsplit``
    accepts: what ``provenance.local_path`` says None to, without ``urlsplit``."""
    head = value.partition("://")[0]
    return len(head) > 1 and head != "file" and _plain_netloc(value) is not None


def _plain_netloc(value: str) -> str | None:
    """What ``urlsplit`` takes as the host part of ``<scheme>://<netloc>...`` (up to the
    first '/', '?' or '#'); None when the form differs or ``urlsplit`` may refuse it."""
    head, sep, rest = value.partition("://")
    if not sep or not _SCHEME.match(head):
        return None
    netloc = rest.partition("/")[0].partition("?")[0].partition("#")[0]
    if "[" in netloc or "]" in netloc or not netloc.isascii():
        return None  # IPv6 brackets and non-ASCII hosts are checked (and may be refused) by urlsplit
    return netloc


def _redacted(value: str) -> str:
    parts = urlsplit(value)
    host = parts.netloc.rsplit("@", 1)[-1]
    return f"{parts.scheme}://{host}{parts.path}" + ("?..." if parts.query else "")


def strip_credentials(url: str) -> str:
    """Drop user:password@ from a URL (used for git remotes captured automatically)."""
    parts = urlsplit(url)
    if "@" in parts.netloc and parts.scheme in ("http", "https"):
        return parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]).geturl()
    return url


def moment(value: str | datetime) -> datetime:
    """Parse an --as-of time: ISO 8601; a time without zone is UTC."""
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise InvalidValue(
                f"invalid time {value!r}: use ISO 8601, e.g. 2026-11-20 or 2026-11-20T14:05:00Z"
            ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)
