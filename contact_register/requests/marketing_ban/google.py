"""Google Workspace banner: in every mailbox, the person's contacts join the "no marketing"
contact group, and the address leaves the Google Groups used as mailing lists
(``connectors.google_workspace_ops.ban``); verified by reading the groups back.

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

from connectors import google_workspace_ops as ops
from contact_register.requests.erasure.google import mailing_lists
from contact_register.requests.writeback.base import Clients, Outcome, WritebackSubject

SYSTEM = "google"
DEFAULT_GROUP = "Ei markkinointia"


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
            report = ops.ban(client, email, contact_group=group, mailing_lists=lists)
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
            found = ops.find(client, email, lists)
            for c in found.contacts:
                if c["user"] not in members:
                    members[c["user"]] = _group_members(client, c["user"], group)
                if c["resource_name"] not in members[c["user"]]:
                    remaining.append(f"contact:{c['user_id']}:{c['resource_name']}")
            remaining += [f"mailing_list:{g}" for g in found.groups if g in lists]
        return remaining
