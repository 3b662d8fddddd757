"""The catalogue as the VO services see it: in-process readers kept warm, and its tables.

A reader keeps the pinned version's file list and Parquet footers in memory,
which is what makes a sync cone answer in milliseconds; it is replaced by one
on the newest version every :data:`REFRESH_S` seconds (an ingest shows up
within that), so a query never mixes versions.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping

import pyarrow as pa

from api.vo.requests import VOError
from config.settings import Settings
from lakehouse.adql import Source
from lakehouse.adql.tap_schema import query_sources, tap_schema_tables
from lakehouse.interactive import InteractiveCatalog, open_interactive

REFRESH_S = 60.0
log = logging.getLogger("avip.vo")
#: The catalogue tables the VO services publish.
TABLES = ("gaia_source",)


class Readers:
    """One :class:`InteractiveCatalog` per table, renewed every :data:`REFRESH_S`."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._readers: dict[str, tuple[float, InteractiveCatalog]] = {}
        self._schema: tuple[float, dict[str, pa.Table]] | None = None

    def reader(self, table: str) -> InteractiveCatalog:
        now = time.monotonic()
        with self._lock:
            found = self._readers.get(table)
        if found is not None and now - found[0] < REFRESH_S:
            return found[1]
        try:
            reader = open_interactive(self._settings.catalogue_root, table,
                                      settings=self._settings)
            reader.pinned_version  # noqa: B018 — open the log now, not inside the first query
        except FileNotFoundError:
            raise VOError(404, f"the catalogue holds no table {table} yet: an operator "
                          "ingests it with `avip ingest`") from None
        except OSError:  # the storage did not answer
            log.exception("the catalogue table %s cannot be read", table)
            raise VOError(503, f"the catalogue table {table} cannot be read now; try again "
                          "in a minute") from None
        with self._lock:
            self._readers[table] = (now, reader)
        return reader

    def columns(self) -> dict[str, tuple[str, ...]]:
        """Each published table's columns (as the pinned version holds them)."""
        return {table: self.reader(table).columns for table in TABLES}

    def tap_schema(self) -> dict[str, pa.Table]:
        now = time.monotonic()
        if self._schema is None or now - self._schema[0] >= REFRESH_S:
            self._schema = (now, tap_schema_tables(self.columns()))
        return self._schema[1]

    def sources(self, uploads: Mapping[str, pa.Table],
                upload_columns: Mapping[str, list[str]] | None = None) -> list[Source]:
        """Every table a query may name: the catalogue, TAP_SCHEMA, the request's uploads
        (read, or only their column names)."""
        named = {name: table.column_names for name, table in uploads.items()}
        return query_sources(self.columns(), {**named, **(upload_columns or {})})


def readers_of(app_state: object, settings: Settings) -> Readers:
    """The app's one :class:`Readers` (made on first use: the API starts without Spark's
    or the HEALPix libraries' import cost until a VO request comes)."""
    readers = getattr(app_state, "vo_readers", None)
    if readers is None:
        readers = Readers(settings)
        app_state.vo_readers = readers  # type: ignore[attr-defined]
    return readers
