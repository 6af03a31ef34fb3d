"""The erasure of one case, without Dagster: plan -> approval -> execution -> verification.

``run_erasure`` is what the ``erasure`` job runs (and what tests and the CLI can drive):

1. The case must be an open, identity-verified erasure case. Its person is resolved in the
   warehouse (when there is one) into a :class:`WritebackSubject`, narrowed to the identifiers
   that are theirs alone (``matching.narrow_to_personal``).
2. Plan: every eraser says what it would delete, mask, hold or leave to a person. The plan is
   appended to the case's audit trail (record ids and actions, never personal data). A dry run
   stops here and touches nothing else.
3. Approval: without an ``erasure`` approval in the case, stop after the plan. Once approved,
   the person's identifiers go on the suppression list (keyed hashes) before any system is
   touched, so a contact re-collected later is recognised even if this run fails midway.
4. Execution and verification per system, each answer recorded with ``set_system_state``:
   a system already answered (done / not found / manual) whose fresh plan has nothing left to
   delete or mask is left alone ("re-verified"), so a re-run never repeats harm; anything
   else is executed and then re-read by ``verify``. What remains makes the system ``failed``
   with the record ids. One system failing (down, refusing) does not stop the others.
5. Our own stores last (``own_stores``), once no system is failed, held or pending and every
   manual task is answered: erasing them removes the identifiers a re-run, the hold's follow-up
   or the officer doing a manual task would need.

A held system (Netvisor bookkeeping hold) keeps ``held`` with ``held_until`` = the hold's last
day; ``due_followups`` lists the cases whose holds have ended, for the daily sensor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Callable

import duckdb

from connectors.clock import today_helsinki
from connectors.errors import SafeMessage, describe
from contact_register.requests.erasure.matching import narrow_to_personal
from contact_register.requests.cases.casebook import Register
from contact_register.requests.suppression.store import SuppressionList, add_subject, subject_values
from contact_register.requests.writeback.base import (Clients, Eraser, Outcome, PlannedStep, WritebackSubject,
                                      mark_uncovered_systems_manual, resolve_subject)

OWN_STORES = "own_stores"
APPROVAL_ACTION = "erasure"
# Prior answers that a clean re-read confirms; a re-run leaves them as they are.
SETTLED = ("done", "not_found", "not_applicable", "manual_open", "manual_answered")
MAX_ERROR = 1500


class ErasureRefused(SafeMessage, RuntimeError):
    """The case cannot be erased (wrong kind, closed, identity not verified)."""


@dataclass
class SystemResult:
    system: str
    state: str
    steps: list[PlannedStep] = field(default_factory=list)
    records: int | None = None
    detail: str | None = None
    error: str | None = None
    held_until: date | None = None
    remaining: list[str] = field(default_factory=list)
    reverified: bool = False

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.steps:
            out[s.action] = out.get(s.action, 0) + 1
        return out


@dataclass
class ErasureResult:
    case_id: str
    dry_run: bool
    persons_found: int
    systems: dict[str, SystemResult] = field(default_factory=dict)
    stopped: str | None = None  # why execution did not start (no approval)
    # Identifiers not searched live because they are a role mailbox or also another person's:
    # the run page shows the count, as a system's "not found" may then be incomplete.
    identifiers_dropped: dict[str, int] = field(default_factory=dict)

    def failed(self) -> dict[str, SystemResult]:
        return {s: r for s, r in self.systems.items() if r.state == "failed"}


def resolve_case_subject(case, warehouse_path: Path | None) -> tuple[WritebackSubject, dict[str, int]]:
    ids = case.identifiers_obj()
    if warehouse_path is not None and Path(warehouse_path).exists():
        con = duckdb.connect(str(warehouse_path), read_only=True)
        try:
            subject = resolve_subject(con, case.case_id, ids)
            dropped = narrow_to_personal(subject, con)
        finally:
            con.close()
    else:
        subject = WritebackSubject(case.case_id, ids, emails=sorted(ids.emails), phones=sorted(ids.phones),
                                   names=[ids.name] if ids.name else [])
        dropped = narrow_to_personal(subject, None)
    return subject, dropped


def _remember_planned_records(subject: WritebackSubject, audit: list[dict]) -> None:
    """Add the record ids of earlier plans of this case to the subject's records: once our own
    stores are erased, the warehouse and the case no longer know the person, yet a re-run can
    still re-read those records by id (ids are not personal data)."""
    for event in audit:
        if event["action"] != "erasure_planned":
            continue
        for system, plan in (event["detail"].get("systems") or {}).items():
            kinds = subject.records.setdefault(system, {})
            for kind, record_id, *_ in plan.get("steps") or []:
                if record_id not in kinds.setdefault(kind, []):
                    kinds[kind].append(record_id)


def _plan_event(subject: WritebackSubject, plans: dict, dropped: dict, dry_run: bool) -> dict:
    systems = {}
    for system, plan in plans.items():
        if isinstance(plan, BaseException):
            systems[system] = {"error": describe(plan)}
        else:
            systems[system] = {"steps": [[s.record_kind, s.record_id, s.action, s.detail,
                                          s.held_until.isoformat() if s.held_until else None] for s in plan]}
    return {"dry_run": dry_run, "persons_found": len(subject.person_ids), "emails_used": len(subject.emails),
            "phones_used": len(subject.phones), "identifiers_dropped": dropped, "systems": systems}


def run_erasure(
    register: Register,
    case_id: str,
    *,
    clients: Clients,
    erasers: dict[str, Eraser],
    actor: str,
    warehouse_path: Path | None,
    dry_run: bool = False,
    own_stores: Callable[[WritebackSubject], Outcome],
    log: Callable[[str], None] = lambda _m: None,
) -> ErasureResult:
    today = today_helsinki()
    case = register.get(case_id)
    if case.kind != "erasure":
        raise ErasureRefused(f"case {case_id} is a {case.kind} case; the erasure job answers erasure cases")
    if case.status != "open":
        raise ErasureRefused(f"case {case_id} is closed")
    if not case.verified:
        raise ErasureRefused(f"case {case_id}: the requester's identity is not verified yet "
                             "(contact-register request verify)")
    subject, dropped = resolve_case_subject(case, warehouse_path)
    _remember_planned_records(subject, register.audit_trail(case_id))
    result = ErasureResult(case_id, dry_run, len(subject.person_ids), identifiers_dropped=dropped)

    plans: dict[str, list[PlannedStep] | BaseException] = {}
    for system, eraser in erasers.items():
        if not clients.has(system):
            plans[system] = RuntimeError(f"no API client configured for {system}")
            continue
        try:
            plans[system] = eraser.plan(clients, subject, today)
        except Exception as exc:  # a system down must not stop the others
            plans[system] = exc
    register.record_event(case_id, "erasure_dry_run" if dry_run else "erasure_planned",
                          _plan_event(subject, plans, dropped, dry_run), actor=actor)
    for system, plan in plans.items():
        prior = case.systems.get(system)
        if isinstance(plan, BaseException):
            result.systems[system] = SystemResult(system, "failed", error=describe(plan))
        else:
            result.systems[system] = SystemResult(system, prior.state if prior else "pending", steps=plan)
    if dry_run:
        return result
    if not register.approvals_for(case_id, APPROVAL_ACTION):
        result.stopped = (f"case {case_id} has no approval for erasure: the plan is recorded in the case; "
                          f"approve with `contact-register request approve {case_id} --action erasure` and run again")
        register.record_event(case_id, "erasure_stopped", {"reason": "no approval"}, actor=actor)
        return result
    _suppress(register, subject, actor)

    for system, eraser in erasers.items():
        res = result.systems[system]
        plan = plans[system]
        if isinstance(plan, BaseException):
            register.set_system_state(case_id, system, "failed", actor=actor, error=res.error)
            log(f"{system}: failed while planning")
            continue
        prior = case.systems.get(system)
        open_work = [s for s in plan if s.action in ("delete", "mask", "hold")]
        if prior is not None and prior.state in SETTLED and not open_work:
            res.state, res.reverified = prior.state, True
            register.record_event(case_id, "erasure_reverified", {"system": system, "state": prior.state},
                                  actor=actor)
            log(f"{system}: {prior.state} earlier; re-read, nothing left")
            continue
        _execute_one(register, case_id, system, eraser, clients, subject, plan, res, actor)
        log(f"{system}: {res.state}" + (f", {len(res.remaining)} records remain" if res.remaining else ""))

    mark_uncovered_systems_manual(register, case, erasers, actor=actor,
                                  detail="no automatic erasure for this system: erase by hand and record the answer")
    _own_stores_step(register, case, result, subject, own_stores, actor, log)
    return result


def _suppress(register: Register, subject: WritebackSubject, actor: str) -> None:
    """Before anything is erased, put the person on the suppression list, so that a re-collected
    contact is recognised even if a system fails midway (the privacy notice's promise). A missing
    key stops the run here, before any system is touched."""
    values = subject_values(subject)
    if not (values["email"] or values["phone"]):
        if SuppressionList(register).reasons_of(subject.case_id):
            return  # a re-run after our own stores were erased: listed already, the identifiers are hashes now
        # None known, or only role mailboxes (info@ ...) and identifiers others share, which
        # ``narrow_to_personal`` dropped: nothing personal to suppress. Checked here rather than
        # by catching add_subject's RegisterError, which would also hide a real fault.
        register.record_event(subject.case_id, "suppression_skipped", {"reason": "no personal email or phone"},
                              actor=actor)
        return
    add_subject(register, subject, reason="erasure", actor=actor)  # audited there, counts only


def _execute_one(register, case_id, system, eraser, clients, subject, plan, res: SystemResult, actor) -> None:
    try:
        outcome = eraser.execute(clients, subject, plan)
        remaining = eraser.verify(clients, subject)
    except Exception as exc:
        res.state, res.error = "failed", describe(exc)
        register.set_system_state(case_id, system, "failed", actor=actor, error=res.error)
        return
    res.records, res.detail, res.held_until = outcome.records, outcome.detail, outcome.held_until
    if remaining:
        res.state, res.remaining = "failed", remaining
        res.error = f"{len(remaining)} records remain after the erasure: {', '.join(remaining[:50])}"[:MAX_ERROR]
        register.set_system_state(case_id, system, "failed", actor=actor, records=outcome.records,
                                  detail=outcome.detail, error=res.error)
        return
    res.state, res.error = outcome.state, outcome.error
    register.set_system_state(case_id, system, outcome.state, actor=actor, records=outcome.records,
                              detail=outcome.detail, error=outcome.error, held_until=outcome.held_until)


def _own_stores_step(register, case, result: ErasureResult, subject, own_stores, actor, log) -> None:
    prior = case.systems.get(OWN_STORES)
    if prior is not None and prior.state == "done":
        result.systems[OWN_STORES] = SystemResult(OWN_STORES, "done", reverified=True)
        return
    waiting = sorted(s for s, r in result.systems.items() if r.state in ("failed", "held", "pending"))
    # An open manual task needs the identifiers too: the officer must still see whom to erase
    # by hand (Dealfront, the Secapp service, Trustmary's reviews ...). Answer it, run again.
    manual = sorted(s for s, st in register.get(case.case_id).systems.items()
                    if st.state == "manual_open" and s != OWN_STORES)
    if waiting or manual:
        reasons = [f"waits for {', '.join(waiting)}"] if waiting else []
        if manual:
            reasons.append(f"waits for the manual tasks of {', '.join(manual)} (record each answer with "
                           "`contact-register request answer CASE SYSTEM --note ...`, then run the erasure again)")
        detail = "; ".join(reasons) + ": the identifiers are needed until every system is finished"
        register.set_system_state(case.case_id, OWN_STORES, "pending", actor=actor, detail=detail)
        result.systems[OWN_STORES] = SystemResult(OWN_STORES, "pending", detail=detail)
        return
    res = SystemResult(OWN_STORES, "pending")
    try:
        outcome = own_stores(subject)
        res.state, res.records, res.detail, res.error = outcome.state, outcome.records, outcome.detail, outcome.error
    except Exception as exc:
        res.state, res.error = "failed", describe(exc)
    register.set_system_state(case.case_id, OWN_STORES, res.state, actor=actor, records=res.records,
                              detail=res.detail, error=res.error)
    result.systems[OWN_STORES] = res
    log(f"{OWN_STORES}: {res.state}")


def due_followups(register: Register, today: date | None = None) -> list[tuple[str, str]]:
    """(case id, hold end date) of open erasure cases with a held system whose hold has ended
    (``held_until`` is the last day the record must be kept, so the erasure is due the day after)."""
    today = today or today_helsinki()
    out = []
    for case in register.list_cases(status="open", kind="erasure"):
        ends = [st.held_until for st in register.get(case.case_id).systems.values()
                if st.state == "held" and st.held_until]
        if ends and max(ends) < today.isoformat():
            out.append((case.case_id, max(ends)))
    return out
