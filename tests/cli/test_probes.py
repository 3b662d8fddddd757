"""The probe server of the relay and the alert stream: /healthz, /readyz with each
dependency, /metrics in Prometheus' format (the stream's figures from its batch stats),
the scrape token when one is set, and a clear error for a port in use."""

from __future__ import annotations

import httpx
import pytest
import typer
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from testing_utils import free_port

from cli.probes import StreamCollector, serve_probes


def test_probes_serve_health_readiness_and_the_streams_metrics() -> None:
    stats = [{"batch_id": 0, "messages": 5, "records": 100, "seconds": 1.5},
             {"batch_id": 1, "messages": 2, "records": 40, "seconds": 0.5}]
    checks = {"kafka": "ok"}
    registry = CollectorRegistry()
    registry.register(StreamCollector(lambda: stats, lambda: 1))
    port = free_port()
    server = serve_probes(registry, lambda: dict(checks), host="127.0.0.1", port=port,
                          token="scrape")
    url = f"http://127.0.0.1:{port}"
    try:
        assert httpx.get(f"{url}/healthz").json() == {"status": "alive"}
        assert httpx.get(f"{url}/readyz").json() == {"ready": True, "checks": {"kafka": "ok"}}
        checks["kafka"] = "unreachable: no broker"
        r = httpx.get(f"{url}/readyz")
        assert r.status_code == 503 and r.json()["checks"]["kafka"].startswith("unreachable")
        assert httpx.get(f"{url}/metrics").status_code == 401
        text = httpx.get(f"{url}/metrics", headers={"Authorization": "Bearer scrape"}).text
        samples = {s.name: s.value for f in text_string_to_metric_families(text)
                   for s in f.samples}
        assert samples["avip_alerts_total"] == 140 and samples["avip_alert_messages_total"] == 7
        assert samples["avip_alert_batches_total"] == 2
        assert samples["avip_alert_batch_seconds_total"] == 2.0
        assert samples["avip_alert_last_batch_seconds"] == 0.5
        assert samples["avip_alert_filters_disabled_total"] == 1
        assert httpx.get(f"{url}/other").status_code == 404
        with pytest.raises(typer.Exit):  # the port is taken: a clear error, not a traceback
            serve_probes(registry, dict, host="127.0.0.1", port=port)
    finally:
        server.shutdown()
        server.server_close()
