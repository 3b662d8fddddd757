"""benchmarks/tap.py runs end to end at a tiny scale (no speed assertions).

A 20k-row sky, 3 cone centres, one async run of the seed query and one of a 500-row
UPLOAD crossmatch, each against its Spark peer in a fresh process, on a real
``avip serve`` without warm workers: the script exits 0 (every peer agreed, every job
succeeded) and writes its figures JSON with the three parts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from testing_utils import load_module

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "tap.py"


@pytest.mark.slow
def test_tap_benchmark_runs_and_writes_its_figures(tmp_path):
    out = tmp_path / "figures.json"
    argv = ["--rows", "20000", "--centres", "3", "--warmups", "1", "--async-runs", "1",
            "--xmatch-runs", "1", "--warm-runs", "0", "--xmatch-rows", "500",
            "--warm-workers", "0", "--root", str(tmp_path / "sky"), "--out", str(out)]
    done = subprocess.run([sys.executable, str(BENCH), *argv], capture_output=True, text=True,
                          timeout=600, cwd=BENCH.parents[1])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["rows"] == 20000 and figures["problems"] == []
    assert {"cone", "seed_query", "crossmatch"} <= set(figures)
    assert "1. sync" in done.stdout and "2. seed query" in done.stdout
    assert "3. UPLOAD crossmatch" in done.stdout


def test_existing_sky_without_reuse_is_refused(tmp_path):
    bench = load_module("bench_tap", BENCH)
    (tmp_path / "gaia_source" / "_delta_log").mkdir(parents=True)
    assert bench.main(["--rows", "1000", "--root", str(tmp_path)]) == 2
