"""Alert filters through the real API (SQLite store, real migrations)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from testing_utils import new_user

from api.main import create_app
from config.settings import Settings


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path}/store.db")
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture
def headers(client: TestClient):  # type: ignore[no-untyped-def]
    from api.bootstrap import ensure_operator

    app = client.app
    token = ensure_operator(app.state.sessions, app.state.settings.data_dir, 1).read_text().strip()
    operator = {"Authorization": f"Bearer {token}"}

    def make(name: str) -> dict[str, str]:
        return new_user(client, operator, name)

    return make


def test_filter_lifecycle_and_isolation(client, headers):
    alice, bob = headers("alice"), headers("bob")
    body = {
        "name": "bright-on-gaia",
        "where": "diaSource.psfFlux > 1000 AND gaia_sep_arcsec < 1 AND gaia_g_mag < 16",
    }
    r = client.post("/alert-filters", headers=alice, json=body)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["topic"] == "avip.alerts.filter.alice.bright-on-gaia" and created["enabled"]
    assert client.post("/alert-filters", headers=alice, json=body).status_code == 409

    # Bob sees nothing of Alice's filter and cannot change or delete it.
    assert client.get("/alert-filters", headers=bob).json() == {"data": [], "count": 0}
    fid = created["id"]
    assert client.get(f"/alert-filters/{fid}", headers=bob).status_code == 404
    assert (
        client.patch(f"/alert-filters/{fid}", headers=bob, json={"enabled": False}).status_code
        == 404
    )
    assert client.delete(f"/alert-filters/{fid}", headers=bob).status_code == 404

    r = client.patch("/alert-filters/bright-on-gaia", headers=alice, json={"enabled": False})
    assert r.status_code == 200 and r.json()["enabled"] is False
    from api.store.alert_filters import enabled_filters

    with client.app.state.sessions() as session:
        assert enabled_filters(session) == []
    client.patch(f"/alert-filters/{fid}", headers=alice, json={"enabled": True})
    with client.app.state.sessions() as session:
        (f,) = enabled_filters(session)
    assert (f.owner, f.name, f.spark_sql.startswith("`diaSource`")) == (
        "alice",
        "bright-on-gaia",
        True,
    )

    assert client.delete(f"/alert-filters/{fid}", headers=alice).status_code == 204
    assert client.get("/alert-filters", headers=alice).json()["count"] == 0
    assert client.get("/alert-filters", headers={}).status_code == 401


@pytest.mark.parametrize(
    ("where", "needle"),
    [
        ("nosuch > 1", "unknown column 'nosuch'"),
        ("ra IN (SELECT 1)", "subqueries"),
        ("evil(ra) > 0", "unknown function evil()"),
        ("DROP TABLE users", "DDL"),
        ("ra > 1; DELETE FROM users", "2 statements"),
    ],
)
def test_bad_filters_are_refused_with_the_reason(client, headers, where, needle):
    alice = headers("alice")
    r = client.post("/alert-filters", headers=alice, json={"name": "f", "where": where})
    assert r.status_code == 422
    assert needle in r.text


def test_columns_endpoint_lists_the_allow_list(client, headers):
    cols = client.get("/alert-filters/columns").json()
    assert cols["diaSource.psfFlux"] == "float" and cols["gaia_source_id"] == "bigint"
