"""One synthetic sky and one running platform (API + scheduler, the real AVIs) for the VO
tests, and the truth they are checked against: the sky's rows read straight from its
Delta table's Parquet files (deltalake), not through any of our readers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest

from config.settings import Settings


@pytest.fixture(scope="session")
def vo_lake(tmp_path_factory: pytest.TempPathFactory, ingest_synthetic_cli: Any) -> str:
    return ingest_synthetic_cli(str(tmp_path_factory.mktemp("vo-lake")), rows=200_000,
                                seed=31, clusters=2, timeout_s=600)


@pytest.fixture(scope="session")
def sky(vo_lake: str) -> pa.Table:
    """Every row of the sky, from the Delta table as delta-rs reads it."""
    from deltalake import DeltaTable

    return DeltaTable(f"{vo_lake}/gaia_source").to_pyarrow_table()


@pytest.fixture(scope="session")
def sky_files(vo_lake: str) -> list[str]:
    from deltalake import DeltaTable

    return [uri.removeprefix("file://") for uri in DeltaTable(f"{vo_lake}/gaia_source").file_uris()]


@pytest.fixture(scope="session")
def vo_platform(vo_lake: str, tmp_path_factory: pytest.TempPathFactory,
                serve_api: Any) -> Iterator[Any]:
    """The API with its scheduler on the sky; ``alice`` and ``bob`` tokens."""
    from api.avis import RegistryCatalogue

    data = tmp_path_factory.mktemp("vo-platform")
    settings = Settings(data_dir=data / "data", lakehouse_uri=vo_lake, cluster_cores=2,
                        cluster_memory_mb=4096, spark_master="local[2]")
    with serve_api(settings, catalogue=RegistryCatalogue(), run_scheduler=True) as api:
        api.alice = api.make_user("alice")
        api.bob = api.make_user("bob")
        yield api
