# ruff: noqa: E501
"""The ``avip`` CLI against a real server on loopback: login, operator commands,
submit with typed params, jobs, space put/ls/get/rm, share; bad input exits 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from config.settings import get_settings

runner = CliRunner()


@pytest.fixture
def cli_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    config = tmp_path / "client.toml"
    monkeypatch.setenv("AVIP_CLIENT_CONFIG", str(config))
    get_settings.cache_clear()
    yield config
    get_settings.cache_clear()


def avip(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_cli_end_to_end_against_a_live_server(live, cli_config: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out = avip("login", "--url", live.url, "--token", "wrong")
    assert code == 2 and "refused" in out
    code, out = avip("login", "--url", live.url, "--token", live.operator_token)
    assert code == 0 and "operator" in out
    assert oct(cli_config.stat().st_mode)[-3:] == "600"
    code, out = avip("users", "create", "alice", "--role", "scientist")
    assert code == 0
    alice_token = out.strip().splitlines()[-1]
    code, out = avip("users", "create", "bob", "--role", "wizard")
    assert code == 2 and "roles" in out
    code, out = avip("pools", "list")
    assert code == 0 and "alice" in out and "cluster: 8 cores" in out

    assert avip("login", "--url", live.url, "--token", alice_token)[0] == 0
    code, out = avip("users", "list")
    assert code == 2 and "operator" in out  # 403 → bad input for this user
    code, out = avip("avis")
    assert code == 0 and "cone_count" in out
    code, out = avip("submit", "cone_count", "--params-help")
    assert code == 0 and "dec_deg" in out and "-90 <= dec_deg <= 90" in out
    code, out = avip("submit", "cone_count", "-p", "ra_deg=10", "-p", "dec_deg=100")
    assert code == 2 and "dec_deg" in out
    code, out = avip("submit", "cone_count", "-p", "ra_deg=10", "-p", "dec_deg=20")
    assert code == 0 and "queued" in out
    code, out = avip("jobs")
    assert code == 0 and "cone_count" in out and "1 of 1" in out
    code, out = avip("cancel", "1")
    assert code == 0 and "cancelled" in out
    code, out = avip("watch", "1", "--interval", "0.1")
    assert code == 1 and "cancelled" in out

    local = tmp_path / "stars.csv"
    local.write_text("ra,dec\n1,2\n")
    assert avip("space", "put", str(local), "data/stars.csv")[0] == 0
    code, out = avip("space", "ls", "data")
    assert code == 0 and "stars.csv" in out
    back = tmp_path / "back.csv"
    assert avip("space", "get", "data/stars.csv", str(back))[0] == 0
    assert back.read_text() == local.read_text()
    code, out = avip("space", "get", "../etc/passwd", str(tmp_path / "x"))
    assert code == 2
    code, out = avip("share", "--path", "data/stars.csv", "--user", "nobody")
    assert code == 2 and "nobody" in out
    assert avip("space", "rm", "data/stars.csv")[0] == 0
    assert "stars.csv" not in avip("space", "ls", "data")[1]


def test_operators_see_everyones_jobs_and_usage_from_the_cli(live, cli_config: Path) -> None:  # type: ignore[no-untyped-def]
    """Issue 15: `avip jobs --all` and `avip users usage` for an operator; refused (exit 2,
    saying why) for anyone else, who still sees only their own jobs."""
    assert avip("login", "--url", live.url, "--token", live.operator_token)[0] == 0
    tokens = {}
    for name in ("alice", "bob"):
        code, out = avip("users", "create", name, "--role", "scientist")
        assert code == 0
        tokens[name] = out.strip().splitlines()[-1]
    for name, dec in (("alice", "20"), ("bob", "30"), ("bob", "31")):
        assert avip("login", "--url", live.url, "--token", tokens[name])[0] == 0
        assert avip("submit", "cone_count", "-p", "ra_deg=10", "-p", f"dec_deg={dec}")[0] == 0
    code, out = avip("jobs")  # bob's own
    assert code == 0 and "2 of 2" in out
    code, out = avip("jobs", "--all")
    assert code == 2 and "operator" in out
    code, out = avip("users", "usage")
    assert code == 2 and "operator" in out
    assert avip("login", "--url", live.url, "--token", live.operator_token)[0] == 0
    code, out = avip("jobs", "--all")
    assert code == 0 and "3 of 3" in out and "alice" in out and "bob" in out
    code, out = avip("users", "usage")
    assert code == 0
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in out.splitlines()]
    rows = {row[0]: row for row in cells if row and row[0] in ("alice", "bob")}
    assert set(rows) == {"alice", "bob"}
    jobs_held = {name: int(row[1]) + int(row[2]) for name, row in rows.items()}
    assert jobs_held == {"alice": 1, "bob": 2}  # queued + running, as submitted
