"""Identity resolution benchmark: BENCH_IDENTITY_RECORDS (default 1,000,000) source records of
the labelled world in bench/identity_world.py (six systems; ordinary records plus the hard cases
of issue 18: name and organisation only, inverted names, switchboard or old mobile, namesake
colleagues) through `contact-register identity resolve`, with pairwise precision and recall,
overall and per case category. Generation is not timed; the resolve step runs in its own process.

    python -m bench.identity generate DIR     writes DIR/records.csv and DIR/truth.csv
    python -m bench.identity resolve DIR      resolves them, prints one JSON object
    python -m bench.identity metrics DIR      precision and recall per category
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RECORDS = int(os.environ.get("BENCH_IDENTITY_RECORDS", 1_000_000))


def generate(folder: Path, records: int = RECORDS, seed: int = 18) -> int:
    """DIR/records.csv and DIR/truth.csv (with each person's case category) from the labelled
    world of bench/identity_world.py."""
    from bench.identity_world import write

    return write(folder, records, seed)


def resolve(folder: Path) -> dict:
    from contact_register.cli.identity import resolve_file

    started = time.perf_counter()
    summary = resolve_file(folder / "records.csv", folder / "resolved.csv")
    wall = time.perf_counter() - started
    return dict(summary, wall_s=wall, peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def metrics(folder: Path) -> dict[str, dict]:
    """Pairwise precision and recall per case category and overall ("(all)")."""
    import duckdb

    from bench.identity_world import category_scores

    con = duckdb.connect()
    try:
        con.execute("CREATE TABLE world_truth AS SELECT * FROM read_csv(?, header = true, all_varchar = true)",
                    [str(folder / "truth.csv")])
        con.execute("""
            CREATE TABLE world_clusters AS SELECT system, record_id, cluster_id AS cluster
            FROM read_csv(?, header = true, all_varchar = true)""", [str(folder / "resolved.csv")])
        return category_scores(con)
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
        scores = metrics(folder)
        quality = scores["(all)"]
        for category, m in scores.items():
            print(f"identity {category:14s} precision {m['precision']:.4f}  recall {m['recall']:.4f}  "
                  f"({m['true_pairs']} true pairs)", file=sys.stderr)
        rows.append({
            "system": "identity", "phase": "resolve file", "size": f"{count // 1000}k records",
            "wall_s": round(result["wall_s"], 2), "requests": 0, "min_requests": 0, "other_requests": 0,
            "rows_per_s": round(count / result["wall_s"]) if result["wall_s"] else None,
            "peak_rss_mb": round(result["peak_rss_mb"]),
            "precision": round(quality["precision"], 4), "recall": round(quality["recall"], 4),
            "true_pairs": quality["true_pairs"], "clusters": result["clusters"],
            "by_category": {k: {"precision": round(v["precision"], 4), "recall": round(v["recall"], 4),
                                "true_pairs": v["true_pairs"]} for k, v in scores.items() if k != "(all)"},
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
