"""Matomo's view of the world: visits to the company's web site (site 1) and customer portal
(site 2), with their page views and goal conversions.

About one human in ten logs in to the portal, which sets Matomo's ``userId`` to the person's
lower-cased work e-mail (the deployment's mapping; the connector's ``user_id_format``). Matomo
then derives the ``visitorId`` from the userId (first 16 hex digits of its SHA-1), so the same
browser's later anonymous visits to the web site carry that visitorId without a userId. Other
visitors are anonymous noise that no data-subject search may touch.

The derivation has its own RNG (seeded from the world's seed and "matomo"). Ground truth: one
row per identified visit, record id ``<idsite>:<idvisit>``.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from typing import NamedTuple

from .world import END, EPOCH, World

SITES = {1: "www.secapp.fi", 2: "Asiakasportaali"}
PAGES = {1: ("/", "/hinnasto", "/ominaisuudet", "/yhteystiedot", "/blogi/tietoturva-2026", "/referenssit"),
         2: ("/login", "/dashboard", "/raportit", "/asetukset", "/kayttajat", "/laskut")}
BROWSERS = (("Chrome", "Windows"), ("Firefox", "Ubuntu"), ("Safari", "iOS"), ("Edge", "Windows"),
            ("Chrome", "Android"))
COUNTRIES = (("fi", "Finland"), ("fi", "Finland"), ("fi", "Finland"), ("se", "Sweden"), ("ee", "Estonia"))


class MtVisit(NamedTuple):
    idsite: int
    idvisit: int
    true_person_id: str | None
    visitor_id: str  # 16 hex digits
    user_id: str
    ip: str  # already anonymised by Matomo's default 2-byte mask
    first_action: int
    browser: str
    os: str
    country: str
    actions: tuple[str, ...]  # page URLs, in order
    conversion: bool


def visitor_id_of(user_id: str) -> str:
    """Matomo's visitorId for a userId (``enable_userid_overwrites_visitorid``, on by default)."""
    return hashlib.sha1(user_id.encode("utf-8")).hexdigest()[:16]


class MatomoWorld:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.visits: list[MtVisit] = []

    def truth(self) -> Iterator[tuple[str, str, str]]:
        for v in self.visits:
            if v.true_person_id:
                yield ("matomo", f"{v.idsite}:{v.idvisit}", v.true_person_id)


def derive(world: World) -> MatomoWorld:
    rng = random.Random(f"matomo:{world.seed}")
    drafts: list[tuple[int, int, str | None, str, str]] = []  # (time, site, person, visitorId, userId)
    for h in world.humans:
        if rng.random() >= 0.1:
            continue
        user_id = h.email.lower()
        vid = visitor_id_of(user_id)
        for _ in range(rng.randint(1, 5)):
            drafts.append((rng.randint(EPOCH, END), 2, h.true_person_id, vid, user_id))
        for _ in range(rng.randint(0, 3)):
            drafts.append((rng.randint(EPOCH, END), 1, h.true_person_id, vid, ""))
    for _ in range(max(20, len(world.humans) // 2)):  # anonymous visitors
        drafts.append((rng.randint(EPOCH, END), rng.choice((1, 1, 1, 2)), None, f"{rng.getrandbits(64):016x}", ""))
    drafts.sort(key=lambda d: d[0])
    mw = MatomoWorld(world.seed)
    for idvisit, (when, site, person, vid, user_id) in enumerate(drafts, start=1):
        browser, os_name = rng.choice(BROWSERS)
        country = rng.choice(COUNTRIES)[0]
        pages = PAGES[site]
        actions = tuple(rng.choice(pages) for _ in range(rng.randint(1, 5)))
        ip = f"{rng.randint(80, 220)}.{rng.randint(0, 255)}.0.0"
        mw.visits.append(MtVisit(site, idvisit, person, vid, user_id, ip, when, browser, os_name, country, actions,
                                 rng.random() < 0.1))
    return mw
