"""Exactly-once output for the alert stream: Kafka transactions plus a commit marker.

Spark's Kafka sink is at-least-once, so the streaming job writes its output
itself. Every micro-batch's matches and dead letters go out in one Kafka
transaction that also writes a marker record ``{"batch_id": N}`` to a
compacted commit topic, keyed by the job. On restart Spark replays the last
batch whose *Spark* commit was not written; :meth:`TransactionalSink.write`
sees from the marker that Kafka already has it and skips it. A crash before
the Kafka commit leaves an open transaction that the next incarnation's
``init_transactions`` aborts (same ``transactional.id``), so read_committed
consumers — the default for librdkafka and :mod:`spark_jobs.alerts.consumer`
— see every output exactly once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterable, Sequence

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from config.kafka import KafkaAuth, kafka_config, private_group_id

log = logging.getLogger(__name__)

Message = tuple[str, bytes | None, bytes, Sequence[tuple[str, bytes]]]  # topic, key, value, headers
MAX_MESSAGE_BYTES = 10 * 1024 * 1024


def ensure_topics(
    bootstrap: str,
    topics: Iterable[str],
    partitions: int = 1,
    config: dict[str, str] | None = None,
    timeout_s: float = 30.0,
    auth: KafkaAuth | None = None,
) -> None:
    """Create the topics that do not exist yet (existing ones are left alone)."""
    admin = AdminClient(kafka_config(bootstrap, auth))
    existing = set(admin.list_topics(timeout=timeout_s).topics)
    new = [
        NewTopic(t, num_partitions=partitions, replication_factor=1, config=config or {})
        for t in sorted(set(topics))
        if t not in existing
    ]
    if not new:
        return
    for topic, future in admin.create_topics(new, operation_timeout=timeout_s).items():
        try:
            future.result()
        except KafkaException as err:
            if "TOPIC_ALREADY_EXISTS" not in str(err):
                raise RuntimeError(f"could not create Kafka topic {topic!r}: {err}") from err


class TransactionalSink:
    """Writes each micro-batch's messages atomically, at most once per batch id."""

    def __init__(self, bootstrap: str, commit_topic: str, job_name: str, checkpoint_dir: str,
                 auth: KafkaAuth | None = None):
        digest = hashlib.sha1(checkpoint_dir.encode()).hexdigest()[:12]
        self.bootstrap, self.auth = bootstrap, auth
        self.commit_topic = commit_topic
        self.marker_key = f"{job_name}:{digest}"
        ensure_topics(bootstrap, [commit_topic], config={"cleanup.policy": "compact"}, auth=auth)
        self.producer = Producer(
            kafka_config(
                bootstrap,
                auth,
                transactional_id=f"avip-{self.marker_key}",
                linger_ms=5,
                message_max_bytes=MAX_MESSAGE_BYTES,
                queue_buffering_max_messages=1_000_000,
            )
        )
        # Fences any earlier incarnation and aborts its unfinished transaction.
        self._produced = 0
        self.producer.init_transactions(60)
        self.last_marker = self._read_last_marker()
        self.last_batch_id = int(self.last_marker.get("batch_id", -1))
        log.info("alert sink %s resumes after batch %s", self.marker_key, self.last_batch_id)

    def _read_last_marker(self, timeout_s: float = 30.0) -> dict:
        """The newest committed marker of this job ({} when there is none)."""
        consumer = Consumer(
            kafka_config(
                self.bootstrap,
                self.auth,
                group_id=private_group_id("marker"),
                enable_auto_commit=False,
                isolation_level="read_committed",
            )
        )
        try:
            _, high = consumer.get_watermark_offsets(TopicPartition(self.commit_topic, 0), 30)
            last: dict = {}
            if high == 0:
                return last
            consumer.assign([TopicPartition(self.commit_topic, 0, OFFSET_BEGINNING)])
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                msg = consumer.poll(0.5)
                if (
                    msg is not None
                    and msg.error() is None
                    and msg.key() == self.marker_key.encode()
                ):
                    marker = json.loads(msg.value())
                    if int(marker["batch_id"]) > int(last.get("batch_id", -1)):
                        last = marker
                pos = consumer.position([TopicPartition(self.commit_topic, 0)])[0].offset
                if pos >= high:
                    return last
            raise RuntimeError(f"could not read the commit topic {self.commit_topic!r} to its end")
        finally:
            consumer.close()

    def already_written(self, batch_id: int) -> bool:
        return batch_id <= self.last_batch_id

    def write(
        self,
        batch_id: int,
        messages: Iterable[Message],
        before_commit=None,
        marker_extra: dict | None = None,
    ) -> int:
        """Produce ``messages`` and the batch marker (plus ``marker_extra``, read back as
        :attr:`last_marker` after a restart) in one transaction; return the count."""
        if self.already_written(batch_id):
            log.info("batch %d already in Kafka; skipping its replay", batch_id)
            return 0
        self.producer.begin_transaction()
        n = 0
        try:
            for topic, key, value, headers in messages:
                self._produce(topic, key, value, list(headers))
                n += 1
            marker = {**(marker_extra or {}), "batch_id": batch_id, "messages": n}
            self._produce(
                self.commit_topic, self.marker_key.encode(), json.dumps(marker).encode(), []
            )
            if before_commit is not None:
                before_commit()
            self.producer.commit_transaction(120)
        except Exception:
            try:
                self.producer.abort_transaction(30)
            except KafkaException:
                log.warning("could not abort the transaction of batch %d", batch_id)
            raise
        self.last_batch_id = batch_id
        self.last_marker = marker
        return n

    def _produce(self, topic: str, key: bytes | None, value: bytes, headers: list) -> None:
        while True:
            try:
                self.producer.produce(topic, value=value, key=key, headers=headers or None)
                break
            except BufferError:
                self.producer.poll(0.05)
        self._produced += 1
        if self._produced % 1000 == 0:  # serve delivery reports now and then, not per message
            self.producer.poll(0)

    def close(self) -> None:
        self.producer.flush(30)
