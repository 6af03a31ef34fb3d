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

Entities are read concurrently, up to Pipedrive's limit in ``contact_register.sync.limits`` (two
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

from contact_register.sync.pipedrive.extract import FIELDS_SPEC, SPECS, FieldMap, extract, field_rows
from contact_register.sync.raw_store import EntityResult, RawStore, SyncResult, SyncState, TableSpec
from connectors.pipedrive import ENTITIES, FIELD_ENDPOINTS, SYSTEM, Page, PipedriveClient, parse_time
from contact_register.sync.limits import SYSTEM_RUN_LIMITS

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
    # DuckDB's buffers would otherwise grow toward its default limit (80% of RAM): at 100k
    # persons that was ~570 MB peak RSS against ~430 MB with this limit (490 MB with 200MB), and no slower.
    store.con.execute(f"SET memory_limit = '{DUCKDB_MEMORY_LIMIT}'")
    try:
        _write_walks(client, store, walks, in_flight, max_delete_share, clock)
    finally:
        store.con.execute("RESET memory_limit")
    result.requests = client.http.stats.requests - requests_before
    result.retries = client.http.stats.retries - retries_before
    return result


def _write_walks(client, store: RawStore, walks: dict[str, _Walk], in_flight: int, max_delete_share: float, clock) -> None:
    # closing(): on an error here the readers are stopped at once, not when the generator is collected
    with closing(_fetch_concurrently(client, walks.values(), in_flight, clock)) as fetched:
        for batch in fetched:
            walk, kind, payload = batch[0]
            if kind == "page":
                # The pages waiting in the queue go in one transaction, with each entity's
                # cursor: a commit costs milliseconds, and a kill still lands on a whole batch.
                by_walk: dict[str, list] = {}
                for walk, _, prepared in batch:
                    by_walk.setdefault(walk.entity, []).append(prepared)
                with store.transaction():
                    for entity, prepared_pages in by_walk.items():
                        _apply_pages(store, walks[entity], prepared_pages)
            elif kind == "ids":
                walk.live_ids = payload
            else:
                _finish(store, walk, max_delete_share, clock)


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


QUEUE_PAGES_PER_READER = 4  # pages fetched ahead per reader: up to ~2 MB of records each
# A batch (one transaction, one INSERT per entity) is at most the queue's pages or BATCH_ROWS
# records: in DuckDB 100k rows take ~4 s a page at a time, ~2.5 s four pages at a time.
BATCH_ROWS = 4000
BATCH_WAIT_S = 0.02
DUCKDB_MEMORY_LIMIT = "150MB"


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


def _fetch_concurrently(client: PipedriveClient, walks, in_flight: int, clock) -> Iterator[list[tuple[_Walk, str, object]]]:
    """Yield, as the readers fetch them, batches of ``(walk, "page", _Prepared)`` (the pages
    that arrive without a pause, up to the queue's size or BATCH_ROWS records) or one ``(walk, "ids", list)`` or
    ``(walk, "end", None)``; an entity's pages come before its ids and its end. Each reader
    walks one entity at a time (its pages, then its id walk when due), so at most
    ``in_flight`` requests are in flight. The queue is bounded: a reader waits while the
    writer is behind, which bounds memory. A reader's error is raised here, and the other
    readers stop after their current request."""
    pages: queue.Queue = queue.Queue(maxsize=QUEUE_PAGES_PER_READER * in_flight)
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
                # Records are turned into rows here, so that this Python work overlaps the
                # writer's DuckDB statements (which run without the GIL).
                put((walk, "page", _prepare(walk, page, clock)))
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
        open_walks, held = len(walks), None
        while open_walks:
            item, held = held or pages.get(), None
            walk, kind, payload = item
            if kind == "error":
                raise payload  # type: ignore[misc]
            if kind != "page":
                open_walks -= kind == "end"
                yield [item]
                continue
            batch, records = [item], payload.raw_count  # type: ignore[attr-defined]
            while records < BATCH_ROWS and len(batch) < pages.maxsize:
                try:  # wait a moment for the next page: one statement for several pages is far cheaper
                    item = pages.get(timeout=BATCH_WAIT_S)
                except queue.Empty:
                    break
                if item[1] != "page":
                    held = item
                    break
                batch.append(item)
                records += item[2].raw_count
            yield batch
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)


@dataclass
class _Prepared:
    """One page turned into rows, deletions, issues and rejects, and the newest time on it."""

    rows: list[dict]
    deleted: list[int]
    issues: list[tuple[str, str]]
    rejects: list[tuple[str, object]]
    cursor: datetime | None
    raw_count: int
    now: datetime


def _prepare(walk: _Walk, page: Page, clock) -> _Prepared:
    entity = walk.entity
    now = clock()
    prepared = _Prepared([], [], [], [], None, page.raw_count, now)
    for record in page.records:
        if not isinstance(record, dict):
            prepared.rejects.append(("record is not an object", record))
            continue
        rid = record.get("id")
        if not isinstance(rid, int) or isinstance(rid, bool):
            prepared.rejects.append(("record has no integer id", record))
            continue
        # v2 records say is_deleted; v1 notes say active_flag (and are deleted for good at once)
        if (record.get("active_flag") is False) if entity == "notes" else (record.get("is_deleted") is True):
            prepared.deleted.append(rid)
            updated = parse_time(record.get("update_time"))
        else:
            row = extract(entity, record, walk.fields, now, prepared.issues)
            prepared.rows.append(row)
            updated = row["update_time"]  # parsed once: a sync parses hundreds of thousands
        if updated is not None and (prepared.cursor is None or updated > prepared.cursor):
            prepared.cursor = updated
    return prepared


def _apply_pages(store: RawStore, walk: _Walk, pages: list[_Prepared]) -> None:
    """Apply consecutive pages of one entity as one: in page order, a later copy of a record
    wins and a later deletion removes an earlier copy (and the other way round)."""
    state, res = walk.state, walk.res
    rows: dict[int, dict] = {}
    deleted: dict[int, None] = {}
    issues: list[tuple[str, str]] = []
    rejects: list[tuple[str, object]] = []
    cursor = None
    for page in pages:
        for row in page.rows:
            rows[row["id"]] = row
            deleted.pop(row["id"], None)
        for rid in page.deleted:
            rows.pop(rid, None)
            deleted[rid] = None
        issues += page.issues
        rejects += page.rejects
        if page.cursor is not None and (cursor is None or page.cursor > cursor):
            cursor = page.cursor
        if walk.full:
            walk.seen_ids.extend(r["id"] for r in page.rows)
        res.pages += 1
        res.received += page.raw_count
        res.upserted += len(page.rows)
        res.deleted += len(page.deleted)
        res.issues += len(page.issues)
        res.rejects += len(page.rejects)
    if cursor is not None and state.cursor is not None and cursor < state.cursor:
        cursor = None  # never move the cursor backwards
    store.apply_page(walk.spec, list(rows.values()), deleted_ids=list(deleted), issues=issues, rejects=rejects,
                     cursor=cursor, now=pages[-1].now)
    if cursor is not None:
        state.cursor = cursor


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
