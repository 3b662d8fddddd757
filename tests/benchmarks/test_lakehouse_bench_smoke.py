"""benchmarks/lakehouse.py runs end to end at a tiny scale (no speed assertions).

20k rows, 3 cone centres, 5k-row crossmatch: every peer (our Spark path and
in-process reader, naive Spark and DuckDB on flat Parquet, LSDB on a HATS copy
built with hats-import, astropy) runs, the figures JSON is written, and the
peers' answers agree with each other and with a brute-force astropy cone over
the whole table.
"""

from __future__ import annotations

import json
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from deltalake import DeltaTable
from testing_utils import load_module

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "lakehouse.py"
PEERS = {
    "ours: spark path",
    "ours: interactive",
    "naive spark parquet",
    "duckdb parquet",
    "lsdb hats",
}


def _load_bench():
    return load_module("bench_lakehouse", BENCH)


@pytest.fixture(scope="module")
def bench():
    return _load_bench()


def test_lakehouse_benchmark_runs_and_peers_agree(spark, tmp_path, bench):
    out = tmp_path / "figures.json"
    argv = [
        "--rows",
        "20000",
        "--centres",
        "3",
        "--xmatch-rows",
        "5000",
        "--root",
        str(tmp_path / "data"),
        "--out",
        str(out),
    ]
    figures = bench.run(bench.parse_args(argv), spark)

    assert json.loads(out.read_text()) == figures
    assert set(figures["cone"]) == PEERS
    for peer in figures["cone"].values():
        assert len(peer["seconds"]) == 3 and peer["p95"] >= peer["p50"] > 0
    assert figures["cone_mismatches"] == []

    # Cone counts against brute force over every row (astropy, independent of all peers).
    table = DeltaTable(str(tmp_path / "data" / "gaia_source")).to_pyarrow_table(
        columns=["ra", "dec"]
    )
    stars = SkyCoord(table["ra"].to_numpy() * u.deg, table["dec"].to_numpy() * u.deg)
    for (ra, dec), count in zip(
        figures["centres"], figures["cone"]["ours: spark path"]["counts"], strict=True
    ):
        expected = int((stars.separation(SkyCoord(ra * u.deg, dec * u.deg)) <= 0.5 * u.deg).sum())
        assert count == expected

    pairs = {name: x["pairs"] for name, x in figures["crossmatch"].items()}
    assert set(pairs) == {"ours: spark", "lsdb hats", "astropy search_around_sky"}
    assert len(set(pairs.values())) == 1 and next(iter(pairs.values())) > 0.8 * 5000 * 0.9


def test_existing_sky_without_reuse_is_refused(tmp_path, bench):
    (tmp_path / "gaia_source" / "_delta_log").mkdir(parents=True)
    with pytest.raises(bench.UsageError, match="--reuse"):
        bench.run(bench.parse_args(["--rows", "1000", "--root", str(tmp_path)]), spark=None)


def test_centres_are_uniform_on_the_sphere(bench):
    centres = bench.random_centres(20000, seed=3)
    assert np.array_equal(centres, bench.random_centres(20000, seed=3))
    assert 0 <= centres[:, 0].min() and centres[:, 0].max() < 360
    # uniform on the sphere: sin(dec) uniform in [-1, 1] -> a quarter of the points above dec 30°
    assert abs((centres[:, 1] > 30).mean() - 0.25) < 0.02
