"""The lake as an MLflow model-registry backend, driven by the real MLflow client.

Every test points MLflow's registry at a lake (``catalog:///...``) and talks to it only
through MLflow's public API (``MlflowClient``, ``mlflow.register_model``,
``mlflow.pyfunc.load_model("models:/...")``); what landed is checked through the
catalog's own Registry.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

mlflow = pytest.importorskip("mlflow")

from mlflow import MlflowClient  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

from catalog import Registry  # noqa: E402
from catalog.bridge import lake_location  # noqa: E402
from catalog.errors import InvalidValue  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


class Constant(mlflow.pyfunc.PythonModel):
    """A real pyfunc model that answers one number, whatever it is asked."""

    def __init__(self, value: int) -> None:
        self.value = value

    def predict(self, context, model_input, params=None):  # noqa: ANN001
        return [self.value] * len(model_input)


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One tracking store for the module (MLflow migrates a new SQLite database on first
    use), set before MLflow first looks for one (else it makes ./mlflow.db)."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('tracking') / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        yield uri


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory, tracking: str) -> dict[int, str]:
    """Two saved pyfunc models on disk: one answers 1, the other 2."""
    root = tmp_path_factory.mktemp("pyfunc")
    saved = {}
    for value in (1, 2):
        path = root / f"constant-{value}"
        mlflow.pyfunc.save_model(str(path), python_model=Constant(value), pip_requirements=["mlflow"])
        saved[value] = str(path)
    return saved


@pytest.fixture
def lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tracking: str) -> Path:
    """A lake folder that MLflow's registry points at (MLFLOW_REGISTRY_URI), acting as ana."""
    lake = tmp_path / "lake"
    monkeypatch.chdir(tmp_path)  # no catalog.toml of the checkout applies
    monkeypatch.delenv("CATALOG_CONFIG", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.setenv("CATALOG_ACTOR", "ana")
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", f"catalog://{lake}")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking)
    return lake


@pytest.fixture
def client(lake: Path) -> MlflowClient:
    return MlflowClient(registry_uri=f"catalog://{lake}")


def as_actor(monkeypatch: pytest.MonkeyPatch, actor: str) -> None:
    monkeypatch.setenv("CATALOG_ACTOR", actor)


def code(err: pytest.ExceptionInfo[MlflowException]) -> str:
    return err.value.error_code


# -- the URI and the plugin ---------------------------------------------------------------


def test_registry_uris_name_a_folder_or_a_bucket() -> None:
    assert lake_location("catalog:///srv/lake") == "/srv/lake"
    assert lake_location("catalog:data/lake") == "data/lake"
    assert lake_location("catalog:///srv/my%20lake") == "/srv/my lake"
    assert lake_location("catalog+s3://models/registry/") == "s3://models/registry"
    for bad in ("catalog://host/lake", "catalog:", "catalog+s3:///no-bucket", "catalog:///lake?actor=x", "file:///x"):
        with pytest.raises(InvalidValue):
            lake_location(bad)


def test_mlflow_finds_the_store_by_its_entry_point(client: MlflowClient, lake: Path) -> None:
    from catalog.bridge.store import CatalogStore

    store = client._get_registry_client().store
    assert isinstance(store, CatalogStore)
    assert store.location == str(lake)


def test_a_refused_uri_is_an_mlflow_error_with_the_forms_to_use() -> None:
    with pytest.raises(MlflowException) as err:
        MlflowClient(registry_uri="catalog://somehost/lake")._get_registry_client().store  # noqa: B018
    assert code(err) == "INVALID_PARAMETER_VALUE"
    assert "catalog+s3://bucket/prefix" in err.value.message


# -- versions, aliases and models:/ loading ---------------------------------------------


def test_versions_created_through_mlflow_are_catalog_versions(client: MlflowClient, lake: Path,
                                                              models: dict[int, str]) -> None:
    mv = client.create_model_version("churn", models[1], tags={"team": "retention"}, description="first")
    assert (mv.name, mv.version, mv.current_stage, mv.user_id) == ("churn", 1, "None", "ana")
    assert mv.tags == {"team": "retention"} and mv.description == "first"
    v = Registry(lake).show("churn", 1)
    assert (v.state, v.created_by, v.artifact_uri, v.tags) == ("candidate", "ana", models[1], {"team": "retention"})
    assert v.artifact_sha256  # the catalog hashed the model folder it registered
    assert client.get_model_version_download_uri("churn", "1") == models[1]
    assert client.create_model_version("churn", models[2]).version == 2


def test_register_model_then_load_by_alias_and_by_version(client: MlflowClient, lake: Path, models: dict[int, str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    assert mlflow.register_model(models[1], "churn").version == 1
    assert mlflow.register_model(models[2], "churn").version == 2
    as_actor(monkeypatch, "bob")
    for version in (1, 2):
        assert client.transition_model_version_stage("churn", str(version), "Production").current_stage == "Production"
    client.set_registered_model_alias("churn", "prod-eu", "2")
    client.set_registered_model_alias("churn", "staging", "1")

    assert Registry(lake).resolve("churn@prod-eu") == models[2]
    assert mlflow.pyfunc.load_model("models:/churn@prod-eu").predict([[0], [0]]) == [2, 2]
    assert mlflow.pyfunc.load_model("models:/churn/1").predict([[0]]) == [1]
    assert mlflow.pyfunc.load_model("models:/churn@staging").predict([[0]]) == [1]
    assert client.get_model_version_by_alias("churn", "prod-eu").version == 2
    assert client.get_registered_model("churn").aliases == {"prod-eu": 2, "staging": 1}

    # the alias moved is a deploy, with history: who moved it when
    client.set_registered_model_alias("churn", "prod-eu", "1")
    assert mlflow.pyfunc.load_model("models:/churn@prod-eu").predict([[0]]) == [1]
    deploys = [(e.actor, e.version, e.target) for e in Registry(lake).history("churn") if e.kind == "deploy"]
    assert deploys == [("bob", 2, "prod-eu"), ("bob", 1, "staging"), ("bob", 1, "prod-eu")]


def test_a_model_logged_in_a_run_registers_with_its_run(client: MlflowClient, lake: Path) -> None:
    """The usual MLflow flow: log_model in a run with registered_model_name, then load by alias."""
    with mlflow.start_run() as run:
        info = mlflow.pyfunc.log_model(name="model", python_model=Constant(3), pip_requirements=["mlflow"],
                                       registered_model_name="churn")
    mv = client.get_model_version("churn", 1)
    assert (mv.run_id, mv.model_id) == (run.info.run_id, info.model_id)
    v = Registry(lake).show("churn", 1)
    assert v.artifact_uri == client.get_model_version_download_uri("churn", 1) != mv.source
    assert v.tags["mlflow.run_id"] == run.info.run_id  # the catalog shows the run with the version's tags
    assert "mlflow.run_id" not in mv.tags
    assert [m.version for m in client.search_model_versions(f"run_id = '{run.info.run_id}'")] == [1]
    client.transition_model_version_stage("churn", 1, "Production")
    client.set_registered_model_alias("churn", "prod", 1)
    assert mlflow.pyfunc.load_model("models:/churn@prod").predict([[0]]) == [3]


def test_setting_an_alias_to_the_version_it_names_writes_nothing(client: MlflowClient, lake: Path,
                                                                  models: dict[int, str]) -> None:
    client.create_model_version("churn", models[1])
    client.transition_model_version_stage("churn", "1", "Production")
    client.set_registered_model_alias("churn", "prod", 1)
    before = len(Registry(lake).history("churn"))
    client.set_registered_model_alias("churn", "prod", 1)
    assert len(Registry(lake).history("churn")) == before


def test_an_alias_on_a_candidate_is_refused_with_the_catalog_message(client: MlflowClient, lake: Path,
                                                                     models: dict[int, str]) -> None:
    client.create_model_version("churn", models[1])
    before = Registry(lake).history("churn")
    with pytest.raises(MlflowException) as err:
        client.set_registered_model_alias("churn", "prod", "1")
    assert code(err) == "INVALID_STATE"
    assert "is a candidate; approve it before deploying: catalog approve churn 1" in err.value.message
    assert Registry(lake).history("churn") == before
    with pytest.raises(MlflowException) as missing:
        mlflow.pyfunc.load_model("models:/churn@prod")
    assert code(missing) == "RESOURCE_DOES_NOT_EXIST"


def test_an_alias_refused_by_a_deploy_gate(client: MlflowClient, lake: Path, models: dict[int, str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    client.create_model_version("churn", models[1])
    lake.joinpath("catalog.toml").write_text('[policy.targets."prod*"]\napprovers = ["carol"]\nafter = "staging*"\n')
    as_actor(monkeypatch, "bob")
    client.transition_model_version_stage("churn", 1, "Production")
    with pytest.raises(MlflowException) as err:
        client.set_registered_model_alias("churn", "prod-eu", 1)
    assert code(err) == "INVALID_STATE"
    assert err.value.message.startswith("deployment of churn v1 refused by 2 gate(s)")
    assert "\n" not in err.value.message
    client.set_registered_model_alias("churn", "staging", 1)  # no gate on staging
    assert Registry(lake).show("churn").deployments[0].target == "staging"
    assert [d.target for d in Registry(lake).deployments()] == ["staging"]


def test_an_approval_refused_by_a_gate_keeps_the_stage(client: MlflowClient, lake: Path, models: dict[int, str]) -> None:
    client.create_model_version("churn", models[1])
    lake.joinpath("catalog.toml").write_text("[policy]\nfour_eyes = true\n")
    with pytest.raises(MlflowException) as err:  # ana registered it: she cannot approve it too
        client.transition_model_version_stage("churn", 1, "Production")
    assert code(err) == "INVALID_STATE" and "refused by 1 gate(s)" in err.value.message
    assert client.get_model_version("churn", 1).current_stage == "None"


# -- models, tags, descriptions, deletes and renames: recorded events ----------------------


def test_registered_models_are_created_described_tagged_and_listed(client: MlflowClient, lake: Path) -> None:
    made = client.create_registered_model("churn", tags={"team": "retention"}, description="weekly churn")
    assert (made.name, made.description, made.tags, made.latest_versions) == ("churn", "weekly churn",
                                                                             {"team": "retention"}, [])
    with pytest.raises(MlflowException) as again:
        client.create_registered_model("churn")
    assert code(again) == "RESOURCE_ALREADY_EXISTS"
    client.update_registered_model("churn", description="daily churn")
    client.set_registered_model_tag("churn", "tier", "1")
    client.delete_registered_model_tag("churn", "team")
    got = client.get_registered_model("churn")
    assert (got.description, got.tags) == ("daily churn", {"tier": "1"})
    assert [m.name for m in client.search_registered_models("tags.tier = '1'")] == ["churn"]
    kinds = [e.kind for e in Registry(lake).history("churn")]
    assert kinds == ["create", "describe", "tag", "tag"]


def test_version_tags_and_descriptions_change_with_history(client: MlflowClient, lake: Path,
                                                          models: dict[int, str]) -> None:
    client.create_model_version("churn", models[1], tags={"team": "retention"})
    client.set_model_version_tag("churn", "1", "validated", "yes")
    client.delete_model_version_tag("churn", "1", "team")
    client.update_model_version("churn", "1", description="passed offline eval")
    mv = client.get_model_version("churn", "1")
    assert (mv.tags, mv.description) == ({"validated": "yes"}, "passed offline eval")
    assert [mv.version for mv in client.search_model_versions("tags.validated = 'yes'")] == [1]
    assert client.search_model_versions("tags.team = 'retention'") == []
    assert [e.kind for e in Registry(lake).history("churn")][-3:] == ["tag", "tag", "describe"]


def test_deleting_an_alias_undeploys_and_a_deployed_version_cannot_be_deleted(
    client: MlflowClient, lake: Path, models: dict[int, str]
) -> None:
    client.create_model_version("churn", models[1])
    client.transition_model_version_stage("churn", 1, "Production")
    client.set_registered_model_alias("churn", "prod", 1)
    with pytest.raises(MlflowException) as running:
        client.delete_model_version("churn", 1)
    assert code(running) == "INVALID_STATE" and "undeploy" in running.value.message
    client.delete_registered_model_alias("churn", "prod")
    assert Registry(lake).deployments() == []
    with pytest.raises(MlflowException) as gone:
        mlflow.pyfunc.load_model("models:/churn@prod")
    assert code(gone) == "RESOURCE_DOES_NOT_EXIST"
    client.delete_model_version("churn", 1)
    with pytest.raises(MlflowException) as deleted:
        client.get_model_version("churn", 1)
    assert code(deleted) == "RESOURCE_DOES_NOT_EXIST"
    kinds = [e.kind for e in Registry(lake).history() if e.model == "churn"]
    assert kinds[-2:] == ["undeploy", "delete"]


def test_version_numbers_are_never_reused_after_a_delete(client: MlflowClient, models: dict[int, str]) -> None:
    for _ in range(3):
        client.create_model_version("churn", models[1])
    client.delete_model_version("churn", 3)
    client.delete_model_version("churn", 2)
    assert client.create_model_version("churn", models[1]).version == 4
    assert [mv.version for mv in client.search_model_versions("name = 'churn'", order_by=["version_number"])] == [1, 4]


def test_deleting_a_model_hides_it(client: MlflowClient, lake: Path, models: dict[int, str]) -> None:
    client.create_model_version("churn", models[1])
    client.create_model_version("fraud", models[1])
    client.delete_registered_model("churn")
    assert [m.name for m in client.search_registered_models()] == ["fraud"]
    with pytest.raises(MlflowException) as err:
        client.get_registered_model("churn")
    assert code(err) == "RESOURCE_DOES_NOT_EXIST"
    assert "delete" in [e.kind for e in Registry(lake).history()]


def test_a_renamed_model_keeps_its_versions_and_reserves_the_old_name(
    client: MlflowClient, lake: Path, models: dict[int, str]
) -> None:
    client.create_model_version("churn", models[1])
    client.transition_model_version_stage("churn", 1, "Production")
    client.set_registered_model_alias("churn", "prod", 1)
    client.rename_registered_model("churn", "churn-v2")
    renamed = client.get_registered_model("churn-v2")
    assert renamed.name == "churn-v2" and renamed.aliases == {"prod": 1}
    assert mlflow.pyfunc.load_model("models:/churn-v2@prod").predict([[0]]) == [1]
    assert client.create_model_version("churn-v2", models[2]).version == 2
    with pytest.raises(MlflowException) as old:
        client.get_registered_model("churn")
    assert code(old) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as taken:
        client.create_registered_model("churn")
    assert code(taken) == "RESOURCE_ALREADY_EXISTS" and "churn-v2" in taken.value.message


def test_a_models_uri_source_registers_the_artifact_it_resolves_to(client: MlflowClient, lake: Path,
                                                                  models: dict[int, str]) -> None:
    src = client.create_model_version("churn", models[2], tags={"team": "retention"})
    copy = client.copy_model_version("models:/churn/1", "churn-copy")
    assert (copy.name, copy.version, copy.source, copy.tags) == ("churn-copy", 1, "models:/churn/1", src.tags)
    assert Registry(lake).resolve("churn-copy:1") == models[2]
    assert client.get_model_version_download_uri("churn-copy", 1) == models[2]


def test_names_mlflow_accepts_are_kept_exactly(client: MlflowClient, lake: Path, models: dict[int, str]) -> None:
    for name in ("RM1", "rm1", "original name"):
        mlflow.register_model(models[1], name)
    client.transition_model_version_stage("original name", 1, "Production")
    client.set_registered_model_alias("original name", "Prod-EU", 1)
    assert sorted(m.name for m in client.search_registered_models()) == ["RM1", "original name", "rm1"]
    assert [m.name for m in client.search_registered_models("name = 'RM1'")] == ["RM1"]
    assert mlflow.pyfunc.load_model("models:/original name@Prod-EU").predict([[0]]) == [1]
    assert Registry(lake).resolve("original name@Prod-EU") == models[1]
    with pytest.raises(MlflowException) as err:
        client.create_registered_model("a/b")
    assert code(err) == "INVALID_PARAMETER_VALUE"


# -- stages ----------------------------------------------------------------------------


def test_stages_are_the_approval_state(client: MlflowClient, lake: Path, models: dict[int, str]) -> None:
    for _ in range(3):
        client.create_model_version("churn", models[1])
    assert client.transition_model_version_stage("churn", 1, "production").current_stage == "Production"
    assert client.transition_model_version_stage("churn", 2, "Production").current_stage == "Production"
    assert client.transition_model_version_stage("churn", 2, "Archived").current_stage == "Archived"
    assert client.transition_model_version_stage("churn", 3, "Archived").current_stage == "Archived"
    states = {v.version: v.state for v in Registry(lake).show("churn").versions}
    assert states == {1: "approved", 2: "deprecated", 3: "rejected"}

    with pytest.raises(MlflowException) as staging:
        client.transition_model_version_stage("churn", 1, "Staging")
    assert code(staging) == "INVALID_STATE" and "set_registered_model_alias('churn', 'staging', 1)" in staging.value.message
    with pytest.raises(MlflowException) as back:
        client.transition_model_version_stage("churn", 1, "None")
    assert code(back) == "INVALID_STATE" and "register a new version" in back.value.message
    with pytest.raises(MlflowException) as again:
        client.transition_model_version_stage("churn", 2, "Production")
    assert code(again) == "INVALID_STATE" and "version 2 of 'churn' is deprecated" in again.value.message
    with pytest.raises(MlflowException) as archive:
        client.transition_model_version_stage("churn", 1, "Production", archive_existing_versions=True)
    assert code(archive) == "INVALID_PARAMETER_VALUE"
    assert len(Registry(lake).history("churn")) == 3 + 4  # the refusals wrote nothing


def test_latest_versions_per_stage_and_models_latest_is_the_latest_approved(
    client: MlflowClient, lake: Path, models: dict[int, str]
) -> None:
    client.create_model_version("churn", models[1])
    client.create_model_version("churn", models[2])
    client.create_model_version("churn", models[2])
    client.transition_model_version_stage("churn", 1, "Production")
    latest = {mv.current_stage: mv.version for mv in client.get_latest_versions("churn", ["None", "Production"])}
    assert latest == {"None": 3, "Production": 1}
    assert [mv.version for mv in client.get_latest_versions("churn")] == [1]
    # models:/NAME/latest is the catalog's MODEL@latest: never a candidate
    assert mlflow.pyfunc.load_model("models:/churn/latest").predict([[0]]) == [1]
    assert mlflow.pyfunc.load_model("models:/churn/Production").predict([[0]]) == [1]


# -- search ---------------------------------------------------------------------------------


def test_search_model_versions_filters_orders_and_pages_in_sql(client: MlflowClient, models: dict[int, str]) -> None:
    for name, team in (("churn", "retention"), ("churn-eu", "retention"), ("fraud", "risk")):
        for _ in range(2):
            client.create_model_version(name, models[1], tags={"team": team})
    found = client.search_model_versions("name LIKE 'churn%' AND tags.team = 'retention'",
                                         order_by=["name DESC", "version_number ASC"])
    assert [(mv.name, mv.version) for mv in found] == [("churn-eu", 1), ("churn-eu", 2), ("churn", 1), ("churn", 2)]
    assert [mv.name for mv in client.search_model_versions("name ILIKE 'FRAUD'")] == ["fraud", "fraud"]
    assert {(mv.name, mv.version) for mv in client.search_model_versions("version_number > 1")} == {
        ("churn", 2), ("churn-eu", 2), ("fraud", 2)}
    assert len(client.search_model_versions("name IN ('churn', 'fraud') AND tags.team != 'risk'")) == 2
    assert client.search_model_versions("tags.team = 'nobody'") == []

    pages, token = [], None
    while True:
        page = client.search_model_versions("", max_results=4, order_by=["name", "version_number"], page_token=token)
        pages.append([(mv.name, mv.version) for mv in page])
        token = page.token
        if not token:
            break
    assert pages == [[("churn", 1), ("churn", 2), ("churn-eu", 1), ("churn-eu", 2)], [("fraud", 1), ("fraud", 2)]]


FILTERS = [
    "", "name = 'churn'", "name != 'churn'", "name LIKE 'churn%'", "name ILIKE 'CHURN%'", "name LIKE '%-eu'",
    "name IN ('churn', 'fraud')", "name NOT IN ('churn')", "version_number = 2", "version_number >= 2",
    "version_number < 2", "version_number != 1", "tags.team = 'retention'", "tags.team != 'retention'",
    "tags.team LIKE 'ret%'", "tags.team ILIKE 'RISK'", "tags.`team` = 'risk' AND version_number > 1",
    "name LIKE 'churn%' AND tags.tier = '1'", "tags.missing = 'x'", "source_path = '{source}'",
]


def test_search_answers_as_mlflows_own_filter_does(client: MlflowClient, models: dict[int, str]) -> None:
    """Every filter gives, from DuckDB, the versions MLflow's reference filter (in Python) keeps."""
    from mlflow.utils.search_utils import SearchModelVersionUtils

    for name, team, tier in (("churn", "retention", "1"), ("churn-eu", "retention", "2"), ("fraud", "risk", "1")):
        for _ in range(3):
            client.create_model_version(name, models[1], tags={"team": team, "tier": tier})
    everything = client.search_model_versions("")
    assert len(everything) == 9
    for template in FILTERS:
        filter_string = template.format(source=models[1])
        expected = {(mv.name, mv.version) for mv in SearchModelVersionUtils.filter(everything, filter_string)}
        found = {(mv.name, mv.version) for mv in client.search_model_versions(filter_string)}
        assert found == expected, filter_string
    assert {m for m, _ in expected} == {"churn", "churn-eu", "fraud"}  # the source filter kept all of them
    for order in (["name"], ["name DESC"], ["version_number DESC"], ["version_number", "name DESC"]):
        expected_order = [(mv.name, mv.version) for mv in SearchModelVersionUtils.sort(everything, order)]
        assert [(mv.name, mv.version) for mv in client.search_model_versions("", order_by=order)] == expected_order


MODEL_FILTERS = [
    "", "name = 'churn'", "name != 'churn'", "name LIKE 'churn%'", "name ILIKE 'CHURN%'", "name IN ('churn', 'fraud')",
    "name NOT IN ('churn')", "tags.team = 'retention'", "tags.team != 'risk'", "tags.team LIKE 'r%'",
    "tags.team ILIKE 'RISK' AND name LIKE 'f%'", "tags.nothing = 'x'",
]


def test_model_search_answers_as_mlflows_own_filter_does(client: MlflowClient) -> None:
    from mlflow.utils.search_utils import SearchModelUtils

    for name, team in (("churn", "retention"), ("churn-eu", "retention"), ("fraud", "risk"), ("ranker", None)):
        client.create_registered_model(name, tags={"team": team} if team else None)
    everything = client.search_registered_models()
    assert len(everything) == 4
    for filter_string in MODEL_FILTERS:
        expected = {m.name for m in SearchModelUtils.filter(everything, filter_string)}
        assert {m.name for m in client.search_registered_models(filter_string)} == expected, filter_string


def test_search_values_are_bound_never_spliced(client: MlflowClient, models: dict[int, str]) -> None:
    client.create_model_version("churn", models[1], tags={"team": "x"})
    tricky = "x' OR '1'='1"
    assert client.search_model_versions(f"tags.team = \"{tricky}\"") == []
    assert client.search_registered_models(f"name = \"{tricky}\"") == []


def test_search_registered_models(client: MlflowClient, models: dict[int, str]) -> None:
    for name in ("churn", "churn-eu", "fraud", "ranker"):
        client.create_model_version(name, models[1])
    client.transition_model_version_stage("fraud", 1, "Production")
    assert [m.name for m in client.search_registered_models("name LIKE 'churn%'")] == ["churn", "churn-eu"]
    assert [m.name for m in client.search_registered_models(order_by=["name DESC"])] == [
        "ranker", "fraud", "churn-eu", "churn"]
    first = client.search_registered_models(max_results=3)
    assert [m.name for m in first] == ["churn", "churn-eu", "fraud"] and first.token
    rest = client.search_registered_models(max_results=3, page_token=first.token)
    assert [m.name for m in rest] == ["ranker"] and rest.token is None
    fraud = client.get_registered_model("fraud")
    assert [(mv.version, mv.current_stage) for mv in fraud.latest_versions] == [(1, "Production")]
    with pytest.raises(MlflowException) as err:
        client.search_registered_models("name = 'x' OR name = 'y'")
    assert code(err) == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException):
        client.search_registered_models(max_results=5000)


def test_an_empty_lake_has_no_models(client: MlflowClient) -> None:
    assert client.search_registered_models() == []
    assert client.search_model_versions("name = 'churn'") == []
    with pytest.raises(MlflowException) as err:
        client.get_registered_model("churn")
    assert code(err) == "RESOURCE_DOES_NOT_EXIST"


# -- errors and actors ---------------------------------------------------------------------


def test_refusals_carry_the_catalog_message_and_a_fitting_code(client: MlflowClient, models: dict[int, str]) -> None:
    client.create_model_version("churn", models[1])
    with pytest.raises(MlflowException) as missing:
        client.get_model_version("churn", 7)
    assert code(missing) == "RESOURCE_DOES_NOT_EXIST"
    assert missing.value.message == "version 7 of 'churn' is not registered: see `catalog history churn`"
    with pytest.raises(MlflowException) as unknown:
        client.get_registered_model("nope")
    assert code(unknown) == "RESOURCE_DOES_NOT_EXIST" and "'nope' is not registered" in unknown.value.message
    with pytest.raises(MlflowException) as alias:
        client.get_model_version_by_alias("churn", "prod")
    assert code(alias) == "RESOURCE_DOES_NOT_EXIST" and "is not deployed to 'prod'" in alias.value.message
    with pytest.raises(MlflowException) as bad:
        client.create_model_version("churn", models[1], tags={"bad key!": "x"})
    assert code(bad) == "INVALID_PARAMETER_VALUE"


def test_the_actor_is_catalog_actor_else_the_mlflow_user(client: MlflowClient, lake: Path, models: dict[int, str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CATALOG_ACTOR")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "mlflow-user")
    assert client.create_model_version("churn", models[1]).user_id == "mlflow-user"
    monkeypatch.setenv("CATALOG_ACTOR", "carol")
    assert client.create_model_version("churn", models[1]).user_id == "carol"
    assert [v.created_by for v in Registry(lake).show("churn").versions] == ["mlflow-user", "carol"]


# -- concurrency, object storage, and a lake that never meets MLflow ----------------------

_CREATE = """
import sys
from mlflow import MlflowClient
client = MlflowClient(registry_uri=sys.argv[1])
print(",".join(str(client.create_model_version("churn", sys.argv[2]).version) for _ in range(3)))
"""


def test_concurrent_clients_get_distinct_version_numbers(lake: Path, models: dict[int, str]) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", _CREATE, f"catalog://{lake}", models[1]], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    numbers = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        numbers += [int(n) for n in out.strip().splitlines()[-1].split(",")]
    assert sorted(numbers) == list(range(1, 10))
    assert [v.version for v in Registry(lake).show("churn").versions] == list(range(1, 10))


def test_a_lake_in_a_bucket(s3_lake: str, models: dict[int, str], monkeypatch: pytest.MonkeyPatch,
                            tmp_path: Path, tracking: str) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CATALOG_ACTOR", "ana")
    uri = "catalog+s3://" + s3_lake.removeprefix("s3://")
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    client = MlflowClient(registry_uri=uri)
    assert client.create_model_version("churn", models[2]).version == 1
    client.transition_model_version_stage("churn", 1, "Production")
    client.set_registered_model_alias("churn", "prod", 1)
    assert Registry(s3_lake).resolve("churn@prod") == models[2]
    assert mlflow.pyfunc.load_model("models:/churn@prod").predict([[0]]) == [2]


def test_a_local_lake_never_imports_mlflow(tmp_path: Path) -> None:
    script = (
        "import sys; from catalog import Registry; from catalog.cli import app\n"
        f"reg = Registry({str(tmp_path / 'lake')!r}, actor='ana')\n"
        "reg.register('churn', 's3://m/1.pkl', capture_git=False); reg.approve('churn', 1)\n"
        "reg.deploy('churn', 1, target='prod'); reg.resolve('churn@prod'); reg.list()\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'mlflow')))\n"
    )
    done = subprocess.run([sys.executable, "-c", "import json\n" + script], capture_output=True, text=True,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_only_the_bridge_imports_mlflow() -> None:
    outside = [
        str(path.relative_to(REPO)) for path in (REPO / "catalog").rglob("*.py")
        if "bridge" not in path.parts and "importing" not in path.parts  # (catalog import mlflow reads a source)
        and any(line.lstrip().startswith(("import mlflow", "from mlflow")) for line in path.read_text().splitlines())
    ]
    assert outside == []
