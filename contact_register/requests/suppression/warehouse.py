"""The suppression list inside the warehouse build: ``staging.suppression_hits``.

``persons.sql`` reads it so that ``persons.marketing_ban`` and ``marketing_bans`` show people on
the list (banned or erased, then re-collected) even before any system carries their ban, and
the nightly ``suppression_check`` reads it to ban them again. It holds record keys, case ids and
reasons only; the identifiers themselves never leave ``person_identifiers``.
"""

from __future__ import annotations

import duckdb

from contact_register.requests.suppression.store import SuppressionList

HITS_DDL = ("CREATE OR REPLACE TABLE staging.suppression_hits (system VARCHAR, record_kind VARCHAR, "
            "record_id VARCHAR, case_id VARCHAR, reason VARCHAR, matched_by VARCHAR)")


def stage_suppression_hits(con: duckdb.DuckDBPyConnection, suppression: SuppressionList | None) -> int:
    """Fill ``staging.suppression_hits`` from ``person_identifiers`` (empty without a list)."""
    con.execute(HITS_DDL)
    if suppression is None:
        return 0
    con.execute("""CREATE OR REPLACE TEMP VIEW _supp_ids AS
        SELECT system || ':' || record_kind || ':' || record_id AS rec_key, kind, value_norm
        FROM person_identifiers WHERE kind IN ('email', 'phone', 'name')""")
    suppression.match(con, "_supp_ids", "_supp_hits")
    con.execute("""INSERT INTO staging.suppression_hits
        SELECT i.system, i.record_kind, i.record_id, h.case_id, h.reason, h.matched_by
        FROM _supp_hits AS h
        JOIN (SELECT DISTINCT system, record_kind, record_id,
                     system || ':' || record_kind || ':' || record_id AS rec_key FROM person_identifiers) AS i
          USING (rec_key)""")
    con.execute("DROP VIEW _supp_ids")
    con.execute("DROP TABLE _supp_hits")
    return con.execute("SELECT count(*) FROM staging.suppression_hits").fetchall()[0][0]
