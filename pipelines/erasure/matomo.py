"""Matomo eraser: every visit of the person is deleted with ``PrivacyManager.deleteDataSubjects``.

Visits are found by the userId the tracked site derives from the person's e-mail and by the
visitorIds of those visits (``connectors/matomo.py``). A search shows at most 401 visits, so the
client deletes and searches again until nothing is found; Matomo itself invalidates the
affected archived reports. Sites where the visitor log or profile is off are not searched by
Matomo (silently): that setting is the deployment's to keep on.
"""

from __future__ import annotations

from datetime import date

from pipelines.erasure.registry import register_eraser
from pipelines.writeback.base import Clients, Outcome, PlannedStep, WritebackSubject

SYSTEM = "matomo"


def _visit_ids(visits: list[dict]) -> list[str]:
    return [f"{v['idSite']}:{v['idVisit']}" for v in visits]


class MatomoEraser:
    system = SYSTEM

    def plan(self, clients: Clients, subject: WritebackSubject, today: date) -> list[PlannedStep]:
        visits, capped = clients.client(SYSTEM).find_visits(subject.emails)
        detail = "visit and its actions and conversions deleted" + (
            " (more than 401 visits: the rest are found and deleted in further rounds)" if capped else "")
        return [PlannedStep(SYSTEM, "visit", rid, "delete", detail) for rid in _visit_ids(visits)]

    def execute(self, clients: Clients, subject: WritebackSubject, steps: list[PlannedStep]) -> Outcome:
        if not steps:
            return Outcome(SYSTEM, "not_found")
        counts = clients.client(SYSTEM).erase(subject.emails)
        rows = ", ".join(f"{table} {n}" for table, n in sorted(counts.items()) if n)
        return Outcome(SYSTEM, "done", records=counts.get("log_visit", 0),
                       detail=f"deleted rows: {rows or 'none (already deleted)'}; "
                              "Matomo re-archives the affected reports")

    def verify(self, clients: Clients, subject: WritebackSubject) -> list[str]:
        visits, _capped = clients.client(SYSTEM).find_visits(subject.emails)
        return [f"visit:{rid}" for rid in _visit_ids(visits)]


register_eraser(MatomoEraser())
