"""Writes tests/data/GaiaSource_fixture.csv.gz: real DR3 rows in ESA's bulk-file format.

ESA's ``GaiaSource_*.csv.gz`` files are ECSV: a YAML header in ``#`` lines
(delimiter, per-column datatype/unit/description), a CSV header line, then
rows with ``null`` for missing values and columns we do not keep (e.g.
solution_id, ref_epoch). Run: python tests/data/make_esa_fixture.py
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from lakehouse.ingest import read_sample

OUT = Path(__file__).with_name("GaiaSource_fixture.csv.gz")
COLUMNS = [  # (name, ECSV datatype, unit) in ESA's order, a subset of the 152
    ("solution_id", "int64", None), ("designation", "string", None), ("source_id", "int64", None),
    ("random_index", "int64", None), ("ref_epoch", "float64", "yr"), ("ra", "float64", "deg"),
    ("ra_error", "float32", "mas"), ("dec", "float64", "deg"), ("dec_error", "float32", "mas"),
    ("parallax", "float64", "mas"), ("parallax_error", "float32", "mas"),
    ("pmra", "float64", "mas / yr"), ("pmdec", "float64", "mas / yr"), ("ruwe", "float32", None),
    ("phot_g_mean_mag", "float32", "mag"),
    ("phot_bp_mean_mag", "float32", "mag"), ("phot_rp_mean_mag", "float32", "mag"),
    ("bp_rp", "float32", "mag"), ("radial_velocity", "float32", "km / s"), ("l", "float64", "deg"),
    ("b", "float64", "deg"),
]


def main() -> None:
    sample = read_sample().slice(1000, 300).to_pandas()
    rng = np.random.default_rng(3)
    sample["solution_id"] = 1636148068921376768
    sample["ref_epoch"] = 2016.0
    sample["ra_error"] = rng.uniform(0.01, 0.05, len(sample))
    sample["dec_error"] = rng.uniform(0.01, 0.05, len(sample))
    sample["parallax"] = rng.uniform(0.5, 20, len(sample))
    sample["parallax_error"] = rng.uniform(0.01, 0.05, len(sample))
    sample["pmra"] = rng.normal(0, 10, len(sample))
    sample["pmdec"] = rng.normal(0, 10, len(sample))
    sample["ruwe"] = rng.uniform(0.8, 1.4, len(sample))
    sample["random_index"] = rng.permutation(len(sample))
    lines = ["# %ECSV 1.0", "# ---", "# delimiter: ','", "# datatype:"]
    for name, dtype, unit in COLUMNS:
        extra = f", unit: {unit}" if unit else ""
        lines.append(f"# - {{name: {name}, datatype: {dtype}{extra}}}")
    lines.append("# meta: !!omap")
    lines.append("# - {source: 'avip test fixture from real DR3 rows'}")
    lines.append(",".join(n for n, _, _ in COLUMNS))
    for _, row in sample.iterrows():
        values = []
        for name, dtype, _ in COLUMNS:
            v = row[name]
            if v is None or (isinstance(v, float) and np.isnan(v)):
                values.append("null")
            elif dtype == "string":
                values.append(f'"{v}"')
            else:
                values.append(repr(float(v)) if dtype.startswith("float") else str(int(v)))
        lines.append(",".join(values))
    with gzip.open(OUT, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    print(f"wrote {len(sample)} rows to {OUT}")


if __name__ == "__main__":
    main()
