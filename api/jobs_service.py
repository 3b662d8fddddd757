"""Submitting and re-running jobs: the rules between a request and a job row.

Parameters are validated by the AVI's own pydantic model (the error names
each bad field); its file parameters are resolved by the user-space layer
(:func:`api.space.job_inputs.resolve_inputs`) to files the caller may read,
at every submission and every rerun alike. The AVI's
resource request is checked against the caller's pool and the cluster: only
a job that could *never* fit is refused; anything else waits in the queue.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from api.avis import AviCatalogue
from api.errors import Invalid, OverCap, Refused
from api.models import Job, User
from api.scheduling.drf import Capacity, QueuedJob, never_fits
from api.space.job_inputs import job_dir, resolve_inputs
from api.space.staged_inputs import held_for_submission
from api.store import jobs as job_store
from api.store import users as user_store
from avi_plugins.params import ParamsError, user_file_fields
from avi_plugins.sdk import AVI, Lane
from config.settings import Settings
from lakehouse.counts import table_rows

log = logging.getLogger("avip.jobs")
#: How long a table's row count is trusted (a new version changes it rarely and a little).
ROWS_TTL_S = 60.0
_rows_seen: dict[tuple[str, str], tuple[float, int | None]] = {}
_rows_lock = threading.Lock()


def catalogue_rows(settings: Settings, tables: Iterable[str]) -> dict[str, int]:
    """Rows of each named catalogue table, from its Delta log (kept :data:`ROWS_TTL_S`); a
    table that cannot be read is left out, so the job that needs it takes the Spark lane."""
    found: dict[str, int] = {}
    now = time.monotonic()
    for table in tables:
        key = (settings.catalogue_root, table)
        with _rows_lock:
            hit = _rows_seen.get(key)
        if hit is not None and now - hit[0] < ROWS_TTL_S:
            if hit[1] is not None:
                found[table] = hit[1]
            continue
        try:
            rows = table_rows(settings.catalogue_root, table, settings)
        except Exception as error:  # noqa: BLE001 — delta-rs has one error type for all
            log.warning("no row count for table %s: %s", table, error)
            rows = None  # not asked again before ROWS_TTL_S: every submission would wait
        with _rows_lock:
            _rows_seen[key] = (now, rows)
        if rows is not None:
            found[table] = rows
    return found


def lane_for(avi: AVI, params: Any, settings: Settings | None) -> Lane:
    """Where a job runs: the warm lane when the AVI declares it, the operator enabled it and
    the job is small by the AVI's own measure; otherwise its own Spark application."""
    if settings is None or not settings.warm_lane_enabled or "warm" not in avi.lanes:
        return "spark"
    try:
        return avi.lane(params, catalogue_rows(settings, avi.tables()))
    except Exception:  # noqa: BLE001 — a plugin's broken estimate costs it the warm lane only
        log.exception("%s: lane() failed; the job takes the Spark lane", avi.manifest.name)
        return "spark"


def submit(
    session: Session,
    *,
    user: User,
    catalogue: AviCatalogue,
    capacity: Capacity,
    space_root: Path,
    avi_name: str,
    version: str | None,
    params: dict[str, Any],
    priority: int = 0,
    pins: dict[str, Any] | None = None,
    rerun_of: int | None = None,
    settings: Settings | None = None,
) -> Job:
    """Validate and queue one job (committed); raises Invalid / NotFound / Refused with the reason.

    ``settings`` says where user spaces live (``space://`` inputs); None: local directories.
    Inputs staged from S3 are held from staging until the job row naming them is committed
    (:func:`api.space.staged_inputs.held_for_submission`), so they cannot be released in between.
    """
    if settings is not None:
        queued = job_store.count_in_state(session, owner=user, state="queued")
        if queued >= settings.max_queued_jobs_per_user:
            raise OverCap(f"you have {queued} jobs waiting, the most one user may queue "
                          f"(max_queued_jobs_per_user = {settings.max_queued_jobs_per_user}); "
                          "wait for some to start or cancel some")
    with held_for_submission(settings, user.name):
        avi = catalogue.get(avi_name, version)
        resolved, inputs = resolve_inputs(
            session, user=user, space_root=space_root, params=params,
            file_fields=user_file_fields(avi.Params), settings=settings,
        )
        try:
            parsed = avi.parse_params(resolved)
        except ParamsError as error:
            fields = ", ".join(p["field"] for p in error.problems)
            raise Invalid(str(error), field=f"params.{fields}") from None
        resources = avi.resources(parsed)
        lane = lane_for(avi, parsed, settings)
        # a warm job holds one worker: one core and its memory budget
        cores, memory_mb = ((1, settings.warm_job_memory_mb) if lane == "warm" and settings
                            else (resources.cores, resources.memory_mb))
        quota = user_store.quota_of(session, user=user)
        probe = QueuedJob(id=0, user=user.name, cores=cores, memory_mb=memory_mb)
        why = never_fits(probe, quota.pool, capacity)
        if why:
            raise Refused(f"{avi_name} cannot run: {why}")
        job = job_store.create_job(
            session, owner=user, avi=avi.manifest.name, avi_version=avi.manifest.version,
            params=parsed.model_dump(mode="json"), cores=cores,
            memory_mb=memory_mb, priority=priority, pins=pins, rerun_of=rerun_of,
            resources=resources.model_dump(),
            output_dir=lambda job_id: str(job_dir(space_root, user.name, job_id)),
            inputs=inputs, lane=lane,
        )
        session.commit()
    return job


def rerun(
    session: Session,
    *,
    user: User,
    job: Job,
    catalogue: AviCatalogue,
    capacity: Capacity,
    space_root: Path,
    settings: Settings | None = None,
) -> Job:
    """Queue a new job with ``job``'s AVI version and parameters, pinned to the table
    versions its provenance records (the job row's pins when it wrote none: it never ran).

    The file inputs are the ones submitted (``space://`` references), resolved again as
    for a new submission: a share revoked since refuses the rerun.
    """
    provenance_file = Path(job.output_dir) / "provenance.json"
    avi_name, version, pins = job.avi, job.avi_version, dict(job.pins)
    params = {**job.params, **job.inputs}
    if provenance_file.is_file():
        record = json.loads(provenance_file.read_text(encoding="utf-8"))
        for table, info in (record.get("tables") or {}).items():
            if isinstance(info, dict) and "version" in info:
                pins[table] = int(info["version"])
    return submit(
        session, user=user, catalogue=catalogue, capacity=capacity, space_root=space_root,
        avi_name=avi_name, version=version, params=params, priority=job.priority, pins=pins,
        rerun_of=job.id, settings=settings,
    )
