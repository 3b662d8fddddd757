"""Benchmark of the lakehouse's cone search and crossmatch against their peers.

    python benchmarks/lakehouse.py --root .data/bench-10m            # full run: 10M rows
    python benchmarks/lakehouse.py --root .data/bench-10m --reuse    # again, data kept
    python benchmarks/lakehouse.py --rows 200000                     # quick run (temp dir)
    python benchmarks/lakehouse.py --root DIR --reuse --s3           # + the same sky on S3

One synthetic sky (``lakehouse.ingest_synthetic``, N rows) is written once in
the HEALPix-partitioned Delta layout, plus an unpartitioned Parquet copy and a
HATS copy (hats-import) of the same rows. Then:

* 0.5° cone, p50/p95 over 20 seeded random centres (the same for every peer,
  after the same untimed warm-up cones, ``--warmups``, default 5): (a) our
  Spark path, (b) our in-process reader, (c) naive Spark
  (``spark.read.parquet`` + haversine filter), (d) DuckDB (SQL haversine over
  the same Parquet), (e) LSDB ``cone_search`` on HATS.
  Every peer's source_ids are compared with ours, centre by centre.
* 1″ crossmatch of two 1M-row catalogues (a random subset of the sky vs a
  copy moved by ~0.3″, 10 % dropped, 10 % unrelated stars added), all pairs
  within 1″: ours (Spark), LSDB (two HATS catalogues, right with a margin),
  astropy ``search_around_sky``. Pair counts must agree.

``--s3`` copies the sky to ``s3a://<AVIP_S3_BUCKET>/bench-lakehouse-N-sS-<digest of its files>``
(settings ``AVIP_S3_*``; byte for byte, see ``lakehouse_s3.s3_copy``) and repeats
our cone and crossmatch there, reporting S3/local ratios; the interactive cone
is also timed local and S3 alternately, centre by centre
(``lakehouse_s3.alternating_cones``), a ratio that survives a busy machine. Figures go to
``benchmarks/results/lakehouse-<rows>.json``; progress to stderr.

Why five warm-up cones and not one: the figures are those of a platform that
is already serving queries. After a single warm-up the JVM is still compiling
the hot paths of Spark's planner and Parquet reader over the next queries, so
the p50 of a short Spark query measured JIT compilation (0.25 s after one
warm-up, 0.17 s after five on the same centres); every peer gets the same
warm-up cones, at centres other than the timed ones.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import astropy.units as u
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from astropy.coordinates import SkyCoord, search_around_sky
from deltalake import DeltaTable
from pyspark.sql import functions as F

# Run as a script, this folder is first on sys.path and would shadow the lakehouse package
# with this file: the repository root goes first (then `benchmarks.` names the siblings).
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import lakehouse  # noqa: E402
from benchmarks.lakehouse_s3 import alternating_cones, s3_copy  # noqa: E402
from lakehouse.schema import PARTITION_COLUMN  # noqa: E402

log = logging.getLogger("bench.lakehouse")
RADIUS_DEG = 0.5
XMATCH_RADIUS_ARCSEC = 1.0
ID_COLUMNS = ["source_id", "ra", "dec"]
Query = Callable[[float, float], np.ndarray]  # (ra, dec) -> source_ids in the cone


class UsageError(Exception):
    """Arguments that do not fit the data folder (exit code 2)."""


# -- the data ------------------------------------------------------------------

def random_centres(n: int, seed: int) -> np.ndarray:
    """``n`` (ra, dec) points uniform on the sphere, in degrees."""
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(0, 360, n), np.degrees(np.arcsin(rng.uniform(-1, 1, n)))])


def ingest_sky(spark, root: Path, rows: int, seed: int) -> None:
    last = [0.0]

    def progress(done: int, total: int, what: str) -> None:
        if time.monotonic() - last[0] > 5 or done == total:
            last[0] = time.monotonic()
            log.info("  ingest: %d/%d %s", done, total, what)

    started = time.perf_counter()
    lakehouse.ingest_synthetic(spark, str(root), rows, seed, progress=progress)
    log.info("ingested %d rows in %.0f s", rows, time.perf_counter() - started)


def table_rows(path: Path) -> int:
    actions = pa.table(DeltaTable(str(path)).get_add_actions(flatten=True))
    return int(actions["num_records"].to_numpy().sum())


def write_flat_copy(spark, gaia: Path, flat: Path) -> None:
    """Plain Parquet, no partitions, no sort guarantees: what a naive user keeps."""
    rows = spark.read.format("delta").load(str(gaia)).drop(PARTITION_COLUMN)
    # the naive copy keeps the 8 MiB row groups it has always been measured with,
    # whatever row-group size the catalogue layout (the session's default) uses
    rows.write.mode("overwrite").option("parquet.block.size", str(8 << 20)).parquet(str(flat))


def hats_import(
    files: list[Path], out: Path, name: str, margin_arcsec: float | None, tmp: Path
) -> Path:
    """HATS catalogue (or collection with a margin cache) of ``files``; returns its path."""
    from hats_import import CollectionArguments, ImportArguments, pipeline

    common = dict(output_path=str(out), output_artifact_name=name, dask_tmp=str(tmp),
                  tmp_dir=str(tmp), dask_n_workers=2, progress_bar=True,
                  simple_progress_bar=True, resume=False)
    catalog = dict(input_file_list=[str(f) for f in files], file_reader="parquet",
                   ra_column="ra", dec_column="dec")
    if margin_arcsec is None:
        pipeline(ImportArguments(**common, **catalog))
    else:
        args = CollectionArguments(**common).catalog(**catalog, output_artifact_name=f"{name}_main")
        pipeline(args.add_margin(margin_threshold=margin_arcsec, is_default=True))
    return out / name


def xmatch_inputs(gaia: Path, out: Path, n: int, seed: int) -> tuple[Path, Path]:
    """Left: ``n`` random rows of the sky. Right: 90 % of them moved by a Rayleigh
    offset (mean ~0.3″) in a random direction, plus 10 % unrelated stars."""
    dataset = DeltaTable(str(gaia)).to_pyarrow_dataset()
    left = dataset.to_table(columns=ID_COLUMNS, filter=pc.field("random_index") < n)
    rng = np.random.default_rng(seed + 1)
    kept = left.filter(pa.array(rng.random(left.num_rows) < 0.9))
    stars = SkyCoord(kept["ra"].to_numpy() * u.deg, kept["dec"].to_numpy() * u.deg)
    moved = stars.directional_offset_by(rng.uniform(0, 360, kept.num_rows) * u.deg,
                                        rng.rayleigh(0.25, kept.num_rows) * u.arcsec)
    extra = random_centres(left.num_rows // 10, seed + 2)
    first_extra = int(pc.max(left["source_id"]).as_py()) + 1
    extra_ids = first_extra + np.arange(len(extra))
    right = pa.table({
        "source_id": np.concatenate([kept["source_id"].to_numpy(), extra_ids]),
        "ra": np.concatenate([moved.ra.deg, extra[:, 0]]),
        "dec": np.concatenate([moved.dec.deg, extra[:, 1]]),
    })
    paths = []
    for name, table in (("left", left), ("right", right)):
        (out / name).mkdir(parents=True, exist_ok=True)
        pq.write_table(table, out / name / "part-0.parquet")
        paths.append(out / name)
    return paths[0], paths[1]


# -- measuring -------------------------------------------------------------------

def time_cones(name: str, query: Query, centres: np.ndarray, warmups: np.ndarray) -> dict:
    started = time.perf_counter()
    for ra, dec in warmups:
        query(float(ra), float(dec))
    cold = time.perf_counter() - started
    seconds, ids = [], []
    for ra, dec in centres:
        started = time.perf_counter()
        found = query(float(ra), float(dec))
        seconds.append(time.perf_counter() - started)
        ids.append(np.sort(np.asarray(found, dtype=np.int64)))
    result = {"p50": float(np.percentile(seconds, 50)), "p95": float(np.percentile(seconds, 95)),
              "cold_s": cold, "seconds": seconds, "counts": [len(x) for x in ids], "_ids": ids}
    log.info("cone %-22s p50 %.3f s  p95 %.3f s  (warm-up %.2f s)",
             name, result["p50"], result["p95"], cold)
    return result


def haversine_sql(ra0: float, dec0: float) -> str:
    """Great-circle distance in degrees from (ra0, dec0), valid in Spark SQL and DuckDB."""
    ra0, dec0, cos_dec0 = float(ra0), float(dec0), float(np.cos(np.radians(dec0)))
    return (f"degrees(2 * asin(sqrt(pow(sin(radians(dec - ({dec0!r})) / 2), 2) + "
            f"{cos_dec0!r} * cos(radians(dec)) * pow(sin(radians(ra - ({ra0!r})) / 2), 2))))")


def cone_peers(
    spark, root: str, flat: Path | None, hats: Path | None, skip: set[str]
) -> dict[str, Query]:
    """The cone query of every peer, each set up once (opening is not timed)."""
    catalog = lakehouse.open_catalog(root, spark=spark)
    reader = lakehouse.open_interactive(root)

    def spark_path(ra: float, dec: float) -> np.ndarray:
        cone = catalog.cone(ra, dec, radius_deg=RADIUS_DEG).select("source_id")
        return cone.df.toArrow()["source_id"].to_numpy()

    def interactive(ra: float, dec: float) -> np.ndarray:
        found = reader.cone(ra, dec, radius_deg=RADIUS_DEG, columns=ID_COLUMNS)
        return found["source_id"].to_numpy()

    peers: dict[str, Query] = {"ours: spark path": spark_path, "ours: interactive": interactive}
    if flat is not None and "spark" not in skip:
        naive = spark.read.parquet(str(flat))

        def naive_spark(ra: float, dec: float) -> np.ndarray:
            cone = naive.where(F.expr(haversine_sql(ra, dec)) <= RADIUS_DEG).select("source_id")
            return cone.toArrow()["source_id"].to_numpy()

        peers["naive spark parquet"] = naive_spark
    if flat is not None and "duckdb" not in skip:
        import duckdb

        con = duckdb.connect()
        con.execute("SET threads = 2")
        con.execute(f"CREATE VIEW flat AS SELECT * FROM read_parquet('{flat}/part-*.parquet')")

        def duck(ra: float, dec: float) -> np.ndarray:
            sql = f"SELECT source_id FROM flat WHERE {haversine_sql(ra, dec)} <= {RADIUS_DEG}"
            return con.execute(sql).fetchnumpy()["source_id"]

        peers["duckdb parquet"] = duck
    if hats is not None and "lsdb" not in skip:
        import lsdb

        sky = lsdb.open_catalog(str(hats), columns=ID_COLUMNS)

        def lsdb_cone(ra: float, dec: float) -> np.ndarray:
            cone = sky.cone_search(ra, dec, RADIUS_DEG * 3600).compute(progress_bar=False)
            return cone["source_id"].to_numpy()

        peers["lsdb hats"] = lsdb_cone
    return peers


def check_cones(results: dict[str, dict], reference: str, centres: np.ndarray) -> list[dict]:
    """Every peer's source_ids per centre against ours; loud on any difference."""
    mismatches = []
    ref = results[reference]["_ids"]
    for name, res in results.items():
        for i, (mine, theirs) in enumerate(zip(ref, res["_ids"], strict=True)):
            if not np.array_equal(mine, theirs):
                extra, missing = np.setdiff1d(theirs, mine), np.setdiff1d(mine, theirs)
                ra, dec = float(centres[i, 0]), float(centres[i, 1])
                mismatches.append({"peer": name, "ra": ra, "dec": dec, "ours": len(mine),
                                   "peer_rows": len(theirs), "peer_extra_ids": extra[:10].tolist(),
                                   "peer_missing_ids": missing[:10].tolist()})
                print(f"!!! CONE MISMATCH {name} at ra={ra:.6f} dec={dec:.6f}: {len(theirs)} rows "
                      f"vs ours {len(mine)} (extra {extra[:5].tolist()}, missing "
                      f"{missing[:5].tolist()})", file=sys.stderr)
    return mismatches


def time_crossmatches(spark, left: str, right: str, hats_left: Path | None, hats_right: Path | None,
                      skip: set[str]) -> dict[str, dict]:
    """Wall time from files to the number of pairs within 1″, per peer."""
    results = {"ours: spark": _timed(lambda: ours_crossmatch(spark, left, right))}
    if hats_left is not None and "lsdb" not in skip:
        import lsdb

        def run_lsdb() -> int:
            left_cat = lsdb.open_catalog(str(hats_left), columns=ID_COLUMNS)
            right_cat = lsdb.open_catalog(str(hats_right), columns=ID_COLUMNS)
            pairs = left_cat.crossmatch(
                right_cat, radius_arcsec=XMATCH_RADIUS_ARCSEC, n_neighbors=16,
                suffixes=("_l", "_r"), suffix_method="all_columns", require_right_margin=True)
            return len(pairs.compute(progress_bar=False))

        results["lsdb hats"] = _timed(run_lsdb)
    if "astropy" not in skip:
        results["astropy search_around_sky"] = _timed(lambda: astropy_crossmatch(left, right))
    return results


def ours_crossmatch(spark, left: str, right: str) -> int:
    """The pairs, every column and ``sep_arcsec``, brought into this process as LSDB's
    ``compute()`` brings its frame: a ``count()`` would let Spark skip the columns (the
    match runs in the JVM), less work than the peer does."""
    pairs = lakehouse.crossmatch(
        spark.read.parquet(left), spark.read.parquet(right), XMATCH_RADIUS_ARCSEC
    )
    return pairs.toArrow().num_rows


def astropy_crossmatch(left: str, right: str) -> int:
    a, b = (pq.read_table(f"{p}/part-0.parquet", columns=["ra", "dec"]) for p in (left, right))
    coords = [SkyCoord(t["ra"].to_numpy() * u.deg, t["dec"].to_numpy() * u.deg) for t in (a, b)]
    return len(search_around_sky(coords[0], coords[1], XMATCH_RADIUS_ARCSEC * u.arcsec)[0])


def _timed(run: Callable[[], int]) -> dict:
    started = time.perf_counter()
    pairs = run()
    seconds = time.perf_counter() - started
    log.info("crossmatch: %d pairs in %.1f s", pairs, seconds)
    return {"seconds": seconds, "pairs": int(pairs)}


# -- the run -----------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows of the synthetic sky")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--centres", type=int, default=20, help="cone centres (seeded, uniform)")
    parser.add_argument("--warmups", type=int, default=5, help="untimed warm-up cones per peer")
    parser.add_argument("--xmatch-rows", type=int, default=1_000_000, help="rows a crossmatch side")
    parser.add_argument("--root", type=Path, default=None, help="data folder (default: a temp dir)")
    parser.add_argument("--reuse", action="store_true", help="keep what --root already holds")
    parser.add_argument("--s3", action="store_true", help="also on S3 (settings AVIP_S3_*)")
    parser.add_argument("--skip", default="", help="peers to leave out: spark,duckdb,lsdb,astropy"
                        " (cone: the whole cone part, for short crossmatch runs)")
    parser.add_argument("--out", type=Path, default=None, help="JSON (default: benchmarks/results)")
    return parser.parse_args(argv)


def run(args: argparse.Namespace, spark) -> dict:
    """Prepare what is missing under ``args.root``, measure, print, write the JSON."""
    root: Path = args.root.resolve()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    gaia, flat, xm = root / "gaia_source", root / "flat", root / "xmatch"
    hats_dir, tmp = root / "hats", root / "tmp"
    n_xm = min(args.xmatch_rows, args.rows)
    if (gaia / "_delta_log").is_dir():
        if not args.reuse:
            raise UsageError(f"{root} already holds a sky: pass --reuse, or a fresh --root")
        if (found := table_rows(gaia)) != args.rows:
            raise UsageError(f"{gaia} holds {found:,} rows, not --rows {args.rows:,}: "
                             "use another --root")
    else:
        log.info("generating %d rows into %s", args.rows, root)
        ingest_sky(spark, root, args.rows, args.seed)
    prep: dict[str, float] = {}

    def step(name: str, done: Path, make: Callable[[], object]) -> None:
        if not done.exists():
            log.info("preparing %s", name)
            started = time.perf_counter()
            make()
            prep[name] = time.perf_counter() - started
            log.info("prepared %s in %.0f s", name, prep[name])

    lsdb_on = "lsdb" not in skip
    step("flat parquet", flat / "_SUCCESS", lambda: write_flat_copy(spark, gaia, flat))
    step("xmatch inputs", xm / "right" / "part-0.parquet",
         lambda: xmatch_inputs(gaia, xm, n_xm, args.seed))
    left_file, right_file = xm / "left" / "part-0.parquet", xm / "right" / "part-0.parquet"
    if lsdb_on:
        step("hats sky", hats_dir / "sky" / "hats.properties",
             lambda: hats_import(sorted(flat.glob("part-*.parquet")), hats_dir, "sky", None,
                                 tmp / "sky"))
        step("hats xmatch left", hats_dir / "xm_left" / "hats.properties",
             lambda: hats_import([left_file], hats_dir, "xm_left", None, tmp / "l"))
        step("hats xmatch right", hats_dir / "xm_right" / "collection.properties",
             lambda: hats_import([right_file], hats_dir, "xm_right", 5.0, tmp / "r"))

    centres = random_centres(args.centres + 1, args.seed)
    # The first centre was the only warm-up before --warmups; the timed centres stay the same.
    warmups = np.vstack([centres[:1], random_centres(max(args.warmups - 1, 0), args.seed + 1000)])
    centres = centres[1:]
    if "cone" in skip and args.s3:
        raise UsageError("--s3 compares cones too: leave 'cone' out of --skip")
    peers = {} if "cone" in skip else cone_peers(
        spark, str(root), flat, hats_dir / "sky" if lsdb_on else None, skip)
    cones = {name: time_cones(name, query, centres, warmups) for name, query in peers.items()}
    mismatches = check_cones(cones, "ours: spark path", centres) if cones else []
    hats_xm = (hats_dir / "xm_left", hats_dir / "xm_right") if lsdb_on else (None, None)
    xmatch = time_crossmatches(spark, str(xm / "left"), str(xm / "right"), *hats_xm, skip)
    s3 = None
    if args.s3:
        s3_root = s3_copy(root, xm, args.reuse, args.rows, args.seed)
        s3_peers = cone_peers(spark, s3_root, None, None, skip)
        s3_cones = {name: time_cones("S3 " + name, query, centres, warmups)
                    for name, query in s3_peers.items()}
        local = "ours: spark path (local)"
        mismatches += check_cones({**s3_cones, local: cones["ours: spark path"]}, local, centres)
        s3_xmatch = _timed(lambda: ours_crossmatch(spark, f"{s3_root}/xmatch/left",
                                                   f"{s3_root}/xmatch/right"))
        s3 = {"root": s3_root, "cone": s3_cones, "crossmatch": {"ours: spark": s3_xmatch},
              "interactive_alternating": alternating_cones(str(root), s3_root, centres, warmups,
                                                           RADIUS_DEG, ID_COLUMNS)}
        mismatches += s3["interactive_alternating"]["mismatches"]
    figures = {"rows": args.rows, "seed": args.seed, "radius_deg": RADIUS_DEG,
               "centres": centres.tolist(), "warmup_centres": warmups.tolist(), "xmatch_rows": n_xm,
               "xmatch_radius_arcsec": XMATCH_RADIUS_ARCSEC, "prepare_s": prep, "cone": cones,
               "cone_mismatches": mismatches, "crossmatch": xmatch, "s3": s3}
    report(figures)
    out = args.out or REPO / "benchmarks" / "results" / f"lakehouse-{args.rows}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(_public(figures), indent=1))
    log.info("figures written to %s", out)
    return _public(figures)


def _public(value):
    """The figures without the per-centre id arrays."""
    if isinstance(value, dict):
        return {k: _public(v) for k, v in value.items() if not k.startswith("_")}
    return [_public(v) for v in value] if isinstance(value, list) else value


def report(f: dict) -> None:
    cones = f["cone"]
    if cones:
        ours, inter = cones["ours: spark path"], cones["ours: interactive"]
        mean_rows = np.mean(ours["counts"])
        print(f"\n{f['rows']:,} rows; {f['radius_deg']}° cone over {len(f['centres'])} centres "
              f"(mean {mean_rows:.0f} rows a cone); ratio = peer p50 / ours p50")
        print(f"{'peer':26} {'p50 s':>8} {'p95 s':>8} {'/spark path':>12} {'/interactive':>13}")
        for name, c in cones.items():
            print(f"{name:26} {c['p50']:8.3f} {c['p95']:8.3f} {c['p50'] / ours['p50']:11.2f}x "
                  f"{c['p50'] / inter['p50']:12.2f}x")
        agree = "ALL PEERS AGREE" if not f["cone_mismatches"] else "MISMATCHES: see stderr"
        print(f"cone results: {agree}")
    xm = f["crossmatch"]
    base = xm["ours: spark"]
    print(f"\n{f['xmatch_radius_arcsec']}″ crossmatch, {f['xmatch_rows']:,} rows a side")
    print(f"{'peer':26} {'wall s':>8} {'pairs':>10} {'rows/s':>10} {'/ours':>8}")
    for name, x in xm.items():
        rate = f["xmatch_rows"] / x["seconds"]
        print(f"{name:26} {x['seconds']:8.1f} {x['pairs']:10,} {rate:10,.0f} "
              f"{x['seconds'] / base['seconds']:7.2f}x")
    if len({x["pairs"] for x in xm.values()}) > 1:
        counts = ", ".join(f"{n}={x['pairs']}" for n, x in xm.items())
        print(f"!!! CROSSMATCH PAIR COUNTS DISAGREE: {counts}", file=sys.stderr)
        print("crossmatch pairs: DISAGREE (see stderr)")
    else:
        print("crossmatch pairs: ALL PEERS AGREE")
    if f["s3"]:
        s3 = f["s3"]
        print(f"\nS3 ({s3['root']}) vs local disk")
        for name, c in s3["cone"].items():
            print(f"{name:26} p50 {c['p50']:.3f} s  p95 {c['p95']:.3f} s  S3/local p50 "
                  f"{c['p50'] / cones[name]['p50']:.2f}x")
        x = s3["crossmatch"]["ours: spark"]
        print(f"{'crossmatch ours: spark':26} {x['seconds']:.1f} s  {x['pairs']:,} pairs  S3/local "
              f"{x['seconds'] / base['seconds']:.2f}x")
        alt = s3["interactive_alternating"]
        print(f"{'interactive, alternating':26} local p50 {alt['local']['p50']:.4f} s  S3 p50 "
              f"{alt['s3']['p50']:.4f} s  S3/local p50 {alt['ratio_p50']:.2f}x  "
              f"(load {alt['load_1min']:.1f})")
        print(f"{'  what S3 adds':26} S3 - local p50 {alt['s3_minus_local']['p50']:.4f} s; "
              f"{np.mean(alt['requests_per_cone']):.2f} requests and "
              f"{np.mean(alt['bytes_per_cone']) / 1e3:.0f} kB a cone; one bare GET of the same "
              f"bytes p50 {alt['get_same_bytes']['p50']:.4f} s, of 1 byte "
              f"{alt['get_1_byte']['p50']:.4f} s")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    if args.root is None:
        args.root = Path(tempfile.mkdtemp(prefix="avip-bench-lakehouse-"))
    spark = lakehouse.get_spark(
        "local[2]", app_name="bench-lakehouse", conf={"spark.ui.enabled": "false"}
    )
    try:
        figures = run(args, spark)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        spark.stop()
    pair_counts = {x["pairs"] for x in figures["crossmatch"].values()}
    disagree = figures["cone_mismatches"] or len(pair_counts) > 1
    return 1 if disagree else 0


if __name__ == "__main__":
    sys.exit(main())
