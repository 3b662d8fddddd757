"""One user cannot flood the API for the others (issue 14, defects 4 and 11): request-body
limits, per-user caps on queued jobs and alert filters, list caps, security headers, and
a broken plugin's error shown to operators only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from testing_utils import new_user

from api.bootstrap import ensure_operator
from api.main import create_app
from avi_plugins.params import ParamsError
from avi_plugins.registry import get_avi
from config.settings import Settings

CONE = {"avi": "cone_count", "params": {"ra_deg": 10.0, "dec_deg": 20.0}}


class Platform:
    def __init__(self, client: TestClient) -> None:
        app = client.app
        token = ensure_operator(app.state.sessions, app.state.settings.data_dir, 1)  # type: ignore[attr-defined]
        assert token is not None
        self.client = client
        self.operator = {"Authorization": f"Bearer {token.read_text().strip()}"}

    def user(self, name: str) -> dict[str, str]:
        return new_user(self.client, self.operator, name)


@pytest.fixture
def platform(tmp_path: Path, catalogue) -> Iterator[Platform]:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path / "data", max_request_bytes=64 * 1024,
                        max_queued_jobs_per_user=3, max_alert_filters_per_user=2)
    with TestClient(create_app(settings, catalogue=catalogue)) as client:
        yield Platform(client)


def test_an_oversized_body_is_413_before_it_is_read(platform: Platform) -> None:
    alice = platform.user("alice")
    huge = {**CONE, "params": {**CONE["params"], "columns": ["ra"] * 30_000}}  # ~180 kB
    r = platform.client.post("/jobs", headers=alice, json=huge)
    assert r.status_code == 413 and "65536 bytes" in r.json()["detail"]

    def chunked() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"avi": "cone_count", "params": {"x": "'
        for _ in range(100):
            yield b"y" * 1024
        yield b'"}}'

    r = platform.client.post("/jobs", headers={**alice, "Content-Type": "application/json"},
                             content=chunked())
    assert r.status_code == 413
    assert platform.client.get("/jobs", headers=alice).json()["count"] == 0
    # uploads to a space stream under the quota instead
    r = platform.client.put("/space/files/big.bin", headers=alice, content=b"z" * 200_000)
    assert r.status_code == 201


def test_queued_jobs_are_capped_per_user_not_for_the_others(platform: Platform) -> None:
    alice, bob = platform.user("alice"), platform.user("bob")
    for _ in range(3):
        assert platform.client.post("/jobs", headers=alice, json=CONE).status_code == 201
    r = platform.client.post("/jobs", headers=alice, json=CONE)
    assert r.status_code == 429 and "max_queued_jobs_per_user = 3" in r.json()["detail"]
    assert platform.client.post("/jobs", headers=bob, json=CONE).status_code == 201
    first = platform.client.get("/jobs", headers=alice).json()["data"][-1]["id"]
    assert platform.client.post(f"/jobs/{first}/cancel", headers=alice).status_code == 200
    assert platform.client.post("/jobs", headers=alice, json=CONE).status_code == 201


def test_alert_filters_are_capped_per_user(platform: Platform) -> None:
    alice, bob = platform.user("alice"), platform.user("bob")
    for name in ("a", "b"):
        r = platform.client.post("/alert-filters", headers=alice,
                                 json={"name": name, "where": "ra > 1"})
        assert r.status_code == 201, r.text
    r = platform.client.post("/alert-filters", headers=alice, json={"name": "c", "where": "ra > 1"})
    assert r.status_code == 429 and "max_alert_filters_per_user = 2" in r.json()["detail"]
    assert platform.client.post("/alert-filters", headers=bob,
                                json={"name": "c", "where": "ra > 1"}).status_code == 201


def test_list_parameters_are_capped() -> None:
    cone = get_avi("cone_search")
    with pytest.raises(ParamsError, match="columns"):
        cone.parse_params({"ra": 1, "dec": 2, "radius_deg": 0.1, "columns": ["ra"] * 201})


def test_security_headers_and_broken_plugins_for_operators_only(
    tmp_path: Path, catalogue  # type: ignore[no-untyped-def]
) -> None:
    class WithBroken(type(catalogue)):  # type: ignore[misc]
        def list(self):  # type: ignore[no-untyped-def]
            good, _ = super().list()
            return good, [{"name": "leaky", "error": "ImportError: /srv/avip/secret/conf.py"}]

    broken = WithBroken(*catalogue.avis.values())
    with TestClient(create_app(Settings(data_dir=tmp_path / "data"), catalogue=broken)) as c:
        platform = Platform(c)
        alice = platform.user("alice")
        assert c.get("/avis", headers=alice).json()["broken"] == []
        listed = c.get("/avis", headers=platform.operator).json()["broken"]
        assert [b["name"] for b in listed] == ["leaky"]
        r = c.get("/jobs", headers=alice)
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["content-security-policy"].startswith("default-src 'none'")
        assert r.headers["cache-control"] == "no-store"
        docs = c.get("/docs")
        assert docs.status_code == 200 and "content-security-policy" not in docs.headers
