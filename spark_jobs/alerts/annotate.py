"""Attach to each alert its nearest Gaia source, found through the HEALPix index.

Per micro-batch the driver turns the alerts' positions into HEALPix cells at
:data:`ANNOTATION_ORDER` (13.7 arcmin) plus their eight neighbours, so a star
across a cell edge is never missed for radii far below the cell size; the
catalogue is read for exactly those cells (``Catalog.pixels``: partition
pruning and source_id ranges, never a full scan), and the few thousand stars
found are broadcast. Each executor then answers nearest-neighbour queries with
a KD-tree on unit vectors and reports the exact great-circle separation.
Positions are compared as given: Gaia at epoch 2016, alerts at their epoch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from lakehouse import healpix

ANNOTATION_ORDER = 8
GAIA_SOURCE_COLUMNS = ("source_id", "ra", "dec", "phot_g_mean_mag", "bp_rp", "parallax")
MAX_RADIUS_ARCSEC = 60.0


def cells_around(
    ra_deg: np.ndarray, dec_deg: np.ndarray, order: int = ANNOTATION_ORDER
) -> list[int]:
    """Sorted unique cells holding the positions, plus every neighbour of each."""
    import cdshealpix.nested as hp

    if len(ra_deg) == 0:
        return []
    own = np.unique(healpix.healpix_index(ra_deg, dec_deg, order))
    around = hp.neighbours(own.astype(np.uint64), order).astype(np.int64)
    cells = np.unique(np.concatenate([own, around[around >= 0]]))
    return [int(c) for c in cells]


def gaia_near_empty() -> pd.DataFrame:
    """No stars (annotation switched off): every alert gets null gaia_* columns."""
    return pd.DataFrame(
        {
            c: pd.Series([], dtype="int64" if c == "source_id" else float)
            for c in GAIA_SOURCE_COLUMNS
        }
    )


def gaia_near(catalog: Any, ra_deg: np.ndarray, dec_deg: np.ndarray) -> pd.DataFrame:
    """Catalogue stars in the cells around the given positions (pandas)."""
    cells = cells_around(ra_deg, dec_deg)
    if not cells:
        return gaia_near_empty()
    return catalog.pixels(ANNOTATION_ORDER, cells).select(*GAIA_SOURCE_COLUMNS).df.toPandas()


def _unit(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    return np.column_stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])


def nearest(
    ra_deg: np.ndarray, dec_deg: np.ndarray, stars: dict[str, np.ndarray], radius_arcsec: float
) -> tuple[np.ndarray, np.ndarray]:
    """Index into ``stars`` of each position's nearest star within the radius (-1 if none),
    and the separation in arcsec (NaN if none)."""
    from scipy.spatial import cKDTree

    n = len(ra_deg)
    idx = np.full(n, -1, dtype=np.int64)
    sep = np.full(n, np.nan)
    if n == 0 or len(stars["ra"]) == 0:
        return idx, sep
    tree = cKDTree(_unit(stars["ra"], stars["dec"]))
    chord = 2 * np.sin(np.radians(radius_arcsec / 3600) / 2)
    p = _unit(np.asarray(ra_deg, float), np.asarray(dec_deg, float))
    dist, j = tree.query(p, k=1, distance_upper_bound=chord * (1 + 1e-9))
    found = np.isfinite(dist)
    idx[found] = j[found]
    # Exact separation from the chord length (stable at small angles).
    sep[found] = np.degrees(2 * np.arcsin(np.clip(dist[found] / 2, 0, 1))) * 3600
    within = sep <= radius_arcsec
    idx[~within] = -1
    sep[~within] = np.nan
    return idx, sep


def star_arrays(stars: pd.DataFrame) -> dict[str, np.ndarray]:
    """Plain numpy arrays (cheap to broadcast) from the catalogue rows; NaN for nulls."""
    out = {"source_id": stars["source_id"].to_numpy(dtype=np.int64)}
    for c in GAIA_SOURCE_COLUMNS[1:]:
        out[c] = pd.to_numeric(stars[c], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return out


def annotate_batches(stars: dict[str, np.ndarray], radius_arcsec: float, schema: pa.Schema) -> Any:
    """A mapInArrow function appending gaia_* columns to record batches with ra/dec."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            ra = batch.column("ra").to_numpy(zero_copy_only=False)
            dec = batch.column("dec").to_numpy(zero_copy_only=False)
            idx, sep = nearest(ra, dec, stars, radius_arcsec)
            hit = idx >= 0
            safe = np.where(hit, idx, 0)

            def pick(name: str, dtype: Any) -> pa.Array:
                values = stars[name][safe] if len(stars[name]) else np.zeros(len(idx))  # noqa: B023
                missing = ~hit if name == "source_id" else (~hit | np.isnan(values))  # noqa: B023
                return pa.array(values, type=dtype, mask=missing)

            extra = [
                pick("source_id", pa.int64()),
                pa.array(sep, type=pa.float64(), mask=~hit),
                pick("phot_g_mean_mag", pa.float64()),
                pick("bp_rp", pa.float64()),
                pick("parallax", pa.float64()),
            ]
            yield pa.RecordBatch.from_arrays(list(batch.columns) + extra, schema=schema)

    return run
