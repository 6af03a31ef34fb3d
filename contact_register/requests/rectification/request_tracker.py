"""Request Tracker rectifier: the support user's ``RealName``, ``EmailAddress``, phone fields and,
when the login ``Name`` is the old address (as RT's mail gateway creates users), ``Name`` too;
through REST2 (``RequestTrackerClient.update_user``), read back by the next plan.

Tickets keep their correspondence as it was written: mail headers and message bodies are a
record of what was said, not data to rectify. RT has no title field.
"""

from __future__ import annotations

from contact_register.requests.erasure.matching import is_subject_record
from contact_register.requests.rectification.base import Change, Fix, Plan, corrected_single, email_fix, phone_fix
from contact_register.requests.writeback.base import Clients, WritebackSubject

SYSTEM = "request_tracker"
PHONE_FIELDS = ("WorkPhone", "MobilePhone", "HomePhone", "PagerPhone")


class RequestTrackerRectifier:
    system = SYSTEM

    def plan(self, clients: Clients, subject: WritebackSubject, fix: Fix) -> Plan:
        client = clients.client(SYSTEM)
        finder = fix.finder(subject)
        users: dict[int, dict] = {}
        for email in finder.emails:
            for u in client.find_users(email):
                if str(u.get("id", "")).isdigit() and is_subject_record(
                        finder, name=u.get("RealName"), emails=[u.get("EmailAddress")],
                        phones=[u.get(f) for f in PHONE_FIELDS]):
                    users[int(u["id"])] = u
        plan = Plan(found=len(users))
        old_emails, new_email, norm_email = email_fix(fix)
        for uid, u in sorted(users.items()):
            payload = {}
            if fix.name_differs(u.get("RealName")):
                payload["RealName"] = fix.get("name")
            email = corrected_single(u.get("EmailAddress"), old_emails, new_email, norm_email)
            if email:
                payload["EmailAddress"] = email
                if norm_email(u.get("Name") or "") in (old_emails or {norm_email(u.get("EmailAddress"))}):
                    payload["Name"] = email  # the login was the old address: it would keep it
            held = [f for f in PHONE_FIELDS if (u.get(f) or "").strip()]
            # Without an old number in the case, only the first phone field counts as "the" phone.
            for f in held if fix.old_phones else held[:1]:
                phone = corrected_single(u[f], *phone_fix(fix))
                if phone:
                    payload[f] = phone
            if payload:
                plan.changes.append(Change("user", str(uid), tuple(sorted(payload)), payload))
        return plan

    def apply(self, clients: Clients, change: Change) -> None:
        clients.client(SYSTEM).update_user(int(change.record_id), change.payload)
