"""Netvisor -> raw store (``RAW_DIR/netvisor.duckdb``), without Dagster.

Customers and their contact persons:
- ``customerlist.nv?changedsince=<cursor>`` names the customers changed since the last run
  (inclusive, second resolution); ``getcustomer.nv`` reads them in batches of 500 with their
  contact persons, which replace the stored ones of that customer (a contact person missing
  from its customer's answer is gone);
- the cursor is the list answer's own server time stamp (no clock skew) and is stored only
  after every batch is in, so a crash re-reads instead of skipping;
- deletions are invisible to ``changedsince``: on the first run and then every
  ``reconcile_every`` the whole customer list is read and every customer re-fetched (21 calls
  for 10k customers), which also catches contact-person changes Netvisor might not flag.

Invoices: ``salesinvoicelist.nv?lastmodifiedstart=<cursor>`` paged by ascending key (500 per
answer), each page's billing-contact fields from ``getsalesinvoice.nv?netvisorkeylist=``;
cursor = server time of the first page; a full id walk reconciles deletions at the same
interval. ``changed_at`` is when a record's content was first seen as it is now: a re-fetch
of an unchanged record keeps it, so the warehouse's last-activity dates stay meaningful.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Callable

from contact_register.sync.netvisor.extract import SPECS, contact_person_row, customer_row, invoice_row
from contact_register.sync.raw_store import EntityResult, SyncResult, RawStore, TableSpec
from connectors.netvisor import NetvisorClient

log = logging.getLogger("assets.netvisor")


def sync_netvisor(
    client: NetvisorClient,
    store: RawStore,
    *,
    reconcile_every: timedelta = timedelta(hours=20),
    max_delete_share: float = 0.5,
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
) -> SyncResult:
    for spec in SPECS.values():
        store.ensure(spec)
    result = SyncResult()
    before = (client.http.stats.requests, client.http.stats.retries)
    customers, persons = _sync_customers(client, store, reconcile_every, max_delete_share, clock)
    result.entities["customers"] = customers
    result.entities["contact_persons"] = persons
    result.entities["invoices"] = _sync_invoices(client, store, reconcile_every, max_delete_share, clock)
    result.requests = client.http.stats.requests - before[0]
    result.retries = client.http.stats.retries - before[1]
    for r in result.entities.values():
        r.rows = store.count(SPECS[r.entity])
        log.info("netvisor %s: %s sync, %d received, %d upserted, %d deleted, %d reconciled away, %d issues, %d rejects",
                 r.entity, r.mode, r.received, r.upserted, r.deleted, r.reconciled_deleted, r.issues, r.rejects)
    return result


def _mode(store: RawStore, entity: str, reconcile_every: timedelta, now: datetime) -> str:
    state = store.state(entity)
    if state.cursor is None:
        return "full"
    if state.last_reconciled_at is None or now - state.last_reconciled_at >= reconcile_every:
        return "reconcile"
    return "incremental"


def _keep_unchanged(store: RawStore, spec: TableSpec, rows: list[dict]) -> None:
    """A re-fetched record whose content is unchanged keeps its first-seen ``changed_at``."""
    if not rows:
        return
    stored = store.con.execute(
        f"SELECT id, record, changed_at FROM {spec.name} WHERE id IN (SELECT unnest(?::BIGINT[]))",
        [[r["id"] for r in rows]],
    ).fetchall()
    previous = {rid: (record, changed) for rid, record, changed in stored}
    for row in rows:
        old = previous.get(row["id"])
        if old is not None and old[0] == row["record"] and old[1] is not None:
            row["changed_at"] = old[1]


def _sync_customers(client, store, reconcile_every, max_delete_share, clock) -> tuple[EntityResult, EntityResult]:
    cspec, pspec = SPECS["customers"], SPECS["contact_persons"]
    started = clock()
    mode = _mode(store, "customers", reconcile_every, started)
    state = store.state("customers")
    cres, pres = EntityResult("customers", mode), EntityResult("contact_persons", mode)
    listing = client.customer_list(changed_since=None if mode != "incremental" else state.cursor)
    ids, rejects = [], []
    for item in listing.items:
        if isinstance(item.get("netvisor_key"), int):
            ids.append(item["netvisor_key"])
        else:
            rejects.append(("customer list item has no integer Netvisorkey", item))
    if rejects:
        store.apply_page(cspec, [], rejects=rejects, now=started)
        cres.rejects += len(rejects)
    seen_customers: list[int] = []
    seen_persons: list[int] = []
    for batch in client.get_customers(ids):
        now = clock()
        crows, prows, issues, pissues, crejects, prejects = [], [], [], [], [], []
        for customer in batch:
            cid = customer.get("netvisor_key")
            if not isinstance(cid, int):
                crejects.append(("customer has no integer NetvisorKey", {k: v for k, v in customer.items()
                                                                          if k != "contact_persons"}))
                continue
            crows.append(customer_row(customer, now, issues))
            for person in customer.get("contact_persons", []):
                if not isinstance(person.get("id"), int):
                    prejects.append(("contact person has no integer ContactPersonID", dict(person, customer_id=cid)))
                    continue
                prows.append(contact_person_row(cid, person, now, pissues))
        fetched = [r["id"] for r in crows]
        new_person_ids = {r["id"] for r in prows}
        gone = [r[0] for r in store.con.execute(
            f"SELECT id FROM {pspec.name} WHERE customer_id IN (SELECT unnest(?::BIGINT[]))", [fetched]
        ).fetchall() if r[0] not in new_person_ids] if fetched else []
        _keep_unchanged(store, cspec, crows)
        _keep_unchanged(store, pspec, prows)
        store.apply_page(cspec, crows, issues=issues, rejects=crejects, now=now)
        store.apply_page(pspec, prows, deleted_ids=gone, issues=pissues, rejects=prejects, now=now)
        seen_customers.extend(fetched)
        seen_persons.extend(new_person_ids)
        cres.received += len(batch)
        cres.upserted += len(crows)
        cres.issues += len(issues)
        cres.rejects += len(crejects)
        pres.received += len(prows) + len(prejects)
        pres.upserted += len(prows)
        pres.deleted += len(gone)
        pres.issues += len(pissues)
        pres.rejects += len(prejects)
    if mode != "incremental":
        # Every live customer was listed and re-fetched: anything else is gone at the source.
        cres.reconciled_deleted = store.reconcile(cspec, [seen_customers], now=started, max_delete_share=max_delete_share)
        pres.reconciled_deleted = store.reconcile(pspec, [seen_persons], now=started, max_delete_share=max_delete_share)
    cursor = listing.server_time
    if cursor is not None and state.cursor is not None and cursor < state.cursor:
        cursor = state.cursor  # never move the cursor backwards
    values = {"cursor": cursor, "last_success_at": clock()}
    if mode == "full":
        values["last_full_sync_at"] = started
    store.mark("customers", **values)
    store.mark("contact_persons", **values)
    return cres, pres


def _sync_invoices(client, store, reconcile_every, max_delete_share, clock) -> EntityResult:
    spec = SPECS["invoices"]
    started = clock()
    mode = _mode(store, "invoices", reconcile_every, started)
    state = store.state("invoices")
    res = EntityResult("invoices", mode)
    first_server_time = None
    seen: list[int] = []
    for page in client.invoice_pages(modified_since=None if mode != "incremental" else state.cursor):
        now = clock()
        if first_server_time is None:
            first_server_time = page.server_time
        items, rejects = [], []
        for item in page.items:
            (items if isinstance(item.get("netvisor_key"), int) else rejects).append(item)
        details = {d["netvisor_key"]: d for d in client.get_invoices(i["netvisor_key"] for i in items)} if items else {}
        issues: list = []
        rows = [invoice_row(i, details.get(i["netvisor_key"]), now, issues) for i in items]
        _keep_unchanged(store, spec, rows)
        store.apply_page(spec, rows, issues=issues,
                         rejects=[("invoice has no integer NetvisorKey", r) for r in rejects], now=now)
        seen.extend(r["id"] for r in rows)
        res.received += len(page.items)
        res.upserted += len(rows)
        res.issues += len(issues)
        res.rejects += len(rejects)
    if mode != "incremental":
        res.reconciled_deleted = store.reconcile(spec, [seen], now=started, max_delete_share=max_delete_share)
    cursor = first_server_time
    if cursor is not None and state.cursor is not None and cursor < state.cursor:
        cursor = state.cursor
    values = {"cursor": cursor, "last_success_at": clock()}
    if mode == "full":
        values["last_full_sync_at"] = started
    store.mark("invoices", **values)
    return res
