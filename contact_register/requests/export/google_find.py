"""Where one email address lives in Google Workspace: ``find`` walks every mailbox of the
directory (mail, calendar, Drive, contacts, "other contacts") and the Google Groups holding the
address. The subject export reads what it finds; the erasure (``erasure/google.py``) and the
marketing ban (``marketing_ban/google.py``) act on it. It lives here, with the export's reads,
because the writers already depend on the export (``writeback.base``), not the other way round.

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
Findings carry directory user ids and record ids besides the mailbox; reports made from them
never carry the address itself.
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


def norm_address(address: Any) -> str:
    """An address as Google's answers are compared: trimmed, lower case."""
    return str(address or "").strip().lower()


def _other_participants(message: dict, who: str) -> int:
    """How many addresses besides ``who`` the message's From/To/Cc/Bcc name: deleting a message
    sent to hundreds deletes their data too, so the eraser asks a person above a limit."""
    headers = (message.get("payload") or {}).get("headers") or []
    values = [str(h.get("value") or "") for h in headers
              if str(h.get("name") or "").lower() in ("from", "to", "cc", "bcc")]
    return len({norm_address(addr) for _, addr in getaddresses(values) if "@" in addr} - {who})


def find(client: GoogleWorkspaceClient, email: str, mailing_lists: tuple[str, ...] = ()) -> Findings:
    who = norm_address(email)
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
                emails = [norm_address(a.get("email")) for a in ev.get("attendees") or []]
                organizer = norm_address((ev.get("organizer") or {}).get("email"))
                if who in emails or organizer == who:
                    out.calendar.append({"user": u, "user_id": uid, "event_id": ev["id"],
                                         "attendees": ev.get("attendees") or [], "organizer": organizer == who})
        drive_q = f"'{quoted}' in readers or '{quoted}' in writers or '{quoted}' in owners"
        for page in client.drive_files(u, q=drive_q):
            for f in page.get("files") or []:
                perms = [p for p in f.get("permissions") or [] if norm_address(p.get("emailAddress")) == who]
                if perms:
                    out.drive.append({"user": u, "user_id": uid, "file_id": f["id"],
                                      "permission_ids": [p["id"] for p in perms if p.get("role") != "owner"],
                                      "owner": any(p.get("role") == "owner" for p in perms)})
        for page in client.connections(u):
            for p in page.get("connections") or []:
                if who in {norm_address(e.get("value")) for e in p.get("emailAddresses") or []}:
                    out.contacts.append({"user": u, "user_id": uid, "resource_name": p["resourceName"]})
        for page in client.other_contacts(u):
            for p in page.get("otherContacts") or []:
                if who in {norm_address(e.get("value")) for e in p.get("emailAddresses") or []}:
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
        groups.update(dict.fromkeys(norm_address(g) for g in client.groups_of(who)))
    except (BadRequestError, NotFoundError):
        out.groups_unlisted = True
    for group in mailing_lists:
        if norm_address(group) in groups:
            continue
        try:
            if who in {norm_address(m) for m in client.group_members(group)}:
                groups[norm_address(group)] = None
        except NotFoundError:
            continue  # a configured list that does not exist holds nobody
    domain = norm_address(client.settings.domain)
    for group in groups:
        if not domain or group.endswith("@" + domain) or group.endswith("." + domain):
            out.groups.append(group)
        else:
            out.foreign_groups.append(group)
