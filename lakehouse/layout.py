"""The physical layout of catalogue tables.

``gaia_source`` is a Delta table partitioned by ``healpix_partition`` — the
HEALPix index of ``source_id`` at a coarse order — and sorted by
``source_id`` inside each partition, so every data file and every Parquet
row group covers one contiguous source_id range. A sky region becomes
partition pruning plus min/max skipping on source_id.

Choosing the partition order
----------------------------
There are ``12 * 4**k`` partitions at order ``k``. The order is the deepest
one whose *mean* partition still holds :data:`TARGET_PARTITION_BYTES`
(512 MB) of Parquet, so at full DR3 scale (1.8e9 rows, ~75 B a row
compressed ≈ 135 GB) ``k = 2`` gives 192 partitions averaging ~700 MB; the
dense Galactic-plane partitions are split into several files by
``maxRecordsPerFile`` so no file exceeds ~1 GB. Small tables get ``k = 0``
(12 partitions). The order is stored in the table property
``avip.healpix_partition_order`` and reused by appends.

Choosing the row-group size
---------------------------
Inside a file the readers skip whole Parquet row groups on their source_id
min/max, so a row group is the least a query reads. A 0.5° cone needs a few
hundred rows; with :data:`ROW_GROUP_BYTES` = 2 MiB (Spark's
``parquet.block.size``, set on every session by
``lakehouse.session.with_catalogue_layout``) a row group holds ~12,000
rows and its source_id, ra and dec chunks ~85 KB each, ~400 KB with the two
columns between them: one ~2 ms GET on MinIO (loopback), where 8 MiB groups
(42,000 rows) made it 1.4 MB and ~4 ms. The cost is the footer, ~3.3 KB a
row group: a 6M-row file's footer is 1.6 MB (at DR3 scale a 1 GB file has
~500 row groups), read once per file by the in-process reader and once per
split by Spark. Measured on the 10M-row benchmark sky (same run, 8 -> 2 MiB):
in-process cone p50 local 1.9 -> 1.4 ms, on S3 5.5 -> 4.1 ms; Spark-path cone
local 0.35-0.46 -> 0.29 s, on S3 0.41-0.42 -> 0.45-0.51 s (the bigger footers
read per split). 1 MiB groups shaved a little more off in-process cones,
doubled the footers and slowed the Spark path's p95.

The position margin
-------------------
In real Gaia data a few sources sit outside the order-12 pixel their
source_id names (the id is fixed when the source is first seen). Ingest
measures the largest such offset and stores it as
``avip.sourceid_position_margin_deg``; region searches grow their coverage
by it so those sources are never missed.
"""

from __future__ import annotations

import math
import urllib.parse
from dataclasses import dataclass, field

import astropy.units as u
import cdshealpix.nested as hp
import numpy as np
import pyarrow as pa
from delta.tables import DeltaTable as SparkDeltaTable
from deltalake import DeltaTable
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from config.s3 import is_s3
from config.s3 import storage_options as s3_storage_options
from config.settings import get_settings
from lakehouse import healpix
from lakehouse.regions import angular_distance_deg
from lakehouse.schema import COLUMN_NAMES, PARTITION_COLUMN, spark_schema

TARGET_PARTITION_BYTES = 512 * 2**20
MAX_FILE_BYTES = 1024 * 2**20
ROW_GROUP_BYTES = 2 * 2**20
BYTES_PER_ROW = 75  # measured on the synthetic sky, snappy Parquet, 27 columns
ORDER_PROPERTY = "avip.healpix_partition_order"
MARGIN_PROPERTY = "avip.sourceid_position_margin_deg"


def choose_partition_order(n_rows: int, bytes_per_row: int = BYTES_PER_ROW) -> int:
    """Deepest HEALPix order whose mean partition holds the target bytes (0..6)."""
    total = max(n_rows, 1) * bytes_per_row
    k = math.floor(math.log(max(total / (12 * TARGET_PARTITION_BYTES), 1.0), 4))
    return int(min(max(k, 0), 6))


def sourceid_position_offset_deg(source_id: np.ndarray, ra: np.ndarray, dec: np.ndarray) -> float:
    """Largest distance from a source to the centre of its source_id pixel, over the
    sources that lie outside that pixel (0 when every source is inside its pixel)."""
    own = source_id >> healpix.SOURCE_ID_SHIFT
    outside = healpix.healpix_index(ra, dec, healpix.INDEX_ORDER) != own
    if not outside.any():
        return 0.0
    lon, lat = hp.healpix_to_lonlat(own[outside].astype(np.uint64), healpix.INDEX_ORDER)
    dist = angular_distance_deg(ra[outside], dec[outside], lon.to_value(u.deg), lat.to_value(u.deg))
    return float(dist.max())


@dataclass(frozen=True)
class TableInfo:
    """What readers need to know about a catalogue table at one version."""

    path: str
    version: int
    partition_order: int | None  # None: not in the HEALPix layout
    margin_deg: float
    #: The delta-rs ``storage_options`` it was read with (None: the settings' own), so later
    #: reads of the same table use the same credentials; not part of its identity.
    storage_options: tuple[tuple[str, str], ...] | None = field(
        default=None, repr=False, compare=False
    )


def _delta_table(path: str, version: int | None, storage_options: dict | None):
    """delta-rs's view of the table; an s3 path without ``storage_options`` takes the
    credentials of the process's settings."""
    if storage_options is None and is_s3(path):
        storage_options = s3_storage_options(get_settings())
    try:
        return DeltaTable(path, version=version, storage_options=storage_options)
    except Exception as exc:  # delta-rs raises several types for a missing table/version
        if version is not None and "version" in str(exc).lower():
            raise ValueError(f"table {path} has no version {version}: {exc}") from exc
        raise FileNotFoundError(
            f"no Delta table at {path}: ingest one first (`avip ingest sample` or "
            f"`avip ingest synthetic --rows N`)"
        ) from exc


def table_info(
    path: str, version: int | None = None, storage_options: dict | None = None
) -> TableInfo:
    """Read version and layout properties from the Delta log (no Spark needed)."""
    table = _delta_table(path, version, storage_options)
    conf = table.metadata().configuration
    return TableInfo(
        path=path,
        version=table.version(),
        partition_order=int(conf[ORDER_PROPERTY]) if ORDER_PROPERTY in conf else None,
        margin_deg=float(conf.get(MARGIN_PROPERTY, 0.0)),
        storage_options=tuple(storage_options.items()) if storage_options is not None else None,
    )


#: Reader features under which a data file, read as plain Parquet, still holds exactly
#: the table's rows and columns (no deletion vectors, column mapping or type widening).
PLAIN_PARQUET_FEATURES = frozenset({"timestampNtz", "v2Checkpoint", "vacuumProtocolCheck"})


@dataclass(frozen=True, eq=False)
class DataFiles:
    """The data files of one table version: each one's partition, source_id range and size.

    Taken from the Delta log's add actions (partition values, min/max
    statistics, sizes), so the list *is* the snapshot: reading these files as
    Parquet gives that version exactly. Files without statistics get the
    full source_id range (never pruned on it). Both readers use it: Spark
    hands it the chosen paths, the in-process reader also its sizes (which
    spare a request per file on object storage).
    """

    paths: tuple[str, ...]  # as Spark reads them: the table's path + the file's
    partition: np.ndarray  # healpix_partition, or -1 when the table has none
    sid_min: np.ndarray
    sid_max: np.ndarray
    size_bytes: np.ndarray  # -1 where the log does not say

    def covering(self, sid_ranges: np.ndarray, partitions: np.ndarray) -> np.ndarray:
        """Mask of files in ``partitions`` whose source_id range meets a ``[lo, hi)`` range."""
        meets = healpix.ranges_meet(sid_ranges, self.sid_min, self.sid_max)
        return meets & ((self.partition < 0) | np.isin(self.partition, partitions))


def data_files(info: TableInfo, storage_options: dict | None = None) -> DataFiles | None:
    """The files of ``info``'s version, or None when plain Parquet reads of them would
    not be exact (the table uses deletion vectors, column mapping or the like).

    ``storage_options`` default to those ``info`` was read with.
    """
    if storage_options is None and info.storage_options is not None:
        storage_options = dict(info.storage_options)
    return snapshot_files(_delta_table(info.path, info.version, storage_options), info.path)


def snapshot_files(table, path: str) -> DataFiles | None:
    """:func:`data_files` of an open delta-rs ``DeltaTable`` whose root is ``path``."""
    protocol = table.protocol()
    features = set(protocol.reader_features or ())
    if protocol.min_reader_version > 1 and not features <= PLAIN_PARQUET_FEATURES:
        return None
    if table.metadata().configuration.get("delta.columnMapping.mode", "none") != "none":
        return None
    actions = pa.table(table.get_add_actions(flatten=True))
    names, n = actions.column_names, actions.num_rows
    part = f"partition.{PARTITION_COLUMN}"
    root = path.rstrip("/")

    def located(path: str) -> str:  # log paths are relative and percent-encoded
        return path if "://" in path else f"{root}/{urllib.parse.unquote(path)}"

    def stat(name: str, missing: int) -> np.ndarray:
        if name not in names:
            return np.full(n, missing, dtype=np.int64)
        return actions[name].fill_null(missing).to_numpy().astype(np.int64)

    return DataFiles(
        paths=tuple(located(p) for p in actions["path"].to_pylist()),
        partition=stat(part, -1),
        sid_min=stat("min.source_id", np.iinfo(np.int64).min),
        sid_max=stat("max.source_id", np.iinfo(np.int64).max),
        size_bytes=stat("size_bytes", -1),
    )


def write_catalog(
    df: DataFrame,
    path: str,
    *,
    mode: str = "append",
    margin_deg: float = 0.0,
    n_rows: int | None = None,
    partition_order: int | None = None,
) -> int:
    """Write ``gaia_source`` rows in the partitioned, sorted layout; return the new version.

    The rows land in a single Delta commit, so a failed ingest leaves the
    table as it was. ``mode="append"`` creates the table on first use (with
    its layout properties) and keeps its partition order afterwards;
    ``mode="overwrite"`` replaces it; ``partition_order`` overrides the
    size-based choice for a new table. The margin property is raised *before*
    rows that need it are committed, so every version reads correctly.
    """
    if mode not in ("append", "overwrite"):
        raise ValueError(f"mode must be 'append' or 'overwrite', got {mode!r}")
    spark = df.sparkSession
    if mode == "append" and SparkDeltaTable.isDeltaTable(spark, path):
        info = table_info(path)
        order = info.partition_order
        if margin_deg > info.margin_deg:
            spark.sql(
                f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES "
                f"('{MARGIN_PROPERTY}' = '{margin_deg!r}')"
            )
    else:
        order = (
            partition_order
            if partition_order is not None
            else choose_partition_order(n_rows if n_rows is not None else df.count())
        )
        builder = (
            SparkDeltaTable.createOrReplace(spark)
            if mode == "overwrite"
            else (SparkDeltaTable.createIfNotExists(spark))
        )
        (
            builder.location(path)
            .addColumns(spark_schema())
            .addColumn(PARTITION_COLUMN, "INT")
            .partitionedBy(PARTITION_COLUMN)
            .property(ORDER_PROPERTY, str(order))
            .property(MARGIN_PROPERTY, repr(margin_deg))
            .execute()
        )
    shift = healpix.source_id_shift(order)
    out = (
        df.select(*COLUMN_NAMES)
        .withColumn(PARTITION_COLUMN, F.shiftright(F.col("source_id"), shift).cast("int"))
        .repartition(min(12 * 4**order, 64), PARTITION_COLUMN)
        .sortWithinPartitions(PARTITION_COLUMN, "source_id")
    )
    (
        out.write.format("delta")
        .mode("append")
        .option("maxRecordsPerFile", MAX_FILE_BYTES // BYTES_PER_ROW)
        .save(path)
    )
    return table_info(path).version
