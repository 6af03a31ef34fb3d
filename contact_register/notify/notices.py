"""The notices an operator receives, built from ids, dates, system names and counts only.

- ``run_failure``: a job run failed (which job, which steps, the error, what it means);
- ``deadlines``: the daily list of overdue cases, cases due soon and open manual tasks;
- ``freshness``: systems whose raw tables have not been refreshed for too long.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Iterable

from contact_register.warehouse.checks.freshness import SystemSync
from contact_register.notify.message import Notice, scrub
from contact_register.requests.cases.casebook import Case, Register

MANUAL_OPEN = "manual_open"


@dataclass(frozen=True)
class StepFailure:
    step: str
    error: str  # the exception's class and message, scrubbed before it is shown


def run_failure_notice(job: str, run_id: str, failures: Iterable[StepFailure], *, run_message: str = "",
                       ui_url: str = "") -> Notice:
    failures = list(failures)
    lines = [f"The Dagster job {job} failed (run {run_id}).", ""]
    if failures:
        lines.append("Failed steps:")
        lines += [f"  - {f.step}: {scrub(f.error)}" for f in failures]
    elif run_message:
        lines.append(scrub(run_message))
    lines.append("")
    if job == "nightly_sync":
        lines.append("The published warehouse is the one from the last successful sync; analysts and request "
                     "jobs keep working on it. Each raw step resumes from its cursor on the next run.")
    else:
        lines.append("The request's case records what was done before the failure; re-run the job once the "
                     "cause is fixed (see the run's log).")
    if ui_url:
        lines.append(f"Run: {ui_url.rstrip('/')}/runs/{run_id}")
    return Notice("run_failure", f"{job} failed", tuple(lines),
                  {"job": job, "run_id": run_id, "failed_steps": [f.step for f in failures]})


def _open_systems(case: Case) -> list[str]:
    return sorted(s for s, st in case.systems.items() if st.state in ("pending", MANUAL_OPEN))


def _case_line(case: Case, today: date) -> str:
    due = date.fromisoformat(case.due_on)
    days = (due - today).days
    when = f"{-days} days overdue" if days < 0 else ("due today" if days == 0 else f"in {days} days")
    systems = ", ".join(f"{s} ({case.systems[s].state})" for s in _open_systems(case))
    return f"  - {case.case_id} ({case.kind}) due {case.due_on}, {when}" + (f"; open: {systems}" if systems else "")


def deadline_notice(register: Register, *, today: date, soon_days: int = 7,
                    stale: Iterable[SystemSync] = (), now: datetime | None = None) -> Notice | None:
    """Overdue cases, cases due within ``soon_days``, open manual tasks, and stale systems.
    None when there is nothing to report."""
    due = register.due(today=today, soon_days=soon_days)
    detailed = {c.case_id: register.get(c.case_id) for c in register.list_cases(status="open")}
    overdue = [detailed[c.case_id] for c in due["overdue"]]
    soon = [detailed[c.case_id] for c in due["due_soon"]]
    manual = [(cid, sorted(s for s, st in c.systems.items() if st.state == MANUAL_OPEN))
              for cid, c in sorted(detailed.items())]
    manual = [(cid, systems) for cid, systems in manual if systems]
    stale = list(stale)
    if not (overdue or soon or manual or stale):
        return None
    tasks = sum(len(systems) for _, systems in manual)
    lines = [f"Data-subject requests on {today.isoformat()}: {len(overdue)} overdue, {len(soon)} due within "
             f"{soon_days} days, {tasks} manual tasks open.", ""]
    if overdue:
        lines += ["Overdue (the one-month deadline has passed; answer now or record an extension's reason):"]
        lines += [_case_line(c, today) for c in overdue] + [""]
    if soon:
        lines += [f"Due within {soon_days} days:"] + [_case_line(c, today) for c in soon] + [""]
    if manual:
        lines += ["Manual tasks open (a system without an automatic answer: ask or check it by hand, then "
                  "record the answer with `contact-register request`):"]
        lines += [f"  - {cid}: {', '.join(systems)}" for cid, systems in manual] + [""]
    if due["held"]:
        lines += ["Answered, open only for a legal hold's follow-up erasure (nothing to do; not overdue): "
                  + ", ".join(c.case_id for c in due["held"]), ""]
    if stale:
        lines += ["Systems not refreshed lately (requests see their data as of the last successful sync):"]
        lines += [_sync_line(s, now) for s in stale] + [""]
    lines.append("Details: contact-register request show <case id>")
    facts = {"overdue": [c.case_id for c in overdue], "due_soon": [c.case_id for c in soon],
             "manual_open": {cid: systems for cid, systems in manual}, "stale_systems": [s.system for s in stale]}
    subject = f"{len(overdue)} overdue, {len(soon)} due soon, {tasks} manual tasks"
    return Notice("deadlines", subject, tuple(lines), facts)


def _sync_line(s: SystemSync, now: datetime | None) -> str:
    if s.last_success is None:
        return f"  - {s.system}: no successful sync of every table yet"
    age = f" ({(now - s.last_success).total_seconds() / 3600:.0f} hours ago)" if now else ""
    return f"  - {s.system}: last successful sync {s.last_success.isoformat(timespec='minutes')}{age}"


def freshness_notice(stale: Iterable[SystemSync], *, max_age: timedelta, now: datetime) -> Notice:
    stale = list(stale)
    hours = max_age.total_seconds() / 3600
    lines = [f"{len(stale)} system(s) not refreshed for more than {hours:g} hours:", ""]
    lines += [_sync_line(s, now) for s in stale]
    lines += ["", "The warehouse, exports and erasures see these systems as of their last successful sync. "
              "Look for failed nightly_sync runs, expired credentials or a paused schedule."]
    return Notice("freshness", f"stale data: {', '.join(s.system for s in stale)}", tuple(lines),
                  {"systems": {s.system: s.last_success.isoformat() if s.last_success else None for s in stale},
                   "max_age_hours": hours})
