"""The platform's long-running processes, one command each (the Kubernetes deployment
runs these; ``avip serve`` runs them all in one process for embedded use).

    avip api         the REST API (no scheduler)                 /healthz /readyz /metrics
    avip scheduler   the dispatcher loop, with its probes        /healthz /readyz /metrics
    avip serve       API + scheduler + dashboards in one process (and the warm workers)
    avip warm        the warm lane's workers for a scheduler elsewhere  /healthz /readyz /metrics
    (and: avip events relay, avip alerts stream, avip dashboards)

Each migrates the store and, on the very first start, writes the operator's token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from cli.output import console
from config.settings import Settings, get_settings

if TYPE_CHECKING:
    from fastapi import FastAPI

HostOpt = Annotated[str | None, typer.Option(help="Bind address (default settings).")]
SCHEDULER_PORT = 8766
WARM_PORT = 8769


def _app(settings: Settings, *, run_scheduler: bool, serve_api: bool) -> FastAPI:
    # The service stack (FastAPI, SQLAlchemy, the dispatcher) loads only for the commands
    # that run it: every other `avip` command stays a thin REST client.
    from api.bootstrap import ensure_operator
    from api.db import make_engine, migrate, session_factory
    from api.main import create_app

    engine = make_engine(settings.store_url)
    migrate(engine)
    created = ensure_operator(session_factory(engine), settings.data_dir, settings.token_ttl_days)
    engine.dispose()
    if created:
        console.print(f"first start: operator token written to {created}")
    return create_app(settings, run_scheduler=run_scheduler, serve_api=serve_api)


def _run(app: FastAPI, host: str, port: int) -> None:
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="info")


def serve(
    host: HostOpt = None,
    port: Annotated[int | None, typer.Option(help="Port (default settings).")] = None,
    dashboards_port: Annotated[int, typer.Option(
        help="Port of the Panel dashboards served next to the API; 0 to serve none.")] = 5006,
) -> None:
    """Run the API, the scheduler and the dashboards in one process until stopped."""
    settings = get_settings()
    app = _app(settings, run_scheduler=True, serve_api=True)
    host, port = host or settings.api_host, port or settings.api_port
    if dashboards_port:
        from panel_apps.app import serve as serve_dashboards  # Panel + Bokeh: seconds

        serve_dashboards(f"http://{host}:{port}", address=host, port=dashboards_port,
                         cache_root=settings.data_dir / "panel-cache", threaded=True)
        console.print(f"dashboards on http://{host}:{dashboards_port}/")
    _run(app, host, port)


def api(
    host: HostOpt = None,
    port: Annotated[int | None, typer.Option(help="Port (default settings).")] = None,
) -> None:
    """Run the REST API only (replicas behind a Service; the scheduler runs apart)."""
    settings = get_settings()
    _run(_app(settings, run_scheduler=False, serve_api=True),
         host or settings.api_host, port or settings.api_port)


def scheduler(
    host: HostOpt = None,
    port: Annotated[int, typer.Option(help="Port of its probes and metrics.")] = SCHEDULER_PORT,
) -> None:
    """Run the scheduler (one replica): it starts, watches and cancels jobs; it serves
    only /healthz, /readyz and /metrics."""
    settings = get_settings()
    _run(_app(settings, run_scheduler=True, serve_api=False), host or settings.api_host, port)


def warm(
    host: HostOpt = None,
    port: Annotated[int, typer.Option(help="Port of its job API, probes and metrics.")] = WARM_PORT,
) -> None:
    """Run the warm lane's workers (``warm_workers`` of them) for a scheduler in another
    process, which reaches them at ``warm_lane_url`` with ``warm_lane_token``."""
    from spark_jobs.backends import warm_pool
    from spark_jobs.backends.warm.service import create_app

    settings = get_settings()
    if settings.warm_workers < 1:
        raise typer.BadParameter("AVIP_WARM_WORKERS is 0: give the warm lane at least one worker")
    token = settings.warm_lane_token.get_secret_value() if settings.warm_lane_token else None
    host = host or settings.api_host
    if token is None and host not in ("127.0.0.1", "localhost", "::1"):
        raise typer.BadParameter(f"binding {host} needs AVIP_WARM_LANE_TOKEN: without it "
                                 "anyone who reaches the port could run jobs")
    _run(create_app(warm_pool(settings), token), host, port)


def register(app: typer.Typer) -> None:
    """Add the process commands to the root app."""
    app.command("serve")(serve)
    app.command("api")(api)
    app.command("scheduler")(scheduler)
    app.command("warm")(warm)
