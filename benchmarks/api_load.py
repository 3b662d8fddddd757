"""API load: many clients submitting and polling jobs on a loopback server.

Starts the real service (``create_app``, SQLite store, real AVI registry) under
uvicorn in a child process, creates users through the operator API, then runs
N concurrent clients; each client submits a ``cone_search`` job, polls it
twice (``GET /jobs/{id}``), and repeats. Two phases, same clients, same server:

1. **paced** (the headline, issue #4's figure): every request is preceded by
   ``--think-ms`` (default 1000 ms), the interval at which real clients poll —
   ``avip watch`` polls every 1.0 s, the dashboards' job monitor every 1000 ms.
   Clients start spread evenly over the first interval, as independent users
   do (``--no-stagger`` starts them all at once, as the earlier version of this
   benchmark did: a synchronized burst of N submissions every second).
2. **saturation**: the same loop with zero think time (closed loop: each client
   fires its next request as soon as the last answer arrives), so the server
   runs flat out and latency is mostly queueing — by Little's law p50 is about
   clients / throughput. This was the benchmark's only figure before; it is
   kept for comparison (``--saturation-duration 0`` skips it).

The machine may be shared, so wall-clock figures move with whatever else
runs. Each phase therefore also prints CPU milliseconds per request spent by the
server process and by this load generator (aiohttp on one uvloop event loop,
on the same cores), and the load average before and after. The scheduler loop
is off so that the thousands of submitted jobs stay queued instead of each
starting a Spark application; what it would cost is measured after the run:
one scheduling decision over everything the load left queued (through the
store), and the pure decision function over 10,000 queued jobs of 50 users.

    python benchmarks/api_load.py [--clients 200] [--duration 60] [--think-ms 1000]
                                  [--saturation-duration 60] [--users 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import httpx

# Python puts this folder first on sys.path, where benchmarks/lakehouse.py would shadow the
# lakehouse package the service imports.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

SUBMIT = {"avi": "cone_search",
          "params": {"ra": 56.75, "dec": 24.12, "radius_deg": 0.2, "formats": ["csv"]}}


def serve(data_dir: Path, port: int, database_url: str | None) -> None:
    """Child-process mode: the service on 127.0.0.1:port (scheduler loop off)."""
    import uvicorn

    from api.bootstrap import ensure_operator
    from api.main import create_app
    from config.settings import Settings

    settings = Settings(data_dir=data_dir, cluster_cores=64, cluster_memory_mb=262144,
                        database_url=database_url)
    app = create_app(settings)
    ensure_operator(app.state.sessions, data_dir, 1)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", backlog=4096)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds of process ``pid`` (Linux /proc), or of this process."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def client_loop(http: aiohttp.ClientSession, token: str, deadline: float,
                      submit_ms: list[float], poll_ms: list[float], errors: list[str],
                      think_s: float, start_delay_s: float) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    if start_delay_s:
        await asyncio.sleep(start_delay_s)
    while time.monotonic() < deadline:
        if think_s:
            await asyncio.sleep(think_s)
        started = time.perf_counter()
        try:
            async with http.post("/jobs", json=SUBMIT, headers=headers) as response:
                body = await response.read()
        except (TimeoutError, aiohttp.ClientError) as error:
            errors.append(f"submit: {type(error).__name__}")
            continue
        submit_ms.append((time.perf_counter() - started) * 1000)
        if response.status != 201:
            errors.append(f"submit: HTTP {response.status} {body[:100]!r}")
            continue
        job_id = json.loads(body)["id"]
        for _ in range(2):
            if think_s:
                await asyncio.sleep(think_s)
            started = time.perf_counter()
            try:
                async with http.get(f"/jobs/{job_id}", headers=headers) as polled:
                    await polled.read()
            except (TimeoutError, aiohttp.ClientError) as error:
                errors.append(f"poll: {type(error).__name__}")
                continue
            poll_ms.append((time.perf_counter() - started) * 1000)
            if polled.status != 200:
                errors.append(f"poll: HTTP {polled.status}")


async def run_load(url: str, tokens: list[str], clients: int, duration: float,
                   think_s: float, stagger: bool, server_pid: int, label: str) -> dict[str, float]:
    """One phase; prints its figures and returns the headline ones.

    The load runs on aiohttp (about a third of httpx's client-side CPU per request),
    which matters when the load generator shares the cores with the server.
    """
    submit_ms: list[float] = []
    poll_ms: list[float] = []
    errors: list[str] = []
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=60)
    load_before = os.getloadavg()[0]
    async with aiohttp.ClientSession(url, connector=connector, timeout=timeout) as http:
        server_cpu, client_cpu = cpu_seconds(server_pid), cpu_seconds()
        started = time.monotonic()
        deadline = started + duration
        await asyncio.gather(*(
            client_loop(http, tokens[i % len(tokens)], deadline, submit_ms, poll_ms, errors,
                        think_s, think_s * i / clients if stagger else 0.0)
            for i in range(clients)
        ))
        elapsed = time.monotonic() - started
        server_cpu, client_cpu = cpu_seconds(server_pid) - server_cpu, cpu_seconds() - client_cpu
    requests = len(submit_ms) + len(poll_ms) + len(errors)
    start_mode = "staggered start" if stagger and think_s else "all start at once"
    print(f"[{label}] {clients} clients, think {think_s * 1000:.0f} ms ({start_mode}), "
          f"for {duration:.0f} s: {len(submit_ms)} submits ({len(submit_ms) / elapsed:.0f}/s), "
          f"{len(poll_ms)} polls; {requests / elapsed:.0f} requests/s")
    print(f"[{label}] CPU per request: server {1000 * server_cpu / max(requests, 1):.2f} ms, "
          f"load generator {1000 * client_cpu / max(requests, 1):.2f} ms; "
          f"server busy {100 * server_cpu / elapsed:.0f}% of a core, load generator "
          f"{100 * client_cpu / elapsed:.0f}%; load average {load_before:.1f} -> "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"[{label}] submit latency ms: p50 {percentile(submit_ms, 0.5):.1f}  "
          f"p99 {percentile(submit_ms, 0.99):.1f}  max {max(submit_ms, default=0):.1f}")
    print(f"[{label}] poll latency ms:   p50 {percentile(poll_ms, 0.5):.1f}  "
          f"p99 {percentile(poll_ms, 0.99):.1f}  max {max(poll_ms, default=0):.1f}")
    print(f"[{label}] errors: {len(errors)}" + (f" (first: {errors[0]})" if errors else ""),
          flush=True)
    return {"submit_p99_ms": percentile(submit_ms, 0.99), "errors": len(errors)}


def run_phases(url: str, tokens: list[str], args: argparse.Namespace, server_pid: int) -> None:
    """Both phases on one event loop (uvloop when installed: a cheaper load generator)."""

    async def phases() -> None:
        paced = await run_load(url, tokens, args.clients, args.duration, args.think_ms / 1000,
                               not args.no_stagger, server_pid, "paced")
        print(f"[paced] target: submit p99 <= 100 ms and 0 errors -> "
              f"{'met' if paced['submit_p99_ms'] <= 100 and not paced['errors'] else 'NOT met'}"
              f" (p99 {paced['submit_p99_ms']:.1f} ms, {paced['errors']} errors)", flush=True)
        if args.saturation_duration > 0:
            await run_load(url, tokens, args.clients, args.saturation_duration, 0.0, False,
                           server_pid, "saturation")

    try:
        import uvloop
    except ImportError:
        asyncio.run(phases())
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(phases())


def scheduler_timings(store_url: str) -> None:
    from api.db import make_engine, session_factory
    from api.scheduling.dispatcher import Dispatcher
    from api.scheduling.drf import Capacity, Pool, QueuedJob, RunningJob, decide
    from config.settings import get_settings
    from spark_jobs.backends.processes import LocalBackend

    engine = make_engine(store_url)
    backend = LocalBackend(jars_dir=get_settings().jars_dir)  # schedules only: nothing launched
    dispatcher = Dispatcher(sessions=session_factory(engine), backend=backend,
                            capacity=Capacity(64, 262144))
    with dispatcher.sessions() as session:
        started = time.perf_counter()
        dispatcher._schedule(session)  # read the queue, decide; nothing is launched
        elapsed = (time.perf_counter() - started) * 1000
    print(f"one scheduling round through the store over {len(dispatcher.positions)} queued "
          f"jobs: {elapsed:.1f} ms")
    engine.dispose()

    users = [f"u{i}" for i in range(50)]
    queued = [QueuedJob(id=i, user=users[i % 50], cores=1 + i % 4, memory_mb=1024 * (1 + i % 3),
                        priority=i % 3, seq=i) for i in range(10_000)]
    running = [RunningJob(users[i], 2, 2048) for i in range(20)]
    pools = {u: Pool(8, 32768, 4) for u in users}
    times = []
    for _ in range(20):
        started = time.perf_counter()
        decide(capacity=Capacity(64, 262144), running=running, queued=queued, pools=pools)
        times.append((time.perf_counter() - started) * 1000)
    print(f"decide() over 10,000 queued jobs of 50 users: median {statistics.median(times):.1f} "
          f"ms, max {max(times):.1f} ms (target <= 50 ms)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--think-ms", type=float, default=1000.0,
                        help="paced phase: pause before each request (avip watch: 1000)")
    parser.add_argument("--no-stagger", action="store_true",
                        help="paced phase: start every client at once (the old method)")
    parser.add_argument("--saturation-duration", type=float, default=None,
                        help="seconds of the zero-think-time phase (default: --duration; 0: skip)")
    parser.add_argument("--port", type=int, default=18765)
    parser.add_argument("--database-url", default=None,
                        help="job store (default: SQLite in a temp dir); must be empty")
    parser.add_argument("--serve", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.saturation_duration is None:
        args.saturation_duration = args.duration
    if args.serve is not None:
        serve(args.serve, args.port, args.database_url)
        return 0

    data_dir = Path(tempfile.mkdtemp(prefix="avip-load-"))
    extra = ["--database-url", args.database_url] if args.database_url else []
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(data_dir),
                               "--port", str(args.port), *extra])
    url = f"http://127.0.0.1:{args.port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/openapi.json", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        operator = {"Authorization": f"Bearer {(data_dir / 'operator.token').read_text().strip()}"}
        tokens = []
        with httpx.Client(base_url=url, headers=operator, timeout=30) as admin:
            for i in range(args.users):
                admin.post("/users", json={"name": f"load{i}", "roles": ["scientist"]})
                tokens.append(admin.post(f"/users/load{i}/tokens", json={}).json()["token"])
            warm = admin.post("/jobs", json=SUBMIT)
            assert warm.status_code == 201, warm.text
        run_phases(url, tokens, args, server.pid)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:  # connections still draining: stop it hard
            server.kill()
            server.wait(timeout=30)
    scheduler_timings(args.database_url or f"sqlite:///{data_dir / 'avip.db'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
