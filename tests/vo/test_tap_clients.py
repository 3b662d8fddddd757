"""TAP, UWS, VOSI and cone search through the clients astronomers use — pyvo and astroquery,
unchanged — against the real API and scheduler on a synthetic sky; answers checked against
astropy and DuckDB, each user's jobs kept from the other, bad input answered with a
VOTable error document that names what to fix."""

from __future__ import annotations

import io
import time
from typing import Any

import astropy.units as u
import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import pyvo
import requests
from astropy.coordinates import SkyCoord
from astropy.io.votable import parse, validate
from astropy.table import Table
from vo_support import SEED_QUERY, bearer

pytestmark = pytest.mark.slow
CONE = "1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 120, -30, 3))"


def cone_truth(sky: pa.Table, ra: float, dec: float, radius: float) -> set[int]:
    near = SkyCoord(ra * u.deg, dec * u.deg).separation(
        SkyCoord(sky["ra"].to_numpy() * u.deg, sky["dec"].to_numpy() * u.deg)) <= radius * u.deg
    return set(sky["source_id"].to_numpy()[near].tolist())


@pytest.fixture(scope="module")
def alice(vo_platform: Any) -> pyvo.dal.TAPService:
    return pyvo.dal.TAPService(vo_platform.url + "/tap", session=bearer(vo_platform.alice))


@pytest.fixture(scope="module")
def bob(vo_platform: Any) -> pyvo.dal.TAPService:
    return pyvo.dal.TAPService(vo_platform.url + "/tap", session=bearer(vo_platform.bob))


def test_pyvo_sync_cone_equals_astropy_with_units_ucds_and_epoch(alice: Any, sky: pa.Table,
                                                                  tmp_path: Any) -> None:
    result = alice.run_sync(f"SELECT source_id, ra, dec, parallax FROM gaiadr3.gaia_source "
                            f"WHERE {CONE}")
    assert set(result["source_id"].tolist()) == cone_truth(sky, 120, -30, 3)
    fields = {f.name: f for f in result.votable.get_first_table().fields}
    assert fields["source_id"].datatype == "long"
    assert str(fields["ra"].unit) == "deg" and fields["ra"].ucd == "pos.eq.ra;meta.main"
    assert str(fields["parallax"].unit) == "mas" and fields["parallax"].description
    coosys = result.votable.resources[0].coordinate_systems[0]
    assert (coosys.system, coosys.epoch) == ("ICRS", "J2016.0")
    assert fields["ra"].ref == coosys.ID
    # the bytes served validate with astropy's validator
    response = requests.post(alice.baseurl + "/sync", headers=alice._session.headers,
                             data={"REQUEST": "doQuery", "LANG": "ADQL", "QUERY":
                                   f"SELECT TOP 50 * FROM gaia_source WHERE {CONE}"})
    path = tmp_path / "sync.vot"
    path.write_bytes(response.content)
    assert "found no violations" in validate(str(path), output=None)


def test_pyvo_tables_and_tap_schema_agree(alice: Any) -> None:
    tables = alice.tables
    gaia = tables["gaiadr3.gaia_source"]
    names = [c.name for c in gaia.columns]
    assert "source_id" in names and "phot_g_mean_mag" in names
    ra = next(c for c in gaia.columns if c.name == "ra")
    assert ra.unit == "deg" and ra.ucd == "pos.eq.ra;meta.main"
    listed = alice.run_sync("SELECT column_name FROM TAP_SCHEMA.columns "
                            "WHERE table_name = 'gaiadr3.gaia_source'")
    assert [str(n) for n in listed["column_name"]] == names
    capabilities = alice.capabilities
    assert any(c.standardid.startswith("ivo://ivoa.net/std/TAP") for c in capabilities)
    assert pyvo.dal.vosi.AvailabilityMixin.available.fget(alice) is True


def test_maxrec_marks_overflow_and_formats_carry_the_same_rows(alice: Any, sky: pa.Table) -> None:
    query = f"SELECT source_id FROM gaia_source WHERE {CONE} ORDER BY source_id"
    capped = alice.run_sync(query, maxrec=7)
    assert len(capped) == 7 and capped.query_status == "OVERFLOW"
    whole = sorted(cone_truth(sky, 120, -30, 3))
    assert capped["source_id"].tolist() == whole[:7]
    session, url = alice._session, alice.baseurl + "/sync"
    for fmt, read in (("csv", lambda b: Table.read(io.BytesIO(b), format="ascii.csv")),
                      ("parquet", lambda b: Table(pq.read_table(io.BytesIO(b)).to_pydict())),
                      ("fits", lambda b: Table.read(io.BytesIO(b), format="fits")),
                      ("votable/td", lambda b: parse(io.BytesIO(b)).get_first_table()
                       .to_table())):
        response = session.post(url, data={"LANG": "ADQL", "QUERY": query, "FORMAT": fmt})
        assert response.status_code == 200, response.text
        assert list(read(response.content)["source_id"]) == whole, fmt


def test_sync_upload_joins_through_positions(alice: Any, sky: pa.Table) -> None:
    picked = sky.slice(1000, 40)
    mine = Table({"my_id": np.arange(40), "alpha": picked["ra"].to_numpy() + 1e-5,
                  "delta": picked["dec"].to_numpy()})
    result = alice.run_sync(
        "SELECT u.my_id, g.source_id FROM TAP_UPLOAD.t1 AS u JOIN gaiadr3.gaia_source AS g "
        "ON 1 = CONTAINS(POINT('ICRS', g.ra, g.dec), CIRCLE('ICRS', u.alpha, u.delta, 1./3600))",
        uploads={"t1": mine})
    pairs = set(zip(result["my_id"].tolist(), result["source_id"].tolist(), strict=True))
    ours = SkyCoord(mine["alpha"] * u.deg, mine["delta"] * u.deg)
    theirs = SkyCoord(sky["ra"].to_numpy() * u.deg, sky["dec"].to_numpy() * u.deg)
    left, right, _, _ = theirs.search_around_sky(ours, 1 * u.arcsec)
    assert pairs == {(int(i), int(sky["source_id"][int(j)].as_py())) for i, j in
                     zip(left, right, strict=True)}
    assert len(pairs) >= 40


def test_bad_adql_is_an_error_document_naming_where(alice: Any) -> None:
    with pytest.raises(pyvo.dal.DALQueryError) as caught:
        alice.run_sync("SELECT source_id,\n  paralax FROM gaia_source")
    assert "paralax" in str(caught.value) and "line 2, column 3" in str(caught.value)
    response = alice._session.post(alice.baseurl + "/sync",
                                   data={"LANG": "ADQL", "QUERY": "SELECT ra FROM nowhere"})
    assert response.status_code == 400
    assert b'value="ERROR"' in response.content and b"unknown table" in response.content
    too_big = alice._session.post(alice.baseurl + "/sync", data={
        "LANG": "ADQL", "QUERY": "SELECT COUNT(*) FROM gaia_source", "MAXREC": "-1"})
    assert too_big.status_code == 400 and b"MAXREC" in too_big.content


def test_pyvo_async_seed_query_equals_duckdb(alice: Any, sky_files: list[str]) -> None:
    result = alice.run_async(SEED_QUERY)
    where = SEED_QUERY.split(" WHERE ", 1)[1]
    with duckdb.connect() as con:
        expected = con.execute(f"SELECT COUNT(*) FROM read_parquet(?) WHERE {where}",
                               [sky_files]).fetchone()[0]
    assert list(result.to_table().columns[0]) == [expected] and expected > 0


def test_pyvo_submit_poll_delete_and_another_users_view(alice: Any, bob: Any,
                                                        vo_platform: Any) -> None:
    job = alice.submit_job(f"SELECT source_id FROM gaia_source WHERE {CONE}", maxrec=5)
    assert job.phase == "PENDING"
    # bob sees nothing of it: not in his list, 404 on its URL, cannot run or delete it
    assert all(ref.jobid != job.job_id for ref in bob.get_job_list())
    for method, path in (("get", ""), ("get", "/phase"), ("post", "/phase"),
                         ("delete", ""), ("get", "/results/result")):
        response = getattr(bob._session, method)(job.url + path, data={"PHASE": "RUN"})
        assert response.status_code == 404, (method, path, response.text)
    job.run()
    job.wait(phases=["COMPLETED", "ERROR", "ABORTED"], timeout=300)
    assert job.phase == "COMPLETED", job.job.errorsummary
    rows = job.fetch_result()
    assert len(rows) == 5 and rows.query_status == "OVERFLOW"
    assert any(ref.jobid == job.job_id for ref in alice.get_job_list(phases=["COMPLETED"]))
    url = job.url
    job.delete()
    assert alice._session.get(url).status_code == 404


def test_async_bad_adql_ends_in_error_phase(alice: Any) -> None:
    job = alice.submit_job("SELECT nothing FROM gaia_source")
    job.run()
    job.wait(phases=["COMPLETED", "ERROR", "ABORTED"], timeout=60)
    assert job.phase == "ERROR"
    assert "unknown column 'nothing'" in job.job.errorsummary.message.content
    job.delete()


def test_pyvo_async_upload_is_matched_by_the_crossmatch(alice: Any, sky: pa.Table) -> None:
    picked = sky.slice(5000, 300)
    mine = Table({"id": np.arange(300), "ra": picked["ra"].to_numpy(),
                  "dec": picked["dec"].to_numpy() + 2e-5})
    result = alice.run_async(
        "SELECT u.id, g.source_id FROM TAP_UPLOAD.t1 AS u JOIN gaiadr3.gaia_source AS g "
        "ON DISTANCE(POINT(u.ra, u.dec), POINT(g.ra, g.dec)) < 0.5/3600",
        uploads={"t1": mine})
    pairs = set(zip(result["id"].tolist(), result["source_id"].tolist(), strict=True))
    theirs = SkyCoord(sky["ra"].to_numpy() * u.deg, sky["dec"].to_numpy() * u.deg)
    left, right, _, _ = theirs.search_around_sky(
        SkyCoord(mine["ra"] * u.deg, mine["dec"] * u.deg), 0.5 * u.arcsec)
    assert pairs == {(int(i), int(sky["source_id"][int(j)].as_py())) for i, j in
                     zip(left, right, strict=True)}


def test_astroquery_tapplus_sync_and_async(vo_platform: Any, sky: pa.Table) -> None:
    from astroquery.utils.tap.core import TapPlus

    tap = TapPlus(url=vo_platform.url + "/tap")
    # astroquery has no token option: its connection handler's headers carry the bearer
    handler = tap._Tap__connHandler
    for headers in (handler._TapConn__getHeaders, handler._TapConn__postHeaders):
        headers["Authorization"] = f"Bearer {vo_platform.alice}"
    query = f"SELECT source_id, ra, dec FROM gaiadr3.gaia_source WHERE {CONE}"
    truth = cone_truth(sky, 120, -30, 3)
    assert set(tap.launch_job(query).get_results()["source_id"].tolist()) == truth
    job = tap.launch_job_async(query)
    assert set(job.get_results()["source_id"].tolist()) == truth


def test_simple_cone_search_equals_astropy(vo_platform: Any, sky: pa.Table) -> None:
    service = pyvo.dal.SCSService(vo_platform.url + "/scs/gaia_source",
                                  session=bearer(vo_platform.alice))
    result = service.search(pos=(120.0, -30.0), radius=3.0, verbosity=1)
    assert set(result["source_id"].tolist()) == cone_truth(sky, 120, -30, 3)
    assert set(result.fieldnames) == {"source_id", "ra", "dec"}
    assert len(service.search(pos=(120.0, -30.0), radius=3.0, verbosity=3).fieldnames) > 20
    session = bearer(vo_platform.alice)
    for bad in ({"RA": "x", "DEC": "0", "SR": "1"}, {"RA": "1", "DEC": "91", "SR": "1"},
                {"RA": "1", "DEC": "0"}, {"RA": "1", "DEC": "0", "SR": "1", "VERB": "9"}):
        response = session.get(vo_platform.url + "/scs/gaia_source", params=bad)
        assert response.status_code == 400 and b'value="ERROR"' in response.content, bad


def test_no_token_no_service_unless_the_operator_opens_it(vo_platform: Any, serve_api: Any,
                                                         tmp_path: Any, sky: pa.Table) -> None:
    query = {"LANG": "ADQL", "QUERY": f"SELECT source_id FROM gaia_source WHERE {CONE}"}
    for path, params in (("/tap/sync", query), ("/scs/gaia_source",
                                                {"RA": "120", "DEC": "-30", "SR": "3"})):
        response = requests.get(vo_platform.url + path, params=params)
        assert response.status_code == 401 and b"Bearer" in response.content
    assert requests.post(vo_platform.url + "/tap/async", data=query).status_code == 401
    opened = vo_platform.settings.model_copy(update={
        "tap_anonymous": True, "tap_anonymous_max_rows": 3,
        "data_dir": tmp_path / "open"})
    with serve_api(opened) as server:
        anonymous = pyvo.dal.TAPService(server.url + "/tap")
        result = anonymous.run_sync(query["QUERY"])
        assert len(result) == 3 and result.query_status == "OVERFLOW"  # the anonymous ceiling
        assert requests.post(server.url + "/tap/async", data=query).status_code == 401


def test_cross_user_job_ids_are_not_guessable_and_lists_are_own(vo_platform: Any,
                                                                 alice: Any, bob: Any) -> None:
    jobs = [alice.submit_job("SELECT TOP 1 source_id FROM gaia_source") for _ in range(3)]
    ids = [j.job_id for j in jobs]
    assert len(set(ids)) == 3 and all(len(i) >= 24 for i in ids)
    assert not {ref.jobid for ref in bob.get_job_list()} & set(ids)
    for job in jobs:
        job.delete()
    started = time.monotonic()
    assert alice._session.get(alice.baseurl + "/async/" + "0" * 24).status_code == 404
    assert time.monotonic() - started < 5
