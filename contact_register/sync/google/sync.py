"""Google Workspace -> raw store (``RAW_DIR/google.duckdb``), without Dagster.

Per mailbox (Admin Directory ``users.list``) and per API, a cursor in ``_google_state``:
- Gmail: full = profile historyId, then every message id (spam and trash included) fetched
  with ``format=metadata`` in batches; incremental = ``history.list`` from the stored id
  (added/label-changed messages refetched, deleted ones dropped); 404 -> full resync of that
  user only.
- Calendar: ``events.list`` with the sync token (cancelled events dropped); 410 -> full resync.
- Drive: start page token first, then ``files.list``; incremental ``changes.list``; an invalid
  token -> full resync.
- People: ``connections.list`` with sync tokens (EXPIRED_SYNC_TOKEN -> full resync); other
  contacts are read whole every run (one request per 1,000).
A full sync deletes the user's rows it did not see in the same transaction that stores the new
cursor, so a crash in the middle leaves the old rows and no new cursor: the next run repeats it.
Parent rows and their child rows (addresses, attendees, permissions) are replaced together.

Malformed headers never stop a sync: encoded-word names are decoded (or kept raw), a missing
Date leaves ``sent_at`` NULL, invalid addresses are stored with ``valid = false``; each is noted
in ``_issues`` by record id (no personal data).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.header import decode_header, make_header
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

from contact_register.sync.raw_store import RawStore, TableSpec, clean_text, json_text
from connectors.google_workspace import GoogleWorkspaceClient, HistoryExpired, SyncTokenExpired

log = logging.getLogger("assets.google")
APIS = ("gmail", "calendar", "drive", "people")
EMAIL_RE = re.compile(r"^[^@\s<>(),;:\"]+@[^@\s<>(),;:\"]+\.[^@\s<>(),;:\".]+$")
ADDRESS_HEADERS = ("From", "To", "Cc", "Bcc", "Reply-To")

USERS = TableSpec("users", (("id", "VARCHAR"), ("primary_email", "VARCHAR"), ("full_name", "VARCHAR"),
                            ("given_name", "VARCHAR"), ("family_name", "VARCHAR"), ("suspended", "BOOLEAN"),
                            ("record", "JSON"), ("synced_at", "TIMESTAMPTZ")))
MESSAGES = TableSpec("gmail_messages", (
    ("id", "VARCHAR"), ("user_id", "VARCHAR"), ("message_id", "VARCHAR"), ("thread_id", "VARCHAR"),
    ("label_ids", "VARCHAR[]"), ("history_id", "VARCHAR"), ("internal_date", "TIMESTAMPTZ"),
    ("sent_at", "TIMESTAMPTZ"), ("date_header", "VARCHAR"), ("subject", "VARCHAR"),
    ("message_id_header", "VARCHAR"), ("address_count", "BIGINT"), ("headers", "JSON"), ("synced_at", "TIMESTAMPTZ")))
ADDRESSES = TableSpec("gmail_addresses", (
    ("id", "VARCHAR"), ("message_key", "VARCHAR"), ("user_id", "VARCHAR"), ("header", "VARCHAR"),
    ("position", "BIGINT"), ("display_name", "VARCHAR"), ("email", "VARCHAR"), ("valid", "BOOLEAN"), ("raw", "VARCHAR")))
EVENTS = TableSpec("calendar_events", (
    ("id", "VARCHAR"), ("user_id", "VARCHAR"), ("event_id", "VARCHAR"), ("summary", "VARCHAR"), ("status", "VARCHAR"),
    ("start", "VARCHAR"), ("updated_at", "TIMESTAMPTZ"), ("organizer_email", "VARCHAR"), ("record", "JSON"),
    ("synced_at", "TIMESTAMPTZ")))
ATTENDEES = TableSpec("calendar_attendees", (
    ("id", "VARCHAR"), ("event_key", "VARCHAR"), ("user_id", "VARCHAR"), ("email", "VARCHAR"),
    ("display_name", "VARCHAR"), ("response_status", "VARCHAR"), ("is_organizer", "BOOLEAN"), ("is_self", "BOOLEAN")))
FILES = TableSpec("drive_files", (
    ("id", "VARCHAR"), ("user_id", "VARCHAR"), ("name", "VARCHAR"), ("mime_type", "VARCHAR"),
    ("owner_emails", "VARCHAR[]"), ("modified_at", "TIMESTAMPTZ"), ("trashed", "BOOLEAN"), ("record", "JSON"),
    ("synced_at", "TIMESTAMPTZ")))
PERMISSIONS = TableSpec("drive_permissions", (
    ("id", "VARCHAR"), ("file_id", "VARCHAR"), ("user_id", "VARCHAR"), ("permission_id", "VARCHAR"),
    ("type", "VARCHAR"), ("role", "VARCHAR"), ("email", "VARCHAR"), ("display_name", "VARCHAR"), ("domain", "VARCHAR")))
CONTACTS = TableSpec("contacts", (
    ("id", "VARCHAR"), ("user_id", "VARCHAR"), ("kind", "VARCHAR"), ("resource_name", "VARCHAR"),
    ("display_name", "VARCHAR"), ("given_name", "VARCHAR"), ("family_name", "VARCHAR"), ("emails", "VARCHAR[]"),
    ("phones", "VARCHAR[]"), ("organization", "VARCHAR"), ("job_title", "VARCHAR"), ("record", "JSON"),
    ("synced_at", "TIMESTAMPTZ")))
ALL_SPECS = (USERS, MESSAGES, ADDRESSES, EVENTS, ATTENDEES, FILES, PERMISSIONS, CONTACTS)
# parent table -> (child table, child's foreign key column)
CHILDREN = {MESSAGES.name: (ADDRESSES, "message_key"), EVENTS.name: (ATTENDEES, "event_key"),
            FILES.name: (PERMISSIONS, "file_id"), CONTACTS.name: (None, "")}

STATE_SQL = """
CREATE TABLE IF NOT EXISTS _google_state (
    user_id VARCHAR, api VARCHAR, token VARCHAR, last_full_sync_at TIMESTAMPTZ, last_success_at TIMESTAMPTZ,
    PRIMARY KEY (user_id, api)
)"""


@dataclass
class ApiResult:
    api: str
    full_users: int = 0
    incremental_users: int = 0
    resyncs: int = 0  # expired cursors that forced a full sync of that user
    upserted: int = 0
    deleted: int = 0
    issues: int = 0


@dataclass
class GoogleSyncResult:
    users: int = 0
    apis: dict[str, ApiResult] = field(default_factory=lambda: {a: ApiResult(a) for a in APIS})
    requests: int = 0
    retries: int = 0
    rows: dict[str, int] = field(default_factory=dict)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _ts_ms(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value) / 1000, tz=timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _ts_rfc3339(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _text(value: Any, issues: list, rid: str, what: str) -> str | None:
    if value is None:
        return None
    text, repaired = clean_text(str(value))
    if repaired:
        issues.append((rid, f"invalid code points in {what}"))
    return text


def decode_name(name: str, issues: list, rid: str) -> str:
    if "=?" not in name:
        return name
    try:
        return str(make_header(decode_header(name)))
    except (ValueError, LookupError, UnicodeError, TypeError):
        issues.append((rid, "undecodable encoded-word display name"))
        return name


def parse_addresses(header: str, value: str, key: str, issues: list) -> list[dict]:
    """One row per address in a header; invalid ones kept with valid = false."""
    rows = []
    pairs = getaddresses([value])
    if value.strip() and not any(addr or name for name, addr in pairs):
        issues.append((key, f"unparseable {header} header"))
        pairs = [("", value.strip())]
    for name, addr in pairs:
        if not name and not addr:
            continue
        addr = addr.strip()
        valid = bool(EMAIL_RE.match(addr))
        if not valid:
            issues.append((key, f"invalid address in {header}"))
        display = decode_name(name, issues, key) if name else None
        rows.append({"header": header.lower(), "display_name": display, "email": addr or None, "valid": valid})
    return rows


def message_rows(user_id: str, msg: dict, now: datetime, issues: list) -> tuple[dict, list[dict]]:
    mid = str(msg.get("id"))
    key = f"{user_id}:{mid}"
    headers = [(h.get("name"), h.get("value")) for h in (msg.get("payload") or {}).get("headers") or []
               if isinstance(h, dict) and isinstance(h.get("name"), str)]
    first: dict[str, str] = {}
    addresses: list[dict] = []
    for name, value in headers:
        value = _text(value if isinstance(value, str) else "", issues, key, "header") or ""
        first.setdefault(name.lower(), value)
        if name in ADDRESS_HEADERS or name.lower() in {h.lower() for h in ADDRESS_HEADERS}:
            addresses.extend(parse_addresses(name, value, key, issues))
    sent_at = None
    if "date" not in first:
        issues.append((key, "missing Date header"))
    else:
        try:
            sent_at = parsedate_to_datetime(first["date"])
            if sent_at.tzinfo is None:
                sent_at = sent_at.replace(tzinfo=timezone.utc)
        except (TypeError, ValueError, IndexError):
            issues.append((key, "unparseable Date header"))
    if len(addresses) > 100:
        issues.append((key, "more than 100 recipients"))
    headers_json, repaired = json_text([[n, v] for n, v in headers])
    child = []
    for pos, a in enumerate(addresses):
        child.append(dict(id=f"{key}:{pos}", message_key=key, user_id=user_id, position=pos, raw=None, **a))
    row = {"id": key, "user_id": user_id, "message_id": mid, "thread_id": msg.get("threadId"),
           "label_ids": [str(l) for l in msg.get("labelIds") or []], "history_id": str(msg.get("historyId") or ""),
           "internal_date": _ts_ms(msg.get("internalDate")), "sent_at": sent_at, "date_header": first.get("date"),
           "subject": decode_name(first["subject"], issues, key) if "subject" in first else None,
           "message_id_header": first.get("message-id"), "address_count": len(addresses),
           "headers": headers_json, "synced_at": now}
    return row, child


def event_rows(user_id: str, ev: dict, now: datetime, issues: list) -> tuple[dict, list[dict]]:
    key = f"{user_id}:{ev.get('id')}"
    start = ev.get("start") or {}
    organizer = (ev.get("organizer") or {}).get("email")
    attendees = []
    for pos, a in enumerate(ev.get("attendees") or []):
        if not isinstance(a, dict):
            issues.append((key, "attendee is not an object"))
            continue
        email = a.get("email")
        if not isinstance(email, str) or not EMAIL_RE.match(email.strip()):
            issues.append((key, "invalid attendee address"))
        attendees.append({"id": f"{key}:{pos}", "event_key": key, "user_id": user_id, "email": email,
                          "display_name": _text(a.get("displayName"), issues, key, "attendee name"),
                          "response_status": a.get("responseStatus"),
                          "is_organizer": bool(a.get("organizer")) or (email is not None and email == organizer),
                          "is_self": bool(a.get("self"))})
    record, _ = json_text(ev)
    row = {"id": key, "user_id": user_id, "event_id": str(ev.get("id")),
           "summary": _text(ev.get("summary"), issues, key, "summary"), "status": ev.get("status"),
           "start": start.get("dateTime") or start.get("date"), "updated_at": _ts_rfc3339(ev.get("updated")),
           "organizer_email": organizer, "record": record, "synced_at": now}
    return row, attendees


def file_rows(user_id: str, f: dict, now: datetime, issues: list) -> tuple[dict, list[dict]]:
    fid = str(f.get("id"))
    perms = []
    for p in f.get("permissions") or []:
        if not isinstance(p, dict):
            issues.append((fid, "permission is not an object"))
            continue
        perms.append({"id": f"{fid}:{p.get('id')}", "file_id": fid, "user_id": user_id,
                      "permission_id": str(p.get("id")), "type": p.get("type"), "role": p.get("role"),
                      "email": p.get("emailAddress"), "display_name": _text(p.get("displayName"), issues, fid, "name"),
                      "domain": p.get("domain")})
    record, _ = json_text({k: v for k, v in f.items() if k != "permissions"})
    row = {"id": fid, "user_id": user_id, "name": _text(f.get("name"), issues, fid, "name"), "mime_type": f.get("mimeType"),
           "owner_emails": [o.get("emailAddress") for o in f.get("owners") or [] if isinstance(o, dict)],
           "modified_at": _ts_rfc3339(f.get("modifiedTime")), "trashed": bool(f.get("trashed")),
           "record": record, "synced_at": now}
    return row, perms


def contact_row(user_id: str, kind: str, p: dict, now: datetime, issues: list) -> dict:
    rn = str(p.get("resourceName"))
    key = f"{kind}:{user_id}/{rn}"
    name = next((n for n in p.get("names") or [] if isinstance(n, dict)), {})
    org = next((o for o in p.get("organizations") or [] if isinstance(o, dict)), {})
    record, _ = json_text(p)
    return {"id": key, "user_id": user_id, "kind": kind, "resource_name": rn,
            "display_name": _text(name.get("displayName"), issues, key, "name"),
            "given_name": _text(name.get("givenName"), issues, key, "name"),
            "family_name": _text(name.get("familyName"), issues, key, "name"),
            "emails": [str(e.get("value")) for e in p.get("emailAddresses") or [] if isinstance(e, dict) and e.get("value")],
            "phones": [str(e.get("value")) for e in p.get("phoneNumbers") or [] if isinstance(e, dict) and e.get("value")],
            "organization": _text(org.get("name"), issues, key, "organization"), "job_title": org.get("title"),
            "record": record, "synced_at": now}


# ---------------------------------------------------------------------------------- store access
def ensure(store: RawStore) -> None:
    for spec in ALL_SPECS:
        store.ensure(spec)
    store.con.execute(STATE_SQL)


def get_token(store: RawStore, user_id: str, api: str) -> str | None:
    row = store.con.execute("SELECT token FROM _google_state WHERE user_id = ? AND api = ?", [user_id, api]).fetchone()
    return row[0] if row else None


def write(store: RawStore, spec: TableSpec, rows: list[dict], children: list[dict] = (), *,  # type: ignore[assignment]
          deleted: Iterable[str] = (), issues: Iterable[tuple[str, str]] = (), now: datetime,
          state: tuple[str, str, str] | None = None, full_user: tuple[str, str, str] | None = None,
          kind: str | None = None, replace_all: bool = False) -> int:
    """Upsert parents and replace their children, delete ``deleted`` keys, note issues and
    (optionally) store the user's new cursor; with ``full_user`` = (user id, seen-ids temp
    table, api) also delete the user's rows that table does not hold. All in one transaction.
    Returns the number of parent rows deleted."""
    child_spec, fk = CHILDREN.get(spec.name, (None, ""))
    keys = [r["id"] for r in rows]
    key_set = set(keys)
    deleted = [d for d in deleted if d not in key_set]
    gone = 0
    with store.transaction():
        if replace_all:
            store.con.execute(f"DELETE FROM {spec.name}")
        if full_user is not None:
            uid, seen, _api = full_user
            extra = " AND kind = ?" if kind else ""
            params = [uid, kind] if kind else [uid]
            stale = [r[0] for r in store.con.execute(
                f"SELECT id FROM {spec.name} WHERE user_id = ?{extra} AND id NOT IN (SELECT id FROM {seen})", params
            ).fetchall()]
            deleted = list(deleted) + stale
        if child_spec is not None and (keys or deleted):
            store.con.execute(f"DELETE FROM {child_spec.name} WHERE {fk} IN (SELECT unnest(?::VARCHAR[]))",
                              [keys + list(deleted)])
        if deleted:
            gone = len(store.con.execute(f"DELETE FROM {spec.name} WHERE id IN (SELECT unnest(?::VARCHAR[])) RETURNING id",
                                         [list(deleted)]).fetchall())
        store.upsert(spec, rows)
        if child_spec is not None:
            store.upsert(child_spec, list(children))
        issue_rows = [[spec.name, rid, problem, now, now] for rid, problem in set(issues)]
        if issue_rows:
            store.con.executemany("INSERT INTO _issues VALUES (?, ?, ?, ?, ?) "
                                  "ON CONFLICT DO UPDATE SET last_seen_at = excluded.last_seen_at", issue_rows)
        if state is not None:
            uid, api, token = state
            store.con.execute(
                "INSERT INTO _google_state (user_id, api, token, last_success_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT DO UPDATE SET token = excluded.token, last_success_at = excluded.last_success_at",
                [uid, api, token, now])
            if full_user is not None:
                store.con.execute("UPDATE _google_state SET last_full_sync_at = ? WHERE user_id = ? AND api = ?",
                                  [now, uid, api])
    return gone


class _Seen:
    """Ids seen by a full walk, in a temp table (a 2,000-message mailbox or 100k files alike)."""

    def __init__(self, store: RawStore, name: str) -> None:
        self.store, self.name = store, name
        store.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} (id VARCHAR)")

    def add(self, ids: list[str]) -> None:
        if ids:
            self.store.con.execute(f"INSERT INTO {self.name} SELECT unnest(?::VARCHAR[])", [ids])

    def drop(self) -> None:
        self.store.con.execute(f"DROP TABLE IF EXISTS {self.name}")


# ---------------------------------------------------------------------------------- per API
def _gmail_full(client: GoogleWorkspaceClient, store: RawStore, uid: str, email: str, res: ApiResult,
                clock: Callable[[], datetime]) -> None:
    history_id = str(client.gmail_profile(email)["historyId"])  # before listing: nothing slips between
    seen = _Seen(store, "_seen_gmail")
    for ids in client.gmail_ids(email):
        got, _gone = client.gmail_get_many(email, ids)
        now, issues, rows, children = clock(), [], [], []
        for mid in ids:
            if mid in got:
                row, child = message_rows(uid, got[mid], now, issues)
                rows.append(row)
                children.extend(child)
        seen.add([r["id"] for r in rows])
        write(store, MESSAGES, rows, children, issues=issues, now=now)
        res.upserted += len(rows)
        res.issues += len(issues)
    res.deleted += write(store, MESSAGES, [], now=clock(), state=(uid, "gmail", history_id),
                         full_user=(uid, seen.name, "gmail"))
    seen.drop()


def _gmail_incremental(client: GoogleWorkspaceClient, store: RawStore, uid: str, email: str, token: str,
                       res: ApiResult, clock: Callable[[], datetime]) -> None:
    last: dict[str, str] = {}  # message id -> "changed" | "deleted", in history order
    new_token = token
    for page in client.gmail_history(email, token):
        for rec in page.get("history") or []:
            for kind in ("messagesAdded", "labelsAdded", "labelsRemoved", "messagesDeleted"):
                for item in rec.get(kind) or []:
                    mid = (item.get("message") or {}).get("id")
                    if mid:
                        last[mid] = "deleted" if kind == "messagesDeleted" else "changed"
        new_token = str(page.get("historyId") or new_token)
    changed = [m for m, what in last.items() if what == "changed"]
    deleted = {f"{uid}:{m}" for m, what in last.items() if what == "deleted"}
    got, gone = client.gmail_get_many(email, changed) if changed else ({}, [])
    deleted |= {f"{uid}:{m}" for m in gone}
    now, issues, rows, children = clock(), [], [], []
    for mid in changed:
        if mid in got:
            row, child = message_rows(uid, got[mid], now, issues)
            rows.append(row)
            children.extend(child)
    res.deleted += write(store, MESSAGES, rows, children, deleted=deleted, issues=issues, now=now,
                         state=(uid, "gmail", new_token))
    res.upserted += len(rows)
    res.issues += len(issues)


def _calendar(client: GoogleWorkspaceClient, store: RawStore, uid: str, email: str, token: str | None,
              res: ApiResult, clock: Callable[[], datetime]) -> None:
    seen = _Seen(store, "_seen_events") if token is None else None
    pages = list(client.calendar_events(email, sync_token=token)) if token else None
    for page in pages if pages is not None else client.calendar_events(email):
        now, issues, rows, children, deleted = clock(), [], [], [], []
        for ev in page.get("items") or []:
            if not isinstance(ev, dict) or not ev.get("id"):
                issues.append((uid, "event without id"))
                continue
            if ev.get("status") == "cancelled":
                deleted.append(f"{uid}:{ev['id']}")
                continue
            row, child = event_rows(uid, ev, now, issues)
            rows.append(row)
            children.extend(child)
        if seen is not None:
            seen.add([r["id"] for r in rows])
        next_token = page.get("nextSyncToken")
        if seen is not None:
            write(store, EVENTS, rows, children, issues=issues, now=now)
            if next_token:
                res.deleted += write(store, EVENTS, [], now=now, state=(uid, "calendar", next_token),
                                     full_user=(uid, seen.name, "calendar"))
        else:
            res.deleted += write(store, EVENTS, rows, children, deleted=deleted, issues=issues, now=now,
                                 state=(uid, "calendar", next_token) if next_token else None)
        res.upserted += len(rows)
        res.issues += len(issues)
    if seen is not None:
        seen.drop()


def _drive(client: GoogleWorkspaceClient, store: RawStore, uid: str, email: str, token: str | None,
           res: ApiResult, clock: Callable[[], datetime]) -> None:
    if token is None:
        start = client.drive_start_token(email)
        seen = _Seen(store, "_seen_files")
        for page in client.drive_files(email):
            now, issues, rows, children = clock(), [], [], []
            for f in page.get("files") or []:
                if isinstance(f, dict) and f.get("id"):
                    row, child = file_rows(uid, f, now, issues)
                    rows.append(row)
                    children.extend(child)
            seen.add([r["id"] for r in rows])
            write(store, FILES, rows, children, issues=issues, now=now)
            res.upserted += len(rows)
            res.issues += len(issues)
        res.deleted += write(store, FILES, [], now=clock(), state=(uid, "drive", start), full_user=(uid, seen.name, "drive"))
        seen.drop()
        return
    pages = list(client.drive_changes(email, token))
    now, issues, rows, children, deleted = clock(), [], [], [], []
    for page in pages:
        for ch in page.get("changes") or []:
            fid = ch.get("fileId")
            f = ch.get("file")
            # The change list also shows files others own and share with this user; the full
            # sync reads owned files only, so anything else counts as gone for this user.
            owned = isinstance(f, dict) and email.lower() in {
                str(o.get("emailAddress", "")).lower() for o in f.get("owners") or [] if isinstance(o, dict)}
            if ch.get("removed") or not owned or f.get("trashed"):
                if fid:
                    deleted.append(str(fid))
                continue
            row, child = file_rows(uid, f, now, issues)
            rows.append(row)
            children.extend(child)
    new_token = next((p["newStartPageToken"] for p in pages if p.get("newStartPageToken")), token)
    if deleted:  # file ids are global: never drop a row another user owns
        deleted = [r[0] for r in store.con.execute(
            "SELECT id FROM drive_files WHERE user_id = ? AND id IN (SELECT unnest(?::VARCHAR[]))", [uid, deleted]
        ).fetchall()]
    res.deleted += write(store, FILES, rows, children, deleted=deleted, issues=issues, now=now,
                         state=(uid, "drive", new_token))
    res.upserted += len(rows)
    res.issues += len(issues)


def _people(client: GoogleWorkspaceClient, store: RawStore, uid: str, email: str, token: str | None,
            res: ApiResult, clock: Callable[[], datetime]) -> None:
    pages = list(client.connections(email, sync_token=token))
    now, issues, rows, deleted = clock(), [], [], []
    for page in pages:
        for p in page.get("connections") or []:
            if not isinstance(p, dict) or not p.get("resourceName"):
                issues.append((uid, "contact without resourceName"))
                continue
            if (p.get("metadata") or {}).get("deleted"):
                deleted.append(f"contact:{uid}/{p['resourceName']}")
                continue
            rows.append(contact_row(uid, "contact", p, now, issues))
    new_token = next((p["nextSyncToken"] for p in reversed(pages) if p.get("nextSyncToken")), None)
    full = None
    if token is None:
        seen = _Seen(store, "_seen_contacts")
        seen.add([r["id"] for r in rows])
        full = (uid, seen.name, "people")
    res.deleted += write(store, CONTACTS, rows, deleted=deleted, issues=issues, now=now, kind="contact",
                         state=(uid, "people", new_token or ""), full_user=full)
    if full is not None:
        store.con.execute("DROP TABLE IF EXISTS _seen_contacts")
    others = [contact_row(uid, "other_contact", p, now, issues)
              for page in client.other_contacts(email) for p in page.get("otherContacts") or []
              if isinstance(p, dict) and p.get("resourceName")]
    # Other contacts have no sync token: read whole, but rewrite only what changed.
    held = dict(store.con.execute("SELECT id, record FROM contacts WHERE user_id = ? AND kind = 'other_contact'",
                                  [uid]).fetchall())
    changed = [r for r in others if held.get(r["id"]) != r["record"]]
    seen = _Seen(store, "_seen_others")
    seen.add([r["id"] for r in others])
    res.deleted += write(store, CONTACTS, changed, now=now, kind="other_contact",
                         full_user=(uid, seen.name, "other_contacts"))
    seen.drop()
    res.upserted += len(rows) + len(changed)
    res.issues += len(issues)


def sync_google(client: GoogleWorkspaceClient, store: RawStore, *, apis: tuple[str, ...] = APIS,
                clock: Callable[[], datetime] = _now) -> GoogleSyncResult:
    result = GoogleSyncResult()
    requests_before, retries_before = client.stats.requests, client.stats.retries
    ensure(store)
    users = [u for u in client.users() if isinstance(u, dict) and u.get("id") and u.get("primaryEmail")]
    now = clock()
    issues: list = []
    write(store, USERS, [{"id": str(u["id"]), "primary_email": u["primaryEmail"],
                          "full_name": (u.get("name") or {}).get("fullName"),
                          "given_name": (u.get("name") or {}).get("givenName"),
                          "family_name": (u.get("name") or {}).get("familyName"),
                          "suspended": bool(u.get("suspended")), "record": json_text(u)[0], "synced_at": now}
                         for u in users], issues=issues, now=now, replace_all=True)
    result.users = len(users)
    for n, user in enumerate(users):
        uid, email = str(user["id"]), user["primaryEmail"]
        if user.get("suspended"):
            continue
        for api in apis:
            res = result.apis[api]
            token = get_token(store, uid, api)
            try:
                _run(api, client, store, uid, email, token, res, clock)
            except (HistoryExpired, SyncTokenExpired):
                # Only this user's cursor for this API is stale: resync them alone.
                log.info("google %s: cursor of user #%d expired; full resync of that user", api, n)
                res.resyncs += 1
                with store.transaction():
                    store.con.execute("DELETE FROM _google_state WHERE user_id = ? AND api = ?", [uid, api])
                token = None
                _run(api, client, store, uid, email, None, res, clock)
            if token is None:
                res.full_users += 1
            else:
                res.incremental_users += 1
    result.requests = client.stats.requests - requests_before
    result.retries = client.stats.retries - retries_before
    result.rows = {spec.name: store.count(spec) for spec in ALL_SPECS}
    for api, r in result.apis.items():
        log.info("google %s: %d full, %d incremental, %d resyncs, %d upserted, %d deleted, %d issues",
                 api, r.full_users, r.incremental_users, r.resyncs, r.upserted, r.deleted, r.issues)
    return result


def _run(api, client, store, uid, email, token, res, clock) -> None:
    if api == "gmail":
        if token is None:
            _gmail_full(client, store, uid, email, res, clock)
        else:
            _gmail_incremental(client, store, uid, email, token, res, clock)
    elif api == "calendar":
        _calendar(client, store, uid, email, token, res, clock)
    elif api == "drive":
        _drive(client, store, uid, email, token, res, clock)
    elif api == "people":
        _people(client, store, uid, email, token or None, res, clock)
