"""``avip`` commands for platform users: login, AVIs, jobs, results, sharing, serve.

They talk to the API through :class:`api.client.AvipClient` (never the database),
so they work the same against a laptop or the production service. Bad input
exits with code 2 and the server's explanation; a failed job exits with 1.
"""

from __future__ import annotations

import json
import os
import time
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from api.client import ApiError, AvipClient
from api.schemas import JobPublic
from avi_plugins.params import ParamsError, allowed_values, parse_cli_params
from cli.output import EXIT_BAD_INPUT, EXIT_FAILED, console, fail
from config.settings import get_settings

FINAL = ("succeeded", "failed", "cancelled")


def config_path() -> Path:
    return get_settings().client_config.expanduser()


def read_config() -> dict[str, str]:
    path = config_path()
    if not path.is_file():
        return {}
    return {k: str(v) for k, v in tomllib.loads(path.read_text()).items()}


def write_config(url: str, token: str) -> Path:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(f"url = {json.dumps(url)}\ntoken = {json.dumps(token)}\n")
    return path


@contextmanager
def connect() -> Iterator[AvipClient]:
    """A client from the login config; API errors become exit codes with the reason."""
    config = read_config()
    url = config.get("url") or get_settings().api_url
    try:
        with AvipClient(url, config.get("token")) as client:
            yield client
    except ApiError as error:
        code = EXIT_BAD_INPUT if error.status < 500 else EXIT_FAILED
        if error.status == 401:
            raise fail(f"{error}; log in with: avip login --url URL --token TOKEN", code) from None
        raise fail(str(error), code) from None
    except httpx.TransportError as error:
        raise fail(f"cannot reach the API at {url}: {error}", EXIT_FAILED) from None


def login(
    token: Annotated[str, typer.Option(prompt=True, hide_input=True, help="API token.")],
    url: Annotated[str | None, typer.Option(help="API URL (default: settings api_url).")] = None,
) -> None:
    """Check a token against the API and keep it (file mode 0600) for later commands."""
    url = url or get_settings().api_url
    try:
        with AvipClient(url, token) as client:
            me = client.me()
    except ApiError as error:
        raise fail(f"login refused: {error}") from None
    path = write_config(url, token)
    console.print(f"logged in as [bold]{me.name}[/bold] ({', '.join(me.roles)}); saved to {path}")


def avis() -> None:
    """List the AVIs you can run."""
    with connect() as client:
        listing = client.avis()
    table = Table("name", "version", "title", "summary")
    for avi in listing.data:
        table.add_row(avi.name, avi.version, avi.title, avi.summary)
    console.print(table)
    for broken in listing.broken:
        console.print(f"[yellow]broken:[/yellow] {broken['name']}: {broken['error']}")


def _describe_params(schema: dict[str, Any]) -> str:
    lines = []
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        kind = prop.get("type") or "/".join(v.get("type", "?") for v in prop.get("anyOf", []))
        extra = allowed_values(schema, name)
        default = "required" if name in required else f"default {prop.get('default')!r}"
        lines.append(f"  --param {name}=<{kind}>  {default}"
                     f"{'; ' + extra if extra else ''}  {prop.get('description', '')}")
    return "\n".join(lines)


def submit(
    avi: Annotated[str, typer.Argument(help="AVI name (see `avip avis`).")],
    param: Annotated[list[str] | None, typer.Option("--param", "-p",
                                                    help="KEY=VALUE, repeatable.")] = None,
    version: Annotated[str | None, typer.Option(help="Refuse other versions.")] = None,
    priority: Annotated[int, typer.Option(min=-10, max=10, help="Orders your own jobs.")] = 0,
    params_help: Annotated[bool, typer.Option("--params-help",
                                              help="List this AVI's parameters.")] = False,
    watch_it: Annotated[bool, typer.Option("--watch", help="Follow it to the end.")] = False,
) -> None:
    """Submit a job; parameters are typed from the AVI's schema."""
    with connect() as client:
        detail = client.avi(avi, version)
        if params_help:
            console.print(f"{detail.name} {detail.version}: {detail.summary}")
            console.print(_describe_params(detail.params_schema), markup=False)
            return
        try:
            params = parse_cli_params(param or [], detail.params_schema)
        except ParamsError as error:
            raise fail(str(error)) from None
        job = client.submit(avi, params, version=version, priority=priority)
    console.print(f"job [bold]{job.id}[/bold] queued ({job.avi} {job.avi_version}, "
                  f"{job.cores} cores, {job.memory_mb} MB)")
    if watch_it:
        watch(job.id)


def jobs(
    state: Annotated[str | None, typer.Option(help="queued, running, succeeded, ...")] = None,
    avi: Annotated[str | None, typer.Option(help="Only this AVI.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    everyone: Annotated[bool, typer.Option("--all", help="Every user's jobs (operators).")] = False,
) -> None:
    """Your jobs, newest first (--all: every user's, for operators)."""
    with connect() as client:
        page = client.jobs(state=state, avi=avi, limit=limit, offset=offset, everyone=everyone)
    table = Table("id", "owner", "avi", "state", "progress", "queue", "submitted", "reason")
    for job in page.data:
        table.add_row(str(job.id), job.owner, f"{job.avi} {job.avi_version}", job.state,
                      f"{job.progress.fraction:.0%}", str(job.queue_position or ""),
                      job.submitted_at.strftime("%Y-%m-%d %H:%M:%S"), (job.reason or "")[:60])
    console.print(table)
    console.print(f"{len(page.data)} of {page.count}")


def follow(client: AvipClient, job_id: int, interval: float = 1.0) -> JobPublic:
    """Poll a job with a live progress bar until it ends; returns its final state. Polls
    every 0.1 s at first, backing off to ``interval``: a warm-lane job ends in about a
    second, and a fixed 1 s poll would double what its user waits."""
    with Progress(
        TextColumn("job {task.fields[job]} ({task.fields[lane]} lane)"), BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=console,
    ) as bar:
        job = client.job(job_id)
        task = bar.add_task("job", total=1.0, job=job_id, status=job.state, lane=job.lane)
        pause = min(0.1, interval)
        while True:
            status = job.state
            if job.state == "queued" and job.queue_position:
                status = f"queued (position {job.queue_position})"
            elif job.state == "running":
                status = job.progress.message or "running"
            bar.update(task, completed=job.progress.fraction, status=status)
            if job.state in FINAL:
                return job
            time.sleep(pause)
            pause = min(interval, pause * 1.5)
            job = client.job(job_id)


def watch(
    job_id: Annotated[int, typer.Argument(help="Job id.")],
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between polls.")] = 1.0,
) -> None:
    """Follow a job with a live progress bar; exit 0 if it succeeds, 1 otherwise."""
    with connect() as client:
        job = follow(client, job_id, interval)
    if job.state != "succeeded":
        raise fail(f"job {job_id} {job.state}: {job.reason or ''}", EXIT_FAILED)
    console.print(f"job {job_id} succeeded in {job.run_seconds or 0:.1f} s "
                  f"({job.backend or job.lane} lane)")


def results(job_id: Annotated[int, typer.Argument(help="Job id.")]) -> None:
    """List a job's result files and the formats each can be downloaded as."""
    with connect() as client:
        listing = client.results(job_id)
    table = Table("path", "bytes", "formats")
    for item in listing.data:
        table.add_row(item.path, f"{item.size:,d}", ", ".join(item.formats))
    console.print(table)


def download(
    job_id: Annotated[int, typer.Argument(help="Job id.")],
    path: Annotated[str, typer.Argument(help="Result path (see `avip results`).")],
    dest: Annotated[Path | None, typer.Option("--to", help="Local file.")] = None,
    fmt: Annotated[str | None, typer.Option("--format",
                                            help="parquet, csv, votable or fits.")] = None,
) -> None:
    """Download one result, optionally converted."""
    target = dest or Path(Path(path).stem + (f".{fmt}" if fmt else Path(path).suffix))
    with connect() as client:
        client.download_result(job_id, path, target, fmt)
    console.print(f"saved {target}")


def cancel(job_id: Annotated[int, typer.Argument(help="Job id.")]) -> None:
    """Cancel a queued or running job."""
    with connect() as client:
        job = client.cancel(job_id)
    console.print(f"job {job_id}: {job.state}{' (stopping)' if job.cancel_requested else ''}")


def logs(job_id: Annotated[int, typer.Argument(help="Job id.")]) -> None:
    """Print a job's driver log."""
    with connect() as client:
        typer.echo(client.logs(job_id))


def rerun(job_id: Annotated[int, typer.Argument(help="Job id.")]) -> None:
    """Queue a job again with the same AVI version, params and table versions."""
    with connect() as client:
        job = client.rerun(job_id)
    console.print(f"job [bold]{job.id}[/bold] queued (re-run of {job_id}, pins {job.pins})")


def share(
    path: Annotated[str | None, typer.Option(help="A file or folder of your space.")] = None,
    job: Annotated[int | None, typer.Option(help="A job whose results to share.")] = None,
    user: Annotated[str | None, typer.Option(help="Recipient.")] = None,
    group: Annotated[str | None, typer.Option(help="Recipient group.")] = None,
) -> None:
    """Share a file or a job's results read-only; `avip space shared` lists what you received."""
    with connect() as client:
        made = client.share(path=path, job_id=job, user=user, group=group)
    console.print(f"share {made.id}: {made.kind} {made.target} → {made.user or made.group}")


COMMANDS: dict[str, Callable[..., None]] = {
    "login": login, "avis": avis, "submit": submit, "jobs": jobs, "watch": watch,
    "results": results, "download": download, "cancel": cancel, "logs": logs,
    "rerun": rerun, "share": share,
}


def register(app: typer.Typer) -> None:
    """Add the job commands to the root app."""
    for name, command in COMMANDS.items():
        app.command(name)(command)
