"""Who may do what on the broker (issue 15): every client logs in (SASL/SCRAM) and each
principal does its own job only — checked on the devstack's broker, which runs with the
authorizer on and no access without an ACL.

The ACLs are the ones `avip kafka services` / `avip kafka user` give (config/kafka_access.py),
granted here for this test's own topic names; the stream runs for real as `avip-stream`
and each user reads their own filter's output with their own credentials."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from testing_utils import kafka_auth
from typer.testing import CliRunner

from cli.main import app
from config import kafka_access as access
from config.kafka import KafkaAuth, kafka_config
from config.settings import get_settings
from spark_jobs.alerts import codec, simulate, stream
from spark_jobs.alerts.consumer import consume
from spark_jobs.alerts.filters import make_filter


@pytest.fixture
def admin(kafka_bootstrap: str) -> AdminClient:
    if kafka_auth() is None:
        pytest.skip("the broker does not authenticate: run through `make test` (devstack)")
    return AdminClient(kafka_config(kafka_bootstrap, kafka_auth()))


def _produce(bootstrap: str, auth: KafkaAuth | None, topic: str, value: bytes = b"x") -> str:
    """'ok' or the error the broker answered with (authorization, authentication)."""
    errors: list[str] = []
    producer = Producer(kafka_config(bootstrap, auth, message_timeout_ms=8000))
    producer.produce(topic, value=value,
                     on_delivery=lambda err, _msg: errors.append(err.name() if err else "ok"))
    producer.flush(12)
    return errors[0] if errors else "no answer"


def _first_message(bootstrap: str, auth: KafkaAuth | None, topic: str, group: str) -> str:
    """'ok' when a message of ``topic`` arrives, else the first error (or 'nothing')."""
    consumer = Consumer(kafka_config(bootstrap, auth, group_id=group,
                                     auto_offset_reset="earliest", enable_auto_commit=False))
    consumer.subscribe([topic])
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            return "ok" if msg.error() is None else msg.error().name()
        return "nothing"
    finally:
        consumer.close()


def _user(name: str, env: dict[str, str]) -> KafkaAuth:
    """Credentials for ``name`` from `avip kafka user`, as the operator runs it."""
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["kafka", "user", name], env=env)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    lines = dict(line.split("=", 1) for line in result.stdout.splitlines()
                 if line.startswith("AVIP_KAFKA_"))
    return KafkaAuth(lines["AVIP_KAFKA_USERNAME"], lines["AVIP_KAFKA_PASSWORD"])


@pytest.mark.slow
def test_each_principal_does_its_own_job_only(spark, kafka_bootstrap, admin, run_id):
    events, raw, dlq, commits = (f"ev-{run_id}", f"raw-{run_id}", f"dlq-{run_id}",
                                 f"commits-{run_id}")
    prefix = f"out-{run_id}"
    access.apply_acls(admin, [*access.relay_acls(events),
                              *access.stream_acls(raw, dlq, commits, prefix)])
    operator_env = {"AVIP_KAFKA_BOOTSTRAP": kafka_bootstrap,
                    "AVIP_KAFKA_USERNAME": "admin",
                    "AVIP_KAFKA_PASSWORD": kafka_auth().password,
                    "AVIP_ALERTS_FILTER_TOPIC_PREFIX": prefix}
    ada, bea = f"ada{run_id}", f"bea{run_id}"
    ada_auth, bea_auth = _user(ada, operator_env), _user(bea, operator_env)
    relay, stream_auth = kafka_auth("avip-relay"), kafka_auth("avip-stream")

    # The relay writes job events, and nothing else; it cannot read them back.
    assert _produce(kafka_bootstrap, relay, events) == "ok"
    assert _produce(kafka_bootstrap, relay, raw) == "TOPIC_AUTHORIZATION_FAILED"
    assert _first_message(kafka_bootstrap, relay, events, f"avip-{run_id}") != "ok"
    # No login, or a wrong password: nothing at all.
    assert _produce(kafka_bootstrap, KafkaAuth("avip-relay", "wrong"), events) != "ok"
    assert _produce(kafka_bootstrap, None, events) != "ok"

    # The stream, for real, as avip-stream: raw alerts in, each user's filter out.
    sim = simulate.RubinSimulator(stars=None, seed=3)
    plan = simulate.plan_night(1, [(40.0, -5.0)], n_alerts=200, star_fraction=0.0)[0]
    producer = Producer(kafka_config(kafka_bootstrap, kafka_auth()))
    alerts = list(sim.alerts_for_visit(plan))
    for alert in alerts:
        producer.produce(raw, key=str(alert["diaSourceId"]).encode(),
                         value=codec.encode_rubin(alert))
    producer.flush()
    filters = [make_filter(filter_id=i, owner=owner, name="all", topic_prefix=prefix,
                           where="ra >= 0") for i, owner in enumerate((ada, bea))]
    config = stream.StreamConfig(bootstrap=kafka_bootstrap, auth=stream_auth,
                                 checkpoint_dir=f"/tmp/avip-acl-{run_id}", raw_topic=raw,
                                 dead_letter_topic=dlq, commit_topic=commits,
                                 warm_up_alerts=0, settle_seconds=0)
    job = stream.AlertStream(spark, config, lambda: filters, None)
    try:
        job.start(available_now=True).awaitTermination()
    finally:
        job.close()
    assert job.stats and sum(batch["records"] for batch in job.stats) == 200
    # ...and the stream cannot write job events.
    assert _produce(kafka_bootstrap, stream_auth, events) == "TOPIC_AUTHORIZATION_FAILED"

    # Each user reads their own filter's matches, and not the other's.
    ada_topic, bea_topic = filters[0].topic, filters[1].topic
    got = list(consume(kafka_bootstrap, ada_topic, group_id=f"{ada_topic}.reader",
                       keep_position=False, max_messages=200, idle_timeout_s=15,
                       auth=ada_auth))
    assert sorted(m.value["alert_id"] for m in got) == sorted(a["diaSourceId"] for a in alerts)
    assert _first_message(kafka_bootstrap, ada_auth, bea_topic,
                          f"{ada_topic}.peek") == "TOPIC_AUTHORIZATION_FAILED"
    assert _first_message(kafka_bootstrap, ada_auth, ada_topic,
                          "somebody-elses-group") == "GROUP_AUTHORIZATION_FAILED"
    assert _produce(kafka_bootstrap, ada_auth, ada_topic) == "TOPIC_AUTHORIZATION_FAILED"
    assert _first_message(kafka_bootstrap, bea_auth, bea_topic, f"{bea_topic}.r") == "ok"


def test_the_kafka_commands_refuse_bad_input_and_say_why(kafka_bootstrap, admin):
    env = {"AVIP_KAFKA_BOOTSTRAP": kafka_bootstrap, "AVIP_KAFKA_USERNAME": "admin",
           "AVIP_KAFKA_PASSWORD": "wrong-password"}
    runner = CliRunner()
    for name in ("Alice", "a.b", "a*", ""):
        result = runner.invoke(app, ["kafka", "user", name], env=env)
        assert result.exit_code == 2 and "user name" in result.output, (name, result.output)
    for name in ("admin", "avip-relay", "avip-stream"):  # would take over the broker's own
        result = runner.invoke(app, ["kafka", "user", name], env=env)
        assert result.exit_code == 2 and "own principals" in result.output, (name, result.output)
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["kafka", "user", f"u{uuid.uuid4().hex[:6]}"], env=env)
    finally:
        get_settings.cache_clear()
    assert result.exit_code != 0 and "AVIP_KAFKA_PASSWORD" in result.output
