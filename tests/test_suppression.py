"""The suppression list: keyed hashes in the register (SQLite and a real PostgreSQL), the key
rules, the matching rules, and end to end on the sandboxes: a banned person, an erased person,
and a person banned and erased at once, each re-created in Pipedrive under a differently
written email and phone, are banned again by the next nightly_sync and recorded; the erased
ones become new cases for the operator; list screening marks all of them."""

import csv
import os
import stat
import uuid

import duckdb
import pytest
from dagster import DagsterInstance

from contact_register.cli import main as cli_main
from contact_register.requests.cases import RegisterError, open_register, validate_identifiers
from contact_register.requests.suppression.store import SuppressionKeyError, SuppressionList, add_subject, load_key
from contact_register.requests.writeback.base import WritebackSubject, resolve_subject
from tests.conftest import make_client
from tests.test_marketing_ban import ban_env, objection_case, pick_human, run_ban, run_nightly  # noqa: F401
from tests.test_register import PG_ADMIN_URL, _pg_available

KEY = "k" * 40


@pytest.fixture(params=["sqlite", "postgresql"])
def register(request, tmp_path, monkeypatch):
    monkeypatch.setenv("SUPPRESSION_KEY", KEY)
    if request.param == "sqlite":
        reg = open_register(str(tmp_path / "register.sqlite"))
        yield reg
        reg.close()
        return
    if not _pg_available():
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL}")
    import psycopg

    name = f"suppression_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    reg = open_register(f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}")
    yield reg
    reg.close()
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def subject(reg, kind="objection", emails=("Matti.Virtanen@Yritys.FI", "info@yritys.fi"),
            phones=("040 123 4567",), name="Virtanen Matti") -> WritebackSubject:
    ids = validate_identifiers(list(emails), list(phones), name)
    case = reg.new_case(kind, ids, actor="dpo")
    return WritebackSubject(case_id=case.case_id, identifiers=ids, emails=list(emails), phones=list(phones),
                            names=[name], records={"pipedrive": {"person": ["7"]}})


def ids_table(con, rows):
    con.execute("CREATE OR REPLACE TABLE ids (rec_key VARCHAR, kind VARCHAR, value_norm VARCHAR)")
    con.executemany("INSERT INTO ids VALUES (?, ?, ?)", rows)


def test_add_subject_hashes_normalised_identifiers_and_matches_like_the_warehouse(register):
    s = subject(register)
    counts = add_subject(register, s, reason="ban", actor="dpo")
    # The role mailbox is left out: it would ban everyone who writes from info@.
    assert counts == {"email": 1, "phone": 1, "name": 1}
    assert add_subject(register, s, reason="ban", actor="dpo") == counts  # idempotent
    supp = SuppressionList(register)
    assert supp.reasons_of(s.case_id) == ["ban"]
    assert ("pipedrive", "person", "7") in supp.handled()  # records present now are not re-entries
    con = duckdb.connect()
    ids_table(con, [
        ("a", "email", "matti.virtanen@yritys.fi"),          # email alone matches
        ("b", "phone", "+358401234567"), ("b", "name", "matti virtanen"),  # phone with the same name
        ("c", "phone", "+358401234567"), ("c", "name", "liisa korhonen"),  # a colleague on the same line
        ("d", "phone", "+358401234567"),                      # phone, no name to compare
        ("e", "email", "info@yritys.fi"),                     # the role mailbox
        ("f", "email", "matti.virtanen@toinen.fi"),
    ])
    assert supp.match(con, "ids", "hits") == 3
    hits = dict(con.execute("SELECT rec_key, matched_by FROM hits").fetchall())
    assert hits == {"a": "email", "b": "phone", "d": "phone"}
    assert con.execute("SELECT DISTINCT case_id, reason FROM hits").fetchall() == [(s.case_id, "ban")]
    # Nothing readable is stored: only hashes.
    with register.backend.transaction() as tx:
        dump = repr(tx.execute("SELECT * FROM suppression_entries"))
    for plain in ("matti", "virtanen", "401234567", "yritys"):
        assert plain not in dump.lower()


def test_bad_input_is_refused_clearly(register):
    s = subject(register)
    with pytest.raises(RegisterError, match="reason"):
        add_subject(register, s, reason="forget", actor="dpo")
    s.case_id = "OBJ-20990101-000000"
    with pytest.raises(RegisterError, match="no case"):
        add_subject(register, s, reason="ban", actor="dpo")
    only_role = subject(register, emails=("info@yritys.fi",), phones=())
    with pytest.raises(RegisterError, match="no personal email or phone"):
        add_subject(register, only_role, reason="ban", actor="dpo")


def test_key_rules(tmp_path, monkeypatch):
    monkeypatch.delenv("SUPPRESSION_KEY", raising=False)
    monkeypatch.delenv("SUPPRESSION_KEY_FILE", raising=False)
    with pytest.raises(SuppressionKeyError, match="SUPPRESSION_KEY is not set"):
        load_key()
    monkeypatch.setenv("SUPPRESSION_KEY", "short")
    with pytest.raises(SuppressionKeyError, match="at least 32"):
        load_key()
    monkeypatch.delenv("SUPPRESSION_KEY")
    key_file = tmp_path / "keys" / "suppression.key"
    monkeypatch.setenv("SUPPRESSION_KEY_FILE", str(key_file))
    first = load_key()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and len(first) == 64
    assert load_key() == first
    # A list made with one key refuses another (it would silently match nobody).
    reg = open_register(str(tmp_path / "register.sqlite"))
    add_subject(reg, subject(reg), reason="erasure", actor="dpo")
    assert not SuppressionList(reg).is_empty()
    monkeypatch.setenv("SUPPRESSION_KEY", KEY)
    with pytest.raises(SuppressionKeyError, match="not the one"):
        SuppressionList(reg).hash("email", "x@y.fi")
    reg.close()


def reformat_phone(e164: str) -> str:
    national = "0" + e164[4:]
    return f"{national[:3]}-{national[3:6]} {national[6:]}"


def recase_email(email: str) -> str:
    local, domain = email.split("@")
    return local[:1].upper() + local[1:] + "@" + domain.upper()


def recreate(client, h) -> int:
    """The person comes back into Pipedrive, e.g. from a bought list: email and phone written
    differently, and marked as subscribed."""
    rec = client.create("persons", {"name": f"{h.first_name} {h.last_name}",
                                    "emails": [{"value": recase_email(h.email), "primary": True}],
                                    "phones": [{"value": reformat_phone(h.phone_e164)}],
                                    "marketing_status": "subscribed"})
    return rec["id"]


def erase_by_list(reg, con, h) -> str:
    """An erasure, as far as the suppression list sees it: the erasure case's subject is added
    with reason 'erasure' (the erasure job's call), and the Pipedrive records are gone."""
    ids = validate_identifiers([h.email], [h.phone_e164], f"{h.first_name} {h.last_name}")
    case = reg.new_case("erasure", ids, actor="dpo")
    add_subject(reg, resolve_subject(con, case.case_id, ids), reason="erasure", actor="dpo")
    return case.case_id


def write_list(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["name", "email", "phone", "organisation"])
        w.writerows(rows)


def test_reentry_after_ban_and_erasure_is_banned_again_and_recorded(ban_env, sandbox, google_sandbox, small_world):
    g = google_sandbox.google
    instance = DagsterInstance.ephemeral()
    run_nightly(instance)
    banned = pick_human(small_world, g)
    erased = pick_human(small_world, g, skip={banned.true_person_id})
    both = pick_human(small_world, g, skip={banned.true_person_id, erased.true_person_id})
    pd = sandbox.pipedrive
    client = make_client(sandbox)

    ban_case = objection_case(banned)
    assert run_ban(instance, ban_case).success
    with open_register() as reg:  # answered and closed: its identifiers are gone, the hashes stay
        for system, st in reg.get(ban_case).systems.items():
            if st.state == "manual_open":  # systems without an API: the officer checks by hand
                reg.set_system_state(ban_case, system, "manual_answered", actor="dpo", detail="checked by hand")
        reg.close_case(ban_case, outcome="banned in every system", actor="dpo")
    both_ban_case = objection_case(both)
    con = duckdb.connect(os.environ["WAREHOUSE_PATH"], read_only=True)
    with open_register() as reg:
        erasure_case = erase_by_list(reg, con, erased)
        # Ban and erasure of the same person at once: the ban runs, the case names the erasure.
        both_erasure_case = erase_by_list(reg, con, both)
    con.close()
    assert run_ban(instance, both_ban_case).success
    with open_register() as reg:
        trail = reg.audit_trail(both_ban_case)
        assert [a["detail"]["erasure_cases"] for a in trail if a["action"] == "concurrent_erasure"] == [
            [both_erasure_case]]
        assert SuppressionList(reg).reasons_of(both_erasure_case) == ["erasure"]
        cases_before = {c.case_id for c in reg.list_cases(status=None)}
    for h in (erased, both):
        for _, rid, t in small_world.truth("pipedrive"):
            if t == h.true_person_id and int(rid) in pd.live_ids("persons"):
                client.delete("persons", int(rid))

    new_ids = {h.true_person_id: recreate(client, h) for h in (banned, erased, both)}
    assert {pd.get("persons", pid)["marketing_status"] for pid in new_ids.values()} == {"subscribed"}

    result = run_nightly(instance)
    # Each re-created record is banned in Pipedrive again.
    assert {pd.get("persons", pid)["marketing_status"] for pid in new_ids.values()} == {"unsubscribed"}
    meta = next(e.event_specific_data.materialization.metadata for e in result.get_asset_materialization_events()
                if e.asset_key.path == ["suppression_check"])
    assert meta["new_records"].value == 3 and meta["persons"].value == 3
    assert meta["banned_again"].value == 1 and meta["new_cases"].value == 2 and meta["failed_systems"].value == 0

    with open_register() as reg:
        # The banned person: recorded on their own case, no new case.
        trail = reg.audit_trail(ban_case)
        reentry = [a for a in trail if a["action"] == "suppression_reentry"]
        assert len(reentry) == 1 and reentry[0]["detail"]["systems"] == ["pipedrive"]
        applied = [a["detail"] for a in trail if a["action"] == "marketing_ban_applied"]
        assert len(applied) == 1 and applied[0]["pipedrive"]["state"] == "done"  # the case is closed
        # The erased ones: one new objection case each, for the operator; the erasure case points at it.
        new_cases = [c for c in reg.list_cases(status=None) if c.case_id not in cases_before]
        assert len(new_cases) == 2 and {c.kind for c in new_cases} == {"objection"}
        for erasure in (erasure_case, both_erasure_case):
            pointers = [a["detail"]["new_case"] for a in reg.audit_trail(erasure) if a["action"] == "recollected"]
            assert len(pointers) == 1 and pointers[0] in {c.case_id for c in new_cases}
            new = reg.get(pointers[0])
            assert new.status == "open" and new.systems["pipedrive"].state == "done"
        supp = SuppressionList(reg)
        handled = supp.handled()
        assert all(("pipedrive", "person", str(pid)) in handled for pid in new_ids.values())

    # The warehouse shows the ban for all three, and why.
    con = duckdb.connect(os.environ["WAREHOUSE_PATH"], read_only=True)
    reasons = dict(con.execute(
        "SELECT record_id, list(reason ORDER BY reason) FROM marketing_bans WHERE system = 'pipedrive' "
        "AND record_kind = 'person' "
        "AND record_id IN (SELECT unnest(?::VARCHAR[])) GROUP BY record_id",
        [[str(p) for p in new_ids.values()]]).fetchall())
    assert reasons[str(new_ids[banned.true_person_id])] == ["suppression_list:ban"]
    assert reasons[str(new_ids[erased.true_person_id])] == ["suppression_list:erasure"]
    assert reasons[str(new_ids[both.true_person_id])] == ["suppression_list:erasure"]
    flags = con.execute(
        "SELECT r.record_id, p.marketing_ban FROM persons p JOIN person_records r USING (person_id) "
        "WHERE r.system = 'pipedrive' AND r.record_kind = 'person' AND r.record_id IN (SELECT unnest(?::VARCHAR[]))",
        [[str(p) for p in new_ids.values()]]).fetchall()
    con.close()
    assert sorted(flags) == sorted((str(p), True) for p in new_ids.values())

    # Nothing happens twice: the next night finds no new records.
    again = run_nightly(instance)
    meta = next(e.event_specific_data.materialization.metadata for e in again.get_asset_materialization_events()
                if e.asset_key.path == ["suppression_check"])
    assert meta["new_records"].value == 0 and meta["new_cases"].value == 0

    # Screening a bought list marks them all (written yet another way), and leaves a stranger new.
    listing, out = ban_env / "list.csv", ban_env / "screened.csv"
    rows = [[f"{h.last_name} {h.first_name}", h.email.upper(), reformat_phone(h.phone_e164), ""]
            for h in (banned, erased, both)]
    write_list(listing, rows + [["Uusi Henkilö", "uusi.henkilo@esimerkki.fi", "", ""]])
    assert cli_main(["identity", "screen", str(listing), str(out)]) == 0
    with open(out, newline="", encoding="utf-8") as fh:
        statuses = [r["status"] for r in csv.DictReader(fh)]
    assert statuses == ["marketing_ban", "previously_erased", "previously_erased", "new"]

    # Counts and case ids only in Dagster's event log.
    logs = "\n".join(str(e) for run in (result, again) for e in instance.all_logs(run.run_id))
    for h in (banned, erased, both):
        for secret in (h.email, recase_email(h.email), reformat_phone(h.phone_e164), h.phone_e164, h.last_name):
            assert secret not in logs
    client.close()


def test_a_failed_reban_is_recorded_and_retried_under_the_same_case(sandbox, small_world, tmp_path, monkeypatch):
    """Plain Python, Pipedrive only: the build marks the re-collected record, the check's ban is
    refused (no Campaigns add-on, no label configured) and recorded as failed; the next check
    continues the same case instead of opening another."""
    from contact_register.requests.suppression.check import run_check
    from contact_register.warehouse.build import build_warehouse
    from contact_register.requests.export.exporters import Clients
    from tests.test_marketing_ban import pipedrive_records
    from tests.test_pipedrive_sync import run_sync

    monkeypatch.setenv("SUPPRESSION_KEY", KEY)
    monkeypatch.delenv("PIPEDRIVE_BAN_LABEL_ID", raising=False)
    monkeypatch.delenv("PIPEDRIVE_BAN_FIELD", raising=False)
    raw, wh = tmp_path / "raw", tmp_path / "wh.duckdb"
    reg = open_register(str(tmp_path / "register.sqlite"))
    supp = SuppressionList(reg)
    h = next(h for h in small_world.humans
             if pipedrive_records(small_world, h) and all(r.emails for r in pipedrive_records(small_world, h)))
    run_sync(sandbox, raw)
    build_warehouse(raw, wh, suppression=supp)
    con = duckdb.connect(str(wh), read_only=True)
    erasure = erase_by_list(reg, con, h)
    con.close()
    client = make_client(sandbox)
    new_id = recreate(client, h)
    sandbox.pipedrive.campaigns_enabled = False  # marketing_status is now ignored, silently
    clients = Clients({"pipedrive": lambda: make_client(sandbox)})

    def check():
        run_sync(sandbox, raw)
        build_warehouse(raw, wh, suppression=supp)
        con = duckdb.connect(str(wh), read_only=True)
        try:
            return run_check(con, supp, clients, actor="test")
        finally:
            con.close()

    first = check()
    assert first.new_cases == 1 and first.failed_systems == 1 and first.states["failed"] == 1
    case = reg.get(first.case_ids[0])
    assert case.kind == "objection" and case.systems["pipedrive"].state == "failed"
    error = case.systems["pipedrive"].error
    assert "PIPEDRIVE_BAN_LABEL_ID" in error and h.email not in error

    sandbox.pipedrive.campaigns_enabled = True
    second = check()
    assert second.new_cases == 0 and second.retried == 1 and second.failed_systems == 0
    assert second.case_ids == first.case_ids
    assert reg.get(first.case_ids[0]).systems["pipedrive"].state == "done"
    assert sandbox.pipedrive.get("persons", new_id)["marketing_status"] == "unsubscribed"
    assert [a["action"] for a in reg.audit_trail(erasure)].count("recollected") == 1
    third = check()
    assert third.new_records == 0 and third.case_ids == []
    clients.close()
    client.close()
    reg.close()
