"""Unit tests of the pure quota math (spark_jobs/backends/k8s/quota.py)."""

from __future__ import annotations

import random
import re

import pytest

from api.scheduling.drf import Pool
from spark_jobs.backends.k8s.quota import (
    Footprint,
    NamespaceBudget,
    QuotaError,
    SparkShape,
    capacity_problems,
    executor_cap,
    fits,
    limit_range,
    max_executors,
    memory_overhead_mb,
    namespace_for,
    pod_size,
    queue_for,
    resource_quota,
    yunikorn_config,
    yunikorn_queue,
)

DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def test_overhead_is_the_larger_of_384_mib_and_ten_percent():
    assert memory_overhead_mb(1024) == 384
    assert memory_overhead_mb(3840) == 384
    assert memory_overhead_mb(8192) == 820  # ceil(819.2)
    assert pod_size(1.5, 8192).memory_mb == 8192 + 820
    assert pod_size(1.5, 8192).millicores == 1500


def test_executor_cap_is_limited_by_the_scarcer_resource():
    budget = NamespaceBudget("alice", cores=8, memory_mb=32768, max_jobs=2)
    cpu_bound = SparkShape(1, 2048, 2, 4096, executors=100)
    # cpu: (8000 - 1000) // 2000 = 3 ; memory: (32768 - 2432) // 4506 = 6
    assert executor_cap(budget, cpu_bound) == 3
    mem_bound = SparkShape(1, 2048, 1, 8192, executors=100)
    # cpu: 7000 // 1000 = 7 ; memory: 30336 // 9012 = 3
    assert executor_cap(budget, mem_bound) == 3
    assert max_executors(budget, SparkShape(1, 2048, 1, 1024, executors=2)) == 2


def test_max_executors_never_lets_a_job_exceed_its_budget():
    rng = random.Random(7)
    for _ in range(500):
        budget = NamespaceBudget(
            "u", cores=rng.randint(1, 64), memory_mb=rng.randint(1024, 262144), max_jobs=1
        )
        shape = SparkShape(
            rng.choice([0.5, 1, 2]),
            rng.randint(512, 8192),
            rng.choice([0.5, 1, 2, 4]),
            rng.randint(512, 16384),
            rng.randint(0, 200),
        )
        try:
            n = max_executors(budget, shape)
        except QuotaError:
            one = SparkShape(*_fields(shape)[:4], executors=1)
            assert not fits(one, budget)
            continue
        granted = SparkShape(*_fields(shape)[:4], executors=n)
        assert fits(granted, budget)
        if n < shape.executors:  # capped: one more executor would not fit
            assert not fits(SparkShape(*_fields(shape)[:4], executors=n + 1), budget)


def _fields(shape: SparkShape) -> tuple:
    return (
        shape.driver_cores,
        shape.driver_memory_mb,
        shape.executor_cores,
        shape.executor_memory_mb,
        shape.executors,
    )


def test_a_job_whose_driver_and_one_executor_exceed_the_quota_is_refused():
    budget = NamespaceBudget("bob", cores=2, memory_mb=2048)
    with pytest.raises(QuotaError, match="larger pool"):
        max_executors(budget, SparkShape(1, 1024, 1, 1024, executors=1))


def test_fits_counts_what_the_namespace_already_runs():
    budget = NamespaceBudget("carol", cores=4, memory_mb=8192, max_jobs=2)
    shape = SparkShape(1, 1024, 1, 1024, executors=1)  # 2000m, 2 x 1408 MiB
    assert shape.footprint == Footprint(2000, 2816, 2)
    assert fits(shape, budget, Footprint(2000, 2816, 2))
    assert not fits(shape, budget, Footprint(2001, 0, 0))
    assert not fits(shape, budget, Footprint(0, 8192 - 2816 + 1, 0))


@pytest.mark.parametrize("user", ["alice", "Alice", "a.b", "a_b", "x" * 80, "émile", "---", "7of9"])
def test_namespace_names_are_dns_safe_and_short(user):
    ns = namespace_for(user)
    assert len(ns) <= 63 and DNS_1123.match(ns), ns
    assert ns.startswith("avip-u-")


def test_distinct_users_get_distinct_namespaces():
    users = ["alice", "Alice", "a.b", "a_b", "a-b", "x" * 80, "x" * 81]
    assert len({namespace_for(u) for u in users}) == len(users)
    assert namespace_for("alice") == "avip-u-alice"
    assert queue_for("alice") == "root.avip.alice"


def test_resource_quota_bounds_requests_and_limits_by_the_pool():
    budget = NamespaceBudget.from_pool("alice", Pool(cores=8, memory_mb=32768, max_jobs=4))
    quota = resource_quota(budget, space_bytes=20 * 2**30)
    hard = quota["spec"]["hard"]
    assert quota["metadata"]["namespace"] == "avip-u-alice"
    assert hard["requests.cpu"] == hard["limits.cpu"] == "8000m"
    assert hard["requests.memory"] == hard["limits.memory"] == "32768Mi"
    assert hard["count/sparkapplications.sparkoperator.k8s.io"] == "4"
    assert hard["persistentvolumeclaims"] == "1"
    assert hard["requests.storage"] == "20480Mi"
    assert resource_quota(budget)["spec"]["hard"]["persistentvolumeclaims"] == "0"


def test_limit_range_defaults_fit_inside_the_maximum():
    tiny = NamespaceBudget("anon", cores=0.1, memory_mb=128)
    limits = limit_range(tiny)["spec"]["limits"][0]
    assert limits["default"] == {"cpu": "100m", "memory": "128Mi"}
    assert limits["max"] == {"cpu": "100m", "memory": "128Mi"}


def test_yunikorn_queue_uses_millicores_and_bytes():
    queue = yunikorn_queue(NamespaceBudget("alice", cores=2, memory_mb=4096, max_jobs=3))
    assert queue["name"] == "alice"
    assert queue["maxapplications"] == 3
    assert queue["resources"]["max"] == {"vcore": "2000m", "memory": 4096 * 2**20}  # 2 cores


def test_yunikorn_config_places_by_provided_queue_then_user():
    budgets = {u: NamespaceBudget(u, cores=2, memory_mb=4096) for u in ("alice", "bob")}
    config = yunikorn_config(budgets, NamespaceBudget("cluster", cores=16, memory_mb=65536))
    partition = config["partitions"][0]
    assert [r["name"] for r in partition["placementrules"]] == ["provided", "user"]
    assert partition["placementrules"][1]["parent"]["value"] == "root.avip"
    avip = partition["queues"][0]["queues"][0]
    assert avip["name"] == "avip" and avip["parent"] is True
    assert [q["name"] for q in avip["queues"]] == ["alice", "bob"]


def test_capacity_problems_report_oversubscription():
    cluster = NamespaceBudget("cluster", cores=16, memory_mb=65536)
    ok = {u: NamespaceBudget(u, cores=8, memory_mb=32768) for u in ("a", "b")}
    assert capacity_problems(ok, cluster) == []
    three = {**ok, "c": NamespaceBudget("c", cores=1, memory_mb=1)}
    assert [p.split()[1] for p in capacity_problems(three, cluster)] == ["CPU", "memory"]
    assert capacity_problems(three, cluster, overcommit=1.5) == []
    huge = {"h": NamespaceBudget("h", cores=32, memory_mb=1024)}
    assert "alone exceeds" in capacity_problems(huge, cluster, overcommit=10)[0]


def test_bad_pools_and_shapes_are_refused_with_a_reason():
    with pytest.raises(QuotaError, match="cores > 0"):
        NamespaceBudget("x", cores=0, memory_mb=1)
    with pytest.raises(QuotaError, match="executors"):
        SparkShape(1, 1024, 1, 1024, executors=-1)
    with pytest.raises(QuotaError, match="empty"):
        namespace_for("")
