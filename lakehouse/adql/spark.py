"""Running a plan on Spark: TAP's async path, inside a platform job.

Each catalogue table is a :class:`~lakehouse.catalog.Catalog` view restricted
to the plan's regions (partition and row-group pruning, then the exact
geometry), projected to the columns the query reads, and registered as a
temporary view under a name of its own; uploads and TAP_SCHEMA become small
DataFrames. A positional join is run by the lakehouse crossmatch (the
zones equi-join) rather than as a nested-loop join on a distance condition:
the pairs replace the two joined tables, each column of the uploaded side
renamed to the crossmatch's ``right_`` copy. Spark then runs the checked
query regenerated as Spark SQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

import pyarrow as pa
from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from sqlglot import exp

from lakehouse.adql.errors import AdqlError, first_line
from lakehouse.adql.local import Result
from lakehouse.adql.parse import Plan, PositionalJoin
from lakehouse.catalog import Catalog
from lakehouse.crossmatch import crossmatch

ARCSEC_PER_DEG = 3600.0


def run_spark(plan: Plan, *, spark: SparkSession, catalogue: Callable[[str], Catalog],
              uploads: Mapping[str, pa.Table], tap_schema: Mapping[str, pa.Table],
              maxrec: int) -> Result:
    """Run ``plan`` on Spark; at most ``maxrec`` rows (``overflow`` says if cut)."""
    frames, tree = _prepared(plan, spark, catalogue, uploads, tap_schema)
    cap, may_overflow = plan.row_cap(maxrec)
    with _views(frames) as views:
        try:
            table = spark.sql(plan.sql("spark", views, cap, tree)).toArrow()
        except (PySparkException, Py4JJavaError) as err:  # analysis, ANSI arithmetic, casts
            raise AdqlError(f"the query failed on Spark: {first_line(err)}") from None
    overflow = may_overflow and table.num_rows > maxrec
    return Result(table.slice(0, maxrec) if overflow else table, overflow)


def _prepared(plan: Plan, spark: SparkSession, catalogue: Callable[[str], Catalog],
              uploads: Mapping[str, pa.Table], tap_schema: Mapping[str, pa.Table]
              ) -> tuple[dict[str, DataFrame], exp.Select]:
    """Each alias's DataFrame, and the tree to run over them (a crossmatch merges two)."""
    frames = {alias: _frame(spark, plan, alias, catalogue, uploads, tap_schema)
              for alias in plan.bindings}
    if plan.join is not None:
        return _crossmatched(plan, frames)
    return frames, plan.tree


def _frame(spark: SparkSession, plan: Plan, alias: str, catalogue: Callable[[str], Catalog],
           uploads: Mapping[str, pa.Table], tap_schema: Mapping[str, pa.Table]) -> DataFrame:
    binding = plan.bindings[alias]
    kind, key = binding.source.kind, binding.source.key
    if kind == "catalogue":
        view = catalogue(key)
        for region in plan.regions.get(alias, []):
            view = view.search(region)
        needed = list(binding.columns) or ["source_id"]
        if plan.join is not None and plan.join.left == alias:
            needed = list(dict.fromkeys([*needed, "source_id", "ra", "dec"]))
        return view.select(*needed).df
    table = uploads[key] if kind == "upload" else tap_schema[key]
    return spark.createDataFrame(table.to_pandas(), schema=_spark_schema(table))


def _spark_schema(table: pa.Table) -> str:
    """A DDL schema for an Arrow table, so empty and all-null columns keep their types."""
    from pyspark.sql.pandas.types import from_arrow_type

    return ", ".join(f"`{f.name.replace('`', '``')}` "
                     f"{from_arrow_type(f.type).simpleString()}" for f in table.schema)


def _crossmatched(plan: Plan, frames: dict[str, DataFrame]) -> tuple[dict[str, DataFrame],
                                                                    exp.Select]:
    """The two joined tables replaced by their crossmatch, and the query rewritten onto it."""
    join: PositionalJoin = plan.join  # type: ignore[assignment]
    right = frames[join.right]
    renamed = {name: f"c{i}" for i, name in enumerate(right.columns)}
    right = right.select(*[F.col(f"`{n}`").alias(c) for n, c in renamed.items()],
                         F.col(f"`{join.right_position[0]}`").cast("double").alias("ra"),
                         F.col(f"`{join.right_position[1]}`").cast("double").alias("dec"))
    pairs = crossmatch(frames[join.left], right, join.radius_deg * ARCSEC_PER_DEG)
    tree = plan.tree.copy()
    conditions = [j.args["on"] for j in tree.args.get("joins") or [] if j.args.get("on")]
    tree.set("joins", None)
    where = tree.args.get("where")
    if where is not None:
        conditions.append(where.this)
    if conditions:
        tree.set("where", exp.Where(this=exp.and_(*conditions)))
    tree.args["from_" if "from_" in tree.args else "from"].set(
        "this", exp.Table(this=exp.to_identifier(plan.bindings[join.left].view),
                          alias=exp.TableAlias(this=exp.to_identifier(join.left))))
    for index, item in enumerate(tree.expressions):  # keep the names columns had
        if isinstance(item, exp.Column) and item.table == join.right:
            tree.expressions[index] = exp.alias_(item, item.name, quoted=True)
    for column in list(tree.find_all(exp.Column)):
        if column.table == join.right:
            column.replace(exp.column(f"right_{renamed[column.name]}", table=join.left,
                                      quoted=True))
    return {join.left: pairs}, tree


def _register(frames: Mapping[str, DataFrame]) -> dict[str, str]:
    """Each frame as a temporary view of a unique name (queries share the session)."""
    views = {}
    for alias, frame in frames.items():
        name = f"_adql_{uuid.uuid4().hex}"
        frame.createOrReplaceTempView(name)
        views[alias] = name
    return views


@contextmanager
def _views(frames: Mapping[str, DataFrame]) -> Iterator[dict[str, str]]:
    views = _register(frames)
    try:
        yield views
    finally:
        spark = next(iter(frames.values())).sparkSession if frames else None
        for name in views.values():
            if spark is not None:
                spark.catalog.dropTempView(name)
