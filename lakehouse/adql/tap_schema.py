"""The tables a TAP query may read, and ``TAP_SCHEMA`` describing them (TAP 1.1 §4).

Catalogue tables are listed under the schema ``gaiadr3`` (as at the ESA
archive, so its queries paste unchanged) and may be written bare
(``gaia_source``). Their column metadata (units, UCDs, descriptions,
principal/indexed flags, VOTable datatypes) come from :mod:`lakehouse.schema`;
``TAP_SCHEMA`` itself is served from these Arrow tables, so what it says and
what a query reads cannot differ.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pyarrow as pa

from lakehouse.adql.parse import Source
from lakehouse.schema import COLUMNS_BY_NAME, votable_datatype

SCHEMA = "gaiadr3"
SCHEMA_DESCRIPTION = "Gaia DR3 as avip holds it: HEALPix-partitioned Delta tables"
TABLE_DESCRIPTIONS = {
    "gaia_source": "Gaia DR3 sources: astrometry and photometry (ICRS, epoch J2016.0)",
}
UPLOAD_SCHEMA = "TAP_UPLOAD"

_TAP_SCHEMA_COLUMNS: dict[str, tuple[tuple[str, pa.DataType, str], ...]] = {
    "schemas": (("schema_name", pa.string(), "schema name for reference to tap_schema.schemas"),
                ("utype", pa.string(), "lists the utypes of schemas"),
                ("description", pa.string(), "describes schemas"),
                ("schema_index", pa.int32(), "recommended sort order when listing schemas")),
    "tables": (("schema_name", pa.string(), "the schema this table belongs to"),
               ("table_name", pa.string(), "the fully qualified table name"),
               ("table_type", pa.string(), "one of: table view"),
               ("utype", pa.string(), "lists the utype of tables"),
               ("description", pa.string(), "describes tables"),
               ("table_index", pa.int32(), "recommended sort order when listing tables")),
    "columns": (("table_name", pa.string(), "the table this column belongs to"),
                ("column_name", pa.string(), "the column name"),
                ("utype", pa.string(), "lists the utypes of columns"),
                ("ucd", pa.string(), "lists the UCDs of columns"),
                ("unit", pa.string(), "lists the unit used for column values"),
                ("description", pa.string(), "describes the columns"),
                ("datatype", pa.string(), "lists the ADQL datatype of columns"),
                ("arraysize", pa.string(), "lists the size of variable-length columns"),
                ("xtype", pa.string(), "a DALI or custom extended type annotation"),
                ("size", pa.int32(), "deprecated: use arraysize"),
                ("principal", pa.int32(), "a principal column; 1 means 1, 0 means 0"),
                ("indexed", pa.int32(), "an indexed column; 1 means 1, 0 means 0"),
                ("std", pa.int32(), "a standard column; 1 means 1, 0 means 0"),
                ("column_index", pa.int32(), "recommended sort order when listing columns")),
    "keys": (("key_id", pa.string(), "unique key to join to tap_schema.key_columns"),
             ("from_table", pa.string(), "the table with the foreign key"),
             ("target_table", pa.string(), "the table with the primary key"),
             ("utype", pa.string(), "lists the utype of keys"),
             ("description", pa.string(), "describes keys")),
    "key_columns": (("key_id", pa.string(), "key to join to tap_schema.keys"),
                    ("from_column", pa.string(), "column in the from_table"),
                    ("target_column", pa.string(), "column in the target_table")),
}


def catalogue_sources(tables: Mapping[str, Sequence[str]]) -> list[Source]:
    """A :class:`Source` per catalogue table (name → its columns)."""
    return [Source(f"{SCHEMA}.{name}", "catalogue", name, tuple(columns), (name,))
            for name, columns in tables.items()]


def upload_source(name: str, columns: Sequence[str]) -> Source:
    """The :class:`Source` of an uploaded table, read as ``TAP_UPLOAD.<name>``."""
    return Source(f"{UPLOAD_SCHEMA}.{name}", "upload", name, tuple(columns))


def query_sources(catalogue: Mapping[str, Sequence[str]],
                  uploads: Mapping[str, Sequence[str]] | None = None) -> list[Source]:
    """Every table a query may name: the catalogue tables, TAP_SCHEMA and the uploads
    (each given as name → its columns)."""
    return [*catalogue_sources(catalogue), *tap_schema_sources(),
            *(upload_source(name, columns) for name, columns in (uploads or {}).items())]


def tap_schema_sources() -> list[Source]:
    return [Source(f"TAP_SCHEMA.{name}", "tap_schema", name, tuple(c[0] for c in columns))
            for name, columns in _TAP_SCHEMA_COLUMNS.items()]


def _table(name: str, rows: list[tuple]) -> pa.Table:
    spec = _TAP_SCHEMA_COLUMNS[name]
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in spec]
    return pa.table({field: pa.array(values, type=kind)
                     for (field, kind, _), values in zip(spec, columns, strict=True)})


def tap_schema_tables(tables: Mapping[str, Sequence[str]]) -> dict[str, pa.Table]:
    """The five TAP_SCHEMA tables describing the catalogue ``tables`` and TAP_SCHEMA."""
    schemas = [(SCHEMA, None, SCHEMA_DESCRIPTION, 0),
               ("TAP_SCHEMA", None, "The tables and columns this service holds", 1)]
    listed = [(SCHEMA, f"{SCHEMA}.{name}", "table", None, TABLE_DESCRIPTIONS.get(name, name), i)
              for i, name in enumerate(tables)]
    listed += [("TAP_SCHEMA", f"TAP_SCHEMA.{name}", "table", None, f"TAP_SCHEMA {name}",
                len(tables) + i) for i, name in enumerate(_TAP_SCHEMA_COLUMNS)]
    columns = []
    for name, names in tables.items():
        for index, column in enumerate(names):
            meta = COLUMNS_BY_NAME.get(column)
            kind = meta.kind if meta else "double"
            columns.append((f"{SCHEMA}.{name}", column, None, meta.ucd if meta else None,
                            (meta.unit or None) if meta else None,
                            meta.description if meta else None, adql_datatype(kind),
                            "*" if kind == "string" else None, None, None,
                            int(bool(meta and meta.principal)), int(bool(meta and meta.indexed)),
                            0, index))
    for name, spec in _TAP_SCHEMA_COLUMNS.items():
        for index, (column, kind, description) in enumerate(spec):
            columns.append((f"TAP_SCHEMA.{name}", column, None, None, None, description,
                            "INTEGER" if pa.types.is_integer(kind) else "VARCHAR",
                            None if pa.types.is_integer(kind) else "*", None, None, 1, 0, 1,
                            index))
    return {"schemas": _table("schemas", schemas), "tables": _table("tables", listed),
            "columns": _table("columns", columns), "keys": _table("keys", []),
            "key_columns": _table("key_columns", [])}


def adql_datatype(kind: str) -> str:
    """The ADQL (TAP_SCHEMA) datatype of a schema column kind."""
    return {"long": "BIGINT", "double": "DOUBLE", "float": "REAL", "int": "INTEGER",
            "short": "SMALLINT", "string": "VARCHAR"}.get(kind, votable_datatype(kind).upper())
