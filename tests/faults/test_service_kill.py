"""`avip serve` (API + scheduler) killed with SIGKILL while 50 jobs wait and several run,
then started again: no job lost, none run twice, the running ones adopted or failed with
their own reason."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from testing_utils import free_port

from api.client import AvipClient
from api.schemas import QuotaPublic

REPO = Path(__file__).resolve().parents[2]
JOBS = 50
RUNNING = 3



def _serve(data: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "AVIP_DATA_DIR": str(data), "AVIP_API_PORT": str(port),
           "AVIP_API_HOST": "127.0.0.1", "AVIP_CLUSTER_CORES": "8",
           "AVIP_LAKEHOUSE_URI": str(data / "no-catalogue"),  # jobs fail fast, after starting
           "AVIP_SCHEDULER_INTERVAL_S": "0.2"}
    env.pop("AVIP_DATABASE_URL", None)
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "avip"), "serve", "--dashboards-port", "0"],
        env=env, cwd=REPO, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/docs", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        assert process.poll() is None, log.read_text()[-3000:]
        time.sleep(0.3)
    raise AssertionError("avip serve did not start: " + log.read_text()[-3000:])


@pytest.mark.slow
def test_kill_9_with_jobs_waiting_and_running_loses_none_and_runs_none_twice(
    tmp_path: Path, record_figures
) -> None:
    data, port, log = tmp_path / "data", free_port(), tmp_path / "serve.log"
    service = _serve(data, port, log)
    url = f"http://127.0.0.1:{port}"
    try:
        with AvipClient(url, (data / "operator.token").read_text().strip()) as operator:
            operator.create_user("alice", ["scientist"])
            token = operator.issue_token("alice", "faults").token
            operator.set_pool("alice", QuotaPublic(cores=8, memory_mb=16384, max_jobs=RUNNING,
                                                   space_bytes=1 << 30))
        with AvipClient(url, token) as alice:
            ids = [alice.submit("cone_search", {"ra": 56.75, "dec": 24.12, "radius_deg": 0.1}).id
                   for _ in range(JOBS)]
            deadline = time.monotonic() + 120
            while alice.jobs(state="running").count < RUNNING:
                assert time.monotonic() < deadline, "the jobs never started"
                time.sleep(0.2)
    finally:
        service.send_signal(signal.SIGKILL)
        service.wait()
    killed_at = time.monotonic()

    service = _serve(data, port, log)  # the same store, data and drivers
    restart_s = time.monotonic() - killed_at
    try:
        with AvipClient(url, token) as alice:
            after = {j.id: j for j in alice.jobs(limit=500).data}
            assert sorted(after) == sorted(ids)  # none lost
            for job_id in ids[RUNNING * 2:]:  # stop the long tail: the test is the restart
                alice.cancel(job_id)
            deadline = time.monotonic() + 240
            while True:
                final = {j.id: j for j in alice.jobs(limit=500).data}
                if all(j.state in ("succeeded", "failed", "cancelled") for j in final.values()):
                    break
                assert time.monotonic() < deadline, Counter(j.state for j in final.values())
                time.sleep(0.5)
            events = []
            after_id = 0
            while page := alice.events(after=after_id).data:
                events += page
                after_id = page[-1].id
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=60)

    starts = Counter(e.job_id for e in events if e.type == "job.running")
    twice = [job_id for job_id, n in starts.items() if n > 1]
    ended = Counter(e.job_id for e in events if e.type in ("job.succeeded", "job.failed",
                                                           "job.cancelled"))
    guessed = [j.id for j in final.values() if "service stopped" in (j.reason or "")]
    ran = [j for j in final.values() if j.id in starts]
    assert twice == [] and all(n == 1 for n in ended.values()) and len(ended) == JOBS
    assert guessed == []  # every started job ended with its own driver's outcome
    assert all("runner exited with code" in (j.reason or "") for j in ran if j.state == "failed")
    record_figures({"fault": "kill -9 of avip serve (API + scheduler)",
                    "load": f"{JOBS} jobs queued, {RUNNING} running", "lost": 0,
                    "run_twice": len(twice), "started": len(starts),
                    "restart_s": round(restart_s, 1),
                    "outcomes": dict(Counter(j.state for j in final.values()))})
