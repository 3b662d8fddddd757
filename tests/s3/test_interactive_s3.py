"""The in-process reader's planned range reads on S3 (devstack MinIO): a table of many
small row groups, with footers longer than one tail read, gives brute force's answers and
the same rows as the same table on local disk."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from testing_utils import load_module

from config.s3 import arrow_filesystem, storage_options
from lakehouse import open_interactive

TESTS = Path(__file__).resolve().parents[1]


reads = load_module(
    "lakehouse_interactive_reads", TESTS / "lakehouse" / "test_interactive_reads.py"
)


@pytest.fixture(scope="module")
def twin_tables(s3_settings, tmp_path_factory):
    """(local root, S3 root, rows): one small-row-group sky written to both."""
    pdf = reads.small_group_rows()
    local = tmp_path_factory.mktemp("twin")
    reads.write_small_groups(str(local / "gaia_source"), pdf)
    remote = f"s3a://{s3_settings.s3_bucket}/interactive-test-{uuid.uuid4().hex[:8]}"
    reads.write_small_groups(f"{remote}/gaia_source", pdf, storage_options(s3_settings))
    yield str(local), remote, pdf
    arrow_filesystem(s3_settings).delete_dir(remote.removeprefix("s3a://"))


def test_s3_reader_over_small_row_groups_equals_astropy_and_local(twin_tables):
    local_root, s3_root, pdf = twin_tables
    local, remote = open_interactive(local_root), open_interactive(s3_root)
    assert remote._remote and not local._remote
    for ra, dec, radius in reads.CASES:
        got = remote.cone(ra, dec, radius, columns=["source_id", "ra", "phot_g_mean_mag"])
        ids = got["source_id"].to_pylist()
        assert len(ids) == len(set(ids))
        assert set(ids) == reads.cones.brute_force(pdf, ra, dec, radius), (ra, dec, radius)
        mine = local.cone(ra, dec, radius, columns=["source_id", "ra", "phot_g_mean_mag"])
        assert got.sort_by("source_id").equals(mine.sort_by("source_id"))
    footers = remote._footers.values()
    assert max(f.meta.serialized_size for f in footers) > reads.FOOTER_READ_BYTES


def test_alternating_benchmark_on_s3_agrees_and_counts_what_it_fetched(twin_tables):
    """The benchmark's S3-vs-local interactive part (``--s3``) on the twin tables: no
    mismatch; a cone that meets no row group sends no request, the others send some, of
    fewer bytes than the table's files; one bare GET timed per cone."""
    import numpy as np

    local_root, s3_root, _ = twin_tables
    bench = load_module("bench_lakehouse_s3", TESTS.parent / "benchmarks" / "lakehouse.py")
    centres = np.array([(ra, dec) for ra, dec, _ in reads.CASES])
    got = bench.alternating_cones(
        local_root, s3_root, centres, centres[:2], bench.RADIUS_DEG, bench.ID_COLUMNS
    )
    assert got["mismatches"] == []
    assert len(got["requests_per_cone"]) == len(centres) == len(got["get_same_bytes"]["seconds"])
    table_bytes = sum(p.stat().st_size for p in Path(local_root).glob("gaia_source/*/*.parquet"))
    for requests, size in zip(got["requests_per_cone"], got["bytes_per_cone"], strict=True):
        assert (requests == 0) == (size == 0)
        assert size < table_bytes
    assert max(got["requests_per_cone"]) >= 1
