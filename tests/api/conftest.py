"""Fixtures for the job service: a real store (SQLite file, and PostgreSQL from the
devstack), a real app served through FastAPI's TestClient, users and tokens.

The AVIs here are real plugins of the real SDK (``avi_plugins.sdk.AVI``) held in
a small catalogue, so API tests do not depend on which AVIs are installed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel, ConfigDict, Field
from testing_utils import new_user, postgres_schema

from api.errors import NotFound
from api.main import create_app
from avi_plugins.params import UserFile
from avi_plugins.sdk import AVI, Manifest, Resources, Task
from config.settings import Settings


class ConeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ra_deg: float = Field(ge=0, lt=360)
    dec_deg: float = Field(ge=-90, le=90)
    radius_deg: float = Field(default=0.5, gt=0, le=10)
    input_file: UserFile | None = None


class ConeCount(AVI):
    manifest = Manifest(name="cone_count", version="1.0", title="Cone count",
                        summary="Counts sources in a cone.", author="tests")
    Params = ConeParams

    def resources(self, params: BaseModel) -> Resources:
        return Resources(driver_cores=1, driver_memory_mb=512, executors=0)

    def tasks(self) -> list[Task]:
        return [Task(name="count", run=lambda ctx: None, result=True)]


class HugeParams(BaseModel):
    cores: int = Field(default=64, ge=1, le=1024)


class Huge(AVI):
    manifest = Manifest(name="huge", version="1.0", title="Huge", summary="Needs a lot.",
                        author="tests")
    Params = HugeParams

    def resources(self, params: BaseModel) -> Resources:
        return Resources(driver_cores=1, executor_cores=params.cores, executors=1)  # type: ignore[attr-defined]

    def tasks(self) -> list[Task]:
        return [Task(name="t", run=lambda ctx: None, result=True)]


class StaticCatalogue:
    def __init__(self, *avis: AVI) -> None:
        self.avis = {a.manifest.name: a for a in avis}

    def list(self) -> tuple[list[AVI], list[dict[str, str]]]:
        return list(self.avis.values()), []

    def get(self, name: str, version: str | None = None) -> AVI:
        avi = self.avis.get(name)
        if avi is None or (version is not None and avi.manifest.version != version):
            raise NotFound(f"no AVI named {name!r} (version {version})")
        return avi


def postgres_url() -> str | None:
    return os.environ.get("AVIP_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty job store: a SQLite file, or a new schema in the devstack's PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    base = postgres_url()
    if not base:
        pytest.skip("no PostgreSQL: AVIP_TEST_POSTGRES_URL is unset (run through `make test`, "
                    "whose devstack starts one)")
    url, drop = postgres_schema(base)
    yield url
    drop()


@pytest.fixture
def settings(tmp_path: Path, store_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=store_url, cluster_cores=8,
                    cluster_memory_mb=16384)


@pytest.fixture
def catalogue() -> StaticCatalogue:
    return StaticCatalogue(ConeCount(), Huge())


@pytest.fixture
def client(settings: Settings, catalogue: StaticCatalogue) -> Iterator[TestClient]:
    app = create_app(settings, catalogue=catalogue)
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def operator(client: TestClient) -> dict[str, str]:
    """Auth headers of a bootstrap operator (created straight in the store)."""
    from api.bootstrap import ensure_operator

    settings: Settings = client.app.state.settings  # type: ignore[attr-defined]
    path = ensure_operator(client.app.state.sessions, settings.data_dir, 1)  # type: ignore[attr-defined]
    assert path is not None
    return {"Authorization": f"Bearer {path.read_text().strip()}"}


@pytest.fixture
def make_user(client: TestClient, operator: dict[str, str]):  # type: ignore[no-untyped-def]
    """Create a user through the API and return their auth headers."""

    def make(name: str, roles: list[str] | None = None, groups: list[str] | None = None,
             ) -> dict[str, str]:
        return new_user(client, operator, name, roles, groups)

    return make


@pytest.fixture
def live(tmp_path: Path, catalogue: StaticCatalogue, serve_api):  # type: ignore[no-untyped-def]
    """A served app on SQLite with a bootstrap operator; ``live.operator_token``."""
    settings = Settings(data_dir=tmp_path / "data", cluster_cores=8, cluster_memory_mb=16384)
    with serve_api(settings, catalogue=catalogue) as server:
        yield server
