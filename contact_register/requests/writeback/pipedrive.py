"""What the rights share about Pipedrive: finding the subject's live person records (erasure,
marketing ban, rectification, restriction) and the label/field mark a right sets on them
(marketing ban, restriction).

Persons are the warehouse's links plus a live exact-email search (a hit counts only when its
name is the subject's: ``contact_register/requests/erasure/matching.py``), so a record created
since the last sync is found too.

A mark is a person label and/or a custom field with a value, configured by three settings that
share a prefix (``PIPEDRIVE_BAN`` for the marketing ban, ``PIPEDRIVE_RESTRICTION`` for the
restriction): ``<prefix>_LABEL_ID`` (a label id), ``<prefix>_FIELD`` and ``<prefix>_FIELD_VALUE``
(a custom field key and its value; digits are sent as a number, i.e. an enum option id). They are
read when a run starts, by :func:`mark_from_env` only.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from connectors.errors import NotFoundError
from contact_register.requests.erasure.matching import is_subject_record
from contact_register.requests.writeback.base import WritebackSubject

SYSTEM = "pipedrive"
BANNED_STATUS = "unsubscribed"
BAN_SETTINGS = "PIPEDRIVE_BAN"
RESTRICTION_SETTINGS = "PIPEDRIVE_RESTRICTION"


def contact_values(items) -> list[str]:
    """The values of a Pipedrive ``emails``/``phones`` list (dicts with ``value``, or plain strings)."""
    return [str(i.get("value") if isinstance(i, dict) else i) for i in items or []]


def subject_persons(client, subject: WritebackSubject, *, keep: Callable[[dict], bool] | None = None
                    ) -> dict[int, dict]:
    """person id -> the live (not deleted) person record, for the subject; ``keep`` drops more
    (the erasure drops persons it has already masked)."""
    ids = {int(v) for v in subject.records_of(SYSTEM).get("person", []) if str(v).isdigit()}
    for email in subject.emails:
        for hit in client.search_persons(email, exact_match=True, fields="email"):
            item = hit.get("item", hit) if isinstance(hit, dict) else {}
            if isinstance(item.get("id"), int) and is_subject_record(
                    subject, name=item.get("name"), emails=contact_values(item.get("emails")) or [email]):
                ids.add(item["id"])
    out = {}
    for pid in sorted(ids):
        try:
            person = client.get("persons", pid)
        except NotFoundError:
            continue
        if person.get("is_deleted") is True:  # v2 persons; active_flag was v1 and is not sent
            continue
        if keep is None or keep(person):
            out[pid] = person
    return out


@dataclass(frozen=True)
class PipedriveMark:
    """A label and/or a custom field value that a right sets on a person."""

    label_id: int | None = None
    field_key: str | None = None
    field_value: str | int | None = None

    @classmethod
    def parse(cls, label_id: str, field: str, field_value: str, *, settings: str) -> PipedriveMark:
        """The mark from its three settings' text; ``settings`` (their prefix) names them in errors."""
        label = label_id.strip()
        if label and not label.isdigit():
            raise ValueError(f"{settings}_LABEL_ID must be a label id (a whole number)")
        key = field.strip() or None
        value: str | int | None = field_value.strip() or None
        if key and value is None:
            raise ValueError(f"{settings}_FIELD needs {settings}_FIELD_VALUE")
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        return cls(int(label) if label else None, key, value)

    def is_set(self) -> bool:
        return self.label_id is not None or bool(self.field_key)

    def marks(self, person: dict) -> list[str]:
        """Which marks the person carries: ``status`` (marketing status unsubscribed), ``label``, ``field``."""
        out = []
        if person.get("marketing_status") == BANNED_STATUS:
            out.append("status")
        if self.label_id is not None and self.label_id in (person.get("label_ids") or []):
            out.append("label")
        if self.field_key and _custom(person).get(self.field_key) == self.field_value:
            out.append("field")
        return out

    def changes_for(self, person: dict) -> dict:
        """The label and field writes that put the mark on the person (the status is set separately)."""
        changes: dict = {}
        labels = list(person.get("label_ids") or [])
        if self.label_id is not None and self.label_id not in labels:
            changes["label_ids"] = sorted(set(labels) | {self.label_id})
        if self.field_key and _custom(person).get(self.field_key) != self.field_value:
            changes["custom_fields"] = {self.field_key: self.field_value}
        return changes

    def removal_for(self, person: dict) -> dict:
        """The label and field writes that take the mark off the person (the field is cleared)."""
        changes: dict = {}
        labels = list(person.get("label_ids") or [])
        if self.label_id is not None and self.label_id in labels:
            changes["label_ids"] = [label for label in labels if label != self.label_id]
        if self.field_key and _custom(person).get(self.field_key) == self.field_value:
            changes["custom_fields"] = {self.field_key: None}
        return changes


def mark_from_env(settings: str) -> PipedriveMark:
    """The mark configured under the prefix ``settings`` (``BAN_SETTINGS`` or ``RESTRICTION_SETTINGS``)."""
    return PipedriveMark.parse(os.environ.get(f"{settings}_LABEL_ID", ""), os.environ.get(f"{settings}_FIELD", ""),
                               os.environ.get(f"{settings}_FIELD_VALUE", ""), settings=settings)


def _custom(person: dict) -> dict:
    return person.get("custom_fields") if isinstance(person.get("custom_fields"), dict) else {}
