"""The embedded store on the event loop (api.store.loop, deps.run_store).

Another connection holding SQLite's write lock must not stall the loop: polls
still answer at once (WAL readers do not wait for writers) and a submission
moves to a worker thread, waits for the lock there, and lands once it frees —
exactly one job row and one outbox event, as without contention.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.main import create_app
from api.models import Event, Job
from config.settings import Settings

BODY = {"avi": "cone_count", "params": {"ra_deg": 10.0, "dec_deg": -5.0}}


@pytest.fixture
def sqlite_client(tmp_path: Path, catalogue) -> TestClient:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path / "data", cluster_cores=8, cluster_memory_mb=16384)
    with TestClient(create_app(settings, catalogue=catalogue)) as client:
        yield client  # type: ignore[misc]


def _user(client: TestClient) -> dict[str, str]:
    from api.bootstrap import ensure_operator

    app = client.app
    path = ensure_operator(app.state.sessions, app.state.settings.data_dir, 1)  # type: ignore[attr-defined]
    assert path is not None
    return {"Authorization": f"Bearer {path.read_text().strip()}"}


def test_sqlite_store_runs_hot_routes_on_the_loop_and_postgres_does_not(client: TestClient,
                                                                         settings) -> None:  # type: ignore[no-untyped-def]
    on_loop = client.app.state.loop_store is not None  # type: ignore[attr-defined]
    assert on_loop == settings.store_url.startswith("sqlite")


def test_submission_waits_for_a_held_write_lock_in_a_worker_and_polls_do_not(
    sqlite_client: TestClient,
) -> None:
    headers = _user(sqlite_client)
    first = sqlite_client.post("/jobs", headers=headers, json=BODY)
    assert first.status_code == 201, first.text
    db = str(sqlite_client.app.state.settings.store_url).split("///", 1)[1]  # type: ignore[attr-defined]

    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    answers: dict[str, object] = {}

    def submit() -> None:
        answers["submit"] = sqlite_client.post("/jobs", headers=headers, json=BODY)
        answers["submitted_at"] = time.monotonic()

    thread = threading.Thread(target=submit)
    thread.start()
    time.sleep(0.5)
    assert thread.is_alive(), "the submission did not wait for the write lock"
    started = time.monotonic()
    poll = sqlite_client.get(f"/jobs/{first.json()['id']}", headers=headers)
    assert poll.status_code == 200 and time.monotonic() - started < 0.4  # the loop is free
    released = time.monotonic()
    holder.execute("COMMIT")
    holder.close()
    thread.join(timeout=30)

    response = answers["submit"]
    assert response.status_code == 201, response.text  # type: ignore[attr-defined]
    assert answers["submitted_at"] >= released  # type: ignore[operator]
    with sqlite_client.app.state.sessions() as session:  # type: ignore[attr-defined]
        assert session.scalar(select(func.count()).select_from(Job)) == 2
        assert session.scalar(select(func.count()).select_from(Event)
                              .where(Event.type == "job.queued")) == 2
