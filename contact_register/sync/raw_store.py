"""Per-system raw stores: one DuckDB file per source system (``RAW_DIR/<system>.duckdb``).

Why one file per system: DuckDB allows one writing process per file, and Dagster runs each
step in its own process. Giving every system its own file lets systems extract in parallel;
the warehouse step then reads them all and publishes one file (see ``assets/warehouse``).

Each raw file holds the system's tables (one row per source record, the record as the API gave
it in ``record`` plus extracted keys) and four bookkeeping tables:
- ``_sync_state``: per entity, the incremental cursor stored beside the data it describes, so
  a crash can never leave the cursor ahead of the rows;
- ``_issues``: problems found in records that were still stored (a list that was null, a name
  with invalid code points): ids and problem kinds, no personal data;
- ``_rejects``: records that could not be stored as rows at all (no id), kept verbatim;
- ``_deletions``: ids that disappeared from the source, and how we learnt it.

Every page is applied in one transaction together with the cursor it advances to, so an
interrupted sync resumes from the last committed page and upserts make repeats harmless.
"""

from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import duckdb
import orjson
import pyarrow as pa

ARROW_TYPES = {
    "BIGINT": pa.int64(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
    "VARCHAR": pa.string(),
    "JSON": pa.string(),
    "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"),
    "VARCHAR[]": pa.list_(pa.string()),
    "BIGINT[]": pa.list_(pa.int64()),
}


@dataclass(frozen=True)
class TableSpec:
    """A raw table: its name, ``(column, type)`` pairs and primary key column."""

    name: str
    columns: tuple[tuple[str, str], ...]
    key: str = "id"

    @property
    def arrow_schema(self) -> pa.Schema:
        return pa.schema([(name, ARROW_TYPES[sql_type]) for name, sql_type in self.columns])

    def create_sql(self) -> str:
        cols = ", ".join(
            f"{name} {sql_type}{' PRIMARY KEY' if name == self.key else ''}" for name, sql_type in self.columns
        )
        return f"CREATE TABLE IF NOT EXISTS {self.name} ({cols})"


BOOKKEEPING_SQL = """
CREATE TABLE IF NOT EXISTS _sync_state (
    entity VARCHAR PRIMARY KEY,
    cursor TIMESTAMPTZ,
    last_full_sync_at TIMESTAMPTZ,
    last_reconciled_at TIMESTAMPTZ,
    last_success_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS _issues (
    entity VARCHAR, record_id VARCHAR, problem VARCHAR,
    first_seen_at TIMESTAMPTZ, last_seen_at TIMESTAMPTZ,
    PRIMARY KEY (entity, record_id, problem)
);
CREATE TABLE IF NOT EXISTS _rejects (
    entity VARCHAR, record_hash VARCHAR, reason VARCHAR, record VARCHAR,
    first_seen_at TIMESTAMPTZ, last_seen_at TIMESTAMPTZ,
    PRIMARY KEY (entity, record_hash)
);
CREATE TABLE IF NOT EXISTS _deletions (
    entity VARCHAR, record_id BIGINT, detected_at TIMESTAMPTZ, how VARCHAR
);
"""


@dataclass
class SyncState:
    cursor: datetime | None = None
    last_full_sync_at: datetime | None = None
    last_reconciled_at: datetime | None = None
    last_success_at: datetime | None = None


@dataclass
class EntityResult:
    """What one sync did to one raw table (counts only: these go into Dagster metadata)."""

    entity: str
    mode: str = "incremental"  # "full" (first run), "reconcile" (periodic full re-read) or "incremental"
    pages: int = 0
    received: int = 0
    upserted: int = 0
    deleted: int = 0
    reconciled: bool = False
    reconciled_deleted: int = 0
    issues: int = 0
    rejects: int = 0
    rows: int = 0


@dataclass
class SyncResult:
    entities: dict[str, EntityResult] = field(default_factory=dict)
    requests: int = 0
    retries: int = 0


class MassDeletionRefused(RuntimeError):
    """Reconciliation would delete more than the allowed share of a table: an API returning
    nothing must not look like everyone was erased."""


def raw_path(raw_dir: str | Path, system: str) -> Path:
    return Path(raw_dir) / f"{system}.duckdb"


def json_text(value: Any) -> tuple[str, bool]:
    """Serialise a record for a JSON column. Returns (text, repaired). Lone surrogates (legal in
    JSON escapes, illegal in UTF-8 and refused by DuckDB) are replaced by U+FFFD; the caller
    records that as an issue rather than losing the record."""
    try:
        # orjson is several times faster on a sync's hundreds of thousands of records. The
        # passthrough options make it refuse, like the json module, the types JSON has none of.
        return orjson.dumps(value, option=_ORJSON_STRICT).decode(), False
    except orjson.JSONEncodeError:
        # What orjson refuses and the json module writes: lone surrogates (replaced just below),
        # integers beyond 64 bits, non-string keys. Other types raise TypeError here, as before.
        return clean_text(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


_ORJSON_STRICT = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS


def clean_text(value: str) -> tuple[str, bool]:
    """A string safe for a VARCHAR column: lone surrogates become U+FFFD."""
    try:
        value.encode("utf-8")
        return value, False
    except UnicodeEncodeError:
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace"), True


class RawStore:
    """An open raw DuckDB file of one system."""

    def __init__(self, con: duckdb.DuckDBPyConnection, system: str) -> None:
        self.con = con
        self.system = system
        self._in_transaction = False
        con.execute(BOOKKEEPING_SQL)

    def ensure(self, spec: TableSpec) -> None:
        self.con.execute(spec.create_sql())

    # -- state ------------------------------------------------------------------------------

    def state(self, entity: str) -> SyncState:
        row = self.con.execute(
            "SELECT cursor, last_full_sync_at, last_reconciled_at, last_success_at FROM _sync_state WHERE entity = ?",
            [entity],
        ).fetchone()
        return SyncState(*row) if row else SyncState()

    def _set_state(self, entity: str, **values: Any) -> None:
        self.con.execute("INSERT INTO _sync_state (entity) VALUES (?) ON CONFLICT DO NOTHING", [entity])
        for column, value in values.items():
            assert column in SyncState.__dataclass_fields__
            self.con.execute(f"UPDATE _sync_state SET {column} = ? WHERE entity = ?", [value, entity])

    def mark(self, entity: str, **values: Any) -> None:
        with self.transaction():
            self._set_state(entity, **values)

    # -- writing ----------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing. Nested, it joins the outer transaction (a sync may commit several
        pages at once: one commit instead of one per page)."""
        if self._in_transaction:
            yield
            return
        self.con.execute("BEGIN TRANSACTION")
        self._in_transaction = True
        try:
            yield
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        else:
            self.con.execute("COMMIT")
        finally:
            self._in_transaction = False

    def upsert(self, spec: TableSpec, rows: Sequence[dict]) -> None:
        """Insert or replace ``rows`` in one statement; a batch may repeat a record, the last
        copy wins."""
        by_key = {row[spec.key]: row for row in rows}
        if not by_key:
            return
        batch = pa.Table.from_pylist(list(by_key.values()), schema=spec.arrow_schema)
        self.con.register("_batch", batch)
        try:
            self.con.execute(f"INSERT OR REPLACE INTO {spec.name} SELECT * FROM _batch")
        finally:
            self.con.unregister("_batch")

    def apply_page(
        self,
        spec: TableSpec,
        rows: Sequence[dict],
        *,
        deleted_ids: Iterable[int] = (),
        issues: Iterable[tuple[str, str]] = (),
        rejects: Iterable[tuple[str, Any]] = (),
        cursor: datetime | None = None,
        now: datetime,
    ) -> None:
        """Upsert ``rows``, drop ``deleted_ids``, note issues and rejects, and advance the
        entity's cursor: all or nothing."""
        kept = {row[spec.key] for row in rows}
        deleted = [i for i in deleted_ids if i not in kept]
        with self.transaction():
            self.upsert(spec, rows)
            if deleted:
                # Only rows we held count as deletions: a deleted deal stays listable for 30
                # days and comes back with every boundary page.
                gone = self.con.execute(
                    f"DELETE FROM {spec.name} WHERE {spec.key} IN (SELECT unnest(?::BIGINT[])) RETURNING {spec.key}",
                    [deleted],
                ).fetchall()
                if gone:
                    self.con.executemany(
                        "INSERT INTO _deletions VALUES (?, ?, ?, 'deleted flag')",
                        [[spec.name, r[0], now] for r in gone],
                    )
            issue_rows = [[spec.name, rid, problem, now, now] for rid, problem in set(issues)]
            if issue_rows:
                self.con.executemany(
                    "INSERT INTO _issues VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT DO UPDATE SET last_seen_at = excluded.last_seen_at",
                    issue_rows,
                )
            reject_rows = []
            for reason, record in rejects:
                text, _ = json_text(record)
                reject_rows.append([spec.name, hashlib.sha256(text.encode()).hexdigest(), reason, text, now, now])
            if reject_rows:
                self.con.executemany(
                    "INSERT INTO _rejects VALUES (?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT DO UPDATE SET last_seen_at = excluded.last_seen_at",
                    reject_rows,
                )
            if cursor is not None:
                self._set_state(spec.name, cursor=cursor)

    def reconcile(
        self,
        spec: TableSpec,
        live_id_pages: Iterable[list[int]],
        *,
        now: datetime,
        max_delete_share: float = 0.5,
    ) -> int:
        """Delete rows whose ids the source no longer lists. ``live_id_pages`` must be a
        complete walk: if it raises, nothing is deleted. Returns the number deleted."""
        self.con.execute("CREATE OR REPLACE TEMP TABLE _live_ids (id BIGINT)")
        for ids in live_id_pages:
            if ids:
                self.con.execute("INSERT INTO _live_ids SELECT unnest(?::BIGINT[])", [ids])
        total = self.con.execute(f"SELECT count(*) FROM {spec.name}").fetchone()[0]
        gone = [
            r[0]
            for r in self.con.execute(
                f"SELECT {spec.key} FROM {spec.name} WHERE {spec.key} NOT IN (SELECT id FROM _live_ids)"
            ).fetchall()
        ]
        if gone and len(gone) > 10 and len(gone) > max_delete_share * total:
            raise MassDeletionRefused(
                f"{self.system}.{spec.name}: reconciliation would delete {len(gone)} of {total} rows; "
                f"refusing (more than {max_delete_share:.0%}). Check the source, then re-run with a higher limit."
            )
        with self.transaction():
            if gone:
                self.con.execute(
                    f"DELETE FROM {spec.name} WHERE {spec.key} IN (SELECT unnest(?::BIGINT[]))", [gone]
                )
                self.con.executemany(
                    "INSERT INTO _deletions VALUES (?, ?, ?, 'reconciliation')", [[spec.name, i, now] for i in gone]
                )
            self._set_state(spec.name, last_reconciled_at=now)
        self.con.execute("DROP TABLE _live_ids")
        return len(gone)

    def count(self, spec: TableSpec) -> int:
        return self.con.execute(f"SELECT count(*) FROM {spec.name}").fetchone()[0]


@contextmanager
def open_raw_store(raw_dir: str | Path, system: str) -> Iterator[RawStore]:
    path = raw_path(raw_dir, system)
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    try:
        yield RawStore(con, system)
        con.execute("CHECKPOINT")
    finally:
        con.close()
