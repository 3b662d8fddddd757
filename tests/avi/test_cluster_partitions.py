"""The cluster finder's bucket -> partition keys, checked against Spark's own repartition."""

from __future__ import annotations

import pandas as pd
from pyspark.sql import functions as F

from avi_plugins.bundled.cluster_finder.avi import partition_keys


def test_each_key_lands_in_its_own_partition(spark):
    n = 12
    keys = partition_keys(spark, n)
    assert len(set(keys.tolist())) == n
    rows = spark.createDataFrame(pd.DataFrame({"wanted": range(n), "bucket": keys}))
    placed = (rows.repartition(n, "bucket")
              .select("wanted", F.spark_partition_id().alias("partition")).toPandas())
    assert (placed["wanted"] == placed["partition"]).all()
