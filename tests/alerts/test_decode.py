"""The stream's decode (from_avro in the JVM, Python codec for the rest) against the
Python codec alone, record by record (real Spark, no broker)."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from spark_jobs.alerts import codec, decode, rows, simulate


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


@pytest.fixture(scope="module")
def packets() -> list[bytes | None]:
    sim = simulate.RubinSimulator(seed=5)
    plan = simulate.plan_night(1, [(120.0, 10.0)], n_alerts=150)[0]
    alerts = list(sim.alerts_for_visit(plan))
    alerts[0]["diaObject"] = None  # object_id then comes from diaSource alone
    alerts[1]["diaSource"]["diaObjectId"] = None  # ... or from diaObject alone
    alerts[2]["prvDiaSources"] = None
    rubin = [codec.encode_rubin(a) for a in alerts]
    rng = np.random.default_rng(4)
    ztf = [
        codec.encode_ztf(simulate.ztf_alert(rng, 500 + i, 120.0, 10.0, 61000.0, 17.0))
        for i in range(5)
    ]
    trailing = [rubin[4] + b"\x00", rubin[5] + b"\x02garbage"]  # whole records, then more
    bad = [b"\x09junk", rubin[3][:30], b"", None, b"\x00\x00\x00\x03\x99abc", *trailing]
    return rubin + ztf + bad


def test_jvm_decode_equals_the_python_codec(spark, packets):
    when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    records = spark.createDataFrame(
        [(b"k%d" % i, p, 0, i, when) for i, p in enumerate(packets)],
        "key binary, value binary, partition int, offset long, timestamp timestamp",
    )
    got = {r["kafka_offset"]: r for r in decode.decode(records).toArrow().to_pylist()}
    assert len(got) == len(packets)
    n_rows = n_errors = 0
    for i, payload in enumerate(packets):
        try:
            want, error = rows.normalise(codec.decode(payload)), None
        except codec.MalformedAlert as err:
            want, error = None, str(err)
        row = got[i]
        assert row["error"] == error, i
        if want is None:
            n_errors += 1
            assert row["alert_id"] is None
            continue
        n_rows += 1
        for name, value in want.items():
            if isinstance(value, dict):
                assert row[name].keys() == value.keys(), (i, name)
                bad = [k for k in value if not _same(row[name][k], value[k])]
                assert not bad, (i, name, bad[:5])
            else:
                assert _same(row[name], value), (i, name, row[name], value)
    assert n_rows == 155 and n_errors == 7  # Rubin, ZTF and malformed all exercised
    version = codec.rubin_schema().version
    assert [got[len(packets) - i]["error"] for i in (2, 1)] == [
        f"{n} trailing bytes after the Rubin {version} record" for n in (1, 8)
    ]  # decoded whole by the JVM, yet rejected as the Python codec rejects them


def test_reader_schema_keeps_what_rows_needs():
    import json

    writer, reader, header = decode.rubin_reader_schemas()
    fields = {f["name"]: f for f in json.loads(reader)["fields"]}
    assert set(fields) == {"diaSourceId", "diaSource", "prvDiaSources", "diaObject"}
    source = [f["name"] for f in fields["diaSource"]["type"]["fields"]]
    assert source == [n for n, _ in rows.struct_fields()["diaSource"]]
    assert header == codec.encode_rubin(simulate_one())[:5]
    assert '"doc"' not in writer  # documentation stripped from the plan text


def simulate_one() -> dict:
    sim = simulate.RubinSimulator(seed=1)
    return next(iter(sim.alerts_for_visit(simulate.plan_night(1, [(10.0, 0.0)], n_alerts=1)[0])))
