"""Netvisor benchmark: a sandbox process serving only Netvisor, and each measured sync in its
own process (peak RSS is that process's own).

Sizes: BENCH_NETVISOR_ORGANIZATIONS (default 10500) and BENCH_NETVISOR_PERSONS (38000) give
about 10k customers, 30k contact persons and 100k invoices (the derivation's ratios).

Usage (called by ``python -m bench``):
  python -m bench.netvisor serve STATE_FILE --persons N --organizations M
  python -m bench.netvisor sync RAW_DIR [--reconcile]   (reads NETVISOR_* from the environment)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

import requests


def serve(state_file: Path, persons: int, organizations: int) -> None:
    from sandbox.server import Sandbox
    from sandbox.world import World

    world = World.generate(seed=7, persons=persons, organizations=organizations)
    sandbox = Sandbox(world, systems=("netvisor",)).start()
    world.drop_cache()
    nv = sandbox.netvisor
    state = {"url": sandbox.url("netvisor"), "env": sandbox.env(),
             "counts": {"customers": len(nv.customers), "contact_persons": len(nv.contact_persons),
                        "invoices": len(nv.invoices)}}
    tmp = state_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, state_file)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    # The benchmark's own check that it never ran two calls at once for the customer.
    print(json.dumps({"violations": nv.violations, "repeated_transactions": nv.repeated_transactions}), flush=True)
    sandbox.stop()


def sync(raw_dir: str, reconcile: bool) -> None:
    from contact_register.sync.netvisor.sync import sync_netvisor
    from contact_register.sync.raw_store import open_raw_store
    from connectors.netvisor import NetvisorClient

    e = os.environ
    client = NetvisorClient(
        e["NETVISOR_BASE_URL"], sender=e["NETVISOR_SENDER"], customer_id=e["NETVISOR_CUSTOMER_ID"],
        partner_id=e["NETVISOR_PARTNER_ID"], customer_key=e["NETVISOR_CUSTOMER_KEY"],
        partner_key=e["NETVISOR_PARTNER_KEY"], organisation_id=e["NETVISOR_ORGANISATION_ID"], lock_dir=raw_dir,
    )
    started = time.perf_counter()
    with open_raw_store(raw_dir, "netvisor") as store:
        result = sync_netvisor(client, store, reconcile_every=timedelta(0) if reconcile else timedelta(hours=20))
    wall = time.perf_counter() - started
    client.close()
    print(json.dumps({
        "wall_s": wall, "requests": result.requests, "retries": result.retries,
        "entities": {k: {"mode": r.mode, "received": r.received, "rows": r.rows} for k, r in result.entities.items()},
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


def bench_netvisor(rows: list[dict]) -> None:
    organizations = int(os.environ.get("BENCH_NETVISOR_ORGANIZATIONS", 10_500))
    persons = int(os.environ.get("BENCH_NETVISOR_PERSONS", 38_000))
    with tempfile.TemporaryDirectory(prefix="bench-netvisor-") as tmp:
        work = Path(tmp)
        state_file = work / "netvisor.json"
        log = open(work / "sandbox.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "bench.netvisor", "serve", str(state_file),
                                 "--persons", str(persons), "--organizations", str(organizations)],
                                stdout=subprocess.PIPE, stderr=log)
        try:
            deadline = time.monotonic() + 600
            while not state_file.exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"netvisor sandbox did not start; see {work / 'sandbox.log'}")
                time.sleep(0.2)
            state = json.loads(state_file.read_text())
            counts = state["counts"]
            size = (f"{counts['customers'] / 1000:.1f}k customers, {counts['contact_persons'] / 1000:.1f}k contact "
                    f"persons, {counts['invoices'] / 1000:.1f}k invoices")
            full_min = (1 + math.ceil(counts["customers"] / 500) + counts["invoices"] // 500 + 1
                        + math.ceil(counts["invoices"] / 500))
            for phase, extra, minimum in (("full", [], full_min), ("idle incremental", [], 2),
                                          ("reconcile (full re-read)", ["--reconcile"], full_min)):
                requests.post(f"{state['url']}/_sandbox/stats/reset", timeout=10).raise_for_status()
                out = subprocess.run([sys.executable, "-m", "bench.netvisor", "sync", str(work / "raw"), *extra],
                                     env=dict(os.environ, **state["env"]), check=True, capture_output=True, text=True)
                result = json.loads(out.stdout.strip().splitlines()[-1])
                served = requests.get(f"{state['url']}/_sandbox/stats", timeout=10).json()["total"]
                received = sum(e["received"] for e in result["entities"].values())
                rows.append({
                    "system": "netvisor", "phase": phase, "size": size, "wall_s": round(result["wall_s"], 2),
                    "requests": served, "min_requests": minimum, "other_requests": 0,
                    "rows_per_s": round(received / result["wall_s"]) if result["wall_s"] else None,
                    "peak_rss_mb": round(result["peak_rss_mb"]),
                })
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                tail = proc.communicate(timeout=60)[0].decode().strip().splitlines()
                checks = json.loads(tail[-1]) if tail else {}
            except (subprocess.TimeoutExpired, ValueError):
                proc.kill()
                checks = {}
            log.close()
        if checks.get("violations"):
            raise SystemExit(f"netvisor benchmark: {checks['violations']} concurrent calls for one customer")
        print(f"netvisor sandbox: {checks}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve")
    s.add_argument("state_file", type=Path)
    s.add_argument("--persons", type=int, required=True)
    s.add_argument("--organizations", type=int, required=True)
    y = sub.add_parser("sync")
    y.add_argument("raw_dir")
    y.add_argument("--reconcile", action="store_true")
    args = parser.parse_args()
    if args.command == "serve":
        serve(args.state_file, args.persons, args.organizations)
    else:
        sync(args.raw_dir, args.reconcile)


if __name__ == "__main__":
    main()
