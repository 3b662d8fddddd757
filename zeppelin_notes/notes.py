"""The ``.zpln`` note format: load, validate, list the shipped notes, read paragraph kinds.

A ``.zpln`` file is Zeppelin's JSON note: ``name``, ``paragraphs`` (each with
``text`` whose first line may name the interpreter, e.g. ``%python``) and
bookkeeping fields. Validation happens before anything reaches a server, so
a malformed note is rejected with a message that names the field to fix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NOTES_DIR = Path(__file__).parent / "notes"

# Interpreters whose paragraphs are Python run with our session factory (local runner).
PYTHON_INTERPRETERS = {"python", "pyspark", "spark.pyspark", "python.python"}
# Paragraph kinds the local runner renders without executing.
TEXT_INTERPRETERS = {"md", "markdown"}


class NoteFormatError(ValueError):
    """The note is not a valid Zeppelin note; the message names what is wrong."""


@dataclass(frozen=True)
class Paragraph:
    """One paragraph: its id, title, interpreter name ('' = note default) and body."""

    id: str
    title: str
    interpreter: str
    body: str


def split_interpreter(text: str) -> tuple[str, str]:
    """Split ``"%python\\nprint(1)"`` into ``("python", "print(1)")``.

    >>> split_interpreter("%spark.pyspark\\nx = 1")
    ('spark.pyspark', 'x = 1')
    >>> split_interpreter("x = 1")
    ('', 'x = 1')
    """
    stripped = text.lstrip()
    if not stripped.startswith("%"):
        return "", text
    first, _, rest = stripped.partition("\n")
    name, _, inline = first[1:].partition(" ")
    return name.strip(), (inline + "\n" + rest if inline.strip() else rest)


def validate_note(note: Any) -> None:
    """Raise :class:`NoteFormatError` naming the first problem of a note object."""
    if not isinstance(note, dict):
        raise NoteFormatError(f"a note must be a JSON object, got {type(note).__name__}")
    name = note.get("name")
    if not isinstance(name, str) or not name.strip():
        raise NoteFormatError("note has no 'name' (a non-empty string)")
    paragraphs = note.get("paragraphs")
    if not isinstance(paragraphs, list):
        raise NoteFormatError(f"note {name!r}: 'paragraphs' must be a list")
    for index, paragraph in enumerate(paragraphs):
        where = f"note {name!r}, paragraph {index}"
        if not isinstance(paragraph, dict):
            raise NoteFormatError(f"{where}: must be an object, got {type(paragraph).__name__}")
        text = paragraph.get("text", "")
        if not isinstance(text, str):
            raise NoteFormatError(f"{where}: 'text' must be a string")
        for key in ("config", "settings"):
            if key in paragraph and not isinstance(paragraph[key], dict):
                raise NoteFormatError(f"{where}: '{key}' must be an object")
        interpreter, _ = split_interpreter(text)
        if text.lstrip().startswith("%") and not interpreter:
            raise NoteFormatError(f"{where}: '%' with no interpreter name on the first line")


def load_note(path: Path) -> dict[str, Any]:
    """Read and validate a ``.zpln`` file."""
    try:
        note = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise NoteFormatError(f"{path}: not JSON ({exc})") from exc
    except FileNotFoundError as exc:
        raise NoteFormatError(f"{path}: no such note file") from exc
    try:
        validate_note(note)
    except NoteFormatError as exc:
        raise NoteFormatError(f"{path}: {exc}") from exc
    return note


def paragraphs(note: dict[str, Any]) -> list[Paragraph]:
    """The note's non-empty paragraphs in order."""
    out = []
    for index, raw in enumerate(note["paragraphs"]):
        interpreter, body = split_interpreter(raw.get("text", ""))
        if body.strip():
            pid = raw.get("id") or f"p{index}"
            out.append(Paragraph(pid, raw.get("title", ""), interpreter, body))
    return out


def shipped_notes() -> list[Path]:
    """The notes shipped with avip, in the order a newcomer should read them."""
    return sorted(NOTES_DIR.glob("*.zpln"))
