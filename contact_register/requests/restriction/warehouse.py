"""Restricted persons inside the warehouse build: ``staging.restriction_hits``.

Every email and phone of ``person_identifiers`` is hashed with the register's key and looked up
among the active restrictions' keys (``store.active_keys``); ``persons.sql`` turns a hit on any
of a person's records into ``persons.restricted`` (which also sets ``marketing_ban``) and leaves
the person out of ``analyst_persons``. Only record keys and case ids land in the table.
"""

from __future__ import annotations

import duckdb

from contact_register.requests.cases.casebook import Register
from contact_register.requests.restriction.store import active_keys

HITS_DDL = ("CREATE OR REPLACE TABLE staging.restriction_hits (system VARCHAR, record_kind VARCHAR, "
            "record_id VARCHAR, case_id VARCHAR)")
BATCH = 50_000


def stage_restriction_hits(con: duckdb.DuckDBPyConnection, register: Register | None) -> int:
    con.execute(HITS_DDL)
    keys = active_keys(register) if register is not None else {}
    if not keys:
        return 0
    matched: list[tuple[str, str, str]] = []  # kind, value_norm, case_id
    cur = con.execute("SELECT DISTINCT kind, value_norm FROM person_identifiers "
                      "WHERE kind IN ('email', 'phone') AND value_norm IS NOT NULL")
    with register.backend.transaction() as tx:
        while batch := cur.fetchmany(BATCH):
            for kind, value in batch:
                for case_id in keys.get(register.subject_hash(tx, kind, value), ()):
                    matched.append((kind, value, case_id))
    con.execute("""INSERT INTO staging.restriction_hits
        SELECT DISTINCT i.system, i.record_kind, i.record_id, m.case_id
        FROM person_identifiers AS i
        JOIN (SELECT unnest(?::VARCHAR[]) AS kind, unnest(?::VARCHAR[]) AS value_norm,
                     unnest(?::VARCHAR[]) AS case_id) AS m USING (kind, value_norm)""",
                [[m[0] for m in matched], [m[1] for m in matched], [m[2] for m in matched]])
    return con.execute("SELECT count(*) FROM staging.restriction_hits").fetchall()[0][0]
