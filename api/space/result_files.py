"""A finished job's result files, and their conversion on download.

Results are what the runner published in ``<job>/result/``. A Spark-written
``*.parquet`` folder counts as one table. Tables (Parquet files or folders,
CSV) can be downloaded as Parquet, CSV, VOTable or FITS — converted on the fly
by pyarrow and the lakehouse's writers (the VOTable and FITS carry the Gaia
schema's units, UCDs and descriptions, the VOTable its J2016.0 COOSYS); any
other file is served as it is.
"""

from __future__ import annotations

import io
from pathlib import Path

from api.errors import Invalid, NotFound, TooLarge
from api.space.user_space import LocalDirectoryBackend, SpaceError, normalize

TABLE_FORMATS = ["parquet", "csv", "votable", "fits"]
MEDIA_TYPES = {
    "parquet": "application/vnd.apache.parquet",
    "csv": "text/csv",
    "votable": "application/x-votable+xml",
    "fits": "application/fits",
}
SUFFIX = {"parquet": ".parquet", "csv": ".csv", "votable": ".vot", "fits": ".fits"}
MAX_CONVERT_BYTES = 64 << 20
"""Largest table converted on download: astropy builds a VOTable or FITS file whole in
memory (several times the Parquet's size), so a larger one is refused, saying how to get
it instead."""


def _is_table(path: Path) -> bool:
    return path.suffix.lower() in (".parquet", ".csv")


def list_results(result_dir: Path) -> list[tuple[str, int, list[str]]]:
    """(relative path, bytes, formats) for every result, tables first-class."""
    if not result_dir.is_dir():
        return []
    found = []
    stack = [result_dir]
    while stack:
        folder = stack.pop()
        for child in sorted(folder.iterdir()):
            if child.name.startswith((".", "_")) or child.is_symlink():
                continue
            relative = child.relative_to(result_dir).as_posix()
            if child.is_dir() and child.suffix.lower() == ".parquet":
                size = sum(f.stat().st_size for f in child.rglob("*.parquet"))
                found.append((relative, size, TABLE_FORMATS))
            elif child.is_dir():
                stack.append(child)
            else:
                formats = TABLE_FORMATS if _is_table(child) else ["original"]
                found.append((relative, child.stat().st_size, formats))
    return sorted(found)


def locate(result_dir: Path, path: str) -> Path:
    """The checked result file or Parquet folder for a relative ``path``."""
    try:
        target = LocalDirectoryBackend(result_dir).local_path(normalize(path))
    except SpaceError as error:
        raise NotFound(f"no result {path!r}: {error}") from None
    if not target.exists():
        raise NotFound(f"no result {path!r}; list them with GET /jobs/{{id}}/results")
    return target


def check_convertible(name: str, size: int, fmt: str) -> None:
    """Refuse (4xx, saying what to do) a conversion of table ``name`` of ``size`` bytes."""
    if fmt not in TABLE_FORMATS:
        raise Invalid(f"format must be one of {', '.join(TABLE_FORMATS)}", field="format")
    if not _is_table(Path(name)):
        raise Invalid(f"{name} is not a table; download it without ?format=", field="format")
    if size > MAX_CONVERT_BYTES:
        raise TooLarge(
            f"{name} is {size / 2**20:.0f} MiB; tables over "
            f"{MAX_CONVERT_BYTES >> 20} MiB are not converted on download: fetch it as it is "
            "(no ?format=; a Parquet folder file by file) and convert it with astropy or TOPCAT")


def convert(target: Path, fmt: str) -> tuple[bytes, str, str]:
    """Bytes, media type and file name of ``target`` in format ``fmt``."""
    size = (sum(f.stat().st_size for f in target.rglob("*") if f.is_file())
            if target.is_dir() else target.stat().st_size)
    check_convertible(target.name, size, fmt)
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    table = (pq.read_table(target) if target.suffix.lower() == ".parquet"
             else pacsv.read_csv(target))
    name = target.stem + SUFFIX[fmt]
    buffer = io.BytesIO()
    if fmt == "parquet":
        pq.write_table(table, buffer)
    elif fmt == "csv":
        pacsv.write_csv(table, buffer)
    elif fmt == "votable":
        from lakehouse.votable import votable_bytes

        return votable_bytes(table), MEDIA_TYPES[fmt], name
    else:
        from lakehouse.export import write_fits

        write_fits(table, buffer)
    return buffer.getvalue(), MEDIA_TYPES[fmt], name
