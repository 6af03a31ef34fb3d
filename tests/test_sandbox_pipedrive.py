"""The Pipedrive imitation, tested over real HTTP against an in-process Sandbox on a free port."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from sandbox import Sandbox, World
from sandbox.pipedrive_world import PERSON_CUSTOM, field_key
from sandbox.world import ytunnus_check_digit

REPO = Path(__file__).resolve().parents[1]
UTC = dt.timezone.utc
FIXED_NOW = dt.datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def world() -> World:
    return World.generate(seed=7, persons=300, organizations=60)


@pytest.fixture()
def sb(world: World):
    with Sandbox(world) as sandbox:
        sandbox.pipedrive.clock = lambda: FIXED_NOW
        yield sandbox


@pytest.fixture()
def pd(sb: Sandbox):
    return sb.pipedrive


@pytest.fixture()
def api(sb: Sandbox):
    """A session pointed at the sandbox like a connector would be, via its environment settings."""
    env = sb.env()
    session = requests.Session()
    session.headers["x-api-token"] = env["PIPEDRIVE_API_TOKEN"]
    base = env["PIPEDRIVE_BASE_URL"]

    class Api:
        url = base

        def get(self, path, **kw):
            return session.get(base + path, timeout=10, **kw)

        def post(self, path, **kw):
            return session.post(base + path, timeout=10, **kw)

        def patch(self, path, **kw):
            return session.patch(base + path, timeout=10, **kw)

        def put(self, path, **kw):
            return session.put(base + path, timeout=10, **kw)

        def delete(self, path, **kw):
            return session.delete(base + path, timeout=10, **kw)

    yield Api()
    session.close()


def walk(api, path: str, **params) -> tuple[list[dict], list[dict]]:
    """All records of a v2 list by cursor; also returns each page's body for envelope checks."""
    records, pages, cursor = [], [], None
    while True:
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        r = api.get(path, params=query)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["success"] is True and isinstance(body["data"], list)
        records += body["data"]
        pages.append(body)
        cursor = (body.get("additional_data") or {}).get("next_cursor")
        if not cursor:
            return records, pages


# ---------------------------------------------------------------------------- the world

def test_world_is_deterministic_per_seed():
    a = World.generate(seed=11, persons=200, organizations=30)
    b = World.generate(seed=11, persons=200, organizations=30)
    c = World.generate(seed=12, persons=200, organizations=30)
    assert a.humans == b.humans and a.companies == b.companies
    assert a.derive("pipedrive").persons == b.derive("pipedrive").persons
    assert list(a.truth("pipedrive")) == list(b.truth("pipedrive"))
    assert a.humans != c.humans
    assert a.derive("pipedrive").persons != c.derive("pipedrive").persons


def test_world_looks_finnish(world: World):
    names = " ".join(f"{h.first_name} {h.last_name}" for h in world.humans)
    assert re.search("[äöåÄÖÅ]", names)
    assert any("-" in h.first_name for h in world.humans) and any("-" in h.last_name for h in world.humans)
    for c in world.companies:
        assert re.fullmatch(r"\d{7}-\d", c.business_id)
        assert ytunnus_check_digit(c.business_id[:7]) == int(c.business_id[-1])
        assert re.fullmatch(r"[a-z0-9]+\.fi", c.domain)
        assert c.name.endswith(("Oy", "Ab"))
    for h in world.humans:
        assert re.fullmatch(r"[a-z0-9.\-]+@[a-z0-9]+\.fi", h.email)
        assert re.fullmatch(r"\+358(4\d|50)\d{7}", h.phone_e164)
        assert re.fullmatch(r"h\d{6}", h.true_person_id)
    assert len({c.business_id for c in world.companies}) == len(world.companies)


def test_pipedrive_records_vary_like_real_ones(world: World, pd):
    persons = [pd.get("persons", i) for i in sorted(pd.live_ids("persons"))]
    phones = [p["value"] for rec in persons for p in rec["phones"] if p["label"] == "mobile"]
    formats = Counter()
    for phone in phones:
        for name, pattern in (("intl spaced", r"\+358 \d\d \d{3} \d{4}"), ("dash", r"0\d\d-\d{7}"),
                              ("plain", r"0\d{9}"), ("spaced", r"0\d\d \d{3} \d{4}"), ("e164", r"\+358\d{9}")):
            if re.fullmatch(pattern, phone):
                formats[name] += 1
    assert len(formats) == 5 and sum(formats.values()) == len(phones)

    emails = [e["value"] for rec in persons for e in rec["emails"]]
    assert any(e != e.strip() for e in emails), "some emails have surrounding whitespace"
    assert any(e.strip() != e.strip().lower() for e in emails), "some emails have upper case"
    assert any(not rec["emails"] for rec in persons) and any(not rec["phones"] for rec in persons)
    assert any(len(rec["emails"]) > 1 for rec in persons)

    truth = list(world.truth("pipedrive"))
    per_human = Counter(t for _, _, t in truth)
    assert any(n == 2 for n in per_human.values()), "some humans have a duplicate record"
    humans = {h.true_person_id: h for h in world.humans}
    by_id = {str(rec["id"]): rec for rec in persons}
    shared = {}
    for _, rid, hid in truth:
        for e in by_id[rid]["emails"]:
            shared.setdefault(e["value"].strip().lower(), set()).add(hid)
    assert any(len(h) >= 2 for h in shared.values()), "a shared mailbox used by 2+ humans"
    namesakes = Counter((h.first_name, h.last_name) for h in world.humans)
    assert any(
        n > 1 and len({h.company_index for h in world.humans if (h.first_name, h.last_name) == name}) > 1
        for name, n in namesakes.items()
    )
    assert any(rec["name"] == f"{humans[hid].last_name} {humans[hid].first_name}"
               for _, rid, hid in truth for rec in [by_id[rid]]), "some names are written surname first"
    key = field_key(world.seed, "person", PERSON_CUSTOM[0][0])
    assert re.fullmatch(r"[0-9a-f]{40}", key) and any(rec["custom_fields"][key] for rec in persons)


def test_truth_covers_every_person_record(world: World, api):
    records, _ = walk(api, "/api/v2/persons", limit=500)
    truth = list(world.truth("pipedrive"))
    assert {str(r["id"]) for r in records} == {rid for _, rid, _ in truth}
    assert len(truth) == len({rid for _, rid, _ in truth})
    assert {hid for _, _, hid in truth} == {h.true_person_id for h in world.humans}
    assert all(system == "pipedrive" for system, _, _ in truth)


# ---------------------------------------------------------------------------- v2 lists

@pytest.mark.parametrize("params", [
    {"limit": 500},
    {"limit": 7},
    {"limit": 13, "sort_by": "update_time", "sort_direction": "asc"},
    {"limit": 50, "sort_by": "add_time", "sort_direction": "desc"},
])
def test_cursor_paging_walks_all_live_persons_once(api, pd, params):
    records, pages = walk(api, "/api/v2/persons", **params)
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)) and set(ids) == pd.live_ids("persons")
    assert all(len(p["data"]) == params["limit"] for p in pages[:-1])
    for page in pages[:-1]:
        assert isinstance(page["additional_data"]["next_cursor"], str)
    field = params.get("sort_by", "id")
    values = [(r[field], r["id"]) for r in records]
    assert values == sorted(values, reverse=params.get("sort_direction") == "desc")
    assert "marketing_status" not in records[0]


def test_last_page_has_null_cursor_or_no_additional_data(api):
    shapes = set()
    for _ in range(4):
        _, pages = walk(api, "/api/v2/organizations", limit=500)
        last = pages[-1]
        shapes.add("null" if "additional_data" in last else "omitted")
        if "additional_data" in last:
            assert last["additional_data"] == {"next_cursor": None}
    assert shapes == {"null", "omitted"}


def test_paging_by_update_time_never_skips_records_updated_meanwhile(api, pd):
    first = api.get("/api/v2/persons", params={"limit": 20, "sort_by": "update_time"}).json()
    unseen = sorted(pd.live_ids("persons") - {r["id"] for r in first["data"]})
    # Touch a record already read and one not yet read: both move to the end of the order.
    assert api.patch(f"/api/v2/persons/{first['data'][0]['id']}", json={"job_title": "uusi"}).status_code == 200
    assert api.patch(f"/api/v2/persons/{unseen[0]}", json={"job_title": "uusi"}).status_code == 200
    rest, _ = walk(api, "/api/v2/persons", limit=20, sort_by="update_time",
                   cursor=first["additional_data"]["next_cursor"])
    seen = {r["id"] for r in first["data"]} | {r["id"] for r in rest}
    assert seen == pd.live_ids("persons")


def test_updated_since_is_inclusive_and_updated_until_exclusive(api, pd):
    records, _ = walk(api, "/api/v2/persons", limit=500, sort_by="update_time")
    pivot = records[len(records) // 2]
    stamp = pivot["update_time"]
    since, _ = walk(api, "/api/v2/persons", limit=500, updated_since=stamp)
    until, _ = walk(api, "/api/v2/persons", limit=500, updated_until=stamp)
    assert pivot["id"] in {r["id"] for r in since} and pivot["id"] not in {r["id"] for r in until}
    assert all(r["update_time"] >= stamp for r in since) and all(r["update_time"] < stamp for r in until)
    assert {r["id"] for r in since} | {r["id"] for r in until} == pd.live_ids("persons")
    for bad in ("2025-01-01T00:00:00.000Z", "2025-01-01 00:00:00", "yesterday"):
        r = api.get("/api/v2/persons", params={"updated_since": bad})
        assert r.status_code == 400 and r.json()["success"] is False


def test_limit_over_500_is_rejected(api):
    assert api.get("/api/v2/persons", params={"limit": 500}).status_code == 200
    r = api.get("/api/v2/persons", params={"limit": 501})
    assert r.status_code == 400 and r.json() == {**r.json(), "success": False, "data": None}


def test_filters_ids_owner_and_related(api, pd):
    person = pd.get("persons", 5)
    r = api.get("/api/v2/persons", params={"ids": "1,2,5"}).json()
    assert [p["id"] for p in r["data"]] == [1, 2, 5]
    owned, _ = walk(api, "/api/v2/persons", limit=500, owner_id=person["owner_id"])
    assert owned and all(p["owner_id"] == person["owner_id"] for p in owned)
    acts, _ = walk(api, "/api/v2/activities", limit=500, person_id=5)
    assert all(a["person_id"] == 5 for a in acts)
    assert api.get("/api/v2/persons", params={"ids": ",".join(map(str, range(1, 102)))}).status_code == 400


# ---------------------------------------------------------------------------- auth

def test_auth_both_styles_and_401(sb, pd):
    url = sb.url("pipedrive") + "/api/v2/persons"
    assert requests.get(url, headers={"x-api-token": pd.token}, timeout=5).status_code == 200
    assert requests.get(url, params={"api_token": pd.token}, timeout=5).status_code == 200
    assert requests.get(sb.url("pipedrive") + "/v1/notes", params={"api_token": pd.token}, timeout=5).ok
    for kwargs in ({}, {"headers": {"x-api-token": "wrong"}}, {"params": {"api_token": "wrong"}}):
        r = requests.get(url, timeout=5, **kwargs)
        assert r.status_code == 401
        assert r.json() == {"success": False, "error": "unauthorized access", "errorCode": 401}


# ---------------------------------------------------------------------------- writes

def test_create_patch_delete_person(api, pd):
    key_linkedin = field_key(7, "person", "LinkedIn")
    key_source = field_key(7, "person", "Lähde")
    r = api.post("/api/v2/persons", json={
        "name": "Aino Järvi-Hämäläinen", "emails": [{"value": "aino@esimerkki.fi"}, {"value": "a@koti.fi"}],
        "phones": [{"value": "040 123 4567", "label": "mobile"}], "custom_fields": {key_linkedin: "x", key_source: 2}})
    assert r.status_code == 200, r.text
    created = r.json()["data"]
    pid = created["id"]
    assert created["first_name"] == "Aino" and created["last_name"] == "Järvi-Hämäläinen"
    assert created["emails"][0] == {"value": "aino@esimerkki.fi", "primary": True, "label": "work"}
    assert created["emails"][1]["primary"] is False
    assert created["add_time"] == created["update_time"] == "2026-11-25T12:00:00Z"

    pd.advance(60)
    r = api.patch(f"/api/v2/persons/{pid}", json={"custom_fields": {key_linkedin: None}, "label_ids": [21]})
    assert r.status_code == 200
    updated = r.json()["data"]
    assert updated["update_time"] == "2026-11-25T12:01:00Z" > created["update_time"]
    assert updated["custom_fields"][key_linkedin] is None and updated["custom_fields"][key_source] == 2
    assert updated["label_ids"] == [21] and updated["name"] == created["name"]
    assert updated.pop("marketing_status") == "no_consent"  # writes return it when Campaigns is on
    assert api.get(f"/api/v2/persons/{pid}").json()["data"] == updated

    pd.advance(60)
    r = api.delete(f"/api/v2/persons/{pid}")
    assert r.json() == {"success": True, "data": {"id": pid}}
    assert api.get(f"/api/v2/persons/{pid}").status_code == 404
    assert api.patch(f"/api/v2/persons/{pid}", json={"name": "X"}).status_code == 404
    listed, _ = walk(api, "/api/v2/persons", limit=500)
    assert pid not in {p["id"] for p in listed} and pid not in pd.live_ids("persons")
    stored = pd.get("persons", pid)
    assert stored["is_deleted"] is True and stored["update_time"] == "2026-11-25T12:02:00Z"
    pd.advance(29 * 86400)
    api.get("/api/v2/persons", params={"limit": 1})
    assert pd.get("persons", pid) is not None
    pd.advance(86400)
    api.get("/api/v2/persons", params={"limit": 1})
    assert pd.get("persons", pid) is None, "purged 30 days after the delete"


@pytest.mark.parametrize("body", [
    {"name": "A B", "emails": [{"value": "a@b.fi", "primary": "true"}]},
    {"name": "A B", "owner_id": "100001"},
    {"name": "A B", "email": ["a@b.fi"]},
    {"name": "A B", "custom_fields": {field_key(7, "person", "Kiinnostuksen kohteet"): []}},
    {"name": "A B", "emails": [{"value": "a@b.fi", "primary": True}, {"value": "c@b.fi", "primary": True}]},
    {"first_name": "Vain"},
    {"name": "A B", "visible_to": 2},
])
def test_strict_validation_rejects_bad_writes(api, pd, body):
    before = pd.live_ids("persons")
    r = api.post("/api/v2/persons", json=body)
    assert r.status_code == 400
    err = r.json()
    assert err["success"] is False and err["code"] == "ERR_SCHEMA_VALIDATION_FAILED" and err["data"] is None
    assert pd.live_ids("persons") == before


def test_marketing_status(api, pd):
    pid = next(i for i in sorted(pd.live_ids("persons")) if pd.get("persons", i)["emails"]
               and pd.get("persons", i)["marketing_status"] == "subscribed")
    r = api.get(f"/api/v2/persons/{pid}", params={"include_fields": "marketing_status"}).json()
    assert r["data"]["marketing_status"] == "subscribed"
    assert api.patch(f"/api/v2/persons/{pid}", json={"marketing_status": "unsubscribed"}).ok
    assert pd.get("persons", pid)["marketing_status"] == "unsubscribed"
    assert api.patch(f"/api/v2/persons/{pid}", json={"marketing_status": "bogus"}).status_code == 400

    no_email = api.post("/api/v2/persons", json={"name": "Ei Sähköpostia", "marketing_status": "subscribed"})
    assert no_email.json()["data"]["marketing_status"] == "no_consent"

    other = next(i for i in sorted(pd.live_ids("persons")) if pd.get("persons", i)["marketing_status"] == "subscribed")
    pd.campaigns_enabled = False
    r = api.patch(f"/api/v2/persons/{other}", json={"marketing_status": "unsubscribed"})
    assert r.status_code == 200 and "marketing_status" not in r.json()["data"]
    assert pd.get("persons", other)["marketing_status"] == "subscribed", "ignored without Campaigns"
    got = api.get(f"/api/v2/persons/{other}", params={"include_fields": "marketing_status"}).json()["data"]
    assert "marketing_status" not in got


def test_deals_status_deleted(api, pd):
    deal_id = min(pd.live_ids("deals"))
    assert api.delete(f"/api/v2/deals/{deal_id}").ok
    default, _ = walk(api, "/api/v2/deals", limit=500)
    assert deal_id not in {d["id"] for d in default}
    with_deleted, _ = walk(api, "/api/v2/deals", limit=500, status="open,won,lost,deleted")
    deleted = [d for d in with_deleted if d["id"] == deal_id]
    assert deleted and deleted[0]["is_deleted"] is True
    only_deleted, _ = walk(api, "/api/v2/deals", limit=500, status="deleted")
    assert [d["id"] for d in only_deleted] == [deal_id]
    assert api.get("/api/v2/deals", params={"status": "archived"}).status_code == 400


def test_activities_and_organizations_crud(api, pd):
    act = api.post("/api/v2/activities", json={"subject": "Soitto", "type": "call", "person_id": 3,
                                                "done": False, "due_date": "2026-12-01"})
    assert act.status_code == 200, act.text
    aid = act.json()["data"]["id"]
    assert api.patch(f"/api/v2/activities/{aid}", json={"done": 1}).status_code == 400
    done = api.patch(f"/api/v2/activities/{aid}", json={"done": True}).json()["data"]
    assert done["done"] is True and done["marked_as_done_time"]
    org = api.post("/api/v2/organizations", json={"name": "Testi Oy"}).json()["data"]
    assert api.delete(f"/api/v2/organizations/{org['id']}").ok
    assert org["id"] not in pd.live_ids("organizations")


# ---------------------------------------------------------------------------- fields

def test_fields_v2_and_v1(api):
    fields, _ = walk(api, "/api/v2/personFields", limit=5)
    custom = [f for f in fields if f["is_custom_field"]]
    assert 4 <= len(custom) <= 6
    assert all(re.fullmatch(r"[0-9a-f]{40}", f["field_code"]) for f in custom)
    enum = next(f for f in custom if f["field_type"] == "enum")
    assert all(set(o) == {"id", "label"} for o in enum["options"])
    v1 = api.get("/api/v1/organizationFields", params={"limit": 500}).json()
    assert v1["success"] and v1["additional_data"]["pagination"]["more_items_in_collection"] is False
    assert any(f["edit_flag"] and len(f["key"]) == 40 for f in v1["data"])
    assert {f["key"] for f in api.get("/api/v1/personFields").json()["data"]} >= {"email", "phone", "name"}


# ---------------------------------------------------------------------------- v1 notes, mail, merge

def test_v1_notes_offset_paging(api, pd):
    seen, start = [], 0
    while True:
        body = api.get("/api/v1/notes", params={"start": start, "limit": 50, "sort": "update_time ASC"}).json()
        assert body["success"] is True
        pagination = body["additional_data"]["pagination"]
        assert pagination["start"] == start and pagination["limit"] == 50
        seen += body["data"]
        if not pagination["more_items_in_collection"]:
            assert "next_start" not in pagination
            break
        start = pagination["next_start"]
    assert len(seen) == len(pd.live_ids("notes")) == len({n["id"] for n in seen})
    assert [n["update_time"] for n in seen] == sorted(n["update_time"] for n in seen)
    note = seen[0]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", note["add_time"])
    assert note["person"]["name"] == pd.get("persons", note["person_id"])["name"]
    assert {"active_flag", "pinned_to_deal_flag", "lead_id", "organization", "content"} <= set(note)

    stamp = seen[len(seen) // 2]["update_time"]
    since = api.get("/api/v1/notes", params={"limit": 500, "updated_since": stamp.replace(" ", "T") + "Z"}).json()
    assert since["data"] and all(n["update_time"] >= stamp for n in since["data"])
    mine = api.get("/api/v1/notes", params={"person_id": note["person_id"], "limit": 500}).json()["data"]
    assert mine and all(n["person_id"] == note["person_id"] for n in mine)
    assert api.get("/api/v1/notes", params={"limit": 501}).status_code == 400


def test_v1_notes_by_update_time_page_in_order_and_offsets_shift_on_change(api, pd):
    """The walk the sync makes (sort by update_time then id, from a time): the records are those
    changed at or after the time, in (update_time, id) order; and offset paging stays as
    fragile as Pipedrive's: a note changed mid-walk moves to the end and shifts the offsets."""
    notes = [pd.get("notes", nid) for nid in pd.live_ids("notes")]
    expected = sorted((n["update_time"], n["id"]) for n in notes)
    stamp = expected[len(expected) // 3][0]
    wanted = [nid for t, nid in expected if t >= stamp]
    params = {"limit": 40, "sort": "update_time ASC, id ASC", "updated_since": stamp.replace(" ", "T") + "Z"}
    got, start = [], 0
    while True:
        body = api.get("/api/v1/notes", params=dict(params, start=start)).json()
        got += [n["id"] for n in body["data"]]
        pagination = body["additional_data"]["pagination"]
        if not pagination["more_items_in_collection"]:
            break
        start = pagination["next_start"]
    assert got == wanted

    first = api.get("/api/v1/notes", params=dict(params, start=0)).json()["data"]
    pd.advance(60)  # the change gets a later update_time than every note
    assert api.put(f"/api/v1/notes/{first[0]['id']}", json={"content": "muutettu"}).status_code == 200
    second = api.get("/api/v1/notes", params=dict(params, start=40)).json()["data"]
    assert second[0]["id"] == wanted[41], "offsets shift by one after a read note moved to the end"
    assert wanted[40] not in {n["id"] for n in first + second}


def test_v1_note_writes(api, pd):
    r = api.post("/api/v1/notes", json={"content": "<p>Hei</p>", "person_id": 4})
    assert r.status_code in (200, 201) and r.json()["success"] is True
    nid = r.json()["data"]["id"]
    upd = api.put(f"/api/v1/notes/{nid}", json={"content": "<p>Moi</p>"}).json()["data"]
    assert upd["content"] == "<p>Moi</p>"
    assert api.delete(f"/api/v1/notes/{nid}").json() == {"success": True, "data": {"id": nid}}
    missing = api.get(f"/api/v1/notes/{nid}")
    assert missing.status_code == 404
    assert missing.json() == {"success": False, "error": "Note not found", "error_info": missing.json()["error_info"],
                              "data": None, "additional_data": None}
    assert api.post("/api/v1/notes", json={"content": "ei kenellekään"}).status_code == 400


def test_mail_messages_and_merge(api, pd):
    loser = next(i for i in sorted(pd.live_ids("persons")) if pd.mail_messages(i))
    survivor = next(i for i in sorted(pd.live_ids("persons")) if i != loser and not pd.mail_messages(i))
    mail = api.get(f"/api/v1/persons/{loser}/mailMessages").json()
    assert mail["success"] and mail["data"][0]["object"] == "mailMessage"
    assert {"subject", "snippet", "from", "to", "cc"} <= set(mail["data"][0]["data"])
    assert "pagination" in mail["additional_data"]
    n_mail = len(mail["data"])
    note_ids = [n["id"] for n in api.get("/api/v1/notes", params={"person_id": loser, "limit": 500}).json()["data"]]

    r = api.put(f"/api/v1/persons/{loser}/merge", json={"merge_with_id": survivor})
    assert r.status_code == 200 and r.json()["data"]["id"] == survivor
    assert api.get(f"/api/v2/persons/{loser}").status_code == 404
    assert len(api.get(f"/api/v1/persons/{survivor}/mailMessages").json()["data"]) == n_mail
    for nid in note_ids:
        assert api.get(f"/api/v1/notes/{nid}").json()["data"]["person_id"] == survivor


# ---------------------------------------------------------------------------- search

def test_person_search(api, pd):
    person = pd.get("persons", 2)
    r = api.get("/api/v2/persons/search", params={"term": person["last_name"], "fields": "name"}).json()
    items = r["data"]["items"]
    assert r["success"] and any(i["item"]["id"] == 2 for i in items)
    assert all(i["item"]["type"] == "person" and isinstance(i["result_score"], float) for i in items)
    assert all(isinstance(e, str) for i in items for e in i["item"]["emails"])
    assert "next_cursor" in r["additional_data"]
    assert api.get("/api/v2/persons/search", params={"term": "v"}).status_code == 400
    email = person["emails"][0]["value"].strip()
    exact = api.get("/api/v2/persons/search", params={"term": email, "exact_match": "true", "fields": "email"})
    assert [i["item"]["id"] for i in exact.json()["data"]["items"]][:1] in ([2], [])  # shared mailboxes


def test_search_has_its_own_burst_limit(api):
    codes = [api.get("/api/v2/persons/search", params={"term": "ma"}).status_code for _ in range(11)]
    assert codes[:10] == [200] * 10 and codes[10] == 429


# ---------------------------------------------------------------------------- rate limits

def test_burst_limit_429_with_headers(api, pd):
    pd.burst_limit = 5
    responses = [api.get("/api/v2/persons", params={"limit": 1}) for _ in range(6)]
    assert [r.status_code for r in responses] == [200] * 5 + [429]
    ok, limited = responses[0], responses[5]
    assert ok.headers["x-ratelimit-limit"] == "5" and ok.headers["x-ratelimit-remaining"] == "4"
    assert limited.headers["x-ratelimit-remaining"] == "0" and "Retry-After" not in limited.headers
    reset = int(limited.headers["x-ratelimit-reset"])
    assert 1 <= reset <= 2
    time.sleep(reset + 0.1)
    assert api.get("/api/v2/persons", params={"limit": 1}).status_code == 200


def test_daily_budget(api, pd):
    pd.daily_token_budget = 25
    assert api.get("/api/v2/persons").status_code == 200  # 10 tokens
    assert api.get("/api/v2/persons/1").status_code == 200  # 1 token
    assert api.get("/api/v2/persons").status_code == 200  # 21 used
    r = api.get("/api/v2/persons")
    assert r.status_code == 429 and int(r.headers["x-ratelimit-remaining"]) > 0
    assert pd.tokens_used() == 21
    pd.advance(86400)  # the budget resets at midnight
    assert api.get("/api/v2/persons").status_code == 200


# ---------------------------------------------------------------------------- faults

def test_each_fault_kind_happens(api, pd):
    pd.slow_seconds = 1.5
    url = api.url + "/api/v2/persons"
    headers = {"x-api-token": pd.token}

    def call(kind):
        pd.set_faults(1.0, [kind])
        try:
            return requests.get(url, headers=headers, params={"limit": 100}, timeout=0.75)
        finally:
            pd.clear_faults()

    r = call("429")
    assert r.status_code == 429 and r.headers["Retry-After"] == "1" and "x-ratelimit-reset" in r.headers
    r = call("5xx")
    assert r.status_code in (500, 502, 503, 504)
    with pytest.raises(requests.exceptions.ReadTimeout):
        call("slow")
    with pytest.raises(requests.exceptions.ConnectionError):
        call("drop")
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)):
        call("truncate")
    r = call("malformed")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    with pytest.raises(ValueError):
        r.json()
    assert pd.faults_injected() == 6
    assert pd.stats.requests_by_route()["GET /api/v2/persons"] == 6


def test_all_5xx_variants_and_gateway_html(api, pd):
    pd.set_faults(1.0, ["5xx"], seed=5)
    seen = {}
    for _ in range(40):
        r = api.get("/api/v2/persons/1")
        seen[r.status_code] = r.headers["Content-Type"]
    assert set(seen) == {500, 502, 503, 504}
    assert seen[502].startswith("text/html") and seen[500].startswith("application/json")


def test_faulted_write_has_no_effect_and_bursts(api, pd):
    before = pd.get("persons", 1)
    pd.set_faults(1.0, ["drop"])
    with pytest.raises(requests.exceptions.ConnectionError):
        api.patch("/api/v2/persons/1", json={"name": "Muutettu Nimi"})
    pd.set_faults(1.0, ["truncate"])
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)):
        api.patch("/api/v2/persons/1", json={"name": "Muutettu Nimi"})
    pd.clear_faults()
    assert pd.get("persons", 1) == before

    pd.burst_limit = 10_000  # keep the rate limiter out of this sequence

    def sequence() -> str:
        pd.set_faults(0.1, ["5xx"], seed=3, burst=3)
        codes = [api.get("/api/v2/persons/1").status_code for _ in range(200)]
        assert set(codes) <= {200, 500, 502, 503, 504}
        return "".join("F" if code >= 500 else "." for code in codes)

    pattern = sequence()
    runs = [len(run) for run in re.findall("F+", pattern)]
    assert runs and all(n % 3 == 0 for n in runs[:-1])
    assert sequence() == pattern, "same seed, same fault sequence"
    assert pd.faults_injected() == 2 + 2 * pattern.count("F")


def test_control_routes(sb, api, pd):
    base = sb.url("pipedrive")
    pd.set_faults(1.0, ["drop"])
    assert requests.get(base + "/_sandbox/health", timeout=5).json()["ok"] is True  # never faulted
    assert requests.post(base + "/_sandbox/faults", json={"rate": 0}, timeout=5).json() == {"ok": True}
    api.get("/api/v2/persons/1")
    api.get("/api/v1/notes")
    stats = requests.get(base + "/_sandbox/stats", timeout=5).json()
    assert stats["routes"] == {"GET /api/v2/persons/{id}": 1, "GET /api/v1/notes": 1}
    assert stats["total"] == 2 and stats["faults"] == 0
    assert requests.post(base + "/_sandbox/faults", json={"rate": 1, "kinds": ["5xx"], "seed": 2},
                         timeout=5).ok
    assert api.get("/api/v2/persons/1").status_code >= 500
    assert requests.post(base + "/_sandbox/faults", json={"rate": 0.5, "kinds": ["nope"]}, timeout=5).status_code == 400
    requests.post(base + "/_sandbox/faults", json={"rate": 0}, timeout=5)
    assert requests.post(base + "/_sandbox/stats/reset", timeout=5).ok
    assert requests.get(base + "/_sandbox/stats", timeout=5).json() == {"routes": {}, "total": 0, "faults": 0}


def test_put_raw_records_are_served_as_given(api, pd):
    weird = {"id": 900001, "name": "Ö" * 10_000, "emails": None, "phones": [{"value": None}],
             "update_time": "2026-01-01T00:00:00Z", "owner_id": 1, "first_name": "\u202eevil\u0000"}
    pd.put_raw("persons", weird)
    got = api.get("/api/v2/persons/900001").json()["data"]
    assert got == weird
    records, _ = walk(api, "/api/v2/persons", limit=500, sort_by="update_time")
    assert weird in records
    assert api.get("/api/v2/persons/search", params={"term": "öö"}).status_code == 200


# ---------------------------------------------------------------------------- command line

def _run(*args, **kw):
    return subprocess.run([sys.executable, "-m", "sandbox", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=60, **kw)


def test_cli_serve_env_and_stop(tmp_path):
    state = tmp_path / "endpoints.json"
    proc = subprocess.Popen([sys.executable, "-m", "sandbox", "serve", "--persons", "50", "--organizations", "10",
                             "--state-file", str(state)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 30
        while not state.exists():
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        url_line = proc.stdout.readline().strip()
        saved = json.loads(state.read_text())
        assert saved["pid"] == proc.pid and saved["systems"]["pipedrive"]["url"] == url_line
        env = _run("env", "--state-file", str(state))
        assert env.returncode == 0
        pairs = dict(line.split("=", 1) for line in env.stdout.splitlines())
        assert pairs["PIPEDRIVE_BASE_URL"] == url_line
        r = requests.get(url_line + "/api/v2/persons", params={"api_token": pairs["PIPEDRIVE_API_TOKEN"]}, timeout=5)
        assert r.status_code == 200 and r.json()["data"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    assert not state.exists()
    gone = _run("env", "--state-file", str(state))
    assert gone.returncode == 1 and "not running" in gone.stderr


def test_cli_env_with_dead_pid(tmp_path):
    state = tmp_path / "endpoints.json"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    state.write_text(json.dumps({"pid": int(dead.stdout), "systems": {}}))
    r = _run("env", "--state-file", str(state))
    assert r.returncode == 1 and "not running" in r.stderr


def test_cli_truth_csv_matches_world(tmp_path):
    out = tmp_path / "truth.csv"
    r = _run("truth", str(out), "--seed", "3", "--persons", "80", "--organizations", "12",
             env={**os.environ, "SANDBOX_PERSONS": "999"})
    assert r.returncode == 0, r.stderr
    with out.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["system", "record_id", "true_person_id"]
    expected = World.generate(seed=3, persons=80, organizations=12)
    # Every system's derivation, in DERIVATIONS order (Pipedrive first).
    assert [tuple(row) for row in rows[1:]] == [t for s in expected.systems() for t in expected.truth(s)]
    assert rows[1][0] == "pipedrive"


# ---------------------------------------------------------------------------- activity attendees, include_fields

def test_activity_attendees_are_written_and_returned_only_when_asked_for(api, pd):
    """Activities reference (https://developers.pipedrive.com/docs/api/v1/Activities): POST/PATCH
    take ``attendees`` (email, name, status, is_organizer, person_id, user_id); GET returns them
    with ``include_fields=attendees`` only."""
    pid = min(pd.live_ids("persons"))
    guest = {"email": "vieras@esimerkki.fi", "name": "Vieras Henkilö", "status": "accepted", "is_organizer": False,
             "person_id": pid}
    r = api.post("/api/v2/activities", json={"subject": "Palaveri", "type": "meeting", "attendees": [guest]})
    assert r.status_code == 200, r.text
    aid = r.json()["data"]["id"]
    assert r.json()["data"]["attendees"] == [{**guest, "user_id": None}]
    plain = api.get(f"/api/v2/activities/{aid}").json()["data"]
    assert "attendees" not in plain
    got = api.get(f"/api/v2/activities/{aid}", params={"include_fields": "attendees"}).json()["data"]
    assert got["attendees"] == [{**guest, "user_id": None}]
    listed, _ = walk(api, "/api/v2/activities", limit=500, include_fields="attendees", person_id=pid)
    assert not any("attendees" not in a for a in listed)
    # PATCH replaces the list: the other attendee stays, the first one goes.
    colleague = {"email": pd.users[1]["email"], "name": pd.users[1]["name"], "user_id": pd.users[1]["id"]}
    r = api.patch(f"/api/v2/activities/{aid}", json={"attendees": [colleague]})
    assert r.status_code == 200, r.text
    stored = pd.get("activities", aid)["attendees"]
    assert [(a["email"], a["user_id"], a["person_id"]) for a in stored] == [(colleague["email"], colleague["user_id"], None)]
    for bad in ({"attendees": {"email": "x@y.fi"}}, {"attendees": [{"email": 5}]},
                {"attendees": [{"email": "x@y.fi", "is_organizer": "yes"}]},
                {"attendees": [{"email": "x@y.fi", "email_address": "x@y.fi"}]}):
        r = api.patch(f"/api/v2/activities/{aid}", json=bad)
        assert r.status_code == 400 and r.json()["code"] == "ERR_SCHEMA_VALIDATION_FAILED", bad
    assert pd.get("activities", aid)["attendees"] == stored


def test_include_fields_counts_for_persons_and_organizations(api, pd):
    """include_fields on GET /api/v2/persons and /organizations (list and one): the counts the
    reference lists, here counted by hand from what this test creates."""
    org = api.post("/api/v2/organizations", json={"name": "Laskuri Oy"}).json()["data"]["id"]
    person = api.post("/api/v2/persons", json={"name": "Laura Laskettava", "org_id": org}).json()["data"]["id"]
    api.post("/api/v2/persons", json={"name": "Toinen Työntekijä", "org_id": org})
    for status in ("open", "open", "won", "lost"):
        deal = api.post("/api/v2/deals", json={"title": "Kauppa", "person_id": person, "org_id": org}).json()["data"]
        if status != "open":
            api.patch(f"/api/v2/deals/{deal['id']}", json={"status": status})
    first = api.post("/api/v2/activities", json={"subject": "Soitto", "type": "call", "person_id": person,
                                                  "due_date": "2026-12-01"}).json()["data"]["id"]
    api.post("/api/v2/activities", json={"subject": "Soitto", "type": "call", "person_id": person,
                                         "due_date": "2026-12-05"})
    done = api.post("/api/v2/activities", json={"subject": "Käynti", "type": "meeting", "person_id": person,
                                                 "org_id": org, "done": True, "due_date": "2026-11-01"}).json()["data"]["id"]
    api.post("/api/v1/notes", json={"content": "Muistiinpano", "person_id": person})
    wanted = "open_deals_count,closed_deals_count,won_deals_count,lost_deals_count,activities_count," \
             "done_activities_count,undone_activities_count,notes_count,email_messages_count,next_activity_id," \
             "last_activity_id"
    got = api.get(f"/api/v2/persons/{person}", params={"include_fields": wanted}).json()["data"]
    assert {k: got[k] for k in wanted.split(",")} == {
        "open_deals_count": 2, "closed_deals_count": 2, "won_deals_count": 1, "lost_deals_count": 1,
        "activities_count": 3, "done_activities_count": 1, "undone_activities_count": 2, "notes_count": 1,
        "email_messages_count": 0, "next_activity_id": first, "last_activity_id": done}
    assert "files_count" not in got, "only what was asked for"
    listed, _ = walk(api, "/api/v2/persons", limit=500, org_id=org, include_fields="open_deals_count")
    assert {p["name"]: p["open_deals_count"] for p in listed} == {"Laura Laskettava": 2, "Toinen Työntekijä": 0}
    got = api.get(f"/api/v2/organizations/{org}",
                  params={"include_fields": "people_count,open_deals_count,activities_count"}).json()["data"]
    assert (got["people_count"], got["open_deals_count"], got["activities_count"]) == (2, 2, 1)
    # A person with mail: the count of their messages.
    with_mail = next(i for i in sorted(pd.live_ids("persons")) if pd.mail_messages(i))
    got = api.get(f"/api/v2/persons/{with_mail}", params={"include_fields": "email_messages_count"}).json()["data"]
    assert got["email_messages_count"] == len(pd.mail_messages(with_mail))
    for path, value in (("/api/v2/persons", "people_count"), ("/api/v2/organizations", "doi_status"),
                        ("/api/v2/activities", "open_deals_count"), ("/api/v2/persons", "bogus")):
        r = api.get(path, params={"include_fields": value})
        assert r.status_code == 400 and r.json()["success"] is False, (path, value)


@pytest.mark.parametrize("path", ["/v1/recents?since_timestamp=2026-01-01%2000:00:00", "/v1/activities/1",
                                  "/api/v1/persons", "/v1/leads", "/api/v2/products"])
def test_endpoints_outside_our_scope_answer_404(api, path):
    assert api.get(path).status_code == 404
