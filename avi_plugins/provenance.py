"""What a provenance record says about the software and Spark a job ran with."""

from __future__ import annotations

import platform
import re
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, packages_distributions, version
from pathlib import Path
from typing import Any

_SECRET = re.compile(r"secret|password|token|access\.key|credential", re.IGNORECASE)
_PACKAGES = (
    "avip", "pyspark", "delta-spark", "deltalake", "pyarrow", "numpy", "pandas", "astropy",
    "cdshealpix", "pydantic", "scikit-learn", "hdbscan", "panel",
)


def software_versions(avi: object | None = None) -> dict[str, str]:
    """Versions of Python, the platform's key packages and the AVI's own distribution."""
    versions = {"python": platform.python_version()}
    names = list(_PACKAGES)
    if avi is not None:
        top = type(avi).__module__.split(".")[0]
        names += packages_distributions().get(top, [])
    for name in names:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return versions


def source_commit(cls: type) -> str | None:
    """The git commit of the checkout an AVI class is imported from (None if not in git)."""
    module = sys.modules.get(cls.__module__)
    path = getattr(module, "__file__", None)
    if not path:
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(Path(path).parent), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def spark_conf_redacted(spark: Any) -> dict[str, str]:
    """The session's Spark configuration, secrets replaced by ``***``."""
    pairs = spark.sparkContext.getConf().getAll()
    return {k: ("***" if _SECRET.search(k) else v) for k, v in sorted(pairs)}
