"""Adaptive overlapping fields of the cluster finder, checked against cdshealpix directly."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pandas as pd
import pytest
from cdshealpix import nested

from avi_plugins.bundled.cluster_finder.fields import (
    FIELD_COST_EXPONENT,
    balance_fields,
    field_order_pixel,
    fields_of_stars,
    pixel_field_table,
    pixel_of_source,
    plan_fields,
)


def _stars(n: int, seed: int = 3) -> np.ndarray:
    """source_ids of stars crowded toward one spot (a 'bulge') plus a uniform sky."""
    rng = np.random.default_rng(seed)
    lon = np.concatenate([rng.uniform(0, 360, n), rng.normal(266.4, 2.0, n) % 360])
    lat = np.concatenate([np.degrees(np.arcsin(rng.uniform(-1, 1, n))),
                          np.clip(rng.normal(-29.0, 2.0, n), -89, 89)])
    pix12 = nested.lonlat_to_healpix(lon * u.deg, lat * u.deg, 12).astype(np.int64)
    return (pix12 << 35) + np.arange(2 * n)


def test_fields_tile_the_sky_and_dense_pixels_are_split():
    source_id = _stars(20000)
    counts = pd.Series(pixel_of_source(source_id, 6)).value_counts()
    fields = plan_fields(counts, 6, 3, max_stars=2000)
    orders, pixels = zip(*(field_order_pixel(int(f)) for f in fields), strict=True)
    orders = np.array(orders)
    assert np.isclose(np.sum(4.0 ** -orders), 12.0)  # the fields cover the sphere exactly once
    assert orders.max() > 3  # the crowded spot was split
    own = {}
    for order, pixel in zip(orders, pixels, strict=True):
        own[(int(order), int(pixel))] = np.count_nonzero(
            pixel_of_source(source_id, int(order)) == pixel)
    split_limit_ok = [n <= 2000 for (order, _), n in own.items() if order < 6]
    assert all(split_limit_ok)
    assert sum(own.values()) == len(source_id)  # every star lies in exactly one field's pixel


def test_every_star_is_in_its_own_field_and_margins_reach_neighbours():
    source_id = _stars(5000)
    counts = pd.Series(pixel_of_source(source_id, 6)).value_counts()
    fields = plan_fields(counts, 6, 3, max_stars=800)
    rows, ids = fields_of_stars(source_id, fields, margin_levels=2)
    pairs = pd.DataFrame({"row": rows, "field": ids})
    assert not pairs.duplicated().any()
    for row in np.random.default_rng(0).choice(len(source_id), 300, replace=False):
        mine = pairs.loc[pairs.row == row, "field"].tolist()
        holding = [f for f in mine
                   if pixel_of_source(source_id[row:row + 1], field_order_pixel(f)[0])[0]
                   == field_order_pixel(f)[1]]
        assert len(holding) == 1  # exactly one field holds the star; the others are margins
        # any field whose pixel comes within 0.4 fine pixels of the star has it in its margin
        lon, lat = nested.healpix_to_lonlat(source_id[row:row + 1] >> 35, 12)
        for order in sorted(set(orders_of(fields))):
            radius = 0.4 * _pixel_size_deg(order + 2) * u.deg
            near, _, _ = nested.cone_search(lon[0], lat[0], radius, order, flat=True)
            near_fields = {int(4 * 4**order + p) for p in near.astype(np.int64)} & set(
                fields.tolist())
            assert near_fields <= set(mine)


def orders_of(fields: np.ndarray) -> list[int]:
    return [field_order_pixel(int(f))[0] for f in fields]


def _pixel_size_deg(order: int) -> float:
    return float(np.degrees(np.sqrt(4 * np.pi / (12 * 4**order))))


def test_pixel_table_join_gives_the_same_fields_as_per_star_assignment():
    source_id = _stars(5000, seed=5)
    counts = pd.Series(pixel_of_source(source_id, 6)).value_counts()
    fields = plan_fields(counts, 6, 3, max_stars=800)
    pixel_order = 6 + 2
    pixels = np.unique(pixel_of_source(source_id, pixel_order))
    table = pixel_field_table(pixels, pixel_order, fields, margin_levels=2)
    joined = pd.DataFrame({"row": np.arange(len(source_id)),
                           "pixel": pixel_of_source(source_id, pixel_order)}).merge(table)
    rows, ids = fields_of_stars(source_id, fields, margin_levels=2)
    per_star = pd.DataFrame({"row": rows, "field": ids})
    key = ["row", "field"]
    assert len(per_star) > len(source_id)  # margins copy some stars
    pd.testing.assert_frame_equal(joined[key].sort_values(key).reset_index(drop=True),
                                  per_star.sort_values(key).reset_index(drop=True))


def test_pixel_table_refuses_pixels_coarser_than_the_margins():
    fields = plan_fields(pd.Series({0: 10}), 6, 3, max_stars=800)
    with pytest.raises(ValueError, match="pixel_order"):
        pixel_field_table(np.array([0]), 4, fields, margin_levels=2)


def test_balanced_buckets_run_heaviest_first_and_stay_within_the_lpt_bound():
    rng = np.random.default_rng(1)
    stars = pd.Series(np.concatenate([rng.integers(1, 2000, 500), [40000, 30000, 25000]]),
                      index=np.arange(1000, 1503))
    bucket = balance_fields(stars, 8)
    assert bucket.index.equals(stars.index) and set(bucket) == set(range(8))
    cost = stars.astype(float) ** FIELD_COST_EXPONENT
    load = cost.groupby(bucket).sum().sort_index()
    assert load.is_monotonic_decreasing  # bucket 0 is the heaviest
    assert bucket[1500] == 0  # the biggest field is in the first bucket
    # greedy longest-first packing: no bucket exceeds the mean load by more than one field
    assert load.max() <= cost.sum() / 8 + cost.max() + 1e-6
