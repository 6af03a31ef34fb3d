"""The per-system contract of the write-back jobs (``erasure``, ``marketing_ban``, ...).

A job resolves the case's person in the warehouse into a :class:`WritebackSubject`, then asks
each system's handler, found in a registry by system name, to act on it. Handlers are plain
Python over the connectors (no Dagster in them), so they can be driven from the jobs, the CLI
and the tests alike.

- An eraser (``contact_register/requests/erasure/<system>.py``) answers ``plan`` (what would be deleted, masked,
  held or left to a manual task: a dry run), ``execute`` (idempotent: running it again after a
  crash or a success does no further harm) and ``verify`` (re-reads the system; returns what
  remains, empty when the person is gone).
- A banner (``contact_register/requests/marketing_ban/<system>.py``) answers ``ban`` and ``verify``, or says
  "not applicable" with a reason.

Everything a handler returns ends up in the case, in logs and in Dagster metadata, so it
carries record ids, counts, states and dates, never names, emails or phone numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

import duckdb

from contact_register.requests.export.export import find_subject
from contact_register.requests.export.exporters import Clients  # API clients by system, opened on first use
from contact_register.description import load_description
from contact_register.requests.cases.identifiers import Identifiers

# What a planned step does to one record.
STEP_ACTIONS = ("delete", "mask", "hold", "keep", "manual")


@dataclass
class WritebackSubject:
    """The person a case is about, as the warehouse knows them.

    ``emails``/``phones`` are every normalised identifier of the person: those the requester gave
    plus those the warehouse links to the same person (aliases, other systems' spellings), so a
    handler can find the person in a system the warehouse has not synced yet.
    """

    case_id: str
    identifiers: Identifiers
    person_ids: list[str] = field(default_factory=list)
    records: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # system -> kind -> record ids
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    ambiguous_identifiers: int = 0

    def records_of(self, system: str) -> dict[str, list[str]]:
        return self.records.get(system, {})


def resolve_subject(con: duckdb.DuckDBPyConnection, case_id: str, ids: Identifiers) -> WritebackSubject:
    """The case's person from the warehouse (the same matching as the subject export)."""
    found = find_subject(con, ids)
    emails, phones, names = set(ids.emails), set(ids.phones), set([ids.name] if ids.name else [])
    if found.person_ids:
        for kind, value_norm, value_raw in con.execute(
            """SELECT DISTINCT i.kind, i.value_norm, i.value_raw
               FROM person_identifiers i JOIN person_records r
                 ON r.system = i.system AND r.record_kind = i.record_kind AND r.record_id = i.record_id
               WHERE r.person_id IN (SELECT unnest(?::VARCHAR[])) AND i.kind IN ('email', 'phone', 'name')""",
            [found.person_ids],
        ).fetchall():
            if kind == "email" and value_norm:
                emails.add(value_norm)
            elif kind == "phone" and value_norm:
                phones.add(value_norm)
            elif kind == "name" and value_raw:
                names.add(value_raw)
    return WritebackSubject(
        case_id=case_id, identifiers=ids, person_ids=found.person_ids, records=found.records,
        emails=sorted(emails), phones=sorted(phones), names=sorted(names),
        ambiguous_identifiers=found.ambiguous_identifiers,
    )


@dataclass
class PlannedStep:
    """One record's fate. ``detail`` says why (policy, hold rule), without personal data."""

    system: str
    record_kind: str
    record_id: str
    action: str  # one of STEP_ACTIONS
    detail: str = ""
    held_until: date | None = None

    def __post_init__(self) -> None:
        if self.action not in STEP_ACTIONS:
            raise ValueError(f"unknown step action {self.action!r}")


@dataclass
class Outcome:
    """A system's answer, recorded in the case as its per-system state
    (``contact_register.requests.cases.SYSTEM_STATES``: done, not_found, failed, held, manual_open,
    not_applicable ...)."""

    system: str
    state: str
    records: int = 0
    detail: str | None = None
    error: str | None = None
    held_until: date | None = None


class Eraser(Protocol):
    system: str

    def plan(self, clients: Clients, subject: WritebackSubject, today: date) -> list[PlannedStep]: ...

    def execute(self, clients: Clients, subject: WritebackSubject, steps: list[PlannedStep]) -> Outcome: ...

    def verify(self, clients: Clients, subject: WritebackSubject) -> list[str]: ...


class Banner(Protocol):
    system: str

    def ban(self, clients: Clients, subject: WritebackSubject) -> Outcome: ...

    def verify(self, clients: Clients, subject: WritebackSubject) -> list[str]: ...


def mark_uncovered_systems_manual(register, case, covered, *, actor: str, detail: str) -> None:
    """Processors of the register description that no handler in ``covered`` answers become
    ``manual_open`` tasks with ``detail`` (what to do by hand); a system already answered keeps
    its state."""
    for processor in load_description().get("processors", []):
        system = processor["system"]
        prior = case.systems.get(system)
        if system not in covered and (prior is None or prior.state == "pending"):
            register.set_system_state(case.case_id, system, "manual_open", actor=actor, detail=detail)


def answered_by_officer(prior, state: str) -> bool:
    """Whether a system's new ``state`` would reopen a manual task the officer has answered
    already (``prior`` is the case's current state of the system, or None). A re-run keeps the
    officer's answer instead of asking again."""
    return prior is not None and prior.state == "manual_answered" and state == "manual_open"
