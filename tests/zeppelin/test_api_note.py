"""The note that submits an AVI job to the REST API: run by the local runner and by the
real Zeppelin server against a real API (uvicorn, scheduler, sky_counts as a Spark job),
its counts checked against an independent pandas count of the same Delta table."""

from __future__ import annotations

import base64

import pandas as pd
import pytest

from api.client import AvipClient
from zeppelin_notes.notes import NOTES_DIR, load_note
from zeppelin_notes.results import ParagraphRun
from zeppelin_notes.runner import run_note

pytestmark = pytest.mark.slow
API_NOTE = NOTES_DIR / "07_avi_job.zpln"
ORDER = 2  # the HEALPix order the note asks sky_counts for


def expected_top_pixels(lakehouse: str, n: int = 10) -> pd.DataFrame:
    """Counts per order-2 pixel straight from the Delta table (delta-rs, no Spark)."""
    from deltalake import DeltaTable

    ids = DeltaTable(f"{lakehouse}/gaia_source").to_pandas(columns=["source_id"])["source_id"]
    pixel = ids.to_numpy() >> (35 + 2 * (12 - ORDER))
    counts = pd.Series(pixel).value_counts()
    return counts.rename_axis("pixel").reset_index(name="count")


def check_note_runs(runs: list[ParagraphRun], lakehouse: str) -> None:
    """Every paragraph finished; the downloaded counts equal the independent ones; a figure."""
    assert [r.status for r in runs] == ["FINISHED"] * len(runs), [(r.title, r.error) for r in runs]
    by_title = {r.title: r for r in runs}
    watch = "".join(x.data for x in by_title["Watch it run"].of_type("TEXT"))
    assert "succeeded" in watch, watch
    table = by_title["Download the result"].of_type("TABLE")[-1].table_rows()
    header, rows = table[0], table[1:]
    got = {int(r[header.index("pixel")]): int(r[header.index("count")]) for r in rows}
    expected = expected_top_pixels(lakehouse)
    assert set(got.values()) == set(expected["count"].head(len(got)))
    for pixel, count in got.items():
        assert int(expected.loc[expected.pixel == pixel, "count"].iloc[0]) == count
    png = base64.b64decode(by_title["Plot it"].of_type("IMG")[0].data.strip())
    assert png.startswith(b"\x89PNG")


def test_api_note_runs_locally(spark, notes_api, note_lakehouse: str, monkeypatch) -> None:
    from config.settings import get_settings

    monkeypatch.setenv("AVIP_LAKEHOUSE_URI", note_lakehouse)
    get_settings.cache_clear()
    try:
        runs = run_note(load_note(API_NOTE), params=notes_api.note_params())
    finally:
        get_settings.cache_clear()
    check_note_runs(runs, note_lakehouse)
    with AvipClient(notes_api.url, notes_api.token) as explorer:
        jobs = explorer.jobs(avi="sky_counts").data
    assert jobs and jobs[0].state == "succeeded" and jobs[0].params["order"] == ORDER


def test_api_note_with_a_missing_token_file_says_what_to_do(
    spark, notes_api, note_lakehouse: str, tmp_path, monkeypatch
) -> None:
    from config.settings import get_settings

    params = {**notes_api.note_params(), "api_token_file": str(tmp_path / "nope.token")}
    monkeypatch.setenv("AVIP_LAKEHOUSE_URI", note_lakehouse)
    get_settings.cache_clear()
    try:
        runs = run_note(load_note(API_NOTE), params=params)
    finally:
        get_settings.cache_clear()
    assert runs[0].status == "ERROR" and "no API token file at" in runs[0].error
    assert "avip login" in runs[0].error
    assert {r.status for r in runs[1:]} == {"READY"}


def test_api_note_runs_on_zeppelin(zeppelin, import_note, notes_api, note_lakehouse: str) -> None:
    """The same note pushed to the real Zeppelin server, its variables given as run-all
    params (what a user types into the note's forms)."""
    note_id = import_note(load_note(API_NOTE), "/tests/api-note")
    runs = zeppelin.run_all(note_id, timeout_s=1200, check=False, params=notes_api.note_params())
    check_note_runs(runs, note_lakehouse)
