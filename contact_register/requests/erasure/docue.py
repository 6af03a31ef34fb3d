"""Docue eraser: a manual task. Docue's API has no delete or anonymise route, and Docue (a
processor) may not change document content without the customer's authorisation; signed
contracts may also be under legal retention. The plan lists, for the officer:

- ``contract_party`` ``<document id>/<signature id>``: a signer record with one of the subject's
  e-mails: erase or anonymise it in Docue's UI or through its support;
- ``contract_party_by_name``: a signer record that has **no e-mail** and carries the subject's
  full name (``matching.is_subject_full_name``). A name is not proof: the officer confirms it
  is the subject before doing anything; nothing here acts on it;
- ``search`` ``all``: Docue's answer could not prove absence (``include=signatures`` refused or
  ignored, see ``connectors/docue.py``): search by hand. Never reported as "not found".

Nothing is changed through the API.
"""

from __future__ import annotations

from datetime import date

from contact_register.requests.erasure.matching import is_subject_full_name
from contact_register.requests.writeback.base import Clients, Outcome, PlannedStep, WritebackSubject

SYSTEM = "docue"
TASK = ("no erasure API: erase or anonymise the signer in Docue (UI or support); "
        "check first whether the contract must be kept (legal retention)")
BY_NAME = ("found by name only (the signer record has no e-mail): confirm it is the subject before erasing or "
           "anonymising it in Docue; if it is someone else, leave it")


def _rid(doc: dict, signer: dict) -> str:
    return f"{doc.get('id')}/{signer.get('id')}"


class DocueEraser:
    system = SYSTEM

    def plan(self, clients: Clients, subject: WritebackSubject, today: date) -> list[PlannedStep]:
        found = clients.client(SYSTEM).find_parties(subject.emails)
        steps = [PlannedStep(SYSTEM, "contract_party", _rid(doc, s), "manual", TASK) for doc, s in found.by_email]
        steps += [PlannedStep(SYSTEM, "contract_party_by_name", _rid(doc, s), "manual", BY_NAME)
                  for doc, s in found.without_email
                  if is_subject_full_name(subject, f"{s.get('firstName') or ''} {s.get('lastName') or ''}")]
        steps += [PlannedStep(SYSTEM, "search", "all", "manual", f"unverified: {reason}") for reason in found.unverified]
        return steps

    def execute(self, clients: Clients, subject: WritebackSubject, steps: list[PlannedStep]) -> Outcome:
        if not steps:
            return Outcome(SYSTEM, "not_found")
        kinds = [s.record_kind for s in steps]
        documents = {s.record_id.split("/")[0] for s in steps if s.record_kind != "search"}
        detail = (f"{kinds.count('contract_party')} contract parties and {kinds.count('contract_party_by_name')} "
                  f"found by name only, in {len(documents)} documents, to check and erase or anonymise by hand in "
                  "Docue (the API is read-only)")
        if "search" in kinds:
            detail += "; unverified: Docue's answer could not show every document's signers, search by hand"
        return Outcome(SYSTEM, "manual_open", records=0, detail=detail)

    def verify(self, clients: Clients, subject: WritebackSubject) -> list[str]:
        return []  # nothing is changed through the API; the manual task carries the rest
