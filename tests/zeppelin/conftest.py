"""Fixtures for the Zeppelin tests: a small synthetic lakehouse the notes read, and a
logged-in client for the devstack's real Zeppelin server."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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


@dataclass
class NotesApi:
    """The real avip API (bundled AVIs, scheduler on) on a free loopback port, reading the
    notes' lakehouse; ``token_file`` holds a scientist's token."""

    url: str
    token: str
    token_file: Path

    def note_params(self) -> dict[str, str]:
        """The API note's variables (z.textbox form values) pointing here."""
        return {"api_url": self.url, "api_token_file": str(self.token_file)}


@pytest.fixture(scope="session")
def notes_api(note_lakehouse: str, tmp_path_factory: pytest.TempPathFactory,
              serve_api) -> Iterator[NotesApi]:  # type: ignore[no-untyped-def]
    from api.avis import RegistryCatalogue
    from config.settings import Settings

    data_dir = tmp_path_factory.mktemp("notes-api")
    settings = Settings(data_dir=data_dir, lakehouse_uri=note_lakehouse, cluster_cores=2,
                        cluster_memory_mb=4096, spark_master="local[2]")
    with serve_api(settings, catalogue=RegistryCatalogue(), run_scheduler=True) as api:
        token = api.make_user("explorer", ["scientist"], label="notes")
        token_file = data_dir / "scientist.token"
        token_file.write_text(token + "\n")
        yield NotesApi(api.url, token, token_file)
