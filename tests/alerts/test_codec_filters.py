"""Codec round trips and filter validation (no Spark, no broker needed)."""

from __future__ import annotations

import io
import json
import struct

import fastavro
import numpy as np
import pytest

from spark_jobs.alerts import codec, rows, simulate
from spark_jobs.alerts.filters import FilterError, check_where, make_filter


@pytest.fixture(scope="module")
def alerts() -> list[dict]:
    sim = simulate.RubinSimulator(seed=7)
    plan = simulate.plan_night(1, [(45.0, -30.0)], n_alerts=200)[0]
    return list(sim.alerts_for_visit(plan))


def test_rubin_wire_format_header_names_the_installed_schema(alerts):
    payload = codec.encode_rubin(alerts[0])
    magic, schema_id = struct.unpack(">bI", payload[:5])
    from lsst.alert.packet import get_latest_schema_version

    major, minor = get_latest_schema_version()
    assert (magic, schema_id) == (0, major * 100 + minor)


def test_rubin_round_trip_matches_an_independent_reader(alerts):
    schema = codec.rubin_schema()
    for alert in alerts[:50]:
        payload = codec.encode_rubin(alert)
        independent = fastavro.schemaless_reader(io.BytesIO(payload[5:]), schema.parsed, None)
        decoded = codec.decode(payload)
        assert decoded.survey == "rubin" and decoded.record == independent
        assert decoded.record["diaSourceId"] == alert["diaSourceId"]
        assert decoded.record["diaSource"]["ra"] == alert["diaSource"]["ra"]  # doubles are exact
        assert len(decoded.record["prvDiaSources"] or []) == len(alert.get("prvDiaSources") or [])


def test_ztf_container_round_trip():
    rng = np.random.default_rng(1)
    alert = simulate.ztf_alert(rng, 123456789, 10.5, -5.25, 61000.25, 17.5)
    decoded = codec.decode(codec.encode_ztf(alert))
    assert decoded.survey == "ztf"
    row = rows.normalise(decoded)
    assert row["alert_id"] == 123456789 and row["object_id"] == alert["objectId"]
    assert row["mjd"] == pytest.approx(61000.25)
    assert row["candidate"]["magpsf"] == pytest.approx(17.5)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "empty"),
        (b"\x07abcdef", "neither Confluent wire format"),
        (b"\x00\x00\x00", "shorter than the 5-byte header"),
        (b"\x00\x00\x00\x03\x99abc", "unknown schema id 921"),
        (b"Obj\x01garbage", "unreadable Avro container"),
    ],
)
def test_malformed_packets_say_why(payload, reason):
    with pytest.raises(codec.MalformedAlert, match=reason):
        codec.decode(payload)


def test_truncated_body_is_malformed(alerts):
    payload = codec.encode_rubin(alerts[1])
    with pytest.raises(codec.MalformedAlert, match="does not match Rubin schema"):
        codec.decode(payload[: len(payload) // 2])


def test_simulated_fluxes_follow_the_magnitude_scale():
    assert simulate.mag_to_njy(31.4) == pytest.approx(1.0)
    assert simulate.mag_to_njy(16.4) == pytest.approx(1e6)


def test_filter_accepts_the_issue_example_and_quotes_identifiers():
    sql = check_where("diaSource.psfFlux > 1000 AND gaia_sep_arcsec < 1 AND gaia_g_mag < 16")
    assert sql == "`diaSource`.`psfFlux` > 1000 AND `gaia_sep_arcsec` < 1 AND `gaia_g_mag` < 16"


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (
            "diaSource.psfflux > 1",
            "unknown column 'diaSource.psfflux'; did you mean diaSource.psfFlux",
        ),
        ("secret_column = 1", "unknown column 'secret_column'"),
        ("ra IN (SELECT ra FROM gaia_source)", "subqueries are not allowed"),
        ("EXISTS (SELECT 1)", "subqueries are not allowed"),
        ("my_udf(ra) > 1", "unknown function my_udf()"),
        ("DROP TABLE alerts", "DROP statements (DDL/DML) are not allowed"),
        ("ra > 1; DROP TABLE alerts", "2 statements"),
        ("SELECT * FROM t WHERE ra > 1", "not a query"),
        ("count(*) > 3", "aggregate function"),
        ("ra + 1", "must be a true/false condition"),
        ("ra >", "SQL syntax error"),
        ("", "empty"),
    ],
)
def test_filter_refusals_name_the_problem(where, message):
    with pytest.raises(FilterError) as info:
        check_where(where)
    assert message in str(info.value)


def test_make_filter_checks_name_and_format():
    with pytest.raises(FilterError, match="filter name"):
        make_filter(filter_id=1, owner="a", name="Bad Name!", where="ra > 1")
    with pytest.raises(FilterError, match="output format"):
        make_filter(filter_id=1, owner="a", name="ok", where="ra > 1", output_format="xml")
    f = make_filter(filter_id=1, owner="alice", name="bright", where="ra > 1")
    assert f.topic == "avip.alerts.filter.alice.bright"


def test_allow_list_comes_from_the_installed_schema():
    cols = rows.filter_columns()
    assert "diaSource.psfFlux" in cols and "diaObject.g_psfFluxMean" in cols
    assert "candidate.magpsf" in cols and "gaia_bp_rp" in cols
    assert "prvDiaSources" not in json.dumps(list(cols))
