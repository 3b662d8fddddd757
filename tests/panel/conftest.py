"""Fixtures for the dashboards: the real API (bundled AVIs from the registry) served by
uvicorn on a loopback port, an operator, scientists, and finished jobs with results."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from api.client import AvipClient
from api.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Uvicorn:
    """An ASGI app under uvicorn in a background thread."""

    def __init__(self, app: Any, port: int) -> None:
        import uvicorn

        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Uvicorn:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)


@dataclass
class LiveApi:
    url: str
    app: Any
    settings: Settings
    operator_token: str

    def operator(self) -> AvipClient:
        return AvipClient(self.url, self.operator_token)

    def make_user(self, name: str, roles: list[str] | None = None,
                  groups: list[str] | None = None) -> str:
        """Create a user through the API; return a fresh token."""
        with self.operator() as op:
            op.create_user(name, roles or ["scientist"], groups)
            return op.issue_token(name, "test").token


def start_api(settings: Settings, *, run_scheduler: bool) -> tuple[Uvicorn, LiveApi]:
    from api.avis import RegistryCatalogue
    from api.bootstrap import ensure_operator
    from api.main import create_app

    app = create_app(settings, catalogue=RegistryCatalogue(), run_scheduler=run_scheduler)
    token_file = ensure_operator(app.state.sessions, settings.data_dir, 1)
    assert token_file is not None
    server = Uvicorn(app, free_port())
    return server, LiveApi(server.url, app, settings, token_file.read_text().strip())


@pytest.fixture
def live_api(tmp_path: Path) -> Iterator[LiveApi]:
    """The real API on SQLite, bundled AVIs, no scheduler (jobs stay queued)."""
    settings = Settings(data_dir=tmp_path / "data", cluster_cores=8, cluster_memory_mb=16384)
    server, api = start_api(settings, run_scheduler=False)
    with server:
        yield api


@pytest.fixture
def finished_job(live_api: LiveApi) -> Callable[..., int]:
    """Make a succeeded job of ``owner`` whose result folder holds ``files`` (test setup
    straight in the store, as the dispatcher would leave it)."""
    from sqlalchemy import select

    from api.models import User
    from api.store import jobs as job_store
    from api.user_space import JOBS_DIR

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
def lakehouse(tmp_path_factory: pytest.TempPathFactory) -> str:
    """20,000 synthetic stars, ingested in their own process as an operator would."""
    root = str(tmp_path_factory.mktemp("lake"))
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable,
               AVIP_SPARK_MASTER="local[2]")
    done = subprocess.run(
        [str(Path(sys.executable).parent / "avip"), "ingest", "synthetic", "--rows", "20000",
         "--seed", "11", "--clusters", "2", "--root", root],
        env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return root


@pytest.fixture(scope="module")
def platform(lakehouse: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """API + scheduler and the Panel server, both on loopback ports."""
    from panel_apps.app import serve

    data = tmp_path_factory.mktemp("platform")
    settings = Settings(data_dir=data / "data", lakehouse_uri=lakehouse, cluster_cores=2,
                        cluster_memory_mb=4096, spark_master="local[2]")
    server, api = start_api(settings, run_scheduler=True)
    with server:
        port = free_port()
        panel = serve(api.url, address="127.0.0.1", port=port, cache_root=data / "cache",
                      threaded=True)
        api.panel_url = f"http://127.0.0.1:{port}/"
        api.alice_token = api.make_user("alice")
        try:
            yield api
        finally:
            panel.stop()
