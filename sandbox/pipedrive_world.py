"""Pipedrive's view of the world: person records with realistic variations, plus organizations,
deals, activities, notes, mail and field definitions.

Records are compact namedtuples with integer epoch timestamps; `sandbox.pipedrive` turns them
into API-shaped dicts for each imitation, so that every Sandbox starts from a clean copy.
The derivation has its own RNG seeded from the world's seed and the system name, so adding
another system's derivation never changes Pipedrive's data.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Iterator
from typing import Any, NamedTuple

from . import names
from .world import END, EPOCH, World, fold

DAY = 86400


class FieldDef(NamedTuple):
    key: str  # 40-char hex for custom fields, the field code for standard ones
    name: str
    field_type: str
    options: tuple[tuple[int, str], ...] | None
    is_custom: bool


class PdPerson(NamedTuple):
    id: int
    true_person_id: str
    name: str
    first_name: str
    last_name: str
    emails: tuple  # ((value, label, primary), ...)
    phones: tuple
    org_id: int | None
    owner_id: int
    job_title: str | None
    add_time: int
    update_time: int
    label_ids: tuple
    custom: tuple  # values in the order of person custom fields


class PdOrg(NamedTuple):
    id: int
    name: str
    owner_id: int
    address: tuple  # (street, postal_code, city)
    add_time: int
    update_time: int
    custom: tuple


class PdDeal(NamedTuple):
    id: int
    title: str
    person_id: int | None
    org_id: int | None
    owner_id: int
    value: int
    status: str
    stage_id: int
    add_time: int
    update_time: int
    custom: tuple


class PdActivity(NamedTuple):
    id: int
    type: str
    subject: str
    person_id: int | None
    org_id: int | None
    deal_id: int | None
    owner_id: int
    due_date: str
    done: bool
    add_time: int
    update_time: int


class PdNote(NamedTuple):
    id: int
    person_id: int | None
    org_id: int | None
    deal_id: int | None
    user_id: int
    content: str
    add_time: int
    update_time: int


class PdMail(NamedTuple):
    id: int
    person_id: int
    user_id: int
    subject: str
    snippet: str
    outgoing: bool
    time: int
    thread_id: int


PERSON_CUSTOM = (
    ("LinkedIn", "varchar", None),
    ("Lähde", "enum", ((1, "Messut"), (2, "Verkkosivut"), (3, "Suositus"), (4, "Kylmäsoitto"), (5, "LinkedIn"))),
    ("Kiinnostuksen kohteet", "set",
     ((6, "Taloushallinto"), (7, "Palkanlaskenta"), (8, "CRM"), (9, "Integraatiot"), (10, "Koulutus"))),
    ("Viimeisin tapaaminen", "date", None),
    ("Kotiosoite", "address", None),
)
ORG_CUSTOM = (
    ("Toimiala", "enum", ((11, "Rakentaminen"), (12, "Teollisuus"), (13, "Palvelut"), (14, "Kauppa"), (15, "IT"))),
    ("Sopimuksen arvo", "monetary", None),
    ("Asiakkuus alkoi", "date", None),
    ("Y-tunnus", "varchar", None),
    ("Käyntiosoite", "address", None),
)
DEAL_CUSTOM = (("Kampanjakoodi", "varchar", None),)

# (v2 field_code, name, field_type); v1 uses "email"/"phone"/"label" for the list fields.
PERSON_STANDARD = (
    ("id", "ID", "int"), ("name", "Nimi", "varchar"), ("first_name", "Etunimi", "varchar"),
    ("last_name", "Sukunimi", "varchar"), ("owner_id", "Omistaja", "user"), ("org_id", "Organisaatio", "org"),
    ("emails", "Sähköposti", "varchar"), ("phones", "Puhelin", "phone"), ("label_ids", "Tunniste", "set"),
    ("job_title", "Tehtävänimike", "varchar"), ("add_time", "Lisätty", "date"),
    ("update_time", "Päivitetty", "date"), ("visible_to", "Näkyvyys", "visible_to"),
    ("marketing_status", "Markkinointitila", "enum"),
)
ORG_STANDARD = (
    ("id", "ID", "int"), ("name", "Nimi", "varchar"), ("owner_id", "Omistaja", "user"),
    ("address", "Osoite", "address"), ("label_ids", "Tunniste", "set"), ("add_time", "Lisätty", "date"),
    ("update_time", "Päivitetty", "date"), ("visible_to", "Näkyvyys", "visible_to"),
)
DEAL_STANDARD = (
    ("id", "ID", "int"), ("title", "Otsikko", "varchar"), ("value", "Arvo", "monetary"),
    ("person_id", "Yhteyshenkilö", "people"), ("org_id", "Organisaatio", "org"), ("status", "Tila", "status"),
    ("owner_id", "Omistaja", "user"), ("stage_id", "Vaihe", "stage"), ("add_time", "Lisätty", "date"),
    ("update_time", "Päivitetty", "date"),
)
ACTIVITY_STANDARD = (
    ("id", "ID", "int"), ("subject", "Aihe", "varchar"), ("type", "Tyyppi", "enum"),
    ("due_date", "Eräpäivä", "date"), ("done", "Tehty", "boolean"), ("person_id", "Henkilö", "people"),
    ("org_id", "Organisaatio", "org"), ("deal_id", "Kauppa", "deal"), ("owner_id", "Omistaja", "user"),
    ("note", "Muistiinpano", "text"),
)
LABEL_OPTIONS = ((21, "Asiakas"), (22, "Prospekti"), (23, "Kumppani"), (24, "VIP"))

ACTIVITY_TYPES = (("call", "Soitto"), ("meeting", "Tapaaminen"), ("task", "Tehtävä"),
                  ("email", "Sähköposti"), ("lunch", "Lounas"), ("deadline", "Määräaika"))

USER_IDS = tuple(range(100001, 100007))
OWN_DOMAIN = "ohjelmistotalo.fi"  # the controller's own domain (the Pipedrive users)


def field_key(seed: int, entity: str, name: str) -> str:
    """Stable 40-hex custom field key (random-looking per account, like Pipedrive's)."""
    return hashlib.sha1(f"pipedrive:{seed}:{entity}:{name}".encode()).hexdigest()


def ymd(ts: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


class PipedriveWorld:
    def __init__(self, seed: int):
        self.seed = seed
        self.users: list[tuple[int, str, str]] = []
        self.persons: list[PdPerson] = []
        self.orgs: list[PdOrg] = []
        self.deals: list[PdDeal] = []
        self.activities: list[PdActivity] = []
        self.notes: list[PdNote] = []
        self.mails: list[PdMail] = []
        self.fields: dict[str, list[FieldDef]] = {}

    def truth(self) -> Iterator[tuple[str, str, str]]:
        for p in self.persons:
            yield ("pipedrive", str(p.id), p.true_person_id)


def _fields(seed: int, entity: str, standard: tuple, custom: tuple) -> list[FieldDef]:
    out = []
    for code, name, ftype in standard:
        options = LABEL_OPTIONS if code == "label_ids" else None
        out.append(FieldDef(code, name, ftype, options, False))
    for name, ftype, options in custom:
        out.append(FieldDef(field_key(seed, entity, name), name, ftype, options, True))
    return out


def _format_phone(rng: random.Random, e164: str) -> str:
    """One of the spellings Finns actually type for a mobile number."""
    prefix, number = e164[4:6], e164[6:]
    style = rng.randrange(5)
    if style == 0:
        return f"+358 {prefix} {number[:3]} {number[3:]}"
    if style == 1:
        return f"0{prefix}-{number}"
    if style == 2:
        return f"0{prefix}{number}"
    if style == 3:
        return f"0{prefix} {number[:3]} {number[3:]}"
    return e164


def _email_variant(rng: random.Random, canonical: str, first: str, last: str) -> str:
    local, domain = canonical.split("@")
    r = rng.random()
    if r < 0.70:
        return canonical
    if r < 0.80:  # "Matti.Virtanen@Yritys.fi"
        return ".".join(p[:1].upper() + p[1:] for p in local.split(".")) + "@" + domain.capitalize()
    if r < 0.85:
        return canonical.upper()
    if r < 0.91:
        return rng.choice((" ", "  ", "\t")) + canonical + rng.choice((" ", "", "\n"))
    return f"{fold(first)[:1]}{fold(last).replace('-', '')}@{domain}"  # alias "mvirtanen@"


def _timestamps(rng: random.Random) -> tuple[int, int]:
    add = rng.randint(EPOCH, END - 30 * DAY)
    return add, rng.randint(add, END)


def derive(world: World) -> PipedriveWorld:
    rng = random.Random(f"pipedrive:{world.seed}")
    pw = PipedriveWorld(world.seed)
    seed = world.seed
    pw.fields = {
        "persons": _fields(seed, "person", PERSON_STANDARD, PERSON_CUSTOM),
        "organizations": _fields(seed, "organization", ORG_STANDARD, ORG_CUSTOM),
        "deals": _fields(seed, "deal", DEAL_STANDARD, DEAL_CUSTOM),
        "activities": _fields(seed, "activity", ACTIVITY_STANDARD, ()),
    }
    for uid in USER_IDS:
        first = rng.choice(names.FIRST_NAMES_FEMALE + names.FIRST_NAMES_MALE)
        last = rng.choice(names.LAST_NAMES)
        pw.users.append((uid, f"{first} {last}", f"{fold(first)}.{fold(last)}@{OWN_DOMAIN}"))

    companies = world.companies
    for c in companies:
        add, upd = _timestamps(rng)
        custom = (
            rng.choice(ORG_CUSTOM[0][2])[0],
            (rng.randrange(1000, 250000, 100), "EUR") if rng.random() < 0.5 else None,
            ymd(rng.randint(EPOCH - 3 * 365 * DAY, END)) if rng.random() < 0.6 else None,
            c.business_id if rng.random() < 0.9 else None,
            (c.street, c.postal_code, c.city),
        )
        pw.orgs.append(PdOrg(c.index + 1, c.name, rng.choice(USER_IDS), (c.street, c.postal_code, c.city),
                             add, upd, custom))

    shared = _shared_mailboxes(rng, world)
    private_owner: dict[str, str] = {}  # a freemail address belongs to one human
    for h in world.humans:
        copies = 2 if rng.random() < 0.03 else 1
        for copy in range(copies):
            pw.persons.append(_person(rng, len(pw.persons) + 1, h, companies, shared.get(h.true_person_id), copy,
                                      private_owner))

    persons = pw.persons
    n_persons = len(persons)
    for i in range(world.sizes["deals"]):
        p = persons[rng.randrange(n_persons)]
        org_id = p.org_id
        org_name = companies[org_id - 1].name if org_id else p.name
        add, upd = _timestamps(rng)
        r = rng.random()
        status = "open" if r < 0.6 else ("won" if r < 0.85 else "lost")
        code = f"KAMP-{rng.randrange(100, 999)}" if rng.random() < 0.3 else None
        pw.deals.append(PdDeal(i + 1, f"{org_name} – {rng.choice(names.DEAL_PRODUCTS)}", p.id, org_id,
                               rng.choice(USER_IDS), rng.randrange(500, 200000, 100), status,
                               rng.randint(1, 5), add, upd, (code,)))

    n_deals = len(pw.deals)
    for i in range(world.sizes["activities"]):
        p = persons[rng.randrange(n_persons)]
        type_code, type_fi = ACTIVITY_TYPES[rng.randrange(len(ACTIVITY_TYPES))]
        subject = f"{type_fi}: {p.name}" if rng.random() < 0.3 else type_fi
        deal_id = rng.randint(1, n_deals) if n_deals and rng.random() < 0.3 else None
        add, upd = _timestamps(rng)
        due = ymd(add + rng.randint(-10, 60) * DAY)
        pw.activities.append(PdActivity(i + 1, type_code, subject, p.id, p.org_id, deal_id,
                                        rng.choice(USER_IDS), due, rng.random() < 0.6, add, upd))

    for i in range(world.sizes["notes"]):
        p = persons[rng.randrange(n_persons)]
        phrase = rng.choice(names.NOTE_PHRASES)
        content = f"<p>{p.name}: {phrase}</p>" if rng.random() < 0.4 else f"<p>{phrase}</p>"
        deal_id = rng.randint(1, n_deals) if n_deals and rng.random() < 0.2 else None
        add, upd = _timestamps(rng)
        pw.notes.append(PdNote(i + 1, p.id, p.org_id, deal_id, rng.choice(USER_IDS), content, add, upd))

    # Mail for a subset of persons that have an email: a few messages each, in one thread.
    for p in persons:
        if not p.emails or rng.random() >= 0.15:
            continue
        thread = len(pw.mails) + 1
        for _ in range(rng.randint(1, 4)):
            subject = rng.choice(names.MAIL_SUBJECTS)
            snippet = f"Hei {p.first_name}, {rng.choice(names.NOTE_PHRASES).lower()}"
            pw.mails.append(PdMail(len(pw.mails) + 1, p.id, rng.choice(USER_IDS), subject, snippet,
                                   rng.random() < 0.5, rng.randint(p.add_time, END), thread))
    # Added last, from their own RNG, so that every record above stays as it was.
    _life_changes(random.Random(f"pipedrive-life:{world.seed}"), pw, world)
    return pw


def _life_changes(rng: random.Random, pw: PipedriveWorld, world: World) -> None:
    """A second, later record for about 2% of humans, as a salesperson adds after a change:
    the person moved to another company (new organisation and work email, same mobile), or
    took a new surname (marriage; same mobile, and a new work email at the same company).
    Only humans whose record has their mobile number: the hard case is "same phone, new
    company or new name"; a change that leaves nothing in common is untraceable by anyone."""
    companies = world.companies
    has_mobile = {p.true_person_id for p in pw.persons if p.phones and p.phones[0][1] == "mobile"}
    for h in world.humans:
        if rng.random() >= 0.02 or h.true_person_id not in has_mobile:
            continue
        first, last, company = h.first_name, h.last_name, companies[h.company_index]
        if rng.random() < 0.5 and len(companies) > 1:
            company = companies[(h.company_index + rng.randrange(1, len(companies))) % len(companies)]
        else:
            last = rng.choice([n for n in names.LAST_NAMES if n != h.last_name])
        emails = ()
        if rng.random() < 0.7:
            emails = ((f"{fold(first)}.{fold(last)}@{company.domain}", "work", True),)
        phones = ((_format_phone(rng, h.phone_e164), "mobile", True),)
        add = rng.randint(EPOCH + 365 * DAY, END - 30 * DAY)
        pw.persons.append(PdPerson(len(pw.persons) + 1, h.true_person_id, f"{first} {last}", first, last, emails,
                                   phones, company.index + 1, rng.choice(USER_IDS), h.title, add,
                                   rng.randint(add, END), (), (None, None, None, None, None)))


def _shared_mailboxes(rng: random.Random, world: World) -> dict[str, str]:
    """A few companies' info@/laskutus@ mailboxes, each used by 2-3 of its people."""
    by_company: dict[int, list[str]] = {}
    for h in world.humans:
        by_company.setdefault(h.company_index, []).append(h.true_person_id)
    candidates = sorted(ci for ci, hs in by_company.items() if len(hs) >= 2)
    chosen = rng.sample(candidates, min(len(candidates), max(2, len(world.humans) // 150)))
    out: dict[str, str] = {}
    for ci in chosen:
        mailbox = f"{rng.choice(('info', 'laskutus', 'myynti', 'toimisto'))}@{world.companies[ci].domain}"
        for hid in rng.sample(by_company[ci], min(len(by_company[ci]), rng.randint(2, 3))):
            out[hid] = mailbox
    return out


def _person(rng: random.Random, pid: int, h: Any, companies: list, shared: str | None, copy: int,
            private_owner: dict[str, str] | None = None) -> PdPerson:
    first, last = h.first_name, h.last_name
    r = rng.random()
    if r < 0.04:  # typed surname first; Pipedrive splits the name as given
        first, last = last, first
    name = f"{first} {last}"
    if 0.04 <= r < 0.06:
        name = name.lower()
    emails: list[tuple[str, str, bool]] = []
    if shared:
        emails.append((shared, "work", True))
        if rng.random() < 0.3:
            emails.append((h.email, "work", False))
    elif rng.random() >= (0.25 if copy else 0.08):
        email = _email_variant(rng, h.email, h.first_name, h.last_name)
        if private_owner is not None and private_owner.setdefault(email, h.true_person_id) != h.true_person_id:
            email = h.email  # a mail server gives an alias ("mvirtanen@") to one person only
        emails.append((email, "work", True))
        if rng.random() < 0.10:
            private = f"{fold(h.first_name)}.{fold(h.last_name)}@{rng.choice(names.FREEMAIL_DOMAINS)}"
            n = 2  # namesakes cannot share one freemail account: the second gets a number
            while private_owner is not None and private_owner.setdefault(private, h.true_person_id) != h.true_person_id:
                local, domain = private.split("@")
                private = f"{local.rstrip('0123456789')}{n}@{domain}"
                n += 1
            emails.append((private, "home", False))
    phones: list[tuple[str, str, bool]] = []
    if rng.random() >= (0.3 if copy else 0.10):
        phones.append((_format_phone(rng, h.phone_e164), "mobile", True))
        if rng.random() < 0.05:
            phones.append((f"09 {rng.randrange(100, 999)} {rng.randrange(1000, 9999)}", "work", False))
    org_id = h.company_index + 1 if rng.random() >= 0.05 else None
    add, upd = _timestamps(rng)
    custom = (
        f"https://www.linkedin.com/in/{fold(h.first_name)}-{fold(h.last_name)}-{rng.randrange(1000, 9999)}"
        if rng.random() < 0.4 else None,
        rng.randint(1, 5) if rng.random() < 0.7 else None,
        tuple(sorted(rng.sample(range(6, 11), rng.randint(1, 3)))) if rng.random() < 0.5 else None,
        ymd(rng.randint(add, END)) if rng.random() < 0.4 else None,
        (f"{rng.choice(names.STREETS)} {rng.randint(1, 60)} A {rng.randint(1, 30)}",) + rng.choice(names.CITIES)[::-1]
        if rng.random() < 0.2 else None,
    )
    labels = (rng.choice(LABEL_OPTIONS)[0],) if rng.random() < 0.3 else ()
    return PdPerson(pid, h.true_person_id, name, first, last, tuple(emails), tuple(phones), org_id,
                    rng.choice(USER_IDS), h.title if rng.random() < 0.8 else None, add, upd, labels, custom)
