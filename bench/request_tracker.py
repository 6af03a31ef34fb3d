"""Request Tracker benchmark: a real RT 5 holding BENCH_RT_USERS users (default 2,000) and
BENCH_RT_TICKETS tickets (default 10,000) with correspondence, then a full and an idle
incremental sync, each in its own process (peak RSS is the sync's own).

    python -m bench.request_tracker            # as a step of `make bench` (bench_request_tracker)
    python -m bench.request_tracker sync RAW   # one measured sync (child process)

Seeding: each ticket has 1-4 messages (customers' raw MIME mail with Ccs, quoted replies,
attachments, broken MIME and non-UTF-8 charsets; staff replies). The tests seed through RT's
HTTP interfaces, a few messages a second: hours at this size. The benchmark seeds with RT's own
code in one process before rt-server starts (``sandbox.request_tracker.seeded_database``: the
mail gateway's and REST2's code paths, RT writes every row and runs its scrips) and caches the
database under BENCH_CACHE_DIR (default data/bench-cache), keyed by world seed, sizes and the
seeding code, so only the first run pays for it. That first run is long: RT's own handling of
a message is CPU-bound (measured here: 90-140 ms of one core a message, two thirds of it in
RT's scrips, which render notification templates and record the outgoing mail), so the default
size's ~25,000 messages take 40-60 minutes of one core; 2,000 x 2,000 (~5,000 messages) took
20 minutes on a shared, busy machine. The row keeps the seeding time (``seed_s``, of the run
that built the cache) and the 1-minute load average during the syncs (``load_1m``).
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

from contact_register.sync.raw_store import open_raw_store
from contact_register.sync.request_tracker.sync import sync_request_tracker
from connectors.request_tracker import RequestTrackerClient

CACHE_DIR = Path(os.environ.get("BENCH_CACHE_DIR", "data/bench-cache"))


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
    from sandbox.request_tracker import RequestTracker, seeded_database
    from sandbox.world import World

    users = int(os.environ.get("BENCH_RT_USERS", 2000))
    tickets = int(os.environ.get("BENCH_RT_TICKETS", 10000))
    world = World.generate(seed=11, persons=max(users, 1), organizations=max(1, users // 5))
    started = time.perf_counter()
    database, seeded = seeded_database(world, users=users, tickets=tickets, cache_dir=CACHE_DIR)
    print(f"request_tracker: {seeded['tickets']} tickets, {seeded['messages']} messages "
          f"(seeded in {seeded['seed_s']:.0f} s, {seeded['messages'] / max(seeded['seed_s'], 1):.1f} messages/s; "
          f"ready in {time.perf_counter() - started:.0f} s)", file=sys.stderr)
    with RequestTracker.start(database=database) as rt:
        print(f"request_tracker: RT up in {rt.started_s:.1f} s", file=sys.stderr)
        size = f"{users} users, {tickets} tickets, {seeded['messages']} messages"
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
                    "seed_s": round(seeded["seed_s"]),
                    "load_1m": round(os.getloadavg()[0], 1),  # the machine is shared: timings depend on it
                })
    print(f"request_tracker: bench done in {time.perf_counter() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "sync":
        sync_child(sys.argv[2])
    else:
        out: list[dict] = []
        bench_request_tracker(out)
        print(json.dumps(out, indent=2))
