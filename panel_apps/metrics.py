"""``/metrics`` of the dashboards' server, for Prometheus (k8s/base/panel.yaml scrapes it).

The process's own figures (CPU, memory, open files, Python GC: prometheus_client's default
collectors) and the number of browser sessions opened. Nothing here names a user, so
unlike the API's ``/metrics`` it needs no token.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, generate_latest
from tornado.web import RequestHandler

SESSIONS = Counter("avip_dashboard_sessions", "Browser sessions the dashboards opened.")


class MetricsHandler(RequestHandler):
    """Tornado handler the Bokeh server mounts at ``/metrics`` (``extra_patterns``)."""

    def get(self) -> None:
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.write(generate_latest(REGISTRY))
