"""The identity state store: operator decisions and the record -> person_id map.

It lives outside the warehouse (which is rebuilt from scratch every run) in a small DuckDB file,
``IDENTITY_DECISIONS_PATH`` (default: ``identity_decisions.duckdb`` beside the warehouse).
Only record keys (``system:kind:id``), person ids and decisions are kept: no names, emails or
phone numbers. DuckDB allows one writer process, so opening retries briefly while a build or
another command holds the file.

Stable person ids (:func:`assign_person_ids`): every record key remembers its person id and
when it was first seen. A cluster keeps an id its members already had; when a cluster holds
members of several ids (a merge) it keeps the id whose holder was seen first (ties: smallest
record key), and the other ids retire. When one id's members end up in several clusters (a
split) the cluster holding the id's earliest member keeps it and the others keep another id of
theirs or get a new one. A new id is ``P`` + 16 hex digits of md5(smallest record key),
salted when that id is taken.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import duckdb

OPEN_ATTEMPTS = 40
DECISIONS = ("confirm", "split")

SCHEMA = """
CREATE TABLE IF NOT EXISTS {a}.decisions (
    seq BIGINT, left_key VARCHAR NOT NULL, right_key VARCHAR NOT NULL, decision VARCHAR NOT NULL,
    decided_at TIMESTAMPTZ NOT NULL, note VARCHAR);
CREATE TABLE IF NOT EXISTS {a}.record_person (
    record_key VARCHAR NOT NULL, person_id VARCHAR NOT NULL, first_seen TIMESTAMPTZ NOT NULL);
"""


def default_path(warehouse_path: str | Path, configured: str | Path | None = None) -> Path:
    """The identity state store: ``configured`` (``IDENTITY_DECISIONS_PATH``) if given, else
    ``identity_decisions.duckdb`` beside the warehouse."""
    if configured:
        return Path(configured)
    return Path(warehouse_path).with_name("identity_decisions.duckdb")


def _sql_path(path: Path) -> str:
    # ATTACH takes no bound parameter; the path is configuration, not data, but quote it.
    return str(path.resolve()).replace("'", "''")


def _retry(fn):
    for attempt in range(OPEN_ATTEMPTS):
        try:
            return fn()
        except duckdb.IOException as exc:  # another process holds the file
            if "lock" not in str(exc).lower() or attempt == OPEN_ATTEMPTS - 1:
                raise
            time.sleep(0.25)
    raise AssertionError("unreachable")


def attach(con: duckdb.DuckDBPyConnection, path: str | Path, alias: str = "idstate") -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _retry(lambda: con.execute(f"ATTACH '{_sql_path(path)}' AS {alias}"))
    con.execute(SCHEMA.format(a=alias))


def record_decision(path: str | Path, left_key: str, right_key: str, decision: str, note: str | None = None) -> None:
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {DECISIONS}")
    for key in (left_key, right_key):
        if not isinstance(key, str) or key.count(":") < 2 or len(key) > 300:
            raise ValueError("a record key looks like system:record_kind:record_id")
    if left_key == right_key:
        raise ValueError("a decision needs two different records")
    a, b = sorted((left_key, right_key))
    con = duckdb.connect()
    try:
        attach(con, path)
        con.execute(
            "INSERT INTO idstate.decisions SELECT coalesce(max(seq), 0) + 1, ?, ?, ?, ?, ? FROM idstate.decisions",
            [a, b, decision, datetime.now(timezone.utc), note],
        )
    finally:
        con.close()


def load_decisions(con: duckdb.DuckDBPyConnection, alias: str = "idstate") -> list[tuple[str, str, str]]:
    return [tuple(r) for r in con.execute(
        f"SELECT left_key, right_key, decision FROM {alias}.decisions ORDER BY seq").fetchall()]


def list_decisions(path: str | Path) -> list[tuple]:
    if not Path(path).exists():
        return []
    con = duckdb.connect()
    try:
        attach(con, path)
        return con.execute(
            "SELECT seq, left_key, right_key, decision, decided_at, note FROM idstate.decisions ORDER BY seq"
        ).fetchall()
    finally:
        con.close()


def fresh_ids(con: duckdb.DuckDBPyConnection) -> None:
    """staging.person_components without a state store: id from the cluster's smallest key."""
    con.execute("""
        CREATE OR REPLACE TABLE staging.person_components AS
        SELECT record_key, 'P' || upper(substr(md5(cluster), 1, 16)) AS person_id, rule, score
        FROM staging.record_clusters
    """)


def assign_person_ids(con: duckdb.DuckDBPyConnection, alias: str = "idstate", now: datetime | None = None) -> None:
    """staging.person_components(record_key, person_id, rule, score) with ids stable across
    runs (rules in the module docstring); writes the updated map back to the state store."""
    now = now or datetime.now(timezone.utc)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE id_claims AS
        SELECT c.cluster, m.person_id,
               lpad(CAST(epoch_us(min(m.first_seen)) AS VARCHAR), 20, '0') || min(c.record_key) AS claim
        FROM staging.record_clusters AS c JOIN {alias}.record_person AS m USING (record_key)
        GROUP BY c.cluster, m.person_id;
        -- Each existing id goes to the cluster holding its earliest member ...
        CREATE OR REPLACE TEMP TABLE id_won AS
        SELECT person_id, arg_min(cluster, claim) AS cluster, min(claim) AS claim FROM id_claims GROUP BY person_id;
        -- ... and each cluster keeps the earliest of the ids it won.
        CREATE OR REPLACE TEMP TABLE id_keep AS
        SELECT cluster, arg_min(person_id, claim) AS person_id FROM id_won GROUP BY cluster;
        CREATE OR REPLACE TEMP TABLE id_new AS
        SELECT DISTINCT cluster, 'P' || upper(substr(md5(cluster), 1, 16)) AS person_id
        FROM staging.record_clusters WHERE cluster NOT IN (SELECT cluster FROM id_keep);
    """)
    # A new id must not be one a kept cluster holds (possible after a split): salt it.
    con.execute("""
        UPDATE id_new SET person_id = 'P' || upper(substr(md5(cluster || '#' || ?), 1, 16))
        WHERE person_id IN (SELECT person_id FROM id_keep)
    """, [now.isoformat()])
    clash = con.execute("""
        SELECT count(*) - count(DISTINCT person_id) FROM (SELECT person_id FROM id_keep UNION ALL SELECT person_id FROM id_new)
    """).fetchone()[0]
    if clash:
        raise RuntimeError("person id collision: run the build again")
    con.execute("""
        CREATE OR REPLACE TABLE staging.person_components AS
        SELECT c.record_key, coalesce(k.person_id, n.person_id) AS person_id, c.rule, c.score
        FROM staging.record_clusters AS c
        LEFT JOIN id_keep AS k USING (cluster) LEFT JOIN id_new AS n USING (cluster);
    """)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE id_map AS
        SELECT p.record_key, p.person_id, coalesce(m.first_seen, ?::TIMESTAMPTZ) AS first_seen
        FROM staging.person_components AS p LEFT JOIN {alias}.record_person AS m USING (record_key)
        UNION ALL
        -- Records gone from the sources keep their id, should they come back.
        SELECT m.* FROM {alias}.record_person AS m
        WHERE m.record_key NOT IN (SELECT record_key FROM staging.person_components)
    """, [now])
    con.execute(f"CREATE OR REPLACE TABLE {alias}.record_person AS SELECT * FROM id_map")
