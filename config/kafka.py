"""Kafka client configuration (confluent-kafka / librdkafka) shared by every producer and consumer.

Every client of the platform starts from ``bootstrap.servers``; librdkafka's
option names are dotted (``linger.ms``), so :func:`kafka_config` takes them as
keywords with underscores for dots. Consumers that read on their own (a tail,
a watermark probe) take a group id nobody else uses (:func:`private_group_id`),
so they never share offsets or a rebalance with another reader.
"""

from __future__ import annotations

import uuid


def kafka_config(bootstrap: str, **options: object) -> dict[str, object]:
    """librdkafka configuration: ``bootstrap.servers`` plus ``options`` (``_`` read as ``.``).

    >>> kafka_config("kafka:9092", linger_ms=5, enable_idempotence=True)
    {'bootstrap.servers': 'kafka:9092', 'linger.ms': 5, 'enable.idempotence': True}
    """
    if not bootstrap or not bootstrap.strip():
        raise ValueError(
            "no Kafka bootstrap servers given: set AVIP_KAFKA_BOOTSTRAP (host:port[,host:port])"
        )
    return {"bootstrap.servers": bootstrap} | {
        name.replace("_", "."): value for name, value in options.items()
    }


def private_group_id(purpose: str) -> str:
    """A consumer group id of its own: ``avip-<purpose>-<12 hex digits>``.

    >>> private_group_id("tail").startswith("avip-tail-")
    True
    """
    return f"avip-{purpose}-{uuid.uuid4().hex[:12]}"
