"""Alert pipeline throughput and latency on this machine.

Produces simulated Rubin visits to a fresh raw topic while the streaming job
runs (decode → Gaia annotation → 20 filters → transactional output), and
consumes one catch-all filter's topic to time produce→consume latency.
Prints sustained alerts/s and latency p50/p99. Needs a broker
(AVIP_KAFKA_BOOTSTRAP) and a lakehouse with gaia_source.

    python benchmarks/alerts.py --visits 6 --alerts-per-visit 10000
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
from confluent_kafka import Producer

# Python puts this folder first on sys.path, where benchmarks/lakehouse.py would shadow the
# lakehouse package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from api.settings import get_settings  # noqa: E402
from spark_jobs.alerts import codec, simulate, stream  # noqa: E402
from spark_jobs.alerts.consumer import consume  # noqa: E402
from spark_jobs.alerts.filters import make_filter  # noqa: E402

FILTERS = [
    "diaSource.psfFlux > 1000 AND gaia_sep_arcsec < 1 AND gaia_g_mag < 16",
    "gaia_source_id IS NULL",
    "diaSource.snr > 50",
    "diaSource.isNegative = true",
    "n_prv_sources >= 5",
    "diaSource.reliability > 0.9",
    "gaia_bp_rp > 1.5",
    "gaia_parallax > 5",
    "abs(diaSource.psfFlux) / diaSource.psfFluxErr > 20",
    "diaSource.band IN ('g', 'r')",
    "diaSource.extendedness < 0.1",
    "dec < -20",
    "ra BETWEEN 0 AND 90",
    "diaObject.g_psfFluxMean > 10000",
    "gaia_g_mag BETWEEN 12 AND 14",
    "log10(abs(diaSource.psfFlux) + 1) > 5",
    "diaSource.detector < 20",
    "mjd > 61000.5",
    "n_prv_sources = 0 AND diaSource.snr > 10",
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--visits", type=int, default=4)
    ap.add_argument("--alerts-per-visit", type=int, default=10_000)
    ap.add_argument("--max-offsets", type=int, default=20_000)
    args = ap.parse_args()
    settings = get_settings()
    bootstrap = settings.kafka_bootstrap
    if not bootstrap:
        raise SystemExit("set AVIP_KAFKA_BOOTSTRAP=host:port (e.g. from .devstack/env)")
    from lakehouse.catalog import open_catalog
    from spark_jobs.session import get_spark

    spark = get_spark(app_name="avip-bench-alerts")
    catalog = open_catalog(spark=spark)
    stars = simulate.gaia_stars_from_lakehouse(spark=spark)
    sim = simulate.RubinSimulator(stars=stars, seed=1)
    plans = simulate.plan_night(
        args.visits, simulate.pointings_on(stars, args.visits), args.alerts_per_visit
    )
    print(f"encoding {args.visits} visits of {args.alerts_per_visit} alerts...")
    visits = [simulate.encode_visit(sim, p) for p in plans]
    run = uuid.uuid4().hex[:8]
    filters = [
        make_filter(
            filter_id=i, owner="bench", name=f"f{i:02d}", where=w, topic_prefix=f"bench-{run}"
        )
        for i, w in enumerate(FILTERS)
    ]
    filters.append(
        make_filter(
            filter_id=99, owner="bench", name="all", where="ra >= 0", topic_prefix=f"bench-{run}"
        )
    )
    config = stream.StreamConfig(
        bootstrap=bootstrap,
        checkpoint_dir=f"/tmp/avip-bench-{run}",
        raw_topic=f"bench-raw-{run}",
        dead_letter_topic=f"bench-dlq-{run}",
        commit_topic=f"bench-commits-{run}",
        max_offsets_per_trigger=args.max_offsets,
    )
    job = stream.AlertStream(spark, config, lambda: filters, catalog)
    query = job.start()
    total = sum(len(v) for v in visits)
    latencies: list[float] = []

    def reader() -> None:
        for msg in consume(bootstrap, filters[-1].topic, max_messages=total, idle_timeout_s=120):
            latencies.append(time.time() * 1000 - msg.value["raw_timestamp_ms"])

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 10})
    t0 = time.time()
    for messages in visits:  # bursts, one visit after the other, as fast as possible
        for key, value in messages:
            producer.produce(config.raw_topic, key=key, value=value)
            producer.poll(0)
        producer.flush()
    thread.join()
    elapsed = time.time() - t0
    query.stop()
    job.close()
    lat = np.array(latencies) / 1000
    print(f"alerts: {len(lat)}/{total} through decode → annotate → {len(filters)} filters → output")
    print(f"sustained: {len(lat) / elapsed:,.0f} alerts/s over {elapsed:.1f}s")
    if len(lat):
        print(
            f"latency produce→consume: p50 {np.percentile(lat, 50):.2f}s  "
            f"p99 {np.percentile(lat, 99):.2f}s"
        )
    print(f"(codec check: schema {codec.rubin_schema().version})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
