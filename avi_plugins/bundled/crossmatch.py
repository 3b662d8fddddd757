"""``crossmatch``: a user's table (CSV, VOTable or FITS) against Gaia within a radius.

The user table is read with astropy (format from the file suffix), shipped to
Spark, and matched with the lakehouse's ``Catalog.crossmatch`` (HEALPix
buckets with margins, every pair within the radius). The task's address
includes a digest of the file's bytes, so a changed upload is matched anew.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from avi_plugins.bundled.tables import gaia_units, write_formats
from avi_plugins.bundled.views import table_pane
from avi_plugins.outputs import file_digest
from avi_plugins.params import UserFile
from avi_plugins.sdk import AVI, WARM_ROWS, Lane, Manifest, Task, TaskContext

SUFFIX_FORMAT = {".csv": "ascii.csv", ".vot": "votable", ".xml": "votable",
                 ".votable": "votable", ".fits": "fits", ".fit": "fits"}


#: The largest user table a warm crossmatch takes.
WARM_TABLE_BYTES = 16 << 20


class CrossmatchParams(BaseModel):
    """The user table, its coordinate columns, and the match radius."""

    model_config = ConfigDict(extra="forbid")
    table_path: UserFile = Field(description="User table: .csv, .vot/.xml or .fits file.")
    ra_column: str = Field("ra", min_length=1, description="RA column of the user table [deg].")
    dec_column: str = Field("dec", min_length=1, description="Dec column of the user table [deg].")
    radius_arcsec: float = Field(1.0, gt=0.0, le=60.0, description="Match radius [arcsec].")
    gaia_columns: list[str] = Field(
        default_factory=lambda: ["source_id", "ra", "dec", "parallax", "pmra", "pmdec",
                                 "phot_g_mean_mag", "bp_rp"],
        min_length=1, max_length=200, description="Gaia columns to keep.")

    @field_validator("table_path")
    @classmethod
    def _readable(cls, value: str) -> str:
        path = Path(value)
        if path.suffix.lower() not in SUFFIX_FORMAT:
            raise ValueError(f"unsupported suffix {path.suffix!r}; use {sorted(SUFFIX_FORMAT)}")
        if not path.is_file():
            raise ValueError(f"no such file: {value}")
        return str(path.resolve())


def read_user_table(p: CrossmatchParams) -> pd.DataFrame:
    """The user table as pandas with ``ra``/``dec`` columns and a ``row`` index."""
    from astropy.table import Table

    table = Table.read(p.table_path, format=SUFFIX_FORMAT[Path(p.table_path).suffix.lower()])
    missing = [c for c in (p.ra_column, p.dec_column) if c not in table.colnames]
    if missing:
        raise ValueError(f"user table has no column(s) {missing}; it has {table.colnames}")
    frame = table.to_pandas()
    frame = frame.rename(columns={p.ra_column: "ra", p.dec_column: "dec"})
    frame["ra"], frame["dec"] = frame["ra"].astype(float), frame["dec"].astype(float)
    frame.insert(0, "row", np.arange(len(frame), dtype=np.int64))
    return frame


def match(ctx: TaskContext) -> pd.DataFrame:
    """All Gaia × user pairs within the radius, sorted by user row then separation."""
    p: CrossmatchParams = ctx.params  # type: ignore[assignment]
    user = ctx.spark.createDataFrame(read_user_table(p))
    # The match needs Gaia's positions (and source_id to order ties) even where the user
    # asked for neither; what they did not ask for is dropped after.
    needed = list(dict.fromkeys([*p.gaia_columns, "source_id", "ra", "dec"]))
    gaia = ctx.table("gaia_source").select(*needed)
    pairs = gaia.crossmatch(user, p.radius_arcsec).toPandas()
    pairs = pairs.sort_values(["right_row", "sep_arcsec", "source_id"], kind="stable")
    return pairs.drop(columns=[c for c in needed if c not in p.gaia_columns])


def _match(ctx: TaskContext) -> None:
    pairs = match(ctx)
    write_formats(pairs, ctx.output_dir / "matches", ("parquet", "csv"), gaia_units())
    ctx.say(f"{len(pairs)} pairs")


class Crossmatch(AVI):
    """User table × Gaia within a radius."""

    manifest = Manifest(
        name="crossmatch", version="1.0.0", title="Cross-match a table with Gaia",
        summary="Every Gaia source within a radius of each row of your CSV, VOTable or FITS table.",
        author="avip", tags=("crossmatch",),
    )
    Params = CrossmatchParams
    lanes: ClassVar[tuple[Lane, ...]] = ("spark", "warm")

    def small(self, params: Any, table_rows: Mapping[str, int]) -> bool:
        """Warm when Gaia is at most :data:`~avi_plugins.sdk.WARM_ROWS` rows and the user's
        table at most :data:`WARM_TABLE_BYTES` (about 100,000 rows of CSV)."""
        rows = table_rows.get("gaia_source")
        try:
            with Path(params.table_path).open("rb") as table:
                head = table.read(6)
                size = os.fstat(table.fileno()).st_size
        except OSError:
            return False
        # astropy opens a compressed table whatever its name: its size says nothing of its rows
        compressed = head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ"))
        return (rows is not None and rows <= WARM_ROWS and size <= WARM_TABLE_BYTES
                and not compressed)

    def tasks(self) -> list[Task]:
        return [Task("match", _match, tables=("gaia_source",),
                     key=lambda p: {"table_sha256": file_digest(p.table_path)}, result=True)]

    def view(self, result_dir: Path) -> Any:
        import panel as pn

        pairs = pd.read_parquet(Path(result_dir) / "matches.parquet")
        return pn.Column(f"## Cross-match: {len(pairs)} pairs, "
                         f"{pairs['right_row'].nunique() if len(pairs) else 0} rows matched",
                         table_pane(pairs, "Pairs"))
