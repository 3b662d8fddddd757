"""The in-process reader: sub-second region queries on the Delta tables, no Spark.

delta-rs reads the Delta log (file list, partition values, per-file source_id
min/max); pyarrow reads only the Parquet row groups whose source_id range meets
the region's coverage; numpy applies the exact geometry; DuckDB runs the
optional ``where`` over the few rows left.

On object storage every request costs a round trip, so what cannot change for
the pinned version is fetched once per reader: the snapshot's file list and
statistics, and each file's footer with its row groups' source_id min/max
(a file in a Delta table is never rewritten in place). Files are read through
pyarrow's native filesystems (local disk, or the one S3 filesystem of
:func:`api.s3.arrow_filesystem` with its connection pool). Local files are
read from handles kept open. Remote files are read as dataset fragments that
keep their parsed footer, so a query costs only the range requests for the
needed column chunks of the needed row groups, coalesced: on an object store
a request costs more than reading through the other columns between two
wanted chunks (:data:`REMOTE_HOLE_BYTES`).
"""

from __future__ import annotations

import os
import threading
import urllib.parse
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from lakehouse import healpix
from lakehouse.filters import check_filter, referenced_columns, render
from lakehouse.layout import MARGIN_PROPERTY, ORDER_PROPERTY
from lakehouse.regions import BoxSearch, ConeSearch, PixelSearch, PolygonSearch, Region
from lakehouse.schema import PARTITION_COLUMN

#: Open file handles kept per reader (the least recently used beyond this are dropped).
OPEN_FILES = 64
#: Remote reads fetch the gap between two wanted column chunks rather than make two requests
#: when the gap is at most this long. A row group's source_id, ra and dec chunks lie a few
#: hundred KB apart in gaia_source; on MinIO (loopback, busy host) one 1.8 MB GET spanning
#: them took 7 ms where three GETs of 1.27 MB in all took 14 ms (and S3 round trips are longer).
REMOTE_HOLE_BYTES = 1 << 20
_REMOTE_FORMAT = ds.ParquetFileFormat(
    default_fragment_scan_options=ds.ParquetFragmentScanOptions(
        pre_buffer=True,
        cache_options=pa.CacheOptions(
            hole_size_limit=REMOTE_HOLE_BYTES, range_size_limit=64 << 20, lazy=False
        ),
    )
)
_INT64 = np.iinfo(np.int64)


@dataclass
class _FileIndex:
    paths: list[str]
    sizes: list[int | None]
    partition: np.ndarray
    sid_min: np.ndarray
    sid_max: np.ndarray


@dataclass(frozen=True)
class _Footer:
    """A file's Parquet footer and its row groups' source_id min/max (no stats: full range);
    for a remote file, the fragment holding the parsed footer, to read row groups through."""

    meta: pq.FileMetaData
    sid_min: np.ndarray
    sid_max: np.ndarray
    fragment: ds.ParquetFileFragment | None = None


@lru_cache(maxsize=1)
def _remote_pool() -> ThreadPoolExecutor:
    """Threads that wait on object storage (not CPU): files of one query read in parallel."""
    return ThreadPoolExecutor(max_workers=8, thread_name_prefix="lakehouse-read")


@dataclass
class InteractiveCatalog:
    """Read-only, version-pinned access to one catalogue table.

    ``filesystem`` is a native pyarrow filesystem holding the table at
    ``path`` (``bucket/key`` for S3); without it local paths use the local
    filesystem and anything else delta-rs's own (slower: a Python hop per read).
    """

    path: str
    version: int | None = None
    storage_options: dict[str, str] | None = None
    filesystem: pafs.FileSystem | None = field(default=None, repr=False)
    _footers: dict[str, _Footer] = field(default_factory=dict, repr=False)
    _handles: OrderedDict[str, pa.NativeFile] = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @cached_property
    def _table(self):
        from deltalake import DeltaTable

        try:
            return DeltaTable(self.path, version=self.version, storage_options=self.storage_options)
        except Exception as exc:
            raise FileNotFoundError(
                f"cannot open Delta table {self.path} (version {self.version}): {exc}"
            ) from exc

    @cached_property
    def _config(self) -> dict[str, str]:
        return dict(self._table.metadata().configuration)

    @property
    def pinned_version(self) -> int:
        return self._table.version()

    @cached_property
    def columns(self) -> tuple[str, ...]:
        return tuple(f.name for f in self._table.schema().fields if f.name != PARTITION_COLUMN)

    @cached_property
    def _storage(self) -> tuple[pafs.FileSystem, str]:
        """(filesystem, the table's root on it; '' when the paths are the table's own)."""
        if self.filesystem is not None:
            return self.filesystem, self.path.split("://", 1)[-1].rstrip("/")
        if "://" not in self.path or self.path.startswith("file://"):
            return pafs.LocalFileSystem(), os.path.abspath(self.path.removeprefix("file://"))
        return self._table.to_pyarrow_dataset().filesystem, ""

    def _location(self, path: str) -> str:
        """A file of the Delta log (relative, percent-encoded) on :attr:`_storage`."""
        root = self._storage[1]
        if not root:
            return path
        if "://" in path:  # an absolute URL (e.g. a shallow clone's files)
            return urllib.parse.unquote(path.split("://", 1)[1])
        return f"{root}/{urllib.parse.unquote(path)}"

    @cached_property
    def _files(self) -> _FileIndex:
        actions = pa.table(self._table.get_add_actions(flatten=True))
        names = actions.column_names
        part_col = f"partition.{PARTITION_COLUMN}"
        n = actions.num_rows
        return _FileIndex(
            paths=[self._location(p) for p in actions["path"].to_pylist()],
            sizes=actions["size_bytes"].to_pylist() if "size_bytes" in names else [None] * n,
            partition=actions[part_col].to_numpy().astype(np.int64)
            if part_col in names
            else np.zeros(n, np.int64),
            sid_min=actions["min.source_id"].to_numpy()
            if "min.source_id" in names
            else np.full(n, np.iinfo(np.int64).min),
            sid_max=actions["max.source_id"].to_numpy()
            if "max.source_id" in names
            else np.full(n, np.iinfo(np.int64).max),
        )

    def _handle(self, path: str) -> pa.NativeFile:
        """An open handle on ``path`` (reads are positional, so threads may share it)."""
        with self._lock:
            handle = self._handles.get(path)
            if handle is not None:
                self._handles.move_to_end(path)
                return handle
        handle = self._storage[0].open_input_file(path)
        with self._lock:
            self._handles[path] = handle
            while len(self._handles) > OPEN_FILES:
                self._handles.popitem(last=False)  # closed when its last reader lets go
        return handle

    @cached_property
    def _remote(self) -> bool:
        return not isinstance(self._storage[0], pafs.LocalFileSystem)

    def _footer(self, path: str, size: int | None) -> _Footer:
        footer = self._footers.get(path)
        if footer is None:
            fragment = None
            if self._remote:  # the size from the Delta log spares a HEAD request
                fragment = _REMOTE_FORMAT.make_fragment(path, self._storage[0], file_size=size)
                fragment.ensure_complete_metadata()
                meta = fragment.metadata
            else:
                meta = pq.ParquetFile(self._handle(path)).metadata
            col = meta.schema.names.index("source_id")
            lo = np.full(meta.num_row_groups, _INT64.min, np.int64)
            hi = np.full(meta.num_row_groups, _INT64.max, np.int64)
            for g in range(meta.num_row_groups):
                stats = meta.row_group(g).column(col).statistics
                if stats is not None and stats.has_min_max:
                    lo[g], hi[g] = stats.min, stats.max
            footer = self._footers[path] = _Footer(meta, lo, hi, fragment)
        return footer

    # -- queries ------------------------------------------------------------
    def cone(self, ra: float, dec: float, radius: float, **kw) -> pa.Table:
        """Rows within ``radius`` degrees of (``ra``, ``dec``)."""
        return self.search(ConeSearch(ra, dec, radius), **kw)

    def box(self, ra_min: float, ra_max: float, dec_min: float, dec_max: float, **kw) -> pa.Table:
        return self.search(BoxSearch(ra_min, ra_max, dec_min, dec_max), **kw)

    def polygon(self, vertices: list[tuple[float, float]], **kw) -> pa.Table:
        return self.search(PolygonSearch(tuple((float(a), float(b)) for a, b in vertices)), **kw)

    def pixels(self, order: int, pixels: list[int], **kw) -> pa.Table:
        return self.search(PixelSearch(order, tuple(int(p) for p in pixels)), **kw)

    def search(
        self, region: Region, columns: list[str] | None = None, where: str | None = None
    ) -> pa.Table:
        """Rows of ``region``, optionally filtered by a checked SQL ``where`` and projected."""
        out_cols = list(columns) if columns else list(self.columns)
        unknown = [c for c in out_cols if c not in self.columns]
        if unknown:
            raise ValueError(f"unknown column(s) {unknown}; available: {', '.join(self.columns)}")
        checked = check_filter(where, self.columns) if where else None
        where_sql = render(checked, "duckdb") if checked is not None else None
        filter_cols = referenced_columns(checked) if checked is not None else []
        needed = list(dict.fromkeys(["source_id", "ra", "dec", *out_cols, *filter_cols]))
        table = self._read_region(region, needed)
        keep = region.mask(table["ra"].to_numpy(), table["dec"].to_numpy())
        table = table.filter(pa.array(keep))
        if where_sql:
            import duckdb

            with duckdb.connect() as con:
                con.register("rows", table)
                table = con.sql(f"SELECT * FROM rows WHERE {where_sql}").to_arrow_table()
        return table.select(out_cols)

    def _read_region(self, region: Region, columns: list[str]) -> pa.Table:
        ranges = region.coverage()
        if not getattr(region, "by_source_id", False):
            ranges = healpix.dilate(ranges, float(self._config.get(MARGIN_PROPERTY, 0.0)))
        sid = healpix.to_source_id_ranges(ranges)
        files = self._files
        if ORDER_PROPERTY in self._config and len(sid):
            order = int(self._config[ORDER_PROPERTY])
            parts = healpix.partitions_of(ranges, order)
            # a file is read if its [min, max] meets any [lo, hi)
            overlaps = healpix.ranges_meet(sid, files.sid_min, files.sid_max)
            chosen = np.flatnonzero(np.isin(files.partition, parts) & overlaps)
        else:
            chosen = np.arange(len(files.paths)) if len(sid) else np.array([], int)

        # Local reads are cheap one by one; remote ones go out together: the column
        # chunks of a file in coalesced concurrent requests, the files in parallel.
        def read(i: int) -> pa.Table | None:
            footer = self._footer(files.paths[i], files.sizes[i])
            meets = healpix.ranges_meet(sid, footer.sid_min, footer.sid_max)
            groups = np.flatnonzero(meets).tolist()
            if not groups:
                return None
            if footer.fragment is not None:
                return footer.fragment.subset(row_group_ids=groups).to_table(columns=columns)
            handle = self._handle(files.paths[i])  # local: plain positional reads are fastest
            reader = pq.ParquetFile(handle, metadata=footer.meta, pre_buffer=False)
            return reader.read_row_groups(groups, columns=columns)

        if self._remote and len(chosen) > 1:
            read_all = _remote_pool().map(read, chosen.tolist())
        else:
            read_all = map(read, chosen.tolist())
        pieces = [piece for piece in read_all if piece is not None]
        if not pieces:
            schema = self._table.schema().to_arrow()
            return pa.table(
                {c: pa.array([], type=pa.schema(schema).field(c).type) for c in columns}
            )
        table = pa.concat_tables(pieces)
        sids = table["source_id"].to_numpy()
        idx = np.searchsorted(sid[:, 1], sids, side="right")
        in_range = (idx < len(sid)) & (sid[np.minimum(idx, len(sid) - 1), 0] <= sids)
        return table.filter(pa.array(in_range))


def open_interactive(
    root: str | None = None,
    table: str = "gaia_source",
    version: int | None = None,
    storage_options: dict[str, str] | None = None,
) -> InteractiveCatalog:
    """Open a table for in-process queries; ``root`` defaults to the settings' lakehouse."""
    if root is None:
        from api.settings import get_settings

        root = get_settings().catalogue_root
    filesystem = None
    if root.startswith(("s3a://", "s3://")):
        from api.s3 import arrow_filesystem
        from api.s3 import storage_options as s3_options
        from api.settings import get_settings

        settings = get_settings()
        filesystem = arrow_filesystem(settings)
        if storage_options is None:
            storage_options = s3_options(settings)
    return InteractiveCatalog(f"{root.rstrip('/')}/{table}", version, storage_options, filesystem)
