"""Google Workspace banner: in every mailbox, the person's contacts join the "no marketing"
contact group, and the address leaves the Google Groups used as mailing lists
(``ban_address`` below); verified by reading the groups back.

Settings (read when a ban runs): ``GOOGLE_NO_MARKETING_GROUP`` (the contact group's name,
default "Ei markkinointia"), ``GOOGLE_MAILING_LISTS`` (comma-separated group addresses the
company sends marketing through, read by ``contact_register.requests.erasure.google.mailing_lists`` as the
erasure reads it). Only those lists are left: other groups are no marketing.
Google is searched by address, so a subject without a personal email is "not found" here.
"Other contacts" (saved by Gmail automatically) are read only in the API and cannot join a
group; they are counted in the detail, and are no mailing target anyway.
"""

from __future__ import annotations

import os
from typing import Any

from connectors.google_workspace import GoogleWorkspaceClient
from contact_register.requests.erasure.google import leave_groups, mailing_lists
from contact_register.requests.export.google_find import find, norm_address
from contact_register.requests.writeback.base import Clients, Outcome, WritebackSubject

SYSTEM = "google"
DEFAULT_GROUP = "Ei markkinointia"


def ban_address(client: GoogleWorkspaceClient, email: str, *, contact_group: str = DEFAULT_GROUP,
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
    marketing = {norm_address(g) for g in mailing_lists}
    left = leave_groups(client, email, [g for g in found.groups if g in marketing])
    manual = [f"no contact for the address in mailbox of user {c['user_id']}: other contact {c['resource_name']} "
              "is read-only and cannot join a contact group" for c in found.other_contacts]
    return {"contacts_banned": banned, "unverified": unverified, "mailing_lists_left": left, "manual": manual}


def _settings() -> tuple[str, tuple[str, ...]]:
    """The contact group's name and the marketing mailing lists (the erasure's setting too)."""
    group = os.environ.get("GOOGLE_NO_MARKETING_GROUP", "").strip() or DEFAULT_GROUP
    return group, mailing_lists()


def _group_members(client, user: str, group_name: str) -> set[str]:
    """Resource names in the mailbox's contact group of that name (empty if it does not exist)."""
    api = client.service("people").contactGroups()
    groups = client.execute(api.list(pageSize=1000), user).get("contactGroups") or []
    group = next((g for g in groups if g.get("name") == group_name), None)
    if group is None:
        return set()
    back = client.execute(api.get(resourceName=group["resourceName"], maxMembers=10000), user)
    return set(back.get("memberResourceNames") or [])


class GoogleBanner:
    system = SYSTEM

    def ban(self, clients: Clients, subject: WritebackSubject) -> Outcome:
        if not subject.emails:
            return Outcome(SYSTEM, "not_found", 0, detail="no personal email to look up in Google Workspace")
        group, lists = _settings()
        client = clients.client(SYSTEM)
        banned = left = read_only = 0
        unverified: list[str] = []
        for email in subject.emails:
            report = ban_address(client, email, contact_group=group, mailing_lists=lists)
            banned += report["contacts_banned"]
            left += report["mailing_lists_left"]
            read_only += len(report["manual"])
            unverified += report["unverified"]
        detail = (f"{banned} contacts in the no-marketing group, left {left} mailing lists, "
                  f"{read_only} read-only other contacts")
        if unverified:
            return Outcome(SYSTEM, "failed", banned, detail=detail,
                           error=f"{len(unverified)} contacts did not read back as members of the group")
        if not banned and not left:
            return Outcome(SYSTEM, "not_found", 0, detail=detail)
        return Outcome(SYSTEM, "done", banned + left, detail=detail)

    def verify(self, clients: Clients, subject: WritebackSubject) -> list[str]:
        """Contacts outside the group and mailing lists still holding the address."""
        group, lists = _settings()
        client = clients.client(SYSTEM)
        remaining: list[str] = []
        members: dict[str, set[str]] = {}
        for email in subject.emails:
            found = find(client, email, lists)
            for c in found.contacts:
                if c["user"] not in members:
                    members[c["user"]] = _group_members(client, c["user"], group)
                if c["resource_name"] not in members[c["user"]]:
                    remaining.append(f"contact:{c['user_id']}:{c['resource_name']}")
            remaining += [f"mailing_list:{g}" for g in found.groups if g in lists]
        return remaining
