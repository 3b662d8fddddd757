"""Benchmark of the cluster finder on a synthetic sky with injected clusters.

    python benchmarks/cluster_finder.py --rows 5000000 --seed 1 --root /tmp/avip-bench-5m
    python benchmarks/cluster_finder.py --rows 300000 --root /tmp/avip-cf-300k   # smoke run
    (add --reuse to run again on a sky already ingested under --root)

1. Ingests the synthetic sky (``lakehouse.ingest_synthetic``; 5M rows -> 125
   injected clusters) into a fresh lakehouse, unless ``--reuse``.
2. Ours, timed: ``find_members`` on Spark ``local[2]`` (both cores). Stars
   get their overlapping fields by a broadcast join on a driver-made
   (pixel -> field) table; fields are packed into >= 32 buckets (about
   250k star copies at most each) of equal estimated cost, heaviest first,
   one task and one ``applyInPandas`` group per bucket; each field is
   clustered in a Python worker by
   ``per_field.cluster_field`` (RobustScaler, ``hdbscan.HDBSCAN``
   with its default algorithm -- boruvka_kdtree for 5-d data, approximate
   MST -- and ``core_dist_n_jobs=1``, then the significance test), BLAS
   limited to one thread per task; members are merged on the driver.
3. The peer, timed: the plain ``hdbscan`` package run serially over the same
   fields in this process pinned to one core (BLAS limited to one thread):
   the sky read with delta-rs into pandas, the same field plan
   (``plan_fields``, ``explode_into_fields``), the same ``cluster_field``
   (so the same ``hdbscan.HDBSCAN`` call and settings) field after field,
   the same merge. Both sides do the same work on the same fields; only
   the parallelism and Spark's overhead differ, so 2 cores bound the
   speed-up near 2x.
4. Scores both against the ground truth ``synthetic_members``: completeness
   (injected clusters recovered with >= 50 % of their members) and purity
   (found clusters whose majority is one injected cluster). Prints the load
   average next to each wall time (ratios from a busy machine mislead), and
   the CPU seconds each side used (Spark: driver + JVM + Python workers), a
   figure the load barely changes.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avi_plugins.bundled.cluster_finder.avi import ClusterFinderParams, find_members  # noqa: E402
from avi_plugins.bundled.cluster_finder.fields import (  # noqa: E402
    explode_into_fields,
    pixel_of_source,
    plan_fields,
)
from avi_plugins.bundled.cluster_finder.merge import merge_candidates  # noqa: E402
from avi_plugins.bundled.cluster_finder.per_field import INPUT_COLUMNS, cluster_field  # noqa: E402

log = logging.getLogger("bench.cluster_finder")


def score(members: pd.DataFrame, truth: pd.DataFrame) -> dict[str, float]:
    """Completeness and purity of found members against injected ones."""
    joined = members.merge(truth.rename(columns={"cluster_id": "true_id"}), on="source_id",
                           how="left").fillna({"true_id": -1})
    n_found = members["cluster_id"].nunique()
    majority = joined.groupby("cluster_id")["true_id"].agg(lambda s: s.value_counts().index[0])
    pure = int((majority >= 0).sum())
    sizes = truth.groupby("cluster_id").size()
    hits = joined[joined.true_id >= 0].groupby(["true_id", "cluster_id"]).size()
    best = hits.groupby(level=0).max() if len(hits) else pd.Series(dtype=float)
    recovered = int((best >= 0.5 * sizes.reindex(best.index)).sum())
    return {"found": n_found, "injected": len(sizes), "recovered": recovered,
            "completeness": recovered / max(len(sizes), 1), "purity": pure / max(n_found, 1)}


def cpu_seconds() -> float:
    """CPU seconds used so far by this process and its children (Spark's JVM and workers)."""
    total = time.process_time()
    try:
        import psutil
    except ImportError:  # psutil ships with the dev tools; without it, this process only
        return total
    for child in psutil.Process().children(recursive=True):
        try:
            times = child.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def baseline(root: str, params: ClusterFinderParams) -> tuple[pd.DataFrame, float]:
    """Serial, one core: read with delta-rs, same fields, plain hdbscan field after field."""
    from deltalake import DeltaTable
    from threadpoolctl import threadpool_limits

    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    threadpool_limits(1)  # BLAS/OpenMP on the one core too
    started = time.perf_counter()
    table = DeltaTable(f"{root}/gaia_source").to_pyarrow_table(columns=[*INPUT_COLUMNS, "ruwe"])
    stars = table.to_pandas()
    if params.ruwe_max is not None:
        stars = stars[stars["ruwe"] < params.ruwe_max]
    stars = stars[list(INPUT_COLUMNS)].dropna()
    settings = params.field_settings()
    order = params.deepest_order
    counts = pd.Series(pixel_of_source(stars["source_id"].to_numpy(), order)).value_counts()
    fields = plan_fields(counts, order, params.field_order, params.max_field_stars)
    exploded = explode_into_fields(stars, fields, params.margin_levels)
    parts = [cluster_field(group, settings) for _, group in exploded.groupby("field", sort=True)]
    members = merge_candidates(pd.concat(parts, ignore_index=True))
    return members, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--clusters", type=int, default=None, help="default: lakehouse's rule")
    parser.add_argument("--root", default=None, help="lakehouse root (default: a temp dir)")
    parser.add_argument("--reuse", action="store_true", help="root already holds the sky")
    parser.add_argument("--field-order", type=int, default=3)
    parser.add_argument("--margin-levels", type=int, default=2)
    parser.add_argument("--max-field-stars", type=int, default=20000)
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # pandas UDF workers: this venv

    from deltalake import DeltaTable

    from lakehouse import ingest_synthetic, open_catalog
    from lakehouse.session import get_spark

    root = args.root or tempfile.mkdtemp(prefix="avip-bench-clusters-")
    spark = get_spark("local[2]", app_name="bench-cluster-finder",
                      conf={"spark.ui.enabled": "false"})
    if not args.reuse:
        started = time.perf_counter()
        ingest_synthetic(spark, root, args.rows, args.seed, args.clusters)
        log.info("ingested %d rows in %.1f s into %s", args.rows, time.perf_counter() - started,
                 root)
    truth = DeltaTable(f"{root}/synthetic_members").to_pandas()
    rows = DeltaTable(f"{root}/gaia_source").to_pyarrow_dataset().count_rows()  # --reuse: real
    params = ClusterFinderParams(field_order=args.field_order, margin_levels=args.margin_levels,
                                 max_field_stars=args.max_field_stars)

    started, cpu_started = time.perf_counter(), cpu_seconds()
    members = find_members(open_catalog(root, spark=spark).df, params)
    spark_seconds = time.perf_counter() - started
    spark_cpu = cpu_seconds() - cpu_started
    spark_load = os.getloadavg()[0]
    spark_score = score(members, truth)
    log.info("spark: %.1f s, %s", spark_seconds, spark_score)
    spark.stop()

    print(f"rows={rows} injected={spark_score['injected']} field_order={args.field_order} "
          f"margin_levels={args.margin_levels} max_field_stars={args.max_field_stars}")
    print(f"spark local[2]: {spark_seconds:8.1f} s  found={spark_score['found']} "
          f"completeness={spark_score['completeness']:.3f} purity={spark_score['purity']:.3f} "
          f"load1={spark_load:.1f} cpu={spark_cpu:.1f} s")
    if not args.skip_baseline:
        cpu_started = time.process_time()
        base_members, base_seconds = baseline(root, params)
        base_cpu = time.process_time() - cpu_started
        base_score = score(base_members, truth)
        print(f"serial hdbscan, 1 core: {base_seconds:8.1f} s  found={base_score['found']} "
              f"completeness={base_score['completeness']:.3f} purity={base_score['purity']:.3f} "
              f"load1={os.getloadavg()[0]:.1f} cpu={base_cpu:.1f} s")
        cpu_ratio = base_cpu / spark_cpu
        print(f"speed-up (serial / spark): {base_seconds / spark_seconds:.2f}x wall; CPU seconds "
              f"serial / spark {cpu_ratio:.2f} (idle 2 cores: wall ratio <= {2 * cpu_ratio:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
