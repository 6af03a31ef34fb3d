"""Systems the rectification answers without writing: what a person must correct by hand
(``manual_open``, recorded with ``contact-register request answer``) or why nothing applies.

- Google Workspace: the connector reads contacts but has no update route; a contact in a
  mailbox's "My contacts" is corrected by hand. Mail, calendar entries and file shares are a
  record of past correspondence and are not rewritten.
- Trustmary: its API reads, deletes and lists contacts but has no update route.
- Docue: read-only through its API; contract parties are corrected in Docue.
- Dealfront, Secapp service: no API use at all.
- Matomo: visits are keyed by an id derived from the email; there is no name, phone or title
  to correct, and a new address simply starts new visits.
"""

from __future__ import annotations

from dataclasses import dataclass

from contact_register.requests.writeback.base import Outcome, WritebackSubject

MANUAL = "no API route to correct the person here: check the system and correct the record by hand"


@dataclass(frozen=True)
class AnsweredWithoutApi:
    system: str
    state: str
    detail: str

    def answer(self, subject: WritebackSubject) -> Outcome:
        return Outcome(self.system, self.state, detail=self.detail)


class GoogleAnswer:
    """From the warehouse's Google records: contacts are a manual task, correspondence stays."""

    system = "google"

    def answer(self, subject: WritebackSubject) -> Outcome:
        kinds = subject.records_of(self.system)
        contacts = len(kinds.get("contact", []))
        if contacts:
            return Outcome(self.system, "manual_open", contacts, detail=(
                f"{contacts} Google contacts hold the person: the connector has no contact update, correct them in "
                "Google Contacts by hand; mail, calendar and file shares record past correspondence and stay"))
        if kinds:
            return Outcome(self.system, "not_applicable", detail=(
                "only mail, calendar entries or file shares: a record of past correspondence, not rewritten"))
        return Outcome(self.system, "not_found", detail="no Google record of the person in the warehouse")


ANSWERS = (
    GoogleAnswer(),
    AnsweredWithoutApi("trustmary", "manual_open", "Trustmary's API has no contact update: " + MANUAL),
    AnsweredWithoutApi("docue", "manual_open", "Docue is read-only through its API: " + MANUAL),
    AnsweredWithoutApi("dealfront", "manual_open", "Dealfront: " + MANUAL),
    AnsweredWithoutApi("secapp", "manual_open", "Secapp service: " + MANUAL),
    AnsweredWithoutApi("matomo", "not_applicable", "Matomo holds visits keyed by an id derived from the email; "
                                                   "no name, phone or title to correct"),
)
