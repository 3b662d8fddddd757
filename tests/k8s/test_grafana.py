"""The Grafana dashboard in k8s/grafana names only metrics our processes export: every
metric a panel queries is found in a real scrape of the API (with its scheduler), the
event relay's collector and the alert stream's."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from testing_utils import new_user

from api.bootstrap import ensure_operator
from api.main import create_app
from cli.probes import RelayCollector, StreamCollector
from config.settings import Settings

DASHBOARD = Path(__file__).resolve().parents[2] / "k8s" / "grafana" / "avip-dashboard.json"


def _names(text: str) -> set[str]:
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


def test_every_panel_queries_exported_metrics(tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    queried = {name for panel in dashboard["panels"] for target in panel["targets"]
               for name in re.findall(r"\bavip_[a-z_]+", target["expr"])}
    assert len(dashboard["panels"]) >= 10 and len(queried) >= 10

    settings = Settings(data_dir=tmp_path / "data")
    with TestClient(create_app(settings)) as client:
        token = ensure_operator(client.app.state.sessions, settings.data_dir, 1)  # type: ignore[attr-defined]
        assert token is not None
        operator = {"Authorization": f"Bearer {token.read_text().strip()}"}
        alice = new_user(client, operator, "alice")
        r = client.post("/jobs", headers=alice, json={"avi": "cone_search", "params": {}})
        assert r.status_code == 201, r.text  # waiting: a queue and a grant (0) for alice
        client.get("/jobs", headers=alice)
        exported = _names(client.get("/metrics", headers=operator).text)
    registry = CollectorRegistry()
    registry.register(RelayCollector(lambda: 3))
    registry.register(StreamCollector(lambda: [{"records": 1, "messages": 1, "seconds": 0.1}],
                                      lambda: 0))
    exported |= _names(generate_latest(registry).decode())
    assert queried <= exported, sorted(queried - exported)
