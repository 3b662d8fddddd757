"""The user space the settings select: a local directory or a prefix on S3."""

from __future__ import annotations

from api.space.claims import Claims
from api.space.s3 import s3_backend
from api.space.user_space import JOBS_DIR, TMP_DIR, UserSpace, space_for
from config.settings import Settings


def user_space(settings: Settings, user: str, quota_bytes: int) -> UserSpace:
    """The space of ``user`` on the backend the settings select (``user_space_backend``)."""
    if settings.user_space_backend == "local":
        return space_for(settings.space_root, user, quota_bytes)
    local = settings.space_root / user  # job results and upload claims stay on this host
    return UserSpace(s3_backend(settings, user), quota_bytes, claims=Claims(local / TMP_DIR),
                     results=local / JOBS_DIR)
