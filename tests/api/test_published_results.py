"""Job results on an S3 user space, end to end (issue 15, item 9), against the devstack's
MinIO and real Spark jobs: a finished job's results are published into its owner's
space and leave the volume; they are listed, downloaded and converted through the jobs
API, browsed through the space API, counted once against the quota, shared, and read
by a second job as a ``space://`` input — all from S3. Another user reaches none of it."""

from __future__ import annotations

import io
import os
import time
import uuid
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from pyarrow import fs as pafs
from testing_utils import new_user

from api.avis import RegistryCatalogue
from api.bootstrap import ensure_operator
from api.main import create_app
from config.settings import Settings

S3_ENV = ("AVIP_TEST_S3_ENDPOINT", "AVIP_TEST_S3_ACCESS_KEY", "AVIP_TEST_S3_SECRET_KEY",
          "AVIP_TEST_S3_BUCKET")


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory, ingest_synthetic_cli) -> str:  # type: ignore[no-untyped-def]
    return ingest_synthetic_cli(str(tmp_path_factory.mktemp("lake")), rows=4000, seed=5,
                                clusters=2, timeout_s=600)


def _cone(lake: str) -> tuple[dict[str, float], set[int]]:
    """A 6° cone on a catalogue star and its members, by astropy over the whole table."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord
    from deltalake import DeltaTable

    table = DeltaTable(str(Path(lake) / "gaia_source")).to_pyarrow_table(
        columns=["source_id", "ra", "dec"])
    ra, dec = np.asarray(table["ra"]), np.asarray(table["dec"])
    cone = {"ra": float(ra[7]), "dec": float(dec[7]), "radius_deg": 6.0}
    inside = SkyCoord(ra * u.deg, dec * u.deg).separation(
        SkyCoord(cone["ra"] * u.deg, cone["dec"] * u.deg)).deg <= cone["radius_deg"]
    return cone, set(np.asarray(table["source_id"])[inside].tolist())


def _wait(client: TestClient, headers: dict[str, str], job_id: int) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + 400
    while (job := client.get(f"/jobs/{job_id}", headers=headers).json())["state"] not in (
            "succeeded", "failed", "cancelled"):
        assert time.monotonic() < deadline, job
        client.app.state.dispatcher.tick()  # type: ignore[attr-defined]
        time.sleep(0.5)
    return job


@pytest.mark.slow
def test_results_live_in_the_s3_space_and_work_everywhere(tmp_path: Path, lake: str) -> None:
    missing = [n for n in S3_ENV if not os.environ.get(n)]
    if missing:
        pytest.skip(f"no S3 server ({', '.join(missing)} unset): run through `make test`")
    s3 = {n.removeprefix("AVIP_TEST_").lower(): os.environ[n] for n in S3_ENV}
    prefix = f"test-results-{uuid.uuid4().hex[:12]}"
    settings = Settings(data_dir=tmp_path / "data", lakehouse_uri=lake, cluster_cores=2,
                        cluster_memory_mb=4096, job_backend="local", spark_master="local[2]",
                        user_space_backend="s3", s3_space_prefix=prefix,
                        **s3)  # type: ignore[arg-type]
    endpoint = s3["s3_endpoint"].split("://", 1)
    outside = pafs.S3FileSystem(access_key=s3["s3_access_key"], secret_key=s3["s3_secret_key"],
                                endpoint_override=endpoint[1], scheme=endpoint[0])
    app = create_app(settings, catalogue=RegistryCatalogue(), run_scheduler=False)
    try:
        with TestClient(app) as client:
            token = ensure_operator(app.state.sessions, settings.data_dir, 1)
            operator = {"Authorization": f"Bearer {token.read_text().strip()}"}  # type: ignore[union-attr]
            alice = new_user(client, operator, "alice")
            bob = new_user(client, operator, "bob")
            carol = new_user(client, operator, "carol")
            cone, members = _cone(lake)
            r = client.post("/jobs", headers=alice, json={"avi": "cone_search", "params": {
                **cone, "formats": ["parquet", "csv", "votable"]}})
            assert r.status_code == 201, r.text
            job_id = r.json()["id"]
            job = _wait(client, alice, job_id)
            assert job["state"] == "succeeded", client.get(
                f"/jobs/{job_id}/logs", headers=alice).text[-3000:]

            # Published: in alice's S3 prefix, gone from the volume.
            local = settings.space_root / "alice" / "jobs" / str(job_id) / "result"
            assert not local.exists()
            stored = {i.path.rsplit("/", 1)[-1]: i.size for i in outside.get_file_info(
                pafs.FileSelector(f"{s3['s3_bucket']}/{prefix}/alice/jobs/{job_id}/result",
                                  recursive=True)) if i.type == pafs.FileType.File}
            assert {"sources.parquet", "sources.csv", "sources.vot"} <= set(stored)

            # The jobs API lists and serves them from there, with conversions.
            listed = client.get(f"/jobs/{job_id}/results", headers=alice).json()["data"]
            assert {f["path"] for f in listed} >= {"sources.parquet", "sources.csv"}
            r = client.get(f"/jobs/{job_id}/results/sources.parquet", headers=alice)
            assert r.status_code == 200
            got = set(pq.read_table(io.BytesIO(r.content))["source_id"].to_pylist())
            assert got == members and members
            r = client.get(f"/jobs/{job_id}/results/sources.parquet",
                           params={"format": "votable"}, headers=alice)
            assert r.status_code == 200 and b"<VOTABLE" in r.content[:400]
            assert client.get(f"/jobs/{job_id}/results/sources.vot", params={"format": "fits"},
                              headers=alice).status_code == 422  # not a table to convert
            assert client.get(f"/jobs/{job_id}/results/..%2F..%2Fx",
                              headers=alice).status_code in (404, 422)
            assert client.get(f"/jobs/{job_id}/results/nope.csv",
                              headers=alice).status_code == 404

            # The space API browses them, and the quota counts them once.
            browsed = client.get("/space", params={"path": f"jobs/{job_id}/result"},
                                 headers=alice).json()
            sizes = {e["path"].rsplit("/", 1)[-1]: e["size"] for e in browsed["data"]}
            assert {n: sizes[n] for n in stored} == stored
            on_s3 = sum(i.size for i in outside.get_file_info(pafs.FileSelector(
                f"{s3['s3_bucket']}/{prefix}/alice", recursive=True))
                if i.type == pafs.FileType.File and "/.uploads/" not in i.path)
            job_folders = settings.space_root / "alice" / "jobs"  # logs, progress: no results
            on_volume = sum(f.stat().st_size for f in job_folders.rglob("*")
                            if f.is_file() and ".inputs" not in f.parts)
            assert browsed["used_bytes"] == on_s3 + on_volume  # the results once, from S3
            assert client.delete(f"/space/files/jobs/{job_id}/result/sources.csv",
                                 headers=alice).status_code in (403, 422)  # read-only

            # Another user: nothing, through any door.
            assert client.get(f"/jobs/{job_id}/results", headers=bob).status_code == 404
            assert client.get(f"/jobs/{job_id}/results/sources.csv",
                              headers=bob).status_code == 404
            r = client.post("/jobs", headers=bob, json={"avi": "crossmatch", "params": {
                "table_path": f"space://me/jobs/{job_id}/result/sources.csv"}})
            assert r.status_code == 422

            # Shared with bob: he reads the published result; carol still cannot.
            share = client.post("/shares", headers=alice, json={"job_id": job_id, "user": "bob"})
            assert share.status_code == 201, share.text
            sid = share.json()["id"]
            r = client.get(f"/shares/received/{sid}/files/sources.csv", headers=bob)
            assert r.status_code == 200 and b",source_id," in r.content.split(b"\n", 1)[0]
            assert client.get(f"/shares/received/{sid}/files/sources.csv",
                              headers=carol).status_code == 404

            # A second job reads the first one's result as a space:// input, from S3.
            r = client.post("/jobs", headers=alice, json={"avi": "crossmatch", "params": {
                "table_path": f"space://me/jobs/{job_id}/result/sources.csv",
                "radius_arcsec": 1.0, "gaia_columns": ["source_id", "ra", "dec"]}})
            assert r.status_code == 201, r.text
            second = _wait(client, alice, r.json()["id"])
            assert second["state"] == "succeeded", client.get(
                f"/jobs/{second['id']}/logs", headers=alice).text[-3000:]
            r = client.get(f"/jobs/{second['id']}/results/matches.parquet", headers=alice)
            matches = pq.read_table(io.BytesIO(r.content)).to_pandas()
            assert set(matches["source_id"]) == members  # each star finds itself
    finally:
        try:
            outside.delete_dir(f"{s3['s3_bucket']}/{prefix}")
        except FileNotFoundError:
            pass


def test_a_result_that_is_no_readable_table_is_a_422_not_a_500(tmp_path: Path) -> None:
    from fastapi import HTTPException

    from api.routes.jobs import serve_result
    from api.space.published_results import JobResults

    result = tmp_path / "job" / "result"
    (result / "spark.csv").mkdir(parents=True)  # a Spark-written CSV folder
    (result / "spark.csv" / "part-0.csv").write_text("a\n1\n")
    (result / "bad.parquet").write_bytes(b"not parquet at all")
    results = JobResults(Settings(data_dir=tmp_path / "data"), "alice", 1, tmp_path / "job")
    for path, fmt in (("bad.parquet", "csv"), ("spark.csv", "votable")):
        with pytest.raises(HTTPException) as refused:
            serve_result(results, path, fmt)
        assert refused.value.status_code == 422, (path, refused.value.detail)
        assert "cannot be read as a table" in str(refused.value.detail)
        assert str(tmp_path) not in str(refused.value.detail)  # no server paths told


def test_publishing_refuses_a_planted_link_and_sends_nothing(tmp_path: Path) -> None:
    """Job code could leave result/x -> another user's files; the scheduler, which mounts
    every space, must not upload what the link points at."""
    from api.space.published_results import publish
    from api.space.user_space import PathRefused

    missing = [n for n in S3_ENV if not os.environ.get(n)]
    if missing:
        pytest.skip(f"no S3 server ({', '.join(missing)} unset): run through `make test`")
    s3 = {n.removeprefix("AVIP_TEST_").lower(): os.environ[n] for n in S3_ENV}
    prefix = f"test-links-{uuid.uuid4().hex[:12]}"
    settings = Settings(data_dir=tmp_path / "data", user_space_backend="s3",
                        s3_space_prefix=prefix, **s3)  # type: ignore[arg-type]
    secret = tmp_path / "bobs" / "secret.csv"
    secret.parent.mkdir()
    secret.write_text("bob's\n")
    result = tmp_path / "job" / "result"
    (result / "deep").mkdir(parents=True)
    (result / "sources.csv").write_text("ra,dec\n1,2\n")
    (result / "deep" / "x.csv").symlink_to(secret)
    with pytest.raises(PathRefused):
        publish(settings, "mallory", 3, result)
    assert (result / "sources.csv").exists()  # kept, still served from the volume
    endpoint = s3["s3_endpoint"].split("://", 1)
    outside = pafs.S3FileSystem(access_key=s3["s3_access_key"], secret_key=s3["s3_secret_key"],
                                endpoint_override=endpoint[1], scheme=endpoint[0])
    assert outside.get_file_info(pafs.FileSelector(
        f"{s3['s3_bucket']}/{prefix}", recursive=True, allow_not_found=True)) == []
