"""A batch that takes the rest of a burst (settle) keeps the output exactly-once.

The micro-batches are driven by hand, as Spark's trigger would drive them
(offset log written, then ``process_batch``), so which records each batch
sees is deterministic: batch 0 is planned over the first 100 records of a
quiet topic and takes the other 200 itself; the restarted job then gets
Spark's batch 1 over those 200 and must write none of them again.
"""

from __future__ import annotations

import json
import os
import time

import pytest
from confluent_kafka import Consumer, Producer
from testing_utils import kafka_auth
from typer.testing import CliRunner

from cli.main import app as avip
from config.kafka import kafka_config, spark_kafka_options
from spark_jobs.alerts import codec, settle, simulate, stream
from spark_jobs.alerts.filters import make_filter


def _write_offset_log(checkpoint: str, batch_id: int, topic: str, end: int) -> None:
    os.makedirs(os.path.join(checkpoint, "offsets"), exist_ok=True)
    with open(os.path.join(checkpoint, "offsets", str(batch_id)), "w") as fh:
        fh.write('v1\n{"batchWatermarkMs":0,"batchTimestampMs":0,"conf":{}}\n')
        fh.write(json.dumps({topic: {"0": end}}))


def _read(spark, bootstrap: str, topic: str, start: int, end: int):
    return (
        spark.read.format("kafka")
        .options(**spark_kafka_options(bootstrap, kafka_auth()))
        .option("assign", json.dumps({topic: [0]}))
        .option("startingOffsets", json.dumps({topic: {"0": start}}))
        .option("endingOffsets", json.dumps({topic: {"0": end}}))
        .load()
    )


def _keys(bootstrap: str, topic: str, idle_s: float = 6.0) -> list[bytes]:
    consumer = Consumer(kafka_config(bootstrap, kafka_auth(), group_id=f"t-{time.time_ns()}",
                                     auto_offset_reset="earliest",
                                     isolation_level="read_committed"))
    consumer.subscribe([topic])
    out, last = [], time.monotonic()
    while time.monotonic() - last < idle_s:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            out.append(msg.key())
            last = time.monotonic()
    consumer.close()
    return out


def test_settled_batch_takes_the_burst_and_a_restart_writes_nothing_twice(
    spark, kafka_bootstrap, stream_config, run_id
):
    config = stream_config(max_offsets_per_trigger=1_000, warm_up_alerts=0)
    sim = simulate.RubinSimulator(seed=21)
    plan = simulate.plan_night(1, [(150.0, -30.0)], n_alerts=300)[0]
    raw = config.raw_topic
    producer = Producer(kafka_config(kafka_bootstrap, kafka_auth()))
    sent = []
    for a in sim.alerts_for_visit(plan):
        key = str(a["diaSourceId"]).encode()
        producer.produce(raw, key=key, value=codec.encode_rubin(a))
        sent.append(key)
    producer.flush()

    catch_all = make_filter(
        filter_id=1, owner="t", name="all", where="ra >= 0", topic_prefix=f"out-{run_id}"
    )

    first = stream.AlertStream(spark, config, lambda: [catch_all])
    first._settler = settle.Settler(first.spark, kafka_bootstrap, raw, quiet_s=0.05,
                                     auth=kafka_auth())
    _write_offset_log(config.checkpoint_dir, 0, raw, 100)
    first.process_batch(_read(first.spark, kafka_bootstrap, raw, 0, 100), 0)
    # one batch took the other 200 itself
    assert [(b["batch_id"], b["messages"], b["records"]) for b in first.stats] == [(0, 300, 300)]
    assert first.sink.last_marker["processed_to"] == {"0": 300}
    first.close()

    # Restart: Spark's own batch 1 covers what batch 0 took; nothing is written again.
    second = stream.AlertStream(spark, config, lambda: [catch_all])
    second._settler = settle.Settler(second.spark, kafka_bootstrap, raw, quiet_s=0.05,
                                     auth=kafka_auth())
    _write_offset_log(config.checkpoint_dir, 1, raw, 300)
    second.process_batch(_read(second.spark, kafka_bootstrap, raw, 100, 300), 1)
    assert second.stats == []  # wholly taken by batch 0: skipped without a job
    second.close()

    assert sorted(_keys(kafka_bootstrap, catch_all.topic)) == sorted(sent)


def test_settled_ends_stop_at_the_limit(spark, kafka_bootstrap, run_id):
    raw = f"raw-{run_id}"
    producer = Producer(kafka_config(kafka_bootstrap, kafka_auth()))
    for i in range(50):
        producer.produce(raw, value=b"x%d" % i)
    producer.flush()
    settler = settle.Settler(spark, kafka_bootstrap, raw, quiet_s=0.05, auth=kafka_auth())
    try:
        assert settler.settled_ends({0: 10}, limit=1_000) == {0: 50}
        assert settler.settled_ends({0: 10}, limit=15) == {0: 25}
        assert settler.read({0: 50}, {0: 50}) is None
        assert settler.read({0: 10}, {0: 25}).count() == 15
    finally:
        settler.close()


@pytest.mark.parametrize("checkpoint", ["gs://bucket/ck", "hdfs://namenode/ck", "abfs://c@a/ck"])
def test_a_checkpoint_settling_cannot_read_is_refused_at_start(checkpoint):
    with pytest.raises(settle.CheckpointLocationError, match=r"--checkpoint"):
        stream.StreamConfig(bootstrap="127.0.0.1:1", checkpoint_dir=checkpoint)
    # The job's command line: a usage error, code 2, the reason on stderr, before Spark starts.
    result = CliRunner().invoke(
        avip, ["alerts", "stream", "--bootstrap", "127.0.0.1:1", "--checkpoint", checkpoint]
    )
    assert result.exit_code == 2, result.output
    assert "--checkpoint" in result.stderr and checkpoint in result.stderr


def test_offset_log_reads_local_paths_and_file_urls(tmp_path):
    _write_offset_log(str(tmp_path), 4, "raw", 123)
    for where in (str(tmp_path), f"file://{tmp_path}"):
        log = settle.OffsetLog(where)
        assert log.end_offsets(4, "raw") == {0: 123}
        assert log.end_offsets(4, "other-topic") is None
        assert log.end_offsets(5, "raw") is None  # not planned yet
        assert log.end_offsets(-1, "raw") is None
