"""Fixtures for the dashboards: the real API (bundled AVIs from the registry) served by
uvicorn on a loopback port, an operator, scientists, and finished jobs with results."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from config.settings import Settings


@pytest.fixture
def live_api(tmp_path: Path, serve_api) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """The real API on SQLite, bundled AVIs, no scheduler (jobs stay queued)."""
    from api.avis import RegistryCatalogue

    settings = Settings(data_dir=tmp_path / "data", cluster_cores=8, cluster_memory_mb=16384)
    with serve_api(settings, catalogue=RegistryCatalogue(), run_scheduler=False) as api:
        yield api


@pytest.fixture
def finished_job(live_api: Any) -> Callable[..., int]:
    """Make a succeeded job of ``owner`` whose result folder holds ``files`` (test setup
    straight in the store, as the dispatcher would leave it)."""
    from sqlalchemy import select

    from api.models import User
    from api.space.user_space import JOBS_DIR
    from api.store import jobs as job_store

    def make(owner: str, avi: str, files: dict[str, Callable[[Path], None]],
             params: dict[str, Any] | None = None, version: str = "1.0.0") -> int:
        with live_api.app.state.sessions() as s:
            user = s.scalar(select(User).where(User.name == owner))
            job = job_store.create_job(s, owner=user, avi=avi, avi_version=version,
                                       params=params or {}, cores=1, memory_mb=512)
            job.output_dir = str(live_api.settings.space_root / owner / JOBS_DIR / str(job.id))
            result = Path(job.output_dir) / "result"
            result.mkdir(parents=True)
            for name, write in files.items():
                write(result / name)
            job_store.transition(s, job=job, to="running")
            job_store.transition(s, job=job, to="succeeded")
            s.commit()
            return job.id

    return make


@pytest.fixture(scope="module")
def lakehouse(tmp_path_factory: pytest.TempPathFactory, ingest_synthetic_cli) -> str:  # type: ignore[no-untyped-def]
    """20,000 synthetic stars, ingested in their own process as an operator would."""
    return ingest_synthetic_cli(str(tmp_path_factory.mktemp("lake")), rows=20000, seed=11,
                                clusters=2, timeout_s=900)


@pytest.fixture(scope="module")
def platform(lakehouse: str, tmp_path_factory: pytest.TempPathFactory, serve_api,  # type: ignore[no-untyped-def]
             free_port) -> Iterator[Any]:
    """API + scheduler and the Panel server, both on loopback ports."""
    from api.avis import RegistryCatalogue
    from panel_apps.app import serve

    data = tmp_path_factory.mktemp("platform")
    settings = Settings(data_dir=data / "data", lakehouse_uri=lakehouse, cluster_cores=2,
                        cluster_memory_mb=4096, spark_master="local[2]")
    with serve_api(settings, catalogue=RegistryCatalogue(), run_scheduler=True) as api:
        port = free_port()
        panel = serve(api.url, address="127.0.0.1", port=port, cache_root=data / "cache",
                      threaded=True)
        api.panel_url = f"http://127.0.0.1:{port}/"
        api.alice_token = api.make_user("alice")
        try:
            yield api
        finally:
            panel.stop()
