"""Pipedrive banner: the person's ``marketing_status`` becomes ``unsubscribed``, and/or a label
or custom field the company uses for "no marketing" is set; verified by reading the person back.

Pipedrive accepts ``marketing_status`` only with the Campaigns add-on, allows one change of it
per person, and ignores a forbidden change silently (``connectors/pipedrive.py``), so the
status alone may not stick. Settings (read when a ban runs, ``contact_register/requests/writeback/pipedrive.py``):

- ``PIPEDRIVE_BAN_LABEL_ID``: id of a person label (e.g. "Ei markkinointia") added to the person;
- ``PIPEDRIVE_BAN_FIELD`` / ``PIPEDRIVE_BAN_FIELD_VALUE``: a custom field key and the value
  that means "no marketing" (digits are sent as a number, i.e. an enum option id).

A person counts as banned when any of these reads back as set. With neither configured and the
status refused, the ban fails with that explanation rather than pass unverified.

Persons are found as for every right (``writeback/pipedrive.py``: the warehouse's links plus a live
exact-email search), so a record created since the last sync is banned too.
"""

from __future__ import annotations

from contact_register.requests.writeback.base import Clients, Outcome, WritebackSubject
from contact_register.requests.writeback.pipedrive import BAN_SETTINGS, BANNED_STATUS, mark_from_env, subject_persons

SYSTEM = "pipedrive"


class PipedriveBanner:
    system = SYSTEM

    def ban(self, clients: Clients, subject: WritebackSubject) -> Outcome:
        settings = mark_from_env(BAN_SETTINGS)
        client = clients.client(SYSTEM)
        persons = subject_persons(client, subject)
        if not persons:
            return Outcome(SYSTEM, "not_found", 0, detail="no live person record")
        written, refused = 0, []
        for pid, person in persons.items():
            if settings.marks(person) and not settings.changes_for(person):
                continue  # already banned: a second run only reads
            changes = settings.changes_for(person)
            if changes:
                client.update("persons", pid, changes)
            if person.get("marketing_status") != BANNED_STATUS:
                client.set_marketing_status(pid, BANNED_STATUS)
            written += 1
            if not settings.marks(client.get("persons", pid)):
                refused.append(pid)
        if refused:
            return Outcome(SYSTEM, "failed", len(persons), error=(
                f"{len(refused)} person record(s) still open to marketing after the write "
                f"(ids {', '.join(map(str, refused[:20]))}): Pipedrive refused the marketing status "
                "(no Campaigns add-on, no email, or its once-only rule); set PIPEDRIVE_BAN_LABEL_ID "
                "or PIPEDRIVE_BAN_FIELD so the ban has a mark that sticks"))
        return Outcome(SYSTEM, "done", len(persons),
                       detail=f"{len(persons)} person records banned ({written} written now)")

    def verify(self, clients: Clients, subject: WritebackSubject) -> list[str]:
        settings = mark_from_env(BAN_SETTINGS)
        persons = subject_persons(clients.client(SYSTEM), subject)
        return [f"person:{pid}" for pid, person in persons.items() if not settings.marks(person)]
