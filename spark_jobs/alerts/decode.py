"""Kafka records → normalised alert rows, decoded in the JVM where possible.

Python decoding costs about a millisecond per Rubin alert (fastavro builds a
dict for every field of the source, the object and each history entry), so
the stream decodes the common case — a Confluent-framed packet written with
the latest installed Rubin schema — with Spark's ``from_avro``. Its reader
schema keeps only what :mod:`rows` needs (the scalar fields of ``diaSource``
and ``diaObject``, and one field of each ``prvDiaSources`` entry, to count
them); everything else is skipped unparsed. The row is then assembled by
column expressions that mirror :func:`rows.normalise`.

Every other record — ZTF-style containers, other schema versions, packets
the JVM reader refused, empty or foreign bytes — goes through the Python
codec (:func:`codec.decode`, :func:`rows.normalise`) in a pandas UDF, which
sees only those records' bytes and so costs nothing when there are none; it
returns the row as JSON, or the reason the packet is unusable.

``from_avro`` does not notice bytes *after* a complete record, which the
Python codec rejects. So a second ``from_avro`` reads each framed packet as
the record followed by one more byte (:func:`trailing_probe_schemas`; its
reader keeps only that byte, so the record is skipped, not built): where that
byte exists, the JVM row is dropped and the packet goes to the Python codec,
which dead-letters it with the number of trailing bytes, as any malformed
alert.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.avro.functions import from_avro

from spark_jobs.alerts import codec, rows

KAFKA_COLUMNS = ["key", "value", "kafka_partition", "kafka_offset", "raw_timestamp_ms"]
_PY_RESULT = T.StructType(
    [T.StructField("row", T.StringType(), True), T.StructField("error", T.StringType(), True)]
)


def _project(record: dict[str, Any], keep: set[str], **extra: Any) -> dict[str, Any]:
    """A copy of an Avro record definition with only the ``keep`` fields."""
    head = {k: v for k, v in record.items() if k != "fields"}
    return {**head, **extra, "fields": [f for f in record["fields"] if f["name"] in keep]}


def _non_null(avro_type: Any) -> Any:
    branches = avro_type if isinstance(avro_type, list) else [avro_type]
    return next(b for b in branches if b != "null")


def _without_docs(node: Any) -> Any:
    """The schema minus its documentation (megabytes of plan text otherwise)."""
    if isinstance(node, list):
        return [_without_docs(n) for n in node]
    if isinstance(node, dict):
        return {k: _without_docs(v) for k, v in node.items() if k != "doc"}
    return node


@lru_cache(maxsize=4)
def rubin_reader_schemas(version: str | None = None) -> tuple[str, str, bytes]:
    """(writer schema JSON, projected reader schema JSON, 5-byte wire header) of a version."""
    schema = codec.rubin_schema(version)
    definition = _without_docs(schema.definition)
    struct_fields = rows.struct_fields(schema.version)
    keep_source = {n for n, _ in struct_fields["diaSource"]}
    keep_object = {n for n, _ in struct_fields["diaObject"]}
    fields = []
    for f in definition["fields"]:
        name = f["name"]
        if name == "diaSourceId":
            fields.append(f)
        elif name == "diaSource":
            fields.append({**f, "type": _project(_non_null(f["type"]), keep_source)})
        elif name == "diaObject":
            fields.append({**f, "type": ["null", _project(_non_null(f["type"]), keep_object)]})
        elif name == "prvDiaSources":
            # Entries only counted: a one-field record standing in for diaSource (alias).
            source_name = _non_null(f["type"])["items"]
            if isinstance(source_name, dict):
                source_name = source_name["name"]
            counted = {
                "type": "record",
                "name": "avip.counted_source",
                "aliases": [source_name],
                "fields": [{"name": "diaSourceId", "type": "long"}],
            }
            fields.append(
                {
                    "name": name,
                    "type": ["null", {"type": "array", "items": counted}],
                    "default": None,
                }
            )
    reader = {**{k: v for k, v in definition.items() if k != "fields"}, "fields": fields}
    header = codec.WIRE_HEADER.pack(codec.MAGIC_BYTE, schema.schema_id)
    return json.dumps(definition), json.dumps(reader), header


TRAILING_FIELD = "avip_trailing_byte"


@lru_cache(maxsize=4)
def trailing_probe_schemas(version: str | None = None) -> tuple[str, str]:
    """(writer, reader) schema JSON that read a packet's record and then ONE more byte.

    The writer is the Rubin schema plus a final 1-byte ``fixed`` field; the reader keeps
    only that field. A packet that ends with its record leaves nothing for it: Avro hits
    the end of input and PERMISSIVE ``from_avro`` gives null. A packet with trailing bytes
    gives that field its first byte.
    """
    writer = json.loads(rubin_reader_schemas(version)[0])
    probe = {
        "name": TRAILING_FIELD,
        "type": {"type": "fixed", "name": "avip.trailing_byte", "size": 1},
    }
    head = {k: v for k, v in writer.items() if k != "fields"}
    probe_writer = {**head, "fields": [*writer["fields"], probe]}
    probe_reader = {**head, "fields": [probe]}
    return json.dumps(probe_writer), json.dumps(probe_reader)


def _jvm_row(a: Column, version: str, target: T.StructType) -> Column:
    """The normalised row of a from_avro result (null when it failed): rows.normalise in SQL."""
    src, obj = a.getField("diaSource"), a.getField("diaObject")
    src_object = src.getField("diaObjectId")
    types = {f.name: f.dataType for f in target.fields}
    values = {
        "alert_id": a.getField("diaSourceId"),
        # Python's `src.diaObjectId or diaObject.diaObjectId`: 0 and null both fall through.
        "object_id": F.when(
            src_object.isNotNull() & (src_object != 0), src_object.cast("string")
        ).otherwise(obj.getField("diaObjectId").cast("string")),
        "survey": F.lit("rubin"),
        "schema_version": F.lit(version),
        "ra": src.getField("ra"),
        "dec": src.getField("dec"),
        "mjd": src.getField("midpointMjdTai"),
        "n_prv_sources": F.when(a.getField("prvDiaSources").isNull(), F.lit(0)).otherwise(
            F.size(a.getField("prvDiaSources"))
        ),
        "diaSource": src,
        "diaObject": obj,
        "candidate": F.lit(None),
    }
    row = F.struct(*[values[f.name].cast(types[f.name]).alias(f.name) for f in target.fields])
    # PERMISSIVE from_avro gives a record of nulls for a packet it cannot read; the
    # schema's required diaSourceId tells that apart from a decoded alert.
    return F.when(a.getField("diaSourceId").isNotNull(), row)


@F.pandas_udf(_PY_RESULT)  # type: ignore[call-overload]
def _python_decode(values: pd.Series) -> pd.DataFrame:
    """The Python codec for the records the JVM did not decode (null input: skipped)."""
    out_rows: list[str | None] = []
    errors: list[str | None] = []
    for value in values:
        if value is None:
            out_rows.append(None)
            errors.append(None)
            continue
        try:
            out_rows.append(json.dumps(rows.normalise(codec.decode(bytes(value)))))
            errors.append(None)
        except codec.MalformedAlert as err:
            out_rows.append(None)
            errors.append(str(err))
        except (KeyError, TypeError, ValueError) as err:  # decodable but not an alert
            out_rows.append(None)
            errors.append(f"not a usable alert: {type(err).__name__}: {err}")
    return pd.DataFrame({"row": out_rows, "error": errors})


def decode(records: DataFrame) -> DataFrame:
    """Kafka records (key, value, partition, offset, timestamp) → KAFKA_COLUMNS, the
    normalised alert columns and ``error`` (set, with the other columns null, when the
    record is not a usable alert)."""
    writer, reader, header = rubin_reader_schemas()
    version = codec.rubin_schema().version
    target = rows.alert_schema(with_gaia=False)
    probe_writer, probe_reader = trailing_probe_schemas()
    value = F.col("value")
    framed = F.substring(value, 1, len(header)) == F.lit(header)
    body = F.expr(f"substring(value, {len(header) + 1})")
    jvm = F.when(framed, from_avro(body, writer, {"mode": "PERMISSIVE", "avroSchema": reader}))
    trailing = F.when(
        framed,
        from_avro(body, probe_writer, {"mode": "PERMISSIVE", "avroSchema": probe_reader})
        .getField(TRAILING_FIELD)
        .isNotNull(),
    )
    kafka = [
        "key",
        "value",
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
        F.unix_millis("timestamp").alias("raw_timestamp_ms"),
    ]
    # from_avro in a projection of its own: referenced by every field of the row, it would
    # otherwise be inlined (and run) once per reference.
    step = records.select(*kafka, jvm.alias("_avro"), trailing.alias("_trailing"))
    # A packet with bytes after its record: no JVM row, so the Python codec rejects it.
    jvm_row = F.when(~F.col("_trailing"), _jvm_row(F.col("_avro"), version, target))
    step = step.select(*KAFKA_COLUMNS, jvm_row.alias("_jvm"))
    # The UDF sees bytes only where the JVM gave nothing (an empty value stays empty).
    step = step.select(
        *KAFKA_COLUMNS,
        "_jvm",
        _python_decode(F.when(F.col("_jvm").isNull(), F.coalesce(value, F.lit(b"")))).alias("_py"),
    )
    row = F.coalesce(F.col("_jvm"), F.from_json(F.col("_py.row"), target))
    step = step.select(*KAFKA_COLUMNS, row.alias("_row"), F.col("_py.error").alias("error"))
    return step.select(*[f"_row.{f.name}" for f in target.fields], *KAFKA_COLUMNS, "error")
