"""Two backends behind one small interface: a transaction that executes plain SQL with bound
parameters. SQL is written once with ``?`` placeholders; the PostgreSQL backend turns them
into psycopg's ``%s`` (our SQL has no literal question marks or percent signs).

SQLite runs in WAL mode with a busy timeout and ``BEGIN IMMEDIATE`` for every transaction, so
several Dagster runs (separate processes) can write at once: they queue on the write lock
instead of failing. PostgreSQL needs nothing special: each transaction is its own.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

DEFAULT_SQLITE_PATH = "data/register.sqlite"
SCHEMA_VERSION = "1"
BUSY_TIMEOUT_MS = 60000  # a write waits this long for another process's write lock
COMPACT_WAIT_MS = 5000  # a compaction waits this long for other readers to leave the WAL

_STATES = ("pending", "found", "not_found", "done", "failed", "manual_open", "manual_answered", "held",
           "not_applicable")
_KINDS = ("access", "erasure", "restriction", "objection", "rectification")


def _in(values: Sequence[str]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"  # constants of this module only


COMMON_DDL = [
    "CREATE TABLE IF NOT EXISTS register_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    f"""CREATE TABLE IF NOT EXISTS cases (
        case_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN {_in(_KINDS)}),
        status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
        received_on TEXT NOT NULL,
        original_due_on TEXT NOT NULL,
        due_on TEXT NOT NULL,
        extension_reason TEXT,
        verified_method TEXT,
        verified_by TEXT,
        verified_at TEXT,
        possibly_chargeable INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL,
        closed_at TEXT,
        outcome TEXT,
        export_file TEXT,
        export_sha256 TEXT,
        export_bytes BIGINT,
        export_expires_at TEXT,
        extension_told_on TEXT,
        extension_told_how TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS cases_open_due ON cases (status, due_on)",
    """CREATE TABLE IF NOT EXISTS case_identifiers (
        case_id TEXT NOT NULL REFERENCES cases (case_id),
        kind TEXT NOT NULL CHECK (kind IN ('email', 'phone', 'name', 'organization')),
        value TEXT NOT NULL,
        value_norm TEXT NOT NULL,
        PRIMARY KEY (case_id, kind, value_norm)
    )""",
    # Keyed hashes (HMAC) of the email and phone identifiers: outlive the identifiers
    # themselves, so that "a second access request within 12 months" is still recognised.
    """CREATE TABLE IF NOT EXISTS case_subject_keys (
        case_id TEXT NOT NULL REFERENCES cases (case_id),
        key_hash TEXT NOT NULL,
        PRIMARY KEY (case_id, key_hash)
    )""",
    "CREATE INDEX IF NOT EXISTS case_subject_keys_hash ON case_subject_keys (key_hash)",
    f"""CREATE TABLE IF NOT EXISTS case_systems (
        case_id TEXT NOT NULL REFERENCES cases (case_id),
        system TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN {_in(_STATES)}),
        records INTEGER,
        detail TEXT,
        error TEXT,
        held_until TEXT,
        updated_at TEXT NOT NULL,
        updated_by TEXT NOT NULL,
        PRIMARY KEY (case_id, system)
    )""",
    """CREATE TABLE IF NOT EXISTS approvals (
        case_id TEXT NOT NULL REFERENCES cases (case_id),
        action TEXT NOT NULL,
        approved_by TEXT NOT NULL,
        approved_at TEXT NOT NULL,
        note TEXT,
        PRIMARY KEY (case_id, action, approved_by)
    )""",
    # The suppression list (contact_register/requests/suppression/store.py): keyed hashes (HMAC, SUPPRESSION_KEY) of
    # every banned or erased person's normalised emails, phones and name keys, per case. They
    # outlive the case's identifiers; a name hash only confirms a phone hit, never matches alone.
    """CREATE TABLE IF NOT EXISTS suppression_entries (
        case_id TEXT NOT NULL REFERENCES cases (case_id),
        kind TEXT NOT NULL CHECK (kind IN ('email', 'phone', 'name')),
        key_hash TEXT NOT NULL,
        reason TEXT NOT NULL CHECK (reason IN ('ban', 'erasure')),
        added_on TEXT NOT NULL,
        added_by TEXT NOT NULL,
        PRIMARY KEY (case_id, kind, key_hash)
    )""",
    "CREATE INDEX IF NOT EXISTS suppression_entries_hash ON suppression_entries (key_hash)",
    # Source records the nightly check has already banned again (or flagged), so a re-entry is
    # acted on once; a failed attempt is retried the next night.
    """CREATE TABLE IF NOT EXISTS suppression_records (
        system TEXT NOT NULL,
        record_kind TEXT NOT NULL,
        record_id TEXT NOT NULL,
        case_id TEXT NOT NULL REFERENCES cases (case_id),
        state TEXT NOT NULL,
        handled_at TEXT NOT NULL,
        PRIMARY KEY (system, record_kind, record_id)
    )""",
    # A rectification case's corrected values (personal data like the identifiers): pushed into
    # every system by the rectification job, deleted with the identifiers when the case closes.
    """CREATE TABLE IF NOT EXISTS case_corrections (
        case_id TEXT NOT NULL REFERENCES cases (case_id),
        field TEXT NOT NULL CHECK (field IN ('name', 'email', 'phone', 'title')),
        value TEXT NOT NULL,
        PRIMARY KEY (case_id, field)
    )""",
    # Active restrictions of processing (contact_register/requests/restriction/): keyed hashes (REGISTER_HMAC_KEY,
    # as case_subject_keys) of the person's emails and phones, which flag them `restricted` in the
    # warehouse, and the source records marked restricted, so that lifting works after the case
    # closed. Both are deleted when the restriction is lifted.
    """CREATE TABLE IF NOT EXISTS restriction_keys (
        case_id TEXT NOT NULL REFERENCES cases (case_id),
        kind TEXT NOT NULL CHECK (kind IN ('email', 'phone')),
        key_hash TEXT NOT NULL,
        added_on TEXT NOT NULL,
        PRIMARY KEY (case_id, kind, key_hash)
    )""",
    """CREATE TABLE IF NOT EXISTS restriction_marks (
        case_id TEXT NOT NULL REFERENCES cases (case_id),
        system TEXT NOT NULL,
        record_kind TEXT NOT NULL,
        record_id TEXT NOT NULL,
        PRIMARY KEY (case_id, system, record_kind, record_id)
    )""",
]

SQLITE_DDL = COMMON_DDL + [
    """CREATE TABLE IF NOT EXISTS audit (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        case_id TEXT,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '{}'
    )""",
    "CREATE INDEX IF NOT EXISTS audit_case ON audit (case_id, seq)",
    # The trail is append-only: the API has no way to change it, and the database refuses too.
    """CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
       BEGIN SELECT RAISE(ABORT, 'audit trail is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
       BEGIN SELECT RAISE(ABORT, 'audit trail is append-only'); END""",
]

POSTGRES_DDL = COMMON_DDL + [
    """CREATE TABLE IF NOT EXISTS audit (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        case_id TEXT,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '{}'
    )""",
    "CREATE INDEX IF NOT EXISTS audit_case ON audit (case_id, seq)",
    """CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger AS $$
       BEGIN RAISE EXCEPTION 'audit trail is append-only'; END; $$ LANGUAGE plpgsql""",
    "DROP TRIGGER IF EXISTS audit_append_only ON audit",
    """CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit
       FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()""",
]


# Columns added after the first release: a register made before them gains them when opened.
ADDED_COLUMNS = [
    ("cases", "extension_told_on", "TEXT"),  # when the requester was told of the extension (GDPR 12(3))
    ("cases", "extension_told_how", "TEXT"),  # ... and how
]


# Tables whose deleted rows held personal values (identifiers, a rectification's corrections):
# rewritten after a case closes or an erased person's identifiers are replaced by hashes.
PERSONAL_TABLES = ("case_identifiers", "case_corrections")


class CompactionBusy(RuntimeError):
    """The store could not be compacted now (another connection holds it); try again."""


class Tx:
    """One open transaction: ``execute`` returns the rows (a list of tuples) or []."""

    def __init__(self, cursor: Any, postgres: bool) -> None:
        self._cur = cursor
        self._pg = postgres

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        if self._pg:
            sql = sql.replace("?", "%s")
        self._cur.execute(sql, tuple(params))
        if self._cur.description is None:
            return []
        return [tuple(r) for r in self._cur.fetchall()]

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple | None:
        rows = self.execute(sql, params)
        return rows[0] if rows else None


class Backend:
    """Opens transactions; ``kind`` is ``sqlite`` or ``postgresql``."""

    kind: str

    def transaction(self) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def compact(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class SqliteBackend(Backend):
    kind = "sqlite"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN IMMEDIATE / COMMIT ourselves.
        self._con = sqlite3.connect(str(self.path), timeout=60, isolation_level=None, check_same_thread=False)
        self._lock = threading.RLock()
        self._con.execute("PRAGMA journal_mode=WAL")
        self._con.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        self._con.execute("PRAGMA foreign_keys=ON")
        self._con.execute("PRAGMA synchronous=FULL")  # a recorded action must survive a crash
        # Deleted rows are overwritten with zeros in their pages, so an identifier leaves the file
        # at the next checkpoint even if a compaction (VACUUM, WAL truncation) cannot run then.
        self._con.execute("PRAGMA secure_delete=ON")
        try:
            self.path.chmod(0o600)
        except OSError:
            pass
        with self.transaction() as tx:
            for stmt in SQLITE_DDL:
                tx.execute(stmt)
            for table, column, sql_type in ADDED_COLUMNS:
                have = {r[1] for r in tx.execute(f"PRAGMA table_info({table})")}
                if column not in have:
                    tx.execute(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}")  # names: constants above

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self._lock:
            cur = self._con.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield Tx(cur, postgres=False)
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            else:
                cur.execute("COMMIT")
            finally:
                cur.close()

    def close(self) -> None:
        self._con.close()

    def compact(self) -> None:
        """Rewrite the file without free pages and empty the WAL: after identifiers are deleted
        or replaced, their old bytes must not linger in either. Raises :class:`CompactionBusy`
        when another connection's open read keeps the WAL in use."""
        with self._lock:
            self._con.execute("VACUUM")
            # A TRUNCATE checkpoint waits (busy handler) for readers of older snapshots: up to
            # COMPACT_WAIT_MS here, not the minute a write may wait for the lock.
            self._con.execute(f"PRAGMA busy_timeout={COMPACT_WAIT_MS}")
            try:
                busy = self._con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            finally:
                self._con.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            if busy:
                raise CompactionBusy("the register's WAL is still in use by another connection")


class PostgresBackend(Backend):
    kind = "postgresql"

    def __init__(self, url: str) -> None:
        import psycopg  # imported here: SQLite users need no PostgreSQL driver loaded

        self._con = psycopg.connect(url, autocommit=True)
        self._lock = threading.RLock()
        with self.transaction() as tx:
            # Several processes may create the schema at once; serialise on an advisory lock.
            tx.execute("SELECT pg_advisory_xact_lock(7715001)")
            for stmt in POSTGRES_DDL:
                tx.execute(stmt)
            for table, column, sql_type in ADDED_COLUMNS:
                # Checked first: ALTER TABLE takes an exclusive lock even when the column exists,
                # which would deadlock against other processes' open transactions.
                if not tx.one("SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
                              "AND table_name = ? AND column_name = ?", [table, column]):
                    tx.execute(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}")  # names: constants above

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self._lock:
            with self._con.transaction():
                with self._con.cursor() as cur:
                    yield Tx(cur, postgres=True)

    def close(self) -> None:
        self._con.close()

    def compact(self) -> None:
        """Rewrite the tables that held deleted or replaced personal values (VACUUM FULL writes
        new files from the live rows, indexes included, and drops the old ones), so dead tuples
        no longer hold them. Not reached: copies in the server's WAL segments until they are
        recycled, in a WAL archive, replicas' WAL and backups until their retention ends, and the
        dropped files' blocks on the file system until reused (PostgreSQL never overwrites them)."""
        with self._lock:
            for table in PERSONAL_TABLES:
                self._con.execute(f"VACUUM FULL {table}")  # names: constants of this module


def open_backend(url: str | None) -> Backend:
    """``postgresql://...`` (or ``postgres://``) -> PostgreSQL; ``sqlite:///path`` or a plain
    path -> SQLite; empty -> SQLite at ``data/register.sqlite``."""
    url = (url or "").strip()
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresBackend(url)
    if url.startswith("sqlite:///"):
        return SqliteBackend(url[len("sqlite:///"):])  # sqlite:////abs/path keeps its leading slash
    if "://" in url:
        raise ValueError("REGISTER_URL must be postgresql://..., sqlite:///PATH or a file path")
    return SqliteBackend(url or DEFAULT_SQLITE_PATH)
