"""The warm lane's guarantees, on real worker processes with real Spark sessions: a crashing
AVI fails only its job and its worker is replaced; a job over its time or memory budget is
stopped and says so; cancel stops a job within a second; and one user's job never sees
what another's left in the worker (temporary and global views, tables, cached data, SQL
settings, functions).

The jobs are a test AVI (``probe_avi.py``, installed here as a distribution in a temporary
folder, which the workers import as any plugin)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from spark_jobs.backends.processes import group_alive
from spark_jobs.backends.protocol import JobLaunch, JobRef, Status
from spark_jobs.backends.warm.backend import WarmBackend
from spark_jobs.backends.warm.pool import WarmPool

ANY_POOL = None  # the warm lane takes the scheduler's grant as given


@pytest.fixture(scope="module")
def lane(probe_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WarmBackend]:
    """One worker (so consecutive jobs share it)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(probe_path), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    pool = WarmPool(workers=1, time_budget_s=120.0, env=env, warm_up=False,
                    log_dir=tmp_path_factory.mktemp("warm-logs"))
    pool.start()
    assert pool.wait_ready(180), pool.stats()
    yield WarmBackend(pool)
    pool.close()


class Jobs:
    def __init__(self, lane: WarmBackend, root: Path) -> None:
        self.lane, self.root, self.next_id = lane, root, 1

    def start(self, memory_mb: int = 1024, **params: object) -> JobRef:
        job_id = self.next_id
        self.next_id += 1
        launch = JobLaunch(job_id=job_id, avi="warm_probe", avi_version="0.1.0",
                           params=dict(params), output_dir=self.root / f"job-{job_id}",
                           cores=1, memory_mb=memory_mb, cache_dir=self.root / f"cache-{job_id}")
        pool: WarmPool = self.lane.lane  # type: ignore[assignment]
        assert pool.wait_ready(180), pool.stats()
        submission = self.lane.submit(launch, "someone", ANY_POOL, lambda: True)  # type: ignore[arg-type]
        assert submission.outcome == "started", submission
        return JobRef(job_id, "someone", launch.output_dir, submission.handle)

    def wait(self, ref: JobRef, timeout_s: float = 60.0) -> Status:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status = self.lane.poll(ref)
            if status.finished:
                return status
            time.sleep(0.02)
        raise AssertionError(f"job {ref.job_id} still running after {timeout_s} s")

    def report(self, ref: JobRef) -> dict[str, object]:
        return json.loads((ref.output_dir / "result" / "report.json").read_text())


def gone(pgid: int, within_s: float = 2.0) -> bool:
    """Whether the process group ``pgid`` (a worker and its JVM) is gone within ``within_s``."""
    deadline = time.monotonic() + within_s
    while group_alive(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture
def jobs(lane: WarmBackend, tmp_path: Path) -> Jobs:
    return Jobs(lane, tmp_path)


def test_a_job_runs_in_the_warm_worker_and_writes_what_a_driver_writes(jobs: Jobs) -> None:
    ref = jobs.start(mode="ok")
    assert jobs.wait(ref) == Status("succeeded")
    assert jobs.report(ref)["pid"] == ref.handle.pid  # ran inside the worker, no new process
    provenance = json.loads((ref.output_dir / "provenance.json").read_text())
    assert provenance["status"] == "succeeded" and provenance["lane"] == "warm"
    assert json.loads((ref.output_dir / "progress.json").read_text())["message"] == "done"
    assert "task probe" in (ref.output_dir / "driver.log").read_text()


def test_a_crashing_avi_fails_only_its_job_and_the_worker_is_replaced(jobs: Jobs) -> None:
    crashed = jobs.start(mode="crash")
    status = jobs.wait(crashed)
    assert status.state == "failed"
    assert "exited with code 3" in status.reason and "replaced" in status.reason
    assert gone(crashed.handle.pid)
    after = jobs.start(mode="ok")
    assert jobs.wait(after) == Status("succeeded")
    assert after.handle.pid != crashed.handle.pid


def test_a_job_over_its_time_budget_is_stopped_and_says_so(
        jobs: Jobs, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs.lane.lane, "time_budget_s", 6.0)
    started = time.monotonic()
    ref = jobs.start(mode="sleep", seconds=120)
    status = jobs.wait(ref, timeout_s=30)
    assert status.state == "failed"
    assert "over the warm lane's time budget of 6 s" in status.reason
    assert time.monotonic() - started < 15
    assert gone(ref.handle.pid)


def test_a_job_over_its_memory_budget_is_stopped_and_says_so(jobs: Jobs) -> None:
    ref = jobs.start(memory_mb=200, mode="hog", megabytes=600, seconds=30)
    status = jobs.wait(ref, timeout_s=30)
    assert status.state == "failed"
    assert "over its memory budget of 200 MiB" in status.reason, status.reason
    assert gone(ref.handle.pid)
    within = jobs.start(memory_mb=400, mode="hog", megabytes=100, seconds=0)
    assert jobs.wait(within) == Status("succeeded")
    assert jobs.report(within)["held_mb"] == 100


def test_cancel_stops_the_job_within_a_second(jobs: Jobs) -> None:
    ref = jobs.start(mode="sleep", seconds=120)
    time.sleep(1.0)
    assert not jobs.lane.poll(ref).finished
    pool: WarmPool = jobs.lane.lane  # type: ignore[assignment]
    asked = time.monotonic()
    pool.cancel(ref.job_id)
    while group_alive(ref.handle.pid):
        assert time.monotonic() - asked < 1.0, "the job's worker still runs 1 s after cancel"
        time.sleep(0.01)
    assert pool.status(ref.job_id, ref.output_dir) == Status("failed", "cancelled")
    jobs.lane.cancel(ref)  # the scheduler's call: cancelled again (a no-op), then forgotten
    assert ref.job_id not in pool.runs


def test_a_job_never_sees_what_the_previous_users_job_left(jobs: Jobs) -> None:
    leak = jobs.start(mode="leak", secret="alice-secret")
    assert jobs.wait(leak) == Status("succeeded")
    peek = jobs.start(mode="peek", secret="bob")
    assert jobs.wait(peek) == Status("succeeded")
    assert peek.handle.pid == leak.handle.pid  # the same worker ran both
    found = jobs.report(peek)
    assert found["views"] == [] and found["global_views"] == []
    assert found["databases"] == ["default"] and found["conf"] is None
    assert found["functions"] == []
    # a third job saves the same table name: it would fail had the first one's stayed
    control = jobs.start(mode="leak", secret="carol-secret")
    assert jobs.wait(control) == Status("succeeded"), "leak mode must run again cleanly"


def test_a_second_job_waits_for_a_busy_worker_and_a_reservation_is_released(
        jobs: Jobs, tmp_path: Path) -> None:
    busy = jobs.start(mode="sleep", seconds=2)
    launch = JobLaunch(job_id=999, avi="warm_probe", avi_version="0.1.0", params={"mode": "ok"},
                       output_dir=tmp_path / "waiting", cores=1, memory_mb=512)
    submission = jobs.lane.submit(launch, "other", ANY_POOL, lambda: True)  # type: ignore[arg-type]
    assert submission.outcome == "waiting" and "busy" in submission.reason
    assert jobs.wait(busy) == Status("succeeded")
    pool: WarmPool = jobs.lane.lane  # type: ignore[assignment]
    assert pool.wait_ready(30)
    lost = jobs.lane.submit(launch, "other", ANY_POOL, lambda: False)  # type: ignore[arg-type]
    assert lost.outcome == "lost"
    assert pool.stats()["idle"] == 1  # the reservation went back
    assert not (tmp_path / "waiting").exists()


def test_a_worker_that_cannot_start_is_started_again_ever_more_slowly(tmp_path: Path) -> None:
    broken = dict(os.environ, PYTHONHOME=str(tmp_path / "no-python-here"))  # dies at once
    pool = WarmPool(workers=1, env=broken, warm_up=False, log_dir=tmp_path / "logs")
    pool.start()
    try:
        time.sleep(4.0)
        assert 2 <= pool._spawned <= 4, pool._spawned  # at 0, ~1 and ~3 s; not every 50 ms
        assert not pool.wait_ready(0.1)
        assert pool.reserve(1) is not None  # nothing to run on: the job waits
        assert len(list((tmp_path / "logs").glob("worker-*.log"))) == pool._spawned
    finally:
        pool.close()
