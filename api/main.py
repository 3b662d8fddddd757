"""The FastAPI application: ``create_app`` assembles it, nothing more.

    uvicorn --factory api.main:create_app      # or: avip serve

The store is migrated on start-up; with ``run_scheduler`` the dispatcher
(scheduler loop) runs in a background thread of the same process.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError

from api.auth_cache import TokenCache
from api.avis import AviCatalogue, RegistryCatalogue
from api.bootstrap import secure_state
from api.db import make_engine, migrate, session_factory
from api.headers import SecurityHeaders
from api.limits import BodyLimit
from api.metrics import Metrics, RequestTimer
from api.routes import alert_filters, avis, events, health, jobs, presets, shares, space, users
from api.routes.links import router as links_router
from api.scheduling.dispatcher import Dispatcher
from api.scheduling.drf import Capacity
from api.space.published_results import RESULT_DIR
from api.space.published_results import publish as publish_results
from api.space.user_space import sweep_crashed_uploads
from api.store.loop import LoopStore
from api.vo import scs, tap, uws_jobs
from config.s3 import check_s3
from config.settings import Settings, get_settings
from spark_jobs.backends import backend_for, warm_backend_for
from spark_jobs.backends.warm.service import WarmCollector

STORE_RETRY_AFTER_S = 5


async def store_unreachable(request: Request, error: Exception) -> JSONResponse:
    """The job store did not answer (restarting, network): 503 with Retry-After, not a 500;
    the pool reconnects by itself (pre-ping) once it is back."""
    return JSONResponse(
        {"detail": "the job store is not answering (restarting?); retry in a few seconds"},
        status_code=503, headers={"Retry-After": str(STORE_RETRY_AFTER_S)})


def create_app(
    settings: Settings | None = None,
    *,
    catalogue: AviCatalogue | None = None,
    run_scheduler: bool = False,
    serve_api: bool = True,
) -> FastAPI:
    settings = settings or get_settings()
    secure_state(settings.data_dir, settings.store_url)
    sweep_crashed_uploads(settings.space_root)  # spaces keep local claims on both backends
    if settings.user_space_backend == "s3":
        check_s3(settings)  # bad S3 settings fail here, naming the AVIP_S3_* setting to fix
    engine = make_engine(settings.store_url)
    migrate(engine)
    sessions = session_factory(engine)
    warm = warm_backend_for(settings) if run_scheduler else None
    dispatcher = Dispatcher(
        sessions=sessions,
        backend=backend_for(settings),
        capacity=Capacity(cores=settings.cluster_cores, memory_mb=settings.cluster_memory_mb),
        catalogue_root=settings.catalogue_root,
        cache_dir=settings.data_dir / "avi-cache",
        space_root=settings.space_root if settings.user_space_backend == "s3" else None,
        publish=(lambda owner, job_id, output_dir: publish_results(
            settings, owner, job_id, output_dir / RESULT_DIR))
        if settings.user_space_backend == "s3" else None,
        warm=warm,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if run_scheduler:
            if warm is not None:
                warm.start()  # its workers warm up in the background; warm jobs wait for them
            dispatcher.start(settings.scheduler_interval_s)
        # Everything loaded so far (libraries, plugins, schemas: ~200k objects) lives as long as
        # the process: keep it out of the cyclic GC, whose full passes over it stopped all
        # requests for ~0.25 s each on this machine.
        gc.freeze()
        loop_store: LoopStore | None = app.state.loop_store
        checkpoints = asyncio.create_task(loop_store.checkpoint_every()) if loop_store else None
        yield
        if checkpoints is not None:
            checkpoints.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await checkpoints
        if run_scheduler:
            dispatcher.stop()
            if warm is not None:
                warm.close()
        engine.dispose()
        if loop_store is not None:
            loop_store.checkpoint()
            loop_store.engine.dispose()

    app = FastAPI(
        title="avip",
        summary="Gaia science platform: AVI jobs with fair per-user quotas, user space, sharing.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = sessions
    app.state.auth_cache = TokenCache.watching(sessions, ttl_s=settings.auth_cache_ttl_s)
    app.state.catalogue = catalogue or RegistryCatalogue()
    app.state.dispatcher = dispatcher
    # Embedded SQLite: the hot routes' store work runs on the event loop (api.store.loop).
    app.state.loop_store = LoopStore.for_store(engine)
    if app.state.loop_store is not None:
        app.state.auth_cache.watch(app.state.loop_store.sessions)
    app.state.metrics = Metrics(sessions)
    dispatcher.on_decision = app.state.metrics.decisions.observe
    if warm is not None:
        app.state.metrics.registry.register(WarmCollector(warm.lane.stats))
    app.include_router(health.router)
    if serve_api:  # else a scheduler process: its probes and metrics only
        for module in (users, avis, jobs, events, space, shares):
            app.include_router(module.router)
        app.include_router(users.pools_router)
        app.include_router(alert_filters.router)
        app.include_router(presets.router)
        app.include_router(links_router)
        app.include_router(tap.router)
        app.include_router(uws_jobs.router)
        app.include_router(scs.router)
    app.add_exception_handler(OperationalError, store_unreachable)
    app.add_exception_handler(InterfaceError, store_unreachable)
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes,
                       larger={"/tap/": settings.tap_upload_max_bytes})
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestTimer, metrics=app.state.metrics)
    return app
