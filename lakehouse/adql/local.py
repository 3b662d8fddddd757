"""Running a plan in-process: the interactive reader for the catalogue, DuckDB for the SQL.

Each catalogue table is read through :class:`~lakehouse.interactive.InteractiveCatalog`
restricted to the plan's regions (HEALPix coverage → files → row groups, then
the exact geometry), so a cone reads a few row groups; DuckDB then runs the
checked query over those rows, the uploads and TAP_SCHEMA. This is TAP's sync
path: a query that would read more than ``scan_rows`` catalogue rows is refused
with :class:`NeedsAsync` before anything is read.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from lakehouse import healpix
from lakehouse.adql.errors import AdqlError, first_line
from lakehouse.adql.parse import Plan, PositionalJoin
from lakehouse.interactive import InteractiveCatalog
from lakehouse.regions import PixelSearch, Region

ALL_SKY = PixelSearch(0, tuple(range(12)))
SKY_CELLS = 12 * 4**healpix.INDEX_ORDER


class NeedsAsync(AdqlError):
    """A query too large for the sync path; the message says to run it async."""


@dataclass(frozen=True)
class Result:
    """A query's rows, and whether MAXREC cut them short."""

    table: pa.Table
    overflow: bool


@dataclass(frozen=True)
class NearPositions:
    """The cells within ``radius_deg`` of some positions: what a crossmatch can reach.

    The positions' cells grown by the radius (:func:`lakehouse.healpix.dilate`) hold
    every point within it; the exact match is the query's own DISTANCE condition.
    """

    ra_deg: np.ndarray
    dec_deg: np.ndarray
    radius_deg: float

    def coverage(self) -> np.ndarray:
        ok = np.isfinite(self.ra_deg) & np.isfinite(self.dec_deg) & (np.abs(self.dec_deg) <= 90)
        if not ok.any():
            return np.empty((0, 2), dtype=np.int64)
        cells = np.unique(healpix.healpix_index(self.ra_deg[ok] % 360.0, self.dec_deg[ok],
                                                healpix.INDEX_ORDER))
        return healpix.dilate(healpix.pixel_ranges(healpix.INDEX_ORDER, cells), self.radius_deg)

    def mask(self, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
        return np.ones(len(ra), dtype=bool)


def run_local(plan: Plan, *, catalogue: Callable[[str], InteractiveCatalog],
              uploads: Mapping[str, pa.Table], tap_schema: Mapping[str, pa.Table],
              maxrec: int, scan_rows: int, join_rows: int = 50_000_000,
              timeout_s: float = 30.0) -> Result:
    """Run ``plan`` in this process; at most ``maxrec`` rows (``overflow`` says if cut).

    Sync work is bounded three ways, each refused with advice to go async: a catalogue
    table's rows read (``scan_rows``), the row combinations a join of several tables may
    form (``join_rows``: DuckDB joins on a condition by nested loops), and the time DuckDB
    runs (``timeout_s``, then interrupted)."""
    import duckdb

    tables = {}
    for alias, binding in plan.bindings.items():
        kind, key = binding.source.kind, binding.source.key
        if kind == "catalogue":
            tables[binding.view] = _read_catalogue(plan, alias, catalogue(key), uploads,
                                                   scan_rows)
        elif kind == "upload":
            tables[binding.view] = uploads[key]
        else:
            tables[binding.view] = tap_schema[key]
    combinations = math.prod(max(t.num_rows, 1) for t in tables.values())
    if len(tables) > 1 and combinations > join_rows:
        raise NeedsAsync(f"this join pairs up to {combinations:,} rows, more than a sync query "
                         f"may ({join_rows:,}): submit it to /tap/async")
    cap, may_overflow = plan.row_cap(maxrec)
    with duckdb.connect(config={"threads": 1}) as con:  # one core a query: fair to others
        for view, table in tables.items():
            con.register(view, table)
        stop = threading.Timer(timeout_s, con.interrupt)
        stop.start()
        try:
            table = con.sql(plan.sql("duckdb", limit=cap)).to_arrow_table()
        except duckdb.InterruptException:
            raise NeedsAsync(f"the query ran past {timeout_s:.0f} s, the most a sync query may: "
                             "submit it to /tap/async") from None
        except duckdb.Error as err:
            raise AdqlError(f"the query could not run: {first_line(err)}") from None
        finally:
            stop.cancel()
    overflow = may_overflow and table.num_rows > maxrec
    return Result(table.slice(0, maxrec) if overflow else table, overflow)


def _read_catalogue(plan: Plan, alias: str, reader: InteractiveCatalog,
                    uploads: Mapping[str, pa.Table], scan_rows: int) -> pa.Table:
    """The catalogue rows the query can touch: its regions (or what an upload's positions
    reach), with the columns it reads."""
    regions: list[Region] = list(plan.regions.get(alias, []))
    if not regions and plan.join is not None and plan.join.left == alias:
        regions = [_near(plan, plan.join, uploads)]
    region, share = smallest(regions)
    total = reader.total_rows
    estimate = total * share if total is not None else None
    if estimate is None or estimate > scan_rows:
        where = "its sky regions hold" if regions else "it has no CONTAINS/DISTANCE region"
        table = plan.bindings[alias].source.name
        raise NeedsAsync(
            f"this query would read ~{int(estimate or 0):,} rows of {table} ({where}; sync "
            f"queries read at most {scan_rows:,}): submit it to /tap/async, or narrow it "
            "with 1 = CONTAINS(POINT(ra, dec), CIRCLE(ra0, dec0, radius))")
    needed = list(dict.fromkeys([*plan.bindings[alias].columns, "ra", "dec"]))
    table = reader.search(region, columns=needed)
    for other in regions:
        if other is not region:
            table = table.filter(pa.array(other.mask(table["ra"].to_numpy(),
                                                     table["dec"].to_numpy())))
    return table


def smallest(regions: Sequence[Region]) -> tuple[Region, float]:
    """The region that covers least (the whole sky without one) and its share of the sky,
    from its HEALPix coverage: what reading all of ``regions`` costs at the mean density."""
    if not regions:
        return ALL_SKY, 1.0
    shares = []
    for region in regions:
        ranges = region.coverage()
        cells = int((ranges[:, 1] - ranges[:, 0]).sum()) if len(ranges) else 0
        shares.append((cells / SKY_CELLS, region))
    share, region = min(shares, key=lambda pair: pair[0])
    return region, share


def _near(plan: Plan, join: PositionalJoin, uploads: Mapping[str, pa.Table]) -> NearPositions:
    other = plan.bindings[join.right]
    if other.source.kind != "upload":
        raise NeedsAsync(f"a positional join with {other.source.name} runs async only: "
                         "submit it to /tap/async")
    table = uploads[other.source.key]
    for column in join.right_position:
        kind = table.schema.field(column).type
        if not (pa.types.is_floating(kind) or pa.types.is_integer(kind)):
            raise AdqlError(f"{other.source.name}.{column} holds {kind}, not numbers: positions "
                            "are decimal degrees (convert sexagesimal ones before uploading)")
    ra, dec = (np.asarray(table[c].to_numpy(zero_copy_only=False), dtype=float)
               for c in join.right_position)
    return NearPositions(ra, dec, join.radius_deg)
