"""TAP 1.1 at ``/tap``: sync queries in this process, and VOSI.

* ``/tap/sync`` plans the ADQL (:mod:`lakehouse.adql`) and runs it on the
  in-process reader with DuckDB; a query that would read more catalogue rows
  than ``tap_sync_scan_rows``, pair more rows than ``tap_sync_join_rows`` or
  run past ``tap_sync_timeout_s`` is refused with advice to run it async
  (:mod:`api.vo.uws_jobs`, ``/tap/async``).
* VOSI ``/availability``, ``/capabilities``, ``/tables``.

Errors are VOTable error documents (4xx), never a 500.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.vo import vosi
from api.vo.catalogue import TABLES, Readers, readers_of
from api.vo.requests import (
    Params,
    VOError,
    absolute_url,
    caller,
    error_response,
    in_flight,
    query_of,
    read_params,
    row_limit,
    settings_of,
    uploads_of,
)
from config.settings import Settings
from lakehouse.adql import AdqlError, plan
from lakehouse.adql.formats import FORMATS, metadata, read_upload, serialize
from lakehouse.adql.local import run_local

router = APIRouter(prefix="/tap", tags=["vo"])
log = logging.getLogger("avip.vo")


def _uploads(params: Params, max_rows: int | None) -> dict[str, Any]:
    tables = {}
    for name, data in uploads_of(params).items():
        try:
            tables[name] = read_upload(data)
        except ValueError as err:
            raise VOError(400, f"UPLOAD {name}: {err}") from None
        if max_rows is not None and tables[name].num_rows > max_rows:
            raise VOError(400, f"UPLOAD {name} has {tables[name].num_rows:,} rows; a sync query "
                          f"takes at most {max_rows:,}: submit it to /tap/async")
    return tables


def _answer(readers: Readers, settings: Settings, params: Params, query: str, fmt: str,
            maxrec: int) -> bytes:
    """Read the uploads, plan and run a sync query (in a worker thread: parsing a large
    UPLOAD takes seconds); the result's bytes in ``fmt``."""
    uploads = _uploads(params, settings.tap_sync_upload_rows)
    checked = plan(query, readers.sources(uploads))
    result = run_local(checked, catalogue=readers.reader, uploads=uploads,
                       tap_schema=readers.tap_schema(), maxrec=maxrec,
                       scan_rows=settings.tap_sync_scan_rows,
                       join_rows=settings.tap_sync_join_rows,
                       timeout_s=settings.tap_sync_timeout_s)
    kinds = {alias: b.source.kind for alias, b in checked.bindings.items()}
    return serialize(result, fmt, query=query, meta=metadata(checked.origins, kinds))


@router.get("/sync", response_class=Response, summary="TAP sync query (ADQL)",
            operation_id="tap_sync_get")
@router.post("/sync", response_class=Response, summary="TAP sync query (ADQL)",
             operation_id="tap_sync_post")
async def tap_sync(request: Request) -> Response:
    settings = settings_of(request)
    try:
        user = await caller(request, anonymous_ok=True)
        params = await read_params(request, settings.tap_upload_max_bytes)
        query, fmt = query_of(params)
        limit = row_limit(settings, user)
        maxrec = min(params.integer("MAXREC") if params.get("MAXREC") else limit, limit)
        readers = readers_of(request.app.state, settings)
        with in_flight(request).hold(request, user):
            data = await anyio.to_thread.run_sync(_answer, readers, settings, params, query,
                                                  fmt, maxrec)
    except VOError as err:
        return error_response(err)
    except (AdqlError, ValueError) as err:  # ValueError: a region the libraries refuse
        return error_response(VOError(400, str(err)))
    except OSError:  # the storage failed mid-query
        log.exception("TAP sync: the catalogue could not be read")
        return error_response(VOError(503, "the catalogue cannot be read now; try again in "
                                      "a minute"))
    return Response(data, media_type=FORMATS[fmt][0])


# ---- VOSI ------------------------------------------------------------------------------

@router.get("/availability", response_class=Response)
async def availability(request: Request) -> Response:
    settings = settings_of(request)
    try:
        readers_of(request.app.state, settings).columns()
        up, note = True, "the catalogue is readable; queries are served"
    except Exception:  # noqa: BLE001 — any failure to read is "not available"
        up, note = False, "the catalogue cannot be read now (operators: see the API's log)"
        log.exception("VOSI availability: the catalogue cannot be read")
    return Response(vosi.availability(up, note), media_type="text/xml")


@router.get("/capabilities", response_class=Response)
async def capabilities(request: Request) -> Response:
    settings = settings_of(request)
    cones = {t: absolute_url(request, f"/scs/{t}") for t in TABLES}
    return Response(vosi.capabilities(absolute_url(request, "/tap"), cones,
                                      settings.tap_sync_max_rows, settings.tap_async_max_rows,
                                      settings.tap_upload_max_bytes),
                    media_type="text/xml")


@router.get("/tables", response_class=Response)
async def tables(request: Request) -> Response:
    settings = settings_of(request)
    try:
        await caller(request, anonymous_ok=True)
        tap_schema = await anyio.to_thread.run_sync(
            readers_of(request.app.state, settings).tap_schema)
    except VOError as err:
        return error_response(err)
    return Response(vosi.tables(tap_schema), media_type="text/xml")

