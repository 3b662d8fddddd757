"""Positional crossmatch on Spark as one equi-join on sky cells (the *zones* idea).

The sky is cut into declination zones of height ``h`` (a few search radii),
and each zone into right-ascension cells at least ``h`` wide. A left row
falls in exactly one cell: its own. A right row is copied into every cell
that meets the box ``[ra ± Δα] × [dec ± r]`` around it, where
``sin Δα = sin r / cos dec`` bounds the right ascension of every point within
``r`` (a disc around a pole takes every cell of its zones). A left–right pair
within ``r`` therefore shares exactly one cell — the left row's — so the
join on the cell number finds it once, and the exact great-circle separation
decides.

Everything runs in the JVM: the cell numbers are Spark expressions, the copies
an ``explode``, the match a shuffled join and a filter. No row goes through a
Python worker, which is where the time went when buckets and KD-trees were
made in Python (moving rows between the JVM and Python, not the matching).

Work stays proportional to the answer in crowded fields too: a cell is a few
radii across, so the candidate pairs a left row meets are a bounded multiple
of the pairs within ``r`` around it. On a sparse sky cells grow (up to
:data:`MAX_CELL_RADII` radii) so that few right rows need a copy.

Only ``+ - * /`` and ``floor`` decide which cell a row is in, so every
executor computes the same cell for the same position; trigonometry only
widens the box a right row is copied into, by a margin far above its
rounding error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

ZONE = "_xm_zone"
CELL = "_xm_cell"
LEFT_KEY, RIGHT_KEY = "_xm_left_key", "_xm_right_key"
INTERNAL = (ZONE, CELL, LEFT_KEY, RIGHT_KEY, "_xm_hw", "_xm_n")
#: Cells are between these many search radii tall: small in crowded skies (the
#: candidate pairs per left row grow with the cell's area), large in sparse ones
#: (a right row within ``r`` of a cell edge is copied, ~``4 r / h`` of them).
MIN_CELL_RADII, MAX_CELL_RADII = 4, 32
#: Mean rows of the larger side per cell that sizes the cells between those bounds.
TARGET_ROWS_PER_CELL = 0.05
MIN_CELL_DEG = 1e-6  # keeps cell numbers within a long however small the radius
SKY_DEG2 = 4 * math.pi * (180 / math.pi) ** 2
ROWS_PER_TASK = 1_000_000
BYTES_PER_COLUMN = 8  # for the row estimate from Spark's plan statistics
#: The box a right row is copied into is widened by this much (relative, then in
#: degrees): orders of magnitude above the rounding of the sums that decide cells.
MARGIN_REL, MARGIN_DEG = 1e-9, 1e-9


@dataclass(frozen=True)
class ZoneCrossmatch:
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
        internal = set(INTERNAL) & (set(left.columns) | set(right.columns))
        if internal:
            raise ValueError(f"rename column(s) {sorted(internal)}: the crossmatch uses them")

    @property
    def radius_deg(self) -> float:
        return self.radius_arcsec / 3600

    def zones(self, n_rows: int) -> int:
        """Declination zones (pole to pole) for ``n_rows`` rows on the larger side."""
        r = self.radius_deg
        sized = math.sqrt(TARGET_ROWS_PER_CELL * SKY_DEG2 / max(n_rows, 1))
        height = max(min(max(sized, MIN_CELL_RADII * r), MAX_CELL_RADII * r), MIN_CELL_DEG)
        return max(math.ceil(180 / height), 1)


class _Grid:
    """Zone and cell numbers as Spark expressions, for a grid of ``n_zones`` zones."""

    def __init__(self, n_zones: int) -> None:
        self.n_zones = n_zones
        self.height = 180 / n_zones
        self.max_cells = math.floor(360 / self.height) + 1

    def zone_of(self, dec: Column) -> Column:
        return F.least(F.floor((dec + 90.0) / self.height), F.lit(self.n_zones - 1))

    def cells_in(self, zone: Column) -> Column:
        """Cells of a zone: ≥ ``height`` wide at its pole-most edge (cos x ≥ 1 - x/90°)."""
        edge = F.greatest(F.abs(zone * self.height - 90.0), F.abs((zone + 1) * self.height - 90.0))
        return F.greatest(F.floor((1.0 - edge / 90.0) * (360.0 / self.height)), F.lit(1))

    def key(self, zone: Column, cell: Column) -> Column:
        return zone * self.max_cells + cell

    def own_key(self, ra: Column, dec: Column) -> Column:
        """The one cell of a position (left rows)."""
        zone = self.zone_of(dec)
        cells = self.cells_in(zone)
        cell = F.least(F.floor(F.pmod(ra, F.lit(360.0)) * cells / 360.0), cells - 1)
        return self.key(zone, cell)

    def copies(self, df: DataFrame, ra: str, dec: str, radius_deg: float) -> DataFrame:
        """``df`` with one row per cell the disc of ``radius_deg`` around each row meets."""
        r = radius_deg * (1 + MARGIN_REL) + MARGIN_DEG
        ra_c, dec_c = F.pmod(F.col(ra), F.lit(360.0)), F.col(dec)
        # cos(dec) as sin(90° - |dec|): exact to the last bits near the poles too
        cos_dec = F.greatest(F.sin(F.radians(90.0 - F.abs(dec_c))), F.lit(1e-300))
        ratio = math.sin(math.radians(r)) / cos_dec
        # a disc around (or close to) a pole takes all of its zones' cells
        half_width = F.when(
            (F.abs(dec_c) + r < 90.0) & (ratio <= 0.5),
            F.degrees(F.asin(ratio)) * (1 + MARGIN_REL) + MARGIN_DEG,
        ).otherwise(F.lit(360.0))
        zones = F.sequence(
            F.greatest(F.floor((dec_c - r + 90.0) / self.height), F.lit(0)),
            self.zone_of(F.least(dec_c + r, F.lit(90.0))),
        )
        with_zone = (
            df.withColumn("_xm_hw", half_width)
            .withColumn(ZONE, F.explode(zones))
            .withColumn("_xm_n", self.cells_in(F.col(ZONE)))
        )
        hw, cells = F.col("_xm_hw"), F.col("_xm_n")
        first = F.floor((ra_c - hw) * cells / 360.0)
        last = F.floor((ra_c + hw) * cells / 360.0)
        span = F.when(last - first + 1 >= cells, F.sequence(F.lit(0), cells - 1)).otherwise(
            F.sequence(first, last)
        )
        return (
            with_zone.withColumn(CELL, F.explode(span))
            .withColumn(RIGHT_KEY, self.key(F.col(ZONE), F.pmod(F.col(CELL), cells)))
            .drop(ZONE, CELL, "_xm_hw", "_xm_n")
        )


def estimated_rows(df: DataFrame) -> int:
    """Rows of ``df`` from Spark's plan statistics (file sizes), without running a job.

    Only the cell size and task count depend on it, both on a coarse scale, so
    a rough figure does; a plan without statistics is counted.
    """
    try:
        stats = df._jdf.queryExecution().optimizedPlan().stats()
        if stats.rowCount().isDefined():
            return int(stats.rowCount().get().toString())
        size = int(stats.sizeInBytes().toString())
    except Exception:  # not a classic (Py4J) DataFrame
        return df.count()
    return max(size // (BYTES_PER_COLUMN * (1 + len(df.columns))), 1)


def _has_position(ra: str, dec: str) -> Column:
    # Spark orders NaN above every number, so these also drop NaN (and nulls)
    return (F.abs(F.col(ra)) < F.lit(math.inf)) & (F.abs(F.col(dec)) <= 90.0)


def separation_deg(ra1: Column, dec1: Column, ra2: Column, dec2: Column) -> Column:
    """Great-circle distance in degrees (haversine, as ``regions.angular_distance_deg``)."""
    d1, d2 = F.radians(dec1), F.radians(dec2)
    h = F.pow(F.sin((d2 - d1) / 2), 2) + F.cos(d1) * F.cos(d2) * F.pow(
        F.sin(F.radians(ra2 - ra1) / 2), 2
    )
    return F.degrees(2 * F.asin(F.sqrt(F.least(F.greatest(h, F.lit(0.0)), F.lit(1.0)))))


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
    rows without a valid position (null, NaN, |dec| > 90) match nothing.
    ``n_rows_hint`` (rows of the larger side) overrides the estimate that sizes
    the cells; the number of tasks follows Spark's estimate of the data.
    """
    algo = ZoneCrossmatch(radius_arcsec, right_prefix)
    algo.validate(left, right)
    n = max(estimated_rows(left), estimated_rows(right))
    grid = _Grid(algo.zones(n if n_rows_hint is None else n_rows_hint))
    left_cols, right_cols = left.columns, [right_prefix + c for c in right.columns]
    r_ra, r_dec = right_prefix + "ra", right_prefix + "dec"

    partitions = max(int(left.sparkSession.conf.get("spark.sql.shuffle.partitions")), 1)
    partitions = max(partitions, math.ceil(2 * n / ROWS_PER_TASK))
    lefts = (
        left.where(_has_position("ra", "dec"))
        .withColumn(LEFT_KEY, grid.own_key(F.col("ra"), F.col("dec")))
        .repartition(partitions, LEFT_KEY)
    )
    rights = grid.copies(
        right.toDF(*right_cols).where(_has_position(r_ra, r_dec)), r_ra, r_dec, algo.radius_deg
    ).repartition(partitions, RIGHT_KEY)
    sep = 3600 * separation_deg(F.col("ra"), F.col("dec"), F.col(r_ra), F.col(r_dec))
    return (
        lefts.join(rights, F.col(LEFT_KEY) == F.col(RIGHT_KEY))
        .select(*left_cols, *right_cols, sep.alias("sep_arcsec"))
        .where(F.col("sep_arcsec") <= radius_arcsec)
    )
