"""Pipedrive connector + raw sync over real HTTP against the sandbox, into real DuckDB files."""

import json
import math
from datetime import timedelta

import duckdb
import pytest

from contact_register.sync.pipedrive.sync import sync_pipedrive
from contact_register.sync.raw_store import MassDeletionRefused, open_raw_store, raw_path
from connectors.errors import AuthError, RetryableError
from connectors.http import RetryPolicy
from connectors.pipedrive import ENTITIES, PipedriveClient, parse_time
from tests.conftest import make_client

ENTITY_LIST_ROUTES = {
    "persons": "GET /api/v2/persons",
    "organizations": "GET /api/v2/organizations",
    "deals": "GET /api/v2/deals",
    "activities": "GET /api/v2/activities",
    "notes": "GET /api/v1/notes",
}


def run_sync(sandbox, raw_dir, *, page_limit=100, client=None, **kw):
    own = client is None
    client = client or make_client(sandbox, page_limit=page_limit)
    try:
        with open_raw_store(raw_dir, "pipedrive") as store:
            return sync_pipedrive(client, store, **kw)
    finally:
        if own:
            client.close()


def raw_rows(raw_dir, entity):
    con = duckdb.connect(str(raw_path(raw_dir, "pipedrive")), read_only=True)
    try:
        return {r[0]: (r[1], json.loads(r[2])) for r in con.execute(f"SELECT id, update_time, record FROM {entity}").fetchall()}
    finally:
        con.close()


def assert_matches_sandbox(sandbox, raw_dir, entities=ENTITIES):
    """The raw store holds exactly the sandbox's live records, each as the API serves it."""
    pd = sandbox.pipedrive
    for entity in entities:
        rows = raw_rows(raw_dir, entity)
        live = pd.live_ids(entity)
        assert set(rows) == live, f"{entity}: {len(set(rows) - live)} extra, {len(live - set(rows))} missing"
        for rid in live:
            source = pd.get(entity, rid)
            update_time, record = rows[rid]
            assert update_time == parse_time(source["update_time"]), f"{entity} {rid} update_time"
            for key in ("name", "title", "subject", "content", "emails", "phones", "custom_fields", "org_id", "person_id"):
                if key in source:
                    assert record.get(key) == source[key], f"{entity} {rid} {key}"


def test_full_sync_lands_exactly_the_sandbox(sandbox, tmp_path):
    result = run_sync(sandbox, tmp_path)
    assert_matches_sandbox(sandbox, tmp_path)
    for entity in ENTITIES:
        r = result.entities[entity]
        assert r.mode == "full" and r.rows == len(sandbox.pipedrive.live_ids(entity)) > 0
        assert r.rejects == 0
    # With limit 100 every list endpoint made ceil(N/100) requests (+1 when the last page is
    # full and the API cannot know it was the last).
    routes = sandbox.pipedrive.requests_by_route()
    for entity, route in ENTITY_LIST_ROUTES.items():
        minimum = math.ceil(len(sandbox.pipedrive.live_ids(entity)) / 100)
        assert minimum <= routes[route] <= minimum + 1, (entity, routes[route], minimum)


def test_idle_second_sync_makes_at_most_two_requests_per_endpoint(sandbox, tmp_path):
    run_sync(sandbox, tmp_path)
    before = raw_rows(tmp_path, "persons")
    sandbox.pipedrive.reset_stats()
    result = run_sync(sandbox, tmp_path)
    routes = sandbox.pipedrive.requests_by_route()
    assert routes, "the second sync made no requests at all"
    assert all(count <= 2 for count in routes.values()), routes
    assert all(r.mode == "incremental" and not r.reconciled for r in result.entities.values())
    assert raw_rows(tmp_path, "persons") == before
    assert_matches_sandbox(sandbox, tmp_path)


def test_changes_additions_and_deletions_are_reflected(sandbox, tmp_path, client):
    run_sync(sandbox, tmp_path)
    pd = sandbox.pipedrive
    pd.advance(5)
    persons = sorted(pd.live_ids("persons"))
    created = client.create("persons", {"name": "Åsa Öhman-Järvinen", "emails": [{"value": "asa.ohman@example.fi"}]})
    client.update("persons", persons[0], {"name": "Changed Name", "phones": [{"value": "040-7654321"}]})
    client.delete("persons", persons[1])
    deal = sorted(pd.live_ids("deals"))[0]
    client.delete("deals", deal)
    note = sorted(pd.live_ids("notes"))[0]
    client.delete("notes", note)
    activity = sorted(pd.live_ids("activities"))[0]
    client.update("activities", activity, {"subject": "Puhelu: päivitetty"})

    # Polling sees additions, changes and deleted deals at once; deleted persons and notes
    # need the id reconciliation, which does not run within its interval...
    result = run_sync(sandbox, tmp_path)
    persons_raw = raw_rows(tmp_path, "persons")
    assert created["id"] in persons_raw
    assert persons_raw[persons[0]][1]["name"] == "Changed Name"
    assert deal not in raw_rows(tmp_path, "deals")
    assert raw_rows(tmp_path, "activities")[activity][1]["subject"] == "Puhelu: päivitetty"
    assert persons[1] in persons_raw and note in raw_rows(tmp_path, "notes")
    assert not any(r.reconciled for r in result.entities.values())

    # ...and does when it is due: then everything matches, and the walk is counted apart.
    pd.reset_stats()
    result = run_sync(sandbox, tmp_path, reconcile_every=timedelta(0))
    assert all(r.reconciled for r in result.entities.values())
    assert result.entities["persons"].reconciled_deleted == 1
    assert result.entities["notes"].reconciled_deleted == 1
    assert_matches_sandbox(sandbox, tmp_path)
    con = duckdb.connect(str(raw_path(tmp_path, "pipedrive")), read_only=True)
    how = dict(con.execute("SELECT record_id, how FROM _deletions WHERE entity = 'persons'").fetchall())
    assert how == {persons[1]: "reconciliation"}
    assert con.execute("SELECT how FROM _deletions WHERE entity = 'deals'").fetchall() == [("deleted flag",)]
    con.close()


def test_custom_fields_arrive_named(sandbox, tmp_path, client):
    run_sync(sandbox, tmp_path)
    fields = {f["field_code"]: f for f in client.fields("persons") if f.get("is_custom_field")}
    assert fields, "the sandbox has custom person fields"
    con = duckdb.connect(str(raw_path(tmp_path, "pipedrive")), read_only=True)
    rows = con.execute("SELECT id, custom_fields_named FROM persons WHERE custom_fields_named IS NOT NULL").fetchall()
    stored_names = {r[0] for r in con.execute("SELECT field_name FROM _fields WHERE entity = 'persons' AND is_custom_field").fetchall()}
    con.close()
    assert stored_names == {f["field_name"] for f in fields.values()}
    checked_enum = False
    for rid, named_json in rows:
        named = json.loads(named_json)
        source = sandbox.pipedrive.get("persons", rid)["custom_fields"]
        assert set(named) == {fields[k]["field_name"] for k in source}
        for key, value in source.items():
            f = fields[key]
            if f["field_type"] == "enum" and value is not None:
                labels = {o["id"]: o["label"] for o in f["options"]}
                assert named[f["field_name"]] == labels[value]
                checked_enum = True
    assert checked_enum, "no enum custom field value was checked"


def test_interrupted_sync_resumes_without_loss_or_duplicates(sandbox, tmp_path):
    pd = sandbox.pipedrive
    pd.set_faults(rate=0.05, kinds=("5xx",), seed=3, burst=3)
    # Two entities are read at once, so a burst of three 5xx can fall two to one reader and one
    # to the other: two attempts make sure the reader that takes two gives up.
    fragile = make_client(sandbox, page_limit=20, retry=RetryPolicy(max_attempts=2, backoff_base_s=0.01))
    failures = 0
    for _ in range(60):  # each run dies somewhere; the next one carries on from its cursor
        try:
            run_sync(sandbox, tmp_path, client=fragile)
            break
        except RetryableError:
            failures += 1
    else:
        pytest.fail("never finished")
    fragile.close()
    assert failures > 0, "the fault plan never interrupted a sync"
    pd.clear_faults()
    assert_matches_sandbox(sandbox, tmp_path)
    con = duckdb.connect(str(raw_path(tmp_path, "pipedrive")), read_only=True)
    for entity in ENTITIES:
        n, distinct = con.execute(f"SELECT count(*), count(DISTINCT id) FROM {entity}").fetchone()
        assert n == distinct
    con.close()


def test_bad_records_are_stored_or_reported_never_crash(sandbox, tmp_path):
    pd = sandbox.pipedrive
    huge = "Ä" * 10_000
    bad = {
        900001: {"id": 900001, "name": None, "emails": None, "phones": None, "update_time": "2026-01-01T00:00:00Z"},
        900002: {"id": 900002, "name": huge, "emails": "not-a-list", "phones": [{"value": 401234567}],
                 "update_time": "2026-01-01T00:00:01Z", "custom_fields": []},
        900003: {"id": 900003, "name": "Bad \ud800 surrogate\u200f\u0000", "emails": [{"value": "x@y"}, None, {}],
                 "update_time": "not a time", "org_id": "12"},
        900004: {"id": 900004},
        900005: {"id": 900005, "name": "Robert'); DROP TABLE persons;--", "emails": [{"value": "' OR 1=1 --@x.fi"}],
                 "update_time": "2026-01-01T00:00:02Z", "custom_fields": {"0" * 40: "unknown key"}},
    }
    for record in bad.values():
        pd.put_raw("persons", record)
    pd.put_raw("persons", {"id": "abc", "name": "no integer id", "update_time": "2026-01-01T00:00:03Z"}, store_id=900006)
    result = run_sync(sandbox, tmp_path)
    rows = raw_rows(tmp_path, "persons")
    for rid in bad:
        assert rid in rows
    assert rows[900002][1]["name"] == huge
    con = duckdb.connect(str(raw_path(tmp_path, "pipedrive")), read_only=True)
    name3 = con.execute("SELECT name FROM persons WHERE id = 900003").fetchone()[0]
    assert "\ufffd" in name3 and "surrogate" in name3
    problems = {(r[0], r[1]) for r in con.execute("SELECT record_id, problem FROM _issues").fetchall()}
    assert ("900002", "emails is not a list") in problems
    assert ("900003", "update_time is not a timestamp") in problems
    assert ("900003", "org_id is not an integer") in problems
    assert ("900003", "name had invalid code points (replaced)") in problems
    assert ("900005", "custom field key not in field definitions") in problems
    rejects = con.execute("SELECT reason, record FROM _rejects").fetchall()
    assert [r[0] for r in rejects] == ["record has no integer id"]
    assert json.loads(rejects[0][1])["name"] == "no integer id"
    # Every live record but the one without an integer id is a row.
    assert con.execute("SELECT count(*) FROM persons").fetchone()[0] == len(pd.live_ids("persons")) - 1
    con.close()
    assert result.entities["persons"].rejects == 1


def test_wrong_token_is_a_clear_auth_error(sandbox, tmp_path):
    client = PipedriveClient(sandbox.url("pipedrive"), "wrong-token")
    with pytest.raises(AuthError, match="401"):
        run_sync(sandbox, tmp_path, client=client)


def test_mass_deletion_is_refused(sandbox, tmp_path, client):
    run_sync(sandbox, tmp_path)
    for rid in sorted(sandbox.pipedrive.live_ids("organizations"))[:40]:
        client.delete("organizations", rid)
    with pytest.raises(MassDeletionRefused):
        run_sync(sandbox, tmp_path, reconcile_every=timedelta(0))
    # Nothing was deleted by the refused walk.
    assert len(raw_rows(tmp_path, "organizations")) == 60
    run_sync(sandbox, tmp_path, reconcile_every=timedelta(0), max_delete_share=0.9)
    assert_matches_sandbox(sandbox, tmp_path, entities=("organizations",))


def test_v1_client_goes_through_the_shared_http_layer(sandbox, client):
    before = client.http.stats.requests
    note = sorted(sandbox.pipedrive.live_ids("notes"))[0]
    assert client.get("notes", note)["id"] == note
    person = sandbox.pipedrive.get("notes", note).get("person_id")
    if person:
        assert all(n["person_id"] == person for n in client.notes_for_person(person))
    assert client.http.stats.requests > before


def test_write_operations_for_erasure_and_ban(sandbox, client):
    pd = sandbox.pipedrive
    person = client.create("persons", {"name": "Kielto Testinen", "emails": [{"value": "kielto.testinen@example.fi"}]})
    pid = person["id"]
    # Marketing ban: set and read back.
    assert client.set_marketing_status(pid, "unsubscribed") == "unsubscribed"
    assert pd.get("persons", pid)["marketing_status"] == "unsubscribed"
    # Without the Campaigns add-on Pipedrive ignores the field silently; the read-back tells.
    other = client.create("persons", {"name": "Toinen Testinen", "emails": [{"value": "toinen@example.fi"}]})
    pd.campaigns_enabled = False
    assert client.set_marketing_status(other["id"], "unsubscribed") != "unsubscribed"
    pd.campaigns_enabled = True
    # Labels and field masking.
    client.update("persons", pid, {"label_ids": [], "name": "Poistettu", "emails": [{"value": "erased-1@invalid.example"}]})
    assert pd.get("persons", pid)["name"] == "Poistettu"
    # What hangs off a person can be found and removed.
    with_deals = next(p for p in sorted(pd.live_ids("persons"))
                      if client.linked_to_person("deals", p) and client.notes_for_person(p))
    deals = client.linked_to_person("deals", with_deals)
    assert {d["person_id"] for d in deals} == {with_deals}
    for note in client.notes_for_person(with_deals):
        client.delete("notes", note["id"])
    assert client.notes_for_person(with_deals) == []
    client.delete("persons", pid)
    assert pid not in pd.live_ids("persons")
    # Search finds by email without the term ever reaching our logs.
    hits = client.search_persons("toinen@example.fi", exact_match=True, fields="email")
    assert [h["item"]["id"] for h in hits] == [other["id"]]


@pytest.mark.parametrize("kind", ["shift", "duplicate"])
def test_overlapping_and_repeated_pages_are_deduplicated(sandbox, tmp_path, kind):
    sandbox.pipedrive.set_faults(rate=1.0, kinds=(kind,))
    result = run_sync(sandbox, tmp_path, page_limit=25)
    for entity in ENTITIES:
        r = result.entities[entity]
        assert r.received > r.rows, f"{entity}: the sandbox sent no repeated records"
    assert_matches_sandbox(sandbox, tmp_path)


def test_record_text_keeps_what_the_fast_encoder_refuses():
    # json_text writes records with orjson, which refuses lone surrogates, integers beyond 64
    # bits and non-string keys: those records must still be stored, as the json module wrote them.
    from datetime import datetime, timezone

    from contact_register.sync.raw_store import json_text

    assert json_text({"name": "Bad \ud800", "ä": [1, 2.5, None, True]}) == ('{"name":"Bad \ufffd","ä":[1,2.5,null,true]}', True)
    assert json_text({"big": 2**70, 7: "x"}) == ('{"big":1180591620717411303424,"7":"x"}', False)
    with pytest.raises(TypeError):  # not JSON, as before: no silent ISO text
        json_text({"at": datetime(2024, 1, 1, tzinfo=timezone.utc)})
