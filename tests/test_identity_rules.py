"""Identity linking rules of issue 18, each with its counter-case, through the real resolver:
`contact-register identity resolve` on CSV files (a subprocess, DuckDB underneath) or
:func:`identity.resolve` on a DuckDB database file. Then a small labelled world from
bench/identity_world.py, scored per case category by this test from the generator's truth.

The expectations are written by hand from the rule: the same full name at the same organisation
(spelled any way: legal form, case, accents, punctuation, a town after the first word, the
business id, the email domain) is one person unless something contradicts it: a different
personal address at the same company domain (a short alias jlaine@ of joonas.laine@ is not
different), two known people with their own email and different mobiles, or an operator split.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from collections import Counter, defaultdict
from itertools import combinations
from pathlib import Path

import duckdb

from contact_register.warehouse import identity
from bench import identity_world

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ("record_id", "system", "name", "email", "phone", "organisation", "business_id")


def _resolve_csv(tmp_path: Path, rows: list[tuple[str, ...]]) -> dict[str, str]:
    """record_id -> cluster_id from the CLI."""
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    with src.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        w.writerows(rows)
    r = subprocess.run([sys.executable, "-m", "contact_register.cli", "identity", "resolve", str(src), str(out)],
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    with out.open(newline="", encoding="utf-8") as f:
        return {row["record_id"]: row["cluster_id"] for row in csv.DictReader(f)}


def rec(rid, name, email="", phone="", org="", bid="", system="crm"):
    return (rid, system, name, email, phone, org, bid)


def test_name_and_organisation_only_joins_the_one_person_there_whatever_the_spelling(tmp_path):
    c = _resolve_csv(tmp_path, [
        rec("1", "Joonas Laine", "joonas.laine@itatekniikka.fi", "040 123 4567", "Itätekniikka Oy"),
        rec("2", "Joonas Laine", org="Itätekniikka", system="survey"),
        rec("3", "JOONAS LAINE", org="ITÄTEKNIIKKA OY", system="esign"),
        rec("4", "Joonas Laine", org="Oy Itätekniikka Ab.", system="esign2"),
        # town inside the company name; the person's own records carry only the domain
        rec("5", "Riikka Mäkelä", "riikka.makela@sisamedia.fi", "050 765 4321"),
        rec("6", "Riikka Mäkelä", org="Sisämedia Oulu", system="survey"),
        rec("7", "Riikka Mäkelä", org="SISÄMEDIA OULU OY", system="esign"),
        # the business id stands for the name written beside it on a billing record
        rec("8", "Outi Salo", "outi.salo@kuljetuskivi.fi", "044 222 3333", "Kuljetus Kivi Oy", "1234567-1",
            system="billing"),
        rec("9", "Outi Salo", bid="FI12345671", system="esign"),
    ])
    assert c["1"] == c["2"] == c["3"] == c["4"]
    assert c["5"] == c["6"] == c["7"]
    assert c["8"] == c["9"]
    assert len({c["1"], c["5"], c["8"]}) == 3


def test_counter_name_only_records_stay_apart_at_another_organisation_or_among_namesakes(tmp_path):
    c = _resolve_csv(tmp_path, [
        # two Joonas Laines at one company, addresses disagree: namesakes, and a record with only
        # the name and the company could be either of them
        rec("1", "Joonas Laine", "joonas.laine@itatekniikka.fi", "", "Itätekniikka Oy"),
        rec("2", "Joonas Laine", "joonas.laine2@itatekniikka.fi", "", "ITÄTEKNIIKKA OY"),
        rec("3", "Joonas Laine", "joonas.k.laine@itatekniikka.fi", "", "Itätekniikka"),
        rec("4", "Joonas Laine", org="Itätekniikka Oy", system="survey"),
        # the same name at another company is another person
        rec("5", "Joonas Laine", org="Länsitekniikka Oy", system="survey"),
        # a town as the first word names the company: Salo Rakennus is not Rakennus Oy
        rec("6", "Pia Aho", "pia.aho@salorakennus.fi", "", "Salo Rakennus Oy"),
        rec("7", "Pia Aho", org="Rakennus Oy", system="survey"),
    ])
    assert len({c["1"], c["2"], c["3"], c["4"], c["5"]}) == 5
    assert c["6"] != c["7"]


def test_a_short_alias_is_the_same_person_a_numbered_address_is_not(tmp_path):
    c = _resolve_csv(tmp_path, [
        rec("1", "Eero Järvinen", "eero.jarvinen@puu.fi", "", "Puu Oy"),
        rec("2", "Eero Järvinen", "ejarvinen@puu.fi", "", "Puu Oy"),
        rec("3", "Eero Järvinen", org="PUU OY", system="survey"),
        rec("4", "Aino Heikkilä", "aino.heikkila@lapinmainos.fi", "", "Lapin Mainos Oy"),
        rec("5", "Aino Heikkilä", "aino.heikkila2@lapinmainos.fi", "", "Lapin Mainos Oy"),
    ])
    assert c["1"] == c["2"] == c["3"]
    assert c["4"] != c["5"]


def test_inverted_names_join_and_stay_apart_elsewhere(tmp_path):
    c = _resolve_csv(tmp_path, [
        rec("1", "Joonas Laine", "joonas.laine@itatekniikka.fi", "040 123 4567", "Itätekniikka Oy"),
        rec("2", "Laine, Joonas", org="Itätekniikka", system="esign"),
        rec("3", "LAINE Joonas", org="itatekniikka oy", system="billing"),
        rec("4", "Laine, Joonas", org="Sisämedia Oy", system="esign"),  # counter: another company
    ])
    assert c["1"] == c["2"] == c["3"]
    assert c["4"] != c["1"]


def test_switchboard_or_old_mobile_does_not_keep_a_person_apart(tmp_path):
    c = _resolve_csv(tmp_path, [
        rec("1", "Joonas Laine", "joonas.laine@itatekniikka.fi", "040 123 4567", "Itätekniikka Oy"),
        rec("2", "Joonas Laine", "", "09 876 5432", "Itätekniikka Oy", system="billing"),  # switchboard
        rec("3", "Joonas Laine", "", "050 999 1111", "ITÄTEKNIIKKA", system="survey"),  # old mobile
        # counter: a colleague with the same given name who also gave the switchboard
        rec("4", "Joonas Virta", "joonas.virta@itatekniikka.fi", "09 876 5432", "Itätekniikka Oy"),
        # counter: two known people (own email and mobile each) of one name at one company,
        # their addresses an address and its alias: the different mobiles keep them apart
        rec("5", "Aino Heikkilä", "aino.heikkila@lapinmainos.fi", "044 929 3063", "Lapin Mainos Oy"),
        rec("6", "Aino Heikkilä", "aheikkila@lapinmainos.fi", "046 380 2462", "Lapin Mainos Oy"),
    ])
    assert c["1"] == c["2"] == c["3"]
    assert c["4"] != c["1"]
    assert c["5"] != c["6"]


def test_an_operator_split_keeps_the_name_group_apart(tmp_path):
    """On a DuckDB database file through identity.resolve: after an operator says two records of
    one name at one company are different people, a third record with only the name and the
    company joins neither."""
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    try:
        identity.register(con)

        def row(rid, name, emails, phones, org):
            return ("crm", "person", rid, name, None, None, None, emails, phones, org, None, None, None)

        rows = [row("1", "Joonas Laine", ["joonas.laine@itatekniikka.fi"], [], "Itätekniikka Oy"),
                row("2", "Joonas Laine", [], ["040 555 6666"], "Itätekniikka"),
                row("3", "Joonas Laine", [], [], "ITÄTEKNIIKKA OY")]
        identity.load_records(con, rows)
        identity.resolve(con)
        before = dict(con.execute("SELECT record_key, cluster FROM staging.record_clusters").fetchall())
        assert before["crm:person:1"] == before["crm:person:2"] == before["crm:person:3"]
        identity.resolve(con, [("crm:person:1", "crm:person:2", "split")])
        after = dict(con.execute("SELECT record_key, cluster FROM staging.record_clusters").fetchall())
    finally:
        con.close()
    assert after["crm:person:1"] != after["crm:person:2"]
    assert after["crm:person:3"] not in (after["crm:person:1"], after["crm:person:2"])


def test_labelled_world_meets_the_goal_per_category(tmp_path):
    """Pairwise precision >= 0.997 and recall >= 0.99 in every category of a generated world,
    counted here from the generator's truth. Namesakes are the exception the rule makes on
    purpose: a record with only a name and the company, of one of two namesakes there, joins
    neither; every pair missed in that category must be such a record's."""
    truth: dict[str, tuple[str, str]] = {}
    rows = []
    for row, (pid, category) in identity_world.records(9000, seed=7):
        rows.append(row)
        truth[row[0]] = (pid, category)
    cluster = _resolve_csv(tmp_path, rows)
    by_id = {r[0]: r for r in rows}
    correct, predicted, actual = Counter(), Counter(), Counter()
    missed_namesake_pairs = []
    members: dict[str, list[str]] = defaultdict(list)
    for rid, c in cluster.items():
        members[c].append(rid)
    people: dict[str, list[str]] = defaultdict(list)
    for rid, (pid, _) in truth.items():
        people[pid].append(rid)
    for ids in members.values():  # predicted pairs, each counted for both records' categories
        for a, b in combinations(ids, 2):
            same = truth[a][0] == truth[b][0]
            for category in {truth[a][1], truth[b][1], "(all)"}:
                predicted[category] += 1
                correct[category] += same
    for pid, ids in people.items():
        category = truth[ids[0]][1]
        for a, b in combinations(ids, 2):
            actual[category] += 1
            actual["(all)"] += 1
            if cluster[a] != cluster[b] and category == "namesake":
                missed_namesake_pairs.append((by_id[a], by_id[b]))
    assert set(actual) == {*identity_world.CATEGORIES, "(all)"} and min(actual.values()) >= 100, actual
    for category in actual:
        precision, recall = correct[category] / predicted[category], correct[category] / actual[category]
        print(f"{category}: precision {precision:.4f} recall {recall:.4f} ({actual[category]} true pairs)")
        assert precision >= 0.997, (category, precision)
        if category != "namesake":
            assert recall >= 0.99, (category, recall)
    assert correct["(all)"] / actual["(all)"] >= 0.99
    # Every namesake pair missed involves a record without an email (a name-only record).
    assert all(not a[3] or not b[3] for a, b in missed_namesake_pairs)
