"""The probe AVI (``probe_avi.py``) installed as a distribution in a temporary folder, for
warm workers to import as any plugin (they get the folder on their PYTHONPATH)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def probe_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the probe AVI as an installed distribution (entry point included)."""
    folder = tmp_path_factory.mktemp("probe-plugin")
    shutil.copy(HERE / "probe_avi.py", folder / "avip_warm_probe.py")
    dist = folder / "avip_warm_probe-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: avip-warm-probe\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[avip.avis]\nwarm_probe = avip_warm_probe:Probe\n")
    return folder
