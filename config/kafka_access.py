"""Who may do what on the platform's Kafka: one SCRAM principal per service and per user.

The broker authenticates every client (SASL/SCRAM) and authorizes with ACLs, denying
what no ACL allows. The services get exactly what their code does:

* ``avip-relay`` (the outbox relay) writes the job-events topic;
* ``avip-stream`` (the alert stream) reads the raw alerts, writes the dead letters,
  its commit markers (transactionally) and every filter's output topic;

and each user, with credentials of their own (``avip kafka user NAME``), reads only the
topics of their own filters (``<filter prefix>.<user>.*``) under consumer groups named
after them. The operator's ``admin`` principal is the broker's super user.
"""

from __future__ import annotations

import secrets

from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

RELAY_PRINCIPAL, STREAM_PRINCIPAL = "avip-relay", "avip-stream"
#: Principals no platform user may be given: the super user and the services.
RESERVED_PRINCIPALS = frozenset({"admin", RELAY_PRINCIPAL, STREAM_PRINCIPAL})
#: Consumer groups of the stream: its own (settle, marker: ``avip-…``) and Spark's source.
STREAM_GROUP_PREFIXES = ("avip-", "spark-kafka-source-")
TRANSACTIONAL_PREFIX = "avip-"
SCRAM_ITERATIONS = 8192

_LITERAL, _PREFIXED = ResourcePatternType.LITERAL, ResourcePatternType.PREFIXED


def _allow(principal: str, kind: ResourceType, name: str, pattern: ResourcePatternType,
           *operations: AclOperation) -> list[AclBinding]:
    return [AclBinding(kind, name, pattern, f"User:{principal}", "*", op,
                       AclPermissionType.ALLOW) for op in operations]


def relay_acls(events_topic: str) -> list[AclBinding]:
    """The relay: produce (idempotently) to the job-events topic, create it if missing."""
    return _allow(RELAY_PRINCIPAL, ResourceType.TOPIC, events_topic, _LITERAL,
                  AclOperation.WRITE, AclOperation.DESCRIBE, AclOperation.CREATE)


def stream_acls(raw_topic: str, dead_letter_topic: str, commit_topic: str,
                filter_prefix: str) -> list[AclBinding]:
    """The alert stream: read raw alerts; write dead letters, commit markers and filters."""
    topic, group = ResourceType.TOPIC, ResourceType.GROUP
    ops = AclOperation
    return [
        *_allow(STREAM_PRINCIPAL, topic, raw_topic, _LITERAL, ops.READ, ops.DESCRIBE,
                ops.CREATE),
        *_allow(STREAM_PRINCIPAL, topic, dead_letter_topic, _LITERAL, ops.WRITE, ops.DESCRIBE,
                ops.CREATE),
        *_allow(STREAM_PRINCIPAL, topic, commit_topic, _LITERAL, ops.READ, ops.WRITE,
                ops.DESCRIBE, ops.CREATE),
        *_allow(STREAM_PRINCIPAL, topic, f"{filter_prefix}.", _PREFIXED, ops.WRITE,
                ops.DESCRIBE, ops.CREATE),
        *[acl for prefix in STREAM_GROUP_PREFIXES
          for acl in _allow(STREAM_PRINCIPAL, group, prefix, _PREFIXED, ops.READ)],
        *_allow(STREAM_PRINCIPAL, ResourceType.TRANSACTIONAL_ID, TRANSACTIONAL_PREFIX,
                _PREFIXED, ops.WRITE, ops.DESCRIBE),
    ]


def user_topic_prefix(filter_prefix: str, user: str) -> str:
    """Every topic of ``user``'s filters starts with this (spark_jobs.alerts.filters.topic_for);
    user names (a-z, 0-9, _ and -) hold no dot, so no user's prefix starts another's."""
    return f"{filter_prefix}.{user}."


def user_acls(user: str, filter_prefix: str) -> list[AclBinding]:
    """A user: read their own filters' topics, in consumer groups named like them."""
    prefix = user_topic_prefix(filter_prefix, user)
    return [*_allow(user, ResourceType.TOPIC, prefix, _PREFIXED, AclOperation.READ,
                    AclOperation.DESCRIBE),
            *_allow(user, ResourceType.GROUP, prefix, _PREFIXED, AclOperation.READ)]


def apply_acls(admin: AdminClient, bindings: list[AclBinding], timeout_s: float = 30) -> int:
    """Create ``bindings`` (existing ones are kept: creating an ACL twice is a no-op)."""
    for future in admin.create_acls(bindings, request_timeout=timeout_s).values():
        future.result()
    return len(bindings)


def set_password(admin: AdminClient, principal: str, password: str | None = None,
                 timeout_s: float = 30) -> str:
    """Create or change ``principal``'s SCRAM-SHA-512 credential; returns the password."""
    password = password or secrets.token_urlsafe(24)
    upsert = UserScramCredentialUpsertion(
        principal, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS),
        password.encode())
    for future in admin.alter_user_scram_credentials([upsert],
                                                     request_timeout=timeout_s).values():
        future.result()
    return password
