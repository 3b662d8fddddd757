"""Overlapping HEALPix fields, the unit of work of the cluster finder.

A field is one HEALPix pixel at ``field_order`` plus a margin: every star
whose fine pixel (at ``field_order + margin_levels``) touches the field's
pixel is in it. A star near an edge therefore belongs to two to four fields
and a cluster smaller than the margin lies whole in the field that holds its
centre. Only that field keeps it (see :func:`centre_pixel`), so most
duplicates never arise; the rest are merged afterwards (:mod:`.merge`).

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


def fields_of_stars(
    source_id: np.ndarray, field_order: int, margin_levels: int
) -> tuple[np.ndarray, np.ndarray]:
    """All (row index, field) memberships of stars in overlapping fields.

    Returns two equal-length arrays: the index into ``source_id`` and the
    field (pixel at ``field_order``) that row belongs to. Every star belongs
    to its own pixel's field; stars within one fine pixel of an edge also
    belong to the neighbouring fields.
    """
    fine_order = field_order + margin_levels
    if fine_order > GAIA_ID_ORDER:
        raise ValueError(
            f"field_order + margin_levels must be <= 12, got {field_order} + {margin_levels}"
        )
    fine = pixel_of_source(source_id, fine_order)
    unique_fine, inverse = np.unique(fine, return_inverse=True)
    around = nested.neighbours(unique_fine.astype(np.uint64), fine_order).astype(np.int64)
    shift = 2 * margin_levels
    parents = np.where(around >= 0, around >> shift, -1)
    parents.sort(axis=1)
    # drop repeated parents within a row so each (star, field) pair appears once
    repeated = np.zeros_like(parents, dtype=bool)
    repeated[:, 1:] = parents[:, 1:] == parents[:, :-1]
    parents[repeated] = -1
    per_star = parents[inverse]
    rows, cols = np.nonzero(per_star >= 0)
    return rows, per_star[rows, cols]


def explode_into_fields(frame: pd.DataFrame, field_order: int, margin_levels: int) -> pd.DataFrame:
    """Copy each row once per field it belongs to, adding a ``field`` column."""
    rows, fields = fields_of_stars(frame["source_id"].to_numpy(), field_order, margin_levels)
    out = frame.iloc[rows].reset_index(drop=True)
    out["field"] = fields
    return out


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
