"""The ``gaia_source`` schema: Gaia DR3 column names, types, units, UCDs and descriptions.

One list, :data:`GAIA_SOURCE`, is the single source of truth; the Spark and
Arrow schemas, the VOTable/FITS column metadata and TAP_SCHEMA are all
derived from it. Names, types, units and UCDs follow what the ESA Gaia
archive's TAP_SCHEMA gives for ``gaiadr3.gaia_source``, with one choice of
ours: ``source_id`` (the key every avip table joins on) is the main
identifier (``meta.id;meta.main``), ``designation`` a plain ``meta.id``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa

if TYPE_CHECKING:
    from pyspark.sql import types as T


@dataclass(frozen=True)
class Column:
    """One catalogue column.

    New fields come last with defaults so positional construction of the
    first five keeps working.
    """

    name: str
    kind: str  # "long" | "double" | "float" | "int" | "short" | "string"
    unit: str  # astropy-parsable unit string, "" for dimensionless
    description: str
    nullable: bool = True
    ucd: str = ""  # IVOA UCD1+ (passes astropy's check_ucd with the controlled vocabulary)
    principal: bool = False  # TAP_SCHEMA principal: what TOPCAT shows first
    indexed: bool = False  # TAP_SCHEMA indexed: the HEALPix layout indexes position via source_id


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
    Column(
        "designation",
        "string",
        "",
        'Unique source designation ("Gaia DR3 <source_id>")',
        ucd="meta.id",
    ),
    Column(
        "source_id",
        "long",
        "",
        "Unique source identifier; bits 35+ hold the HEALPix level-12 nested index of the source",
        nullable=False,
        ucd="meta.id;meta.main",
        principal=True,
        indexed=True,
    ),
    Column(
        "random_index", "long", "", "Random index for selecting a random subset", ucd="meta.code"
    ),
    Column(
        "ra",
        "double",
        "deg",
        "Right ascension (ICRS, epoch 2016.0)",
        nullable=False,
        ucd="pos.eq.ra;meta.main",
        principal=True,
        indexed=True,
    ),
    Column(
        "ra_error",
        "float",
        "mas",
        "Standard error of right ascension (times cos dec)",
        ucd="stat.error;pos.eq.ra",
    ),
    Column(
        "dec",
        "double",
        "deg",
        "Declination (ICRS, epoch 2016.0)",
        nullable=False,
        ucd="pos.eq.dec;meta.main",
        principal=True,
        indexed=True,
    ),
    Column(
        "dec_error", "float", "mas", "Standard error of declination", ucd="stat.error;pos.eq.dec"
    ),
    Column("l", "double", "deg", "Galactic longitude", ucd="pos.galactic.lon"),
    Column("b", "double", "deg", "Galactic latitude", ucd="pos.galactic.lat"),
    Column("parallax", "double", "mas", "Parallax", ucd="pos.parallax.trig", principal=True),
    Column(
        "parallax_error",
        "float",
        "mas",
        "Standard error of parallax",
        ucd="stat.error;pos.parallax.trig",
    ),
    Column(
        "parallax_over_error",
        "float",
        "",
        "Parallax divided by its standard error",
        ucd="stat.snr;pos.parallax.trig",
    ),
    Column(
        "pmra",
        "double",
        "mas/yr",
        "Proper motion in right ascension (times cos dec)",
        ucd="pos.pm;pos.eq.ra",
        principal=True,
    ),
    Column(
        "pmra_error", "float", "mas/yr", "Standard error of pmra", ucd="stat.error;pos.pm;pos.eq.ra"
    ),
    Column(
        "pmdec",
        "double",
        "mas/yr",
        "Proper motion in declination",
        ucd="pos.pm;pos.eq.dec",
        principal=True,
    ),
    Column(
        "pmdec_error",
        "float",
        "mas/yr",
        "Standard error of pmdec",
        ucd="stat.error;pos.pm;pos.eq.dec",
    ),
    Column("ruwe", "float", "", "Renormalised unit weight error", ucd="stat.fit.goodness"),
    Column(
        "phot_g_mean_mag",
        "float",
        "mag",
        "G-band mean magnitude (Vega)",
        ucd="phot.mag;em.opt",
        principal=True,
    ),
    Column(
        "phot_bp_mean_mag",
        "float",
        "mag",
        "Integrated BP mean magnitude (Vega)",
        ucd="phot.mag;em.opt.B",
    ),
    Column(
        "phot_rp_mean_mag",
        "float",
        "mag",
        "Integrated RP mean magnitude (Vega)",
        ucd="phot.mag;em.opt.R",
    ),
    Column(
        "bp_rp",
        "float",
        "mag",
        "BP - RP colour",
        ucd="phot.color;em.opt.B;em.opt.R",
        principal=True,
    ),
    Column(
        "phot_g_mean_flux_over_error",
        "float",
        "",
        "G-band mean flux divided by its error",
        ucd="stat.snr;phot.flux;em.opt",
    ),
    Column(
        "astrometric_sigma5d_max",
        "float",
        "mas",
        "Longest semi-major axis of the 5-d error ellipsoid",
        ucd="stat;pos.errorEllipse",
    ),
    Column(
        "visibility_periods_used",
        "short",
        "",
        "Number of visibility periods used in the astrometric solution",
        ucd="meta.number",
    ),
    Column(
        "astrometric_excess_noise", "float", "mas", "Excess noise of the source", ucd="stat.value"
    ),
    Column(
        "astrometric_excess_noise_sig",
        "float",
        "",
        "Significance of excess noise",
        ucd="stat.value",
    ),
    Column(
        "radial_velocity",
        "float",
        "km/s",
        "Radial velocity",
        ucd="spect.dopplerVeloc.opt;em.opt.I",
        principal=True,
    ),
)

#: The partition column added by the layout (see :mod:`lakehouse.layout`).
PARTITION_COLUMN = "healpix_partition"

COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in GAIA_SOURCE)
COLUMNS_BY_NAME: dict[str, Column] = {c.name: c for c in GAIA_SOURCE}
UNITS: dict[str, str] = {c.name: c.unit for c in GAIA_SOURCE}
UCDS: dict[str, str] = {c.name: c.ucd for c in GAIA_SOURCE}
DESCRIPTIONS: dict[str, str] = {c.name: c.description for c in GAIA_SOURCE}

_VOTABLE = {  # VOTable FIELD datatypes; strings are char arrays (arraysize="*")
    "long": "long",
    "double": "double",
    "float": "float",
    "int": "int",
    "short": "short",
    "string": "char",
}


def votable_datatype(kind: str) -> str:
    """The VOTable ``datatype`` of a schema kind (``source_id``'s ``long`` stays ``long``)."""
    try:
        return _VOTABLE[kind]
    except KeyError:
        raise ValueError(f"unknown column kind {kind!r}; one of {', '.join(_VOTABLE)}") from None


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
    kind = COLUMNS_BY_NAME[name].kind
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
