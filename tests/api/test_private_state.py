"""The service's state is its own (issue 14, defect 9): private modes on the store, the
data folder, spaces and the operator's token, fixed at start; a driver inherits only an
allow-listed environment."""

from __future__ import annotations

import os
import signal
import stat
import time
from pathlib import Path

from fastapi.testclient import TestClient
from testing_utils import new_user

from api.bootstrap import TOKEN_FILE, ensure_operator
from api.main import create_app
from config.settings import Settings
from spark_jobs.backends import driver_settings
from spark_jobs.backends.processes import LocalBackend, driver_environment
from spark_jobs.backends.protocol import JobLaunch


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_state_is_private_and_wrong_modes_are_fixed_at_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = Settings(data_dir=data)
    os.umask(0o022)  # as a service started from an ordinary shell
    with TestClient(create_app(settings)) as client:
        token = ensure_operator(client.app.state.sessions, data, 1)  # type: ignore[attr-defined]
        assert token is not None
        alice = new_user(client, {"Authorization": f"Bearer {token.read_text().strip()}"},
                         "alice")
        assert client.put("/space/files/notes/a.csv", headers=alice,
                          content=b"ra\n1\n").status_code == 201
    upload = settings.space_root / "alice" / "notes" / "a.csv"
    for path in (data, settings.space_root, settings.space_root / "alice", upload.parent):
        assert _mode(path) & 0o077 == 0, (path, oct(_mode(path)))
    for path in (data / "avip.db", token, upload):
        assert _mode(path) & 0o077 == 0, (path, oct(_mode(path)))

    # an earlier start under another umask (or a hand copy) left them readable: fixed
    os.umask(0o022)
    for path in (data, settings.space_root):
        path.chmod(0o755)
    for path in (data / "avip.db", data / TOKEN_FILE):
        path.chmod(0o644)
    create_app(settings)
    assert _mode(data) == _mode(settings.space_root) == 0o700
    assert _mode(data / "avip.db") == _mode(data / TOKEN_FILE) == 0o600


def test_a_driver_inherits_no_secret_of_the_service(tmp_path: Path) -> None:
    service = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "JAVA_HOME": "/opt/java",
               "AVIP_DATABASE_URL": "postgresql://avip:hunter2@db/avip",
               "AVIP_S3_SECRET_KEY": "s3-secret", "AWS_SECRET_ACCESS_KEY": "aws-secret",
               "PGPASSWORD": "hunter2", "AVIP_ZEPPELIN_PASSWORD": "zep"}
    local = Settings(data_dir=tmp_path, s3_access_key="key", s3_secret_key="s3-secret")  # type: ignore[arg-type]
    env = driver_environment(service, driver_settings(local))
    assert "hunter2" not in str(env) and "secret" not in str(env) and "zep" not in env.values()
    assert env["PATH"] == service["PATH"] and env["JAVA_HOME"] == "/opt/java"
    assert env["AVIP_DATA_DIR"] == str(tmp_path)
    # the S3 keys go only to a driver whose catalogue is on S3
    on_s3 = Settings(data_dir=tmp_path, lakehouse_uri="s3a://bucket/catalogue",
                     s3_access_key="key", s3_secret_key="s3-secret")  # type: ignore[arg-type]
    env = driver_environment(service, driver_settings(on_s3))
    assert env["AVIP_S3_SECRET_KEY"] == "s3-secret" and "AVIP_DATABASE_URL" not in env
    assert "AWS_SECRET_ACCESS_KEY" not in env and "PGPASSWORD" not in env


def test_a_started_driver_process_has_that_environment(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AVIP_DATABASE_URL", "postgresql://avip:hunter2@db/avip")
    monkeypatch.setenv("AVIP_TOKEN", "a-users-token")
    backend = LocalBackend(jars_dir=Settings().jars_dir, settings_env={"AVIP_DATA_DIR": "/d"})
    launch = JobLaunch(job_id=1, avi="cone_search", avi_version="1", params={},
                       output_dir=tmp_path / "job", cores=1, memory_mb=512, resources={},
                       pins={}, catalogue_root=None, cache_dir=None)
    environ: list[bytes] = []
    for _attempt in range(3):  # a driver that already ended (a zombie) shows no environment
        driver = backend.launch(launch)
        try:
            environ = [e for e in Path(f"/proc/{driver.pid}/environ").read_bytes().split(b"\0")
                       if e]
        except FileNotFoundError:  # reaped already
            environ = []
        finally:
            try:
                os.killpg(driver.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            time.sleep(0.1)
        if environ:
            break
    assert environ, "the driver ended before its environment could be read, three times"
    names = {entry.split(b"=", 1)[0].decode() for entry in environ}
    assert "AVIP_DATABASE_URL" not in names and "AVIP_TOKEN" not in names
    assert {"PATH", "AVIP_DATA_DIR", "PYSPARK_PYTHON"} <= names
