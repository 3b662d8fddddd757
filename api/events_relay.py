"""The outbox relay: job events from the ``events`` table to a Kafka topic.

Rows with ``published_at`` null are read oldest first, produced keyed by job
id (so one job's events share a partition and keep their order), and marked
published only after the broker acknowledged every one of them. A broker
outage therefore just leaves rows unpublished until it returns; a crash
between delivery and marking republishes them — at-least-once, and each
message carries the event ``id`` so consumers drop duplicates. Ids grow with
creation, so per job the order is the ids' order. The relay stops at the
first failed delivery of a pass so a later event never overtakes an earlier
one of the same job.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer
from sqlalchemy.orm import Session

from api.models import Event
from api.store import jobs as job_store
from config.kafka import KafkaAuth, kafka_config, private_group_id

log = logging.getLogger(__name__)


def event_message(event: Event) -> tuple[bytes, bytes]:
    """(key, value) of one event: key = job id (or 'user:<name>' without a job)."""
    key = str(event.job_id) if event.job_id is not None else f"user:{event.user}"
    value = {
        "id": event.id,
        "job_id": event.job_id,
        "user": event.user,
        "type": event.type,
        "payload": event.payload,
        "created_at": event.created_at.isoformat(),
    }
    return key.encode(), json.dumps(value, sort_keys=True).encode()


class EventRelay:
    """Publishes outbox rows; call :meth:`run_once` in a loop or :meth:`run`."""

    def __init__(
        self,
        sessions: Callable[[], Session],
        bootstrap: str,
        topic: str,
        batch_size: int = 500,
        delivery_timeout_s: float = 10.0,
        auth: KafkaAuth | None = None,
    ):
        self.sessions = sessions
        self.topic = topic
        self.published_total = 0  # events published by run(), for the metrics
        self.batch_size = batch_size
        self.delivery_timeout_s = delivery_timeout_s
        self.producer = Producer(
            kafka_config(
                bootstrap,
                auth,
                enable_idempotence=True,  # no broker-side duplicates or reordering on retry
                message_timeout_ms=int(delivery_timeout_s * 1000),
                linger_ms=5,
            )
        )

    def run_once(self) -> int:
        """One pass: publish up to ``batch_size`` events; return how many were marked."""
        with self.sessions() as session:
            events = job_store.unpublished_events(session, limit=self.batch_size)
            if not events:
                return 0
            delivered: dict[int, bool] = {}

            def on_delivery(err: KafkaError | None, msg: Any, event_id: int) -> None:
                delivered[event_id] = err is None
                if err is not None:
                    log.warning("event %d not delivered: %s", event_id, err)

            for event in events:
                key, value = event_message(event)
                self.producer.produce(
                    self.topic,
                    key=key,
                    value=value,
                    headers=[("avip-event-id", str(event.id).encode())],
                    on_delivery=lambda e, m, i=event.id: on_delivery(e, m, i),
                )
            self.producer.flush(self.delivery_timeout_s + 5)
            # Mark the longest prefix that was delivered: keeps per-job order on a retry.
            done = []
            for event in events:
                if not delivered.get(event.id):
                    break
                done.append(event.id)
            if done:
                job_store.mark_published(session, event_ids=done)
                session.commit()
            return len(done)

    def run(self, interval_s: float = 0.5, stop: Callable[[], bool] = lambda: False) -> None:
        while not stop():
            try:
                n = self.run_once()
            except Exception:  # keep relaying through DB or broker hiccups
                log.exception("relay pass failed; retrying")
                n = 0
            self.published_total += n
            if n == 0:
                time.sleep(interval_s)


def tail(
    bootstrap: str, topic: str, *, from_beginning: bool = False,
    idle_timeout_s: float | None = None, auth: KafkaAuth | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield job events from the topic, dropping redeliveries by event id."""
    consumer = Consumer(
        kafka_config(
            bootstrap,
            auth,
            group_id=private_group_id("tail"),
            auto_offset_reset="earliest" if from_beginning else "latest",
            enable_auto_commit=False,
        )
    )
    consumer.subscribe([topic])
    seen: set[int] = set()
    last = time.monotonic()
    try:
        while idle_timeout_s is None or time.monotonic() - last < idle_timeout_s:
            msg = consumer.poll(0.5)
            if msg is None or msg.error() is not None:
                continue
            last = time.monotonic()
            event = json.loads(msg.value())
            if event["id"] in seen:
                continue
            seen.add(event["id"])
            yield event
    finally:
        consumer.close()
