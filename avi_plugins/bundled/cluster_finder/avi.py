"""``cluster_finder``: open clusters from HDBSCAN over overlapping HEALPix fields.

The sky is cut into overlapping fields (:mod:`.fields`); Spark ships each
field's stars to one Python worker (``groupBy(field).applyInPandas``) which
rescales and clusters them (:mod:`.per_field`); only the members of kept
clusters come back to the driver, where duplicates are merged and clusters
summarised (:mod:`.merge`). The whole sky never passes through the driver.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from avi_plugins.bundled.cluster_finder.fields import (
    GAIA_ID_ORDER,
    GAIA_ID_SHIFT,
    balance_fields,
    pixel_field_table,
    plan_fields,
)
from avi_plugins.bundled.cluster_finder.merge import merge_candidates, summarise
from avi_plugins.bundled.cluster_finder.per_field import (
    INPUT_COLUMNS,
    MEMBER_SCHEMA,
    FieldSettings,
    cluster_field,
    one_thread_per_process,
)
from avi_plugins.bundled.cluster_finder.view import cluster_view
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


def select_stars(stars: Any, params: ClusterFinderParams) -> Any:
    """The quality cuts, then only the columns clustering needs (Spark DataFrame)."""
    from pyspark.sql import functions as F

    df = stars
    if params.ruwe_max is not None and "ruwe" in df.columns:
        df = df.where(F.col("ruwe") < params.ruwe_max)
    if params.g_max is not None:
        df = df.where(F.col("phot_g_mean_mag") < params.g_max)
    return df.select(*INPUT_COLUMNS).dropna()


def _pixel(order: int) -> Any:
    """Spark column: the HEALPix pixel at ``order`` encoded in ``source_id``."""
    from pyspark.sql import functions as F

    return F.shiftright("source_id", GAIA_ID_SHIFT + 2 * (GAIA_ID_ORDER - order))


def plan_sky_fields(df: Any, params: ClusterFinderParams) -> pd.DataFrame:
    """(pixel, field) join table for the stars of ``df``, from one small aggregate.

    Stars are counted per pixel at the deepest field order + margin (enough to
    tell every star's fields); those counts, summed to the deepest order, plan
    the adaptive fields, and the non-empty pixels become the join table. A
    ``stars`` column holds each field's star count, margins included.
    """
    order = params.deepest_order
    pixel_order = order + params.margin_levels
    counts = (
        df.select(_pixel(pixel_order).alias("pixel")).groupBy("pixel").count().toPandas()
    )
    pixels = counts["pixel"].to_numpy(dtype=np.int64)
    coarse = counts.groupby(pixels >> (2 * params.margin_levels))["count"].sum()
    fields = plan_fields(coarse, order, params.field_order, params.max_field_stars)
    table = pixel_field_table(pixels, pixel_order, fields, params.margin_levels)
    table = table.merge(counts, on="pixel")
    table["stars"] = table.groupby("field")["count"].transform("sum")
    return table.drop(columns="count")


def partition_keys(spark: Any, n_partitions: int) -> np.ndarray:
    """``keys[i]``: a long that Spark's hash partitioning sends to partition ``i``.

    ``repartition(n, col)`` places a row by ``pmod(hash(col), n)``; asking Spark
    itself which small integers land where lets a bucket choose its partition
    (and so its place in the task order) without re-implementing Murmur3.
    """
    from pyspark.sql import functions as F

    probe = (
        spark.range(0, 64 * n_partitions)
        .select("id", F.pmod(F.hash("id"), F.lit(n_partitions)).alias("partition"))
        .groupBy("partition").agg(F.min("id").alias("key"))
        .toPandas().set_index("partition")["key"]
    )
    if len(probe) < n_partitions:
        raise RuntimeError(f"no key found for some of {n_partitions} partitions")
    return probe.sort_index().to_numpy(dtype=np.int64)


BUCKET_STARS = 250_000  # at most about this many star copies per bucket (one pandas frame)


def find_members(stars: Any, params: ClusterFinderParams) -> pd.DataFrame:
    """Members of every cluster in a Spark DataFrame of stars, merged across fields.

    ``stars`` needs the columns in :data:`INPUT_COLUMNS` (plus ``ruwe`` /
    ``phot_g_mean_mag`` when those cuts are on). The selected stars are cached
    once: they are read twice (counts per pixel, then the fields). Stars get
    their fields by a broadcast join on their pixel (:func:`plan_sky_fields`).
    Fields are packed into buckets of equal estimated cost, the heaviest in the
    first partition (:func:`~.fields.balance_fields`), so both cores stay busy
    to the end; one bucket is one task and one ``applyInPandas`` group, split
    into its fields in pandas: a group per field would cost Spark's Arrow and
    pandas round trip (~15 ms) for each of hundreds of mostly tiny fields.
    ``repartition`` by bucket already places each group, so ``applyInPandas``
    adds no second shuffle.
    """
    from pyspark.sql import functions as F

    df = select_stars(stars, params).persist()
    try:
        spark = df.sparkSession
        table = plan_sky_fields(df, params)
        field_stars = table.groupby("field")["stars"].first()
        n_buckets = max(16 * spark.sparkContext.defaultParallelism,
                        -(-int(field_stars.sum()) // BUCKET_STARS))
        n_buckets = max(1, min(len(field_stars), n_buckets))
        bucket = balance_fields(field_stars, n_buckets)
        keys = partition_keys(spark, n_buckets)
        table["bucket"] = keys[bucket.reindex(table["field"]).to_numpy()]
        assignment = spark.createDataFrame(table[["pixel", "field", "bucket"]])
        pixel_order = params.deepest_order + params.margin_levels
        settings = params.field_settings()

        def per_bucket(frame: pd.DataFrame) -> pd.DataFrame:
            one_thread_per_process()  # one core per task, as the serial baseline
            fields = frame.drop(columns="bucket").groupby("field", sort=True)
            return pd.concat([cluster_field(group, settings) for _, group in fields],
                             ignore_index=True)

        members = (
            df.withColumn("pixel", _pixel(pixel_order))
            .join(F.broadcast(assignment), "pixel")
            .drop("pixel")
            .repartition(n_buckets, "bucket")
            .groupBy("bucket")
            .applyInPandas(per_bucket, schema=MEMBER_SCHEMA)
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
        return cluster_view(Path(result_dir))
