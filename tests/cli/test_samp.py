"""``avip samp send`` against astropy's SAMP hub and a receiving application (standing in
for TOPCAT): local tables go as file:// VOTables, a job's result as a signed link of the
real API that the receiver loads with no token; a user can send only what they may read;
no hub, no receiver or bad input exit 2 saying what to do."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import astropy.units as u
import pandas as pd
import pytest
from astropy.table import Table
from samp_support import Receiver, finished_job, isolated_hub, load_votable
from typer.testing import CliRunner

from cli.main import app
from config.settings import Settings, get_settings

runner = CliRunner()
STARS = pd.DataFrame({"source_id": [5, 6, 7], "ra": [10.5, 10.6, 10.7],
                      "dec": [-3.0, -3.1, -3.2]})


def avip(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with isolated_hub(tmp_path, monkeypatch):
        yield


@pytest.fixture
def api(tmp_path: Path, serve_api, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """The real API on loopback, and the CLI's login file in the test's folder."""
    monkeypatch.setenv("AVIP_CLIENT_CONFIG", str(tmp_path / "client.toml"))
    get_settings.cache_clear()
    with serve_api(Settings(data_dir=tmp_path / "data")) as server:
        yield server
    get_settings.cache_clear()


def test_a_local_table_reaches_the_receiver_as_a_votable(hub: None, tmp_path: Path) -> None:
    csv = tmp_path / "stars.csv"
    STARS.to_csv(csv, index=False)
    fits = tmp_path / "mags.fits"
    Table({"source_id": [1, 2], "g": [12.5, 13.0] * u.mag}).write(fits)
    with Receiver() as topcat:
        code, out = avip("samp", "send", str(csv), "--name", "my stars")
        assert code == 0 and "sent my stars to TOPCAT" in out, out
        params = topcat.next()
        assert params["name"] == "my stars" and params["url"].startswith("file:///")
        assert list(load_votable(params["url"])["source_id"]) == [5, 6, 7]

        assert avip("samp", "send", str(fits), "--to", "topcat")[0] == 0
        table = load_votable(topcat.next()["url"])
        assert table["g"].unit == u.mag and list(table["g"]) == [12.5, 13.0]

        vot = tmp_path / "as-is.vot"
        Table.from_pandas(STARS).write(vot, format="votable")
        assert avip("samp", "send", str(vot))[0] == 0
        assert topcat.next() == {"url": vot.resolve().as_uri(), "name": "as-is.vot"}


def test_to_names_one_application(hub: None, tmp_path: Path) -> None:
    csv = tmp_path / "stars.csv"
    STARS.to_csv(csv, index=False)
    with Receiver("TOPCAT") as topcat, Receiver("Aladin") as aladin:
        code, out = avip("samp", "send", str(csv), "--to", "aladin")
        assert code == 0 and "to Aladin" in out, out
        assert aladin.next()["name"] == "stars.csv"
        with pytest.raises(queue.Empty):
            topcat.next(timeout_s=1)
        assert avip("samp", "send", str(csv))[0] == 0  # the default: everyone
        assert topcat.next() and aladin.next()
    with Receiver("TOPCAT"):
        code, out = avip("samp", "send", str(csv), "--to", "aladin")
        assert code == 2 and "aladin is not connected" in out and "TOPCAT" in out, out


def test_no_hub_no_receiver_or_bad_input_say_what_to_do(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    csv = tmp_path / "stars.csv"
    STARS.to_csv(csv, index=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("SAMP_HUB", f"std-lockurl:{(tmp_path / 'none.lock').as_uri()}")
    code, out = avip("samp", "send", str(csv))
    assert code == 2 and "start TOPCAT or Aladin" in out and "astropy.samp.hub" in out, out
    for args, words in [((), "give a FILE or --job"), ((str(csv), "--job", "1"), "not both"),
                        ((str(csv), "--file", "x"), "--file names a result"),
                        ((str(tmp_path / "gone.csv"),), "no file"),
                        ((str(tmp_path),), "no file"),
                        ((str(Path(__file__)),), "cannot tell the format"),
                        ((str(csv), "--to", "ds9"), "ds9")]:
        code, out = avip("samp", "send", *args)
        assert code == 2 and words in out, (args, out)
    with isolated_hub(tmp_path / "hub", monkeypatch):
        code, out = avip("samp", "send", str(csv))
        assert code == 2 and "no application that loads tables" in out, out
        broken = tmp_path / "broken.parquet"
        broken.write_text("not parquet")
        with Receiver():
            code, out = avip("samp", "send", str(broken))
        assert code == 2 and "cannot read" in out, out


def test_a_jobs_result_goes_as_a_link_the_receiver_loads_without_a_token(
        hub: None, api: Any) -> None:
    alice, bob = api.make_user("alice"), api.make_user("bob")
    job_id = finished_job(api.app, "alice", {"readme.txt": b"notes", "sources.parquet": STARS,
                                             "tail.csv": STARS.head(1)})
    assert avip("login", "--url", api.url, "--token", alice)[0] == 0
    with Receiver() as topcat:
        code, out = avip("samp", "send", "--job", str(job_id))
        assert code == 0 and f"sent job{job_id}-sources to TOPCAT" in out, out
        params = topcat.next()
        assert params["url"].startswith(f"{api.url}/links/") and params["url"] in out
        assert list(load_votable(params["url"])["source_id"]) == [5, 6, 7]  # no token

        code, out = avip("samp", "send", "--job", str(job_id), "--file", "tail.csv",
                         "--name", "one")
        assert code == 0, out
        assert list(load_votable(topcat.next()["url"])["source_id"]) == [5]
        for args, words in [(("--file", "nope.parquet"), "no result"),
                            (("--file", "readme.txt"), "not a table")]:
            code, out = avip("samp", "send", "--job", str(job_id), *args)
            assert code == 2 and words in out, out

        # bob may not send alice's job, until she shares it with him
        assert avip("login", "--url", api.url, "--token", bob)[0] == 0
        code, out = avip("samp", "send", "--job", str(job_id))
        assert code == 2 and f"no job {job_id}" in out, out
        assert avip("login", "--url", api.url, "--token", alice)[0] == 0
        assert avip("share", "--job", str(job_id), "--user", "bob")[0] == 0
        assert avip("login", "--url", api.url, "--token", bob)[0] == 0
        code, out = avip("samp", "send", "--job", str(job_id))
        assert code == 0, out
        assert list(load_votable(topcat.next()["url"])["source_id"]) == [5, 6, 7]
        assert topcat.messages.empty()
