"""Malformed ESA bulk files (truncated gzip, a wrong ECSV header, a row without a
position, a source_id twice): each refused naming the file and line, the table's version
unchanged — nothing half-ingested."""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

import pytest

from lakehouse import IngestError, ingest_gaia_files
from lakehouse.layout import table_info

FIXTURE = Path(__file__).parents[1] / "data" / "GaiaSource_fixture.csv.gz"


def _lines() -> list[str]:
    return gzip.open(FIXTURE, "rt").read().splitlines()


def _first_data_line(lines: list[str]) -> int:
    """1-based number of the first data row (after the # header and the column names)."""
    return sum(1 for line in lines if line.startswith("#")) + 2


def _write(path: Path, lines: list[str]) -> Path:
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


def _fields(line: str) -> list[str]:
    return next(csv.reader([line]))


def _with_field(line: str, column: int, value: str) -> str:
    fields = next(csv.reader([line]))
    fields[column] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(fields)
    return out.getvalue()


@pytest.mark.slow
def test_malformed_ingest_is_refused_naming_file_and_line(spark, tmp_path, record_figures):
    root = str(tmp_path / "lake")
    version = ingest_gaia_files(spark, root, [FIXTURE])
    lines = _lines()
    first = _first_data_line(lines)
    names = _fields(lines[first - 2])
    ra_col, id_col = names.index("ra"), names.index("source_id")

    whole = FIXTURE.read_bytes()
    truncated = tmp_path / "GaiaSource_truncated.csv.gz"
    truncated.write_bytes(whole[: len(whole) // 2])
    wrong_header = _write(tmp_path / "GaiaSource_header.csv.gz",
                          ["# not an ECSV header", *lines[first - 2:]])
    nan_row = first + 9
    nan = list(lines)
    nan[nan_row - 1] = _with_field(nan[nan_row - 1], ra_col, "NaN")
    nan_file = _write(tmp_path / "GaiaSource_nan.csv.gz", nan)
    dup_row = first + 20
    dup = list(lines)
    dup[dup_row - 1] = _with_field(dup[dup_row - 1], id_col, _fields(lines[first - 1])[id_col])
    dup_file = _write(tmp_path / "GaiaSource_dup.csv.gz", dup)
    again = _write(tmp_path / "GaiaSource_again.csv.gz", lines)  # a file ingested twice

    cases = [
        ([truncated], r"GaiaSource_truncated.csv.gz:\d+: the file ends mid-way"),
        ([wrong_header], r"GaiaSource_header.csv.gz:1: not an ECSV file"),
        ([nan_file], rf"GaiaSource_nan.csv.gz:{nan_row}: source_id \d+ has no valid position"),
        ([dup_file], rf"GaiaSource_dup.csv.gz:{dup_row}: source_id \d+ appears twice"),
        ([FIXTURE, again], rf"GaiaSource_again.csv.gz:{first}: source_id \d+ is already in"),
    ]
    for files, message in cases:
        with pytest.raises(IngestError, match=message):
            ingest_gaia_files(spark, root, files)
        assert table_info(f"{root}/gaia_source").version == version  # nothing written
    record_figures({"fault": "malformed ingest files", "bad_inputs": len(cases),
                    "refused_naming_file_and_line": len(cases), "table_versions_changed": 0})
