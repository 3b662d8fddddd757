"""Which queued jobs start now: a pure decision function.

Between users, *dominant-resource fairness* (Ghodsi et al., NSDI 2011): the
user whose largest share of any cluster resource (cores or memory) is
smallest goes next; between equal shares, the user whose next job has waited
longest (so users who hold nothing take turns, whatever their names). Within a
user, higher priority first, then first come first served. Every user also has
a pool (cores, memory, concurrent jobs), and the cluster has a fixed capacity.
A lane with capacity of its own (the warm lane's workers) is walked apart, with
shares of that capacity: what a user runs on the cluster does not cost them
their turn at small jobs.

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
        any other lane uses ``capacity``. Each lane is walked apart, with shares of its
        own capacity, so a user's large job neither holds back nor slows down their small
        jobs in the warm lane; a queue position counts within the job's lane. Pools
        (what one user may hold at once) count every lane.

    Examples
    --------
    >>> cap = Capacity(cores=4, memory_mb=4096)
    >>> pools = {u: Pool(4, 4096, 4) for u in "ab"}
    >>> q = [QueuedJob(i, "a", 1, 512, seq=i) for i in range(4)]
    >>> q.append(QueuedJob(9, "b", 1, 512, seq=9))
    >>> decide(capacity=cap, running=[], queued=q, pools=pools).start
    [0, 9, 1, 2]
    """
    own = dict(lanes or {})
    capacities = {**own, "spark": capacity}

    def lane_of(job: QueuedJob | RunningJob) -> str:
        return job.lane if job.lane in own else "spark"

    used: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # cores, memory, jobs: pools
    lane_used: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for job in running:
        usage = used[job.user]
        usage[0] += job.cores
        usage[1] += job.memory_mb
        usage[2] += 1
        in_lane = lane_used[lane_of(job)][job.user]
        in_lane[0] += job.cores
        in_lane[1] += job.memory_mb

    by_lane: dict[str, list[QueuedJob]] = defaultdict(list)
    for job in queued:
        by_lane[lane_of(job)].append(job)
    decision = Decision()
    for lane in (*own, "spark"):  # small lanes first: their jobs end soonest
        if by_lane.get(lane):
            _walk(by_lane[lane], capacities[lane], lane_used[lane], used, pools, decision)
    return decision


def _walk(queued: list[QueuedJob], capacity: Capacity, lane_used: Mapping[str, list[int]],
          used: dict[str, list[int]], pools: Mapping[str, Pool], decision: Decision) -> None:
    """The fair walk over one lane's queue: shares are of the lane's capacity (what each
    user runs in the lane, plus what the walk placed ahead), ties go to the user whose next
    job has waited longest; ``used`` (pool usage, every lane) is updated for jobs started."""
    cap_cores = max(capacity.cores, 1)
    cap_mem = max(capacity.memory_mb, 1)
    free_cores, free_mem = capacity.cores, capacity.memory_mb
    for usage in lane_used.values():
        free_cores -= usage[0]
        free_mem -= usage[1]

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
    walk_share: dict[str, list[int]] = {
        u: list(lane_used.get(u, (0, 0))) for u in ordered}
    heap = [(_dominant(walk_share[u], cap_cores, cap_mem), ordered[u][0].seq, u)
            for u in ordered]
    heapq.heapify(heap)
    blocked: set[str] = set()
    positions = decision.positions
    position = 0
    while heap:
        user = heap[0][2]
        user_queue = ordered[user]
        job = user_queue.popleft()
        position += 1
        positions[job.id] = position
        if user not in blocked:
            pool = pools.get(user)
            usage = used[user]
            fits = (
                pool is not None
                and job.cores <= free_cores
                and job.memory_mb <= free_mem
                and usage[0] + job.cores <= pool.cores
                and usage[1] + job.memory_mb <= pool.memory_mb
                and usage[2] + 1 <= pool.max_jobs
            )
            if fits:
                decision.start.append(job.id)
                free_cores -= job.cores
                free_mem -= job.memory_mb
                usage[0] += job.cores
                usage[1] += job.memory_mb
                usage[2] += 1
            else:
                blocked.add(user)
        share = walk_share[user]
        share[0] += job.cores
        share[1] += job.memory_mb
        if user_queue:
            dominant = max(share[0] / cap_cores, share[1] / cap_mem)
            heapq.heapreplace(heap, (dominant, user_queue[0].seq, user))
        else:
            heapq.heappop(heap)


def _dominant(usage: list[int], cap_cores: int, cap_mem: int) -> float:
    return max(usage[0] / cap_cores, usage[1] / cap_mem)
