"""Request Tracker eraser: ``erase`` below over the connector's primitives (REST2 reads,
``rename_user``, and RT's admin tools rt-shredder and rt-munge-attachments).

Per personal email of the subject: the RT user is shredded with their history; tickets only
about them are shredded whole; tickets shared with others keep the others' correspondence and
get the person's address and names replaced (``shared_tickets: scrub``) or their own messages
shredded (``shred_own``). ``erase`` verifies the shared tickets itself; ``verify`` here
re-reads the users.

Why rt-shredder, not RT's "Anonymize" action:
- REST2's ``DELETE /user/N`` only disables the user. RT's anonymize action
  (``RT::User::AnonymizeUser``) blanks the user's columns through the normal setters, and each
  setter writes a ``Set`` transaction whose OldValue is the old e-mail / real name: the data
  stays in the Transactions table, and the user's tickets, messages and attachments are not
  touched at all. ``rt-shredder`` deletes the user row *with* its own history, group
  memberships and principal, and re-points what they created to ``Nobody``
  (``replace_relations``), so nothing of the user record remains.
- The shredder's Users plugin matches ``email``/``name`` as a substring (``MATCHES``): shredding
  ``a@b.fi`` would also shred ``ma@b.fi``. We therefore first rename the user (REST2) to a random
  ``erase-<32 hex>`` name and shred by that name, which matches exactly one user.
- Tickets that concern only this person (every requestor/Cc is them) are shredded whole
  (``Tickets`` plugin). In tickets shared with others the policy decides
  (``ErasurePolicy.shared_tickets``): ``"scrub"`` keeps the messages and replaces the person's
  e-mail and names in every attachment's headers and content with placeholders
  (``rt-munge-attachments``, RT's own GDPR tool; it also covers others' quoted replies and RT's
  outgoing-mail records); ``"shred_own"`` shreds the person's own transactions (their messages
  and files) and then scrubs the rest the same way.
- The shredder's SQL dump (an undo file) contains the person. By default none is written
  (``--no-sqldump``); if ``sqldump_dir`` is set (a folder on the RT host, never a project
  store), the dump is written there and deleted once the erasure verified clean.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Sequence

from connectors.errors import ConnectorError, FatalError, NotFoundError
from connectors.request_tracker import WATCHER_ROLES, RequestTrackerClient, ref_id, watcher_ids
from contact_register.requests.erasure.policy import system_policy
from contact_register.requests.writeback.base import Clients, Outcome, PlannedStep, WritebackSubject

SYSTEM = "request_tracker"
POLICY_KEYS = ("shared_tickets", "shred_solo_tickets", "email_placeholder", "name_placeholder")


@dataclass
class ErasurePolicy:
    """What happens to tickets shared with others (see the module docstring)."""

    shared_tickets: str = "scrub"  # or "shred_own"
    email_placeholder: str = "poistettu@erased.invalid"
    name_placeholder: str = "[poistettu]"
    shred_solo_tickets: bool = True
    sqldump_dir: str | None = None

    def __post_init__(self) -> None:
        if self.shared_tickets not in ("scrub", "shred_own"):
            raise ValueError("shared_tickets must be 'scrub' or 'shred_own'")


@dataclass
class ErasureReport:
    status: str  # "done", "not_found", "dry_run"
    users: int = 0
    solo_tickets: list[int] = field(default_factory=list)
    shared_tickets: list[int] = field(default_factory=list)
    transactions_shredded: int = 0
    verified: bool = False
    notes: list[str] = field(default_factory=list)


def erase(client: RequestTrackerClient, email: str, *, names: Sequence[str] = (),
          policy: ErasurePolicy | None = None, dry_run: bool = False) -> ErasureReport:
    """Erase the person with ``email`` from RT: see the module docstring. ``names`` adds name
    spellings to scrub from shared tickets (the user's RealName is always included)."""
    policy = policy or ErasurePolicy()
    users = client.find_users(email)
    if not users:
        return ErasureReport("not_found")
    if client.admin is None and not dry_run:
        raise FatalError("erasure needs RT's admin tools (rt-shredder) on the RT host: configure RtAdminTools",
                         system=SYSTEM)
    report = ErasureReport("dry_run" if dry_run else "done", users=len(users))
    user_ids = {int(u["id"]) for u in users}
    needles = {email.strip()}
    for u in users:
        for value in (u.get("EmailAddress"), u.get("Name"), u.get("RealName")):
            if isinstance(value, str) and len(value.strip()) >= 3:
                needles.add(value.strip())
        real = str(u.get("RealName") or "").split()
        if len(real) == 2:
            needles.add(f"{real[1]} {real[0]}")  # "Virtanen Matti" as Outlook writes it
    needles.update(n.strip() for n in names if len(n.strip()) >= 3)
    solo, shared = set(), set()
    own_transactions: list[int] = []
    for uid in user_ids:
        for ticket in client.tickets_of_user(uid):
            others = {p for role in WATCHER_ROLES for p in watcher_ids(ticket.get(role))} - user_ids
            (shared if others else solo).add(int(ticket["id"]))
    if not policy.shred_solo_tickets:
        shared |= solo
        solo = set()
    if policy.shared_tickets == "shred_own":
        for tid in sorted(shared):
            own_transactions += [int(t["id"]) for t in client.ticket_transactions(tid)
                                 if ref_id(t.get("Creator")) in user_ids and t.get("Type") != "Create"]
    report.solo_tickets, report.shared_tickets = sorted(solo), sorted(shared)
    report.transactions_shredded = len(own_transactions)
    if dry_run:
        return report
    dump_dir = Path(policy.sqldump_dir) if policy.sqldump_dir else None
    dumps: list[Path] = []

    def dump() -> Path | None:
        if dump_dir is None:
            return None
        dumps.append(dump_dir / f"shredder-{secrets.token_hex(8)}.sql")
        return dumps[-1]

    try:
        if solo:
            query = " OR ".join(f"id = {t}" for t in sorted(solo))
            client.admin.shred(f"Tickets=query,{query};limit,{len(solo) + 1}", sqldump=dump())
        if own_transactions:
            objs = ";".join(f"Transaction,{t}" for t in own_transactions)
            client.admin.shred(f"Objects={objs}", sqldump=dump())
        if shared:
            # Longest first: a full name is replaced before the e-mail's local part could be.
            for needle in sorted(needles, key=len, reverse=True):
                replacement = policy.email_placeholder if "@" in needle else policy.name_placeholder
                client.admin.munge_tickets(sorted(shared), needle, replacement)
        for uid in sorted(user_ids):
            # Rename first: the Users plugin matches names as substrings, this name is unique.
            token = f"erase-{secrets.token_hex(16)}"
            client.rename_user(uid, token)
            client.admin.shred(f"Users=status,any;name,{token};replace_relations,Nobody;limit,1", sqldump=dump())
    finally:
        verified = _verify_gone(client, email, user_ids, report.shared_tickets, needles)
        report.verified = verified
        if verified:
            for path in dumps:
                _remove(path)
        elif dumps:
            report.notes.append("shredder dumps kept on the RT host until the erasure verifies")
    if not report.verified:
        report.status = "failed"
    return report


def _verify_gone(client: RequestTrackerClient, email: str, user_ids: set[int], shared: Sequence[int],
                 needles: set[str]) -> bool:
    """True when no user with the address or id is left and no shared ticket's attachment
    still holds a needle; any connector failure counts as not verified."""
    try:
        if client.find_users(email):
            return False
        for uid in user_ids:
            try:
                client.get_user(uid)
                return False
            except NotFoundError:
                pass
        lowered = [n.casefold() for n in needles]
        for tid in shared:
            for meta in client.ticket_attachments(tid):
                full = client.attachment(int(meta["id"]))
                text = str(full.get("Headers") or "")
                content = full.get("Content") or ""
                if str(full.get("ContentType", "")).startswith(("text/", "message/")):
                    try:
                        text += base64.b64decode(content).decode("utf-8", "replace")
                    except ValueError:
                        pass
                if any(n in text.casefold() for n in lowered):
                    return False
        return True
    except ConnectorError:
        return False


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


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
            report = erase(client, email, names=subject.names, policy=self.policy, dry_run=True)
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
            report = erase(client, email, names=subject.names, policy=self.policy)
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
