"""`contact-register identity ...`: review and decide uncertain pairs, resolve a file, screen a
bought contact list against the warehouse.

    identity review [--limit N]            uncertain pairs waiting for an operator
    identity confirm KEY KEY [--note T]     the two records are the same human
    identity split KEY KEY [--note T]       they are not
    identity decisions                      every decision so far
    identity resolve IN.csv OUT.csv         cluster a file of records (the pipeline's resolver)
    identity screen LIST.csv OUT.csv        previously erased / marketing ban / existing / new, per row

The resolve input has the columns record_id, system, name, email, phone and organisation, and
optionally business_id (a Y-tunnus or FI VAT number: the organisation when it is known).
Record keys look like ``pipedrive:person:123``. Decisions are stored in IDENTITY_DECISIONS_PATH
(default beside WAREHOUSE_PATH) and apply from the next warehouse build on.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import duckdb
import pyarrow.csv as pacsv

from contact_register import settings
from contact_register.warehouse import identity, identity_state

RESOLVE_COLUMNS = ("record_id", "system", "name", "email", "phone", "organisation")
# Optional: a business id (Y-tunnus or FI VAT number) identifies the organisation when known.
RESOLVE_OPTIONAL = ("business_id",)


def register(groups: argparse._SubParsersAction) -> None:
    parser = groups.add_parser("identity", help="identity resolution: review, decide, resolve, screen")
    commands = parser.add_subparsers(dest="command", required=True)

    review = commands.add_parser("review", help="list uncertain pairs waiting for a decision")
    review.add_argument("--limit", type=int, default=50)
    _warehouse_args(review)
    review.set_defaults(func=cmd_review)

    for name, text in (("confirm", "the two records are the same human"), ("split", "the two records are different humans")):
        p = commands.add_parser(name, help=text)
        p.add_argument("left_key")
        p.add_argument("right_key")
        p.add_argument("--note", default=None)
        _warehouse_args(p)
        p.set_defaults(func=cmd_decide, decision=name)

    decisions = commands.add_parser("decisions", help="list the operator decisions")
    _warehouse_args(decisions)
    decisions.set_defaults(func=cmd_decisions)

    resolve = commands.add_parser("resolve", help="resolve a CSV of records into clusters")
    resolve.add_argument("input", type=Path)
    resolve.add_argument("output", type=Path)
    resolve.add_argument("--state", type=Path, default=None,
                         help="identity state file: apply its decisions and keep cluster ids stable across runs")
    resolve.set_defaults(func=cmd_resolve)

    screen = commands.add_parser(
        "screen", help="match a contact list against the warehouse's persons and the suppression list")
    screen.add_argument("input", type=Path)
    screen.add_argument("output", type=Path)
    screen.add_argument("--register", default=None,
                        help="request register holding the suppression list (default: REGISTER_URL)")
    _warehouse_args(screen)
    screen.set_defaults(func=cmd_screen)


def _warehouse_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--warehouse", type=Path, default=settings.warehouse_path())
    p.add_argument("--decisions", type=Path, default=None, help="state file (default: IDENTITY_DECISIONS_PATH)")


def _state_path(args) -> Path:
    return args.decisions or identity_state.default_path(args.warehouse, configured=settings.identity_decisions_path())


def _open_warehouse(path: Path) -> duckdb.DuckDBPyConnection:
    if not path.exists():
        raise FileNotFoundError(f"no warehouse at {path}: run nightly_sync first")
    return duckdb.connect(str(path), read_only=True)


def cmd_review(args) -> int:
    con = _open_warehouse(args.warehouse)
    try:
        rows = con.execute("""
            SELECT r.left_key, r.right_key, r.probability, r.name_level, r.email_level, r.phone_level, r.org_level,
                   (SELECT any_value(value_raw) FROM person_identifiers i WHERE i.kind = 'name'
                      AND i.system || ':' || i.record_kind || ':' || i.record_id = r.left_key),
                   (SELECT any_value(value_raw) FROM person_identifiers i WHERE i.kind = 'name'
                      AND i.system || ':' || i.record_kind || ':' || i.record_id = r.right_key)
            FROM identity_review AS r ORDER BY r.probability DESC LIMIT ?
        """, [args.limit]).fetchall()
        total = con.execute("SELECT count(*) FROM identity_review").fetchone()[0]
    finally:
        con.close()
    decided = {(a, b) for _, a, b, *_ in identity_state.list_decisions(_state_path(args))}
    print(f"{total} pairs to review (showing {len(rows)}); decide with `identity confirm|split LEFT RIGHT`")
    for left, right, p, name, email, phone, org, lname, rname in rows:
        mark = " (decided, applies at the next build)" if (left, right) in decided else ""
        print(f"{left}  {right}  p={p:.3f}  name={name} email={email} phone={phone} org={org}  [{lname} | {rname}]{mark}")
    return 0


def cmd_decide(args) -> int:
    identity_state.record_decision(_state_path(args), args.left_key, args.right_key, args.decision, args.note)
    print(f"recorded: {args.decision} {args.left_key} {args.right_key}; applies at the next warehouse build")
    return 0


def cmd_decisions(args) -> int:
    for seq, left, right, decision, at, note in identity_state.list_decisions(_state_path(args)):
        print(f"{seq}\t{at:%Y-%m-%d %H:%M}\t{decision}\t{left}\t{right}\t{note or ''}")
    return 0


def _read_csv(con: duckdb.DuckDBPyConnection, path: Path, table: str, required: tuple[str, ...]) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"no such input file: {path}")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT *, row_number() OVER () AS _row "
        "FROM read_csv(?, header = true, all_varchar = true, strict_mode = false, max_line_size = 10000000)",
        [str(path)],
    )
    columns = {r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()}
    missing = [c for c in required if c not in columns]
    if missing:
        raise ValueError(f"{path.name} lacks the column(s) {', '.join(missing)} (needs {', '.join(required)})")


def resolve_file(input_path: Path, output_path: Path, state_path: Path | None = None) -> dict:
    """The batch tool: the records of a CSV through the pipeline's resolver, written back with
    cluster_id, rule and score. Rows without a record_id, or repeating a (system, record_id)
    already seen, are skipped and counted."""
    started = time.perf_counter()
    con = duckdb.connect()
    try:
        identity.register(con)
        _read_csv(con, input_path, "input_rows", RESOLVE_COLUMNS)
        columns = {r[0] for r in con.execute("DESCRIBE input_rows").fetchall()}
        for optional in RESOLVE_OPTIONAL:  # our own constants, never data
            if optional not in columns:
                con.execute(f"ALTER TABLE input_rows ADD COLUMN {optional} VARCHAR")
        con.execute("""
            CREATE OR REPLACE TEMP TABLE input_keyed AS
            SELECT *, coalesce(nullif(trim(system), ''), 'input') AS sys,
                   row_number() OVER (PARTITION BY coalesce(nullif(trim(system), ''), 'input'), record_id ORDER BY _row) AS nth
            FROM input_rows
        """)
        skipped = con.execute("""
            SELECT count(*) FILTER (WHERE record_id IS NULL OR trim(record_id) = '' OR length(record_id) > 200),
                   count(*) FILTER (WHERE nth > 1 AND record_id IS NOT NULL),
                   count(*) FILTER (WHERE sys LIKE '%:%' OR length(sys) > 100)
            FROM input_keyed
        """).fetchone()
        con.execute("""
            CREATE SCHEMA IF NOT EXISTS staging;
            CREATE OR REPLACE TABLE staging.source_persons AS
            SELECT sys AS system, 'record' AS record_kind, record_id, nullif(trim(name), '') AS name,
                   NULL::VARCHAR AS first_name, NULL::VARCHAR AS last_name, NULL::VARCHAR AS job_title,
                   CASE WHEN coalesce(trim(email), '') = '' THEN [] ELSE [email] END AS emails,
                   CASE WHEN coalesce(trim(phone), '') = '' THEN [] ELSE [phone] END AS phones,
                   nullif(trim(organisation), '') AS organization, nullif(trim(business_id), '') AS business_id,
                   NULL::VARCHAR AS marketing_status, NULL::TIMESTAMPTZ AS updated_at
            FROM input_keyed
            WHERE nth = 1 AND record_id IS NOT NULL AND trim(record_id) <> '' AND length(record_id) <= 200
              AND sys NOT LIKE '%:%' AND length(sys) <= 100;
        """)
        decisions: list = []
        if state_path:
            identity_state.attach(con, state_path)
            decisions = identity_state.load_decisions(con)
            con.execute("DETACH idstate")
        result = identity.resolve(con, decisions)
        if state_path:
            identity_state.attach(con, state_path)
            identity_state.assign_person_ids(con)
            con.execute("DETACH idstate")
        else:
            identity_state.fresh_ids(con)
        table = con.sql("""
            SELECT i.record_id, i.system, i.name, i.email, i.phone, i.organisation,
                   c.person_id AS cluster_id, c.rule, round(c.score, 4) AS score
            FROM input_keyed AS i
            LEFT JOIN staging.person_components AS c ON c.record_key = i.sys || ':record:' || i.record_id AND i.nth = 1
            ORDER BY i._row
        """).to_arrow_table()
        output_path.parent.mkdir(parents=True, exist_ok=True)
        pacsv.write_csv(table, str(output_path))
    finally:
        con.close()
    return {
        "rows": table.num_rows, "records": result.records,
        "clusters": result.clusters, "pairs_compared": result.pairs_compared, "links": result.links,
        "review": result.review, "skipped_no_id": skipped[0], "skipped_duplicate": skipped[1],
        "skipped_bad_system": skipped[2], "wall_s": round(time.perf_counter() - started, 2),
    }


def cmd_resolve(args) -> int:
    summary = resolve_file(args.input, args.output, args.state)
    # Counts only: the file's contents are personal data and stay out of the terminal log.
    print(", ".join(f"{k}={v}" for k, v in summary.items()), file=sys.stderr)
    return 0


def screen_file(input_path: Path, output_path: Path, warehouse: Path, suppression=None) -> dict:
    """Each row of a bought list against the warehouse and the suppression list:
    'previously_erased' (an erased person: the suppression list), 'marketing_ban' (on the list
    for a ban, or a known person who forbade marketing), 'existing' (a known person) or 'new'.
    Matched to persons by a personal email, else by a phone that belongs to exactly one person;
    to the list as the nightly check matches (``contact_register/requests/suppression/store.py``). Generic mailboxes
    never match."""
    wh = _open_warehouse(warehouse)
    wh.close()
    con = duckdb.connect()
    try:
        identity.register(con)
        _read_csv(con, input_path, "list_rows", ("name", "email", "phone"))
        # ATTACH takes no bound parameter: the path is the operator's argument, quoted.
        con.execute(f"ATTACH '{identity_state._sql_path(warehouse)}' AS wh (READ_ONLY)")
        con.execute("CREATE OR REPLACE TEMP TABLE id_generic AS SELECT unnest(?::VARCHAR[]) AS local_part",
                    [list(identity.generic_local_parts())])
        _suppression_hits(con, suppression)
        table = con.sql("""
            WITH ids AS (
                SELECT i.kind, i.value_norm, r.person_id
                FROM wh.person_identifiers AS i
                JOIN wh.person_records AS r USING (system, record_kind, record_id)
                WHERE i.kind IN ('email', 'phone') AND i.value_norm IS NOT NULL
            ),
            by_email AS (
                SELECT value_norm, min(person_id) AS person_id FROM ids WHERE kind = 'email'
                  AND split_part(value_norm, '@', 1) NOT IN (SELECT local_part FROM id_generic)
                GROUP BY value_norm HAVING count(DISTINCT person_id) = 1
            ),
            by_phone AS (
                SELECT value_norm, min(person_id) AS person_id FROM ids WHERE kind = 'phone'
                GROUP BY value_norm HAVING count(DISTINCT person_id) = 1
            ),
            rows AS (
                SELECT l.*, coalesce(e.person_id, p.person_id) AS person_id,
                       CASE WHEN e.person_id IS NOT NULL THEN 'email' WHEN p.person_id IS NOT NULL THEN 'phone' END AS matched_by
                FROM list_rows AS l
                LEFT JOIN by_email AS e ON e.value_norm = norm_email(nullif(trim(l.email), ''))
                LEFT JOIN by_phone AS p ON p.value_norm = norm_phone(nullif(trim(l.phone), ''))
            )
            SELECT r.* EXCLUDE (_row),
                   CASE WHEN list_contains(sh.reasons, 'erasure') THEN 'previously_erased'
                        WHEN list_contains(sh.reasons, 'ban') OR ps.marketing_ban THEN 'marketing_ban'
                        WHEN r.person_id IS NULL THEN 'new'
                        ELSE 'existing' END AS status
            FROM rows AS r LEFT JOIN wh.persons AS ps USING (person_id)
            LEFT JOIN (SELECT CAST(rec_key AS BIGINT) AS _row, list(DISTINCT reason) AS reasons
                       FROM screen_hits GROUP BY ALL) AS sh USING (_row)
            ORDER BY r._row
        """).to_arrow_table()
        output_path.parent.mkdir(parents=True, exist_ok=True)
        pacsv.write_csv(table, str(output_path))
        counts = {}
        for status in table.column("status").to_pylist():
            counts[status] = counts.get(status, 0) + 1
    finally:
        con.close()
    return counts


def _suppression_hits(con: duckdb.DuckDBPyConnection, suppression) -> None:
    """Temp table screen_hits(rec_key = the row number, case_id, reason) from the suppression list."""
    con.execute("""CREATE OR REPLACE TEMP VIEW screen_ids AS
        SELECT CAST(_row AS VARCHAR) AS rec_key, 'email' AS kind, norm_email(nullif(trim(email), '')) AS value_norm
        FROM list_rows
        UNION ALL SELECT CAST(_row AS VARCHAR), 'phone', norm_phone(nullif(trim(phone), '')) FROM list_rows
        UNION ALL SELECT CAST(_row AS VARCHAR), 'name', nullif(name_key(name), '') FROM list_rows""")
    if suppression is None:
        con.execute("CREATE OR REPLACE TEMP TABLE screen_hits (rec_key VARCHAR, case_id VARCHAR, reason VARCHAR)")
    else:
        suppression.match(con, "screen_ids", "screen_hits")


def _no_register(url: str) -> bool:
    """A SQLite register that does not exist yet (nobody was ever banned or erased): screening
    must not create one as a side effect."""
    from contact_register.requests.cases.backend import DEFAULT_SQLITE_PATH

    url = url.strip()
    if url.startswith(("postgresql://", "postgres://")):
        return False
    return not Path(url[len("sqlite:///"):] if url.startswith("sqlite:///") else url or DEFAULT_SQLITE_PATH).exists()


def cmd_screen(args) -> int:
    from contact_register.requests.cases import open_register
    from contact_register.requests.suppression.store import SuppressionKeyError, SuppressionList

    url = args.register if args.register is not None else settings.register_url()
    if _no_register(url):
        counts = screen_file(args.input, args.output, args.warehouse)
        print("note: no request register yet, so no suppression list to screen against", file=sys.stderr)
    else:
        register = open_register(url)
        try:
            counts = screen_file(args.input, args.output, args.warehouse, SuppressionList(register))
        except SuppressionKeyError as exc:
            raise ValueError(f"{exc}; the list was not screened against the suppression list") from None
        finally:
            register.close()
    print(", ".join(f"{k}={v}" for k, v in sorted(counts.items())), file=sys.stderr)
    return 0
