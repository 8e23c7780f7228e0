"""The fields of a version that a registrant gives, declared once.

Each row says what a field holds and how it is checked. What derives from it:
the lake's ``versions`` columns for these fields (``schema``), ``register``'s
checks (``registering.prepare``), the bulk path's lean check (``bulk.LeanCheck``),
the fields a policy may require (``config.REQUIRABLE``), the fields a redaction
may remove (``redaction.REDACTABLE``), and the keywords a bulk record may hold.
A test holds ``Registry.register``'s keywords and the ``catalog register``
options to this table.

Pure data: importing it costs nothing (no pyarrow).
"""

from __future__ import annotations

from dataclasses import dataclass

from .validate import MAX_TEXT, MAX_VALUE


@dataclass(frozen=True)
class Field:
    """One field of a version as a registrant gives it."""

    name: str  # the keyword of Registry.register and the column in the lake
    column: str  # its type in the lake, as schema spells it
    kind: str  # how register checks it: line, text, uri, mapping, data, parents, metrics, sha256
    label: str  # how messages name it ("runtime image", "tag 'team'")
    option: str  # the `catalog register` option that sets it
    limit: int | None = None  # longest text accepted (of each value, for a mapping)
    # Whether it may hold an address that carries a credential, and how it is looked for:
    # "uri": it is an address (check.uri refuses user:password@ and secret parameters);
    # "free": free text, each scheme:// address in it is checked;
    # "bare": it may be an address written without a scheme (user:pass@host/img);
    # None: it cannot hold one (a commit, numbers, a checksum, model names).
    credentials: str | None = None
    requirable: bool = True  # a policy may list it under `required`
    redactable: bool = False  # `catalog redact --field` may remove its values
    lean: bool = True  # the bulk path's lean check can vouch for it; else such records take register's checks

    def empty(self) -> object:
        """The value the lake keeps when the field is not given."""
        return {"mapping": {}, "metrics": {}, "data": [], "parents": []}.get(self.kind)


FIELDS: tuple[Field, ...] = (
    Field("owner", "string", "line", "owner", "--owner", limit=200, redactable=True),
    Field("description", "string", "text", "description", "--description", limit=MAX_TEXT, credentials="free",
          redactable=True),
    Field("tags", "map<string,string>", "mapping", "tag", "--tag", limit=MAX_VALUE, credentials="bare", redactable=True),
    Field("code_repo", "string", "uri", "code repo", "--code-repo", limit=1_000, credentials="uri", redactable=True),
    Field("code_version", "string", "text", "code version", "--code-version", limit=200),
    Field("runtime_image", "string", "text", "runtime image", "--image", limit=1_000, credentials="bare",
          redactable=True),
    Field("data_refs", "list<string>", "data", "data ref", "--data", credentials="uri", redactable=True),
    Field("parents", "list<parent>", "parents", "parent", "--parent"),
    Field("metrics", "map<string,double>", "metrics", "metric", "--metric"),
    Field("params", "map<string,string>", "mapping", "param", "--param", limit=MAX_VALUE, credentials="bare",
          redactable=True),
    Field("dashboards", "map<string,string>", "mapping", "dashboard", "--dashboard", limit=MAX_VALUE,
          credentials="uri", redactable=True),
    Field("artifact_sha256", "string", "sha256", "sha256", "--sha256"),
)

BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}
NAMES: tuple[str, ...] = tuple(BY_NAME)
