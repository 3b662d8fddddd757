"""Fair share under contention: three users, one submitting ten times more.

Drives the real decision function (:func:`api.scheduling.drf.decide`) through a
discrete-time simulation of a small cluster. Every tick, finished jobs release
their cores, new jobs arrive, and ``decide`` picks what starts. Prints each
user's share of the busy cores over time, once with dominant-resource
fairness and once with plain first-come-first-served for contrast.

    python benchmarks/scheduler_sim.py [--ticks 600] [--cores 12] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass

from api.scheduling.drf import Capacity, Pool, QueuedJob, RunningJob, decide

USERS = {"heavy": 10.0, "light1": 1.0, "light2": 1.0}  # relative submission rates


@dataclass
class Running:
    user: str
    cores: int
    memory_mb: int
    ends_at: int


def simulate(ticks: int, cores: int, seed: int, fair: bool) -> list[dict[str, int]]:
    """Cores held per user at every tick."""
    rng = random.Random(seed)
    capacity = Capacity(cores=cores, memory_mb=cores * 4096)
    pools = {u: Pool(cores=cores, memory_mb=cores * 4096, max_jobs=cores) for u in USERS}
    queued: list[QueuedJob] = []
    durations: dict[int, int] = {}
    running: list[Running] = []
    held: list[dict[str, int]] = []
    next_id = 0
    base_rate = 0.5  # light: a job every 2 ticks (~2x their third); heavy: 5 per tick
    for tick in range(ticks):
        running = [r for r in running if r.ends_at > tick]
        for user, weight in USERS.items():
            arrivals = _poisson(rng, base_rate * weight)
            for _ in range(arrivals):
                job_cores = rng.choice((1, 1, 2))
                queued.append(QueuedJob(id=next_id, user=user, cores=job_cores,
                                        memory_mb=job_cores * 2048, seq=next_id))
                durations[next_id] = max(1, int(rng.expovariate(1 / 12)))
                next_id += 1
        if fair:
            start = decide(capacity=capacity,
                           running=[RunningJob(r.user, r.cores, r.memory_mb) for r in running],
                           queued=queued, pools=pools).start
        else:
            start = _fifo(queued, cores - sum(r.cores for r in running))
        chosen = set(start)
        for job in queued:
            if job.id in chosen:
                running.append(Running(job.user, job.cores, job.memory_mb,
                                       tick + durations[job.id]))
        queued = [j for j in queued if j.id not in chosen]
        held.append({u: sum(r.cores for r in running if r.user == u) for u in USERS})
    return held


def _poisson(rng: random.Random, mean: float) -> int:
    count, threshold, product = 0, pow(2.718281828459045, -mean), rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count


def _fifo(queued: list[QueuedJob], free: int) -> list[int]:
    start = []
    for job in sorted(queued, key=lambda j: j.seq):
        if job.cores > free:
            break
        start.append(job.id)
        free -= job.cores
    return start


def report(name: str, held: list[dict[str, int]], windows: int = 6) -> None:
    size = len(held) // windows
    print(f"\n{name}: share of busy cores per window of {size} ticks")
    print("window     " + "".join(f"{u:>9s}" for u in USERS))
    for w in range(windows):
        chunk = held[w * size:(w + 1) * size]
        busy = sum(sum(h.values()) for h in chunk) or 1
        shares = [sum(h[u] for h in chunk) / busy for u in USERS]
        print(f"{w * size:4d}-{(w + 1) * size - 1:<5d}" + "".join(f"{s:9.2f}" for s in shares))
    busy = sum(sum(h.values()) for h in held[size:]) or 1  # skip the warm-up window
    totals = {u: sum(h[u] for h in held[size:]) / busy for u in USERS}
    print("overall    " + "".join(f"{totals[u]:9.2f}" for u in USERS))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ticks", type=int, default=600)
    parser.add_argument("--cores", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    print(f"{args.cores} cores; submission rates heavy:light1:light2 = 10:1:1; "
          "jobs of 1-2 cores lasting ~12 ticks")
    report("dominant-resource fairness (api.scheduling.drf.decide)",
           simulate(args.ticks, args.cores, args.seed, fair=True))
    report("first come, first served (for contrast)",
           simulate(args.ticks, args.cores, args.seed, fair=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
