"""Positional crossmatch on Spark: HEALPix buckets with a margin, KD-trees inside.

Left rows fall in exactly one bucket (their own position's HEALPix cell at a
coarse order). Right rows are copied into every bucket their search disc can
reach, found from their fine-order cell and its eight neighbours — the
*margin*. A left–right pair is kept only where the right copy's bucket is the
left row's, so no pair across a pixel edge is lost and none is duplicated.

Both sides go through Python once before the shuffle (one Arrow pass that
names the buckets and makes the margin copies), are hash-partitioned by
bucket, and each partition is matched in one go: a KD-tree on the right
rows' unit vectors, a bounded k-nearest query for the left rows, the bucket
check, then the exact great-circle separation. Matching a whole partition
rather than each bucket (a cogroup) keeps the per-group overhead away, so
buckets can be small enough to spread a crowded sky evenly over the tasks.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse import healpix

BUCKET = "_xm_bucket"
SIDE = "_xm_side"  # 0: left row, 1: right row (a margin copy or not)
TARGET_ROWS_PER_BUCKET = 2_000
#: Buckets stay this many orders coarser than the fine cells, so that only the right
#: rows in the outer ring of fine cells (~4 / 2**3 of them) are copied into a neighbour.
MARGIN_ORDERS = 3
ROWS_PER_TASK = 1_000_000
BYTES_PER_COLUMN = 8  # for the row estimate from Spark's plan statistics


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
        internal = {BUCKET, SIDE} & (set(left.columns) | set(right.columns))
        if internal:
            raise ValueError(f"rename column(s) {sorted(internal)}: the crossmatch uses them")

    @property
    def fine_order(self) -> int:
        """Order whose cells are at least five search radii across."""
        return healpix.order_for_size(5 * self.radius_arcsec / 3600)

    @property
    def chord(self) -> float:
        """The radius as a straight-line distance between unit vectors."""
        return 2 * math.sin(math.radians(self.radius_arcsec / 3600) / 2)


def _bucket_order(n_rows: int, fine_order: int) -> int:
    k = math.floor(math.log(max(n_rows / (12 * TARGET_ROWS_PER_BUCKET), 1.0), 4))
    return int(min(max(k, 0), max(fine_order - MARGIN_ORDERS, 0)))


def estimated_rows(df: DataFrame) -> int:
    """Rows of ``df`` from Spark's plan statistics (file sizes), without running a job.

    Only the bucket order and task count depend on it, both on a log or
    coarse scale, so a rough figure does; a plan without statistics is counted.
    """
    try:
        stats = df._jdf.queryExecution().optimizedPlan().stats()
        if stats.rowCount().isDefined():
            return int(stats.rowCount().get().toString())
        size = int(stats.sizeInBytes().toString())
    except Exception:  # not a classic (Py4J) DataFrame
        return df.count()
    return max(size // (BYTES_PER_COLUMN * (1 + len(df.columns))), 1)


def _column(batch: pa.RecordBatch | pa.Table, name: str) -> np.ndarray:
    return batch.column(name).to_numpy(zero_copy_only=False)


def crossmatch(
    left: DataFrame,
    right: DataFrame,
    radius_arcsec: float,
    right_prefix: str = "right_",
    n_rows_hint: int | None = None,
) -> DataFrame:
    """Pairs of ``left`` and ``right`` rows within ``radius_arcsec``, with ``sep_arcsec``.

    Output: every left column, every right column with ``right_prefix``, and
    ``sep_arcsec``. Positions are ICRS degrees in ``ra``/``dec`` on both sides;
    rows without a position match nothing. ``n_rows_hint`` (rows of the
    larger side) overrides the estimate that sizes the buckets; the number of
    tasks follows Spark's estimate of the data.
    """
    algo = KDTreeCrossmatch(radius_arcsec, right_prefix)
    algo.validate(left, right)
    n = max(estimated_rows(left), estimated_rows(right))
    fine = algo.fine_order
    down = 2 * (fine - _bucket_order(n if n_rows_hint is None else n_rows_hint, fine))
    left_cols, right_cols = left.columns, [right_prefix + c for c in right.columns]
    r_ra, r_dec = right_prefix + "ra", right_prefix + "dec"

    has_position = "ra IS NOT NULL AND dec IS NOT NULL"
    wide = (
        left.where(has_position)
        .withColumn(SIDE, F.lit(0).cast("byte"))
        .unionByName(
            right.where(has_position).toDF(*right_cols).withColumn(SIDE, F.lit(1).cast("byte")),
            allowMissingColumns=True,
        )
    )
    bucketed_schema = T.StructType(
        [*wide.schema.fields, T.StructField(BUCKET, T.LongType(), False)]
    )

    def into_buckets(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """Left rows into their own bucket; right rows into every bucket they reach."""
        import cdshealpix.nested as hp

        for batch in batches:
            is_left = _column(batch, SIDE) == 0
            ra = np.where(is_left, _column(batch, "ra"), _column(batch, r_ra))
            dec = np.where(is_left, _column(batch, "dec"), _column(batch, r_dec))
            cells = healpix.healpix_index(ra, dec, fine)
            lefts = np.flatnonzero(is_left)
            if len(lefts):
                yield _with_bucket(batch.take(lefts), cells[lefts] >> down)
            rights = np.flatnonzero(~is_left)
            if len(rights):
                own = cells[rights]
                around = hp.neighbours(own.astype(np.uint64), fine).astype(np.int64)
                around = np.where(around < 0, own[:, None], around) >> down
                around.sort(axis=1)
                first = np.ones(around.shape, dtype=bool)
                first[:, 1:] = around[:, 1:] != around[:, :-1]
                row, col = np.nonzero(first)
                yield _with_bucket(batch.take(rights[row]), around[row, col])

    out_schema = T.StructType(
        [f for f in bucketed_schema.fields if f.name not in (BUCKET, SIDE)]
        + [T.StructField("sep_arcsec", T.DoubleType(), False)]
    )
    out_names = out_schema.names
    chord = algo.chord * (1 + 1e-12)  # the exact separation decides; never prune a pair

    def match(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """All pairs of one partition (many buckets), each once: in the left row's bucket."""
        from lakehouse.regions import angular_distance_deg, unit_vectors

        received = list(batches)
        if not received:
            return
        part = pa.Table.from_batches(received)
        side = _column(part, SIDE)
        lt, rt = part.filter(pa.array(side == 0)), part.filter(pa.array(side == 1))
        if lt.num_rows == 0 or rt.num_rows == 0:
            return
        lv = unit_vectors(_column(lt, "ra"), _column(lt, "dec"))
        rv = unit_vectors(_column(rt, r_ra), _column(rt, r_dec))
        li, ri = _pairs_within(rv, lv, chord)
        same = _column(lt, BUCKET)[li] == _column(rt, BUCKET)[ri]
        li, ri = li[same], ri[same]
        lsel, rsel = lt.select(left_cols).take(li), rt.select(right_cols).take(ri)
        sep = 3600 * angular_distance_deg(
            _column(lsel, "ra"), _column(lsel, "dec"), _column(rsel, r_ra), _column(rsel, r_dec)
        )
        keep = pa.array(sep <= radius_arcsec)
        columns = [*lsel.columns, *rsel.columns, pa.array(sep, pa.float64())]
        out = pa.Table.from_arrays(columns, names=out_names).filter(keep)
        yield from out.to_batches(max_chunksize=100_000)

    partitions = max(int(left.sparkSession.conf.get("spark.sql.shuffle.partitions")), 1)
    partitions = max(partitions, math.ceil(2 * n / ROWS_PER_TASK))
    return (
        wide.mapInArrow(into_buckets, bucketed_schema)
        .repartition(partitions, BUCKET)
        .mapInArrow(match, out_schema)
    )


def _with_bucket(batch: pa.RecordBatch, bucket: np.ndarray) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(
        [*batch.columns, pa.array(bucket, pa.int64())], names=[*batch.schema.names, BUCKET]
    )


def _pairs_within(
    right_vectors: np.ndarray, left_vectors: np.ndarray, chord: float
) -> tuple[np.ndarray, np.ndarray]:
    """(left index, right index) of every pair closer than ``chord``.

    A k-nearest query bounded by the chord is much faster than a ball query in
    scipy; left rows whose k-th neighbour is still inside are asked again with
    a larger k, so no pair is missed however crowded the field.
    """
    from scipy.spatial import cKDTree

    tree = cKDTree(right_vectors)
    left_parts, right_parts = [], []
    todo, k = np.arange(len(left_vectors)), 4
    while len(todo):
        k = min(k, len(right_vectors))
        dist, idx = tree.query(left_vectors[todo], k=k, distance_upper_bound=chord)
        dist, idx = dist.reshape(len(todo), k), idx.reshape(len(todo), k)
        found = np.isfinite(dist)
        full = found[:, -1] & (k < len(right_vectors))
        done = ~full
        rows, cols = np.nonzero(found & done[:, None])
        left_parts.append(todo[rows])
        right_parts.append(idx[rows, cols])
        todo, k = todo[full], 4 * k
    return np.concatenate(left_parts), np.concatenate(right_parts)
