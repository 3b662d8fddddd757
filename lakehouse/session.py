"""The one Spark session factory.

Builder in, builder out: each ``with_*`` function adds one concern to a
``SparkSession.Builder`` and :func:`get_spark` composes them. Every Spark
session of the platform — CLI, job runner, notes, tests — comes from here, so
Delta, the Maven-resolved jars and the Python interpreter are set the same way
for ``local[n]`` and for a ``spark://`` standalone cluster.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

import pyspark
from pyspark.sql import SparkSession

from config.s3 import check_s3, hadoop_conf, is_s3
from config.settings import Settings, get_settings

_VERSIONED_JAR = re.compile(r"^(?P<artifact>.+?)-\d[\w.\-]*\.jar$")


def _artifact(jar: Path) -> str:
    match = _VERSIONED_JAR.match(jar.name)
    return match.group("artifact") if match else jar.stem


def platform_jars(jars_dir: Path) -> list[Path]:
    """Jars from ``make jars`` that pyspark does not already ship.

    Maven also copies transitive artifacts Spark has (scala-library, netty,
    slf4j...); loading a second version of those breaks Spark, so only
    artifacts absent from pyspark's own ``jars/`` are returned.
    """
    if not jars_dir.is_dir():
        raise FileNotFoundError(
            f"no JVM jars at {jars_dir}: run `make jars` (Maven resolves Delta, hadoop-aws "
            "and the Kafka connector from jvm/pom.xml)"
        )
    spark_artifacts = {_artifact(j) for j in (Path(pyspark.__file__).parent / "jars").glob("*.jar")}
    jars = sorted(j for j in jars_dir.glob("*.jar") if _artifact(j) not in spark_artifacts)
    if not any(j.name.startswith("delta-spark") for j in jars):
        raise FileNotFoundError(f"delta-spark jar missing from {jars_dir}: run `make jars`")
    return jars


def with_delta(builder: SparkSession.Builder) -> SparkSession.Builder:
    """Enable Delta Lake's SQL extension and catalog."""
    return builder.config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension").config(
        "spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog"
    )


def with_jars(builder: SparkSession.Builder, jars: list[Path]) -> SparkSession.Builder:
    """Put jars on the driver and executor classpaths (shipped to executors by Spark)."""
    return builder.config("spark.jars", ",".join(str(j) for j in jars))


def with_python(builder: SparkSession.Builder) -> SparkSession.Builder:
    """Run Python workers with this interpreter, so executors see the same packages.

    ``local[n]`` workers are forked by the driver's JVM, which takes the
    interpreter from the PYSPARK_PYTHON variable it inherits, not from the
    Spark conf; the conf covers cluster executors.
    """
    os.environ["PYSPARK_PYTHON"] = sys.executable
    return builder.config("spark.pyspark.python", sys.executable).config(
        "spark.pyspark.driver.python", sys.executable
    )


def with_quiet_defaults(
    builder: SparkSession.Builder, shuffle_partitions: int
) -> SparkSession.Builder:
    """Settings for a small interactive platform: few shuffle partitions, Arrow on."""
    return (
        builder.config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.adaptive.enabled", "true")
        .config("spark.databricks.delta.snapshotPartitions", "2")
        .config("spark.sql.sources.parallelPartitionDiscovery.parallelism", "2")
    )


def with_catalogue_layout(builder: SparkSession.Builder) -> SparkSession.Builder:
    """Small Parquet row groups, so readers can skip inside a file on source_id."""
    # Here, not at the top: lakehouse.layout brings astropy and cdshealpix (+1.3-2 s measured),
    # which the API, importing this module for platform_jars (job submission), never needs.
    from lakehouse.layout import ROW_GROUP_BYTES

    return builder.config("spark.hadoop.parquet.block.size", str(ROW_GROUP_BYTES))


def with_s3(builder: SparkSession.Builder, settings: Settings) -> SparkSession.Builder:
    """Let Spark read and write ``s3a://`` (hadoop-aws) with the settings' S3 credentials.

    A no-op unless S3 is configured (``s3_bucket`` or an ``s3a://`` lakehouse).
    The credentials are checked first with one request (:func:`config.s3.check_s3`), so a wrong
    setting fails here, naming itself, instead of inside a Spark task.
    """
    if not (settings.s3_bucket or is_s3(settings.catalogue_root)):
        return builder
    check_s3(settings)
    for key, value in hadoop_conf(settings).items():
        builder = builder.config(f"spark.hadoop.{key}", value)
    return builder


def get_spark(
    master: str | None = None,
    app_name: str = "avip",
    conf: Mapping[str, str] | None = None,
    settings: Settings | None = None,
) -> SparkSession:
    """Return the platform's SparkSession (creating it on first call).

    Parameters
    ----------
    master
        ``local[n]`` or ``spark://host:port``; defaults to the settings' ``spark_master``.
    app_name
        Shown in the Spark UI and the standalone master's application list.
    conf
        Extra Spark configuration (e.g. ``spark.cores.max`` granted by the scheduler).
    settings
        Memory, jars, S3 credentials...; defaults to :func:`config.settings.get_settings`.
    """
    if settings is None:
        settings = get_settings()
    master = master or settings.spark_master
    builder = SparkSession.builder.master(master).appName(app_name)
    builder = with_catalogue_layout(with_quiet_defaults(builder, settings.spark_shuffle_partitions))
    builder = with_delta(with_jars(with_python(builder), platform_jars(settings.jars_dir)))
    builder = with_s3(builder, settings)
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"  # the driver JVM binds loopback only
    builder = (
        builder.config("spark.driver.memory", settings.spark_driver_memory)
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
    )
    if master.startswith("spark://"):
        builder = builder.config("spark.executor.memory", settings.spark_executor_memory)
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark
