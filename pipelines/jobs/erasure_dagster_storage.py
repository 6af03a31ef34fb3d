"""Step 4 of the own-store erasure (``contact_register/requests/erasure/own_stores.py``): the
Dagster runs and compute logs that concern the subject.

Runs whose stored config, tags or event log hold one of the person's identifiers (the core's
matching rule, :meth:`Needles.concerns`: an email, a phone or a full name, never a name part) are
deleted with ``DagsterInstance.delete_run`` (run, tags, events) and their compute-log folder with
the compute log manager; compute-log files of other runs that hold one are deleted; SQLite storage
files are then vacuumed so the deleted rows leave the files too. The erasure job passes
``scrub_dagster`` bound to its instance's home to ``erase_own_stores``, which keeps the core free
of Dagster.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Iterator

from dagster import DagsterInstance, DagsterRunStatus, serialize_value

from contact_register.requests.erasure.own_stores import Needles, StoreBusy

UNFINISHED_RUN_STATUSES = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING", "MANAGED", "SUSPENDED")


def _strings(value) -> Iterator[str]:
    """Every string (keys too) inside decoded JSON: serialized events escape non-ASCII
    ("Hyv\\u00e4rinen"), so names are searched in the decoded strings, not in the JSON text."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)


def _run_concerns(instance, run, needles: Needles) -> tuple[bool, int]:
    """(whether the run's stored config, tags or events prove it is about the person, number of
    events it holds)."""
    if needles.concerns("\n".join(_strings({"config": run.run_config, "tags": dict(run.tags)}))):
        return True, len(instance.all_logs(run.run_id))
    entries = instance.all_logs(run.run_id)
    hit = any(needles.concerns("\n".join(_strings(json.loads(serialize_value(e))))) for e in entries)
    return hit, len(entries)


def _vacuum_sqlite_files(folder: Path) -> int:
    """VACUUM every SQLite file under ``folder`` (Dagster's default storage): deleted rows keep
    their bytes in free pages until the file is rebuilt."""
    done = 0
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.suffix in (".wal", ".shm", ".journal") or not _is_sqlite(path):
            continue
        con = sqlite3.connect(str(path), timeout=60)
        try:
            con.execute("VACUUM")
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.OperationalError:  # locked by a running Dagster process for a minute
            raise StoreBusy("a Dagster storage file stayed locked; run the erasure again") from None
        finally:
            con.close()
        done += 1
    return done


def _log_files(base: Path) -> Iterator[Path]:
    if base.is_dir():
        for path in sorted(base.rglob("*")):
            if path.is_file() and not path.is_symlink() and not _is_sqlite(path):
                yield path


def _file_concerns(path: Path, needles: Needles) -> bool:
    # Compute logs are the steps' captured stdout and stderr: UTF-8 text.
    return needles.concerns(path.read_bytes().decode("utf-8", errors="replace"))


def scrub_dagster(dagster_home: Path, needles: Needles, deleted: dict[str, dict[str, int]] | None = None
                  ) -> dict[str, int]:
    """Delete the Dagster runs (config, tags, events, compute logs) proven to be about the
    person (:meth:`Needles.concerns`: their email, phone or full name, never a name part), and
    other runs' compute-log files that are; vacuum SQLite storage. Works on any instance storage
    (SQLite, PostgreSQL) through the public API; the vacuum applies to SQLite files only.
    ``deleted`` (if given) receives, per run id, the events and log files removed (counts only)."""
    counts = {"dagster_runs_deleted": 0, "dagster_log_files_deleted": 0, "dagster_runs_busy": 0}
    deleted = {} if deleted is None else deleted
    if not (needles.emails or needles.phones or needles.full_names):
        return counts
    unfinished = {DagsterRunStatus[s] for s in UNFINISHED_RUN_STATUSES if s in DagsterRunStatus.__members__}
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        logs = instance.compute_log_manager
        base = Path(getattr(logs, "_base_dir", "") or dagster_home / "storage")
        cursor = None
        while True:
            records = instance.get_run_records(limit=200, cursor=cursor, ascending=True)
            if not records:
                break
            cursor = records[-1].dagster_run.run_id
            for record in records:
                run = record.dagster_run
                hit, events = _run_concerns(instance, run, needles)
                if not hit:
                    continue
                if run.status in unfinished:
                    counts["dagster_runs_busy"] += 1
                    continue
                log_files = sum(1 for _ in _log_files(base / run.run_id))
                instance.delete_run(run.run_id)
                if hasattr(logs, "delete_logs"):
                    logs.delete_logs(prefix=[run.run_id])
                counts["dagster_runs_deleted"] += 1
                deleted[run.run_id] = {"events": events, "log_files": log_files}
        # Compute logs of the runs kept (and anything else in the local storage folder).
        for path in _log_files(base):
            if _file_concerns(path, needles):
                path.unlink()
                counts["dagster_log_files_deleted"] += 1
                owner = path.relative_to(base).parts[0]
                entry = deleted.setdefault(owner, {"events": 0, "log_files": 0})
                entry["log_files"] += 1
    counts["dagster_sqlite_files_vacuumed"] = _vacuum_sqlite_files(dagster_home)
    return counts


def _is_sqlite(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(16) == b"SQLite format 3\x00"
