"""The one reader of Delta add actions (lakehouse.layout.data_files): the snapshot's files,
partitions, source_id ranges and sizes, checked against the files themselves; tables whose
files are not plain Parquet are refused by both readers."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from lakehouse import healpix, open_interactive
from lakehouse.layout import data_files, table_info
from lakehouse.schema import spark_schema


def test_data_files_are_the_snapshot_with_ranges_and_sizes(edge_sky):
    root, pdf = edge_sky
    info = table_info(f"{root}/gaia_source")
    files = data_files(info)
    on_disk = sorted(str(p) for p in Path(root, "gaia_source").glob("*/*.parquet"))
    assert sorted(files.paths) == on_disk
    shift = healpix.source_id_shift(info.partition_order)
    total = 0
    for i, path in enumerate(files.paths):
        ids = pq.read_table(path, columns=["source_id"])["source_id"]
        total += len(ids)
        assert files.size_bytes[i] == os.path.getsize(path)
        assert files.sid_min[i] == pc.min(ids).as_py() and files.sid_max[i] == pc.max(ids).as_py()
        assert set((ids.to_numpy() >> shift).tolist()) == {files.partition[i]}
    assert total == len(pdf)


def test_the_interactive_reader_uses_the_same_files(edge_sky):
    root, _ = edge_sky
    files = data_files(table_info(f"{root}/gaia_source"))
    reader_files = open_interactive(root)._files
    assert reader_files.paths == files.paths
    for name in ("partition", "sid_min", "sid_max", "size_bytes"):
        assert np.array_equal(getattr(reader_files, name), getattr(files, name)), name


def test_deletion_vectors_are_refused_by_both_readers(spark, tmp_path, edge_rows_for):
    from lakehouse.layout import write_catalog

    path = str(tmp_path / "gaia_source")
    rng = np.random.default_rng(2)
    rows = edge_rows_for(rng.uniform(10, 12, 300), rng.uniform(-1, 1, 300))
    write_catalog(spark.createDataFrame(rows, schema=spark_schema()), path)
    spark.sql(
        f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')"
    )
    spark.sql(f"DELETE FROM delta.`{path}` WHERE random_index = 7")
    assert data_files(table_info(path)) is None
    with pytest.raises(ValueError, match="deletion vectors"):
        open_interactive(str(tmp_path)).cone(11, 0, 2)
