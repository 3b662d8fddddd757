"""The client and CLI against the devstack's real Zeppelin server."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from zeppelin_notes.client import (
    AuthenticationError,
    NoteFormatError,
    ParagraphFailed,
    SessionExpired,
    ZeppelinClient,
)
from zeppelin_notes.notes import load_note, shipped_notes

# The API note needs a running API too: test_api_note.py starts one for it.
LAKEHOUSE_NOTES = [p for p in shipped_notes() if p.stem != "07_avi_job"]
DISPLAY_NOTE = {
    "name": "display",
    "paragraphs": [
        {"title": "text", "text": "%python\nprint(6 * 7)"},
        {"title": "table", "text": "%python\nfrom zeppelin_notes.display import show_table\n"
         "import pandas as pd\nshow_table(pd.DataFrame({'a': [1, 2], 'b': ['x', 'y']}))"},
        {"title": "html", "text": "%python\nfrom zeppelin_notes.display import show_html\n"
         "show_html('<b>bold</b>')"},
        {"title": "img", "text": "%python\nimport matplotlib\nmatplotlib.use('Agg')\n"
         "import matplotlib.pyplot as plt\nfrom zeppelin_notes.display import show_figure\n"
         "fig, ax = plt.subplots()\nax.plot([1, 2])\nshow_figure(fig)"},
    ],
}
FAILING_NOTE = {
    "name": "failing",
    "paragraphs": [
        {"title": "fine", "text": "%python\nprint('ok')"},
        {"title": "broken", "text": "%python\nraise KeyError('parallax_typo')"},
    ],
}


def test_wrong_password_is_a_clear_error(zeppelin_url: str) -> None:
    client = ZeppelinClient(zeppelin_url)
    with pytest.raises(AuthenticationError, match="wrong user or password"):
        client.login(os.environ["AVIP_TEST_ZEPPELIN_USER"], "not-the-password")


def test_expired_session_is_a_clear_error(zeppelin: ZeppelinClient) -> None:
    zeppelin.list_notes()
    zeppelin.logout()
    with pytest.raises(SessionExpired, match="expired or was closed"):
        zeppelin.list_notes()


def test_malformed_import_names_the_problem(zeppelin: ZeppelinClient) -> None:
    with pytest.raises(NoteFormatError, match="paragraph 1: 'text' must be a string"):
        zeppelin.import_note({"name": "bad", "paragraphs": [{"text": ""}, {"text": 3}]})
    with pytest.raises(NoteFormatError, match="not JSON"):
        zeppelin.import_note('{"name": "bad", ')


def test_import_export_list_delete(zeppelin: ZeppelinClient, import_note) -> None:
    note_id = import_note(DISPLAY_NOTE, "/tests/roundtrip")
    assert zeppelin.find_note("/tests/roundtrip") == note_id
    exported = zeppelin.export_note(note_id)
    assert [p["text"] for p in exported["paragraphs"]] == [
        p["text"] for p in DISPLAY_NOTE["paragraphs"]
    ]
    zeppelin.delete_note(note_id)
    assert zeppelin.find_note("/tests/roundtrip") is None


def test_result_types_sync_and_async(zeppelin: ZeppelinClient, import_note) -> None:
    note_id = import_note(DISPLAY_NOTE, "/tests/display")
    ids = [p["id"] for p in zeppelin.get_note(note_id)["paragraphs"]]
    text = zeppelin.run_paragraph(note_id, ids[0])
    assert text.of_type("TEXT")[0].data.strip() == "42"
    zeppelin.submit_paragraph(note_id, ids[1])
    table = zeppelin.wait_paragraph(note_id, ids[1])
    assert table.of_type("TABLE")[0].table_rows() == [["a", "b"], ["1", "x"], ["2", "y"]]
    html = zeppelin.run_paragraph(note_id, ids[2])
    assert html.of_type("HTML")[0].data.strip() == "<b>bold</b>"
    img = zeppelin.run_paragraph(note_id, ids[3])
    png = base64.b64decode(img.of_type("IMG")[0].data.strip())
    assert png.startswith(b"\x89PNG")
    assert set(zeppelin.statuses(note_id).values()) == {"FINISHED"}


def test_failing_paragraph_returns_error_and_status(zeppelin: ZeppelinClient, import_note) -> None:
    note_id = import_note(FAILING_NOTE, "/tests/failing")
    with pytest.raises(ParagraphFailed, match="KeyError: 'parallax_typo'") as info:
        zeppelin.run_all(note_id)
    assert info.value.run.status == "ERROR"
    runs = zeppelin.run_all(note_id, check=False)
    assert [r.status for r in runs] == ["FINISHED", "ERROR"]


def test_cli_run_exits_non_zero_on_failing_paragraph(zeppelin: ZeppelinClient, import_note) -> None:
    import_note(FAILING_NOTE, "/tests/cli-failing")
    creds = ["--url", zeppelin.base_url, "--user", os.environ["AVIP_TEST_ZEPPELIN_USER"],
             "--password", os.environ["AVIP_TEST_ZEPPELIN_PASSWORD"]]
    result = CliRunner().invoke(app, ["zeppelin", "run", "/tests/cli-failing", *creds])
    assert result.exit_code == 1, result.output
    assert "parallax_typo" in result.output
    wrong = CliRunner().invoke(app, ["zeppelin", "run", "/tests/cli-failing", *creds[:4],
                                     "--password", "nope"])
    assert wrong.exit_code == 2 and "wrong user or password" in wrong.output


@pytest.mark.slow
@pytest.mark.parametrize("path", LAKEHOUSE_NOTES, ids=lambda p: p.stem)
def test_shipped_note_runs_on_zeppelin(
    path: Path, zeppelin: ZeppelinClient, import_note, note_lakehouse: str
) -> None:
    """Push each note, run all its paragraphs on the server, check every one finished and
    that the note shows a table or figure."""
    note = load_note(path)
    note_id = import_note(note, f"/tests/shipped/{note['name']}")
    runs = zeppelin.run_all(note_id, timeout_s=1200)
    assert all(r.ok for r in runs), [(r.title, r.status, r.error) for r in runs]
    kinds = [sorted({x.type for x in r.results} - {"TEXT"}) for r in runs]
    assert any(k for k in kinds), kinds
    assert len(runs) == len([p for p in note["paragraphs"] if p["text"].strip()])


def test_cli_run_passes_form_values(zeppelin: ZeppelinClient, import_note) -> None:
    note = {"name": "forms", "paragraphs": [
        {"title": "form", "text": "%python\nprint('url is', z.textbox('api_url', 'unset'))"}]}
    import_note(note, "/tests/cli-forms")
    creds = ["--url", zeppelin.base_url, "--user", os.environ["AVIP_TEST_ZEPPELIN_USER"],
             "--password", os.environ["AVIP_TEST_ZEPPELIN_PASSWORD"]]
    result = CliRunner().invoke(app, ["zeppelin", "run", "/tests/cli-forms", *creds,
                                      "--param", "api_url=http://127.0.0.1:9"])
    assert result.exit_code == 0, result.output
    assert "url is http://127.0.0.1:9" in result.output


def test_cli_rejects_a_param_without_a_value() -> None:
    result = CliRunner().invoke(app, ["zeppelin", "run", "/any", "--param", "api_url"])
    assert result.exit_code == 2
    assert "write NAME=VALUE" in result.output
