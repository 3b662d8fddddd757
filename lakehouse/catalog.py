"""The Spark face of the catalogue: :class:`Catalog`.

A ``Catalog`` is an immutable, lazily evaluated view of one Delta table at one
pinned version: ``open_catalog().cone(266.4, -29.0, 0.5).where("parallax > 1")``
builds a plan; ``.df`` gives the Spark DataFrame. A region search becomes
``source_id`` ranges (from its HEALPix coverage): the pinned version's files
whose partition and source_id min/max meet them are read as plain Parquet
(:func:`region_scan`), with the ranges pushed down for row-group skipping,
then the exact geometry. Reads without a region go through Delta.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field, replace
from functools import lru_cache, reduce

import numpy as np
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from config.s3 import is_s3
from config.s3 import storage_options as s3_storage_options
from config.settings import Settings, get_settings
from lakehouse import healpix
from lakehouse.crossmatch import crossmatch as _crossmatch
from lakehouse.filters import filter_sql
from lakehouse.layout import DataFiles, TableInfo, data_files, table_info
from lakehouse.regions import BoxSearch, ConeSearch, PixelSearch, PolygonSearch, Region
from lakehouse.schema import PARTITION_COLUMN
from lakehouse.session import get_spark


def region_source_ids(region: Region, info: TableInfo) -> np.ndarray | None:
    """Sorted, disjoint ``[lo, hi)`` source_id ranges holding every row the region can match.

    None when the table has no HEALPix layout (then only the exact filter applies).
    """
    if info.partition_order is None:
        return None
    ranges = region.coverage()
    if not getattr(region, "by_source_id", False):
        ranges = healpix.dilate(ranges, info.margin_deg)
    return healpix.to_source_id_ranges(healpix.coarsen_ranges(ranges))


def source_id_ranges_sql(sid_ranges: np.ndarray) -> str:
    """SQL for "source_id in one of the ranges": one parse, pushed down to Parquet."""
    if len(sid_ranges) == 0:
        return "false"
    return " OR ".join(
        f"(source_id >= {int(lo)} AND source_id < {int(hi)})" for lo, hi in sid_ranges
    )


def region_prefilter(region: Region, info: TableInfo) -> Column | None:
    """Partition + source_id-range predicate that keeps every row the region can match
    (None without a HEALPix layout); used when reading through Delta."""
    sid_ranges = region_source_ids(region, info)
    if sid_ranges is None:
        return None
    if len(sid_ranges) == 0:
        return F.lit(False)
    parts = healpix.partitions_of(sid_ranges >> healpix.SOURCE_ID_SHIFT, info.partition_order)
    in_parts = f"{PARTITION_COLUMN} IN ({', '.join(str(int(p)) for p in parts)})"
    return F.expr(f"{in_parts} AND ({source_id_ranges_sql(sid_ranges)})")


@lru_cache(maxsize=64)
def pinned_table(spark: SparkSession, path: str, version: int) -> DataFrame:
    """The table at one version, planned once per session.

    Resolving a time-travel read rebuilds the Delta snapshot from the log
    (about a second); a DataFrame that has resolved it keeps it, so every
    query derived from this one skips that work. A version never changes,
    so the cache cannot go stale.
    """
    return spark.read.format("delta").option("versionAsOf", version).load(path)


@lru_cache(maxsize=64)
def _data_schema(spark: SparkSession, path: str, version: int) -> T.StructType:
    """The columns stored in the data files (the table's, minus the partition column)."""
    return pinned_table(spark, path, version).drop(PARTITION_COLUMN).schema


def clear_session_caches() -> None:
    """Forget the reads cached per Spark session (a warm worker does after each job: the
    next job has a session of its own, and the entries would keep the old one alive)."""
    for cached in (pinned_table, _data_schema, files_scan):
        cached.cache_clear()


@lru_cache(maxsize=16)
def pinned_files(info: TableInfo) -> DataFiles | None:
    """The data files of one version with their source_id ranges, read from the log once."""
    return data_files(info)


def region_scan(
    spark: SparkSession, info: TableInfo, regions: tuple[Region, ...]
) -> tuple[DataFrame, list[np.ndarray | None]] | None:
    """Plain Parquet scan of just the files the regions can touch, or None to read via Delta.

    A region search reads few files of a big table, and Delta's planning of
    such a read (its data skipping runs a Spark job over the log's state) costs
    more than the read itself. The catalogue pins one version, whose file list
    and per-file source_id min/max come from the log once (:func:`pinned_files`);
    choosing the files here and handing Spark only those keeps time travel
    exact (the list is the snapshot) and leaves Spark the row-group skipping
    on the source_id ranges returned alongside.
    """
    if not regions or info.partition_order is None:
        return None
    files = pinned_files(info)
    if files is None:
        return None
    keep = np.ones(len(files.paths), dtype=bool)
    sid_ranges = []
    for region in regions:
        ranges = region_source_ids(region, info)
        parts = healpix.partitions_of(ranges >> healpix.SOURCE_ID_SHIFT, info.partition_order)
        keep &= files.covering(ranges, parts)
        sid_ranges.append(ranges)
    chosen = tuple(p for p, k in zip(files.paths, keep, strict=True) if k)
    return files_scan(spark, info.path, info.version, chosen), sid_ranges


@lru_cache(maxsize=256)
def files_scan(spark: SparkSession, path: str, version: int, files: tuple[str, ...]) -> DataFrame:
    """Plain Parquet read of some of one version's data files, resolved once per session.

    Resolving a read looks up the data source and lists each file (a request
    per file on object storage); searches near one another read the same few
    files, so they share this DataFrame and skip that work. The files of a
    version never change, so the cache cannot go stale.
    """
    schema = _data_schema(spark, path, version)
    if not files:
        return spark.createDataFrame([], schema)
    return spark.read.schema(schema).parquet(*files)


@dataclass(frozen=True)
class Catalog:
    """A pinned, filtered view of a catalogue table (see module docstring)."""

    spark: SparkSession
    info: TableInfo
    regions: tuple[Region, ...] = ()
    predicates: tuple[str, ...] = ()
    columns: tuple[str, ...] | None = None
    _all_columns: tuple[str, ...] = field(default=(), repr=False)

    # -- what it is -------------------------------------------------------
    @property
    def path(self) -> str:
        return self.info.path

    @property
    def version(self) -> int:
        """The Delta version every read of this view uses."""
        return self.info.version

    @property
    def available_columns(self) -> tuple[str, ...]:
        return self._all_columns

    # -- building the view ------------------------------------------------
    def search(self, region: Region) -> Catalog:
        """Restrict to a sky region (regions combine with AND)."""
        return replace(self, regions=(*self.regions, region))

    def cone(self, ra: float, dec: float, radius_deg: float) -> Catalog:
        """Rows within ``radius_deg`` degrees of (``ra``, ``dec``) in degrees (ICRS, J2016)."""
        return self.search(ConeSearch(ra, dec, radius_deg))

    def box(self, ra_min: float, ra_max: float, dec_min: float, dec_max: float) -> Catalog:
        """Rows in an RA/Dec box in degrees; ``ra_min > ra_max`` wraps through RA 0."""
        return self.search(BoxSearch(ra_min, ra_max, dec_min, dec_max))

    def polygon(self, vertices: list[tuple[float, float]]) -> Catalog:
        """Rows inside a spherical polygon of (ra, dec) vertices in degrees."""
        return self.search(PolygonSearch(tuple((float(a), float(b)) for a, b in vertices)))

    def pixels(self, order: int, pixels: list[int]) -> Catalog:
        """Rows whose source_id lies in the given HEALPix cells."""
        return self.search(PixelSearch(order, tuple(int(p) for p in pixels)))

    def where(self, sql: str) -> Catalog:
        """Add a SQL condition over the table's columns (checked before it runs)."""
        return replace(self, predicates=(*self.predicates, filter_sql(sql, self._all_columns)))

    def select(self, *columns: str) -> Catalog:
        """Keep only these columns (in this order)."""
        unknown = [c for c in columns if c not in self._all_columns]
        if unknown:
            raise ValueError(
                f"unknown column(s) {unknown}; available: {', '.join(self._all_columns)}"
            )
        return replace(self, columns=tuple(columns))

    def as_of(self, version: int) -> Catalog:
        """The same view over an earlier (or later) version of the table."""
        options = self.info.storage_options
        info = table_info(self.info.path, version, dict(options) if options is not None else None)
        return replace(self, info=info)

    # -- running it -------------------------------------------------------
    @property
    def df(self) -> DataFrame:
        """The Spark DataFrame of this view."""
        scan = region_scan(self.spark, self.info, self.regions)
        if scan is None:
            df = pinned_table(self.spark, self.info.path, self.info.version)
            prefilters = [region_prefilter(region, self.info) for region in self.regions]
        else:
            df, sid_ranges = scan
            prefilters = [F.expr(source_id_ranges_sql(r)) for r in sid_ranges]
        conditions = [p for p in prefilters if p is not None]
        conditions += [region.spark_filter() for region in self.regions]
        conditions += [F.expr(p) for p in self.predicates]
        if conditions:
            df = df.where(reduce(operator.and_, conditions))
        return df.select(*(self.columns or self._all_columns))

    def count(self) -> int:
        return self.df.count()

    def crossmatch(self, other: Catalog | DataFrame, radius_arcsec: float) -> DataFrame:
        """Pairs with ``other`` within ``radius_arcsec``: this view's columns,
        ``other``'s prefixed ``right_``, and ``sep_arcsec``."""
        right = other.df if isinstance(other, Catalog) else other
        return _crossmatch(self.df, right, radius_arcsec)


def open_catalog(
    root: str | None = None,
    table: str = "gaia_source",
    spark: SparkSession | None = None,
    version: int | None = None,
    settings: Settings | None = None,
) -> Catalog:
    """Open a catalogue table (latest version unless ``version`` is given).

    ``root`` defaults to the lakehouse of ``settings``; ``spark`` to the
    platform session from :func:`lakehouse.session.get_spark` with them;
    ``settings`` (also the S3 credentials of an ``s3a://`` root) to
    :func:`config.settings.get_settings`.
    """
    if root is None:
        settings = settings or get_settings()
        root = settings.catalogue_root
    if spark is None:
        spark = get_spark(settings=settings)
    path = f"{root.rstrip('/')}/{table}"
    options = s3_storage_options(settings or get_settings()) if is_s3(path) else None
    info = table_info(path, version, options)
    columns = tuple(
        c for c in pinned_table(spark, path, info.version).columns if c != PARTITION_COLUMN
    )
    return Catalog(spark=spark, info=info, _all_columns=columns)
