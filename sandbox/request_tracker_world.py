"""Request Tracker's view of the world: support users and tickets with correspondence.

RT is not imitated: `sandbox.request_tracker` seeds a real RT 5 with these records. Customers'
messages go in through RT's mail gateway as raw MIME (so RT parses real headers, quoted
replies, Cc lines, attachments, non-UTF-8 charsets and broken MIME the way it does in
production); staff replies and the user records go through REST2.

RT assigns its own ids, so the ground truth is keyed by the e-mail address RT stores for the
user (lower-cased): ``("request_tracker", email, true_person_id)``.
The derivation has its own RNG, so it never changes another system's data.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import NamedTuple

from . import names
from .world import World, fold

OWN_DOMAIN = "ohjelmistotalo.fi"
QUEUE = "General"

SUBJECTS = (
    "Kirjautuminen ei onnistu", "Laskun erittely puuttuu", "Integraatio palauttaa virheen 500",
    "Käyttäjätunnuksen lisääminen", "Raportti näyttää väärät luvut", "Salasanan vaihto",
    "Palkka-ajo jumissa", "Tuonti CSV-tiedostosta epäonnistuu", "Lisenssien määrä",
    "Päivityksen jälkeen hidas", "API-avaimen uusiminen", "Tietojen poisto",
)
PROBLEMS = (
    "Ohjelma antaa virheilmoituksen aina kun yritän tallentaa.",
    "Saimme tänään laskun, jossa rivit puuttuvat kokonaan.",
    "Näkymä jää latautumaan eikä mitään tapahdu.",
    "Voisitteko tarkistaa, onko asetuksissamme jotain vialla?",
    "Ongelma alkoi eilisen päivityksen jälkeen.",
)
STAFF_REPLIES = (
    "Kiitos viestistä. Tarkistimme asian ja korjaus on nyt tuotannossa.",
    "Pyydämme vielä kuvakaappauksen virheilmoituksesta.",
    "Asetus on nyt muutettu, kokeilisitteko uudelleen?",
    "Välitimme asian kehitystiimille, palaamme asiaan huomenna.",
)


class RtUser(NamedTuple):
    key: int  # index in RtWorld.users
    true_person_id: str
    email: str  # as the customer writes it (case variations, aliases)
    real_name: str | None  # None: RT learns the user from mail only (no name)
    organization: str | None
    phone: str | None  # as typed


class Attachment(NamedTuple):
    filename: str
    content_type: str
    size: int  # bytes of generated content
    kind: str  # "text", "binary", "bad-base64"


class Message(NamedTuple):
    author: int  # RtUser.key, or -1 for staff
    body: str
    quote: bool  # quotes the previous message ("X kirjoitti:")
    attachments: tuple[Attachment, ...]
    charset: str  # "utf-8", "iso-8859-1" (declared), "undeclared-8bit" (latin-1 bytes, no charset)
    broken_mime: bool  # multipart with a missing closing boundary


class RtTicket(NamedTuple):
    key: int
    subject: str
    requestor: int  # RtUser.key
    ccs: tuple[int, ...]
    messages: tuple[Message, ...]  # first message creates the ticket


class RtWorld:
    def __init__(self) -> None:
        self.users: list[RtUser] = []
        self.tickets: list[RtTicket] = []
        self.staff: list[tuple[str, str]] = []  # (name, email)

    def truth(self) -> Iterator[tuple[str, str, str]]:
        for u in self.users:
            yield ("request_tracker", u.email.strip().lower(), u.true_person_id)


def _email(rng: random.Random, h, domain: str) -> str:
    r = rng.random()
    if r < 0.75:
        return h.email
    if r < 0.85:  # "Matti.Virtanen@Yritys.fi": RT keeps the case it first saw
        local, dom = h.email.split("@")
        return ".".join(p[:1].upper() + p[1:] for p in local.split(".")) + "@" + dom.capitalize()
    if r < 0.93:
        return f"{fold(h.first_name)}.{fold(h.last_name)}@{rng.choice(names.FREEMAIL_DOMAINS)}"
    return f"{fold(h.first_name)[:1]}{fold(h.last_name).replace('-', '')}@{domain}"


def _phone(rng: random.Random, e164: str) -> str | None:
    r = rng.random()
    if r < 0.5:
        return None
    if r < 0.75:
        return f"0{e164[4:6]} {e164[6:9]} {e164[9:]}"
    return e164


def derive(world: World, users: int | None = None, tickets: int | None = None) -> RtWorld:
    """``users``/``tickets`` default to a support desk's share of the world: a third of the
    humans contact support, with about 1.5 tickets per user."""
    rng = random.Random(f"request_tracker:{world.seed}")
    rw = RtWorld()
    for _ in range(3):
        first = rng.choice(names.FIRST_NAMES_FEMALE + names.FIRST_NAMES_MALE)
        last = rng.choice(names.LAST_NAMES)
        rw.staff.append((f"{first} {last}", f"{fold(first)}.{fold(last)}@{OWN_DOMAIN}"))
    n_users = min(len(world.humans), users if users is not None else max(4, len(world.humans) // 3))
    n_tickets = tickets if tickets is not None else n_users * 3 // 2
    chosen = rng.sample(world.humans, n_users)
    seen: set[str] = set()
    for h in chosen:
        company = world.companies[h.company_index]
        email = _email(rng, h, company.domain)
        if email.lower() in seen:  # RT keys users by address: one user per address
            email = h.email if h.email.lower() not in seen else f"{h.true_person_id}.{h.email}"
        seen.add(email.lower())
        r = rng.random()
        if r < 0.15:
            real_name = None
        elif r < 0.2:
            real_name = f"{h.last_name} {h.first_name}"  # surname first, as typed in Outlook
        else:
            real_name = f"{h.first_name} {h.last_name}"
        rw.users.append(RtUser(len(rw.users), h.true_person_id, email, real_name,
                               company.name if rng.random() < 0.6 else None, _phone(rng, h.phone_e164)))
    company_of = [h.company_index for h in chosen]
    by_company: dict[int, list[int]] = {}
    for u in rw.users:
        by_company.setdefault(company_of[u.key], []).append(u.key)
    for i in range(n_tickets):
        # The first tickets go one per user so that every user has at least one ticket.
        requestor = rw.users[i].key if i < n_users else rng.randrange(n_users)
        colleagues = [k for k in by_company[company_of[requestor]] if k != requestor]
        ccs = tuple(rng.sample(colleagues, min(len(colleagues), rng.randint(1, 2)))) if colleagues and rng.random() < 0.3 else ()
        messages = []
        for m in range(rng.randint(1, 4)):
            if m % 2 == 1:
                author = -1
            elif m and ccs and rng.random() < 0.3:
                author = rng.choice(ccs)
            else:
                author = requestor
            body = rng.choice(STAFF_REPLIES if author < 0 else PROBLEMS)
            atts: list[Attachment] = []
            if author >= 0 and rng.random() < 0.2:
                kind = rng.choice(("text", "binary", "bad-base64"))
                size = rng.choice((200, 5000, 40000))
                name = {"text": "loki.txt", "binary": "kuvakaappaus.png", "bad-base64": "liite.pdf"}[kind]
                ctype = {"text": "text/plain", "binary": "image/png", "bad-base64": "application/pdf"}[kind]
                atts.append(Attachment(name, ctype, size, kind))
            r = rng.random()
            charset = "utf-8" if author < 0 or r < 0.85 else ("iso-8859-1" if r < 0.93 else "undeclared-8bit")
            messages.append(Message(author, body, m > 0 and rng.random() < 0.7, tuple(atts), charset,
                                    author >= 0 and rng.random() < 0.03))
        rw.tickets.append(RtTicket(i, rng.choice(SUBJECTS), requestor, ccs, tuple(messages)))
    return rw
