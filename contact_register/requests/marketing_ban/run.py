"""Ban one subject in every system and record each system's answer in the case.

Shared by the ``marketing_ban`` job and the nightly suppression check. Each banner bans, then is
asked again (``verify``) by reading the system back: anything still open to marketing turns the
system's state into ``failed`` with the record ids, never a silent "done". A dry run only reads.
"""

from __future__ import annotations

from connectors.errors import describe
from contact_register.requests.marketing_ban.registry import BANNERS
from contact_register.requests.cases.casebook import Register
from contact_register.requests.writeback.base import Clients, Outcome, WritebackSubject, answered_by_officer


def ban_everywhere(clients: Clients, subject: WritebackSubject, *, systems=None, dry_run: bool = False
                   ) -> dict[str, Outcome]:
    """system -> Outcome, for every registered banner (or those in ``systems``; one without a
    banner becomes a manual task). In a dry run the state is ``pending`` and ``records`` counts
    what would still be banned."""
    out: dict[str, Outcome] = {}
    for system in sorted(set(systems or ()) - set(BANNERS)):
        out[system] = Outcome(system, "manual_open", detail="no automatic marketing ban for this system: ban by hand")
    for system, banner in sorted(BANNERS.items()):
        if systems is not None and system not in systems:
            continue
        if getattr(banner, "not_applicable", None):
            # Systems that do no marketing answer without a client (and write nothing).
            out[system] = banner.ban(clients, subject)
            continue
        if not clients.has(system):
            out[system] = Outcome(system, "failed", error=f"no {system} client configured in this code location")
            continue
        try:
            if dry_run:
                remaining = banner.verify(clients, subject)
                out[system] = Outcome(system, "pending", len(remaining),
                                      detail=f"dry run: {len(remaining)} records would be banned")
                continue
            outcome = banner.ban(clients, subject)
            if outcome.state in ("done", "not_found"):
                remaining = banner.verify(clients, subject)
                if remaining:
                    outcome = Outcome(system, "failed", outcome.records, detail=outcome.detail, error=(
                        f"{len(remaining)} records still open to marketing on read-back: {', '.join(remaining[:20])}"))
        except Exception as exc:  # one system's failure is recorded; the others still run
            outcome = Outcome(system, "failed", error=describe(exc))
        out[system] = outcome
    return out


def record_outcomes(register: Register, case_id: str, outcomes: dict[str, Outcome], *, actor: str) -> None:
    """Each system's answer as its state in the case (an open case), or as one trail event on a
    closed one (a ban applied again after the case closed)."""
    case = register.get(case_id)
    if case.status == "open":
        for o in outcomes.values():
            if answered_by_officer(case.systems.get(o.system), o.state):
                continue  # a re-run (or the nightly re-ban) keeps the officer's answer to a manual task
            register.set_system_state(case_id, o.system, o.state, actor=actor, records=o.records,
                                      detail=o.detail, error=o.error)
    else:
        register.record_event(case_id, "marketing_ban_applied", {
            s: {"state": o.state, "records": o.records, "detail": o.detail, "error": o.error}
            for s, o in outcomes.items()}, actor=actor)
