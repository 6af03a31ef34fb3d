"""Netvisor does no marketing: billing contacts and invoices, no consent or list to change
(``connectors.netvisor.MARKETING_BAN``). The ban is answered "not applicable" with the reason."""

from __future__ import annotations

from connectors.netvisor import MARKETING_BAN
from pipelines.writeback.base import Clients, Outcome, WritebackSubject

SYSTEM = "netvisor"
REASON = "Netvisor holds billing contacts and invoices; it sends no marketing and has no marketing-ban field."


class NetvisorBanner:
    system = SYSTEM
    not_applicable = REASON

    def ban(self, clients: Clients, subject: WritebackSubject) -> Outcome:
        return Outcome(SYSTEM, MARKETING_BAN, detail=REASON)

    def verify(self, clients: Clients, subject: WritebackSubject) -> list[str]:
        return []
