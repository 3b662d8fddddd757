"""A test sky built to hit the hard places: both poles, RA 0/360 and HEALPix
pixel edges and corners, plus uniform background; written in the real layout."""

from __future__ import annotations

import astropy.units as u
import cdshealpix.nested as hp
import numpy as np
import pandas as pd
import pytest

from lakehouse import healpix
from lakehouse.layout import write_catalog
from lakehouse.schema import COLUMN_NAMES, numpy_dtype, spark_schema

EDGE_ORDER = 2  # partition order used for the edge sky: 192 partitions, many edges


def _uniform(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.uniform(0, 360, n), np.degrees(np.arcsin(rng.uniform(-1, 1, n)))


def _around(rng, ra0, dec0, radius_deg, n):
    """n points scattered within radius_deg of each (ra0, dec0), via tangent offsets."""
    ra0, dec0 = np.repeat(ra0, n), np.repeat(dec0, n)
    r = radius_deg * np.sqrt(rng.uniform(0, 1, len(ra0)))
    theta = rng.uniform(0, 2 * np.pi, len(ra0))
    from astropy.coordinates import SkyCoord

    c = SkyCoord(ra0 * u.deg, dec0 * u.deg).directional_offset_by(theta * u.rad, r * u.deg)
    return c.ra.deg, c.dec.deg


def edge_positions(seed: int = 11) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    parts = [_uniform(rng, 40_000)]
    parts.append(_around(rng, np.array([0.0, 0.0]), np.array([90.0, -90.0]), 2.5, 6000))
    parts.append(
        (
            np.concatenate([rng.uniform(359.0, 360.0, 4000), rng.uniform(0, 1.0, 4000)]),
            rng.uniform(-70, 70, 8000),
        )
    )
    pix = rng.choice(12 * 4**EDGE_ORDER, 40, replace=False).astype(np.uint64)
    lon, lat = hp.vertices(pix, EDGE_ORDER)
    parts.append(_around(rng, lon.to_value(u.deg).ravel(), lat.to_value(u.deg).ravel(), 0.2, 60))
    ra = np.concatenate([p[0] for p in parts]) % 360
    dec = np.clip(np.concatenate([p[1] for p in parts]), -90, 90)
    return ra, dec


def rows_for(ra: np.ndarray, dec: np.ndarray, first_index: int = 0) -> pd.DataFrame:
    """gaia_source rows at these positions; source_id encodes their HEALPix-12 pixel."""
    n = len(ra)
    pdf = pd.DataFrame({c: np.full(n, np.nan) for c in COLUMN_NAMES})
    idx = np.arange(first_index, first_index + n, dtype=np.int64)
    pdf["source_id"] = (healpix.healpix_index(ra, dec, 12) << 35) | idx
    pdf["ra"], pdf["dec"] = ra, dec
    pdf["phot_g_mean_mag"] = 10 + (idx % 100) / 10
    pdf["designation"] = "test " + pdf["source_id"].astype(str)
    pdf["random_index"] = idx
    pdf["visibility_periods_used"] = 10
    return pdf.astype({c: numpy_dtype(c) for c in COLUMN_NAMES})


@pytest.fixture(scope="session")
def edge_sky(spark, tmp_path_factory):
    """(root, pandas rows) of the edge sky written as gaia_source at partition order 2."""
    root = str(tmp_path_factory.mktemp("edge_lakehouse"))
    ra, dec = edge_positions()
    pdf = rows_for(ra, dec)
    df = spark.createDataFrame(pdf, schema=spark_schema())
    write_catalog(df, f"{root}/gaia_source", partition_order=EDGE_ORDER, n_rows=len(pdf))
    return root, pdf


@pytest.fixture
def edge_rows_for():
    """The row builder, for tests that write their own small tables."""
    return rows_for
