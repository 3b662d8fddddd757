# ruff: noqa: E501
"""The two lanes, through the real API and scheduler on one catalogue: a small job goes to
the warm lane (a warm worker's open Spark session), the same job on a platform without
warm workers gets its own Spark application, and the results are byte-identical file for
file; the provenance pins the same table versions and differs only in engine settings and
timings. A job too large for the warm lane takes the Spark lane even where warm workers
run. Another user reaches none of a warm job."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from deltalake import DeltaTable
from fastapi.testclient import TestClient
from testing_utils import new_user
from vo_support import SEED_QUERY

from api.avis import RegistryCatalogue
from api.bootstrap import ensure_operator
from api.main import create_app
from config.settings import Settings

FINAL = ("succeeded", "failed", "cancelled")
#: What may differ between two runs of one job: the engine, timings and the job's own id.
ENGINE_KEYS = {"spark_conf", "lane", "started_at", "finished_at", "wall_seconds", "job_id"}


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory, ingest_synthetic_cli) -> str:  # type: ignore[no-untyped-def]
    return ingest_synthetic_cli(str(tmp_path_factory.mktemp("lake")), rows=20_000, seed=11,
                                clusters=2, timeout_s=600)


class Platform:
    """One running API + scheduler (its loop in the background) and its operator."""

    def __init__(self, client: TestClient, settings: Settings) -> None:
        self.client, self.settings = client, settings
        token = ensure_operator(client.app.state.sessions, settings.data_dir, 1)  # type: ignore[attr-defined]
        self.operator = {"Authorization": f"Bearer {token.read_text().strip()}"}  # type: ignore[union-attr]

    def run(self, headers: dict[str, str], avi: str, params: dict, timeout_s: float = 300) -> dict:  # type: ignore[type-arg]
        r = self.client.post("/jobs", headers=headers, json={"avi": avi, "params": params})
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]
        deadline = time.monotonic() + timeout_s
        while (job := self.client.get(f"/jobs/{job_id}", headers=headers).json())["state"] not in FINAL:
            assert time.monotonic() < deadline, job
            time.sleep(0.1)
        assert job["state"] == "succeeded", (job, self.client.get(
            f"/jobs/{job_id}/logs", headers=headers).text[-3000:])
        return job

    def files(self, headers: dict[str, str], job_id: int) -> dict[str, bytes]:
        listed = self.client.get(f"/jobs/{job_id}/results", headers=headers).json()["data"]
        return {f["path"]: self.client.get(f"/jobs/{job_id}/results/{f['path']}",
                                           headers=headers).content for f in listed}

    def provenance(self, owner: str, job_id: int) -> dict:  # type: ignore[type-arg]
        folder = self.settings.space_root / owner / "jobs" / str(job_id)
        return json.loads((folder / "provenance.json").read_text())


@pytest.fixture(scope="module")
def platforms(lake: str, tmp_path_factory: pytest.TempPathFactory,
              probe_path: Path) -> Iterator[tuple[Platform, Platform]]:
    """The warm platform (one warm worker) and the Spark-only one, on the same catalogue;
    both (and the warm worker) also have the probe AVI installed."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(probe_path))
        patch.setenv("PYTHONPATH", os.pathsep.join(
            [str(probe_path), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
        yield from _platforms(lake, tmp_path_factory)


def _platforms(lake: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Platform, Platform]]:
    running = []
    for name, workers in (("warm", 1), ("spark", 0)):
        settings = Settings(data_dir=tmp_path_factory.mktemp(name), lakehouse_uri=lake,
                            cluster_cores=2, cluster_memory_mb=4096, job_backend="local",
                            spark_master="local[2]", warm_workers=workers,
                            scheduler_interval_s=0.2)
        client = TestClient(create_app(settings, catalogue=RegistryCatalogue(), run_scheduler=True))
        client.__enter__()
        running.append(Platform(client, settings))
        warm = client.app.state.dispatcher.warm  # type: ignore[attr-defined]
        deadline = time.monotonic() + 240  # until a worker is up, warm jobs take the Spark lane
        while warm is not None and warm.slots() < 1:
            assert time.monotonic() < deadline, warm.lane.stats()
            time.sleep(0.2)
    yield running[0], running[1]
    for platform in running:
        platform.client.__exit__(None, None, None)


def _a_star(lake: str) -> tuple[float, float]:
    table = DeltaTable(str(Path(lake) / "gaia_source")).to_pyarrow_table(columns=["ra", "dec"])
    return float(np.asarray(table["ra"])[42]), float(np.asarray(table["dec"])[42])


@pytest.mark.parametrize(("avi", "params"), [
    ("cone_search", {"radius_deg": 8.0, "formats": ["parquet", "csv", "votable", "fits"]}),
    ("sky_counts", {"order": 3, "g_max": 19.5}),
    ("adql_query", {"query": SEED_QUERY, "format": "votable"}),
])
def test_a_small_job_runs_warm_and_its_results_equal_the_spark_lanes_byte_for_byte(
        platforms: tuple[Platform, Platform], lake: str, avi: str, params: dict) -> None:  # type: ignore[type-arg]
    warm, spark = platforms
    if avi == "cone_search":
        params = {**params, **dict(zip(("ra", "dec"), _a_star(lake), strict=True))}
    alice_warm = new_user(warm.client, warm.operator, f"alice{avi[:4]}")
    alice_spark = new_user(spark.client, spark.operator, f"alice{avi[:4]}")
    quick = warm.run(alice_warm, avi, params)
    slow = spark.run(alice_spark, avi, params)
    assert (quick["lane"], quick["backend"]) == ("warm", "warm")
    assert (slow["lane"], slow["backend"]) == ("spark", "local")

    ours, theirs = warm.files(alice_warm, quick["id"]), spark.files(alice_spark, slow["id"])
    assert ours.keys() == theirs.keys() and ours
    for name in ours:
        assert ours[name] == theirs[name], f"{name} differs between the lanes"

    a = warm.provenance(f"alice{avi[:4]}", quick["id"])
    b = spark.provenance(f"alice{avi[:4]}", slow["id"])
    assert (a["lane"], b["lane"]) == ("warm", "spark")
    assert a["tables"] == b["tables"] and a["tables"]["gaia_source"]["version"] >= 0
    assert {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)} <= ENGINE_KEYS | {"tasks"}
    assert [{k: v for k, v in t.items() if k != "seconds"} for t in a["tasks"]] == \
        [{k: v for k, v in t.items() if k != "seconds"} for t in b["tasks"]]

    bob = new_user(warm.client, warm.operator, f"bob{avi[:4]}")
    assert warm.client.get(f"/jobs/{quick['id']}", headers=bob).status_code == 404
    assert warm.client.get(f"/jobs/{quick['id']}/results", headers=bob).status_code == 404


def test_a_job_too_large_for_the_warm_lane_takes_the_spark_lane(
        platforms: tuple[Platform, Platform], lake: str, monkeypatch: pytest.MonkeyPatch) -> None:
    warm, _ = platforms
    import avi_plugins.bundled.cone_search as cone

    monkeypatch.setattr(cone, "WARM_ROWS", 100)  # of the lake's 20,000 rows a 10° cone holds ~150
    carol = new_user(warm.client, warm.operator, "carol")
    ra, dec = _a_star(lake)
    job = warm.run(carol, "cone_search", {"ra": ra, "dec": dec, "radius_deg": 10.0,
                                          "formats": ["csv"]})
    assert (job["lane"], job["backend"]) == ("spark", "local")
    small = warm.run(carol, "cone_search", {"ra": ra, "dec": dec, "radius_deg": 0.5,
                                            "formats": ["csv"]})
    assert (small["lane"], small["backend"]) == ("warm", "warm")


def test_cancel_through_the_api_stops_a_warm_job_within_a_second(
        platforms: tuple[Platform, Platform]) -> None:
    from spark_jobs.backends.processes import group_alive

    warm, _ = platforms
    dave = new_user(warm.client, warm.operator, "dave")
    r = warm.client.post("/jobs", headers=dave, json={"avi": "warm_probe", "params": {
        "mode": "sleep", "seconds": 300}})
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    deadline = time.monotonic() + 120
    while (job := warm.client.get(f"/jobs/{job_id}", headers=dave).json())["state"] != "running":
        assert time.monotonic() < deadline and job["state"] == "queued", job
        time.sleep(0.05)
    assert job["lane"] == "warm" and job["backend"] == "warm"
    with warm.client.app.state.sessions() as session:  # type: ignore[attr-defined]
        from api.models import Job

        worker = session.get(Job, job_id).driver_pid  # type: ignore[union-attr]
    time.sleep(1.0)  # it sleeps in the worker
    eve = new_user(warm.client, warm.operator, "eve")
    assert warm.client.post(f"/jobs/{job_id}/cancel", headers=eve).status_code == 404
    asked = time.monotonic()
    assert warm.client.post(f"/jobs/{job_id}/cancel", headers=dave).status_code == 200
    while (job := warm.client.get(f"/jobs/{job_id}", headers=dave).json())["state"] != "cancelled" \
            or group_alive(worker):
        assert time.monotonic() - asked < 1.0, (job, group_alive(worker))
        time.sleep(0.01)


def test_while_no_warm_worker_is_up_a_warm_job_runs_as_its_own_application(
        lake: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", lakehouse_uri=lake, cluster_cores=2,
                        cluster_memory_mb=4096, job_backend="local", spark_master="local[2]",
                        warm_workers=1)
    with TestClient(create_app(settings, catalogue=RegistryCatalogue(), run_scheduler=True)) as client:
        platform = Platform(client, settings)
        warm = client.app.state.dispatcher.warm  # type: ignore[attr-defined]
        frank = new_user(client, platform.operator, "frank")
        ra, dec = _a_star(lake)
        assert warm.slots() == 0  # its worker warms up for far longer than this takes
        job = platform.run(frank, "cone_search", {"ra": ra, "dec": dec, "radius_deg": 1.0,
                                                  "formats": ["csv"]})
        assert (job["lane"], job["backend"]) == ("warm", "local")
