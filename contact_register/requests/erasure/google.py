"""Google Workspace eraser: ``find`` (``contact_register.requests.export.google_find``) and
``erase`` below, once per personal email of the subject (shared and role mailboxes were dropped by ``matching``).

- mail in any mailbox from/to/cc the address: deleted (``permanent: true``) or trashed; a
  message that also names more than ``max_other_participants`` others (a mass mailing) is a
  manual task, since deleting it would delete their data too;
- calendar events: the person is removed from the attendees (nobody is mailed); events the
  person organised are manual tasks;
- Drive: the person's permissions are removed; files they own are manual tasks;
- contacts: deleted; "other contacts" are read-only in the People API: manual tasks;
- Google Groups: every membership the Directory lists for the address (``groups.list?userKey=``)
  or that a configured mailing list holds (``mailing_lists()``) is removed; groups of other
  domains, and an address whose groups the Directory will not list, are manual tasks.
Record ids are directory user ids and Google's own ids, never the address.
"""

from __future__ import annotations

import os
from datetime import date
from typing import Any

from connectors.clock import today_helsinki
from connectors.errors import NotFoundError
from connectors.google_workspace import GoogleWorkspaceClient
from contact_register.requests.export.google_find import ALWAYS_NOTES, Findings, find, norm_address
from contact_register.requests.erasure.policy import system_policy
from contact_register.requests.writeback.base import Clients, Outcome, PlannedStep, WritebackSubject

SYSTEM = "google"


def erase(client: GoogleWorkspaceClient, email: str, *, permanent: bool = False,
          mailing_lists: tuple[str, ...] = (), max_other_participants: int | None = None) -> dict[str, Any]:
    """Delete (or trash) mail, drop the attendee from events without mailing anyone, remove
    Drive permissions, delete contacts and every group membership in the company's domain
    (groups of other domains are manual tasks). Returns a report.
    A message naming more than ``max_other_participants`` other addresses (a mass mailing) is
    left for a person to decide: the Gmail API cannot remove one recipient from a message."""
    who = norm_address(email)
    found = find(client, email, mailing_lists)
    gmail = client.gmail().users().messages()
    done = {"gmail": 0, "calendar": 0, "drive": 0, "contacts": 0, "groups": 0}
    manual: list[str] = []
    by_user: dict[str, list[str]] = {}
    for m in found.gmail:
        if max_other_participants is not None and m["others"] > max_other_participants:
            manual.append(f"gmail message {m['message_id']} of user {m['user_id']} also names {m['others']} "
                          "other people: deleting it would delete their data too")
            continue
        by_user.setdefault(m["user"], []).append(m["message_id"])
    for user, ids in by_user.items():
        if permanent:
            for i in range(0, len(ids), 1000):
                client.execute(gmail.batchDelete(userId="me", body={"ids": ids[i:i + 1000]}), user)
        else:
            for mid in ids:
                try:
                    client.execute(gmail.trash(userId="me", id=mid), user)
                except NotFoundError:
                    pass  # gone already (a retried request that had taken effect)
        done["gmail"] += len(ids)
    events = client.service("calendar").events()
    for ev in found.calendar:
        if ev["organizer"]:
            manual.append(f"calendar event {ev['event_id']} of user {ev['user_id']} is organised by the subject")
            continue
        keep = [a for a in ev["attendees"] if norm_address(a.get("email")) != who]
        # events.patch replaces the whole attendee list; sendUpdates=none mails nobody.
        client.execute(events.patch(calendarId="primary", eventId=ev["event_id"], body={"attendees": keep},
                                    sendUpdates="none"), ev["user"])
        done["calendar"] += 1
    perms = client.service("drive").permissions()
    for f in found.drive:
        if f["owner"]:
            manual.append(f"drive file {f['file_id']} is owned by the subject")
        for pid in f["permission_ids"]:
            try:
                client.execute(perms.delete(fileId=f["file_id"], permissionId=pid), f["user"])
            except NotFoundError:
                pass
            done["drive"] += 1
    people = client.service("people").people()
    for c in found.contacts:
        try:
            client.execute(people.deleteContact(resourceName=c["resource_name"]), c["user"])
        except NotFoundError:
            pass
        done["contacts"] += 1
    done["groups"] = leave_groups(client, email, found.groups)
    for c in found.other_contacts:
        manual.append(f"other contact {c['resource_name']} of user {c['user_id']} is read-only in the People API")
    manual += group_manual_tasks(found)
    notes = list(ALWAYS_NOTES)
    if not permanent and found.gmail:
        notes.append("Mail was moved to trash (reversible; purged after 30 days), not deleted permanently.")
    return {"found": found.counts(), "done": done, "manual": manual, "notes": notes}


def group_manual_tasks(found: Findings) -> list[str]:
    """The group memberships erasure cannot remove itself (group addresses are no personal data)."""
    tasks = [f"group {g} belongs to another domain: ask its owner to remove the member" for g in found.foreign_groups]
    if found.groups_unlisted:
        tasks.append("the Directory refused to list this address's groups: check its group memberships in the "
                     "Admin console (Groups > Members)")
    return tasks


def leave_groups(client: GoogleWorkspaceClient, email: str, groups: list[str]) -> int:
    """Remove the address from these groups (``members.delete`` as the admin); a membership
    already gone counts as nothing. Returns how many were removed."""
    members = client.service("admin").members()
    n = 0
    for group in groups:
        try:
            client.execute(members.delete(groupKey=group, memberKey=email), client.settings.admin_subject)
            n += 1
        except NotFoundError:
            pass
    return n


def mailing_lists() -> tuple[str, ...]:
    """The Google Groups the company mails marketing through, one setting for the marketing ban
    (which leaves exactly these) and the erasure (which leaves every group, and reads these too
    in case the Directory does not list an outside address's groups): ``GOOGLE_MAILING_LISTS``,
    comma-separated. A custom erasure policy's ``google.mailing_lists`` (deprecated: the shipped
    policy no longer has it) still counts, so an old policy file is not silently ignored."""
    named = os.environ.get("GOOGLE_MAILING_LISTS", "").split(",")
    named += list(system_policy(SYSTEM).get("mailing_lists") or [])
    return tuple(dict.fromkeys(g.strip().lower() for g in named if g and g.strip()))


class GoogleEraser:
    system = SYSTEM

    def __init__(self, policy: dict | None = None) -> None:
        self.policy = policy or system_policy(SYSTEM)
        self.permanent = bool(self.policy.get("permanent", True))
        # A message that also names more people than this is a manual task, not a deletion.
        limit = self.policy.get("max_other_participants", 20)
        self.max_other_participants = None if limit is None else int(limit)

    def _findings(self, clients: Clients, subject: WritebackSubject) -> list[Findings]:
        client = clients.client(SYSTEM)
        return [find(client, email, mailing_lists()) for email in subject.emails]

    def _steps(self, found: Findings) -> list[PlannedStep]:
        steps = []
        for m in found.gmail:
            if self.max_other_participants is not None and m["others"] > self.max_other_participants:
                steps.append(PlannedStep(SYSTEM, "gmail_message", f"{m['user_id']}/{m['message_id']}", "manual",
                                         f"also names {m['others']} other people: deleting it would delete "
                                         "their data too; decide by hand"))
            elif self.permanent or "TRASH" not in m["labels"]:
                steps.append(PlannedStep(SYSTEM, "gmail_message", f"{m['user_id']}/{m['message_id']}", "delete",
                                         "deleted for good" if self.permanent else "moved to trash"))
        for ev in found.calendar:
            rid = f"{ev['user_id']}/{ev['event_id']}"
            if ev["organizer"]:
                steps.append(PlannedStep(SYSTEM, "calendar_event", rid, "manual",
                                         "organised by the person: only they can change it"))
            else:
                steps.append(PlannedStep(SYSTEM, "calendar_event", rid, "mask", "person removed from the attendees"))
        for f in found.drive:
            rid = f"{f['user_id']}/{f['file_id']}"
            if f["owner"]:
                steps.append(PlannedStep(SYSTEM, "drive_file", rid, "manual", "owned by the person"))
            if f["permission_ids"]:
                steps.append(PlannedStep(SYSTEM, "drive_file", rid, "mask", "person's sharing removed"))
        for c in found.contacts:
            steps.append(PlannedStep(SYSTEM, "contact", f"{c['user_id']}/{c['resource_name']}", "delete", "contact"))
        for c in found.other_contacts:
            steps.append(PlannedStep(SYSTEM, "other_contact", f"{c['user_id']}/{c['resource_name']}", "manual",
                                     "other contacts are read-only in the People API"))
        for g in found.groups:
            steps.append(PlannedStep(SYSTEM, "group_membership", g, "delete", "group membership removed"))
        for g in found.foreign_groups:
            steps.append(PlannedStep(SYSTEM, "group_membership", g, "manual",
                                     "group of another domain: only its owner can remove the member"))
        if found.groups_unlisted:
            steps.append(PlannedStep(SYSTEM, "group_membership", "(unlisted)", "manual",
                                     "the Directory refused to list the address's groups: check them in the "
                                     "Admin console"))
        return steps

    def plan(self, clients: Clients, subject: WritebackSubject, today: date) -> list[PlannedStep]:
        return [s for found in self._findings(clients, subject) for s in self._steps(found)]

    def execute(self, clients: Clients, subject: WritebackSubject, steps: list[PlannedStep]) -> Outcome:
        if not steps:
            return Outcome(SYSTEM, "not_found")
        client = clients.client(SYSTEM)
        done: dict[str, int] = {}
        manual = 0
        for email in subject.emails:
            # erase() finds again and acts on what it finds: a re-run after a kill is harmless.
            report = erase(client, email, permanent=self.permanent, mailing_lists=mailing_lists(),
                           max_other_participants=self.max_other_participants)
            for k, n in report["done"].items():
                done[k] = done.get(k, 0) + n
            manual += len(report["manual"])
        detail = ", ".join(f"{k}: {n}" for k, n in sorted(done.items()) if n)
        if not self.permanent:
            detail += "; mail moved to trash (purged by Google after 30 days)"
        detail += "; Google Vault holds may keep deleted mail"
        if manual:
            return Outcome(SYSTEM, "manual_open", records=sum(done.values()), detail=f"{detail}; {manual} manual tasks")
        return Outcome(SYSTEM, "done", records=sum(done.values()), detail=detail)

    def verify(self, clients: Clients, subject: WritebackSubject) -> list[str]:
        return [f"{s.record_kind}:{s.record_id}" for s in self.plan(clients, subject, today_helsinki())
                if s.action in ("delete", "mask")]
