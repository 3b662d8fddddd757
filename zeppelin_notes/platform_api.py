"""Reach the avip REST API from a note: where it is, which token, and a job's progress.

A note names the API with two variables, Zeppelin dynamic forms read with
``z.textbox`` (text boxes in the UI, run params through the REST API or the
local runner's ``--param``): ``api_url`` and ``api_token_file``. Their
defaults come from the platform settings, so a scientist who ran
``avip login`` needs to type nothing; the token itself never appears in the
note (notes are shared and exported, tokens must not be).
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Callable
from pathlib import Path

from api.client import AvipClient
from api.schemas import JobPublic
from config.settings import get_settings

FINAL_STATES = ("succeeded", "failed", "cancelled")


def default_api_url() -> str:
    """The URL ``avip login`` saved, else the settings' ``api_url``."""
    return str(_login_config().get("url") or get_settings().api_url)


def default_token_file() -> str:
    """The file ``avip login`` keeps its token in (the settings' ``client_config``)."""
    return str(get_settings().client_config.expanduser())


def read_token(path: str | Path) -> str:
    """The token in ``path``: a bare token file, or the TOML config of ``avip login``.

    >>> import tempfile, os
    >>> with tempfile.NamedTemporaryFile("w", suffix=".token", delete=False) as f:
    ...     _ = f.write("abc123\\n")
    >>> read_token(f.name)
    'abc123'
    >>> os.unlink(f.name)
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(
            f"no API token file at {file}: run `avip login`, or set the note's "
            "api_token_file to a file holding your token"
        )
    text = file.read_text().strip()
    try:
        token = tomllib.loads(text).get("token")
    except tomllib.TOMLDecodeError:
        token = None
    token = token or text
    if not token or any(c.isspace() for c in token):
        raise ValueError(f"{file} holds no single API token (nor a `token = \"...\"` line)")
    return token


def connect(api_url: str, token_file: str | Path) -> AvipClient:
    """A client for ``api_url`` authenticated with the token kept in ``token_file``."""
    return AvipClient(api_url, read_token(token_file))


def watch_job(
    client: AvipClient, job_id: int, *, poll_s: float = 1.0, timeout_s: float = 1800,
    report: Callable[[str], None] = print,
) -> JobPublic:
    """Poll a job until it ends, reporting each change of state or progress; return it.

    Raises ``TimeoutError`` (the job keeps running) after ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    last = None
    while True:
        job = client.job(job_id)
        progress = job.progress
        seen = (job.state, progress.tasks_done, progress.message)
        if seen != last:
            where = f"queue position {job.queue_position}" if job.state == "queued" else (
                f"{progress.fraction:4.0%} ({progress.tasks_done}/{progress.tasks_total} tasks)"
                f"{' ' + progress.message if progress.message else ''}")
            report(f"job {job.id} {job.state:<9} {where}")
            last = seen
        if job.state in FINAL_STATES:
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {job.state} after {timeout_s:.0f} s")
        time.sleep(poll_s)


def _login_config() -> dict[str, object]:
    path = get_settings().client_config.expanduser()
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError:
        return {}
