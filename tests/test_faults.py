"""The fault suite: every connector's full and incremental sync, with every fault kind, at 5% and
in bursts, lands exactly the source's records in the raw store: none lost, none duplicated.

In the spirit of Airbyte's connector acceptance tests: one parametrised module, one small
harness per connector that knows how to sync, how to change the source between syncs and what
the source holds (the sandbox's own data; for the real Request Tracker, a clean sync straight
from RT next to the faulted one through `sandbox.fault_proxy`).

Fault kinds (sandbox.base.ALL_KINDS + PAGE_KINDS): 429 with Retry-After, 5xx (JSON errors and
gateway HTML pages), slow answers that outlast the client's read timeout, dropped connections,
truncated bodies, malformed bodies, shifted pages (a page overlapping the previous one) and
duplicated records within a page. The kinds are injected in turn (`FaultPlan.set(cycle=True)`),
so the full syncs of each test meet every one of them. Where an API has no paging the "shift" fault changes
nothing: Netvisor's customerlist.nv and its idlist reads answer in one piece (the
invoice list is paged by key and takes both page faults); Google's Gmail batch answers are
not lists.

A SIGKILL in the middle of a sync and of a warehouse build lives in tests/test_kill.py.
"""

from __future__ import annotations

import time
from collections import Counter
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator

import duckdb
import pytest
import requests

from contact_register.sync.netvisor.sync import sync_netvisor
from contact_register.sync.raw_store import open_raw_store, raw_path
from connectors.request_tracker import RequestTrackerClient
from netvisor_support import netvisor_client, sandbox_snapshot, store_snapshot
from sandbox.base import ALL_KINDS, PAGE_KINDS, FaultPlan
from sandbox.fault_proxy import FaultProxy
from sandbox.server import Sandbox
from sandbox.world import World
from tests.conftest import FAST_RETRY, SMALL_WORLD, make_client
from tests.test_google_sync import assert_equal_to_sandbox, make_google_client, sync as google_sync
from tests.test_pipedrive_sync import assert_matches_sandbox, run_sync as pipedrive_sync
from tests.test_request_tracker import run_sync as rt_sync, snapshot as rt_snapshot

KINDS = ALL_KINDS + PAGE_KINDS
# (rate, burst): 5% of requests one at a time, and 3% of requests starting a run of four.
PATTERNS = {"5pct": (0.05, 1), "bursts": (0.03, 4)}
READ_TIMEOUT_S = 0.5
SLOW_S = 0.8  # a "slow" answer outlasts the client's read timeout: the client gives up and retries
RT_READ_TIMEOUT_S, RT_SLOW_S = 1, 1.3  # RT's client takes its timeout in whole seconds


class Harness:
    """One connector against its source: sync, change the source, check the store against it."""

    system: str
    client: Any

    def __init__(self, plan: FaultPlan):
        self.plan = plan  # the source's fault plan: counts the kinds injected since it was set
        self.injected: Counter = Counter()  # kinds injected by the plans set before, this test

    def sync(self, raw_dir: Path) -> Any: ...

    def change(self) -> None:
        """Additions, changes and deletions at the source between the full and the incremental sync."""

    def assert_exact(self, raw_dir: Path) -> None: ...

    def incremental_kwargs(self) -> dict:
        return {}

    @contextmanager
    def closing(self) -> Iterator[Harness]:
        try:
            yield self
        finally:
            close = getattr(self.client, "close", None)
            if close is not None:
                close()


class PipedriveHarness(Harness):
    system = "pipedrive"

    def __init__(self, sb: Sandbox):
        super().__init__(sb.pipedrive.faults)
        self.sb, self.pd = sb, sb.pipedrive
        self.pd.slow_seconds = SLOW_S
        self.client = make_client(sb, page_limit=20, timeout=(2.0, READ_TIMEOUT_S))

    def sync(self, raw_dir):
        return pipedrive_sync(self.sb, raw_dir, client=self.client)

    def change(self):
        writer = make_client(self.sb)
        try:
            persons = sorted(self.pd.live_ids("persons"))
            for rid in persons[:30]:
                writer.update("persons", rid, {"job_title": "Toimitusjohtaja"})
            writer.delete("deals", sorted(self.pd.live_ids("deals"))[0])
            writer.create("persons", {"name": "Uusi Henkilö", "emails": [{"value": "uusi.henkilo@example.fi"}]})
        finally:
            writer.close()

    def assert_exact(self, raw_dir):
        assert_matches_sandbox(self.sb, raw_dir)


class NetvisorHarness(Harness):
    system = "netvisor"

    def __init__(self, sb: Sandbox, lock_dir: Path):
        super().__init__(sb.netvisor.faults)
        self.nv = sb.netvisor
        self.nv.slow_seconds = SLOW_S
        self.client = netvisor_client(sb, lock_dir, timeout=(2.0, READ_TIMEOUT_S))

    def sync(self, raw_dir, **kw):
        with open_raw_store(raw_dir, "netvisor") as store:
            return sync_netvisor(self.client, store, **kw)

    def change(self):
        nv = self.nv
        company = next(c for c, rec in nv.customers.items() if not rec["is_private"] and nv._persons_of(c))
        nv.touch_customer(company, contact_person="Talous / Laskutus")
        person = nv.add_contact_person(company, "Jääskeläinen", "Åke", email="ake@example.fi")
        nv.add_invoice(company, "2026-11-02", person)
        deletable = next(c for c in nv.customers if not any(i["customer_id"] == c for i in nv.invoices.values()))
        nv.delete_customer_directly(deletable)

    def incremental_kwargs(self):
        # Deleted customers are found by the periodic full re-read: let it run, under faults too.
        return {"reconcile_every": timedelta(0)}

    def assert_exact(self, raw_dir):
        con = duckdb.connect(str(raw_path(raw_dir, "netvisor")), read_only=True)
        try:
            assert store_snapshot(con) == sandbox_snapshot(self.nv)
        finally:
            con.close()
        assert self.nv.repeated_transactions == 0  # every retry was signed afresh
        # One call at a time per customer: only a call the client gave up on (read timeout)
        # may still be running on the server when its retry arrives.
        assert self.nv.violations <= self.injected["slow"] + self.plan.drawn["slow"]


class GoogleHarness(Harness):
    system = "google"

    def __init__(self, sb: Sandbox):
        super().__init__(sb.google.faults)
        self.sb, self.g = sb, sb.google
        self.g.slow_seconds = SLOW_S
        self.client = make_google_client(sb, timeout_s=READ_TIMEOUT_S, page_size=20)

    def sync(self, raw_dir):
        return google_sync(self.sb, raw_dir, self.client)

    def change(self):
        g = self.g
        alice, bob = g.user_emails()[:2]
        g.add_message(alice, [("From", "Uusi Henkilö <uusi.henkilo@esimerkki.fi>"), ("To", alice),
                              ("Subject", "Hei"), ("Date", "Tue, 3 Nov 2026 10:00:00 +0200")])
        old = sorted(g.mail[alice]["messages"])[:2]
        g.delete_message(alice, old[0])
        g.relabel(alice, old[1], add=("STARRED",))
        g.cancel_event(bob, next(iter(g.cal[bob]["events"])))
        g.remove_file(g.live_files(alice)[0]["id"])
        g.delete_contact(bob, next(iter(g.people[bob]["connections"])))
        g.put_contact(bob, {"resourceName": "people/cnew1", "names": [{"displayName": "Uusi Kontakti"}],
                            "emailAddresses": [{"value": "uusi.kontakti@esimerkki.fi"}]})

    def assert_exact(self, raw_dir):
        assert_equal_to_sandbox(self.g, raw_dir)


class RequestTrackerHarness(Harness):
    """The real RT behind a fault proxy; the truth is a clean sync straight from RT."""

    system = "request_tracker"

    def __init__(self, rt, proxy: FaultProxy, clean_dir: Path):
        super().__init__(proxy.imitation.faults)
        self.rt, self.proxy, self.clean_dir = rt, proxy, clean_dir
        proxy.imitation.slow_seconds = RT_SLOW_S
        self.client = self._client(proxy.url, timeout_s=RT_READ_TIMEOUT_S)
        self._truth: dict | None = None  # RT's content as a clean sync stores it; None after a change

    def _client(self, url: str, **kw) -> RequestTrackerClient:
        return RequestTrackerClient(url, user=self.rt.user, password=self.rt.password, page_size=10,
                                    retry=FAST_RETRY, **kw)

    def sync(self, raw_dir):
        return rt_sync(self.client, raw_dir)

    def change(self):
        time.sleep(1.1)  # RT's clock has one-second resolution; the cursor is inclusive
        ticket = max(i for page in self.client.iter_ids("tickets") for i in page)
        r = requests.post(f"{self.rt.url}/REST/2.0/ticket/{ticket}/comment", auth=self.rt.auth(),
                          headers=self.rt.headers(), json={"Content": "Sisäinen huomautus", "ContentType": "text/plain"},
                          timeout=30)
        assert r.status_code in (200, 201), r.status_code
        self._truth = None

    def assert_exact(self, raw_dir):
        if self._truth is None:
            clean = self._client(self.rt.url)
            try:
                rt_sync(clean, self.clean_dir)
            finally:
                clean.close()
            self._truth = rt_snapshot(self.clean_dir)
        assert rt_snapshot(raw_dir) == self._truth


@contextmanager
def harness_for(system: str, tmp_path: Path, request) -> Iterator[Harness]:
    if system == "request_tracker":
        rt = request.getfixturevalue("request_tracker")
        with FaultProxy(rt.url) as proxy, RequestTrackerHarness(rt, proxy, tmp_path / "clean").closing() as h:
            yield h
        return
    if system == "netvisor":
        # Netvisor pages by 500: enough invoices for a second list page (where "shift" bites).
        world = World.generate(seed=11, persons=500, organizations=100)
    else:
        world = World.generate(**SMALL_WORLD)
    with Sandbox(world, systems=(system,)) as sb:
        h = {"pipedrive": lambda: PipedriveHarness(sb), "google": lambda: GoogleHarness(sb),
             "netvisor": lambda: NetvisorHarness(sb, tmp_path)}[system]()
        with h.closing():
            yield h


@contextmanager
def faults(h: Harness, rate: float, burst: int, seed: int) -> Iterator[Counter]:
    """Faults on for the block; yields the kinds injected (filled in when the block ends)."""
    drawn: Counter = Counter()
    h.plan.set(rate, KINDS, seed=seed, burst=burst, cycle=True)
    try:
        yield drawn
    finally:
        drawn.update(h.plan.drawn)
        h.injected.update(h.plan.drawn)
        h.plan.clear()


def assert_no_duplicate_ids(raw_dir: Path, system: str) -> None:
    con = duckdb.connect(str(raw_path(raw_dir, system)), read_only=True)
    try:
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.columns WHERE column_name = 'id' "
            "AND table_schema = 'main' AND table_name NOT LIKE '\\_%' ESCAPE '\\'").fetchall()]
        assert tables
        for table in tables:
            n, distinct = con.execute(f'SELECT count(*), count(DISTINCT id) FROM "{table}"').fetchone()
            assert n == distinct, f"{system}.{table}: {n - distinct} duplicated rows"
    finally:
        con.close()


SEEDS = {"pipedrive": 11, "netvisor": 3, "google": 11, "request_tracker": 5}
# Netvisor answers in pages of 500: a small world needs several syncs to meet every kind.
MAX_FULL_SYNCS = 60
MAX_INCREMENTAL_SYNCS = 10


@pytest.mark.timeout(240)
@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("system", ["pipedrive", "netvisor", "google", "request_tracker"])
def test_faults_lose_and_duplicate_nothing(system, pattern, tmp_path, request):
    rate, burst = PATTERNS[pattern]
    with harness_for(system, tmp_path, request) as h:
        seed = SEEDS[system]
        # Full syncs, each into a fresh store, until every fault kind (they come in turn) was met.
        with faults(h, rate, burst, seed) as drawn:
            for n in range(MAX_FULL_SYNCS):
                raw = tmp_path / f"raw{n}"
                before = h.plan.drawn.copy()
                full = h.sync(raw)
                failed = (h.plan.drawn - before).keys() - set(PAGE_KINDS)  # page faults answer 200
                assert full.retries > 0 or not failed, f"{sorted(failed)} injected but nothing retried"
                h.assert_exact(raw)
                assert_no_duplicate_ids(raw, system)
                if h.plan.drawn.keys() >= set(KINDS):
                    break
        missing = set(KINDS) - set(drawn)
        assert not missing, f"{system}/{pattern}: kinds never injected {sorted(missing)} in {n + 1} full syncs"

        # Then changes at the source and incremental syncs under faults on the last store, until
        # one of them met a fault (an idle incremental sync makes only a few requests).
        for n in range(MAX_INCREMENTAL_SYNCS):
            h.change()
            with faults(h, rate, burst, seed + 1 + n) as drawn:
                h.sync(raw, **h.incremental_kwargs())
            h.assert_exact(raw)
            assert_no_duplicate_ids(raw, system)
            if drawn:
                break
        assert drawn, f"{system}/{pattern}: no fault in {n + 1} incremental syncs"
