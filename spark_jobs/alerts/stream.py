"""The alert streaming job: raw topic → decode → Gaia annotation → user filters → topics.

A Spark Structured Streaming query reads the raw alert topic; each
micro-batch runs as ONE Spark job: records are decoded in the JVM
(:mod:`decode`: ``from_avro`` for Rubin packets, the Python codec for the
rest), annotated with the nearest Gaia source by a pandas UDF that reads the
catalogue in-process (:mod:`annotate`), evaluated against every enabled
filter at once (an array of the indices of the filters an alert matches) and
serialised to JSON once per alert; only the matching alerts and the dead
letters come back to the driver, which writes them through
:class:`sink.TransactionalSink`: matches to each filter's topic as JSON (the
alert's JSON with the filter's name prepended) or the original Avro,
undecodable packets to the dead-letter topic with the reason, all in one
Kafka transaction per batch. Spark's checkpoint keeps the input offsets; the
sink's commit marker makes a replayed batch a no-op — a restart neither loses
nor duplicates output.

Latency: :meth:`AlertStream.start` first runs a synthetic visit through the
batch code (:mod:`warmup`), so the first real visit does not pay the JVM's
and Python workers' start-up; and a batch that catches only the start of a
visit's burst waits for it to land and takes all of it (:mod:`settle`; the
offsets it took ride in the commit marker), so a visit is one Spark job, not
two. A batch with nothing new runs no job.

The job is handed its filters: a callable re-read every micro-batch (new
filters apply at once) and a callback told, once, of a filter it had to skip
because Spark cannot analyse it over the alert row; this package never opens
the job store.

Entry point: ``avip alerts stream --bootstrap HOST:PORT --checkpoint DIR ...``
(:mod:`cli.alerts`, which reads the filters from the job store and switches off
the ones the job reports).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from pyspark.errors import AnalysisException, PySparkException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.streaming import StreamingQuery

from config.kafka import COMMIT_TOPIC, DEAD_LETTER_TOPIC, KafkaAuth, spark_kafka_options
from config.settings import Settings
from spark_jobs.alerts import annotate, decode, isolation, rows, settle, warmup
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
OnDisabled = Callable[[AlertFilter, str], None]  # (the filter, why it cannot run)


def log_disabled(f: AlertFilter, reason: str) -> None:
    """The default ``on_disabled``: the log is the only record."""
    log.error("filter %s/%s cannot run and is skipped: %s", f.owner, f.name, reason)


@dataclass
class StreamConfig:
    """Where the job reads and writes, and how it batches."""

    bootstrap: str
    checkpoint_dir: str  # local path, file:// or s3a:// (AVIP_S3_* settings); keep it
    auth: KafkaAuth | None = None  # the stream's principal (avip-stream) on a SCRAM broker
    raw_topic: str = "avip.alerts.raw"
    dead_letter_topic: str = DEAD_LETTER_TOPIC
    commit_topic: str = COMMIT_TOPIC
    job_name: str = "alerts"
    radius_arcsec: float = 5.0
    max_offsets_per_trigger: int = 20_000
    trigger_seconds: float = 0.0
    min_partitions: int | None = None  # Spark tasks per batch; default: the cores Spark has
    warm_up_alerts: int = 5_000  # synthetic alerts run through the plan at start (0: none)
    warm_up_rounds: int = 3  # at least; more while a round is >10% faster than the last
    # A batch waits for the raw topic to be quiet this long (at most settle_max_seconds) and
    # takes what arrived after its end too, so a visit's burst is one batch (see settle).
    settle_seconds: float = 0.1
    settle_max_seconds: float = 0.5
    # A batch whose Spark job runs longer than this has its filters timed one by one; a
    # filter over it alone is switched off (see isolation).
    filter_budget_s: float = 30.0

    def __post_init__(self) -> None:
        if not 0 < self.radius_arcsec <= annotate.MAX_RADIUS_ARCSEC:
            raise ValueError(
                f"radius_arcsec must be in (0, {annotate.MAX_RADIUS_ARCSEC}], "
                f"got {self.radius_arcsec}"
            )
        if self.max_offsets_per_trigger < 1:
            raise ValueError("max_offsets_per_trigger must be at least 1")
        settle.checkpoint_scheme(self.checkpoint_dir)  # a location settling can read


class AlertStream:
    """One running instance of the alert job (see module docstring)."""

    def __init__(
        self,
        spark: SparkSession,
        config: StreamConfig,
        filters: FilterSource,
        catalog: Any | None = None,
        fault: Callable[[int, str], None] | None = None,
        *,
        on_disabled: OnDisabled = log_disabled,
        settings: Settings | None = None,
    ):
        # Own SQL settings: non-ANSI so a filter comparing mixed types yields NULL, not a crash.
        self.spark = spark.newSession()
        self.spark.conf.set("spark.sql.ansi.enabled", "false")
        # The alert structs have a few hundred leaf fields; past the default 100 Spark
        # drops whole-stage codegen and interprets the projections row by row.
        self.spark.conf.set("spark.sql.codegen.maxFields", "2000")
        self.config = config
        self.filters = filters
        self.on_disabled = on_disabled
        # The catalogue view's table and pinned version, read in-process on the executors.
        self.catalog = catalog
        self.gaia = (
            annotate.GaiaReader.for_catalog(catalog, settings) if catalog is not None else None
        )
        self.fault = fault
        ensure_topics(config.bootstrap, [config.raw_topic, config.dead_letter_topic],
                      auth=config.auth)
        self._topics = {config.raw_topic, config.dead_letter_topic}
        self.sink = TransactionalSink(
            config.bootstrap, config.commit_topic, config.job_name, config.checkpoint_dir,
            auth=config.auth,
        )
        self.offset_log = settle.OffsetLog(config.checkpoint_dir, settings)
        self._empty = self.spark.createDataFrame([], ANNOTATED)
        self._settler: settle.Settler | None = None
        self._checked: dict[str, str | None] = {}  # spark_sql -> why Spark refuses it, or None
        # filter id -> (revision, condition) last told to on_disabled: a filter re-enabled or
        # edited since has another revision and is checked and reported afresh
        self._reported: dict[int, tuple[str, str]] = {}
        # filter id -> (revision, condition) that raised or ran over budget: skipped until
        # its owner changes it (the store's callback also switches it off there)
        self._failed: dict[int, tuple[str, str]] = {}
        self.stats: list[dict[str, int]] = []

    # -- filters --------------------------------------------------------------
    def usable_filters(self) -> list[AlertFilter]:
        """Enabled filters that Spark can analyse over the alert row. Each one it cannot is
        skipped and reported to ``on_disabled`` once (again later only if that raised)."""
        usable = []
        filters = [f for f in self.filters() if f.enabled]
        current = {f.filter_id for f in filters}
        self._reported = {i: key for i, key in self._reported.items() if i in current}
        for f in filters:
            if self._failed.get(f.filter_id) == (f.revision, f.spark_sql):
                continue
            if f.spark_sql not in self._checked:
                try:
                    self._empty.where(F.expr(f.spark_sql)).schema  # noqa: B018 - forces analysis
                    self._checked[f.spark_sql] = None
                except AnalysisException as err:
                    self._checked[f.spark_sql] = str(err).splitlines()[0]
            reason = self._checked[f.spark_sql]
            if reason is None:
                usable.append(f)
            else:
                self._report_disabled(
                    f, f"Spark cannot analyse the filter over the alert row: {reason}")
        return usable

    def _report_disabled(self, f: AlertFilter, reason: str) -> None:
        key = (f.revision, f.spark_sql)
        if self._reported.get(f.filter_id) == key:
            return
        try:
            self.on_disabled(f, reason)
        except Exception:  # one filter's bookkeeping must not stop everyone's stream
            log.exception("could not report filter %s/%s as disabled; will retry", f.owner, f.name)
            return
        self._reported[f.filter_id] = key

    def _ensure_filter_topics(self, filters: list[AlertFilter]) -> None:
        new = {f.topic for f in filters} - self._topics
        if new:
            ensure_topics(self.config.bootstrap, new, auth=self.config.auth)
            self._topics |= new

    # -- one micro-batch ------------------------------------------------------
    def annotated(self, records: DataFrame) -> DataFrame:
        """Kafka records → the ANNOTATED columns (decoded, normalised, gaia_* added)."""
        decoded = decode.decode(records)
        gaia = annotate.annotation_udf(self.gaia, self.config.radius_arcsec)(
            F.col("ra"), F.col("dec")
        )
        out = decoded.select("*", gaia.alias("_gaia"))
        return out.select(*[f.name for f in DECODED.fields], "_gaia.*")

    def process_batch(self, batch: DataFrame, batch_id: int) -> None:
        if self.sink.already_written(batch_id):
            log.info("batch %d was written before a restart; skipping", batch_id)
            return
        t0 = time.perf_counter()
        filters = self.usable_filters()
        self._ensure_filter_topics(filters)
        t_settle = time.perf_counter()
        records, processed_to = self._settled_records(batch, batch_id)
        t_settle = time.perf_counter() - t_settle
        if records is None:
            log.info(
                "batch %d: nothing new (empty, or taken by an earlier batch); no job", batch_id
            )
            return
        annotated = self.annotated(records)
        try:
            out = self._output(annotated, filters).toArrow()  # the batch's one job
        except PySparkException as error:  # a filter raised (or the batch is bad): find out
            annotated = annotated.persist()
            try:
                filters = self._without_failing(annotated, filters, error)
                out = self._output(annotated, filters).toArrow()
            finally:
                annotated.unpersist()
        t1 = time.perf_counter()
        if t1 - t0 - t_settle > self.config.filter_budget_s and filters:
            self._without_failing(annotated.persist(), filters, None)  # for the next batches
            annotated.unpersist()
        messages = list(self._messages(out, filters))
        t2 = time.perf_counter()
        if self.fault:
            self.fault(batch_id, "before_write")
        n = self.sink.write(
            batch_id,
            messages,
            before_commit=(lambda: self.fault(batch_id, "before_commit")) if self.fault else None,
            marker_extra={"processed_to": {str(p): o for p, o in processed_to.items()}},
        )
        t3 = time.perf_counter()
        self.stats.append({"batch_id": batch_id, "messages": n, "records": out.num_rows,
                           "seconds": round(t3 - t0, 4)})
        log.info(
            "batch %d: %d records, %d messages; settle %.2fs, spark %.2fs, messages %.2fs, "
            "kafka %.2fs",
            batch_id,
            out.num_rows,
            n,
            t_settle,
            t1 - t0 - t_settle,
            t2 - t1,
            t3 - t2,
        )
        if self.fault:
            self.fault(batch_id, "after_commit")

    def _without_failing(self, rows: DataFrame, filters: list[AlertFilter],
                         error: Exception | None) -> list[AlertFilter]:
        """``filters`` less those that raise over ``rows`` or run over the budget alone,
        each reported to ``on_disabled`` (their owners see why; the others go on). With
        ``error`` (the batch's job raised) and no filter to blame, ``error`` is raised: the
        batch itself is at fault, and the stream stops rather than skip it."""
        failing = isolation.failing_filters(rows, filters, budget_s=self.config.filter_budget_s)
        if error is not None and not failing:
            raise error
        for f, reason in failing:
            log.error("filter %s/%s switched off: %s", f.owner, f.name, reason)
            self._failed[f.filter_id] = (f.revision, f.spark_sql)
            self._report_disabled(f, reason)
        dropped = {f.filter_id for f, _ in failing}
        return [f for f in filters if f.filter_id not in dropped]

    def _settled_records(self, batch: DataFrame, batch_id: int) -> tuple[DataFrame | None, dict]:
        """The batch minus records an earlier batch took (None: nothing left, so no job) or,
        when settling, the batch and the rest of the burst it caught the start of; and the
        offsets processed once it is written."""
        c = self.config
        marker = self.sink.last_marker.get("processed_to") or {}
        processed_to = {int(p): int(o) for p, o in marker.items()}
        end = self.offset_log.end_offsets(batch_id, c.raw_topic)
        begin = self.offset_log.end_offsets(batch_id - 1, c.raw_topic)
        if end is not None and begin is None and self._settler is not None:
            begin = self._settler.log_starts(list(end))  # batch 0 starts at the earliest
        if end is not None:
            # A batch with nothing new (Spark plans one at query start even on an empty
            # topic) or wholly taken by an earlier batch costs a job's fixed cost for nothing.
            floor = {p: max((begin or {}).get(p, 0), processed_to.get(p, 0)) for p in end}
            if (begin is not None or processed_to) and all(o <= floor[p] for p, o in end.items()):
                return None, processed_to
        if self._settler is None or end is None or begin is None:
            return settle.unprocessed(batch, processed_to), processed_to
        first = {p: max(begin.get(p, o), processed_to.get(p, 0)) for p, o in end.items()}
        start = {p: max(o, first[p]) for p, o in end.items()}
        taken = sum(start[p] - first[p] for p in end)
        ends = self._settler.settled_ends(start, c.max_offsets_per_trigger - taken)
        done = {**processed_to, **ends}
        if ends == start:  # nothing arrived past the batch
            return settle.unprocessed(batch, processed_to), done
        log.info("batch %d takes %d more records of the burst", batch_id,
                 sum(ends[p] - start[p] for p in end))  # fmt: skip
        return self._settler.read(first, ends), done

    def _output(self, annotated: DataFrame, filters: list[AlertFilter]) -> DataFrame:
        """One row per record: the indices of the filters it matches, its JSON once (when
        it matches any), the raw bytes only where needed (dead letters, Avro outputs)."""
        good = F.col("error").isNull()
        matches = [F.when(good & F.expr(f.spark_sql), F.lit(i)) for i, f in enumerate(filters)]
        hits = (
            F.filter(F.array(*matches), lambda x: x.isNotNull())
            if matches
            else F.array().cast("array<int>")
        )
        step = annotated.select("*", hits.alias("_hits"))
        avro = [i for i, f in enumerate(filters) if f.output_format == "avro"]
        wants_raw = (
            F.arrays_overlap(F.col("_hits"), F.array(*[F.lit(i) for i in avro]))
            if avro
            else F.lit(False)
        )
        matched = F.size("_hits") > 0
        # No `where` here: the optimizer would push it below the projections and inline
        # the decoded row (and both UDFs) into it. An unmatched alert costs a few bytes.
        return step.select(
            F.col("_hits").alias("hits"),
            "key",
            F.when(~good | wants_raw, F.col("value")).alias("value"),
            F.when(matched, F.to_json(F.struct(*PAYLOAD_COLUMNS)).cast("binary")).alias("json"),
            F.when(matched, F.to_json(F.struct(*rows.GAIA_COLUMNS)).cast("binary")).alias("gaia"),
            "error",
            "kafka_partition",
            "kafka_offset",
        )

    def _messages(self, out: pa.Table, filters: list[AlertFilter]) -> Iterator[Message]:
        """The Kafka messages of the batch's output rows (matches, then dead letters)."""
        cols = {c: out.column(c).to_pylist() for c in out.column_names}
        # {"filter": NAME, <the alert's fields>} — the alert's JSON with the name prepended.
        prefixes = [
            b'{"filter":' + json.dumps(f"{f.owner}/{f.name}", ensure_ascii=False).encode()
            for f in filters
        ]
        names = [f"{f.owner}/{f.name}".encode() for f in filters]
        dead = []
        for i, hits in enumerate(cols["hits"]):
            if cols["error"][i] is not None:
                dead.append(i)
                continue
            if not hits:
                continue
            body, gaia, key = cols["json"][i][1:], cols["gaia"][i], cols["key"][i]
            for fi in hits:
                f = filters[fi]
                if f.output_format == "json":
                    value = prefixes[fi] + (b"," + body if body != b"}" else body)
                else:
                    value = cols["value"][i]
                yield f.topic, key, value, [("avip-filter", names[fi]), ("avip-gaia", gaia)]
        for i in dead:
            source = {
                "topic": self.config.raw_topic,
                "partition": cols["kafka_partition"][i],
                "offset": cols["kafka_offset"][i],
            }
            headers = [
                ("avip-error", cols["error"][i].encode()),
                ("avip-source", json.dumps(source).encode()),
            ]
            yield self.config.dead_letter_topic, cols["key"][i], cols["value"][i] or b"", headers

    def _dry_batch(self, records: DataFrame) -> int:
        """A batch's work without the Kafka write (the warm-up): its message count."""
        filters = self.usable_filters()
        self._ensure_filter_topics(filters)
        out = self._output(self.annotated(records), filters).toArrow()
        return sum(1 for _ in self._messages(out, filters))

    # -- the query ------------------------------------------------------------
    def warm_up(self) -> float:
        """Run the synthetic warm-up visit through the batch code (see :mod:`warmup`)."""
        c = self.config
        if c.warm_up_alerts <= 0 or c.warm_up_rounds <= 0:
            return 0.0
        seconds = warmup.warm_up(
            self.spark, self._dry_batch, self.catalog, c.warm_up_alerts, c.warm_up_rounds
        )
        log.info("warm-up: visits of %d alerts for %.1fs", c.warm_up_alerts, seconds)
        return seconds

    def start(self, available_now: bool = False) -> StreamingQuery:
        """Warm up, then start the query."""
        self.warm_up_seconds = self.warm_up()
        c = self.config
        source = (
            self.spark.readStream.format("kafka")
            .options(**spark_kafka_options(c.bootstrap, c.auth))
            .option("subscribe", c.raw_topic)
            .option("startingOffsets", "earliest")
            .option("maxOffsetsPerTrigger", str(c.max_offsets_per_trigger))
            # Split a topic partition's batch across the cores (the raw topic may have one).
            .option(
                "minPartitions",
                str(c.min_partitions or self.spark.sparkContext.defaultParallelism),
            )
            .option("failOnDataLoss", "false")
            .load()
        )
        writer = (
            source.writeStream.foreachBatch(self.process_batch)
            .option("checkpointLocation", c.checkpoint_dir)
            .queryName(f"avip-{c.job_name}")
        )
        if available_now:  # a backlog: Spark's batches as planned
            writer = writer.trigger(availableNow=True)
        else:
            writer = writer.trigger(processingTime=f"{c.trigger_seconds} seconds")
            if c.settle_seconds > 0:
                self.offset_log.check()
                self._settler = settle.Settler(
                    self.spark,
                    c.bootstrap,
                    c.raw_topic,
                    c.settle_seconds,
                    c.settle_max_seconds,
                    c.min_partitions or self.spark.sparkContext.defaultParallelism,
                    group_id=f"avip-settle-{self.sink.marker_key}",
                    auth=c.auth,
                )
        return writer.start()

    def close(self) -> None:
        if self._settler is not None:
            self._settler.close()
        self.sink.close()
