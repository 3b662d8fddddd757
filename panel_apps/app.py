"""The avip dashboards: sign-in, then gallery, jobs, results, space and dashboards.

    avip dashboards --address 127.0.0.1 --port 5006      # next to `avip serve`

Each browser session builds its own :class:`AvipApp` around its own
:class:`~panel_apps.session.PlatformSession` (one token, one API client).
Outreach and anonymous users get the simplified pages: gallery with the
simple fields only, their jobs and results. When the API stops accepting the
token, every page gives way to the sign-in page and says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import panel as pn
import param

from panel_apps.dashboards import DashboardBoard
from panel_apps.gallery import AviGallery
from panel_apps.metrics import SESSIONS, MetricsHandler
from panel_apps.monitor import JobMonitor
from panel_apps.results import ResultView
from panel_apps.session import PlatformSession, SignedOut
from panel_apps.space import SpaceBrowser

EXTENSIONS = ("tabulator", "gridstack")
PAGES = ("Gallery", "Jobs", "Results", "My space", "Dashboard")
SIMPLE_PAGES = ("Gallery", "Jobs", "Results")


class ResultsPage(pn.viewable.Viewer):
    """A chooser of the user's finished jobs above the chosen job's result."""

    def __init__(self, session: PlatformSession, cache_root: Path | None) -> None:
        super().__init__()
        self.session = session
        self.view = ResultView(session, cache_root=cache_root)
        self.choice = pn.widgets.Select(label="Finished job", options={})
        self.choice.param.watch(lambda e: setattr(self.view, "job_id", e.new), "value")

    def refresh(self) -> None:
        try:
            jobs = self.session.call(lambda c: c.jobs(state="succeeded", limit=100)).data
        except SignedOut:
            return
        self.choice.options = {f"job {j.id} · {j.avi}": j.id for j in jobs}

    def show(self, job_id: int) -> None:
        self.refresh()
        self.choice.value = job_id
        if self.view.job_id != job_id:
            self.view.job_id = job_id

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column("## Results", self.choice, self.view, sizing_mode="stretch_width")


class AvipApp(pn.viewable.Viewer):
    """The whole app of one browser session."""

    active_page = param.String(default="Gallery", doc="The page shown after sign-in.")

    def __init__(self, session: PlatformSession, *, cache_root: Path | None = None,
                 served: bool = False, **params: Any) -> None:
        super().__init__(**params)
        self.session = session
        self.cache_root = cache_root
        self.served = served
        self.token_input = pn.widgets.PasswordInput(label="API token", placeholder="paste token",
                                                    css_classes=["avip-token"])
        self.sign_in_button = pn.widgets.Button(label="Sign in", button_type="primary")
        self.sign_in_button.on_click(lambda _e: self.sign_in(self.token_input.value))
        self.sign_in_message = pn.pane.Alert("", alert_type="warning", visible=False,
                                             css_classes=["avip-signin-message"])
        self.content = pn.Column(sizing_mode="stretch_width")
        self.pages: dict[str, Any] = {}
        self.tabs: pn.Tabs | None = None
        session.param.watch(self._on_auth_change, "signed_in")
        self._render()

    def sign_in(self, token: str) -> bool:
        ok = self.session.sign_in(token)
        if not ok:
            self._render()
        return ok

    def _on_auth_change(self, _event: Any) -> None:
        self._render()

    def _render(self) -> None:
        if not self.session.signed_in:
            self._stop()
            message = self.session.message
            self.sign_in_message.object = message
            self.sign_in_message.visible = bool(message)
            self.token_input.value = ""
            self.content.objects = [pn.Column(
                "# avip — Gaia science platform", "Sign in with your API token.",
                self.sign_in_message, self.token_input, self.sign_in_button,
                css_classes=["avip-signin"], width=420)]
            return
        self.content.objects = [self._header(), self._main()]

    def _header(self) -> pn.viewable.Viewable:
        out = pn.widgets.Button(label="Sign out", width=100)
        out.on_click(lambda _e: self.session.sign_out("You signed out."))
        mode = " · simplified pages" if self.session.simplified else ""
        return pn.Row(pn.pane.Markdown(
            f"# avip · signed in as **{self.session.user}** ({', '.join(self.session.roles)})"
            f"{mode}", css_classes=["avip-whoami"]), out)

    def _main(self) -> pn.viewable.Viewable:
        s = self.session
        gallery, monitor = AviGallery(s), JobMonitor(s)
        results = ResultsPage(s, self.cache_root)
        self.pages = {"Gallery": gallery, "Jobs": monitor, "Results": results}
        if not s.simplified:
            self.pages["My space"] = SpaceBrowser(s)
            self.pages["Dashboard"] = DashboardBoard(s)
        gallery.param.watch(lambda e: self.go("Jobs"), "launched_job")
        monitor.param.watch(lambda e: e.new and self.open_result(e.new), "open_result")
        self.tabs = pn.Tabs(*[(name, page) for name, page in self.pages.items()],
                            dynamic=False, sizing_mode="stretch_width")
        self.tabs.param.watch(self._on_tab, "active")
        for page in self.pages.values():
            page.refresh()
        if self.served:
            monitor.start()
        return self.tabs

    def _on_tab(self, event: Any) -> None:
        name = list(self.pages)[event.new]
        self.active_page = name
        if name != "Jobs":
            self.pages[name].refresh()

    def go(self, name: str) -> None:
        if self.tabs is not None and name in self.pages:
            self.tabs.active = list(self.pages).index(name)

    def open_result(self, job_id: int) -> None:
        self.go("Results")
        self.pages["Results"].show(job_id)

    def _stop(self) -> None:
        monitor = self.pages.get("Jobs")
        if monitor is not None:
            monitor.stop()
        self.pages, self.tabs = {}, None

    def __panel__(self) -> pn.viewable.Viewable:
        return self.content


def create_app(api_url: str, cache_root: Path | None = None, served: bool = True,
               ) -> pn.viewable.Viewable:
    """One session's page (the function Panel calls for each browser session)."""
    SESSIONS.inc()
    return pn.panel(AvipApp(PlatformSession(api_url=api_url), cache_root=cache_root,
                            served=served))


def serve(api_url: str, *, address: str = "127.0.0.1", port: int = 5006,
          cache_root: Path | None = None, threaded: bool = False,
          allowed_origins: Sequence[str] = ()) -> Any:
    """Serve the dashboards on ``address:port`` (blocking unless ``threaded``), with a
    ``/liveness`` probe and Prometheus ``/metrics``. Browsers may open the websocket from
    ``address:port``, ``localhost:port`` and each of ``allowed_origins`` (``host[:port]``:
    the name users reach it by behind a Service or an Ingress)."""
    import holoviews as hv

    pn.extension(*EXTENSIONS)
    hv.extension("bokeh", logo=False)
    origin = [f"{address}:{port}", f"localhost:{port}", *allowed_origins]
    return pn.serve({"/": lambda: create_app(api_url, cache_root)}, address=address, port=port,
                    show=False, threaded=threaded, websocket_origin=origin, liveness=True,
                    extra_patterns=[("/metrics", MetricsHandler)],
                    title="avip dashboards", verbose=False)
