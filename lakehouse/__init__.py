"""The Gaia lakehouse: HEALPix-partitioned Delta tables and the ways to query them.

>>> from lakehouse import open_catalog            # Spark, for batch work
>>> from lakehouse import open_interactive        # in-process, sub-second

The names below are imported on first use, so light modules such as
:mod:`lakehouse.filters` (used by the API) do not pull in Spark and Delta.
"""

from __future__ import annotations

import sys
from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lakehouse.catalog import Catalog, open_catalog
    from lakehouse.crossmatch import crossmatch
    from lakehouse.export import read_table, write_table
    from lakehouse.ingest import IngestError, ingest_gaia_files, ingest_sample, ingest_synthetic
    from lakehouse.interactive import InteractiveCatalog, open_interactive
    from lakehouse.regions import BoxSearch, ConeSearch, PixelSearch, PolygonSearch

_HOMES = {
    "BoxSearch": "lakehouse.regions",
    "Catalog": "lakehouse.catalog",
    "ConeSearch": "lakehouse.regions",
    "IngestError": "lakehouse.ingest",
    "InteractiveCatalog": "lakehouse.interactive",
    "PixelSearch": "lakehouse.regions",
    "PolygonSearch": "lakehouse.regions",
    "crossmatch": "lakehouse.crossmatch",
    "ingest_gaia_files": "lakehouse.ingest",
    "ingest_sample": "lakehouse.ingest",
    "ingest_synthetic": "lakehouse.ingest",
    "open_catalog": "lakehouse.catalog",
    "open_interactive": "lakehouse.interactive",
    "read_table": "lakehouse.export",
    "write_table": "lakehouse.export",
}
__all__ = [
    "BoxSearch",
    "Catalog",
    "ConeSearch",
    "IngestError",
    "InteractiveCatalog",
    "PixelSearch",
    "PolygonSearch",
    "crossmatch",
    "ingest_gaia_files",
    "ingest_sample",
    "ingest_synthetic",
    "open_catalog",
    "open_interactive",
    "read_table",
    "write_table",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'lakehouse' has no attribute {name!r}")
    value = getattr(import_module(home), name)
    globals()[name] = value
    return value


class _Package(ModuleType):
    """Keeps an exported name bound to the export when the submodule of the same
    name (``lakehouse.crossmatch``) is first imported, as eager imports did."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, ModuleType) and _HOMES.get(name) == value.__name__:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
