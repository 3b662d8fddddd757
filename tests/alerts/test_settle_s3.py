"""Settling with the checkpoint on S3 (s3a://, devstack MinIO and Kafka).

The alert stream runs on an ``s3a://`` checkpoint, so Spark itself writes the
offset log to S3. Settling read it if the batch's commit marker carries the
offsets it processed: that map stays empty when the offset log cannot be read
(the old local-only reader gave None on S3, so settling was silently off).
Each offset file Spark wrote is then read through the S3 filesystem and,
copied byte for byte, from a local directory: the parses must agree.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from confluent_kafka import Producer
from pyarrow import fs as pafs
from testing_utils import kafka_auth, load_module

from config.kafka import kafka_config
from config.s3 import arrow_filesystem, arrow_path, hadoop_conf
from spark_jobs.alerts import codec, settle, simulate
from spark_jobs.alerts.filters import make_filter

TESTS = Path(__file__).resolve().parents[1]
# The devstack MinIO's settings, or a skip saying how to get them (tests/s3's fixture).
s3_settings = load_module("s3_fixtures", TESTS / "s3" / "conftest.py").s3_settings


@pytest.mark.slow
def test_stream_on_an_s3a_checkpoint_settles_from_sparks_offset_log(
    spark, s3_settings, kafka_bootstrap, stream_config, run_id, tmp_path
):
    from spark_jobs.alerts import stream

    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    for key, value in hadoop_conf(s3_settings).items():
        hadoop.set(key, value)
    checkpoint = f"s3a://{s3_settings.s3_bucket}/alerts-checkpoint-{run_id}"
    config = stream_config(checkpoint_dir=checkpoint, max_offsets_per_trigger=1_000,
                           warm_up_alerts=0)  # fmt: skip

    sim = simulate.RubinSimulator(seed=8)
    plan = simulate.plan_night(1, [(40.0, -10.0)], n_alerts=200)[0]
    producer = Producer(kafka_config(kafka_bootstrap, kafka_auth()))
    for a in sim.alerts_for_visit(plan):
        producer.produce(config.raw_topic, key=str(a["diaSourceId"]).encode(),
                         value=codec.encode_rubin(a))  # fmt: skip
    producer.flush()

    catch_all = make_filter(
        filter_id=1, owner="t", name="all", where="ra >= 0", topic_prefix=f"out-{run_id}"
    )
    job = stream.AlertStream(spark, config, lambda: [catch_all])
    fs = arrow_filesystem(s3_settings)
    try:
        query = job.start()  # processing-time trigger: settling on
        deadline = time.monotonic() + 120
        while sum(s["messages"] for s in job.stats) < 200 and time.monotonic() < deadline:
            assert query.exception() is None, query.exception()
            time.sleep(0.5)
        query.stop()
        assert sum(s["messages"] for s in job.stats) == 200
        assert job.sink.last_marker["processed_to"] == {"0": 200}  # settle read the log

        root = arrow_path(checkpoint)
        written = fs.get_file_info(pafs.FileSelector(f"{root}/offsets"))
        batch_ids = sorted(int(f.base_name) for f in written if f.base_name.isdigit())
        assert batch_ids, "Spark wrote no offset log to S3"
        local = tmp_path / "ck"
        (local / "offsets").mkdir(parents=True)
        for batch_id in batch_ids:
            with fs.open_input_stream(f"{root}/offsets/{batch_id}") as fh:
                (local / "offsets" / str(batch_id)).write_bytes(fh.read())
        on_s3 = settle.OffsetLog(checkpoint, s3_settings)
        for local_dir in (str(local), f"file://{local}"):
            copy = settle.OffsetLog(local_dir)
            for batch_id in batch_ids:
                assert on_s3.end_offsets(batch_id, config.raw_topic) == copy.end_offsets(
                    batch_id, config.raw_topic
                )
        assert on_s3.end_offsets(batch_ids[-1], config.raw_topic) == {0: 200}
        assert on_s3.end_offsets(batch_ids[-1] + 1, config.raw_topic) is None  # not planned
    finally:
        job.close()
        fs.delete_dir(arrow_path(checkpoint))
