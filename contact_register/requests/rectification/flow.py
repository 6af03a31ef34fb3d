"""The rectification of one case (GDPR art. 16), without Dagster: plan -> approval -> apply ->
read back, every system's answer recorded in the case.

1. The case must be an open, identity-verified rectification case with corrected values
   (``corrections.py``). Its person is resolved as for an erasure (warehouse + identifiers of
   their own only, ``contact_register/requests/erasure/flow.resolve_case_subject``).
2. Plan: each rectifier finds the subject's records (by the old and the corrected values) and
   lists the fields each still needs. The plan goes into the audit trail as record ids and
   field names. A dry run stops here.
3. Approval: the officer confirms the corrected values are accurate
   (``contact-register request approve CASE --action rectification``); without it the run stops
   after the plan.
4. Each change is written, then the system is planned again: anything still to change makes
   the system ``failed`` with the record ids. A system whose records already hold the corrected
   values plans nothing and is recorded ``done`` again without a write (idempotent).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from connectors.errors import SafeMessage, describe
from contact_register.requests.erasure.flow import resolve_case_subject
from contact_register.requests.rectification.base import Fix, Plan
from contact_register.requests.rectification.corrections import load_corrections
from contact_register.requests.cases.casebook import Register
from contact_register.requests.writeback.base import Clients, answered_by_officer, mark_uncovered_systems_manual

APPROVAL_ACTION = "rectification"


class RectificationRefused(SafeMessage, RuntimeError):
    """The case cannot be rectified (wrong kind, closed, unverified, no corrections)."""


@dataclass
class SystemResult:
    system: str
    state: str
    found: int = 0
    changed: int = 0
    fields: dict[str, int] = field(default_factory=dict)  # field name -> records changed (or to change)
    detail: str | None = None
    error: str | None = None
    remaining: list[str] = field(default_factory=list)


@dataclass
class RectificationResult:
    case_id: str
    dry_run: bool
    persons_found: int
    systems: dict[str, SystemResult] = field(default_factory=dict)
    stopped: str | None = None

    def failed(self) -> dict[str, SystemResult]:
        return {s: r for s, r in self.systems.items() if r.state == "failed"}


def _field_counts(plan: Plan) -> dict[str, int]:
    out: dict[str, int] = {}
    for change in plan.changes:
        for f in change.fields:
            out[f] = out.get(f, 0) + 1
    return out


def _check_case(register: Register, case_id: str):
    case = register.get(case_id)
    if case.kind != "rectification":
        raise RectificationRefused(f"case {case_id} is a {case.kind} case; the rectification job answers "
                                   "rectification cases")
    if case.status != "open":
        raise RectificationRefused(f"case {case_id} is closed")
    if not case.verified:
        raise RectificationRefused(f"case {case_id}: the requester's identity is not verified yet "
                                   "(contact-register request verify)")
    corrections = load_corrections(register, case_id)
    if not corrections:
        raise RectificationRefused(f"case {case_id} has no corrected values: record them with "
                                   f"`contact-register request correct {case_id} --correct FIELD=VALUE`")
    return case, corrections


def run_rectification(register: Register, case_id: str, *, clients: Clients, handlers: dict, actor: str,
                      warehouse_path: Path | None, dry_run: bool = False,
                      log: Callable[[str], None] = lambda _m: None) -> RectificationResult:
    case, corrections = _check_case(register, case_id)
    subject, dropped = resolve_case_subject(case, warehouse_path)
    fix = Fix.for_subject(subject, corrections)
    result = RectificationResult(case_id, dry_run, len(subject.person_ids))

    plans: dict[str, Plan] = {}
    for system, handler in handlers.items():
        if hasattr(handler, "answer"):
            continue
        if not clients.has(system):
            result.systems[system] = SystemResult(system, "failed", error=f"no API client configured for {system}")
            continue
        try:
            plans[system] = handler.plan(clients, subject, fix)
        except Exception as exc:  # a system down must not stop the others
            result.systems[system] = SystemResult(system, "failed", error=describe(exc))
    register.record_event(case_id, "rectification_dry_run" if dry_run else "rectification_planned", {
        "fields": sorted(corrections), "persons_found": len(subject.person_ids), "identifiers_dropped": dropped,
        "systems": {s: {"found": p.found, "changes": [[c.record_kind, c.record_id, list(c.fields)] for c in p.changes],
                        "manual": p.manual} for s, p in plans.items()},
    }, actor=actor)
    for system, plan in plans.items():
        result.systems[system] = SystemResult(system, "pending", plan.found, fields=_field_counts(plan),
                                              detail=plan.manual)
    if dry_run:
        return result
    if not register.approvals_for(case_id, APPROVAL_ACTION):
        result.stopped = (f"case {case_id} has no approval for rectification: the plan is recorded in the case; "
                          f"check the corrected values and approve with `contact-register request approve {case_id} "
                          "--action rectification`, then run again")
        register.record_event(case_id, "rectification_stopped", {"reason": "no approval"}, actor=actor)
        return result

    for system, handler in handlers.items():
        prior = case.systems.get(system)
        if hasattr(handler, "answer"):
            outcome = handler.answer(subject)
            if answered_by_officer(prior, outcome.state):
                result.systems[system] = SystemResult(system, prior.state, detail=prior.detail)
                continue  # the officer has answered the task already
            result.systems[system] = SystemResult(system, outcome.state, outcome.records, detail=outcome.detail)
            register.set_system_state(case_id, system, outcome.state, actor=actor, records=outcome.records,
                                      detail=outcome.detail)
            continue
        res = result.systems[system]
        if system in plans:
            _apply_one(handler, clients, subject, fix, plans[system], res, prior)
        register.set_system_state(case_id, system, res.state, actor=actor, records=res.found,
                                  detail=res.detail, error=res.error)
        log(f"{system}: {res.state}, {res.found} records, {res.changed} changed")
    mark_uncovered_systems_manual(register, case, handlers, actor=actor,
                                  detail="no automatic rectification for this system: correct by hand")
    return result


def _apply_one(handler, clients, subject, fix: Fix, plan: Plan, res: SystemResult, prior) -> None:
    try:
        for change in plan.changes:
            handler.apply(clients, change)
            res.changed += 1
        remaining = handler.plan(clients, subject, fix).changes
    except Exception as exc:
        res.state, res.error = "failed", describe(exc)
        return
    fields = ", ".join(f"{f}: {n}" for f, n in sorted(res.fields.items()))
    if remaining:
        res.remaining = [c.ref() for c in remaining]
        res.state = "failed"
        res.error = (f"{len(remaining)} records do not read back corrected: "
                     f"{', '.join(res.remaining[:50])}")[:1500]
    elif plan.found == 0:
        res.state, res.detail = "not_found", "no record of the person"
    elif plan.manual:
        answered = prior is not None and prior.state == "manual_answered"
        res.state = "manual_answered" if answered else "manual_open"
        res.detail = f"{res.changed} records corrected ({fields or 'none needed'}); {plan.manual}"
    else:
        res.state = "done"
        res.detail = (f"{plan.found} records hold the corrected values; {res.changed} corrected now"
                      + (f" ({fields})" if fields else ""))
