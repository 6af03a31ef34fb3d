"""Banners that answer without calling an API: systems that do no marketing ("not applicable",
with the reason) and systems where a person must act (``manual_open``, with what to do; the
officer records the answer in the case as ``manual_answered``).

- Netvisor holds billing contacts and invoices: no consent or list to change
  (``connectors.netvisor.MARKETING_BAN``).
- Request Tracker holds support correspondence, not marketing consents or lists.
- Matomo counts web visits and sends nothing; tracking opt-out is a browser cookie.
- Docue holds contracts and sends only signing invitations.
- Dealfront (Leadfeeder/Echobot) supplies prospects and identifies visiting companies; its API
  has no opt-out or delete route for a person: exclude them in Dealfront (and ask Dealfront,
  as the controller of its own contact database, to suppress them).
- The Secapp service's own user account holds group chats with customers' main users; there is
  no API: check the person's user and chats by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

from contact_register.requests.writeback.base import Clients, Outcome, WritebackSubject


@dataclass(frozen=True)
class AnsweredWithoutApi:
    """``not_applicable`` holds the answer's text: the ban runner answers such banners without a
    client (``contact_register/requests/marketing_ban/run.py``); ``state`` says which answer it is."""

    system: str
    not_applicable: str
    state: str = "not_applicable"

    def ban(self, clients: Clients, subject: WritebackSubject) -> Outcome:
        return Outcome(self.system, self.state, detail=self.not_applicable)

    def verify(self, clients: Clients, subject: WritebackSubject) -> list[str]:
        return []


ANSWERS = (
    AnsweredWithoutApi("netvisor", "Netvisor holds billing contacts and invoices; it sends no marketing and has no "
                                   "marketing-ban field."),
    AnsweredWithoutApi("request_tracker", "Request Tracker holds support correspondence, not marketing consents "
                                          "or lists."),
    AnsweredWithoutApi("matomo", "Matomo analyses web visits and sends no marketing; opting out of tracking is "
                                 "the visitor's browser setting, not a per-person field."),
    AnsweredWithoutApi("docue", "Docue holds contracts and their signers; it sends no marketing "
                                "(only signing invitations)."),
    AnsweredWithoutApi("dealfront", "Dealfront has no opt-out route for a person: exclude them from Dealfront's "
                                    "lists and exports by hand, and ask Dealfront to suppress them in its own "
                                    "contact database; record the answer in the case.", "manual_open"),
    AnsweredWithoutApi("secapp", "The Secapp service has no API: check the person's user account and group chats "
                                 "by hand and record the answer in the case.", "manual_open"),
)
