"""Request Tracker eraser over ``RequestTrackerClient.erase`` (rt-shredder and
rt-munge-attachments, see the connector's docstring for why not RT's anonymize action).

Per personal email of the subject: the RT user is shredded with their history; tickets only
about them are shredded whole; tickets shared with others keep the others' correspondence and
get the person's address and names replaced (``shared_tickets: scrub``) or their own messages
shredded (``shred_own``). The connector verifies the shared tickets itself; ``verify`` here
re-reads the users.
"""

from __future__ import annotations

from datetime import date

from connectors.errors import FatalError
from connectors.request_tracker import ErasurePolicy
from contact_register.requests.erasure.policy import system_policy
from contact_register.requests.writeback.base import Clients, Outcome, PlannedStep, WritebackSubject

SYSTEM = "request_tracker"
POLICY_KEYS = ("shared_tickets", "shred_solo_tickets", "email_placeholder", "name_placeholder")


class RequestTrackerEraser:
    system = SYSTEM

    def __init__(self, policy: dict | None = None) -> None:
        section = policy or system_policy(SYSTEM)
        self.policy = ErasurePolicy(**{k: section[k] for k in POLICY_KEYS if k in section})

    def plan(self, clients: Clients, subject: WritebackSubject, today: date) -> list[PlannedStep]:
        client = clients.client(SYSTEM)
        steps = []
        shared_action = "mask" if self.policy.shared_tickets == "scrub" else "delete"
        for email in subject.emails:
            users = client.find_users(email)
            if not users:
                continue
            report = client.erase(email, names=subject.names, policy=self.policy, dry_run=True)
            steps += [PlannedStep(SYSTEM, "user", str(u["id"]), "delete", "user shredded with its history")
                      for u in users]
            steps += [PlannedStep(SYSTEM, "ticket", str(t), "delete", "ticket only about the person: shredded")
                      for t in report.solo_tickets]
            steps += [PlannedStep(SYSTEM, "ticket", str(t), shared_action,
                                  "shared ticket: the person's address and names replaced" if shared_action == "mask"
                                  else "shared ticket: the person's own messages shredded")
                      for t in report.shared_tickets]
        return steps

    def execute(self, clients: Clients, subject: WritebackSubject, steps: list[PlannedStep]) -> Outcome:
        client = clients.client(SYSTEM)
        users = solo = shared = 0
        for email in subject.emails:
            report = client.erase(email, names=subject.names, policy=self.policy)
            if report.status == "failed":
                raise FatalError(f"erasure did not verify: {len(report.shared_tickets)} shared tickets checked",
                                 system=SYSTEM)
            users += report.users
            solo += len(report.solo_tickets)
            shared += len(report.shared_tickets)
        if not (users or steps):
            return Outcome(SYSTEM, "not_found")
        detail = f"users shredded: {users}, own tickets shredded: {solo}, shared tickets {self.policy.shared_tickets}: {shared}"
        return Outcome(SYSTEM, "done", records=users + solo + shared, detail=detail)

    def verify(self, clients: Clients, subject: WritebackSubject) -> list[str]:
        client = clients.client(SYSTEM)
        return [f"user:{u['id']}" for email in subject.emails for u in client.find_users(email)]
