"""Fixtures for the AVI tests: a small synthetic lakehouse, written by lakehouse.layout."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
# PySpark's SparkContext takes the worker interpreter from PYSPARK_PYTHON only
# (spark.pyspark.python is read by spark-submit, not by an in-process context);
# without it pandas UDF workers start a bare python3. Until the session factory
# sets it, the AVI tests do.
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
from skygen import make_sky  # noqa: E402


def write_gaia(spark, root: str, stars: pd.DataFrame) -> int:
    """Append stars (any subset of DR3 columns) to ``root``/gaia_source; return the version."""
    from lakehouse import layout
    from lakehouse.schema import GAIA_SOURCE, numpy_dtype, spark_schema

    n = len(stars)
    full = pd.DataFrame(index=range(n))
    for column in GAIA_SOURCE:
        if column.name in stars:
            full[column.name] = stars[column.name].to_numpy().astype(numpy_dtype(column.name))
        elif column.name == "designation":
            full[column.name] = "Gaia DR3 " + stars["source_id"].astype(str).to_numpy()
        elif column.kind in ("long", "int", "short"):
            full[column.name] = np.zeros(n, dtype=numpy_dtype(column.name))
        else:
            full[column.name] = np.full(n, np.nan, dtype=numpy_dtype(column.name))
    df = spark.createDataFrame(full, schema=spark_schema())
    margin = layout.sourceid_position_offset_deg(
        full["source_id"].to_numpy(), full["ra"].to_numpy(), full["dec"].to_numpy()
    )
    return layout.write_catalog(df, f"{root}/gaia_source", margin_deg=margin, n_rows=n)


@pytest.fixture(scope="session")
def sky() -> tuple[pd.DataFrame, pd.DataFrame]:
    return make_sky(n_field=20000, n_clusters=10, seed=7)


@pytest.fixture(scope="session")
def lakehouse_root(spark, sky, tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("lakehouse"))
    write_gaia(spark, root, sky[0])
    return root
