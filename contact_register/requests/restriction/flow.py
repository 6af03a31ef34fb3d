"""Apply or lift one restriction case, without Dagster.

Apply (``run_restriction``): the case must be an open, identity-verified restriction case. The
person is resolved as for an erasure (their own identifiers only); Pipedrive gets its mark
(``pipedrive.py``), the other systems answer as ``without_api.ANSWERS`` says, the keys and marked
records go into the register (``store.py``), so the next warehouse build flags the person
``restricted``. Each system's answer is the case's state. Applying again only re-reads.

Lift (``lift_restriction``): needs the operator's recorded decision (``contact-register request
lift-restriction CASE --reason ...``); works on an open or a closed case, from the marked record
ids (the identifiers may be gone). The marks are removed and read back, then the keys and marks
leave the register, so the next build no longer flags the person.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from connectors.errors import SafeMessage, describe
from contact_register.requests.erasure.flow import resolve_case_subject
from contact_register.requests.cases.casebook import Register
from contact_register.description import load_description
from contact_register.requests.restriction.pipedrive import PipedriveRestrictor
from contact_register.requests.restriction.store import add_restriction, is_active, lift_decided, marks_of, remove_restriction
from contact_register.requests.restriction.without_api import ANSWERS
from contact_register.requests.writeback.base import Clients, Outcome, answered_by_officer


class RestrictionRefused(SafeMessage, RuntimeError):
    """Wrong kind, closed or unverified case, or a lift without the operator's decision."""


@dataclass
class RestrictionResult:
    case_id: str
    dry_run: bool
    lift: bool
    persons_found: int = 0
    outcomes: dict[str, Outcome] = field(default_factory=dict)

    def failed(self) -> list[str]:
        return sorted(s for s, o in self.outcomes.items() if o.state == "failed")


def _restriction_case(register: Register, case_id: str):
    case = register.get(case_id)
    if case.kind != "restriction":
        raise RestrictionRefused(f"case {case_id} is a {case.kind} case; the restriction job answers restriction cases")
    return case


def run_restriction(register: Register, case_id: str, *, clients: Clients, actor: str,
                    warehouse_path: Path | None, dry_run: bool = False) -> RestrictionResult:
    case = _restriction_case(register, case_id)
    if case.status != "open":
        raise RestrictionRefused(f"case {case_id} is closed")
    if not case.verified:
        raise RestrictionRefused(f"case {case_id}: the requester's identity is not verified yet "
                                 "(contact-register request verify)")
    subject, _dropped = resolve_case_subject(case, warehouse_path)
    result = RestrictionResult(case_id, dry_run, False, len(subject.person_ids))
    restrictor = PipedriveRestrictor()
    marks: list[tuple[str, str, str]] = []
    if not clients.has(restrictor.system):
        result.outcomes[restrictor.system] = Outcome(restrictor.system, "failed", error="no API client configured")
    else:
        try:
            outcome, ids = restrictor.restrict(clients, subject, dry_run=dry_run)
            marks = [(restrictor.system, "person", rid) for rid in ids]
        except Exception as exc:  # recorded; the other systems and the register still follow
            outcome = Outcome(restrictor.system, "failed", error=describe(exc))
        result.outcomes[restrictor.system] = outcome
    systems = [p["system"] for p in load_description()["processors"]]
    for system in systems:
        if system not in result.outcomes:
            state, reason = ANSWERS.get(system, ("manual_open", "no restriction mark known: restrict by hand"))
            result.outcomes[system] = Outcome(system, state, detail=reason)
    if dry_run:
        return result
    if not subject.emails and not subject.phones and not marks:
        raise RestrictionRefused(f"case {case_id}: no personal email, phone or record to restrict by")
    add_restriction(register, subject, marks, actor=actor)
    for system, o in result.outcomes.items():
        if answered_by_officer(case.systems.get(system), o.state):
            continue  # answered by the officer already
        register.set_system_state(case_id, system, o.state, actor=actor, records=o.records, detail=o.detail,
                                  error=o.error)
    return result


def lift_restriction(register: Register, case_id: str, *, clients: Clients, actor: str,
                     dry_run: bool = False) -> RestrictionResult:
    _restriction_case(register, case_id)
    if not is_active(register, case_id):
        raise RestrictionRefused(f"case {case_id} has no active restriction")
    if not lift_decided(register, case_id):
        raise RestrictionRefused(f"case {case_id}: record the decision to lift first "
                                 f"(contact-register request lift-restriction {case_id} --reason ...)")
    result = RestrictionResult(case_id, dry_run, True)
    restrictor = PipedriveRestrictor()
    ids = [rid for system, _kind, rid in marks_of(register, case_id) if system == restrictor.system]
    if dry_run:
        result.outcomes[restrictor.system] = Outcome(restrictor.system, "pending", len(ids),
                                                     detail=f"dry run: {len(ids)} records would be unmarked")
        return result
    try:
        outcome = restrictor.lift(clients, ids) if ids else Outcome(restrictor.system, "not_found")
    except Exception as exc:
        outcome = Outcome(restrictor.system, "failed", error=describe(exc))
    result.outcomes[restrictor.system] = outcome
    detail = {s: {"state": o.state, "records": o.records, "detail": o.detail, "error": o.error}
              for s, o in result.outcomes.items()}
    if outcome.state == "failed":
        register.record_event(case_id, "restriction_lift_failed", detail, actor=actor)
    else:
        remove_restriction(register, case_id, actor=actor, detail=detail)
    return result
