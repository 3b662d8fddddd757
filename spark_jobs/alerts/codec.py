"""Alert packets on the wire: Rubin (Confluent framing) and ZTF-style (Avro container).

Rubin alerts are schemaless Avro prefixed by the Confluent wire format — one
magic byte ``0`` and a big-endian 4-byte schema id — and the schemas are read
at run time from the installed ``lsst-alert-packet`` package (GPL: we read
them, we never copy them). Rubin's registry id for schema ``vMAJOR.MINOR`` is
``MAJOR * 100 + MINOR``, so an id alone tells which installed version to load.

ZTF alerts travel as one-record Avro Object Container Files carrying their own
schema; :data:`ZTF_SCHEMA` is a ZTF-style schema (a subset of the fields ZTF
candidates carry, under the same names) used by the simulator and tests.

Every decoding failure raises :class:`MalformedAlert` with a reason a human
can act on; the streaming job sends such packets to the dead-letter topic.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import fastavro

MAGIC_BYTE = 0
WIRE_HEADER = struct.Struct(">bI")
AVRO_CONTAINER_MAGIC = b"Obj\x01"


class MalformedAlert(ValueError):
    """A packet that cannot be decoded as an alert; the message says why."""


@dataclass(frozen=True)
class RubinSchema:
    """One installed Rubin alert schema version and its registry id."""

    major: int
    minor: int
    parsed: dict[str, Any]
    definition: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """The schema as the package defines it (named types resolved), for other Avro readers."""

    @property
    def schema_id(self) -> int:
        return self.major * 100 + self.minor

    @property
    def version(self) -> str:
        return f"{self.major}.{self.minor}"


@lru_cache(maxsize=16)
def rubin_schema(version: str | None = None) -> RubinSchema:
    """Load a Rubin alert schema ("11.1"; latest installed when None) from lsst-alert-packet."""
    from lsst.alert.packet import Schema, get_latest_schema_version, get_schema_path

    if version is None:
        major, minor = get_latest_schema_version()
    else:
        try:
            major, minor = (int(p) for p in version.split("."))
        except ValueError:
            raise ValueError(
                f"Rubin schema version must look like '11.1', got {version!r}"
            ) from None
    path = f"{get_schema_path(major, minor)}/lsst.v{major}_{minor}.alert.avsc"
    if not os.path.isfile(path):
        raise ValueError(
            f"Rubin alert schema {major}.{minor} is not in the installed lsst-alert-packet; "
            "upgrade the package or pick an installed version"
        )
    schema = Schema.from_file(path)
    return RubinSchema(major, minor, fastavro.parse_schema(schema.definition), schema.definition)


def rubin_schema_for_id(schema_id: int) -> RubinSchema:
    """The installed schema a Confluent schema id refers to (MAJOR*100+MINOR)."""
    try:
        return rubin_schema(f"{schema_id // 100}.{schema_id % 100}")
    except ValueError as err:
        raise MalformedAlert(f"unknown schema id {schema_id}: {err}") from None


def encode_rubin(alert: dict[str, Any], schema: RubinSchema | None = None) -> bytes:
    """Serialize a Rubin alert: magic byte, schema id, schemaless Avro body."""
    schema = schema or rubin_schema()
    buf = io.BytesIO()
    buf.write(WIRE_HEADER.pack(MAGIC_BYTE, schema.schema_id))
    fastavro.schemaless_writer(buf, schema.parsed, alert)
    return buf.getvalue()


def decode_rubin(payload: bytes) -> tuple[RubinSchema, dict[str, Any]]:
    """Parse a Confluent-framed Rubin alert into (schema, record)."""
    if len(payload) < WIRE_HEADER.size:
        raise MalformedAlert(f"packet of {len(payload)} bytes is shorter than the 5-byte header")
    magic, schema_id = WIRE_HEADER.unpack_from(payload)
    if magic != MAGIC_BYTE:
        raise MalformedAlert(
            f"magic byte is {magic}, expected {MAGIC_BYTE} (Confluent wire format)"
        )
    schema = rubin_schema_for_id(schema_id)
    body = io.BytesIO(payload)
    body.seek(WIRE_HEADER.size)
    try:
        record = fastavro.schemaless_reader(body, schema.parsed, None)
    except Exception as err:  # fastavro raises EOFError, ValueError, UnicodeDecodeError...
        raise MalformedAlert(
            f"Avro body does not match Rubin schema {schema.version}: {type(err).__name__}: {err}"
        ) from None
    if body.tell() != len(payload):
        raise MalformedAlert(
            f"{len(payload) - body.tell()} trailing bytes after the Rubin {schema.version} record"
        )
    return schema, record  # type: ignore[return-value]


# A ZTF-style candidate: names and meanings as in ZTF's public alert packets.
_ZTF_CANDIDATE_FIELDS: list[tuple[str, str, str]] = [
    ("jd", "double", "observation Julian date"),
    ("fid", "int", "filter id (1=g, 2=r, 3=i)"),
    ("pid", "long", "processing id of the image"),
    ("candid", "long", "candidate id"),
    ("isdiffpos", "string", "'t' if the difference is positive, 'f' if negative"),
    ("ra", "double", "right ascension, deg"),
    ("dec", "double", "declination, deg"),
    ("magpsf", "float", "PSF-fit magnitude of the difference"),
    ("sigmapsf", "float", "1-sigma uncertainty of magpsf"),
    ("diffmaglim", "float", "5-sigma limiting magnitude of the difference image"),
    ("rb", "float", "real/bogus score"),
    ("drb", "float", "deep-learning real/bogus score"),
    ("fwhm", "float", "FWHM, pixels"),
    ("elong", "float", "elongation aimage/bimage"),
    ("ssdistnr", "float", "distance to the nearest known solar-system object, arcsec"),
    ("sgscore1", "float", "star/galaxy score of the closest PS1 source"),
    ("distpsnr1", "float", "distance to the closest PS1 source, arcsec"),
    ("ndethist", "int", "number of past detections at this position"),
    ("jdstarthist", "double", "first detection Julian date"),
]


def _nullable(avro_type: str) -> list[str]:
    return ["null", avro_type]


ZTF_SCHEMA: dict[str, Any] = fastavro.parse_schema(
    {
        "type": "record",
        "name": "alert",
        "namespace": "ztf",
        "doc": "ZTF-style alert (avip simulator): one candidate plus its history",
        "fields": [
            {"name": "schemavsn", "type": "string"},
            {"name": "publisher", "type": "string"},
            {"name": "objectId", "type": "string"},
            {"name": "candid", "type": "long"},
            {
                "name": "candidate",
                "type": {
                    "type": "record",
                    "name": "candidate",
                    "fields": [
                        {
                            "name": n,
                            "type": t if n in {"jd", "candid", "ra", "dec"} else _nullable(t),
                            "doc": d,
                            **({} if n in {"jd", "candid", "ra", "dec"} else {"default": None}),
                        }
                        for n, t, d in _ZTF_CANDIDATE_FIELDS
                    ],
                },
            },
            {
                "name": "prv_candidates",
                "type": [
                    "null",
                    {
                        "type": "array",
                        "items": {
                            "type": "record",
                            "name": "prv_candidate",
                            "fields": [
                                {"name": "jd", "type": "double"},
                                {"name": "fid", "type": "int"},
                                {"name": "magpsf", "type": ["null", "float"], "default": None},
                                {"name": "sigmapsf", "type": ["null", "float"], "default": None},
                                {"name": "diffmaglim", "type": ["null", "float"], "default": None},
                            ],
                        },
                    },
                ],
                "default": None,
            },
        ],
    }
)


def encode_ztf(alert: dict[str, Any]) -> bytes:
    """Serialize a ZTF-style alert as a one-record Avro container (schema embedded)."""
    buf = io.BytesIO()
    fastavro.writer(buf, ZTF_SCHEMA, [alert])
    return buf.getvalue()


def decode_ztf(payload: bytes) -> dict[str, Any]:
    """Read the single record of a ZTF-style Avro container."""
    try:
        records = list(fastavro.reader(io.BytesIO(payload)))
    except Exception as err:
        raise MalformedAlert(f"unreadable Avro container: {type(err).__name__}: {err}") from None
    if len(records) != 1:
        raise MalformedAlert(f"ZTF-style container holds {len(records)} records, expected 1")
    record = records[0]
    if not isinstance(record, dict) or "candidate" not in record or "objectId" not in record:
        raise MalformedAlert("Avro container record has no 'candidate'/'objectId': not a ZTF alert")
    return record


@dataclass(frozen=True)
class DecodedAlert:
    """A decoded packet: which survey, which schema, and the record."""

    survey: str  # "rubin" | "ztf"
    schema_version: str
    record: dict[str, Any]


def decode(payload: bytes | None) -> DecodedAlert:
    """Decode either format, told apart by their first bytes."""
    if not payload:
        raise MalformedAlert("empty message value")
    if payload[:4] == AVRO_CONTAINER_MAGIC:
        record = decode_ztf(payload)
        return DecodedAlert("ztf", str(record.get("schemavsn", "")), record)
    if payload[0] == MAGIC_BYTE:
        schema, record = decode_rubin(payload)
        return DecodedAlert("rubin", schema.version, record)
    raise MalformedAlert(
        f"first byte is 0x{payload[0]:02x}: neither Confluent wire format (magic byte 0) "
        "nor an Avro container file ('Obj\\x01')"
    )
