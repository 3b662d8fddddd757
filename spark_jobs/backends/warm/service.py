"""The warm lane as its own process (``avip warm``, its own Deployment in production) and
the scheduler's client of it.

:func:`create_app` serves one :class:`~spark_jobs.backends.warm.pool.WarmPool` over HTTP:
the calls of :class:`~spark_jobs.backends.warm.backend.WarmLane` under ``/jobs``, for the
scheduler only (a bearer token, compared in constant time), and ``/healthz``, ``/readyz``
(ready while at least one worker is up) and ``/metrics`` like every other process.
:class:`RemoteWarmLane` is the same interface over that HTTP API, so the scheduler's
:class:`~spark_jobs.backends.warm.backend.WarmBackend` does not know where the workers run.
Both processes must see job folders at the same paths (the shared data volume).
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
from fastapi import Body, Depends, FastAPI, Header, HTTPException, Query
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from spark_jobs.backends.protocol import Handle, Status
from spark_jobs.backends.warm.pool import WarmPool

log = logging.getLogger("avip.warm")
WORKER_STATES = ("starting", "idle", "reserved", "busy", "cleaning")


class WarmCollector:
    """Prometheus metrics of a warm lane: workers by state, jobs by outcome."""

    def __init__(self, stats: Any) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self.stats()
        workers = GaugeMetricFamily("avip_warm_workers", "Warm-lane workers, by state.",
                                    labels=["state"])
        for state in WORKER_STATES:
            workers.add_metric([state], float(stats.get(state, 0)))
        yield workers
        jobs = CounterMetricFamily("avip_warm_jobs", "Warm-lane jobs ended, by outcome.",
                                   labels=["outcome"])
        for outcome, count in sorted(stats.get("jobs", {}).items()):
            jobs.add_metric([outcome], float(count))
        yield jobs


def warm_ready(stats: Mapping[str, Any]) -> bool:
    """Ready while at least one worker can run a job (idle, or running one)."""
    return any(int(stats.get(state, 0)) for state in ("idle", "reserved", "busy", "cleaning"))


def create_app(pool: WarmPool, token: str | None) -> FastAPI:
    """The HTTP face of ``pool``; ``token``: the bearer token the scheduler shows (None:
    none asked, for loopback only)."""
    registry = CollectorRegistry()
    registry.register(WarmCollector(pool.stats))  # type: ignore[arg-type]

    def scheduler_only(authorization: Annotated[str | None, Header()] = None) -> None:
        if token is None:
            return
        given = (authorization or "").removeprefix("Bearer ").encode()
        if not hmac.compare_digest(given, token.encode()):
            raise HTTPException(401, "the warm lane answers the scheduler only: show its token "
                                     "(AVIP_WARM_LANE_TOKEN) as a bearer token")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool.start()
        yield
        pool.close()

    app = FastAPI(title="avip warm lane", version="0.1.0", lifespan=lifespan)
    jobs = Depends(scheduler_only)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        stats = pool.stats()
        return JSONResponse({"ready": warm_ready(stats), "workers": stats},
                            status_code=200 if warm_ready(stats) else 503)

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/stats", dependencies=[jobs])
    def stats() -> dict[str, Any]:
        return pool.stats()

    @app.post("/jobs/{job_id}/reservation", dependencies=[jobs])
    def reserve(job_id: int) -> dict[str, str | None]:
        return {"waiting": pool.reserve(job_id)}

    @app.delete("/jobs/{job_id}/reservation", dependencies=[jobs])
    def release(job_id: int) -> dict[str, bool]:
        pool.release(job_id)
        return {"released": True}

    @app.post("/jobs/{job_id}", dependencies=[jobs])
    def run(job_id: int, request: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        try:
            handle = pool.run(job_id, request)
        except LookupError as error:
            raise HTTPException(409, str(error)) from None
        return {"pid": handle.pid, "start": handle.start}

    @app.get("/jobs/{job_id}", dependencies=[jobs])
    def status(job_id: int, output_dir: Annotated[str, Query()]) -> dict[str, str]:
        found = pool.status(job_id, Path(output_dir))
        return {"state": found.state, "reason": found.reason}

    @app.delete("/jobs/{job_id}", dependencies=[jobs])
    def cancel(job_id: int) -> dict[str, bool]:
        pool.cancel(job_id)
        return {"cancelled": True}

    @app.post("/jobs/{job_id}/forget", dependencies=[jobs])
    def forget(job_id: int) -> dict[str, bool]:
        pool.forget(job_id)
        return {"forgotten": True}

    return app


class RemoteWarmLane:
    """A :class:`~spark_jobs.backends.warm.backend.WarmLane` served by ``avip warm`` at ``url``."""

    def __init__(self, url: str, token: str | None, timeout_s: float = 10.0,
                 give_up_s: float = 300.0) -> None:
        """``give_up_s``: a running job whose lane has not answered for this long fails
        (the service is gone, or lost its workers and the job with them)."""
        self.give_up_s = give_up_s
        self._silent_since: dict[int, float] = {}
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.on_change: Callable[[], None] = lambda: None  # the scheduler polls it instead
        self.client = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout_s)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.client.request(method, path, **kwargs)
        if response.status_code == 409:
            raise LookupError(response.json().get("detail", response.text))
        response.raise_for_status()
        return response.json()

    def start(self) -> None:
        """Nothing to start here: the workers run in the ``avip warm`` process."""

    def close(self) -> None:
        self.client.close()

    def reserve(self, job_id: int) -> str | None:
        try:
            return self._call("POST", f"/jobs/{job_id}/reservation")["waiting"]
        except httpx.HTTPError as error:
            return f"the warm lane does not answer ({error}); the job waits for it"

    def _best_effort(self, method: str, path: str) -> None:
        """A call whose failure changes nothing for the job: a reservation lapses by itself,
        a record the lane keeps is dropped when it restarts, and a lane that cannot be
        reached to cancel has lost its workers (or will stop them at their time budget)."""
        try:
            self._call(method, path)
        except httpx.HTTPError as error:
            log.warning("warm lane: %s %s failed: %s", method, path, error)

    def release(self, job_id: int) -> None:
        self._best_effort("DELETE", f"/jobs/{job_id}/reservation")

    def run(self, job_id: int, request: Mapping[str, Any]) -> Handle:
        found = self._call("POST", f"/jobs/{job_id}", json=dict(request))
        return Handle(found["pid"], found["start"])

    def status(self, job_id: int, output_dir: Path) -> Status:
        try:
            found = self._call("GET", f"/jobs/{job_id}", params={"output_dir": str(output_dir)})
        except httpx.HTTPError as error:
            silent = time.monotonic() - self._silent_since.setdefault(job_id, time.monotonic())
            if silent < self.give_up_s:
                return Status("running")  # unknown this round; asked again next tick
            self._silent_since.pop(job_id, None)
            return Status("failed", f"the warm lane has not answered for {silent:.0f} s "
                                    f"({error}); submit the job again")
        self._silent_since.pop(job_id, None)
        return Status(found["state"], found["reason"])

    def cancel(self, job_id: int) -> None:
        self._best_effort("DELETE", f"/jobs/{job_id}")

    def forget(self, job_id: int) -> None:
        self._best_effort("POST", f"/jobs/{job_id}/forget")

    def stats(self) -> dict[str, Any]:
        try:
            return self._call("GET", "/stats")
        except httpx.HTTPError:
            return {}
