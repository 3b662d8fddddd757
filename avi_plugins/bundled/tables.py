"""Writing result tables the same way every time, in the formats astronomers use.

Results are small enough to leave Spark (the AVIs aggregate or limit first),
and are written by pyarrow and astropy from a sorted pandas frame so that the
same job twice gives byte-identical files: no Spark task ids in file names,
no timestamps in headers. VOTable and FITS files come from the lakehouse's
writers, so they carry the Gaia schema's units, UCDs and descriptions (and the
VOTable its J2016.0 COOSYS) like every other table avip hands out.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lakehouse.schema import UNITS

if TYPE_CHECKING:
    from lakehouse.votable import ColumnMeta

# The VOTable/FITS writers (astropy.io.votable, ~0.4 s to import) load when a VOTable or
# FITS file is written, not when an AVI that may write one is loaded.

FORMATS = ("parquet", "csv", "votable", "fits")
SUFFIX = {"parquet": "parquet", "csv": "csv", "votable": "vot", "fits": "fits"}


def gaia_units() -> dict[str, str]:
    """Units of the catalogue's columns (from the lakehouse schema)."""
    return dict(UNITS)


def _arrow(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)


def write_parquet(frame: pd.DataFrame, path: Path) -> Path:
    """Parquet via pyarrow, no pandas index, fixed writer options."""
    pq.write_table(_arrow(frame), path, compression="zstd", write_statistics=True)
    return path


def column_metadata(units: Mapping[str, str] | None) -> dict[str, ColumnMeta]:
    """The caller's units over the Gaia schema's metadata (UCD, description) per column;
    columns not named keep the schema's, which the VOTable writer looks up itself."""
    from lakehouse.votable import ColumnMeta, column_meta

    return {
        name: replace(column_meta(name) or ColumnMeta(), unit=unit)
        for name, unit in (units or {}).items()
    }


def to_astropy(frame: pd.DataFrame, units: Mapping[str, str] | None = None):
    """An astropy Table with units (and the schema's UCDs and descriptions) attached."""
    from lakehouse.export import to_astropy as table_to_astropy

    return table_to_astropy(_arrow(frame), column_metadata(units))


def write_votable(frame: pd.DataFrame, path: Path, units: Mapping[str, str] | None = None) -> Path:
    """The lakehouse's VOTable: Gaia units, UCDs, descriptions and the J2016.0 COOSYS."""
    from lakehouse.votable import votable_bytes

    path.write_bytes(votable_bytes(_arrow(frame), metadata=column_metadata(units)))
    return path


def write_fits(frame: pd.DataFrame, path: Path, units: Mapping[str, str] | None = None) -> Path:
    """The lakehouse's FITS table: units, with descriptions and UCDs in TCOMMn/TUCDn."""
    from lakehouse.export import write_fits as write_table_fits

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. FITS column-name length notes
        write_table_fits(_arrow(frame), path, column_metadata(units))
    return path


def write_formats(
    frame: pd.DataFrame,
    stem: Path,
    formats: Iterable[str],
    units: Mapping[str, str] | None = None,
) -> list[Path]:
    """Write ``frame`` as ``stem.<suffix>`` for each requested format."""
    written = []
    for fmt in formats:
        if fmt not in SUFFIX:
            raise ValueError(f"unknown format {fmt!r}; choose from {FORMATS}")
        path = stem.with_suffix("." + SUFFIX[fmt])
        if fmt == "parquet":
            write_parquet(frame, path)
        elif fmt == "csv":
            frame.to_csv(path, index=False, lineterminator="\n")
        elif fmt == "votable":
            write_votable(frame, path, units)
        else:
            write_fits(frame, path, units)
        written.append(path)
    return written
