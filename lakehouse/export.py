"""Writing result tables in the formats astronomers use, chosen by file extension.

CSV, Parquet, VOTable (``.vot``/``.xml``) and FITS (``.fits``/``.fit``).
A VOTable is :mod:`lakehouse.votable`'s (binary2, with the catalogue's units,
UCDs, descriptions and the J2016.0 COOSYS), so TOPCAT and friends read it as
they would ESA's; a FITS table gets the same columns with units (``TUNITn``),
descriptions (``TCOMMn``) and UCDs (``TUCDn``, the keywords TOPCAT writes and reads).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from lakehouse.votable import ColumnMeta

# lakehouse.votable (astropy.io.votable) is imported where a VOTable or FITS file is
# written, not here: the CLI imports this module for format_for and would pay ~0.4 s.

FORMATS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".vot": "votable",
    ".xml": "votable",
    ".fits": "fits",
    ".fit": "fits",
}


def format_for(path: Path | str) -> str:
    """The output format named by a path's extension."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(
            f"cannot tell the format of {str(path)!r}: use one of {', '.join(sorted(FORMATS))}"
        )
    return FORMATS[suffix]


def to_astropy(table: pa.Table, metadata: Mapping[str, ColumnMeta] | None = None):
    """An astropy Table with the VOTable's metadata (units, descriptions, UCDs in ``meta``),
    nulls masked; built from the same FIELDs so FITS and VOTable files agree."""
    from lakehouse.votable import to_votable

    votable = to_votable(table, metadata=metadata)
    return votable.get_first_table().to_table(use_names_over_ids=True)


def _fits_ready(out) -> None:
    """Make ``out`` writable as FITS: strings fixed-width with "" for nulls (FITS strings
    have no null), masked integers written with the type's minimum as TNULL (astropy's
    default 999999 can be a real count)."""
    import numpy as np

    for name in out.colnames:
        column = out[name]
        if column.dtype == object:
            filled = column.filled("") if hasattr(column, "filled") else column
            out[name] = filled.astype(str)
        elif column.dtype.kind in "iu" and hasattr(column, "mask"):
            limits = np.iinfo(column.dtype)
            column.fill_value = limits.min if column.dtype.kind == "i" else limits.max


def write_fits(
    table: pa.Table, path: Path | BinaryIO, metadata: Mapping[str, ColumnMeta] | None = None
) -> None:
    """A FITS binary table; each column's description and UCD go in TCOMMn and TUCDn."""
    from astropy.io import fits

    out = to_astropy(table, metadata)
    _fits_ready(out)
    hdu = fits.table_to_hdu(out)
    for i, name in enumerate(out.colnames, start=1):
        if out[name].info.description:
            hdu.header[f"TCOMM{i}"] = out[name].info.description
        if out[name].meta.get("ucd"):
            hdu.header[f"TUCD{i}"] = out[name].meta["ucd"]
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path, overwrite=True)


def write_table(table: pa.Table, path: Path | str) -> Path:
    """Write ``table`` to ``path`` in the format its extension names; returns the path."""
    path = Path(path)
    fmt = format_for(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        pacsv.write_csv(table, path)
    elif fmt == "parquet":
        pq.write_table(table, path)
    elif fmt == "votable":
        from lakehouse.votable import votable_bytes

        path.write_bytes(votable_bytes(table))
    else:
        write_fits(table, path)
    return path


def read_table(path: Path | str) -> pa.Table:
    """Read a user table (CSV, Parquet, VOTable or FITS) by its extension."""
    path = Path(path)
    fmt = format_for(path)
    if fmt == "csv":
        return pacsv.read_csv(path)
    if fmt == "parquet":
        return pq.read_table(path)
    from astropy.table import Table

    return pa.Table.from_pandas(
        Table.read(path, format="votable" if fmt == "votable" else "fits").to_pandas()
    )
