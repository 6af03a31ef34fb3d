"""find / erase / ban for one address against the Google sandbox, verified by reading back."""

import base64
import email

import pytest

from connectors.google_workspace import SCOPES_WRITE
from contact_register.requests.erasure.google import erase
from contact_register.requests.export.google_find import find
from contact_register.requests.marketing_ban.google import ban_address as ban
from tests.test_google_sync import make_google_client


def busiest_address(g) -> str:
    """An external address that appears in mail, a meeting, a shared file and a contact, if any."""
    counts: dict[str, int] = {}
    for box in g.people.values():
        for p in box["connections"].values():
            for e in p.get("emailAddresses", []):
                counts[e["value"].lower()] = counts.get(e["value"].lower(), 0) + 1
    for cal in g.cal.values():
        for ev in cal["events"].values():
            for a in ev.get("attendees", [])[1:]:
                if a["email"].lower() in counts:
                    counts[a["email"].lower()] += 5
    return max(counts, key=counts.get)


@pytest.fixture
def client(google_sandbox):
    return make_google_client(google_sandbox, scopes=SCOPES_WRITE)


def plant(g, who: str) -> None:
    """Make sure the address is everywhere: mail, a meeting, a shared file, a mailing list."""
    alice = g.user_emails()[0]
    g.add_message(alice, [("From", f"Testi <{who}>"), ("To", alice), ("Subject", "Hei"), ("Date", "Tue, 3 Nov 2026 10:00:00 +0200")])
    g.add_message(alice, [("From", alice), ("To", "muu@esimerkki.fi"), ("Cc", who.upper()), ("Subject", "Re: Hei")],
                  labels=("SPAM",))
    g.put_event(alice, {"id": "evplant", "summary": "Palaveri", "organizer": {"email": alice},
                        "attendees": [{"email": alice}, {"email": who}, {"email": "muu@esimerkki.fi"}]})
    g.put_file(alice, {"id": "fileplant", "name": "x.docx", "content": "sisältö", "permissions": [
        {"id": "o1", "type": "user", "role": "owner", "emailAddress": alice},
        {"id": "r1", "type": "user", "role": "reader", "emailAddress": who}]})
    g.dir_groups[f"uutiskirje@{g.domain}"].add(who)


def test_find(google_sandbox, client, tmp_path):
    g = google_sandbox.google
    who = busiest_address(g)
    plant(g, who)
    found = find(client, who, mailing_lists=(f"uutiskirje@{g.domain}",))
    counts = found.counts()
    assert counts["gmail"] >= 2 and counts["calendar"] >= 1 and counts["drive"] >= 1
    assert counts["contacts"] >= 1 and f"uutiskirje@{g.domain}" in found.groups
    assert any("SPAM" in m["labels"] for m in found.gmail)  # spam and trash are searched too
    # Every message found names the person in its address headers (read whole, as the export does).
    for user in {m["user"] for m in found.gmail}:
        got, _ = client.gmail_get_many(user, [m["message_id"] for m in found.gmail if m["user"] == user], fmt="raw")
        for msg in got.values():
            parsed = email.message_from_bytes(base64.urlsafe_b64decode(msg["raw"] + "=" * (-len(msg["raw"]) % 4)))
            assert who in " ".join(parsed.get(h, "") for h in ("From", "To", "Cc", "Bcc")).lower()
    assert "fileplant" in {f["file_id"] for f in found.drive}


def test_erase_then_nothing_erasable_remains(google_sandbox, client):
    g = google_sandbox.google
    who = busiest_address(g)
    plant(g, who)
    lists = (f"uutiskirje@{g.domain}",)
    before = find(client, who, lists)
    report = erase(client, who, permanent=True, mailing_lists=lists)
    assert report["done"]["gmail"] == len(before.gmail) > 0
    after = find(client, who, lists)
    assert after.erasable() == 0 and not after.gmail and not after.contacts and not after.groups
    # Meetings keep the other attendees; nobody was mailed.
    ev = g.cal[g.user_emails()[0]]["events"]["evplant"]
    assert [a["email"] for a in ev["attendees"]] == [g.user_emails()[0], "muu@esimerkki.fi"]
    assert g.send_updates and set(g.send_updates) == {"none"}
    assert [p["id"] for p in g.files["fileplant"]["permissions"]] == ["o1"]
    # What cannot be erased is reported, not hidden.
    assert any("Vault" in n for n in report["notes"])
    assert len([m for m in report["manual"] if "read-only" in m]) == len(before.other_contacts)
    assert "@" not in repr(report)


def test_erase_by_trash_is_reported_as_reversible(google_sandbox, client):
    g = google_sandbox.google
    who = busiest_address(g)
    plant(g, who)
    report = erase(client, who, permanent=False)
    after = find(client, who)
    assert after.gmail and all("TRASH" in m["labels"] for m in after.gmail)
    assert after.erasable() == 0
    assert any("trash" in n for n in report["notes"])


def test_ban_adds_contacts_to_group_and_leaves_mailing_lists(google_sandbox, client):
    g = google_sandbox.google
    who = busiest_address(g)
    plant(g, who)
    lists = (f"uutiskirje@{g.domain}",)
    report = ban(client, who, mailing_lists=lists)
    assert report["contacts_banned"] >= 1 and not report["unverified"] and report["mailing_lists_left"] == 1
    assert who not in g.dir_groups[lists[0]]
    members = [rn for box in g.people.values() for grp in box["groups"].values() if grp["name"] == "Ei markkinointia"
               for rn in grp["memberResourceNames"]]
    assert len(members) == report["contacts_banned"]
    # Banning twice is harmless and still verified.
    again = ban(client, who, mailing_lists=lists)
    assert again["contacts_banned"] == report["contacts_banned"] and again["mailing_lists_left"] == 0


def test_a_read_only_client_cannot_erase(google_sandbox):
    """The sandbox enforces OAuth scopes as Google does: the sync's read-only token may read but
    not delete, so a write-back job that forgot to ask for write scopes fails loudly."""
    from connectors.errors import AuthError

    g = google_sandbox.google
    who = busiest_address(g)
    plant(g, who)
    reader = make_google_client(google_sandbox)  # SCOPES_READ, as the nightly sync uses
    assert find(reader, who).counts().get("gmail", 0) >= 1
    with pytest.raises(AuthError, match="403"):
        erase(reader, who)
    assert find(reader, who).counts().get("gmail", 0) >= 1  # nothing was deleted


def test_a_mass_mailing_is_left_to_a_person_not_deleted_with_everyone_in_it(client, google_sandbox):
    """Deleting a message deletes every recipient's data with it: above the limit it is a manual task."""
    g = google_sandbox.google
    who = "maija.erasure-test@esimerkki.fi"
    alice = g.user_emails()[0]
    g.add_message(alice, [("From", f"Maija <{who}>"), ("To", alice), ("Subject", "Oma viesti")])
    crowd = ", ".join(f"vastaanottaja{i}@esimerkki.fi" for i in range(30))
    g.add_message(alice, [("From", alice), ("To", alice), ("Bcc", f"{crowd}, {who}"), ("Subject", "Uutiskirje")])
    found = find(client, who)
    assert sorted(m["others"] for m in found.gmail) == [1, 31]
    report = erase(client, who, permanent=True, max_other_participants=20)
    assert report["done"]["gmail"] == 1
    assert len(report["manual"]) == 1 and "31 other people" in report["manual"][0]
    assert [m["others"] for m in find(client, who).gmail] == [31]  # the mailing is still there
    for m in found.gmail:  # and nothing about the person leaks into the task text
        assert who not in report["manual"][0] and m["user"] not in report["manual"][0]


def eraser_clients(client):
    from contact_register.requests.export.exporters import Clients

    return Clients({"google": lambda: client})


def test_erasure_leaves_every_group_of_the_subject_with_the_default_policy(google_sandbox, client, monkeypatch):
    """Issue 15 item 5: with the shipped policy and no list configured, the person still left no
    group. Erasure asks the Directory which groups hold the address (groups.list?userKey=, as the
    Admin SDK documents) and leaves each one; verification re-reads the memberships."""
    from contact_register.requests.erasure.google import GoogleEraser
    from contact_register.requests.writeback.base import WritebackSubject
    from contact_register.requests.cases.identifiers import Identifiers

    monkeypatch.delenv("GOOGLE_MAILING_LISTS", raising=False)
    g = google_sandbox.google
    who = "ville.ryhmat@esimerkki.fi"
    g.dir_groups[f"uutiskirje@{g.domain}"].add(who)
    g.dir_groups[f"asiakasraati@{g.domain}"] = {who, "muu.jasen@esimerkki.fi"}
    g.dir_groups[f"kumppanit@{g.domain}"] = {"muu.jasen@esimerkki.fi"}
    subject = WritebackSubject(case_id="C-1", identifiers=Identifiers(emails=(who,)), emails=[who])
    eraser, clients = GoogleEraser(), eraser_clients(client)
    planned = {s.record_id: s.action for s in eraser.plan(clients, subject, None) if s.record_kind == "group_membership"}
    assert planned == {f"uutiskirje@{g.domain}": "delete", f"asiakasraati@{g.domain}": "delete"}
    eraser.execute(clients, subject, eraser.plan(clients, subject, None))
    assert [grp for grp, members in g.dir_groups.items() if who in members] == []
    assert g.dir_groups[f"asiakasraati@{g.domain}"] == {"muu.jasen@esimerkki.fi"}  # nobody else left
    assert eraser.verify(clients, subject) == []
    # Verification really re-reads: a membership that comes back is reported.
    g.dir_groups[f"kumppanit@{g.domain}"].add(who)
    assert eraser.verify(clients, subject) == [f"group_membership:kumppanit@{g.domain}"]


def test_a_group_of_another_domain_is_a_manual_task(google_sandbox, client, monkeypatch):
    """A group outside the company's domain is not the company's to change: listed for a person."""
    from contact_register.requests.erasure.google import GoogleEraser
    from contact_register.requests.writeback.base import WritebackSubject
    from contact_register.requests.cases.identifiers import Identifiers

    monkeypatch.delenv("GOOGLE_MAILING_LISTS", raising=False)
    g = google_sandbox.google
    who = "ville.ryhmat@esimerkki.fi"
    g.dir_groups["yhteistyo@kumppani.example"] = {who}
    g.dir_groups[f"uutiskirje@{g.domain}"].add(who)
    subject = WritebackSubject(case_id="C-1", identifiers=Identifiers(emails=(who,)), emails=[who])
    eraser, clients = GoogleEraser(), eraser_clients(client)
    steps = {s.record_id: s.action for s in eraser.plan(clients, subject, None) if s.record_kind == "group_membership"}
    assert steps == {f"uutiskirje@{g.domain}": "delete", "yhteistyo@kumppani.example": "manual"}
    outcome = eraser.execute(clients, subject, eraser.plan(clients, subject, None))
    assert outcome.state == "manual_open"
    assert g.dir_groups["yhteistyo@kumppani.example"] == {who}
    assert eraser.verify(clients, subject) == []


def test_the_ban_leaves_only_the_configured_marketing_lists(google_sandbox, client, monkeypatch):
    """GOOGLE_MAILING_LISTS names the marketing lists: the ban leaves those and no other group."""
    from contact_register.requests.marketing_ban.google import GoogleBanner
    from contact_register.requests.writeback.base import WritebackSubject
    from contact_register.requests.cases.identifiers import Identifiers

    g = google_sandbox.google
    who = "ville.ryhmat@esimerkki.fi"
    monkeypatch.setenv("GOOGLE_MAILING_LISTS", f"uutiskirje@{g.domain}")
    g.dir_groups[f"uutiskirje@{g.domain}"].add(who)
    g.dir_groups[f"asiakasraati@{g.domain}"] = {who}
    subject = WritebackSubject(case_id="C-1", identifiers=Identifiers(emails=(who,)), emails=[who])
    banner, clients = GoogleBanner(), eraser_clients(client)
    banner.ban(clients, subject)
    assert who not in g.dir_groups[f"uutiskirje@{g.domain}"]
    assert g.dir_groups[f"asiakasraati@{g.domain}"] == {who}
    assert banner.verify(clients, subject) == []
