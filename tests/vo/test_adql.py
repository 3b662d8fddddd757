"""The ADQL layer on its own: the grammar, the allow-list, the geometry, and what each error
says (line, column, token) — no engine runs here; tests/vo/test_adql_exact.py runs them."""

from __future__ import annotations

import pytest
from sqlglot import exp

from lakehouse.adql import AdqlError, plan
from lakehouse.adql.tap_schema import (
    catalogue_sources,
    tap_schema_sources,
    tap_schema_tables,
    upload_source,
)
from lakehouse.regions import BoxSearch, ConeSearch, PolygonSearch
from lakehouse.schema import COLUMN_NAMES

SOURCES = [*catalogue_sources({"gaia_source": COLUMN_NAMES}), *tap_schema_sources(),
           upload_source("t1", ("id", "ra_deg", "dec_deg"))]


def error_of(query: str) -> AdqlError:
    with pytest.raises(AdqlError) as caught:
        plan(query, SOURCES)
    return caught.value


def test_a_cone_is_a_region_and_the_rest_runs_as_sql() -> None:
    checked = plan("SELECT TOP 10 source_id, phot_g_mean_mag FROM gaiadr3.gaia_source "
                   "WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 10, -20.5, 0.5)) "
                   "AND parallax > 1 ORDER BY phot_g_mean_mag", SOURCES)
    assert checked.regions == {"gaia_source": [ConeSearch(10.0, -20.5, 0.5)]}
    assert checked.top == 10
    assert set(checked.bindings["gaia_source"].columns) == {
        "source_id", "phot_g_mean_mag", "ra", "dec", "parallax"}
    sql = checked.sql("spark")
    assert "CONTAINS" not in sql.upper() and "POINT" not in sql.upper()
    assert "ASIN" in sql.upper()  # the exact distance still filters, as SQL


@pytest.mark.parametrize(("where", "region"), [
    ("DISTANCE(POINT('ICRS', ra, dec), POINT('ICRS', 359.9, 0)) < 0.2",
     ConeSearch(359.9, 0.0, 0.2)),
    ("0.2 > DISTANCE(POINT(ra, dec), POINT(-0.1, 0))", ConeSearch(359.9, 0.0, 0.2)),
    ("CONTAINS(POINT(ra, dec), CIRCLE(POINT(1, 2), 3)) = 1", ConeSearch(1.0, 2.0, 3.0)),
    ("1 = INTERSECTS(CIRCLE('ICRS', 1, 2, 3), POINT('ICRS', ra, dec))", ConeSearch(1.0, 2.0, 3.0)),
    ("1 = CONTAINS(POINT(ra, dec), BOX('ICRS', 0, 10, 4, 2))", BoxSearch(358.0, 2.0, 9.0, 11.0)),
])
def test_each_geometric_form_prunes(where: str, region: object) -> None:
    checked = plan(f"SELECT source_id FROM gaia_source WHERE {where}", SOURCES)
    assert checked.regions == {"gaia_source": [region]}


def test_a_polygon_is_applied_by_its_region_not_sql() -> None:
    checked = plan("SELECT COUNT(*) FROM gaia_source WHERE 1 = CONTAINS(POINT(ra, dec), "
                   "POLYGON('ICRS', 10, 10, 12, 10, 11, 12)) AND parallax > 0", SOURCES)
    [region] = checked.regions["gaia_source"]
    assert isinstance(region, PolygonSearch) and len(region.vertices) == 3
    assert "POLYGON" not in checked.sql("duckdb").upper()


def test_an_or_of_cones_does_not_prune_but_still_filters() -> None:
    checked = plan("SELECT source_id FROM gaia_source WHERE "
                   "1 = CONTAINS(POINT(ra, dec), CIRCLE(1, 2, 0.1)) OR "
                   "1 = CONTAINS(POINT(ra, dec), CIRCLE(50, 2, 0.1))", SOURCES)
    assert checked.regions == {}
    assert checked.sql("duckdb").upper().count("ASIN") == 2


def test_a_join_on_separation_is_a_crossmatch() -> None:
    checked = plan("SELECT u.id, g.source_id FROM TAP_UPLOAD.t1 AS u JOIN gaiadr3.gaia_source "
                   "AS g ON 1 = CONTAINS(POINT('ICRS', g.ra, g.dec), "
                   "CIRCLE('ICRS', u.ra_deg, u.dec_deg, 1.0/3600))", SOURCES)
    assert checked.join is not None
    assert (checked.join.left, checked.join.right) == ("g", "u")
    assert checked.join.radius_deg == pytest.approx(1 / 3600)
    assert checked.join.right_position == ("ra_deg", "dec_deg")
    comma = plan("SELECT u.id FROM gaia_source AS g, TAP_UPLOAD.t1 AS u WHERE "
                 "DISTANCE(POINT(u.ra_deg, u.dec_deg), POINT(g.ra, g.dec)) < 0.001", SOURCES)
    assert comma.join is not None and comma.join.left == "g"


def test_stars_expand_and_expressions_are_named_by_their_text() -> None:
    checked = plan("SELECT *, COUNT(*) FROM TAP_SCHEMA.schemas GROUP BY schema_name, utype, "
                   "description, schema_index", SOURCES)
    names = [e.alias_or_name for e in checked.tree.expressions]
    assert names == ["schema_name", "utype", "description", "schema_index", "COUNT(*)"]


def test_tap_schema_describes_every_catalogue_column() -> None:
    tables = tap_schema_tables({"gaia_source": COLUMN_NAMES})
    columns = tables["columns"].to_pylist()
    gaia = {c["column_name"]: c for c in columns if c["table_name"] == "gaiadr3.gaia_source"}
    assert list(gaia) == list(COLUMN_NAMES)
    assert gaia["source_id"]["datatype"] == "BIGINT" and gaia["source_id"]["indexed"] == 1
    assert gaia["ra"]["unit"] == "deg" and gaia["ra"]["ucd"] == "pos.eq.ra;meta.main"
    assert all(c["description"] for c in gaia.values())
    listed = {t["table_name"] for t in tables["tables"].to_pylist()}
    assert {"gaiadr3.gaia_source", "TAP_SCHEMA.columns", "TAP_SCHEMA.tables"} <= listed


# ---- hostile and mistaken queries: a clear error naming where ---------------------------

def test_a_syntax_error_names_line_column_and_token() -> None:
    err = error_of("SELECT ra\nFROM gaia_source\nWHERE ra > AND dec < 3")
    assert err.line == 3 and err.token is not None
    assert "syntax error" in err.message


def test_an_unknown_column_suggests_the_close_one() -> None:
    err = error_of("SELECT source_id,\n  paralax FROM gaia_source")
    assert (err.line, err.column, err.token) == (2, 3, "paralax")
    assert "did you mean parallax" in str(err)


def test_an_unknown_table_lists_the_tables() -> None:
    err = error_of("SELECT * FROM gaiadr2.gaia_source")
    assert "unknown table 'gaiadr2.gaia_source'" in str(err) and "gaiadr3.gaia_source" in str(err)
    assert err.column == 15


@pytest.mark.parametrize(("query", "says"), [
    ("SELECT table_name FROM TAP_SCHEMA.tables UNION SELECT id FROM TAP_UPLOAD.t1", "UNION"),
    ("SELECT * FROM gaia_source WHERE source_id IN (SELECT id FROM TAP_UPLOAD.t1)",
     "subqueries"),
    ("SELECT myudf(ra) FROM gaia_source", "MYUDF"),
    ("SELECT java_method('java.lang.System', 'exit', 1) FROM gaia_source", "not"),
    ("SELECT reflect('java.lang.Runtime', 'getRuntime') FROM gaia_source", "not"),
    ("DROP TABLE gaia_source", "only SELECT"),
    ("SELECT ra FROM gaia_source; SELECT dec FROM gaia_source", "2 statements"),
    ("SELECT ra INTO x FROM gaia_source", "INTO"),
    ("SELECT POINT('ICRS', ra, dec) FROM gaia_source", "cannot be a column"),
    ("SELECT ra FROM gaia_source WHERE 1 = CONTAINS(POINT('GALACTIC', l, b), "
     "CIRCLE('GALACTIC', 0, 0, 1))", "ICRS"),
    ("SELECT ra FROM gaia_source WHERE 1 = CONTAINS(POINT(ra, dec), CIRCLE(0, 95, 1))",
     "dec must be within"),
    ("SELECT ra FROM gaia_source WHERE 1 = CONTAINS(POINT(ra, dec), POLYGON(0, 0, 1, 1))",
     "three vertices"),
    ("SELECT source_id FROM gaia_source AS a JOIN gaia_source AS b ON a.ra = b.ra "
     "WHERE dec > 0", "several tables"),
    ("SELECT ra FROM gaia_source WHERE " + "(" * 500 + "ra > 1" + ")" * 500, "deeper"),
    ("SELECT ra FROM gaia_source WHERE " + " + ".join(["ra"] * 400) + " > 1", "deeper"),
    ("", "empty"),
    ("SELECT '" + "x" * 5000 + "' AS s FROM gaia_source", "at most 1,000"),
])
def test_hostile_queries_get_clear_errors(query: str, says: str) -> None:
    assert says.lower() in str(error_of(query)).lower()


def test_the_regenerated_sql_quotes_every_identifier() -> None:
    checked = plan('SELECT "ra" AS "x; DROP TABLE y" FROM gaia_source', SOURCES)
    sql = checked.sql("spark")
    assert "`x; DROP TABLE y`" in sql  # a name, quoted; never SQL
    assert isinstance(checked.tree, exp.Select)


def test_a_huge_top_is_capped_by_maxrec_not_refused() -> None:
    checked = plan("SELECT TOP 99999999999999999999999 ra FROM gaia_source", SOURCES)
    assert checked.row_cap(2000) == (2001, True)  # one past MAXREC: the overflow marker
    assert "LIMIT 2001" in checked.sql("spark", limit=2001)
    assert plan("SELECT TOP 5 ra FROM gaia_source", SOURCES).row_cap(2000) == (5, False)


def test_the_warm_lane_takes_scans_a_worker_answers_in_seconds(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """An async query goes warm when it reads one table of at most WARM_SCAN_ROWS rows (its
    regions' share) and returns few rows; the seed query on 10M rows does, on DR3 it does
    not; an upload joined by position does when small, a large one or a row dump does not."""
    from astropy.table import Table
    from vo_support import SEED_QUERY

    from avi_plugins.bundled.adql_query import WARM_SCAN_ROWS, AdqlParams, AdqlQuery

    avi = AdqlQuery()
    assert avi.small(AdqlParams(query=SEED_QUERY), {"gaia_source": 10_000_000})
    assert not avi.small(AdqlParams(query=SEED_QUERY), {"gaia_source": 1_811_709_771})
    dump = "SELECT * FROM gaia_source WHERE parallax > 1"
    assert not avi.small(AdqlParams(query=dump), {"gaia_source": 10_000_000})  # 10M rows back
    assert avi.small(AdqlParams(query=dump, maxrec=1000), {"gaia_source": 10_000_000})
    cone = ("SELECT * FROM gaia_source WHERE 1 = CONTAINS(POINT(ra, dec), "
            "CIRCLE(266.4, -29, 0.5))")
    assert avi.small(AdqlParams(query=cone), {"gaia_source": 1_811_709_771})
    upload = tmp_path / "mine.vot"
    Table({"id": [1, 2], "ra": [10.0, 11.0], "dec": [0.0, 1.0]}).write(upload, format="votable")
    match = ("SELECT u.id, g.source_id FROM TAP_UPLOAD.t1 AS u JOIN gaia_source AS g ON "
             "DISTANCE(POINT(u.ra, u.dec), POINT(g.ra, g.dec)) < 1.0/3600")
    assert avi.small(AdqlParams(query=match, upload=str(upload)),
                     {"gaia_source": WARM_SCAN_ROWS})
    assert not avi.small(AdqlParams(query=match, upload=str(upload)),
                         {"gaia_source": WARM_SCAN_ROWS + 1})
    upload.write_bytes(upload.read_bytes() + b" " * (16 << 20))  # past WARM_TABLE_BYTES
    assert not avi.small(AdqlParams(query=match, upload=str(upload)), {"gaia_source": 1000})
