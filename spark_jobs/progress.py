"""Job progress: one small reporter interface, and the sinks and probes behind it.

The runner knows two things about progress — how many AVI tasks are done out
of how many, and how far the Spark stages currently running have got — and
hands both to a :class:`ProgressReporter`. Where the numbers go is the sink's
business: :class:`FileProgressSink` writes ``progress.json`` (atomically, so a
poller never reads half a file), the CLI draws a bar, the API may add its own.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Progress:
    """A snapshot of one job's progress (the content of ``progress.json``)."""

    tasks_done: int
    tasks_total: int
    stage_fraction: float
    message: str
    updated_at: str

    @property
    def fraction(self) -> float:
        """Overall fraction done: whole tasks plus the running task's Spark progress."""
        if self.tasks_total <= 0:
            return 0.0
        running = self.stage_fraction if self.tasks_done < self.tasks_total else 0.0
        return min(1.0, (self.tasks_done + running) / self.tasks_total)


@runtime_checkable
class ProgressReporter(Protocol):
    """Anything that accepts progress updates (keyword arguments only)."""

    def report(
        self, *, tasks_done: int, tasks_total: int, stage_fraction: float, message: str
    ) -> None: ...


def make_progress(
    *, tasks_done: int, tasks_total: int, stage_fraction: float, message: str
) -> Progress:
    """Build a :class:`Progress` stamped with the current UTC time."""
    return Progress(
        tasks_done=tasks_done,
        tasks_total=tasks_total,
        stage_fraction=round(max(0.0, min(1.0, stage_fraction)), 4),
        message=message,
        updated_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
    )


def write_json_atomically(path: Path, payload: object) -> None:
    """Write JSON to ``path`` through a temporary file and ``os.replace``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class FileProgressSink:
    """Writes ``progress.json`` into a job folder; the API polls that file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def report(
        self, *, tasks_done: int, tasks_total: int, stage_fraction: float, message: str
    ) -> None:
        snapshot = make_progress(
            tasks_done=tasks_done,
            tasks_total=tasks_total,
            stage_fraction=stage_fraction,
            message=message,
        )
        write_json_atomically(self.path, asdict(snapshot))


def read_progress(path: Path) -> Progress | None:
    """Read a ``progress.json`` (None when it does not exist yet)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return Progress(**data)


class LoggingReporter:
    """Logs each update that changes the task count or message."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or log
        self._last: tuple[int, str] | None = None

    def report(
        self, *, tasks_done: int, tasks_total: int, stage_fraction: float, message: str
    ) -> None:
        if (tasks_done, message) != self._last:
            self._last = (tasks_done, message)
            self._log.info("[%d/%d] %s", tasks_done, tasks_total, message)


class FanOut:
    """Sends every update to several reporters; one failing sink does not stop the others."""

    def __init__(self, reporters: Sequence[ProgressReporter]) -> None:
        self.reporters = list(reporters)

    def report(
        self, *, tasks_done: int, tasks_total: int, stage_fraction: float, message: str
    ) -> None:
        for reporter in self.reporters:
            try:
                reporter.report(
                    tasks_done=tasks_done,
                    tasks_total=tasks_total,
                    stage_fraction=stage_fraction,
                    message=message,
                )
            except Exception:  # a broken sink must not fail the job
                log.exception("progress reporter %r failed", reporter)


def stage_fraction(status_tracker: object) -> float | None:
    """Fraction of tasks completed over the Spark stages now active (None if none run).

    Reads ``SparkContext.statusTracker()``: completed / total tasks summed over
    active stages, which is what the Spark UI's progress bars show.
    """
    total = done = 0
    for stage_id in status_tracker.getActiveStageIds():  # type: ignore[attr-defined]
        info = status_tracker.getStageInfo(stage_id)  # type: ignore[attr-defined]
        if info is None:
            continue
        total += info.numTasks
        done += info.numCompletedTasks
    if total == 0:
        return None
    return done / total


class SparkStageMonitor:
    """Background thread polling Spark's status tracker and calling ``on_fraction``.

    Used as a context manager around one AVI task.
    """

    def __init__(
        self,
        status_tracker: object,
        on_fraction: Callable[[float], None],
        interval_s: float = 0.5,
    ) -> None:
        self._tracker = status_tracker
        self._on_fraction = on_fraction
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="spark-stage-monitor", daemon=True)

    def _poll(self) -> None:
        last: float | None = None
        while not self._stop.wait(self._interval_s):
            try:
                fraction = stage_fraction(self._tracker)
            except Exception:  # the JVM may be shutting down
                log.debug("status tracker poll failed", exc_info=True)
                continue
            if fraction is not None and fraction != last:
                last = fraction
                self._on_fraction(fraction)

    def __enter__(self) -> SparkStageMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
