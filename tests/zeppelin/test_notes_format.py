"""The .zpln format checks and Zeppelin's display rules (no server, no Spark)."""

from __future__ import annotations

import json

import pytest

from zeppelin_notes.notes import (
    NoteFormatError,
    load_note,
    paragraphs,
    shipped_notes,
    split_interpreter,
    validate_note,
)
from zeppelin_notes.results import split_display_output


def test_every_shipped_note_is_valid_and_uses_python_paragraphs() -> None:
    notes = shipped_notes()
    assert len(notes) >= 6
    for path in notes:
        note = load_note(path)
        kinds = {p.interpreter for p in paragraphs(note)}
        assert kinds == {"python"}, (path.name, kinds)
        assert "get_spark" in note["paragraphs"][0]["text"], path.name


@pytest.mark.parametrize(
    ("note", "message"),
    [
        ([], "must be a JSON object"),
        ({"paragraphs": []}, "no 'name'"),
        ({"name": "x", "paragraphs": {}}, "'paragraphs' must be a list"),
        ({"name": "x", "paragraphs": ["print(1)"]}, "paragraph 0: must be an object"),
        ({"name": "x", "paragraphs": [{"text": 1}]}, "paragraph 0: 'text' must be a string"),
        ({"name": "x", "paragraphs": [{"text": "ok"}, {"text": "%\nx = 1"}]}, "paragraph 1"),
        ({"name": "x", "paragraphs": [{"text": "", "config": []}]}, "'config' must be an object"),
    ],
)
def test_malformed_note_names_the_problem(note: object, message: str) -> None:
    with pytest.raises(NoteFormatError, match=message.replace("(", r"\(")):
        validate_note(note)


def test_load_note_rejects_non_json(tmp_path) -> None:
    bad = tmp_path / "bad.zpln"
    bad.write_text("{not json")
    with pytest.raises(NoteFormatError, match="bad.zpln: not JSON"):
        load_note(bad)
    good = tmp_path / "good.zpln"
    good.write_text(json.dumps({"name": "g", "paragraphs": [{"text": "%python\nx = 1"}]}))
    assert paragraphs(load_note(good))[0].interpreter == "python"


def test_split_interpreter() -> None:
    assert split_interpreter("%spark.pyspark\nx = 1") == ("spark.pyspark", "x = 1")
    assert split_interpreter("%md # title") == ("md", "# title\n")
    assert split_interpreter("x = 1") == ("", "x = 1")


def test_display_output_is_split_like_zeppelin() -> None:
    text = "hello\n%table a\tb\n1\t2\n%text after\n%img iVBOR\n%html <b>x</b>\n"
    results = split_display_output(text)
    assert [r.type for r in results] == ["TEXT", "TABLE", "TEXT", "IMG", "HTML"]
    assert results[1].table_rows() == [["a", "b"], ["1", "2"]]
    assert results[3].data.strip() == "iVBOR"
