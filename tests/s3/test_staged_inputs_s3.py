"""Inputs staged from an S3 user space live exactly as long as a job needs them (devstack MinIO).

The real app, job store and dispatcher, with real spark-submit drivers: the
crossmatch AVI has no Gaia table to read here, so its jobs fail — failing is
finishing, which is all the release rule looks at. A staged copy is kept while a
queued or running job names it, also across two jobs sharing it, and removed by
the tick after the last one finished; copies no job names (a submission refused
after staging, a crash) are removed too, but never while a submission holds the
folder; submissions racing a release loop always find their job's copy (without the
submission's lock that race loses a copy within a few submissions).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from testing_utils import launched_params, new_user, submit_crossmatch

from api.bootstrap import ensure_operator
from api.main import create_app
from api.models import Job
from api.scheduling.dispatcher import Dispatcher
from api.space.staged_inputs import held_for_submission, staging_dir
from config.s3 import arrow_filesystem
from config.settings import Settings

TABLE = b"RAJ2000,DEJ2000\n150.0,20.0\n150.1,20.1\n"


@dataclass
class Platform:
    client: TestClient
    settings: Settings
    operator: dict[str, str]

    @property
    def dispatcher(self) -> Dispatcher:
        return self.client.app.state.dispatcher  # type: ignore[attr-defined,no-any-return]

    def user(self, name: str) -> dict[str, str]:
        """A scientist and their auth headers."""
        return new_user(self.client, self.operator, name)

    def crossmatch(self, headers: dict[str, str], table_path: str, radius: float = 2.0):  # type: ignore[no-untyped-def]
        return submit_crossmatch(self.client, headers, table_path, radius)

    def state(self, job_id: int) -> str:
        with self.client.app.state.sessions() as session:  # type: ignore[attr-defined]
            job = session.get(Job, job_id)
            assert job is not None
            return job.state

    def copies(self, user: str) -> list[str]:
        """What lies in ``user``'s staging folder (digest folders, leftovers)."""
        folder = staging_dir(self.settings.space_root, user)
        return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


@pytest.fixture
def platform(s3_settings: Settings, tmp_path: Path) -> Iterator[Platform]:
    prefix = f"test-staged-{uuid.uuid4().hex[:12]}"
    # 3 cores: one crossmatch job (2 cores) runs, a second one waits in the queue
    settings = s3_settings.model_copy(update={
        "data_dir": tmp_path / "data", "user_space_backend": "s3", "s3_space_prefix": prefix,
        "cluster_cores": 3, "cluster_memory_mb": 16384})
    with TestClient(create_app(settings)) as client:  # the real AVI registry: crossmatch
        token = ensure_operator(client.app.state.sessions, settings.data_dir, 1)  # type: ignore[attr-defined]
        assert token is not None
        yield Platform(client, settings, {"Authorization": f"Bearer {token.read_text().strip()}"})
    arrow_filesystem(settings).delete_dir(f"{settings.s3_bucket}/{prefix}")


def input_path(platform: Platform, response) -> Path:  # type: ignore[no-untyped-def]
    """The local copy the job of ``response`` (a submission) reads as its table."""
    return Path(launched_params(platform.client, response.json()["id"])["table_path"])


def test_copy_is_kept_while_a_job_names_it_and_released_after_the_last(platform: Platform) -> None:
    bob = platform.user("bob")
    client, dispatcher = platform.client, platform.dispatcher
    assert client.put("/space/files/cat/stars.csv", headers=bob, content=TABLE).status_code == 201
    first = platform.crossmatch(bob, "space://me/cat/stars.csv")
    second = platform.crossmatch(bob, "space://me/cat/stars.csv")
    assert first.status_code == second.status_code == 201, (first.text, second.text)
    staged = input_path(platform, first)
    assert input_path(platform, second) == staged  # one copy for both jobs
    assert staged.read_bytes() == TABLE and platform.copies("bob") == [staged.parent.name]
    one, two = first.json()["id"], second.json()["id"]

    assert dispatcher.tick().started == [one]  # the second waits: no room left
    assert (platform.state(one), platform.state(two)) == ("running", "queued")
    assert staged.read_bytes() == TABLE

    assert client.post(f"/jobs/{one}/cancel", headers=bob).status_code == 200
    report = dispatcher.tick()  # stops the first job's driver, then starts the second
    assert report.finished == [one] and report.started == [two]
    assert platform.state(one) == "cancelled" and platform.state(two) == "running"
    assert staged.read_bytes() == TABLE  # the first job finished; the second still names it

    deadline = time.monotonic() + 300
    while platform.state(two) == "running":
        assert time.monotonic() < deadline, "the second job's driver never exited"
        dispatcher.tick()
        if platform.state(two) == "running":
            assert staged.read_bytes() == TABLE
            time.sleep(0.5)
    assert platform.state(two) in ("succeeded", "failed")
    assert not staged.exists() and platform.copies("bob") == []

    # a rerun resolves its space:// input again, as a new submission: staged anew
    r = client.post(f"/jobs/{two}/rerun", headers=bob)
    assert r.status_code == 201, r.text
    assert input_path(platform, r) == staged
    assert staged.read_bytes() == TABLE
    # the same input submitted again is staged again, for the new job
    again = platform.crossmatch(bob, "space://me/cat/stars.csv")
    assert again.status_code == 201 and input_path(platform, again) == staged
    assert staged.read_bytes() == TABLE


def test_copies_no_job_names_are_released_unless_a_submission_holds_them(
    platform: Platform,
) -> None:
    bob, alice = platform.user("bob"), platform.user("alice")
    client, dispatcher, settings = platform.client, platform.dispatcher, platform.settings
    client.put("/space/files/cat/stars.csv", headers=bob, content=TABLE)
    client.put("/space/files/stars.csv", headers=alice, content=TABLE + b"150.2,20.2\n")
    # a submission refused after staging leaves a copy no job names
    refused = platform.crossmatch(bob, "space://me/cat/stars.csv", radius=600.0)
    assert refused.status_code == 422 and "radius_arcsec" in refused.text, refused.text
    assert len(platform.copies("bob")) == 1
    # so does a crash: mid-staging (a temporary folder) and after staging (a digest folder)
    bob_staging = staging_dir(settings.space_root, "bob")
    (bob_staging / ".staging-crashed").mkdir()
    (bob_staging / ".staging-crashed" / "half.csv").write_bytes(TABLE[:10])
    (bob_staging / ("0" * 64)).mkdir()
    (bob_staging / ("0" * 64) / "stars.csv").write_bytes(TABLE)
    assert len(platform.copies("bob")) == 3
    # alice's job is queued, then running: her copy is kept throughout
    queued = platform.crossmatch(alice, "space://me/stars.csv")
    assert queued.status_code == 201, queued.text
    kept = input_path(platform, queued)

    with held_for_submission(settings, "bob"):  # a submission of bob's is staging now
        assert dispatcher.tick().started == [queued.json()["id"]]
        assert len(platform.copies("bob")) == 3  # nothing of bob's touched meanwhile
    assert kept.is_file()

    dispatcher.tick()  # the submission is over: the next tick releases the leftovers
    assert platform.copies("bob") == []
    assert platform.copies("alice") == [kept.parent.name] and kept.is_file()
    client.post(f"/jobs/{queued.json()['id']}/cancel", headers=alice)
    dispatcher.tick()
    assert platform.copies("alice") == []


def test_releasing_while_submissions_stage_never_loses_a_queued_jobs_copy(
    platform: Platform,
) -> None:
    """Submissions of one input race a release loop: every queued job finds its copy."""
    from api.space.staged_inputs import release_unused

    bob = platform.user("bob")
    platform.client.put("/space/files/stars.csv", headers=bob, content=TABLE)
    staging = staging_dir(platform.settings.space_root, "bob")
    sessions = platform.client.app.state.sessions  # type: ignore[attr-defined]
    stop, releases = threading.Event(), []

    def release_loop() -> None:
        while not stop.is_set():
            with sessions() as session:
                removed = release_unused(session, staging)
            releases.append(removed)

    releaser = threading.Thread(target=release_loop)
    releaser.start()
    try:
        for _ in range(40):
            r = platform.crossmatch(bob, "space://me/stars.csv")
            assert r.status_code == 201, r.text
            assert input_path(platform, r).read_bytes() == TABLE
            platform.client.post(f"/jobs/{r.json()['id']}/cancel", headers=bob)
    finally:
        stop.set()
        releaser.join()
    assert any(releases), "the release loop never removed a copy: no race was exercised"
    assert None in releases, "the release loop never met a submission holding the folder"
