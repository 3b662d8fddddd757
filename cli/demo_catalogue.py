"""The catalogue half of ``avip demo``: real DR3 data and a synthetic sky, searched and mapped.

Ingests (once) the real Gaia DR3 sample into ``dr3_sample`` and a synthetic
sky into ``gaia_source``, then runs a cone search both ways (in-process and
on Spark), a crossmatch, and writes all-sky density maps — printing counts and
timings as it goes.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

import lakehouse
from avi_plugins.bundled.sky_counts import pixel_counts, render_map
from cli.catalog import progress_bar


def _exists(root: str, table: str) -> bool:
    return (Path(root) / table / "_delta_log").is_dir()


def _timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def catalogue_tour(
    root: str, out_dir: Path, rows: int, seed: int, clusters: int | None, console: Console
) -> None:
    """Ingest what is missing, then search, crossmatch and map; prints a summary table."""
    spark = lakehouse.get_spark(app_name="avip-demo")
    if not _exists(root, "dr3_sample"):
        with progress_bar("ingest real DR3 sample") as progress:
            lakehouse.ingest_sample(spark, root, progress, table="dr3_sample")
    if not _exists(root, "gaia_source"):
        with progress_bar(f"synthetic sky, {rows:,} stars") as progress:
            lakehouse.ingest_synthetic(spark, root, rows, seed, clusters, progress)

    summary = Table(title="catalogue tour", show_lines=False)
    for column in ("what", "table", "rows", "seconds"):
        summary.add_column(column, justify="right" if column in ("rows", "seconds") else "left")

    # Orion's belt and sword in the real DR3 sample, in-process then on Spark.
    sample_reader = lakehouse.open_interactive(root, "dr3_sample")
    sample_reader.cone(83.8, -5.4, radius_deg=0.1)  # opens the table: footers cached from here on
    orion, t = _timed(lambda: sample_reader.cone(83.82, -5.39, 3.0, where="phot_g_mean_mag < 8"))
    summary.add_row(
        "cone 3° Orion, G<8 (in-process)", "dr3_sample", f"{orion.num_rows:,}", f"{t:.3f}"
    )
    sample = lakehouse.open_catalog(root, "dr3_sample", spark=spark)
    n, t = _timed(lambda: sample.cone(83.82, -5.39, 3.0).where("phot_g_mean_mag < 8").count())
    summary.add_row("cone 3° Orion, G<8 (Spark)", "dr3_sample", f"{n:,}", f"{t:.3f}")

    # The Galactic centre in the synthetic sky.
    sky_reader = lakehouse.open_interactive(root)
    sky_reader.cone(266.4, -29.0, radius_deg=0.01)
    gc, t = _timed(lambda: sky_reader.cone(266.42, -29.01, radius_deg=0.5))
    summary.add_row(
        "cone 0.5° Galactic centre (in-process)", "gaia_source", f"{gc.num_rows:,}", f"{t:.3f}"
    )
    sky = lakehouse.open_catalog(root, spark=spark)
    n, t = _timed(lambda: sky.cone(266.42, -29.01, radius_deg=0.5).count())
    summary.add_row("cone 0.5° Galactic centre (Spark)", "gaia_source", f"{n:,}", f"{t:.3f}")

    # Close pairs among the bright real stars: a self-crossmatch within 20".
    bright = sample.select("source_id", "ra", "dec", "phot_g_mean_mag")
    pairs, t = _timed(
        lambda: bright.crossmatch(bright, 20.0).where("source_id < right_source_id").count()
    )
    summary.add_row(
        'crossmatch 20" close pairs (Spark)', "dr3_sample × itself", f"{pairs:,}", f"{t:.1f}"
    )

    out_dir.mkdir(parents=True, exist_ok=True)
    maps = []
    for table, order in (("gaia_source", 6), ("dr3_sample", 5)):
        catalog = lakehouse.open_catalog(root, table, spark=spark)
        counts, t = _timed(lambda c=catalog, o=order: pixel_counts(c.df, o))
        path = render_map(counts, order, "count", out_dir / f"sky_density_{table}.png")
        maps.append(str(path))
        summary.add_row(
            f"HEALPix order-{order} counts + map",
            table,
            f"{int(counts['count'].sum()):,}",
            f"{t:.1f}",
        )
    console.print(summary)
    console.print("sky density maps: " + ", ".join(maps))
    spark.stop()  # jobs run in their own Spark applications from here on
