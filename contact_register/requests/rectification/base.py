"""What a rectifier works with: the case's corrections, which old values they replace, and the
plan of record changes. Shared by every ``contact_register/requests/rectification/<system>.py``.

A correction replaces what the system *holds*: an email or phone is replaced where a record
carries one of the old values the requester identified themselves with (the case's
identifiers), or, when the case names none of that kind, the record's first (primary) one; a
record without any email or phone does not get one added. A name or title is set where the
record has such a field. So a run after a successful one plans nothing (idempotent).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable, Protocol

from contact_register.warehouse.normalize import normalize_email, normalize_phone
from contact_register.requests.writeback.base import Clients, Outcome, WritebackSubject


@dataclass(frozen=True)
class Fix:
    """The corrections (field -> new value, normalised) and the old values they replace."""

    corrections: dict[str, str]
    old_emails: frozenset[str] = frozenset()
    old_phones: frozenset[str] = frozenset()

    @classmethod
    def for_subject(cls, subject: WritebackSubject, corrections: dict[str, str]) -> Fix:
        ids = subject.identifiers
        return cls(dict(corrections), frozenset(ids.emails), frozenset(ids.phones))

    def get(self, name: str) -> str | None:
        return self.corrections.get(name)

    def finder(self, subject: WritebackSubject) -> WritebackSubject:
        """The subject as a live search should see them: old values and corrected ones, so that a
        record corrected by an earlier run is still found (and verified)."""
        def plus(values: list[str], new: str | None) -> list[str]:
            return sorted(set(values) | ({new} if new else set()))

        return dataclasses.replace(subject, emails=plus(subject.emails, self.get("email")),
                                   phones=plus(subject.phones, self.get("phone")),
                                   names=plus(subject.names, self.get("name")))

    def name_differs(self, current: str | None) -> bool:
        """A name field to correct: the record has a name and it is not the corrected one."""
        new = self.get("name")
        return bool(new and current and current.strip() and current.strip() != new)


def positions_to_fix(values: list[str], old: frozenset[str], new: str, norm: Callable[[str], str | None]) -> list[int]:
    """Indexes of ``values`` that the corrected value ``new`` replaces (see the module doc)."""
    if not values:
        return []
    normed = [norm(v) for v in values]
    hits = [i for i, n in enumerate(normed) if n in old] if old else [0]
    if all(normed[i] == new for i in hits) and normed.count(new) <= 1:
        return []
    return hits


def corrected_single(value: str | None, old: frozenset[str], new: str | None, norm) -> str | None:
    """The new value for a one-valued field, or None when it needs no change."""
    if not new or not value or not value.strip():
        return None
    return new if positions_to_fix([value], old, new, norm) else None


def corrected_items(items: list, old: frozenset[str], new: str | None, norm) -> list[dict] | None:
    """A Pipedrive-style list of ``{"value", "label", "primary"}`` with the old values replaced by
    ``new`` (label and primary kept, duplicates of ``new`` dropped), or None when unchanged."""
    if not new:
        return None
    items = [i if isinstance(i, dict) else {"value": i} for i in items or []]
    values = [str(i.get("value") or "") for i in items]
    hits = set(positions_to_fix(values, old, new, norm))
    if not hits:
        return None
    out, has_new = [], False
    for i, item in enumerate(items):
        if i in hits or norm(values[i]) == new:
            if not has_new:
                out.append({**item, "value": new})
                has_new = True
        else:
            out.append(item)
    return out


def email_fix(fix: Fix):
    return fix.old_emails, fix.get("email"), normalize_email


def phone_fix(fix: Fix):
    return fix.old_phones, fix.get("phone"), normalize_phone


@dataclass
class Change:
    """One record to correct. ``payload`` holds the new values (personal data: never logged or
    recorded); ``fields`` only their names."""

    record_kind: str
    record_id: str
    fields: tuple[str, ...]
    payload: dict = field(default_factory=dict, repr=False)

    def ref(self) -> str:
        return f"{self.record_kind}:{self.record_id}"


@dataclass
class Plan:
    """The subject's records found in a system and the changes they still need. ``manual``: what
    a person must correct by hand (no API route), without personal data."""

    found: int = 0
    changes: list[Change] = field(default_factory=list)
    manual: str | None = None


class Rectifier(Protocol):
    system: str

    def plan(self, clients: Clients, subject: WritebackSubject, fix: Fix) -> Plan: ...

    def apply(self, clients: Clients, change: Change) -> None: ...


class Answerer(Protocol):
    """A system the rectification answers without writing (``without_api.py``)."""

    system: str

    def answer(self, subject: WritebackSubject) -> Outcome: ...
