"""A Spark standalone worker killed (SIGKILL) while it runs a job's executor: the job
finishes on the other worker (Spark retries the tasks) or fails with a reason, and its
result folder is whole or absent, never half-written."""

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
from config.settings import Settings


def _processes() -> dict[int, tuple[int, str]]:
    """pid → (parent pid, command line) of every process."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        found[int(stat.parent.name)] = (int(text[text.rfind(")") + 2:].split()[1]), command)
    return found


def _worker_running_an_executor() -> int | None:
    """The pid of a worker running an executor, once there is one (the devstack cluster
    serves one test at a time: the executor is this job's)."""
    processes = _processes()
    for _pid, (parent, command) in processes.items():
        if "CoarseGrainedExecutorBackend" in command:
            worker = processes.get(parent, (0, ""))[1]
            if "deploy.worker.Worker" in worker:
                return parent
    return None


@pytest.fixture
def synthetic_sky(tmp_path_factory, ingest_synthetic_cli) -> str:  # type: ignore[no-untyped-def]
    return ingest_synthetic_cli(str(tmp_path_factory.mktemp("lake")), rows=40_000, seed=7,
                                clusters=2, timeout_s=600)


@pytest.mark.slow
@pytest.mark.standalone
def test_a_worker_killed_mid_job_leaves_no_half_result(
    tmp_path: Path, synthetic_sky: str, standalone_master: str, devstack, record_figures
) -> None:
    settings = Settings(data_dir=tmp_path / "data", lakehouse_uri=synthetic_sky,
                        cluster_cores=2, cluster_memory_mb=4096, job_backend="standalone",
                        spark_master=standalone_master)
    app = create_app(settings, catalogue=RegistryCatalogue())
    killed = None
    try:
        with TestClient(app) as client:
            token = ensure_operator(app.state.sessions, settings.data_dir, 1)
            assert token is not None
            op = {"Authorization": f"Bearer {token.read_text().strip()}"}
            body = {"avi": "cone_search", "params": {  # the whole sky
                "shape": "box", "ra_min": 0, "ra_max": 360, "dec_min": -90, "dec_max": 90,
                "formats": ["csv", "fits"]}}
            job_id = client.post("/jobs", headers=op, json=body).json()["id"]
            dispatcher = app.state.dispatcher
            deadline = time.monotonic() + 400
            while True:
                dispatcher.tick()
                with app.state.sessions() as session:
                    job = session.get(Job, job_id)
                    state, output = job.state, Path(job.output_dir)
                if killed is None:
                    worker = _worker_running_an_executor()
                    if worker is not None:
                        os.kill(worker, signal.SIGKILL)
                        killed = worker
                if state in ("succeeded", "failed", "cancelled"):
                    break
                assert time.monotonic() < deadline, "the job never ended"
                time.sleep(0.3)
            public = client.get(f"/jobs/{job_id}", headers=op).json()
    finally:
        devstack("spark", "up")  # two workers again for the tests after this one
    assert killed is not None, "no executor was seen on a worker: the fault never happened"
    assert state == "succeeded" or public["reason"], public
    staging = [p.name for p in output.iterdir() if p.name.startswith(".result.")]
    assert staging == []  # no half-published result left behind
    result = output / "result"
    if state == "succeeded":
        assert sorted(p.suffix for p in result.iterdir() if p.is_file()) >= [".csv", ".fits"]
    else:
        assert not result.exists()
    record_figures({"fault": "SIGKILL of a Spark standalone worker running the job's executor",
                    "outcome": state, "reason": public["reason"],
                    "half_written_results": len(staging)})
