# ruff: noqa: E501
"""The pure scheduling decision: DRF between users, priority then FIFO within one,
pools and cluster capacity."""

from __future__ import annotations

from api.scheduling.drf import Capacity, Pool, QueuedJob, RunningJob, decide, never_fits

BIG = Pool(cores=100, memory_mb=100_000, max_jobs=100)


def q(job_id: int, user: str, cores: int = 1, mem: int = 1000, prio: int = 0) -> QueuedJob:
    return QueuedJob(id=job_id, user=user, cores=cores, memory_mb=mem, priority=prio, seq=job_id)


def test_heavy_submitter_gets_no_more_than_the_others() -> None:
    # alice queued 30 jobs before bob and carol queued 3 each; 9 cores free.
    queued = [q(i, "alice") for i in range(30)]
    queued += [q(100 + i, "bob") for i in range(3)] + [q(200 + i, "carol") for i in range(3)]
    d = decide(capacity=Capacity(9, 1_000_000), running=[], queued=queued,
               pools={u: BIG for u in ("alice", "bob", "carol")})
    owners = [("alice" if i < 100 else "bob" if i < 200 else "carol") for i in d.start]
    assert len(d.start) == 9
    assert owners.count("alice") == owners.count("bob") == owners.count("carol") == 3


def test_running_jobs_count_towards_the_share() -> None:
    # alice already holds 4 cores; bob gets the next 4 free cores before alice gets any.
    running = [RunningJob("alice", 1, 1000) for _ in range(4)]
    queued = [q(i, "alice") for i in range(4)] + [q(10 + i, "bob") for i in range(4)]
    d = decide(capacity=Capacity(8, 1_000_000), running=running, queued=queued,
               pools={"alice": BIG, "bob": BIG})
    assert sorted(d.start) == [10, 11, 12, 13]


def test_dominant_resource_is_compared_not_cores_alone() -> None:
    # alice holds 50% of memory with 1 core; bob holds 2 of 10 cores (20%). Bob is poorer
    # in his dominant resource, so bob goes first even though he holds more cores.
    running = [RunningJob("alice", 1, 5000), RunningJob("bob", 2, 100)]
    queued = [q(1, "alice", 1, 100), q(2, "bob", 1, 100)]
    d = decide(capacity=Capacity(10, 10_000), running=running, queued=queued,
               pools={"alice": BIG, "bob": BIG})
    assert d.positions == {2: 1, 1: 2}


def test_priority_then_fifo_within_a_user() -> None:
    queued = [q(1, "a"), q(2, "a", prio=5), q(3, "a"), q(4, "a", prio=5)]
    d = decide(capacity=Capacity(2, 1_000_000), running=[], queued=queued, pools={"a": BIG})
    assert d.start == [2, 4]
    assert d.positions == {2: 1, 4: 2, 1: 3, 3: 4}


def test_pool_limits_cores_memory_and_job_count() -> None:
    queued = [q(i, "a", cores=2, mem=1000) for i in range(10)]
    cap = Capacity(100, 1_000_000)
    assert len(decide(capacity=cap, running=[], queued=queued,
                      pools={"a": Pool(5, 100_000, 10)}).start) == 2  # 5 cores → two 2-core jobs
    assert len(decide(capacity=cap, running=[], queued=queued,
                      pools={"a": Pool(100, 3500, 10)}).start) == 3  # 3500 MB → three
    assert len(decide(capacity=cap, running=[], queued=queued,
                      pools={"a": Pool(100, 100_000, 1)}).start) == 1  # one at a time


def test_a_blocked_head_job_holds_back_the_users_later_jobs_but_not_others() -> None:
    # alice's first job needs 4 cores and only 3 are free: her small later job must not
    # overtake it, while bob's small job may use the free cores.
    queued = [q(1, "alice", cores=4), q(2, "alice", cores=1), q(3, "bob", cores=1)]
    d = decide(capacity=Capacity(3, 1_000_000), running=[], queued=queued,
               pools={"alice": BIG, "bob": BIG})
    assert d.start == [3]
    assert set(d.positions) == {1, 2, 3}


def test_user_without_pool_or_no_capacity_starts_nothing() -> None:
    queued = [q(1, "ghost"), q(2, "a")]
    assert decide(capacity=Capacity(4, 1_000_000), running=[], queued=queued,
                  pools={"a": BIG}).start == [2]
    assert decide(capacity=Capacity(1, 1_000_000), running=[RunningJob("a", 1, 1)],
                  queued=queued, pools={"a": BIG, "ghost": BIG}).start == []


def test_positions_cover_every_queued_job_exactly_once() -> None:
    queued = [q(i, f"u{i % 7}", cores=1 + i % 3, mem=500 * (1 + i % 5)) for i in range(500)]
    d = decide(capacity=Capacity(16, 64_000), running=[], queued=queued,
               pools={f"u{i}": Pool(8, 32_000, 4) for i in range(7)})
    assert sorted(d.positions.values()) == list(range(1, 501))
    assert sorted(d.positions) == list(range(500))
    started = [j for j in queued if j.id in set(d.start)]
    assert sum(j.cores for j in started) <= 16 and sum(j.memory_mb for j in started) <= 64_000
    for user in {j.user for j in started}:
        mine = [j for j in started if j.user == user]
        assert len(mine) <= 4 and sum(j.cores for j in mine) <= 8


def test_never_fits_names_the_limit() -> None:
    pool = Pool(cores=4, memory_mb=8000, max_jobs=2)
    assert never_fits(q(1, "a", cores=4, mem=8000), pool, Capacity(8, 16000)) is None
    assert "needs 5 cores but your pool allows at most 4" in never_fits(
        q(1, "a", cores=5), pool, Capacity(8, 16000)) or ""
    assert "the cluster allows at most 3" in (never_fits(
        q(1, "a", cores=4), pool, Capacity(3, 16000)) or "")
    assert "MB of memory" in (never_fits(q(1, "a", mem=9000), pool, Capacity(8, 16000)) or "")


def test_users_holding_nothing_take_turns_by_who_waited_longest() -> None:
    # 19 users at share 0, one slot: the one whose job was submitted first starts,
    # whatever the names (a tie broken by name starved the last names of the alphabet).
    queued = [QueuedJob(id=i, user=f"u{18 - i:02d}", cores=1, memory_mb=100, seq=i)
              for i in range(19)]
    pools = {f"u{i:02d}": BIG for i in range(19)}
    d = decide(capacity=Capacity(1, 1_000_000), running=[], queued=queued, pools=pools)
    assert d.start == [0]
    assert [d.positions[i] for i in range(19)] == list(range(1, 20))


def test_a_users_large_job_costs_them_no_turn_in_the_warm_lane() -> None:
    # alice holds 6 of 8 cluster cores with a large job; two warm slots, alice's and bob's
    # small jobs queued in turn: each gets one slot, alice's first (submitted first).
    running = [RunningJob("alice", 6, 6000)]
    queued = [QueuedJob(1, "alice", 1, 100, seq=1, lane="warm"),
              QueuedJob(2, "bob", 1, 100, seq=2, lane="warm"),
              QueuedJob(3, "bob", 1, 100, seq=3, lane="warm"),
              QueuedJob(4, "alice", 1, 100, seq=4, lane="warm")]
    d = decide(capacity=Capacity(8, 1_000_000), running=running, queued=queued,
               pools={"alice": BIG, "bob": BIG}, lanes={"warm": Capacity(2, 1 << 40)})
    assert d.start == [1, 2]
    assert d.positions == {1: 1, 2: 2, 3: 3, 4: 4}


def test_a_blocked_large_job_does_not_hold_back_the_same_users_small_ones() -> None:
    # alice's 8-core job waits for the cluster (bob holds 4 of 8); her later warm job starts.
    running = [RunningJob("bob", 4, 100)]
    queued = [q(1, "alice", cores=8), QueuedJob(2, "alice", 1, 100, seq=2, lane="warm")]
    d = decide(capacity=Capacity(8, 1_000_000), running=running, queued=queued,
               pools={"alice": BIG, "bob": BIG}, lanes={"warm": Capacity(1, 1 << 40)})
    assert d.start == [2]
    # and the warm lane's capacity is its own: a busy warm slot leaves the cluster free
    d = decide(capacity=Capacity(8, 1_000_000),
               running=[RunningJob("bob", 1, 100, lane="warm")],
               queued=[QueuedJob(3, "alice", 1, 100, seq=3, lane="warm"), q(4, "alice", cores=8)],
               pools={"alice": BIG, "bob": BIG}, lanes={"warm": Capacity(1, 1 << 40)})
    assert d.start == [4]
