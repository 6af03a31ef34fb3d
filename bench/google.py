"""Google Workspace benchmark: full and idle incremental sync of many mailboxes.

``bench_google(rows)`` (called by ``make bench``) starts a Google-only sandbox in its own
process, then runs each measured sync in another process (its peak RSS is its own) and counts
requests at the sandbox. Sizes: BENCH_GOOGLE_USERS (default 50), BENCH_GOOGLE_MESSAGES per
mailbox (default 2000), BENCH_GOOGLE_PERSONS (humans in the world, default 5000); events,
files and contacts per mailbox follow the sandbox's defaults (messages/4, /6, /4, /10).

Minimum requests: a token per mailbox (the admin is one), users.list, and per mailbox: Gmail profile,
ceil(n/500) list pages and ceil(n/50) batches; one calendar page per 2,500 events; Drive's
start token and one page per 1,000 files; one People page per 1,000 contacts and other contacts.
Idle: tokens, users.list, and one request per mailbox per Gmail/Calendar/Drive, two for People.

    python -m bench.google                 # run the benchmark alone, print rows
    python -m bench.google serve STATE     # (internal) sandbox process
    python -m bench.google sync RAW_DIR    # (internal) one measured sync, prints JSON
"""

from __future__ import annotations

import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests


def _sizes() -> dict[str, int]:
    return {"users": int(os.environ.get("BENCH_GOOGLE_USERS", 50)),
            "messages": int(os.environ.get("BENCH_GOOGLE_MESSAGES", 2000)),
            "persons": int(os.environ.get("BENCH_GOOGLE_PERSONS", 5000))}


def serve(state_file: str) -> None:
    import signal
    import threading

    from sandbox.server import Sandbox
    from sandbox.world import World

    world = World.generate(seed=7, persons=int(os.environ.get("BENCH_GOOGLE_PERSONS", 5000)),
                           organizations=max(1, int(os.environ.get("BENCH_GOOGLE_PERSONS", 5000)) // 5))
    sb = Sandbox(world, systems=("google",)).start()
    world.drop_cache()
    g = sb.google
    counts = {"users": len(g.users), "messages": sum(len(b["messages"]) for b in g.mail.values()),
              "events": [len(c["events"]) for c in g.cal.values()],
              "files": [len(g.live_files(u)) for u in g.user_emails()],
              "contacts": [len(p["connections"]) for p in g.people.values()],
              "others": [len(p["other"]) for p in g.people.values()],
              "mailbox": [len(b["messages"]) for b in g.mail.values()]}
    tmp = Path(state_file + ".tmp")
    tmp.write_text(json.dumps({"url": sb.url("google"), "env": sb.env(), "counts": counts}))
    os.replace(tmp, state_file)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    sb.stop()


def sync(raw_dir: str) -> None:
    from contact_register.sync.google.sync import sync_google
    from contact_register.sync.raw_store import open_raw_store
    from connectors.google_workspace import GoogleWorkspaceClient, settings_from_env

    client = GoogleWorkspaceClient(settings_from_env(dict(os.environ)))
    started = time.perf_counter()
    with open_raw_store(raw_dir, "google") as store:
        result = sync_google(client, store)
    wall = time.perf_counter() - started
    print(json.dumps({"wall_s": wall, "requests": result.requests, "retries": result.retries, "rows": result.rows,
                      "upserted": sum(r.upserted for r in result.apis.values()),
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def minimum_requests(c: dict, phase: str) -> int:
    users = c["users"]
    if phase != "full":
        return users + 1 + users * 5  # the admin is one of the users: one token each
    n = users + 1
    for i in range(users):
        n += 1 + max(1, math.ceil(c["mailbox"][i] / 500)) + math.ceil(c["mailbox"][i] / 50)
        n += max(1, math.ceil(c["events"][i] / 2500))
        n += 1 + max(1, math.ceil(c["files"][i] / 1000))
        n += max(1, math.ceil(c["contacts"][i] / 1000)) + max(1, math.ceil(c["others"][i] / 1000))
    return n


def bench_google(rows: list[dict]) -> None:
    sizes = _sizes()
    with tempfile.TemporaryDirectory(prefix="bench-google-") as tmp:
        work = Path(tmp)
        state = work / "google.json"
        env = dict(os.environ, SANDBOX_GOOGLE_USERS=str(sizes["users"]), SANDBOX_GOOGLE_MESSAGES=str(sizes["messages"]),
                   BENCH_GOOGLE_PERSONS=str(sizes["persons"]))
        started = time.perf_counter()
        log = open(work / "sandbox.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "bench.google", "serve", str(state)], env=env,
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            while not state.exists():
                if proc.poll() is not None or time.perf_counter() - started > 900:
                    raise SystemExit(f"google sandbox did not start; see {work / 'sandbox.log'}")
                time.sleep(0.5)
            info = json.loads(state.read_text())
            print(f"google sandbox up in {time.perf_counter() - started:.1f} s", file=sys.stderr)
            c = info["counts"]
            size = (f"{c['users']} mailboxes x {sizes['messages']} msgs, {sum(c['events'])} events, "
                    f"{sum(c['files'])} files, {sum(c['contacts']) + sum(c['others'])} contacts")
            for phase in ("full", "idle incremental"):
                requests.post(f"{info['url']}/_sandbox/stats/reset", timeout=10).raise_for_status()
                out = subprocess.run([sys.executable, "-m", "bench.google", "sync", str(work / "raw")],
                                     env=dict(os.environ, **info["env"]), check=True, capture_output=True, text=True)
                result = json.loads(out.stdout.strip().splitlines()[-1])
                stats = requests.get(f"{info['url']}/_sandbox/stats", timeout=10).json()
                rows.append({
                    "system": "google", "phase": phase, "size": size, "wall_s": round(result["wall_s"], 2),
                    "requests": stats["total"], "min_requests": minimum_requests(c, phase), "other_requests": 0,
                    "rows_per_s": round(result["upserted"] / result["wall_s"]) if result["wall_s"] else None,
                    "peak_rss_mb": round(result["peak_rss_mb"]),
                })
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def main() -> None:
    if len(sys.argv) >= 3 and sys.argv[1] == "serve":
        serve(sys.argv[2])
    elif len(sys.argv) >= 3 and sys.argv[1] == "sync":
        sync(sys.argv[2])
    else:
        rows: list[dict] = []
        bench_google(rows)
        for r in rows:
            print(json.dumps(r))


if __name__ == "__main__":
    main()
