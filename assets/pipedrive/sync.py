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

Entities are read concurrently, up to Pipedrive's limit in ``pipelines.concurrency`` (two
requests in flight): one reader thread per entity being read, each with its own walk and cursor,
handing pages through a small bounded queue to the calling thread, the only one that writes to
the DuckDB file. Pages of different entities interleave, each in its own transaction with its
own entity's cursor, so a kill leaves every entity resumable from its last committed page.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterator

from assets.pipedrive.extract import FIELDS_SPEC, SPECS, FieldMap, extract, field_rows
from assets.raw_store import EntityResult, RawStore, SyncResult, SyncState, TableSpec
from connectors.pipedrive import ENTITIES, FIELD_ENDPOINTS, SYSTEM, Page, PipedriveClient, parse_time
from pipelines.concurrency import SYSTEM_RUN_LIMITS

log = logging.getLogger("assets.pipedrive")


def sync_pipedrive(
    client: PipedriveClient,
    store: RawStore,
    *,
    entities: tuple[str, ...] = ENTITIES,
    reconcile_every: timedelta = timedelta(hours=20),
    max_delete_share: float = 0.5,
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    in_flight: int = SYSTEM_RUN_LIMITS[SYSTEM],
) -> SyncResult:
    """Sync ``entities``: up to ``in_flight`` of them are read at once (each by one worker
    thread, one request at a time), and this thread alone writes their pages to ``store``."""
    result = SyncResult()
    requests_before, retries_before = client.http.stats.requests, client.http.stats.retries
    field_maps = _sync_fields(client, store, clock())
    walks = {e: _plan(store, e, field_maps.get(e) or FieldMap([]), reconcile_every, clock) for e in entities}
    result.entities = {e: w.res for e, w in walks.items()}
    # closing(): on an error here the readers are stopped at once, not when the generator is collected
    with closing(_fetch_concurrently(client, walks.values(), in_flight)) as fetched:
        for walk, kind, payload in fetched:
            if kind == "page":
                _apply_page(store, walk, payload, clock)
            elif kind == "ids":
                walk.live_ids = payload
            else:
                _finish(store, walk, max_delete_share, clock)
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


@dataclass
class _Walk:
    """One entity's sync: what its reader asks for and what its pages did."""

    entity: str
    spec: TableSpec
    fields: FieldMap
    state: SyncState
    started: datetime
    id_walk: bool  # incremental and the reconciliation is due: also list every live id
    res: EntityResult
    seen_ids: list[int] = field(default_factory=list)  # full walk only: ids are small, records are not kept
    live_ids: list[int] | None = None

    @property
    def full(self) -> bool:
        return self.res.mode == "full"


def _plan(store: RawStore, entity: str, fields: FieldMap, reconcile_every: timedelta, clock) -> _Walk:
    spec = SPECS[entity]
    store.ensure(spec)
    state = store.state(entity)
    started = clock()
    full = state.cursor is None
    id_walk = not full and (state.last_reconciled_at is None or started - state.last_reconciled_at >= reconcile_every)
    return _Walk(entity, spec, fields, state, started, id_walk, EntityResult(entity, mode="full" if full else "incremental"))


def _fetch_concurrently(client: PipedriveClient, walks, in_flight: int) -> Iterator[tuple[_Walk, str, object]]:
    """Yield ``(walk, "page", Page)``, ``(walk, "ids", list)`` and ``(walk, "end", None)`` as
    the readers fetch them. Each reader walks one entity at a time (its pages, then its id
    walk when due), so at most ``in_flight`` requests are in flight. The queue is bounded: a
    reader waits while the writer is behind, which bounds memory. A reader's error is raised
    here, and the other readers stop after their current request."""
    pages: queue.Queue = queue.Queue(maxsize=2 * in_flight)
    stop = threading.Event()

    def put(item) -> None:
        while not stop.is_set():
            try:
                pages.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def read(walk: _Walk) -> None:
        try:
            for page in client.iter_pages(walk.entity, walk.state.cursor):
                if stop.is_set():
                    return
                put((walk, "page", page))
            if walk.id_walk:
                ids = [i for chunk in client.iter_ids(walk.entity) for i in chunk]
                put((walk, "ids", ids))
            put((walk, "end", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the writer thread, which raises it
            put((walk, "error", exc))

    walks = list(walks)
    pool = ThreadPoolExecutor(max_workers=max(1, in_flight), thread_name_prefix="pipedrive-read")
    try:
        for walk in walks:
            pool.submit(read, walk)
        open_walks = len(walks)
        while open_walks:
            walk, kind, payload = pages.get()
            if kind == "error":
                raise payload  # type: ignore[misc]
            if kind == "end":
                open_walks -= 1
            yield walk, kind, payload
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)


def _apply_page(store: RawStore, walk: _Walk, page: Page, clock) -> None:
    entity, state, res = walk.entity, walk.state, walk.res
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
        rows.append(extract(entity, record, walk.fields, now, issues))
    if cursor is not None and state.cursor is not None and cursor < state.cursor:
        cursor = None  # never move the cursor backwards
    store.apply_page(walk.spec, rows, deleted_ids=deleted, issues=issues, rejects=rejects, cursor=cursor, now=now)
    if cursor is not None:
        state.cursor = cursor
    if walk.full:
        walk.seen_ids.extend(r["id"] for r in rows)
    res.pages += 1
    res.received += page.raw_count
    res.upserted += len(rows)
    res.deleted += len(deleted)
    res.issues += len(issues)
    res.rejects += len(rejects)


def _finish(store: RawStore, walk: _Walk, max_delete_share: float, clock) -> None:
    entity, spec, res = walk.entity, walk.spec, walk.res
    if walk.full:
        # A complete walk saw every live id: anything else in the table is gone at the source.
        res.reconciled_deleted = store.reconcile(spec, [walk.seen_ids], now=walk.started, max_delete_share=max_delete_share)
        res.reconciled = True
        store.mark(entity, last_full_sync_at=walk.started)
    elif walk.live_ids is not None:
        res.reconciled_deleted = store.reconcile(spec, [walk.live_ids], now=walk.started, max_delete_share=max_delete_share)
        res.reconciled = True
    store.mark(entity, last_success_at=clock())
    res.rows = store.count(spec)
    log.info(
        "pipedrive %s: %s sync, %d pages, %d upserted, %d deleted, %d reconciled away, %d issues, %d rejects",
        entity, res.mode, res.pages, res.upserted, res.deleted, res.reconciled_deleted, res.issues, res.rejects,
    )
