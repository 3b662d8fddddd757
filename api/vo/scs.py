"""Simple Cone Search 1.03 at ``/scs/<table>``: ``RA``, ``DEC``, ``SR`` (degrees), ``VERB``.

Served by the same in-process reader and region code as a TAP cone (and as
``Catalog.cone``), as a VOTable with the schema's units and UCDs. ``VERB=1``
gives source_id and position, ``2`` (default) the principal columns, ``3``
every column; ``SR=0`` the columns and no rows, as the standard asks.
"""

from __future__ import annotations

import math

import anyio
import pyarrow as pa
from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.vo.catalogue import TABLES, readers_of
from api.vo.requests import (
    VOTABLE,
    VOError,
    caller,
    error_response,
    in_flight,
    read_params,
    row_limit,
)
from lakehouse.adql.local import NeedsAsync, smallest
from lakehouse.regions import ConeSearch
from lakehouse.schema import COLUMNS_BY_NAME
from lakehouse.votable import votable_bytes

router = APIRouter(prefix="/scs", tags=["vo"])


def _columns(verb: int, available: tuple[str, ...]) -> list[str]:
    if verb == 1:
        return ["source_id", "ra", "dec"]
    if verb == 3:
        return list(available)
    principal = [c for c in available if c in COLUMNS_BY_NAME and COLUMNS_BY_NAME[c].principal]
    return list(dict.fromkeys(["source_id", "ra", "dec", *principal]))


@router.get("/{table}", response_class=Response, summary="Simple Cone Search 1.03")
async def cone_search(request: Request, table: str) -> Response:
    settings = request.app.state.settings
    try:
        user = await caller(request, anonymous_ok=True)
        if table not in TABLES:
            raise VOError(404, f"no cone search for {table[:40]!r}; tables: {', '.join(TABLES)}")
        params = await read_params(request, 0)
        ra, dec, radius = (params.number(n) for n in ("RA", "DEC", "SR"))
        if ra is None or dec is None or radius is None:
            raise VOError(400, "send RA, DEC and SR (decimal degrees, ICRS)")
        if not (math.isfinite(ra) and math.isfinite(dec) and -90 <= dec <= 90):
            raise VOError(400, f"RA must be finite and DEC within [-90, 90], got {ra}, {dec}")
        if not (math.isfinite(radius) and 0 <= radius <= 180):
            raise VOError(400, f"SR must be within [0, 180] degrees, got {radius}")
        verb = params.integer("VERB", lowest=1) or 2
        if verb > 3:
            raise VOError(400, "VERB is 1, 2 or 3")
        limit = row_limit(settings, user)
        reader = readers_of(request.app.state, settings).reader(table)
        with in_flight(request).hold(request, user):
            data = await anyio.to_thread.run_sync(_answer, reader, ra % 360.0, dec, radius,
                                                  verb, limit, settings.tap_sync_scan_rows)
    except VOError as err:
        return error_response(err)
    except (ValueError, NeedsAsync) as err:
        return error_response(VOError(400, str(err)))
    return Response(data, media_type=VOTABLE)


def _answer(reader, ra: float, dec: float, radius: float, verb: int, limit: int,
            scan_rows: int) -> bytes:
    columns = _columns(verb, reader.columns)
    if radius == 0:
        rows = reader.cone(ra, dec, 1e-9, columns=columns).slice(0, 0)
        return votable_bytes(rows, resource_name="cone")
    region = ConeSearch(ra, dec, radius)
    estimate = (reader.total_rows or 0) * smallest([region])[1]
    if estimate > scan_rows:
        raise NeedsAsync(f"a cone of {radius} degrees holds ~{int(estimate):,} rows, more than "
                         f"a cone search reads ({scan_rows:,}): use a smaller SR, or TAP async")
    rows: pa.Table = reader.search(region, columns=columns)
    overflow = rows.num_rows > limit
    return votable_bytes(rows.slice(0, limit), overflow=overflow, resource_name="cone")
