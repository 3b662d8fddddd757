"""One warm worker: a Python process that keeps a Spark session open and runs small jobs
one after another, each exactly as a spark-submit driver would (:func:`spark_jobs.runner.execute`).

    python -m spark_jobs.backends.warm.worker --commands FD --events FD
        [--master local[n]] [--driver-memory 1g] [--warm-up]

The pool (:mod:`spark_jobs.backends.warm.pool`) writes one JSON line per job on the
``commands`` pipe and reads JSON lines from the ``events`` pipe: ``ready`` (at start, and
again once the state a job left is cleared), ``started`` and ``finished`` (with the
runner's exit code), each with the Python process's resident memory. Everything else a
job prints goes to its own ``driver.log``; the JVM's log to the worker's.

What one job leaves behind for the next is cleared between jobs: each job gets a new
Spark session (its own temporary views, SQL settings and functions); cached data, global
temporary views and tables saved in the session catalogue are dropped after it. Python
module state is not reset: only AVIs that declare the warm lane run here (see
:attr:`avi_plugins.sdk.AVI.lanes`), and the pool recycles a worker after a set number of
jobs. The worker dies with the pool (``PR_SET_PDEATHSIG``), never outliving it.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import logging
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger("avip.warm.worker")

#: Small jobs run once at start so a user's first job finds the JIT and the Delta log warm.
WARM_UP_JOBS = (
    ("cone_search", {"radius_deg": 0.2, "formats": ["csv", "votable", "fits"]}),
    ("sky_counts", {"order": 3}),
)


def rss_mb(pid: int | str = "self") -> float:
    """Resident memory of one process in MiB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when the pool that started it dies."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@contextlib.contextmanager
def job_output(log_file: Path) -> Iterator[None]:
    """Send this process's stdout, stderr and Python logging to one job's log file."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with log_file.open("ab") as target:  # logging's handler writes to fd 2, so it follows
        os.dup2(target.fileno(), 1)
        os.dup2(target.fileno(), 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


def _seq(scala_seq: Any) -> list[Any]:
    return [scala_seq.apply(i) for i in range(scala_seq.size())]


def clear_shared_state(spark: Any) -> None:
    """Drop what a job could leave in the Spark application for the next one: cached data,
    global temporary views and tables in the session catalogue. Through the JVM's session
    catalogue: pyspark's ``spark.catalog`` takes ~0.2 s for the same listings (it builds
    a Python object per table), a tenth of a warm job."""
    from lakehouse.catalog import clear_session_caches

    jsession = spark._jsparkSession
    spark.catalog.clearCache()
    clear_session_caches()
    global_views = jsession.sharedState().globalTempViewManager()
    for name in _seq(global_views.listViewNames("*")):
        global_views.remove(name)
    catalog = jsession.sessionState().catalog()
    for database in _seq(catalog.listDatabases()):
        for table in _seq(catalog.listTables(database)):
            if not catalog.isTempView(table):
                spark.sql(f"DROP TABLE IF EXISTS `{database}`.`{table.table()}`")
        if database != "default":
            spark.sql(f"DROP DATABASE IF EXISTS `{database}` CASCADE")


def run_one(base: Any, request: dict[str, Any], *, lane: str = "warm") -> int:
    """Run one job request (see :class:`spark_jobs.backends.protocol.JobLaunch`) in a new
    session of ``base``; returns the runner's exit code. The caller clears the shared
    state after (:func:`clear_shared_state`), once it has said the job ended."""
    from spark_jobs.backends.protocol import LOG_FILE
    from spark_jobs.runner import EXIT_FAILED, execute

    job_dir = Path(request["output_dir"])
    job_dir.mkdir(parents=True, exist_ok=True)
    session = base.newSession()
    try:
        with job_output(job_dir / LOG_FILE):
            return execute(
                avi_name=request["avi"], avi_version=request.get("avi_version"),
                read_params=lambda: request["params"], job_dir=job_dir,
                job_id=str(request["job_id"]), pins={k: str(v) for k, v in
                                                     (request.get("pins") or {}).items()},
                catalogue_root=request.get("catalogue_root"),
                cache=Path(request["cache_dir"]) if request.get("cache_dir") else None,
                open_session=lambda avi: session, lane=lane,
            )
    except Exception:  # noqa: BLE001 — the runner writes its own errors; this is the worker's
        log.exception("job %s: the worker failed around it", request.get("job_id"))
        return EXIT_FAILED


def warm_up(base: Any) -> None:
    """Run :data:`WARM_UP_JOBS` into a scratch folder (their outputs are thrown away)."""
    from spark_jobs.runner import execute

    with tempfile.TemporaryDirectory(prefix="avip-warm-up-") as scratch:
        for number, (avi, params) in enumerate(WARM_UP_JOBS):
            started = time.perf_counter()
            job_dir = Path(scratch) / str(number)
            session = base.newSession()
            code = execute(avi_name=avi, avi_version=None, read_params=lambda p=params: p,
                           job_dir=job_dir, job_id=None, pins={}, catalogue_root=None,
                           cache=Path(scratch) / "cache", open_session=lambda a, s=session: s,
                           lane="warm-up")
            log.info("warm-up %s: exit %s in %.1f s", avi, code, time.perf_counter() - started)
        clear_shared_state(base)


def send(events: Any, **message: Any) -> None:
    events.write(json.dumps(message) + "\n")
    events.flush()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spark_jobs.backends.warm.worker",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commands", type=int, required=True, help="fd to read jobs from")
    parser.add_argument("--events", type=int, required=True, help="fd to write events to")
    parser.add_argument("--master", default="local[1]")
    parser.add_argument("--driver-memory", default="1g")
    parser.add_argument("--warm-up", action="store_true")
    parser.add_argument("--nice", type=int, default=0,
                        help="CPU niceness of the worker and its JVM (see WarmPool)")
    args = parser.parse_args(argv)
    die_with_parent()
    if args.nice:
        os.nice(args.nice)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from lakehouse.session import get_spark

    commands = os.fdopen(args.commands, "r", encoding="utf-8")
    events = os.fdopen(args.events, "w", encoding="utf-8")
    warehouse = tempfile.mkdtemp(prefix="avip-warm-warehouse-")
    base = get_spark(args.master, app_name=f"avip-warm-{os.getpid()}", conf={
        "spark.driver.memory": args.driver_memory,
        "spark.sql.warehouse.dir": warehouse,
        "spark.ui.enabled": "false",
    })
    if args.warm_up:
        try:
            warm_up(base)
        except Exception:  # noqa: BLE001 — a cold worker still works
            log.exception("warm-up failed; the first jobs will be slower")
    send(events, event="ready", pid=os.getpid(), rss_mb=rss_mb())
    for line in commands:
        request = json.loads(line)
        send(events, event="started", job_id=request["job_id"], rss_mb=rss_mb())
        code = run_one(base, request)
        send(events, event="finished", job_id=request["job_id"], code=code, rss_mb=rss_mb())
        try:
            clear_shared_state(base)
        except Exception:  # noqa: BLE001 — a worker that cannot clean up must not run more
            log.exception("could not clear the session after job %s", request["job_id"])
            return 70
        send(events, event="ready", pid=os.getpid(), rss_mb=rss_mb())
    return 0


if __name__ == "__main__":
    sys.exit(main())
