"""Alert filters through the real API (SQLite store, real migrations), its typed client
and the ``avip alerts filters`` commands."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from testing_utils import new_user
from typer.testing import CliRunner

from api.client import ApiError, AvipClient
from api.main import create_app
from api.schemas import AlertFilterPublic
from cli.main import app
from config.settings import Settings, get_settings


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
        # issue 14: each of these was accepted, then failed or stalled the shared stream
        ("object_id LIKE 'a\\\\'", "ends with an escape"),
        ("object_id LIKE '" + "%a" * 15 + "%b'", "has 16 '%'"),
        ("round(ra, 2147483647) > 1", "give at most 38"),
        ("round(ra, dec) > 1", "must be a whole number"),
        # and these were 500s
        ("(" * 300 + "ra > 1" + ")" * 300, "deeper than 40"),
        (" + ".join(["ra"] * 300) + " > 1", "deeper than 40"),
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


def test_the_typed_client_and_the_cli_manage_your_filters(tmp_path, serve_api, monkeypatch):
    settings = Settings(data_dir=tmp_path / "data")
    with serve_api(settings) as live:
        token = live.make_user("alice")
        bob = live.make_user("bob")
        with AvipClient(live.url, token) as alice:
            made = alice.create_alert_filter("bright", "diaSource.psfFlux > 1000")
            assert isinstance(made, AlertFilterPublic)
            assert (made.where, made.topic, made.enabled) == (
                "diaSource.psfFlux > 1000", "avip.alerts.filter.alice.bright", True
            )  # fmt: skip
            assert alice.alert_filter("bright") == made == alice.alert_filter(made.id)
            assert alice.disable_alert_filter("bright").enabled is False
            changed = alice.update_alert_filter(made.id, where="diaSource.psfFlux > 2000")
            assert (changed.where, changed.enabled) == ("diaSource.psfFlux > 2000", False)
            assert alice.enable_alert_filter(made.id).enabled is True
            assert [f.name for f in alice.alert_filters().data] == ["bright"]
            assert alice.alert_filter_columns()["gaia_g_mag"] == "double"
            with pytest.raises(ApiError) as refused:
                alice.create_alert_filter("bright", "ra > 0")
            assert refused.value.status == 409
            with pytest.raises(ApiError) as refused:
                alice.create_alert_filter("odd", "nosuch > 1")
            assert refused.value.status == 422 and "unknown column" in str(refused.value)
        with AvipClient(live.url, bob) as other, pytest.raises(ApiError) as hidden:
            other.alert_filter(made.id)
        assert hidden.value.status == 404

        monkeypatch.setenv("AVIP_CLIENT_CONFIG", str(tmp_path / "client.toml"))
        get_settings.cache_clear()
        try:
            _cli_session(live.url, token)
        finally:
            get_settings.cache_clear()


def _cli_session(url: str, token: str) -> None:
    runner = CliRunner()

    def avip(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, list(args))
        return result.exit_code, result.output

    assert avip("login", "--url", url, "--token", token)[0] == 0
    code, out = avip("alerts", "filters", "create", "on-gaia", "gaia_sep_arcsec < 1",
                     "--format", "avro")  # fmt: skip
    assert code == 0 and "avip.alerts.filter.alice.on-gaia" in out
    code, out = avip("alerts", "filters", "create", "odd", "nosuch > 1")
    assert code == 2 and "unknown column 'nosuch'" in out
    code, out = avip("alerts", "filters", "create", "odd", "ra > 1", "--format", "xml")
    assert code == 2 and "output_format" in out
    assert avip("alerts", "filters", "disable", "on-gaia")[0] == 0
    code, out = avip("alerts", "filters", "list")
    assert code == 0 and "off on-gaia" in " ".join(out.split()) and "avro" in out
    assert avip("alerts", "filters", "enable", "on-gaia")[0] == 0
    assert "on on-gaia" in " ".join(avip("alerts", "filters", "list")[1].split())
    code, out = avip("alerts", "consume", "nosuch")  # not yours, or not there: 404
    assert code == 2 and "no alert filter 'nosuch'" in out
    assert avip("alerts", "filters", "delete", "nosuch")[0] == 2
    assert avip("alerts", "filters", "delete", "on-gaia")[0] == 0
    code, out = avip("alerts", "filters", "list")
    assert code == 0 and "on-gaia" not in out


def test_a_filter_the_stream_switches_off_tells_its_owner_why(client, headers):
    """Issue 14 (defect 3b): the owner sees the reason (API field, event, CLI listing);
    nobody else does; editing or re-enabling it clears the note."""
    from cli.alerts import _store_filters

    alice, bob = headers("alice"), headers("bob")
    fid = client.post("/alert-filters", headers=alice,
                      json={"name": "flux", "where": "diaSource.psfFlux > 0"}).json()["id"]
    load, on_disabled = _store_filters(client.app.state.settings.store_url)
    [running] = [f for f in load() if f.filter_id == fid]
    on_disabled(running, "it raised while running on the alert stream: [DIVIDE_BY_ZERO]")
    assert [f.filter_id for f in load()] == []  # the stream no longer runs it
    got = client.get(f"/alert-filters/{fid}", headers=alice).json()
    assert got["enabled"] is False and "DIVIDE_BY_ZERO" in got["disabled_reason"]
    events = client.get("/events", headers=alice).json()["data"]
    assert [e["payload"]["filter"] for e in events if e["type"] == "alert_filter.disabled"] == [
        "flux"]
    assert all(e["type"] != "alert_filter.disabled"
               for e in client.get("/events", headers=bob).json()["data"])
    assert client.get(f"/alert-filters/{fid}", headers=bob).status_code == 404
    again = client.patch(f"/alert-filters/{fid}", headers=alice, json={"enabled": True}).json()
    assert again["enabled"] is True and again["disabled_reason"] is None
    # a report about a filter edited since it was read leaves the edited one alone
    client.patch(f"/alert-filters/{fid}", headers=alice, json={"where": "diaSource.psfFlux > 5"})
    on_disabled(running, "stale report")
    assert client.get(f"/alert-filters/{fid}", headers=alice).json()["enabled"] is True
