"""A labelled world of Finnish contacts for identity resolution, built apart from the sandbox
world: people at companies, each seen through several of six systems (a CRM, mail contacts,
billing, a ticket system, a reference-survey tool and an e-signature tool), with the ground
truth and a case category per person.

Categories (the kinds of record issue 18 names, plus the ordinary bulk and a trap):
  ordinary       records with emails and phones in their usual spellings (case, whitespace,
                 aliases like jlaine@, numbers written as Finns type them, org spelled variously)
  name_org_only  one or two records with only a name and an organisation (a survey reference
                 contact, an e-signature signer), the organisation spelled differently
                 ("Itätekniikka Oy" / "Itätekniikka" / "ITÄTEKNIIKKA OY" / "Oy Itätekniikka Ab",
                 the town in the name or not: "Sisämedia Oulu" / "Sisämedia Oy"), or only the
                 business id (Y-tunnus)
  inverted       a record with the name written surname first ("Laine, Joonas", "LAINE Joonas")
                 and no email
  switchboard    a record whose only phone is the company switchboard (colleagues give it too)
  old_mobile     a record with an old mobile that disagrees with the person's other records
  namesake       two people of the same name at the same company, each with their own address
                 (joonas.laine@ and joonas.laine2@ or jlaine@): they must stay apart

Aliases: an ordinary person's records may carry the short alias jlaine@ beside
joonas.laine@ (one person, as in the sandbox world); a namesake colleague's address is
numbered or has a middle initial (joonas.laine2@, joonas.k.laine@) and contradicts.

Every person has at least one "anchor" record (name, personal email, usually a phone and the
organisation); the hard records come on top. Names never repeat within one company except for
the namesake category, so the truth is unambiguous. Deterministic for a seed.

    records(n, seed) -> iterator of (record_id, system, name, email, phone, organisation, business_id)
    write(folder, n, seed)  -> DIR/records.csv and DIR/truth.csv (system, record_id, true_person_id, category)
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from sandbox import names

CATEGORIES = ("ordinary", "name_org_only", "inverted", "switchboard", "old_mobile", "namesake")
# Share of people per category (namesake counts people, who come in pairs).
CATEGORY_WEIGHTS = (0.70, 0.10, 0.06, 0.05, 0.05, 0.04)
COLUMNS = ("record_id", "system", "name", "email", "phone", "organisation", "business_id")
RECORDS_PER_PERSON = 2.4  # a little under the generator's mean (about 2.5), so a record count is reached

# More surnames than the sandbox's 60: stems with the common endings, so that namesakes are as
# rare as in a real register of a few hundred thousand people.
_STEMS = ("Koivu", "Järvi", "Mäki", "Salo", "Vuori", "Kallio", "Lehto", "Laakso", "Niemi", "Harju",
          "Rinne", "Aho", "Kivi", "Lampi", "Ranta", "Suo", "Kangas", "Joki", "Metsä", "Pelto", "Kuusi",
          "Haapa", "Tammi", "Leppä", "Honka", "Paju", "Saari", "Karhu", "Susi", "Kettu")
_ENDINGS = ("nen", "la", "lä", "mäki", "salo", "aho", "niemi", "vaara", "luoma", "koski", "pää", "harju")
_FIRST = names.FIRST_NAMES_FEMALE + names.FIRST_NAMES_MALE
_LAST = tuple(dict.fromkeys(names.LAST_NAMES + tuple(s + e for s in _STEMS for e in _ENDINGS)))
_TOWNS = tuple(c for c, _ in names.CITIES)
_BRANDS = ("Itä", "Länsi", "Pohjois", "Etelä", "Sisä", "Ulko", "Yli", "Ala", "Keski", "Uusi", "Vanha",
           "Suur", "Pien", "Hyvä", "Tosi", "Aito", "Kirkas", "Vakaa", "Nopea", "Vihreä")
_TRADES = ("tekniikka", "media", "rakennus", "kuljetus", "konepaja", "sähkö", "putki", "talotekniikka",
           "logistiikka", "data", "valo", "puu", "metalli", "kiinteistöt", "huolto", "automaatio",
           "laskenta", "viestintä", "energia", "optiikka")
_LEGAL = ("Oy", "Oy", "Oy", "Oy", "Oyj", "Ab", "Ky", "Tmi", "ry", "Ltd")
_FREEMAIL = ("gmail.com", "outlook.com", "hotmail.fi", "kolumbus.fi", "luukku.com")
_FOLD = str.maketrans({"ä": "a", "ö": "o", "å": "a", "Ä": "A", "Ö": "O", "Å": "A", "é": "e"})


def fold(text: str) -> str:
    return text.translate(_FOLD).lower()


class Company(NamedTuple):
    core: str  # "Itätekniikka", "Sisämedia"
    town: str | None  # "Oulu" when the registered name carries it
    legal: str  # "Oy"
    domain: str  # itatekniikka.fi (never with the town)
    business_id: str
    switchboard: str  # "09 1234 5678": a fixed line shared by everyone there


class Person(NamedTuple):
    pid: str
    category: str
    first: str
    last: str
    company: Company
    email: str  # canonical first.last@domain (namesakes: a numbered or short form)
    mobile: str  # E.164
    old_mobile: str  # E.164, only used by old_mobile


def _ytunnus(rng: random.Random, used: set[str]) -> str:
    while True:
        body = f"{rng.randrange(1000000, 3300000):07d}"
        rem = sum(int(d) * w for d, w in zip(body, (7, 9, 10, 5, 8, 4, 2))) % 11
        if rem != 1 and body not in used:
            used.add(body)
            return f"{body}-{0 if rem == 0 else 11 - rem}"


def _companies(rng: random.Random, count: int) -> list[Company]:
    out, used_domains, used_ids = [], set(), set()
    while len(out) < count:
        core = rng.choice(_BRANDS) + rng.choice(_TRADES)
        if rng.random() < 0.3:
            core = f"{rng.choice(names.LAST_NAMES)} {core.capitalize()}"
        domain = "".join(ch for ch in fold(core) if ch.isalnum())
        if domain in used_domains:
            domain = f"{domain}{len(out)}"
            core = f"{core} {len(out)}"
        used_domains.add(domain)
        town = rng.choice(_TOWNS) if rng.random() < 0.25 else None
        switchboard = f"0{rng.choice(('9', '3', '2', '8', '14', '17', '13'))} {rng.randrange(100000, 9999999)}"
        out.append(Company(core, town, rng.choice(_LEGAL), domain + ".fi", _ytunnus(rng, used_ids), switchboard))
    return out


def _mobile(rng: random.Random, used: set[str]) -> str:
    while True:
        number = f"+358{rng.choice(('40', '41', '44', '45', '50'))}{rng.randrange(1000000, 9999999)}"
        if number not in used:
            used.add(number)
            return number


def _phone_spelling(rng: random.Random, e164: str) -> str:
    prefix, number = e164[4:6], e164[6:]
    return rng.choice((f"+358 {prefix} {number[:3]} {number[3:]}", f"0{prefix}-{number}", f"0{prefix}{number}",
                       f"0{prefix} {number[:3]} {number[3:]}", e164))


def _org_spelling(rng: random.Random, c: Company) -> str:
    """The organisation as someone typed it: with or without legal form and town, in capitals,
    legal form first, accents dropped, stray punctuation."""
    core = c.core
    if c.town and rng.random() < 0.6:
        core = f"{core} {c.town}"
    r = rng.random()
    if r < 0.30:
        text = f"{core} {c.legal}"
    elif r < 0.50:
        text = core
    elif r < 0.65:
        text = f"{core} {c.legal}".upper()
    elif r < 0.72:
        text = f"Oy {core} Ab"
    elif r < 0.80:
        text = fold(core).title() + f" {c.legal}"
    elif r < 0.88:
        text = f"{core}, {c.legal}."
    elif r < 0.94:
        text = f"  {core}   {c.legal} "
    else:
        text = core.lower()
    return text


def _email_spelling(rng: random.Random, email: str, p: Person) -> str:
    r = rng.random()
    if r < 0.65:
        return email
    if r < 0.75:
        local, domain = email.split("@")
        return ".".join(x[:1].upper() + x[1:] for x in local.split(".")) + "@" + domain.capitalize()
    if r < 0.82:
        return email.upper()
    if r < 0.90:
        return f" {email} "
    if p.category == "namesake":  # a namesake's short alias would fit the other's address too
        return email
    return f"{fold(p.first)[:1]}{fold(p.last).replace('-', '')}@{email.split('@')[1]}"  # alias jlaine@


def _people(rng: random.Random, count: int, companies: list[Company]) -> list[Person]:
    people: list[Person] = []
    taken: set[tuple[str, str, int]] = set()
    used_phones: set[str] = set()
    n = len(companies)
    while len(people) < count:
        ci = min(int(n * rng.random() ** 1.6), n - 1)  # a few companies employ many
        company = companies[ci]
        category = rng.choices(CATEGORIES, CATEGORY_WEIGHTS)[0]
        while True:
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            if (first, last, ci) not in taken:
                break
        taken.add((first, last, ci))
        email = f"{fold(first)}.{fold(last)}@{company.domain}"
        pid = f"h{len(people)}"
        people.append(Person(pid, category, first, last, company, email, _mobile(rng, used_phones),
                             _mobile(rng, used_phones)))
        if category == "namesake":
            middle = rng.choice("abehjklmpst")
            twin_email = (f"{fold(first)}.{fold(last)}2@{company.domain}" if rng.random() < 0.5
                          else f"{fold(first)}.{middle}.{fold(last)}@{company.domain}")
            people.append(Person(f"h{len(people)}", category, first, last, company, twin_email,
                                 _mobile(rng, used_phones), _mobile(rng, used_phones)))
    return people


def _anchor_records(rng: random.Random, p: Person) -> Iterator[tuple[str, ...]]:
    """(system, name, email, phone, organisation, business_id) of the person's ordinary records."""
    name = f"{p.first} {p.last}"
    c = p.company
    # CRM: always; name, email, usually the mobile and the organisation (sometimes its business id).
    phone = _phone_spelling(rng, p.mobile) if rng.random() < 0.8 else ""
    yield ("crm", name, _email_spelling(rng, p.email, p), phone,
           _org_spelling(rng, c) if rng.random() < 0.9 else "", c.business_id if rng.random() < 0.4 else "")
    if rng.random() < 0.6:  # mail contacts: the address, the display name often missing or surname first
        r = rng.random()
        shown = "" if r < 0.25 else (f"{p.last} {p.first}" if r < 0.35 else name)
        yield ("mail", shown, p.email if rng.random() < 0.7 else _email_spelling(rng, p.email, p), "", "", "")
    if rng.random() < 0.4:  # billing: business id, organisation with its legal form, phone spelled otherwise
        phone = _phone_spelling(rng, p.mobile) if rng.random() < 0.5 else ""
        yield ("billing", name, _email_spelling(rng, p.email, p) if rng.random() < 0.8 else "",
               phone, _org_spelling(rng, c), c.business_id)
    if rng.random() < 0.25:  # tickets: address and name as the user wrote them
        yield ("tickets", name if rng.random() < 0.7 else "", p.email.upper() if rng.random() < 0.2 else p.email,
               "", "", "")


def _hard_records(rng: random.Random, p: Person) -> Iterator[tuple[str, ...]]:
    c = p.company
    name = f"{p.first} {p.last}"
    if p.category == "name_org_only":
        for system in rng.sample(("survey", "esign"), rng.choice((1, 1, 2))):
            if rng.random() < 0.15:  # a signer known only by the company's business id
                yield (system, name, "", "", "", c.business_id)
            else:
                yield (system, name if rng.random() < 0.8 else name.upper(), "", "", _org_spelling(rng, c), "")
    elif p.category == "inverted":
        shown = rng.choice((f"{p.last}, {p.first}", f"{p.last.upper()} {p.first}", f"{p.last} {p.first}"))
        yield (rng.choice(("esign", "billing", "survey")), shown, "",
               _phone_spelling(rng, p.mobile) if rng.random() < 0.3 else "", _org_spelling(rng, c), "")
    elif p.category == "switchboard":
        yield (rng.choice(("crm", "billing", "esign")), name, "", c.switchboard, _org_spelling(rng, c), "")
    elif p.category == "old_mobile":
        yield (rng.choice(("crm", "billing", "survey")), name, "", _phone_spelling(rng, p.old_mobile),
               _org_spelling(rng, c), "")


def records(count: int, seed: int = 18) -> Iterator[tuple[tuple[str, ...], tuple[str, str]]]:
    """((record_id, system, name, email, phone, organisation, business_id), (true_person_id,
    category)) for about ``count`` records (never more)."""
    rng = random.Random(f"identity-world:{seed}")
    population = max(4, int(count / RECORDS_PER_PERSON))
    companies = _companies(rng, max(2, population // 8))
    n = 0
    for p in _people(rng, population, companies):
        for rec in (*_anchor_records(rng, p), *_hard_records(rng, p)):
            if n >= count:
                return
            n += 1
            yield (f"r{n}", *rec), (p.pid, p.category)


def write(folder: Path, count: int, seed: int = 18) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(folder / "records.csv", "w", newline="", encoding="utf-8") as rf, \
            open(folder / "truth.csv", "w", newline="", encoding="utf-8") as tf:
        rec, truth = csv.writer(rf), csv.writer(tf)
        rec.writerow(COLUMNS)
        truth.writerow(("system", "record_id", "true_person_id", "category"))
        for row, (pid, category) in records(count, seed):
            rec.writerow(row)
            truth.writerow((row[1], row[0], pid, category))
            n += 1
    return n


def category_scores(con, truth: str = "world_truth", clusters: str = "world_clusters") -> dict[str, dict]:
    """Pairwise precision and recall per category and overall, from ``truth(system, record_id,
    true_person_id, category)`` and ``clusters(system, record_id, cluster)`` (DuckDB tables;
    names are the caller's constants). A predicted pair counts for the category of each of its
    two records; recall counts the true pairs of the category's people. Counted per group, so
    it is cheap at a million records."""
    rows = con.execute(f"""
        WITH j AS (SELECT c.cluster, t.true_person_id, t.category FROM {clusters} AS c JOIN {truth} AS t USING (system, record_id)),
        per_person AS (SELECT cluster, true_person_id, any_value(category) AS category, count(*) AS n FROM j GROUP BY ALL),
        per_true AS (SELECT category, count(*) AS n FROM j GROUP BY true_person_id, category),
        per_cluster AS (SELECT cluster, count(*) AS n FROM j GROUP BY cluster),
        per_cluster_cat AS (SELECT cluster, category, count(*) AS k FROM j GROUP BY ALL),
        cats AS (SELECT DISTINCT category FROM j UNION ALL SELECT '(all)')
        SELECT cats.category,
               (SELECT coalesce(sum(n * (n - 1) / 2), 0) FROM per_person AS p WHERE cats.category IN (p.category, '(all)')),
               (SELECT coalesce(sum(c.n * (c.n - 1) / 2 - (c.n - k.k) * (c.n - k.k - 1) / 2), 0)
                  FROM per_cluster AS c JOIN per_cluster_cat AS k USING (cluster) WHERE cats.category = k.category),
               (SELECT coalesce(sum(n * (n - 1) / 2), 0) FROM per_cluster),
               (SELECT coalesce(sum(n * (n - 1) / 2), 0) FROM per_true AS t WHERE cats.category IN (t.category, '(all)'))
        FROM cats ORDER BY cats.category
    """).fetchall()
    out = {}
    for category, correct, predicted_cat, predicted_all, actual in rows:
        predicted = predicted_all if category == "(all)" else predicted_cat
        correct, predicted, actual = int(correct), int(predicted), int(actual)
        out[category] = {"true_pairs": actual, "predicted_pairs": predicted, "correct_pairs": correct,
                         "precision": correct / predicted if predicted else 1.0,
                         "recall": correct / actual if actual else 1.0}
    return out
