"""A real SAMP hub (astropy's) and a receiving application, for the SAMP tests.

The hub runs in the test's own HOME with its lockfile named by ``$SAMP_HUB``, so a test
never touches (or is confused by) the ``~/.samp`` of a TOPCAT the developer has open.
The receiver is a standard-profile client that subscribes to ``table.load.votable``
the way TOPCAT does and records what it is sent.
"""

from __future__ import annotations

import io
import queue
import threading
import urllib.request
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():  # deprecated in astropy 8 for pyvo.samp (same API)
    warnings.simplefilter("ignore")
    from astropy import samp

MTYPE = "table.load.votable"
WEB_PORT = 21012  # the SAMP Web Profile's fixed port: what a web page speaks to


class AutoConsent(samp.WebProfileDialog):
    """The hub's consent dialog for web clients, answering yes at once (a user clicking
    "allow" in TOPCAT's pop-up); ``asked`` records who asked, from which origin."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def show_dialog(self, samp_name: str, details: Any, client: Any, origin: str) -> None:
        self.asked.append((samp_name, origin))
        self.consent()

    def _poll(self) -> None:
        while not self._stop.wait(0.02):
            self.handle_queue()


@contextmanager
def isolated_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *,
                 web_profile: bool = False) -> Iterator[AutoConsent | None]:
    """A running hub whose lockfile only this test's clients find; with ``web_profile``,
    also listening on 127.0.0.1:21012 for web pages, consenting to each."""
    home = tmp_path / "samp-home"
    home.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("SAMP_HUB", f"std-lockurl:{(home / 'samp.lock').as_uri()}")
    monkeypatch.setattr(samp.conf, "use_internet", False)  # no lookup of google.com
    dialog = AutoConsent() if web_profile else None
    hub = samp.SAMPHubServer(web_profile=web_profile, web_profile_dialog=dialog,
                             web_port=WEB_PORT)
    hub.start()
    if web_profile and hub._web_profile_server is None:  # the port was taken
        hub.stop()
        pytest.skip(f"port {WEB_PORT} (SAMP Web Profile) is in use: close TOPCAT/Aladin")
    if dialog is not None:
        dialog._thread.start()
    try:
        yield dialog
    finally:
        if dialog is not None:
            dialog._stop.set()
        hub.stop()


class Receiver:
    """A SAMP application loading tables, as TOPCAT would: records each message's params."""

    def __init__(self, name: str = "TOPCAT") -> None:
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.client = samp.SAMPIntegratedClient(name=name, description="test receiver")

    def __enter__(self) -> Receiver:
        self.client.connect()
        self.client.bind_receive_notification(MTYPE, self._notified)
        self.client.bind_receive_call(MTYPE, self._called)
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.disconnect()

    def _notified(self, private_key: str, sender_id: str, mtype: str, params: dict[str, Any],
                  extra: dict[str, Any]) -> None:
        self.messages.put(params)

    def _called(self, private_key: str, sender_id: str, msg_id: str, mtype: str,
                params: dict[str, Any], extra: dict[str, Any]) -> None:
        self.messages.put(params)
        self.client.reply(msg_id, {"samp.status": "samp.ok", "samp.result": {}})

    def next(self, timeout_s: float = 30.0) -> dict[str, Any]:
        return self.messages.get(timeout=timeout_s)


def load_votable(url: str) -> Any:
    """The table a receiver would load from ``url`` (fetched with no credentials at all)."""
    from astropy.io.votable import parse_single_table

    with urllib.request.urlopen(url, timeout=30) as answer:
        return parse_single_table(io.BytesIO(answer.read())).to_table()


def finished_job(app: Any, owner: str, results: dict[str, Any]) -> int:
    """A succeeded job of ``owner`` whose result folder holds ``results`` (name → a pandas
    DataFrame written as Parquet/CSV by the name's suffix, or bytes), made straight in the
    store of ``app`` as the dispatcher leaves one."""
    from sqlalchemy import select

    from api.models import User
    from api.space.user_space import JOBS_DIR
    from api.store import jobs as job_store

    with app.state.sessions() as session:
        user = session.scalar(select(User).where(User.name == owner))
        job = job_store.create_job(session, owner=user, avi="cone_search", avi_version="1.0.0",
                                   params={}, cores=1, memory_mb=512)
        job.output_dir = str(app.state.settings.space_root / owner / JOBS_DIR / str(job.id))
        folder = Path(job.output_dir) / "result"
        folder.mkdir(parents=True)
        for name, content in results.items():
            if isinstance(content, bytes):
                (folder / name).write_bytes(content)
            elif name.endswith(".csv"):
                content.to_csv(folder / name, index=False)
            else:
                content.to_parquet(folder / name)
        job_store.transition(session, job=job, to="running")
        job_store.transition(session, job=job, to="succeeded")
        session.commit()
        return int(job.id)
