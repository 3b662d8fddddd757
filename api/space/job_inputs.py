"""A job's file inputs: the one place an AVI parameter becomes a path on this machine.

An AVI declares each file it reads as a :data:`avi_plugins.params.UserFile`
field. A submitted value is one of

* ``space://me/PATH``, or a bare ``PATH``: a file of the caller's own space;
* ``space://shared/SHARE_ID/PATH``: inside something shared with the caller
  (checked against the shares now, so a revoked share refuses a rerun too);

and is resolved here, through the user-space layer, to the local path the
job opens (with spaces on S3, a staged copy). Anything else — an absolute
path, ``..``, another scheme — is refused naming the field. No value is ever
resolved against the service's working directory, and no other parameter is
ever read as a path: a string that looks like one (absolute, ``~``, or a
URL with a storage scheme) in a non-file field is refused too, so an AVI
that forgot to declare a file cannot be pointed at another user's data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from api.errors import Invalid, NotFound
from api.models import User
from api.space.s3 import stage_input
from api.space.staged_inputs import staging_dir
from api.space.user_space import (
    JOBS_DIR,
    STAGED_INPUTS,
    LocalDirectoryBackend,
    SpaceError,
    normalize,
)
from api.store import shares as share_store
from config.settings import Settings

SPACE_SCHEME = "space://"
_PATH_LIKE = ("/", "~", "file:", "s3:", "s3a:", "s3n:", "gs:", "hdfs:", SPACE_SCHEME)
_HOW = "use space://me/PATH (a file of your space) or space://shared/SHARE_ID/PATH"


def job_dir(space_root: Path, user_name: str, job_id: int) -> Path:
    """Where a job's params, progress, logs and results live: the owner's space."""
    return space_root / user_name / JOBS_DIR / str(job_id)


def _local_file(
    space_root: Path, owner: str, path: str, reader: str, settings: Settings | None
) -> Path:
    """The local file a job reads for ``path`` of ``owner``'s space: on an S3 space, a copy
    staged for the ``reader``'s jobs — job results too, once published there; before, the
    local file the runner wrote."""
    local = LocalDirectoryBackend(space_root / owner).local_path(path)
    if settings is None or settings.user_space_backend != "s3":
        return local
    if path.split("/")[0] == JOBS_DIR and (path.split("/")[1:2] == [STAGED_INPUTS]
                                           or local.exists()):
        return local
    return stage_input(settings, owner=owner, path=path, staging=staging_dir(space_root, reader))


def _resolve_one(
    session: Session, *, user: User, space_root: Path, value: str, settings: Settings | None
) -> Path:
    if value.startswith(SPACE_SCHEME + "me/"):
        inner = normalize(value[len(SPACE_SCHEME + "me/"):])
        return _local_file(space_root, user.name, inner, user.name, settings)
    if value.startswith(SPACE_SCHEME + "shared/"):
        share_ref, _, rest = value[len(SPACE_SCHEME + "shared/"):].partition("/")
        if not share_ref.isdigit():
            raise SpaceError(f"{value!r}: SHARE_ID must be a share number; {_HOW}")
        share, owner = share_store.get_received(session, share_id=int(share_ref), user=user)
        base = share.target if share.kind == "file" else f"{JOBS_DIR}/{share.target}/result"
        inner = normalize(f"{base}/{rest}" if rest else base)
        if not (inner == base or inner.startswith(base.rstrip("/") + "/")):
            raise SpaceError(f"{value!r} is outside what was shared")
        return _local_file(space_root, owner.name, inner, user.name, settings)
    if value.startswith(_PATH_LIKE) or "://" in value:
        raise SpaceError(f"{value!r} is not a file of your space; {_HOW}")
    return _local_file(space_root, user.name, normalize(value), user.name, settings)


def resolve_inputs(
    session: Session,
    *,
    user: User,
    space_root: Path,
    params: dict[str, Any],
    file_fields: list[str],
    settings: Settings | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``params`` with each file field resolved to the local path the job opens, and the
    file fields as submitted (what a rerun resolves again). Raises :class:`Invalid` naming
    the field for a value that is not a readable file of the caller's, and for a path-like
    string in any other field. ``settings`` says where spaces live (None: local)."""
    resolved = dict(params)
    submitted: dict[str, Any] = {}
    for key, value in params.items():
        field = f"params.{key}"
        if key not in file_fields:
            if isinstance(value, str) and value.strip().startswith(_PATH_LIKE):
                raise Invalid(f"{field}: {value!r} looks like a path, but {key} is not a file "
                              "parameter of this AVI; only its file parameters read files",
                              field=field)
            continue
        if value is None:
            continue
        if not isinstance(value, str):
            raise Invalid(f"{field}: give one file as a string; {_HOW}", field=field)
        try:
            path = _resolve_one(session, user=user, space_root=space_root, value=value,
                                settings=settings)
        except (SpaceError, NotFound) as error:
            raise Invalid(f"{field}: {error}", field=field) from None
        if not path.exists():
            raise Invalid(f"{field}: {value!r} does not exist", field=field)
        resolved[key] = str(path)
        submitted[key] = value
    return resolved, submitted
