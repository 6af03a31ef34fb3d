"""The subject export across every system: one world in the Pipedrive, Google Workspace and
Netvisor sandboxes and the real Request Tracker, the nightly sync through Dagster, a case made
with the command line, ``subject_export`` launched through the Dagster API, and the zip checked
against the world's ground truth: every record of the person in each system, nobody else's
(a namesake at another company and a shared ``laskutus@`` mailbox are in the way), the live
parts (Pipedrive change history, Gmail messages, Netvisor invoices, RT correspondence and
attachments as original files), and the report's answer per processor.

Others' data (GDPR 15(4)): the package holds, of other people, only the headers of the messages
the person sent or received as they saw them (From, To, Cc, Reply-To; a Bcc list only when the
person wrote it, otherwise at most their own address), the bodies of those messages (their own
correspondence), the other customers on the person's RT tickets and the guests of the meetings
they were invited to. A mass mail with a Bcc list, an RT ticket shared with another customer
(their mail to support, RT's auto-reply to them) and a Drive file someone else owns, whose text
names a third person, are in the world to show it."""

import base64
import email
import csv
import html
import io
import json
import os
import re
import subprocess
import sys
import zipfile
from email.parser import HeaderParser
from email.utils import getaddresses
from pathlib import Path

import duckdb
import phonenumbers
import pytest
from dagster import DagsterInstance, execute_job, reconstructable

from connectors.request_tracker import RequestTrackerClient
from pipelines.definitions import defs, resolved_subject_export
from contact_register.requests.cases import open_register
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
SEEN_HEADERS = ("from", "sender", "reply-to", "to", "cc")  # what every recipient of a message sees


def cli(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "contact_register.cli", "request", *args], input=stdin, cwd=REPO,
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
        planted = plant_others(sb, world, human)
        instance = DagsterInstance.ephemeral()
        assert defs.resolve_job_def("nightly_sync").execute_in_process(instance=instance).success
        yield {"world": world, "sandbox": sb, "human": human, "mailbox": mailbox, "colleagues": [colleague],
               "namesake_id": namesake["id"], "tmp": tmp, **planted}


def plant_others(sb, world, human):
    """Others' data beside the person's, in the Google sandbox: a mass mail our staff sent with
    the person and 40 others on Bcc, and a Drive file a staff member owns, shared with the
    person and someone else, whose text names a third person. Returns the row ids the export
    must show (``mass_mail``: ``<user id>:<message id>``, ``shared_file``)."""
    g = sb.google
    others = [o for o in world.humans if o.true_person_id != human.true_person_id]
    staff = g.users[0]
    bcc = ", ".join([human.email] + [o.email for o in others[:40]])
    mid = g.add_message(staff["primaryEmail"], [
        ("From", staff["primaryEmail"]), ("To", staff["primaryEmail"]), ("Bcc", bcc),
        ("Subject", "Asiakastiedote"), ("Date", "Mon, 02 Nov 2026 09:00:00 +0000"),
        ("Message-ID", "<tiedote.1@mail.tietotalo.fi>")], labels=("SENT",), body="Hei,\n\nuusi versio on julkaistu.\n")
    named, grantee = others[41], others[42]
    owner = g.users[1]
    file_id = "1" + "f" * 30
    g.put_file(owner["primaryEmail"], {
        "id": file_id, "name": "sopimusluonnos.docx", "mimeType": "application/octet-stream",
        "permissions": [
            {"id": "p1", "type": "user", "role": "owner", "emailAddress": owner["primaryEmail"]},
            {"id": "p2", "type": "user", "role": "reader", "emailAddress": human.email,
             "displayName": f"{human.first_name} {human.last_name}"},
            {"id": "p3", "type": "user", "role": "writer", "emailAddress": grantee.email,
             "displayName": f"{grantee.first_name} {grantee.last_name}"}],
        "content": f"Sopimusluonnos. Yhteyshenkilö {named.first_name} {named.last_name}, {named.email}, "
                   f"puh. {named.phone_e164}\n"})
    return {"mass_mail": f"{staff['id']}:{mid}", "shared_file": file_id}


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
    expected["gmail"].add(synced["mass_mail"])
    expected["drive"].add(synced["shared_file"])
    assert ids(data, "google", "gmail_message") == expected["gmail"]
    assert {f"{r['user_id']}:{r['message_id']}" for r in records(data, "google", "gmail_message_content")} \
        == expected["gmail"]
    assert {e["id"] for e in records(data, "google", "calendar_event")} == expected["calendar"]
    own = {a.lower() for a in addresses}
    for r in records(data, "google", "gmail_message_content"):
        message = email.message_from_bytes(data[r["file"]])
        named = {a.lower() for _, a in getaddresses(message.get_all("From", []) + message.get_all("To", [])
                                                   + message.get_all("Cc", []) + message.get_all("Bcc", []))}
        assert named & own, "a message that does not name the person"
    mass = next(r for r in records(data, "google", "gmail_message_content")
                if f"{r['user_id']}:{r['message_id']}" == synced["mass_mail"])
    # The mass mail as the person got it: their own address on Bcc, none of the 40 others.
    assert [a.lower() for _, a in getaddresses(email.message_from_bytes(data[mass["file"]]).get_all("Bcc", []))] \
        == [h.email.lower()]
    # Drive: every file shared with them as metadata (name, owner, their own sharing entry); the
    # contents of none, since the staff member who owns each file is its owner.
    assert ids(data, "google", "drive_file") == expected["drive"]
    assert "google/drive_file_content.json" not in data and not [n for n in data if n.endswith(".bin")]
    shared = next(r for r in records(data, "google", "drive_file") if r["id"] == synced["shared_file"])
    assert shared["name"] == "sopimusluonnos.docx"
    assert sorted((p["role"], p["emailAddress"].lower()) for p in shared["permissions"]) == sorted(
        [("owner", sb.google.users[1]["primaryEmail"]), ("reader", h.email.lower())])

    # Netvisor: their contact person and customer records and the invoices naming them.
    assert ids(data, "netvisor", "contact_person") | ids(data, "netvisor", "customer") == truth_ids(world, "netvisor", hid)
    assert ids(data, "netvisor", "invoice") == netvisor_invoices(world, hid)

    # Request Tracker: their users, every ticket they are on, and of each ticket the messages
    # they sent or received (read from RT here: its creator is their user, or its mail headers
    # name them in To/Cc/Bcc), with every attachment of those as the original bytes. A ticket
    # with no other customer is theirs whole; in a shared one the rest stays out.
    rt_emails = truth_ids(world, "request_tracker", hid)
    users = records(data, "request_tracker", "user")
    assert users and {u["EmailAddress"].lower() for u in users} <= rt_emails
    with rt_client(request_tracker) as rt:
        user_ids = {str(u["id"]) for e in rt_emails for u in rt.find_users(e)}
        assert {str(u["id"]) for u in users} == user_ids
        rt_view = rt_messages(rt, user_ids, own | rt_emails)
        assert ids(data, "request_tracker", "ticket") == set(rt_view["tickets"])
        assert ids(data, "request_tracker", "transaction") == rt_view["kept"]
        assert rt_view["left_out_auto_replies"], "the world has no auto-reply to another customer to leave out"
        assert ids(data, "request_tracker", "attachment") == {a for a, t in rt_view["attachments"].items()
                                                              if t in rt_view["kept"]}
        files = [r for r in records(data, "request_tracker", "attachment") if "file" in r]
        assert files
        for r in files:
            assert data[r["file"]] == base64.b64decode(rt.attachment(int(r["id"]))["Content"])

    # Everyone else of the world (every address, phone spelling and full name) appears only in
    # the places listed in the module docstring.
    assert_others_only_where_seen(data, world, h, own | rt_emails, rt_view)

    # The systems read only live (their own tests check what they export): found exactly where
    # the world puts the person.
    for system in LIVE_ONLY:
        # Matomo's empty answer cannot prove absence (Live plugin, site logs, anonymised ids).
        expected_state = "found" if truth_ids(world, system, hid) else (
            "manual_open" if system == "matomo" else "not_found")
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
        # Matomo answers "nothing found" in a way that cannot prove absence: a check by hand.
        expected = "manual_open" if system == "matomo" else "not_found"
        assert (entry["state"], entry["records"], entry["error"]) == (expected, {}, None), system
        assert case.systems[system].state == expected
    assert set(data) == {"manifest.json", "report.html"}
    report = data["report.html"].decode()
    assert "Emme säilytä sinusta tietoja" in report and "We hold no data about you" in report
    assert_report_names_every_processor(report, manifest)


def rt_messages(rt, user_ids, own):
    """From RT itself: the person's tickets, and which transactions carry a message (one with
    attachments) they sent (its creator is their user) or received (its mail headers name one of
    ``own`` in To/Cc/Bcc). ``kept``: those, every other transaction of a ticket whose only
    customer is the person, and the field changes of shared tickets."""
    tickets = {str(t["id"]): t for uid in sorted(user_ids) for t in rt.tickets_of_user(int(uid))}
    out = {"tickets": tickets, "kept": set(), "by_or_to": set(), "attachments": {}, "left_out_auto_replies": []}
    for tid, ticket in tickets.items():
        customers = {str(w["id"]) for role in ("Requestor", "Cc") for w in ticket.get(role) or []}
        named, auto = {}, set()
        for meta in rt.ticket_attachments(int(tid)):
            full = rt.attachment(int(meta["id"]))
            ref = full.get("TransactionId")
            tr = str(ref["id"] if isinstance(ref, dict) else ref)
            out["attachments"][str(meta["id"])] = tr
            head = HeaderParser().parsestr(full.get("Headers") or "")
            named.setdefault(tr, set()).update(
                a.lower() for _, a in getaddresses(head.get_all("To", []) + head.get_all("Cc", [])
                                                   + head.get_all("Bcc", [])))
            if str(head.get("Auto-Submitted") or "").startswith("auto-replied"):
                auto.add(tr)
        for tr in rt.ticket_transactions(int(tid)):
            trid = str(tr["id"])
            creator = tr.get("Creator")
            if trid in named and (str(creator["id"] if isinstance(creator, dict) else creator) in user_ids
                                  or named[trid] & own):
                out["by_or_to"].add(trid)
            if not customers - user_ids or trid not in named or trid in out["by_or_to"]:
                out["kept"].add(trid)
            elif trid in auto:
                out["left_out_auto_replies"].append(trid)
    return out


def others_identifiers(world, human):
    """Every other human of the world: each address any system has for them, their phone in
    E.164, international, national and digits-only spellings, and their full name (lower
    case). Whatever the person shares with them (a namesake's name) is left out."""
    gw, pw = world.derive("google"), world.derive("pipedrive")
    out = {}
    for o in world.humans:
        found = {o.email, f"{o.first_name} {o.last_name}"}
        found |= {a for a, t in gw.address_truth.items() if t == o.true_person_id}
        found |= {e for _, e, t in world.truth("request_tracker") if t == o.true_person_id}
        found |= {v for p in pw.persons if p.true_person_id == o.true_person_id for v, _, _ in p.emails}
        number = phonenumbers.parse(o.phone_e164)
        for fmt in (phonenumbers.PhoneNumberFormat.E164, phonenumbers.PhoneNumberFormat.INTERNATIONAL,
                    phonenumbers.PhoneNumberFormat.NATIONAL):
            spelled = phonenumbers.format_number(number, fmt)
            found |= {spelled, re.sub(r"\D", "", spelled)}
        out[o.true_person_id] = {f.lower() for f in found if f}
    mine = out.pop(human.true_person_id)
    return {pid: found - mine for pid, found in out.items()}


def _found(text, others):
    text = str(text).lower()
    return {(pid, f) for pid, found in others.items() for f in found if f in text}


def _from_is(fields, own):
    return any(a.lower() in own for n, v in fields if n.lower() == "from" for _, a in getaddresses([str(v)]))


def _unseen_fields(fields, own, extra=()):
    """Header fields a recipient does not see: all but SEEN_HEADERS (and ``extra``); a Bcc
    only when the person did not write the message."""
    sent = _from_is(fields, own)
    return [(n, v) for n, v in fields if n.lower() not in SEEN_HEADERS + tuple(extra)
            and not (sent and n.lower() == "bcc")]


def _record_rest(system, kind, record, own, rt_view):
    """What of one exported record must not name anyone else: the record without the places
    where the person saw others."""
    rest = dict(record)
    if (system, kind) == ("google", "gmail_message"):
        headers = rest.pop("headers", None) or []
        headers = json.loads(headers) if isinstance(headers, str) else headers
        rest["headers"] = _unseen_fields([tuple(h) for h in headers], own)
    elif system == "google" and kind in ("calendar_event", "calendar_attendance"):
        rest.pop("attendees", None)  # the guest list of an invitation they received
    elif (system, kind) == ("request_tracker", "ticket"):
        rest.pop("Requestor", None), rest.pop("Cc", None)  # RT mails its customers to each other
    elif (system, kind) == ("request_tracker", "attachment") and str(record["transaction_id"]) in rt_view["by_or_to"]:
        head = HeaderParser().parsestr(rest.pop("headers", None) or "")
        rest["headers"] = _unseen_fields(head.items(), own, extra=("x-rt-originator",))
    elif (system, kind) == ("pipedrive", "mail_message"):
        parties = {k: rest.pop(k, None) for k in ("from", "to", "cc", "bcc")}
        sent = any(str(p.get("email_address")).lower() in own for p in parties["from"] or [])
        rest["bcc"] = [] if sent else parties["bcc"]
    return rest


def _json_or_text(cell):
    """A CSV cell: nested values are JSON there, text stays text ("[rt.sandbox #6] ...")."""
    try:
        return json.loads(cell) if cell[:1] in "[{" else cell
    except ValueError:
        return cell


def _report_records(report):
    """(system, kind, record) of every record table of report.html, and the page without them."""
    found, rest = [], report
    for m in re.finditer(r"<h3>([^<·]*) · ([^<]*) \(\d+\)</h3>(.*?)(?=<h3>|</section>)", report, re.S):
        head, body = m.group(1, 2), m.group(3)
        for table in re.findall(r'<table class="record">(.*?)</table>', body, re.S):
            record = {}
            for key, value in re.findall(r"<tr><th>(.*?)</th><td>(.*?)</td></tr>", table, re.S):
                value = html.unescape(value)
                record[html.unescape(key)] = json.loads(value[5:-6]) if value.startswith("<pre>") else value
            found.append((html.unescape(head[0]), html.unescape(head[1]), record))
            rest = rest.replace(table, "")
    return found, rest


def assert_others_only_where_seen(data, world, human, own, rt_view):
    others = others_identifiers(world, human)
    leaks = {}

    def check(where, value):
        text = json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else value
        hit = sorted(_found(text, others))
        if hit:
            at = text.lower().index(hit[0][1])
            leaks[where] = (hit[:3], text[max(0, at - 80):at + 80])  # the synthetic world's names only

    for name, raw in sorted(data.items()):
        parts = name.split("/")
        if name.endswith(".json") and len(parts) == 2 and parts[0] not in ("warehouse",):
            for i, r in enumerate(json.loads(raw)):
                check(f"{name}[{i}]", _record_rest(parts[0], parts[1][:-5], r, own, rt_view))
        elif name.endswith(".csv") and len(parts) == 2 and parts[0] != "warehouse":
            for i, row in enumerate(csv.DictReader(io.StringIO(raw.decode("utf-8-sig")))):
                row = {k: _json_or_text(v) for k, v in row.items()}
                check(f"{name}[{i}]", _record_rest(parts[0], parts[1][:-4], row, own, rt_view))
        elif name.endswith(".eml"):
            message = email.message_from_bytes(raw, policy=email.policy.default)
            # The body is the person's own correspondence (the message names them: checked above).
            check(name, _unseen_fields([(n, str(v)) for n, v in message.items()], own))
        elif name.startswith("attachments/request_tracker/"):
            if rt_view["attachments"][parts[-1].split(".")[0]] not in rt_view["by_or_to"]:
                check(name, raw.decode("utf-8", "replace"))
        elif name == "report.html":
            found, rest = _report_records(raw.decode())
            for i, (system, kind, r) in enumerate(found):
                check(f"{name}:{system}/{kind}[{i}]", _record_rest(system, kind, r, own, rt_view))
            check(name, html.unescape(rest))
        else:
            check(name, raw.decode("utf-8", "replace"))
    assert not leaks, "\n".join(f"{k}: {v}" for k, v in leaks.items())
