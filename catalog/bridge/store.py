"""``CatalogStore``: MLflow's model-registry store interface over a catalog lake.

Every call is one call of :class:`catalog.Registry` (reads go through its views,
``Registry.sql`` with bound parameters), with the catalog's semantics rather than a
copy of MLflow's:

* an alias is a deployment target: setting it is ``deploy`` (approved versions only,
  with the target's gates); deleting it is ``undeploy``;
* stages are the approval state: ``None`` = candidate, ``Production`` = approved,
  ``Archived`` = deprecated or rejected; a transition to ``Production`` is ``approve``
  (with its gates), to ``Archived`` is ``deprecate`` (or ``reject`` for a candidate);
  ``Staging`` and a return to ``None`` are refused, saying what to do instead;
* deletes, renames, tags and descriptions are recorded events with history;
* version numbers are the catalog's (never reused, gaps kept).

A refusal raises :class:`MlflowException` carrying the catalog's one-line message,
with the error code that fits it (RESOURCE_DOES_NOT_EXIST, RESOURCE_ALREADY_EXISTS,
INVALID_PARAMETER_VALUE, INVALID_STATE).
"""

from __future__ import annotations

import contextlib
import os
import threading
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from mlflow.entities.model_registry import (
    ModelVersion,
    ModelVersionTag,
    RegisteredModel,
    RegisteredModelAlias,
    RegisteredModelTag,
)
from mlflow.entities.model_registry.model_version_stages import (
    STAGE_ARCHIVED,
    STAGE_NONE,
    STAGE_PRODUCTION,
    STAGE_STAGING,
    get_canonical_stage,
)
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    INTERNAL_ERROR,
    INVALID_PARAMETER_VALUE,
    INVALID_STATE,
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
)
from mlflow.store.entities.paged_list import PagedList
from mlflow.store.model_registry.abstract_store import AbstractStore

from .. import errors
from ..records import Version
from ..registry import Registry, default_actor
from . import search
from .uri import lake_location

# The approval state of a version, as the stage MLflow shows.
STAGES = {"candidate": STAGE_NONE, "approved": STAGE_PRODUCTION, "deprecated": STAGE_ARCHIVED, "rejected": STAGE_ARCHIVED}
# What MLflow keeps of a version beyond the catalog's fields, kept as the version's tags under
# these keys: the catalog shows them with its tags, MLflow as the version's own fields.
RUN_TAGS = {"run_id": "mlflow.run_id", "run_link": "mlflow.run_link", "source": "mlflow.source",
            "model_id": "mlflow.model_id"}
_HIDDEN = frozenset(RUN_TAGS.values())
# What the catalog records as the note of a decision an MLflow call makes (MLflow's calls carry none).
NOTE = "via the MLflow client: {call}"

_NOT_FOUND = (errors.ModelNotFound, errors.VersionNotFound, errors.TargetNotDeployed, errors.LakeNotFound)


def mlflow_actor() -> str:
    """Who an MLflow call acts as: CATALOG_ACTOR, else MLFLOW_TRACKING_USERNAME (the user
    MLflow's clients authenticate as), else the OS user."""
    return os.environ.get("CATALOG_ACTOR") or os.environ.get("MLFLOW_TRACKING_USERNAME") or default_actor()


def error_code(err: errors.CatalogError) -> int:
    """The MLflow error code that fits a catalog error."""
    if isinstance(err, _NOT_FOUND):
        return RESOURCE_DOES_NOT_EXIST
    if isinstance(err, errors.NameTaken):
        return RESOURCE_ALREADY_EXISTS
    if isinstance(err, errors.InvalidInput):
        return INVALID_PARAMETER_VALUE
    if isinstance(err, errors.Refused):
        return INVALID_STATE
    return INTERNAL_ERROR


@contextlib.contextmanager
def refusals() -> Iterator[None]:
    """Raise a catalog refusal as MLflow's exception, with the catalog's one-line message."""
    try:
        yield
    except errors.CatalogError as err:
        raise MlflowException(str(err), error_code=error_code(err)) from err


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def _int_version(version: Any) -> int:
    try:
        number = int(version)
    except (TypeError, ValueError):
        raise MlflowException(f"Invalid version {version!r}: versions are whole numbers from 1",
                              INVALID_PARAMETER_VALUE) from None
    if number < 1:
        raise MlflowException(f"Invalid version {version!r}: versions are whole numbers from 1", INVALID_PARAMETER_VALUE)
    return number


def version_entity(v: Version) -> ModelVersion:
    """A catalog version as MLflow's ModelVersion."""
    run = {field: v.tags.get(key) for field, key in RUN_TAGS.items()}
    moments = [m for m in (v.created_at, v.state_at, getattr(v, "updated_at", None)) if m is not None]
    return ModelVersion(
        name=v.model,
        version=v.version,  # type: ignore[arg-type]  # an int, as MLflow's local stores return it
        creation_timestamp=_ms(v.created_at),  # type: ignore[arg-type]
        last_updated_timestamp=_ms(max(moments)),
        description=v.description,
        user_id=v.created_by,
        current_stage=STAGES.get(v.state, STAGE_NONE),
        source=run["source"] or v.artifact_uri,
        run_id=run["run_id"],
        tags=[ModelVersionTag(k, val) for k, val in sorted(v.tags.items()) if k not in _HIDDEN],
        run_link=run["run_link"],
        aliases=list(v.deployed_to),
        model_id=run["model_id"],
    )


def model_entity(row: Mapping[str, Any], versions: Sequence[Version]) -> RegisteredModel:
    """A row of search.sql's ``registered_models`` and the model's versions, as MLflow's RegisteredModel."""
    latest: dict[str, Version] = {}
    for v in versions:
        stage = STAGES.get(v.state, STAGE_NONE)
        if stage not in latest or latest[stage].version < v.version:
            latest[stage] = v
    return RegisteredModel(
        name=row["name"],
        creation_timestamp=_ms(row["created_at"]),
        last_updated_timestamp=_ms(row["updated_at"]),
        description=row["description"],
        latest_versions=[version_entity(v) for v in latest.values()],
        tags=[RegisteredModelTag(k, val) for k, val in sorted(dict(row["tags"] or {}).items())],
        aliases=[RegisteredModelAlias(t, v.version) for v in versions for t in v.deployed_to],
    )


class CatalogStore(AbstractStore):
    """MLflow's model-registry store over the lake a ``catalog:`` / ``catalog+s3:`` URI names."""

    def __init__(self, store_uri: str | None = None, tracking_uri: str | None = None) -> None:
        super().__init__(store_uri, tracking_uri)
        self.store_uri = store_uri or ""
        self.tracking_uri = tracking_uri
        with refusals():
            self.location = lake_location(self.store_uri)
        self._registries: dict[str, Registry] = {}
        self._opening = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("_registries", None)
        state.pop("_opening", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._registries = {}
        self._opening = threading.Lock()

    def _reg(self) -> Registry:
        """The registry of this lake acting as the caller (one per actor, kept open)."""
        actor = mlflow_actor()
        with self._opening:
            reg = self._registries.get(actor)
            if reg is None:
                with refusals():
                    reg = self._registries[actor] = Registry(self.location, actor=actor)
            return reg

    # -- registered models ------------------------------------------------------------

    def create_registered_model(self, name: str, tags: Any = None, description: str | None = None,
                                deployment_job_id: str | None = None) -> RegisteredModel:
        with refusals():
            self._reg().create_model(name, description=description, tags={t.key: t.value for t in tags or []})
        return self.get_registered_model(name)

    def update_registered_model(self, name: str, description: str | None,
                                deployment_job_id: str | None = None) -> RegisteredModel:
        with refusals():
            self._reg().describe(name, description=description or None)
        return self.get_registered_model(name)

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        with refusals():
            self._reg().rename(name, new_name, note=NOTE.format(call="rename_registered_model"))
        return self.get_registered_model(new_name)

    def delete_registered_model(self, name: str) -> None:
        with refusals():
            self._reg().delete(name, note=NOTE.format(call="delete_registered_model"))

    def get_registered_model(self, name: str) -> RegisteredModel:
        found = self._models(search.one_model(name))[0]
        if not found:
            with refusals():
                raise errors.ModelNotFound(model=name)
        return found[0]

    def search_registered_models(self, filter_string: str | None = None, max_results: int | None = None,
                                 order_by: list[str] | None = None, page_token: str | None = None) -> PagedList:
        query = search.registered_models(filter_string, max_results or 100, order_by, page_token)
        models, token = self._models(query)
        return PagedList(models, token)

    def _models(self, query: search.Query) -> tuple[list[RegisteredModel], str | None]:
        reg = self._reg()
        with refusals():
            try:
                rows = reg.sql(query.sql, params=query.params).rows
            except errors.LakeNotFound:
                return [], None  # a lake nothing was registered in yet holds no model
            page = rows[: query.limit]
            names = [r["name"] for r in page]
            by_model: dict[str, list[Version]] = {n: [] for n in names}
            if names:
                for r in reg.sql(search.related("versions_of"), params={"names": names}).rows:
                    by_model[r["model"]].append(Version.from_row(r))
        return [model_entity(r, by_model[r["name"]]) for r in page], query.next_token(len(rows))

    def get_latest_versions(self, name: str, stages: list[str] | None = None) -> list[ModelVersion]:
        """The latest version in each stage asked. With no stages: the latest approved
        version only (what ``MODEL@latest`` resolves to), so ``models:/NAME/latest`` never
        serves a candidate."""
        wanted = {get_canonical_stage(s) for s in stages} if stages else {STAGE_PRODUCTION}
        versions = self._versions(name)
        latest: dict[str, Version] = {}
        for v in versions:
            stage = STAGES.get(v.state, STAGE_NONE)
            if stage in wanted and (stage not in latest or latest[stage].version < v.version):
                latest[stage] = v
        return [version_entity(v) for v in latest.values()]

    def _versions(self, name: str) -> list[Version]:
        """Every live version of the model ``name`` (none for a model created without one)."""
        reg = self._reg()
        with refusals():
            query = search.one_model(name)
            try:
                found = reg.sql(query.sql, params=query.params).rows
            except errors.LakeNotFound:
                found = []
            if not found:
                raise errors.ModelNotFound(model=name)
            rows = reg.sql(search.related("versions_of"), params={"names": [name]}).rows
        return [Version.from_row(r) for r in rows]

    def set_registered_model_tag(self, name: str, tag: RegisteredModelTag) -> None:
        with refusals():
            self._reg().tag(name, set={tag.key: tag.value})

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        with refusals():
            self._reg().tag(name, delete=[key])

    # -- model versions -------------------------------------------------------------------

    def create_model_version(self, name: str, source: str, run_id: str | None = None, tags: Any = None,
                             run_link: str | None = None, description: str | None = None,
                             local_model_path: str | None = None, model_id: str | None = None) -> ModelVersion:
        artifact, run_id = self._storage_location(source, run_id, model_id)
        given = {"source": source if source != artifact else None, "run_id": run_id, "run_link": run_link,
                 "model_id": model_id}
        kept = {RUN_TAGS[field]: value for field, value in given.items() if value}
        with refusals():
            v = self._reg().register(
                name, artifact, description=description, tags={**{t.key: t.value for t in tags or []}, **kept},
                capture_git=False,
            )
        return self.get_model_version(name, v.version)

    def _storage_location(self, source: str, run_id: str | None, model_id: str | None) -> tuple[str, str | None]:
        """Where the artifact of ``source`` lives (what the catalog registers and resolves to),
        and the run it came from: a ``models:/`` source is resolved as MLflow's own stores do."""
        if urllib.parse.urlparse(source).scheme != "models" and not (model_id and not run_id):
            return source, run_id
        from mlflow.store.artifact.utils.models import _parse_model_uri
        from mlflow.tracking import MlflowClient

        location = source
        try:
            if urllib.parse.urlparse(source).scheme == "models":
                parsed = _parse_model_uri(source)
                if parsed.model_id is not None:
                    logged = MlflowClient(tracking_uri=self.tracking_uri).get_logged_model(parsed.model_id)
                    location, run_id = logged.artifact_location, run_id or logged.source_run_id
                elif parsed.name is None:
                    raise MlflowException(f"not a model URI: {source}")
                elif parsed.alias is not None:
                    found = self.get_model_version_by_alias(parsed.name, parsed.alias)
                    location = self.get_model_version_download_uri(parsed.name, found.version)
                elif parsed.version is not None:
                    location = self.get_model_version_download_uri(parsed.name, parsed.version)
                else:  # models:/NAME/STAGE or models:/NAME/latest
                    stage = [parsed.stage] if parsed.stage else None
                    latest = self.get_latest_versions(parsed.name, stage)
                    if not latest:
                        raise MlflowException(f"no version of {parsed.name!r} in that stage")
                    location = self.get_model_version_download_uri(parsed.name, latest[0].version)
            if model_id and not run_id:
                run_id = MlflowClient(tracking_uri=self.tracking_uri).get_logged_model(model_id).source_run_id
        except MlflowException as exc:
            raise MlflowException(f"cannot resolve the model source {source!r}: {exc.message}",
                                  INVALID_PARAMETER_VALUE) from exc
        return location, run_id

    def update_model_version(self, name: str, version: Any, description: str | None) -> ModelVersion:
        with refusals():
            self._reg().describe(name, _int_version(version), description=description or None)
        return self.get_model_version(name, version)

    def transition_model_version_stage(self, name: str, version: Any, stage: str,
                                       archive_existing_versions: bool) -> ModelVersion:
        number = _int_version(version)
        stage = get_canonical_stage(stage)
        ref = f"{name} v{number}"
        if archive_existing_versions:
            raise MlflowException(
                "archive_existing_versions is not supported by the catalog store: each retirement is its own "
                f"recorded decision; move {ref} alone, then archive the others one by one (stage Archived)",
                INVALID_PARAMETER_VALUE,
            )
        if stage == STAGE_STAGING:
            raise MlflowException(
                f"the catalog has no Staging stage: approve {ref} (stage Production) and deploy it to a staging "
                f"target by setting an alias: client.set_registered_model_alias({name!r}, 'staging', {number})",
                INVALID_STATE,
            )
        if stage == STAGE_NONE:
            raise MlflowException(
                f"a decision is not undone: {ref} cannot return to candidate (stage None); register a new version",
                INVALID_STATE,
            )
        reg = self._reg()
        note = NOTE.format(call=f"transition_model_version_stage to {stage}")
        with refusals():
            if stage == STAGE_PRODUCTION:
                reg.approve(name, number, note=note)
            elif reg.show(name, number).state == "candidate":  # type: ignore[union-attr]
                reg.reject(name, number, note=note)
            else:
                reg.deprecate(name, number, note=note)
        return self.get_model_version(name, number)

    def delete_model_version(self, name: str, version: Any) -> None:
        with refusals():
            self._reg().delete(name, _int_version(version), note=NOTE.format(call="delete_model_version"))

    def get_model_version(self, name: str, version: Any) -> ModelVersion:
        number = _int_version(version)
        with refusals():
            found = self._reg().show(name, number)
        assert isinstance(found, Version)
        return version_entity(found)

    def get_model_version_download_uri(self, name: str, version: Any) -> str:
        """The version's artifact URI, as ``catalog resolve MODEL:VERSION`` answers it."""
        number = _int_version(version)
        with refusals():
            found = self._reg().show(name, number)
        assert isinstance(found, Version)
        return found.artifact_uri

    def search_model_versions(self, filter_string: str | None = None, max_results: int | None = None,
                              order_by: list[str] | None = None, page_token: str | None = None) -> PagedList:
        query = search.model_versions(filter_string, max_results or 10_000, order_by, page_token)
        with refusals():
            try:
                rows = self._reg().sql(query.sql, params=query.params).rows
            except errors.LakeNotFound:
                return PagedList([], None)
        page = [version_entity(Version.from_row(r)) for r in rows[: query.limit]]
        return PagedList(page, query.next_token(len(rows)))

    def set_model_version_tag(self, name: str, version: Any, tag: ModelVersionTag) -> None:
        with refusals():
            self._reg().tag(name, _int_version(version), set={tag.key: tag.value})

    def delete_model_version_tag(self, name: str, version: Any, key: str) -> None:
        with refusals():
            self._reg().tag(name, _int_version(version), delete=[key])

    # -- aliases: deployment targets ---------------------------------------------------------

    def set_registered_model_alias(self, name: str, alias: str, version: Any) -> None:
        """Deploy the version to the target ``alias``, with the deploy gates (approved
        versions only). Setting an alias to the version it already names writes nothing."""
        number = _int_version(version)
        reg = self._reg()
        with refusals():
            running = {d.target: d.version for d in reg.show(name).deployments}  # type: ignore[union-attr]
            if running.get(alias) == number:
                return
            reg.deploy(name, number, target=alias, note=NOTE.format(call="set_registered_model_alias"))

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        """The target ``alias`` stops running the model (``catalog undeploy``)."""
        with refusals():
            self._reg().undeploy(name, target=alias, note=NOTE.format(call="delete_registered_model_alias"))

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        with refusals():
            info = self._reg().show(name)
            running = {d.target: d.version for d in info.deployments}  # type: ignore[union-attr]
            if alias not in running:
                raise errors.TargetNotDeployed(model=name, target=alias, detail="")
        return self.get_model_version(name, running[alias])

    # -- what the catalog does not keep --------------------------------------------------------

    def create_prompt(self, *args: Any, **kwargs: Any) -> Any:
        raise MlflowException(
            "the catalog store keeps models, not prompts: keep prompts in an MLflow tracking server's registry",
            INVALID_STATE,
        )

    create_prompt_version = create_prompt

