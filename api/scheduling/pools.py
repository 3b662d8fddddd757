"""Quota rules — the one place that says how much each user may use.

Every user gets the most generous default of their roles (an operator who is
also a scientist gets the operator pool); anonymous is the smallest. An
operator can replace a user's pool with an explicit one (the ``pools`` table).
A pool bounds what a user holds *at once* (cores, memory, running jobs) and
the bytes their user space may hold.
"""

from __future__ import annotations

from dataclasses import dataclass

from api.scheduling.drf import Pool

ROLES = ("operator", "developer", "scientist", "outreach", "anonymous")
MB = 1024 * 1024
GB = 1024 * MB


@dataclass(frozen=True)
class Quota:
    """A user's full quota: the scheduler pool plus the user-space byte limit."""

    cores: int
    memory_mb: int
    max_jobs: int
    space_bytes: int

    @property
    def pool(self) -> Pool:
        return Pool(cores=self.cores, memory_mb=self.memory_mb, max_jobs=self.max_jobs)


ROLE_DEFAULTS: dict[str, Quota] = {
    "operator": Quota(cores=16, memory_mb=65536, max_jobs=16, space_bytes=100 * GB),
    "developer": Quota(cores=8, memory_mb=32768, max_jobs=8, space_bytes=50 * GB),
    "scientist": Quota(cores=8, memory_mb=32768, max_jobs=4, space_bytes=20 * GB),
    "outreach": Quota(cores=2, memory_mb=4096, max_jobs=2, space_bytes=1 * GB),
    "anonymous": Quota(cores=1, memory_mb=2048, max_jobs=1, space_bytes=100 * MB),
}


def _rank(quota: Quota) -> tuple[int, int, int, int]:
    return (quota.cores, quota.memory_mb, quota.max_jobs, quota.space_bytes)


def quota_for(roles: list[str], override: Quota | None = None) -> Quota:
    """The effective quota of a user with ``roles`` (an operator's override wins).

    >>> quota_for(["anonymous"]).cores
    1
    >>> quota_for(["outreach", "scientist"]) == ROLE_DEFAULTS["scientist"]
    True
    """
    if override is not None:
        return override
    known = [ROLE_DEFAULTS[r] for r in roles if r in ROLE_DEFAULTS]
    if not known:
        return ROLE_DEFAULTS["anonymous"]
    return max(known, key=_rank)


def unknown_roles(roles: list[str]) -> list[str]:
    """Roles not in :data:`ROLES` (for error messages)."""
    return [r for r in roles if r not in ROLES]
