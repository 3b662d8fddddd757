"""Positional crossmatch on Spark: HEALPix buckets with a margin, KD-trees inside.

Left rows fall in exactly one coarse bucket (their own position's HEALPix
cell). Right rows are copied into every bucket their search disc can reach,
found from their fine-order cell and its eight neighbours — the *margin*. A
left–right pair is therefore seen in exactly one bucket, the left row's, so
no pair across a pixel edge is lost and none is duplicated. Inside a bucket
the pairs come from a KD-tree on unit vectors (scipy), then the exact
great-circle separation.
"""

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse import healpix

BUCKET = "_xm_bucket"
TARGET_ROWS_PER_BUCKET = 50_000


@dataclass(frozen=True)
class KDTreeCrossmatch:
    """All pairs within ``radius_arcsec`` (not only the nearest)."""

    radius_arcsec: float
    right_prefix: str = "right_"

    def validate(self, left: DataFrame, right: DataFrame) -> None:
        r = self.radius_arcsec
        if r is None or not math.isfinite(r) or not 0 < r <= 3600:
            raise ValueError(f"crossmatch radius must be in (0, 3600] arcsec, got {r!r}")
        for name, df in (("left", left), ("right", right)):
            missing = {"ra", "dec"} - set(df.columns)
            if missing:
                raise ValueError(
                    f"{name} table needs ra and dec columns in degrees; missing {missing}"
                )
        clash = {self.right_prefix + c for c in right.columns} & set(left.columns)
        if clash or "sep_arcsec" in left.columns:
            raise ValueError(f"output columns would clash: {sorted(clash) or ['sep_arcsec']}")

    @property
    def fine_order(self) -> int:
        """Order whose cells are at least five search radii across."""
        return healpix.order_for_size(5 * self.radius_arcsec / 3600)


def _bucket_order(n_rows: int, fine_order: int) -> int:
    k = math.floor(math.log(max(n_rows / (12 * TARGET_ROWS_PER_BUCKET), 1.0), 4))
    return int(min(max(k, 0), fine_order))


def crossmatch(
    left: DataFrame,
    right: DataFrame,
    radius_arcsec: float,
    right_prefix: str = "right_",
    n_rows_hint: int | None = None,
) -> DataFrame:
    """Pairs of ``left`` and ``right`` rows within ``radius_arcsec``, with ``sep_arcsec``.

    Output: every left column, every right column with ``right_prefix``, and
    ``sep_arcsec``. Positions are ICRS degrees in ``ra``/``dec`` on both sides.
    """
    algo = KDTreeCrossmatch(radius_arcsec, right_prefix)
    algo.validate(left, right)
    fine = algo.fine_order
    n = n_rows_hint if n_rows_hint is not None else left.count()
    coarse = _bucket_order(n, fine)
    down = 2 * (fine - coarse)

    @F.pandas_udf(T.LongType())
    def own_bucket(ra: pd.Series, dec: pd.Series) -> pd.Series:
        return pd.Series(healpix.healpix_index(ra.to_numpy(), dec.to_numpy(), coarse))

    @F.pandas_udf(T.ArrayType(T.LongType()))
    def reachable_buckets(ra: pd.Series, dec: pd.Series) -> pd.Series:
        import cdshealpix.nested as hp

        cells = healpix.healpix_index(ra.to_numpy(), dec.to_numpy(), fine)
        around = hp.neighbours(cells.astype(np.uint64), fine).astype(np.int64)
        around = np.where(around < 0, cells[:, None], around) >> down
        around.sort(axis=1)
        keep = np.ones_like(around, dtype=bool)
        keep[:, 1:] = around[:, 1:] != around[:, :-1]
        return pd.Series([row[k] for row, k in zip(around, keep, strict=True)])

    left_b = left.withColumn(BUCKET, own_bucket("ra", "dec"))
    right_cols = right.columns
    right_b = right.withColumn(BUCKET, F.explode(reachable_buckets("ra", "dec")))

    out_schema = T.StructType(
        list(left.schema.fields)
        + [T.StructField(right_prefix + f.name, f.dataType, True) for f in right.schema.fields]
        + [T.StructField("sep_arcsec", T.DoubleType(), False)]
    )
    chord = 2 * math.sin(math.radians(radius_arcsec / 3600) / 2)
    left_cols = left.columns

    def match(lpdf: pd.DataFrame, rpdf: pd.DataFrame) -> pd.DataFrame:
        from scipy.spatial import cKDTree

        from lakehouse.regions import angular_distance_deg, unit_vectors

        if lpdf.empty or rpdf.empty:
            return pd.DataFrame({f.name: [] for f in out_schema.fields})
        tree = cKDTree(unit_vectors(rpdf["ra"].to_numpy(), rpdf["dec"].to_numpy()))
        lists = tree.query_ball_point(
            unit_vectors(lpdf["ra"].to_numpy(), lpdf["dec"].to_numpy()), chord
        )
        li = np.repeat(np.arange(len(lists)), [len(x) for x in lists])
        ri = np.fromiter((j for x in lists for j in x), dtype=np.int64, count=len(li))
        lsel = lpdf.iloc[li][left_cols].reset_index(drop=True)
        rsel = rpdf.iloc[ri][right_cols].reset_index(drop=True)
        sep = angular_distance_deg(lsel["ra"], lsel["dec"], rsel["ra"], rsel["dec"]) * 3600
        rsel.columns = [right_prefix + c for c in right_cols]
        out = pd.concat([lsel, rsel], axis=1)
        out["sep_arcsec"] = sep
        return out[out["sep_arcsec"] <= radius_arcsec]

    return (
        left_b.groupBy(BUCKET)
        .cogroup(right_b.groupBy(BUCKET))
        .applyInPandas(match, schema=out_schema)
    )
