"""ADQL answers equal astropy's brute force, ``Catalog.cone`` and DuckDB: on both engines
(in-process and Spark), at the poles, across RA 0/360, for a 5° cone, a box and a polygon,
and for the seed query of the ESCAPE platform over every row."""

from __future__ import annotations

from typing import Any

import astropy.units as u
import duckdb
import numpy as np
import pyarrow as pa
import pytest
from astropy.coordinates import SkyCoord
from vo_support import SEED_QUERY

from lakehouse.adql import plan
from lakehouse.adql.local import run_local
from lakehouse.adql.tap_schema import catalogue_sources, tap_schema_sources, tap_schema_tables
from lakehouse.regions import angular_distance_deg, points_in_spherical_polygon

CONES = [  # (ra, dec, radius): both poles, either side of RA 0/360, a 5° cone
    (12.0, 89.0, 4.0), (250.0, -88.0, 4.0), (0.5, 60.0, 3.0), (359.5, -60.0, 3.0),
    (120.0, -30.0, 5.0)]


@pytest.fixture(scope="module")
def engines(vo_lake: str, spark: Any) -> dict[str, Any]:
    from lakehouse.catalog import open_catalog
    from lakehouse.interactive import open_interactive

    reader = open_interactive(vo_lake)
    catalog = open_catalog(vo_lake, spark=spark)
    tables = {"gaia_source": reader.columns}
    return {"reader": reader, "catalog": catalog, "tables": tables,
            "sources": [*catalogue_sources(tables), *tap_schema_sources()],
            "tap_schema": tap_schema_tables(tables)}


def run_both(engines: dict[str, Any], query: str) -> tuple[pa.Table, pa.Table]:
    from lakehouse.adql.spark import run_spark

    checked = plan(query, engines["sources"])
    local = run_local(checked, catalogue=lambda _: engines["reader"], uploads={},
                      tap_schema=engines["tap_schema"], maxrec=10**7, scan_rows=10**8)
    on_spark = run_spark(checked, spark=engines["catalog"].spark,
                         catalogue=lambda _: engines["catalog"], uploads={},
                         tap_schema=engines["tap_schema"], maxrec=10**7)
    assert not local.overflow and not on_spark.overflow
    return local.table, on_spark.table


def ids(table: pa.Table) -> set[int]:
    return set(table["source_id"].to_pylist())


@pytest.mark.parametrize(("ra", "dec", "radius"), CONES)
def test_cones_equal_astropy_and_catalog_cone(engines: dict[str, Any], sky: pa.Table,
                                              ra: float, dec: float, radius: float) -> None:
    centre = SkyCoord(ra * u.deg, dec * u.deg)
    near = centre.separation(SkyCoord(sky["ra"].to_numpy() * u.deg,
                                      sky["dec"].to_numpy() * u.deg)) <= radius * u.deg
    truth = set(sky["source_id"].to_numpy()[near].tolist())
    assert len(truth) >= 5  # the sky holds rows there: the comparison means something
    by_catalog = ids(engines["catalog"].cone(ra, dec, radius).select("source_id").df.toArrow())
    for form in (f"1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra}, {dec}, {radius}))",
                 f"DISTANCE(POINT(ra, dec), POINT({ra}, {dec})) <= {radius}"):
        local, on_spark = run_both(engines, f"SELECT source_id FROM gaia_source WHERE {form}")
        assert ids(local) == truth == ids(on_spark) == by_catalog


def test_a_box_and_a_polygon_equal_brute_force(engines: dict[str, Any], sky: pa.Table) -> None:
    ra, dec = sky["ra"].to_numpy(), sky["dec"].to_numpy()
    box = (np.abs((ra - 0.0 + 540.0) % 360.0 - 180.0) <= 3.0) & (np.abs(dec - 60.0) <= 2.5)
    local, on_spark = run_both(engines, "SELECT source_id FROM gaia_source WHERE "
                               "1 = CONTAINS(POINT(ra, dec), BOX('ICRS', 0, 60, 6, 5))")
    assert ids(local) == ids(on_spark) == set(sky["source_id"].to_numpy()[box].tolist())
    assert box.sum() >= 5
    vertices = np.array([[115.0, -35.0], [125.0, -35.0], [120.0, -25.0]])
    # the winding test also holds at the polygon's antipode: only the near hemisphere counts
    near = angular_distance_deg(ra, dec, 120.0, -31.0) < 90.0
    inside = near & points_in_spherical_polygon(ra, dec, vertices[:, 0], vertices[:, 1])
    local, on_spark = run_both(engines, "SELECT source_id FROM gaia_source WHERE 1 = CONTAINS("
                               "POINT(ra, dec), POLYGON('ICRS', 115, -35, 125, -35, 120, -25))")
    assert ids(local) == ids(on_spark) == set(sky["source_id"].to_numpy()[inside].tolist())
    assert inside.sum() >= 5


def test_the_seed_query_equals_duckdb_over_the_files(engines: dict[str, Any],
                                                     sky_files: list[str]) -> None:
    where = SEED_QUERY.split(" WHERE ", 1)[1]
    with duckdb.connect() as con:
        expected = con.execute(f"SELECT COUNT(*) FROM read_parquet(?) WHERE {where}",
                               [sky_files]).fetchone()[0]
    local, on_spark = run_both(engines, SEED_QUERY)
    assert local.column(0).to_pylist() == on_spark.column(0).to_pylist() == [expected]
    assert expected > 0


def test_aggregates_and_order_agree_between_engines(engines: dict[str, Any]) -> None:
    query = ("SELECT TOP 20 ROUND(phot_g_mean_mag, 0) AS g, COUNT(*) AS n, AVG(parallax) AS plx "
             "FROM gaia_source WHERE 1 = CONTAINS(POINT(ra, dec), CIRCLE(120, -30, 5)) "
             "GROUP BY ROUND(phot_g_mean_mag, 0) ORDER BY g")
    local, on_spark = run_both(engines, query)
    assert local["g"].to_pylist() == on_spark["g"].to_pylist()
    assert local["n"].to_pylist() == on_spark["n"].to_pylist()
    np.testing.assert_allclose(local["plx"].to_numpy(zero_copy_only=False),
                               on_spark["plx"].to_numpy(zero_copy_only=False), rtol=1e-9)
