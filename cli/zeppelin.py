"""``avip zeppelin push|run|export|local``: notes on a Zeppelin server, or run locally.

Server address and credentials come from the settings (``AVIP_ZEPPELIN_URL``,
``AVIP_ZEPPELIN_USER``, ``AVIP_ZEPPELIN_PASSWORD``) or the options. Exit
codes: 0 ok, 1 a paragraph failed (its error text is printed), 2 bad input
(malformed note, wrong password, expired session, unknown note).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cli.output import EXIT_FAILED, fail
from config.settings import get_settings
from zeppelin_notes.client import (
    AuthenticationError,
    NoteFormatError,
    ParagraphFailed,
    SessionExpired,
    ZeppelinClient,
    ZeppelinError,
)
from zeppelin_notes.notes import load_note, shipped_notes
from zeppelin_notes.results import ParagraphRun
from zeppelin_notes.runner import main as run_notes_locally
from zeppelin_notes.runner import parse_params

zeppelin_app = typer.Typer(help="Push, run and export Zeppelin notes.", no_args_is_help=True)

UrlOpt = Annotated[str | None, typer.Option("--url", help="Zeppelin base URL")]
UserOpt = Annotated[str | None, typer.Option("--user", help="Zeppelin user")]
PasswordOpt = Annotated[str | None, typer.Option("--password", help="Zeppelin password")]
ParamOpt = Annotated[list[str] | None, typer.Option(
    "--param", "-p", help="NAME=VALUE form value (z.textbox) for every paragraph, repeatable; "
    "e.g. api_url=http://127.0.0.1:8765")]


def _client(url: str | None, user: str | None, password: str | None) -> ZeppelinClient:
    settings = get_settings()
    url = url or settings.zeppelin_url
    user = user or settings.zeppelin_user
    password = password or settings.zeppelin_password
    if not url or not user or password is None:
        raise fail("set --url/--user/--password (or AVIP_ZEPPELIN_URL, _USER, _PASSWORD)")
    client = ZeppelinClient(url)
    try:
        client.login(user, password)
    except (AuthenticationError, ZeppelinError) as exc:
        raise fail(str(exc)) from exc
    return client


def _print_runs(runs: list[ParagraphRun]) -> None:
    for run in runs:
        kinds = ",".join(r.type for r in run.results) or "-"
        typer.echo(f"{run.status:<9} {run.title or run.paragraph_id}  [{kinds}]")
        for result in run.results:
            if result.type == "TEXT":
                typer.echo("  " + result.data.strip().replace("\n", "\n  "))


@zeppelin_app.command()
def push(
    notes: Annotated[list[Path] | None, typer.Argument(help=".zpln files (default: all)")] = None,
    folder: Annotated[str, typer.Option(help="Zeppelin folder to put the notes in")] = "/avip",
    url: UrlOpt = None, user: UserOpt = None, password: PasswordOpt = None,
) -> None:
    """Import notes into Zeppelin, replacing notes of the same path."""
    client = _client(url, user, password)
    for path in notes or shipped_notes():
        try:
            note = load_note(path)
            target = f"{folder.rstrip('/')}/{note['name']}"
            note_id = client.replace_note(note, target)
        except NoteFormatError as exc:
            raise fail(str(exc)) from exc
        except ZeppelinError as exc:
            raise fail(str(exc)) from exc
        typer.echo(f"{note_id}  {target}")


@zeppelin_app.command()
def run(
    note: Annotated[str, typer.Argument(help="note id or path, e.g. '/avip/01 Start here'")],
    paragraph: Annotated[str | None, typer.Option(help="run only this paragraph id")] = None,
    param: ParamOpt = None,
    url: UrlOpt = None, user: UserOpt = None, password: PasswordOpt = None,
) -> None:
    """Run a note (or one paragraph) on the server and print its results."""

    try:
        params = parse_params(param or [])
    except ValueError as exc:
        raise fail(str(exc)) from exc
    client = _client(url, user, password)
    try:
        note_id = client.find_note(note) if note.startswith("/") else note
        if not note_id:
            raise fail(f"no note at {note!r}; `avip zeppelin push` first")
        if paragraph:
            runs = [client.run_paragraph(note_id, paragraph, check=False)]
        else:
            runs = client.run_all(note_id, check=False, params=params)
    except SessionExpired as exc:
        raise fail(str(exc)) from exc
    except ZeppelinError as exc:
        raise fail(str(exc)) from exc
    _print_runs(runs)
    failed = [r for r in runs if r.status in ("ERROR", "ABORT")]
    if failed:
        raise fail(str(ParagraphFailed(note_id, failed[0])), EXIT_FAILED)


@zeppelin_app.command()
def export(
    note: Annotated[str, typer.Argument(help="note id or path")],
    output: Annotated[Path, typer.Option("--output", "-o", help="file to write")],
    url: UrlOpt = None, user: UserOpt = None, password: PasswordOpt = None,
) -> None:
    """Export a note with its last results as a .zpln file."""
    client = _client(url, user, password)
    try:
        note_id = client.find_note(note) if note.startswith("/") else note
        if not note_id:
            raise fail(f"no note at {note!r}")
        output.write_text(json.dumps(client.export_note(note_id), indent=2) + "\n")
    except ZeppelinError as exc:
        raise fail(str(exc)) from exc
    typer.echo(f"wrote {output}")


@zeppelin_app.command()
def local(
    notes: Annotated[list[Path] | None, typer.Argument(help=".zpln files (default: all)")] = None,
    param: ParamOpt = None,
) -> None:
    """Run notes without Zeppelin (same session factory), as `make demo` does."""
    params = [arg for pair in param or [] for arg in ("--param", pair)]
    raise typer.Exit(run_notes_locally([str(p) for p in notes or []] + params))
