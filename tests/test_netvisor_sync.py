"""Netvisor -> raw store over real HTTP: full, incremental and reconciling syncs are exact, and
the records reach the warehouse's person_records. Faults: tests/test_faults.py."""

from datetime import timedelta

import duckdb
import pytest

from contact_register.sync.netvisor.sync import sync_netvisor
from contact_register.sync.raw_store import open_raw_store, raw_path
from contact_register.warehouse.build import build_warehouse
from netvisor_support import netvisor_client, sandbox_snapshot, store_snapshot


def _sync(client, raw_dir, **kw):
    with open_raw_store(raw_dir, "netvisor") as store:
        return sync_netvisor(client, store, **kw)


def _stored(raw_dir) -> dict:
    con = duckdb.connect(str(raw_path(raw_dir, "netvisor")), read_only=True)
    try:
        return store_snapshot(con)
    finally:
        con.close()


def test_full_sync_equals_the_sandbox_and_a_second_run_asks_only_for_changes(netvisor_sandbox, tmp_path):
    nv = netvisor_sandbox.netvisor
    client = netvisor_client(netvisor_sandbox, tmp_path)
    raw = tmp_path / "raw"
    result = _sync(client, raw)
    assert {e: r.mode for e, r in result.entities.items()} == {"customers": "full", "contact_persons": "full",
                                                               "invoices": "full"}
    assert _stored(raw) == sandbox_snapshot(nv)
    assert result.entities["invoices"].rows == len(nv.invoices) > 0
    assert all(r.rejects == 0 for r in result.entities.values())
    routes = nv.requests_by_route()
    pages = len(nv.invoices) // 500 + 1  # the last page is the first one shorter than 500
    assert routes["GET /salesinvoicelist.nv"] == pages
    assert routes["GET /getsalesinvoice.nv"] == -(-len(nv.invoices) // 500)
    assert routes["GET /getcustomer.nv"] == -(-len(nv.customers) // 500)
    nv.reset_stats()
    idle = _sync(client, raw)
    assert idle.entities["customers"].mode == "incremental"
    assert idle.entities["customers"].received == 0 and idle.entities["invoices"].received == 0
    assert nv.requests_by_route() == {"GET /customerlist.nv": 1, "GET /salesinvoicelist.nv": 1}
    assert _stored(raw) == sandbox_snapshot(nv)
    client.close()


def test_incremental_sync_picks_up_exactly_the_changes(netvisor_sandbox, tmp_path):
    nv = netvisor_sandbox.netvisor
    client = netvisor_client(netvisor_sandbox, tmp_path)
    raw = tmp_path / "raw"
    _sync(client, raw)
    company = next(c for c, rec in nv.customers.items() if not rec["is_private"] and nv._persons_of(c))
    person = nv._persons_of(company)[0]["id"]
    other = next(c for c in nv.customers if c != company and nv._persons_of(c))
    gone = nv._persons_of(other)[-1]["id"]
    client.edit_contact_person(company, person, email="uusi.osoite@example.fi", phone="")
    nv.touch_customer(other, contact_person="Talous / Laskutus")
    client.delete_contact_person(other, gone, check_holds=False)
    new_person = nv.add_contact_person(company, "Jääskeläinen", "Åke", email="ake@example.fi")
    new_invoice = nv.add_invoice(company, "2026-11-02", new_person)
    nv.reset_stats()
    result = _sync(client, raw, reconcile_every=timedelta(days=1))
    assert result.entities["customers"].mode == "incremental"
    assert result.entities["customers"].received == 2  # exactly the two changed customers
    assert result.entities["contact_persons"].deleted == 1
    assert result.entities["invoices"].received == 1
    stored = _stored(raw)
    assert stored == sandbox_snapshot(nv)
    assert stored["contact_persons"][person][3] == "uusi.osoite@example.fi"
    assert gone not in stored["contact_persons"] and new_person in stored["contact_persons"]
    assert stored["invoices"][new_invoice][3] == new_person
    # A customer deleted in Netvisor is invisible to changedsince; the periodic full re-read finds it.
    deletable = next(c for c in nv.customers if not any(i["customer_id"] == c for i in nv.invoices.values()))
    nv.delete_customer_directly(deletable)
    _sync(client, raw, reconcile_every=timedelta(days=1))
    assert deletable in _stored(raw)["customers"]
    result = _sync(client, raw, reconcile_every=timedelta(0))
    assert result.entities["customers"].mode == "reconcile"
    assert result.entities["customers"].reconciled_deleted == 1
    assert _stored(raw) == sandbox_snapshot(nv)
    client.close()


def test_state_survives_a_restart_with_a_new_client(netvisor_sandbox, tmp_path):
    nv = netvisor_sandbox.netvisor
    raw = tmp_path / "raw"
    first = netvisor_client(netvisor_sandbox, tmp_path)
    _sync(first, raw)
    first.close()
    nv.add_contact_person(next(iter(nv.customers)), "Säde", "Ylönen")
    second = netvisor_client(netvisor_sandbox, tmp_path)
    result = _sync(second, raw, reconcile_every=timedelta(days=1))
    second.close()
    assert result.entities["customers"].received == 1
    assert _stored(raw) == sandbox_snapshot(nv)


def test_netvisor_records_reach_person_records(netvisor_sandbox, tmp_path):
    nv = netvisor_sandbox.netvisor
    client = netvisor_client(netvisor_sandbox, tmp_path)
    raw = tmp_path / "raw"
    _sync(client, raw)
    client.close()
    result = build_warehouse(raw, tmp_path / "wh.duckdb")
    con = duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True)
    kinds = dict(con.execute(
        "SELECT record_kind, count(*) FROM person_records WHERE system = 'netvisor' GROUP BY 1").fetchall())
    assert kinds["contact_person"] == len(nv.contact_persons)
    assert kinds["invoice"] == sum(1 for i in nv.invoices.values() if i["contact_person_id"]) + sum(
        1 for i in nv.invoices.values() if nv.customers[i["customer_id"]]["is_private"])
    private = sum(1 for c in nv.customers.values() if c["is_private"])
    assert kinds["customer"] >= private > 0
    # Business ids arrive in three spellings; staging keeps the Y-tunnus form only.
    ids = [r[0] for r in con.execute(
        "SELECT DISTINCT business_id FROM staging.netvisor_persons WHERE business_id IS NOT NULL").fetchall()]
    assert ids and all(len(b) == 9 and b[7] == "-" for b in ids)
    spelled = {c["business_id"] for c in nv.customers.values() if c["business_id"].startswith("FI")}
    assert {f"{s[2:9]}-{s[9]}" for s in spelled} <= set(ids)
    assert con.execute("SELECT count(*) FROM staging.netvisor_persons WHERE marketing_status IS NOT NULL").fetchone()[0] == 0
    assert result.tables["persons"] > 0
    con.close()


@pytest.mark.parametrize("payload", ["'; DROP TABLE customers; --", "x" * 100_000, "Ä\u0301 ｆｕｌｌ 😀"])
def test_odd_values_are_stored_verbatim(netvisor_sandbox, tmp_path, payload):
    nv = netvisor_sandbox.netvisor
    cid = next(iter(nv.customers))
    pid = nv.add_contact_person(cid, payload, "Virtanen", email="not an email")
    client = netvisor_client(netvisor_sandbox, tmp_path)
    raw = tmp_path / "raw"
    _sync(client, raw)
    client.close()
    stored = _stored(raw)
    assert stored["contact_persons"][pid][1] == payload
    assert stored == sandbox_snapshot(nv)
    con = duckdb.connect(str(raw_path(raw, "netvisor")), read_only=True)
    problems = con.execute("SELECT problem FROM _issues WHERE record_id = ?", [str(pid)]).fetchall()
    con.close()
    assert ("email is not an e-mail address",) in problems


def test_raw_netvisor_asset_materializes_and_keeps_personal_data_out_of_events(netvisor_sandbox, tmp_path, monkeypatch):
    from dagster import DagsterInstance, materialize

    from assets.resources import NetvisorResource
    from assets.netvisor.assets import raw_netvisor
    from pipelines.resources import RESOURCES

    nv = netvisor_sandbox.netvisor
    env = netvisor_sandbox.env()
    monkeypatch.setenv("RAW_DIR", str(tmp_path / "raw"))
    resource = NetvisorResource(
        base_url=env["NETVISOR_BASE_URL"], sender=env["NETVISOR_SENDER"], customer_id=env["NETVISOR_CUSTOMER_ID"],
        partner_id=env["NETVISOR_PARTNER_ID"], customer_key=env["NETVISOR_CUSTOMER_KEY"],
        partner_key=env["NETVISOR_PARTNER_KEY"], organisation_id=env["NETVISOR_ORGANISATION_ID"],
        optional_env=RESOURCES["netvisor"].optional_env,  # the lock file under RAW_DIR
    )
    instance = DagsterInstance.ephemeral()
    result = materialize([raw_netvisor], resources={"netvisor": resource, "storage": RESOURCES["storage"]},
                         instance=instance)
    assert result.success
    mats = {tuple(e.asset_key.path): e.event_specific_data.materialization.metadata
            for e in result.get_asset_materialization_events()}
    assert mats[("raw_netvisor", "contact_persons")]["rows"].value == len(nv.contact_persons)
    assert mats[("raw_netvisor", "invoices")]["rows"].value == len(nv.invoices)
    assert (tmp_path / "raw" / "netvisor.duckdb").exists()
    assert list((tmp_path / "raw").glob("netvisor-*.lock"))  # the per-customer lock lives beside the store
    logs = "\n".join(str(e) for e in instance.all_logs(result.run_id))
    personal = {p["email"].strip() for p in nv.contact_persons.values() if len(p["email"].strip()) > 5}
    personal |= {f"{p['first_name']} {p['last_name']}" for p in nv.contact_persons.values() if p["last_name"]}
    assert personal and not [s for s in personal if s in logs]


def test_invoice_rows_keep_only_what_the_hold_and_the_warehouse_need(netvisor_sandbox, tmp_path):
    nv = netvisor_sandbox.netvisor
    cid = next(c for c, rec in nv.customers.items() if not rec["is_private"])
    pid = nv.add_contact_person(cid, "Vilja", "Heikkilä", email="vilja.heikkila@example.fi", phone="040 765 4321")
    key = nv.add_invoice(cid, "2025-03-14", pid, your_reference="Vilja Heikkilä")
    client = netvisor_client(netvisor_sandbox, tmp_path)
    raw = tmp_path / "raw"
    _sync(client, raw)
    client.close()
    con = duckdb.connect(str(raw_path(raw, "netvisor")), read_only=True)
    columns = [r[0] for r in con.execute("SELECT column_name FROM information_schema.columns "
                                         "WHERE table_name = 'invoices' ORDER BY ordinal_position").fetchall()]
    row = con.execute("SELECT * FROM invoices WHERE id = ?", [key]).fetchone()
    con.close()
    # Invoice key, number and date, the customer and contact-person keys (the hold's basis and
    # the warehouse's links), and the bookkeeping columns: no names, e-mails or phones.
    assert columns == ["id", "invoice_number", "invoice_date", "customer_id", "contact_person_id", "record",
                       "changed_at", "synced_at"]
    text = repr(row)
    assert row[0] == key and row[2] == "2025-03-14" and row[3] == cid and row[4] == pid
    for personal in ("Vilja", "Heikkilä", "vilja.heikkila", "765 4321", nv.customers[cid]["name"]):
        assert personal not in text
