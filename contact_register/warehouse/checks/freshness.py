"""When each system's raw tables were last refreshed by a successful sync.

Every raw store records per entity the time its last sync finished (``_sync_state``; Google
Workspace per mailbox and API in ``_google_state``). A system is as fresh as its stalest
entity: a sync that keeps failing for one table must not hide behind the others. For Google the
freshest mailbox counts per API, because a suspended or departed user's state row ages forever.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb

from contact_register.warehouse.build import discover_systems
from contact_register.sync.raw_store import raw_path

DEFAULT_MAX_AGE_HOURS = 36.0


@dataclass(frozen=True)
class SystemSync:
    system: str
    last_success: datetime | None  # None: some table has never synced successfully
    busy: bool = False  # a sync held the store's write lock: it is being refreshed right now

    def age(self, now: datetime) -> timedelta | None:
        return None if self.last_success is None else now - self.last_success

    def is_stale(self, now: datetime, max_age: timedelta) -> bool:
        return not self.busy and (self.last_success is None or now - self.last_success > max_age)


def parse_max_age(hours_text: str = "") -> timedelta:
    """The staleness limit from its setting, ``FRESHNESS_MAX_AGE_HOURS`` (empty: 36 hours)."""
    text = str(hours_text).strip() or str(DEFAULT_MAX_AGE_HOURS)
    try:
        hours = float(text)
    except ValueError:
        raise ValueError("FRESHNESS_MAX_AGE_HOURS must be a number of hours") from None
    if hours <= 0:
        raise ValueError("FRESHNESS_MAX_AGE_HOURS must be positive")
    return timedelta(hours=hours)


def _tables(con: duckdb.DuckDBPyConnection, catalog: str, schema: str) -> set[str]:
    return {r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name = ?", [catalog, schema]).fetchall()}


def last_success(con: duckdb.DuckDBPyConnection, catalog: str, schema: str) -> datetime | None:
    """The stalest entity's last successful sync in one raw schema (a raw store's ``main`` or
    the warehouse's ``raw_<system>``)."""
    tables = _tables(con, catalog, schema)
    times: list[datetime | None] = []
    where = f'"{catalog}"."{schema}"'
    if "_sync_state" in tables:
        times += [r[0] for r in con.execute(f"SELECT last_success_at FROM {where}._sync_state").fetchall()]
    if "_google_state" in tables:
        times += [r[0] for r in con.execute(
            f"SELECT max(last_success_at) FROM {where}._google_state GROUP BY api").fetchall()]
    if not times or any(t is None for t in times):
        return None
    return min(t if t.tzinfo else t.replace(tzinfo=timezone.utc) for t in times)


def raw_store_syncs(raw_dir: str | Path) -> list[SystemSync]:
    """Every raw store's last successful sync, read without taking a write lock."""
    out = []
    for system in discover_systems(raw_dir):
        try:
            con = duckdb.connect(str(raw_path(raw_dir, system)), read_only=True)
        except duckdb.IOException:
            out.append(SystemSync(system, None, busy=True))  # a sync holds the write lock
            continue
        try:
            catalog = con.execute("SELECT current_database()").fetchone()[0]
            out.append(SystemSync(system, last_success(con, catalog, "main")))
        finally:
            con.close()
    return out


def warehouse_syncs(con: duckdb.DuckDBPyConnection) -> list[SystemSync]:
    """Each system's last successful sync as recorded in a (published) warehouse."""
    catalog = con.execute("SELECT current_database()").fetchone()[0]
    schemas = [r[0] for r in con.execute(
        "SELECT schema_name FROM duckdb_schemas() WHERE database_name = ? AND schema_name LIKE 'raw\\_%' ESCAPE '\\' "
        "ORDER BY schema_name", [catalog]).fetchall()]
    return [SystemSync(s.removeprefix("raw_"), last_success(con, catalog, s)) for s in schemas]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
