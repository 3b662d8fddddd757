"""Which queued jobs start now: a pure decision function.

Between users, *dominant-resource fairness* (Ghodsi et al., NSDI 2011): the
user whose largest share of any cluster resource (cores or memory) is
smallest goes next. Within a user, higher priority first, then first come
first served. Every user also has a pool (cores, memory, concurrent jobs),
and the cluster has a fixed capacity.

The function walks the queue in that fair order ("progressive filling"): it
repeatedly takes the next job of the user with the smallest dominant share,
counting the jobs already placed ahead in the walk. A job that fits both the
free cluster resources and its user's remaining pool starts; a job that does
not blocks the rest of *its user's* queue (so a user's later small jobs never
overtake their own earlier or higher-priority ones), while other users may
still use the free resources. The walk also gives every queued job its queue
position. A heap keyed on dominant share makes it O(n log u) for n queued
jobs of u users, so 10,000 queued jobs take a few milliseconds.

No I/O, no clock, no database: inputs in, a :class:`Decision` out.
"""

from __future__ import annotations

import heapq
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Capacity:
    """Cores and memory (MB) available in total."""

    cores: int
    memory_mb: int


@dataclass(frozen=True)
class Pool:
    """One user's limits: at most this many cores, MB and concurrent jobs at once."""

    cores: int
    memory_mb: int
    max_jobs: int


@dataclass(frozen=True)
class RunningJob:
    user: str
    cores: int
    memory_mb: int
    lane: str = "spark"


@dataclass(frozen=True)
class QueuedJob:
    """A job waiting to run; ``seq`` orders submissions (smaller is earlier)."""

    id: int
    user: str
    cores: int
    memory_mb: int
    priority: int = 0
    seq: int = 0
    lane: str = "spark"


@dataclass
class Decision:
    """Jobs to start now, in order, and the 1-based queue position of every queued job."""

    start: list[int] = field(default_factory=list)
    positions: dict[int, int] = field(default_factory=dict)


def never_fits(job: QueuedJob, pool: Pool, capacity: Capacity) -> str | None:
    """Why ``job`` could never run under ``pool`` and ``capacity``, or None if it could.

    Used at submission: only such jobs are refused; everything else waits.
    """
    for what, need, limit, whose in (
        ("cores", job.cores, pool.cores, "your pool"),
        ("MB of memory", job.memory_mb, pool.memory_mb, "your pool"),
        ("cores", job.cores, capacity.cores, "the cluster"),
        ("MB of memory", job.memory_mb, capacity.memory_mb, "the cluster"),
    ):
        if need > limit:
            return f"the job needs {need} {what} but {whose} allows at most {limit}"
    if pool.max_jobs < 1:
        return "your pool allows no concurrent jobs"
    return None


def decide(
    *,
    capacity: Capacity,
    running: Iterable[RunningJob],
    queued: Iterable[QueuedJob],
    pools: Mapping[str, Pool],
    lanes: Mapping[str, Capacity] | None = None,
) -> Decision:
    """Choose the queued jobs to start now (see the module docstring for the rules).

    Parameters
    ----------
    capacity
        The cluster's total cores and memory.
    running
        Jobs holding resources now.
    queued
        Jobs waiting, in any order.
    pools
        Each user's pool; a user missing here gets no resources.
    lanes
        The capacity of each lane that has its own (the warm lane's workers); a job of
        any other lane uses ``capacity``. A job that does not fit blocks the rest of its
        user's queue *in its lane* only, so a user's large job waiting for the cluster
        never holds back their small jobs. Pools count every lane.

    Examples
    --------
    >>> cap = Capacity(cores=4, memory_mb=4096)
    >>> pools = {u: Pool(4, 4096, 4) for u in "ab"}
    >>> q = [QueuedJob(i, "a", 1, 512, seq=i) for i in range(4)]
    >>> q.append(QueuedJob(9, "b", 1, 512, seq=9))
    >>> decide(capacity=cap, running=[], queued=q, pools=pools).start
    [0, 9, 1, 2]
    """
    cap_cores = max(capacity.cores, 1)
    cap_mem = max(capacity.memory_mb, 1)
    own = dict(lanes or {})
    free: dict[str, list[int]] = {lane: [c.cores, c.memory_mb] for lane, c in own.items()}
    free["spark"] = [capacity.cores, capacity.memory_mb]
    used: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # cores, memory, jobs
    for job in running:
        usage = used[job.user]
        usage[0] += job.cores
        usage[1] += job.memory_mb
        usage[2] += 1
        lane_free = free[job.lane if job.lane in own else "spark"]
        lane_free[0] -= job.cores
        lane_free[1] -= job.memory_mb

    queues: dict[str, list[QueuedJob]] = defaultdict(list)
    for job in queued:
        queues[job.user].append(job)
    ordered: dict[str, deque[QueuedJob]] = {
        user: deque(sorted(jobs, key=lambda j: (-j.priority, j.seq, j.id)))
        for user, jobs in queues.items()
    }

    # Hypothetical allocation (running + everything placed ahead in the walk) drives the order.
    # The loop below runs once per queued job: shares are computed inline and the heap is
    # updated with one sift (heapreplace) instead of a pop and a push.
    walk_share: dict[str, list[int]] = {u: [used[u][0], used[u][1]] for u in ordered}
    heap = [(_dominant(walk_share[u], cap_cores, cap_mem), u) for u in ordered]
    heapq.heapify(heap)
    blocked: set[tuple[str, str]] = set()
    decision = Decision()
    positions = decision.positions
    position = 0
    while heap:
        user = heap[0][1]
        user_queue = ordered[user]
        job = user_queue.popleft()
        position += 1
        positions[job.id] = position
        lane = job.lane if job.lane in own else "spark"
        if (user, lane) not in blocked:
            pool = pools.get(user)
            usage = used[user]
            lane_free = free[lane]
            fits = (
                pool is not None
                and job.cores <= lane_free[0]
                and job.memory_mb <= lane_free[1]
                and usage[0] + job.cores <= pool.cores
                and usage[1] + job.memory_mb <= pool.memory_mb
                and usage[2] + 1 <= pool.max_jobs
            )
            if fits:
                decision.start.append(job.id)
                lane_free[0] -= job.cores
                lane_free[1] -= job.memory_mb
                usage[0] += job.cores
                usage[1] += job.memory_mb
                usage[2] += 1
            else:
                blocked.add((user, lane))
        share = walk_share[user]
        share[0] += job.cores
        share[1] += job.memory_mb
        if user_queue:
            dominant = max(share[0] / cap_cores, share[1] / cap_mem)
            heapq.heapreplace(heap, (dominant, user))
        else:
            heapq.heappop(heap)
    return decision


def _dominant(usage: list[int], cap_cores: int, cap_mem: int) -> float:
    return max(usage[0] / cap_cores, usage[1] / cap_mem)
