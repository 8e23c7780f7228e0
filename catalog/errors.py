"""Every error the registry raises, and every message it says.

Two families, mapped to exit codes by the CLI's one error funnel:

* :class:`Refused` (exit 1): the input is well formed but the registry says no
  (not found, illegal transition, gate failed, conflict).
* :class:`InvalidInput` (exit 2): the input itself is malformed.

Each class carries its fields (``model``, ``version``, ``target``...) so tests
assert on fields rather than wording; the wording lives here and nowhere else.
"""

from __future__ import annotations

from typing import Any


class CatalogError(Exception):
    """Base of every error the catalog raises on purpose."""

    exit_code = 1
    template = "{detail}"

    def __init__(self, detail: str = "", **fields: object) -> None:
        self.detail = detail
        self.fields = fields
        for key, value in fields.items():
            setattr(self, key, value)
        super().__init__(self.template.format(detail=detail, **fields))

    @property
    def message(self) -> str:
        return str(self)

    def __getattr__(self, name: str) -> Any:
        """The fields given (``err.model``, ``err.version``...): set on the instance, and
        declared here so that type checkers know a refusal carries them."""
        raise AttributeError(f"{type(self).__name__} has no field {name!r}")


# --- refusals (exit 1) -------------------------------------------------------


class Refused(CatalogError):
    """The registry refuses a well-formed request."""


class LakeNotFound(Refused):
    template = (
        "no lake at {lake}: register a model there first "
        "(catalog --lake {lake} register ...) or pass --lake / set CATALOG_LAKE"
    )


class ModelNotFound(Refused):
    template = "model '{model}' is not registered: see `catalog list` for the models in this lake"


class VersionNotFound(Refused):
    template = "version {version} of '{model}' is not registered: see `catalog history {model}`"


class ModelRenamed(ModelNotFound):
    """The name was renamed away: it stays reserved to the model, which goes by ``new_name``."""

    template = (
        "model '{model}' was renamed to '{new_name}': use that name (the old one stays reserved "
        "to it, so that {model}:N never means another model)"
    )


class ModelDeleted(ModelNotFound):
    template = (
        "model '{model}' was deleted on {at} by {by}: see `catalog history` (its records are kept); "
        "register or create it again to bring it back (its numbers continue)"
    )


class VersionDeleted(VersionNotFound):
    template = "version {version} of '{model}' was deleted: see `catalog history {model}`"


class NameTaken(Refused):
    """A name a model cannot take: another model has it, or had it (renamed away)."""

    template = "cannot {action} '{model}': {detail}"


class VersionDeployed(Refused):
    """A version (or a model) that a target runs cannot be deleted."""

    template = (
        "{what} runs on '{target}'; undeploy it first: catalog undeploy {model} --target {target} --note WHY"
    )


class VersionTaken(Refused):
    """An explicit version number (an import) that is already claimed."""

    template = "version {version} of '{model}' is already claimed (its numbers reach {end}): {detail}"


class ImportOutOfOrder(Refused):
    template = (
        "cannot import this {kind} of '{model}' at {at}: {detail}; imported decisions go in the "
        "order they were made, after the model's latest ({latest})"
    )


class TargetNotDeployed(Refused):
    template = (
        "'{model}' is not deployed to '{target}'{detail}: "
        "see `catalog show {model}` for where it runs"
    )


class NoApprovedVersion(Refused):
    template = "'{model}' has no approved version: approve one first (catalog approve {model} VERSION)"


class IllegalTransition(Refused):
    template = "{detail}"


class NoRollbackCandidate(Refused):
    template = (
        "'{model}' has no rollback candidate on '{target}'{detail}: a candidate is an approved "
        "version that ran there before and was not rolled back from there since its last deploy; {hint}"
    )

    def __init__(self, detail: str = "", *, model: str, target: str, hint: str = "", **fields: object) -> None:
        hint = hint or f"see `catalog candidates {model} --target {target}`"
        super().__init__(detail, model=model, target=target, hint=hint, **fields)

    @classmethod
    def because(cls, model: str, target: str, excluded: list[tuple[int, str, str]]) -> NoRollbackCandidate:
        """Nothing left to roll back to; ``excluded`` holds (version, reason, detail) of what ran there."""
        why = [f"v{version} {detail}" for version, reason, detail in excluded if reason != "running"]
        back = [version for version, reason, _ in excluded if reason == "rolled back"]
        hint = (
            f"deploy v{back[0]} again, with its gates, to make it one: catalog deploy {model} {back[0]} --target {target}"
            if back else ""
        )
        return cls(f" ({'; '.join(why)})" if why else "", model=model, target=target, hint=hint)


class NotRollbackCandidate(NoRollbackCandidate):
    """``rollback --to VERSION`` names a version that ran on the target but is excluded."""

    template = "cannot roll '{target}' back to {model} v{version}: {detail}; {hint}"

    HINTS = {
        "running": "see `catalog candidates {model} --target {target}` for the versions it can go back to",
        "rolled back": "only a new deploy brings it back, with its gates: catalog deploy {model} {version} --target {target}",
    }
    OTHER = "only approved versions serve as rollback candidates (see `catalog history {model}`)"

    def __init__(self, detail: str = "", *, model: str, target: str, version: int, reason: str, **fields: object) -> None:
        hint = self.HINTS.get(reason, self.OTHER).format(model=model, version=version, target=target)
        super().__init__(detail, model=model, target=target, version=version, reason=reason, hint=hint, **fields)


class LakeBusy(Refused):
    template = "{detail}"


class LakeDamaged(Refused):
    template = "the lake has a damaged file {path}: {detail}; run `catalog doctor` to find and quarantine it"


class QueryRefused(Refused):
    template = "{detail}"


class QueryFailed(Refused):
    template = "query failed: {detail}"


# --- malformed input (exit 2) -------------------------------------------------


class InvalidInput(CatalogError):
    """The request is malformed; nothing was attempted."""

    exit_code = 2


class InvalidName(InvalidInput):
    template = "invalid {kind} name {value!r}: {detail}"


class InvalidValue(InvalidInput):
    template = "{detail}"


class InvalidReference(InvalidInput):
    template = (
        "invalid reference {value!r}: use MODEL@TARGET, MODEL@latest or MODEL:VERSION "
        "(e.g. churn@prod-eu)"
    )


class UnsafeURI(InvalidInput):
    template = (
        "refusing {field} {value!r}: it carries a credential ({detail}); register the URI "
        "without it and let the reader authenticate through its own environment"
    )


class ArtifactNotFound(InvalidInput):
    template = (
        "artifact {path} does not exist: give an existing local path or a remote URI "
        "(s3://, gs://, https://...)"
    )


class DataRefNotFound(InvalidInput):
    template = (
        "data ref {path} is a local path that does not exist: give a URI with a version or "
        "snapshot (e.g. s3://bucket/table@2026-11-01) or pass --allow-missing-data"
    )


class ConfigInvalid(InvalidInput):
    template = "{path}: {detail}"


class GateFailed(Refused):
    """A promotion gate refused an approval or a deployment; ``failures`` lists each."""

    template = "{action} of {model} v{version} refused by {count} gate(s): {detail}"


class SiteBuildFailed(CatalogError):
    """MkDocs refused the generated pages (a warning under --strict, or a bad mkdocs.yml)."""

    template = "the catalog site did not build: {detail}"


class SiteAssetsUnavailable(Refused):
    """The SQL page's DuckDB-WASM files are neither in the cache nor fetchable from the npm registry."""

    template = (
        "the site's SQL page needs {package} from the npm registry, and neither the cache {cache} nor npm "
        "could supply it ({detail}): run `{command}` where the registry is reachable (and copy the file into "
        "{cache} here), or build without the SQL page (catalog build --no-sql-page)"
    )


class ControlCharacter(InvalidInput):
    """Text holds a character a terminal would act on (ESC, BEL...) or one that cannot be seen."""

    template = "{what} holds the control character {char!r}: remove it (a terminal acts on such characters)"


class ArtifactNotRegular(InvalidInput):
    """A local artifact is not a regular file or a folder of regular files."""

    template = (
        "artifact {path} is {kind}{detail}: register a regular file, or a folder holding only "
        "regular files and folders"
    )


# --- where the site is written (refusals: nothing was written) ------------------


class OutputInLake(Refused):
    template = (
        "refusing to build the site into {out}: it {relation} the lake {lake}; "
        "choose a folder outside the lake (e.g. --out site)"
    )


class OutputNotFolder(InvalidInput):
    template = "refusing to build the site into {out}: it is a file, not a folder; choose a new or empty folder"


class OutputNotOurs(Refused):
    template = (
        "refusing to build the site into {out}: {detail}; choose a new or empty folder, "
        "or empty this one yourself (a build only replaces what an earlier build wrote)"
    )


class UnsafeSitePath(Refused):
    template = (
        "refusing to write {path!r}: it is not a plain path inside the site folder "
        "(a forged name in the lake?); run `catalog doctor` on the lake"
    )


# --- conditions of the machine, not bugs -------------------------------------------


class LakeReadOnly(Refused):
    template = (
        "the lake {lake} is read-only here ({detail}): reads work, but to record anything "
        "run where the lake is writable or ask for write access"
    )


class LakeNotFolder(InvalidInput):
    template = "--lake {lake} is a file, not a lake folder: pass the lake's folder (or a new folder to start one)"


class LakeSlotIsFile(Refused):
    template = (
        "{path} in the lake {lake} is a file where the lake keeps a folder: move that file out "
        "of the lake, then run `catalog doctor --repair`"
    )


class PortUnavailable(Refused):
    template = "port {port} on {host} is not available ({detail}): stop what uses it or pick another port (e.g. --port 8001)"


class InvalidPort(InvalidInput):
    template = "invalid port {port}: use a number from 1 to 65535 (or 0 for any free port)"


class AnchorMissing(Refused):
    template = (
        "the lake {lake} has no schema anchor for its '{table}' table, so it cannot be read: "
        "run `catalog doctor --repair` to write it"
    )


class LakeLinked(Refused):
    template = (
        "{path} in the lake is a link: the lake's files and folders must be its own; "
        "run `catalog doctor --repair` to move the link to _quarantine"
    )


class ConflictingCopies(Refused):
    """Two files hold the same record (key) with different content: reads of it fail closed."""

    template = (
        "{what} is recorded differently in {first} and {second}: the lake is damaged; "
        "run `catalog doctor` (with --repair to quarantine the copy its claim does not vouch for)"
    )


# --- object-store lakes (s3://) ------------------------------------------------------


class ObjectStoreExtraMissing(InvalidInput):
    template = (
        "the lake {lake} is in an object store, which needs the optional S3 client: "
        "pip install 'model-catalog[s3]'"
    )


class ObjectStoreUnreachable(Refused):
    template = (
        "cannot reach the object store for {lake} ({detail}): check AWS_ENDPOINT_URL "
        "(or endpoint_url in your AWS profile) and the network"
    )


class BucketNotFound(Refused):
    template = "the bucket '{bucket}' of the lake {lake} does not exist: create it, or check the endpoint and region"


class ObjectStoreNoCredentials(Refused):
    template = (
        "no credentials for the lake {lake} ({detail}): set AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE naming a profile in ~/.aws"
    )


class ObjectStoreDenied(Refused):
    template = "the object store refused to let these credentials read the lake {lake} ({detail}): ask for read access"


class ObjectStoreUnsafe(Refused):
    template = (
        "refusing to write to the lake {lake}: its server {detail}, so concurrent writers could "
        "overwrite each other; use a server (or proxy) that honours If-None-Match and If-Match"
    )


class HistoryKept(Refused):
    template = (
        "the bucket of the lake {lake} keeps old versions of objects and {detail}: redacted values "
        "survive there; allow s3:ListBucketVersions and s3:DeleteObjectVersion, or suspend versioning "
        "and delete the old versions"
    )


# --- catalog copy (catalog.copying) --------------------------------------------


class CopySourceNotLake(Refused):
    template = "{source} is not a lake (it has no versions or events folder): nothing was copied"


class CopyDestinationNotEmpty(Refused):
    template = (
        "{destination} already holds {what}: copy into a new, empty location "
        "(nothing was written)"
    )


class CopyOverlap(InvalidInput):
    template = "{source} and {destination} overlap (one is inside the other): copy to a location outside the source"


class CopyConflict(Refused):
    template = (
        "{detail} while copying into {destination}: the destination holds a partial copy; "
        "remove it and copy again into an empty location"
    )


class CopyMismatch(Refused):
    template = (
        "the copy at {destination} does not match {source}: {detail}; "
        "remove the copy and copy again into an empty location"
    )
