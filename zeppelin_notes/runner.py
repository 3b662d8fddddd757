"""Run a note's Python paragraphs without Zeppelin.

Paragraphs marked ``%python``, ``%pyspark`` or ``%spark.pyspark`` (or
unmarked) run in order in one namespace, like one Zeppelin interpreter
session; their stdout is split into TEXT/TABLE/HTML/IMG results with the
same display-system rules Zeppelin applies. A note's variables work as in
Zeppelin's dynamic forms: a paragraph reads ``z.textbox(name, default)``,
answered from the paragraph's saved ``settings.params`` or from the params
given to the run (``--param``). Notes build their Spark session
with ``lakehouse.session.get_spark``, so this runner and the server run the
same code. ``make demo`` uses it, and the tests use it as the fast check that
every shipped note still runs.

    python -m zeppelin_notes.runner [NOTE.zpln ...] [--out DIR] [--param NAME=VALUE ...]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from zeppelin_notes.notes import (
    PYTHON_INTERPRETERS,
    TEXT_INTERPRETERS,
    NoteFormatError,
    load_note,
    paragraphs,
    shipped_notes,
)
from zeppelin_notes.results import ParagraphRun, Result, split_display_output

log = logging.getLogger("zeppelin_notes.runner")


class NoteForms:
    """The dynamic-form part of Zeppelin's ``z`` object, for notes run without Zeppelin.

    Zeppelin answers ``z.textbox(name, default)`` (alias ``z.input``) from the
    running paragraph's ``settings.params`` and ``z.noteTextbox`` from the
    note's ``noteParams``, falling back to the default; so does this.
    """

    def __init__(self, note_params: dict[str, Any]) -> None:
        self.note_params = note_params
        self.paragraph_params: dict[str, Any] = {}

    def textbox(self, name: str, defaultValue: str = "") -> Any:  # noqa: N803
        return self.paragraph_params.get(name, defaultValue)

    input = textbox

    def noteTextbox(self, name: str, defaultValue: str = "") -> Any:  # noqa: N802, N803
        return self.note_params.get(name, defaultValue)


def run_note(
    note: dict[str, Any], stop_on_error: bool = True, params: dict[str, Any] | None = None
) -> list[ParagraphRun]:
    """Execute a validated note; returns one :class:`ParagraphRun` per non-empty paragraph.

    A failing paragraph gets status ERROR with its traceback; with
    ``stop_on_error`` (Zeppelin's run-all behaviour) later paragraphs are
    reported as READY (not run). ``params`` are form values given to every
    paragraph, as Zeppelin's run-all REST call (``POST /api/notebook/job/{id}``
    with ``{"params": ...}``) gives them.
    """
    forms = NoteForms(dict(note.get("noteParams") or {}))
    namespace: dict[str, Any] = {"__name__": "__zeppelin_note__", "z": forms}
    own_params = {raw.get("id") or f"p{i}": (raw.get("settings") or {}).get("params") or {}
                  for i, raw in enumerate(note["paragraphs"])}
    runs: list[ParagraphRun] = []
    failed = False
    for paragraph in paragraphs(note):
        run = ParagraphRun(paragraph.id, paragraph.title, "READY")
        runs.append(run)
        if failed and stop_on_error:
            continue
        forms.paragraph_params = {**own_params.get(paragraph.id, {}), **(params or {})}
        if paragraph.interpreter in TEXT_INTERPRETERS:
            run.status, run.results = "FINISHED", [Result("HTML", paragraph.body)]
            continue
        if paragraph.interpreter and paragraph.interpreter not in PYTHON_INTERPRETERS:
            run.status = "ERROR"
            run.error = f"interpreter %{paragraph.interpreter} is not supported by the local runner"
            failed = True
            continue
        out = io.StringIO()
        started = time.monotonic()
        try:
            with contextlib.redirect_stdout(out):
                code = compile(paragraph.body, f"<{paragraph.title or paragraph.id}>", "exec")
                exec(code, namespace)
            run.status = "FINISHED"
        except Exception:  # a note's error is reported, as Zeppelin does
            run.status, run.error = "ERROR", traceback.format_exc()
            failed = True
        run.seconds = time.monotonic() - started
        run.results = split_display_output(out.getvalue())
    return runs


def run_note_file(
    path: Path, stop_on_error: bool = True, params: dict[str, Any] | None = None
) -> list[ParagraphRun]:
    return run_note(load_note(path), stop_on_error=stop_on_error, params=params)


def parse_params(pairs: list[str]) -> dict[str, str]:
    """``["api_url=http://x"]`` -> ``{"api_url": "http://x"}``; a pair without '=' is an error.

    >>> parse_params(["a=1", "b=x=y"])
    {'a': '1', 'b': 'x=y'}
    """
    params = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--param {pair!r}: write NAME=VALUE, e.g. api_url=http://127.0.0.1:8765")
        params[name.strip()] = value
    return params


def _summary(path: Path, runs: list[ParagraphRun]) -> str:
    lines = [f"{path.name}:"]
    for run in runs:
        kinds = ",".join(r.type for r in run.results) or "-"
        took = f"{run.seconds:.1f}s" if run.seconds is not None else ""
        lines.append(f"  {run.status:<8} {took:>7}  {run.title or run.paragraph_id}  [{kinds}]")
        if run.error:
            lines.append("    " + run.error.strip().splitlines()[-1])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notes", nargs="*", type=Path, help="note files (default: shipped notes)")
    parser.add_argument("--out", type=Path, help="write each note's results as JSON into DIR")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="a form value (z.textbox) for every paragraph, repeatable")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        params = parse_params(args.param)
    except ValueError as exc:
        parser.error(str(exc))
    status = 0
    for path in args.notes or shipped_notes():
        try:
            runs = run_note_file(path, params=params)
        except NoteFormatError as exc:
            log.error("%s", exc)
            return 2
        log.info("%s", _summary(path, runs))
        if any(r.status == "ERROR" for r in runs):
            status = 1
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            payload = [
                {"id": r.paragraph_id, "title": r.title, "status": r.status, "error": r.error,
                 "results": [{"type": x.type, "data": x.data} for x in r.results]}
                for r in runs
            ]
            (args.out / f"{path.stem}.json").write_text(json.dumps(payload, indent=1))
    return status


if __name__ == "__main__":
    sys.exit(main())
