"""The scheduler loop: watches running drivers, then starts what the scheduler picks.

One :meth:`Dispatcher.tick` does, in order:

1. for each running job — stop it if a cancel was requested; copy the
   runner's ``progress.json`` into the job row (with an outbox event); when
   its driver has exited, mark it succeeded or failed from the recorded exit
   code (and ``error.txt``);
2. ask :func:`api.scheduling.drf.decide` which queued jobs start, flip each one
   queued → running with a compare-and-set *before* launching it (so no two
   dispatchers ever launch the same job), then launch its driver;
3. with spaces on S3, release the inputs staged for jobs that no unfinished job
   names any more (:func:`api.space.staged_inputs.release_unused`, the one rule).

:meth:`Dispatcher.recover` runs once at start-up: a running job whose driver
is still alive is adopted (watched again, never relaunched); one whose driver
is gone is finished from what it left behind, or failed with the reason.

With a :class:`ClusterBackend` (Kubernetes) there is no local driver: a job is
submitted *before* it is claimed (a job the cluster will not take yet stays
queued, with its queue position), then its status is polled from the cluster,
and cancelling deletes it there; running jobs are adopted on restart.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.models import Job, User
from api.scheduling.drf import Capacity, Pool, QueuedJob, RunningJob, decide
from api.scheduling.pools import quota_for
from api.space.staged_inputs import release_unused, staging_folders
from api.store import jobs as job_store
from api.store import users as user_store
from spark_jobs.backends.processes import (
    Driver,
    JobLaunch,
    SubmitBackend,
    driver_alive,
    exit_code,
    stop_driver,
)
from spark_jobs.progress import read_progress

log = logging.getLogger("avip.dispatcher")


@runtime_checkable
class ClusterBackend(Protocol):
    """A backend that runs jobs on a cluster (``spark_jobs.backends.k8s.submitter.KubernetesJobs``), not as pids."""

    name: str

    def submit(self, launch: JobLaunch, user: str, pool: Pool) -> str | None:
        """Submit; return why the job must stay queued, or None once it is submitted."""

    def poll(self, job_id: int, user: str) -> tuple[str, str]:
        """(running | succeeded | failed, reason)."""

    def cancel(self, job_id: int, user: str) -> None: ...


@dataclass
class TickReport:
    started: list[int] = field(default_factory=list)
    finished: list[int] = field(default_factory=list)


class Dispatcher:
    """Owns the job lifecycle after submission; safe to call from one thread at a time."""

    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        backend: SubmitBackend | ClusterBackend,
        capacity: Capacity,
        catalogue_root: str | None = None,
        cache_dir: Path | None = None,
        space_root: Path | None = None,
    ) -> None:
        """``space_root``: where staged S3 inputs live (None: spaces are local, none staged)."""
        self.sessions = sessions
        self.backend = backend
        self.capacity = capacity
        self.catalogue_root = catalogue_root
        self.cache_dir = cache_dir
        self.positions: dict[int, int] = {}
        self.cluster = backend if isinstance(backend, ClusterBackend) else None
        self.waiting: dict[int, str] = {}  # job id → why the cluster did not take it yet
        self._pools: dict[str, Pool] = {}
        self._progress_seen: dict[int, str] = {}
        self.space_root = space_root
        self._active: dict[int, str] = {}  # unfinished job id → owner, as of the last tick
        self._staged_seen: dict[Path, frozenset[str]] = {}  # staging folder → entries checked
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- start-up ------------------------------------------------------------------

    def recover(self) -> list[int]:
        """Adopt live drivers and settle dead ones; returns the ids settled."""
        settled = []
        with self._lock, self.sessions() as session:
            for job, user in job_store.jobs_in_state(session, state="running"):
                if self.cluster is not None and job.backend == self.cluster.name:
                    log.info("job %s: on the cluster, adopted", job.id)
                elif job.driver_pid is None:
                    job_store.transition(
                        session, job=job, to="failed",
                        reason="the service stopped before this job's driver was started",
                    )
                    settled.append(job.id)
                elif not driver_alive(Driver(job.driver_pid, job.driver_start or "")):
                    self._settle(session, job, user, after_restart=True)
                    settled.append(job.id)
                else:
                    log.info("job %s: driver pid %s still running, adopted", job.id, job.driver_pid)
            session.commit()
        return settled

    # --- one round -----------------------------------------------------------------

    def tick(self) -> TickReport:
        report = TickReport()
        with self._lock, self.sessions() as session:
            for job, user in job_store.jobs_in_state(session, state="running"):
                if self._watch(session, job, user):
                    report.finished.append(job.id)
            session.commit()
            before = self._active
            for job_id in self._schedule(session):
                if self._start(session, job_id):
                    report.started.append(job_id)
            if self.space_root is not None:
                ended = {owner for job_id, owner in before.items() if job_id not in self._active}
                self._release_staged_inputs(session, self.space_root, ended)
        return report

    def _release_staged_inputs(self, session: Session, space_root: Path,
                               ended: set[str]) -> None:
        """Apply :func:`api.space.staged_inputs.release_unused` to each staging folder that could
        hold an unreferenced copy: one whose owner had a job finish since the last tick
        (however it ended: here, or cancelled while queued through the API), or that has an
        entry not checked before (a refused submission, a crash). A folder a submission
        holds is looked at again next tick."""
        for owner, staging, names in staging_folders(space_root):
            checked = self._staged_seen.get(staging)
            if checked is not None and names <= checked and owner not in ended:
                continue
            removed = release_unused(session, staging)
            if removed is None:
                self._staged_seen.pop(staging, None)
            else:
                self._staged_seen[staging] = names.difference(removed)
                if removed:
                    log.info("released %d staged input(s) of %s", len(removed), owner)

    def _watch(self, session: Session, job: Job, user: User) -> bool:
        if self.cluster is not None and job.backend == self.cluster.name:
            return self._watch_cluster(session, job, user, self.cluster)
        driver = Driver(job.driver_pid or -1, job.driver_start or "")
        if job.cancel_requested:
            stop_driver(driver)
            job_store.transition(session, job=job, to="cancelled", reason="cancelled by its owner")
            return True
        self._copy_progress(session, job, user)
        if job.driver_pid is not None and not driver_alive(driver):
            self._settle(session, job, user, after_restart=False)
            return True
        return False

    def _watch_cluster(self, session: Session, job: Job, user: User,
                       cluster: ClusterBackend) -> bool:
        if job.cancel_requested:
            cluster.cancel(job.id, user.name)
            job_store.transition(session, job=job, to="cancelled", reason="cancelled by its owner")
            return True
        self._copy_progress(session, job, user)
        state, reason = cluster.poll(job.id, user.name)
        if state not in ("succeeded", "failed"):
            return False
        self._progress_seen.pop(job.id, None)
        job_store.transition(session, job=job, to=state, reason=reason or None)
        return True

    def _copy_progress(self, session: Session, job: Job, user: User) -> None:
        try:
            progress = read_progress(Path(job.output_dir) / "progress.json")
        except (ValueError, TypeError):  # a foreign or truncated file: ignore this round
            return
        if progress is None or self._progress_seen.get(job.id) == progress.updated_at:
            return
        self._progress_seen[job.id] = progress.updated_at
        job_store.record_progress(
            session, job=job, owner_name=user.name, tasks_done=progress.tasks_done,
            tasks_total=progress.tasks_total, fraction=round(progress.fraction, 4),
            message=progress.message,
        )

    def _settle(self, session: Session, job: Job, user: User, *, after_restart: bool) -> None:
        """Finish a job whose driver has exited, from the exit code it recorded."""
        self._copy_progress(session, job, user)
        self._progress_seen.pop(job.id, None)
        folder = Path(job.output_dir)
        code = exit_code(folder)
        if code == 0:
            job_store.transition(session, job=job, to="succeeded")
            return
        if code is None:
            when = "while the service was down" if after_restart else "unexpectedly"
            reason = (f"the driver (pid {job.driver_pid}) died {when} without recording an "
                      "exit code; see the job's logs")
        else:
            reason = f"the runner exited with code {code}"
            error = folder / "error.txt"
            if error.is_file():
                lines = [ln for ln in error.read_text(errors="replace").splitlines() if ln.strip()]
                if lines:
                    reason += f": {lines[-1][:500]}"
        job_store.transition(session, job=job, to="failed", reason=reason)

    def _schedule(self, session: Session) -> list[int]:
        users = {u.id: u for u in session.scalars(select(User))}
        overrides = user_store.overrides(session)
        running_rows = session.execute(
            select(Job.id, Job.owner_id, Job.cores, Job.memory_mb).where(Job.state == "running")
        ).all()
        running = [RunningJob(users[o].name, c, m) for _, o, c, m in running_rows]
        queued = [
            QueuedJob(id=i, user=users[o].name, cores=c, memory_mb=m, priority=p, seq=i)
            for i, o, c, m, p in session.execute(
                select(Job.id, Job.owner_id, Job.cores, Job.memory_mb, Job.priority)
                .where(Job.state == "queued")
            )
        ]
        pools: dict[str, Pool] = {
            u.name: quota_for(u.roles, overrides.get(u.id)).pool
            for u in users.values() if not u.disabled
        }
        self._active = {i: users[o].name for i, o, _, _ in running_rows}
        self._active.update((q.id, q.user) for q in queued)
        decision = decide(capacity=self.capacity, running=running, queued=queued, pools=pools)
        self.positions = decision.positions
        self._pools = pools
        self.waiting = {i: why for i, why in self.waiting.items() if i in decision.positions}
        return decision.start

    def _start(self, session: Session, job_id: int) -> bool:
        job = session.get(Job, job_id)
        if job is None or job.state != "queued":
            return False
        if self.cluster is not None:
            return self._submit_to_cluster(session, job, self.cluster)
        if not job_store.transition(session, job=job, to="running", backend=self.backend.name):
            session.rollback()
            return False
        session.commit()  # claimed: from here on nobody else will launch it
        launch = self._launch(job)
        assert not isinstance(self.backend, ClusterBackend)
        try:
            driver = self.backend.launch(launch)
        except Exception as error:  # noqa: BLE001 — any launch failure fails the job, with why
            return self._fail_start(session, job, f"could not start the driver: {error}")
        job.driver_pid, job.driver_start = driver.pid, driver.start
        session.commit()
        self.positions.pop(job.id, None)
        return True

    def _fail_start(self, session: Session, job: Job, reason: str) -> bool:
        """Fail a job that could not be started (called inside ``except``), saying why;
        returns False: the job did not start."""
        log.exception("job %s: %s", job.id, reason)
        job_store.transition(session, job=job, to="failed", reason=reason)
        session.commit()
        return False

    def _launch(self, job: Job) -> JobLaunch:
        return JobLaunch(
            job_id=job.id, avi=job.avi, avi_version=job.avi_version, params=job.params,
            output_dir=Path(job.output_dir), cores=job.cores, memory_mb=job.memory_mb,
            resources=job.resources, pins={k: int(v) for k, v in job.pins.items()},
            catalogue_root=self.catalogue_root, cache_dir=self.cache_dir,
        )

    def _submit_to_cluster(self, session: Session, job: Job, cluster: ClusterBackend) -> bool:
        """Submit first, then claim: a job the cluster does not take stays queued, untouched."""
        owner = session.get(User, job.owner_id)
        assert owner is not None
        pool = self._pools.get(owner.name)
        try:
            if pool is None:
                raise ValueError(f"user {owner.name!r} has no pool")
            wait = cluster.submit(self._launch(job), owner.name, pool)
        except Exception as error:  # noqa: BLE001 — a submission error fails the job, with why
            return self._fail_start(
                session, job, f"could not submit the Spark application: {error}")
        if wait is not None:
            if self.waiting.get(job.id) != wait:
                log.info("job %s waits: %s", job.id, wait)
            self.waiting[job.id] = wait
            return False
        self.waiting.pop(job.id, None)
        if not job_store.transition(session, job=job, to="running", backend=cluster.name):
            session.rollback()
            current = session.get(Job, job.id)
            if current is None or current.state != "running":  # cancelled meanwhile
                cluster.cancel(job.id, owner.name)
            return False
        session.commit()
        self.positions.pop(job.id, None)
        return True

    # --- background loop (avip serve) -----------------------------------------------

    def start(self, interval_s: float) -> None:
        self.recover()

        def loop() -> None:
            while not self._stop.wait(interval_s):
                try:
                    self.tick()
                except Exception:  # noqa: BLE001 — keep scheduling; the error is logged
                    log.exception("scheduler tick failed")

        self._thread = threading.Thread(target=loop, name="avip-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop; running drivers keep going and are adopted on the next start."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
