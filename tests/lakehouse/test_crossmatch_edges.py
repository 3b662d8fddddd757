"""The zone crossmatch at its own edges: rows on zone and cell boundaries, discs around
the poles, rows without a position, and a row estimate that runs no Spark job."""

from __future__ import annotations

import importlib

import astropy.units as u
import numpy as np
import pandas as pd
import pytest
from astropy.coordinates import SkyCoord, search_around_sky

from lakehouse import crossmatch

xm = importlib.import_module("lakehouse.crossmatch")


def _expected(left: pd.DataFrame, right: pd.DataFrame, radius_arcsec: float) -> set:
    lc = SkyCoord(left["ra"].to_numpy() * u.deg, left["dec"].to_numpy() * u.deg)
    rc = SkyCoord(right["ra"].to_numpy() * u.deg, right["dec"].to_numpy() * u.deg)
    il, ir, _, _ = search_around_sky(lc, rc, radius_arcsec * u.arcsec)
    return set(zip(left["id"].to_numpy()[il], right["id"].to_numpy()[ir], strict=True))


def _pairs(spark, left, right, radius_arcsec, hint) -> list:
    got = crossmatch(
        spark.createDataFrame(left), spark.createDataFrame(right), radius_arcsec, n_rows_hint=hint
    ).toPandas()
    return list(zip(got["id"], got["right_id"], strict=True))


def _moved(rng, ra, dec, max_arcsec):
    c = SkyCoord(ra * u.deg, dec * u.deg).directional_offset_by(
        rng.uniform(0, 2 * np.pi, len(ra)) * u.rad, rng.uniform(0, max_arcsec, len(ra)) * u.arcsec
    )
    return c.ra.deg, c.dec.deg


@pytest.mark.parametrize("hint", [10**3, 10**10])  # the largest, then the smallest cells
def test_rows_on_zone_and_cell_edges(spark, hint):
    """Left rows exactly on the grid's lines and corners (both poles, RA 0/360 included),
    right rows scattered up to 1.5 radii around them: every pair astropy finds, once."""
    radius = 30.0
    grid = xm._Grid(xm.ZoneCrossmatch(radius).zones(hint))
    rng = np.random.default_rng(5)
    zones = np.unique(
        np.r_[0:4, grid.n_zones - 4 : grid.n_zones + 1, rng.integers(0, grid.n_zones, 60)]
    )
    ra, dec = [], []
    for z in zones:
        edge = min(-90 + z * grid.height, 90.0)
        pole_most = max(abs(edge - grid.height), abs(edge)) if z else 90.0
        cells = max(int((1 - pole_most / 90) * (360 / grid.height)), 1)
        for c in np.unique(np.r_[0, 1, cells - 1, rng.integers(0, cells, 8)]):
            ra.append(360.0 * c / cells)
            dec.append(edge)
    ra, dec = np.array(ra) % 360, np.clip(np.array(dec), -90, 90)
    left = pd.DataFrame({"id": np.arange(len(ra)), "ra": ra, "dec": dec})
    copies = 6
    r_ra, r_dec = _moved(rng, np.repeat(ra, copies), np.repeat(dec, copies), 1.5 * radius)
    right = pd.DataFrame({"id": np.arange(len(r_ra)), "ra": r_ra, "dec": r_dec})

    pairs = _pairs(spark, left, right, radius, hint)
    assert len(pairs) == len(set(pairs)), "a pair was returned twice"
    expected = _expected(left, right, radius)
    assert set(pairs) == expected and len(expected) > 1000


def test_discs_around_the_poles(spark):
    """A 0.5° radius near both poles: discs that hold a pole take every RA."""
    rng = np.random.default_rng(8)
    n = 3000
    dec = np.concatenate([90 - rng.uniform(0, 2, n), -90 + rng.uniform(0, 2, n)])
    ra = rng.uniform(0, 360, 2 * n)
    left = pd.DataFrame({"id": np.arange(2 * n), "ra": ra, "dec": dec})
    r_ra, r_dec = _moved(rng, ra[::3], dec[::3], 3600.0)
    right = pd.DataFrame({"id": np.arange(len(r_ra)), "ra": r_ra, "dec": r_dec})
    pairs = _pairs(spark, left, right, 1800.0, None)
    assert len(pairs) == len(set(pairs))
    expected = _expected(left, right, 1800.0)
    assert set(pairs) == expected and len(expected) > 10_000


def test_rows_without_a_position_match_nothing(spark):
    left = pd.DataFrame(
        {"id": [1, 2, 3, 4], "ra": [10.0, np.nan, 10.0, -350.0], "dec": [20.0, 20.0, 95.0, 20.0]}
    )
    right = pd.DataFrame({"id": [7, 8], "ra": [10.0, np.nan], "dec": [20.0, 20.0]})
    # ra -350 is ra 10: a position; NaN and |dec| > 90 are not
    assert sorted(_pairs(spark, left, right, 1.0, None)) == [(1, 7), (4, 7)]


def test_row_estimate_runs_no_job(spark, tmp_path):
    path = str(tmp_path / "rows")
    spark.range(50_000).selectExpr(
        "id", "rand(1) * 360 AS ra", "rand(2) * 180 - 90 AS dec"
    ).write.parquet(path)
    df = spark.read.parquet(path)
    tracker = spark.sparkContext.statusTracker()
    jobs = set(tracker.getJobIdsForGroup(None))
    estimate = xm.estimated_rows(df)
    assert set(tracker.getJobIdsForGroup(None)) == jobs, "the estimate ran a Spark job"
    assert 50_000 / 20 < estimate < 50_000 * 20
