"""``adql_query``: one ADQL query run on Spark, the job behind every async TAP request.

TAP's UWS layer (:mod:`api.vo`) submits it like any other AVI, so an async
query waits in the same queue, under the same per-user pools and fair share,
reports progress and leaves its result in the owner's space. The query is
planned by :mod:`lakehouse.adql` (regions prune the catalogue; a positional
join with the upload runs as the lakehouse crossmatch) and the result is
written in the requested format as ``result.<suffix>``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from avi_plugins.bundled.crossmatch import WARM_TABLE_BYTES
from avi_plugins.params import UserFile
from avi_plugins.sdk import AVI, WARM_ROWS, Lane, Manifest, Task, TaskContext

Format = Literal["votable", "votable/td", "csv", "parquet", "fits"]
#: Catalogue rows a warm worker's one core scans in the JVM in seconds: the seed query
#: (ten conditions, COUNT(*)) over 10M rows took 8.9 s on the first run and 1.7 s after, in
#: a local[1] session (measured), against ~17 s for a fresh Spark application to start and
#: answer it.
WARM_SCAN_ROWS = 20_000_000
#: Rows an async result may hold at most (TAP's hard MAXREC for async queries).
MAX_ROWS = 50_000_000
RESULT = "result"


class AdqlParams(BaseModel):
    """An ADQL query, its row limit, result format and optional uploaded table."""

    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1, max_length=100_000, description="ADQL 2.1 query.")
    maxrec: int = Field(10_000_000, ge=0, le=MAX_ROWS, description="Most rows returned.")
    format: Format = Field("votable", description="Result format.")
    upload: UserFile | None = Field(None, description="A table to read as TAP_UPLOAD.<name>.")
    upload_name: str = Field("t1", pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$",
                             description="The upload's table name.")


def _upload_tables(p: AdqlParams) -> dict[str, Any]:
    from lakehouse.export import read_table

    return {p.upload_name: read_table(p.upload)} if p.upload else {}


def _small_upload_columns(params: AdqlParams) -> dict[str, list[str]] | None:
    """The upload's column names when it is small enough for the warm lane ({} without
    one), None when it is too large or unreadable."""
    from lakehouse.adql.formats import upload_columns

    if not params.upload:
        return {}
    try:
        data = Path(params.upload).read_bytes() if os.path.getsize(params.upload) <= \
            WARM_TABLE_BYTES else None
        return {params.upload_name: upload_columns(data)} if data is not None else None
    except (OSError, ValueError):
        return None


def _run(ctx: TaskContext) -> None:
    from lakehouse.adql import plan
    from lakehouse.adql.formats import FORMATS, metadata, serialize
    from lakehouse.adql.spark import run_spark
    from lakehouse.adql.tap_schema import query_sources, tap_schema_tables

    p: AdqlParams = ctx.params  # type: ignore[assignment]
    columns = {"gaia_source": tuple(ctx.table("gaia_source").available_columns)}
    uploads = _upload_tables(p)
    checked = plan(p.query, query_sources(columns, {n: t.column_names
                                                     for n, t in uploads.items()}))
    ctx.say("query checked; running on Spark")
    result = run_spark(checked, spark=ctx.spark, catalogue=ctx.table, uploads=uploads,
                       tap_schema=tap_schema_tables(columns), maxrec=p.maxrec)
    kinds = {alias: b.source.kind for alias, b in checked.bindings.items()}
    data = serialize(result, p.format, query=p.query, meta=metadata(checked.origins, kinds))
    (ctx.output_dir / f"{RESULT}.{FORMATS[p.format][1]}").write_bytes(data)
    ctx.say(f"{result.table.num_rows} rows" + (" (MAXREC reached)" if result.overflow else ""))


class AdqlQuery(AVI):
    """One ADQL query on Spark (async TAP)."""

    manifest = Manifest(
        name="adql_query", version="1.0.0", title="ADQL query",
        summary="Runs an ADQL 2.1 query on the catalogue (async TAP): VOTable, CSV, Parquet "
                "or FITS.", author="avip", tags=("tap", "adql", "search"),
    )
    Params = AdqlParams
    lanes: ClassVar[tuple[Lane, ...]] = ("spark", "warm")

    def small(self, params: Any, table_rows: Mapping[str, int]) -> bool:
        """Warm when the query reads one catalogue table (or joins it with an upload by
        position, the upload at most the crossmatch AVI's :data:`WARM_TABLE_BYTES`), its
        regions hold at most :data:`WARM_SCAN_ROWS` rows at the mean density, and at most
        :data:`~avi_plugins.sdk.WARM_ROWS` rows come back. Any other join multiplies rows:
        never small."""
        from lakehouse.adql import AdqlError, plan
        from lakehouse.adql.local import smallest
        from lakehouse.adql.parse import aggregates
        from lakehouse.adql.tap_schema import query_sources
        from lakehouse.schema import COLUMN_NAMES

        rows = table_rows.get("gaia_source")
        upload_columns = _small_upload_columns(params)
        if rows is None or upload_columns is None:
            return False
        try:
            checked = plan(params.query, query_sources({"gaia_source": COLUMN_NAMES},
                                                       upload_columns))
        except AdqlError:
            return False
        if len(checked.bindings) > (2 if checked.join else 1):
            return False
        scanned = 0.0
        for alias in checked.catalogue_aliases:
            scanned += rows * smallest(checked.regions.get(alias, []))[1]
        whole = aggregates(checked.tree) and not checked.tree.args.get("group")
        # a match within an arcminute returns about the (small) upload's rows
        matched = checked.join is not None and checked.join.radius_deg <= 1 / 60
        returned = 1 if whole or matched else min(params.maxrec, checked.top or params.maxrec,
                                                  scanned)
        return scanned <= WARM_SCAN_ROWS and returned <= WARM_ROWS

    def tasks(self) -> list[Task]:
        return [Task("query", _run, tables=("gaia_source",), result=True)]

    def view(self, result_dir: Path) -> Any:
        import panel as pn

        files = sorted(p.name for p in Path(result_dir).iterdir())
        return pn.Column("## ADQL query", "Files: " + ", ".join(files))
