"""One user floods the API (oversized bodies, submissions past the queue cap, uploads)
while another polls their job: the other's answers stay right. Latency is recorded, with
the same poll's figure on a quiet API in the same run beside it, not asserted."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from config.settings import Settings

FLOODERS = 16
SECONDS = 8.0


def _poll(url: str, headers: dict[str, str], job_id: int, seconds: float) -> list[float]:
    took = []
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            started = time.perf_counter()
            r = client.get(f"/jobs/{job_id}")
            took.append(time.perf_counter() - started)
            assert r.status_code == 200 and r.json()["id"] == job_id
            time.sleep(0.01)
    return took


@pytest.mark.slow
def test_one_user_flooding_does_not_stop_another(tmp_path: Path, serve_api,
                                                 record_figures) -> None:
    settings = Settings(data_dir=tmp_path / "data", max_queued_jobs_per_user=20)
    with serve_api(settings) as api:
        mallory = {"Authorization": f"Bearer {api.make_user('mallory')}"}
        alice = {"Authorization": f"Bearer {api.make_user('alice')}"}
        cone = {"avi": "cone_search", "params": {"ra": 10, "dec": 20, "radius_deg": 0.1}}
        with httpx.Client(base_url=api.url, headers=alice, timeout=30) as client:
            job_id = client.post("/jobs", json=cone).json()["id"]
        quiet = _poll(api.url, alice, job_id, 3.0)

        answers: dict[int, int] = {}
        stop = threading.Event()
        huge = b'{"avi": "cone_search", "params": {"columns": [' + b'"ra",' * 600_000 + b'"ra"]}}'

        def flood(worker: int) -> None:
            with httpx.Client(base_url=api.url, headers=mallory, timeout=60) as client:
                while not stop.is_set():
                    kind = worker % 3
                    if kind == 0:  # 3.6 MB of JSON
                        r = client.post("/jobs", content=huge,
                                        headers={"Content-Type": "application/json"})
                    elif kind == 1:  # submissions past the queue cap
                        r = client.post("/jobs", json=cone)
                    else:  # uploads
                        r = client.put(f"/space/files/f{worker}.bin", content=b"x" * 500_000)
                    answers[r.status_code] = answers.get(r.status_code, 0) + 1

        threads = [threading.Thread(target=flood, args=(i,)) for i in range(FLOODERS)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(0.5)
            flooded = _poll(api.url, alice, job_id, SECONDS)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
    assert answers.get(413, 0) > 0 and answers.get(429, 0) > 0  # the flood met its limits
    assert not any(status >= 500 for status in answers), answers
    ms = {name: np.percentile(np.array(took) * 1000, [50, 99]).round(1).tolist()
          for name, took in (("quiet", quiet), ("flooded", flooded))}
    record_figures({"fault": f"one user floods with {FLOODERS} connections "
                             "(3.6 MB bodies, submissions past the cap, uploads)",
                    "flood_answers": {str(k): v for k, v in sorted(answers.items())},
                    "other_user_get_job_ms_p50_p99": ms, "other_user_errors": 0,
                    "polls": {"quiet": len(quiet), "flooded": len(flooded)}})
