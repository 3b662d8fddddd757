"""Every shipped note runs with the local runner, on a real Spark session and lakehouse."""

from __future__ import annotations

from pathlib import Path

import pytest

from zeppelin_notes.notes import shipped_notes
from zeppelin_notes.runner import run_note, run_note_file

# The API note needs a running API too: test_api_note.py starts one for it.
LAKEHOUSE_NOTES = [p for p in shipped_notes() if p.stem != "07_avi_job"]
pytestmark = pytest.mark.slow


@pytest.fixture()
def notes_settings(note_lakehouse: str, monkeypatch: pytest.MonkeyPatch):
    """Point the settings (which the notes' open_catalog() reads) at the test lakehouse."""
    from config.settings import get_settings

    monkeypatch.setenv("AVIP_LAKEHOUSE_URI", note_lakehouse)
    get_settings.cache_clear()
    yield note_lakehouse
    get_settings.cache_clear()


@pytest.mark.parametrize("path", LAKEHOUSE_NOTES, ids=lambda p: p.stem)
def test_shipped_note_runs_locally(path: Path, spark, notes_settings: str) -> None:
    runs = run_note_file(path)
    failed = [(r.title, r.error) for r in runs if r.status != "FINISHED"]
    assert not failed, failed
    # Every note shows something beyond text: a table or a figure.
    kinds = {r.type for run in runs for r in run.results}
    assert kinds & {"TABLE", "IMG"}, kinds


def test_failing_paragraph_stops_the_run_with_its_traceback() -> None:
    note = {"name": "t", "paragraphs": [
        {"text": "%python\nx = 1\nprint(x)"},
        {"text": "%python\nraise ValueError('no such column: foo')"},
        {"text": "%python\nprint('never')"},
    ]}
    runs = run_note(note)
    assert [r.status for r in runs] == ["FINISHED", "ERROR", "READY"]
    assert "ValueError: no such column: foo" in runs[1].error
    assert runs[0].results[0].data == "1\n"


def test_form_values_come_from_run_params_then_saved_params_then_defaults() -> None:
    note = {"name": "forms", "paragraphs": [
        {"text": "%python\nprint(z.textbox('a', 'da'), z.input('b', 'db'), z.textbox('c', 'dc'))",
         "settings": {"params": {"b": "saved-b", "c": "saved-c"}, "forms": {}}},
        {"text": "%python\nprint(z.textbox('b', 'db'))"},
    ]}
    runs = run_note(note, params={"c": "run-c"})
    assert runs[0].results[0].data == "da saved-b run-c\n"
    assert runs[1].results[0].data == "db\n"  # saved params belong to their own paragraph
