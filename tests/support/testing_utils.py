"""Helpers shared by test modules (importable because pytest puts tests/support on sys.path;
not tests/ itself, whose lakehouse/ folder would shadow the lakehouse package)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType


def load_module(name: str, path: Path) -> ModuleType:
    """Import the Python file at ``path`` as module ``name``.

    Test folders are not packages (pytest runs with ``--import-mode=importlib``), so a
    test that reuses another folder's cases or sky, or a benchmark script, loads it by path.
    """
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
