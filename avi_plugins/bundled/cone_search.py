"""``cone_search``: a sky region plus column filters, exported as astronomers' tables.

Two tasks: ``select`` reads the pinned catalogue and writes the rows as
Parquet; ``export`` converts them to CSV, VOTable and FITS. Changing only the
formats re-uses the selection (its address does not depend on them).
Filters are structured (column, operator, value) and checked against the
catalogue's columns, so no user text reaches Spark SQL.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from avi_plugins.bundled.tables import FORMATS, gaia_units, write_formats, write_parquet
from avi_plugins.bundled.views import figure, figure_pane, table_pane
from avi_plugins.sdk import AVI, WARM_ROWS, Lane, Manifest, Task, TaskContext
from lakehouse.schema import COLUMN_NAMES

Format = Literal["parquet", "csv", "votable", "fits"]
#: The densest sky over the mean, for sizing a region: Gaia's bulge fields hold 20-50
#: times the all-sky mean (Gaia DR3 documentation, source density maps).
DENSITY_CONTRAST = 50
OPERATORS = {"<": "__lt__", "<=": "__le__", ">": "__gt__", ">=": "__ge__", "=": "__eq__",
             "!=": "__ne__"}


class ColumnFilter(BaseModel):
    """One condition on a catalogue column, e.g. phot_g_mean_mag < 15."""

    model_config = ConfigDict(extra="forbid")
    column: str = Field(description="A gaia_source column.")
    op: Literal["<", "<=", ">", ">=", "=", "!="] = Field(description="Comparison.")
    value: float = Field(description="Right-hand side.")

    @field_validator("column")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in COLUMN_NAMES:
            raise ValueError(f"unknown column {value!r}; use a gaia_source column")
        return value


class ConeSearchParams(BaseModel):
    """A cone (or box) on the sky, optional column filters and output formats."""

    model_config = ConfigDict(extra="forbid")
    shape: Literal["cone", "box"] = Field("cone", description="Region shape.")
    ra: float = Field(56.75, ge=0.0, lt=360.0, description="Cone centre RA [deg].")
    dec: float = Field(24.12, ge=-90.0, le=90.0, description="Cone centre Dec [deg].")
    radius_deg: float = Field(0.5, gt=0.0, le=10.0, description="Cone radius [deg].")
    ra_min: float | None = Field(None, ge=0.0, lt=360.0, description="Box RA min [deg].")
    ra_max: float | None = Field(None, ge=0.0, le=360.0, description="Box RA max [deg].")
    dec_min: float | None = Field(None, ge=-90.0, le=90.0, description="Box Dec min [deg].")
    dec_max: float | None = Field(None, ge=-90.0, le=90.0, description="Box Dec max [deg].")
    filters: list[ColumnFilter] = Field(default_factory=list, max_length=50,
                                        description="Column conditions.")
    columns: list[str] | None = Field(None, max_length=200,
                                      description="Columns to keep (default: all).")
    max_rows: int = Field(1_000_000, ge=1, le=5_000_000, description="Row limit (by source_id).")
    formats: list[Format] = Field(default_factory=lambda: list(FORMATS), min_length=1,
                                  description="Output formats.")

    @model_validator(mode="after")
    def _box_complete(self) -> ConeSearchParams:
        box = (self.ra_min, self.ra_max, self.dec_min, self.dec_max)
        if self.shape == "box" and any(v is None for v in box):
            raise ValueError("shape=box needs ra_min, ra_max, dec_min and dec_max")
        return self


def sky_fraction(p: ConeSearchParams) -> float:
    """The fraction of the sphere the cone or box covers."""
    if p.shape == "cone":
        return (1.0 - math.cos(math.radians(p.radius_deg))) / 2.0
    ra_min, ra_max, dec_min, dec_max = (float(v) for v in  # type: ignore[arg-type]
                                        (p.ra_min, p.ra_max, p.dec_min, p.dec_max))
    width = (ra_max - ra_min) % 360.0 or (360.0 if ra_max != ra_min else 0.0)
    band = math.sin(math.radians(max(dec_min, dec_max))) - math.sin(
        math.radians(min(dec_min, dec_max)))
    return math.radians(width) * band / (4.0 * math.pi)


def region_df(ctx: TaskContext) -> Any:
    """The pinned catalogue restricted to the region and filters."""
    from pyspark.sql import functions as F

    p: ConeSearchParams = ctx.params  # type: ignore[assignment]
    cat = ctx.table("gaia_source")
    if p.shape == "cone":
        cat = cat.cone(p.ra, p.dec, p.radius_deg)
    else:
        cat = cat.box(p.ra_min, p.ra_max, p.dec_min, p.dec_max)
    df = cat.df
    for flt in p.filters:
        df = df.where(getattr(F.col(flt.column), OPERATORS[flt.op])(F.lit(flt.value)))
    if p.columns:
        keep = list(dict.fromkeys(["source_id", *p.columns]))
        df = df.select(*keep)
    return df


def _select(ctx: TaskContext) -> None:
    p: ConeSearchParams = ctx.params  # type: ignore[assignment]
    rows = region_df(ctx).orderBy("source_id").limit(p.max_rows).toPandas()
    write_parquet(rows, ctx.output_dir / "sources.parquet")
    ctx.say(f"{len(rows)} rows selected")


def _export(ctx: TaskContext) -> None:
    p: ConeSearchParams = ctx.params  # type: ignore[assignment]
    rows = pd.read_parquet(ctx.inputs["select"] / "sources.parquet")
    formats = [f for f in p.formats if f != "parquet"]
    write_formats(rows, ctx.output_dir / "sources", formats, gaia_units())


class ConeSearch(AVI):
    """Region + column filters → Parquet, CSV, VOTable, FITS."""

    manifest = Manifest(
        name="cone_search", version="1.0.0", title="Cone search",
        summary="Sources in a cone or box with column filters, as Parquet, CSV, VOTable and FITS.",
        author="avip", tags=("search", "export"),
    )
    Params = ConeSearchParams
    lanes: ClassVar[tuple[Lane, ...]] = ("spark", "warm")

    def small(self, params: Any, table_rows: Mapping[str, int]) -> bool:
        """Warm when the region would hold at most :data:`~avi_plugins.sdk.WARM_ROWS` rows
        even at :data:`DENSITY_CONTRAST` times the catalogue's mean density (a cone on the
        Galactic bulge must not pass for a small one)."""
        rows = table_rows.get("gaia_source")
        return rows is not None and rows * sky_fraction(params) * DENSITY_CONTRAST <= WARM_ROWS

    def tasks(self) -> list[Task]:
        region = ("shape", "ra", "dec", "radius_deg", "ra_min", "ra_max", "dec_min", "dec_max",
                  "filters", "columns", "max_rows")
        return [
            Task("select", _select, tables=("gaia_source",), params=region, result=True),
            Task("export", _export, after=("select",), params=("formats",), result=True),
        ]

    def view(self, result_dir: Path) -> Any:
        import panel as pn

        rows = pd.read_parquet(Path(result_dir) / "sources.parquet")
        fig, ax = figure()
        ax.scatter(rows["ra"], rows["dec"], s=1)
        ax.set_xlabel("RA [deg]")
        ax.set_ylabel("Dec [deg]")
        ax.invert_xaxis()
        files = sorted(p.name for p in Path(result_dir).iterdir())
        return pn.Column(f"## Cone search: {len(rows)} sources", "Files: " + ", ".join(files),
                         figure_pane(fig, "Positions"), table_pane(rows.head(10_000), "Sources"))
