"""``avip space ...``: your files on the platform, and what others shared with you."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.jobs import connect
from cli.output import console

space_app = typer.Typer(help="Your user space: ls, put, get, rm; shared-with-me.",
                        no_args_is_help=True)


@space_app.command("ls")
def ls(path: Annotated[str, typer.Argument(help="Folder in your space.")] = "") -> None:
    """List a folder of your space."""
    with connect() as client:
        listing = client.space_ls(path)
    table = Table("path", "bytes", "modified")
    for entry in listing.data:
        table.add_row(entry.path + ("/" if entry.is_dir else ""),
                      "" if entry.is_dir else f"{entry.size:,d}",
                      datetime.fromtimestamp(entry.modified).strftime("%Y-%m-%d %H:%M"))
    console.print(table)
    console.print(f"used {listing.used_bytes:,d} of {listing.quota_bytes:,d} bytes")


@space_app.command("put")
def put(
    local: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Local file.")],
    path: Annotated[str | None, typer.Argument(help="Destination in your space.")] = None,
) -> None:
    """Upload a file (refused whole, never half-written, when over your quota)."""
    with connect() as client:
        entry = client.space_put(local, path or local.name)
    console.print(f"uploaded {entry.path} ({entry.size:,d} bytes)")


@space_app.command("get")
def get(
    path: Annotated[str, typer.Argument(help="File in your space.")],
    dest: Annotated[Path | None, typer.Argument(help="Local file.")] = None,
) -> None:
    """Download a file of your space."""
    target = dest or Path(Path(path).name)
    with connect() as client:
        client.space_get(path, target)
    console.print(f"saved {target}")


@space_app.command("rm")
def rm(path: Annotated[str, typer.Argument(help="File or folder in your space.")]) -> None:
    """Delete a file or folder of your space."""
    with connect() as client:
        client.space_rm(path)
    console.print(f"deleted {path}")


@space_app.command("shared")
def shared() -> None:
    """What others shared with you (use space://shared/ID/PATH as an AVI input)."""
    with connect() as client:
        listing = client.shared_with_me()
    table = Table("id", "owner", "kind", "target")
    for item in listing.data:
        table.add_row(str(item.id), item.owner, item.kind, item.target)
    console.print(table)
