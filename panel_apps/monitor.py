"""The job monitor: the user's recent jobs with live progress, polled from the API.

A periodic callback (started only when served) re-reads ``GET /jobs``; each job
shows its state, queue position, progress bar, timings, a cancel button while
it can be cancelled, and for a failed job its reason and the end of its log.
"""

from __future__ import annotations

from typing import Any

import panel as pn
import param

from api.client import ApiError
from api.schemas import JobPublic
from panel_apps.session import PlatformSession, SignedOut

FINAL = ("succeeded", "failed", "cancelled")
STATE_COLOURS = {"queued": "secondary", "running": "primary", "succeeded": "success",
                 "failed": "danger", "cancelled": "warning"}
LOG_EXCERPT_CHARS = 2000


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} s"


def describe_timing(job: JobPublic) -> str:
    return (f"submitted {job.submitted_at:%Y-%m-%d %H:%M:%S} · waited {_seconds(job.wait_seconds)}"
            f" · ran {_seconds(job.run_seconds)}")


class JobMonitor(pn.viewable.Viewer):
    """Live list of the user's jobs."""

    jobs = param.List(default=[], item_type=JobPublic, doc="The latest jobs, newest first.")
    limit = param.Integer(default=20, bounds=(1, 200), doc="How many recent jobs to show.")
    period_ms = param.Integer(default=1000, bounds=(200, 60_000), doc="Polling period.")
    open_result = param.Integer(default=None, allow_None=True, doc="Job whose result to open.")

    def __init__(self, session: PlatformSession, **params: Any) -> None:
        super().__init__(**params)
        self.session = session
        self.rows = pn.Column(css_classes=["avip-jobs"])
        self._logs: dict[int, str] = {}
        self._callback: Any = None

    def refresh(self) -> None:
        try:
            jobs = self.session.call(lambda c: c.jobs(limit=self.limit)).data
        except SignedOut:
            self.stop()
            return
        if jobs == self.jobs and self.rows.objects:
            return  # nothing moved: keep the page still
        self.jobs = jobs
        self.rows.objects = [self._row(j) for j in self.jobs] or [
            pn.pane.Markdown("No jobs yet: launch one from the gallery.")]

    def log_excerpt(self, job_id: int) -> str:
        """The end of a failed job's log (fetched once; it no longer changes)."""
        if job_id not in self._logs:
            try:
                text = self.session.call(lambda c: c.logs(job_id))
            except ApiError as error:
                text = f"(log unavailable: {error})"
            self._logs[job_id] = text[-LOG_EXCERPT_CHARS:]
        return self._logs[job_id]

    def cancel(self, job_id: int) -> None:
        try:
            self.session.call(lambda c: c.cancel(job_id))
        except (SignedOut, ApiError):
            pass
        self.refresh()

    def _row(self, job: JobPublic) -> pn.viewable.Viewable:
        state = f"**{job.state}**" + (f" · position {job.queue_position} in queue"
                                      if job.queue_position else "")
        header = pn.pane.Markdown(
            f"#### Job {job.id} · {job.avi} {job.avi_version}\n{state} · {job.lane} lane · "
            f"{job.cores} cores · {describe_timing(job)}",
            css_classes=[f"avip-job-{job.id}", f"avip-state-{job.state}"])
        percent = int(round(100 * job.progress.fraction))
        bar = pn.indicators.Progress(value=percent if job.state != "queued" else -1,
                                     max=100, width=300, bar_color=STATE_COLOURS[job.state],
                                     css_classes=[f"avip-progress-{job.id}"])
        parts: list[Any] = [header, pn.Row(bar, pn.pane.Markdown(
            f"{percent} % · {job.progress.tasks_done}/{job.progress.tasks_total} tasks "
            f"{job.progress.message}"))]
        if job.state not in FINAL and not job.cancel_requested:
            button = pn.widgets.Button(label=f"Cancel job {job.id}", button_type="warning")
            button.on_click(lambda _e, i=job.id: self.cancel(i))
            parts.append(button)
        if job.state == "succeeded":
            button = pn.widgets.Button(label=f"Open result {job.id}", button_type="success",
                                       css_classes=[f"avip-open-result-{job.id}"])
            button.on_click(lambda _e, i=job.id: setattr(self, "open_result", i))
            parts.append(button)
        if job.state == "failed":
            parts.append(pn.pane.Alert(f"**Failed:** {job.reason or 'no reason recorded'}",
                                       alert_type="danger"))
            parts.append(pn.pane.Markdown(f"```\n{self.log_excerpt(job.id)}\n```",
                                          css_classes=["avip-log-excerpt"]))
        return pn.Column(*parts, styles={"border-bottom": "1px solid #ddd"})

    def start(self) -> None:
        """Begin polling (served sessions only)."""
        if self._callback is None:
            self._callback = pn.state.add_periodic_callback(self.refresh, period=self.period_ms)

    def stop(self) -> None:
        if self._callback is not None:
            self._callback.stop()
            self._callback = None

    def __panel__(self) -> pn.viewable.Viewable:
        refresh = pn.widgets.Button(label="Refresh jobs")
        refresh.on_click(lambda _e: self.refresh())
        return pn.Column("## Jobs", refresh, self.rows)
