"""Overlapping HEALPix fields, the unit of work of the cluster finder.

A field is one HEALPix pixel plus a margin: every star whose fine pixel (at
the field's order + ``margin_levels``) touches the field's pixel is in it.
Fields start at ``field_order`` and dense pixels are split to deeper
orders (:func:`plan_fields`), so every field holds a few thousand to a few
ten thousand stars; a field is named by its NUNIQ id. A star near an edge
therefore belongs to two to four fields and a cluster smaller than the margin
lies whole in the field that holds its centre. Only that field keeps it (see
:func:`centre_pixel`), so most duplicates never arise; the rest are merged
afterwards (:mod:`.merge`).

The pixel of a star comes from its ``source_id`` (bits 35+ are its level-12
nested HEALPix index, the platform's spatial key); neighbours come from
``cdshealpix``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from cdshealpix import nested

GAIA_ID_ORDER = 12
GAIA_ID_SHIFT = 35


def pixel_of_source(source_id: np.ndarray, order: int) -> np.ndarray:
    """Nested HEALPix index at ``order`` (<= 12) encoded in Gaia ``source_id`` values.

    >>> int(pixel_of_source(np.array([(5 << 35) + 7]), 12)[0])
    5
    """
    if not 0 <= order <= GAIA_ID_ORDER:
        raise ValueError(f"order must be within 0..12, got {order}")
    shift = GAIA_ID_SHIFT + 2 * (GAIA_ID_ORDER - order)
    return np.asarray(source_id, dtype=np.int64) >> shift


def field_id(order: int | np.ndarray, pixel: np.ndarray) -> np.ndarray:
    """NUNIQ id of a field (``4 * 4**order + pixel``): one integer for any order."""
    return (np.int64(4) << (2 * np.asarray(order, dtype=np.int64))) + np.asarray(pixel, np.int64)


def field_order_pixel(uniq: int) -> tuple[int, int]:
    """(order, pixel) of a NUNIQ field id.

    >>> field_order_pixel(int(field_id(3, np.array([5]))[0]))
    (3, 5)
    """
    order = (int(uniq).bit_length() - 3) // 2
    return order, int(uniq) - (4 << (2 * order))


def plan_fields(
    pixel_counts: pd.Series, count_order: int, base_order: int, max_stars: int
) -> np.ndarray:
    """Adaptive fields: order-``base_order`` pixels, split while they hold > ``max_stars``.

    ``pixel_counts`` maps pixels at ``count_order`` to star counts. HDBSCAN's cost
    grows faster than linearly with the stars in a field, and one bulge field
    at a fixed order would hold a hundred times the stars of a high-latitude
    one and keep one core busy long after the others are done; splitting the
    dense pixels (as HATS partitions a catalogue) bounds both. Returns the
    sorted NUNIQ ids of fields tiling the whole sky (empty pixels included).
    """
    if not base_order <= count_order <= GAIA_ID_ORDER:
        raise ValueError(f"count_order {count_order} must be within {base_order}..12")
    pixels = pixel_counts.index.to_numpy(dtype=np.int64)
    counts = pixel_counts.to_numpy(dtype=np.int64)
    fields: list[np.ndarray] = []
    todo = np.arange(12 * 4**base_order, dtype=np.int64)
    for order in range(base_order, count_order + 1):
        parent = pixels >> (2 * (count_order - order))
        per_pixel = np.bincount(parent, weights=counts, minlength=12 * 4**order)[todo]
        split = (per_pixel > max_stars) & (order < count_order)
        fields.append(field_id(order, todo[~split]))
        todo = (todo[split][:, None] * 4 + np.arange(4)).ravel()
        if not len(todo):
            break
    return np.sort(np.concatenate(fields))


def fields_of_stars(
    source_id: np.ndarray, fields: np.ndarray, margin_levels: int
) -> tuple[np.ndarray, np.ndarray]:
    """All (row index, field) memberships of stars in overlapping fields.

    ``fields`` are NUNIQ ids (:func:`plan_fields`). Returns two equal-length
    arrays: the index into ``source_id`` and the field id that row belongs to.
    Every star belongs to the field holding it; stars within one pixel at
    (field order + ``margin_levels``) of a field's edge also belong to that field.
    """
    orders = sorted({field_order_pixel(int(u))[0] for u in np.unique(fields)})
    if orders and orders[-1] + margin_levels > GAIA_ID_ORDER:
        raise ValueError(
            f"field order + margin_levels must be <= 12, got {orders[-1]} + {margin_levels}"
        )
    all_rows, all_fields = [], []
    for order in orders:
        fine_order = order + margin_levels
        fine = pixel_of_source(source_id, fine_order)
        unique_fine, inverse = np.unique(fine, return_inverse=True)
        around = nested.neighbours(unique_fine.astype(np.uint64), fine_order, num_threads=1)
        around = around.astype(np.int64)
        parents = np.maximum(around, 0) >> (2 * margin_levels)
        ids = np.where(around >= 0, field_id(order, parents), -1)
        ids[~np.isin(ids, fields)] = -1
        ids.sort(axis=1)
        # drop repeated fields within a row so each (star, field) pair appears once
        repeated = np.zeros_like(ids, dtype=bool)
        repeated[:, 1:] = ids[:, 1:] == ids[:, :-1]
        ids[repeated] = -1
        per_star = ids[inverse]
        rows, cols = np.nonzero(per_star >= 0)
        all_rows.append(rows)
        all_fields.append(per_star[rows, cols])
    if not all_rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(all_rows), np.concatenate(all_fields)


def explode_into_fields(
    frame: pd.DataFrame, fields: np.ndarray, margin_levels: int
) -> pd.DataFrame:
    """Copy each row once per field it belongs to, adding a ``field`` (NUNIQ id) column."""
    rows, ids = fields_of_stars(frame["source_id"].to_numpy(), fields, margin_levels)
    out = frame.iloc[rows].reset_index(drop=True)
    out["field"] = ids
    return out


def pixel_field_table(
    pixels: np.ndarray, pixel_order: int, fields: np.ndarray, margin_levels: int
) -> pd.DataFrame:
    """The field assignment as a small join table: one row per (pixel, field).

    All stars of one pixel at ``pixel_order`` (at least the deepest field's
    order + ``margin_levels``) belong to the same fields, so the fields of the
    non-empty pixels, computed once on the driver by :func:`fields_of_stars`,
    let Spark assign every star by a broadcast join on its pixel instead of
    sending the whole sky through Python to be copied there.
    """
    orders = [field_order_pixel(int(u))[0] for u in np.unique(fields)]
    if orders and max(orders) + margin_levels > pixel_order:
        raise ValueError(
            f"pixel_order {pixel_order} must be >= the deepest field order + margin_levels "
            f"({max(orders)} + {margin_levels})"
        )
    pixels = np.asarray(pixels, dtype=np.int64)
    first_source = pixels << (GAIA_ID_SHIFT + 2 * (GAIA_ID_ORDER - pixel_order))
    rows, ids = fields_of_stars(first_source, fields, margin_levels)
    return pd.DataFrame({"pixel": pixels[rows], "field": ids})


FIELD_COST_EXPONENT = 1.3  # per-field time ~ stars**1.3, fitted on synthetic-sky fields


def balance_fields(field_stars: pd.Series, n_buckets: int) -> pd.Series:
    """Bucket (0 = heaviest) of each field, so buckets run largest-first and end together.

    ``field_stars`` maps field ids to their star counts (margins included).
    Fields go, most expensive first, to the least loaded bucket (longest
    processing time first; the load estimate is stars**1.3, as HDBSCAN's cost
    grows faster than linearly); buckets are then numbered by decreasing load.
    Spark starts tasks in partition order, so with bucket ``i`` in partition
    ``i`` a big bulge field starts early instead of leaving one core to finish
    it alone while the other idles.
    """
    if n_buckets < 1:
        raise ValueError(f"n_buckets must be >= 1, got {n_buckets}")
    cost = field_stars.to_numpy(dtype=np.float64) ** FIELD_COST_EXPONENT
    load = np.zeros(n_buckets)
    bucket = np.empty(len(cost), dtype=np.int64)
    for i in np.argsort(-cost, kind="stable"):
        b = int(np.argmin(load))
        bucket[i] = b
        load[b] += cost[i]
    rank = np.empty(n_buckets, dtype=np.int64)
    rank[np.argsort(-load, kind="stable")] = np.arange(n_buckets)
    return pd.Series(rank[bucket], index=field_stars.index, name="bucket")


def mean_direction(lon_deg: np.ndarray, lat_deg: np.ndarray) -> tuple[float, float]:
    """Mean position of points on the sphere (unit-vector mean), in degrees.

    Safe across the 0/360 wrap, unlike an arithmetic mean of longitudes.

    >>> [round(v, 6) for v in mean_direction(np.array([359.0, 1.0]), np.array([0.0, 0.0]))]
    [0.0, 0.0]
    """
    lon, lat = np.radians(lon_deg), np.radians(lat_deg)
    x = np.mean(np.cos(lat) * np.cos(lon))
    y = np.mean(np.cos(lat) * np.sin(lon))
    z = np.mean(np.sin(lat))
    mean_lon = np.degrees(np.arctan2(y, x)) % 360.0
    mean_lat = np.degrees(np.arctan2(z, np.hypot(x, y)))
    return float(mean_lon), float(mean_lat)


def centre_pixel(ra_deg: float, dec_deg: float, order: int) -> int:
    """HEALPix pixel (nested) holding a position, at ``order``."""
    import astropy.units as u

    pix = nested.lonlat_to_healpix(
        np.array([ra_deg]) * u.deg, np.array([dec_deg]) * u.deg, order
    )
    return int(pix[0])


def tangent_plane(
    lon_deg: np.ndarray, lat_deg: np.ndarray, lon0_deg: float, lat0_deg: float
) -> tuple[np.ndarray, np.ndarray]:
    """Gnomonic projection around (lon0, lat0), in degrees: local flat coordinates.

    Used instead of raw (l, b) so a field crossing l = 0 or a pole is not torn apart.
    """
    lon, lat = np.radians(lon_deg), np.radians(lat_deg)
    lon0, lat0 = np.radians(lon0_deg), np.radians(lat0_deg)
    cos_c = np.sin(lat0) * np.sin(lat) + np.cos(lat0) * np.cos(lat) * np.cos(lon - lon0)
    x = np.cos(lat) * np.sin(lon - lon0) / cos_c
    y = (np.cos(lat0) * np.sin(lat) - np.sin(lat0) * np.cos(lat) * np.cos(lon - lon0)) / cos_c
    return np.degrees(x), np.degrees(y)
