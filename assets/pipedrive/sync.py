"""Pipedrive -> raw store, without Dagster (the assets, tests and benchmark call this).

Per entity:
- the first sync walks everything (sorted by update_time) and, because it saw every live id,
  also removes rows the source no longer has;
- later syncs ask only for ``updated_since`` = the stored cursor (inclusive, so the boundary
  record comes back; upserts make that harmless);
- deletions are invisible to that polling (except deals, which arrive with ``is_deleted``), so
  an id walk reconciles them when the last one is older than ``reconcile_every``.
The cursor advances page by page in the same transaction as the rows, so an interrupted sync
resumes where it stopped.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Callable

from assets.pipedrive.extract import FIELDS_SPEC, SPECS, FieldMap, extract, field_rows
from assets.raw_store import EntityResult, SyncResult, RawStore
from connectors.pipedrive import ENTITIES, FIELD_ENDPOINTS, PipedriveClient, parse_time

log = logging.getLogger("assets.pipedrive")


def sync_pipedrive(
    client: PipedriveClient,
    store: RawStore,
    *,
    entities: tuple[str, ...] = ENTITIES,
    reconcile_every: timedelta = timedelta(hours=20),
    max_delete_share: float = 0.5,
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
) -> SyncResult:
    result = SyncResult()
    requests_before, retries_before = client.http.stats.requests, client.http.stats.retries
    field_maps = _sync_fields(client, store, clock())
    for entity in entities:
        result.entities[entity] = _sync_entity(
            client, store, entity, field_maps.get(entity) or FieldMap([]),
            reconcile_every=reconcile_every, max_delete_share=max_delete_share, clock=clock,
        )
    result.requests = client.http.stats.requests - requests_before
    result.retries = client.http.stats.retries - retries_before
    return result


def _sync_fields(client: PipedriveClient, store: RawStore, now: datetime) -> dict[str, FieldMap]:
    """Field definitions are small: read them whole every run and replace the table."""
    store.ensure(FIELDS_SPEC)
    maps, rows = {}, []
    for entity in FIELD_ENDPOINTS:
        definitions = client.fields(entity)
        maps[entity] = FieldMap(definitions)
        rows.extend(field_rows(entity, definitions, now))
    with store.transaction():
        store.con.execute(f"DELETE FROM {FIELDS_SPEC.name}")
    store.apply_page(FIELDS_SPEC, rows, now=now)
    return maps


def _sync_entity(client, store, entity, fields, *, reconcile_every, max_delete_share, clock) -> EntityResult:
    spec = SPECS[entity]
    store.ensure(spec)
    state = store.state(entity)
    started = clock()
    full = state.cursor is None
    res = EntityResult(entity, mode="full" if full else "incremental")
    seen_ids: list[int] = []  # full walk only: ids are small, the records are not kept
    for page in client.iter_pages(entity, state.cursor):
        now = clock()
        rows, deleted, issues, rejects = [], [], [], []
        cursor = None
        for record in page.records:
            if not isinstance(record, dict):
                rejects.append(("record is not an object", record))
                continue
            rid = record.get("id")
            if not isinstance(rid, int) or isinstance(rid, bool):
                rejects.append(("record has no integer id", record))
                continue
            updated = parse_time(record.get("update_time"))
            if updated is not None and (cursor is None or updated > cursor):
                cursor = updated
            # v2 records say is_deleted; v1 notes say active_flag (and are deleted for good at once)
            if (record.get("active_flag") is False) if entity == "notes" else (record.get("is_deleted") is True):
                deleted.append(rid)
                continue
            rows.append(extract(entity, record, fields, now, issues))
        if cursor is not None and state.cursor is not None and cursor < state.cursor:
            cursor = None  # never move the cursor backwards
        store.apply_page(spec, rows, deleted_ids=deleted, issues=issues, rejects=rejects, cursor=cursor, now=now)
        if cursor is not None:
            state.cursor = cursor
        if full:
            seen_ids.extend(r["id"] for r in rows)
        res.pages += 1
        res.received += page.raw_count
        res.upserted += len(rows)
        res.deleted += len(deleted)
        res.issues += len(issues)
        res.rejects += len(rejects)
    if full:
        # A complete walk saw every live id: anything else in the table is gone at the source.
        res.reconciled_deleted = store.reconcile(spec, [seen_ids], now=started, max_delete_share=max_delete_share)
        res.reconciled = True
        store.mark(entity, last_full_sync_at=started)
    elif state.last_reconciled_at is None or clock() - state.last_reconciled_at >= reconcile_every:
        res.reconciled_deleted = store.reconcile(
            spec, client.iter_ids(entity), now=started, max_delete_share=max_delete_share
        )
        res.reconciled = True
    store.mark(entity, last_success_at=clock())
    res.rows = store.count(spec)
    log.info(
        "pipedrive %s: %s sync, %d pages, %d upserted, %d deleted, %d reconciled away, %d issues, %d rejects",
        entity, res.mode, res.pages, res.upserted, res.deleted, res.reconciled_deleted, res.issues, res.rejects,
    )
    return res
