"""Prometheus metrics of the API and its scheduler (prometheus-client).

One registry per app (tests build many apps in one process). Request latency is a
histogram per method, route template (``/jobs/{job_id}``, never the raw path: bounded
labels) and status, recorded by a small ASGI middleware; the job store's figures —
jobs by state, the queue and granted cores per user, the outbox's lag — are read at
scrape time by a collector, so they are never stale; the scheduler's decision time is a
histogram the dispatcher feeds.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session, sessionmaker

from api.limits import ASGIApp, Message, Receive, Scope, Send
from api.store import jobs as job_store

LATENCY_BUCKETS_S = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class StoreCollector(Collector):
    """The job store's figures, read when Prometheus scrapes."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def collect(self) -> Iterator[Metric]:
        with self.sessions() as session:
            states = job_store.counts_by_state(session)
            load = job_store.load_by_user(session)
            unpublished, lag_s = job_store.outbox_lag(session)
        jobs = GaugeMetricFamily("avip_jobs", "Jobs in the store, by state.", labels=["state"])
        for state, count in states.items():
            jobs.add_metric([state], count)
        yield jobs
        queued = GaugeMetricFamily("avip_queue_length", "Jobs waiting, per user.",
                                   labels=["user"])
        cores = GaugeMetricFamily("avip_granted_cores", "Cores of running jobs, per user.",
                                  labels=["user"])
        for user, waiting, _running, running_cores, _memory in load:
            queued.add_metric([user], waiting)
            cores.add_metric([user], running_cores)
        yield queued
        yield cores
        yield GaugeMetricFamily("avip_outbox_unpublished_events",
                                "Job events written but not yet published to Kafka.",
                                value=unpublished)
        yield GaugeMetricFamily("avip_outbox_lag_seconds",
                                "Age of the oldest unpublished job event.", value=lag_s)


class Metrics:
    """The API process's registry and the instruments its parts feed."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Histogram(
            "avip_http_request_duration_seconds", "API request latency.",
            ["method", "route", "status"], buckets=LATENCY_BUCKETS_S, registry=self.registry)
        self.decisions = Histogram(
            "avip_scheduler_decision_seconds", "Time of one scheduling decision (DRF).",
            buckets=LATENCY_BUCKETS_S, registry=self.registry)
        self.registry.register(StoreCollector(sessions))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class RequestTimer:
    """ASGI middleware: each HTTP request's latency, by its route template and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def watched(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.requests.labels(scope.get("method", ""), route, str(status)).observe(
                time.perf_counter() - started)
