"""The job runner: what ``spark-submit`` starts for one AVI job.

    python -m spark_jobs.runner --avi NAME --params FILE.json --output DIR
        [--job-id ID] [--master URL] [--conf k=v ...] [--pin table=version ...]
        [--catalogue-root ROOT] [--cache DIR]

It loads the AVI by entry point, validates the parameters, pins the Delta
version of every table the AVI reads, runs the tasks in order (skipping any
whose content-addressed output exists), reports progress, and publishes the
result atomically: ``DIR/result/`` appears complete or not at all. Next to it
go ``progress.json``, ``provenance.json`` and, on failure, ``error.txt``.

Exit codes: 0 done, 1 the AVI failed, 2 bad input (unknown AVI, bad params).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from avi_plugins.outputs import address_of, output_dir, task_identity
from avi_plugins.params import ParamsError
from avi_plugins.provenance import software_versions, source_commit, spark_conf_redacted
from avi_plugins.registry import BrokenAVIError, UnknownAVIError, get_avi
from avi_plugins.sdk import AVI, TaskContext
from config.settings import get_settings
from lakehouse.catalog import open_catalog
from lakehouse.session import get_spark
from spark_jobs.progress import (
    FanOut,
    FileProgressSink,
    LoggingReporter,
    ProgressReporter,
    SparkStageMonitor,
    read_progress,
    write_json_atomically,
)

log = logging.getLogger("avip.runner")

RESULT_DIR = "result"
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


@dataclass
class JobOutcome:
    """What :func:`run_job` did: per-task addresses and whether each was skipped."""

    result_dir: Path
    table_versions: dict[str, dict[str, Any]]
    tasks: list[dict[str, Any]] = field(default_factory=list)


def pin_tables(
    avi: AVI,
    open_table: Callable[[str], Any],
    pins: Mapping[str, int],
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Open every table the AVI's tasks read, pinned to one Delta version each."""
    names = avi.tables()
    unknown = sorted(set(pins) - set(names))
    if unknown:
        raise ValueError(f"--pin names tables this AVI does not read: {unknown} (reads {names})")
    catalogs: dict[str, Any] = {}
    versions: dict[str, dict[str, Any]] = {}
    for name in names:
        catalog = open_table(name)
        if name in pins:
            catalog = catalog.as_of(pins[name])
        catalogs[name] = catalog
        versions[name] = {"path": str(catalog.path), "version": int(catalog.version)}
    return catalogs, versions


def _publish_files(sources: Sequence[Path], staging: Path) -> None:
    for source in sources:
        for item in sorted(source.rglob("*")):
            relative = item.relative_to(source)
            target = staging / relative
            if item.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            elif target.exists():
                raise FileExistsError(f"two result tasks both write {relative}")
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(item, target)


def run_job(
    avi: AVI,
    params: BaseModel,
    job_dir: Path,
    *,
    spark: Any,
    open_table: Callable[[str], Any],
    cache_root: Path,
    reporter: ProgressReporter,
    pins: Mapping[str, int] | None = None,
) -> JobOutcome:
    """Run every task of ``avi`` and publish ``job_dir/result`` atomically."""
    job_dir.mkdir(parents=True, exist_ok=True)
    final = job_dir / RESULT_DIR
    if final.exists():
        raise FileExistsError(f"{final} already holds a result; use a new output folder")
    tasks = avi.tasks()
    total = len(tasks)
    reporter.report(tasks_done=0, tasks_total=total, stage_fraction=0.0, message="pinning tables")
    catalogs, versions = pin_tables(avi, open_table, pins or {})
    outcome = JobOutcome(result_dir=final, table_versions=versions)
    addresses: dict[str, str] = {}
    folders: dict[str, Path] = {}
    tracker = spark.sparkContext.statusTracker()
    for done, task in enumerate(tasks):
        identity = task_identity(avi.manifest, task, params, versions, addresses)
        address = address_of(identity)
        folder = output_dir(cache_root, identity, address)
        addresses[task.name], folders[task.name] = address, folder
        started = time.perf_counter()
        skipped = folder.is_dir()
        if skipped:
            log.info("task %s: output %s exists, skipped", task.name, address)
        else:
            message = f"task {task.name}"
            reporter.report(tasks_done=done, tasks_total=total, stage_fraction=0.0, message=message)
            folder.parent.mkdir(parents=True, exist_ok=True)
            scratch = Path(tempfile.mkdtemp(prefix=f".{address}.", dir=folder.parent))

            def say(text: str, _done: int = done, _task: str = task.name) -> None:
                reporter.report(tasks_done=_done, tasks_total=total, stage_fraction=0.0,
                                message=f"task {_task}: {text}")

            ctx = TaskContext(
                spark=spark,
                params=params,
                output_dir=scratch,
                inputs={name: folders[name] for name in task.after},
                tables={name: catalogs[name] for name in task.tables},
                say=say,
            )

            def on_fraction(fraction: float, _done: int = done, _msg: str = message) -> None:
                reporter.report(tasks_done=_done, tasks_total=total, stage_fraction=fraction,
                                message=_msg)

            try:
                with SparkStageMonitor(tracker, on_fraction):
                    task.run(ctx)
                os.replace(scratch, folder)
            except OSError as error:
                shutil.rmtree(scratch, ignore_errors=True)
                if not folder.is_dir():  # another job may have produced the same address
                    raise
                log.info("task %s: output appeared concurrently (%s)", task.name, error)
            except BaseException:
                shutil.rmtree(scratch, ignore_errors=True)
                raise
        outcome.tasks.append({
            "name": task.name,
            "address": address,
            "identity": identity,
            "skipped": skipped,
            "seconds": round(time.perf_counter() - started, 3),
        })
    reporter.report(tasks_done=total, tasks_total=total, stage_fraction=1.0,
                    message="publishing result")
    staging = Path(tempfile.mkdtemp(prefix=".result.", dir=job_dir))
    try:
        _publish_files([folders[t.name] for t in tasks if t.result], staging)
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    reporter.report(tasks_done=total, tasks_total=total, stage_fraction=1.0, message="done")
    return outcome


def _key_values(pairs: Sequence[str], what: str) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"{what} expects KEY=VALUE, got {pair!r}")
        out[key] = value
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m spark_jobs.runner", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--avi", required=True, help="AVI name (entry point in avip.avis)")
    parser.add_argument("--avi-version", default=None, help="refuse to run another version")
    parser.add_argument("--params", required=True, type=Path, help="JSON file of parameters")
    parser.add_argument("--output", required=True, type=Path, help="the job's folder")
    parser.add_argument("--job-id", default=None)
    parser.add_argument("--master", default=None, help="Spark master (default: settings)")
    parser.add_argument("--conf", action="append", default=[], metavar="K=V")
    parser.add_argument("--pin", action="append", default=[], metavar="TABLE=VERSION")
    parser.add_argument("--catalogue-root", default=None, help="lakehouse root (default: settings)")
    parser.add_argument("--cache", type=Path, default=None,
                        help="task output cache (default: <data_dir>/avi-cache)")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0][:400] if lines else "(no message)"


def _write_error(job_dir: Path, text: str) -> None:
    job_dir.mkdir(parents=True, exist_ok=True)
    (job_dir / "error.txt").write_text(text, encoding="utf-8")


def execute(
    *,
    avi_name: str,
    avi_version: str | None,
    read_params: Callable[[], Mapping[str, Any]],
    job_dir: Path,
    job_id: str | None,
    pins: Mapping[str, str],
    catalogue_root: str | None,
    cache: Path | None,
    open_session: Callable[[AVI], Any],
    lane: str,
) -> int:
    """Run one job into ``job_dir`` whichever lane started it: a spark-submit driver
    (:func:`main`) or a warm worker (:mod:`spark_jobs.backends.warm.worker`), so both
    write the same files the same way. ``open_session(avi)`` gives the job its Spark
    session. Returns the exit code (see the module docstring)."""
    started_at = time.time()
    try:
        avi = get_avi(avi_name, avi_version)
        params = avi.parse_params(read_params())
        pinned = {table: int(version) for table, version in pins.items()}
    except (UnknownAVIError, BrokenAVIError, ParamsError, ValueError, OSError) as error:
        _write_error(job_dir, f"{type(error).__name__}: {error}\n")
        log.error("%s", error)
        return EXIT_BAD_INPUT

    sink = FileProgressSink(job_dir / "progress.json")
    reporter = FanOut([sink, LoggingReporter(log)])
    provenance: dict[str, Any] = {
        "job_id": job_id,
        "avi": {**avi.manifest.model_dump(mode="json"),
                "commit": avi.manifest.commit or source_commit(type(avi))},
        "params": params.model_dump(mode="json"),
        "resources": avi.resources(params).model_dump(),
        "lane": lane,
        "started_at": started_at,
    }
    try:
        settings = get_settings()
        cache_root = cache or settings.data_dir / "avi-cache"
        root = catalogue_root or settings.catalogue_root
        spark = open_session(avi)

        def open_table(name: str) -> Any:
            return open_catalog(root, table=name, spark=spark)

        outcome = run_job(avi, params, job_dir, spark=spark, open_table=open_table,
                          cache_root=cache_root, reporter=reporter, pins=pinned)
        provenance.update(
            status="succeeded",
            tables=outcome.table_versions,
            tasks=outcome.tasks,
            spark_conf=spark_conf_redacted(spark),
        )
        code = EXIT_OK
    except Exception as error:
        # the traceback, then one line saying what went wrong: the job's reason (a Spark
        # error's own last line is often the "^^^^" under its query)
        text = traceback.format_exc() + f"{type(error).__name__}: {_first_line(error)}\n"
        _write_error(job_dir, text)
        log.error("job failed:\n%s", text)
        last = read_progress(job_dir / "progress.json")
        reporter.report(tasks_done=last.tasks_done if last else 0,
                        tasks_total=last.tasks_total if last else 0,
                        stage_fraction=0.0, message="failed: see error.txt")
        provenance["status"] = "failed"
        code = EXIT_FAILED
    finished_at = time.time()
    provenance.update(software=software_versions(avi), finished_at=finished_at,
                      wall_seconds=round(finished_at - started_at, 3))
    write_json_atomically(job_dir / "provenance.json", provenance)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run one job in this driver; see the module docstring for arguments and exit codes."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        conf = _key_values(args.conf, "--conf")
        pins = _key_values(args.pin, "--pin")
    except ValueError as error:
        _write_error(args.output.resolve(), f"ValueError: {error}\n")
        log.error("%s", error)
        return EXIT_BAD_INPUT

    def open_session(avi: AVI) -> Any:
        return get_spark(args.master, app_name=f"avip-{avi.manifest.name}", conf=conf)

    return execute(
        avi_name=args.avi, avi_version=args.avi_version,
        read_params=lambda: json.loads(args.params.read_text(encoding="utf-8")),
        job_dir=args.output.resolve(), job_id=args.job_id, pins=pins,
        catalogue_root=args.catalogue_root, cache=args.cache, open_session=open_session,
        lane="spark",
    )


if __name__ == "__main__":
    sys.exit(main())
