"""Job latency as a scientist sees it: submit → ``succeeded`` → first result byte.

Every figure is measured client-side against real ``avip serve`` processes (API +
scheduler + warm workers in one process, started here as subprocesses, each with a fresh
data dir in a temp folder and ``AVIP_LAKEHOUSE_URI`` on the catalogue): ``t0`` just before
``POST /jobs``, then ``GET /jobs/{id}`` every ``--poll-ms`` until a final state, then
``GET /jobs/{id}/results`` and the first listed file, streamed until its first byte
arrives: ``t1``. The job JSON's ``wait_seconds`` (queued → running) and ``run_seconds``
(running → finished) give the server's split; the rest (submission, poll granularity, the
scheduler noticing the end, listing, first byte) is printed as "rest". Task outputs are
cached by content address, so every job has parameters of its own (another cone centre,
a g_max or a match radius a hair apart): no figure is a cache hit.

Phases (``--phases``, any of them; they run in this order):

1. **alone** — one user, one job at a time, per AVI (``--avis``):
   ``cone_search`` (``--cone-radius``, default 1°, at random centres), ``sky_counts``
   (order 5, g_max a hair below 21.9: every star of the demo sky) and ``crossmatch`` (a
   ``--xmatch-rows`` table, default 10,000, drawn from the catalogue itself with ~0.3″
   offsets, written as CSV and uploaded to the user's space). For each AVI a fresh server
   is started (``--no-cold-each``: one server for all) and the AVI's first job is
   submitted as soon as the API answers: **cold (API up)**, which includes waiting for the
   warm workers to warm up (printed: how many were warm when it was submitted and when
   each became warm). Then, once every worker is warm, the AVI's next job is **first
   after ready** and ``--jobs`` more are **warm**: p50/p95 of those against the targets.
2. **concurrent** — ``--users`` scientists (default 20), each running ``--inflight`` small
   jobs at a time back to back (``--concurrent-avis`` in turn) for ``--duration`` s, while
   the first of them also runs one large job (``--large-avi``, default ``cluster_finder``,
   always the Spark lane). The large job is first timed alone on the same server. Printed:
   completed small jobs per user and the largest deviation from an equal share over every
   user (each lane is shared apart, so the large job costs its user no turn at small jobs),
   the large job's time with the users over its time alone, and the small
   jobs' latency under load. The phase lasts ``--duration`` or until the large job ends,
   whichever is later; then no job is submitted any more, those under way finish and
   are not counted (cancelling one that just started would kill its warm worker). Users
   poll every ``--concurrent-poll-ms`` (default 200): twenty clients at 20 ms would be
   ~1,000 requests/s, most of a core of this 2-core host.
3. **queued** — warm ``cone_search`` latency A-B-A: without, with ``--queued`` jobs
   (default 10,000) of ``--queued-users`` other users (default 50) waiting, and without
   again (one UPDATE cancels them; both A series pooled are the baseline, their difference
   is the machine's drift). Those jobs are inserted straight into the job store
   (``api.store.jobs.create_job``: the API would refuse them, as their users' pools — set
   by the operator to 1 core, 512 MB — can never fit them, and a user may queue only 100;
   half are warm-lane jobs of 1 core and 1,024 MB, half Spark-lane ones of 2 cores and
   2,048 MB). They stay ``queued`` and the dispatcher weighs every one of them
   each round (checked: the newest has a queue position; the scheduler's decision time,
   from ``/metrics``, is printed per series). Target: the p50 grows by ≤ 50 ms.
4. **spark** — the peer: the same ``cone_search`` on a server with ``AVIP_WARM_WORKERS=0``,
   where every job is its own spark-submit (``--spark-jobs``, default 3, ~15 s each).
   Ratios to it are printed next to the warm figures.

A final table lists every figure with its target (met / NOT met) and, for ``cone_search``,
its ratio to the Spark-lane peer; the figures and every job's timings go to
``benchmarks/results/job_latency.json`` (``--out``). A job that fails is printed loudly
(``!!! JOB FAILED``) with its reason and log tail, and makes the exit code 1; a target
not met does not (this measures, it asserts nothing). Servers are always stopped (their
process group, then any process left with their data dir in its environment, which is
reported: nothing should outlive ``avip serve``).

    .venv/bin/python benchmarks/job_latency.py                      # the full run (~15 min)
    .venv/bin/python benchmarks/job_latency.py --jobs 3 --users 4 --duration 20 \\
        --queued 1000 --large-params '{"g_max": 12}'                  # a smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

# Python puts this folder first on sys.path, where benchmarks/lakehouse.py would shadow the
# lakehouse package the platform imports.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from api.client import ApiError, AvipClient  # noqa: E402
from api.schemas import JobPublic, QuotaPublic  # noqa: E402

FINAL = ("succeeded", "failed", "cancelled")
PHASES = ("alone", "concurrent", "queued", "spark")
SMALL_AVIS = ("cone_search", "sky_counts", "crossmatch")
XMATCH_PATH = "bench/xmatch.csv"
#: Targets (issue: job latency), seconds unless said otherwise.
TARGETS = {"cone_search p50": 1.0, "cone_search p95": 2.5, "crossmatch p50": 3.0,
           "sky_counts p50": 3.0, "fairness": 15.0, "large ratio": 1.2, "queued delta": 0.050}
GB = 1 << 30


def log(message: str) -> None:
    """Progress to stderr (stdout holds the figures)."""
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile, as in api_load.py (p95 of 20 values is the largest)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def load_average() -> str:
    return f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


# --- job parameters: every job its own, so no task is a cache hit ------------------------


class Params:
    """Distinct parameters for each job (a process-wide counter and a seeded generator)."""

    def __init__(self, seed: int, cone_radius: float, cone_formats: list[str] | None,
                 large_params: dict[str, Any]) -> None:
        self._rng = random.Random(seed)
        self._count = itertools.count()
        self._lock = threading.Lock()
        self.cone_radius = cone_radius
        self.cone_formats = cone_formats
        self.large_params = large_params

    def _next(self) -> tuple[int, float, float]:
        with self._lock:
            k = next(self._count)
            ra = self._rng.uniform(0.0, 360.0)
            dec = math.degrees(math.asin(self._rng.uniform(-1.0, 1.0)))  # uniform on the sphere
        return k, ra, dec

    def for_avi(self, avi: str) -> dict[str, Any]:
        k, ra, dec = self._next()
        if avi == "cone_search":
            params: dict[str, Any] = {"ra": round(ra, 6), "dec": round(dec, 6),
                                      "radius_deg": self.cone_radius}
            if self.cone_formats:
                params["formats"] = self.cone_formats
            return params
        if avi == "sky_counts":  # the demo sky's faintest star is G ~21.03: every star counts
            return {"order": 5, "g_max": round(21.9 - 1e-5 * k, 5)}  # > 21.03 to k = 87,000
        if avi == "crossmatch":
            return {"table_path": f"space://me/{XMATCH_PATH}", "ra_column": "ra",
                    "dec_column": "dec", "radius_arcsec": round(1.0 + 1e-4 * k, 4)}
        base = float(self.large_params.get("min_significance", 3.0))  # cluster_finder
        return {**self.large_params, "min_significance": round(base + 1e-4 * k, 4)}


def write_xmatch_table(catalogue: str, rows: int, seed: int, dest: Path) -> Path:
    """``rows`` random catalogue sources moved by ~0.3″ (σ 0.2″ per axis), as CSV: a user
    table most of whose rows match one Gaia source within 1″."""
    from deltalake import DeltaTable

    if "://" in catalogue:
        raise SystemExit(f"the crossmatch table is drawn from a local catalogue; {catalogue} "
                         "is not one (use --avis without crossmatch)")
    dataset = DeltaTable(f"{catalogue}/gaia_source").to_pyarrow_dataset()
    table = dataset.to_table(columns=["ra", "dec"])
    rng = np.random.default_rng(seed)
    pick = rng.choice(table.num_rows, size=min(rows, table.num_rows), replace=False)
    ra = table["ra"].to_numpy()[pick]
    dec = table["dec"].to_numpy()[pick]
    sigma = 0.2 / 3600.0
    dec_new = np.clip(dec + rng.normal(0.0, sigma, len(pick)), -90.0, 90.0)
    ra_new = (ra + rng.normal(0.0, sigma, len(pick)) / np.maximum(
        np.cos(np.radians(dec)), 1e-3)) % 360.0
    dest.parent.mkdir(parents=True, exist_ok=True)
    with dest.open("w", encoding="utf-8") as out:
        out.write("id,ra,dec\n")
        for i, (a, d) in enumerate(zip(ra_new, dec_new, strict=True)):
            out.write(f"{i},{a:.9f},{d:.9f}\n")
    return dest


# --- one server ----------------------------------------------------------------------


def metric_values(text: str, name: str) -> dict[str, float]:
    """``{labels: value}`` of one metric in Prometheus' text format."""
    found = {}
    for match in re.finditer(rf"^{re.escape(name)}(\{{[^}}]*\}})?\s+(\S+)$", text, re.M):
        found[match.group(1) or ""] = float(match.group(2))
    return found


class Server:
    """One ``avip serve`` subprocess with a data dir of its own; :meth:`stop` always ends
    it, its process group and whatever it left behind."""

    def __init__(self, root: Path, label: str, catalogue: str, warm_workers: int,
                 extra_env: dict[str, str]) -> None:
        self.root = root / label
        self.data = self.root / "data"
        self.data.mkdir(parents=True)
        self.label = label
        self.warm_workers = warm_workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # The platform's settings come only from what is set here: an AVIP_* of the caller's
        # shell (a database URL, a remote warm lane) would measure another platform.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AVIP_")}
        self.env.update({"AVIP_DATA_DIR": str(self.data), "AVIP_LAKEHOUSE_URI": catalogue,
                         "AVIP_API_HOST": "127.0.0.1", "AVIP_API_PORT": str(self.port),
                         "AVIP_WARM_WORKERS": str(warm_workers), **extra_env})
        self.log_path = self.root / "serve.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.api_up = 0.0  # perf_counter when /readyz first answered 200
        self.token = ""
        self.first_warm: float | None = None  # perf_counter when a worker, then all, were warm
        self.all_warm: float | None = None
        self._watcher: threading.Thread | None = None
        self._stop_watch = threading.Event()
        self.stopped = False

    def start(self, timeout_s: float = 180.0) -> None:
        """Start it and return as soon as the API answers (the warm workers still warm up)."""
        command = [str(Path(sys.executable).parent / "avip"), "serve", "--dashboards-port", "0"]
        with self.log_path.open("ab") as output:
            self.process = subprocess.Popen(command, env=self.env, cwd=REPO,
                                            stdout=output, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        deadline = time.perf_counter() + timeout_s
        with httpx.Client(base_url=self.url, timeout=2.0) as http:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if http.get("/readyz").status_code == 200:
                        break
                if self.process.poll() is not None or time.perf_counter() > deadline:
                    raise RuntimeError(f"avip serve ({self.label}) did not start; its log:\n"
                                       + self.log_tail())
                time.sleep(0.02)
        self.api_up = time.perf_counter()
        self.token = (self.data / "operator.token").read_text().strip()
        if self.warm_workers:
            self._watcher = threading.Thread(target=self._watch_warm_up, daemon=True)
            self._watcher.start()

    def log_tail(self, chars: int = 3000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-chars:]
        return ""

    def metrics(self) -> str:
        response = httpx.get(f"{self.url}/metrics", timeout=10.0,
                             headers={"Authorization": f"Bearer {self.token}"})
        response.raise_for_status()
        return response.text

    def warm_states(self) -> dict[str, int]:
        """Warm workers by state (starting, idle, reserved, busy, cleaning)."""
        values = metric_values(self.metrics(), "avip_warm_workers")
        return {re.sub(r'.*state="([^"]+)".*', r"\1", k): int(v) for k, v in values.items()}

    def warm_count(self) -> int:
        """Workers past their warm-up (what the scheduler may fill)."""
        states = self.warm_states()
        return sum(states.get(s, 0) for s in ("idle", "reserved", "busy", "cleaning"))

    def _watch_warm_up(self) -> None:
        while not self._stop_watch.is_set():
            with contextlib.suppress(httpx.HTTPError):
                warm = self.warm_count()
                now = time.perf_counter()
                if warm and self.first_warm is None:
                    self.first_warm = now
                if warm >= self.warm_workers:
                    self.all_warm = now
                    return
            time.sleep(0.1)

    def wait_warm(self, timeout_s: float = 300.0) -> float:
        """Wait until every warm worker is warm; seconds after the API answered."""
        deadline = time.perf_counter() + timeout_s
        if self._watcher is not None:
            self._watcher.join(timeout_s)
        # and now: a worker replaced since (killed, recycled) warms up again
        while self.warm_workers and (self.all_warm is None
                                     or self.warm_count() < self.warm_workers):
            if time.perf_counter() > deadline:
                raise RuntimeError(f"the warm workers of {self.label} were not warm after "
                                   f"{timeout_s:.0f} s; log:\n{self.log_tail()}")
            time.sleep(0.2)
        return (self.all_warm or self.api_up) - self.api_up

    def since_up(self, moment: float | None) -> str:
        return "not yet" if moment is None else f"+{moment - self.api_up:.1f} s"

    def decision_seconds(self) -> tuple[float, float]:
        """(sum, count) of the scheduler's decision-time histogram."""
        text = self.metrics()
        total = sum(metric_values(text, "avip_scheduler_decision_seconds_sum").values())
        count = sum(metric_values(text, "avip_scheduler_decision_seconds_count").values())
        return total, count

    def stop(self) -> list[str]:
        """SIGTERM its process group (uvicorn shuts down, the warm lane kills its workers),
        SIGKILL after 60 s; then kill any process still carrying this server's data dir in
        its environment (warm workers and spark-submit drivers run in sessions of their
        own). Returns what had to be killed that way."""
        self._stop_watch.set()
        self.stopped = True
        if self.process is None:
            return []
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # anything left in its group
        time.sleep(0.5)  # let the workers' parent-death signal land first
        return kill_leftovers(f"AVIP_DATA_DIR={self.data}")


def kill_leftovers(marker: str) -> list[str]:
    """Kill (SIGKILL, by pid) every process whose environment holds ``marker`` exactly;
    returns their command lines."""
    wanted = marker.encode()
    killed = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if wanted not in (proc / "environ").read_bytes().split(b"\0"):
                continue
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:160]
            os.kill(int(proc.name), signal.SIGKILL)
            killed.append(f"{proc.name}: {command}")
        except (OSError, ProcessLookupError):
            continue
    return killed


# --- one job, timed ------------------------------------------------------------------


@dataclass
class Timing:
    """One job as its client saw it (seconds from ``t0``, just before the POST)."""

    avi: str
    user: str
    job_id: int | None
    state: str
    total_s: float | None = None  # t0 → first result byte
    submit_s: float = 0.0  # the POST's round trip
    final_s: float = 0.0  # t0 → a poll saw the final state
    wait_s: float | None = None  # server: submitted → running
    run_s: float | None = None  # server: running → finished
    lane: str = ""
    backend: str | None = None
    first_file: str | None = None
    reason: str | None = None
    t0: float = 0.0  # perf_counter at submission
    t1: float = 0.0  # perf_counter at the first byte (or the end)

    @property
    def ok(self) -> bool:
        return self.state == "succeeded" and self.total_s is not None

    @property
    def rest_s(self) -> float | None:
        if self.total_s is None or self.wait_s is None or self.run_s is None:
            return None
        return self.total_s - self.wait_s - self.run_s


class User:
    """A scientist's API session: the typed client, plus raw httpx for the first byte."""

    def __init__(self, url: str, name: str, token: str) -> None:
        self.name = name
        self.client = AvipClient(url, token, timeout=60.0)
        self.http = httpx.Client(base_url=url, timeout=60.0,
                                 headers={"Authorization": f"Bearer {token}"})

    def close(self) -> None:
        self.client.close()
        self.http.close()

    def first_byte(self, job_id: int) -> str:
        """List the results and read the first byte of the first file; returns its path."""
        listing = self.client.results(job_id)
        if not listing.data:
            raise RuntimeError(f"job {job_id} succeeded but lists no result")
        path = listing.data[0].path
        quoted = urllib.parse.quote(path, safe="/")
        with self.http.stream("GET", f"/jobs/{job_id}/results/{quoted}") as response:
            if response.status_code != 200:
                response.read()
                raise RuntimeError(f"GET result {path}: HTTP {response.status_code} "
                                   f"{response.text[:200]}")
            if not next(response.iter_raw(1), b""):
                raise RuntimeError(f"result {path} of job {job_id} is empty")
        return path

    def run(self, avi: str, params: dict[str, Any], poll_s: float,
            timeout_s: float) -> Timing:
        """Submit, poll to a final state, then the first result byte: one :class:`Timing`."""
        t0 = time.perf_counter()
        try:
            job: JobPublic = self.client.submit(avi, params)
        except (ApiError, httpx.HTTPError) as error:
            return Timing(avi, self.name, None, "refused", reason=str(error), t0=t0,
                          t1=time.perf_counter())
        timing = Timing(avi, self.name, job.id, job.state, t0=t0,
                        submit_s=time.perf_counter() - t0)
        while job.state not in FINAL:
            if time.perf_counter() - t0 > timeout_s:
                with contextlib.suppress(ApiError, httpx.HTTPError):
                    self.client.cancel(job.id)
                timing.state, timing.reason = "timeout", f"not finished after {timeout_s:.0f} s"
                timing.t1 = time.perf_counter()
                return timing
            time.sleep(poll_s)
            with contextlib.suppress(httpx.TransportError):  # a dropped poll: poll again
                job = self.client.job(job.id)
        timing.final_s = time.perf_counter() - t0
        timing.state, timing.reason = job.state, job.reason
        timing.wait_s, timing.run_s = job.wait_seconds, job.run_seconds
        timing.lane, timing.backend = job.lane, job.backend
        if job.state == "succeeded":
            try:
                timing.first_file = self.first_byte(job.id)
                timing.t1 = time.perf_counter()
                timing.total_s = timing.t1 - t0
            except (RuntimeError, ApiError, httpx.HTTPError) as error:
                timing.state, timing.reason = "no-result", str(error)
        if not timing.t1:
            timing.t1 = time.perf_counter()
        return timing


    def run_many(self, avi: str, params: Params, n: int, poll_s: float,
                 timeout_s: float) -> list[Timing]:
        """``n`` jobs one after the other, each with parameters of its own."""
        return [self.run(avi, params.for_avi(avi), poll_s, timeout_s) for _ in range(n)]


def make_users(server: Server, names: list[str],
               quota: QuotaPublic | None = None) -> dict[str, str]:
    """Scientists ``names`` (with ``quota`` as an operator's override if given): name → token."""
    tokens = {}
    with AvipClient(server.url, server.token) as operator:
        for name in names:
            operator.create_user(name, ["scientist"])
            tokens[name] = operator.issue_token(name, "job_latency").token
            if quota is not None:
                operator.set_pool(name, quota)
    return tokens


# --- results -------------------------------------------------------------------------


@dataclass
class Figure:
    """One line of the summary: a value against its target (lower is better)."""

    name: str
    value: float | None
    unit: str = "s"
    target: float | None = None
    vs_spark: float | None = None  # the Spark-lane peer's p50 over this value
    note: str = ""

    @property
    def verdict(self) -> str:
        if self.target is None:
            return ""
        if self.value is None or math.isnan(self.value):
            return "not measured"
        return "met" if self.value <= self.target else "NOT met"


@dataclass
class Run:
    """Everything measured, for the summary and the JSON."""

    figures: list[Figure] = field(default_factory=list)
    timings: dict[str, list[Timing]] = field(default_factory=dict)
    failures: list[Timing] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warm_cone_p50: float | None = None
    spark_cone_p50: float | None = None

    def add(self, series: str, timings: list[Timing]) -> list[Timing]:
        self.timings.setdefault(series, []).extend(timings)
        for t in timings:
            if not t.ok:
                self.failures.append(t)
        return [t for t in timings if t.ok]


def fmt(value: float | None, unit: str = "s") -> str:
    if value is None or math.isnan(value):
        return "-"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "ms":
        return f"{value * 1000:.0f} ms"
    if unit == "%":
        return f"{value:.1f} %"
    return f"{value:.2f}{unit}"


def describe(label: str, timings: list[Timing]) -> dict[str, float]:
    """Print one series (p50/p95 and the server's split) and return its figures."""
    good = [t for t in timings if t.ok]
    totals = [t.total_s for t in good if t.total_s is not None]
    waits = [t.wait_s for t in good if t.wait_s is not None]
    runs = [t.run_s for t in good if t.run_s is not None]
    rests = [r for t in good if (r := t.rest_s) is not None]
    lanes = sorted({f"{t.lane}/{t.backend}" for t in good})
    figures = {"n": len(good), "p50": percentile(totals, 0.5), "p95": percentile(totals, 0.95),
               "max": max(totals, default=float("nan")), "wait_p50": percentile(waits, 0.5),
               "run_p50": percentile(runs, 0.5), "rest_p50": percentile(rests, 0.5)}
    failed = len(timings) - len(good)
    print(f"{label}: n={len(good)}{f' ({failed} FAILED)' if failed else ''}  "
          f"p50 {fmt(figures['p50'])}  p95 {fmt(figures['p95'])}  max {fmt(figures['max'])} | "
          f"server wait p50 {fmt(figures['wait_p50'])}, run p50 {fmt(figures['run_p50'])}; "
          f"rest (submit, poll, results, first byte) p50 {fmt(figures['rest_p50'])} | "
          f"lane {', '.join(lanes) or '-'}", flush=True)
    return figures


def one_line(label: str, t: Timing, extra: str = "") -> None:
    if not t.ok:
        print(f"{label}: !!! {t.state}: {t.reason}", flush=True)
        return
    print(f"{label}: {fmt(t.total_s)} (server wait {fmt(t.wait_s)}, run {fmt(t.run_s)}, "
          f"rest {fmt(t.rest_s)}; {t.lane}/{t.backend}){extra}", flush=True)


def report_failures(run: Run, user: User | None, timings: list[Timing]) -> None:
    """Print each failed job with its reason and the tail of its log (the evidence)."""
    for t in timings:
        if t.ok:
            continue
        print(f"!!! JOB FAILED: {t.avi} job {t.job_id} of {t.user}: {t.state}: {t.reason}",
              flush=True)
        if user is not None and t.job_id is not None and t.user == user.name:
            with contextlib.suppress(ApiError, httpx.HTTPError):
                print("    log tail: " + user.client.logs(t.job_id)[-1500:].replace(
                    "\n", "\n    "), file=sys.stderr)


def expect_lane(run: Run, label: str, timings: list[Timing], lane: str) -> None:
    odd = [t for t in timings if t.ok and t.lane != lane]
    if odd:
        message = (f"!!! {label}: {len(odd)} job(s) ran in the {odd[0].lane} lane, not "
                   f"{lane} (e.g. job {odd[0].job_id})")
        print(message, flush=True)
        run.notes.append(message)


# --- phases --------------------------------------------------------------------------


@dataclass
class Context:
    """What every phase needs."""

    args: argparse.Namespace
    params: Params
    run: Run
    root: Path
    xmatch_csv: Path | None
    servers: list[Server] = field(default_factory=list)
    warm_server: Server | None = None  # the running warm-lane server, reused across phases

    def new_server(self, label: str, warm_workers: int) -> Server:
        """Start a server (stopping the current warm one first: one at a time on 2 cores)."""
        self.stop_warm_server()
        extra = {"AVIP_SCHEDULER_INTERVAL_S": str(self.args.scheduler_interval)}
        if self.args.cluster_cores:
            extra["AVIP_CLUSTER_CORES"] = str(self.args.cluster_cores)
        server = Server(self.root, f"{len(self.servers):02d}-{label}", self.args.catalogue,
                        warm_workers, extra)
        self.servers.append(server)
        log(f"starting avip serve [{server.label}] (warm workers {warm_workers}) on "
            f"{server.url}; {load_average()}")
        server.start()
        log(f"[{server.label}] API up after start; log {server.log_path}")
        if warm_workers:
            self.warm_server = server
        return server

    def stop_server(self, server: Server) -> None:
        leftovers = server.stop()
        log(f"[{server.label}] stopped")
        if leftovers:
            message = (f"!!! {len(leftovers)} process(es) of [{server.label}] outlived "
                       f"avip serve and were killed: " + "; ".join(leftovers))
            print(message, flush=True)
            self.run.notes.append(message)
        if server is self.warm_server:
            self.warm_server = None

    def stop_warm_server(self) -> None:
        if self.warm_server is not None:
            self.stop_server(self.warm_server)

    def ready_warm_server(self) -> Server:
        """The running warm-lane server, or a new one, with every worker warm."""
        server = self.warm_server or self.new_server("warm", self.args.warm_workers)
        server.wait_warm()
        return server

    def upload_xmatch(self, user: User) -> None:
        if self.xmatch_csv is not None:
            user.client.space_put(self.xmatch_csv, XMATCH_PATH)


def phase_alone(ctx: Context) -> None:
    """Per AVI: cold at API up, first after every worker is warm, then --jobs warm ones."""
    args, run = ctx.args, ctx.run
    poll, timeout = args.poll_ms / 1000, args.job_timeout
    server: Server | None = None
    user: User | None = None
    for avi in args.avis:
        if server is None or args.cold_each:
            if server is not None and user is not None:
                user.close()
                ctx.stop_server(server)
            server = ctx.new_server(f"alone-{avi}", args.warm_workers)
            token = make_users(server, ["alice"])["alice"]
            user = User(server.url, "alice", token)
            ctx.upload_xmatch(user)  # before the cold job: its clock starts at its POST
            states = server.warm_states()
            warm_then = sum(states.get(s, 0) for s in ("idle", "reserved", "busy", "cleaning"))
            submitted = time.perf_counter() - server.api_up
            cold = user.run(avi, ctx.params.for_avi(avi), poll, timeout)
            run.add(f"alone/{avi}/cold-api-up", [cold])
            report_failures(run, user, [cold])
            started = None if cold.wait_s is None else submitted + cold.wait_s
            one_line(f"[alone] {avi} cold: submitted {submitted:.2f} s after the API answered",
                     cold, f"\n    warm workers at submission: {warm_then}/{args.warm_workers}"
                     f" ({', '.join(f'{k} {v}' for k, v in states.items() if v) or 'none yet'}"
                     f"); first worker warm {server.since_up(server.first_warm)}, all "
                     f"{server.since_up(server.all_warm)}; the job started at "
                     f"{'-' if started is None else f'+{started:.1f} s'} (after the API "
                     "answered)")
            if cold.ok:
                run.figures.append(Figure(f"{avi} cold: 1st job at API up", cold.total_s,
                                          note=f"{warm_then}/{args.warm_workers} warm "
                                               "at submit"))
            ready = server.wait_warm()
            print(f"[alone] every warm worker of [{server.label}] was warm {ready:.1f} s after "
                  "the API answered", flush=True)
        assert user is not None
        first = user.run(avi, ctx.params.for_avi(avi), poll, timeout)
        run.add(f"alone/{avi}/first-after-ready", [first])
        report_failures(run, user, [first])
        one_line(f"[alone] {avi} first job once every worker was warm", first)
        if first.ok:
            run.figures.append(Figure(f"{avi} cold: 1st job after warm-up", first.total_s))
        warm = [user.run(avi, ctx.params.for_avi(avi), poll, timeout) for _ in range(args.jobs)]
        run.add(f"alone/{avi}/warm", warm)
        report_failures(run, user, warm)
        expect_lane(run, f"[alone] {avi}", warm, "warm")
        f = describe(f"[alone] {avi} warm ({load_average()})", warm)
        if avi == "cone_search":
            run.warm_cone_p50 = f["p50"]
            run.figures += [
                Figure("cone_search warm p50", f["p50"], target=TARGETS["cone_search p50"]),
                Figure("cone_search warm p95", f["p95"], target=TARGETS["cone_search p95"])]
        else:
            run.figures += [Figure(f"{avi} warm p50", f["p50"], target=TARGETS[f"{avi} p50"]),
                            Figure(f"{avi} warm p95", f["p95"])]
    if user is not None:
        user.close()


def share_deviation(counts: dict[str, float]) -> float:
    """Largest |x − mean| / mean over users, in percent (nan without any)."""
    if not counts:
        return float("nan")
    mean = statistics.fmean(counts.values())
    if mean <= 0:
        return float("nan")
    return 100.0 * max(abs(v - mean) for v in counts.values()) / mean


def phase_concurrent(ctx: Context) -> None:
    """--users scientists running small jobs back to back; the first also runs a large one."""
    args, run = ctx.args, ctx.run
    server = ctx.ready_warm_server()
    names = [f"u{i:02d}" for i in range(args.users)]
    large = args.large_avi != "none"
    needed = args.inflight + (1 if large else 0)
    quota = None
    if needed > 4:  # a scientist's pool runs 4 jobs at once (api.scheduling.pools)
        quota = QuotaPublic(cores=max(8, needed), memory_mb=32768, max_jobs=needed,
                            space_bytes=20 * GB)
        print(f"[concurrent] each user needs {needed} jobs at once: pools set to {quota}",
              flush=True)
    tokens = make_users(server, names, quota)
    mix = list(args.concurrent_avis)
    if "crossmatch" in mix:
        for name in names:
            with contextlib.closing(User(server.url, name, tokens[name])) as uploader:
                ctx.upload_xmatch(uploader)
    poll, timeout = args.concurrent_poll_ms / 1000, args.job_timeout
    large_alone: Timing | None = None
    if large:
        with contextlib.closing(User(server.url, names[0], tokens[names[0]])) as big:
            log(f"[concurrent] {args.large_avi} alone")
            large_alone = big.run(args.large_avi, ctx.params.for_avi(args.large_avi), 0.5,
                                  args.large_timeout)
            run.add("concurrent/large-alone", [large_alone])
            report_failures(run, big, [large_alone])
            one_line(f"[concurrent] {args.large_avi} alone", large_alone)

    stop = threading.Event()
    lock = threading.Lock()
    small: list[Timing] = []
    large_busy: list[Timing] = []

    def user_loop(name: str, offset: int) -> None:
        with contextlib.closing(User(server.url, name, tokens[name])) as user:
            k = offset
            while not stop.is_set():
                avi = mix[k % len(mix)]
                k += 1
                timing = user.run(avi, ctx.params.for_avi(avi), poll, timeout)
                with lock:
                    small.append(timing)
                if timing.state == "refused":
                    time.sleep(1.0)

    def large_job() -> None:
        with contextlib.closing(User(server.url, names[0], tokens[names[0]])) as big:
            timing = big.run(args.large_avi, ctx.params.for_avi(args.large_avi), 0.5,
                             args.large_timeout)
            large_busy.append(timing)
            report_failures(run, big, [timing])

    threads = [threading.Thread(target=user_loop, args=(name, i + j), daemon=True)
               for i, name in enumerate(names) for j in range(args.inflight)]
    large_thread = threading.Thread(target=large_job, daemon=True) if large else None
    log(f"[concurrent] {len(names)} users x {args.inflight} small job(s) at a time"
        f"{f' + {args.large_avi}' if large else ''}, at least {args.duration:.0f} s")
    started = time.perf_counter()
    if large_thread is not None:
        large_thread.start()
    for thread in threads:
        thread.start()
    while (time.perf_counter() - started < args.duration
           or (large_thread is not None and large_thread.is_alive())):
        time.sleep(0.2)
    ended = time.perf_counter()
    stop.set()  # no new submissions; the jobs under way finish (cancelling one that just
    for thread in threads:  # started would kill its warm worker) and are not counted
        thread.join(timeout=args.job_timeout + 60)
    elapsed = ended - started
    within = [t for t in small if t.t1 <= ended]
    run.add("concurrent/small", small)
    bad = [t for t in small if not t.ok]
    for t in bad:
        print(f"!!! JOB FAILED: {t.avi} job {t.job_id} of {t.user}: {t.state}: {t.reason}",
              flush=True)
    done = [t for t in within if t.ok]
    print(f"[concurrent] {len(names)} users for {elapsed:.0f} s ({load_average()}): "
          f"{len(done)} small jobs completed ({len(done) / elapsed:.2f}/s), {len(bad)} failed, "
          f"{sum(1 for t in small if t.t1 > ended)} finished after the end (not counted)",
          flush=True)
    describe("[concurrent] small jobs, every AVI", done)
    for avi in mix:
        describe(f"[concurrent] {avi}", [t for t in done if t.avi == avi])
    counts = {name: float(sum(1 for t in done if t.user == name)) for name in names}
    busy = {name: sum(t.run_s or 0.0 for t in done if t.user == name) for name in names}
    others = counts  # every user: the warm lane's fair share does not count the large job
    deviation = share_deviation(others)
    print("[concurrent] completed small jobs per user: "
          + ", ".join(f"{n} {int(c)}" for n, c in counts.items()), flush=True)
    waits = {n: [t.wait_s for t in done if t.user == n and t.wait_s is not None] for n in names}
    print("[concurrent] server wait p50 / max per user: " + ", ".join(
        f"{n} {fmt(percentile(w, 0.5))} / {fmt(max(w, default=float('nan')))}"
        for n, w in waits.items()), flush=True)
    print("[concurrent] warm-worker seconds per user: "
          + ", ".join(f"{n} {s:.0f}" for n, s in busy.items()), flush=True)
    scope = f"all {len(others)} users, {names[0]} with the large job too" if large \
        else "every user"
    print(f"[concurrent] share of completed small jobs, {scope}: min {min(others.values()):.0f}"
          f", max {max(others.values()):.0f}, mean {statistics.fmean(others.values()):.1f}; "
          f"largest deviation from equal {deviation:.1f} % (target <= {TARGETS['fairness']:.0f} "
          f"%); of warm-worker seconds {share_deviation({n: busy[n] for n in others}):.1f} %",
          flush=True)
    run.figures.append(Figure(f"fairness: max deviation, {len(others)} users", deviation,
                              unit="%", target=TARGETS["fairness"],
                              note=f"{len(done)} jobs in {elapsed:.0f} s"))
    if large:
        rest = [c for n, c in counts.items() if n != names[0]]
        mean_others = statistics.fmean(rest) if rest else float("nan")
        print(f"[concurrent] {names[0]} (who also ran {args.large_avi}): {counts[names[0]]:.0f}"
              f" small jobs, {counts[names[0]] / mean_others:.0%} of the others' mean "
              "(each lane is shared apart: its large job costs it no turn)", flush=True)
    all_lat = describe(f"[concurrent] small-job latency under {len(names)} users", done)
    run.figures.append(Figure(f"small jobs p50 under {len(names)} users", all_lat["p50"]))
    run.figures.append(Figure(f"small jobs p95 under {len(names)} users", all_lat["p95"]))
    busy_large = large_busy[0] if large_busy else None
    if large and busy_large is not None:
        run.add("concurrent/large-with-users", [busy_large])
        one_line(f"[concurrent] {args.large_avi} with {len(names)} users", busy_large)
        if busy_large.ok and large_alone is not None and large_alone.ok:
            assert busy_large.total_s is not None and large_alone.total_s is not None
            ratio = busy_large.total_s / large_alone.total_s
            run_ratio = ((busy_large.run_s or float("nan")) / (large_alone.run_s or float("nan")))
            print(f"[concurrent] {args.large_avi}: {fmt(busy_large.total_s)} with the users / "
                  f"{fmt(large_alone.total_s)} alone = {ratio:.2f}x (server run time "
                  f"{run_ratio:.2f}x); target <= {TARGETS['large ratio']}x", flush=True)
            run.figures.append(Figure(f"{args.large_avi}: with users / alone", ratio, unit="x",
                                      target=TARGETS["large ratio"],
                                      note=f"alone {fmt(large_alone.total_s)}"))
    expect_lane(run, "[concurrent] small", done, "warm")
    if busy_large is not None:
        expect_lane(run, f"[concurrent] {args.large_avi}", [busy_large], "spark")


def queue_blocked_jobs(server: Server, owners: list[str], total: int) -> float:
    """Insert ``total`` queued jobs of ``owners`` straight into the store; seconds taken.

    Through the API they would be refused (their pools can never fit them), and a user may
    queue at most 100; in the store they wait like any job, weighed every round."""
    from sqlalchemy import select

    from api.db import make_engine, session_factory
    from api.models import User as UserRow
    from api.space.job_inputs import job_dir
    from api.store import jobs as job_store

    engine = make_engine(f"sqlite:///{server.data / 'avip.db'}")
    space = server.data / "space"
    started = time.perf_counter()
    try:
        sessions = session_factory(engine)
        with sessions() as session:
            rows = {u.name: u for u in session.scalars(
                select(UserRow).where(UserRow.name.in_(owners)))}
            for i in range(total):
                owner = rows[owners[i % len(owners)]]
                warm = i % 2 == 0
                job_store.create_job(
                    session, owner=owner, avi="cone_search", avi_version="1.0.0",
                    params={"ra": (i * 0.036) % 360.0, "dec": 0.0, "radius_deg": 0.5},
                    cores=1 if warm else 2, memory_mb=1024 if warm else 2048,
                    resources={"driver_cores": 1, "driver_memory_mb": 1024,
                               "executor_cores": 1, "executor_memory_mb": 1024,
                               "executors": 1},
                    output_dir=lambda job_id, name=owner.name: str(job_dir(space, name, job_id)),
                    lane="warm" if warm else "spark")
                if (i + 1) % 1000 == 0:
                    session.commit()
                    session.expunge_all()
            session.commit()
    finally:
        engine.dispose()
    return time.perf_counter() - started


def cancel_blocked_jobs(server: Server, owners: list[str]) -> int:
    """Mark the queued jobs of ``owners`` cancelled, in the store at once (one UPDATE: they
    were put there by :func:`queue_blocked_jobs`); returns how many."""
    from sqlalchemy import select, update

    from api.db import make_engine
    from api.models import Job, utcnow
    from api.models import User as UserRow

    engine = make_engine(f"sqlite:///{server.data / 'avip.db'}")
    try:
        with engine.begin() as connection:
            owner_ids = select(UserRow.id).where(UserRow.name.in_(owners))
            result = connection.execute(
                update(Job).where(Job.owner_id.in_(owner_ids), Job.state == "queued")
                .values(state="cancelled", finished_at=utcnow(),
                        reason="job_latency: the queued phase is over"))
            return int(result.rowcount)
    finally:
        engine.dispose()


def phase_queued(ctx: Context) -> None:
    """Warm cone_search p50 without, with, then again without --queued jobs of other users
    waiting (A-B-A: the machine's drift shows as a difference between the two A's)."""
    args, run = ctx.args, ctx.run
    server = ctx.ready_warm_server()
    poll, timeout = args.poll_ms / 1000, args.job_timeout
    token = make_users(server, ["bob"])["bob"]
    others = [f"q{i:02d}" for i in range(args.queued_users)]
    with contextlib.closing(User(server.url, "bob", token)) as user, \
            AvipClient(server.url, server.token) as operator:
        warm_up = user.run("cone_search", ctx.params.for_avi("cone_search"), poll, timeout)
        one_line("[queued] untimed first job of this user", warm_up)
        decisions = [server.decision_seconds()]
        before = user.run_many("cone_search", ctx.params, args.jobs, poll, timeout)
        decisions.append(server.decision_seconds())
        make_users(server, others, QuotaPublic(cores=1, memory_mb=512, max_jobs=1,
                                               space_bytes=GB))
        seconds = queue_blocked_jobs(server, others, args.queued)
        log(f"[queued] {args.queued} jobs of {len(others)} users inserted in {seconds:.1f} s")
        deadline = time.perf_counter() + 60
        while True:  # the dispatcher has read them all and placed the newest in its walk
            page = operator.jobs(state="queued", everyone=True, limit=1)
            if (page.count >= args.queued and page.data
                    and page.data[0].queue_position is not None):
                break
            if time.perf_counter() > deadline:
                raise RuntimeError(f"the dispatcher did not weigh the {args.queued} queued "
                                   f"jobs within 60 s ({page.count} queued)")
            time.sleep(0.1)
        newest = page.data[0]
        print(f"[queued] {page.count} jobs queued; the newest (job {newest.id} of "
              f"{newest.owner}) is at queue position {newest.queue_position}: the "
              "scheduler weighs them", flush=True)
        decisions.append(server.decision_seconds())
        loaded = user.run_many("cone_search", ctx.params, args.jobs, poll, timeout)
        decisions.append(server.decision_seconds())
        still = operator.jobs(state="queued", everyone=True, limit=1).count
        running = operator.jobs(state="running", everyone=True, limit=1).count
        cancelled = cancel_blocked_jobs(server, others)
        while operator.jobs(state="queued", everyone=True, limit=1).count:
            time.sleep(0.1)
        time.sleep(2 * args.scheduler_interval)  # a round or two without them
        decisions.append(server.decision_seconds())
        after = user.run_many("cone_search", ctx.params, args.jobs, poll, timeout)
        decisions.append(server.decision_seconds())
        for series, timings in (("without", before), ("with", loaded), ("without-again", after)):
            run.add(f"queued/{series}", timings)
            report_failures(run, user, timings)
    expect_lane(run, "[queued]", before + loaded + after, "warm")
    f0 = describe("[queued] A: cone_search warm, nothing else queued", before)
    f1 = describe(f"[queued] B: with {args.queued} jobs of {len(others)} others queued", loaded)
    f2 = describe(f"[queued] A: again without them ({load_average()})", after)
    base = describe("[queued] both A series", before + after)
    delta, wait_delta = f1["p50"] - base["p50"], f1["wait_p50"] - base["wait_p50"]

    def mean_ms(a: tuple[float, float], b: tuple[float, float]) -> str:
        rounds = b[1] - a[1]
        return f"{1000 * (b[0] - a[0]) / rounds:.1f} ms over {rounds:.0f} rounds" if rounds \
            else "no rounds"

    print(f"[queued] p50 {fmt(base['p50'])} (A: {fmt(f0['p50'])}, {fmt(f2['p50'])}) -> "
          f"{fmt(f1['p50'])} (B): {delta * 1000:+.0f} ms (target <= "
          f"{TARGETS['queued delta'] * 1000:.0f} ms); server wait p50 {wait_delta * 1000:+.0f} "
          f"ms; scheduler decision mean: {mean_ms(decisions[0], decisions[1])} (A), "
          f"{mean_ms(decisions[2], decisions[3])} (B), {mean_ms(decisions[4], decisions[5])} "
          f"(A); during B {still} were still queued and {running} running; {cancelled} "
          "cancelled after B", flush=True)
    if still < args.queued:
        message = (f"!!! [queued] only {still} of the {args.queued} blocked jobs were still "
                   "queued after B: some started or were dropped")
        print(message, flush=True)
        run.notes.append(message)
    run.figures += [
        Figure(f"cone p50 with {args.queued} queued − without", delta, unit="ms",
               target=TARGETS["queued delta"],
               note=f"{fmt(base['p50'])} -> {fmt(f1['p50'])}"),
        Figure("  of which server wait p50", wait_delta, unit="ms")]
    if run.warm_cone_p50 is None:
        run.warm_cone_p50 = base["p50"]


def phase_spark(ctx: Context) -> None:
    """The peer: the same cone_search, each job its own spark-submit (no warm workers)."""
    args, run = ctx.args, ctx.run
    ctx.stop_warm_server()
    server = ctx.new_server("spark-lane", 0)
    try:
        token = make_users(server, ["carol"])["carol"]
        with contextlib.closing(User(server.url, "carol", token)) as user:
            timings = user.run_many("cone_search", ctx.params, args.spark_jobs,
                                    args.poll_ms / 1000, args.job_timeout)
            run.add("spark/cone_search", timings)
            report_failures(run, user, timings)
        for i, t in enumerate(timings):
            one_line(f"[spark] cone_search job {i + 1}{' (1st after start)' if i == 0 else ''}",
                     t)
        expect_lane(run, "[spark]", timings, "spark")
        f = describe(f"[spark] cone_search, Spark lane ({load_average()})", timings)
        run.spark_cone_p50 = f["p50"]
        run.figures.append(Figure("cone_search Spark-lane peer p50", f["p50"]))
    finally:
        ctx.stop_server(server)


# --- main ----------------------------------------------------------------------------


def summary(run: Run) -> None:
    """The final table: every figure, its target, and the Spark-lane peer's ratio."""
    spark = run.spark_cone_p50
    for figure in run.figures:
        if figure.name.startswith("cone_search") and "peer" not in figure.name and spark \
                and figure.value:
            figure.vs_spark = spark / figure.value
    print("\n== summary " + "=" * 90)
    print(f"{'figure':<44} {'value':>10} {'target':>10} {'verdict':>13} "
          f"{'peer/this':>10}  note")
    for f in run.figures:
        target = "" if f.target is None else f"<= {fmt(f.target, f.unit)}"
        ratio = "" if f.vs_spark is None else f"{f.vs_spark:.1f}x"
        print(f"{f.name:<44} {fmt(f.value, f.unit):>10} {target:>10} {f.verdict:>13} "
              f"{ratio:>10}  {f.note}")
    if spark and run.warm_cone_p50:
        print(f"warm lane vs Spark lane, cone_search p50: {fmt(run.warm_cone_p50)} vs "
              f"{fmt(spark)}: {spark / run.warm_cone_p50:.1f}x faster")
    for note in run.notes:
        print(note)
    if run.failures:
        print(f"!!! {len(run.failures)} job(s) did not succeed (see !!! JOB FAILED above)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phases", default=",".join(PHASES),
                        help=f"comma-separated, of {', '.join(PHASES)} (run in that order)")
    parser.add_argument("--avis", default=",".join(SMALL_AVIS),
                        help="alone phase: the AVIs timed, in order")
    parser.add_argument("--jobs", type=int, default=20, help="warm jobs per series")
    parser.add_argument("--users", type=int, default=20, help="concurrent phase: users")
    parser.add_argument("--inflight", type=int, default=1,
                        help="concurrent phase: small jobs each user keeps going at once")
    parser.add_argument("--duration", type=float, default=300.0,
                        help="concurrent phase: seconds (at least until the large job ends)")
    parser.add_argument("--concurrent-avis", default=",".join(SMALL_AVIS),
                        help="concurrent phase: the small AVIs each user cycles through")
    parser.add_argument("--large-avi", default="cluster_finder",
                        help="concurrent phase: the large job ('none': no large job)")
    parser.add_argument("--large-params", type=json.loads, default={},
                        help='its params as JSON, e.g. \'{"g_max": 12}\' for a short one')
    parser.add_argument("--queued", type=int, default=10_000,
                        help="queued phase: jobs of other users waiting")
    parser.add_argument("--queued-users", type=int, default=50)
    parser.add_argument("--spark-jobs", type=int, default=3,
                        help="spark phase: cone_search jobs through the Spark lane (>= 3)")
    parser.add_argument("--poll-ms", type=float, default=20.0)
    parser.add_argument("--concurrent-poll-ms", type=float, default=200.0)
    parser.add_argument("--cone-radius", type=float, default=1.0)
    parser.add_argument("--cone-formats", default=None,
                        help="comma-separated cone_search formats (default: the AVI's: all)")
    parser.add_argument("--xmatch-rows", type=int, default=10_000)
    parser.add_argument("--warm-workers", type=int, default=2)
    parser.add_argument("--scheduler-interval", type=float, default=0.5,
                        help="AVIP_SCHEDULER_INTERVAL_S of the servers")
    parser.add_argument("--cluster-cores", type=int, default=None,
                        help="AVIP_CLUSTER_CORES of the servers (default: the platform's)")
    parser.add_argument("--catalogue", default=str(REPO / ".data" / "lakehouse"),
                        help="AVIP_LAKEHOUSE_URI: the 1M-star demo sky by default")
    parser.add_argument("--no-cold-each", dest="cold_each", action="store_false",
                        help="alone phase: one server for every AVI (a cold figure for the "
                             "first AVI only) instead of a fresh one per AVI")
    parser.add_argument("--job-timeout", type=float, default=300.0)
    parser.add_argument("--large-timeout", type=float, default=1800.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=None,
                        help="servers' data dirs and logs (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON (default: benchmarks/results/job_latency.json)")
    args = parser.parse_args(argv)
    asked = [p for p in args.phases.split(",") if p]
    wrong = [p for p in asked if p not in PHASES]
    if wrong or not asked:
        parser.error(f"unknown phase(s) {wrong}; use {', '.join(PHASES)}")
    args.phases = [p for p in PHASES if p in asked]
    args.avis = [a for a in args.avis.split(",") if a]
    args.concurrent_avis = [a for a in args.concurrent_avis.split(",") if a]
    for avi in (*args.avis, *args.concurrent_avis):
        if avi not in SMALL_AVIS:
            parser.error(f"{avi} is not one of the small AVIs {', '.join(SMALL_AVIS)}")
    args.cone_formats = args.cone_formats.split(",") if args.cone_formats else None
    if "spark" in args.phases and args.spark_jobs < 3:
        log(f"--spark-jobs {args.spark_jobs}: fewer than the 3 the peer figure asks for")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    root = args.workdir or Path(tempfile.mkdtemp(prefix="avip-latency-"))
    root.mkdir(parents=True, exist_ok=True)
    needs_xmatch = ("alone" in args.phases and "crossmatch" in args.avis) or (
        "concurrent" in args.phases and "crossmatch" in args.concurrent_avis)
    xmatch = (write_xmatch_table(args.catalogue, args.xmatch_rows, args.seed,
                                 root / f"xmatch-{args.xmatch_rows}.csv") if needs_xmatch
              else None)
    ctx = Context(args, Params(args.seed, args.cone_radius, args.cone_formats,
                               args.large_params), Run(), root, xmatch)
    print(f"job latency: phases {', '.join(args.phases)}; catalogue {args.catalogue}; "
          f"{args.jobs} jobs per series, poll {args.poll_ms:.0f} ms; {args.warm_workers} warm "
          f"workers; {load_average()}", flush=True)
    phases: dict[str, Callable[[Context], None]] = {
        "alone": phase_alone, "concurrent": phase_concurrent, "queued": phase_queued,
        "spark": phase_spark}
    try:
        for name in args.phases:
            log(f"phase {name}")
            phases[name](ctx)
            if name == "queued":  # its 10,000 blocked jobs stay: no phase after it reuses them
                ctx.stop_warm_server()
    finally:
        for server in ctx.servers:  # a crashed one too: what it started may still run
            if not server.stopped:
                ctx.stop_server(server)
        if not args.keep and args.workdir is None:
            shutil.rmtree(root, ignore_errors=True)
    summary(ctx.run)
    out = args.out or REPO / "benchmarks" / "results" / "job_latency.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "figures": [asdict(f) | {"verdict": f.verdict} for f in ctx.run.figures],
        "timings": {k: [asdict(t) for t in v] for k, v in ctx.run.timings.items()},
        "notes": ctx.run.notes}, indent=1, default=str))
    print(f"figures written to {out}")
    return 1 if ctx.run.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
