"""Result pages: a finished job's files fetched through the API, shown by its AVI's view.

The Panel server (never the browser) downloads a result once into a local
cache (results of a finished job never change), then calls the AVI's
``view(result_dir)``. A view that raises becomes an error panel; tables are
paged; large point sets are rasterized server-side (:mod:`panel_apps.plots`);
downloads convert tables to CSV, Parquet, VOTable or FITS through the API; a table
goes to TOPCAT or Aladin over SAMP from the browser (:mod:`panel_apps.samp`).
"""

from __future__ import annotations

import hashlib
import re
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import panel as pn
import param

from api.client import ApiError, AvipClient, format_detail
from api.schemas import JobPublic, ResultFile
from avi_plugins.registry import get_avi
from panel_apps.plots import sky_density
from panel_apps.samp import SampSender, outcome_text
from panel_apps.session import PlatformSession, SignedOut

FORMAT_LABELS = {"csv": "CSV", "parquet": "Parquet", "votable": "VOTable", "fits": "FITS",
                 "original": "Download"}
COMPLETE_MARK = ".complete"


@dataclass(frozen=True)
class ResultSource:
    """Where a job's results come from: the user's own job, or a job shared with them."""

    job_id: int
    share_id: int | None = None

    def list(self, client: AvipClient) -> list[ResultFile]:
        if self.share_id is None:
            return client.results(self.job_id).data
        listing = client.shared_ls(self.share_id)
        return [ResultFile(path=e.path, size=e.size, formats=["original"])
                for e in listing.data if not e.is_dir]

    def fetch(self, client: AvipClient, path: str, dest: Path, fmt: str | None = None) -> Path:
        if self.share_id is None:
            return client.download_result(self.job_id, path, dest, fmt)
        return client.shared_get(self.share_id, path, dest)


def find_source(client: AvipClient, job_id: int) -> ResultSource:
    """The user's own job, else a share of that job with them; ApiError 404 otherwise."""
    try:
        client.job(job_id)
        return ResultSource(job_id)
    except ApiError as error:
        if error.status != 404:
            raise
    for share in client.shared_with_me().data:
        if share.kind == "job" and share.target == str(job_id):
            return ResultSource(job_id, share.id)
    raise ApiError(404, f"job {job_id} is neither yours nor shared with you")


def cache_dir(root: Path, api_url: str, user: str, source: ResultSource) -> Path:
    origin = hashlib.sha256(api_url.encode()).hexdigest()[:12]
    tail = f"share-{source.share_id}" if source.share_id else "own"
    return root / origin / user / f"{source.job_id}-{tail}"


def fetch_results(client: AvipClient, source: ResultSource, folder: Path) -> Path:
    """Download every result file into ``folder`` once (tables as single Parquet files)."""
    files = source.list(client)  # also the authorization check, cache or not
    mark = folder.parent / f"{folder.name}{COMPLETE_MARK}"  # outside: views list the folder
    if mark.is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for item in files:
        source.fetch(client, item.path, folder / item.path)
    mark.touch()
    return folder


@pn.cache(max_items=16)
def load_table(path: str, modified: float) -> pd.DataFrame:
    """A result table from the local cache (``modified`` keys the cache)."""
    return pd.read_parquet(path)


def render_view(view: Callable[[Path], Any], folder: Path) -> pn.viewable.Viewable:
    """The AVI's view, or an error panel saying why it could not be shown."""
    try:
        return pn.panel(view(folder))
    except Exception as error:  # noqa: BLE001 - any plugin failure becomes a panel
        excerpt = "".join(traceback.format_exception(error))[-1500:]
        return pn.Column(
            pn.pane.Alert(f"**This result's view failed:** {type(error).__name__}: {error}",
                          alert_type="danger"),
            pn.pane.Markdown(f"```\n{excerpt}\n```"), css_classes=["avip-view-error"])


def load_avi_view(name: str, version: str | None) -> Callable[[Path], Any]:
    return get_avi(name, version).view


class ResultView(pn.viewable.Viewer):
    """One job's result: header, downloads (optional), density plot and the AVI's view."""

    job_id = param.Integer(default=None, allow_None=True, doc="The job to show.")
    avi = param.String(default="", doc="AVI name (needed for shared jobs).")
    with_downloads = param.Boolean(default=True, doc="Show download buttons.")
    cache_root = param.Path(default=None, allow_None=True, check_exists=False,
                            doc="Local result cache (default: a temp folder).")

    def __init__(self, session: PlatformSession,
                 view_loader: Callable[[str, str | None], Callable[[Path], Any]] = load_avi_view,
                 **params: Any) -> None:
        super().__init__(**params)
        self.session = session
        self.view_loader = view_loader
        self.body = pn.Column(css_classes=["avip-result"], sizing_mode="stretch_width")
        self.samp_status = pn.pane.Alert("", visible=False, css_classes=["avip-samp-status"])
        self.samp = SampSender(on_result=self._samp_done)
        self._samp_name = ""

    def _root(self) -> Path:
        return Path(self.cache_root or Path(tempfile.gettempdir()) / "avip-panel-results")

    @param.depends("job_id", watch=True)
    def refresh(self) -> None:
        if self.job_id is None:
            self.body.objects = [pn.pane.Markdown("Choose a finished job.")]
            return
        try:
            self.body.objects = self._build(self.job_id)
        except SignedOut:
            self.body.objects = []
        except ApiError as error:
            self.body.objects = [pn.pane.Alert(f"Cannot open job {self.job_id}: {error}",
                                               alert_type="danger")]

    def _build(self, job_id: int) -> list[Any]:
        source = self.session.call(lambda c: find_source(c, job_id))
        job: JobPublic | None = None
        if source.share_id is None:
            job = self.session.call(lambda c: c.job(job_id))
            if job.state != "succeeded":
                return [pn.pane.Alert(f"Job {job_id} is {job.state}: "
                                      f"{job.reason or 'no result yet'}", alert_type="warning")]
        avi, version = (job.avi, job.avi_version) if job else (self.avi, None)
        folder = cache_dir(self._root(), self.session.api_url, self.session.user, source)
        folder = self.session.call(lambda c: fetch_results(c, source, folder))
        files = self.session.call(lambda c: source.list(c))
        parts: list[Any] = [pn.pane.Markdown(
            f"## Result of job {job_id} · {avi} {version or ''}"
            + (f"\nparams: `{job.params}` · ran {job.run_seconds or 0:.1f} s" if job else ""))]
        if self.with_downloads and source.share_id is None:
            parts.append(self._downloads(job_id, files))
        tables = [f.path for f in files
                  if "votable" in f.formats or f.path.lower().endswith((".parquet", ".csv"))]
        if self.with_downloads and tables:  # own or shared: the API checks either
            parts.append(self._samp_section(job_id, tables))
        density = self._density(folder, files)
        if density is not None:
            parts.append(density)
        try:
            view = self.view_loader(avi, version)
        except Exception as error:  # noqa: BLE001 - unknown or broken AVI
            return [*parts, pn.pane.Alert(f"No view for AVI {avi!r}: {error}",
                                          alert_type="danger", css_classes=["avip-view-error"])]
        return [*parts, render_view(view, folder)]

    def _downloads(self, job_id: int, files: list[ResultFile]) -> pn.viewable.Viewable:
        rows = []
        for item in files:
            buttons = [self._download_button(job_id, item, fmt) for fmt in item.formats]
            rows.append(pn.Row(pn.pane.Markdown(f"`{item.path}` ({item.size:,} bytes)",
                                                width=300), *buttons))
        return pn.Column("### Downloads", *rows, css_classes=["avip-downloads"])

    def _download_button(self, job_id: int, item: ResultFile, fmt: str) -> pn.widgets.FileDownload:
        stem = Path(item.path).stem
        suffix = {"csv": ".csv", "parquet": ".parquet", "votable": ".vot", "fits": ".fits"}
        filename = f"{stem}{suffix[fmt]}" if fmt in suffix else Path(item.path).name

        def fetch() -> str:
            dest = Path(tempfile.mkdtemp(prefix="avip-dl-")) / filename
            return str(self.session.call(lambda c: c.download_result(
                job_id, item.path, dest, None if fmt == "original" else fmt)))

        return pn.widgets.FileDownload(callback=fetch, filename=filename,
                                       label=f"{FORMAT_LABELS.get(fmt, fmt)}", width=90,
                                       button_type="light",
                                       css_classes=[f"avip-dl-{stem}-{fmt}"])

    def _samp_section(self, job_id: int, tables: list[str]) -> pn.viewable.Viewable:
        rows = []
        for path in tables:
            css = "avip-samp-" + re.sub(r"[^\w-]", "-", path)  # sources.csv: avip-samp-sources-csv
            button = pn.widgets.Button(label="Send to TOPCAT / Aladin", button_type="primary",
                                       css_classes=[css])
            button.on_click(lambda _e, p=path: self.send_to_samp(job_id, p))
            rows.append(pn.Row(pn.pane.Markdown(f"`{path}`", width=300), button))
        return pn.Column("### Send to TOPCAT / Aladin (SAMP)", *rows, self.samp_status,
                         self.samp, css_classes=["avip-samp"])

    def send_to_samp(self, job_id: int, path: str) -> None:
        """Ask the API for a link to ``path`` (the server side holds the token), then have
        the page hand it to the SAMP hub on the user's machine."""
        try:
            link = self.session.call(lambda c: c.result_link(job_id, path, "votable"))
        except SignedOut:
            return
        except ApiError as error:
            self._samp_show(f"Cannot send {path}: {format_detail(error.detail)}", "danger")
            return
        self._samp_name = f"job{job_id}-{Path(path).stem}"
        self._samp_show("Sending… if the SAMP hub asks whether to accept **avip**, allow it.",
                        "info")
        self.samp.send(link.url, self._samp_name)

    def _samp_done(self, result: dict[str, Any]) -> None:
        self._samp_show(*outcome_text(result, self._samp_name))

    def _samp_show(self, text: str, kind: str) -> None:
        self.samp_status.param.update(object=text, alert_type=kind, visible=True)

    def _density(self, folder: Path, files: list[ResultFile]) -> pn.viewable.Viewable | None:
        """A server-rasterized sky density of the first table with ra/dec columns."""
        for item in files:
            path = folder / item.path
            if path.suffix != ".parquet" or not path.is_file():
                continue
            frame = load_table(str(path), path.stat().st_mtime)
            if {"ra", "dec"} <= set(frame.columns) and len(frame):
                return pn.Column(f"### Sky density of {item.path} ({len(frame):,} rows, "
                                 "rasterized on the server)",
                                 pn.pane.HoloViews(sky_density(frame), linked_axes=False))
        return None

    def __panel__(self) -> pn.viewable.Viewable:
        return self.body
