"""``avip warm``, the warm lane as its own process (its own Deployment in production), and
the scheduler's client of it: jobs run through it as through workers of the scheduler's
own; only the scheduler's token reaches its job API (probes and metrics are open); a job
started without a reservation is refused; and when the service is gone for good a running
job fails saying so instead of running forever."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from testing_utils import free_port, wait_until_answers

from spark_jobs.backends.protocol import JobLaunch, JobRef, Status
from spark_jobs.backends.warm.backend import WarmBackend
from spark_jobs.backends.warm.service import RemoteWarmLane

TOKEN = "warm-lane-test-token"


@pytest.fixture(scope="module")
def service(probe_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("warm-data")
    port = free_port()
    env = dict(os.environ, AVIP_DATA_DIR=str(data), AVIP_WARM_WORKERS="1",
               AVIP_WARM_LANE_TOKEN=TOKEN,
               PYTHONPATH=os.pathsep.join([str(probe_path), os.environ.get("PYTHONPATH", "")]))
    log = (data / "warm.log").open("wb")
    process = subprocess.Popen([str(Path(sys.executable).parent / "avip"), "warm", "--host",
                                "127.0.0.1", "--port", str(port)], env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(f"{url}/readyz", process, timeout_s=240,
                           why=f"see {data / 'warm.log'}")
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
        log.close()


def _launch(tmp_path: Path, job_id: int, **params: object) -> JobLaunch:
    return JobLaunch(job_id=job_id, avi="warm_probe", avi_version="0.1.0", params=dict(params),
                     output_dir=tmp_path / f"job-{job_id}", cores=1, memory_mb=1024,
                     cache_dir=tmp_path / f"cache-{job_id}")


def _wait(backend: WarmBackend, ref: JobRef, timeout_s: float = 60) -> Status:
    deadline = time.monotonic() + timeout_s
    while not (status := backend.poll(ref)).finished:
        assert time.monotonic() < deadline, status
        time.sleep(0.05)
    return status


def test_jobs_run_through_the_service_with_the_schedulers_token(service: str,
                                                                tmp_path: Path) -> None:
    backend = WarmBackend(RemoteWarmLane(service, TOKEN))
    launch = _launch(tmp_path, 1, mode="ok")
    submission = backend.submit(launch, "alice", None, lambda: True)  # type: ignore[arg-type]
    assert submission.outcome == "started" and submission.handle.pid
    ref = JobRef(1, "alice", launch.output_dir, submission.handle)
    assert _wait(backend, ref) == Status("succeeded")
    assert (launch.output_dir / "result" / "report.json").is_file()
    crashed = _launch(tmp_path, 2, mode="crash")
    submission = backend.submit(crashed, "bob", None, lambda: True)  # type: ignore[arg-type]
    status = _wait(backend, JobRef(2, "bob", crashed.output_dir, submission.handle))
    assert status.state == "failed" and "exited with code 3" in status.reason


def test_only_the_scheduler_reaches_the_job_api(service: str, tmp_path: Path) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN[:-1]}):
        for method, path in (("POST", "/jobs/7/reservation"), ("GET", "/stats"),
                             ("DELETE", "/jobs/7"), ("POST", "/jobs/7")):
            r = httpx.request(method, f"{service}{path}", headers=headers, json={})
            assert r.status_code == 401, (method, path, r.status_code)
            assert "AVIP_WARM_LANE_TOKEN" in r.json()["detail"]
    assert httpx.get(f"{service}/healthz").json() == {"status": "alive"}
    deadline = time.monotonic() + 120  # the worker the crash test killed is replaced
    while (ready := httpx.get(f"{service}/readyz")).status_code != 200:
        assert ready.status_code == 503 and ready.json()["workers"]["starting"] == 1
        assert time.monotonic() < deadline, ready.json()
        time.sleep(0.2)
    names = {f.name for f in text_string_to_metric_families(httpx.get(f"{service}/metrics").text)}
    assert {"avip_warm_workers", "avip_warm_jobs"} <= names


def test_a_job_without_a_reservation_is_refused(service: str, tmp_path: Path) -> None:
    r = httpx.post(f"{service}/jobs/99", headers={"Authorization": f"Bearer {TOKEN}"},
                   json={"output_dir": str(tmp_path / "x"), "params": {}})
    assert r.status_code == 409 and "no warm worker is reserved for job 99" in r.json()["detail"]
    assert not (tmp_path / "x").exists()


def test_a_job_whose_lane_is_gone_fails_saying_so(tmp_path: Path) -> None:
    lane = RemoteWarmLane(f"http://127.0.0.1:{free_port()}", TOKEN, timeout_s=0.5,
                          give_up_s=1.0)
    ref = JobRef(5, "alice", tmp_path)
    assert lane.status(5, tmp_path) == Status("running")  # one silent round: asked again
    assert lane.reserve(5) is not None  # nothing starts meanwhile
    time.sleep(1.1)
    status = WarmBackend(lane).poll(ref)
    assert status.state == "failed" and "has not answered for" in status.reason
