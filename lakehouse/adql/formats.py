"""A query result in the formats TAP clients ask for (``FORMAT`` / ``RESPONSEFORMAT``).

VOTable (BINARY2 by default, TABLEDATA on request) carries each column's unit,
UCD and description when it is a plain reference to a catalogue column, the
query, and TAP's overflow marker; CSV, Parquet and FITS carry the rows (FITS
and Parquet the units too).
"""

from __future__ import annotations

import io
from collections.abc import Mapping

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from lakehouse.adql.errors import AdqlError
from lakehouse.adql.local import Result
from lakehouse.votable import ColumnMeta, column_meta, votable_bytes

#: format → (media type, file suffix)
FORMATS: dict[str, tuple[str, str]] = {
    "votable": ("application/x-votable+xml", "vot"),
    "votable/td": ("application/x-votable+xml;serialization=tabledata", "vot"),
    "csv": ("text/csv", "csv"),
    "parquet": ("application/vnd.apache.parquet", "parquet"),
    "fits": ("application/fits", "fits"),
}
#: Longest column name a FITS table holds (TTYPEn fits in one 80-character card).
FITS_NAME_CHARS = 68
_SPELLINGS = {
    "votable": "votable", "votable/b2": "votable", "vot": "votable", "xml": "votable",
    "application/x-votable+xml": "votable", "text/xml": "votable",
    "application/x-votable+xml;serialization=binary2": "votable",
    "application/x-votable+xml;serialization=tabledata": "votable/td",
    "votable/td": "votable/td", "votable_plain": "votable/td", "votable/tabledata": "votable/td",
    "csv": "csv", "text/csv": "csv", "text/csv;header=present": "csv",
    "parquet": "parquet", "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
    "fits": "fits", "application/fits": "fits", "image/fits": "fits",
}


def result_format(requested: str | None) -> str:
    """Our name of a TAP FORMAT value (default VOTable BINARY2); AdqlError if unknown."""
    if not requested:
        return "votable"
    key = requested.strip().lower().replace(" ", "")
    if key in _SPELLINGS:
        return _SPELLINGS[key]
    raise AdqlError(f"unknown FORMAT {requested!r}; use votable (BINARY2), votable/td "
                    "(TABLEDATA), csv, parquet or fits")


def metadata(origins: Mapping[str, tuple[str, str]],
             kinds: Mapping[str, str]) -> dict[str, ColumnMeta]:
    """Output column → metadata, for outputs that are plain references to catalogue columns
    (``kinds``: alias → source kind)."""
    found = {}
    for name, (alias, column) in origins.items():
        meta = column_meta(column) if kinds.get(alias) == "catalogue" else None
        if meta is not None:
            found[name] = meta
    return found


def serialize(result: Result, fmt: str, *, query: str | None = None,
              meta: Mapping[str, ColumnMeta] | None = None) -> bytes:
    """The result's bytes in ``fmt`` (a key of :data:`FORMATS`)."""
    table = result.table
    if fmt == "fits":
        for name in table.column_names:
            if not name.isascii() or len(name) > FITS_NAME_CHARS:
                raise AdqlError(f"FITS column names are ASCII of {FITS_NAME_CHARS} characters "
                                f"at most, not {name[:80]!r}: rename it with AS, or ask for "
                                "FORMAT=votable")
    try:
        if fmt in ("votable", "votable/td"):
            return votable_bytes(table, overflow=result.overflow, query=query, metadata=meta,
                                 serialization="binary2" if fmt == "votable" else "tabledata")
        buffer = io.BytesIO()
        if fmt == "csv":
            pacsv.write_csv(table, buffer)
        elif fmt == "parquet":
            pq.write_table(table, buffer)
        else:
            from lakehouse.export import write_fits

            write_fits(table, buffer, meta)
        return buffer.getvalue()
    except (ValueError, TypeError, UnicodeError, KeyError, pa.ArrowException) as err:
        # FITS holds ASCII names of 68 characters at most and ASCII text; CSV no arrays
        raise AdqlError(f"the result cannot be written as {fmt} ({str(err)[:200]}): ask for "
                        "FORMAT=votable, which holds any table") from None


def upload_columns(data: bytes) -> list[str]:
    """The column names of an uploaded VOTable's first TABLE, from its FIELDs alone (the
    rows are not read: what planning needs, at a fraction of a parse); ValueError if the
    header cannot be read."""
    import xml.etree.ElementTree as ET

    names: list[str] = []
    try:
        for _, element in ET.iterparse(io.BytesIO(data), events=("start",)):
            tag = element.tag.rsplit("}", 1)[-1]
            if tag == "FIELD":
                names.append(element.get("name") or element.get("ID") or "")
            elif tag == "DATA" or (tag == "TABLE" and names):
                break
    except ET.ParseError as err:
        raise ValueError(f"not a readable VOTable ({err}): send a VOTable with one TABLE") \
            from None
    if not names:
        raise ValueError("the VOTable has no FIELD: send a VOTable with one TABLE")
    _check_names(names)
    return names


def _check_names(names: list[str]) -> None:
    """ADQL names are case-blind unless quoted: one column per name."""
    seen: dict[str, str] = {}
    for name in names:
        if name.lower() in seen:
            raise ValueError(f"columns {seen[name.lower()]!r} and {name!r} differ only in "
                             "case, which ADQL cannot tell apart: rename one")
        seen[name.lower()] = name


def read_upload(data: bytes) -> pa.Table:
    """A TAP UPLOAD table (a VOTable, as DALI sends it) as Arrow; ValueError saying what is
    wrong with it."""
    from astropy.io.votable import parse_single_table

    try:
        table = parse_single_table(io.BytesIO(data), verify="ignore").to_table(
            use_names_over_ids=True)
        arrow = pa.Table.from_pandas(table.to_pandas(), preserve_index=False)
    except Exception as err:  # noqa: BLE001 — astropy raises many kinds for a bad file
        raise ValueError(f"not a readable VOTable ({str(err).splitlines()[0][:200]}): send "
                         "a VOTable with one TABLE") from None
    _check_names(arrow.column_names)
    return arrow
