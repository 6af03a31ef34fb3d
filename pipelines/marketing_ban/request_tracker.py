"""Request Tracker does no marketing: support correspondence, no consent or list to change
(``connectors.request_tracker``: "Marketing ban: not applicable"). Answered with the reason."""

from __future__ import annotations

from pipelines.writeback.base import Clients, Outcome, WritebackSubject

SYSTEM = "request_tracker"
REASON = "Request Tracker holds support correspondence, not marketing consents or lists."


class RequestTrackerBanner:
    system = SYSTEM
    not_applicable = REASON

    def ban(self, clients: Clients, subject: WritebackSubject) -> Outcome:
        return Outcome(SYSTEM, "not_applicable", detail=REASON)

    def verify(self, clients: Clients, subject: WritebackSubject) -> list[str]:
        return []
