"""Trustmary's view of the world: contacts (reference customers and survey recipients), their
contact lists, and survey answers some of them gave.

About one human in eight is a contact, keyed by e-mail as Trustmary keys them; a few carry an
upper-case or personal (freemail) address. Contacts sit on zero to three of the lists; some
answered a survey, and an answer repeats the name, e-mail and organisation the person typed,
with a photo file name when they uploaded one. Ids are Trustmary-like 9-letter short ids.

The derivation has its own RNG (seeded from the world's seed and "trustmary"), so it never
changes another system's data. Ground truth: one row per contact (``id``).
"""

from __future__ import annotations

import random
import string
from collections.abc import Iterator
from typing import NamedTuple

from . import names
from .world import END, EPOCH, World, fold

LISTS = ("Asiakastyytyväisyys 2026", "Referenssiasiakkaat", "Uutiskirje")
SURVEYS = (("NPS-kysely", "nps"), ("Referenssipyyntö", "testimonial"))
STATUSES = ("active",) * 17 + ("unsubscribed", "bounce", "complaint")
COMMENTS = ("Toimiva palvelu ja nopea tuki.", "Helppo ottaa käyttöön.", "Suosittelen kollegoille.",
            "Raportointi voisi olla monipuolisempaa.", "Hyvä hinta-laatusuhde.")


class TmContact(NamedTuple):
    id: str
    true_person_id: str
    email: str
    eid: str
    name: str
    phone: str
    company: str
    status: str
    lists: tuple[str, ...]  # list ids
    created_at: int
    updated_at: int


class TmResponse(NamedTuple):
    answer_id: str
    survey_id: str
    contact_id: str
    true_person_id: str
    nps: int
    comment: str
    name: str
    email: str
    organization: str
    image_filename: str
    public_consent: bool
    created_at: int


class TrustmaryWorld:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.lists: list[tuple[str, str, int]] = []  # (id, name, created_at)
        self.surveys: list[tuple[str, str, str, int]] = []  # (id, name, type, created_at)
        self.contacts: list[TmContact] = []
        self.responses: list[TmResponse] = []

    def truth(self) -> Iterator[tuple[str, str, str]]:
        for c in self.contacts:
            yield ("trustmary", c.id, c.true_person_id)


def short_id(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_letters) for _ in range(9))


def derive(world: World) -> TrustmaryWorld:
    rng = random.Random(f"trustmary:{world.seed}")
    tw = TrustmaryWorld(world.seed)
    tw.lists = [(short_id(rng), name, rng.randint(EPOCH, EPOCH + 90 * 86400)) for name in LISTS]
    tw.surveys = [(short_id(rng), name, kind, rng.randint(EPOCH, EPOCH + 90 * 86400)) for name, kind in SURVEYS]
    for h in world.humans:
        if rng.random() >= 0.12:
            continue
        company = world.companies[h.company_index]
        r = rng.random()
        email = (h.email if r < 0.8 else h.email.upper() if r < 0.9
                 else f"{fold(h.first_name)}.{fold(h.last_name)}@{rng.choice(names.FREEMAIL_DOMAINS)}")
        created = rng.randint(EPOCH, END - 86400)
        lists = tuple(lid for lid, _, _ in tw.lists if rng.random() < 0.45)
        contact = TmContact(
            short_id(rng), h.true_person_id, email, f"crm-{rng.randrange(10**5, 10**6)}" if rng.random() < 0.3 else "",
            f"{h.first_name} {h.last_name}", h.phone_e164 if rng.random() < 0.5 else "", company.name,
            rng.choice(STATUSES), lists, created, rng.randint(created, END),
        )
        tw.contacts.append(contact)
        if rng.random() < 0.35:
            survey_id = rng.choice(tw.surveys)[0]
            tw.responses.append(TmResponse(
                short_id(rng), survey_id, contact.id, h.true_person_id, rng.randint(5, 10), rng.choice(COMMENTS),
                contact.name, email, company.name, f"{short_id(rng)}.jpg" if rng.random() < 0.3 else "",
                rng.random() < 0.6, rng.randint(created, END),
            ))
    return tw
