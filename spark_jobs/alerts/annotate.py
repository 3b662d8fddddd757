"""Attach to each alert its nearest Gaia source, found through the HEALPix index.

The alerts' positions are turned into HEALPix cells at
:data:`ANNOTATION_ORDER` (13.7 arcmin) plus their eight neighbours, so a star
across a cell edge is never missed for radii far below the cell size; the
catalogue is read for exactly those cells by the in-process reader
(:mod:`lakehouse.interactive`: delta-rs + pyarrow, partition and row-group
pruning on source_id, the table version pinned by the driver) — tens of
milliseconds, where a Spark Delta query costs a job and seconds per batch.
The lookup runs inside a pandas UDF that sees only ``ra``/``dec``, so the
wide alert rows never leave the JVM; a KD-tree on unit vectors answers the
nearest-neighbour queries and the exact great-circle separation is reported.
Positions are compared as given: Gaia at epoch 2016, alerts at their epoch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import cdshealpix.nested as hp
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql.functions import pandas_udf
from scipy.spatial import cKDTree

from config.s3 import is_s3, storage_options
from config.settings import Settings, get_settings
from lakehouse import healpix
from lakehouse.interactive import InteractiveCatalog
from spark_jobs.alerts.rows import GAIA_COLUMNS, GAIA_STRUCT

ANNOTATION_ORDER = 8
GAIA_SOURCE_COLUMNS = ("source_id", "ra", "dec", "phot_g_mean_mag", "bp_rp", "parallax")
MAX_RADIUS_ARCSEC = 60.0


def cells_around(
    ra_deg: np.ndarray, dec_deg: np.ndarray, order: int = ANNOTATION_ORDER
) -> list[int]:
    """Sorted unique cells holding the positions, plus every neighbour of each."""
    if len(ra_deg) == 0:
        return []
    own = np.unique(healpix.healpix_index(ra_deg, dec_deg, order))
    around = hp.neighbours(own.astype(np.uint64), order).astype(np.int64)
    cells = np.unique(np.concatenate([own, around[around >= 0]]))
    return [int(c) for c in cells]


def no_stars() -> dict[str, np.ndarray]:
    """No stars (annotation switched off): every alert gets null gaia_* columns."""
    return {c: np.zeros(0, np.int64 if c == "source_id" else float) for c in GAIA_SOURCE_COLUMNS}


_READERS: dict[tuple[str, int, str], InteractiveCatalog] = {}


@dataclass(frozen=True)
class GaiaReader:
    """One catalogue table at one pinned version, read in-process (picklable: it travels
    to the executors, which keep one open reader per table version and Python worker)."""

    path: str
    version: int
    storage_options_json: str = "{}"

    @classmethod
    def for_catalog(cls, catalog: Any, settings: Settings | None = None) -> GaiaReader:
        """The table and version of a :class:`lakehouse.catalog.Catalog` view; on S3, read
        with ``settings``' credentials (default: the platform's settings)."""
        options: dict[str, str] = {}
        if is_s3(str(catalog.path)):
            options = storage_options(settings or get_settings())
        return cls(str(catalog.path), int(catalog.version), json.dumps(options, sort_keys=True))

    def _reader(self) -> InteractiveCatalog:
        key = (self.path, self.version, self.storage_options_json)
        if key not in _READERS:
            _READERS[key] = InteractiveCatalog(
                self.path, self.version, json.loads(self.storage_options_json) or None
            )
        return _READERS[key]

    def stars_near(self, ra_deg: np.ndarray, dec_deg: np.ndarray) -> dict[str, np.ndarray]:
        """Catalogue stars in the cells around the given positions, as numpy arrays."""
        cells = cells_around(ra_deg, dec_deg)
        if not cells:
            return no_stars()
        table = self._reader().pixels(ANNOTATION_ORDER, cells, columns=list(GAIA_SOURCE_COLUMNS))
        return star_arrays(table)


def _unit(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    return np.column_stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])


def nearest(
    ra_deg: np.ndarray, dec_deg: np.ndarray, stars: dict[str, np.ndarray], radius_arcsec: float
) -> tuple[np.ndarray, np.ndarray]:
    """Index into ``stars`` of each position's nearest star within the radius (-1 if none),
    and the separation in arcsec (NaN if none)."""
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


def star_arrays(stars: pa.Table) -> dict[str, np.ndarray]:
    """Plain numpy arrays from the catalogue rows; NaN for nulls."""
    out = {"source_id": stars["source_id"].to_numpy().astype(np.int64)}
    for c in GAIA_SOURCE_COLUMNS[1:]:
        out[c] = pc.cast(stars[c], pa.float64()).fill_null(np.nan).to_numpy()
    return out


def annotation_udf(gaia: GaiaReader | None, radius_arcsec: float) -> Any:
    """A pandas UDF (ra, dec) → struct of the gaia_* columns (null where no star is near)."""
    names = list(GAIA_COLUMNS)

    @pandas_udf(GAIA_STRUCT)  # type: ignore[call-overload]
    def gaia_annotation(ra: pd.Series, dec: pd.Series) -> pd.DataFrame:
        ra_a = pd.to_numeric(ra).to_numpy(dtype=float, na_value=np.nan)
        dec_a = pd.to_numeric(dec).to_numpy(dtype=float, na_value=np.nan)
        known = np.isfinite(ra_a) & np.isfinite(dec_a)  # undecodable rows have no position
        stars = gaia.stars_near(ra_a[known], dec_a[known]) if gaia is not None else no_stars()
        idx = np.full(len(ra_a), -1, dtype=np.int64)
        sep = np.full(len(ra_a), np.nan)
        idx[known], sep[known] = nearest(ra_a[known], dec_a[known], stars, radius_arcsec)
        hit = idx >= 0
        safe = np.where(hit, idx, 0)

        def pick(name: str) -> np.ndarray:
            values = stars[name][safe] if len(stars[name]) else np.zeros(len(idx))
            return np.where(hit, values, np.nan)

        source_id = pd.array(
            stars["source_id"][safe] if len(stars["source_id"]) else np.zeros(len(idx), np.int64),
            dtype="Int64",
        )
        source_id[~hit] = pd.NA
        cols = [source_id, sep, pick("phot_g_mean_mag"), pick("bp_rp"), pick("parallax")]
        return pd.DataFrame(dict(zip(names, cols, strict=True)))  # NaN travels as null

    return gaia_annotation
