"""The in-process reader's row-group reads: many small row groups, no statistics, and the
byte ranges it plans for object storage, each checked against brute force or pyarrow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from testing_utils import load_module

from lakehouse import healpix, open_interactive
from lakehouse.interactive import FOOTER_READ_BYTES, _chunk_spans, _FetchedRanges
from lakehouse.layout import MARGIN_PROPERTY, ORDER_PROPERTY
from lakehouse.schema import PARTITION_COLUMN, arrow_schema

HERE = Path(__file__).resolve().parent
SMALL_GROUP_ROWS = 64  # a few hundred row groups a file, and footers longer than 64 KB
ORDER = 1


sky = load_module("lakehouse_edge_sky_reads", HERE / "conftest.py")
cones = load_module("lakehouse_cone_cases_reads", HERE / "test_cone.py")


def small_group_rows():
    """A denser patch (so cones span row groups) on the edge sky's positions."""
    ra, dec = sky.edge_positions(seed=3)
    rng = np.random.default_rng(4)
    ra = np.concatenate([ra[:20_000], rng.uniform(40, 50, 20_000)])
    dec = np.concatenate([dec[:20_000], rng.uniform(-5, 5, 20_000)])
    return sky.rows_for(ra, dec)


def write_small_groups(uri: str, pdf, storage_options: dict | None = None, stats: bool = True):
    """``pdf`` as a gaia_source Delta table (delta-rs writer) in the HEALPix layout, sorted
    by source_id, with :data:`SMALL_GROUP_ROWS`-row row groups; ``stats=False`` leaves the
    log without min/max statistics."""
    from deltalake import DeltaTable, WriterProperties, write_deltalake

    table = pa.Table.from_pandas(pdf, schema=arrow_schema(), preserve_index=False)
    table = table.sort_by("source_id")
    part = table["source_id"].to_numpy() >> healpix.source_id_shift(ORDER)
    table = table.append_column(PARTITION_COLUMN, pa.array(part.astype(np.int32)))
    write_deltalake(
        uri,
        table,
        partition_by=[PARTITION_COLUMN],
        configuration=None if stats else {"delta.dataSkippingNumIndexedCols": "0"},
        storage_options=storage_options,
        writer_properties=WriterProperties(max_row_group_size=SMALL_GROUP_ROWS),
    )
    DeltaTable(uri, storage_options=storage_options).alter.set_table_properties(
        {ORDER_PROPERTY: str(ORDER), MARGIN_PROPERTY: "0.0"}, raise_if_not_exists=False
    )


CASES = [*cones.CENTRES, (45.0, 0.0, 0.3), (40.0, 5.0, 0.5), (47.3, -2.2, 0.05)]


@pytest.fixture(scope="module")
def small_groups(tmp_path_factory):
    pdf = small_group_rows()
    root = tmp_path_factory.mktemp("small_groups")
    write_small_groups(str(root / "gaia_source"), pdf)
    return str(root), pdf


def test_cones_over_many_small_row_groups_equal_astropy(small_groups):
    root, pdf = small_groups
    reader = open_interactive(root)
    for ra, dec, radius in CASES:
        ids = reader.cone(ra, dec, radius, columns=["source_id"])["source_id"].to_pylist()
        assert len(ids) == len(set(ids))
        assert set(ids) == cones.brute_force(pdf, ra, dec, radius), (ra, dec, radius)
    footers = list(reader._footers.values())  # the test reads what it means to
    assert max(f.meta.num_row_groups for f in footers) > 50
    assert max(f.meta.serialized_size for f in footers) > FOOTER_READ_BYTES


def test_a_footer_budget_smaller_than_the_footers_keeps_answers_exact(small_groups, monkeypatch):
    """Footers beyond the cache budget are dropped least recently used first and read
    again when needed: the answers do not change, the cache stays within its budget
    (keeping at least the newest footer) and a dropped footer is read again."""
    import lakehouse.interactive as interactive

    root, pdf = small_groups
    sizes = sorted(f.meta.serialized_size for f in _all_footers(root))
    assert len(sizes) > 2
    budget = sizes[-1] + sizes[0]  # room for the largest and the smallest, never for all
    monkeypatch.setattr(interactive, "FOOTER_CACHE_BYTES", budget)
    reader = open_interactive(root)
    reads = []
    original = interactive.InteractiveCatalog._keep_footer
    monkeypatch.setattr(interactive.InteractiveCatalog, "_keep_footer",
                        lambda self, path, footer: (reads.append(path),
                                                    original(self, path, footer))[1])
    for _ in range(2):
        for ra, dec, radius in CASES:
            ids = reader.cone(ra, dec, radius, columns=["source_id"])["source_id"].to_pylist()
            assert set(ids) == cones.brute_force(pdf, ra, dec, radius), (ra, dec, radius)
            kept = sum(f.meta.serialized_size for f in reader._footers.values())
            assert kept == reader._footer_bytes
            assert kept <= budget or len(reader._footers) == 1
    assert len(reads) > len(set(reads)), "no footer was ever dropped and read again"


def _all_footers(root: str):
    reader = open_interactive(root)
    return [reader._footer(i) for i in range(len(reader._files.paths))]


def test_a_log_without_statistics_reads_every_file_and_stays_exact(tmp_path):
    pdf = small_group_rows()[::4]
    write_small_groups(str(tmp_path / "gaia_source"), pdf, stats=False)
    reader = open_interactive(str(tmp_path))
    files = reader._files
    assert (files.sid_min == np.iinfo(np.int64).min).all()
    assert (files.sid_max == np.iinfo(np.int64).max).all()
    for ra, dec, radius in CASES[:6]:
        ids = reader.cone(ra, dec, radius, columns=["source_id"])["source_id"].to_pylist()
        assert set(ids) == cones.brute_force(pdf, ra, dec, radius), (ra, dec, radius)


def test_planned_byte_ranges_decode_to_what_pyarrow_reads(small_groups):
    """The ranges a remote read fetches, served alone, decode to pyarrow's own read of
    those row groups; and a read outside them fails instead of fetching more."""
    root, _ = small_groups
    path = sorted(Path(root).glob("gaia_source/*/*.parquet"), key=lambda p: p.stat().st_size)[-1]
    meta = pq.ParquetFile(path).metadata
    data = path.read_bytes()
    groups = [0, 3, 4, meta.num_row_groups - 1]
    columns = ["ra", "source_id", "phot_g_mean_mag"]
    for hole in (0, 1 << 20):
        spans = _chunk_spans(meta, groups, columns, hole)
        assert all(a < b for a, b in spans) and sorted(spans) == spans
        if hole == 0:  # exactly the chunks' bytes: nothing else is fetched
            names = meta.schema.names
            chunks = [meta.row_group(g).column(names.index(c)) for g in groups for c in columns]
            assert sum(b - a for a, b in spans) == sum(c.total_compressed_size for c in chunks)
        source = _FetchedRanges(len(data), [(a, data[a:b]) for a, b in spans])
        got = pq.ParquetFile(source, metadata=meta, pre_buffer=False).read_row_groups(
            groups, columns=columns
        )
        assert got.equals(pq.ParquetFile(path).read_row_groups(groups, columns=columns))
    spans = _chunk_spans(meta, groups, columns, 0)
    source = _FetchedRanges(len(data), [(a, data[a:b]) for a, b in spans])
    with pytest.raises(OSError, match="not fetched"):
        pq.ParquetFile(source, metadata=meta, pre_buffer=False).read_row_groups([1])
