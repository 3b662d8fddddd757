"""Probes and metrics (issue 15): /healthz, /readyz naming what is not reachable, and
/metrics in Prometheus' format (parsed with prometheus_client's own parser), for
operators and the scrape token only."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from testing_utils import free_port, new_user

from api.bootstrap import ensure_operator
from api.main import create_app
from config.settings import Settings

CONE = {"avi": "cone_count", "params": {"ra_deg": 10.0, "dec_deg": 20.0}}


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}



def test_probes_and_metrics(tmp_path: Path, catalogue) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path / "data", metrics_token="scrape-me")  # type: ignore[arg-type]
    with TestClient(create_app(settings, catalogue=catalogue)) as client:
        token = ensure_operator(client.app.state.sessions, settings.data_dir, 1)  # type: ignore[attr-defined]
        assert token is not None
        operator = {"Authorization": f"Bearer {token.read_text().strip()}"}
        alice, bob = new_user(client, operator, "alice"), new_user(client, operator, "bob")
        assert client.get("/healthz").json() == {"status": "alive"}
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json() == {"ready": True,
                                                             "checks": {"store": "ok"}}
        for headers in (alice, alice, bob):
            assert client.post("/jobs", headers=headers, json=CONE).status_code == 201
        client.app.state.dispatcher.tick()  # type: ignore[attr-defined]

        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers=alice).status_code == 403  # names other users
        scraped = client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
        assert scraped.status_code == 200
        assert client.get("/metrics", headers=operator).status_code == 200
        samples = _samples(scraped.text)
    running = samples[("avip_jobs", (("state", "running"),))]
    queued = samples[("avip_jobs", (("state", "queued"),))]
    assert running + queued == 3 and samples[("avip_jobs", (("state", "failed"),))] == 0
    per_user = {user: samples.get(("avip_queue_length", (("user", user),)), 0)
                for user in ("alice", "bob")}
    assert sum(per_user.values()) == queued
    cores = sum(v for (name, _), v in samples.items() if name == "avip_granted_cores")
    assert cores == running  # cone_count asks one driver core
    assert samples[("avip_outbox_unpublished_events", ())] >= 3  # no relay runs here
    posted = samples[("avip_http_request_duration_seconds_count",
                      (("method", "POST"), ("route", "/jobs"), ("status", "201")))]
    assert posted == 3  # by route template and status
    assert samples[("avip_scheduler_decision_seconds_count", ())] >= 1


def test_readyz_names_what_is_unreachable(tmp_path: Path, catalogue) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path / "data", job_backend="standalone",
                        spark_master=f"spark://127.0.0.1:{free_port()}")
    with TestClient(create_app(settings, catalogue=catalogue)) as client:
        r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["checks"]["store"] == "ok"
    assert r.json()["checks"]["spark_master"].startswith("unreachable")
