"""Is the process alive, is it ready, and its metrics: what Kubernetes probes and
Prometheus scrape.

``/healthz`` answers while the process serves at all. ``/readyz`` checks what this API
needs to do its work: the job store; S3 when spaces or the catalogue live there; the
Spark master when jobs go to a standalone cluster; 503 naming what failed. ``/metrics``
is Prometheus' text format, for the scrape token (``metrics_token``) or an operator: the
metrics name users and their queues.
"""

from __future__ import annotations

import hmac
import socket
from collections.abc import Callable
from typing import Annotated
from urllib.parse import urlparse

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy.orm import Session, sessionmaker

from api.db import ping
from api.deps import SettingsDep, bearer, get_current_user
from config.s3 import check_s3, is_s3
from config.settings import Settings

router = APIRouter(tags=["health"])
CHECK_TIMEOUT_S = 2.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Alive: the process answers."""
    return {"status": "alive"}


def check(probe: Callable[[], object]) -> str:
    """"ok" if ``probe`` returns, else why it failed (its first line)."""
    try:
        probe()
    except Exception as error:  # noqa: BLE001 — any failure is "not ready", with why
        first = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        return f"unreachable: {first[:200]}"
    return "ok"


def _connect(host: str, port: int) -> None:
    with socket.create_connection((host, port), timeout=CHECK_TIMEOUT_S):
        pass


def readiness(sessions: sessionmaker[Session], settings: Settings) -> dict[str, str]:
    """Each dependency this API needs, "ok" or why not."""
    checks = {"store": check(lambda: ping(sessions))}
    if settings.user_space_backend == "s3" or is_s3(settings.catalogue_root):
        checks["s3"] = check(lambda: check_s3(settings))
    if settings.job_backend == "standalone":
        master = urlparse(settings.spark_master)
        checks["spark_master"] = check(lambda: _connect(master.hostname or "",
                                                        master.port or 7077))
    return checks


@router.get("/readyz")
def readyz(request: Request, settings: SettingsDep) -> JSONResponse:
    """Ready: every dependency answers (503 naming those that do not)."""
    checks = readiness(request.app.state.sessions, settings)
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse({"ready": ready, "checks": checks},
                        status_code=status.HTTP_200_OK if ready else 503)


async def metrics_reader(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    settings: Settings = request.app.state.settings
    if credentials is not None and settings.metrics_token is not None and hmac.compare_digest(
            credentials.credentials, settings.metrics_token.get_secret_value()):
        return
    user = await get_current_user(request, credentials)
    if "operator" not in user.roles:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            "metrics are for operators and the scrape token (metrics_token)")


@router.get("/metrics", dependencies=[Depends(metrics_reader)],
            responses={200: {"content": {"text/plain": {}}}})
def metrics(request: Request) -> Response:
    """Prometheus' text exposition of this process's metrics."""
    return Response(request.app.state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
