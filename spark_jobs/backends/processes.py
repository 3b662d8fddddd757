"""Where a job's Spark application runs: one ``spark-submit`` process per job.

Every job is its own Spark application, never inside the API process:

- ``local``: ``spark-submit --master local[n]`` with n = the granted cores and
  the driver heap = the granted memory (driver and executors share one JVM);
- ``standalone``: ``spark-submit --master spark://...`` with
  ``spark.cores.max`` and executor cores/memory/instances from the grant.

The driver runs the job runner (``spark_jobs/runner.py``). It is started in
its own session (process group) under a tiny ``sh`` wrapper that writes the
exit code to ``DIR/exit_code`` when it ends, so the outcome is known even if
the API was down at that moment. A driver is identified by its pid *and* its
start time from ``/proc``, so a recycled pid is never mistaken for it: that pair
is the job's :class:`~spark_jobs.backends.protocol.Handle`, and watching it
(alive? exit code? ``error.txt``?) stays in here, behind the dispatcher's one
:class:`~spark_jobs.backends.protocol.JobBackend` protocol.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pyspark

from lakehouse.session import platform_jars
from spark_jobs.backends.protocol import (
    LOG_FILE,
    LOST,
    RUNNING,
    Handle,
    JobLaunch,
    JobRef,
    PoolLike,
    Status,
    Submission,
    SubmitError,
    started,
)

log = logging.getLogger("avip.backends")

EXIT_FILE = "exit_code"
#: What a driver inherits of the service's environment: what Java, Python and Spark need
#: to start. The rest (the store's URL, tokens, keys, a cloud's credentials) stays with the
#: service; the settings a driver needs come from ``settings_env``.
INHERITED_NAMES = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TERM",
    "PYTHONPATH", "VIRTUAL_ENV", "HADOOP_CONF_DIR",
})
INHERITED_PREFIXES = ("LC_", "JAVA_", "SPARK_", "OPENBLAS_", "OMP_", "MKL_")
PARAMS_FILE = "params.json"
PID_FILE = "driver.pid"
# The wrapper records its own pid first (in the job folder, its working directory), so a
# service killed between starting it and saving the pid still finds it after a restart;
# then the driver's exit code, when it ends.
_WRAPPER = ('echo $$ > driver.pid.tmp && mv driver.pid.tmp driver.pid; '
            '"$@"; code=$?; echo $code > "$0.tmp" && mv "$0.tmp" "$0"; exit $code')


@dataclass(frozen=True)
class Driver:
    pid: int
    start: str  # /proc start time, to tell a recycled pid apart


def spark_submit() -> str:
    """The spark-submit that ships with this environment's pyspark."""
    candidate = Path(sys.executable).parent / "spark-submit"
    if candidate.exists():
        return str(candidate)
    return str(Path(pyspark.__file__).parent / "bin" / "spark-submit")


def runner_script() -> str:
    """The job runner's file; found, not imported (importing it loads the lakehouse, ~1.4 s)."""
    spec = importlib.util.find_spec("spark_jobs.runner")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("spark_jobs.runner is not installed")
    return str(Path(spec.origin).resolve())


class SubmitBackend:
    """Base: one spark-submit driver process per job, watched by its pid and start time.

    Subclasses add the master and the resource flags. ``jars_dir`` is where
    ``make jars`` put Delta and friends (the caller passes ``settings.jars_dir``).
    """

    name = "base"

    def __init__(self, *, jars_dir: Path, settings_env: Mapping[str, str] | None = None) -> None:
        """``settings_env``: the ``AVIP_*`` settings a driver needs (see
        :func:`spark_jobs.backends.driver_settings`); nothing else of the service's reaches it."""
        self.jars_dir = jars_dir
        self.settings_env = dict(settings_env or {})

    def jars(self) -> list[str]:
        """Delta and friends on the driver's classpath from the start (``--jars``): set later
        by the session builder they would miss the JVM that spark-submit already launched."""
        return [str(j) for j in platform_jars(self.jars_dir)]

    def master(self, job: JobLaunch) -> str:
        raise NotImplementedError

    def submit_flags(self, job: JobLaunch) -> list[str]:
        raise NotImplementedError

    def grant_conf(self, job: JobLaunch) -> dict[str, str]:
        """Spark settings that enforce the grant; also handed to the runner (``--conf``)
        because its session builder would otherwise override them with platform defaults."""
        return {}

    def command(self, job: JobLaunch) -> list[str]:
        params_file = job.output_dir / PARAMS_FILE
        cmd = [
            spark_submit(), "--master", self.master(job), "--name", f"avip-job-{job.job_id}",
            "--conf", f"spark.pyspark.python={sys.executable}",
            "--conf", f"spark.pyspark.driver.python={sys.executable}",
            "--conf", "spark.ui.showConsoleProgress=false",
            "--jars", ",".join(self.jars()),
            *self.submit_flags(job),
            runner_script(),
            "--avi", job.avi, "--avi-version", job.avi_version,
            "--params", str(params_file), "--output", str(job.output_dir),
            "--job-id", str(job.job_id), "--master", self.master(job),
        ]
        for table, version in sorted(job.pins.items()):
            cmd += ["--pin", f"{table}={version}"]
        if job.catalogue_root:
            cmd += ["--catalogue-root", job.catalogue_root]
        if job.cache_dir:
            cmd += ["--cache", str(job.cache_dir)]
        for key, value in self.grant_conf(job).items():
            cmd += ["--conf", f"{key}={value}"]
        return cmd

    def launch(self, job: JobLaunch) -> Driver:
        """Start the driver detached from the API (it survives an API restart)."""
        job.output_dir.mkdir(parents=True, exist_ok=True)
        (job.output_dir / PARAMS_FILE).write_text(json.dumps(job.params), encoding="utf-8")
        (job.output_dir / EXIT_FILE).unlink(missing_ok=True)
        (job.output_dir / PID_FILE).unlink(missing_ok=True)
        env = driver_environment(os.environ, self.settings_env)
        with (job.output_dir / LOG_FILE).open("ab") as output:
            process = subprocess.Popen(
                ["/bin/sh", "-c", _WRAPPER, str(job.output_dir / EXIT_FILE), *self.command(job)],
                stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                start_new_session=True, env=env, cwd=job.output_dir,
            )
        _CHILDREN[process.pid] = process
        return Driver(pid=process.pid, start=proc_start_time(process.pid) or "")

    # --- the dispatcher's protocol (spark_jobs.backends.protocol.JobBackend) ---------

    def submit(self, launch: JobLaunch, user: str, pool: PoolLike,
               claim: Callable[[], bool]) -> Submission:
        """Claim first, then start the driver: no two dispatchers ever start the same job.
        A process always starts (the scheduler granted it within ``pool``)."""
        if not claim():
            return LOST
        try:
            driver = self.launch(launch)
        except Exception as error:  # noqa: BLE001 — any launch failure fails the job, with why
            raise SubmitError(f"could not start the driver: {error}") from error
        return started(Handle(driver.pid, driver.start))

    def poll(self, ref: JobRef) -> Status:
        """Running while its driver lives (a claimed job whose driver is still being started
        counts as running); then the outcome its wrapper recorded."""
        driver = _driver(ref)
        if driver.pid <= 0 and exit_code(ref.output_dir) is None or driver_alive(driver):
            return RUNNING
        return outcome(ref, "unexpectedly")

    def cancel(self, ref: JobRef) -> None:
        """Stop the driver's whole process group (nothing if it never started)."""
        stop_driver(_driver(ref))

    def adopt(self, ref: JobRef) -> Status:
        """A live driver is watched again; a dead one is finished from what it left behind."""
        driver = _driver(ref)
        if driver.pid <= 0 and exit_code(ref.output_dir) is None:
            return Status("failed", "the service stopped before this job's driver was started")
        if driver_alive(driver):
            log.info("job %s: driver pid %s still running, adopted", ref.job_id, driver.pid)
            return RUNNING
        return outcome(ref, "while the service was down")


class LocalBackend(SubmitBackend):
    name = "local"

    def master(self, job: JobLaunch) -> str:
        return f"local[{max(1, job.cores)}]"

    def submit_flags(self, job: JobLaunch) -> list[str]:
        return ["--driver-memory", f"{job.memory_mb}m"]


class StandaloneBackend(SubmitBackend):
    name = "standalone"

    def __init__(self, master_url: str, *, jars_dir: Path,
                 settings_env: Mapping[str, str] | None = None) -> None:
        super().__init__(jars_dir=jars_dir, settings_env=settings_env)
        if not master_url.startswith("spark://"):
            raise ValueError(f"standalone backend needs a spark:// master, got {master_url!r}")
        self.master_url = master_url

    def master(self, job: JobLaunch) -> str:
        return self.master_url

    def grant_conf(self, job: JobLaunch) -> dict[str, str]:
        res = job.resources
        driver_mb = int(res.get("driver_memory_mb", 1024))
        executor_cores = int(res.get("executor_cores", 1))
        executors = max(1, int(res.get("executors", 1)))
        executor_mb = int(res.get("executor_memory_mb", max(512, job.memory_mb - driver_mb)))
        return {
            "spark.cores.max": str(executor_cores * executors),
            "spark.executor.cores": str(executor_cores),
            "spark.executor.memory": f"{executor_mb}m",
            # Workers started from a pip-installed pyspark (not Spark's sbin scripts) do not
            # know the Scala version and fail to build the executor's classpath without it.
            "spark.executorEnv.SPARK_SCALA_VERSION": _scala_version(),
        }

    def submit_flags(self, job: JobLaunch) -> list[str]:
        driver_mb = int(job.resources.get("driver_memory_mb", 1024))
        flags = ["--driver-memory", f"{driver_mb}m"]
        for key, value in self.grant_conf(job).items():
            flags += ["--conf", f"{key}={value}"]
        return flags


def driver_environment(
    environ: Mapping[str, str], settings_env: Mapping[str, str]
) -> dict[str, str]:
    """A driver's whole environment: the allow-listed part of ``environ``, the settings it
    needs, and the Python it runs on."""
    env = {k: v for k, v in environ.items()
           if k in INHERITED_NAMES or k.startswith(INHERITED_PREFIXES)}
    env.update(settings_env)
    env.update(PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    return env


def _scala_version() -> str:
    """The Scala binary version of the installed Spark (from its spark-core jar's name)."""
    for jar in (Path(pyspark.__file__).parent / "jars").glob("spark-core_*.jar"):
        return jar.name.split("_", 1)[1].split("-", 1)[0]
    return "2.13"


# --- watching and stopping drivers ---------------------------------------------------

_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def proc_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (field 22 of /proc/pid/stat), None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    if fields[0] == "Z":  # exited, not yet reaped
        return None
    return fields[19]


def driver_alive(driver: Driver) -> bool:
    child = _CHILDREN.get(driver.pid)
    if child is not None and child.poll() is not None:
        _CHILDREN.pop(driver.pid, None)
        return False
    start = proc_start_time(driver.pid)
    return start is not None and (not driver.start or start == driver.start)


def exit_code(output_dir: Path) -> int | None:
    """The driver's exit code if the wrapper recorded one."""
    try:
        return int((output_dir / EXIT_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


def outcome(ref: JobRef, died: str) -> Status:
    """How a job whose driver has exited ended, from the exit code it recorded (and the
    last line of ``error.txt``); ``died`` says when a driver that recorded none died."""
    code = exit_code(ref.output_dir)
    if code == 0:
        return Status("succeeded")
    if code is None:
        return Status("failed", f"the driver (pid {ref.handle.pid}) died {died} without "
                                "recording an exit code; see the job's logs")
    return runner_failed(ref.output_dir, code)


def runner_failed(output_dir: Path, code: int) -> Status:
    """A runner that exited with ``code`` (not 0): failed, with the last line of its
    ``error.txt`` as the reason."""
    reason = f"the runner exited with code {code}"
    error = output_dir / "error.txt"
    if error.is_file():
        lines = [ln for ln in error.read_text(errors="replace").splitlines() if ln.strip()]
        if lines:
            reason += f": {lines[-1][:500]}"
    return Status("failed", reason)


def _driver(ref: JobRef) -> Driver:
    """The job's driver: as the store recorded it, or (a service killed before it saved
    the pid) as the wrapper recorded itself in the job folder; pid -1 if neither."""
    if ref.handle.pid is not None:
        return Driver(ref.handle.pid, ref.handle.start or "")
    try:
        pid = int((ref.output_dir / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return Driver(-1, "")
    try:  # the pid is this job's wrapper only if its command names this job's exit file
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return Driver(pid, "gone")  # exited: its outcome is in the job folder
    if str(ref.output_dir / EXIT_FILE).encode() not in command:
        return Driver(pid, "gone")
    return Driver(pid, proc_start_time(pid) or "gone")


def group_alive(pgid: int) -> bool:
    """Whether any live (non-zombie) process is still in process group ``pgid``."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rfind(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


def stop_driver(driver: Driver, grace_s: float = 10.0) -> None:
    """SIGTERM the driver's whole process group (wrapper, spark-submit JVM, Python
    driver), then SIGKILL whatever is left after ``grace_s``."""
    if driver.pid <= 0 or not (driver_alive(driver) or group_alive(driver.pid)):
        return
    try:
        os.killpg(driver.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        driver_alive(driver)  # reaps our own child when it exits
        if not group_alive(driver.pid):
            return
        time.sleep(0.1)
    try:
        os.killpg(driver.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    child = _CHILDREN.pop(driver.pid, None)
    if child is not None:
        child.wait(timeout=5)
