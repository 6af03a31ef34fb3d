"""Trustmary eraser: the person's contacts are deleted through the API; what the API cannot
remove becomes a task for a person (``connectors/trustmary.py`` has the facts).

- contact (found by each of the subject's e-mails, kept only when its name is theirs:
  ``matching.is_subject_record``): ``DELETE /v1/contacts``. Trustmary deletes softly (the contact
  stays with ``deleted_at``), so a deleted contact is followed by a manual step: ask Trustmary's
  support to purge it.
- survey answer naming the person (by e-mail in its values or its contact object, or by the
  contact id): no API route deletes one: manual (delete or anonymise in the app).
- survey answer with **no e-mail at all** whose typed name is the subject's full name
  (``matching.is_subject_full_name``): ``survey_answer_by_name``, manual, for the officer to
  confirm first; nothing acts on it.
- reviews, testimonial photos and videos: no API route reads or deletes them: whenever the
  person is found in Trustmary at all, a manual step asks for a check in the app.

So an erasure of a person Trustmary holds ends ``manual_open`` with the API part done and
verified (no live contact remains), and the manual part recorded in the case.
"""

from __future__ import annotations

from datetime import date

from contact_register.requests.erasure.matching import is_subject_full_name, is_subject_record
from contact_register.requests.writeback.base import Clients, Outcome, PlannedStep, WritebackSubject

SYSTEM = "trustmary"
PURGE = "soft-deleted by Trustmary: ask Trustmary support to purge the deleted contact"
ANSWER = "survey answer: no API route deletes it; delete or anonymise it in the Trustmary app"
BY_NAME = ("survey answer found by name only (no e-mail on it): confirm it is the subject's before deleting or "
           "anonymising it in the Trustmary app; if it is someone else's, leave it")
REVIEWS = "reviews, testimonial photos and videos: no API route; check and remove them in the Trustmary app"


def subject_contacts(client, subject: WritebackSubject, *, include_deleted: bool = False) -> list[dict]:
    """The subject's Trustmary contacts (live ones, or with ``include_deleted`` also deleted)."""
    return [c for c in client.find_contacts(subject.emails, include_deleted=include_deleted)
            if is_subject_record(subject, name=c.get("name"), emails=[c.get("email")], phones=[c.get("phone")])]


class TrustmaryEraser:
    system = SYSTEM

    def plan(self, clients: Clients, subject: WritebackSubject, today: date) -> list[PlannedStep]:
        client = clients.client(SYSTEM)
        contacts = subject_contacts(client, subject, include_deleted=True)
        steps = [PlannedStep(SYSTEM, "contact", str(c.get("id")), "manual" if c.get("deleted_at") else "delete",
                             PURGE if c.get("deleted_at") else "contact deleted through the API")
                 for c in contacts]
        answers = client.search_responses(subject.emails, [c.get("id") for c in contacts])
        steps += [PlannedStep(SYSTEM, "survey_answer", str(a.get("answer_id")), "manual", ANSWER)
                  for a in answers.matched]
        steps += [PlannedStep(SYSTEM, "survey_answer_by_name", str(a.get("answer_id")), "manual", BY_NAME)
                  for a in answers.without_email
                  if is_subject_full_name(subject, (a.get("answer_values") or {}).get("name"))]
        if steps:
            steps.append(PlannedStep(SYSTEM, "review", "all", "manual", REVIEWS))
        return steps

    def execute(self, clients: Clients, subject: WritebackSubject, steps: list[PlannedStep]) -> Outcome:
        if not steps:
            return Outcome(SYSTEM, "not_found")
        client = clients.client(SYSTEM)
        wanted = {s.record_id for s in steps if s.record_kind == "contact" and s.action == "delete"}
        deleted = 0
        # The API deletes by e-mail: each planned contact's own address, read again now (steps
        # carry record ids only).
        for contact in subject_contacts(client, subject):
            if str(contact.get("id")) in wanted and client.delete_contact(str(contact.get("email"))) is not None:
                deleted += 1
        manual = sum(1 for s in steps if s.action == "manual") + len(wanted)
        by_name = sum(1 for s in steps if s.record_kind == "survey_answer_by_name")
        return Outcome(SYSTEM, "manual_open", records=deleted,
                       detail=f"{deleted} contacts deleted through the API; {manual} tasks by hand "
                              f"(purge of soft-deleted contacts, survey answers, reviews and media)"
                              + (f"; {by_name} survey answers found by name only, to confirm first" if by_name else ""))

    def verify(self, clients: Clients, subject: WritebackSubject) -> list[str]:
        return [f"contact:{c.get('id')}" for c in subject_contacts(clients.client(SYSTEM), subject)]
