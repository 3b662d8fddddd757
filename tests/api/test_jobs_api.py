# ruff: noqa: E501
"""Jobs through the REST API: validation naming the field, refusal of jobs that can
never fit, queue positions, cancel, paging, events, re-run from provenance."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

CONE = {"avi": "cone_count", "params": {"ra_deg": 10, "dec_deg": 20}}


def test_malformed_params_name_the_bad_field(client: TestClient, make_user) -> None:  # type: ignore[no-untyped-def]
    alice = make_user("alice")
    r = client.post("/jobs", headers=alice,
                    json={"avi": "cone_count", "params": {"ra_deg": 10, "dec_deg": 95}})
    assert r.status_code == 422
    detail = r.json()["detail"][0]
    assert detail["loc"][-1] == "dec_deg" and "dec_deg" in detail["msg"] and "90" in detail["msg"]
    r = client.post("/jobs", headers=alice,
                    json={"avi": "cone_count", "params": {"ra_deg": 1, "dec_deg": 1, "radius": 2}})
    assert r.status_code == 422 and "radius" in json.dumps(r.json())
    r = client.post("/jobs", headers=alice, json={"avi": "nope", "params": {}})
    assert r.status_code == 404 and "nope" in r.json()["detail"]
    r = client.post("/jobs", headers=alice, json={"avi": "cone_count", "version": "9.9",
                                                  "params": CONE["params"]})
    assert r.status_code == 404


def test_job_that_can_never_fit_is_refused_with_the_reason(client: TestClient, make_user) -> None:  # type: ignore[no-untyped-def]
    outreach = make_user("olga", roles=["outreach"])  # pool: 2 cores
    r = client.post("/jobs", headers=outreach, json={"avi": "huge", "params": {"cores": 3}})
    assert r.status_code == 422
    assert "needs 4 cores but your pool allows at most 2" in r.json()["detail"]
    scientist = make_user("sam")  # pool 8 cores, cluster 8
    r = client.post("/jobs", headers=scientist, json={"avi": "huge", "params": {"cores": 8}})
    assert r.status_code == 422 and "at most 8" in r.json()["detail"]
    r = client.post("/jobs", headers=scientist, json={"avi": "huge", "params": {"cores": 3}})
    assert r.status_code == 201  # fits later: it waits


def test_queue_positions_follow_the_scheduler(client: TestClient, operator, make_user) -> None:  # type: ignore[no-untyped-def]
    alice, bob = make_user("alice"), make_user("bob")
    client.put("/users/alice/pool", headers=operator,
               json={"cores": 1, "memory_mb": 4096, "max_jobs": 1, "space_bytes": 0})
    a = [client.post("/jobs", headers=alice, json=CONE).json()["id"] for _ in range(3)]
    b = client.post("/jobs", headers=bob, json=CONE).json()["id"]
    dispatcher = client.app.state.dispatcher  # type: ignore[attr-defined]
    with client.app.state.sessions() as s:  # type: ignore[attr-defined]
        started = dispatcher._schedule(s)  # decide without launching drivers
    assert started == [a[0], b]  # alice's pool holds one job at a time
    positions = [client.get(f"/jobs/{j}", headers=alice).json()["queue_position"] for j in a]
    assert positions == [1, 3, 4]  # fair order: alice, bob (share 0 < alice's), alice, alice
    assert client.get(f"/jobs/{b}", headers=bob).json()["queue_position"] == 2


def test_cancel_list_paging_and_events(client: TestClient, make_user) -> None:  # type: ignore[no-untyped-def]
    alice = make_user("alice")
    ids = [client.post("/jobs", headers=alice, json=CONE).json()["id"] for _ in range(5)]
    r = client.post(f"/jobs/{ids[0]}/cancel", headers=alice)
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    assert r.json()["finished_at"] is not None and r.json()["reason"] == "cancelled by its owner"
    assert client.post(f"/jobs/{ids[0]}/cancel", headers=alice).status_code == 200  # idempotent
    page = client.get("/jobs", headers=alice, params={"state": "queued", "limit": 2, "offset": 1})
    assert page.json()["count"] == 4
    assert [j["id"] for j in page.json()["data"]] == [ids[3], ids[2]]
    events = client.get("/events", headers=alice).json()
    assert [e["type"] for e in events["data"]] == ["job.queued"] * 5 + ["job.cancelled"]
    later = client.get("/events", headers=alice, params={"after": events["last_id"]}).json()
    assert later["count"] == 0 and later["last_id"] == events["last_id"]


def test_rerun_pins_the_provenance_table_versions(client: TestClient, make_user) -> None:  # type: ignore[no-untyped-def]
    alice = make_user("alice")
    job = client.post("/jobs", headers=alice, json=CONE).json()
    folder = Path(client.app.state.settings.space_root) / "alice" / "jobs" / str(job["id"])  # type: ignore[attr-defined]
    folder.mkdir(parents=True)
    (folder / "provenance.json").write_text(json.dumps({
        "avi": {"name": "cone_count", "version": "1.0"},
        "params": {"ra_deg": 33.0, "dec_deg": -4.0, "radius_deg": 0.25},
        "tables": {"gaia_source": {"path": "/x", "version": 7}},
    }))
    r = client.post(f"/jobs/{job['id']}/rerun", headers=alice)
    assert r.status_code == 201
    new = r.json()
    assert new["rerun_of"] == job["id"] and new["pins"] == {"gaia_source": 7}
    assert new["params"] == job["params"]  # the job's own, not what a file in its folder says


def test_results_list_and_format_conversion(client: TestClient, make_user) -> None:  # type: ignore[no-untyped-def]
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq
    from astropy.io import fits
    from astropy.io.votable import parse_single_table

    alice = make_user("alice")
    job = client.post("/jobs", headers=alice, json=CONE).json()
    result = Path(client.app.state.settings.space_root) / "alice" / "jobs" / str(job["id"]) / "result"  # type: ignore[attr-defined]
    (result / "members.parquet").mkdir(parents=True)
    table = pa.table({"source_id": [11, 22, 33], "ra": [1.5, 2.5, 3.5]})
    pq.write_table(table.slice(0, 2), result / "members.parquet" / "part-0.parquet")
    pq.write_table(table.slice(2), result / "members.parquet" / "part-1.parquet")
    (result / "plot.png").write_bytes(b"\x89PNG fake bytes")
    listing = client.get(f"/jobs/{job['id']}/results", headers=alice).json()
    assert [f["path"] for f in listing["data"]] == ["members.parquet", "plot.png"]
    assert listing["data"][1]["formats"] == ["original"]
    url = f"/jobs/{job['id']}/results/members.parquet"
    csv = client.get(url, headers=alice, params={"format": "csv"}).text.splitlines()
    assert csv[0].replace('"', "") == "source_id,ra" and len(csv) == 4
    fits_bytes = client.get(url, headers=alice, params={"format": "fits"}).content
    assert list(fits.open(io.BytesIO(fits_bytes))[1].data["source_id"]) == [11, 22, 33]
    vot = client.get(url, headers=alice, params={"format": "votable"}).content
    assert list(parse_single_table(io.BytesIO(vot)).array["ra"]) == [1.5, 2.5, 3.5]
    merged = pq.read_table(io.BytesIO(client.get(url, headers=alice).content))
    assert merged.column("source_id").to_pylist() == [11, 22, 33]
    assert client.get(f"/jobs/{job['id']}/results/plot.png", headers=alice).content.startswith(b"\x89PNG")
    r = client.get(f"/jobs/{job['id']}/results/plot.png", headers=alice, params={"format": "csv"})
    assert r.status_code == 422
    assert client.get(f"/jobs/{job['id']}/results/../../../etc", headers=alice).status_code == 404


def test_large_logs_come_in_pages_and_large_tables_are_not_converted_in_memory(
    client: TestClient, make_user, monkeypatch  # type: ignore[no-untyped-def]
) -> None:
    """Issue 14 (defect 10): the API read whole logs and converted any table in memory."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from api.space import result_files

    alice, bob = make_user("alice"), make_user("bob")
    job = client.post("/jobs", headers=alice, json=CONE).json()
    folder = Path(client.app.state.settings.space_root) / "alice" / "jobs" / str(job["id"])  # type: ignore[attr-defined]
    folder.mkdir(parents=True, exist_ok=True)
    log = bytes(np.random.default_rng(1).integers(97, 123, 3 * (1 << 20) + 17, dtype=np.uint8))
    (folder / "driver.log").write_bytes(log)
    (folder / "error.txt").write_bytes(b"ValueError: the end\n")
    url = f"/jobs/{job['id']}/logs"
    first = client.get(url, headers=alice)
    assert len(first.content) == 1 << 20 and int(first.headers["x-log-bytes"]) == len(log) + 20
    pages, offset = [], 0
    while offset < int(first.headers["x-log-bytes"]):
        page = client.get(url, headers=alice, params={"offset": offset}).content
        pages.append(page)
        offset += len(page)
    assert b"".join(pages) == log + b"ValueError: the end\n"
    assert client.get(url, headers=alice, params={"limit": 2 << 20}).status_code == 422
    assert client.get(url, headers=bob).status_code == 404  # not his job

    result = folder / "result"
    result.mkdir()
    pq.write_table(pa.table({"x": np.arange(50_000)}), result / "t.parquet")
    monkeypatch.setattr(result_files, "MAX_CONVERT_BYTES", 10_000)
    r = client.get(f"/jobs/{job['id']}/results/t.parquet", headers=alice,
                   params={"format": "votable"})
    assert r.status_code == 413 and "fetch it as it is" in r.json()["detail"]
    whole = client.get(f"/jobs/{job['id']}/results/t.parquet", headers=alice)
    assert whole.status_code == 200 and whole.content == (result / "t.parquet").read_bytes()
