"""The erasure job end to end: a person planted in Pipedrive, Google Workspace and Netvisor (the
sandboxes, over HTTP) and the real Request Tracker, erased through the Dagster job, and checked
by reading each system's own state (the sandboxes' stores, RT's REST2), not the job's report."""

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
import requests
from dagster import DagsterInstance, EnvVar

from assets.resources import GoogleWorkspaceResource
from contact_register.sync.raw_store import raw_path
from contact_register.warehouse.build import build_warehouse
from contact_register.warehouse.normalize import normalize_email, normalize_phone
from pipelines.definitions import defs
from contact_register.requests.erasure.byte_scan import scan
from contact_register.requests.erasure.flow import due_followups
from pipelines.jobs.erasure import erasure
from contact_register.requests.cases import open_register, validate_identifiers
from contact_register.requests.suppression.store import SuppressionList
from tests.conftest import make_client
from tests.test_pipedrive_sync import run_sync

REPO = Path(__file__).resolve().parents[1]
SYSTEMS = ("pipedrive", "google", "netvisor", "request_tracker")
RESTRICTED = "KÄSITTELY RAJOITETTU"


@pytest.fixture
def erasure_env(pipedrive_env, tmp_path, monkeypatch):
    monkeypatch.setenv("REGISTER_URL", str(tmp_path / "register.sqlite"))
    monkeypatch.setenv("EXPORT_DIR", str(tmp_path / "exports"))
    monkeypatch.setenv("REGISTER_HMAC_KEY", "test-key-" + "x" * 32)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "pipelines" / "dagster.yaml").read_text())
    return home


@dataclass
class Planted:
    """One person put into every system, with what each system holds of them."""

    email: str
    phone: str
    first: str
    last: str
    pd: dict = field(default_factory=dict)  # kind -> ids
    google_user: str = ""
    google_messages: list = field(default_factory=list)
    google_event: str = ""
    netvisor: tuple = ()  # (customer id, contact person id)
    rt_user: int = 0
    rt_ticket: int = 0

    @property
    def name(self):
        return f"{self.first} {self.last}"


def plant(sandbox, google_sandbox, netvisor_sandbox, request_tracker, *, invoice_on=None) -> Planted:
    tag = uuid.uuid4().hex[:8]
    p = Planted(email=f"eerika.poisto{tag}@esimerkki.fi", phone="+358 40 555 " + str(1000 + int(tag[:3], 16) % 9000),
                first="Eerika", last=f"Poisto{tag}")
    # Pipedrive: the person, a deal and an activity about them, a note only about them and one
    # also on the deal.
    pd = make_client(sandbox)
    person = pd.create("persons", {"name": p.name, "emails": [{"value": p.email, "primary": True, "label": "work"}],
                                   "phones": [{"value": p.phone, "primary": True, "label": "work"}]})
    deal = pd.create("deals", {"title": "Lisenssikauppa", "person_id": person["id"]})
    activity = pd.create("activities", {"subject": "Soitto", "type": "call", "person_id": person["id"],
                                        "participants": [{"person_id": person["id"], "primary": True}]})
    solo = pd.create("notes", {"content": "Soitti tuesta", "person_id": person["id"]})
    on_deal = pd.create("notes", {"content": "Tarjous lähetetty", "person_id": person["id"], "deal_id": deal["id"]})
    pd.close()
    p.pd = {"person": person["id"], "deal": deal["id"], "activity": activity["id"], "solo_note": solo["id"],
            "deal_note": on_deal["id"]}
    # Google: mail, a meeting, a shared file and a contact in a mailbox of the directory.
    g = google_sandbox.google
    alice = p.google_user = g.user_emails()[0]
    p.google_messages = [
        g.add_message(alice, [("From", f"{p.name} <{p.email}>"), ("To", alice), ("Subject", "Kysymys")]),
        g.add_message(alice, [("From", alice), ("To", p.email.upper()), ("Subject", "Re: Kysymys")]),
    ]
    p.google_event = f"ev{tag}"
    g.put_event(alice, {"id": p.google_event, "summary": "Palaveri", "organizer": {"email": alice},
                        "attendees": [{"email": alice}, {"email": p.email}]})
    g.put_file(alice, {"id": f"file{tag}", "name": "tarjous.pdf", "permissions": [
        {"id": "o1", "type": "user", "role": "owner", "emailAddress": alice},
        {"id": f"r{tag}", "type": "user", "role": "reader", "emailAddress": p.email}]})
    g.put_contact(alice, {"resourceName": f"people/c{tag}", "names": [{"displayName": p.name}],
                          "emailAddresses": [{"value": p.email}]})
    # Netvisor: a billing contact person of a company customer (on an invoice if asked).
    nv = netvisor_sandbox.netvisor
    cid = next(c for c, rec in nv.customers.items() if not rec["is_private"])
    pid = nv.add_contact_person(cid, p.first, p.last, email=p.email, phone=p.phone)
    if invoice_on:
        nv.add_invoice(cid, invoice_on, pid)
    p.netvisor = (cid, pid)
    # Request Tracker: the user and a ticket of their own.
    s = rt_session(request_tracker)
    api = f"{request_tracker.url}/REST/2.0"
    r = s.post(f"{api}/user", json={"Name": p.email, "EmailAddress": p.email, "RealName": p.name}, timeout=60)
    assert r.status_code < 300, r.status_code
    # REST2 answers a new user's Name as its "id": read the numeric id back.
    p.rt_user = int(s.get(f"{api}/user/{p.email}", timeout=60).json()["id"])
    r = s.post(f"{api}/ticket", json={"Queue": "General", "Subject": "Tukipyyntö", "Requestor": p.email,
                                      "Content": f"Hei, terveisin {p.name}", "ContentType": "text/plain"}, timeout=60)
    assert r.status_code < 300, r.status_code
    p.rt_ticket = int(r.json()["id"])
    return p


def rt_session(request_tracker) -> requests.Session:
    s = requests.Session()
    s.auth = request_tracker.auth()
    s.headers.update(request_tracker.headers())
    return s


def held_by_systems(p: Planted, sandbox, google_sandbox, netvisor_sandbox, request_tracker) -> dict[str, list[str]]:
    """What each system still holds of the person, read from the system itself."""
    out = {s: [] for s in SYSTEMS}
    pd = sandbox.pipedrive
    person = pd.get("persons", p.pd["person"])
    if person and not person.get("is_deleted"):
        out["pipedrive"].append("person")
    for kind, entity in (("deal", "deals"), ("activity", "activities")):
        rec = pd.get(entity, p.pd[kind])
        if rec and (rec.get("person_id") == p.pd["person"]
                    or any(x.get("person_id") == p.pd["person"] for x in rec.get("participants") or [])):
            out["pipedrive"].append(kind)
    if pd.get("notes", p.pd["solo_note"]):
        out["pipedrive"].append("solo_note")
    note = pd.get("notes", p.pd["deal_note"])
    if note is None or note["content"] == "Tarjous lähetetty":
        out["pipedrive"].append("deal_note")  # kept, but its text should be replaced
    g = google_sandbox.google
    box = g.mail[p.google_user]["messages"]
    out["google"] += [f"message {m}" for m in p.google_messages if m in box]
    if any(a["email"] == p.email for ev in g.cal[p.google_user]["events"].values() for a in ev.get("attendees", [])):
        out["google"].append("event attendee")
    if any(perm.get("emailAddress") == p.email for f in g.files.values() for perm in f.get("permissions", [])):
        out["google"].append("file permission")
    if any(p.email in [e["value"] for e in c.get("emailAddresses", [])]
           for c in g.people[p.google_user]["connections"].values()):
        out["google"].append("contact")
    if p.netvisor[1] in netvisor_sandbox.netvisor.contact_persons:
        out["netvisor"].append("contact person")
    s = rt_session(request_tracker)
    if s.get(f"{request_tracker.url}/REST/2.0/user/{p.rt_user}", timeout=60).status_code == 200:
        out["request_tracker"].append("user")
    if s.get(f"{request_tracker.url}/REST/2.0/ticket/{p.rt_ticket}", timeout=60).status_code == 200:
        out["request_tracker"].append("ticket")
    return out


def everything(p):
    return {"pipedrive": ["person", "deal", "activity", "solo_note", "deal_note"],
            "google": [f"message {m}" for m in p.google_messages] + ["event attendee", "file permission", "contact"],
            "netvisor": ["contact person"], "request_tracker": ["user", "ticket"]}


def new_case(p: Planted | None, *, approve=True, email=None) -> str:
    ids = validate_identifiers([email or p.email], [p.phone] if p else [], p.name if p else None)
    with open_register() as reg:
        case = reg.new_case("erasure", ids, actor="tietosuojavastaava", systems=SYSTEMS)
        reg.verify(case.case_id, method="signed letter", actor="tietosuojavastaava")
        if approve:
            reg.approve(case.case_id, action="erasure", actor="toimitusjohtaja")
    return case.case_id


def answer_manual_tasks(case_id) -> list[str]:
    """The officer records an answer for every open manual task (Dealfront, the Secapp service
    ...) through the command line, as the runbook says."""
    from contact_register.cli import main as cli

    _, case = states(case_id)
    manual = sorted(s for s, st in case.systems.items() if st.state == "manual_open")
    for system in manual:
        assert cli(["request", "answer", case_id, system, "--note", "checked by hand: nothing held"]) == 0
    return manual


def run_job(home, case_id, *, dry_run=False, resources=None):
    """Launch the job as the UI would (its code location's resources) and collect what the run
    page shows."""
    config = {"ops": {"erase_subject": {"config": {"case_id": case_id, "dry_run": dry_run}}}}
    with DagsterInstance.from_config(str(home)) as instance:
        if resources is None:
            result = defs.resolve_job_def("erasure").execute_in_process(run_config=config, instance=instance,
                                                                          raise_on_error=False)
        else:
            result = erasure.execute_in_process(run_config=config, instance=instance, resources=resources,
                                                raise_on_error=False)
        logs = "\n".join(str(e) for e in instance.all_logs(result.run_id))
        failure = None
        meta = {}
        for e in instance.all_logs(result.run_id):
            ev = e.dagster_event
            if ev and ev.is_successful_output:
                meta = ev.event_specific_data.metadata
            if ev and ev.is_step_failure:
                failure = ev.event_specific_data.error.message
    return result.success, meta, failure, logs


def states(case_id):
    with open_register() as reg:
        case = reg.get(case_id, with_audit=True)
    return {s: st.state for s, st in case.systems.items()}, case


def assert_no_personal_data(p: Planted, *texts):
    for text in texts:
        for secret in (p.email, p.last, p.phone, p.phone.replace(" ", "")):
            assert secret.lower() not in text.lower()


def test_dry_run_and_missing_approval_touch_nothing(erasure_env, sandbox, google_sandbox, netvisor_sandbox,
                                                    request_tracker):
    p = plant(sandbox, google_sandbox, netvisor_sandbox, request_tracker)
    systems = (sandbox, google_sandbox, netvisor_sandbox, request_tracker)
    case_id = new_case(p, approve=False)
    ok, meta, failure, logs = run_job(erasure_env, case_id, dry_run=True)
    assert ok, failure
    assert held_by_systems(p, *systems) == everything(p)
    st, case = states(case_id)
    assert set(st.values()) == {"pending"}
    planned = [a for a in case.audit if a["action"] == "erasure_dry_run"]
    assert len(planned) == 1
    steps = {s: {(x[0], x[2]) for x in v["steps"]} for s, v in planned[0]["detail"]["systems"].items()}
    assert steps["pipedrive"] == {("person", "delete"), ("deal", "mask"), ("activity", "mask"), ("note", "delete"),
                                  ("note", "mask")}
    assert ("gmail_message", "delete") in steps["google"] and ("contact", "delete") in steps["google"]
    assert steps["netvisor"] == {("contact_person", "delete")}
    assert steps["request_tracker"] == {("user", "delete"), ("ticket", "delete")}
    assert meta["dry_run"].value is True and meta["identifiers_dropped_as_shared"].value == 0
    # No approval: the plan is recorded, the run stops and says why, nothing is touched.
    ok, meta, failure, logs = run_job(erasure_env, case_id)
    assert not ok and "no approval for erasure" in failure and "--action erasure" in failure
    assert held_by_systems(p, *systems) == everything(p)
    st, case = states(case_id)
    assert set(st.values()) == {"pending"}
    assert [a["action"] for a in case.audit if a["action"].startswith("erasure_")] == [
        "erasure_dry_run", "erasure_planned", "erasure_stopped"]
    assert_no_personal_data(p, logs, repr(case.audit))


def test_erase_everywhere_then_again_is_harmless(erasure_env, sandbox, google_sandbox, netvisor_sandbox,
                                                  request_tracker):
    p = plant(sandbox, google_sandbox, netvisor_sandbox, request_tracker)
    systems = (sandbox, google_sandbox, netvisor_sandbox, request_tracker)
    # A warehouse that knows the person's Pipedrive records (the subject is resolved through it).
    run_sync(sandbox, Path(os.environ["RAW_DIR"]))
    build_warehouse(os.environ["RAW_DIR"], os.environ["WAREHOUSE_PATH"])
    case_id = new_case(p)
    assert scan([erasure_env.parent], {"email": [p.email]})  # the stores hold the person before
    began = time.monotonic()
    ok, meta, failure, logs = run_job(erasure_env, case_id)
    took = time.monotonic() - began
    assert ok, failure
    assert held_by_systems(p, *systems) == {s: [] for s in SYSTEMS}
    # Shared records stayed as business records, without the person.
    deal = sandbox.pipedrive.get("deals", p.pd["deal"])
    assert not deal["is_deleted"] and deal["person_id"] is None
    assert sandbox.pipedrive.get("notes", p.pd["deal_note"])["content"].startswith("[poistettu")
    event = google_sandbox.google.cal[p.google_user]["events"][p.google_event]
    assert [a["email"] for a in event["attendees"]] == [p.google_user]
    st, case = states(case_id)
    for system in SYSTEMS:
        assert st[system] == "done", (system, case.systems[system])
    assert "| pipedrive | done |" in meta["systems"].value
    assert_no_personal_data(p, logs, repr(case.audit), meta["systems"].value)
    # Our own stores wait while a manual task is open: the officer still needs the identifiers.
    assert st["own_stores"] == "pending" and "manual tasks" in case.systems["own_stores"].detail
    # Matomo too: an empty answer cannot prove absence (Live plugin off, a site without a visitor
    # log, an anonymised User ID), so the officer checks Matomo's GDPR tool by hand.
    assert answer_manual_tasks(case_id) == ["dealfront", "matomo", "secapp"]
    ok, meta, failure, logs = run_job(erasure_env, case_id)
    assert ok, failure
    st, case = states(case_id)
    assert st["own_stores"] == "done"  # our own stores last, once every system is finished
    # The person went on the suppression list (keyed hashes) under this case, for the nightly check.
    added = [a["detail"] for a in case.audit if a["action"] == "suppression_added"]
    assert len(added) == 1 and added[0]["reason"] == "erasure" and added[0]["on_list"]["email"] >= 1
    with open_register(os.environ["REGISTER_URL"]) as reg:
        suppression = SuppressionList(reg)
        assert not suppression.is_empty()
        with reg.backend.transaction() as tx:
            hashes = {r[0] for r in tx.execute(
                "SELECT key_hash FROM suppression_entries WHERE case_id = ? AND reason = ?", [case_id, "erasure"])}
        assert suppression.hash("email", normalize_email(p.email)) in hashes
    # Down to the bytes: no file the project owns (raw stores, warehouse and identity state,
    # register, exports, Dagster storage, all under tmp_path) holds the person any more.
    phones = {p.phone, normalize_phone(p.phone) or p.phone}
    found = scan([erasure_env.parent], {"email": [p.email], "phone": sorted(phones), "name": [f"{p.first} {p.last}"]})
    assert found == [], [(Path(f).name, kind, enc) for f, kind, enc in found]
    # Twice is harmless: every system is re-read, found clean and left alone.
    requests_before = sandbox.pipedrive.total_requests()
    writes_before = pipedrive_writes(sandbox)
    ok, meta, failure, logs = run_job(erasure_env, case_id)
    assert ok, failure
    st2, case2 = states(case_id)
    assert {s: st2[s] for s in SYSTEMS} == {s: "done" for s in SYSTEMS}
    reverified = [a["detail"]["system"] for a in case2.audit if a["action"] == "erasure_reverified"]
    assert set(SYSTEMS) <= set(reverified)
    # The identifiers are hashes now; the trail must not claim the suppression was skipped.
    assert not [a for a in case2.audit if a["action"] == "suppression_skipped"]
    assert sandbox.pipedrive.total_requests() > requests_before  # it did re-read ...
    assert pipedrive_writes(sandbox) == writes_before  # ... and wrote nothing
    print(f"erasure run: {took:.1f} s")


def pipedrive_writes(sandbox) -> int:
    return sum(n for route, n in sandbox.pipedrive.requests_by_route().items() if not route.upper().startswith("GET"))


def test_person_with_invoices_is_held_in_netvisor_until_the_hold_ends(
        erasure_env, sandbox, google_sandbox, netvisor_sandbox, request_tracker):
    # Invoice of 15.8.2025, calendar financial year 2025: a voucher kept to 31.12.2031 (KPL 2:10 §).
    p = plant(sandbox, google_sandbox, netvisor_sandbox, request_tracker, invoice_on="2025-08-15")
    systems = (sandbox, google_sandbox, netvisor_sandbox, request_tracker)
    case_id = new_case(p)
    ok, meta, failure, logs = run_job(erasure_env, case_id)
    assert ok, failure
    left = held_by_systems(p, *systems)
    assert left == {"pipedrive": [], "google": [], "netvisor": ["contact person"], "request_tracker": []}
    st, case = states(case_id)
    assert st["netvisor"] == "held" and case.systems["netvisor"].held_until == "2031-12-31"
    assert "Kirjanpitolaki 2:10" in case.systems["netvisor"].detail
    assert {st[s] for s in ("pipedrive", "google", "request_tracker")} == {"done"}
    # Restricted meanwhile; our own stores wait (the follow-up needs the identifiers).
    cp = netvisor_sandbox.netvisor.contact_persons[p.netvisor[1]]
    assert cp["title"].startswith(RESTRICTED)
    assert st["own_stores"] == "pending"
    # The daily follow-up lists the case only once the hold has ended.
    with open_register() as reg:
        assert due_followups(reg, date(2031, 12, 31)) == []
        assert due_followups(reg, date(2032, 1, 1)) == [(case_id, "2031-12-31")]
    answer_manual_tasks(case_id)
    # Time passes: the invoice is now old enough (FY 2018 -> kept to 31.12.2024). The follow-up
    # run erases the contact person and leaves the others alone.
    nv = netvisor_sandbox.netvisor
    for inv in nv.invoices.values():
        if inv["contact_person_id"] == p.netvisor[1]:
            inv["date"] = "2018-03-01"
    ok, meta, failure, logs = run_job(erasure_env, case_id)
    assert ok, failure
    assert held_by_systems(p, *systems) == {s: [] for s in SYSTEMS}
    st, case = states(case_id)
    assert st["netvisor"] == "done" and st["own_stores"] == "done"


def test_unknown_person_is_not_found_everywhere(erasure_env, sandbox, google_sandbox, netvisor_sandbox,
                                                request_tracker):
    case_id = new_case(None, email=f"ei.ketaan.{uuid.uuid4().hex[:6]}@esimerkki.fi")
    ok, meta, failure, logs = run_job(erasure_env, case_id)
    assert ok, failure
    st, _ = states(case_id)
    assert {st[s] for s in SYSTEMS} == {"not_found"}


def test_system_down_fails_clearly_and_rerun_converges(erasure_env, sandbox, google_sandbox, netvisor_sandbox,
                                                       request_tracker, monkeypatch):
    p = plant(sandbox, google_sandbox, netvisor_sandbox, request_tracker)
    systems = (sandbox, google_sandbox, netvisor_sandbox, request_tracker)
    case_id = new_case(p)
    # Fewer retries than production, so the test does not wait out a long backoff.
    resources = dict(defs.resources, google=GoogleWorkspaceResource(admin_subject=EnvVar("GOOGLE_ADMIN_SUBJECT"),
                                                                    optional_env=defs.resources["google"].optional_env,
                                                                    max_attempts=2, timeout_s=2.0))
    google_sandbox.stop()
    ok, meta, failure, logs = run_job(erasure_env, case_id, resources=resources)
    assert not ok and "google:" in failure and "incomplete in 1 systems" in failure
    st, case = states(case_id)
    assert st["google"] == "failed" and case.systems["google"].error
    assert {st[s] for s in ("pipedrive", "netvisor", "request_tracker")} == {"done"}
    assert st["own_stores"] == "pending"
    assert_no_personal_data(p, failure, case.systems["google"].error)
    answer_manual_tasks(case_id)
    # Back up (on a new port): the re-run finishes Google and re-verifies the rest.
    google_sandbox.start()
    for key, value in google_sandbox.env().items():
        monkeypatch.setenv(key, value)
    ok, meta, failure, logs = run_job(erasure_env, case_id, resources=resources)
    assert ok, failure
    assert held_by_systems(p, *systems) == {s: [] for s in SYSTEMS}
    st, _ = states(case_id)
    assert {st[s] for s in SYSTEMS} == {"done"} and st["own_stores"] == "done"


KILL_WORKER = (
    "import sys\n"
    "from dagster import DagsterInstance\n"
    "from pipelines.definitions import defs\n"
    "with DagsterInstance.from_config(sys.argv[1]) as instance:\n"
    "    defs.resolve_job_def('erasure').execute_in_process(instance=instance, run_config={'ops': {'erase_subject': "
    "{'config': {'case_id': sys.argv[2]}}}})\n"
)


def test_sigkill_mid_erasure_then_rerun_converges(erasure_env, sandbox, google_sandbox, netvisor_sandbox,
                                                  request_tracker):
    p = plant(sandbox, google_sandbox, netvisor_sandbox, request_tracker)
    systems = (sandbox, google_sandbox, netvisor_sandbox, request_tracker)
    case_id = new_case(p)
    pd = sandbox.pipedrive
    pd.slow_seconds = 0.15  # every request slowed, so the kill lands between two Pipedrive writes
    pd.set_faults(rate=1.0, kinds=("slow",))
    worker = subprocess.Popen([sys.executable, "-c", KILL_WORKER, str(erasure_env), case_id], cwd=REPO,
                              env=os.environ.copy())
    deadline = time.monotonic() + 120
    while pd.get("notes", p.pd["solo_note"]) is not None and time.monotonic() < deadline and worker.poll() is None:
        time.sleep(0.01)
    assert worker.poll() is None, "the erasure finished before it could be killed"
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    pd.clear_faults()
    left = held_by_systems(p, *systems)
    assert "solo_note" not in left["pipedrive"] and "person" in left["pipedrive"]  # killed midway
    st, _ = states(case_id)
    assert st["pipedrive"] == "pending"
    ok, meta, failure, logs = run_job(erasure_env, case_id)
    assert ok, failure
    assert held_by_systems(p, *systems) == {s: [] for s in SYSTEMS}
    st, _ = states(case_id)
    assert {st[s] for s in SYSTEMS} == {"done"}


def test_masking_policy_keeps_vendor_shapes(sandbox, tmp_path):
    """``person: mask``: the Pipedrive person stays, with a fixed name, email-shaped keyed hashes
    and no phones; a second plan finds nothing left."""
    from email_validator import validate_email

    from contact_register.requests.erasure.pipedrive import PipedriveEraser
    from contact_register.requests.erasure.policy import system_policy
    from contact_register.requests.writeback.base import Clients, WritebackSubject

    pd = make_client(sandbox)
    email = f"maski.{uuid.uuid4().hex[:6]}@esimerkki.fi"
    person = pd.create("persons", {"name": "Maija Maskattava", "emails": [{"value": email, "primary": True}],
                                   "phones": [{"value": "040 765 4321", "primary": True}]})
    eraser = PipedriveEraser(dict(system_policy("pipedrive"), person="mask"))
    ids = validate_identifiers([email], [], "Maija Maskattava")
    subject = WritebackSubject("ERA-test", ids, emails=list(ids.emails), names=["Maija Maskattava"])
    clients = Clients({"pipedrive": lambda: make_client(sandbox)})
    steps = eraser.plan(clients, subject, date.today())
    assert [(s.record_kind, s.action) for s in steps] == [("person", "mask")]
    outcome = eraser.execute(clients, subject, steps)
    assert outcome.state == "done" and eraser.verify(clients, subject) == []
    after = sandbox.pipedrive.get("persons", person["id"])
    assert after["name"] == "Poistettu henkilö" and after["phones"] == []
    masked = after["emails"][0]["value"]
    assert masked != email and validate_email(masked, check_deliverability=False).normalized == masked
    assert eraser.plan(clients, subject, date.today()) == []
    clients.close()
    pd.close()


def test_hold_sensor_launches_the_follow_up_once_the_hold_has_ended(tmp_path, monkeypatch):
    from dagster import build_sensor_context

    from pipelines.jobs.erasure import erasure_hold_sensor

    monkeypatch.setenv("REGISTER_URL", str(tmp_path / "register.sqlite"))
    ids = validate_identifiers(["odottaja@esimerkki.fi"], [], None)
    with open_register() as reg:
        ended = reg.new_case("erasure", ids, actor="tv", systems=["netvisor"]).case_id
        running = reg.new_case("erasure", ids, actor="tv", systems=["netvisor"]).case_id
        yesterday, later = date.today() - timedelta(days=1), date.today() + timedelta(days=400)
        reg.set_system_state(ended, "netvisor", "held", actor="tv", detail="kirjanpito", held_until=yesterday)
        reg.set_system_state(running, "netvisor", "held", actor="tv", detail="kirjanpito", held_until=later)
    context = build_sensor_context(resources={"register": defs.resources["register"]})
    requests_ = list(erasure_hold_sensor(context))
    assert [r.run_key for r in requests_] == [f"{ended}:{yesterday.isoformat()}"]
    assert requests_[0].run_config == {"ops": {"erase_subject": {"config": {"case_id": ended}}}}


def test_only_a_role_mailbox_is_not_put_on_the_suppression_list(tmp_path, monkeypatch):
    """The flow itself, no systems: a case known only by info@ puts nothing on the list (a
    colleague's re-collected contact must not be banned) and records why."""
    from contact_register.requests.erasure.flow import run_erasure
    from contact_register.requests.export.exporters import Clients
    from contact_register.requests.writeback.base import Outcome

    monkeypatch.setenv("REGISTER_HMAC_KEY", "test-key-" + "x" * 32)
    monkeypatch.delenv("SUPPRESSION_KEY", raising=False)
    monkeypatch.delenv("SUPPRESSION_KEY_FILE", raising=False)  # adding a hash would need a key: an error
    with open_register(str(tmp_path / "register.sqlite")) as reg:
        case = reg.new_case("erasure", validate_identifiers(["info@yritys-esimerkki.fi"]), actor="t")
        reg.verify(case.case_id, method="signed letter", actor="t")
        reg.approve(case.case_id, action="erasure", actor="t2")  # four eyes: not the opener
        result = run_erasure(reg, case.case_id, clients=Clients({}), erasers={}, actor="t", warehouse_path=None,
                             own_stores=lambda s: Outcome("own_stores", "done"))
        # No eraser at all: every processor is a manual task, and our own stores wait for them.
        assert result.systems["own_stores"].state == "pending"
        assert "manual tasks of dealfront, docue" in result.systems["own_stores"].detail
        assert result.identifiers_dropped == {"role_mailbox": 1, "shared_with_others": 0}
        skipped = [a["detail"] for a in reg.get(case.case_id, with_audit=True).audit
                   if a["action"] == "suppression_skipped"]
        assert skipped == [{"reason": "no personal email or phone"}]
        assert SuppressionList(reg).is_empty()


def test_activity_subject_and_attendees_are_erased_and_do_not_return_with_the_next_sync(sandbox, tmp_path,
                                                                                       monkeypatch):
    """Issue 15 item 4. An activity names the person in its subject ("Tapaaminen: <name>") and
    lists them among its attendees (email, name, person id) beside a colleague and another
    customer. Erasure must replace the subject, drop only the person's attendee entry, and the
    next sync must carry neither the name nor the email into the raw store or the warehouse."""
    from contact_register.requests.erasure.pipedrive import PipedriveEraser
    from contact_register.requests.erasure.policy import system_policy
    from contact_register.requests.writeback.base import Clients, WritebackSubject

    monkeypatch.setenv("REGISTER_URL", str(tmp_path / "register.sqlite"))
    monkeypatch.setenv("REGISTER_HMAC_KEY", "test-key-" + "x" * 32)
    tag = uuid.uuid4().hex[:8]
    name, email = f"Tuula Tapaamis{tag}", f"tuula.tapaamis{tag}@esimerkki.fi"
    other_name, other_email = f"Olli Muuasiakas{tag}", f"olli.muuasiakas{tag}@esimerkki.fi"
    pd = make_client(sandbox)
    me = pd.create("persons", {"name": name, "emails": [{"value": email, "primary": True}]})
    other = pd.create("persons", {"name": other_name, "emails": [{"value": other_email, "primary": True}]})
    user = sandbox.pipedrive.users[0]
    attendees = [
        {"email": user["email"], "name": user["name"], "status": "accepted", "is_organizer": True,
         "user_id": user["id"]},
        {"email": email, "name": name, "status": "accepted", "is_organizer": False, "person_id": me["id"]},
        {"email": other_email, "name": other_name, "status": "tentative", "is_organizer": False,
         "person_id": other["id"]},
    ]
    meeting = pd.create("activities", {
        "subject": f"Tapaaminen: {name}", "type": "meeting", "person_id": me["id"],
        "participants": [{"person_id": me["id"], "primary": True}, {"person_id": other["id"], "primary": False}],
        "attendees": attendees})
    untouched = pd.create("activities", {"subject": f"Soitto: {other_name}", "type": "call",
                                         "person_id": other["id"]})
    raw_dir, warehouse = tmp_path / "raw", tmp_path / "warehouse.duckdb"
    run_sync(sandbox, raw_dir)
    build_warehouse(raw_dir, warehouse)

    def activity_rows():
        con = duckdb.connect(str(raw_path(raw_dir, "pipedrive")), read_only=True)
        try:
            return {r[0]: r[1:] for r in con.execute(
                "SELECT id, subject, attendee_emails, record FROM activities WHERE id IN (?, ?)",
                [meeting["id"], untouched["id"]]).fetchall()}
        finally:
            con.close()

    before = activity_rows()
    assert email in before[meeting["id"]][1], "the sync lands the attendees (include_fields=attendees)"
    assert scan([warehouse], {"email": [email], "name": [name]})

    eraser = PipedriveEraser(system_policy("pipedrive"))
    ids = validate_identifiers([email], [], name)
    subject = WritebackSubject("ERA-attendees", ids, emails=[email], names=[name])
    clients = Clients({"pipedrive": lambda: make_client(sandbox)})
    steps = eraser.plan(clients, subject, date.today())
    assert ("activity", str(meeting["id"]), "mask") in {(s.record_kind, s.record_id, s.action) for s in steps}
    assert str(untouched["id"]) not in {s.record_id for s in steps}
    eraser.execute(clients, subject, steps)
    assert eraser.verify(clients, subject) == []

    # Read back over HTTP, as Pipedrive answers it.
    after = pd.get("activities", meeting["id"])
    assert name.lower() not in after["subject"].lower() and after["subject"].strip()
    assert after["person_id"] is None
    assert [p["person_id"] for p in after["participants"]] == [other["id"]]
    assert [(a["email"], a["name"], a["person_id"], a["user_id"]) for a in after["attendees"]] == [
        (user["email"], user["name"], None, user["id"]), (other_email, other_name, other["id"], None)]
    assert pd.get("activities", untouched["id"])["subject"] == f"Soitto: {other_name}"
    clients.close()
    pd.close()

    # The next sync (incremental, with the deletion reconciliation) and the next warehouse build.
    run_sync(sandbox, raw_dir, reconcile_every=timedelta(0))
    build_warehouse(raw_dir, warehouse)
    rows = activity_rows()
    subject_text, attendee_emails, record = rows[meeting["id"]]
    assert name.lower() not in subject_text.lower() and attendee_emails == [user["email"], other_email]
    assert email not in record.lower() and name.lower() not in record.lower()
    assert rows[untouched["id"]][0] == f"Soitto: {other_name}"
    con = duckdb.connect(str(raw_path(raw_dir, "pipedrive")), read_only=True)
    try:
        for table in ("persons", "activities", "deals", "notes"):
            held = con.execute(f"SELECT count(*) FROM {table} WHERE contains(lower(CAST(record AS VARCHAR)), ?) "
                               "OR contains(lower(CAST(record AS VARCHAR)), ?)", [email, name.lower()]).fetchone()[0]
            assert held == 0, table
    finally:
        con.close()
    assert scan([warehouse], {"email": [email], "name": [name]}) == []
    assert scan([warehouse], {"email": [other_email]}), "the other attendee stays"
