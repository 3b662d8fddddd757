"""The warm lane's workers: a few processes that each keep a Spark session open, so a small
job starts in milliseconds instead of paying a JVM, a session and the jars every time.

:class:`WarmPool` starts ``workers`` processes (:mod:`spark_jobs.backends.warm.worker`),
hands each one job at a time and watches them from one monitor thread:

- a job is first **reserved** on an idle worker (so the scheduler claims it only when a
  worker is there for it), then **run**;
- a job over its **time budget** (``time_budget_s``) or its **memory budget** (the job's
  granted MiB, counted as the worker's Python resident memory above what it held when
  the job started; the JVM is bounded by its heap) is stopped: its worker is killed and
  the job fails saying which budget and by how much;
- **cancel** kills the job's worker at once;
- a worker that dies (a crashing AVI, a signal, the kernel's OOM killer) fails only the
  job it ran, with how it died, and is replaced, as is every killed worker; a worker
  is also recycled after ``recycle_after`` jobs.

A killed worker's whole process group goes (the Python process and its JVM). The pool
keeps how each job ended until :meth:`forget`, and after a restart finds the outcome of
a job it no longer knows in the job's folder (:meth:`status`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from spark_jobs.backends.processes import proc_start_time, runner_failed
from spark_jobs.backends.protocol import RUNNING, Handle, Status
from spark_jobs.backends.warm.worker import rss_mb

log = logging.getLogger("avip.warm")

WorkerState = Literal["starting", "idle", "reserved", "busy", "cleaning", "dead"]
#: A reservation the scheduler did not follow with :meth:`WarmPool.run` lapses after this.
RESERVATION_S = 30.0
MONITOR_INTERVAL_S = 0.05
#: A worker that has not come up, or not cleared a job's state, in this long is killed.
STARTING_S, CLEANING_S = 300.0, 30.0
#: A worker that died before it ever came up is started again after this (doubling, up to
#: :data:`RESPAWN_MAX_S`): a broken setting must not start a JVM every 50 ms.
RESPAWN_FIRST_S, RESPAWN_MAX_S = 1.0, 60.0
#: Worker logs kept (the newest); older ones are removed as new workers start.
LOGS_KEPT = 20


@dataclass
class Worker:
    """One worker process and what it is doing."""

    number: int
    process: subprocess.Popen[bytes]
    commands: IO[str]
    state: WorkerState = "starting"
    job_id: int | None = None
    since: float = field(default_factory=time.monotonic)
    baseline_mb: float = 0.0
    jobs_run: int = 0
    started_at: float = field(default_factory=time.monotonic)
    scratch: Path | None = None  # its TMPDIR and Spark local dir, removed when it ends
    ready_mb: float = 0.0  # its resident memory when it first came up
    came_up: bool = False

    @property
    def pid(self) -> int:
        return self.process.pid


@dataclass
class Run:
    """One job on a worker, and once ended, how."""

    job_id: int
    output_dir: Path
    memory_mb: int
    worker: Worker
    started: float = field(default_factory=time.monotonic)
    status: Status = RUNNING


class WarmPool:
    """Warm worker processes running one small job each at a time; see the module docstring."""

    def __init__(
        self,
        *,
        workers: int = 2,
        master: str = "local[1]",
        driver_memory: str = "1g",
        time_budget_s: float = 120.0,
        recycle_after: int = 500,
        recycle_mb: float = 512.0,
        env: Mapping[str, str] | None = None,
        log_dir: Path,
        warm_up: bool = True,
        nice: int = 0,
    ) -> None:
        """``env``: the whole environment of a worker (see
        :func:`spark_jobs.backends.processes.driver_environment`); ``log_dir``: where each
        worker's own log goes (jobs log into their folders); ``nice``: the workers' CPU
        niceness — on a machine they share with Spark applications, small jobs then take
        only the CPU large jobs leave (at 10 a busy worker gets ~1/10 of a contended core)."""
        if workers < 1:
            raise ValueError(f"a warm pool needs at least one worker, not {workers}")
        self.size = workers
        self.master = master
        self.driver_memory = driver_memory
        self.time_budget_s = time_budget_s
        self.recycle_after = recycle_after
        self.recycle_mb = recycle_mb
        self.env = dict(env) if env is not None else dict(os.environ)
        self.log_dir = log_dir
        self.warm_up = warm_up
        self.nice = nice
        self.workers: list[Worker] = []
        self.runs: dict[int, Run] = {}
        self.reserved: dict[int, Worker] = {}
        self.jobs_total = {"succeeded": 0, "failed": 0, "stopped": 0}
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._closed = threading.Event()
        self._spawned = 0
        self._respawn_delay = 0.0
        self._respawn_at = 0.0
        self._monitor: threading.Thread | None = None
        #: Called when a job ended or a worker came free (the scheduler's wake-up).
        self.on_change: Callable[[], None] = lambda: None

    # --- life of the pool --------------------------------------------------------

    def start(self) -> WarmPool:
        """Start the workers (they warm up in the background) and the monitor."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        spawned = threading.Event()
        self._monitor = threading.Thread(target=self._watch, args=(spawned,),
                                         name="avip-warm-monitor", daemon=True)
        self._monitor.start()
        spawned.wait(timeout=60)
        return self

    def wait_ready(self, timeout_s: float = 180.0, workers: int | None = None) -> bool:
        """Wait until ``workers`` (default: all) are idle; False on timeout."""
        wanted = self.size if workers is None else workers
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while self._count("idle") < wanted:
                left = deadline - time.monotonic()
                if left <= 0 or self._closed.is_set():
                    return False
                self._changed.wait(left)
        return True

    def close(self) -> None:
        """Kill every worker; jobs still running fail."""
        self._closed.set()
        with self._lock:
            for worker in self.workers:
                self._kill(worker, "the warm lane was shut down while this job ran")
        if self._monitor is not None:
            self._monitor.join(timeout=5)

    def stats(self) -> dict[str, Any]:
        """Workers by state and jobs by outcome (for health and metrics)."""
        with self._lock:
            states = {state: self._count(state)
                      for state in ("starting", "idle", "reserved", "busy", "cleaning")}
            return {"workers": self.size, **states, "jobs": dict(self.jobs_total),
                    "running": sum(1 for r in self.runs.values() if not r.status.finished)}

    # --- what the scheduler's backend calls ----------------------------------------

    def reserve(self, job_id: int) -> str | None:
        """Hold an idle worker for ``job_id``; None when held, else why it must wait."""
        with self._lock:
            if job_id in self.reserved:
                return None
            for worker in self.workers:
                if worker.state == "idle" and worker.process.poll() is None:
                    worker.state, worker.job_id, worker.since = "reserved", job_id, time.monotonic()
                    self.reserved[job_id] = worker
                    return None
            starting = self._count("starting")
            return (f"all {self.size} warm workers are busy"
                    + (f" ({starting} starting)" if starting else ""))

    def release(self, job_id: int) -> None:
        """Give back a reservation the scheduler will not use."""
        with self._lock:
            worker = self.reserved.pop(job_id, None)
            if worker is not None and worker.state == "reserved":
                worker.state, worker.job_id = "idle", None
                self._changed.notify_all()

    def run(self, job_id: int, request: Mapping[str, Any]) -> Handle:
        """Start ``request`` (a :class:`~spark_jobs.backends.protocol.JobLaunch` as JSON) on
        the worker reserved for it; raises ``LookupError`` when nothing is reserved."""
        with self._lock:
            worker = self.reserved.pop(job_id, None)
            if worker is None or worker.state != "reserved" or worker.job_id != job_id:
                raise LookupError(f"no warm worker is reserved for job {job_id}")
            output_dir = Path(request["output_dir"])
            output_dir.mkdir(parents=True, exist_ok=True)
            (output_dir / "params.json").write_text(json.dumps(request["params"]),
                                                   encoding="utf-8")
            worker.state, worker.since = "busy", time.monotonic()
            worker.baseline_mb = rss_mb(worker.pid)
            self.runs[job_id] = Run(job_id, output_dir, int(request.get("memory_mb") or 1024),
                                    worker)
            try:
                worker.commands.write(json.dumps({**request, "job_id": job_id}) + "\n")
                worker.commands.flush()
            except OSError as error:
                self._kill(worker, f"the warm worker could not take the job: {error}")
            return Handle(worker.pid, proc_start_time(worker.pid) or "")

    def status(self, job_id: int, output_dir: Path) -> Status:
        """Running, or how the job ended; a job this pool never ran (it restarted since) is
        finished from the files the runner left in ``output_dir``."""
        with self._lock:
            run = self.runs.get(job_id)
            if run is not None:
                return run.status
        return outcome_from_files(output_dir)

    def cancel(self, job_id: int) -> None:
        """Stop the job now: its worker is killed (and replaced)."""
        with self._lock:
            self.release(job_id)
            run = self.runs.get(job_id)
            if run is not None and not run.status.finished:
                self._end(run, Status("failed", "cancelled"), count="stopped")
                self._kill(run.worker, "cancelled")

    def forget(self, job_id: int) -> None:
        """Drop a finished job's record (the scheduler has recorded how it ended)."""
        with self._lock:
            run = self.runs.get(job_id)
            if run is not None and run.status.finished:
                del self.runs[job_id]

    # --- workers -----------------------------------------------------------------

    def _count(self, state: WorkerState) -> int:
        return sum(1 for worker in self.workers if worker.state == state)

    def _spawn(self) -> Worker:
        commands_read, commands_write = os.pipe()
        events_read, events_write = os.pipe()
        self._spawned += 1
        number = self._spawned
        command = [sys.executable, "-m", "spark_jobs.backends.warm.worker",
                   "--commands", str(commands_read), "--events", str(events_write),
                   "--master", self.master, "--driver-memory", self.driver_memory]
        if self.warm_up:
            command.append("--warm-up")
        if self.nice:
            command += ["--nice", str(self.nice)]
        scratch = Path(tempfile.mkdtemp(prefix=f"avip-warm-{number}-"))
        env = {**self.env, "TMPDIR": str(scratch), "SPARK_LOCAL_DIRS": str(scratch)}
        self._drop_old_logs()
        with (self.log_dir / f"worker-{number}.log").open("ab") as output:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                pass_fds=(commands_read, events_write), start_new_session=True, env=env,
            )
        os.close(commands_read)
        os.close(events_write)
        worker = Worker(number, process, os.fdopen(commands_write, "w", encoding="utf-8"),
                        scratch=scratch)
        threading.Thread(target=self._listen, args=(worker, os.fdopen(events_read, "r")),
                         name=f"avip-warm-events-{number}", daemon=True).start()
        log.info("warm worker %d started (pid %d)", number, process.pid)
        return worker

    def _drop_old_logs(self) -> None:
        logs = sorted(self.log_dir.glob("worker-*.log"), key=lambda f: f.stat().st_mtime)
        for old in logs[:-LOGS_KEPT]:
            old.unlink(missing_ok=True)

    def _listen(self, worker: Worker, events: IO[str]) -> None:
        """Follow one worker's events until its pipe closes (it exited)."""
        with events:
            for line in events:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                with self._lock:
                    self._on_event(worker, event)
        with self._lock:
            worker.process.wait()
            self._on_exit(worker)

    def _on_event(self, worker: Worker, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "ready" and worker.state in ("starting", "cleaning"):
            rss = float(event.get("rss_mb") or 0.0)
            if not worker.came_up:
                log.info("warm worker %d ready after %.1f s", worker.number,
                         time.monotonic() - worker.started_at)
                worker.came_up, worker.ready_mb = True, rss
                self._respawn_delay = 0.0
            if rss - worker.ready_mb > self.recycle_mb:
                # what earlier jobs left in the Python process is charged to no job: a
                # worker that kept it after its clean-up is replaced before the next one
                log.info("warm worker %d grew by %.0f MiB since it came up: replaced",
                         worker.number, rss - worker.ready_mb)
                self._kill(worker, "")
            else:
                worker.state, worker.since = "idle", time.monotonic()
        elif kind == "started":
            worker.baseline_mb = float(event.get("rss_mb") or worker.baseline_mb)
        elif kind == "finished":
            run = self.runs.get(int(event["job_id"]))
            if run is not None and not run.status.finished:
                code = int(event["code"])
                ended = Status("succeeded") if code == 0 else runner_failed(run.output_dir, code)
                self._end(run, ended, count=ended.state)
            worker.jobs_run += 1
            worker.job_id = None
            if worker.jobs_run >= self.recycle_after:
                self._kill(worker, "")  # replaced by the monitor
            elif worker.state == "busy":
                worker.state, worker.since = "cleaning", time.monotonic()
        self._changed.notify_all()
        if kind in ("ready", "finished"):
            self.on_change()

    def _on_exit(self, worker: Worker) -> None:
        """A worker's process ended: its JVM goes too (it would outlive it), and the job it
        ran (if any) fails with how it died."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(worker.pid, signal.SIGKILL)
        if worker.scratch is not None:
            shutil.rmtree(worker.scratch, ignore_errors=True)  # a killed JVM cleans up nothing
        if not worker.came_up and not self._closed.is_set():
            self._respawn_delay = min(RESPAWN_MAX_S, max(RESPAWN_FIRST_S,
                                                         2 * self._respawn_delay))
            self._respawn_at = time.monotonic() + self._respawn_delay
            log.warning("warm worker %d died before it came up; next start in %.0f s",
                        worker.number, self._respawn_delay)
        code = worker.process.returncode
        how = f"was killed by signal {-code}" if code is not None and code < 0 else \
            f"exited with code {code}"
        for run in self.runs.values():
            if run.worker is worker and not run.status.finished:
                self._end(run, Status("failed", f"the warm worker running this job {how}; "
                                                "it was replaced, other jobs were not affected"),
                          count="failed")
        if worker.state == "reserved" and worker.job_id is not None:
            self.reserved.pop(worker.job_id, None)
        worker.state = "dead"
        self._changed.notify_all()
        self.on_change()

    def _end(self, run: Run, status: Status, *, count: str) -> None:
        run.status = status
        self.jobs_total[count] = self.jobs_total.get(count, 0) + 1

    def _kill(self, worker: Worker, reason: str) -> None:
        """Kill a worker's whole process group; its running job (if any) fails with ``reason``."""
        for run in self.runs.values():
            if run.worker is worker and not run.status.finished and reason:
                self._end(run, Status("failed", reason), count="stopped")
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(worker.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            worker.commands.close()
        if worker.state != "dead":
            worker.state = "dead"

    def _watch(self, spawned: threading.Event) -> None:
        """Start the workers, then every :data:`MONITOR_INTERVAL_S`: enforce budgets, lapse
        stale reservations, replace dead workers. Every worker is started from this thread,
        which lives as long as the pool: the kernel's parent-death signal follows the
        thread that started a process, not the process."""
        with self._lock:
            for _ in range(self.size):
                self.workers.append(self._spawn())
        spawned.set()
        while not self._closed.wait(MONITOR_INTERVAL_S):
            with self._lock:
                now = time.monotonic()
                for run in list(self.runs.values()):
                    if run.status.finished:
                        continue
                    self._enforce_budgets(run, now)
                for job_id, worker in list(self.reserved.items()):
                    if now - worker.since > RESERVATION_S:
                        log.warning("reservation of job %s lapsed", job_id)
                        self.release(job_id)
                for i, worker in enumerate(self.workers):
                    stuck = {"starting": STARTING_S, "cleaning": CLEANING_S}.get(worker.state)
                    if stuck is not None and now - worker.since > stuck:
                        log.warning("warm worker %d %s for over %.0f s: replaced",
                                    worker.number, worker.state, stuck)
                        self._kill(worker, "")
                    if (worker.state == "dead" and worker.process.poll() is not None
                            and now >= self._respawn_at):
                        self.workers[i] = self._spawn()

    def _enforce_budgets(self, run: Run, now: float) -> None:
        if run.worker.state != "busy":  # it reported its end; the event is being handled
            return
        elapsed = now - run.started
        if elapsed > self.time_budget_s:
            self._kill(run.worker, f"stopped after {elapsed:.0f} s: over the warm lane's time "
                                   f"budget of {self.time_budget_s:g} s")
            return
        used = rss_mb(run.worker.pid) - run.worker.baseline_mb
        if used > run.memory_mb:
            self._kill(run.worker, f"stopped: it used {used:.0f} MiB, over its memory budget "
                                   f"of {run.memory_mb} MiB")


def outcome_from_files(output_dir: Path) -> Status:
    """How a job the pool does not know ended, from its ``provenance.json``: what a warm
    lane that restarted since can still say."""
    try:
        record = json.loads((output_dir / "provenance.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return Status("failed", "the warm lane restarted while this job ran; submit it again")
    if record.get("status") == "succeeded" and (output_dir / "result").is_dir():
        return Status("succeeded")
    return runner_failed(output_dir, 1)
