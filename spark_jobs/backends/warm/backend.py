"""The warm lane behind the dispatcher's one protocol
(:class:`~spark_jobs.backends.protocol.JobBackend`).

The lane itself is a :class:`WarmLane`: the pool in this process
(:class:`~spark_jobs.backends.warm.pool.WarmPool`, ``avip serve``) or the ``avip warm``
service over HTTP (:class:`~spark_jobs.backends.warm.service.RemoteWarmLane`, its own
Deployment in production). Submitting reserves a worker first, claims the job only when
one is there, then runs it, so a claimed job always has a worker and a job that waits
stays queued with why.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from spark_jobs.backends.protocol import (
    LOST,
    Handle,
    JobLaunch,
    JobRef,
    PoolLike,
    Status,
    Submission,
    SubmitError,
    started,
    waiting,
)


class WarmLane(Protocol):
    """What :class:`WarmBackend` needs of a lane
    (see :class:`~spark_jobs.backends.warm.pool.WarmPool`)."""

    #: Called (from the lane's own thread) when a job ended or a worker came free.
    on_change: Callable[[], None]

    def start(self) -> object: ...

    def close(self) -> None: ...

    def reserve(self, job_id: int) -> str | None: ...

    def release(self, job_id: int) -> None: ...

    def run(self, job_id: int, request: Mapping[str, Any]) -> Handle: ...

    def status(self, job_id: int, output_dir: Path) -> Status: ...

    def cancel(self, job_id: int) -> None: ...

    def forget(self, job_id: int) -> None: ...

    def stats(self) -> dict[str, Any]: ...


def launch_request(launch: JobLaunch) -> dict[str, Any]:
    """A launch as JSON (paths as strings), what a warm worker reads."""
    request = dataclasses.asdict(launch)
    request["output_dir"] = str(launch.output_dir)
    request["cache_dir"] = str(launch.cache_dir) if launch.cache_dir else None
    return request


class WarmBackend:
    """Small jobs on warm workers; see the module docstring."""

    name = "warm"

    def __init__(self, lane: WarmLane) -> None:
        self.lane = lane

    def start(self) -> None:
        """Start the lane's workers (in this process) or nothing (a remote lane)."""
        self.lane.start()

    def close(self) -> None:
        self.lane.close()

    def slots(self) -> int:
        """Workers that are up (not starting or replaced): what the scheduler may fill."""
        stats = self.lane.stats()
        return sum(int(stats.get(state, 0)) for state in ("idle", "reserved", "busy", "cleaning"))

    def submit(self, launch: JobLaunch, user: str, pool: PoolLike,
               claim: Callable[[], bool]) -> Submission:
        why = self.lane.reserve(launch.job_id)
        if why is not None:
            return waiting(why)
        if not claim():
            self.lane.release(launch.job_id)
            return LOST
        try:
            handle = self.lane.run(launch.job_id, launch_request(launch))
        except Exception as error:  # noqa: BLE001 — the job fails saying why
            raise SubmitError(f"the warm lane could not start the job: {error}") from error
        return started(handle)

    def poll(self, ref: JobRef) -> Status:
        status = self.lane.status(ref.job_id, ref.output_dir)
        if status.finished:
            self.lane.forget(ref.job_id)
        return status

    def cancel(self, ref: JobRef) -> None:
        self.lane.cancel(ref.job_id)
        self.lane.forget(ref.job_id)  # the dispatcher records the cancel; it polls no more

    def adopt(self, ref: JobRef) -> Status:
        return self.poll(ref)
