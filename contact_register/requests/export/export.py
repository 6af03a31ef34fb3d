"""The subject export (GDPR art. 15) without Dagster: find the person in the warehouse, collect
every system's records, write one zip.

Who is the subject: the persons (warehouse ``person_id``) that one of the requester's emails or
phones identifies. An identifier shared by several persons (``info@``, a switchboard number)
identifies nobody on its own: it selects among them only those whose name matches the name
given. A name alone never selects anyone (namesakes). What was ambiguous is counted in the
manifest, so the officer can follow up by hand.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb

from contact_register.warehouse.identity import generic_local_parts
from connectors.errors import SafeMessage, describe
from contact_register.requests.export.registry import EXPORTERS
from contact_register.requests.export.exporters import Clients, PersonRef, SystemExport
from contact_register.requests.export.report import render_report
from contact_register.requests.cases.identifiers import Identifiers, name_key

DEFAULT_EXPORT_DIR = "data/exports"
DEFAULT_EXPIRE_DAYS = 30


class ExportError(SafeMessage, RuntimeError):
    pass


@dataclass
class Subject:
    person_ids: list[str] = field(default_factory=list)
    ambiguous_identifiers: int = 0  # identifiers shared by several persons that the name did not settle
    unmatched_identifiers: int = 0
    records: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # system -> kind -> ids
    profiles: list[dict] = field(default_factory=list)  # rows of the warehouse's persons view
    # For live searches: the person's own normalised emails and phones (those of their records,
    # and given ones the warehouse does not know), never a generic mailbox or an identifier
    # another person uses too.
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)


def _persons_of_records(con: duckdb.DuckDBPyConnection, keys: set[tuple[str, str, str]]) -> dict[tuple, set[str]]:
    """(system, record_kind, record_id) -> person ids. Looked up by record id first and
    filtered here: a join of the two big tables would scan both (seconds at 1M persons)."""
    out: dict[tuple, set[str]] = {}
    if not keys:
        return out
    for person_id, system, kind, record_id in con.execute(
        "SELECT person_id, system, record_kind, record_id FROM person_records "
        "WHERE record_id IN (SELECT unnest(?::VARCHAR[]))",
        [sorted({k[2] for k in keys})],
    ).fetchall():
        key = (system, kind, str(record_id))
        if key in keys:
            out.setdefault(key, set()).add(str(person_id))
    return out


def _records_of_persons(con: duckdb.DuckDBPyConnection, person_ids: list[str]) -> list[tuple[str, str, str]]:
    return [(s, k, str(r)) for s, k, r in con.execute(
        "SELECT DISTINCT system, record_kind, record_id FROM person_records "
        "WHERE person_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY 1, 2, 3",
        [person_ids],
    ).fetchall()]


def find_subject(con: duckdb.DuckDBPyConnection, ids: Identifiers) -> Subject:
    subject = Subject()
    wanted = [("email", e) for e in ids.emails] + [("phone", p) for p in ids.phones]
    by_identifier: dict[tuple[str, str], set[str]] = {w: set() for w in wanted}
    if wanted:
        hits = con.execute(
            """SELECT system, record_kind, record_id, kind, value_norm FROM person_identifiers
               WHERE (kind = 'email' AND value_norm IN (SELECT unnest(?::VARCHAR[])))
                  OR (kind = 'phone' AND value_norm IN (SELECT unnest(?::VARCHAR[])))""",
            [list(ids.emails), list(ids.phones)],
        ).fetchall()
        owners = _persons_of_records(con, {(s, k, str(r)) for s, k, r, _, _ in hits})
        for system, kind, record_id, id_kind, value in hits:
            by_identifier[(id_kind, value)] |= owners.get((system, kind, str(record_id)), set())
    chosen: set[str] = set()
    shared: list[set[str]] = []
    for persons in by_identifier.values():
        if not persons:
            subject.unmatched_identifiers += 1
        elif len(persons) == 1:
            chosen |= persons
        else:
            shared.append(persons)
    if shared:
        named: set[str] = set()
        if ids.name:
            key = name_key(ids.name)
            candidates = sorted(set().union(*shared))
            owner: dict[tuple, set[str]] = {}
            for person_id, system, kind, record_id in con.execute(
                "SELECT person_id, system, record_kind, record_id FROM person_records "
                "WHERE person_id IN (SELECT unnest(?::VARCHAR[]))", [candidates]
            ).fetchall():
                owner.setdefault((system, kind, str(record_id)), set()).add(str(person_id))
            if owner:
                for system, kind, record_id, raw_name in con.execute(
                    "SELECT system, record_kind, record_id, value_raw FROM person_identifiers "
                    "WHERE kind = 'name' AND record_id IN (SELECT unnest(?::VARCHAR[]))",
                    [sorted({r[2] for r in owner})],
                ).fetchall():
                    if raw_name and name_key(raw_name) == key:
                        named |= owner.get((system, kind, str(record_id)), set())
        for persons in shared:
            if persons & named:
                chosen |= persons & named
            elif not persons & chosen:
                subject.ambiguous_identifiers += 1
    subject.person_ids = sorted(chosen)
    if chosen:
        for system, kind, record_id in _records_of_persons(con, subject.person_ids):
            subject.records.setdefault(system, {}).setdefault(kind, []).append(record_id)
        cur = con.execute("SELECT * FROM persons WHERE person_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY person_id",
                          [subject.person_ids])
        cols = [d[0] for d in cur.description]
        subject.profiles = [dict(zip(cols, r)) for r in cur.fetchall()]
    unknown = {w for w, persons in by_identifier.items() if not persons}
    subject.emails, subject.phones = _own_identifiers(con, subject, unknown)
    return subject


def _own_identifiers(con: duckdb.DuckDBPyConnection, subject: Subject,
                     unknown: set[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """(emails, phones) the live reads may search by: see ``Subject.emails``. ``unknown`` are
    the given (kind, value) pairs that no warehouse record carries."""
    mine = {(s, k, r) for s, kinds in subject.records.items() for k, ids in kinds.items() for r in ids}
    values: set[tuple[str, str]] = set(unknown)
    if mine:
        values |= {(kind, value) for s, k, r, kind, value in con.execute(
            "SELECT system, record_kind, record_id, kind, value_norm FROM person_identifiers "
            "WHERE kind IN ('email', 'phone') AND value_norm IS NOT NULL "
            "AND record_id IN (SELECT unnest(?::VARCHAR[]))", [sorted({r for _, _, r in mine})],
        ).fetchall() if (s, k, str(r)) in mine}
    generic = set(generic_local_parts())
    values = {(kind, v) for kind, v in values if not (kind == "email" and v.split("@")[0] in generic)}
    if values and subject.person_ids:
        # An identifier that another person's records carry too is not the person's own.
        hits = con.execute(
            "SELECT system, record_kind, record_id, kind, value_norm FROM person_identifiers "
            "WHERE kind IN ('email', 'phone') AND value_norm IN (SELECT unnest(?::VARCHAR[]))",
            [sorted({v for _, v in values})]).fetchall()
        owners = _persons_of_records(con, {(s, k, str(r)) for s, k, r, _, _ in hits})
        mine_ids = set(subject.person_ids)
        for s, k, r, kind, value in hits:
            if owners.get((s, k, str(r)), set()) - mine_ids:
                values.discard((kind, value))
    return (sorted(v for kind, v in values if kind == "email"), sorted(v for kind, v in values if kind == "phone"))


def collect(con: duckdb.DuckDBPyConnection, subject: Subject, processors: list[dict],
            live: Clients | None) -> dict[str, SystemExport]:
    """Every processor of the register description, plus any system the warehouse links the
    person to, answered: found / not_found / failed, or manual_open when nothing reads it."""
    systems = [p["system"] for p in processors]
    systems += sorted(s for s in set(subject.records) | set(EXPORTERS) if s not in systems)
    manual = {p["system"]: p for p in processors if p.get("export") == "manual"}
    out: dict[str, SystemExport] = {}
    for system in systems:
        res = SystemExport(system)
        ids = subject.records.get(system, {})
        exporter = EXPORTERS.get(system)
        if system in manual or exporter is None:
            res.state = "manual_open"
            linked = sum(len(v) for v in ids.values())
            res.notes.append("no API read: checked by hand by the privacy officer" if system in manual
                             else "no automatic export for this system yet: checked by hand")
            if linked:
                res.notes.append(f"the warehouse links {linked} records of this system to the person")
            out[system] = res
            continue
        try:
            if exporter.tables and not exporter.has_raw(con):
                raise ExportError(f"no raw_{system} tables in the warehouse (not synced)")
            exporter.warehouse(con, ids, res)
        except Exception as exc:  # noqa: BLE001 - one system's failure must not lose the others
            res.state, res.error = "failed", describe(exc, 500)
            res.records.clear()
            out[system] = res
            continue
        res.state = "found" if res.count() else "not_found"
        person = PersonRef(ids, subject.emails, subject.phones)
        if live is not None and live.has(system):
            try:
                exporter.live(live, person, res)
                res.state = "found" if res.count() else ("manual_open" if res.unverified else "not_found")
                if res.state == "manual_open":
                    res.notes.append("nothing found, but the answer cannot prove that nothing is held: "
                                     "checked by hand in the system")
            except Exception as exc:  # noqa: BLE001
                # What the warehouse holds is still exported; the answer is incomplete, so the
                # system counts as failed and the officer retries or checks by hand.
                res.state, res.error = "failed", "live read failed: " + describe(exc, 500)
        elif ids:
            res.notes.append("live API reads were not requested or not configured for this export")
        try:
            # Others' data is cut last, over everything read (exporters.py, "Others' data").
            exporter.scope(person, res)
        except Exception as exc:  # noqa: BLE001 - fail closed: nothing uncut goes into the package
            res.state, res.error = "failed", "cutting others' data failed: " + describe(exc, 500)
            res.records.clear()
            res.attachments.clear()
        out[system] = res
    return out


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    return str(value)


def _csv_bytes(records: list[dict]) -> bytes:
    """One row per record, one column per top-level field; nested values as JSON."""
    columns: list[str] = []
    for r in records:
        for k in r:
            if k not in columns:
                columns.append(k)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(columns)
    for r in records:
        row = []
        for c in columns:
            v = r.get(c)
            row.append("" if v is None else v if isinstance(v, str) else
                       json.dumps(v, ensure_ascii=False, default=_json_default))
        w.writerow(row)
    return buf.getvalue().encode("utf-8-sig")  # BOM: Excel opens UTF-8 CSV correctly


def write_zip(path: Path, *, case: dict, subject: Subject, results: dict[str, SystemExport], desc: dict,
              generated_at: datetime, expires_at: datetime) -> None:
    """Write the package to ``path`` (created with mode 0600, must not exist)."""
    manifest: dict[str, Any] = {
        "case_id": case["case_id"], "generated_at": generated_at.isoformat(timespec="seconds"),
        "expires_at": expires_at.isoformat(timespec="seconds"),
        "persons_found": len(subject.person_ids), "ambiguous_identifiers": subject.ambiguous_identifiers,
        "unmatched_identifiers": subject.unmatched_identifiers, "nothing_held": not any(
            r.count() for r in results.values()) and not subject.profiles,
        "systems": {}, "files": {},
    }
    files: dict[str, bytes] = {}
    if subject.profiles:
        files["warehouse/person.json"] = json.dumps(subject.profiles, ensure_ascii=False, indent=2,
                                                    default=_json_default).encode()
        files["warehouse/person.csv"] = _csv_bytes([{k: (v.isoformat() if isinstance(v, datetime) else v)
                                                     for k, v in p.items()} for p in subject.profiles])
    for system, res in results.items():
        entry = {"state": res.state, "records": res.counts(), "attachments": len(res.attachments),
                 "notes": res.notes, "error": res.error}
        manifest["systems"][system] = entry
        for kind, recs in sorted(res.records.items()):
            if not recs:
                continue
            files[f"{system}/{kind}.json"] = json.dumps(recs, ensure_ascii=False, indent=2,
                                                         default=_json_default).encode()
            files[f"{system}/{kind}.csv"] = _csv_bytes(recs)
        for a in res.attachments:
            files[f"attachments/{system}/{a.name}"] = a.data
    files["report.html"] = render_report(case=case, subject=subject, results=results, desc=desc,
                                         generated_at=generated_at, expires_at=expires_at).encode()
    manifest["files"] = {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("manifest.json", json.dumps(manifest, ensure_ascii=False, indent=2))
            for name, data in files.items():
                zf.writestr(name, data)
        fh.flush()
        os.fsync(fh.fileno())


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class ExportResult:
    path: Path
    sha256: str
    size: int
    expires_at: datetime
    results: dict[str, SystemExport]
    subject: Subject


def export_subject(*, case: dict, identifiers: Identifiers, warehouse_path: str | Path, export_dir: str | Path,
                   desc: dict, live: Clients | None, expire_days: int = DEFAULT_EXPIRE_DAYS,
                   now: datetime | None = None) -> ExportResult:
    """Read the warehouse (read-only), collect, write ``<export_dir>/<case_id>-<time>.zip``."""
    wh = Path(warehouse_path)
    if not wh.exists():
        raise ExportError(f"no warehouse at {wh}: run nightly_sync first")
    now = now or datetime.now(timezone.utc)
    expires = now + timedelta(days=expire_days)
    con = duckdb.connect(str(wh), read_only=True)
    try:
        subject = find_subject(con, identifiers)
        results = collect(con, subject, desc["processors"], live)
    finally:
        con.close()
    folder = Path(export_dir)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    # The case id and a time: no personal data in file names.
    final = folder / f"{case['case_id']}-{now:%Y%m%dT%H%M%SZ}.zip"
    part = folder / f".{final.name}.part-{os.getpid()}"
    part.unlink(missing_ok=True)
    try:
        write_zip(part, case=case, subject=subject, results=results, desc=desc, generated_at=now, expires_at=expires)
        os.replace(part, final)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return ExportResult(final, sha256_file(final), final.stat().st_size, expires, results, subject)
