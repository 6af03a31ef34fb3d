"""The subject export across every system: one world in the Pipedrive, Google Workspace and
Netvisor sandboxes and the real Request Tracker, the nightly sync through Dagster, a case made
with the command line, ``subject_export`` launched through the Dagster API, and the zip checked
against the world's ground truth: every record of the person in each system, nobody else's
(a namesake at another company and a shared ``laskutus@`` mailbox are in the way), the live
parts (Pipedrive change history, Gmail messages and Drive files, Netvisor invoices, RT
correspondence and attachments as original files), and the report's answer per processor."""

import base64
import email
import json
import os
import re
import subprocess
import sys
import zipfile
from email.utils import getaddresses
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterInstance, execute_job, reconstructable

from connectors.request_tracker import RequestTrackerClient
from pipelines.definitions import defs
from pipelines.jobs.subject_export import resolved_subject_export
from pipelines.register import open_register
from sandbox.server import Sandbox
from sandbox.world import World, fold
from tests.conftest import RT_WORLD, make_client
from tests.test_export import Truth, assert_exact, assert_report_names_every_processor

REPO = Path(__file__).resolve().parents[1]
SYSTEMS = ("pipedrive", "google", "netvisor", "request_tracker")  # synced every night
LIVE_ONLY = ("trustmary", "matomo", "docue")  # read live by the export only
# What a file in the zip may be named: record ids only (Gmail <user id>-<message id>, Drive file
# ids, RT <ticket id>/<attachment id>), never a name or an address.
SAFE_FILE = re.compile(r"^attachments/(google/(gmail/\d+-[0-9a-f]+\.eml|drive/[0-9a-f]+\.bin)"
                       r"|request_tracker/\d+/\d+\.[a-z0-9]+)$")


def cli(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "pipelines.cli", "request", *args], input=stdin, cwd=REPO,
                          env=os.environ.copy(), capture_output=True, text=True, timeout=120)


def read_zip(path):
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def records(data, system, kind):
    name = f"{system}/{kind}.json"
    return json.loads(data[name]) if name in data else []


def ids(data, system, kind):
    return {str(r["id"]) for r in records(data, system, kind)}


def truth_ids(world, system, human_id):
    return {rid for _, rid, h in world.truth(system) if h == human_id}


def rt_client(request_tracker):
    return RequestTrackerClient(request_tracker.url, user=request_tracker.user, password=request_tracker.password,
                                token=request_tracker.token)


def coverage(world, hid):
    """How many kinds of record the world gives the human: mail, meetings, shared files,
    contacts, Netvisor customer records and invoices, RT tickets and files, and the systems
    read only live."""
    g = google_mentions(world, hid)
    nv = world.derive("netvisor")
    rw = world.derive("request_tracker")
    keys = {u.key for u in rw.users if u.true_person_id == hid}
    tickets = [t for t in rw.tickets if t.requestor in keys or set(t.ccs) & keys]
    return sum(map(bool, (
        *(truth_ids(world, s, hid) for s in LIVE_ONLY), g["gmail"], g["calendar"], g["drive"],
        any(r.startswith(("contact:", "other_contact:")) for r in truth_ids(world, "google", hid)),
        any(c.true_person_id == hid for c in nv.customers), netvisor_invoices(world, hid), tickets,
        any(m.attachments for t in tickets for m in t.messages))))


def netvisor_invoices(world, hid):
    nv = world.derive("netvisor")
    contact_persons = {p.id for p in nv.contact_persons if p.true_person_id == hid}
    private = {c.id for c in nv.customers if c.true_person_id == hid and c.is_private}
    return {str(i.id) for i in nv.invoices if i.contact_person_id in contact_persons or i.customer_id in private}


def pick_subject(world, rt):
    """The human in all four systems with the most kinds of record, whose RT user still exists
    (other tests may erase some), and a colleague of theirs in Pipedrive."""
    everywhere = set.intersection(*[{h for _, _, h in world.truth(s)} for s in SYSTEMS])
    rt_email = {h: e for _, e, h in world.truth("request_tracker")}
    in_pipedrive = {h for _, _, h in world.truth("pipedrive")}
    company = {h.true_person_id: h.company_index for h in world.humans}
    for hid in sorted(everywhere, key=lambda h: (-coverage(world, h), h)):
        colleagues = sorted(h for h in in_pipedrive if h != hid and company[h] == company[hid])
        if colleagues and rt.find_users(rt_email[hid]):
            return hid, colleagues[0]
    pytest.fail("the RT test world has nobody in every system with a colleague in Pipedrive")


@pytest.fixture(scope="module")
def synced(request_tracker, tmp_path_factory):
    """The RT test world served by every sandbox too, the person's company billing mailbox put
    on them and a colleague in Pipedrive, a namesake at another company, and one nightly_sync
    through Dagster."""
    tmp = tmp_path_factory.mktemp("export_all")
    world = World.generate(**RT_WORLD)
    with Sandbox(World.generate(**RT_WORLD), systems=("pipedrive", "google", "netvisor", *LIVE_ONLY)) as sb, \
            pytest.MonkeyPatch.context() as mp:
        for key, value in {**sb.env(), **request_tracker.env()}.items():
            mp.setenv(key, value)
        for key, value in {"RAW_DIR": tmp / "raw", "WAREHOUSE_PATH": tmp / "warehouse.duckdb",
                           "REGISTER_URL": tmp / "register.sqlite", "EXPORT_DIR": tmp / "exports",
                           "REGISTER_ACTOR": "tietosuojavastaava"}.items():
            mp.setenv(key, str(value))
        with rt_client(request_tracker) as rt:
            hid, colleague = pick_subject(world, rt)
        human = next(h for h in world.humans if h.true_person_id == hid)
        domain = world.companies[human.company_index].domain
        other_company = next(c for c in world.companies if c.index != human.company_index)
        client = make_client(sb)
        # The company's billing mailbox, used by the person and a colleague alike.
        mailbox = f"laskutus@{domain}"
        for pid in sorted({int(r) for _, r, h in world.truth("pipedrive") if h in (hid, colleague)}):
            emails = sb.pipedrive.get("persons", pid)["emails"]
            client.update("persons", pid, {"emails": [{"value": e["value"], "label": e.get("label") or "work"}
                                                      for e in emails] + [{"value": mailbox, "label": "work"}]})
        # A namesake at another company.
        org = client.create("organizations", {"name": other_company.name})
        namesake = client.create("persons", {
            "name": f"{human.first_name} {human.last_name}", "org_id": org["id"],
            "emails": [{"value": f"{fold(human.first_name)[0]}.{fold(human.last_name)}@{other_company.domain}",
                        "primary": True, "label": "work"}],
            "phones": [{"value": "+358 9 " + human.phone_e164[-7:][::-1], "primary": True, "label": "work"}]})
        client.close()
        instance = DagsterInstance.ephemeral()
        assert defs.resolve_job_def("nightly_sync").execute_in_process(instance=instance).success
        yield {"world": world, "sandbox": sb, "human": human, "mailbox": mailbox, "colleagues": [colleague],
               "namesake_id": namesake["id"], "tmp": tmp}


def launch(case_id, home):
    """As the UI does: a run of the code location's job, each step in its own process."""
    with DagsterInstance.from_config(str(home)) as instance:
        result = execute_job(reconstructable(resolved_subject_export), instance=instance,
                             run_config={"ops": {"export_subject_data": {"config": {"case_id": case_id}}}})
        assert result.success
        outputs = [e for e in instance.all_logs(result.run_id) if e.dagster_event and e.dagster_event.is_successful_output]
        logs = "\n".join(str(e) for e in instance.all_logs(result.run_id))
        return outputs[0].dagster_event.event_specific_data.metadata, logs


def new_case(given):
    made = cli("new", "--kind", "access", "--stdin", "--json", stdin=json.dumps(given))
    assert made.returncode == 0, made.stderr
    case_id = json.loads(made.stdout)["case_id"]
    assert cli("verify", case_id, "--method", "signed letter, signature compared").returncode == 0
    return case_id


def test_person_in_every_system_is_exported_exactly(synced, request_tracker):
    world, sb, h = synced["world"], synced["sandbox"], synced["human"]
    hid = h.true_person_id
    assert coverage(world, hid) >= 6  # a person with mail, meetings, files, invoices, tickets ... to check
    pd_truth = Truth(sb, world, hid)
    # A change after the sync: only the live read of the change history (flow) can show it.
    client = make_client(sb)
    changed_pid = sorted(pd_truth.person_ids)[0]
    client.update("persons", changed_pid, {"job_title": "Hallituksen puheenjohtaja"})
    client.close()

    # The requester names every address they use (a private gmail.com one too: nothing else
    # ties that to them) and the company's shared billing mailbox, which only counts with the name.
    addresses = sorted({h.email, *google_mentions(world, hid)["addresses"]})
    case_id = new_case({"emails": [*addresses, synced["mailbox"]], "phones": [h.phone_e164],
                        "name": f"{h.first_name} {h.last_name}"})
    home = synced["tmp"] / "dagster_home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text((REPO / "pipelines" / "dagster.yaml").read_text())
    meta, logs = launch(case_id, home)
    case = open_register().get(case_id)
    data = read_zip(Path(os.environ["EXPORT_DIR"]) / case.export_file)
    manifest = json.loads(data["manifest.json"])
    others = [Truth(sb, world, c) for c in synced["colleagues"]]
    assert others and all(o.person_ids for o in others)

    # Pipedrive: exactly the person's records (the colleagues sharing the mailbox and the
    # namesake at another company are left out), the live mail, and the change made after the sync.
    assert_exact(data, pd_truth, others)
    assert synced["namesake_id"] not in {int(i) for i in ids(data, "pipedrive", "person")}
    con = duckdb.connect(os.environ["WAREHOUSE_PATH"], read_only=True)
    namesake_person = con.execute("SELECT person_id FROM person_records WHERE system = 'pipedrive' AND "
                                  "record_kind = 'person' AND record_id = ?", [str(synced["namesake_id"])]).fetchone()
    con.close()
    exported_persons = {p["person_id"] for p in json.loads(data["warehouse/person.json"])}
    assert namesake_person and namesake_person[0] not in exported_persons
    changes = records(data, "pipedrive", "change")
    assert {c["person_id"] for c in changes} <= pd_truth.person_ids
    assert any(c["object"] == "personChange" and c["data"]["field_key"] == "job_title"
               and c["data"]["new_value"] == "Hallituksen puheenjohtaja" and c["person_id"] == changed_pid
               for c in changes)

    # Google: the person records the world has for them, and every message, meeting and file
    # that names one of their addresses: metadata from the warehouse, the originals read live.
    google_kinds = ("gmail_correspondent", "calendar_attendee", "drive_grantee", "contact", "other_contact")
    assert set().union(*(ids(data, "google", k) for k in google_kinds)) == truth_ids(world, "google", hid)
    expected = google_mentions(world, hid)
    assert ids(data, "google", "gmail_message") == expected["gmail"]
    assert {f"{r['user_id']}:{r['message_id']}" for r in records(data, "google", "gmail_message_content")} \
        == expected["gmail"]
    assert ids(data, "google", "drive_file") == expected["drive"] == ids(data, "google", "drive_file_content")
    assert {e["id"] for e in records(data, "google", "calendar_event")} == expected["calendar"]
    for r in records(data, "google", "gmail_message_content"):
        message = email.message_from_bytes(data[r["file"]])
        named = {a.lower() for _, a in getaddresses(message.get_all("From", []) + message.get_all("To", [])
                                                   + message.get_all("Cc", []) + message.get_all("Bcc", []))}
        assert named & expected["addresses"], "a message that does not name the person"
    g = sb.google
    for r in records(data, "google", "drive_file_content"):
        assert data[r["file"]] == g.files[r["id"]]["content"].encode()

    # Netvisor: their contact person and customer records and the invoices naming them.
    assert ids(data, "netvisor", "contact_person") | ids(data, "netvisor", "customer") == truth_ids(world, "netvisor", hid)
    assert ids(data, "netvisor", "invoice") == netvisor_invoices(world, hid)

    # Request Tracker: their users, every ticket they are on with all its transactions, and
    # every attachment as the original bytes.
    rt_emails = truth_ids(world, "request_tracker", hid)
    users = records(data, "request_tracker", "user")
    assert users and {u["EmailAddress"].lower() for u in users} <= rt_emails
    with rt_client(request_tracker) as rt:
        user_ids = {str(u["id"]) for e in rt_emails for u in rt.find_users(e)}
        assert {str(u["id"]) for u in users} == user_ids
        tickets = {str(t["id"]) for u in user_ids for t in rt.tickets_of_user(int(u))}
        assert ids(data, "request_tracker", "ticket") == tickets
        assert ids(data, "request_tracker", "transaction") == {
            str(t["id"]) for tid in tickets for t in rt.ticket_transactions(int(tid))}
        atts = {str(a["id"]): a for tid in tickets for a in rt.ticket_attachments(int(tid))}
        assert ids(data, "request_tracker", "attachment") == set(atts)
        files = [r for r in records(data, "request_tracker", "attachment") if "file" in r]
        assert files
        for r in files:
            assert data[r["file"]] == base64.b64decode(rt.attachment(int(r["id"]))["Content"])

    # The systems read only live (their own tests check what they export): found exactly where
    # the world puts the person.
    for system in LIVE_ONLY:
        expected_state = "found" if truth_ids(world, system, hid) else "not_found"
        assert (manifest["systems"][system]["state"], case.systems[system].state) == (expected_state,) * 2, system

    # Files are named by record ids only; every system answered, on the run page too.
    assert all(SAFE_FILE.match(n) for n in data if n.startswith("attachments/")), \
        [n for n in data if n.startswith("attachments/") and not SAFE_FILE.match(n)]
    for system in SYSTEMS:
        entry = manifest["systems"][system]
        total = sum(entry["records"].values())
        assert entry["state"] == "found" and total and case.systems[system].state == "found"
        assert case.systems[system].records == total
        assert meta[system].value.startswith(f"found: {total} records")
        assert f"| {system} | found | {total} | {entry['attachments']} |" in meta["systems"].value
    assert_report_names_every_processor(data["report.html"].decode(), manifest)
    # Nothing personal in the run's event log or anything Dagster stored.
    for secret in (h.email, synced["mailbox"], h.phone_e164, h.last_name):
        assert secret not in logs
        for path in home.rglob("*"):
            assert not path.is_file() or secret.encode() not in path.read_bytes(), f"personal data in {path.name}"


def google_mentions(world, hid):
    """From the world: the person's addresses and the Google records (row ids as the sync keys
    them) that name one of them."""
    gw = world.derive("google")
    addresses = {a for a, t in gw.address_truth.items() if t == hid}
    out = {"addresses": addresses, "gmail": set(), "calendar": set(), "drive": set()}
    for user, msgs, events, files in zip(gw.users, gw.messages, gw.events, gw.files):
        for m in msgs:
            named = {a.lower() for n, v in m["headers"] if n in ("From", "To", "Cc", "Bcc", "Reply-To")
                     for _, a in getaddresses([v])}
            if named & addresses:
                out["gmail"].add(f"{user.id}:{m['id']}")
        out["calendar"] |= {e["id"] for e in events if {a["email"].lower() for a in e["attendees"]} & addresses}
        out["drive"] |= {f["id"] for f in files if {p.get("emailAddress", "").lower() for p in f["permissions"]}
                         & addresses}
    return out


def test_person_found_nowhere_gets_a_valid_nothing_held_answer_from_every_system(synced):
    """Live reads on: every system with an API is asked (by the given address, which the
    warehouse does not know) and answers "not found"; the report says nothing is held."""
    case_id = new_case({"emails": ["ei.ketaan@tuntematon-yritys.fi"], "phones": ["+358 50 000 0001"],
                        "name": "Tuntematon Henkilö"})
    result = defs.resolve_job_def("subject_export").execute_in_process(
        run_config={"ops": {"export_subject_data": {"config": {"case_id": case_id}}}},
        instance=DagsterInstance.ephemeral())
    assert result.success
    case = open_register().get(case_id)
    data = read_zip(Path(os.environ["EXPORT_DIR"]) / case.export_file)
    manifest = json.loads(data["manifest.json"])
    assert manifest["nothing_held"] is True and manifest["persons_found"] == 0
    for system in SYSTEMS + LIVE_ONLY:
        entry = manifest["systems"][system]
        assert (entry["state"], entry["records"], entry["error"]) == ("not_found", {}, None), system
        assert case.systems[system].state == "not_found"
    assert set(data) == {"manifest.json", "report.html"}
    report = data["report.html"].decode()
    assert "Emme säilytä sinusta tietoja" in report and "We hold no data about you" in report
    assert_report_names_every_processor(report, manifest)
