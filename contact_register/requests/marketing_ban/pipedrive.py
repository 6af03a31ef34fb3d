"""Pipedrive banner: the person's ``marketing_status`` becomes ``unsubscribed``, and/or a label
or custom field the company uses for "no marketing" is set; verified by reading the person back.

Pipedrive accepts ``marketing_status`` only with the Campaigns add-on, allows one change of it
per person, and ignores a forbidden change silently (``connectors/pipedrive.py``), so the
status alone may not stick. Settings (read when a ban runs):

- ``PIPEDRIVE_BAN_LABEL_ID``: id of a person label (e.g. "Ei markkinointia") added to the person;
- ``PIPEDRIVE_BAN_FIELD`` / ``PIPEDRIVE_BAN_FIELD_VALUE``: a custom field key and the value
  that means "no marketing" (digits are sent as a number, i.e. an enum option id).

A person counts as banned when any of these reads back as set. With neither configured and the
status refused, the ban fails with that explanation rather than pass unverified.

Persons are the warehouse's links plus a live exact-email search (a hit counts only when its
name is the subject's: ``contact_register/requests/erasure/matching.py``), so a record created since the last
sync is banned too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from connectors.errors import NotFoundError
from contact_register.requests.erasure.matching import is_subject_record
from contact_register.requests.writeback.base import Clients, Outcome, WritebackSubject

SYSTEM = "pipedrive"
BANNED_STATUS = "unsubscribed"


@dataclass(frozen=True)
class BanSettings:
    label_id: int | None = None
    field_key: str | None = None
    field_value: str | int | None = None

    @classmethod
    def from_env(cls) -> BanSettings:
        label = os.environ.get("PIPEDRIVE_BAN_LABEL_ID", "").strip()
        if label and not label.isdigit():
            raise ValueError("PIPEDRIVE_BAN_LABEL_ID must be a label id (a whole number)")
        key = os.environ.get("PIPEDRIVE_BAN_FIELD", "").strip() or None
        value: str | int | None = os.environ.get("PIPEDRIVE_BAN_FIELD_VALUE", "").strip() or None
        if key and value is None:
            raise ValueError("PIPEDRIVE_BAN_FIELD needs PIPEDRIVE_BAN_FIELD_VALUE")
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        return cls(int(label) if label else None, key, value)

    def marks(self, person: dict) -> list[str]:
        """Which of the ban's marks the person carries."""
        out = []
        if person.get("marketing_status") == BANNED_STATUS:
            out.append("status")
        if self.label_id is not None and self.label_id in (person.get("label_ids") or []):
            out.append("label")
        custom = person.get("custom_fields") if isinstance(person.get("custom_fields"), dict) else {}
        if self.field_key and custom.get(self.field_key) == self.field_value:
            out.append("field")
        return out

    def changes_for(self, person: dict) -> dict:
        """The label and field writes the person still needs (the status is set separately)."""
        changes: dict = {}
        labels = list(person.get("label_ids") or [])
        if self.label_id is not None and self.label_id not in labels:
            changes["label_ids"] = sorted(set(labels) | {self.label_id})
        custom = person.get("custom_fields") if isinstance(person.get("custom_fields"), dict) else {}
        if self.field_key and custom.get(self.field_key) != self.field_value:
            changes["custom_fields"] = {self.field_key: self.field_value}
        return changes


def _values(items) -> list[str]:
    return [str(i.get("value") if isinstance(i, dict) else i) for i in items or []]


class PipedriveBanner:
    system = SYSTEM

    def _persons(self, client, subject: WritebackSubject) -> dict[int, dict]:
        ids = {int(v) for v in subject.records_of(SYSTEM).get("person", []) if str(v).isdigit()}
        for email in subject.emails:
            for hit in client.search_persons(email, exact_match=True, fields="email"):
                item = hit.get("item", hit) if isinstance(hit, dict) else {}
                if isinstance(item.get("id"), int) and is_subject_record(
                        subject, name=item.get("name"), emails=_values(item.get("emails")) or [email]):
                    ids.add(item["id"])
        out = {}
        for pid in sorted(ids):
            try:
                person = client.get("persons", pid)
            except NotFoundError:
                continue
            if person.get("is_deleted") is not True and person.get("active_flag") is not False:
                out[pid] = person
        return out

    def ban(self, clients: Clients, subject: WritebackSubject) -> Outcome:
        settings = BanSettings.from_env()
        client = clients.client(SYSTEM)
        persons = self._persons(client, subject)
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
        settings = BanSettings.from_env()
        persons = self._persons(clients.client(SYSTEM), subject)
        return [f"person:{pid}" for pid, person in persons.items() if not settings.marks(person)]
