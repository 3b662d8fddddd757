"""Crossmatch equals astropy's search_around_sky: no pair lost or duplicated across pixel edges."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pandas as pd
import pytest
from astropy.coordinates import SkyCoord, search_around_sky

from lakehouse import crossmatch, open_catalog


def _right_table(pdf: pd.DataFrame, seed: int = 3) -> pd.DataFrame:
    """Perturbed copies of 40% of the left rows (0-3 arcsec away), some twice, plus noise."""
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(pdf), int(0.4 * len(pdf)), replace=False)
    pick = np.concatenate([pick, pick[:2000]])  # doubles: several right rows per left row
    base = SkyCoord(pdf["ra"].to_numpy()[pick] * u.deg, pdf["dec"].to_numpy()[pick] * u.deg)
    moved = base.directional_offset_by(
        rng.uniform(0, 2 * np.pi, len(pick)) * u.rad, rng.uniform(0, 3.0, len(pick)) * u.arcsec
    )
    extra_ra = rng.uniform(0, 360, 5000)
    extra_dec = np.degrees(np.arcsin(rng.uniform(-1, 1, 5000)))
    ra = np.concatenate([moved.ra.deg, extra_ra])
    dec = np.concatenate([moved.dec.deg, extra_dec])
    return pd.DataFrame(
        {
            "obj_id": np.arange(len(ra), dtype=np.int64),
            "ra": ra,
            "dec": dec,
            "flux": rng.uniform(1, 100, len(ra)),
        }
    )


@pytest.mark.parametrize("rows_hint", [None, 10**9])  # coarse buckets, then ~6000 small ones
def test_crossmatch_equals_search_around_sky(spark, edge_sky, rows_hint):
    root, pdf = edge_sky
    right = _right_table(pdf)
    radius = 2.0
    left_df = open_catalog(root, spark=spark).select("source_id", "ra", "dec").df
    got = crossmatch(
        left_df, spark.createDataFrame(right), radius, n_rows_hint=rows_hint
    ).toPandas()

    lc = SkyCoord(pdf["ra"].to_numpy() * u.deg, pdf["dec"].to_numpy() * u.deg)
    rc = SkyCoord(right["ra"].to_numpy() * u.deg, right["dec"].to_numpy() * u.deg)
    il, ir, sep, _ = search_around_sky(lc, rc, radius * u.arcsec)
    expected = set(
        zip(pdf["source_id"].to_numpy()[il], right["obj_id"].to_numpy()[ir], strict=True)
    )

    pairs = list(zip(got["source_id"], got["right_obj_id"], strict=True))
    assert len(pairs) == len(set(pairs)), "a pair was returned twice"
    assert set(pairs) == expected
    assert len(expected) > 10_000
    # separations agree with astropy's
    astro = dict(
        zip(
            zip(pdf["source_id"].to_numpy()[il], right["obj_id"].to_numpy()[ir], strict=True),
            sep.arcsec,
            strict=True,
        )
    )
    ours = dict(zip(pairs, got["sep_arcsec"], strict=True))
    assert max(abs(ours[k] - astro[k]) for k in expected) < 1e-6
    assert list(got.columns[-5:]) == [
        "right_obj_id",
        "right_ra",
        "right_dec",
        "right_flux",
        "sep_arcsec",
    ]


def test_catalog_crossmatch_and_bad_radius(spark, edge_sky):
    root, pdf = edge_sky
    cat = open_catalog(root, spark=spark).cone(0, 90, 2.0).select("source_id", "ra", "dec")
    same = cat.crossmatch(cat, 0.001).toPandas()  # every row matches itself at zero separation
    assert set(same["source_id"]) == set(same["right_source_id"])
    assert (same["sep_arcsec"] < 1e-6).all() or len(same) == len(set(same["source_id"]))
    with pytest.raises(ValueError, match="radius must be in"):
        cat.crossmatch(cat, -1)
    with pytest.raises(ValueError, match="needs ra and dec"):
        cat.crossmatch(cat.select("source_id").df, 1)
