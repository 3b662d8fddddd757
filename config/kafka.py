"""Kafka client configuration (confluent-kafka / librdkafka) shared by every producer and consumer.

Every client of the platform starts from ``bootstrap.servers`` and, on a broker
that authenticates (the devstack's and a deployment's: SASL/SCRAM), the
principal's :class:`KafkaAuth`; librdkafka's option names are dotted
(``linger.ms``), so :func:`kafka_config` takes them as keywords with
underscores for dots, and :func:`spark_kafka_options` says the same to Spark's
Kafka source. Consumers that read on their own (a tail, a watermark probe) take
a group id nobody else uses (:func:`private_group_id`), so they never share
offsets or a rebalance with another reader.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Literal

#: The alert stream's own topics (its filters' topics are named by the settings' prefix).
DEAD_LETTER_TOPIC, COMMIT_TOPIC = "avip.alerts.deadletter", "avip.alerts.commits"


@dataclass(frozen=True)
class KafkaAuth:
    """One principal's SASL/SCRAM credentials (``AVIP_KAFKA_USERNAME``/``_PASSWORD``)."""

    username: str
    password: str = field(repr=False)
    mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256"] = "SCRAM-SHA-512"
    protocol: Literal["SASL_PLAINTEXT", "SASL_SSL"] = "SASL_PLAINTEXT"

    def client_options(self) -> dict[str, str]:
        """The librdkafka settings (confluent-kafka producers, consumers, admin)."""
        return {"security.protocol": self.protocol, "sasl.mechanism": self.mechanism,
                "sasl.username": self.username, "sasl.password": self.password}

    def jaas(self) -> str:
        """The JAAS line the Java clients (Spark's Kafka source) log in with."""
        def quoted(value: str) -> str:
            return value.replace("\\", "\\\\").replace('"', '\\"')

        return ("org.apache.kafka.common.security.scram.ScramLoginModule required "
                f'username="{quoted(self.username)}" password="{quoted(self.password)}";')


def kafka_config(bootstrap: str, auth: KafkaAuth | None = None,
                 **options: object) -> dict[str, object]:
    """librdkafka configuration: ``bootstrap.servers``, the principal's ``auth`` (None: an
    open broker) and ``options`` (``_`` read as ``.``).

    >>> kafka_config("kafka:9092", linger_ms=5, enable_idempotence=True)
    {'bootstrap.servers': 'kafka:9092', 'linger.ms': 5, 'enable.idempotence': True}
    """
    if not bootstrap or not bootstrap.strip():
        raise ValueError(
            "no Kafka bootstrap servers given: set AVIP_KAFKA_BOOTSTRAP (host:port[,host:port])"
        )
    return ({"bootstrap.servers": bootstrap} | (auth.client_options() if auth else {})
            | {name.replace("_", "."): value for name, value in options.items()})


def spark_kafka_options(bootstrap: str, auth: KafkaAuth | None = None) -> dict[str, str]:
    """Options of Spark's Kafka source and sink (``.options(**...)``) for the same broker."""
    options = {"kafka.bootstrap.servers": bootstrap}
    if auth is not None:
        options |= {"kafka.security.protocol": auth.protocol,
                    "kafka.sasl.mechanism": auth.mechanism,
                    "kafka.sasl.jaas.config": auth.jaas()}
    return options


def private_group_id(purpose: str) -> str:
    """A consumer group id of its own: ``avip-<purpose>-<12 hex digits>``.

    >>> private_group_id("tail").startswith("avip-tail-")
    True
    """
    return f"avip-{purpose}-{uuid.uuid4().hex[:12]}"
