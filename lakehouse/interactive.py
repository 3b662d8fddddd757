"""The in-process reader: sub-second region queries on the Delta tables, no Spark.

delta-rs reads the Delta log (:func:`lakehouse.layout.snapshot_files`: file
list, partition values, per-file source_id min/max and sizes); pyarrow reads
only the Parquet row groups whose source_id range meets the region's
coverage; numpy applies the exact geometry; DuckDB runs the optional
``where`` over the few rows left.

What cannot change for the pinned version is fetched once per reader: the
snapshot's file list and each file's footer with its row groups' source_id
min/max (a file in a Delta table is never rewritten in place). Files are read
through pyarrow's native filesystems (local disk, or the one S3 filesystem of
:func:`config.s3.arrow_filesystem` with its connection pool). Local files are
read from handles kept open. On object storage a request costs far more than
its bytes, so a query first computes the byte ranges of the column chunks it
needs, coalesced across small gaps (:data:`REMOTE_HOLE_BYTES`), fetches them
all at once (concurrently when there are several), then decodes them in the
calling thread (:class:`_FetchedRanges`): no scanner threads, nothing read
that the query does not use, and a file's first use costs one round trip
before its data (the footer; see :meth:`InteractiveCatalog._footer`).
"""

from __future__ import annotations

import io
import os
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401 — pa.compute.sum in total_rows
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from config.s3 import arrow_filesystem, is_s3
from config.s3 import storage_options as s3_storage_options
from config.settings import Settings, get_settings
from lakehouse import healpix
from lakehouse.filters import check_filter, referenced_columns, render
from lakehouse.layout import MARGIN_PROPERTY, ORDER_PROPERTY, DataFiles, snapshot_files
from lakehouse.regions import BoxSearch, ConeSearch, PixelSearch, PolygonSearch, Region
from lakehouse.schema import PARTITION_COLUMN

#: Open file handles kept per reader (the least recently used beyond this are dropped).
OPEN_FILES = 64
#: Footers kept per reader, in bytes of their serialized size (least recently used dropped
#: first; the newest is always kept). A 2 MiB-row-group file of 27 columns and 480 row groups
#: has a 1.5 MB footer; at full DR3 (thousands of files, ~150 columns) keeping them all would
#: take gigabytes, so the hot ones stay and a cold file pays one more round trip.
FOOTER_CACHE_BYTES = 256 << 20
#: Remote reads fetch the gap between two wanted column chunks rather than make two requests
#: when the gap is at most this long. In gaia_source a row group's source_id, ra and dec
#: chunks have two columns between them; on MinIO (loopback, busy host) one 350 KB GET
#: spanning them took 2.8-3.4 ms, three parallel 85 KB GETs 3.6-7 ms (8 MiB row groups: one
#: 1.8 MB GET 7 ms, three GETs of 1.27 MB in all 14 ms; and S3 round trips are longer).
REMOTE_HOLE_BYTES = 1 << 20
#: Bytes pyarrow reads from a file's end to find its footer: one request unless the footer
#: is longer (then a second one for the rest).
FOOTER_READ_BYTES = 64 << 10
#: Row groups are decoded on arrow's thread pool only past this many rows: a cone's few
#: thousand rows decode in a fraction of a millisecond, less than the hand-offs to the pool
#: cost (on a busy 2-core host, local p50 0.5 ms threaded vs 0.26 ms in the calling thread).
THREADED_DECODE_ROWS = 200_000
_INT64 = np.iinfo(np.int64)
_PARQUET = ds.ParquetFileFormat()

#: How delta-rs words a storage that did not answer (S3 down, DNS, network).
UNREACHABLE_MARKS = ("error sending request", "tcp connect error", "Connection refused",
                     "timed out", "dns error")


@dataclass(frozen=True)
class _Footer:
    """A file's Parquet footer and its row groups' source_id min/max (no stats: full range)."""

    meta: pq.FileMetaData
    sid_min: np.ndarray
    sid_max: np.ndarray


class _FetchedRanges(io.RawIOBase):
    """A read-only view of a remote file of which only some byte ranges were fetched.

    pyarrow's Parquet reader, given the footer, reads each column chunk with
    one positional read; serving those from ranges fetched beforehand lets a
    query make exactly the requests it planned. A read outside them is a bug
    in that plan and fails loudly rather than fetching behind the plan's back.
    """

    def __init__(self, size: int, pieces: list[tuple[int, bytes]]) -> None:
        super().__init__()
        self._size, self._pos = size, 0
        self._pieces = sorted((start, memoryview(data)) for start, data in pieces)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def size(self) -> int:
        return self._size

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = base + offset
        return self._pos

    def read(self, n: int = -1) -> memoryview:
        n = self._size - self._pos if n is None or n < 0 else min(n, self._size - self._pos)
        for start, data in self._pieces:
            if start <= self._pos and self._pos + n <= start + len(data):
                begin = self._pos - start
                self._pos += n
                return data[begin : begin + n]
        raise OSError(f"bytes {self._pos}..{self._pos + n} of the file were not fetched")


def _chunk_spans(
    meta: pq.FileMetaData, groups: list[int], columns: list[str], hole: int
) -> list[tuple[int, int]]:
    """``[start, stop)`` byte ranges holding the column chunks of ``groups``, merged where
    the gap between two is at most ``hole`` bytes."""
    names = meta.schema.names
    spans = []
    for g in groups:
        row_group = meta.row_group(g)
        for name in columns:
            chunk = row_group.column(names.index(name))
            start = chunk.data_page_offset
            if chunk.has_dictionary_page and chunk.dictionary_page_offset:
                start = min(start, chunk.dictionary_page_offset)
            spans.append((start, start + chunk.total_compressed_size))
    spans.sort()
    merged = [list(spans[0])]
    for start, stop in spans[1:]:
        if start - merged[-1][1] <= hole:
            merged[-1][1] = max(merged[-1][1], stop)
        else:
            merged.append([start, stop])
    return [(start, stop) for start, stop in merged]


def _decode(source, meta: pq.FileMetaData, groups: list[int], columns: list[str]) -> pa.Table:
    """Row groups of one file whose footer is known, with no read-ahead beyond each chunk."""
    threads = sum(meta.row_group(g).num_rows for g in groups) > THREADED_DECODE_ROWS
    reader = pq.ParquetFile(source, metadata=meta, pre_buffer=False)
    return reader.read_row_groups(groups, columns=columns, use_threads=threads)


@lru_cache(maxsize=1)
def _open_pool() -> ThreadPoolExecutor:
    """Threads that open remote files (a HEAD each) while their footers are read."""
    return ThreadPoolExecutor(max_workers=8, thread_name_prefix="lakehouse-open")


@lru_cache(maxsize=1)
def _remote_pool() -> ThreadPoolExecutor:
    """Threads that wait on object storage (not CPU): a query's requests go out together."""
    return ThreadPoolExecutor(max_workers=8, thread_name_prefix="lakehouse-read")


def _all(fetch, items: list) -> list:
    """``fetch`` of every item, concurrently when there are several."""
    return list(_remote_pool().map(fetch, items)) if len(items) > 1 else [fetch(i) for i in items]


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
    _footers: OrderedDict[str, _Footer] = field(default_factory=OrderedDict, repr=False)
    _footer_bytes: int = field(default=0, init=False, repr=False)
    _handles: OrderedDict[str, pa.NativeFile] = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    #: Requests sent and bytes fetched for row groups on remote storage (footers not counted).
    remote_requests: int = field(default=0, init=False)
    remote_bytes: int = field(default=0, init=False)

    @cached_property
    def _table(self) -> DeltaTable:
        try:
            return DeltaTable(self.path, version=self.version, storage_options=self.storage_options)
        except Exception as exc:
            # delta-rs raises one DeltaError type for all its failures: a storage that did
            # not answer is told apart by its text (the caller reports "try again", not
            # "no such table")
            unreachable = not isinstance(exc, TableNotFoundError) and any(
                mark in str(exc) for mark in UNREACHABLE_MARKS)
            message = f"cannot open Delta table {self.path} (version {self.version}): {exc}"
            raise (OSError if unreachable else FileNotFoundError)(message) from exc

    @cached_property
    def _config(self) -> dict[str, str]:
        return dict(self._table.metadata().configuration)

    @property
    def pinned_version(self) -> int:
        return self._table.version()

    @cached_property
    def total_rows(self) -> int | None:
        """Rows of the pinned version, from the log's per-file counts (None if one lacks it)."""
        actions = pa.table(self._table.get_add_actions(flatten=True))
        if "num_records" not in actions.column_names or actions["num_records"].null_count:
            return None
        return int(pa.compute.sum(actions["num_records"]).as_py() or 0)

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
        """A data file (as :class:`DataFiles` names it) on :attr:`_storage`."""
        fs_root = self._storage[1]
        if not fs_root:  # delta-rs's filesystem: paths relative to the table
            return path.removeprefix(self.path.rstrip("/") + "/")
        if isinstance(self._storage[0], pafs.LocalFileSystem):
            return os.path.abspath(path.removeprefix("file://"))
        return path.split("://", 1)[-1]

    @cached_property
    def _files(self) -> DataFiles:
        files = snapshot_files(self._table, self.path)
        if files is None:
            raise ValueError(
                f"{self.path} (version {self.pinned_version}) uses deletion vectors or column "
                "mapping, so its data files are not plain Parquet: query it with the Spark "
                "reader (lakehouse.open_catalog), or purge them (REORG TABLE ... APPLY (PURGE))"
            )
        return files

    @cached_property
    def _file_locations(self) -> list[str]:
        return [self._location(p) for p in self._files.paths]

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

    def _footer(self, i: int) -> _Footer:
        """File ``i``'s footer, read on first use.

        Remote: pyarrow's Python layer opens an S3 file with a HEAD request
        (for its size) before any read; the dataset layer takes the size from
        the log instead, so the footer is read through a fragment while the
        handle for later range reads opens alongside: one round trip, not two.
        """
        path = self._file_locations[i]
        with self._lock:
            footer = self._footers.get(path)
            if footer is not None:
                self._footers.move_to_end(path)
                return footer
        if self._remote:
            opening = _open_pool().submit(self._handle, path)
            size = int(self._files.size_bytes[i])
            fragment = _PARQUET.make_fragment(
                path, self._storage[0], file_size=size if size >= 0 else None
            )
            fragment.ensure_complete_metadata()
            meta = fragment.metadata
            opening.result()
        else:
            meta = pq.ParquetFile(self._handle(path)).metadata
        col = meta.schema.names.index("source_id")
        lo = np.full(meta.num_row_groups, _INT64.min, np.int64)
        hi = np.full(meta.num_row_groups, _INT64.max, np.int64)
        for g in range(meta.num_row_groups):
            stats = meta.row_group(g).column(col).statistics
            if stats is not None and stats.has_min_max:
                lo[g], hi[g] = stats.min, stats.max
        footer = _Footer(meta, lo, hi)
        self._keep_footer(path, footer)
        return footer

    def _keep_footer(self, path: str, footer: _Footer) -> None:
        """Cache ``footer`` within :data:`FOOTER_CACHE_BYTES` (least recently used out first)."""
        with self._lock:
            if path in self._footers:  # another thread read it meanwhile
                return
            self._footers[path] = footer
            self._footer_bytes += footer.meta.serialized_size
            while self._footer_bytes > FOOTER_CACHE_BYTES and len(self._footers) > 1:
                _, old = self._footers.popitem(last=False)
                self._footer_bytes -= old.meta.serialized_size

    # -- queries ------------------------------------------------------------
    def cone(self, ra: float, dec: float, radius_deg: float, **kw) -> pa.Table:
        """Rows within ``radius_deg`` degrees of (``ra``, ``dec``) in degrees (ICRS, J2016).

        ``kw``: ``columns`` and ``where``, as for :meth:`search`.
        """
        return self.search(ConeSearch(ra, dec, radius_deg), **kw)

    def box(self, ra_min: float, ra_max: float, dec_min: float, dec_max: float, **kw) -> pa.Table:
        """Rows in an RA/Dec box in degrees; ``ra_min > ra_max`` wraps through RA 0."""
        return self.search(BoxSearch(ra_min, ra_max, dec_min, dec_max), **kw)

    def polygon(self, vertices: list[tuple[float, float]], **kw) -> pa.Table:
        """Rows inside a spherical polygon of (ra, dec) vertices in degrees."""
        return self.search(PolygonSearch(tuple((float(a), float(b)) for a, b in vertices)), **kw)

    def pixels(self, order: int, pixels: list[int], **kw) -> pa.Table:
        """Rows whose source_id lies in the given HEALPix cells (nested) at ``order``."""
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
            parts = healpix.partitions_of(ranges, int(self._config[ORDER_PROPERTY]))
            chosen = np.flatnonzero(files.covering(sid, parts)).tolist()
        else:
            chosen = list(range(len(files.paths))) if len(sid) else []
        footers = _all(self._footer, chosen) if self._remote else map(self._footer, chosen)
        wanted = []  # (file, its row groups meeting the ranges)
        for i, footer in zip(chosen, footers, strict=True):
            groups = np.flatnonzero(healpix.ranges_meet(sid, footer.sid_min, footer.sid_max))
            if len(groups):
                wanted.append((i, footer.meta, groups.tolist()))
        if self._remote:
            read_all = self._read_remote(wanted, columns)
        else:  # local: plain positional reads are fastest
            read_all = (
                _decode(self._handle(self._file_locations[i]), meta, groups, columns)
                for i, meta, groups in wanted
            )
        pieces = list(read_all)
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

    def _read_remote(self, wanted: list[tuple[int, pq.FileMetaData, list[int]]],
                     columns: list[str]) -> list[pa.Table]:  # fmt: skip
        """The row groups of every file: all byte ranges fetched together, then decoded."""
        requests = []  # (file, start, stop)
        for i, meta, groups in wanted:
            spans = _chunk_spans(meta, groups, columns, REMOTE_HOLE_BYTES)
            requests += [(i, start, stop) for start, stop in spans]
        with self._lock:
            self.remote_requests += len(requests)
            self.remote_bytes += sum(stop - start for _, start, stop in requests)

        def fetch(request: tuple[int, int, int]) -> bytes:
            i, start, stop = request
            return self._handle(self._file_locations[i]).read_at(stop - start, start)

        fetched: dict[int, list[tuple[int, bytes]]] = {}
        for (i, start, _), data in zip(requests, _all(fetch, requests), strict=True):
            fetched.setdefault(i, []).append((start, data))
        tables = []
        for i, meta, groups in wanted:
            source = _FetchedRanges(self._handle(self._file_locations[i]).size(), fetched[i])
            tables.append(_decode(source, meta, groups, columns))
        return tables


def open_interactive(
    root: str | None = None,
    table: str = "gaia_source",
    version: int | None = None,
    storage_options: dict[str, str] | None = None,
    settings: Settings | None = None,
) -> InteractiveCatalog:
    """Open a table for in-process queries.

    ``root`` defaults to the lakehouse of ``settings``, which also give an
    ``s3a://`` root its S3 filesystem and (unless ``storage_options`` are
    passed) its delta-rs credentials; ``settings`` default to
    :func:`config.settings.get_settings`.
    """
    if root is None:
        settings = settings or get_settings()
        root = settings.catalogue_root
    filesystem = None
    if is_s3(root):
        settings = settings or get_settings()
        filesystem = arrow_filesystem(settings)
        if storage_options is None:
            storage_options = s3_storage_options(settings)
    return InteractiveCatalog(f"{root.rstrip('/')}/{table}", version, storage_options, filesystem)
