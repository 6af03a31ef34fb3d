"""Matomo eraser: every visit of the person is deleted with ``PrivacyManager.deleteDataSubjects``.

Visits are found by the userId the tracked site derives from the person's e-mail and by the
visitorIds of those visits (``connectors/matomo.py``). A search shows at most 401 visits, so the
client deletes and searches again until nothing is found; Matomo itself invalidates the
affected archived reports.

Matomo's empty answer proves nothing (the Live plugin off, a site with its visitor log or
profile off, "anonymize User ID" on): each such gap the search reports becomes a manual step
``search`` ``<key>`` marked "unverified", so the system ends ``manual_open`` (the visits found
are still deleted), never ``not_found``.
"""

from __future__ import annotations

from datetime import date

from contact_register.requests.writeback.base import Clients, Outcome, PlannedStep, WritebackSubject

SYSTEM = "matomo"


def _visit_ids(visits: list[dict]) -> list[str]:
    return [f"{v['idSite']}:{v['idVisit']}" for v in visits]


class MatomoEraser:
    system = SYSTEM

    def plan(self, clients: Clients, subject: WritebackSubject, today: date) -> list[PlannedStep]:
        search = clients.client(SYSTEM).find_visits(subject.emails)
        detail = "visit and its actions and conversions deleted" + (
            " (more than 401 visits: the rest are found and deleted in further rounds)" if search.capped else "")
        steps = [PlannedStep(SYSTEM, "visit", rid, "delete", detail) for rid in _visit_ids(search.visits)]
        steps += [PlannedStep(SYSTEM, "search", key, "manual", f"unverified: {reason}")
                  for key, reason in sorted(search.unverified.items())]
        return steps

    def execute(self, clients: Clients, subject: WritebackSubject, steps: list[PlannedStep]) -> Outcome:
        if not steps:
            return Outcome(SYSTEM, "not_found")
        unverified = [s.record_id for s in steps if s.action == "manual"]
        state = "manual_open" if unverified else "done"
        gaps = f"; unverified ({', '.join(unverified)}): search by hand in Matomo's GDPR tool" if unverified else ""
        if not any(s.action == "delete" for s in steps):
            return Outcome(SYSTEM, state, detail=f"no visit deleted{gaps}")
        counts = clients.client(SYSTEM).erase(subject.emails)
        rows = ", ".join(f"{table} {n}" for table, n in sorted(counts.items()) if n)
        return Outcome(SYSTEM, state, records=counts.get("log_visit", 0),
                       detail=f"deleted rows: {rows or 'none (already deleted)'}; "
                              f"Matomo re-archives the affected reports{gaps}")

    def verify(self, clients: Clients, subject: WritebackSubject) -> list[str]:
        return [f"visit:{rid}" for rid in _visit_ids(clients.client(SYSTEM).find_visits(subject.emails).visits)]
