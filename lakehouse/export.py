"""Writing result tables in the formats astronomers use, chosen by file extension.

CSV, Parquet, VOTable (``.vot``/``.xml``) and FITS (``.fits``/``.fit``);
units from the catalogue schema are carried into VOTable and FITS through
astropy, so TOPCAT and friends read them as they would ESA's files.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from lakehouse.schema import UNITS

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


def to_astropy(table: pa.Table):
    """An astropy Table with units from the schema (nulls become masked values)."""
    import astropy.units as u
    from astropy.table import Table

    out = Table.from_pandas(table.to_pandas(), index=False)
    for name in out.colnames:
        unit = UNITS.get(name)
        if unit:
            out[name].unit = u.Unit(unit)
    return out


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
        to_astropy(table).write(path, format="votable", overwrite=True)
    else:
        to_astropy(table).write(path, format="fits", overwrite=True)
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
