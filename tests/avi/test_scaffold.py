"""`avip avi new` scaffolds a package whose own tests pass and that registers an entry point."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib

from typer.testing import CliRunner

from cli.avi import avi_app


def test_new_avi_package_passes_its_tests(tmp_path):
    result = CliRunner().invoke(avi_app, ["new", "star_hist", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    package = tmp_path / "star_hist"
    meta = tomllib.loads((package / "pyproject.toml").read_text())
    assert meta["project"]["entry-points"]["avip.avis"] == {
        "star_hist": "avip_star_hist.avi:StarHist"}
    assert "avip avi run star_hist" in (package / "README.md").read_text()
    env = {**os.environ, "PYTHONPATH": str(package), "PYSPARK_PYTHON": sys.executable}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          str(package / "tests")], cwd=package, env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:]
    assert "3 passed" in run.stdout


def test_new_refuses_bad_names_and_existing_folders(tmp_path):
    assert CliRunner().invoke(avi_app, ["new", "Bad-Name", "--dir", str(tmp_path)]).exit_code == 2
    CliRunner().invoke(avi_app, ["new", "dup", "--dir", str(tmp_path)])
    again = CliRunner().invoke(avi_app, ["new", "dup", "--dir", str(tmp_path)])
    assert again.exit_code == 2 and "already exists" in " ".join(again.output.split())
