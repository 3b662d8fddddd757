"""Processes that start together on one empty PostgreSQL store (issue 15: two API
replicas, the scheduler and the relay start at once on a cluster): every one of them
migrates and bootstraps, and all must come up — one operator, one token file, the schema
at head. Found by tests/k8s/test_manifests_run.py: the scheduler died with a unique
violation on "operator" when the API had created it a moment before."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from testing_utils import postgres_schema

STARTERS = 6
#: What each process does at start (cli/service.py), once the file ``go`` appears.
START = """
import sys, time
from pathlib import Path
from api.bootstrap import ensure_operator
from api.db import make_engine, migrate, session_factory
url, data_dir, go = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
engine = make_engine(url)
while not go.exists():
    time.sleep(0.005)
migrate(engine)
print(ensure_operator(session_factory(engine), data_dir, 1) or "")
"""


@pytest.mark.slow
def test_processes_starting_at_once_all_come_up(tmp_path: Path) -> None:
    base = os.environ.get("AVIP_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("no PostgreSQL: AVIP_TEST_POSTGRES_URL is unset (run through `make test`)")
    url, drop = postgres_schema(base)
    go = tmp_path / "go"
    starters = [subprocess.Popen([sys.executable, "-c", START, url, str(tmp_path), str(go)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(STARTERS)]
    time.sleep(3)  # every process imported and connected, waiting for the signal
    go.touch()
    outcomes = []
    for process in starters:
        try:
            out, err = process.communicate(timeout=90)
        except subprocess.TimeoutExpired:  # racing DDL waiting on each other
            process.kill()
            out, err = process.communicate()
            err = "stuck for 90 s\n" + err
        outcomes.append((process.returncode, out.strip(), err.strip()[-600:]))
    try:
        assert [o for o in outcomes if o[0] != 0] == []
        assert [o[1] for o in outcomes if o[1]] == [str(tmp_path / "operator.token")]
        engine = create_engine(url)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM users")).scalar() == 1
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
        engine.dispose()
    finally:
        drop()
