"""Fixtures for the Zeppelin tests: a small synthetic lakehouse the notes read, and a
logged-in client for the devstack's real Zeppelin server."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from zeppelin_notes.client import ZeppelinClient

SKY_ROWS = 40_000  # ten injected clusters; big enough for the clustering note


@pytest.fixture(scope="session")
def note_lakehouse(spark, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The lakehouse the notes read: the Zeppelin server's (devstack) or a temporary one.

    The synthetic sky is written once; an existing one is reused.
    """
    from lakehouse.ingest import ingest_synthetic

    root = os.environ.get("AVIP_TEST_ZEPPELIN_LAKEHOUSE") or str(
        tmp_path_factory.mktemp("note-lakehouse")
    )
    if not (Path(root) / "synthetic_members" / "_delta_log").is_dir():
        ingest_synthetic(spark, root, rows=SKY_ROWS, seed=7)
    return root


@pytest.fixture(scope="session")
def zeppelin_url() -> str:
    url = os.environ.get("AVIP_TEST_ZEPPELIN_URL")
    if not url:
        pytest.skip("no Zeppelin server: run through `make test` (devstack starts it)")
    return url


@pytest.fixture(scope="session")
def zeppelin_users(zeppelin_url: str) -> list[tuple[str, str]]:
    pairs = os.environ.get("AVIP_TEST_ZEPPELIN_USERS", "")
    return [tuple(p.split(":", 1)) for p in pairs.split(",") if ":" in p]  # type: ignore[misc]


@pytest.fixture()
def zeppelin(zeppelin_url: str) -> ZeppelinClient:
    client = ZeppelinClient(zeppelin_url)
    client.login(os.environ["AVIP_TEST_ZEPPELIN_USER"], os.environ["AVIP_TEST_ZEPPELIN_PASSWORD"])
    return client


@pytest.fixture()
def import_note(zeppelin: ZeppelinClient) -> Iterator[Callable[..., str]]:
    """Import a note for one test and delete it afterwards."""
    created: list[str] = []

    def _import(note: dict, path: str) -> str:
        note_id = zeppelin.import_note(note, path=path)
        created.append(note_id)
        return note_id

    yield _import
    for note_id in created:
        if any(n["id"] == note_id for n in zeppelin.list_notes()):
            zeppelin.delete_note(note_id)


class NotesApi:
    """The real avip API (bundled AVIs, scheduler on) under uvicorn on a free loopback port,
    reading the notes' lakehouse; ``token_file`` holds a scientist's token."""

    def __init__(self, lakehouse: str, data_dir: Path) -> None:
        import socket
        import threading

        import uvicorn

        from api.avis import RegistryCatalogue
        from api.bootstrap import ensure_operator
        from api.main import create_app
        from api.settings import Settings

        self.settings = Settings(data_dir=data_dir, lakehouse_uri=lakehouse, cluster_cores=2,
                                 cluster_memory_mb=4096, spark_master="local[2]")
        self.app = create_app(self.settings, catalogue=RegistryCatalogue(), run_scheduler=True)
        operator_file = ensure_operator(self.app.state.sessions, data_dir, 1)
        assert operator_file is not None
        self.operator_token = operator_file.read_text().strip()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.token_file = data_dir / "scientist.token"

    def __enter__(self) -> NotesApi:
        import time

        from api.client import AvipClient

        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        with AvipClient(self.url, self.operator_token) as operator:
            operator.create_user("explorer", ["scientist"])
            self.token = operator.issue_token("explorer", "notes").token
        self.token_file.write_text(self.token + "\n")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)

    def note_params(self) -> dict[str, str]:
        """The API note's variables (z.textbox form values) pointing here."""
        return {"api_url": self.url, "api_token_file": str(self.token_file)}


@pytest.fixture(scope="session")
def notes_api(note_lakehouse: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NotesApi]:
    with NotesApi(note_lakehouse, tmp_path_factory.mktemp("notes-api")) as api:
        yield api

