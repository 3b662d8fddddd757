"""Suite-wide fixtures: one local Spark session per test run (UI off, few
shuffle partitions), as delta-io's own test utilities do."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from pyspark.sql import SparkSession


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    from spark_jobs.session import get_spark

    warehouse = tmp_path_factory.mktemp("warehouse")
    session = get_spark(
        "local[2]",
        app_name="avip-tests",
        conf={
            "spark.ui.enabled": "false",
            "spark.sql.shuffle.partitions": "4",
            "spark.sql.warehouse.dir": str(warehouse),
        },
    )
    yield session
    session.stop()


@pytest.fixture(scope="session")
def standalone_master() -> str:
    """The devstack's spark:// URL; `make test` starts the cluster and exports it."""
    master = os.environ.get("AVIP_TEST_SPARK_MASTER")
    if not master:
        pytest.skip("no standalone cluster: run through `make test` (devstack starts it)")
    return master
