"""Data-subject operations on Google Workspace: find, erase, ban one email address (the subject export reads live in contact_register/requests/export/exporters.py, where others' data is cut).

Run them with a client whose settings carry ``SCOPES_WRITE`` (permanent Gmail deletion needs
``https://mail.google.com/``). Every operation walks every mailbox of the directory.

What the API cannot do is reported, never hidden:
- "other contacts" (addresses Gmail saved automatically) are read-only in the People API;
- Google Vault retention rules and holds keep mail that users delete;
- a deleted user's data lingers 20-30 days at Google; trashed mail is purged after 30 days;
- the organizer of an event in someone else's calendar, and the owner of a file, can only be
  changed by that person: such hits are listed as manual tasks;
- Google Groups: every group holding the address is found with ``groups.list?userKey=`` (the
  Admin SDK's way to list one member's groups) plus the configured mailing lists read by
  ``members.list``; a group outside the company's domain (``GoogleSettings.domain``) is not the
  company's to change and is a manual task, and so is an address whose groups the Directory
  refused to list.
Reports carry directory user ids and record ids, never the address itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.utils import getaddresses
from typing import Any

from connectors.errors import BadRequestError, NotFoundError
from connectors.google_workspace import GoogleWorkspaceClient

ALWAYS_NOTES = (
    "Google Vault retention rules or holds may keep deleted mail; check Vault for this address.",
    "Data of deleted users lingers 20-30 days at Google; trashed mail is purged after 30 days.",
)


@dataclass
class Findings:
    gmail: list[dict] = field(default_factory=list)  # {user, user_id, message_id, labels, others}
    calendar: list[dict] = field(default_factory=list)  # {user, user_id, event_id, attendees, organizer}
    drive: list[dict] = field(default_factory=list)  # {user, user_id, file_id, permission_ids, owner}
    contacts: list[dict] = field(default_factory=list)  # {user, user_id, resource_name}
    other_contacts: list[dict] = field(default_factory=list)  # read only
    groups: list[str] = field(default_factory=list)  # groups of the company's domain holding the address
    foreign_groups: list[str] = field(default_factory=list)  # groups of other domains: manual tasks
    groups_unlisted: bool = False  # the Directory refused groups.list for this address: a manual task

    def counts(self) -> dict[str, int]:
        return {k: len(getattr(self, k)) for k in ("gmail", "calendar", "drive", "contacts", "other_contacts", "groups",
                                                     "foreign_groups")}

    def erasable(self) -> int:
        live_mail = [m for m in self.gmail if "TRASH" not in m["labels"]]
        return len(live_mail) + len(self.calendar) + len(self.drive) + len(self.contacts) + len(self.groups)


def _norm(address: Any) -> str:
    return str(address or "").strip().lower()


def _other_participants(message: dict, who: str) -> int:
    """How many addresses besides ``who`` the message's From/To/Cc/Bcc name: deleting a message
    sent to hundreds deletes their data too, so the eraser asks a person above a limit."""
    headers = (message.get("payload") or {}).get("headers") or []
    values = [str(h.get("value") or "") for h in headers
              if str(h.get("name") or "").lower() in ("from", "to", "cc", "bcc")]
    return len({_norm(addr) for _, addr in getaddresses(values) if "@" in addr} - {who})


def find(client: GoogleWorkspaceClient, email: str, mailing_lists: tuple[str, ...] = ()) -> Findings:
    who = _norm(email)
    out = Findings()
    quoted = who.replace("\\", "\\\\").replace("'", "\\'")
    for user in client.users():
        u, uid = user["primaryEmail"], str(user["id"])
        q = f"from:{who} OR to:{who} OR cc:{who} OR bcc:{who}"
        ids = [i for page in client.gmail_ids(u, q=q, include_spam_trash=True) for i in page]
        if ids:
            got, _gone = client.gmail_get_many(u, ids, fmt="metadata")
            out.gmail += [{"user": u, "user_id": uid, "message_id": i, "labels": got[i].get("labelIds") or [],
                           "others": _other_participants(got[i], who)} for i in ids if i in got]
        for page in client.calendar_events(u, q=who):
            for ev in page.get("items") or []:
                emails = [_norm(a.get("email")) for a in ev.get("attendees") or []]
                organizer = _norm((ev.get("organizer") or {}).get("email"))
                if who in emails or organizer == who:
                    out.calendar.append({"user": u, "user_id": uid, "event_id": ev["id"],
                                         "attendees": ev.get("attendees") or [], "organizer": organizer == who})
        drive_q = f"'{quoted}' in readers or '{quoted}' in writers or '{quoted}' in owners"
        for page in client.drive_files(u, q=drive_q):
            for f in page.get("files") or []:
                perms = [p for p in f.get("permissions") or [] if _norm(p.get("emailAddress")) == who]
                if perms:
                    out.drive.append({"user": u, "user_id": uid, "file_id": f["id"],
                                      "permission_ids": [p["id"] for p in perms if p.get("role") != "owner"],
                                      "owner": any(p.get("role") == "owner" for p in perms)})
        for page in client.connections(u):
            for p in page.get("connections") or []:
                if who in {_norm(e.get("value")) for e in p.get("emailAddresses") or []}:
                    out.contacts.append({"user": u, "user_id": uid, "resource_name": p["resourceName"]})
        for page in client.other_contacts(u):
            for p in page.get("otherContacts") or []:
                if who in {_norm(e.get("value")) for e in p.get("emailAddresses") or []}:
                    out.other_contacts.append({"user": u, "user_id": uid, "resource_name": p["resourceName"]})
    _find_groups(client, who, mailing_lists, out)
    return out


def _find_groups(client: GoogleWorkspaceClient, who: str, mailing_lists: tuple[str, ...], out: Findings) -> None:
    """Every group holding the address: those ``groups.list?userKey=`` names, and the configured
    lists whose members include it (a second way in, should the Directory not list an outside
    address's groups). A refusal to list (400/404: an address the Directory does not know) is
    recorded, not taken as "no groups"; a missing scope (403) is raised."""
    groups: dict[str, None] = {}
    try:
        groups.update(dict.fromkeys(_norm(g) for g in client.groups_of(who)))
    except (BadRequestError, NotFoundError):
        out.groups_unlisted = True
    for group in mailing_lists:
        if _norm(group) in groups:
            continue
        try:
            if who in {_norm(m) for m in client.group_members(group)}:
                groups[_norm(group)] = None
        except NotFoundError:
            continue  # a configured list that does not exist holds nobody
    domain = _norm(client.settings.domain)
    for group in groups:
        if not domain or group.endswith("@" + domain) or group.endswith("." + domain):
            out.groups.append(group)
        else:
            out.foreign_groups.append(group)


def erase(client: GoogleWorkspaceClient, email: str, *, permanent: bool = False,
          mailing_lists: tuple[str, ...] = (), max_other_participants: int | None = None) -> dict[str, Any]:
    """Delete (or trash) mail, drop the attendee from events without mailing anyone, remove
    Drive permissions, delete contacts and every group membership in the company's domain
    (groups of other domains are manual tasks). Returns a report.
    A message naming more than ``max_other_participants`` other addresses (a mass mailing) is
    left for a person to decide: the Gmail API cannot remove one recipient from a message."""
    who = _norm(email)
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
        keep = [a for a in ev["attendees"] if _norm(a.get("email")) != who]
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
    done["groups"] = _leave_groups(client, email, found.groups)
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


def _leave_groups(client: GoogleWorkspaceClient, email: str, groups: list[str]) -> int:
    members = client.service("admin").members()
    n = 0
    for group in groups:
        try:
            client.execute(members.delete(groupKey=group, memberKey=email), client.settings.admin_subject)
            n += 1
        except NotFoundError:
            pass
    return n


def ban(client: GoogleWorkspaceClient, email: str, *, contact_group: str = "Ei markkinointia",
        mailing_lists: tuple[str, ...] = ()) -> dict[str, Any]:
    """Add the person's contacts to the "no marketing" contact group (created where missing)
    and remove the address from the mailing lists; verified by reading back."""
    found = find(client, email, mailing_lists)
    groups_api = client.service("people").contactGroups()
    banned, unverified = 0, []
    for c in found.contacts:
        groups = client.execute(groups_api.list(pageSize=1000), c["user"]).get("contactGroups") or []
        group = next((g for g in groups if g.get("name") == contact_group), None)
        if group is None:
            group = client.execute(groups_api.create(body={"contactGroup": {"name": contact_group}}), c["user"])
        client.execute(groups_api.members().modify(resourceName=group["resourceName"],
                                                   body={"resourceNamesToAdd": [c["resource_name"]]}), c["user"])
        back = client.execute(groups_api.get(resourceName=group["resourceName"], maxMembers=10000), c["user"])
        if c["resource_name"] in (back.get("memberResourceNames") or []):
            banned += 1
        else:
            unverified.append(c["resource_name"])
    # Only the marketing lists: other groups (a project, a customer council) are no marketing.
    marketing = {_norm(g) for g in mailing_lists}
    left = _leave_groups(client, email, [g for g in found.groups if g in marketing])
    manual = [f"no contact for the address in mailbox of user {c['user_id']}: other contact {c['resource_name']} "
              "is read-only and cannot join a contact group" for c in found.other_contacts]
    return {"contacts_banned": banned, "unverified": unverified, "mailing_lists_left": left, "manual": manual}
