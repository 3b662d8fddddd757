"""Probes and metrics beside a long-running process that is not a web app (the event
relay, the alert stream): ``/healthz``, ``/readyz`` and Prometheus ``/metrics`` on a
port of its own, for Kubernetes' probes and Prometheus' scrapes.

The standard library's threading HTTP server in a daemon thread: the process's work
stays its main loop, and a slow scrape never blocks it. The metrics of these two
processes name no user (outbox lag, alert rates), so they need no token unless the
operator set ``metrics_token``.
"""

from __future__ import annotations

import hmac
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from cli.output import EXIT_FAILED, fail

Readiness = Callable[[], dict[str, str]]  # dependency -> "ok" or why not


def serve_probes(registry: CollectorRegistry, ready: Readiness, *, host: str, port: int,
                 token: str | None = None) -> ThreadingHTTPServer:
    """Start serving the probes and metrics on ``host:port`` in a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 — the stdlib's name
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                self._answer(200, b'{"status": "alive"}', "application/json")
            elif path == "/readyz":
                checks = ready()
                ok = all(value == "ok" for value in checks.values())
                body = json.dumps({"ready": ok, "checks": checks}).encode()
                self._answer(200 if ok else 503, body, "application/json")
            elif path == "/metrics":
                sent = self.headers.get("Authorization", "").removeprefix("Bearer ")
                if token is not None and not hmac.compare_digest(sent, token):
                    self._answer(401, b'{"detail": "send the scrape token"}',
                                 "application/json")
                    return
                self._answer(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            else:
                self._answer(404, b'{"detail": "/healthz, /readyz or /metrics"}',
                             "application/json")

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # probes every few seconds would drown the process's own log

    try:
        server = ThreadingHTTPServer((host, port), Handler)
    except OSError as error:
        raise fail(f"cannot serve /healthz, /readyz and /metrics on {host}:{port} ({error}); "
                   "pick another --probes-port, or 0 for none", EXIT_FAILED) from None
    threading.Thread(target=server.serve_forever, name="avip-probes", daemon=True).start()
    return server


class StreamCollector(Collector):
    """The alert stream's figures, from its per-batch stats at scrape time."""

    def __init__(self, stats: Callable[[], list[dict[str, float]]],
                 disabled: Callable[[], int]) -> None:
        self.stats, self.disabled = stats, disabled

    def collect(self) -> Iterator[Metric]:
        batches = list(self.stats())
        yield CounterMetricFamily("avip_alerts", "Raw alerts processed.",
                                  value=sum(b.get("records", 0) for b in batches))
        yield CounterMetricFamily("avip_alert_messages", "Messages written to filter topics.",
                                  value=sum(b.get("messages", 0) for b in batches))
        yield CounterMetricFamily("avip_alert_batches", "Micro-batches written.",
                                  value=len(batches))
        yield CounterMetricFamily("avip_alert_batch_seconds", "Seconds spent in batches.",
                                  value=sum(b.get("seconds", 0.0) for b in batches))
        yield GaugeMetricFamily("avip_alert_last_batch_seconds", "The last batch's latency.",
                                value=batches[-1].get("seconds", 0.0) if batches else 0.0)
        yield CounterMetricFamily("avip_alert_filters_disabled",
                                  "Filters the stream switched off.", value=self.disabled())


class RelayCollector(Collector):
    """The event relay's own figure (the outbox's lag comes from the store's collector)."""

    def __init__(self, published: Callable[[], int]) -> None:
        self.published = published

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily("avip_events_published", "Job events published to Kafka.",
                                  value=self.published())
