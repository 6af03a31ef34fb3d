"""Rectification and restriction on the sandboxes (over HTTP) and the real Request Tracker:
corrected values read back from each system's own state, a second run writes nothing, the
corrections never reach Dagster's event log; a restriction sets and lifts the Pipedrive label
and the person drops out of the analysts' view."""

import io
import json
import os
import uuid
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterInstance

from contact_register.warehouse.build import build_warehouse
from contact_register.cli.request import main as cli
from pipelines.definitions import defs
from contact_register.requests.rectification.corrections import load_corrections
from contact_register.requests.cases import open_register, validate_identifiers
from contact_register.requests.suppression.store import SuppressionList
from tests.conftest import make_client
from tests.test_erasure import plant, rt_session
from tests.test_pipedrive_sync import run_sync

NEW_PHONE = "+358 50 765 4321"
NEW_PHONE_E164 = "+358507654321"


@pytest.fixture
def rect_env(pipedrive_env, tmp_path, monkeypatch):
    monkeypatch.setenv("REGISTER_HMAC_KEY", "test-key-" + "r" * 32)
    monkeypatch.setenv("REGISTER_ACTOR", "tietosuojavastaava")
    monkeypatch.setenv("SUPPRESSION_KEY_FILE", str(tmp_path / "suppression.key"))
    return tmp_path


def run(job, op, config):
    with DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def(job).execute_in_process(
            run_config={"ops": {op: {"config": config}}}, instance=instance, raise_on_error=False)
        logs = "\n".join(str(e) for e in instance.all_logs(result.run_id))
        failure = next((e.dagster_event.event_specific_data.error.message for e in instance.all_logs(result.run_id)
                        if e.dagster_event and e.dagster_event.is_step_failure), None)
    return result.success, failure, logs


def pd_writes(sandbox) -> int:
    return sum(n for route, n in sandbox.pipedrive.requests_by_route().items() if not route.upper().startswith("GET"))


def rectification_case(p, new_email, capsys, monkeypatch) -> str:
    """Opened through the CLI as an officer would: identifiers and corrections as JSON on stdin."""
    given = {"emails": [p.email], "phones": [p.phone], "name": p.name,
             "corrections": {"email": new_email, "phone": NEW_PHONE}}
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(given)))
    assert cli(["request", "new", "--kind", "rectification", "--stdin"]) == 0
    case_id = capsys.readouterr().out.strip()
    assert cli(["request", "verify", case_id, "--method", "signed letter"]) == 0
    return case_id


def test_rectify_email_and_phone_everywhere(rect_env, sandbox, google_sandbox, netvisor_sandbox, request_tracker,
                                            capsys, monkeypatch):
    p = plant(sandbox, google_sandbox, netvisor_sandbox, request_tracker)
    s = rt_session(request_tracker)
    api = f"{request_tracker.url}/REST/2.0"
    assert s.put(f"{api}/user/{p.rt_user}", json={"WorkPhone": p.phone}, timeout=60).status_code == 200
    new_email = f"eerika.oikaistu{uuid.uuid4().hex[:6]}@esimerkki.fi"
    case_id = rectification_case(p, new_email, capsys, monkeypatch)
    with open_register() as reg:
        assert load_corrections(reg, case_id) == {"email": new_email, "phone": NEW_PHONE_E164}
    assert cli(["request", "show", case_id]) == 0
    assert f"corrected email: {new_email}" in capsys.readouterr().out
    config = {"case_id": case_id}

    # A dry run and a run without approval record the plan and write nothing.
    writes = pd_writes(sandbox)
    ok, failure, logs = run("rectification", "rectify_subject", dict(config, dry_run=True))
    assert ok, failure
    ok, failure, logs = run("rectification", "rectify_subject", config)
    assert not ok and "--action rectification" in failure
    assert pd_writes(sandbox) == writes
    with open_register() as reg:
        audit = reg.audit_trail(case_id)
        assert {st.state for st in reg.get(case_id).systems.values()} == {"pending"}
    assert [a["action"] for a in audit if a["action"].startswith("rectification_")] == [
        "rectification_dry_run", "rectification_planned", "rectification_stopped"]
    planned = next(a for a in audit if a["action"] == "rectification_planned")["detail"]["systems"]
    assert [c[:2] for c in planned["pipedrive"]["changes"]] == [["person", str(p.pd["person"])]]
    assert set(planned["pipedrive"]["changes"][0][2]) == {"emails", "phones"}
    assert set(planned["request_tracker"]["changes"][0][2]) == {"EmailAddress", "Name", "WorkPhone"}

    assert cli(["request", "approve", case_id, "--action", "rectification"]) == 0
    ok, failure, logs = run("rectification", "rectify_subject", config)
    assert ok, failure
    # Read back from each system's own state.
    person = sandbox.pipedrive.get("persons", p.pd["person"])
    assert [e["value"] for e in person["emails"]] == [new_email] and person["emails"][0]["primary"]
    assert [ph["value"] for ph in person["phones"]] == [NEW_PHONE_E164]
    cp = netvisor_sandbox.netvisor.contact_persons[p.netvisor[1]]
    assert (cp["email"], cp["phone"]) == (new_email, NEW_PHONE_E164)
    user = s.get(f"{api}/user/{p.rt_user}", timeout=60).json()
    assert (user["EmailAddress"], user["Name"], user["WorkPhone"]) == (new_email, new_email, NEW_PHONE_E164)
    with open_register() as reg:
        case = reg.get(case_id)
    states = {sys_: st.state for sys_, st in case.systems.items()}
    assert {states[x] for x in ("pipedrive", "netvisor", "request_tracker")} == {"done"}
    assert states["matomo"] == "not_applicable" and states["trustmary"] == "manual_open"
    for secret in (p.email, new_email, p.phone, NEW_PHONE_E164, p.last):
        assert secret.lower() not in logs.lower()
        assert secret.lower() not in repr(case.audit).lower()

    # A second run finds every record corrected and writes nothing.
    writes = pd_writes(sandbox)
    ok, failure, logs = run("rectification", "rectify_subject", config)
    assert ok, failure
    assert pd_writes(sandbox) == writes
    with open_register() as reg:
        assert reg.get(case_id).systems["pipedrive"].state == "done"
        # The officer answers the manual task; closing deletes the corrected values too.
        assert cli(["request", "answer", case_id, "trustmary", "--note", "no contact in Trustmary"]) == 0
        assert cli(["request", "answer", case_id, "pipedrive", "--note", "x"]) == 2  # no task open there
        assert reg.get(case_id).systems["trustmary"].state == "manual_answered"
        reg.close_case(case_id, outcome="rectified", actor="tietosuojavastaava", force=True)
        assert load_corrections(reg, case_id) == {}


def test_bad_corrections_are_refused_without_a_case(rect_env, capsys):
    assert cli(["request", "new", "--kind", "rectification", "--email", "matti@esimerkki.fi",
                "--correct", "email=not-an-email"]) == 2
    assert "corrected email" in capsys.readouterr().err
    assert cli(["request", "new", "--kind", "erasure", "--email", "matti@esimerkki.fi",
                "--correct", "phone=0401234567"]) == 2
    with open_register() as reg:
        assert reg.list_cases() == []


def warehouse_rows(sql, params=()):
    con = duckdb.connect(os.environ["WAREHOUSE_PATH"], read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def rebuild(sandbox):
    run_sync(sandbox, Path(os.environ["RAW_DIR"]))
    with open_register() as reg:
        build_warehouse(os.environ["RAW_DIR"], os.environ["WAREHOUSE_PATH"], suppression=SuppressionList(reg))


def test_restriction_sets_and_lifts_the_label_and_hides_the_person_from_analysts(rect_env, sandbox, monkeypatch):
    label = 24
    monkeypatch.setenv("PIPEDRIVE_RESTRICTION_LABEL_ID", str(label))
    tag = uuid.uuid4().hex[:6]
    email, phone, name = f"rauha.rajoitus{tag}@esimerkki.fi", "+358 44 321 7788", f"Rauha Rajoitus{tag}"
    pd = sandbox.pipedrive
    client = make_client(sandbox)
    pid = client.create("persons", {
        "name": name, "emails": [{"value": email, "primary": True}],
        "phones": [{"value": phone, "primary": True}]})["id"]
    client.close()
    rebuild(sandbox)
    (person_id,) = warehouse_rows("SELECT person_id FROM persons WHERE list_contains(emails, ?)", [email])[0]
    total = warehouse_rows("SELECT count(*) FROM analyst_persons")[0][0]
    assert warehouse_rows("SELECT count(*) FROM persons WHERE restricted")[0][0] == 0

    with open_register() as reg:
        case = reg.new_case("restriction", validate_identifiers([email], [phone], name), actor="tietosuojavastaava")
        reg.verify(case.case_id, method="signed letter", actor="tietosuojavastaava")
    case_id = case.case_id
    ok, failure, logs = run("restriction", "restrict_subject", {"case_id": case_id, "dry_run": True})
    assert ok, failure
    assert label not in (pd.get("persons", pid)["label_ids"] or [])
    ok, failure, logs = run("restriction", "restrict_subject", {"case_id": case_id})
    assert ok, failure
    assert label in pd.get("persons", pid)["label_ids"]
    with open_register() as reg:
        states = {s: st.state for s, st in reg.get(case_id).systems.items()}
        # The case can close; the restriction stays until lifted.
        reg.close_case(case_id, outcome="restricted", actor="tietosuojavastaava", force=True)
    assert states["pipedrive"] == "done" and states["netvisor"] == "not_applicable"
    assert states["google"] == "manual_open"
    for secret in (email, phone, name):
        assert secret.lower() not in logs.lower()

    rebuild(sandbox)
    assert warehouse_rows("SELECT restricted, marketing_ban FROM persons WHERE person_id = ?",
                          [person_id]) == [(True, True)]
    assert warehouse_rows("SELECT count(*) FROM analyst_persons WHERE person_id = ?", [person_id]) == [(0,)]
    assert warehouse_rows("SELECT count(*) FROM analyst_persons")[0][0] == total - 1
    assert ("restriction",) in warehouse_rows("SELECT reason FROM marketing_bans WHERE person_id = ?", [person_id])

    # Lifting needs the operator's recorded decision, then unmarks the record.
    ok, failure, logs = run("restriction", "restrict_subject", {"case_id": case_id, "lift": True})
    assert not ok and "lift-restriction" in failure
    assert cli(["request", "lift-restriction", case_id, "--reason", "accuracy checked, person informed"]) == 0
    ok, failure, logs = run("restriction", "restrict_subject", {"case_id": case_id, "lift": True})
    assert ok, failure
    assert label not in (pd.get("persons", pid)["label_ids"] or [])
    rebuild(sandbox)
    assert warehouse_rows("SELECT restricted FROM persons WHERE person_id = ?", [person_id]) == [(False,)]
    assert warehouse_rows("SELECT count(*) FROM analyst_persons")[0][0] == total
    assert cli(["request", "lift-restriction", case_id, "--reason", "again"]) == 2  # nothing left to lift


def test_a_netvisor_title_correction_is_a_manual_task_not_a_failure(netvisor_sandbox, tmp_path):
    """getcustomer.nv does not return a contact person's title, so a title written through the
    API could never be read back: the rectifier leaves it to a person instead of failing forever."""
    from netvisor_support import netvisor_client
    from contact_register.requests.rectification.base import Fix
    from contact_register.requests.rectification.netvisor import NetvisorRectifier
    from contact_register.requests.writeback.base import Clients, WritebackSubject

    nv = netvisor_sandbox.netvisor
    cid = next(c for c, rec in nv.customers.items() if not rec["is_private"])
    email = "titteli.testi@esimerkki.fi"
    pid = nv.add_contact_person(cid, "Titta", "Titteli", email=email)
    subject = WritebackSubject("REC-test", validate_identifiers([email]), emails=[email], names=["Titta Titteli"])
    clients = Clients({"netvisor": lambda: netvisor_client(netvisor_sandbox, tmp_path)})
    try:
        plan = NetvisorRectifier().plan(clients, subject, Fix.for_subject(subject, {"title": "Talousjohtaja"}))
    finally:
        clients.close()
    assert plan.found == 1 and plan.changes == []
    assert f"{cid}/{pid}" in plan.manual and "title" in plan.manual and email not in plan.manual
