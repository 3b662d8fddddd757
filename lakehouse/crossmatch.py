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
HALF_WIDTH = "_xm_half_width"
LEFT_KEY, RIGHT_KEY = "_xm_left_key", "_xm_right_key"
INTERNAL = (ZONE, CELL, HALF_WIDTH, LEFT_KEY, RIGHT_KEY)
#: Cells are between these many search radii tall: small in crowded skies (the
#: candidate pairs per left row grow with the cell's area), large in sparse ones
#: (a right row within ``r`` of a cell edge is copied, ~``4 r / h`` of them).
MIN_CELL_RADII, MAX_CELL_RADII = 4, 32
#: Mean rows of the larger side per cell that sizes the cells between those bounds.
TARGET_ROWS_PER_CELL = 0.05
MIN_CELL_DEG = 1e-6  # keeps cell numbers within a long however small the radius
SKY_DEG2 = 4 * math.pi * (180 / math.pi) ** 2
ROWS_PER_TASK = 1_000_000
#: A side with at most this many rows (Spark's estimate) is broadcast as a hash
#: table; larger pairs of sides are both shuffled on the cell number.
BROADCAST_ROWS = 2_000_000
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


def _d(x: float) -> str:
    """A Spark SQL double literal that round-trips ``x`` exactly."""
    return f"{float(x)!r}D"


def _q(name: str) -> str:
    """A column name quoted for Spark SQL."""
    return "`" + name.replace("`", "``") + "`"


class _Grid:
    """Zone and cell numbers as Spark SQL, for a grid of ``n_zones`` zones.

    Written as SQL text, one ``F.expr`` per column: building the same trees
    from ``pyspark.sql.functions`` costs a Py4J call per node, hundreds here.
    """

    def __init__(self, n_zones: int) -> None:
        self.n_zones = n_zones
        self.height = 180 / n_zones
        self.max_cells = math.floor(360 / self.height) + 1

    def zone_of(self, dec: str) -> str:
        return f"least(floor(({dec} + 90D) / {_d(self.height)}), {self.n_zones - 1}L)"

    def cells_in(self, zone: str) -> str:
        """Cells of a zone: ≥ ``height`` wide at its pole-most edge (cos x ≥ 1 - x/90°)."""
        h = _d(self.height)
        edge = f"greatest(abs({zone} * {h} - 90D), abs(({zone} + 1L) * {h} - 90D))"
        return f"greatest(floor((1D - {edge} / 90D) * {_d(360 / self.height)}), 1L)"

    def key(self, zone: str, cell: str) -> str:
        return f"{zone} * {self.max_cells}L + {cell}"

    def with_own_key(self, df: DataFrame, ra: str, dec: str, name: str) -> DataFrame:
        """``df`` with the number of the one cell of each row's position (left rows)."""
        zone, cells = _q(ZONE), self.cells_in(_q(ZONE))
        cell = f"least(floor(pmod({_q(ra)}, 360D) * {cells} / 360D), {cells} - 1L)"
        return df.select("*", F.expr(self.zone_of(_q(dec))).alias(ZONE)).select(
            *[F.col(_q(c)) for c in df.columns], F.expr(self.key(zone, cell)).alias(name)
        )

    def copies(self, df: DataFrame, ra: str, dec: str, radius_deg: float) -> DataFrame:
        """``df`` with one row per cell the disc of ``radius_deg`` around each row meets."""
        r = _d(radius_deg * (1 + MARGIN_REL) + MARGIN_DEG)
        ra, dec = f"pmod({_q(ra)}, 360D)", _q(dec)
        # cos(dec) as sin(90° - |dec|): exact to the last bits near the poles too
        ratio = f"sin(radians({r})) / greatest(sin(radians(90D - abs({dec}))), 1e-300D)"
        # a disc around (or close to) a pole takes all of its zones' cells
        half_width = (
            f"CASE WHEN abs({dec}) + {r} < 90D AND {ratio} <= 0.5D "
            f"THEN degrees(asin({ratio})) * {_d(1 + MARGIN_REL)} + {_d(MARGIN_DEG)} "
            "ELSE 360D END"
        )
        zones = (
            f"sequence(greatest(floor(({dec} - {r} + 90D) / {_d(self.height)}), 0L), "
            f"{self.zone_of(f'least({dec} + {r}, 90D)')})"
        )
        hw, zone, cells = _q(HALF_WIDTH), _q(ZONE), self.cells_in(_q(ZONE))
        first = f"floor(({ra} - {hw}) * {cells} / 360D)"
        last = f"floor(({ra} + {hw}) * {cells} / 360D)"
        span = (
            f"CASE WHEN {last} - {first} + 1L >= {cells} THEN sequence(0L, {cells} - 1L) "
            f"ELSE sequence({first}, {last}) END"
        )
        key = self.key(zone, f"pmod({_q(CELL)}, {cells})")
        return (
            df.select(
                "*", F.expr(half_width).alias(HALF_WIDTH), F.explode(F.expr(zones)).alias(ZONE)
            )
            .select("*", F.explode(F.expr(span)).alias(CELL))
            .select(*[F.col(_q(c)) for c in df.columns], F.expr(key).alias(RIGHT_KEY))
        )


def estimated_rows(df: DataFrame) -> int:
    """Rows of ``df`` from Spark's plan statistics (file sizes), without running a job.

    Only the cell size and task count depend on it, both on a coarse scale, so
    a rough figure does; a plan without statistics is counted.
    """
    try:
        stats = df._jdf.queryExecution().optimizedPlan().stats()
    except AttributeError:  # not a classic (Py4J) DataFrame
        return df.count()
    # Py4J hands Scala's BigInt over as a Python int or as a Java object: str() reads both
    if stats.rowCount().isDefined():
        return int(str(stats.rowCount().get()))
    size = int(str(stats.sizeInBytes()))
    return max(size // (BYTES_PER_COLUMN * (1 + len(df.columns))), 1)


def _has_position(ra: str, dec: str) -> Column:
    # Spark orders NaN above every number, so these also drop NaN (and nulls)
    return F.expr(f"abs({_q(ra)}) < double('inf') AND abs({_q(dec)}) <= 90D")


def separation_sql(ra1: str, dec1: str, ra2: str, dec2: str) -> str:
    """Great-circle distance in degrees (haversine, as ``regions.angular_distance_deg``)."""
    d1, d2 = f"radians({dec1})", f"radians({dec2})"
    # x * x, not pow(x, 2): Spark's pow is StrictMath.pow, several times slower
    sin_dd, sin_dra = f"sin(({d2} - {d1}) / 2D)", f"sin(radians({ra2} - {ra1}) / 2D)"
    h = f"{sin_dd} * {sin_dd} + cos({d1}) * cos({d2}) * {sin_dra} * {sin_dra}"
    return f"degrees(2D * asin(sqrt(least(greatest({h}, 0D), 1D))))"


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
    n_left, n_right = estimated_rows(left), estimated_rows(right)
    n = max(n_left, n_right)
    grid = _Grid(algo.zones(n if n_rows_hint is None else n_rows_hint))
    left_cols, right_cols = left.columns, [right_prefix + c for c in right.columns]
    r_ra, r_dec = right_prefix + "ra", right_prefix + "dec"

    lefts = grid.with_own_key(left.where(_has_position("ra", "dec")), "ra", "dec", LEFT_KEY)
    rights = grid.copies(
        right.toDF(*right_cols).where(_has_position(r_ra, r_dec)), r_ra, r_dec, algo.radius_deg
    )
    if min(n_left, n_right) <= BROADCAST_ROWS:
        # the small side as a hash table in every task: the other side is not shuffled
        if n_left <= n_right:
            lefts = lefts.hint("broadcast")
        else:
            rights = rights.hint("broadcast")
    else:
        partitions = max(int(left.sparkSession.conf.get("spark.sql.shuffle.partitions")), 1)
        partitions = max(partitions, math.ceil(2 * n / ROWS_PER_TASK))
        lefts = lefts.repartition(partitions, LEFT_KEY)
        rights = rights.repartition(partitions, RIGHT_KEY)
    sep = F.expr("3600D * " + separation_sql(*map(_q, ("ra", "dec", r_ra, r_dec))))
    return (
        lefts.join(rights, F.col(LEFT_KEY) == F.col(RIGHT_KEY))
        .select(*[F.col(_q(c)) for c in (*left_cols, *right_cols)], sep.alias("sep_arcsec"))
        .where(F.col("sep_arcsec") <= F.lit(float(radius_arcsec)))
    )
