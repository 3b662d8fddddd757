"""The in-process reader: sub-second region queries on the Delta tables, no Spark.

delta-rs reads the Delta log (file list, partition values, per-file source_id
min/max); pyarrow reads only the Parquet row groups whose source_id range meets
the region's coverage; numpy applies the exact geometry; DuckDB runs the
optional ``where`` over the few rows left. File footers are cached, so a
session of queries over the same table pays for each footer once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lakehouse import healpix
from lakehouse.filters import check_filter, referenced_columns, render
from lakehouse.layout import MARGIN_PROPERTY, ORDER_PROPERTY
from lakehouse.regions import BoxSearch, ConeSearch, PixelSearch, PolygonSearch, Region
from lakehouse.schema import PARTITION_COLUMN


@dataclass
class _FileIndex:
    paths: list[str]
    partition: np.ndarray
    sid_min: np.ndarray
    sid_max: np.ndarray


@dataclass
class InteractiveCatalog:
    """Read-only, version-pinned access to one catalogue table."""

    path: str
    version: int | None = None
    storage_options: dict[str, str] | None = None
    _footers: dict[str, pq.FileMetaData] = field(default_factory=dict, repr=False)

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
    def _filesystem(self):
        return self._table.to_pyarrow_dataset().filesystem

    @cached_property
    def _files(self) -> _FileIndex:
        actions = pa.table(self._table.get_add_actions(flatten=True))
        names = actions.column_names
        part_col = f"partition.{PARTITION_COLUMN}"
        n = actions.num_rows
        return _FileIndex(
            paths=actions["path"].to_pylist(),
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

    def _footer(self, path: str) -> pq.FileMetaData:
        if path not in self._footers:
            with self._filesystem.open_input_file(path) as fh:
                self._footers[path] = pq.ParquetFile(fh).metadata
        return self._footers[path]

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
            lo, hi = sid[:, 0], sid[:, 1]
            # a file is read if its [min, max] meets any [lo, hi)
            starts = np.searchsorted(hi, files.sid_min, side="right")
            overlaps = (starts < len(lo)) & (lo[np.minimum(starts, len(lo) - 1)] <= files.sid_max)
            chosen = np.flatnonzero(np.isin(files.partition, parts) & overlaps)
        else:
            chosen = np.arange(len(files.paths)) if len(sid) else np.array([], int)
        pieces = []
        for i in chosen:
            path = files.paths[i]
            meta = self._footer(path)
            groups = self._row_groups(meta, sid)
            if not groups:
                continue
            with self._filesystem.open_input_file(path) as fh:
                pieces.append(
                    pq.ParquetFile(fh, metadata=meta).read_row_groups(groups, columns=columns)
                )
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

    @staticmethod
    def _row_groups(meta: pq.FileMetaData, sid: np.ndarray) -> list[int]:
        """Row groups whose source_id statistics meet one of the ranges."""
        col = meta.schema.names.index("source_id")
        chosen = []
        for g in range(meta.num_row_groups):
            stats = meta.row_group(g).column(col).statistics
            if stats is None or not stats.has_min_max:
                chosen.append(g)
                continue
            j = np.searchsorted(sid[:, 1], stats.min, side="right")
            if j < len(sid) and sid[j, 0] <= stats.max:
                chosen.append(g)
        return chosen


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
    if storage_options is None and root.startswith(("s3a://", "s3://")):
        from api.s3 import storage_options as s3_options
        from api.settings import get_settings

        storage_options = s3_options(get_settings())
    return InteractiveCatalog(f"{root.rstrip('/')}/{table}", version, storage_options)
