"""Pipedrive rectifier: the person's ``name``, ``emails``, ``phones`` and ``job_title`` (v2 PATCH).

Persons are the warehouse's links plus a live exact-email search by the old and the corrected
addresses (a hit counts only when its name is the subject's, old or corrected:
``contact_register/requests/erasure/matching.py``), so a record created since the last sync is corrected too
and one corrected by an earlier run is found again for the read-back.
"""

from __future__ import annotations

from contact_register.requests.rectification.base import Change, Fix, Plan, corrected_items, email_fix, phone_fix
from contact_register.requests.writeback.base import Clients, WritebackSubject
from contact_register.requests.writeback.pipedrive import subject_persons

SYSTEM = "pipedrive"


class PipedriveRectifier:
    system = SYSTEM

    def plan(self, clients: Clients, subject: WritebackSubject, fix: Fix) -> Plan:
        # The banner's look-up: warehouse links + live exact-email search, live records only.
        persons = subject_persons(clients.client(SYSTEM), fix.finder(subject))
        plan = Plan(found=len(persons))
        for pid, person in persons.items():
            payload: dict = {}
            if fix.name_differs(person.get("name")):
                payload["name"] = fix.get("name")
            emails = corrected_items(person.get("emails"), *email_fix(fix))
            if emails is not None:
                payload["emails"] = emails
            phones = corrected_items(person.get("phones"), *phone_fix(fix))
            if phones is not None:
                payload["phones"] = phones
            if fix.get("title") and (person.get("job_title") or "") != fix.get("title"):
                payload["job_title"] = fix.get("title")
            if payload:
                plan.changes.append(Change("person", str(pid), tuple(sorted(payload)), payload))
        return plan

    def apply(self, clients: Clients, change: Change) -> None:
        clients.client(SYSTEM).update("persons", int(change.record_id), change.payload)
