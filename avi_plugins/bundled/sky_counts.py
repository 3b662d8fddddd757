"""``sky_counts``: source counts and mean proper motions per HEALPix pixel, and an all-sky map.

The pixel of a source is read from its ``source_id`` (bits 35+ are its
level-12 nested index), so the aggregation is one Spark ``groupBy`` on an
integer shift; the map task rasterises pixel values on a Mollweide grid with
``cdshealpix``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from avi_plugins.bundled.tables import write_parquet
from avi_plugins.bundled.views import figure, image_pane, save_png, table_pane
from avi_plugins.sdk import AVI, WARM_ROWS, Lane, Manifest, Task, TaskContext


class SkyCountsParams(BaseModel):
    """HEALPix order, an optional magnitude limit and what the map shows."""

    model_config = ConfigDict(extra="forbid")
    order: int = Field(5, ge=0, le=10, description="HEALPix order of the map pixels.")
    g_max: float | None = Field(None, ge=3.0, le=22.0, description="Only sources with G < g_max.")
    map_quantity: Literal["count", "pmra", "pmdec"] = Field("count", description="Map colour.")


def pixel_counts(df: Any, order: int) -> pd.DataFrame:
    """Counts and mean proper motions per pixel at ``order`` (sorted by pixel)."""
    from pyspark.sql import functions as F

    shift = 35 + 2 * (12 - order)
    grouped = (
        df.withColumn("pixel", F.shiftright(F.col("source_id"), shift))
        .groupBy("pixel")
        .agg(F.count(F.lit(1)).alias("count"), F.avg("pmra").alias("mean_pmra"),
             F.avg("pmdec").alias("mean_pmdec"))
    )
    return grouped.orderBy("pixel").toPandas()


def _counts(ctx: TaskContext) -> None:
    from pyspark.sql import functions as F

    p: SkyCountsParams = ctx.params  # type: ignore[assignment]
    df = ctx.table("gaia_source").df.select("source_id", "pmra", "pmdec", "phot_g_mean_mag")
    if p.g_max is not None:
        df = df.where(F.col("phot_g_mean_mag") < p.g_max)
    write_parquet(pixel_counts(df, p.order), ctx.output_dir / "counts.parquet")


def render_map(counts: pd.DataFrame, order: int, quantity: str, path: Path) -> Path:
    """Mollweide all-sky map of one column, pixel values painted on a lon/lat grid."""
    import astropy.units as u
    from cdshealpix import nested

    column = {"count": "count", "pmra": "mean_pmra", "pmdec": "mean_pmdec"}[quantity]
    lon = np.linspace(-np.pi, np.pi, 721)
    lat = np.linspace(-np.pi / 2, np.pi / 2, 361)
    lon_c, lat_c = np.meshgrid((lon[:-1] + lon[1:]) / 2, (lat[:-1] + lat[1:]) / 2)
    pix = nested.lonlat_to_healpix(
        (np.degrees(lon_c.ravel()) % 360) * u.deg, np.degrees(lat_c.ravel()) * u.deg, order
    ).astype(np.int64)
    from matplotlib.colors import LogNorm

    # Counts span orders of magnitude (plane vs poles): log scale, empty pixels are 0.
    is_count = quantity == "count"
    values = np.full(12 * 4**order, 0.0 if is_count else np.nan)
    values[counts["pixel"].to_numpy()] = counts[column].to_numpy()
    grid = values[pix].reshape(lon_c.shape)
    fig, ax = figure(10, 5.5, projection="mollweide")
    norm = LogNorm(vmin=max(1.0, np.nanmin(grid[grid > 0], initial=1.0))) if is_count else None
    cmap = "viridis"
    if is_count:
        import matplotlib

        cmap = matplotlib.colormaps["viridis"].with_extremes(bad="black", under="black")
    mesh = ax.pcolormesh(-lon, lat, np.ma.masked_less_equal(grid, 0) if is_count else grid,
                         shading="flat", cmap=cmap, norm=norm)  # RA grows leftwards
    fig.colorbar(mesh, ax=ax, orientation="horizontal", label=column, shrink=0.6)
    ax.set_xticklabels([])
    ax.set_title(f"{column} per HEALPix order-{order} pixel (ICRS)")
    return save_png(fig, path)


def _map(ctx: TaskContext) -> None:
    p: SkyCountsParams = ctx.params  # type: ignore[assignment]
    counts = pd.read_parquet(ctx.inputs["counts"] / "counts.parquet")
    render_map(counts, p.order, p.map_quantity, ctx.output_dir / "sky_map.png")


class SkyCounts(AVI):
    """HEALPix counts and mean proper motions → all-sky map."""

    manifest = Manifest(
        name="sky_counts", version="1.0.0", title="Sky counts",
        summary="Source counts and mean proper motions per HEALPix pixel, as an all-sky map.",
        author="avip", tags=("healpix", "map"),
    )
    Params = SkyCountsParams
    lanes: ClassVar[tuple[Lane, ...]] = ("spark", "warm")

    def small(self, params: Any, table_rows: Mapping[str, int]) -> bool:
        """Warm when the whole table (a map reads every row) is at most
        :data:`~avi_plugins.sdk.WARM_ROWS` rows."""
        rows = table_rows.get("gaia_source")
        return rows is not None and rows <= WARM_ROWS

    def tasks(self) -> list[Task]:
        return [
            Task("counts", _counts, tables=("gaia_source",), params=("order", "g_max"),
                 result=True),
            Task("map", _map, after=("counts",), params=("order", "map_quantity"), result=True),
        ]

    def view(self, result_dir: Path) -> Any:
        import panel as pn

        counts = pd.read_parquet(Path(result_dir) / "counts.parquet")
        return pn.Column(f"## Sky counts: {int(counts['count'].sum())} sources",
                         image_pane(Path(result_dir) / "sky_map.png", "All-sky map"),
                         table_pane(counts, "Pixels"))
