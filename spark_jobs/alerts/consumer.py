"""A small consumer for filter topics (and any avip topic).

Reads committed messages only (``isolation.level=read_committed``), so output
of a streaming batch that was aborted never shows. JSON values come back as
dicts, Avro alerts as decoded records with the Gaia annotation from the
``avip-gaia`` header.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer

from config.kafka import KafkaAuth, kafka_config, private_group_id
from spark_jobs.alerts import codec


@dataclass(frozen=True)
class Received:
    topic: str
    key: bytes | None
    value: dict[str, Any]
    headers: dict[str, str]
    timestamp_ms: int


def _parse(raw: bytes, headers: dict[str, str]) -> dict[str, Any]:
    if raw[:1] == b"{":
        return json.loads(raw)
    decoded = codec.decode(raw)
    out = {"survey": decoded.survey, "alert": decoded.record}
    if "avip-gaia" in headers:
        out["gaia"] = json.loads(headers["avip-gaia"])
    return out


def consume(
    bootstrap: str,
    topic: str,
    *,
    group_id: str | None = None,
    from_beginning: bool = True,
    max_messages: int | None = None,
    idle_timeout_s: float | None = 10.0,
    auth: KafkaAuth | None = None,
    keep_position: bool | None = None,
) -> Iterator[Received]:
    """Yield messages of ``topic`` until ``max_messages`` or ``idle_timeout_s`` without any.

    ``group_id`` keeps a position between runs; without it each call reads anew (from a
    group of its own). ``keep_position`` says whether to commit offsets (default: when a
    ``group_id`` is given) — False for a named but one-off group, as on a broker that
    only lets the reader use groups under its own prefix.
    """
    if keep_position is None:
        keep_position = group_id is not None
    consumer = Consumer(
        kafka_config(
            bootstrap,
            auth,
            group_id=group_id or private_group_id("reader"),
            auto_offset_reset="earliest" if from_beginning else "latest",
            isolation_level="read_committed",
            enable_auto_commit=keep_position,
        )
    )
    consumer.subscribe([topic])
    n, last = 0, time.monotonic()
    try:
        while max_messages is None or n < max_messages:
            msg = consumer.poll(0.5)
            if msg is None or msg.error() is not None:
                if idle_timeout_s is not None and time.monotonic() - last > idle_timeout_s:
                    return
                continue
            last = time.monotonic()
            headers = {k: (v or b"").decode("utf-8", "replace") for k, v in (msg.headers() or [])}
            n += 1
            yield Received(
                msg.topic(), msg.key(), _parse(msg.value(), headers), headers, msg.timestamp()[1]
            )
    finally:
        consumer.close()
