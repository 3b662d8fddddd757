"""``avip samp send``: a table to TOPCAT or Aladin over SAMP, from the user's machine.

The CLI speaks SAMP's standard profile to the hub on this machine (TOPCAT and Aladin
run one; so does ``python -m astropy.samp.hub``), which astropy finds through
``$SAMP_HUB`` or ``~/.samp``. A local file goes as a ``file://`` URL (as VOTable: it is
converted first unless it is one); a job's result as a signed URL of the API, which the
receiving application fetches itself, without a token, until it expires.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from api.client import ApiError, AvipClient
from cli.jobs import connect
from cli.output import console, fail

MTYPE = "table.load.votable"
NO_HUB = ("no SAMP hub is running on this machine: start TOPCAT or Aladin, or "
          "`python -m astropy.samp.hub`, then send again")
TABLE_SUFFIXES = (".parquet", ".csv")

samp_app = typer.Typer(help="Send tables to TOPCAT or Aladin (SAMP).", no_args_is_help=True)


class Target(StrEnum):
    topcat = "topcat"
    aladin = "aladin"
    all = "all"


@contextmanager
def hub() -> Iterator[Any]:
    """A send-only client registered with the running hub; exit 2 saying how to start one."""
    with warnings.catch_warnings():  # deprecated in astropy 8 for pyvo.samp (same API)
        warnings.simplefilter("ignore")
        from astropy.samp import SAMPHubError, SAMPIntegratedClient, SAMPProxyError, conf

    client = SAMPIntegratedClient(name="avip", description="avip command line",
                                  callable=False)
    try:
        with conf.set_temp("use_internet", False):  # else it asks google.com for a hostname
            client.connect()
    except (SAMPHubError, SAMPProxyError, OSError) as error:
        raise fail(f"{NO_HUB} ({error})") from None
    try:
        yield client
    finally:
        client.disconnect()


def checked_format(path: Path) -> str:
    """The table format of ``path`` by its extension; exit 2 saying what to give."""
    from lakehouse.export import format_for

    if not path.is_file():
        raise fail(f"no file {path}: give a CSV, Parquet, VOTable or FITS table")
    try:
        return format_for(path)
    except ValueError as error:
        raise fail(str(error)) from None


def as_votable(path: Path, fmt: str) -> Path:
    """``path`` itself if it is a VOTable, else a VOTable copy in a private temp folder,
    kept: the receiver reads it after this command has ended."""
    from lakehouse.export import read_table, write_table

    if fmt == "votable":
        return path.resolve()
    out = Path(tempfile.mkdtemp(prefix="avip-samp-")) / f"{path.stem}.vot"
    try:
        if fmt == "fits":  # astropy directly: keeps the file's units and array columns
            from astropy.table import Table

            Table.read(path, format="fits").write(out, format="votable")
        else:
            write_table(read_table(path), out)
    except (OSError, ValueError) as error:
        raise fail(f"cannot read {path} as {fmt}: {error}") from None
    return out


def first_table(client: AvipClient, job_id: int) -> str:
    """The first table result of a job of yours, or of one shared with you."""
    try:
        paths = [f.path for f in client.results(job_id).data if "votable" in f.formats]
    except ApiError as error:
        if error.status != 404:
            raise
        share = next((s for s in client.shared_with_me().data
                      if s.kind == "job" and s.target == str(job_id)), None)
        if share is None:
            raise
        paths = [e.path for e in client.shared_ls(share.id).data
                 if e.path.lower().endswith(TABLE_SUFFIXES)]
    if not paths:
        raise fail(f"job {job_id} has no table result; see `avip results {job_id}`")
    return paths[0]


def broadcast(client: Any, url: str, name: str, to: Target) -> list[str]:
    """Send ``table.load.votable`` to every application that loads tables (or only to
    TOPCAT / Aladin); returns their names."""
    names = {cid: str(client.get_metadata(cid).get("samp.name", cid))
             for cid in client.get_subscribed_clients(MTYPE)}
    targets = [cid for cid, label in names.items()
               if to is Target.all or label.lower().startswith(to.value)]
    if not targets:
        who = "no application that loads tables is" if to is Target.all else f"{to} is not"
        running = f" (connected: {', '.join(names.values())})" if names else ""
        raise fail(f"{who} connected to the SAMP hub{running}: start TOPCAT or Aladin")
    message = {"samp.mtype": MTYPE, "samp.params": {"url": url, "name": name}}
    if to is Target.all:
        client.notify_all(message)
    else:
        for cid in targets:
            client.notify(cid, message)
    return [names[cid] for cid in targets]


@samp_app.command("send")
def send(
    file: Annotated[Path | None, typer.Argument(
        help="A local CSV, Parquet, VOTable or FITS table.")] = None,
    job: Annotated[int | None, typer.Option(min=1, help="Send a result of this job.")] = None,
    result: Annotated[str | None, typer.Option(
        "--file", help="Which result of --job (default: its first table).")] = None,
    to: Annotated[Target, typer.Option(help="Only this application.")] = Target.all,
    name: Annotated[str | None, typer.Option(help="Table name shown by the receiver.")] = None,
) -> None:
    """Send a table to TOPCAT or Aladin through the SAMP hub on this machine."""
    if (file is None) == (job is None):
        raise fail("give a FILE or --job N (not both): avip samp send FILE | "
                   "avip samp send --job N [--file NAME]")
    if result is not None and job is None:
        raise fail("--file names a result of --job N; for a local table give it as FILE")
    fmt = checked_format(file) if file is not None else ""
    with hub() as samp:
        if file is not None:
            url, label = as_votable(file, fmt).as_uri(), name or file.name
        else:
            assert job is not None
            with connect() as client:
                path = result or first_table(client, job)
                link = client.result_link(job, path, "votable")
            url, label = link.url, name or f"job{job}-{Path(path).stem}"
            console.print(f"link valid until {link.expires_at:%Y-%m-%d %H:%M:%S} UTC: {url}",
                          markup=False, soft_wrap=True)
        sent = broadcast(samp, url, label, to)
    console.print(f"sent {label} to {', '.join(sent)}", markup=False)
