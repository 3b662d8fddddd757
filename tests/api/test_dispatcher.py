# ruff: noqa: E501
"""The scheduler loop with real spark-submit drivers: failures carry the runner's
reason, a live driver survives a service restart (adopted, never relaunched), a
driver that died while the service was down is failed with the reason, cancel stops
the driver's whole process group, and one real AVI runs end to end with progress."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.avis import RegistryCatalogue
from api.bootstrap import ensure_operator
from api.main import create_app
from api.models import Job
from api.scheduling.dispatcher import Dispatcher
from api.scheduling.drf import Pool
from config.settings import Settings
from spark_jobs.backends.processes import (
    Driver,
    LocalBackend,
    StandaloneBackend,
    driver_alive,
    group_alive,
)
from spark_jobs.backends.protocol import Handle, JobLaunch, JobRef

CONE = {"avi": "cone_count", "params": {"ra_deg": 10, "dec_deg": 20}}


def _fresh_dispatcher(client: TestClient) -> Dispatcher:
    """What a restarted service builds: same store, no memory of the old process."""
    old: Dispatcher = client.app.state.dispatcher  # type: ignore[attr-defined]
    return Dispatcher(sessions=old.sessions, backend=old.backend, capacity=old.capacity,
                      catalogue_root=old.catalogue_root, cache_dir=old.cache_dir)


def _job(client: TestClient, job_id: int) -> Job:
    with client.app.state.sessions() as s:  # type: ignore[attr-defined]
        return s.get(Job, job_id)


def _tick_until_final(dispatcher: Dispatcher, client: TestClient, job_id: int, timeout: float) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dispatcher.tick()
        job = _job(client, job_id)
        if job.state in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} still {_job(client, job_id).state} after {timeout}s")


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """Driver tests need one store only (the store itself is tested on both)."""
    return f"sqlite:///{tmp_path / 'store.db'}"


def test_live_driver_is_adopted_after_restart_and_its_failure_reason_kept(client: TestClient, make_user) -> None:  # type: ignore[no-untyped-def]
    # cone_count is a test plugin the runner cannot load by entry point: a real,
    # quick failure (exit code 2) with the runner's own message.
    alice = make_user("alice")
    job_id = client.post("/jobs", headers=alice, json=CONE).json()["id"]
    first = client.app.state.dispatcher  # type: ignore[attr-defined]
    assert first.tick().started == [job_id]
    running = _job(client, job_id)
    assert running.state == "running" and running.driver_pid
    pid = running.driver_pid
    assert driver_alive(Driver(pid, running.driver_start or ""))

    restarted = _fresh_dispatcher(client)
    assert restarted.recover() == []  # alive → adopted
    assert restarted.tick().started == []  # and never launched a second time
    done = _tick_until_final(restarted, client, job_id, timeout=120)
    assert done.state == "failed" and done.driver_pid == pid
    assert "exited with code 2" in (done.reason or "") and "cone_count" in (done.reason or "")
    logs = client.get(f"/jobs/{job_id}/logs", headers=alice).text
    assert "cone_count" in logs
    types = [e["type"] for e in client.get("/events", headers=alice).json()["data"]]
    assert types[:2] == ["job.queued", "job.running"] and types[-1] == "job.failed"


def test_driver_dead_while_service_down_is_failed_with_reason(client: TestClient, make_user) -> None:  # type: ignore[no-untyped-def]
    alice = make_user("alice")
    job_id = client.post("/jobs", headers=alice, json=CONE).json()["id"]
    client.app.state.dispatcher.tick()  # type: ignore[attr-defined]
    job = _job(client, job_id)
    os.killpg(job.driver_pid, signal.SIGKILL)  # the machine "lost" the driver
    while driver_alive(Driver(job.driver_pid, job.driver_start or "")):
        time.sleep(0.1)
    restarted = _fresh_dispatcher(client)
    assert restarted.recover() == [job_id]
    failed = _job(client, job_id)
    assert failed.state == "failed" and "died while the service was down" in (failed.reason or "")


KILLED_AFTER_START = """
import os, signal, sys
from pathlib import Path
from api.db import make_engine, session_factory
from api.scheduling.dispatcher import Dispatcher
from api.scheduling.drf import Capacity
from spark_jobs.backends.processes import LocalBackend
from config.settings import Settings

settings = Settings(data_dir=Path(sys.argv[1]), database_url=sys.argv[2])

def fault(point):  # the service dies after starting the driver, before saving its pid
    if point == "driver-started":
        os.kill(os.getpid(), signal.SIGKILL)

Dispatcher(sessions=session_factory(make_engine(settings.store_url)),
           backend=LocalBackend(jars_dir=settings.jars_dir), capacity=Capacity(8, 16384),
           catalogue_root=settings.catalogue_root, fault=fault).tick()
"""


def test_a_service_killed_before_saving_the_pid_adopts_its_driver(client: TestClient, make_user, store_url: str) -> None:  # type: ignore[no-untyped-def]
    """Issue 14 (defect 6): such a job was failed while its driver ran on, uncounted and
    uncancellable. The real service is SIGKILLed at exactly that point (a fault hook)."""
    import subprocess
    import sys

    alice = make_user("alice")
    job_id = client.post("/jobs", headers=alice, json=CONE).json()["id"]
    settings: Settings = client.app.state.settings  # type: ignore[attr-defined]
    killed = subprocess.run([sys.executable, "-c", KILLED_AFTER_START, str(settings.data_dir),
                             store_url], cwd=Path(__file__).resolve().parents[2], timeout=120)
    assert killed.returncode == -signal.SIGKILL
    job = _job(client, job_id)
    assert job.state == "running" and job.driver_pid is None  # claimed, pid never saved
    marker = Path(job.output_dir) / "driver.pid"
    deadline = time.monotonic() + 10
    while not marker.exists():  # the wrapper records itself as it starts
        assert time.monotonic() < deadline
        time.sleep(0.05)
    pid = int(marker.read_text())

    restarted = _fresh_dispatcher(client)
    settled = restarted.recover()
    if settled == []:  # still running: adopted, watched, never launched again
        assert _job(client, job_id).state == "running"
        assert restarted.tick().started == []
    done = _tick_until_final(restarted, client, job_id, timeout=120)
    # its own outcome (cone_count is not installed for the runner: exit 2), not a guess
    assert done.state == "failed" and "exited with code 2" in (done.reason or ""), done.reason
    assert not group_alive(pid)


def test_an_adopted_driver_without_a_saved_pid_can_be_cancelled(client: TestClient, make_user, store_url: str) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    alice = make_user("alice")
    job_id = client.post("/jobs", headers=alice, json=CONE).json()["id"]
    settings: Settings = client.app.state.settings  # type: ignore[attr-defined]
    subprocess.run([sys.executable, "-c", KILLED_AFTER_START, str(settings.data_dir), store_url],
                   cwd=Path(__file__).resolve().parents[2], timeout=120)
    marker = Path(_job(client, job_id).output_dir) / "driver.pid"
    deadline = time.monotonic() + 10
    while not marker.exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    pid = int(marker.read_text())
    assert client.post(f"/jobs/{job_id}/cancel", headers=alice).status_code == 200
    restarted = _fresh_dispatcher(client)
    restarted.recover()
    done = _tick_until_final(restarted, client, job_id, timeout=60)
    assert done.state in ("cancelled", "failed")
    deadline = time.monotonic() + 30
    while group_alive(pid):  # its whole process group is stopped
        assert time.monotonic() < deadline, "the adopted driver was not stopped"
        time.sleep(0.2)


def test_cancel_running_job_stops_the_process_group(client: TestClient, make_user) -> None:  # type: ignore[no-untyped-def]
    alice = make_user("alice")
    job_id = client.post("/jobs", headers=alice, json=CONE).json()["id"]
    dispatcher = client.app.state.dispatcher  # type: ignore[attr-defined]
    dispatcher.tick()
    job = _job(client, job_id)
    r = client.post(f"/jobs/{job_id}/cancel", headers=alice).json()
    assert r["state"] == "running" and r["cancel_requested"] is True
    dispatcher.tick()
    done = _job(client, job_id)
    assert done.state == "cancelled"
    assert not driver_alive(Driver(job.driver_pid, job.driver_start or ""))
    assert not group_alive(job.driver_pid)  # the spark-submit JVM and Python driver too


@pytest.fixture(scope="module")
def synthetic_lake(tmp_path_factory: pytest.TempPathFactory, ingest_synthetic_cli) -> str:  # type: ignore[no-untyped-def]
    """A small synthetic sky, ingested in its own process as an operator would."""
    return ingest_synthetic_cli(str(tmp_path_factory.mktemp("lake")), rows=4000, seed=5,
                                clusters=1, timeout_s=600)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["local", pytest.param("standalone", marks=pytest.mark.standalone)])
def test_real_avi_runs_end_to_end_with_progress(tmp_path: Path, store_url: str, synthetic_lake: str,
                                               backend: str, request: pytest.FixtureRequest) -> None:
    master = request.getfixturevalue("standalone_master") if backend == "standalone" else "local[*]"
    settings = Settings(data_dir=tmp_path / "data", database_url=store_url,
                        lakehouse_uri=synthetic_lake, cluster_cores=2, cluster_memory_mb=4096,
                        job_backend=backend, spark_master=master)
    app = create_app(settings, catalogue=RegistryCatalogue())
    with TestClient(app) as client:
        token = ensure_operator(app.state.sessions, settings.data_dir, 1).read_text().strip()  # type: ignore[union-attr]
        op = {"Authorization": f"Bearer {token}"}
        body = {"avi": "cone_search", "params": {"ra": 56.75, "dec": 24.12, "radius_deg": 5,
                                                 "formats": ["csv"]}}
        r = client.post("/jobs", headers=op, json=body)
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]
        done = _tick_until_final(app.state.dispatcher, client, job_id, timeout=400)
        logs = client.get(f"/jobs/{job_id}/logs", headers=op).text
        assert done.state == "succeeded", logs[-3000:]
        if backend == "standalone":  # its own application on the cluster, sized by the grant
            assert master in logs or "spark://" in logs
        public = client.get(f"/jobs/{job_id}", headers=op).json()
        assert public["progress"]["fraction"] == 1.0 and public["progress"]["tasks_total"] >= 1
        assert public["run_seconds"] > 0
        files = client.get(f"/jobs/{job_id}/results", headers=op).json()["data"]
        assert any(f["path"].endswith(".csv") for f in files)
        types = [e["type"] for e in client.get("/events", headers=op).json()["data"]]
        assert "job.progress" in types and types[-1] == "job.succeeded"
        rerun = client.post(f"/jobs/{job_id}/rerun", headers=op).json()
        assert rerun["pins"].get("gaia_source") is not None


def test_standalone_submit_flags_come_from_the_grant() -> None:
    launch = JobLaunch(job_id=7, avi="x", avi_version="1", params={}, output_dir=Path("/tmp/j7"),
                       cores=5, memory_mb=6144,
                       resources={"driver_cores": 1, "driver_memory_mb": 2048,
                                  "executor_cores": 2, "executor_memory_mb": 2048, "executors": 2})
    backend = StandaloneBackend("spark://127.0.0.1:7077", jars_dir=Settings().jars_dir)
    flags = backend.submit_flags(launch)
    assert flags[:2] == ["--driver-memory", "2048m"]
    conf = dict(f.split("=", 1) for f in flags[3::2])
    assert conf["spark.cores.max"] == "4" and conf["spark.executor.cores"] == "2"
    assert conf["spark.executor.memory"] == "2048m"
    runner_args = backend.command(launch)[backend.command(launch).index("--avi"):]
    assert "spark.executor.memory=2048m" in runner_args  # the runner's builder must not override


def test_a_lost_claim_starts_no_driver_and_an_unstarted_one_is_not_adopted(tmp_path: Path) -> None:
    backend = LocalBackend(jars_dir=Settings().jars_dir)
    launch = JobLaunch(job_id=8, avi="x", avi_version="1", params={}, output_dir=tmp_path / "j8",
                       cores=1, memory_mb=1024)
    claims: list[str] = []

    def lost() -> bool:
        claims.append("tried")
        return False

    assert backend.submit(launch, "alice", Pool(1, 1024, 1), lost).outcome == "lost"
    assert claims == ["tried"] and not launch.output_dir.exists()  # claimed before launching
    ref = JobRef(job_id=8, user="alice", output_dir=launch.output_dir)
    backend.cancel(ref)  # nothing started: nothing to stop
    assert backend.poll(ref).state == "running"  # claimed elsewhere, its driver being started
    adopted = backend.adopt(ref)
    assert adopted.state == "failed" and "before this job's driver was started" in adopted.reason
    dead = backend.adopt(JobRef(8, "alice", launch.output_dir, Handle(2**22 + 1, "1")))
    assert dead.state == "failed" and "died while the service was down" in dead.reason
