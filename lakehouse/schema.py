"""The ``gaia_source`` schema: Gaia DR3 column names, types and units.

One list, :data:`GAIA_SOURCE`, is the single source of truth; the Spark and
Arrow schemas and the VOTable/FITS units are all derived from it. Names,
types and units follow the Gaia DR3 data model (``gaiadr3.gaia_source``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa

if TYPE_CHECKING:
    from pyspark.sql import types as T


@dataclass(frozen=True)
class Column:
    """One catalogue column."""

    name: str
    kind: str  # "long" | "double" | "float" | "int" | "short" | "string"
    unit: str  # astropy-parsable unit string, "" for dimensionless
    description: str
    nullable: bool = True


_SPARK = {  # names in pyspark.sql.types
    "long": "LongType",
    "double": "DoubleType",
    "float": "FloatType",
    "int": "IntegerType",
    "short": "ShortType",
    "string": "StringType",
}
_ARROW = {
    "long": pa.int64(),
    "double": pa.float64(),
    "float": pa.float32(),
    "int": pa.int32(),
    "short": pa.int16(),
    "string": pa.string(),
}

GAIA_SOURCE: tuple[Column, ...] = (
    Column("designation", "string", "", 'Unique source designation ("Gaia DR3 <source_id>")'),
    Column(
        "source_id",
        "long",
        "",
        "Unique source identifier; bits 35+ hold the HEALPix level-12 nested index of the source",
        nullable=False,
    ),
    Column("random_index", "long", "", "Random index for selecting a random subset"),
    Column("ra", "double", "deg", "Right ascension (ICRS, epoch 2016.0)", nullable=False),
    Column("ra_error", "float", "mas", "Standard error of right ascension (times cos dec)"),
    Column("dec", "double", "deg", "Declination (ICRS, epoch 2016.0)", nullable=False),
    Column("dec_error", "float", "mas", "Standard error of declination"),
    Column("l", "double", "deg", "Galactic longitude"),
    Column("b", "double", "deg", "Galactic latitude"),
    Column("parallax", "double", "mas", "Parallax"),
    Column("parallax_error", "float", "mas", "Standard error of parallax"),
    Column("parallax_over_error", "float", "", "Parallax divided by its standard error"),
    Column("pmra", "double", "mas/yr", "Proper motion in right ascension (times cos dec)"),
    Column("pmra_error", "float", "mas/yr", "Standard error of pmra"),
    Column("pmdec", "double", "mas/yr", "Proper motion in declination"),
    Column("pmdec_error", "float", "mas/yr", "Standard error of pmdec"),
    Column("ruwe", "float", "", "Renormalised unit weight error"),
    Column("phot_g_mean_mag", "float", "mag", "G-band mean magnitude (Vega)"),
    Column("phot_bp_mean_mag", "float", "mag", "Integrated BP mean magnitude (Vega)"),
    Column("phot_rp_mean_mag", "float", "mag", "Integrated RP mean magnitude (Vega)"),
    Column("bp_rp", "float", "mag", "BP - RP colour"),
    Column("phot_g_mean_flux_over_error", "float", "", "G-band mean flux divided by its error"),
    Column(
        "astrometric_sigma5d_max",
        "float",
        "mas",
        "Longest semi-major axis of the 5-d error ellipsoid",
    ),
    Column(
        "visibility_periods_used",
        "short",
        "",
        "Number of visibility periods used in the astrometric solution",
    ),
    Column("astrometric_excess_noise", "float", "mas", "Excess noise of the source"),
    Column("astrometric_excess_noise_sig", "float", "", "Significance of excess noise"),
    Column("radial_velocity", "float", "km/s", "Radial velocity"),
)

#: The partition column added by the layout (see :mod:`lakehouse.layout`).
PARTITION_COLUMN = "healpix_partition"

COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in GAIA_SOURCE)
UNITS: dict[str, str] = {c.name: c.unit for c in GAIA_SOURCE}


def spark_schema(columns: tuple[Column, ...] = GAIA_SOURCE) -> T.StructType:
    """The Spark schema of ``gaia_source`` (without the partition column)."""
    # pyspark here, not at the top: the CLI (export formats) and the AVIs (units) read this
    # module without Spark, and importing pyspark costs them 0.15-0.3 s (measured).
    from pyspark.sql import types

    return types.StructType(
        [types.StructField(c.name, getattr(types, _SPARK[c.kind])(), c.nullable) for c in columns]
    )


def arrow_schema(columns: tuple[Column, ...] = GAIA_SOURCE) -> pa.Schema:
    """The Arrow schema of ``gaia_source``, with units as field metadata."""
    return pa.schema(
        [pa.field(c.name, _ARROW[c.kind], c.nullable, metadata={"unit": c.unit}) for c in columns]
    )


def numpy_dtype(name: str) -> str:
    """The numpy dtype of a column (for generating or parsing data)."""
    kind = next(c.kind for c in GAIA_SOURCE if c.name == name)
    return {
        "long": "int64",
        "double": "float64",
        "float": "float32",
        "int": "int32",
        "short": "int16",
        "string": "object",
    }[kind]


def table_path(root: str, table: str = "gaia_source") -> str:
    """Where a catalogue table lives under a lakehouse root."""
    if not table.replace("_", "").isalnum():
        raise ValueError(f"table names are letters, digits and '_', got {table!r}")
    return f"{root.rstrip('/')}/{table}"
