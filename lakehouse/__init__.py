"""The Gaia lakehouse: HEALPix-partitioned Delta tables and the ways to query them.

>>> from lakehouse import open_catalog            # Spark, for batch work
>>> from lakehouse import open_interactive        # in-process, sub-second

The names below are imported on first use (PEP 562), because their modules
cost seconds to import and their light siblings are imported alone:
``import lakehouse.filters`` (the API's alert filters) takes 0.3-0.5 s, while
``lakehouse.catalog``, ``.interactive`` or ``.ingest`` take 2.3-2.9 s
(astropy and cdshealpix for the HEALPix coverage, pyspark, deltalake;
measured on the 2-core dev host), and ``avip --help`` (1.8 s) would pay that
too. Their users still write one plain top-level ``import lakehouse`` and
call ``lakehouse.open_catalog(...)``: the module loads on that first call.
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
    from lakehouse.layout import table_info
    from lakehouse.regions import BoxSearch, ConeSearch, PixelSearch, PolygonSearch
    from lakehouse.session import get_spark

_HOMES = {
    "BoxSearch": "lakehouse.regions",
    "Catalog": "lakehouse.catalog",
    "ConeSearch": "lakehouse.regions",
    "IngestError": "lakehouse.ingest",
    "InteractiveCatalog": "lakehouse.interactive",
    "PixelSearch": "lakehouse.regions",
    "PolygonSearch": "lakehouse.regions",
    "crossmatch": "lakehouse.crossmatch",
    "get_spark": "lakehouse.session",
    "ingest_gaia_files": "lakehouse.ingest",
    "ingest_sample": "lakehouse.ingest",
    "ingest_synthetic": "lakehouse.ingest",
    "open_catalog": "lakehouse.catalog",
    "open_interactive": "lakehouse.interactive",
    "read_table": "lakehouse.export",
    "table_info": "lakehouse.layout",
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
    "get_spark",
    "ingest_gaia_files",
    "ingest_sample",
    "ingest_synthetic",
    "open_catalog",
    "open_interactive",
    "read_table",
    "table_info",
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
