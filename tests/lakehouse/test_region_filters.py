"""The Spark region filters take their numbers as parameters: the rows they keep
are those of the same arithmetic with the numbers written in as literals (rows
exactly on the edge included), and the code Spark generates for a search does
not depend on where it looks."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from pyspark.sql import functions as F

from lakehouse import open_catalog
from lakehouse.regions import BoxSearch, ConeSearch


def _literal_cone_sql(ra0: float, dec0: float, radius: float) -> str:
    """The haversine cone with every number inlined (how the filter used to read)."""

    def lit(x: float) -> str:
        return f"({float(x)!r}D)"

    d_dec = f"(radians(dec) - {lit(math.radians(dec0))})"
    d_ra = f"(radians(ra) - {lit(math.radians(ra0))})"
    h = (
        f"pow(sin({d_dec} / 2), 2) + {lit(math.cos(math.radians(dec0)))} * "
        f"cos(radians(dec)) * pow(sin({d_ra} / 2), 2)"
    )
    return f"degrees(2 * asin(sqrt(least(1.0D, {h}))))"


def _ids(df) -> set[int]:
    return {r.i for r in df.select("i").collect()}


def test_cone_parameters_keep_the_rows_literals_keep(spark):
    rng = np.random.default_rng(3)
    ra0, dec0 = 123.456, -33.3
    ra = ra0 + rng.uniform(-1.5, 1.5, 4000)
    dec = dec0 + rng.uniform(-1.5, 1.5, 4000)
    points = spark.createDataFrame(pd.DataFrame({"i": np.arange(4000), "ra": ra, "dec": dec}))
    distances = points.select("i", F.expr(_literal_cone_sql(ra0, dec0, 1.0)).alias("d")).toPandas()
    # radii equal to some rows' computed distance put those rows exactly on the edge
    for radius in [*distances["d"].sort_values().iloc[[100, 1700, 3100]], 0.75]:
        literal = _ids(points.where(F.expr(f"{_literal_cone_sql(ra0, dec0, 1.0)} <= {radius!r}D")))
        parameters = _ids(points.where(ConeSearch(ra0, dec0, radius).spark_filter()))
        assert parameters == literal
        assert len(literal) > 0


def test_box_parameters_keep_edges_and_wrap_through_ra_zero(spark):
    ra = np.array([358.0, 359.5, 0.0, 2.0, 2.0000001, 357.9999, 1.0, 1.0, 10.0])
    dec = np.array([0.0, -5.0, 5.0, 0.0, 0.0, 0.0, 5.0000001, -5.0, 0.0])
    points = spark.createDataFrame(pd.DataFrame({"i": np.arange(len(ra)), "ra": ra, "dec": dec}))
    for box in (BoxSearch(358, 2, -5, 5), BoxSearch(0, 2, -5, 5)):
        expected = set(np.flatnonzero(box.mask(ra, dec)).tolist())
        assert _ids(points.where(box.spark_filter())) == expected


def test_generated_code_does_not_depend_on_the_region(spark, edge_sky):
    root, _ = edge_sky
    cat = open_catalog(root, spark=spark)

    def stage_code(view) -> list[str]:
        stages = view.select("source_id").df._jdf.queryExecution().debug().codegenToSeq()
        return [stages.apply(i)._2() for i in range(stages.size())]

    assert stage_code(cat.cone(10, 20, 1)) == stage_code(cat.cone(11.5, 20.5, 1.2))
    assert stage_code(cat.box(10, 12, 20, 21)) == stage_code(cat.box(10.5, 12.5, 20.5, 21.5))
