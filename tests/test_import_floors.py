"""The floors of ARCHITECTURE.md hold: every import points down (import-linter).

The contracts live in ``pyproject.toml``; ``make lint`` runs the same command.
The second test shows the check has teeth: a scratch module on a low floor
that imports a higher one, in a copy of the packages, breaks the contract.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
PACKAGES = (
    "config", "lakehouse", "avi_plugins", "spark_jobs", "api",
    "panel_apps", "zeppelin_notes", "cli", "benchmarks",
)


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-logo", "--no-cache"],
        cwd=cwd, capture_output=True, text=True, timeout=300,
    )


def copy_packages(target: Path) -> None:
    for package in PACKAGES:
        shutil.copytree(REPO / package, target / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.zpln", "*.md"))
    shutil.copy(REPO / "pyproject.toml", target / "pyproject.toml")


def test_every_import_points_down() -> None:
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken." in result.stdout


@pytest.mark.parametrize(
    ("low", "high"),
    [
        ("config", "lakehouse.session"),  # floor 1 importing floor 2
        ("lakehouse", "api.main"),  # floor 2 importing floor 5
        ("spark_jobs.alerts", "api.store.alert_filters"),  # the arrow that once ran up
        ("api", "cli.main"),  # the service importing its launcher
        ("panel_apps", "zeppelin_notes.runner"),  # one face importing the other
    ],
)
def test_an_import_running_up_a_floor_fails(tmp_path: Path, low: str, high: str) -> None:
    copy_packages(tmp_path)
    assert lint_imports(tmp_path).returncode == 0  # the copy starts clean
    scratch = tmp_path / low.replace(".", "/") / "_scratch_upward.py"
    # A function-level import is still an import.
    scratch.write_text(f"def f():\n    import {high}  # noqa: F401\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert f"{low}._scratch_upward -> {high}" in result.stdout
