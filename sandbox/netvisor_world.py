"""Netvisor's view of the world: customers, their billing contact persons and sales invoices.

Derived from the shared world's companies and humans, so billing contacts overlap the
Pipedrive people, with the variations real accounting data has:
- generic billing mailboxes as contact persons ("Talous / Laskutus", laskutus@, reskontra@)
  and as the customer's own e-mail;
- personal names in company fields ("c/o Matti Virtanen" in the name extension, the contact
  person typed as "Virtanen Matti" or "M. Virtanen" in the customer's contact details);
- private customers (the person is the customer: name surname-first, home address, own e-mail);
- business ids as 1234567-8, 12345678 or FI12345678; e-invoice (Finvoice) addresses with
  operator codes;
- invoices over several years (2018 onwards), each keeping a snapshot of its billing contact.

Ids: customers 1..N, contact persons from 1 000 001, invoices 1..M in date order, so that the
ground truth's plain record ids never collide between customers and contact persons.
The derivation has its own RNG (seeded from the world's seed and "netvisor"), so it never
changes another system's data.
"""

from __future__ import annotations

import calendar
import random
import time
from collections.abc import Iterator
from typing import NamedTuple

from . import names
from .world import END, EPOCH, World, fold

DAY = 86400
CONTACT_PERSON_ID_BASE = 1_000_000
INVOICES_FROM = calendar.timegm((2018, 1, 1, 0, 0, 0))
GENERIC_MAILBOXES = ("laskutus", "talous", "reskontra", "ostolaskut", "invoices")
# Finvoice operator (router) codes as Finnish e-invoice operators publish them.
ROUTER_CODES = ("003721291126", "003703575029", "003723327487", "003714377140", "NDEAFIHH", "OKOYFIHH")


class NvCustomer(NamedTuple):
    id: int
    true_person_id: str | None  # the person whose data the customer record holds, if any
    code: str
    name: str
    name_extension: str
    business_id: str
    is_private: bool
    street: str
    post_number: str
    city: str
    phone: str
    email: str
    email_invoicing: str
    finvoice_address: str
    finvoice_router: str
    contact_person: str
    contact_email: str
    contact_phone: str
    changed_at: int


class NvContactPerson(NamedTuple):
    id: int
    customer_id: int
    true_person_id: str | None  # None for generic mailboxes ("Talous / Laskutus")
    first_name: str
    last_name: str
    phone: str
    email: str
    changed_at: int


class NvInvoice(NamedTuple):
    id: int
    number: str
    date: str  # YYYY-MM-DD
    status: str
    customer_id: int
    contact_person_id: int | None
    your_reference: str
    modified_at: int


class NetvisorWorld:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.customers: list[NvCustomer] = []
        self.contact_persons: list[NvContactPerson] = []
        self.invoices: list[NvInvoice] = []

    def truth(self) -> Iterator[tuple[str, str, str]]:
        for c in self.customers:
            if c.true_person_id:
                yield ("netvisor", str(c.id), c.true_person_id)
        for p in self.contact_persons:
            if p.true_person_id:
                yield ("netvisor", str(p.id), p.true_person_id)


def _phone(rng: random.Random, e164: str) -> str:
    prefix, number = e164[4:6], e164[6:]
    return rng.choice((f"0{prefix} {number[:3]} {number[3:]}", f"0{prefix}{number}", f"+358 {prefix} {number}",
                       f"+358{prefix}{number}", f"0{prefix}-{number}"))


def _business_id(rng: random.Random, ytunnus: str) -> str:
    r = rng.random()
    if r < 0.85:
        return ytunnus
    if r < 0.92:
        return ytunnus.replace("-", "")
    if r < 0.97:
        return "FI" + ytunnus.replace("-", "")
    return ""


def _email(rng: random.Random, canonical: str) -> str:
    r = rng.random()
    if r < 0.75:
        return canonical
    if r < 0.88:
        local, domain = canonical.split("@")
        return ".".join(p[:1].upper() + p[1:] for p in local.split(".")) + "@" + domain
    if r < 0.94:
        return canonical.upper()
    return " " + canonical + " "


def derive(world: World) -> NetvisorWorld:
    rng = random.Random(f"netvisor:{world.seed}")
    nw = NetvisorWorld(world.seed)
    by_company: dict[int, list] = {}
    for h in world.humans:
        by_company.setdefault(h.company_index, []).append(h)

    def changed() -> int:
        return rng.randint(EPOCH, END)

    persons_by_customer: dict[int, list[NvContactPerson]] = {}
    for company in world.companies:
        if rng.random() >= 0.9:
            continue  # a prospect, not (yet) a customer
        cid = len(nw.customers) + 1
        humans = by_company.get(company.index, [])
        digits = company.business_id.replace("-", "")
        email = f"{rng.choice(GENERIC_MAILBOXES)}@{company.domain}" if rng.random() < 0.5 else ""
        invoicing = f"ostolaskut@{company.domain}" if rng.random() < 0.15 else ""
        finvoice, router = ("", "")
        if rng.random() < 0.4:
            finvoice, router = f"0037{digits}{rng.choice(('', '001', '100'))}", rng.choice(ROUTER_CODES)
        extension, contact, contact_email, contact_phone, contact_truth = "", "", "", "", None
        if humans and rng.random() < 0.08:
            h = rng.choice(humans)
            extension = f"{rng.choice(('c/o', 'Att.', 'Attn'))} {h.first_name} {h.last_name}"
        r = rng.random()
        if humans and r < 0.4:
            h = rng.choice(humans)
            contact = rng.choice((f"{h.first_name} {h.last_name}", f"{h.last_name} {h.first_name}",
                                  f"{h.first_name[0]}. {h.last_name}"))
            contact_email = _email(rng, h.email) if rng.random() < 0.8 else ""
            contact_phone = _phone(rng, h.phone_e164) if rng.random() < 0.6 else ""
            contact_truth = h.true_person_id
        elif r < 0.5:
            contact, contact_email = "Talous / Laskutus", f"laskutus@{company.domain}"
        name = company.name if rng.random() >= 0.05 else company.name.replace(" Oy", " OY")
        nw.customers.append(NvCustomer(
            cid, contact_truth, str(cid), name, extension, _business_id(rng, company.business_id), False,
            company.street, company.postal_code, company.city, "", email, invoicing, finvoice, router,
            contact, contact_email, contact_phone, changed(),
        ))
        persons: list[NvContactPerson] = []
        for h in humans:
            if rng.random() >= 0.8:
                continue
            first, last = h.first_name, h.last_name
            r = rng.random()
            if r < 0.05:
                first, last = last, first
            elif r < 0.08:
                first, last = f"{h.first_name} {h.last_name}", ""
            elif r < 0.10:
                first, last = first.lower(), last.lower()
            r = rng.random()
            mail = _email(rng, h.email) if r < 0.75 else (f"laskutus@{company.domain}" if r < 0.85 else "")
            phone = _phone(rng, h.phone_e164) if rng.random() < 0.7 else ""
            persons.append(NvContactPerson(0, cid, h.true_person_id, first, last, phone, mail, changed()))
        if rng.random() < 0.25:
            first, last = rng.choice((("Talous", "Laskutus"), ("Talous / Laskutus", ""), ("Reskontra", "")))
            persons.append(NvContactPerson(0, cid, None, first, last, "",
                                           f"{rng.choice(GENERIC_MAILBOXES)}@{company.domain}", changed()))
        persons_by_customer[cid] = persons

    # Private customers: the person is the customer (surname first, as accounting lists them).
    for h in world.humans:
        if rng.random() >= 0.02:
            continue
        cid = len(nw.customers) + 1
        city, postal = rng.choice(names.CITIES)
        mail = (f"{fold(h.first_name)}.{fold(h.last_name)}@{rng.choice(names.FREEMAIL_DOMAINS)}"
                if rng.random() < 0.7 else _email(rng, h.email))
        nw.customers.append(NvCustomer(
            cid, h.true_person_id, str(cid), f"{h.last_name} {h.first_name}", "", "", True,
            f"{rng.choice(names.STREETS)} {rng.randint(1, 80)} B {rng.randint(1, 40)}", postal, city,
            _phone(rng, h.phone_e164), mail, "", "", "", "", "", "", changed(),
        ))
        persons_by_customer[cid] = []

    next_cp = CONTACT_PERSON_ID_BASE + 1
    for c in nw.customers:
        for p in persons_by_customer[c.id]:
            nw.contact_persons.append(p._replace(id=next_cp))
            next_cp += 1
    cps: dict[int, list[NvContactPerson]] = {}
    for p in nw.contact_persons:
        cps.setdefault(p.customer_id, []).append(p)

    drafts: list[tuple[int, int, int | None, str]] = []
    for c in nw.customers:
        n = min(60, int(rng.expovariate(1 / 11))) if not c.is_private else rng.randint(0, 3)
        since = rng.randint(INVOICES_FROM, END - 30 * DAY)
        mine = cps.get(c.id, [])
        for _ in range(n):
            when = rng.randint(since, END)
            person = rng.choice(mine) if mine and rng.random() < 0.7 else None
            ref = ""
            if person is not None and rng.random() < 0.5:
                ref = f"{person.first_name} {person.last_name}".strip()
            elif rng.random() < 0.3:
                ref = f"PO-{rng.randrange(10000, 99999)}"
            drafts.append((when, c.id, person.id if person else None, ref))
    drafts.sort()
    for i, (when, cid, pid, ref) in enumerate(drafts, start=1):
        day = time.strftime("%Y-%m-%d", time.gmtime(when))
        status = "paid" if when < END - 60 * DAY else rng.choice(("open", "paid", "overdue"))
        modified = min(END, when + rng.randint(0, 20) * DAY)
        nw.invoices.append(NvInvoice(i, str(10000 + i), day, status, cid, pid, ref, modified))
    return nw
