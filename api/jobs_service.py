"""Submitting and re-running jobs: the rules between a request and a job row.

Parameters are validated by the AVI's own pydantic model (the error names
each bad field); string parameters of the form ``space://...`` are resolved
to files the caller may read — ``space://me/PATH`` in their own space,
``space://shared/SHARE_ID/PATH`` in something shared with them — so shared
files can be AVI inputs without exposing anyone's storage layout. The AVI's
resource request is checked against the caller's pool and the cluster: only
a job that could *never* fit is refused; anything else waits in the queue.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from api.avis import AviCatalogue
from api.errors import Invalid, NotFound, Refused
from api.models import Job, User
from api.scheduling.drf import Capacity, QueuedJob, never_fits
from api.space.s3 import in_other_space, stage_input
from api.space.staged_inputs import held_for_submission, names_staged_copy, staging_dir
from api.space.user_space import JOBS_DIR, LocalDirectoryBackend, SpaceError, normalize
from api.store import jobs as job_store
from api.store import shares as share_store
from api.store import users as user_store
from avi_plugins.params import ParamsError
from config.settings import Settings

SPACE_SCHEME = "space://"


def job_dir(space_root: Path, user_name: str, job_id: int) -> Path:
    """Where a job's params, progress, logs and results live: the owner's space."""
    return space_root / user_name / JOBS_DIR / str(job_id)


def _space_file(
    space_root: Path, owner: str, path: str, reader: str, settings: Settings | None
) -> Path:
    """The local file a job reads for ``path`` of ``owner``'s space: job results are local
    on both backends; other files of an S3 space are staged for the ``reader``'s jobs."""
    if settings is None or settings.user_space_backend != "s3" or path.split("/")[0] == JOBS_DIR:
        return LocalDirectoryBackend(space_root / owner).local_path(path)
    return stage_input(settings, owner=owner, path=path, staging=staging_dir(space_root, reader))


def resolve_space_refs(
    session: Session, *, user: User, space_root: Path, params: dict[str, Any],
    trusted: bool = False, settings: Settings | None = None,
) -> dict[str, Any]:
    """Replace ``space://`` strings (top-level params) by checked local paths.

    Absolute paths into another user's space (or, with spaces on S3 per
    ``settings``, S3 URLs into another user's prefix) are refused unless
    ``trusted`` (a re-run of params this service resolved itself). A path to a staged copy
    that was released (its jobs finished) is refused, saying to submit the space:// path again.
    """
    resolved = dict(params)
    own_space = (space_root / user.name).resolve()
    staging = staging_dir(space_root, user.name)
    for key, value in params.items():
        released = isinstance(value, str) and names_staged_copy(value, staging) is not None
        if released and not Path(value).exists():
            raise Invalid(
                f"params.{key}: {value!r} was a copy of a space:// input staged for an earlier "
                "job and was removed when that job finished; submit the job again with the "
                "input's space:// path",
                field=f"params.{key}",
            )
        if settings is not None and settings.user_space_backend == "s3" and not trusted:
            if isinstance(value, str) and in_other_space(settings, value, user.name):
                raise Invalid(
                    f"params.{key}: {value!r} is in another user's space; "
                    "use space://shared/SHARE_ID/PATH for files shared with you",
                    field=f"params.{key}",
                )
        if isinstance(value, str) and value.startswith("/") and not trusted:
            target = Path(value).resolve()
            outside_own = own_space not in (target, *target.parents)
            if space_root.resolve() in target.parents and outside_own:
                raise Invalid(
                    f"params.{key}: {value!r} is in another user's space; "
                    "use space://shared/SHARE_ID/PATH for files shared with you",
                    field=f"params.{key}",
                )
        if not (isinstance(value, str) and value.startswith(SPACE_SCHEME)):
            continue
        ref = value[len(SPACE_SCHEME):]
        try:
            if ref.startswith("me/"):
                path = _space_file(space_root, user.name, normalize(ref[3:]), user.name, settings)
            elif ref.startswith("shared/"):
                share_id, _, rest = ref[len("shared/"):].partition("/")
                share, owner = share_store.get_received(
                    session, share_id=int(share_id), user=user
                )
                base = share.target if share.kind == "file" else f"{JOBS_DIR}/{share.target}/result"
                inner = normalize(f"{base}/{rest}" if rest else base)
                if not (inner == base or inner.startswith(base.rstrip("/") + "/")):
                    raise SpaceError(f"{value!r} is outside what was shared")
                path = _space_file(space_root, owner.name, inner, user.name, settings)
            else:
                raise SpaceError("use space://me/PATH or space://shared/SHARE_ID/PATH")
        except (SpaceError, ValueError, NotFound) as error:
            raise Invalid(f"params.{key}: {error}", field=f"params.{key}") from None
        if not path.exists():
            raise Invalid(f"params.{key}: {value!r} does not exist", field=f"params.{key}")
        resolved[key] = str(path)
    return resolved


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
    with held_for_submission(settings, user.name):
        avi = catalogue.get(avi_name, version)
        resolved = resolve_space_refs(session, user=user, space_root=space_root, params=params,
                                      trusted=rerun_of is not None, settings=settings)
        try:
            parsed = avi.parse_params(resolved)
        except ParamsError as error:
            fields = ", ".join(p["field"] for p in error.problems)
            raise Invalid(str(error), field=f"params.{fields}") from None
        resources = avi.resources(parsed)
        quota = user_store.quota_of(session, user=user)
        probe = QueuedJob(id=0, user=user.name, cores=resources.cores,
                          memory_mb=resources.memory_mb)
        why = never_fits(probe, quota.pool, capacity)
        if why:
            raise Refused(f"{avi_name} cannot run: {why}")
        job = job_store.create_job(
            session, owner=user, avi=avi.manifest.name, avi_version=avi.manifest.version,
            params=parsed.model_dump(mode="json"), cores=resources.cores,
            memory_mb=resources.memory_mb, priority=priority, pins=pins, rerun_of=rerun_of,
            resources=resources.model_dump(),
            output_dir=lambda job_id: str(job_dir(space_root, user.name, job_id)),
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
    """Queue a new job with the AVI version, params and table versions of ``job``'s provenance.

    Falls back to the job row when the runner wrote no provenance (e.g. it never started).
    """
    provenance_file = Path(job.output_dir) / "provenance.json"
    avi_name, version, params, pins = job.avi, job.avi_version, job.params, dict(job.pins)
    if provenance_file.is_file():
        record = json.loads(provenance_file.read_text(encoding="utf-8"))
        avi_info = record.get("avi") or {}
        avi_name = avi_info.get("name", avi_name)
        version = avi_info.get("version", version)
        params = record.get("params", params)
        for table, info in (record.get("tables") or {}).items():
            if isinstance(info, dict) and "version" in info:
                pins[table] = int(info["version"])
    return submit(
        session, user=user, catalogue=catalogue, capacity=capacity, space_root=space_root,
        avi_name=avi_name, version=version, params=params, priority=job.priority, pins=pins,
        rerun_of=job.id, settings=settings,
    )
