"""Identity resolution benchmark: BENCH_IDENTITY_RECORDS (default 1,000,000) source records of a
generated world through `contact-register identity resolve`, with pairwise precision and recall.

The records imitate three systems over the sandbox world's humans: the Pipedrive derivation as
it is (duplicates, case and whitespace, aliases, shared mailboxes, namesakes, company and name
changes), a mail system (lower-case address, display name often missing or surname first) and a
billing system (alias or canonical address, phone in another spelling, organisation with its
legal form moved). Generation is not timed; the resolve step runs in its own process.

    python -m bench.identity generate DIR     writes DIR/records.csv and DIR/truth.csv
    python -m bench.identity resolve DIR      resolves them, prints one JSON object
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RECORDS = int(os.environ.get("BENCH_IDENTITY_RECORDS", 1_000_000))
# Records per human: Pipedrive ~1.05, mail 0.45, billing 0.3.
PER_HUMAN = 1.75


def generate(folder: Path, records: int = RECORDS, seed: int = 42) -> int:
    from sandbox.pipedrive_world import _email_variant, _format_phone
    from sandbox.world import World

    humans = max(10, int(records / PER_HUMAN))
    world = World.generate(seed=seed, persons=humans, organizations=max(5, humans // 5), deals=0, activities=0, notes=0)
    pw = world.derive("pipedrive")
    rng = random.Random(f"bench-identity:{seed}")
    companies = world.companies
    org_of = {c.index + 1: c.name for c in companies}
    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(folder / "records.csv", "w", newline="", encoding="utf-8") as rf, \
            open(folder / "truth.csv", "w", newline="", encoding="utf-8") as tf:
        rec, truth = csv.writer(rf), csv.writer(tf)
        rec.writerow(("record_id", "system", "name", "email", "phone", "organisation"))
        truth.writerow(("system", "record_id", "true_person_id"))
        for p in pw.persons:
            rec.writerow((p.id, "pipedrive", p.name, p.emails[0][0] if p.emails else "",
                          p.phones[0][0] if p.phones else "", org_of.get(p.org_id, "")))
            truth.writerow(("pipedrive", p.id, p.true_person_id))
            n += 1
        for h in world.humans:
            if n >= records:
                break
            company = companies[h.company_index]
            if rng.random() < 0.45:  # mail: the address as the mail system stores it
                r = rng.random()
                name = "" if r < 0.3 else (f"{h.last_name} {h.first_name}" if r < 0.4 else f"{h.first_name} {h.last_name}")
                rid = f"m{n}"
                rec.writerow((rid, "mail", name, h.email.lower(), "", ""))
                truth.writerow(("mail", rid, h.true_person_id))
                n += 1
            if rng.random() < 0.3 and n < records:  # billing
                email = _email_variant(rng, h.email, h.first_name, h.last_name) if rng.random() < 0.8 else ""
                if email and email.split("@")[0].strip().lower() != h.email.split("@")[0] and rng.random() < 0.5:
                    email = h.email  # most aliases are not in billing
                org = company.name if rng.random() < 0.5 else company.name.replace(" Oy", "").replace(" Ab", "") + " Oy"
                phone = _format_phone(rng, h.phone_e164) if rng.random() < 0.6 else ""
                rid = f"b{n}"
                rec.writerow((rid, "billing", f"{h.first_name} {h.last_name}", email, phone, org))
                truth.writerow(("billing", rid, h.true_person_id))
                n += 1
    return n


def resolve(folder: Path) -> dict:
    from pipelines.cli_identity import resolve_file

    started = time.perf_counter()
    summary = resolve_file(folder / "records.csv", folder / "resolved.csv")
    wall = time.perf_counter() - started
    return dict(summary, wall_s=wall, peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def metrics(folder: Path) -> dict:
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("CREATE SCHEMA staging")
        con.execute(f"""
            CREATE TABLE id_truth AS SELECT * FROM read_csv('{folder / 'truth.csv'}', header = true, all_varchar = true);
            CREATE TABLE staging.record_clusters AS
            SELECT system || ':record:' || record_id AS record_key, cluster_id AS cluster
            FROM read_csv('{folder / 'resolved.csv'}', header = true, all_varchar = true);
        """)
        from assets.warehouse.identity import pairwise_metrics

        return pairwise_metrics(con)
    finally:
        con.close()


def bench_identity(rows: list[dict]) -> None:
    """The `make bench` row: generate (untimed), resolve in a child process, score."""
    with tempfile.TemporaryDirectory(prefix="bench-identity-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        count = generate(folder)
        print(f"identity: {count} records generated in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        out = subprocess.run([sys.executable, "-m", "bench.identity", "resolve", str(folder)],
                             check=True, capture_output=True, text=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        quality = metrics(folder)
        rows.append({
            "system": "identity", "phase": "resolve file", "size": f"{count // 1000}k records",
            "wall_s": round(result["wall_s"], 2), "requests": 0, "min_requests": 0, "other_requests": 0,
            "rows_per_s": round(count / result["wall_s"]) if result["wall_s"] else None,
            "peak_rss_mb": round(result["peak_rss_mb"]),
            "precision": round(quality["precision"], 4), "recall": round(quality["recall"], 4),
            "true_pairs": quality["true_pairs"], "clusters": result["clusters"],
        })


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("step", choices=("generate", "resolve", "metrics", "all"))
    parser.add_argument("folder", type=Path)
    args = parser.parse_args()
    if args.step == "generate":
        print(json.dumps({"records": generate(args.folder)}))
    elif args.step == "resolve":
        print(json.dumps(resolve(args.folder)))
    elif args.step == "metrics":
        print(json.dumps(metrics(args.folder)))
    else:
        rows: list[dict] = []
        bench_identity(rows)
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
