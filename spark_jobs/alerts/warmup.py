"""A synthetic visit run through the stream's batch code before the query starts.

The first micro-batch of a fresh job costs two to three times a warm one:
Spark generates and compiles the projections' code, the JVM has not yet
compiled the Avro decoder and the JSON writer, the Python workers are forked
and import pandas and scipy, each opens its catalogue reader, and the
filters' output topics are created. A survey's stream is started before the
night's alerts arrive, so the job pays this at start instead of on the first
visit: :func:`warm_up` runs Rubin alerts from :mod:`simulate` — half of them
on catalogue stars, so the nearest-star path and the gaia_* JSON are taken —
and one undecodable packet (the Python fallback and the dead-letter path)
through the same decode → annotate → filters → message building as a real
batch. Nothing is written to Kafka; the raw topic is not read.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

import pandas as pd
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from spark_jobs.alerts import codec, simulate

log = logging.getLogger(__name__)

# The columns of Spark's Kafka source, which the batch code reads.
KAFKA_SOURCE = T.StructType(
    [
        T.StructField("key", T.BinaryType(), True),
        T.StructField("value", T.BinaryType(), True),
        T.StructField("topic", T.StringType(), True),
        T.StructField("partition", T.IntegerType(), True),
        T.StructField("offset", T.LongType(), True),
        T.StructField("timestamp", T.TimestampType(), True),
        T.StructField("timestampType", T.IntegerType(), True),
    ]
)
UNDECODABLE = b"\x09avip warm-up: not an alert"


def sample_stars(catalog: Any | None, n: int = 200) -> pd.DataFrame | None:
    """A few catalogue stars with a G magnitude (None without a catalogue)."""
    if catalog is None:
        return None
    cat = catalog.select("source_id", "ra", "dec", "phot_g_mean_mag")
    stars = cat.df.where("phot_g_mean_mag IS NOT NULL").limit(n).toPandas()
    return stars if len(stars) else None


def warm_up_records(
    spark: SparkSession, stars: pd.DataFrame | None, n_alerts: int, partitions: int
) -> DataFrame:
    """Kafka-source-shaped rows: a simulated visit around a catalogue star, plus one
    undecodable packet."""
    sim = simulate.RubinSimulator(stars=stars, seed=0)
    centre = (
        (float(stars["ra"].iloc[0]), float(stars["dec"].iloc[0])) if stars is not None else (0, 0)
    )
    plan = simulate.plan_night(1, [centre], n_alerts=n_alerts, star_fraction=0.5)[0]
    values = [codec.encode_rubin(a, sim.schema) for a in sim.alerts_for_visit(plan)]
    values.append(UNDECODABLE)
    now = dt.datetime.now(dt.UTC)
    n = len(values)
    table = pa.table(
        {
            "key": pa.array([str(i).encode() for i in range(n)], pa.binary()),
            "value": pa.array(values, pa.binary()),
            "topic": pa.array(["avip.warm-up"] * n),
            "partition": pa.array([i % partitions for i in range(n)], pa.int32()),
            "offset": pa.array(range(n), pa.int64()),
            "timestamp": pa.array([now] * n, pa.timestamp("us", tz="UTC")),
            "timestampType": pa.array([0] * n, pa.int32()),
        }
    )
    return spark.createDataFrame(table.to_pandas(), KAFKA_SOURCE).repartition(partitions)


def warm_up(
    spark: SparkSession,
    run_batch: Callable[[DataFrame], int],
    catalog: Any | None,
    n_alerts: int,
    rounds: int,
) -> float:
    """Run batches of the synthetic visit through ``run_batch`` (the stream's batch code
    minus the Kafka write; returns its message count) until one is no more than 10%
    faster than the one before (the JVM keeps compiling hot code over the first tens of
    thousands of alerts), at least ``rounds`` and at most ``3 * rounds``; the seconds
    it took."""
    t0 = time.perf_counter()
    partitions = spark.sparkContext.defaultParallelism
    records = warm_up_records(spark, sample_stars(catalog), n_alerts, partitions).cache()
    try:
        records.count()
        last = float("inf")
        for i in range(3 * rounds):
            t = time.perf_counter()
            n = run_batch(records)
            took = time.perf_counter() - t
            log.info("warm-up round %d: %d messages in %.2fs", i, n, took)
            if i + 1 >= rounds and took > 0.9 * last:
                break
            last = took
    finally:
        records.unpersist()
    return time.perf_counter() - t0
