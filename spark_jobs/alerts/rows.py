"""The flat row every alert becomes, and so the columns a filter may name.

Rubin and ZTF-style alerts are normalised into one row: common top-level
fields (``alert_id``, ``object_id``, ``survey``, ``ra``, ``dec``, ``mjd``,
``n_prv_sources``), the scalar fields of ``diaSource`` and ``diaObject``
(Rubin) or ``candidate`` (ZTF) as structs — so ``diaSource.psfFlux`` reads in
SQL as it does in the Avro schema — and the Gaia annotation columns added by
the streaming job. The struct layouts come from the schemas at run time, so
the allow-list of filter columns always matches what is decoded.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pyspark.sql import types as T

from spark_jobs.alerts import codec

_AVRO_TO_SPARK: dict[str, T.DataType] = {
    "long": T.LongType(),
    "int": T.IntegerType(),
    "float": T.FloatType(),
    "double": T.DoubleType(),
    "boolean": T.BooleanType(),
    "string": T.StringType(),
}

# Nearest Gaia DR3 source within the match radius (null when none).
GAIA_COLUMNS: dict[str, T.DataType] = {
    "gaia_source_id": T.LongType(),
    "gaia_sep_arcsec": T.DoubleType(),
    "gaia_g_mag": T.DoubleType(),
    "gaia_bp_rp": T.DoubleType(),
    "gaia_parallax": T.DoubleType(),
}

GAIA_STRUCT = T.StructType([T.StructField(n, t, True) for n, t in GAIA_COLUMNS.items()])

TOP_LEVEL: list[tuple[str, T.DataType]] = [
    ("alert_id", T.LongType()),
    ("object_id", T.StringType()),
    ("survey", T.StringType()),
    ("schema_version", T.StringType()),
    ("ra", T.DoubleType()),
    ("dec", T.DoubleType()),
    ("mjd", T.DoubleType()),
    ("n_prv_sources", T.IntegerType()),
]

JD_MJD_OFFSET = 2400000.5


def named_records(schema: Any, found: dict[str, dict[str, Any]]) -> None:
    """Collect every named record definition in a parsed Avro schema."""
    if isinstance(schema, list):
        for branch in schema:
            named_records(branch, found)
    elif isinstance(schema, dict):
        if schema.get("type") == "record":
            found[schema["name"]] = schema
            for f in schema["fields"]:
                named_records(f["type"], found)
        elif schema.get("type") == "array":
            named_records(schema["items"], found)


def _scalar_fields(record: dict[str, Any]) -> list[tuple[str, T.DataType]]:
    """(name, Spark type) of a record's scalar fields, nullable unions included."""
    out = []
    for f in record["fields"]:
        t = f["type"]
        branches = t if isinstance(t, list) else [t]
        non_null = [b for b in branches if b != "null"]
        if len(non_null) == 1 and isinstance(non_null[0], str) and non_null[0] in _AVRO_TO_SPARK:
            out.append((f["name"], _AVRO_TO_SPARK[non_null[0]]))
    return out


@lru_cache(maxsize=4)
def struct_fields(
    rubin_version: str | None = None,
) -> dict[str, tuple[tuple[str, T.DataType], ...]]:
    """Scalar fields of diaSource, diaObject (Rubin schema) and candidate (ZTF)."""
    records: dict[str, dict[str, Any]] = {}
    named_records(codec.rubin_schema(rubin_version).parsed, records)
    by_short = {name.rsplit(".", 1)[-1]: rec for name, rec in records.items()}
    ztf: dict[str, dict[str, Any]] = {}
    named_records(codec.ZTF_SCHEMA, ztf)
    return {
        "diaSource": tuple(_scalar_fields(by_short["diaSource"])),
        "diaObject": tuple(_scalar_fields(by_short["diaObject"])),
        "candidate": tuple(_scalar_fields(ztf["ztf.candidate"])),
    }


def alert_schema(with_gaia: bool = True, rubin_version: str | None = None) -> T.StructType:
    """The Spark schema of a normalised (optionally annotated) alert row."""
    fields = [T.StructField(n, t, True) for n, t in TOP_LEVEL]
    for struct, cols in struct_fields(rubin_version).items():
        fields.append(
            T.StructField(struct, T.StructType([T.StructField(n, t, True) for n, t in cols]), True)
        )
    if with_gaia:
        fields += [T.StructField(n, t, True) for n, t in GAIA_COLUMNS.items()]
    return T.StructType(fields)


def filter_columns(rubin_version: str | None = None) -> dict[str, T.DataType]:
    """Every column a user filter may name, dotted for struct fields."""
    cols: dict[str, T.DataType] = dict(TOP_LEVEL)
    for struct, fields in struct_fields(rubin_version).items():
        cols.update({f"{struct}.{n}": t for n, t in fields})
    cols.update(GAIA_COLUMNS)
    return cols


def _pick(record: dict[str, Any] | None, fields: tuple[tuple[str, T.DataType], ...]) -> Any:
    if record is None:
        return None
    return {n: record.get(n) for n, _ in fields}


def normalise(alert: codec.DecodedAlert) -> dict[str, Any]:
    """The flat row of one decoded alert (without Gaia columns)."""
    sf = struct_fields()
    r = alert.record
    if alert.survey == "rubin":
        src = r["diaSource"]
        obj = r.get("diaObject")
        object_id = src.get("diaObjectId") or (obj or {}).get("diaObjectId")
        return {
            "alert_id": r["diaSourceId"],
            "object_id": None if object_id is None else str(object_id),
            "survey": "rubin",
            "schema_version": alert.schema_version,
            "ra": src["ra"],
            "dec": src["dec"],
            "mjd": src["midpointMjdTai"],
            "n_prv_sources": len(r.get("prvDiaSources") or ()),
            "diaSource": _pick(src, sf["diaSource"]),
            "diaObject": _pick(obj, sf["diaObject"]),
            "candidate": None,
        }
    cand = r["candidate"]
    return {
        "alert_id": r["candid"],
        "object_id": r["objectId"],
        "survey": "ztf",
        "schema_version": alert.schema_version,
        "ra": cand["ra"],
        "dec": cand["dec"],
        "mjd": cand["jd"] - JD_MJD_OFFSET,
        "n_prv_sources": len(r.get("prv_candidates") or ()),
        "diaSource": None,
        "diaObject": None,
        "candidate": _pick(cand, sf["candidate"]),
    }
