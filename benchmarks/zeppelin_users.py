"""N users run the shipped notes at once through Zeppelin's REST API.

Like the Edinburgh platform's notebook harness: each simulated user logs in
as their own Shiro user (so each gets an isolated interpreter process and
Spark driver), imports their own copy of every shipped note, and runs the
notes one after another with "run all"; all users start together. The API
note (07) needs the REST API: the harness serves one in-process (uvicorn on
loopback, scheduler on, the Zeppelin server's lakehouse), gives each user a
scientist account and token file, and passes URL and token file as the
note's form values; its time includes the sky_counts Spark job. Reports
the wall time of every note for 1, 2 and 4 concurrent users (median over
users) as a table and optionally JSON.

    python benchmarks/zeppelin_users.py --url http://127.0.0.1:18490 \\
        --users user1:pw1,user2:pw2,user3:pw3,user4:pw4 [--counts 1,2,4] [--json out.json] \\
        [--lakehouse DIR | --no-api]

Defaults come from the devstack's AVIP_TEST_ZEPPELIN_URL / _USERS / _LAKEHOUSE
(source .devstack/env).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from pathlib import Path

# Python puts this folder first on sys.path, where benchmarks/lakehouse.py would shadow the
# lakehouse package the API imports.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from zeppelin_notes.client import ZeppelinClient  # noqa: E402
from zeppelin_notes.notes import load_note, shipped_notes  # noqa: E402

API_NOTE = "07_avi_job"


@contextmanager
def serve_api(lakehouse: str, users: list[str], cores: int) -> Iterator[dict[str, dict[str, str]]]:
    """The avip API + scheduler on a free loopback port; yields user -> the API note's params."""
    import uvicorn

    from api.avis import RegistryCatalogue
    from api.bootstrap import ensure_operator
    from api.client import AvipClient
    from api.main import create_app
    from config.settings import Settings

    data = Path(tempfile.mkdtemp(prefix="avip-zeppelin-bench-"))
    settings = Settings(data_dir=data, lakehouse_uri=lakehouse, cluster_cores=cores,
                        cluster_memory_mb=1024 * (cores + 2), spark_master="local[1]")
    app = create_app(settings, catalogue=RegistryCatalogue(), run_scheduler=True)
    operator_file = ensure_operator(app.state.sessions, data, 1)
    assert operator_file is not None
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    params = {}
    try:
        with AvipClient(url, operator_file.read_text().strip()) as operator:
            for user in users:
                operator.create_user(user, ["scientist"])
                token_file = data / f"{user}.token"
                token_file.write_text(operator.issue_token(user, "bench").token)
                params[user] = {"api_url": url, "api_token_file": str(token_file)}
        yield params
    finally:
        server.should_exit = True
        thread.join(timeout=60)


def user_session(url: str, user: str, password: str, notes: list[Path],
                 api_params: dict[str, str] | None = None) -> dict[str, float]:
    """One user: import every note, run each in turn, return note name -> wall seconds."""
    client = ZeppelinClient(url)
    client.login(user, password)
    times: dict[str, float] = {}
    for path in notes:
        note = load_note(path)
        note_id = client.replace_note(note, f"/bench/{user}/{note['name']}")
        started = time.monotonic()
        params = api_params if path.stem == API_NOTE else None
        runs = client.run_all(note_id, timeout_s=3600, check=False, params=params)
        elapsed = time.monotonic() - started
        failed = [r for r in runs if not r.ok]
        if failed:
            print(f"{user} {path.stem}: {failed[0].title} {failed[0].status}: "
                  f"{(failed[0].error or '').strip()[-300:]}", file=sys.stderr)
        times[path.stem] = float("nan") if failed else elapsed
        print(f"{user} {path.stem}: {times[path.stem]:.1f} s (load {os.getloadavg()[0]:.1f})",
              file=sys.stderr, flush=True)
        client.delete_note(note_id)
    return times


def run_round(url: str, users: list[tuple[str, str]], notes: list[Path],
              api_params: dict[str, dict[str, str]]) -> dict[str, list[float]]:
    with ThreadPoolExecutor(max_workers=len(users)) as pool:
        results = list(pool.map(
            lambda u: user_session(url, u[0], u[1], notes, api_params.get(u[0])), users))
    return {path.stem: [r[path.stem] for r in results] for path in notes}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("AVIP_TEST_ZEPPELIN_URL"))
    parser.add_argument("--users", default=os.environ.get("AVIP_TEST_ZEPPELIN_USERS", ""),
                        help="user:password,... (at least max(counts) of them)")
    parser.add_argument("--counts", default="1,2,4", help="concurrent user counts to measure")
    parser.add_argument("--notes", nargs="*", type=Path, help="notes (default: shipped notes)")
    parser.add_argument("--json", type=Path, help="also write the timings here")
    parser.add_argument("--lakehouse", default=os.environ.get("AVIP_TEST_ZEPPELIN_LAKEHOUSE"),
                        help="the Zeppelin server's lakehouse, which the API note's jobs read")
    parser.add_argument("--no-api", action="store_true", help="leave out the API note")
    args = parser.parse_args(argv)
    users = [tuple(p.split(":", 1)) for p in args.users.split(",") if ":" in p]
    counts = [int(c) for c in args.counts.split(",")]
    if not args.url or len(users) < max(counts):
        print(f"need --url and at least {max(counts)} --users (got {len(users)}); "
              "start the devstack and `source .devstack/env`", file=sys.stderr)
        return 2
    notes = args.notes or shipped_notes()
    if args.no_api:
        notes = [n for n in notes if n.stem != API_NOTE]
    elif any(n.stem == API_NOTE for n in notes) and not args.lakehouse:
        print("the API note needs --lakehouse (the Zeppelin server's), or pass --no-api",
              file=sys.stderr)
        return 2
    report: dict[int, dict[str, list[float]]] = {}
    names = [u for u, _ in users[:max(counts)]]
    with serve_api(args.lakehouse, names, cores=max(counts)) if not args.no_api \
            else nullcontext({}) as api_params:
        for count in counts:
            print(f"-- {count} user(s)", file=sys.stderr)
            report[count] = run_round(args.url, users[:count], notes,  # type: ignore[arg-type]
                                      api_params)
    header = f"{'note':<22}" + "".join(f"{f'{c} user(s) s':>16}" for c in counts)
    print(header)
    for path in notes:
        cells = []
        for count in counts:
            values = report[count][path.stem]
            cells.append(f"{statistics.median(values):>16.1f}")
        print(f"{path.stem:<22}" + "".join(cells))
    print("(median wall time per note over concurrent users; nan = a paragraph failed)")
    if args.json:
        args.json.write_text(json.dumps({str(c): r for c, r in report.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
