"""``cmd_diagram``: the colour–magnitude (HR) diagram as a 2-d density.

Absolute magnitude M_G = G + 5 log10(parallax / mas) - 10 is only meaningful
where the parallax is measured well, so sources need ``parallax_over_error``
above a threshold (and, optionally, a good astrometric fit, ``ruwe``). The
histogram is binned in Spark (one ``groupBy`` on integer bin indices); only
the bin counts reach the driver.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from avi_plugins.bundled.tables import write_parquet
from avi_plugins.bundled.views import figure, image_pane, save_png
from avi_plugins.sdk import AVI, Manifest, Task, TaskContext


class CmdParams(BaseModel):
    """Quality cuts and the binning of the diagram."""

    model_config = ConfigDict(extra="forbid")
    parallax_over_error_min: float = Field(10.0, ge=1.0, le=1000.0,
                                           description="Keep parallax_over_error above this.")
    ruwe_max: float | None = Field(1.4, gt=0.0, le=100.0, description="Keep ruwe below this.")
    bp_rp_min: float = Field(-1.0, ge=-5.0, le=10.0, description="Colour axis start [mag].")
    bp_rp_max: float = Field(5.0, ge=-5.0, le=10.0, description="Colour axis end [mag].")
    mg_min: float = Field(-5.0, ge=-10.0, le=25.0, description="M_G axis start [mag].")
    mg_max: float = Field(17.0, ge=-10.0, le=25.0, description="M_G axis end [mag].")
    bins: int = Field(200, ge=10, le=2000, description="Bins along each axis.")

    @model_validator(mode="after")
    def _ranges(self) -> CmdParams:
        if self.bp_rp_min >= self.bp_rp_max or self.mg_min >= self.mg_max:
            raise ValueError("axis ranges must satisfy bp_rp_min < bp_rp_max and mg_min < mg_max")
        return self


def cmd_histogram(df: Any, p: CmdParams) -> pd.DataFrame:
    """Non-empty bins (ix, iy, count) over [min, max) on both axes, sorted."""
    from pyspark.sql import functions as F

    dx = (p.bp_rp_max - p.bp_rp_min) / p.bins
    dy = (p.mg_max - p.mg_min) / p.bins
    good = df.where(F.col("parallax_over_error") > p.parallax_over_error_min).where(
        F.col("parallax") > 0
    )
    if p.ruwe_max is not None:
        good = good.where(F.col("ruwe") < p.ruwe_max)
    mg = F.col("phot_g_mean_mag") + 5 * F.log10(F.col("parallax")) - 10
    binned = (
        good.select(F.col("bp_rp").cast("double").alias("x"), mg.cast("double").alias("y"))
        .where(F.col("x").isNotNull() & F.col("y").isNotNull())
        .where((F.col("x") >= p.bp_rp_min) & (F.col("x") < p.bp_rp_max))
        .where((F.col("y") >= p.mg_min) & (F.col("y") < p.mg_max))
        .select(
            F.least(F.floor((F.col("x") - p.bp_rp_min) / dx), F.lit(p.bins - 1)).cast("int")
            .alias("ix"),
            F.least(F.floor((F.col("y") - p.mg_min) / dy), F.lit(p.bins - 1)).cast("int")
            .alias("iy"),
        )
    )
    counts = binned.groupBy("ix", "iy").count().orderBy("ix", "iy").toPandas()
    return counts.astype({"ix": "int32", "iy": "int32", "count": "int64"})


def _density(ctx: TaskContext) -> None:
    p: CmdParams = ctx.params  # type: ignore[assignment]
    df = ctx.table("gaia_source").df
    write_parquet(cmd_histogram(df, p), ctx.output_dir / "cmd_density.parquet")


def density_image(counts: pd.DataFrame, bins: int) -> np.ndarray:
    image = np.zeros((bins, bins))
    image[counts["iy"].to_numpy(), counts["ix"].to_numpy()] = counts["count"].to_numpy()
    return image


def _plot(ctx: TaskContext) -> None:
    from matplotlib.colors import LogNorm

    p: CmdParams = ctx.params  # type: ignore[assignment]
    counts = pd.read_parquet(ctx.inputs["density"] / "cmd_density.parquet")
    image = np.ma.masked_equal(density_image(counts, p.bins), 0)
    fig, ax = figure(6, 7)
    shown = ax.imshow(image, origin="lower", aspect="auto", cmap="inferno",
                      norm=LogNorm(vmin=1, vmax=max(2, image.max() if image.count() else 2)),
                      extent=(p.bp_rp_min, p.bp_rp_max, p.mg_min, p.mg_max))
    ax.invert_yaxis()
    ax.set_xlabel("BP - RP [mag]")
    ax.set_ylabel("M_G [mag]")
    fig.colorbar(shown, ax=ax, label="sources per bin")
    save_png(fig, ctx.output_dir / "cmd.png")


class CmdDiagram(AVI):
    """Colour–magnitude diagram (absolute G) as a density plot."""

    manifest = Manifest(
        name="cmd_diagram", version="1.0.0", title="Colour-magnitude diagram",
        summary="HR diagram of sources with good parallaxes: absolute G against BP-RP, binned.",
        author="avip", tags=("photometry", "hr-diagram"),
    )
    Params = CmdParams

    def tasks(self) -> list[Task]:
        return [
            Task("density", _density, tables=("gaia_source",), result=True),
            Task("plot", _plot, after=("density",), result=True),
        ]

    def view(self, result_dir: Path) -> Any:
        import panel as pn

        counts = pd.read_parquet(Path(result_dir) / "cmd_density.parquet")
        return pn.Column(f"## HR diagram: {int(counts['count'].sum())} sources",
                         image_pane(Path(result_dir) / "cmd.png", "Density"))
