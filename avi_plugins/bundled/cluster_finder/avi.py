"""``cluster_finder``: open clusters from HDBSCAN over overlapping HEALPix fields.

The sky is cut into overlapping fields (:mod:`.fields`); Spark ships each
field's stars to one Python worker (``groupBy(field).applyInPandas``) which
rescales and clusters them (:mod:`.per_field`); only the members of kept
clusters come back to the driver, where duplicates are merged and clusters
summarised (:mod:`.merge`). The whole sky never passes through the driver.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from avi_plugins.bundled.cluster_finder.fields import (
    GAIA_ID_ORDER,
    GAIA_ID_SHIFT,
    explode_into_fields,
    plan_fields,
)
from avi_plugins.bundled.cluster_finder.merge import merge_candidates, summarise
from avi_plugins.bundled.cluster_finder.per_field import (
    INPUT_COLUMNS,
    MEMBER_SCHEMA,
    FieldSettings,
    cluster_field,
)
from avi_plugins.bundled.tables import write_parquet
from avi_plugins.sdk import AVI, Manifest, Resources, Task, TaskContext


class ClusterFinderParams(BaseModel):
    """Parameters of the cluster finder (defaults after Hunt & Reffert 2021)."""

    model_config = ConfigDict(extra="forbid")

    field_order: int = Field(
        3, ge=2, le=9, description="HEALPix order of the largest fields (dense ones are split)."
    )
    margin_levels: int = Field(
        2, ge=1, le=4,
        description="Margin = one pixel at (the field's order + margin_levels) around each field.",
    )
    max_field_stars: int = Field(
        20000, ge=500, le=2_000_000,
        description="A field holding more stars than this is split into its four children.",
    )
    min_cluster_size: int = Field(10, ge=5, le=1000, description="HDBSCAN min_cluster_size.")
    min_samples: int = Field(10, ge=1, le=100, description="HDBSCAN min_samples.")
    selection_method: Literal["leaf", "eom"] = Field(
        "eom", description="HDBSCAN cluster_selection_method."
    )
    min_significance: float = Field(
        3.0, ge=0.0, le=37.0, description="Minimum CST significance (sigma) to keep a cluster."
    )
    max_contrast: float = Field(
        0.6, gt=0.0, le=1.0,
        description="Maximum ratio of median k-NN distances, members / comparable field "
        "stars (0.5 in 5-d is ~30x the field density).",
    )
    max_radius_pc: float = Field(
        20.0, gt=0.0, le=1000.0,
        description="Largest half-mass radius (pc, at the members' parallax) of a cluster; "
        "wider groups are field-population modes.",
    )
    ruwe_max: float | None = Field(
        1.4, gt=0.0, le=100.0, description="Keep stars with ruwe below this (None: no cut)."
    )
    g_max: float | None = Field(
        None, ge=3.0, le=22.0, description="Keep stars brighter than this G (None: no cut)."
    )
    backend: Literal["hdbscan", "sklearn"] = Field(
        "hdbscan", description="HDBSCAN implementation run inside each field."
    )

    @model_validator(mode="after")
    def _fine_order(self) -> ClusterFinderParams:
        if self.field_order + self.margin_levels > 12:
            raise ValueError(
                "field_order + margin_levels must be <= 12 (Gaia source_id holds order 12)"
            )
        return self

    @property
    def deepest_order(self) -> int:
        """Deepest order a dense field may be split to (its margin still within order 12)."""
        return min(self.field_order + 3, 12 - self.margin_levels)

    def field_settings(self) -> FieldSettings:
        return FieldSettings(
            min_cluster_size=self.min_cluster_size,
            min_samples=self.min_samples,
            selection_method=self.selection_method,
            min_significance=self.min_significance,
            max_contrast=self.max_contrast,
            max_radius_pc=self.max_radius_pc,
            backend=self.backend,
        )


@contextmanager
def shuffle_for_fields(spark: Any) -> Iterator[None]:
    """Many field groups per core and no coalescing, so slow fields balance out.

    Hash partitioning spreads fields unevenly; with ~16 tasks per core the last
    task to finish is short, so no core idles for long at the end.
    """
    keys = {
        "spark.sql.shuffle.partitions": str(16 * spark.sparkContext.defaultParallelism),
        "spark.sql.adaptive.coalescePartitions.enabled": "false",
    }
    before = {key: spark.conf.get(key, None) for key in keys}
    for key, value in keys.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def select_stars(stars: Any, params: ClusterFinderParams) -> Any:
    """The quality cuts, then only the columns clustering needs (Spark DataFrame)."""
    from pyspark.sql import functions as F

    df = stars
    if params.ruwe_max is not None and "ruwe" in df.columns:
        df = df.where(F.col("ruwe") < params.ruwe_max)
    if params.g_max is not None:
        df = df.where(F.col("phot_g_mean_mag") < params.g_max)
    return df.select(*INPUT_COLUMNS).dropna()


def plan_sky_fields(df: Any, params: ClusterFinderParams) -> Any:
    """Field ids for the stars of ``df``, from star counts per pixel (a small aggregate)."""
    from pyspark.sql import functions as F

    order = params.deepest_order
    shift = GAIA_ID_SHIFT + 2 * (GAIA_ID_ORDER - order)
    counts = (
        df.select(F.shiftright("source_id", shift).alias("pixel")).groupBy("pixel").count()
        .toPandas().set_index("pixel")["count"]
    )
    return plan_fields(counts, order, params.field_order, params.max_field_stars)


def find_members(stars: Any, params: ClusterFinderParams) -> pd.DataFrame:
    """Members of every cluster in a Spark DataFrame of stars, merged across fields.

    ``stars`` needs the columns in :data:`INPUT_COLUMNS` (plus ``ruwe`` /
    ``phot_g_mean_mag`` when those cuts are on). The selected stars are cached
    once: they are read twice (counts per pixel, then the fields).
    """
    from pyspark.sql.types import LongType, StructField, StructType

    df = select_stars(stars, params).persist()
    try:
        fields = plan_sky_fields(df, params)
        margin = params.margin_levels
        exploded_schema = StructType([*df.schema.fields, StructField("field", LongType(), False)])

        def explode(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            for batch in batches:
                yield explode_into_fields(batch, fields, margin)

        settings = params.field_settings()

        def per_field(frame: pd.DataFrame) -> pd.DataFrame:
            return cluster_field(frame, settings)

        with shuffle_for_fields(df.sparkSession):
            members = (
                df.mapInPandas(explode, schema=exploded_schema)
                .groupBy("field")
                .applyInPandas(per_field, schema=MEMBER_SCHEMA)
                .toPandas()
            )
    finally:
        df.unpersist()
    return merge_candidates(members)


def _find(ctx: TaskContext) -> None:
    params: ClusterFinderParams = ctx.params  # type: ignore[assignment]
    ctx.say("clustering fields")
    members = find_members(ctx.table("gaia_source").df, params)
    ctx.say(f"{members['cluster_id'].nunique()} clusters; writing")
    write_parquet(members, ctx.output_dir / "members.parquet")
    write_parquet(summarise(members), ctx.output_dir / "clusters.parquet")


class ClusterFinder(AVI):
    """HDBSCAN open-cluster finder over overlapping HEALPix fields."""

    manifest = Manifest(
        name="cluster_finder",
        version="1.0.0",
        title="Open cluster finder",
        summary="HDBSCAN on (l, b, pmra, pmdec, parallax) rescaled per overlapping HEALPix "
        "field (Hunt & Reffert 2021/2023), clusters merged across fields.",
        author="avip",
        tags=("clusters", "hdbscan", "astrometry"),
    )
    Params = ClusterFinderParams

    def resources(self, params: BaseModel) -> Resources:
        return Resources(driver_memory_mb=2048, executor_cores=2, executor_memory_mb=2048,
                         executors=2)

    def tasks(self) -> list[Task]:
        return [Task("find", _find, tables=("gaia_source",), result=True)]

    def view(self, result_dir: Path) -> Any:
        from avi_plugins.bundled.cluster_finder.view import cluster_view

        return cluster_view(Path(result_dir))
