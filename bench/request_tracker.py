"""Request Tracker benchmark: a real RT 5 seeded through its APIs, then a full and an idle
incremental sync, each in its own process (peak RSS is the sync's own).

    python -m bench.request_tracker            # as a step of `make bench` (bench_request_tracker)
    python -m bench.request_tracker sync RAW   # one measured sync (child process)

Sizes: BENCH_RT_USERS (default 200) and BENCH_RT_TICKETS (default 500); each ticket has
1-4 messages (customer mail through the mail gateway, staff replies through REST2). Seeding
is the slow part: RT parses and stores every message and runs its scrips (notifications),
about 2 messages a second on 2 busy cores (500 tickets: 10 min), so the issue's 2,000 users x 10,000 tickets
(BENCH_RT_USERS=2000 BENCH_RT_TICKETS=10000) takes well over an hour to seed. The seed rate
is printed on stderr and kept in the row (``seed_s``).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from assets.raw_store import open_raw_store
from assets.request_tracker.sync import sync_request_tracker
from connectors.request_tracker import RequestTrackerClient


def sync_child(raw_dir: str) -> None:
    client = RequestTrackerClient(os.environ["RT_URL"], token=os.environ.get("RT_TOKEN", ""),
                                  user=os.environ.get("RT_USER", ""), password=os.environ.get("RT_PASSWORD", ""))
    started = time.perf_counter()
    with open_raw_store(raw_dir, "request_tracker") as store:
        result = sync_request_tracker(client, store)
    wall = time.perf_counter() - started
    print(json.dumps({
        "wall_s": wall, "requests": result.requests, "retries": result.retries,
        "entities": {e: {"rows": r.rows, "upserted": r.upserted, "pages": r.pages, "mode": r.mode}
                     for e, r in result.entities.items()},
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


def bench_request_tracker(rows: list[dict]) -> None:
    from sandbox.request_tracker import RequestTracker, seed
    from sandbox.world import World

    users = int(os.environ.get("BENCH_RT_USERS", 200))
    tickets = int(os.environ.get("BENCH_RT_TICKETS", 500))
    world = World.generate(seed=11, persons=max(users, 1), organizations=max(1, users // 5))
    started = time.perf_counter()
    with RequestTracker.start() as rt:
        print(f"request_tracker: RT up in {rt.started_s:.1f} s", file=sys.stderr)
        seeded = seed(rt, world, users=users, tickets=tickets)
        print(f"request_tracker: seeded {seeded.users} users, {seeded.tickets} tickets, {seeded.messages} messages "
              f"with {seeded.requests} requests in {seeded.wall_s:.0f} s "
              f"({seeded.messages / seeded.wall_s:.1f} messages/s)", file=sys.stderr)
        size = f"{users} users, {tickets} tickets, {seeded.messages} messages"
        with tempfile.TemporaryDirectory(prefix="bench-rt-") as tmp:
            for phase in ("full", "idle incremental"):
                out = subprocess.run([sys.executable, "-m", "bench.request_tracker", "sync", str(Path(tmp) / "raw")],
                                     env=dict(os.environ, **rt.env()), capture_output=True, text=True)
                if out.returncode != 0:
                    raise SystemExit(f"request_tracker sync failed:\n{out.stderr[-4000:]}")
                result = json.loads(out.stdout.strip().splitlines()[-1])
                received = sum(e["upserted"] for e in result["entities"].values())
                total = sum(e["rows"] for e in result["entities"].values())
                rows.append({
                    "system": "request_tracker", "phase": phase, "size": size,
                    "wall_s": round(result["wall_s"], 2), "requests": result["requests"],
                    # full: one 100-row page per stored row; idle: one empty page per table
                    "min_requests": sum(max(1, -(-e["rows"] // 100)) for e in result["entities"].values())
                    if phase == "full" else len(result["entities"]),
                    "other_requests": 0,
                    "rows_per_s": round((received if phase == "full" else total) / result["wall_s"]) if result["wall_s"] else None,
                    "peak_rss_mb": round(result["peak_rss_mb"]),
                    "seed_s": round(seeded.wall_s),
                })
    print(f"request_tracker: bench done in {time.perf_counter() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "sync":
        sync_child(sys.argv[2])
    else:
        out: list[dict] = []
        bench_request_tracker(out)
        print(json.dumps(out, indent=2))
