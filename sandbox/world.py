"""The synthetic world the imitations serve: Finnish companies and the humans working there.

Everything is derived from one `random.Random(seed)`, and timestamps come from a fixed epoch,
so a seed always gives byte-identical data (tests and `python -m sandbox truth` rely on that).
Records are namedtuples (plain tuples in memory) because a 100k-person world must stay small.

Each imitated system derives its own records from the humans, with the variations real systems
have (duplicates, email and phone spellings, shared mailboxes); the derivation also knows which
human every record belongs to, which is the ground truth for identity resolution. A system adds
its derivation by naming a module in `DERIVATIONS`; the module has `derive(world)` returning an
object with a `truth()` iterator.
"""

from __future__ import annotations

import calendar
import importlib
import random
import threading
from collections.abc import Iterator
from typing import Any, NamedTuple

from . import names

# Fixed time span of the world's history: 2024-01-01T00:00:00Z .. 2026-10-31T23:59:59Z.
EPOCH = calendar.timegm((2024, 1, 1, 0, 0, 0))
END = calendar.timegm((2026, 10, 31, 23, 59, 59))

# system name -> module with derive(world); imported lazily so a world stays cheap to build.
DERIVATIONS = {"pipedrive": "sandbox.pipedrive_world", "request_tracker": "sandbox.request_tracker_world",
               "google": "sandbox.google_world", "netvisor": "sandbox.netvisor_world",
               "trustmary": "sandbox.trustmary_world", "matomo": "sandbox.matomo_world", "docue": "sandbox.docue_world"}

_FOLD = str.maketrans({"ä": "a", "ö": "o", "å": "a", "Ä": "A", "Ö": "O", "Å": "A", "é": "e", "ü": "u"})

MOBILE_PREFIXES = ("40", "41", "44", "45", "46", "50")


class Company(NamedTuple):
    index: int
    name: str
    business_id: str  # Y-tunnus "1234567-8"
    domain: str
    industry: str
    street: str
    city: str
    postal_code: str


class Human(NamedTuple):
    true_person_id: str
    first_name: str
    last_name: str
    company_index: int
    email: str  # canonical: firstname.lastname@domain, ascii-folded
    phone_e164: str
    title: str


def fold(text: str) -> str:
    """Lower-case ASCII form used in email addresses and domains (ä→a, ö→o, å→a)."""
    return text.translate(_FOLD).lower()


def ytunnus_check_digit(body: str) -> int | None:
    """Check digit of a Finnish business id; None when the body has no valid digit (remainder 1)."""
    total = sum(int(d) * w for d, w in zip(body, (7, 9, 10, 5, 8, 4, 2)))
    rem = total % 11
    if rem == 0:
        return 0
    if rem == 1:
        return None
    return 11 - rem


def _company_name(rng: random.Random, industry: str) -> str:
    pattern = rng.random()
    if pattern < 0.5:
        return f"{rng.choice(names.LAST_NAMES)} {industry} Oy"
    if pattern < 0.7:
        return f"{rng.choice(names.WORDS)} {industry} Oy"
    if pattern < 0.8:
        return f"{rng.choice(names.CITIES)[0]} {industry} Oy"
    if pattern < 0.9:
        return f"{industry} {rng.choice(names.LAST_NAMES)} Oy Ab"
    return f"Oy {rng.choice(names.WORDS)} {industry} Ab"


def _domain_of(name: str) -> str:
    core = name.replace(" Oy Ab", "").replace(" Oy", "").replace("Oy ", "").replace(" Ab", "")
    return "".join(ch for ch in fold(core) if ch.isalnum()) + ".fi"


class World:
    def __init__(self, seed: int, companies: list[Company], humans: list[Human], sizes: dict[str, int]):
        self.seed = seed
        self.companies = companies
        self.humans = humans
        self.sizes = sizes  # persons, organizations, deals, activities, notes
        self._derived: dict[str, Any] = {}
        self._lock = threading.Lock()

    @classmethod
    def generate(
        cls,
        seed: int = 7,
        persons: int = 300,
        organizations: int = 60,
        deals: int | None = None,
        activities: int | None = None,
        notes: int | None = None,
    ) -> World:
        if persons < 1 or organizations < 1:
            raise ValueError("a world needs at least one person and one organization")
        rng = random.Random(seed)
        sizes = {
            "persons": persons,
            "organizations": organizations,
            "deals": persons // 2 if deals is None else deals,
            "activities": persons * 2 if activities is None else activities,
            "notes": persons if notes is None else notes,
        }
        companies = _make_companies(rng, organizations)
        humans = _make_humans(rng, persons, companies)
        return cls(seed, companies, humans, sizes)

    def systems(self) -> list[str]:
        return list(DERIVATIONS)

    def derive(self, system: str) -> Any:
        """The system's derived records (computed once per world, then cached)."""
        with self._lock:
            if system not in self._derived:
                if system not in DERIVATIONS:
                    raise KeyError(f"no derivation for system {system!r}")
                module = importlib.import_module(DERIVATIONS[system])
                self._derived[system] = module.derive(self)
            return self._derived[system]

    def drop_cache(self) -> None:
        """Forget derived records (a long-running server keeps only its own store)."""
        with self._lock:
            self._derived.clear()

    def truth(self, system: str) -> Iterator[tuple[str, str, str]]:
        """(system, record_id, true_person_id) for every person record of the system."""
        return self.derive(system).truth()


def _make_companies(rng: random.Random, count: int) -> list[Company]:
    companies: list[Company] = []
    used_names: set[str] = set()
    used_domains: set[str] = set()
    used_ids: set[str] = set()
    for index in range(count):
        industry = rng.choice(names.INDUSTRIES)
        for _attempt in range(6):
            name = _company_name(rng, industry)
            if name not in used_names and _domain_of(name) not in used_domains:
                break
        else:  # the name space is small on purpose; number the rare leftovers
            name = name.replace(" Oy", f" {index} Oy", 1) if " Oy" in name else f"{name} {index}"
        domain = _domain_of(name)
        while True:
            body = f"{rng.randrange(1000000, 3300000):07d}"
            check = ytunnus_check_digit(body)
            if check is not None and body not in used_ids:
                break
        used_names.add(name)
        used_domains.add(domain)
        used_ids.add(body)
        city, postal = rng.choice(names.CITIES)
        street = f"{rng.choice(names.STREETS)} {rng.randint(1, 99)}"
        companies.append(Company(index, name, f"{body}-{check}", domain, industry, street, city, postal))
    return companies


def _make_humans(rng: random.Random, count: int, companies: list[Company]) -> list[Human]:
    humans: list[Human] = []
    used_emails: set[str] = set()
    used_phones: set[str] = set()
    n_companies = len(companies)
    for i in range(count):
        # Skewed so that a few companies employ many of the people, as in a real CRM.
        company_index = min(int(n_companies * rng.random() ** 1.6), n_companies - 1)
        if i >= 10 and rng.random() < 0.01:
            # A namesake: same name as an earlier person but at another company.
            other = humans[rng.randrange(len(humans))]
            first, last = other.first_name, other.last_name
            if company_index == other.company_index:
                company_index = (company_index + 1) % n_companies
        else:
            first = rng.choice(names.FIRST_NAMES_FEMALE if rng.random() < 0.5 else names.FIRST_NAMES_MALE)
            if rng.random() < 0.06:
                last = f"{rng.choice(names.SURNAME_PREFIXES)}-{rng.choice(names.LAST_NAMES)}"
            else:
                last = rng.choice(names.LAST_NAMES)
        domain = companies[company_index].domain
        local = f"{fold(first)}.{fold(last)}"
        email = f"{local}@{domain}"
        n = 2
        while email in used_emails:
            email = f"{local}{n}@{domain}"
            n += 1
        used_emails.add(email)
        while True:
            phone = f"+358{rng.choice(MOBILE_PREFIXES)}{rng.randrange(1000000, 10000000)}"
            if phone not in used_phones:
                break
        used_phones.add(phone)
        humans.append(Human(f"h{i + 1:06d}", first, last, company_index, email, phone, rng.choice(names.TITLES)))
    return humans
