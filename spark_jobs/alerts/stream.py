"""The alert streaming job: raw topic → decode → Gaia annotation → user filters → topics.

A Spark Structured Streaming query reads the raw alert topic; each
micro-batch is decoded on the executors (Rubin and ZTF-style, see
:mod:`codec`), annotated with the nearest Gaia source (:mod:`annotate`),
evaluated against every enabled filter at once (one boolean column per
filter, exploded into (filter, alert) matches) and written through
:class:`sink.TransactionalSink`: matches to each filter's topic as JSON or
the original Avro, undecodable packets to the dead-letter topic with the
reason, all in one Kafka transaction per batch. Spark's checkpoint keeps the
input offsets; the sink's commit marker makes a replayed batch a no-op — a
restart neither loses nor duplicates output.

Entry point: ``python -m spark_jobs.alerts.stream --bootstrap HOST:PORT ...``.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.streaming import StreamingQuery

from spark_jobs.alerts import annotate, codec, rows
from spark_jobs.alerts.filters import AlertFilter
from spark_jobs.alerts.sink import Message, TransactionalSink, ensure_topics

log = logging.getLogger(__name__)

KAFKA_FIELDS = [
    T.StructField("key", T.BinaryType(), True),
    T.StructField("value", T.BinaryType(), True),
    T.StructField("kafka_partition", T.IntegerType(), True),
    T.StructField("kafka_offset", T.LongType(), True),
    T.StructField("raw_timestamp_ms", T.LongType(), True),
]
DECODED = T.StructType(
    rows.alert_schema(with_gaia=False).fields
    + KAFKA_FIELDS
    + [T.StructField("error", T.StringType(), True)]
)
ANNOTATED = T.StructType(
    DECODED.fields + [T.StructField(n, t, True) for n, t in rows.GAIA_COLUMNS.items()]
)
PAYLOAD_COLUMNS = [f.name for f in rows.alert_schema(with_gaia=True).fields] + ["raw_timestamp_ms"]

FilterSource = Callable[[], Sequence[AlertFilter]]


@dataclass
class StreamConfig:
    """Where the job reads and writes, and how it batches."""

    bootstrap: str
    checkpoint_dir: str
    raw_topic: str = "avip.alerts.raw"
    dead_letter_topic: str = "avip.alerts.deadletter"
    commit_topic: str = "avip.alerts.commits"
    job_name: str = "alerts"
    radius_arcsec: float = 5.0
    max_offsets_per_trigger: int = 20_000
    trigger_seconds: float = 0.0

    def __post_init__(self) -> None:
        if not 0 < self.radius_arcsec <= annotate.MAX_RADIUS_ARCSEC:
            raise ValueError(
                f"radius_arcsec must be in (0, {annotate.MAX_RADIUS_ARCSEC}], "
                f"got {self.radius_arcsec}"
            )
        if self.max_offsets_per_trigger < 1:
            raise ValueError("max_offsets_per_trigger must be at least 1")


def decode_batches(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """mapInArrow: Kafka records → normalised alert rows (``error`` set when undecodable)."""
    schema = to_arrow_schema(DECODED)
    empty = {f.name: None for f in rows.alert_schema(with_gaia=False).fields}
    for batch in batches:
        out = []
        for rec in batch.to_pylist():
            kafka = {
                "key": rec["key"],
                "value": rec["value"],
                "kafka_partition": rec["partition"],
                "kafka_offset": rec["offset"],
                "raw_timestamp_ms": rec["raw_timestamp_ms"],
            }
            try:
                row = rows.normalise(codec.decode(rec["value"]))
                row.update(kafka, error=None)
            except codec.MalformedAlert as err:
                row = {**empty, **kafka, "error": str(err)}
            except (KeyError, TypeError, ValueError) as err:  # decodable but not an alert
                row = {
                    **empty,
                    **kafka,
                    "error": f"not a usable alert: {type(err).__name__}: {err}",
                }
            out.append(row)
        yield pa.RecordBatch.from_pylist(out, schema=schema)


class AlertStream:
    """One running instance of the alert job (see module docstring)."""

    def __init__(
        self,
        spark: SparkSession,
        config: StreamConfig,
        filters: FilterSource,
        catalog: Any | None = None,
        fault: Callable[[int, str], None] | None = None,
    ):
        # Own SQL settings: non-ANSI so a filter comparing mixed types yields NULL, not a crash.
        self.spark = spark.newSession()
        self.spark.conf.set("spark.sql.ansi.enabled", "false")
        self.config = config
        self.filters = filters
        self.catalog = catalog
        self.fault = fault
        ensure_topics(config.bootstrap, [config.raw_topic, config.dead_letter_topic])
        self.sink = TransactionalSink(
            config.bootstrap, config.commit_topic, config.job_name, config.checkpoint_dir
        )
        self._empty = self.spark.createDataFrame([], ANNOTATED)
        self._checked: dict[str, bool] = {}
        self.stats: list[dict[str, int]] = []

    # -- filters --------------------------------------------------------------
    def usable_filters(self) -> list[AlertFilter]:
        """Enabled filters that Spark can analyse over the alert row (others are logged)."""
        usable = []
        for f in self.filters():
            if not f.enabled:
                continue
            if f.spark_sql not in self._checked:
                try:
                    self._empty.where(F.expr(f.spark_sql)).schema  # noqa: B018 - forces analysis
                    self._checked[f.spark_sql] = True
                except AnalysisException as err:
                    log.error("filter %s/%s cannot run and is skipped: %s", f.owner, f.name, err)
                    self._checked[f.spark_sql] = False
            if self._checked[f.spark_sql]:
                usable.append(f)
        return usable

    # -- one micro-batch ------------------------------------------------------
    def process_batch(self, batch: DataFrame, batch_id: int) -> None:
        if self.sink.already_written(batch_id):
            log.info("batch %d was written before a restart; skipping", batch_id)
            return
        decoded = (
            batch.select(
                "key",
                "value",
                "partition",
                "offset",
                F.unix_millis("timestamp").alias("raw_timestamp_ms"),
            )
            .mapInArrow(decode_batches, DECODED)
            .persist()
        )
        try:
            good = decoded.where(F.col("error").isNull())
            stars = self._stars_for(good)
            annotated = good.mapInArrow(
                annotate.annotate_batches(
                    stars, self.config.radius_arcsec, to_arrow_schema(ANNOTATED)
                ),
                ANNOTATED,
            )
            filters = self.usable_filters()
            ensure_topics(self.config.bootstrap, [f.topic for f in filters])
            messages = list(self._matches(annotated, filters)) + list(self._dead_letters(decoded))
            if self.fault:
                self.fault(batch_id, "before_write")
            n = self.sink.write(
                batch_id,
                messages,
                before_commit=(lambda: self.fault(batch_id, "before_commit"))
                if self.fault
                else None,
            )
            self.stats.append({"batch_id": batch_id, "messages": n})
            if self.fault:
                self.fault(batch_id, "after_commit")
        finally:
            decoded.unpersist()

    def _stars_for(self, good: DataFrame) -> dict[str, np.ndarray]:
        if self.catalog is None:
            return annotate.star_arrays(annotate.gaia_near_empty())
        pos = good.select("ra", "dec").toArrow()
        ra = pos.column("ra").to_numpy(zero_copy_only=False)
        dec = pos.column("dec").to_numpy(zero_copy_only=False)
        return annotate.star_arrays(annotate.gaia_near(self.catalog, ra, dec))

    def _matches(self, annotated: DataFrame, filters: list[AlertFilter]) -> Iterator[Message]:
        if not filters:
            return
        hits: Column = F.filter(
            F.array(*[F.when(F.expr(f.spark_sql), F.lit(i)) for i, f in enumerate(filters)]),
            lambda x: x.isNotNull(),
        )
        names = F.array(*[F.lit(f"{f.owner}/{f.name}") for f in filters])
        out = (
            annotated.select(F.explode(hits).alias("fi"), "key", "value", *PAYLOAD_COLUMNS)
            .select(
                "fi",
                "key",
                "value",
                F.to_json(
                    F.struct(F.element_at(names, F.col("fi") + 1).alias("filter"), *PAYLOAD_COLUMNS)
                ).alias("json"),
                F.to_json(F.struct(*rows.GAIA_COLUMNS)).alias("gaia"),
            )
            .toArrow()
        )
        for rec in out.to_pylist():
            f = filters[rec["fi"]]
            headers = [
                ("avip-filter", f"{f.owner}/{f.name}".encode()),
                ("avip-gaia", rec["gaia"].encode()),
            ]
            value = rec["json"].encode() if f.output_format == "json" else rec["value"]
            yield f.topic, rec["key"], value, headers

    def _dead_letters(self, decoded: DataFrame) -> Iterator[Message]:
        bad = (
            decoded.where(F.col("error").isNotNull())
            .select("key", "value", "error", "kafka_partition", "kafka_offset")
            .toArrow()
        )
        for rec in bad.to_pylist():
            headers = [
                ("avip-error", rec["error"].encode()),
                (
                    "avip-source",
                    json.dumps(
                        {
                            "topic": self.config.raw_topic,
                            "partition": rec["kafka_partition"],
                            "offset": rec["kafka_offset"],
                        }
                    ).encode(),
                ),
            ]
            yield self.config.dead_letter_topic, rec["key"], rec["value"] or b"", headers

    # -- the query ------------------------------------------------------------
    def start(self, available_now: bool = False) -> StreamingQuery:
        c = self.config
        source = (
            self.spark.readStream.format("kafka")
            .option("kafka.bootstrap.servers", c.bootstrap)
            .option("subscribe", c.raw_topic)
            .option("startingOffsets", "earliest")
            .option("maxOffsetsPerTrigger", str(c.max_offsets_per_trigger))
            .option("failOnDataLoss", "false")
            .load()
        )
        writer = (
            source.writeStream.foreachBatch(self.process_batch)
            .option("checkpointLocation", c.checkpoint_dir)
            .queryName(f"avip-{c.job_name}")
        )
        if available_now:
            writer = writer.trigger(availableNow=True)
        else:
            writer = writer.trigger(processingTime=f"{c.trigger_seconds} seconds")
        return writer.start()

    def close(self) -> None:
        self.sink.close()


def filters_from_json(path: str) -> FilterSource:
    """Filters from a JSON list of {owner, name, where, output_format?, enabled?}.

    Re-read every micro-batch."""
    from spark_jobs.alerts.filters import make_filter

    def load() -> list[AlertFilter]:
        with open(path) as fh:
            items = json.load(fh)
        return [
            make_filter(
                filter_id=i,
                owner=d["owner"],
                name=d["name"],
                where=d["where"],
                output_format=d.get("output_format", "json"),
                enabled=d.get("enabled", True),
            )
            for i, d in enumerate(items)
        ]

    return load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers")
    parser.add_argument("--checkpoint", required=True, help="checkpoint directory (keep it!)")
    parser.add_argument("--filters-json", help="filters file (default: the API's store)")
    parser.add_argument("--raw-topic", default="avip.alerts.raw")
    parser.add_argument("--dead-letter-topic", default="avip.alerts.deadletter")
    parser.add_argument("--radius-arcsec", type=float, default=5.0)
    parser.add_argument("--max-offsets", type=int, default=20_000)
    parser.add_argument("--lakehouse", help="catalogue root (default: settings)")
    parser.add_argument("--no-gaia", action="store_true", help="skip the Gaia annotation")
    parser.add_argument("--once", action="store_true", help="process what is there, then stop")
    parser.add_argument("--master", help="Spark master (default: settings)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    from spark_jobs.session import get_spark

    spark = get_spark(args.master, app_name="avip-alerts")
    catalog = None
    if not args.no_gaia:
        from lakehouse.catalog import open_catalog

        catalog = open_catalog(args.lakehouse, spark=spark)
    if args.filters_json:
        source = filters_from_json(args.filters_json)
    else:
        from api.alert_filter_store import enabled_filters_source

        source = enabled_filters_source()
    config = StreamConfig(
        bootstrap=args.bootstrap,
        checkpoint_dir=args.checkpoint,
        raw_topic=args.raw_topic,
        dead_letter_topic=args.dead_letter_topic,
        radius_arcsec=args.radius_arcsec,
        max_offsets_per_trigger=args.max_offsets,
    )
    job = AlertStream(spark, config, source, catalog)
    query = job.start(available_now=args.once)
    try:
        query.awaitTermination()
    except KeyboardInterrupt:
        query.stop()
    finally:
        job.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
