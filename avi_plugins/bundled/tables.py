"""Writing result tables the same way every time, in the formats astronomers use.

Results are small enough to leave Spark (the AVIs aggregate or limit first),
and are written by pyarrow and astropy from a sorted pandas frame so that the
same job twice gives byte-identical files: no Spark task ids in file names,
no timestamps in headers.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lakehouse.schema import UNITS

FORMATS = ("parquet", "csv", "votable", "fits")
SUFFIX = {"parquet": "parquet", "csv": "csv", "votable": "vot", "fits": "fits"}


def gaia_units() -> dict[str, str]:
    """Units of the catalogue's columns (from the lakehouse schema)."""
    return dict(UNITS)


def write_parquet(frame: pd.DataFrame, path: Path) -> Path:
    """Parquet via pyarrow, no pandas index, fixed writer options."""
    table = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)
    pq.write_table(table, path, compression="zstd", write_statistics=True)
    return path


def to_astropy(frame: pd.DataFrame, units: Mapping[str, str] | None = None):
    """An astropy Table with units attached where known."""
    import astropy.units as u
    from astropy.table import Table

    table = Table.from_pandas(frame.reset_index(drop=True))
    for name, unit in (units or {}).items():
        if name in table.colnames and unit:
            table[name].unit = u.Unit(unit)
    return table


def write_formats(
    frame: pd.DataFrame,
    stem: Path,
    formats: Iterable[str],
    units: Mapping[str, str] | None = None,
) -> list[Path]:
    """Write ``frame`` as ``stem.<suffix>`` for each requested format."""
    written = []
    table = None
    for fmt in formats:
        path = stem.with_suffix("." + SUFFIX[fmt])
        if fmt == "parquet":
            write_parquet(frame, path)
        elif fmt == "csv":
            frame.to_csv(path, index=False, lineterminator="\n")
        else:
            table = table if table is not None else to_astropy(frame, units)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # e.g. FITS column-name length notes
                if fmt == "votable":
                    table.write(path, format="votable", overwrite=True)
                elif fmt == "fits":
                    table.write(path, format="fits", overwrite=True)
                else:
                    raise ValueError(f"unknown format {fmt!r}; choose from {FORMATS}")
        written.append(path)
    return written
