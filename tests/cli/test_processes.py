"""The long-running processes as an operator starts them (issue 15): `avip api` and
`avip scheduler` as separate processes on one store, each with /healthz, /readyz and
/metrics (parsed with prometheus_client's parser); a job submitted to the API is started
by the scheduler."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from testing_utils import free_port, wait_until_answers

REPO = Path(__file__).resolve().parents[2]



@contextmanager
def _process(command: list[str], data: Path, port: int) -> Iterator[str]:
    env = {**os.environ, "AVIP_DATA_DIR": str(data), "AVIP_API_HOST": "127.0.0.1",
           "AVIP_LAKEHOUSE_URI": str(data / "no-catalogue"), "AVIP_SCHEDULER_INTERVAL_S": "0.2"}
    env.pop("AVIP_DATABASE_URL", None)
    log = data.parent / f"{command[0]}.log"
    process = subprocess.Popen([str(Path(sys.executable).parent / "avip"), *command,
                                "--port", str(port)], env=env, cwd=REPO,
                               stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(f"{url}/healthz", process, why=log.read_text()[-3000:]
                           if log.exists() else "")
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def _families(url: str, headers: dict[str, str]) -> set[str]:
    r = httpx.get(f"{url}/metrics", headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    return {family.name for family in text_string_to_metric_families(r.text)}


@pytest.mark.slow
def test_api_and_scheduler_run_apart_and_serve_their_probes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with _process(["api"], data, free_port()) as api:
        operator = {"Authorization": f"Bearer {(data / 'operator.token').read_text().strip()}"}
        assert httpx.get(f"{api}/readyz").json() == {"ready": True, "checks": {"store": "ok"}}
        assert "avip_http_request_duration_seconds" in _families(api, operator)
        r = httpx.post(f"{api}/users", headers=operator, json={"name": "alice",
                                                               "roles": ["scientist"]})
        assert r.status_code == 201, r.text
        job = httpx.post(f"{api}/jobs", headers=operator, json={"avi": "cone_search",
                         "params": {"ra": 1, "dec": 2, "radius_deg": 0.1}}).json()
        time.sleep(1.5)
        assert httpx.get(f"{api}/jobs/{job['id']}", headers=operator).json()["state"] == "queued"
        with _process(["scheduler"], data, free_port()) as scheduler:
            assert httpx.get(f"{scheduler}/jobs", headers=operator).status_code == 404  # no API
            assert httpx.get(f"{scheduler}/readyz").status_code == 200
            deadline = time.monotonic() + 60
            while httpx.get(f"{api}/jobs/{job['id']}",
                            headers=operator).json()["state"] == "queued":
                assert time.monotonic() < deadline, "the scheduler never started the job"
                time.sleep(0.3)
            families = _families(scheduler, operator)
            assert {"avip_scheduler_decision_seconds", "avip_jobs",
                    "avip_queue_length"} <= families
