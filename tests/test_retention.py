"""The retention review on a crafted world: every record of the Pipedrive and Netvisor sandboxes
made recent, then a handful of planted people aged so that exactly a known set is stale; the
review opens an erasure case for exactly those, skips the one under a bookkeeping hold and the
one with an open case, a second review opens nothing new, and an approved review case runs
through the normal erasure flow."""

import os
import time
import uuid
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from dagster import DagsterInstance

from contact_register.sync.netvisor.sync import sync_netvisor
from contact_register.sync.raw_store import open_raw_store
from contact_register.warehouse.build import build_warehouse
from netvisor_support import netvisor_client
from pipelines.definitions import defs
from contact_register.requests.erasure.flow import run_erasure
from contact_register.requests.erasure.pipedrive import PipedriveEraser
from contact_register.requests.cases import open_register, validate_identifiers
from contact_register.requests.cases.casebook import add_months
from contact_register.description import DescriptionError
from contact_register.requests.retention.rules import review_rules
from contact_register.requests.suppression.store import SuppressionList
from contact_register.requests.writeback.base import Clients, Outcome
from sandbox.pipedrive_build import v1time, v2time
from tests.conftest import make_client
from tests.test_pipedrive_sync import run_sync

PD_ENTITIES = ("persons", "organizations", "deals", "activities", "notes")


@pytest.fixture
def review_env(sandbox, netvisor_sandbox, tmp_path, monkeypatch):
    monkeypatch.setenv("RAW_DIR", str(tmp_path / "raw"))
    monkeypatch.setenv("WAREHOUSE_PATH", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("REGISTER_URL", str(tmp_path / "register.sqlite"))
    monkeypatch.setenv("REGISTER_HMAC_KEY", "test-key-" + "t" * 32)
    monkeypatch.setenv("SUPPRESSION_KEY_FILE", str(tmp_path / "suppression.key"))  # the erasure lists its subject
    return tmp_path


def months_ago(months: int) -> int:
    today = date.today()
    day = add_months(today, -months)
    return int(datetime(day.year, day.month, day.day, 12, tzinfo=timezone.utc).timestamp())


def set_time(sandbox, entity: str, rid: int, ts: int) -> None:
    pd = sandbox.pipedrive
    with pd._lock:
        rec = pd._data[entity][rid]
        rec["update_time"] = v2time(ts) if "T" in str(rec.get("update_time") or "T") else v1time(ts)
        pd._changed(entity)


def make_world_recent(sandbox, netvisor_sandbox) -> None:
    """Every record changed five days ago: nobody of the generated world is stale."""
    recent = int(time.time()) - 5 * 86400
    for entity in PD_ENTITIES:
        for rid in list(sandbox.pipedrive._data[entity]):
            set_time(sandbox, entity, rid, recent)
    nv = netvisor_sandbox.netvisor
    with nv._lock:
        for rec in list(nv.customers.values()) + list(nv.contact_persons.values()):
            rec["changed_at"] = recent
        for inv in nv.invoices.values():  # a billing contact's activity is their invoices
            inv["date"] = date.fromtimestamp(recent).isoformat()


def plant_person(client, tag: str, label: str) -> tuple[int, str]:
    email = f"{label}.{tag}@esimerkki.fi"
    person = client.create("persons", {"name": f"Testi {label.capitalize()}{tag}",
                                       "emails": [{"value": email, "primary": True}]})
    return person["id"], email


def test_review_finds_exactly_the_stale_contacts_and_does_not_duplicate(review_env, sandbox, netvisor_sandbox):
    assert review_rules() == {"prospect_inactive": 24, "former_customer": 12}
    make_world_recent(sandbox, netvisor_sandbox)
    tag = uuid.uuid4().hex[:6]
    client = make_client(sandbox)
    # A prospect silent for 30 months (stale), one for 20 months (not yet), a former customer
    # whose won deal closed 14 months ago (stale), and a stale prospect with an open case.
    stale_prospect, stale_prospect_email = plant_person(client, tag, "vanha")
    young_prospect, _ = plant_person(client, tag, "tuore")
    former, former_email = plant_person(client, tag, "entinen")
    deal = client.create("deals", {"title": "Vanha kauppa", "person_id": former, "status": "won"})
    busy, busy_email = plant_person(client, tag, "avoin")
    client.close()
    for pid, age in ((stale_prospect, 30), (young_prospect, 20), (former, 14), (busy, 30)):
        set_time(sandbox, "persons", pid, months_ago(age))
    set_time(sandbox, "deals", deal["id"], months_ago(14))
    # A billing contact invoiced 14 months ago: stale as a former customer, but the invoice is a
    # voucher kept until the end of the 6th year (Kirjanpitolaki 2:10 §): skipped.
    nv = netvisor_sandbox.netvisor
    cid = next(c for c, rec in nv.customers.items() if not rec["is_private"])
    held_email = f"laskutettu.{tag}@esimerkki.fi"
    held = nv.add_contact_person(cid, "Testi", f"Laskutettu{tag}", email=held_email)
    invoiced = add_months(date.today(), -14)
    nv.add_invoice(cid, invoiced.isoformat(), held)

    raw = Path(os.environ["RAW_DIR"])
    run_sync(sandbox, raw)
    nv_client = netvisor_client(netvisor_sandbox, raw)
    try:
        with open_raw_store(raw, "netvisor") as store:
            sync_netvisor(nv_client, store)
    finally:
        nv_client.close()
    with open_register() as reg:
        open_case = reg.new_case("access", validate_identifiers([busy_email]), actor="tietosuojavastaava").case_id
        build_warehouse(raw, os.environ["WAREHOUSE_PATH"], suppression=SuppressionList(reg))

    def review():
        with DagsterInstance.ephemeral() as instance:
            result = defs.resolve_job_def("retention_review").execute_in_process(instance=instance)
            logs = "\n".join(str(e) for e in instance.all_logs(result.run_id))
        return result.output_for_node("review_retention"), logs

    began = time.monotonic()
    out, logs = review()
    took = time.monotonic() - began
    assert out["stale"] == {"prospect_inactive": 2, "former_customer": 2}
    assert out["skipped"] == {"legal_hold": 1, "open_case": 1}
    with open_register() as reg:
        cases = [reg.get(c, with_audit=True) for c in out["cases"]]
        assert {c.case_id for c in reg.list_cases(kind="erasure")} == set(out["cases"])
    assert sorted(v for c in cases for k, v, _ in c.identifiers if k == "email") == sorted(
        [stale_prospect_email, former_email])
    for case in cases:
        assert case.kind == "erasure" and case.verified and case.approvals == []  # awaits approval
        assert case.systems and {st.state for st in case.systems.values()} == {"pending"}
        created = next(a for a in case.audit if a["action"] == "case_created")
        assert created["detail"]["note"].startswith("retention review: rule ")
    rules = {next(a for a in c.audit if a["action"] == "retention_review")["detail"]["rule"] for c in cases}
    assert rules == {"prospect_inactive", "former_customer"}
    for secret in (stale_prospect_email, former_email, held_email, busy_email):
        assert secret not in logs
    assert open_case not in out["cases"]

    # A second review: the open erasure cases are skipped, nothing is duplicated.
    out2, _ = review()
    assert out2["cases"] == []
    assert out2["skipped"] == {"legal_hold": 1, "open_case": 3}

    # Approved, a review case runs through the normal erasure flow: the stale prospect goes.
    prospect_case = next(c.case_id for c in cases if any(v == stale_prospect_email for _k, v, _n in c.identifiers))
    with open_register() as reg:
        reg.approve(prospect_case, action="erasure", actor="toimitusjohtaja")
        result = run_erasure(reg, prospect_case, clients=Clients({"pipedrive": lambda: make_client(sandbox)}),
                             erasers={"pipedrive": PipedriveEraser()}, actor="test",
                             warehouse_path=Path(os.environ["WAREHOUSE_PATH"]),
                             own_stores=lambda _s: Outcome("own_stores", "done", detail="not part of this test"))
    assert result.systems["pipedrive"].state == "done"
    assert sandbox.pipedrive.get("persons", stale_prospect)["is_deleted"] is True
    print(f"retention review: {took:.1f} s")


def test_review_is_scheduled_monthly():
    """The next fire times of Dagster's scheduler for the schedule, written out by hand: 06:00
    Helsinki time on the 1st of each month is 03:00 UTC in summer (EEST, +3) and 04:00 UTC in
    winter (EET, +2; summer time ended on 25 October 2026)."""
    from itertools import islice

    from dagster._utils.schedules import schedule_execution_time_iterator

    schedule = defs.resolve_schedule_def("retention_review_schedule")
    after = datetime(2026, 9, 15, 12, 0, tzinfo=timezone.utc)
    times = schedule_execution_time_iterator(after.timestamp(), schedule.cron_schedule, schedule.execution_timezone)
    assert [t.astimezone(timezone.utc) for t in islice(times, 3)] == [
        datetime(2026, 10, 1, 3, 0, tzinfo=timezone.utc),
        datetime(2026, 11, 1, 4, 0, tzinfo=timezone.utc),
        datetime(2026, 12, 1, 4, 0, tzinfo=timezone.utc),
    ]
    assert schedule.job_name == "retention_review"


@pytest.mark.parametrize("rules, message", [
    ({"prospect_inactve": {"months": 24}}, "unknown"),
    ({"former_customer": {"months": "12"}}, "whole number"),
    ({}, "no retention review_rules"),
])
def test_a_bad_rule_fails_loudly(rules, message):
    with pytest.raises(DescriptionError, match=message):
        review_rules({"retention": [{"id": "general", "review_rules": rules}]})


def test_financial_year_periods_are_checked_before_the_review_starts(tmp_path, monkeypatch):
    """The job takes the same financial-year periods as the Netvisor resource; a malformed or
    over-long (more than 18 months) period stops the run before anything is read or opened."""
    from dagster import DagsterInstance

    from pipelines.definitions import defs

    monkeypatch.setenv("REGISTER_URL", str(tmp_path / "register.sqlite"))
    monkeypatch.setenv("WAREHOUSE_PATH", str(tmp_path / "no-warehouse.duckdb"))
    job = defs.resolve_job_def("retention_review")
    for periods, expected in ((["2024-01-01/2026-01-31"], "18"), (["2024-01-01"], "YYYY-MM-DD/YYYY-MM-DD"),
                              (["2024-01-01/2025-06-30"], "no warehouse")):
        result = job.execute_in_process(
            run_config={"ops": {"review_retention": {"config": {"dry_run": True, "financial_year_start": "07-01",
                                                                 "financial_year_periods": periods}}}},
            instance=DagsterInstance.ephemeral(), raise_on_error=False)
        assert not result.success
        message = result.failure_data_for_node("review_retention").user_failure_data.description
        assert expected in message, (periods, message)
