"""Google Workspace's view of the world: the company's own employees (the mailboxes) and what
they hold about the world's humans: mail headers, calendar meetings, shared Drive files and
contacts, with the variations real mailboxes have.

Variations: display names in several shapes ("Virtanen, Matti", ascii-folded, RFC 2047
encoded words in UTF-8 and ISO-8859-1), upper-case address spellings, personal addresses
(gmail.com) beside work ones, replies and CCs in threads, a missing Date header, one message
with 500 recipients, invalid addresses ("matti.virtanen@", "undisclosed-recipients:;").

Sizes: ``SANDBOX_GOOGLE_USERS`` and ``SANDBOX_GOOGLE_MESSAGES`` (per mailbox) override the
defaults derived from the world's size (the sandbox CLI has no flags for them). Events, files
and contacts per user follow the messages per user.

Ground truth record ids match ``staging.google_persons``: for address-like kinds the md5 of
the lower-cased address (``gmail_correspondent``/``calendar_attendee``/``drive_grantee`` all
share the id, one per kind), for contacts ``<directory user id>/<resourceName>``.
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Iterator
from email.header import Header
from datetime import datetime
from email.utils import formataddr, formatdate
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from . import names
from .world import END, EPOCH, World, fold

HELSINKI = ZoneInfo("Europe/Helsinki")
DOMAIN = "tietotalo.fi"  # the controller's own Google Workspace domain


class GUser(NamedTuple):
    id: str  # directory id, 21 digits like Google's
    email: str
    given: str
    family: str
    is_admin: bool


def address_id(address: str) -> str:
    """Record id of an address-like person record (no personal data in ids)."""
    return hashlib.md5(address.strip().lower().encode("utf-8")).hexdigest()


class GoogleWorld:
    def __init__(self) -> None:
        self.domain = DOMAIN
        self.users: list[GUser] = []
        # per user index: lists of API-shaped dicts (the imitation copies them)
        self.messages: list[list[dict]] = []
        self.events: list[list[dict]] = []
        self.files: list[list[dict]] = []
        self.contacts: list[list[dict]] = []
        self.other_contacts: list[list[dict]] = []
        self.address_truth: dict[str, str] = {}  # lower address -> true_person_id
        self.kinds_seen: dict[str, set[str]] = {"gmail_correspondent": set(), "calendar_attendee": set(),
                                                "drive_grantee": set()}
        self.contact_truth: list[tuple[str, str]] = []  # (record_id, true_person_id)

    def truth(self) -> Iterator[tuple[str, str, str]]:
        for kind in ("gmail_correspondent", "calendar_attendee", "drive_grantee"):
            for addr in sorted(self.kinds_seen[kind]):
                if addr in self.address_truth:
                    yield ("google", f"{kind}:{address_id(addr)}", self.address_truth[addr])
        for rid, tid in self.contact_truth:
            yield ("google", rid, tid)


def _sizes(world: World) -> tuple[int, int]:
    persons = world.sizes.get("persons", 300)
    users = int(os.environ.get("SANDBOX_GOOGLE_USERS") or max(2, min(50, persons // 60)))
    messages = int(os.environ.get("SANDBOX_GOOGLE_MESSAGES") or max(20, persons // 5))
    return users, messages


def _rfc3339(epoch: int) -> str:
    """An event time as Calendar writes it (RFC 3339, Helsinki offset), e.g. 2026-11-03T10:00:00+02:00."""
    return datetime.fromtimestamp(epoch, HELSINKI).isoformat(timespec="seconds")


def _display_name(rng: random.Random, first: str, last: str) -> str:
    r = rng.random()
    if r < 0.45:
        return f"{first} {last}"
    if r < 0.6:
        return f"{last}, {first}"
    if r < 0.7:
        return f"{fold(first).title()} {fold(last).title()}"
    if r < 0.8:
        return f"{last.upper()} {first}"
    if r < 0.9:
        return first
    return ""


def _header_addr(rng: random.Random, name: str, addr: str) -> str:
    if not name:
        return addr if rng.random() < 0.5 else f"<{addr}>"
    if not name.isascii() and rng.random() < 0.7:
        charset = "utf-8" if rng.random() < 0.6 else "iso-8859-1"
        try:
            encoded = Header(name, charset).encode()
        except UnicodeEncodeError:
            encoded = Header(name, "utf-8").encode()
        return f"{encoded} <{addr}>"
    return formataddr((name, addr))


def derive(world: World) -> GoogleWorld:
    rng = random.Random(f"google:{world.seed}")
    gw = GoogleWorld()
    n_users, n_messages = _sizes(world)
    used = set()
    for i in range(n_users):
        first = rng.choice(names.FIRST_NAMES_FEMALE if i % 2 else names.FIRST_NAMES_MALE)
        last = rng.choice(names.LAST_NAMES)
        email = f"{fold(first)}.{fold(last)}@{DOMAIN}"
        n = 2
        while email in used:
            email = f"{fold(first)}.{fold(last)}{n}@{DOMAIN}"
            n += 1
        used.add(email)
        gw.users.append(GUser(f"1{rng.randrange(10**19, 10**20)}", email, first, last, i == 0))
    humans = world.humans
    span = END - EPOCH

    def addr_of(h) -> str:
        r = rng.random()
        if r < 0.08:
            addr = f"{fold(h.first_name)}.{fold(h.last_name)}@gmail.com".replace(" ", "")
        elif r < 0.16:
            local, _, dom = h.email.partition("@")
            addr = f"{local.title()}@{dom.title()}"
        else:
            addr = h.email
        gw.address_truth[addr.lower()] = h.true_person_id
        return addr

    for u_index, user in enumerate(gw.users):
        me = formataddr((f"{user.given} {user.family}", user.email))
        colleagues = [u for u in gw.users if u is not user]
        msgs: list[dict] = []
        threads: list[tuple[str, str, Any]] = []  # (thread id, subject, human)
        for m in range(n_messages):
            when = EPOCH + int(span * (m + rng.random()) / n_messages)
            mid = f"{rng.getrandbits(60):015x}"
            h = humans[rng.randrange(len(humans))]
            kind = rng.random()
            if threads and kind < 0.3:  # a reply in an existing thread
                thread_id, subject, h = threads[rng.randrange(len(threads))]
                subject = subject if subject.startswith("Re: ") else f"Re: {subject}"
            else:
                thread_id = mid
                subject = f"{rng.choice(names.WORDS)} {rng.choice(('tarjous', 'sopimus', 'palaveri', 'lasku', 'kysymys'))}"
                threads.append((thread_id, subject, h))
            h_addr = addr_of(h)
            h_hdr = _header_addr(rng, _display_name(rng, h.first_name, h.last_name), h_addr)
            incoming = rng.random() < 0.5
            headers = [("From", h_hdr if incoming else me), ("To", me if incoming else h_hdr)]
            truth = [h.true_person_id]
            if rng.random() < 0.3:  # CCs: the person's colleagues or ours
                ccs = []
                for _ in range(rng.randint(1, 3)):
                    c = humans[rng.randrange(len(humans))]
                    ccs.append(_header_addr(rng, _display_name(rng, c.first_name, c.last_name), addr_of(c)))
                if colleagues and rng.random() < 0.5:
                    col = rng.choice(colleagues)
                    ccs.append(formataddr((f"{col.given} {col.family}", col.email)))
                headers.append(("Cc", ", ".join(ccs)))
            if rng.random() < 0.05:
                headers.append(("Reply-To", h_hdr))
            r = rng.random()
            if r < 0.01:
                headers.append(("Cc", f"{fold(h.first_name)}.{fold(h.last_name)}@"))  # invalid address
            elif r < 0.02:
                headers.append(("Bcc", "undisclosed-recipients:;"))
            elif r < 0.03:
                headers.append(("To", f"{h.first_name} {h.last_name}"))  # a name, no address
            if m == 7 and u_index == 0:  # one huge mailing
                headers.append(("Bcc", ", ".join(
                    formataddr(("", addr_of(humans[k % len(humans)]))) for k in range(500))))
            if rng.random() > 0.02:  # 2% have no Date header at all
                headers.append(("Date", formatdate(when, localtime=False)))
            headers += [("Subject", subject), ("Message-ID", f"<{mid}.{u_index}@mail.{DOMAIN}>")]
            labels = ["INBOX", "UNREAD"] if incoming else ["SENT"]
            if rng.random() < 0.02:
                labels = ["SPAM"]
            elif rng.random() < 0.02:
                labels = ["TRASH"]
            msgs.append({"id": mid, "threadId": thread_id, "labelIds": labels, "internalDate": str(when * 1000),
                         "headers": headers, "body": f"Hei,\n\n{subject}.\n\nTerveisin\n", "truth": truth})
            for name_, value in headers:
                if name_ in ("From", "To", "Cc", "Bcc", "Reply-To"):
                    for a in value.split(","):
                        a = a.strip()
                        if "@" in a:
                            a = a[a.find("<") + 1:a.rfind(">")] if "<" in a else a
                            if a.lower() in gw.address_truth:
                                gw.kinds_seen["gmail_correspondent"].add(a.lower())
        gw.messages.append(msgs)

        events = []
        for e in range(max(2, n_messages // 4)):
            start = EPOCH + rng.randrange(span)
            attendees = [{"email": user.email, "self": True, "organizer": True, "responseStatus": "accepted",
                          "displayName": f"{user.given} {user.family}"}]
            for _ in range(rng.randint(1, 4)):
                h = humans[rng.randrange(len(humans))]
                a = addr_of(h)
                att = {"email": a, "responseStatus": rng.choice(("needsAction", "accepted", "declined", "tentative"))}
                if rng.random() < 0.6:
                    att["displayName"] = _display_name(rng, h.first_name, h.last_name) or h.first_name
                attendees.append(att)
                gw.kinds_seen["calendar_attendee"].add(a.lower())
            events.append({"id": f"ev{rng.getrandbits(48):012x}", "summary": rng.choice(names.WORDS) + " palaveri",
                           "start": {"dateTime": _rfc3339(start)}, "end": {"dateTime": _rfc3339(start + 3600)},
                           "startEpoch": start,
                           "organizer": {"email": user.email, "self": True}, "attendees": attendees})
        gw.events.append(events)

        files = []
        for f in range(max(1, n_messages // 6)):
            perms = [{"id": f"{rng.getrandbits(40)}", "type": "user", "role": "owner", "emailAddress": user.email,
                      "displayName": f"{user.given} {user.family}"}]
            for _ in range(rng.randint(0, 3)):
                h = humans[rng.randrange(len(humans))]
                a = addr_of(h)
                perms.append({"id": f"{rng.getrandbits(40)}", "type": "user", "role": rng.choice(("reader", "writer", "commenter")),
                              "emailAddress": a, "displayName": f"{h.first_name} {h.last_name}"})
                gw.kinds_seen["drive_grantee"].add(a.lower())
            if rng.random() < 0.1:
                perms.append({"id": "anyoneWithLink", "type": "anyone", "role": "reader"})
            files.append({"id": f"1{rng.getrandbits(120):030x}", "name": f"{rng.choice(names.WORDS)}.docx",
                          "mimeType": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                          "modifiedEpoch": EPOCH + rng.randrange(span), "permissions": perms,
                          "content": f"Sopimusluonnos {f}\n"})
        gw.files.append(files)

        contacts, picked = [], set()
        for c in range(max(2, n_messages // 4)):
            k = rng.randrange(len(humans))
            if k in picked:
                continue
            picked.add(k)
            h = humans[k]
            person = {"resourceName": f"people/c{rng.getrandbits(62)}",
                      "names": [{"displayName": f"{h.first_name} {h.last_name}", "givenName": h.first_name,
                                 "familyName": h.last_name}],
                      "emailAddresses": [{"value": addr_of(h)}]}
            if rng.random() < 0.7:
                person["phoneNumbers"] = [{"value": h.phone_e164 if rng.random() < 0.5 else
                                           f"0{h.phone_e164[4:6]} {h.phone_e164[6:9]} {h.phone_e164[9:]}"}]
            if rng.random() < 0.6:
                person["organizations"] = [{"name": world.companies[h.company_index].name, "title": h.title}]
            contacts.append(person)
            gw.contact_truth.append((f"contact:{user.id}/{person['resourceName']}", h.true_person_id))
        gw.contacts.append(contacts)
        others = []
        for c in range(max(1, n_messages // 10)):
            h = humans[rng.randrange(len(humans))]
            person = {"resourceName": f"otherContacts/c{rng.getrandbits(62)}", "emailAddresses": [{"value": addr_of(h)}]}
            if rng.random() < 0.5:
                person["names"] = [{"displayName": _display_name(rng, h.first_name, h.last_name) or h.first_name}]
            others.append(person)
            gw.contact_truth.append((f"other_contact:{user.id}/{person['resourceName']}", h.true_person_id))
        gw.other_contacts.append(others)
    return gw
