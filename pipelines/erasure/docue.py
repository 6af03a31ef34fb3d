"""Docue eraser: a manual task. Docue's API has no delete or anonymise route, and Docue (a
processor) may not change document content without the customer's authorisation; signed
contracts may also be under legal retention. The plan lists every contract party (signer
record) of the person, ``<document id>/<signature id>``, so the officer knows exactly what to
erase or anonymise in Docue's UI or through its support; nothing is changed through the API.
"""

from __future__ import annotations

from datetime import date

from pipelines.erasure.registry import register_eraser
from pipelines.writeback.base import Clients, Outcome, PlannedStep, WritebackSubject

SYSTEM = "docue"
TASK = ("no erasure API: erase or anonymise the signer in Docue (UI or support); "
        "check first whether the contract must be kept (legal retention)")


class DocueEraser:
    system = SYSTEM

    def plan(self, clients: Clients, subject: WritebackSubject, today: date) -> list[PlannedStep]:
        parties = clients.client(SYSTEM).find_parties(subject.emails)
        return [PlannedStep(SYSTEM, "contract_party", f"{doc.get('id')}/{signer.get('id')}", "manual", TASK)
                for doc, signer in parties]

    def execute(self, clients: Clients, subject: WritebackSubject, steps: list[PlannedStep]) -> Outcome:
        if not steps:
            return Outcome(SYSTEM, "not_found")
        documents = {s.record_id.split("/")[0] for s in steps}
        return Outcome(SYSTEM, "manual_open", records=0,
                       detail=f"{len(steps)} contract parties in {len(documents)} documents to erase or anonymise "
                              "by hand in Docue (the API is read-only)")

    def verify(self, clients: Clients, subject: WritebackSubject) -> list[str]:
        return []  # nothing is changed through the API; the manual task carries the rest


register_eraser(DocueEraser())
