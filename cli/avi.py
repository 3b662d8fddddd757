"""``avip avi list|run|new``: AVIs in standalone mode.

``run`` validates the parameters here (exit code 2 and the field's allowed
range on bad input), then starts the same runner spark-submit would
(``python -m spark_jobs.runner``) and draws its ``progress.json`` as a bar.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from avi_plugins.params import ParamsError, parse_cli_params
from avi_plugins.registry import BrokenAVIError, UnknownAVIError, get_avi, list_avis
from avi_plugins.scaffold import scaffold
from cli.output import console, errors, fail
from spark_jobs.progress import read_progress

avi_app = typer.Typer(help="Run, list and create AVIs (analysis plugins).", no_args_is_help=True)


@avi_app.command("list")
def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Installed AVIs; broken plugins are listed with their error."""
    found = list_avis()
    if as_json:
        console.print_json(json.dumps([vars(item) for item in found], default=list))
        return
    table = Table("name", "version", "status", "title / error")
    for item in found:
        if item.broken:
            table.add_row(item.name, "-", "[red]broken[/red]", item.error)
        else:
            table.add_row(item.name, item.version, "ok", item.title)
    console.print(table)


@avi_app.command("run")
def run_command(
    name: Annotated[str, typer.Argument(help="AVI name (see `avip avi list`).")],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="KEY=VALUE")] = None,
    params_file: Annotated[Path | None, typer.Option(help="JSON file of parameters.")] = None,
    output: Annotated[Path | None, typer.Option(help="Job folder (./avi-runs/...).")] = None,
    master: Annotated[str | None, typer.Option(help="Spark master, e.g. local[2].")] = None,
    pin: Annotated[list[str] | None, typer.Option(help="TABLE=VERSION to pin.")] = None,
    catalogue_root: Annotated[str | None, typer.Option(help="Lakehouse root.")] = None,
    cache: Annotated[Path | None, typer.Option(help="Task output cache folder.")] = None,
) -> None:
    """Run an AVI locally through the job runner, with a progress bar."""
    try:
        avi = get_avi(name)
        raw = json.loads(params_file.read_text()) if params_file else {}
        raw.update(parse_cli_params(param or [], avi.params_schema()))
        params = avi.parse_params(raw)
    except (UnknownAVIError, BrokenAVIError, ParamsError, OSError, ValueError) as error:
        raise fail(str(error)) from None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    job_dir = (output or Path("avi-runs") / f"{name}-{stamp}").resolve()
    job_dir.mkdir(parents=True, exist_ok=True)
    params_path = job_dir / "params.json"
    params_path.write_text(params.model_dump_json(indent=2))
    argv = [sys.executable, "-m", "spark_jobs.runner", "--avi", name, "--params", str(params_path),
            "--output", str(job_dir)]
    for flag, value in (("--master", master), ("--catalogue-root", catalogue_root),
                        ("--cache", cache)):
        if value:
            argv += [flag, str(value)]
    for item in pin or []:
        argv += ["--pin", item]
    log_path = job_dir / "runner.log"
    with open(log_path, "w") as log, Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(), console=console, transient=False,
    ) as bar:
        task = bar.add_task(f"{name}: starting", total=1.0)
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        while process.poll() is None:
            time.sleep(0.3)
            snapshot = read_progress(job_dir / "progress.json")
            if snapshot:
                bar.update(task, completed=snapshot.fraction,
                           description=f"{name}: {snapshot.message}")
        snapshot = read_progress(job_dir / "progress.json")
        if process.returncode == 0:
            bar.update(task, completed=1.0, description=f"{name}: done")
    if process.returncode != 0:
        error_file = job_dir / "error.txt"
        detail = error_file.read_text()[-3000:] if error_file.exists() else log_path.read_text()
        errors.print(detail, markup=False)
        raise fail(f"job failed (exit {process.returncode}); see {job_dir}", process.returncode)
    console.print(f"result: {job_dir / 'result'}")


@avi_app.command("new")
def new_command(
    name: Annotated[str, typer.Argument(help="lower_snake_case AVI name.")],
    directory: Annotated[Path, typer.Option("--dir", help="Where to create it.")] = Path("."),
    title: Annotated[str | None, typer.Option(help="Human title.")] = None,
) -> None:
    """Create a working AVI package (with a passing test and a README)."""
    try:
        target = scaffold(name, directory, title)
    except (ValueError, FileExistsError) as error:
        raise fail(str(error)) from None
    console.print(f"created {target}\nnext: pip install -e {target} && pytest {target / 'tests'}")
