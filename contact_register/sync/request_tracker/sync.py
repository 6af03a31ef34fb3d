"""Request Tracker -> raw store (``RAW_DIR/request_tracker.duckdb``), without Dagster.

Tables: ``users``, ``tickets`` (with requestor/Cc/AdminCc id lists), ``ticket_people`` (one
row per ticket, user and role; rebuilt from ``tickets`` after each run so a removed Cc
disappears), ``transactions`` (metadata: type, creator, time; no message content) and
``attachments`` (metadata: content type, file name, length; no content).

Cursors: users and tickets by ``LastUpdated`` (inclusive, stored in ``_sync_state`` with the
rows); transactions and attachments are append-only in RT, so their cursor is the largest id
already stored. Deletions (shredded users, tickets, transactions) are invisible to polling:
a full sync, or an incremental one whose last id walk is older than ``reconcile_every``, walks
the live ids and removes the rest. Malformed records are rejected or noted as issues, never
fatal: message content is not read by the sync at all, so broken MIME, huge attachments and
non-UTF-8 bodies cannot break it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from contact_register.sync.raw_store import EntityResult, SyncResult, RawStore, TableSpec, clean_text, json_text
from connectors.request_tracker import RequestTrackerClient, parse_time

log = logging.getLogger("assets.request_tracker")

META = (("record", "JSON"), ("synced_at", "TIMESTAMPTZ"))
SPECS: dict[str, TableSpec] = {
    "users": TableSpec("users", (
        ("id", "BIGINT"), ("name", "VARCHAR"), ("email", "VARCHAR"), ("real_name", "VARCHAR"),
        ("organization", "VARCHAR"), ("phones", "VARCHAR[]"), ("privileged", "BOOLEAN"), ("disabled", "BOOLEAN"),
        ("created", "TIMESTAMPTZ"), ("last_updated", "TIMESTAMPTZ"),
    ) + META),
    "tickets": TableSpec("tickets", (
        ("id", "BIGINT"), ("subject", "VARCHAR"), ("status", "VARCHAR"), ("queue", "VARCHAR"),
        ("creator_id", "BIGINT"), ("requestor_ids", "BIGINT[]"), ("cc_ids", "BIGINT[]"), ("admincc_ids", "BIGINT[]"),
        ("created", "TIMESTAMPTZ"), ("last_updated", "TIMESTAMPTZ"),
    ) + META),
    "transactions": TableSpec("transactions", (
        ("id", "BIGINT"), ("ticket_id", "BIGINT"), ("type", "VARCHAR"), ("field", "VARCHAR"),
        ("creator_id", "BIGINT"), ("created", "TIMESTAMPTZ"), ("synced_at", "TIMESTAMPTZ"),
    )),
    "attachments": TableSpec("attachments", (
        ("id", "BIGINT"), ("transaction_id", "BIGINT"), ("content_type", "VARCHAR"), ("filename", "VARCHAR"),
        ("content_length", "BIGINT"), ("creator_id", "BIGINT"), ("created", "TIMESTAMPTZ"), ("synced_at", "TIMESTAMPTZ"),
    )),
}
ENTITIES = ("users", "tickets", "transactions", "attachments")
TABLES = ENTITIES[:2] + ("ticket_people",) + ENTITIES[2:]

TICKET_PEOPLE_SQL = """
CREATE OR REPLACE TABLE ticket_people AS
SELECT ticket_id, user_id, role, last_updated FROM (
    SELECT id AS ticket_id, unnest(coalesce(requestor_ids, [])) AS user_id, 'Requestor' AS role, last_updated FROM tickets
    UNION ALL SELECT id, unnest(coalesce(cc_ids, [])), 'Cc', last_updated FROM tickets
    UNION ALL SELECT id, unnest(coalesce(admincc_ids, [])), 'AdminCc', last_updated FROM tickets
)
"""


def _canonical(record: dict) -> str:
    """RT (Perl) serialises hash keys in random order: sort them so that an unchanged record
    is stored byte-identically."""
    def sort(value):
        if isinstance(value, dict):
            return {k: sort(value[k]) for k in sorted(value, key=str)}
        if isinstance(value, list):
            return [sort(v) for v in value]
        return value
    return json_text(sort(record))[0]


def _int(value: Any) -> int | None:
    if isinstance(value, dict):
        value = value.get("id")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _text(value: Any, rid: int, key: str, issues: list) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        value = value.get("Name") or value.get("id")
    if not isinstance(value, str):
        value = str(value)
    value, repaired = clean_text(value)
    if repaired:
        issues.append((str(rid), f"{key} had invalid code points (replaced)"))
    return value


def _ids(value: Any, rid: int, key: str, issues: list) -> list[int]:
    if value is None:
        return []
    if not isinstance(value, list):
        issues.append((str(rid), f"{key} is not a list"))
        return []
    out = [i for i in (_int(v) for v in value) if i is not None]
    if len(out) != len(value):
        issues.append((str(rid), f"{key} has entries without id"))
    return out


def extract(entity: str, record: dict, now: datetime, issues: list) -> dict:
    rid = _int(record.get("id"))
    if entity == "users":
        phones = [p for p in (_text(record.get(k), rid, k, issues) for k in ("MobilePhone", "WorkPhone", "HomePhone", "PagerPhone")) if p]
        return {
            "id": rid, "name": _text(record.get("Name"), rid, "Name", issues),
            "email": _text(record.get("EmailAddress"), rid, "EmailAddress", issues),
            "real_name": _text(record.get("RealName"), rid, "RealName", issues),
            "organization": _text(record.get("Organization"), rid, "Organization", issues),
            "phones": phones, "privileged": str(record.get("Privileged") or "0") == "1",
            "disabled": str(record.get("Disabled") or "0") == "1",
            "created": parse_time(record.get("Created")), "last_updated": parse_time(record.get("LastUpdated")),
            "record": _canonical(record), "synced_at": now,
        }
    if entity == "tickets":
        return {
            "id": rid, "subject": _text(record.get("Subject"), rid, "Subject", issues),
            "status": _text(record.get("Status"), rid, "Status", issues),
            "queue": _text(record.get("Queue"), rid, "Queue", issues), "creator_id": _int(record.get("Creator")),
            "requestor_ids": _ids(record.get("Requestor"), rid, "Requestor", issues),
            "cc_ids": _ids(record.get("Cc"), rid, "Cc", issues),
            "admincc_ids": _ids(record.get("AdminCc"), rid, "AdminCc", issues),
            "created": parse_time(record.get("Created")), "last_updated": parse_time(record.get("LastUpdated")),
            "record": _canonical(record), "synced_at": now,
        }
    if entity == "transactions":
        return {
            "id": rid, "ticket_id": _int(record.get("ObjectId")), "type": _text(record.get("Type"), rid, "Type", issues),
            "field": _text(record.get("Field"), rid, "Field", issues), "creator_id": _int(record.get("Creator")),
            "created": parse_time(record.get("Created")), "synced_at": now,
        }
    length = _int(record.get("ContentLength"))
    return {
        "id": rid, "transaction_id": _int(record.get("TransactionId")),
        "content_type": _text(record.get("ContentType"), rid, "ContentType", issues),
        "filename": _text(record.get("Filename"), rid, "Filename", issues),
        "content_length": length, "creator_id": _int(record.get("Creator")),
        "created": parse_time(record.get("Created")), "synced_at": now,
    }


def sync_request_tracker(
    client: RequestTrackerClient,
    store: RawStore,
    *,
    reconcile_every: timedelta = timedelta(hours=20),
    max_delete_share: float = 0.5,
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
) -> SyncResult:
    result = SyncResult()
    before = (client.stats.requests, client.stats.retries)
    for entity in ENTITIES:
        store.ensure(SPECS[entity])
    for entity in ENTITIES:
        result.entities[entity] = _sync_entity(client, store, entity, reconcile_every, max_delete_share, clock)
    staff = sorted(client.privileged_user_ids())
    with store.transaction():
        # Privilege is group membership, not a user column: refreshed every run.
        store.con.execute("UPDATE users SET privileged = list_contains(?::BIGINT[], id)", [staff])
        store.con.execute(TICKET_PEOPLE_SQL)
    result.requests = client.stats.requests - before[0]
    result.retries = client.stats.retries - before[1]
    return result


def _sync_entity(client, store: RawStore, entity: str, reconcile_every, max_delete_share, clock) -> EntityResult:
    spec = SPECS[entity]
    state = store.state(entity)
    started = clock()
    by_id = entity in ("transactions", "attachments")
    if by_id:
        last_id = store.con.execute(f"SELECT coalesce(max(id), 0) FROM {spec.name}").fetchone()[0]
        full = last_id == 0
        pages = client.iter_transactions(last_id) if entity == "transactions" else client.iter_attachments(last_id)
    else:
        full = state.cursor is None
        pages = client.iter_users(state.cursor) if entity == "users" else client.iter_tickets(state.cursor)
    res = EntityResult(entity, mode="full" if full else "incremental")
    newest = None
    for page in pages:
        now = clock()
        rows, issues, rejects = [], [], []
        cursor = None
        for record in page:
            if not isinstance(record, dict) or _int(record.get("id")) is None:
                rejects.append(("record has no integer id", record))
                continue
            rows.append(extract(entity, record, now, issues))
            updated = rows[-1].get("last_updated")
            if updated is not None and (cursor is None or updated > cursor):
                cursor = updated
        if by_id or (cursor is not None and state.cursor is not None and cursor < state.cursor):
            cursor = None
        if entity == "users" and cursor is not None:
            # Users arrive newest first: the cursor moves once the walk is complete.
            newest = cursor if newest is None or cursor > newest else newest
            cursor = None
        store.apply_page(spec, rows, issues=issues, rejects=rejects, cursor=cursor, now=now)
        if cursor is not None:
            state.cursor = cursor
        res.pages += 1
        res.upserted += len(rows)
        res.issues += len(issues)
        res.rejects += len(rejects)
    if newest is not None:
        store.mark(entity, cursor=newest)
    if full or state.last_reconciled_at is None or clock() - state.last_reconciled_at >= reconcile_every:
        res.reconciled_deleted = _reconcile(client, store, entity, started, max_delete_share)
        res.reconciled = True
    if full:
        store.mark(entity, last_full_sync_at=started)
    store.mark(entity, last_success_at=clock())
    res.rows = store.count(spec)
    log.info("request_tracker %s: %s sync, %d pages, %d upserted, %d reconciled away, %d issues, %d rejects",
             entity, res.mode, res.pages, res.upserted, res.reconciled_deleted, res.issues, res.rejects)
    return res


def _reconcile(client, store: RawStore, entity: str, now: datetime, max_delete_share: float) -> int:
    spec = SPECS[entity]
    if entity in ("users", "tickets"):
        return store.reconcile(spec, client.iter_ids(entity), now=now, max_delete_share=max_delete_share)
    if entity == "transactions":
        # Append-only ids: one id walk finds shredded transactions.
        pages = ([int(t["id"]) for t in items if _int(t.get("id")) is not None]
                 for items in client._collection("transactions", filters=[{"field": "ObjectType", "value": "RT::Ticket"}],
                                                 params={"fields": "id"}))
        return store.reconcile(spec, pages, now=now, max_delete_share=max_delete_share)
    pages = ([int(t["id"]) for t in items if _int(t.get("id")) is not None]
             for items in client._collection("attachments", filters=[{"field": "id", "operator": ">", "value": 0}],
                                             params={"fields": "id"}))
    return store.reconcile(spec, pages, now=now, max_delete_share=max_delete_share)
