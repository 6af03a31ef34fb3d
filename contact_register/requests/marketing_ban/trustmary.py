"""Trustmary banner: the person's contacts are taken off every contact list and marked with a
custom field, since Trustmary has no unsubscribe route (``connectors/trustmary.py``).

Trustmary cannot show a contact's list memberships, so the ban is verified by the mark: a
custom field (``TRUSTMARY_BAN_FIELD``, default ``marketing_ban``, value
``TRUSTMARY_BAN_FIELD_VALUE``, default ``yes``) set in the same request that removes the lists,
which the contact object returns. Automations in Trustmary can exclude contacts carrying it.
Trustmary refuses a custom field that is not defined, and no published route defines one, so
the ban reads ``/v1/fields`` first: without the field it still takes the contacts off every
list, and the missing field is a manual task (define it in the app, then run the ban again).
"Smart" lists fill themselves from survey answers; removal from them may not last, so the
detail names how many exist for the officer to check. A contact is the subject's only when its
name fits (``contact_register/requests/erasure/matching.py``).
"""

from __future__ import annotations

import os

from contact_register.requests.erasure.trustmary import subject_contacts
from contact_register.requests.writeback.base import Clients, Outcome, WritebackSubject

SYSTEM = "trustmary"


def ban_mark() -> tuple[str, str]:
    name = os.environ.get("TRUSTMARY_BAN_FIELD", "").strip() or "marketing_ban"
    if not name.replace("_", "").isalnum():
        raise ValueError("TRUSTMARY_BAN_FIELD must be a custom field name (letters, digits, _)")
    return name, os.environ.get("TRUSTMARY_BAN_FIELD_VALUE", "").strip() or "yes"


class TrustmaryBanner:
    system = SYSTEM

    def ban(self, clients: Clients, subject: WritebackSubject) -> Outcome:
        client = clients.client(SYSTEM)
        contacts = subject_contacts(client, subject)
        if not contacts:
            return Outcome(SYSTEM, "not_found", 0, detail="no live Trustmary contact")
        name, value = ban_mark()
        field_defined = name in client.custom_fields()
        lists = client.lists()
        plain = [str(lst["id"]) for lst in lists if lst.get("source") != "smart" and lst.get("id")]
        smart = len(lists) - len(plain)
        mark = {name: value} if field_defined else {}
        removed = sum(client.update_existing(str(c.get("email")), remove_from_lists=plain, fields=mark)
                      for c in contacts)
        detail = (f"{len(contacts)} contacts taken off all {len(plain)} lists ({removed} memberships removed)"
                  + (f" and marked {name}" if field_defined else "") + "; Trustmary has no unsubscribe route")
        if smart:
            detail += f"; {smart} smart lists fill themselves from survey answers: check them by hand"
        if not field_defined:
            detail += (f"; the custom field {name!r} (TRUSTMARY_BAN_FIELD) is not defined in Trustmary, so the ban "
                       "mark could not be set: define it in the Trustmary app and run the ban again")
            return Outcome(SYSTEM, "manual_open", len(contacts), detail=detail)
        return Outcome(SYSTEM, "done", len(contacts), detail=detail)

    def verify(self, clients: Clients, subject: WritebackSubject) -> list[str]:
        """Read-only: the subject's live contacts that do not carry the ban mark."""
        name, value = ban_mark()
        return [f"contact:{c.get('id')}" for c in subject_contacts(clients.client(SYSTEM), subject)
                if str(c.get(f"field_{name}")) != value]
