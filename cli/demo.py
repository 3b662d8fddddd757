"""``avip demo``: the platform end to end on embedded defaults.

1. the catalogue tour (:mod:`cli.demo_catalogue`): ingests the real DR3 sample
   and a synthetic sky with injected open clusters if missing, runs cone
   searches and a crossmatch with timings, and writes sky-density maps;
2. starts the API, the scheduler and the dashboards (a fresh SQLite store and
   user space under ``<data_dir>/demo``) on loopback;
3. as the operator, creates a scientist and a token; as the scientist,
   submits ``cluster_finder`` through the REST API and watches it;
4. downloads the members it found and prints them against the injected truth;
5. stops the service.
"""

from __future__ import annotations

import io
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.table import Table

from api.client import AvipClient
from cli.jobs import follow
from cli.output import EXIT_FAILED, console, errors, fail, report
from config.settings import get_settings


def _free_port(preferred: int) -> int:
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", preferred)) != 0:
            return preferred
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def compare_with_truth(members: pd.DataFrame, truth_members: pd.DataFrame,
                       truth_clusters: pd.DataFrame) -> Table:
    """One row per injected cluster: which found cluster holds most of its members."""
    joined = members.merge(truth_members.rename(columns={"cluster_id": "true_id"}),
                           on="source_id", how="inner")
    table = Table("injected", "ra", "dec", "plx", "members", "found", "recovered", "size",
                  title="cluster_finder against the injected truth")
    found_sizes = members.groupby("cluster_id").size()
    for row in truth_clusters.sort_values("cluster_id").itertuples():
        hits = joined[joined.true_id == row.cluster_id].groupby("cluster_id").size()
        injected = int((truth_members.cluster_id == row.cluster_id).sum())
        if hits.empty:
            table.add_row(str(row.cluster_id), f"{row.ra:.2f}", f"{row.dec:.2f}",
                          f"{row.parallax:.2f}", str(injected), "-", "0 %", "-")
            continue
        best = int(hits.idxmax())
        table.add_row(str(row.cluster_id), f"{row.ra:.2f}", f"{row.dec:.2f}",
                      f"{row.parallax:.2f}", str(injected), str(best),
                      f"{hits.max() / injected:.0%}", str(int(found_sizes[best])))
    return table


def small_jobs(scientist: AvipClient, centres: list[tuple[float, float]]) -> Table:
    """One 1° cone_search per centre, each followed to its end: the warm lane's answer time
    (submit to succeeded, as the scientist sees it) next to where it ran."""
    table = Table("job", "cone (ra, dec)", "lane", "rows", "submit → succeeded",
                  title="small questions: cone_search, 1° radius")
    for ra, dec in centres:
        started = time.perf_counter()
        job = scientist.submit("cone_search", {"ra": ra, "dec": dec, "radius_deg": 1.0,
                                               "formats": ["csv"]})
        while job.state not in ("succeeded", "failed", "cancelled"):
            time.sleep(0.02)
            job = scientist.job(job.id)
        seconds = time.perf_counter() - started
        rows = job.progress.message if job.state != "succeeded" else next(
            (line for line in scientist.logs(job.id).splitlines() if "rows selected" in line),
            "").rsplit(": ", 1)[-1]
        table.add_row(str(job.id), f"{ra:.1f}, {dec:+.1f}", f"{job.backend} ({job.state})",
                      rows, f"{seconds:.2f} s")
    return table


TAP_CONE = ("SELECT source_id, ra, dec, phot_g_mean_mag FROM gaiadr3.gaia_source WHERE "
            "1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra}, {dec}, 0.5))")


def tap_queries(url: str, token: str, centres: list[tuple[float, float]]) -> Table:
    """Sync ADQL cones through /tap over HTTP, as TOPCAT or pyvo send them (VOTable
    BINARY2 back): the time from request to the last byte."""
    import httpx

    table = Table("cone (ra, dec)", "rows", "request → VOTable",
                  title="TAP sync ADQL: 0.5° CONTAINS cones, in-process")
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"},
                      timeout=60) as http:
        for ra, dec in centres:
            started = time.perf_counter()
            answer = http.post("/tap/sync", data={"LANG": "ADQL", "REQUEST": "doQuery",
                                                  "QUERY": TAP_CONE.format(ra=ra, dec=dec)})
            seconds = time.perf_counter() - started
            if answer.status_code != 200:
                raise typer.Exit(fail(f"TAP answered {answer.status_code}: {answer.text[:300]}",
                                      EXIT_FAILED))
            from astropy.io.votable import parse_single_table

            rows = len(parse_single_table(io.BytesIO(answer.content)).array)
            table.add_row(f"{ra:.1f}, {dec:+.1f}", str(rows), f"{seconds * 1000:.0f} ms")
    return table


def demo(
    rows: Annotated[int, typer.Option(help="Stars in the synthetic sky (if ingested now).")]
    = 1_000_000,
    clusters: Annotated[int | None, typer.Option(
        help="Injected clusters (if ingested now; default about one per 40,000 stars).")] = None,
    seed: Annotated[int, typer.Option(help="Sky seed.")] = 1,
) -> None:
    """Run the platform end to end: the catalogue tour, then API + scheduler + dashboards,
    with cluster_finder run as a scientist."""
    import uvicorn

    # The service stack and Spark load only when the demo runs, not for `avip --help`.
    from api.bootstrap import ensure_operator
    from api.main import create_app
    from cli.demo_catalogue import catalogue_tour

    base = get_settings()
    root = base.catalogue_root
    catalogue_tour(root, Path("out"), rows, seed, clusters, console)
    demo_dir = base.data_dir / "demo"
    shutil.rmtree(demo_dir, ignore_errors=True)
    settings = base.model_copy(update={"data_dir": demo_dir, "lakehouse_uri": root,
                                       "database_url": None})
    app = create_app(settings, run_scheduler=True)
    token_file = ensure_operator(app.state.sessions, demo_dir, 1)
    assert token_file is not None
    port = _free_port(settings.api_port)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    console.print(f"API and scheduler up at {url} (docs: {url}/docs)")
    from panel_apps.app import serve as serve_dashboards  # Panel + Bokeh: seconds

    dash_port = _free_port(5006)
    dashboards = serve_dashboards(url, address="127.0.0.1", port=dash_port,
                                  cache_root=demo_dir / "panel-cache", threaded=True)
    console.print(f"dashboards up at http://127.0.0.1:{dash_port}/")
    try:
        with AvipClient(url, token_file.read_text().strip()) as operator:
            operator.create_user("scientist", ["scientist"])
            token = operator.issue_token("scientist", "demo").token
        with AvipClient(url, token) as scientist:
            job = scientist.submit("cluster_finder", {})
            console.print(f"submitted cluster_finder as 'scientist': job {job.id} "
                          f"({job.cores} cores, {job.memory_mb} MB)")
            job = follow(scientist, job.id)
            if job.state != "succeeded":
                report(f"job {job.id} {job.state}: {job.reason}")
                errors.print(scientist.logs(job.id)[-3000:], markup=False)
                raise typer.Exit(EXIT_FAILED)
            console.print(f"job {job.id} succeeded in {job.run_seconds:.0f} s; results: "
                          + ", ".join(f.path for f in scientist.results(job.id).data))
            out = demo_dir / "download"
            members_file = scientist.download_result(job.id, "members.parquet",
                                                     out / "members.parquet", "parquet")
        from deltalake import DeltaTable

        members = pd.read_parquet(members_file)
        truth_members = DeltaTable(f"{root}/synthetic_members").to_pandas()
        truth_clusters = DeltaTable(f"{root}/synthetic_clusters").to_pandas()
        console.print(compare_with_truth(members, truth_members, truth_clusters))
        console.print(f"{members['cluster_id'].nunique()} clusters found, "
                      f"{len(truth_clusters)} injected")
        with AvipClient(url, token) as scientist:
            console.print(small_jobs(scientist, [(56.75, 24.12), (83.8, -5.4), (10.7, 41.3),
                                                 (201.4, -47.5), (266.4, -29.0)]))
        console.print(tap_queries(url, token, [(56.75, 24.12), (83.8, -5.4), (10.7, 41.3),
                                               (201.4, -47.5), (266.4, -29.0)]))
        console.print(f"TAP for TOPCAT / pyvo / astroquery: {url}/tap (token: Bearer)")
    finally:
        dashboards.stop()
        server.should_exit = True
        thread.join(timeout=60)
        console.print("service stopped")
