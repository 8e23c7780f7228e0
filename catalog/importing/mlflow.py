"""Reading an MLflow model registry (a tracking URI: a SQLite file or a server) into a :class:`Plan`.

Everything goes through MLflow's own client (``MlflowClient``), imported here and only
when an import runs. What lands where is the README's field-mapping table
("Coming from MLflow / GTO"); in short:

* a registered model's description and tags become the model's (``describe`` and
  ``tag`` events dated by its last update); a model with no version is ``create``-d;
  on a re-run, descriptions and tags (of models and versions) changed since are
  written where they differ from the lake;
* each version keeps its number (gaps too), creation time, creator, description,
  tags, source and run; the artifact is where MLflow stores it (``runs:/`` and logged
  ``models:/`` sources resolved to their storage location, the source kept in origin);
* from its run: metrics (latest value of each), params, the git commit and repository
  (``mlflow.source.git.*``) and dataset inputs (``URI@digest`` data refs);
* stages (MLflow keeps only the current one, kept in origin): Production is an
  approval, Archived retires the version (rejects a candidate, deprecates an approved
  one), both dated by the version's last update; Staging leaves it a candidate (as the
  MLflow store of ``catalog.bridge`` reads them: approved is Production);
* aliases are deployments to a target of the alias's name, dated by the import
  (MLflow records neither when an alias was set nor by whom).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from .. import validate as check
from ..errors import CatalogError, ImportClientMissing, ImportSourceInvalid, ImportUnreadable, ImportUnsupported
from ..progress import Progress, ticker
from ..provenance import local_path
from . import Plan, PlannedEvent, PlannedVersion, utc_from_millis

SYSTEM = "mlflow"
PAGE = 1000
_PROMPT_TAG = "mlflow.prompt.is_prompt"
_UNKNOWN = "unknown"


def tracking_uri(value: str) -> str:
    """The tracking URI as the lake records it: a path to a SQLite file becomes
    ``sqlite:///<absolute path>``; a server URL loses any user:password@. Refuses a
    database file that does not exist (MLflow would create an empty one)."""
    check.text(value, "tracking URI", required=True, limit=4_096)
    scheme = urlsplit(value).scheme
    if scheme in ("http", "https"):
        return check.strip_credentials(value.rstrip("/"))
    if scheme == "sqlite" or (len(scheme) <= 1 and not value.startswith(("databricks", "file:"))):
        path = value[len("sqlite:///"):] if value.startswith("sqlite:///") else value
        if scheme == "sqlite" and not value.startswith("sqlite:///"):
            raise ImportSourceInvalid("write a SQLite tracking URI as sqlite:///path/to/mlflow.db", source=value)
        path = os.path.abspath(os.path.expanduser(path))
        if not os.path.isfile(path) or os.path.getsize(path) == 0:
            raise ImportSourceInvalid("no MLflow database there (give the path of an existing mlflow.db, "
                                      "sqlite:///path/to/mlflow.db or an http(s):// server)", source=value)
        return "sqlite:///" + path
    raise ImportSourceInvalid("give a SQLite file (path or sqlite:///...) or an MLflow server (http(s)://...)",
                              source=value)


def read(uri: str, progress: Progress | None = None) -> Plan:
    """Everything the MLflow registry at ``uri`` holds, as a plan."""
    source = tracking_uri(uri)
    client = _client(source)
    plan = Plan(SYSTEM, source)
    reader = _Reader(client, source, plan)
    try:
        reader.read(progress)
    except CatalogError:
        raise
    except Exception as exc:  # MLflow raises its own exceptions, and the network its own
        raise ImportUnreadable(" ".join(str(exc).split())[:300] or type(exc).__name__, source=source) from None
    return plan


def _client(source: str) -> Any:
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise ImportClientMissing(system="MLflow", what="the MLflow client",
                                  package="'model-catalog[mlflow]' (or mlflow, for a SQLite file)") from None
    if source.startswith("sqlite:"):
        try:
            import sqlalchemy  # noqa: F401  (mlflow-skinny reads servers only; a database needs the full mlflow)
        except ImportError:
            raise ImportClientMissing(system="an MLflow database", what="MLflow's SQL store",
                                      package="mlflow") from None
    return MlflowClient(tracking_uri=source, registry_uri=source)


def _pages(search: Callable[..., Any], **options: Any) -> Iterator[Any]:
    token = None
    while True:
        page = search(max_results=PAGE, page_token=token, **options)
        yield from page
        token = page.token
        if not token:
            return


def _when(ms: int | None) -> datetime:
    return utc_from_millis(ms) or datetime.now(timezone.utc)


class _Reader:
    def __init__(self, client: Any, source: str, plan: Plan) -> None:
        self.client, self.source, self.plan = client, source, plan
        self.runs: dict[str, Any] = {}
        self.logged: dict[str, Any] = {}
        self.now = datetime.now(timezone.utc)

    def read(self, progress: Progress | None) -> None:
        models = {}
        for rm in _pages(self.client.search_registered_models):
            if (rm.tags or {}).get(_PROMPT_TAG) == "true":
                self.plan.not_brought.append(f"prompt '{rm.name}': MLflow prompts are not models")
                continue
            models[rm.name] = rm
        versions: dict[str, list[Any]] = {name: [] for name in models}
        for mv in _pages(self.client.search_model_versions):
            if mv.name in versions:
                versions[mv.name].append(mv)
        tick = ticker(progress, "import reading MLflow", sum(map(len, versions.values())) or None)
        for name, rm in models.items():
            self._model(rm, sorted(versions[name], key=lambda mv: int(mv.version)), tick)
        if tick is not None:
            tick.finish()

    def _name(self, name: str) -> str:
        try:
            return check.name(name)
        except CatalogError as exc:
            raise ImportUnsupported(str(exc), what=f"MLflow model {name!r}", source=self.source) from None

    def _model(self, rm: Any, versions: list[Any], tick: Any) -> None:
        plan, name = self.plan, self._name(rm.name)
        plan.models.append(name)
        mid = f"registered_models/{rm.name}"
        updated = _when(rm.last_updated_timestamp or rm.creation_timestamp)
        label = f"MLflow model '{rm.name}'"
        no_actor = "MLflow records no actor for a registered model's changes"
        if not versions:
            plan.events.append(PlannedEvent(
                name, None, "create", _when(rm.creation_timestamp), _UNKNOWN, plan.origin(mid), label,
                note=no_actor, description=rm.description or None, tags=dict(rm.tags or {}) or None,
            ))
        stamp = rm.last_updated_timestamp or rm.creation_timestamp
        # What the model says now; written where it differs from the lake (new, or changed since)
        plan.events.append(PlannedEvent(name, None, "describe", updated, _UNKNOWN,
                                        plan.origin(f"{mid}/description@{stamp}"), label, note=no_actor,
                                        description=rm.description or None))
        plan.events.append(PlannedEvent(name, None, "tag", updated, _UNKNOWN, plan.origin(f"{mid}/tags@{stamp}"),
                                        label, note=no_actor, tags=dict(rm.tags or {})))
        ids = {}
        for mv in versions:
            ids[str(mv.version)] = self._version(name, mv)
            if tick is not None:
                tick()
        for alias, number in sorted((rm.aliases or {}).items()):
            vid = ids.get(str(number))
            if vid is None:
                plan.not_brought.append(f"alias '{alias}' of '{rm.name}': version {number} is not in the registry")
                continue
            plan.events.append(PlannedEvent(
                name, vid, "deploy", self.now, _UNKNOWN, plan.origin(f"{mid}/aliases/{alias}/{number}", alias=alias),
                f"MLflow alias '{alias}' of '{rm.name}' (v{number})", target=alias,
                note=f"MLflow alias '{alias}' (MLflow records neither when an alias was set nor by whom: "
                     "dated by the import)",
            ))

    def _version(self, name: str, mv: Any) -> str:
        plan = self.plan
        vid = f"model_versions/{mv.name}/{mv.version}"
        label = f"MLflow '{mv.name}' v{mv.version}"
        run = self._run(mv.run_id)
        logged = self._logged(getattr(mv, "model_id", None))
        run_id = mv.run_id or (logged.source_run_id if logged is not None else None)
        if run is None and run_id:
            run = self._run(run_id)
        tags = dict(run.data.tags) if run is not None else {}
        record: dict[str, Any] = {
            "version": int(mv.version),
            "artifact_uri": self._artifact(mv, run, logged, label),
            "created_at": _when(mv.creation_timestamp),
            "created_by": mv.user_id or (run.info.user_id if run is not None else None) or _UNKNOWN,
            "description": mv.description or None,
            "tags": dict(mv.tags or {}),
            "metrics": {**(run.data.metrics if run is not None else {}), **_logged_metrics(logged)},
            "params": {**(run.data.params if run is not None else {}), **(dict(logged.params or {}) if logged else {})},
            "code_version": tags.get("mlflow.source.git.commit"),
            "code_repo": _repo(tags.get("mlflow.source.git.repoURL") or tags.get("mlflow.gitRepoURL")),
            "data_refs": _datasets(run),
        }
        origin = plan.origin(
            vid, source_uri=mv.source, run_id=run_id, run_link=mv.run_link or self._run_link(run),
            experiment_id=run.info.experiment_id if run is not None else None,
            run_name=tags.get("mlflow.runName"), git_branch=tags.get("mlflow.source.git.branch"),
            logged_model_id=getattr(mv, "model_id", None), status=mv.status if mv.status != "READY" else None,
            created_by_from=None if mv.user_id else ("run" if run is not None and run.info.user_id else "unknown"),
            stage=mv.current_stage if mv.current_stage not in (None, "None") else None,
        )
        plan.versions.append(PlannedVersion(name, record, origin, label))
        # A version imported before may have changed since: its description and tags now
        updated, stamp = _when(mv.last_updated_timestamp), mv.last_updated_timestamp
        no_actor = "MLflow records no actor for a version's changes: dated by its last update"
        plan.events.append(PlannedEvent(name, vid, "describe", updated, _UNKNOWN,
                                        plan.origin(f"{vid}/description@{stamp}"), label, note=no_actor,
                                        description=record["description"]))
        plan.events.append(PlannedEvent(name, vid, "tag", updated, _UNKNOWN, plan.origin(f"{vid}/tags@{stamp}"),
                                        label, note=no_actor, tags=record["tags"]))
        stage = mv.current_stage
        if stage in ("Production", "Archived"):  # Staging is a test stage: the version stays a candidate
            plan.events.append(PlannedEvent(
                name, vid, "approve" if stage == "Production" else "retire", _when(mv.last_updated_timestamp),
                _UNKNOWN, plan.origin(f"{vid}/stage/{stage}", stage=stage), f"{label} in stage {stage}",
                note=f"MLflow stage {stage} (MLflow keeps no stage history and no actor: "
                     "dated by the version's last update)",
            ))
        return vid

    def _run(self, run_id: str | None) -> Any:
        if not run_id:
            return None
        if run_id not in self.runs:
            try:
                self.runs[run_id] = self.client.get_run(run_id)
            except Exception:  # deleted for good, or never there
                self.runs[run_id] = None
                self.plan.not_brought.append(f"run {run_id}: not found in MLflow (its metrics, params and git tags)")
        return self.runs[run_id]

    def _logged(self, model_id: str | None) -> Any:
        if not model_id:
            return None
        if model_id not in self.logged:
            try:
                self.logged[model_id] = self.client.get_logged_model(model_id)
            except Exception:
                self.logged[model_id] = None
        return self.logged[model_id]

    def _artifact(self, mv: Any, run: Any, logged: Any, label: str) -> str:
        """Where the artifact is stored: ``runs:/ID/PATH`` under the run's artifact root, a
        logged model's ``models:/m-...`` at its artifact location, ``models:/NAME/N`` (a copied
        version) where that version's is; anything else as MLflow has it."""
        source = mv.source or ""
        for _ in range(5):  # a copied version's source names the version it was copied from
            name, _, number = source[len("models:/"):].rpartition("/")
            if not (source.startswith("models:/") and name and number.isdigit()):
                break
            mv = self.client.get_model_version(name, number)
            source = mv.source or ""
            run, logged = self._run(mv.run_id), self._logged(getattr(mv, "model_id", None))
        if source.startswith("runs:/") and run is not None:
            path = source[len("runs:/"):].partition("/")[2]
            uri = run.info.artifact_uri.rstrip("/") + ("/" + path if path else "")
        elif source.startswith("models:/m-") and logged is not None:
            uri = logged.artifact_location
        else:
            uri = source
        local = local_path(uri)
        if local is not None and not os.path.exists(local):
            raise ImportUnsupported(
                f"its artifact {local} is not on this machine; run the import where MLflow's artifact store is",
                what=label, source=self.source,
            )
        return uri

    def _run_link(self, run: Any) -> str | None:
        if run is None or not self.source.startswith("http"):
            return None
        return f"{self.source}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"


def _logged_metrics(logged: Any) -> dict[str, float]:
    return {m.key: m.value for m in (logged.metrics or [])} if logged is not None else {}


def _repo(url: str | None) -> str | None:
    if not url:
        return None
    if "://" not in url and "@" in url and ":" in url:  # git@host:org/repo.git
        user_host, _, path = url.partition(":")
        url = f"ssh://{user_host}/{path}"
    return check.strip_credentials(url)


def _datasets(run: Any) -> list[str]:
    """A run's dataset inputs as data refs: the dataset's URI (else ``mlflow-dataset:NAME``)
    at its digest, each once."""
    if run is None or run.inputs is None:
        return []
    refs: list[str] = []
    for given in run.inputs.dataset_inputs or []:
        ds = given.dataset
        try:
            where = json.loads(ds.source) if ds.source else {}
        except ValueError:
            where = {}
        uri = next((where[k] for k in ("uri", "url", "path", "table_name") if isinstance(where.get(k), str)), None)
        ref = f"{uri or 'mlflow-dataset:' + ds.name}@{ds.digest}" if ds.digest else (uri or f"mlflow-dataset:{ds.name}")
        if ref not in refs:
            refs.append(ref)
    return refs
