"""``avip alerts stream``: what it hands the stream job, and the input it refuses.

The job store's side runs for real (SQLite store with its migrations, filters made
through the API); the stream's side of the callback is in test_stream.py. Refused
input exits with code 2 before Spark or Kafka is touched.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from click.testing import Result
from fastapi.testclient import TestClient
from testing_utils import new_user
from typer.testing import CliRunner

from api.bootstrap import ensure_operator
from api.main import create_app
from cli import alerts as alerts_cli
from cli.main import app as avip
from config.settings import Settings, get_settings

UNRUNNABLE = "least(ra, diaSource.isNegative) > 0"  # passes the checker, not Spark's analyser


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str], str]]:
    """The API on a SQLite store: (client, alice's headers, the store's URL)."""
    url = f"sqlite:///{tmp_path}/store.db"
    with TestClient(create_app(Settings(data_dir=tmp_path / "data", database_url=url))) as c:
        app = c.app
        token = ensure_operator(app.state.sessions, app.state.settings.data_dir, 1)
        operator = {"Authorization": f"Bearer {token.read_text().strip()}"}
        yield c, new_user(c, operator, "alice"), url


def test_the_store_hooks_read_enabled_filters_and_disable_an_unrunnable_one(store, caplog):
    client, alice, url = store
    for name, where in [("ok", "ra > 0"), ("mixed", UNRUNNABLE), ("off", "dec > 0")]:
        body = {"name": name, "where": where, "enabled": name != "off"}
        assert client.post("/alert-filters", headers=alice, json=body).status_code == 201

    load, on_disabled = alerts_cli._store_filters(url)
    read = {f.name: f for f in load()}
    assert sorted(read) == ["mixed", "ok"] and read["mixed"].owner == "alice"

    # Edited after the stream read it: the report is about another condition; left alone.
    edited = client.patch("/alert-filters/mixed", headers=alice, json={"where": "ra > 1"})
    assert edited.status_code == 200
    on_disabled(read["mixed"], "Spark cannot analyse the filter: DATA_DIFF_TYPES")
    assert client.get("/alert-filters/mixed", headers=alice).json()["enabled"] is True

    client.patch("/alert-filters/mixed", headers=alice, json={"where": UNRUNNABLE})
    (current,) = [f for f in load() if f.name == "mixed"]
    with caplog.at_level(logging.ERROR, logger="cli.alerts"):
        on_disabled(current, "Spark cannot analyse the filter: DATA_DIFF_TYPES")
    assert client.get("/alert-filters/mixed", headers=alice).json()["enabled"] is False
    assert [f.name for f in load()] == ["ok"]  # the next micro-batch's filters
    assert "alice/mixed" in caplog.text and "DATA_DIFF_TYPES" in caplog.text  # the reason


def test_a_store_without_the_filters_table_fails_at_start(tmp_path):
    with pytest.raises(typer.Exit) as exit_info:
        alerts_cli._store_filters(f"sqlite:///{tmp_path}/empty.db")
    assert exit_info.value.exit_code == 1


@pytest.fixture
def no_kafka_setting(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("AVIP_KAFKA_BOOTSTRAP", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def stream(tmp_path: Path, *args: str) -> Result:
    return CliRunner().invoke(
        avip, ["alerts", "stream", "--checkpoint", str(tmp_path / "ck"), *args]
    )


@pytest.mark.parametrize(
    ("filters", "needle"),
    [
        ('[{"owner": "t", "name": "f", "where": "nosuch > 1"}]', "unknown column 'nosuch'"),
        ('[{"owner": "t", "where": "ra > 1"}]', "KeyError"),
        ("not json", "JSONDecodeError"),
    ],
)
def test_a_bad_filters_file_exits_2_before_spark_starts(tmp_path, filters, needle):
    path = tmp_path / "filters.json"
    path.write_text(filters)
    result = stream(tmp_path, "--bootstrap", "127.0.0.1:1", "--filters-json", str(path))
    assert result.exit_code == 2, result.output
    assert needle in result.stderr and str(path) in result.stderr


def test_other_bad_input_exits_2_before_spark_starts(tmp_path, no_kafka_setting):
    path = tmp_path / "filters.json"
    path.write_text(json.dumps([{"owner": "t", "name": "f", "where": "ra > 1"}]))
    result = stream(tmp_path, "--filters-json", str(path))
    assert result.exit_code == 2 and "AVIP_KAFKA_BOOTSTRAP" in result.stderr  # no broker
    broker = ("--bootstrap", "127.0.0.1:1")
    result = stream(tmp_path, *broker, "--filters-json", str(tmp_path / "missing.json"))
    assert result.exit_code == 2 and "FileNotFoundError" in result.stderr
    result = stream(tmp_path, *broker, "--radius-arcsec", "0", "--filters-json", str(path))
    assert result.exit_code == 2 and "radius_arcsec" in result.stderr
    result = stream(tmp_path, *broker, "--max-offsets", "0", "--filters-json", str(path))
    assert result.exit_code == 2 and "max_offsets_per_trigger" in result.stderr


@pytest.mark.slow
def test_the_relay_serves_probes_and_metrics(tmp_path, kafka_bootstrap):  # type: ignore[no-untyped-def]
    """Issue 15: `avip events relay` answers /healthz, /readyz (store and broker) and
    /metrics (parsed by prometheus_client) while it publishes."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import httpx
    from prometheus_client.parser import text_string_to_metric_families
    from testing_utils import free_port, kafka_auth, kafka_env

    from api.db import make_engine, migrate, session_factory
    from api.store import jobs as job_store

    store = f"sqlite:///{tmp_path / 'store.db'}"
    migrate(make_engine(store))
    with session_factory(make_engine(store))() as session:
        for step in range(3):
            job_store.add_event(session, user="alice", type="job.progress", job_id=1,
                                payload={"step": step})
        session.commit()
    port = free_port()
    env = {**os.environ, "AVIP_DATABASE_URL": store, "AVIP_KAFKA_BOOTSTRAP": kafka_bootstrap,
           "AVIP_EVENTS_TOPIC": f"events-{port}"}
    avip = str(Path(sys.executable).parent / "avip")
    relay_auth, stream_auth = kafka_auth("avip-relay"), kafka_auth("avip-stream")
    if relay_auth is not None:  # the operator grants the relay this topic, then it runs as itself
        granted = subprocess.run(
            [avip, "kafka", "services", "--relay-password", relay_auth.password,
             "--stream-password", stream_auth.password], env={**env, **kafka_env("admin")},
            capture_output=True, text=True, timeout=120)
        assert granted.returncode == 0, granted.stdout + granted.stderr
        env |= kafka_env("avip-relay")
    relay = subprocess.Popen([avip, "events", "relay",
                              "--probes-port", str(port)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                samples = {s.name: s.value for family in text_string_to_metric_families(
                    httpx.get(f"{url}/metrics", timeout=5).text) for s in family.samples}
                if samples.get("avip_events_published_total") == 3:
                    break
            except httpx.HTTPError:
                pass
            assert relay.poll() is None and time.monotonic() < deadline
            time.sleep(0.3)
        assert samples["avip_outbox_unpublished_events"] == 0
        assert httpx.get(f"{url}/healthz").json() == {"status": "alive"}
        assert httpx.get(f"{url}/readyz").json() == {"ready": True,
                                                     "checks": {"store": "ok", "kafka": "ok"}}
    finally:
        relay.send_signal(signal.SIGINT)
        relay.wait(timeout=30)
