"""The fault campaign: real services from the devstack stopped, killed or starved while
the platform works, and what was lost or duplicated counted. Each test writes its
figures to ``out/faults/<name>.json``; docs/reliability.md holds the table of the last
run. Stopping shared services needs AVIP_TEST_SERVICES_RESTARTABLE=1 (`make test`)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from testing_utils import write_figures

REPO = Path(__file__).resolve().parents[2]


def _devstack(service: str, command: str) -> None:
    env = {**os.environ, "VENV_BIN": str(REPO / ".venv" / "bin"),
           "DEVSTACK_DIR": os.environ.get("AVIP_TEST_DEVSTACK_DIR", str(REPO / ".devstack"))}
    done = subprocess.run(["bash", str(REPO / f"devstack/services/{service}.sh"), command],
                          env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, f"devstack {service} {command}: {done.stdout}{done.stderr}"


@pytest.fixture
def devstack() -> Callable[[str, str], None]:
    """``devstack(service, "down" | "up")``: stop or start one shared service."""
    if not os.environ.get("AVIP_TEST_SERVICES_RESTARTABLE"):
        pytest.skip("stopping shared services needs AVIP_TEST_SERVICES_RESTARTABLE=1 "
                    "(set by `make test`)")
    return _devstack


@pytest.fixture
def record_figures(request: pytest.FixtureRequest) -> Callable[[dict], None]:
    """Write this test's figures (fault, load, lost, duplicated...) for the reliability
    table."""

    def record(figures: dict) -> None:
        write_figures(request.node.name.removeprefix("test_"), figures)

    return record
