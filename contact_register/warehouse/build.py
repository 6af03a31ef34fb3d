"""Build the analysts' warehouse from the raw stores and publish it atomically.

The build never touches the published file. It writes a fresh DuckDB file beside it
(``<WAREHOUSE_PATH>.building-<pid>``): copies every system's raw tables into ``raw_<system>``
schemas, runs the staging and identity SQL, checkpoints, closes, fsyncs, and renames it over
``WAREHOUSE_PATH``. On POSIX a rename is atomic: an analyst's read-only connection keeps
reading the file it opened, new connections see the new one, and nobody sees half a build.
Because every build writes a new file, rows deleted at the source leave no bytes behind in
free blocks of the published warehouse.

One writer at a time: a build and the erasure of our own stores (which rewrites the raw stores
and the identity state store, then builds) take the same exclusive lock,
``<WAREHOUSE_PATH>.lock`` (:func:`warehouse_lock`, an ``flock`` held for the whole build or
erasure). Without it a build that had copied the raw stores before an erasure cleaned them
would write the person's record keys back into the identity state store and publish them
again. The lock is per machine (one Dagster host, as the raw stores' DuckDB locks already are).
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Callable, Iterable, Iterator

import duckdb

from contact_register.sync.raw_store import raw_path
from connectors.errors import SafeMessage
from contact_register.requests.suppression.warehouse import stage_suppression_hits
from contact_register.warehouse import identity, identity_state
from contact_register.requests.restriction.warehouse import stage_restriction_hits
from contact_register.requests.suppression.store import SuppressionList

log = logging.getLogger("assets.warehouse")

SQL_DIR = resources.files("contact_register.warehouse") / "sql"
SYSTEM_NAME = re.compile(r"[a-z][a-z0-9_]{0,40}")


LOCK_POLL_S = 0.2
_held = threading.local()  # lock files this thread holds: the erasure's own build re-enters


class WarehouseBusy(SafeMessage, RuntimeError):
    """The warehouse lock stayed taken (a build or an erasure is running); nothing was changed."""


def lock_path(warehouse_path: str | Path) -> Path:
    target = Path(warehouse_path)
    return target.with_name(f"{target.name}.lock")


@contextmanager
def warehouse_lock(warehouse_path: str | Path, *, wait_s: float | None = None) -> Iterator[None]:
    """Hold the exclusive warehouse lock (see the module docstring). Waits for it (forever with
    ``wait_s`` None, else raises :class:`WarehouseBusy` after ``wait_s`` seconds). Re-entrant
    within a thread, so the erasure's own build runs under the erasure's lock. The lock is an
    ``flock`` on an open file: the kernel releases it when the holder exits or is killed."""
    path = lock_path(warehouse_path)
    held = getattr(_held, "paths", None)
    if held is None:
        held = _held.paths = set()
    key = str(path.resolve())
    if key in held:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        deadline = None if wait_s is None else time.monotonic() + wait_s
        waiting = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waiting:
                    log.info("waiting for the warehouse lock (another build or an erasure holds it)")
                    waiting = True
                if deadline is not None and time.monotonic() >= deadline:
                    raise WarehouseBusy("the warehouse lock is held by another build or erasure; "
                                        "run again after it") from None
                time.sleep(LOCK_POLL_S)
        held.add(key)
        try:
            yield
        finally:
            held.discard(key)
    finally:
        os.close(fd)  # closing the descriptor releases the flock


@dataclass
class BuildResult:
    path: Path
    tables: dict[str, int] = field(default_factory=dict)
    persons: int = 0
    link_iterations: int = 0


def _run_sql_file(con: duckdb.DuckDBPyConnection, name: str) -> None:
    con.execute((SQL_DIR / name).read_text(encoding="utf-8"))


def discover_systems(raw_dir: str | Path) -> list[str]:
    """Systems with a raw store. Names become schema names, so only plain identifiers count."""
    if not Path(raw_dir).is_dir():
        return []
    found = sorted(p.stem for p in Path(raw_dir).glob("*.duckdb"))
    for odd in [name for name in found if not SYSTEM_NAME.fullmatch(name)]:
        log.warning("ignoring a raw store whose name is not a system name (%d characters)", len(odd))
    return [name for name in found if SYSTEM_NAME.fullmatch(name)]


# Column contract of every system's staging.<system>_persons (see sql/staging_pipedrive.sql).
PERSON_COLUMNS = (
    "system", "record_kind", "record_id", "name", "first_name", "last_name", "job_title",
    "emails", "phones", "organization", "business_id", "marketing_status", "updated_at",
)
LINK_COLUMNS = ("person_record_kind", "person_record_id", "record_kind", "record_id", "updated_at")


def _union_staging(con: duckdb.DuckDBPyConnection, systems: list[str]) -> None:
    """staging.source_persons and staging.person_links: the union of every system's
    staging.<system>_persons and staging.<system>_person_links (each optional)."""
    present = {r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'staging'"
    ).fetchall()}
    persons = [f"SELECT {', '.join(PERSON_COLUMNS)} FROM staging.{s}_persons" for s in systems if f"{s}_persons" in present]
    links = [
        f"SELECT '{s}' AS system, {', '.join(LINK_COLUMNS)} FROM staging.{s}_person_links"
        for s in systems if f"{s}_person_links" in present
    ]
    empty_persons = (
        "SELECT NULL::VARCHAR system, NULL::VARCHAR record_kind, NULL::VARCHAR record_id, NULL::VARCHAR name, "
        "NULL::VARCHAR first_name, NULL::VARCHAR last_name, NULL::VARCHAR job_title, NULL::VARCHAR[] emails, "
        "NULL::VARCHAR[] phones, NULL::VARCHAR organization, NULL::VARCHAR business_id, "
        "NULL::VARCHAR marketing_status, NULL::TIMESTAMPTZ updated_at WHERE false"
    )
    empty_links = (
        "SELECT NULL::VARCHAR system, NULL::VARCHAR person_record_kind, NULL::VARCHAR person_record_id, "
        "NULL::VARCHAR record_kind, NULL::VARCHAR record_id, NULL::TIMESTAMPTZ updated_at WHERE false"
    )
    con.execute(f"CREATE TABLE staging.source_persons AS {' UNION ALL '.join(persons) or empty_persons}")
    con.execute(f"CREATE TABLE staging.person_links AS {' UNION ALL '.join(links) or empty_links}")


def build_warehouse(
    raw_dir: str | Path,
    warehouse_path: str | Path,
    *,
    systems: Iterable[str] | None = None,
    run_id: str = "",
    identity_state_path: str | Path | None = None,
    before_publish: Callable[[BuildResult], None] | None = None,
    suppression: SuppressionList | None = None,
) -> BuildResult:
    """Build from the raw stores of ``systems`` (default: every ``<system>.duckdb`` in
    ``raw_dir``; a named system without a raw store is an error). Operator decisions and the
    stable person ids live in ``identity_state_path`` (default: see identity_state.default_path).
    ``suppression`` (the request register's suppression list) marks banned and erased people.
    ``before_publish(result)`` runs on the finished build before the rename; if it raises, the
    build is discarded and the published warehouse stays as it was (see contact_register/warehouse/checks/row_counts.py).
    Runs under :func:`warehouse_lock` (waiting for a running build or erasure)."""
    with warehouse_lock(warehouse_path):
        return _build_locked(raw_dir, warehouse_path, systems=systems, run_id=run_id,
                             identity_state_path=identity_state_path, before_publish=before_publish,
                             suppression=suppression)


def _build_locked(raw_dir, warehouse_path, *, systems, run_id, identity_state_path, before_publish,
                  suppression) -> BuildResult:
    systems = sorted(systems) if systems is not None else discover_systems(raw_dir)
    if not systems:
        raise FileNotFoundError(f"no raw stores in {raw_dir}: run a raw sync first")
    target = Path(warehouse_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = target.with_name(f"{target.name}.building-{os.getpid()}")
    remove_abandoned_builds(target)
    result = BuildResult(target)
    con = duckdb.connect(str(work))
    try:
        identity.register(con)
        con.execute("CREATE SCHEMA staging")
        for system in systems:
            _copy_raw(con, raw_dir, system, result)
            if (SQL_DIR / f"staging_{system}.sql").is_file():
                _run_sql_file(con, f"staging_{system}.sql")
        _union_staging(con, systems)
        # The state store is attached only while it is needed, so that an operator's
        # confirm/split command is not locked out for the whole build.
        state = Path(identity_state_path) if identity_state_path else identity_state.default_path(target)
        identity_state.attach(con, state)
        decisions = identity_state.load_decisions(con)
        con.execute("DETACH idstate")
        resolved = identity.resolve(con, decisions)
        result.link_iterations = resolved.rounds
        identity_state.attach(con, state)
        identity_state.assign_person_ids(con)
        con.execute("DETACH idstate")
        # People on the suppression list (banned or erased) count as banned in persons.sql.
        stage_suppression_hits(con, suppression)
        # Restricted people (the restriction keys live in the same register) are flagged too.
        stage_restriction_hits(con, suppression.register if suppression is not None else None)
        _run_sql_file(con, "persons.sql")
        con.execute(
            "CREATE TABLE _build AS SELECT ?::TIMESTAMPTZ AS built_at, ? AS run_id, ?::VARCHAR[] AS systems",
            [datetime.now(timezone.utc), run_id, list(systems)],
        )
        for table in ("persons", "person_records", "person_identifiers", "marketing_bans", "identity_review"):
            result.tables[table] = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        result.persons = result.tables["persons"]
        con.execute("CHECKPOINT")
    except BaseException:
        con.close()
        work.unlink(missing_ok=True)
        raise
    con.close()
    if before_publish is not None:
        try:
            before_publish(result)
        except BaseException:
            work.unlink(missing_ok=True)
            raise
    publish(work, target)
    log.info("warehouse published: %s", {k: v for k, v in result.tables.items()})
    return result


def remove_abandoned_builds(target: Path) -> None:
    """Delete half-built files (and their WAL) left by builds whose process is gone (killed,
    crashed), and any earlier one of this pid. They may hold personal data: never leave them."""
    for path in target.parent.glob(f"{target.name}.building-*"):
        pid = path.name.split(".building-", 1)[1].split(".", 1)[0]
        if pid.isdigit() and (int(pid) == os.getpid() or not process_alive(int(pid))):
            path.unlink(missing_ok=True)


def process_alive(pid: int) -> bool:
    """Whether a process with this id still runs (one of another user counts: signal 0 is refused)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def publish(work: Path, target: Path) -> None:
    """fsync the finished file, rename it over the target, fsync the folder."""
    with open(work, "rb") as fh:
        os.fsync(fh.fileno())
    os.chmod(work, 0o640)
    os.replace(work, target)
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _copy_raw(con: duckdb.DuckDBPyConnection, raw_dir: str | Path, system: str, result: BuildResult) -> None:
    source = raw_path(raw_dir, system)
    if not source.exists():
        raise FileNotFoundError(f"no raw store for {system} at {source}: run its raw sync first")
    alias = f"src_{system}"
    con.execute(f"ATTACH '{_sql_path(source)}' AS {alias} (READ_ONLY)")
    try:
        con.execute(f"CREATE SCHEMA raw_{system}")
        tables = [
            r[0] for r in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = ? ORDER BY table_name", [alias]
            ).fetchall()
        ]
        for table in tables:
            con.execute(f'CREATE TABLE raw_{system}."{table}" AS SELECT * FROM {alias}."{table}"')
            result.tables[f"raw_{system}.{table}"] = con.execute(
                f'SELECT count(*) FROM raw_{system}."{table}"'
            ).fetchone()[0]
    finally:
        con.execute(f"DETACH {alias}")


def _sql_path(path: Path) -> str:
    # ATTACH takes no bound parameter for the path; the path is ours (RAW_DIR), but quote it.
    return str(path.resolve()).replace("'", "''")
