"""The Gaia lakehouse: HEALPix-partitioned Delta tables and the ways to query them.

>>> from lakehouse import open_catalog            # Spark, for batch work
>>> from lakehouse import open_interactive        # in-process, sub-second
"""

from lakehouse.catalog import Catalog, open_catalog
from lakehouse.crossmatch import crossmatch
from lakehouse.export import read_table, write_table
from lakehouse.ingest import IngestError, ingest_gaia_files, ingest_sample, ingest_synthetic
from lakehouse.interactive import InteractiveCatalog, open_interactive
from lakehouse.regions import BoxSearch, ConeSearch, PixelSearch, PolygonSearch

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
