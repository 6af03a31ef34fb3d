"""One measured Pipedrive sync in its own process, so its peak RSS is its own.

Usage: python -m bench.pipedrive_sync RAW_DIR [--warehouse PATH]
Reads PIPEDRIVE_BASE_URL / PIPEDRIVE_API_TOKEN; prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time

from contact_register.sync.pipedrive.sync import sync_pipedrive
from contact_register.sync.raw_store import open_raw_store
from contact_register.warehouse.build import build_warehouse
from connectors.pipedrive import PipedriveClient


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("raw_dir")
    parser.add_argument("--warehouse")
    args = parser.parse_args()
    out: dict = {}
    if args.warehouse:
        started = time.perf_counter()
        result = build_warehouse(args.raw_dir, args.warehouse)
        out.update(wall_s=time.perf_counter() - started, rows=result.tables.get("person_identifiers", 0),
                   persons=result.persons, tables=result.tables)
    else:
        client = PipedriveClient(os.environ["PIPEDRIVE_BASE_URL"], os.environ["PIPEDRIVE_API_TOKEN"])
        started = time.perf_counter()
        with open_raw_store(args.raw_dir, "pipedrive") as store:
            result = sync_pipedrive(client, store)
        out.update(
            wall_s=time.perf_counter() - started,
            requests=result.requests,
            retries=result.retries,
            entities={e: {"rows": r.rows, "received": r.received, "deleted": r.deleted, "pages": r.pages, "mode": r.mode}
                      for e, r in result.entities.items()},
        )
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


if __name__ == "__main__":
    main()
