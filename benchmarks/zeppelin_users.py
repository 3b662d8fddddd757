"""N users run the shipped notes at once through Zeppelin's REST API.

Like the Edinburgh platform's notebook harness: each simulated user logs in
as their own Shiro user (so each gets an isolated interpreter process and
Spark driver), imports their own copy of every shipped note, and runs the
notes one after another with "run all"; all users start together. Reports
the wall time of every note for 1, 2 and 4 concurrent users (median over
users) as a table and optionally JSON.

    python benchmarks/zeppelin_users.py --url http://127.0.0.1:18490 \\
        --users user1:pw1,user2:pw2,user3:pw3,user4:pw4 [--counts 1,2,4] [--json out.json]

Defaults come from the devstack's AVIP_TEST_ZEPPELIN_URL / _USERS (source .devstack/env).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from zeppelin_notes.client import ZeppelinClient
from zeppelin_notes.notes import load_note, shipped_notes


def user_session(url: str, user: str, password: str, notes: list[Path]) -> dict[str, float]:
    """One user: import every note, run each in turn, return note name -> wall seconds."""
    client = ZeppelinClient(url)
    client.login(user, password)
    times: dict[str, float] = {}
    for path in notes:
        note = load_note(path)
        target = f"/bench/{user}/{note['name']}"
        old = client.find_note(target)
        if old:
            client.delete_note(old)
        note_id = client.import_note(note, path=target)
        started = time.monotonic()
        runs = client.run_all(note_id, timeout_s=3600, check=False)
        elapsed = time.monotonic() - started
        failed = [r.title for r in runs if not r.ok]
        times[path.stem] = float("nan") if failed else elapsed
        client.delete_note(note_id)
    return times


def run_round(url: str, users: list[tuple[str, str]], notes: list[Path]) -> dict[str, list[float]]:
    with ThreadPoolExecutor(max_workers=len(users)) as pool:
        results = list(pool.map(lambda u: user_session(url, u[0], u[1], notes), users))
    return {path.stem: [r[path.stem] for r in results] for path in notes}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("AVIP_TEST_ZEPPELIN_URL"))
    parser.add_argument("--users", default=os.environ.get("AVIP_TEST_ZEPPELIN_USERS", ""),
                        help="user:password,... (at least max(counts) of them)")
    parser.add_argument("--counts", default="1,2,4", help="concurrent user counts to measure")
    parser.add_argument("--notes", nargs="*", type=Path, help="notes (default: shipped notes)")
    parser.add_argument("--json", type=Path, help="also write the timings here")
    args = parser.parse_args(argv)
    users = [tuple(p.split(":", 1)) for p in args.users.split(",") if ":" in p]
    counts = [int(c) for c in args.counts.split(",")]
    if not args.url or len(users) < max(counts):
        print(f"need --url and at least {max(counts)} --users (got {len(users)}); "
              "start the devstack and `source .devstack/env`", file=sys.stderr)
        return 2
    notes = args.notes or shipped_notes()
    report: dict[int, dict[str, list[float]]] = {}
    for count in counts:
        print(f"-- {count} user(s)", file=sys.stderr)
        report[count] = run_round(args.url, users[:count], notes)  # type: ignore[arg-type]
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
