"""Time travel, ingest of ESA files (good and malformed), the real DR3 sample, and a
standalone cluster giving the same answer as local."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord

from lakehouse import IngestError, ingest_gaia_files, ingest_sample, open_catalog, open_interactive
from lakehouse.layout import table_info, write_catalog
from lakehouse.schema import spark_schema

FIXTURE = Path(__file__).parents[1] / "data" / "GaiaSource_fixture.csv.gz"


def test_time_travel(spark, tmp_path, edge_rows_for):
    path = str(tmp_path / "gaia_source")
    rng = np.random.default_rng(1)
    first = edge_rows_for(rng.uniform(10, 12, 500), rng.uniform(-1, 1, 500), 0)
    v1 = write_catalog(spark.createDataFrame(first, schema=spark_schema()), path)
    second = edge_rows_for(rng.uniform(10, 12, 300), rng.uniform(-1, 1, 300), 10_000)
    v2 = write_catalog(spark.createDataFrame(second, schema=spark_schema()), path)
    assert v2 > v1
    cat = open_catalog(str(tmp_path), spark=spark)
    assert cat.version == v2 and cat.cone(11, 0, 2).count() == 800
    assert cat.cone(230, -5, 2).count() == 0  # a region no file covers
    old = cat.as_of(v1).cone(11, 0, 2)
    assert {r.source_id for r in old.select("source_id").df.collect()} == set(first["source_id"])
    assert open_interactive(str(tmp_path), version=v1).cone(11, 0, 2).num_rows == 500


def test_ingest_esa_files_and_malformed_file_leaves_table(spark, tmp_path):
    root = str(tmp_path)
    v = ingest_gaia_files(spark, root, [FIXTURE])
    got = open_interactive(root).box(0, 360, -90, 90, columns=["source_id", "ra", "parallax"])
    assert got.num_rows == 300
    lines = gzip.open(FIXTURE, "rt").read().splitlines()
    bad_line = 40
    lines[bad_line - 1] += ",1,2"
    bad = tmp_path / "GaiaSource_bad.csv.gz"
    with gzip.open(bad, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    with pytest.raises(IngestError, match=rf"GaiaSource_bad.csv.gz:{bad_line}: malformed row"):
        ingest_gaia_files(spark, root, [FIXTURE, bad])
    assert table_info(f"{root}/gaia_source").version == v


def test_real_sample_cone_with_sourceid_margin(spark, tmp_path):
    """Real DR3 sources whose source_id pixel differs from their position are still found."""
    root = str(tmp_path)
    ingest_sample(spark, root)
    info = table_info(f"{root}/gaia_source")
    assert info.margin_deg > 0  # the real data has such sources
    from lakehouse.healpix import healpix_index
    from lakehouse.ingest import read_sample

    sample = read_sample().select(["source_id", "ra", "dec"]).to_pandas()
    assert len(sample) == 482_106  # 482,176 minus 70 Hipparcos-only rows
    outside = healpix_index(sample["ra"], sample["dec"], 12) != (
        sample["source_id"].to_numpy() >> 35
    )
    centres = sample[outside].head(15)
    reader = open_interactive(root)
    allc = SkyCoord(sample["ra"].to_numpy() * u.deg, sample["dec"].to_numpy() * u.deg)
    for c in centres.itertuples():
        expected = set(
            sample["source_id"][allc.separation(SkyCoord(c.ra * u.deg, c.dec * u.deg)).deg <= 0.02]
        )
        got = set(reader.cone(c.ra, c.dec, 0.02, columns=["source_id"])["source_id"].to_pylist())
        assert int(c.source_id) in got
        assert got == expected


STANDALONE_SCRIPT = """
import json, sys
from lakehouse.session import get_spark
from lakehouse import open_catalog
spark = get_spark(sys.argv[1], app_name="avip-standalone-test",
                  conf={"spark.cores.max": "2", "spark.executor.memory": "1g"})
cat = open_catalog(sys.argv[2], spark=spark)
ids = sorted(r.source_id for r in cat.cone(0.0, 90.0, 1.5).select("source_id").df.collect())
n_exec = spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size() - 1  # minus the driver
print(json.dumps({"ids": ids, "executors": n_exec}))
spark.stop()
"""


@pytest.mark.standalone
def test_standalone_cluster_gives_same_answer_as_local(spark, edge_sky, standalone_master):
    root, _ = edge_sky
    local = sorted(
        r.source_id
        for r in open_catalog(root, spark=spark)
        .cone(0.0, 90.0, 1.5)
        .select("source_id")
        .df.collect()
    )
    out = subprocess.run(
        [sys.executable, "-c", STANDALONE_SCRIPT, standalone_master, root],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["executors"] >= 1
    assert result["ids"] == local and len(local) > 100
