"""The one protocol the scheduler's dispatcher speaks to every job backend.

A backend runs granted jobs somewhere: spark-submit processes on this machine
(:mod:`spark_jobs.backends.processes`: ``local``, ``standalone``) or
SparkApplications on Kubernetes (:mod:`spark_jobs.backends.k8s.submitter`).
The dispatcher (``api.scheduling.dispatcher``) knows nothing else about them:

- :meth:`JobBackend.submit` starts a job, or says why it must stay queued
  (``waiting``). The backend decides *when* the job is claimed (the dispatcher's
  queued → running compare-and-set, passed in as ``claim``): a process backend
  claims before it starts a driver, so two dispatchers never start the same
  job; a cluster backend submits first (its application's name is unique, so a
  second submission adopts the first) and claims after, so a job the cluster
  will not take yet is never marked running;
- :meth:`JobBackend.poll` says whether a running job is still alive, from
  the backend's own view of it (a driver's pid, an application's status), never
  from its progress, and why it ended;
- :meth:`JobBackend.cancel` stops it (and is a no-op for a job that never started);
- :meth:`JobBackend.adopt` finds a running job again after a service restart:
  still running (watched again, never restarted), or finished while the service
  was down (with why).

What a backend needs to find its job again beyond id, owner and folder is its
:class:`Handle`; the dispatcher stores it on the job row and hands it back
without reading it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

#: What a driver printed, in its job folder on every backend (the API serves it as the log).
LOG_FILE = "driver.log"


@dataclass(frozen=True)
class JobLaunch:
    """Everything a backend needs to start one job."""

    job_id: int
    avi: str
    avi_version: str
    params: dict[str, Any]
    output_dir: Path
    cores: int
    memory_mb: int
    resources: dict[str, Any] = field(default_factory=dict)
    pins: dict[str, int] = field(default_factory=dict)
    catalogue_root: str | None = None
    cache_dir: Path | None = None


class PoolLike(Protocol):
    """The owner's pool (the scheduler's ``Pool``): what they may hold at once."""

    cores: int
    memory_mb: int
    max_jobs: int


@dataclass(frozen=True)
class Handle:
    """How a backend finds its job again (the job row's ``driver_pid``, ``driver_start``):
    a process backend's driver pid and /proc start time; empty for a cluster backend,
    which finds a job by its name."""

    pid: int | None = None
    start: str | None = None


@dataclass(frozen=True)
class JobRef:
    """A submitted job, as poll, cancel and adopt need it."""

    job_id: int
    user: str
    output_dir: Path
    handle: Handle = Handle()


@dataclass(frozen=True)
class Submission:
    """What came of :meth:`JobBackend.submit`.

    ``started``: claimed and started (``handle`` to record); ``waiting``: not
    claimed, ``reason`` says why it stays queued; ``lost``: the claim failed (the
    job was cancelled, or another dispatcher took it), and the dispatcher cancels
    whatever the backend may have started unless another dispatcher runs the job.
    """

    outcome: Literal["started", "waiting", "lost"]
    reason: str = ""
    handle: Handle = Handle()


LOST = Submission("lost")


def started(handle: Handle = Handle()) -> Submission:
    return Submission("started", handle=handle)


def waiting(reason: str) -> Submission:
    return Submission("waiting", reason=reason)


State = Literal["running", "succeeded", "failed"]


@dataclass(frozen=True)
class Status:
    """A job's state as its backend sees it: running, succeeded or failed (with why)."""

    state: State
    reason: str = ""

    @property
    def finished(self) -> bool:
        return self.state != "running"


RUNNING = Status("running")


class SubmitError(Exception):
    """A job that cannot be submitted at all; the message is the reason the job fails with."""


class JobBackend(Protocol):
    """Runs granted jobs; see the module's docstring for the contract."""

    #: Recorded in the job row's ``backend`` column: local, standalone or kubernetes.
    name: str

    def submit(
        self, launch: JobLaunch, user: str, pool: PoolLike, claim: Callable[[], bool]
    ) -> Submission:
        """Start ``launch`` for ``user`` within ``pool``; call ``claim()`` exactly once
        unless the job waits (False: the job is not ours to start any more).

        Raises :class:`SubmitError` (or any error) when the job can never start."""
        ...

    def poll(self, ref: JobRef) -> Status:
        """Whether the job still runs; when it ended, how, and why."""
        ...

    def cancel(self, ref: JobRef) -> None:
        """Stop the job and whatever it started; nothing to stop is fine."""
        ...

    def adopt(self, ref: JobRef) -> Status:
        """After a restart: running (watched again) or how it ended while the service was down."""
        ...
