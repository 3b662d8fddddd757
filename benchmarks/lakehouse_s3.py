"""The S3 half of ``benchmarks/lakehouse.py --s3``: the sky copied to S3, and the
interactive cone timed on local disk and on S3 alternately.

Imported by ``benchmarks/lakehouse.py`` (run as a script or loaded by path), so
it needs only the repository root on ``sys.path``, which that script puts first.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
from deltalake import DeltaTable

import lakehouse
from config.s3 import arrow_filesystem, arrow_path, storage_options
from config.settings import get_settings

log = logging.getLogger("bench.lakehouse")


def s3_copy(root: Path, xm: Path, reuse: bool, rows: int, seed: int) -> str:
    """The same table on S3, byte for byte (Delta table and crossmatch inputs); the s3a root.

    Delta's log names its files relative to the table, so copying the folder
    gives the *same* table on S3: same files, row groups and statistics as on
    local disk, so S3/local compares storage only. (It used to be rewritten
    through Spark, which re-split the files: slower to prepare and not quite
    the same table.) The log is copied last: a table whose copy was cut short
    has no log yet, and ``--reuse`` copies it again.
    """
    settings = get_settings()
    # named after the local table's files, so two layouts of the same sky (two --root
    # folders) never share, or reuse, one S3 copy
    names = pa.table(DeltaTable(str(root / "gaia_source")).get_add_actions())["path"]
    digest = hashlib.sha1("\n".join(sorted(names.to_pylist())).encode()).hexdigest()[:8]
    s3_root = f"s3a://{settings.s3_bucket}/bench-lakehouse-{rows}-s{seed}-{digest}"
    try:
        if reuse and lakehouse.table_info(f"{s3_root}/gaia_source"):
            log.info("reusing %s", s3_root)
            return s3_root
    except FileNotFoundError:
        pass
    log.info("copying the sky to %s", s3_root)
    started = time.perf_counter()
    s3, local = arrow_filesystem(settings), pafs.LocalFileSystem()
    dest = s3_root.removeprefix("s3a://")
    s3.delete_dir_contents(dest, missing_dir_ok=True)
    gaia = root / "gaia_source"
    folders = [p for p in sorted(gaia.iterdir()) if p.name != "_delta_log"] + [gaia / "_delta_log"]
    folders += [xm / "left", xm / "right"]
    for folder in folders:
        target = f"{dest}/{folder.relative_to(root)}"
        pafs.copy_files(str(folder), target, source_filesystem=local,
                        destination_filesystem=s3, chunk_size=8 << 20)
    log.info("copied in %.0f s", time.perf_counter() - started)
    return s3_root


def alternating_cones(root: str, s3_root: str, centres: np.ndarray, warmups: np.ndarray,
                      radius_deg: float, columns: list[str]) -> dict:
    """The interactive cone timed on local disk and on S3 centre by centre, alternately,
    and next to each S3 cone one bare GET of as many bytes as that cone fetched.

    The figures above time all local cones, then all S3 cones, minutes apart; on
    a shared machine the load drifts in between and skews the S3/local ratio.
    Alternating puts the same load on both sides of it (same readers, centres,
    columns and answer check; the same untimed warm-ups each).

    The bare GETs (same pyarrow S3 filesystem and connection pool as the
    reader, a data file of the table's version, a random offset; plus a 1-byte GET) are
    the object store's own price for the request a cone makes (timed after the
    cones, one per cone, with the same sizes): when S3 cone
    minus local cone is about one such GET, the reader adds nothing of its own
    and the ratio is set by the server's per-request cost against the local cone.
    """
    settings = get_settings()
    s3fs = arrow_filesystem(settings)
    local_files = DeltaTable(f"{root}/gaia_source").file_uris()
    s3_files = [arrow_path(uri) for uri in DeltaTable(
        f"{s3_root}/gaia_source", storage_options=storage_options(settings)).file_uris()]
    # Both copies read whole once, so that both sides are served from memory: this
    # compares storage paths, not this machine's disk (after a big test run the page
    # cache had dropped MinIO's files, and a 1-byte GET took 3.6 ms instead of ~1.5)
    for path in local_files:
        Path(path.removeprefix("file://")).read_bytes()
    handles = [s3fs.open_input_file(path) for path in s3_files]
    for handle in handles:
        handle.read()
    readers = {"local": lakehouse.open_interactive(root),
               "s3": lakehouse.open_interactive(s3_root, settings=settings)}
    for reader in readers.values():
        for ra, dec in warmups:
            reader.cone(float(ra), float(dec), radius_deg, columns=columns)
    rng = np.random.default_rng(7)

    def bare_get(size: int) -> float:
        handle = handles[rng.integers(len(handles))]
        offset = int(rng.integers(0, max(handle.size() - size, 1)))
        started = time.perf_counter()
        handle.read_at(size, offset)
        return time.perf_counter() - started

    for size in (1, 1 << 18):  # the connection pool and server warm up too
        for _ in range(5):
            bare_get(size)
    seconds: dict[str, list[float]] = {name: [] for name in
                                       ("local", "s3", "get_same_bytes", "get_1_byte")}
    requests, fetched = [], []
    mismatches = []
    for ra, dec in centres:
        found = {}
        before = readers["s3"].remote_requests, readers["s3"].remote_bytes
        for name, reader in readers.items():
            started = time.perf_counter()
            rows = reader.cone(float(ra), float(dec), radius_deg, columns=columns)
            seconds[name].append(time.perf_counter() - started)
            found[name] = np.sort(rows["source_id"].to_numpy())
        requests.append(readers["s3"].remote_requests - before[0])
        fetched.append(readers["s3"].remote_bytes - before[1])
        if not np.array_equal(found["local"], found["s3"]):
            mismatches.append({"peer": "ours: interactive on S3 (alternating)", "ra": float(ra),
                               "dec": float(dec), "ours": len(found["local"]),
                               "peer_rows": len(found["s3"])})
            print(f"!!! CONE MISMATCH interactive S3 vs local at ra={ra:.6f} dec={dec:.6f}",
                  file=sys.stderr)
    # after the cones, not between them: the server's work for a GET goes on after it
    # answers (its garbage collector), and slowed the local cone that came next
    for size in fetched:
        seconds["get_same_bytes"].append(bare_get(max(size, 1)))
        seconds["get_1_byte"].append(bare_get(1))
    out: dict = {name: {"p50": float(np.percentile(v, 50)), "p95": float(np.percentile(v, 95)),
                        "seconds": v} for name, v in seconds.items()}
    extra = np.subtract(seconds["s3"], seconds["local"])
    out["s3_minus_local"] = {"p50": float(np.percentile(extra, 50)), "seconds": extra.tolist()}
    out["requests_per_cone"], out["bytes_per_cone"] = requests, fetched
    out["ratio_p50"] = out["s3"]["p50"] / out["local"]["p50"]
    out["load_1min"], out["mismatches"] = os.getloadavg()[0], mismatches
    log.info("interactive alternating: local p50 %.4f s, S3 p50 %.4f s (%.2fx); one GET of the "
             "same bytes p50 %.4f s", out["local"]["p50"], out["s3"]["p50"], out["ratio_p50"],
             out["get_same_bytes"]["p50"])
    return out
