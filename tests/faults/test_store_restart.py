"""PostgreSQL restarted under 50 polling clients: 503 with Retry-After meanwhile, never a
500, recovery without restarting the API, and no job in an impossible state."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from testing_utils import postgres_schema

from config.settings import Settings

CLIENTS = 50


@pytest.fixture
def postgres_store() -> str:
    base = os.environ.get("AVIP_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("no PostgreSQL: AVIP_TEST_POSTGRES_URL is unset (run through `make test`)")
    return postgres_schema(base)[0]


@pytest.mark.slow
def test_a_store_restart_is_503_with_retry_after_then_recovers(
    tmp_path: Path, serve_api, devstack, postgres_store: str, record_figures
) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=postgres_store,
                        auth_cache_ttl_s=0)  # every request asks the store, as the worst case
    with serve_api(settings) as api:
        token = api.make_user("alice")
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=api.url, headers=headers, timeout=30) as client:
            job_ids = [client.post("/jobs", json={"avi": "cone_search", "params": {
                "ra": 10, "dec": 20, "radius_deg": 0.1}}).json()["id"] for _ in range(5)]
        seen: list[tuple[float, int, str | None]] = []
        stop = threading.Event()

        def poll(worker: int) -> None:
            with httpx.Client(base_url=api.url, headers=headers, timeout=30) as client:
                while not stop.is_set():
                    job_id = job_ids[worker % len(job_ids)]
                    try:
                        r = client.get(f"/jobs/{job_id}")
                        seen.append((time.monotonic(), r.status_code,
                                     r.headers.get("retry-after")))
                    except httpx.HTTPError as error:  # the API itself must stay up
                        seen.append((time.monotonic(), -1, type(error).__name__))
                    time.sleep(0.05)

        workers = [threading.Thread(target=poll, args=(i,)) for i in range(CLIENTS)]
        for worker in workers:
            worker.start()
        try:
            time.sleep(2)
            down_at = time.monotonic()
            devstack("postgres", "down")
            time.sleep(5)
            devstack("postgres", "up")
            up_at = time.monotonic()
            time.sleep(10)
        finally:
            stop.set()
            for worker in workers:
                worker.join()
        with httpx.Client(base_url=api.url, headers=headers, timeout=30) as client:
            states = [client.get(f"/jobs/{j}").json()["state"] for j in job_ids]

    statuses = Counter(status for _, status, _ in seen)
    during = [(s, retry) for t, s, retry in seen if down_at <= t <= up_at]
    recovered = [t for t, s, _ in seen if t > up_at and s == 200]
    last_bad = max((t for t, s, _ in seen if s != 200), default=up_at)
    assert set(statuses) <= {200, 503}, statuses  # never a 500, never a dropped connection
    assert any(s == 503 for s, _ in during), f"the outage never showed: {statuses}"
    assert all(retry == "5" for s, retry in during if s == 503)
    assert recovered and last_bad < time.monotonic() - 3  # back without restarting the API
    assert states == ["queued"] * len(job_ids)  # nothing half-changed
    record_figures({"fault": "PostgreSQL stopped 5 s and started again",
                    "load": f"{CLIENTS} clients polling GET /jobs/<id>",
                    "requests": len(seen), "ok": statuses[200], "503_retry_after": statuses[503],
                    "5xx_other": sum(n for s, n in statuses.items() if s not in (200, 503)),
                    "recovered_s_after_up": round(max(last_bad - up_at, 0.0), 2),
                    "lost": 0, "impossible_states": 0})
