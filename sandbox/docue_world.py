"""Docue's view of the world: the company's contracts with its customers and their signers.

About two customers in three have one to three documents (service agreement, data-processing
agreement, order confirmation). Each document has the company's own signer and one or two
signers of the customer, typed ``company`` (with title and business id) or, rarely, ``person``;
a customer signer's e-mail is sometimes upper-case or missing. Our own signer is not a world
human.

The derivation has its own RNG (seeded from the world's seed and "docue"). Ground truth: one row
per customer signer, record id = the signature id.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import NamedTuple

from .world import END, EPOCH, World

DOCUMENT_NAMES = ("Palvelusopimus", "Tietojenkäsittelysopimus (DPA)", "Tilausvahvistus", "Lisäpalvelusopimus")
# The controller's own signer (the sandbox's own company, as in google_world and netvisor's defaults).
OWN_SIGNER = {"firstName": "Sari", "lastName": "Koskinen", "email": "sari.koskinen@tietotalo.fi",
              "phoneNumber": "+358401234567", "companyTitle": "Toimitusjohtaja", "companyIdent": "2345678-9"}
SIGNATURE_ID_BASE = 50_000


class DcSignature(NamedTuple):
    id: int
    document_id: int
    true_person_id: str | None  # None for our own signer
    type: str  # company | person
    first_name: str
    last_name: str
    email: str
    phone: str
    title: str
    company_ident: str
    signed_at: int | None


class DcDocument(NamedTuple):
    id: int
    name: str
    language: str
    status: str  # draft | pending | signed
    created_at: int
    company: str


class DocueWorld:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.documents: list[DcDocument] = []
        self.signatures: list[DcSignature] = []

    def truth(self) -> Iterator[tuple[str, str, str]]:
        for s in self.signatures:
            if s.true_person_id:
                yield ("docue", str(s.id), s.true_person_id)


def derive(world: World) -> DocueWorld:
    rng = random.Random(f"docue:{world.seed}")
    dw = DocueWorld(world.seed)
    by_company: dict[int, list] = {}
    for h in world.humans:
        by_company.setdefault(h.company_index, []).append(h)
    for company in world.companies:
        humans = by_company.get(company.index, [])
        if not humans or rng.random() >= 0.67:
            continue
        for _ in range(rng.randint(1, 3)):
            doc_id = len(dw.documents) + 1
            created = rng.randint(EPOCH, END - 30 * 86400)
            status = rng.choice(("signed", "signed", "signed", "pending", "draft"))
            dw.documents.append(DcDocument(doc_id, rng.choice(DOCUMENT_NAMES), rng.choice(("fi", "fi", "en")),
                                           status, created, company.name))
            signed = created + rng.randint(1, 20) * 86400 if status == "signed" else None
            sid = SIGNATURE_ID_BASE + len(dw.signatures) + 1
            dw.signatures.append(DcSignature(sid, doc_id, None, "company", OWN_SIGNER["firstName"],
                                             OWN_SIGNER["lastName"], OWN_SIGNER["email"], OWN_SIGNER["phoneNumber"],
                                             OWN_SIGNER["companyTitle"], OWN_SIGNER["companyIdent"], signed))
            for h in rng.sample(humans, min(len(humans), rng.choice((1, 1, 2)))):
                kind = "company" if rng.random() < 0.9 else "person"
                r = rng.random()
                email = h.email if r < 0.85 else h.email.upper() if r < 0.95 else ""
                sid = SIGNATURE_ID_BASE + len(dw.signatures) + 1
                dw.signatures.append(DcSignature(
                    sid, doc_id, h.true_person_id, kind, h.first_name, h.last_name, email,
                    h.phone_e164 if rng.random() < 0.6 else "", h.title if kind == "company" else "",
                    company.business_id if kind == "company" else "", signed))
    return dw
