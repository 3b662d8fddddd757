"""Quota math for Spark on Kubernetes: a user's pool → their namespace's limits.

Pure functions, no cluster and no I/O, so the rules that keep one user from
starving another can be unit-tested exactly. A pool (cores, memory, how many
jobs at once) becomes, for the user's namespace:

* a ``ResourceQuota`` — Kubernetes refuses pods beyond it;
* a ``LimitRange`` — every container gets requests and limits, none larger
  than the whole namespace;
* a YuniKorn queue ``root.avip.<user>`` with the same maximum — the batch
  scheduler queues (instead of failing) pods that would exceed it;
* executor caps — ``spark.dynamicAllocation.maxExecutors`` for a job so that
  it can never ask for more than its grant.

Spark on Kubernetes sizes a pod's memory as heap + overhead; we always set the
overhead explicitly (:func:`memory_overhead_mb`) so the pod sizes computed
here are exactly the pods Spark creates.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from spark_jobs.backends.protocol import PoolLike

NAMESPACE_PREFIX = "avip-u-"
YUNIKORN_PARENT_QUEUE = "root.avip"
MIN_OVERHEAD_MB = 384
OVERHEAD_FACTOR = 0.10
#: Requests/limits the LimitRange gives a container that names none (sidecars, init).
DEFAULT_CONTAINER_MILLICORES = 250
DEFAULT_CONTAINER_MEMORY_MB = 256
#: Each Spark driver makes one headless Service and up to two ConfigMaps.
CONFIGMAPS_PER_JOB = 3


class QuotaError(ValueError):
    """A grant or pool that cannot be honoured within a namespace's quota."""


@dataclass(frozen=True)
class NamespaceBudget:
    """What one user may use at once on the cluster (from their pool).

    Attributes
    ----------
    user
        The platform user name (any string; mapped to a DNS-safe namespace).
    cores
        Total CPU cores of all their running pods together.
    memory_mb
        Total memory (MiB) of all their running pods, heap plus overhead.
    max_jobs
        How many Spark applications may run at once.
    """

    user: str
    cores: float
    memory_mb: int
    max_jobs: int = 1

    def __post_init__(self) -> None:
        if self.cores <= 0 or self.memory_mb <= 0 or self.max_jobs < 1:
            raise QuotaError(
                f"pool for {self.user!r} needs cores > 0, memory_mb > 0 and max_jobs >= 1 "
                f"(got cores={self.cores}, memory_mb={self.memory_mb}, max_jobs={self.max_jobs})"
            )

    @classmethod
    def from_pool(cls, user: str, pool: PoolLike) -> NamespaceBudget:
        """From the scheduler's ``Pool`` (cores, memory_mb, max_jobs) of that user."""
        return cls(user=user, cores=pool.cores, memory_mb=pool.memory_mb, max_jobs=pool.max_jobs)

    @property
    def millicores(self) -> int:
        return int(round(self.cores * 1000))


@dataclass(frozen=True)
class SparkShape:
    """The pods of one Spark application: one driver and up to ``executors`` executors."""

    driver_cores: float
    driver_memory_mb: int
    executor_cores: float
    executor_memory_mb: int
    executors: int

    def __post_init__(self) -> None:
        if min(self.driver_cores, self.executor_cores) <= 0:
            raise QuotaError("driver_cores and executor_cores must be > 0")
        if min(self.driver_memory_mb, self.executor_memory_mb) <= 0:
            raise QuotaError("driver_memory_mb and executor_memory_mb must be > 0")
        if self.executors < 0:
            raise QuotaError("executors must be >= 0")

    @property
    def driver_pod(self) -> PodSize:
        return pod_size(self.driver_cores, self.driver_memory_mb)

    @property
    def executor_pod(self) -> PodSize:
        return pod_size(self.executor_cores, self.executor_memory_mb)

    @property
    def footprint(self) -> Footprint:
        """Everything the application holds with all its executors up."""
        d, e = self.driver_pod, self.executor_pod
        return Footprint(
            millicores=d.millicores + self.executors * e.millicores,
            memory_mb=d.memory_mb + self.executors * e.memory_mb,
            pods=1 + self.executors,
        )


@dataclass(frozen=True)
class PodSize:
    millicores: int
    memory_mb: int  # heap + overhead: what the pod requests and is limited to


@dataclass(frozen=True)
class Footprint:
    millicores: int = 0
    memory_mb: int = 0
    pods: int = 0

    def __add__(self, other: Footprint) -> Footprint:
        return Footprint(
            self.millicores + other.millicores,
            self.memory_mb + other.memory_mb,
            self.pods + other.pods,
        )


def memory_overhead_mb(heap_mb: int) -> int:
    """Spark's off-heap allowance per pod: max(384 MiB, 10 % of the heap)."""
    return max(MIN_OVERHEAD_MB, math.ceil(heap_mb * OVERHEAD_FACTOR))


def pod_size(cores: float, heap_mb: int) -> PodSize:
    return PodSize(int(round(cores * 1000)), heap_mb + memory_overhead_mb(heap_mb))


def namespace_for(user: str) -> str:
    """The user's namespace: ``avip-u-<name>``, DNS-1123 safe, unique per user.

    Names that had to be changed (case, characters, length) get a short hash of
    the original so two users never share a namespace.
    """
    if not user:
        raise QuotaError("user name is empty")
    safe = re.sub(r"[^a-z0-9-]+", "-", user.lower()).strip("-") or "user"
    if safe != user or len(NAMESPACE_PREFIX + safe) > 63:
        digest = hashlib.sha256(user.encode()).hexdigest()[:8]
        safe = f"{safe[: 63 - len(NAMESPACE_PREFIX) - 9].rstrip('-')}-{digest}"
    return NAMESPACE_PREFIX + safe


def queue_for(user: str) -> str:
    """The user's YuniKorn leaf queue (the namespace name without its prefix)."""
    return f"{YUNIKORN_PARENT_QUEUE}.{namespace_for(user).removeprefix(NAMESPACE_PREFIX)}"


def cpu(millicores: int) -> str:
    return f"{millicores}m"


def mem(mb: int) -> str:
    return f"{mb}Mi"


def executor_cap(budget: NamespaceBudget, shape: SparkShape) -> int:
    """Most executors one job of this shape can hold inside the user's whole budget."""
    d, e = shape.driver_pod, shape.executor_pod
    free_cpu = budget.millicores - d.millicores
    free_mem = budget.memory_mb - d.memory_mb
    if free_cpu < 0 or free_mem < 0:
        return -1
    return min(free_cpu // e.millicores, free_mem // e.memory_mb)


def max_executors(budget: NamespaceBudget, shape: SparkShape) -> int:
    """``dynamicAllocation.maxExecutors`` for a granted job: its grant, never above the cap.

    Raises
    ------
    QuotaError
        If even the driver plus one executor do not fit the namespace quota.
    """
    cap = executor_cap(budget, shape)
    if cap < 1:
        need = shape.driver_pod.millicores + shape.executor_pod.millicores
        need_mb = shape.driver_pod.memory_mb + shape.executor_pod.memory_mb
        raise QuotaError(
            f"a driver and one executor need {need}m CPU and {need_mb} MiB, more than "
            f"{budget.user!r}'s namespace quota ({budget.millicores}m, {budget.memory_mb} MiB); "
            "ask for smaller executors or a larger pool"
        )
    return min(shape.executors, cap)


def fits(shape: SparkShape, budget: NamespaceBudget, in_use: Footprint = Footprint()) -> bool:
    """Whether a job of this shape fits next to what the namespace already runs."""
    total = in_use + shape.footprint
    return total.millicores <= budget.millicores and total.memory_mb <= budget.memory_mb


def pods_limit(budget: NamespaceBudget) -> int:
    """Pod count bound: as many half-core, 512 MiB-heap pods as the budget holds, plus drivers."""
    smallest = pod_size(0.5, 512)
    per_cpu = budget.millicores // smallest.millicores
    per_mem = budget.memory_mb // smallest.memory_mb
    return max(budget.max_jobs * 2, min(per_cpu, per_mem) + budget.max_jobs)


def resource_quota(budget: NamespaceBudget, space_bytes: int = 0) -> dict[str, Any]:
    """The namespace's ``ResourceQuota``: requests and limits both bounded by the pool.

    ``space_bytes`` > 0 allows the one user-space volume claim, of at most that size.
    """
    jobs = budget.max_jobs
    storage = {"requests.storage": mem(max(1, space_bytes // 2**20))} if space_bytes else {}
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "avip-pool", "namespace": namespace_for(budget.user)},
        "spec": {
            "hard": {
                "requests.cpu": cpu(budget.millicores),
                "limits.cpu": cpu(budget.millicores),
                "requests.memory": mem(budget.memory_mb),
                "limits.memory": mem(budget.memory_mb),
                "pods": str(pods_limit(budget)),
                "services": str(jobs),
                "configmaps": str(CONFIGMAPS_PER_JOB * jobs + 2),
                "persistentvolumeclaims": "1" if space_bytes else "0",
                **storage,
                "services.loadbalancers": "0",
                "services.nodeports": "0",
                "count/sparkapplications.sparkoperator.k8s.io": str(jobs),
            }
        },
    }


def limit_range(budget: NamespaceBudget) -> dict[str, Any]:
    """The namespace's ``LimitRange``: defaults for bare containers, no container above the pool."""
    default_cpu = min(DEFAULT_CONTAINER_MILLICORES, budget.millicores)
    default_mem = min(DEFAULT_CONTAINER_MEMORY_MB, budget.memory_mb)
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": "avip-pool", "namespace": namespace_for(budget.user)},
        "spec": {
            "limits": [
                {
                    "type": "Container",
                    "default": {"cpu": cpu(default_cpu), "memory": mem(default_mem)},
                    "defaultRequest": {"cpu": cpu(default_cpu), "memory": mem(default_mem)},
                    "max": {"cpu": cpu(budget.millicores), "memory": mem(budget.memory_mb)},
                }
            ]
        },
    }


def yunikorn_queue(budget: NamespaceBudget) -> dict[str, Any]:
    """The user's leaf queue: at most their pool, at most ``max_jobs`` applications.

    Quantities as Kubernetes writes them: vcore ``"4000m"`` (a bare 4000 means 4000 cores
    since YuniKorn 1.1), memory in bytes.
    """
    return {
        "name": queue_for(budget.user).rsplit(".", 1)[1],
        "submitacl": "*",
        "maxapplications": budget.max_jobs,
        "resources": {
            "max": {"vcore": f"{budget.millicores}m", "memory": budget.memory_mb * 1024 * 1024}
        },
    }


def yunikorn_config(
    budgets: Mapping[str, NamespaceBudget], capacity: NamespaceBudget
) -> dict[str, Any]:
    """YuniKorn ``queues.yaml``: an explicit queue per user under ``root.avip``.

    Placement: the queue the SparkApplication names (``provided``), else the
    submitting ``user``'s queue under ``root.avip`` — never created on the fly,
    so an unknown user cannot escape their limits.
    """
    return {
        "partitions": [
            {
                "name": "default",
                "placementrules": [
                    {"name": "provided", "create": False},
                    {
                        "name": "user",
                        "create": False,
                        "parent": {"name": "fixed", "value": YUNIKORN_PARENT_QUEUE},
                    },
                ],
                "queues": [
                    {
                        "name": "root",
                        "submitacl": "*",
                        "queues": [
                            {
                                "name": YUNIKORN_PARENT_QUEUE.split(".", 1)[1],
                                "parent": True,
                                "resources": {
                                    "max": {
                                        "vcore": f"{capacity.millicores}m",
                                        "memory": capacity.memory_mb * 1024 * 1024,
                                    }
                                },
                                "queues": [yunikorn_queue(b) for b in budgets.values()],
                            }
                        ],
                    }
                ],
            }
        ]
    }


def capacity_problems(
    budgets: Mapping[str, NamespaceBudget], capacity: NamespaceBudget, overcommit: float = 1.0
) -> list[str]:
    """Why these per-user budgets do not fit the cluster (empty when they do).

    ``overcommit`` > 1 lets the sum of user limits exceed the cluster (YuniKorn
    then queues the excess); no single user may ever exceed the cluster.
    """
    problems = []
    for name, b in budgets.items():
        if b.millicores > capacity.millicores or b.memory_mb > capacity.memory_mb:
            problems.append(f"user {name!r} alone exceeds the cluster capacity")
    total_cpu = sum(b.millicores for b in budgets.values())
    total_mem = sum(b.memory_mb for b in budgets.values())
    if total_cpu > capacity.millicores * overcommit:
        problems.append(
            f"user CPU limits sum to {total_cpu}m > {overcommit} x cluster {capacity.millicores}m"
        )
    if total_mem > capacity.memory_mb * overcommit:
        problems.append(
            f"user memory limits sum to {total_mem} MiB > {overcommit} x cluster "
            f"{capacity.memory_mb} MiB"
        )
    return problems
