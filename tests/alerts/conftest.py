"""Alert fixtures: the devstack's Kafka broker, the job's config on a test's own topics,
and a small synthetic lakehouse."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest
from testing_utils import kafka_auth

if TYPE_CHECKING:
    from spark_jobs.alerts.stream import StreamConfig


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    bootstrap = os.environ.get("AVIP_TEST_KAFKA_BOOTSTRAP")
    if not bootstrap:
        pytest.skip(
            "no Kafka broker: AVIP_TEST_KAFKA_BOOTSTRAP is unset (run through `make test`, "
            "whose devstack starts one)"
        )
    return bootstrap


@pytest.fixture
def run_id() -> str:
    """A fresh suffix so every test uses its own topics."""
    return uuid.uuid4().hex[:8]


@pytest.fixture
def stream_config(kafka_bootstrap: str, run_id: str, tmp_path: Path) -> Callable[..., StreamConfig]:
    """Makes the job's StreamConfig on the test's broker and own topics (``raw-``, ``dlq-``,
    ``commits-<run_id>``) with its checkpoint in ``tmp_path/ck``; keywords override any field."""

    def make(**overrides: Any) -> StreamConfig:
        from spark_jobs.alerts.stream import StreamConfig

        fields: dict[str, Any] = {
            "bootstrap": kafka_bootstrap,
            "auth": kafka_auth(),
            "checkpoint_dir": str(tmp_path / "ck"),
            "raw_topic": f"raw-{run_id}",
            "dead_letter_topic": f"dlq-{run_id}",
            "commit_topic": f"commits-{run_id}",
        }
        return StreamConfig(**(fields | overrides))

    return make


@pytest.fixture(scope="session")
def gaia_lakehouse(spark, tmp_path_factory) -> tuple[str, pd.DataFrame, tuple[float, float]]:
    """A 20,000-star synthetic catalogue; returns (root, all stars, densest cluster centre)."""
    from lakehouse.ingest import ingest_synthetic

    root = str(tmp_path_factory.mktemp("lakehouse"))
    ingest_synthetic(spark, root, rows=20_000, seed=3)
    stars = (
        spark.read.format("delta")
        .load(f"{root}/gaia_source")
        .select("source_id", "ra", "dec", "phot_g_mean_mag", "bp_rp", "parallax")
        .toPandas()
    )
    clusters = spark.read.format("delta").load(f"{root}/synthetic_clusters").toPandas()
    best = clusters.sort_values("n_members", ascending=False).iloc[0]
    return root, stars, (float(best["ra"]), float(best["dec"]))
