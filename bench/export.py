"""The subject export against a large warehouse: generated straight in DuckDB (no sandbox, no
sync), then one person exported in its own process, without live API reads.

Usage:
    python -m bench.export generate WAREHOUSE [--persons N]   build the synthetic warehouse
    python -m bench.export measure WAREHOUSE EXPORT_DIR        export one person; prints JSON
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

import duckdb

GENERATE_SQL = """
CREATE SCHEMA raw_pipedrive;
CREATE TABLE raw_pipedrive.persons AS
SELECT i AS id, 'Etu' || i || ' Suku' || (i % 5000) AS name,
       ['etu' || i || '.suku' || (i % 5000) || '@yritys' || (i % 20000) || '.fi'] AS emails,
       ['+35840' || lpad(CAST(i AS VARCHAR), 7, '0')] AS phones,
       TIMESTAMPTZ '2025-01-01 00:00:00+00' + to_seconds(i) AS update_time,
       json_object('id', i, 'name', 'Etu' || i || ' Suku' || (i % 5000),
                   'emails', [json_object('value', 'etu' || i || '.suku' || (i % 5000) || '@yritys' || (i % 20000) || '.fi',
                                          'primary', true, 'label', 'work')],
                   'phones', [json_object('value', '040 ' || lpad(CAST(i AS VARCHAR), 7, '0'), 'primary', true,
                                          'label', 'mobile')],
                   'org_id', i % 20000 + 1, 'job_title', 'Toimitusjohtaja',
                   'update_time', '2025-01-01T00:00:00Z')::VARCHAR AS record
FROM range(1, $persons + 1) AS t(i);
CREATE TABLE raw_pipedrive.deals AS
SELECT i AS id, (i * 7) % $persons + 1 AS person_id,
       json_object('id', i, 'title', 'Kauppa ' || i, 'person_id', (i * 7) % $persons + 1, 'value', i % 10000)::VARCHAR AS record
FROM range(1, $persons // 2 + 1) AS t(i);
CREATE TABLE raw_pipedrive.activities AS
SELECT i AS id, (i * 13) % $persons + 1 AS person_id,
       json_object('id', i, 'subject', 'Soitto', 'person_id', (i * 13) % $persons + 1, 'done', true)::VARCHAR AS record
FROM range(1, $persons * 2 + 1) AS t(i);
CREATE TABLE raw_pipedrive.notes AS
SELECT i AS id, (i * 17) % $persons + 1 AS person_id,
       json_object('id', i, 'content', '<p>Muistiinpano ' || i || '</p>', 'person_id', (i * 17) % $persons + 1)::VARCHAR AS record
FROM range(1, $persons + 1) AS t(i);

CREATE TABLE person_records AS
SELECT 'P' || lpad(CAST(id AS VARCHAR), 9, '0') AS person_id, 'pipedrive' AS system, 'person' AS record_kind,
       CAST(id AS VARCHAR) AS record_id, 'single' AS rule, CAST(NULL AS DOUBLE) AS score, update_time AS updated_at
FROM raw_pipedrive.persons
UNION ALL
SELECT 'P' || lpad(CAST(person_id AS VARCHAR), 9, '0'), 'pipedrive', 'deal', CAST(id AS VARCHAR), 'pipedrive:person_id', 1.0, NULL
FROM raw_pipedrive.deals
UNION ALL
SELECT 'P' || lpad(CAST(person_id AS VARCHAR), 9, '0'), 'pipedrive', 'activity', CAST(id AS VARCHAR), 'pipedrive:person_id', 1.0, NULL
FROM raw_pipedrive.activities
UNION ALL
SELECT 'P' || lpad(CAST(person_id AS VARCHAR), 9, '0'), 'pipedrive', 'note', CAST(id AS VARCHAR), 'pipedrive:person_id', 1.0, NULL
FROM raw_pipedrive.notes;

CREATE TABLE person_identifiers AS
SELECT 'pipedrive' AS system, 'person' AS record_kind, CAST(id AS VARCHAR) AS record_id, 'email' AS kind,
       emails[1] AS value_raw, emails[1] AS value_norm FROM raw_pipedrive.persons
UNION ALL
SELECT 'pipedrive', 'person', CAST(id AS VARCHAR), 'phone', phones[1], phones[1] FROM raw_pipedrive.persons
UNION ALL
SELECT 'pipedrive', 'person', CAST(id AS VARCHAR), 'name', name, name FROM raw_pipedrive.persons;

CREATE TABLE persons AS
SELECT 'P' || lpad(CAST(id AS VARCHAR), 9, '0') AS person_id, name, emails, phones,
       ['Yritys ' || (id % 20000) || ' Oy'] AS organizations, ['pipedrive'] AS systems, false AS marketing_ban,
       update_time AS last_activity, 1 AS source_records
FROM raw_pipedrive.persons;
"""


def generate(path: Path, persons: int) -> dict:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    started = time.perf_counter()
    con = duckdb.connect(str(path))
    con.execute(GENERATE_SQL.replace("$persons", str(int(persons))))
    con.execute("CHECKPOINT")
    rows = con.execute("SELECT count(*) FROM person_records").fetchone()[0]
    con.close()
    return {"wall_s": time.perf_counter() - started, "persons": persons, "person_records": rows}


def measure(path: Path, export_dir: Path, person: int) -> dict:
    from contact_register.requests.export.export import export_subject
    from contact_register.requests.cases import validate_identifiers
    from contact_register.description import load_description

    desc = load_description()
    con = duckdb.connect(str(path), read_only=True)
    email, phone = con.execute("SELECT emails[1], phones[1] FROM raw_pipedrive.persons WHERE id = ?", [person]).fetchone()
    con.close()
    ids = validate_identifiers(emails=[email], phones=[phone])
    started = time.perf_counter()
    result = export_subject(case={"case_id": f"BENCH-{person}"}, identifiers=ids, warehouse_path=path,
                            export_dir=export_dir, desc=desc, live=None)
    wall = time.perf_counter() - started
    records = sum(r.count() for r in result.results.values())
    return {"wall_s": wall, "records": records, "bytes": result.size,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _child(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, "-m", "bench.export", *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"benchmark step export {args[0]} failed ({out.returncode}):\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_export(rows: list[dict]) -> None:
    """Row ``system: export``: BENCH_EXPORT_PERSONS (default 1,000,000) persons, one exported.
    Generation and the measured export each run in their own process; the export's time is
    the median of three runs (the first also pays for cold file caches)."""
    persons = int(os.environ.get("BENCH_EXPORT_PERSONS", 1_000_000))
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        wh = Path(tmp) / "warehouse.duckdb"
        made = _child(["generate", str(wh), "--persons", str(persons)])
        print(f"export warehouse generated in {made['wall_s']:.1f} s", file=sys.stderr)
        runs = [_child(["measure", str(wh), str(Path(tmp) / "exports"), "--person", str(persons // 2 + 7)])
                for _ in range(3)]
        runs.sort(key=lambda r: r["wall_s"])
        mid = runs[1]
        rows.append({
            "system": "export", "phase": "one person, no live reads",
            "size": f"{persons // 1000}k persons, {made['person_records'] // 1000}k person_records",
            "wall_s": round(mid["wall_s"], 2), "requests": 0, "min_requests": 0, "other_requests": 0,
            "rows_per_s": None, "peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs)),
            "goal_wall_s": 2.0, "records": mid["records"],
        })


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate")
    g.add_argument("warehouse")
    g.add_argument("--persons", type=int, default=1_000_000)
    m = sub.add_parser("measure")
    m.add_argument("warehouse")
    m.add_argument("export_dir")
    m.add_argument("--person", type=int, default=123_457)
    args = parser.parse_args()
    if args.cmd == "generate":
        out = generate(Path(args.warehouse), args.persons)
    else:
        out = measure(Path(args.warehouse), Path(args.export_dir), args.person)
    print(json.dumps(out))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
