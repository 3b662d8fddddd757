"""Suite-wide fixtures: one local Spark session per test run (UI off, few
shuffle partitions), as delta-io's own test utilities do; and the pieces several
areas share to run the real API on loopback (``serve_api``, ``free_port``) and to
ingest a synthetic sky as an operator would (``ingest_synthetic_cli``).

Those shared pieces are fixtures returning callables because pytest runs with
``--import-mode=importlib``, where a helper module under tests/ is not importable.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from pyspark.sql import SparkSession

if TYPE_CHECKING:
    from api.client import AvipClient
    from config.settings import Settings

# Every service a test starts runs without warm workers (two JVMs warming up per test
# server) unless the test asks for them: tests/warm does, with Settings(warm_workers=...).
os.environ.setdefault("AVIP_WARM_WORKERS", "0")


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    from lakehouse.session import get_spark

    warehouse = tmp_path_factory.mktemp("warehouse")
    session = get_spark(
        "local[2]",
        app_name="avip-tests",
        conf={
            "spark.ui.enabled": "false",
            "spark.sql.shuffle.partitions": "4",
            "spark.sql.warehouse.dir": str(warehouse),
        },
    )
    yield session
    session.stop()


@pytest.fixture(scope="session")
def standalone_master() -> str:
    """The devstack's spark:// URL; `make test` starts the cluster and exports it."""
    master = os.environ.get("AVIP_TEST_SPARK_MASTER")
    if not master:
        pytest.skip("no standalone cluster: run through `make test` (devstack starts it)")
    return master


def _free_port() -> int:
    from testing_utils import free_port

    return free_port()


@pytest.fixture(scope="session")
def free_port() -> Callable[[], int]:
    """A function returning a free loopback TCP port."""
    return _free_port


@dataclass
class LiveApi:
    """The real API served on ``url``, with a bootstrap operator's token."""

    url: str
    app: Any
    settings: Settings
    operator_token: str

    def operator(self) -> AvipClient:
        from api.client import AvipClient

        return AvipClient(self.url, self.operator_token)

    def make_user(self, name: str, roles: list[str] | None = None,
                  groups: list[str] | None = None, label: str = "test") -> str:
        """Create a user through the API; return a fresh token."""
        with self.operator() as op:
            op.create_user(name, roles or ["scientist"], groups)
            return op.issue_token(name, label).token


@contextmanager
def _serve_api(settings: Settings, *, catalogue: Any = None,
               run_scheduler: bool = False) -> Iterator[LiveApi]:
    import uvicorn

    from api.bootstrap import ensure_operator
    from api.main import create_app

    app = create_app(settings, catalogue=catalogue, run_scheduler=run_scheduler)
    token_file = ensure_operator(app.state.sessions, settings.data_dir, 1)
    assert token_file is not None
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        yield LiveApi(f"http://127.0.0.1:{port}", app, settings,
                      token_file.read_text().strip())
    finally:
        server.should_exit = True
        thread.join(timeout=60)


@pytest.fixture(scope="session")
def serve_api() -> Callable[..., AbstractContextManager[LiveApi]]:
    """``with serve_api(settings, catalogue=..., run_scheduler=...) as api:`` — the real
    app under uvicorn in a background thread on a free loopback port, with a bootstrap
    operator (``api.operator_token``, ``api.operator()``, ``api.make_user(name)``)."""
    return _serve_api


def _ingest_synthetic_cli(root: str, *, rows: int, seed: int, clusters: int,
                          timeout_s: float) -> str:
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable,
               AVIP_SPARK_MASTER="local[2]")
    done = subprocess.run(
        [str(Path(sys.executable).parent / "avip"), "ingest", "synthetic", "--rows", str(rows),
         "--seed", str(seed), "--clusters", str(clusters), "--root", root],
        env=env, capture_output=True, text=True, timeout=timeout_s)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return root


@pytest.fixture(scope="session")
def ingest_synthetic_cli() -> Callable[..., str]:
    """``ingest_synthetic_cli(root, rows=, seed=, clusters=, timeout_s=)``: a synthetic sky
    ingested by ``avip ingest synthetic`` in its own process, as an operator would."""
    return _ingest_synthetic_cli


# --- the fault campaign (tests/faults, and the alert stream's outage test) -----------

REPO_ROOT = Path(__file__).resolve().parents[1]


def _devstack(service: str, command: str) -> None:
    # devstack.sh keeps .devstack/env to one line per key when a service comes back
    done = subprocess.run(["bash", str(REPO_ROOT / "devstack/devstack.sh"), command, service],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, f"devstack {service} {command}: {done.stdout}{done.stderr}"


@pytest.fixture
def devstack() -> Callable[[str, str], None]:
    """``devstack(service, "down" | "up")``: stop or start one shared service."""
    if not os.environ.get("AVIP_TEST_SERVICES_RESTARTABLE"):
        pytest.skip("stopping shared services needs AVIP_TEST_SERVICES_RESTARTABLE=1 "
                    "(set by `make test`)")
    return _devstack


@pytest.fixture
def record_figures(request: pytest.FixtureRequest) -> Callable[[dict], None]:  # type: ignore[type-arg]
    """Write this test's figures (fault, load, lost, duplicated...) for the reliability
    table (docs/reliability.md)."""
    from testing_utils import write_figures

    def record(figures: dict) -> None:  # type: ignore[type-arg]
        write_figures(request.node.name.removeprefix("test_"), figures)

    return record
