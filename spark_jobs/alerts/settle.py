"""Keep a visit in one micro-batch: let its burst land, then take the rest of it too.

A Rubin visit arrives as one burst of ~10,000 packets, but the producer sends
it in several requests and Spark's trigger, polling every few milliseconds
while idle, starts a micro-batch on the first of them: the visit is split,
and its second part waits for the first batch and then pays a batch's fixed
cost again (seconds, most of the latency of a split visit). Spark cannot be
told to wait for a quiet source, so the job does it inside the batch:
:meth:`Settler.extend` polls the raw topic's end offsets until they have not
moved for ``quiet_s`` (at most ``max_wait_s``; never beyond ``limit`` more
records), then reads the batch's records and those that arrived past its end offsets
with one plain Kafka read (one read, not a union: the tasks split the whole
range evenly and each looks up the catalogue once) — one Spark job for the
whole visit.

Spark's next micro-batch still covers those records, so the job drops, from
every batch, the records below the offsets an earlier batch already
processed (:func:`unprocessed`; a batch wholly below them is skipped
without a Spark job). These offsets travel in the batch's commit
marker, written in the same Kafka transaction as its output, so after a
crash the restarted job drops exactly what the committed output holds.

A batch's planned offsets come from Spark's offset log in the checkpoint
(:class:`OffsetLog`), read where the checkpoint is — a local directory, or
``s3a://`` through the platform's S3 settings; a location it cannot read is
refused when the stream starts, so settling is never silently off.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.parse
from collections.abc import Mapping

from confluent_kafka import Consumer, TopicPartition
from pyarrow import fs as pafs
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from config.kafka import KafkaAuth, kafka_config, private_group_id, spark_kafka_options
from config.s3 import arrow_filesystem, arrow_path
from config.settings import Settings, get_settings

log = logging.getLogger(__name__)

Offsets = dict[int, int]  # partition -> offset


#: Checkpoint locations whose offset log the job can read (Spark may support more).
LOCAL_SCHEMES = ("", "file")
S3_SCHEMES = ("s3a", "s3")


class CheckpointLocationError(ValueError):
    """The checkpoint directory is somewhere the job cannot read its offset log."""


def checkpoint_scheme(checkpoint_dir: str) -> str:
    """The scheme of a checkpoint directory ('' for a plain path), if the job can read its
    offset log there: local paths, ``file://``, ``s3a://`` and ``s3://``. Any other scheme
    is refused: Spark could write there, but settling would be silently off."""
    scheme = urllib.parse.urlsplit(checkpoint_dir).scheme.lower()
    if scheme in LOCAL_SCHEMES or scheme in S3_SCHEMES:
        return scheme
    raise CheckpointLocationError(
        f"checkpoint directory {checkpoint_dir!r} has scheme {scheme}://, which the alert "
        "stream cannot read its offset log from; set --checkpoint (StreamConfig.checkpoint_dir)"
        " to a local path, file://, s3a:// or s3:// (with the AVIP_S3_* settings)"
    )


def checkpoint_filesystem(
    checkpoint_dir: str, settings: Settings | None = None
) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path on it) of a checkpoint directory (:func:`checkpoint_scheme`):
    locally, or through the platform's pyarrow S3 filesystem with ``settings``' ``AVIP_S3_*``
    credentials, as Spark's s3a (default: the platform's settings)."""
    scheme = checkpoint_scheme(checkpoint_dir)
    if scheme in LOCAL_SCHEMES:
        path = urllib.parse.urlsplit(checkpoint_dir).path if scheme else checkpoint_dir
        return pafs.LocalFileSystem(), os.path.abspath(path)
    return arrow_filesystem(settings or get_settings()), arrow_path(checkpoint_dir)


class OffsetLog:
    """Spark's offset log of a streaming checkpoint (``<checkpoint>/offsets/<batch_id>``),
    read where the checkpoint is: a local directory or object storage."""

    def __init__(self, checkpoint_dir: str, settings: Settings | None = None):
        self.checkpoint_dir = checkpoint_dir
        self.filesystem, self.root = checkpoint_filesystem(checkpoint_dir, settings)

    def check(self) -> None:
        """Fail now, naming the settings, if the checkpoint's storage cannot be listed."""
        try:
            self.filesystem.get_file_info(self.root)
        except OSError as err:
            raise CheckpointLocationError(
                f"cannot reach the checkpoint directory {self.checkpoint_dir!r} ({err}): check "
                "--checkpoint and, on S3, AVIP_S3_ENDPOINT, AVIP_S3_ACCESS_KEY, AVIP_S3_SECRET_KEY"
            ) from None

    def end_offsets(self, batch_id: int, topic: str) -> Offsets | None:
        """The end offsets Spark planned for a batch (None: no such batch in the log, or
        no ``topic`` in it). Other storage errors are raised, not read as "no batch"."""
        if batch_id < 0:
            return None
        try:
            with self.filesystem.open_input_stream(f"{self.root}/offsets/{batch_id}") as fh:
                lines = fh.read().decode().splitlines()
        except FileNotFoundError:
            return None
        if not lines or lines[0] != "v1":
            return None
        for line in lines[2:]:  # one JSON line per source
            offsets = json.loads(line) if line.strip().startswith("{") else {}
            if topic in offsets:
                return {int(p): int(o) for p, o in offsets[topic].items()}
        return None


def unprocessed(batch: DataFrame, processed_to: Mapping[int, int]) -> DataFrame:
    """The batch's records at or past ``processed_to`` (per partition)."""
    if not processed_to:
        return batch
    pairs = [F.lit(x) for p, o in sorted(processed_to.items()) for x in (p, o)]
    floor = F.coalesce(F.element_at(F.create_map(*pairs), F.col("partition")), F.lit(0))
    return batch.where(F.col("offset") >= floor)


class Settler:
    """Waits for the raw topic to go quiet and reads what arrived past a batch."""

    def __init__(
        self,
        spark: SparkSession,
        bootstrap: str,
        topic: str,
        quiet_s: float = 0.1,
        max_wait_s: float = 0.5,
        min_partitions: int = 2,
        group_id: str | None = None,
        auth: KafkaAuth | None = None,
    ):
        self.spark = spark
        self.bootstrap, self.auth = bootstrap, auth
        self.topic = topic
        self.quiet_s = quiet_s
        self.max_wait_s = max_wait_s
        self.min_partitions = min_partitions
        # One group id for all of the job's reads: the executors' pooled consumers are kept
        # per group and partition, so each read does not connect a new consumer.
        self.group_id = group_id or private_group_id("settle")
        # The driver's watermark probe reads on its own (a group nobody else joins).
        self._consumer = Consumer(
            kafka_config(bootstrap, auth, group_id=private_group_id("settle"),
                         enable_auto_commit=False)
        )

    def _watermarks(self, partitions: list[int]) -> dict[int, tuple[int, int]]:
        return {
            p: self._consumer.get_watermark_offsets(TopicPartition(self.topic, p), 10)
            for p in partitions
        }

    def _ends(self, partitions: list[int]) -> Offsets:
        return {p: high for p, (_, high) in self._watermarks(partitions).items()}

    def log_starts(self, partitions: list[int]) -> Offsets:
        """The first offsets still in the topic (where an 'earliest' query begins)."""
        return {p: low for p, (low, _) in self._watermarks(partitions).items()}

    def settled_ends(self, start: Offsets, limit: int) -> Offsets:
        """End offsets once they stop moving (or after max_wait_s, or at ``limit`` records
        past ``start``), capped so at most ``limit`` records are past ``start``."""
        t0 = last_move = time.monotonic()
        ends = self._ends(list(start))
        while time.monotonic() - t0 < self.max_wait_s:
            if sum(max(0, ends[p] - start[p]) for p in start) >= limit:
                break
            if time.monotonic() - last_move >= self.quiet_s:
                break
            time.sleep(0.01)
            now = self._ends(list(start))
            if now != ends:
                ends, last_move = now, time.monotonic()
        room, capped = limit, {}
        for p in sorted(start):
            take = min(max(0, ends[p] - start[p]), room)
            capped[p] = start[p] + take
            room -= take
        return capped

    def read(self, start: Offsets, end: Offsets) -> DataFrame | None:
        """The records in [start, end) as Spark's Kafka source shows them (None if none)."""
        parts = [p for p in start if end[p] > start[p]]
        if not parts:
            return None
        return (
            self.spark.read.format("kafka")
            .options(**spark_kafka_options(self.bootstrap, self.auth))
            .option("assign", json.dumps({self.topic: parts}))
            .option("startingOffsets", json.dumps({self.topic: {str(p): start[p] for p in parts}}))
            .option("endingOffsets", json.dumps({self.topic: {str(p): end[p] for p in parts}}))
            .option("minPartitions", str(self.min_partitions))
            .option("kafka.group.id", self.group_id)
            .option("failOnDataLoss", "false")
            .load()
        )

    def close(self) -> None:
        self._consumer.close()
