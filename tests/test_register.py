"""The request register on SQLite and on a real PostgreSQL: intake, deadlines, extensions, the
once-a-year flag, per-system states, closing, and the append-only audit trail."""

import json
import os
import sqlite3
import subprocess
import sys
import threading
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from contact_register.requests.cases import (
    CaseNotFound,
    InvalidIdentifier,
    RegisterError,
    open_register,
    validate_identifiers,
)
from contact_register.requests.erasure.byte_scan import phone_variants, scan
from contact_register.requests.cases.casebook import add_months
from contact_register.description import load_description

REPO = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return True
    except Exception:  # noqa: BLE001 - any failure means no server to test against
        return False


@pytest.fixture(scope="session")
def pg_database():
    """A throw-away PostgreSQL database for this test session."""
    if not _pg_available():
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL} (the register must be tested on it)")
    import psycopg

    name = f"register_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(pg_database):
    """A fresh schema state per test: drop every table of the register."""
    import psycopg

    with psycopg.connect(pg_database, autocommit=True) as con:
        # The whole schema, so tables added to the register later are dropped too.
        con.execute("DROP SCHEMA public CASCADE")
        con.execute("CREATE SCHEMA public")
    return pg_database


@pytest.fixture(params=["sqlite", "postgresql"])
def register_url(request, tmp_path):
    if request.param == "sqlite":
        return str(tmp_path / "register.sqlite")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def reg(register_url):
    r = open_register(register_url)
    yield r
    r.close()


def ids(**kw):
    kw.setdefault("emails", ["Matti.Virtanen@Yritys.fi"])
    kw.setdefault("phones", ["040 123 4567"])
    kw.setdefault("name", "Matti Virtanen")
    return validate_identifiers(**kw)


def counts(reg):
    with reg.backend.transaction() as tx:
        return {t: tx.one(f"SELECT count(*) FROM {t}")[0]
                for t in ("cases", "case_identifiers", "case_subject_keys", "case_systems", "audit")}


def test_add_months_clamps_to_month_end():
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2028, 1, 31), 1) == date(2028, 2, 29)
    assert add_months(date(2026, 11, 30), 3) == date(2027, 2, 28)
    assert add_months(date(2026, 12, 15), 1) == date(2027, 1, 15)


def test_new_case_due_in_one_month_with_pending_systems_and_audit(reg):
    case = reg.new_case("access", ids(), actor="dpo", received_on="2026-01-31", systems=["pipedrive", "docue"])
    assert case.case_id.startswith("ACC-20260131-")
    assert (case.received_on, case.due_on, case.original_due_on) == ("2026-01-31", "2026-02-28", "2026-02-28")
    assert {s: st.state for s, st in case.systems.items()} == {"pipedrive": "pending", "docue": "pending"}
    assert ("email", "Matti.Virtanen@Yritys.fi", "matti.virtanen@yritys.fi") in case.identifiers
    assert ("phone", "040 123 4567", "+358401234567") in case.identifiers
    trail = reg.audit_trail(case.case_id)
    assert [r["action"] for r in trail] == ["case_created", "system_state", "system_state"]
    # The audit trail carries counts, never the identifiers.
    text = repr(trail)
    assert "yritys.fi" not in text and "123 4567" not in text and "Virtanen" not in text
    assert trail[0]["detail"]["identifier_counts"] == {"email": 1, "phone": 1, "name": 1, "organization": 0}


def test_extension_needs_reason_and_stays_within_three_months(reg):
    case = reg.new_case("erasure", ids(), actor="dpo", received_on="2026-03-10")
    cid = case.case_id
    told = dict(told_on="2026-03-20", told_how="email", today=date(2026, 3, 20))
    with pytest.raises(RegisterError, match="reason"):
        reg.extend(cid, new_due_on="2026-05-10", reason="  ", actor="dpo", **told)
    with pytest.raises(RegisterError, match="three months"):
        reg.extend(cid, new_due_on="2026-06-11", reason="many systems", actor="dpo", **told)
    with pytest.raises(RegisterError, match="after the current"):
        reg.extend(cid, new_due_on="2026-04-01", reason="many systems", actor="dpo", **told)
    case = reg.extend(cid, new_due_on="2026-05-10", reason="complex request", actor="dpo", **told)
    assert (case.due_on, case.original_due_on, case.extension_reason) == ("2026-05-10", "2026-04-10", "complex request")
    assert (case.extension_told_on, case.extension_told_how) == ("2026-03-20", "email")
    # The last day of the first month (the original due date) is still in time.
    case = reg.extend(cid, new_due_on="2026-06-10", reason="still waiting for a processor", actor="dpo2",
                      told_on="2026-04-10", told_how="letter", today=date(2026, 4, 10))
    assert case.due_on == "2026-06-10"
    ext = [r for r in reg.audit_trail(cid) if r["action"] == "deadline_extended"]
    assert [(r["actor"], r["detail"]["from"], r["detail"]["to"], r["detail"]["told_on"], r["detail"]["told_how"])
            for r in ext] == [("dpo", "2026-04-10", "2026-05-10", "2026-03-20", "email"),
                              ("dpo2", "2026-05-10", "2026-06-10", "2026-04-10", "letter")]


def test_extension_only_within_the_first_month_and_only_when_the_requester_was_told(reg):
    """GDPR 12(3): the requester is told of an extension, with its reasons, within one month of
    receipt. Received 2026-03-10, the first month ends 2026-04-10."""
    cid = reg.new_case("access", ids(), actor="dpo", received_on="2026-03-10").case_id
    with pytest.raises(RegisterError, match="first month"):
        reg.extend(cid, new_due_on="2026-05-10", reason="complex", told_on="2026-04-11", told_how="email",
                   actor="dpo", today=date(2026, 4, 11))
    with pytest.raises(RegisterError, match="first month"):  # told in time, but recorded too late
        reg.extend(cid, new_due_on="2026-05-10", reason="complex", told_on="2026-04-01", told_how="email",
                   actor="dpo", today=date(2026, 4, 19))
    with pytest.raises(RegisterError, match="told"):
        reg.extend(cid, new_due_on="2026-05-10", reason="complex", told_on=None, told_how="email",
                   actor="dpo", today=date(2026, 4, 1))
    with pytest.raises(RegisterError, match="how"):
        reg.extend(cid, new_due_on="2026-05-10", reason="complex", told_on="2026-04-01", told_how=" ",
                   actor="dpo", today=date(2026, 4, 1))
    with pytest.raises(RegisterError, match="before the request"):
        reg.extend(cid, new_due_on="2026-05-10", reason="complex", told_on="2026-03-09", told_how="email",
                   actor="dpo", today=date(2026, 4, 1))
    with pytest.raises(RegisterError, match="future"):
        reg.extend(cid, new_due_on="2026-05-10", reason="complex", told_on="2026-04-02", told_how="email",
                   actor="dpo", today=date(2026, 4, 1))
    case = reg.get(cid, with_audit=True)
    assert (case.due_on, case.extension_told_on) == ("2026-04-10", None)
    assert "deadline_extended" not in [r["action"] for r in case.audit]


def test_overdue_and_due_soon_listing(reg):
    # A fixed day and literal dates: each case's due date is one month after receipt.
    today = date(2026, 6, 15)
    overdue = reg.new_case("access", ids(emails=["a@x.fi"], phones=[]), actor="dpo",
                           received_on="2026-05-12")  # due 2026-06-12
    soon = reg.new_case("access", ids(emails=["b@x.fi"], phones=[]), actor="dpo",
                        received_on="2026-05-20")  # due 2026-06-20: within 7 days
    later = reg.new_case("access", ids(emails=["c@x.fi"], phones=[]), actor="dpo",
                         received_on="2026-06-15")  # due 2026-07-15
    closed = reg.new_case("access", ids(emails=["d@x.fi"], phones=[]), actor="dpo", received_on="2026-04-01")
    reg.close_case(closed.case_id, outcome="answered", actor="dpo")
    # Extended on its 20th day, the requester told the same day: due 2026-07-01, not 2026-06-01.
    extended = reg.new_case("access", ids(emails=["f@x.fi"], phones=[]), actor="dpo", received_on="2026-05-01")
    reg.extend(extended.case_id, new_due_on="2026-07-01", reason="many systems", told_on="2026-05-20",
               told_how="email", actor="dpo", today=date(2026, 5, 20))
    due = reg.due(today=today, soon_days=7)
    assert [c.case_id for c in due["overdue"]] == [overdue.case_id]
    assert [c.case_id for c in due["due_soon"]] == [soon.case_id]
    assert due["held"] == []
    assert {later.case_id, extended.case_id, closed.case_id}.isdisjoint(
        c.case_id for c in due["overdue"] + due["due_soon"])
    # Due today is not overdue yet; the day after it is.
    assert [c.case_id for c in reg.due(today=date(2026, 6, 20), soon_days=0)["due_soon"]] == [soon.case_id]
    assert soon.case_id in {c.case_id for c in reg.due(today=date(2026, 6, 21))["overdue"]}
    # An overdue case cannot be extended any more (its first month is long over): it stays overdue.
    with pytest.raises(RegisterError, match="first month"):
        reg.extend(overdue.case_id, new_due_on="2026-07-12", reason="too late", told_on="2026-06-15",
                   told_how="email", actor="dpo", today=today)
    assert [c.case_id for c in reg.due(today=today)["overdue"]] == [overdue.case_id]
    # A case answered everywhere but waiting for a legal hold's follow-up is not overdue (it stays
    # open for years by design), while one with a system still failing is.
    held = reg.new_case("erasure", ids(emails=["e@x.fi"], phones=[]), actor="dpo",
                        received_on="2026-04-15", systems=["pipedrive", "netvisor", "own_stores"])
    reg.set_system_state(held.case_id, "pipedrive", "done", actor="job")
    reg.set_system_state(held.case_id, "netvisor", "held", actor="job", detail="kirjanpitolaki", held_until="2032-12-31")
    due = reg.due(today=today, soon_days=7)
    assert [c.case_id for c in due["held"]] == [held.case_id]
    assert [c.case_id for c in due["overdue"]] == [overdue.case_id]
    reg.set_system_state(held.case_id, "pipedrive", "failed", actor="job", error="RetryableError: 503")
    assert [c.case_id for c in reg.due(today=today)["overdue"]] == [held.case_id, overdue.case_id]


def _cli(*args, register_path):
    env = dict(os.environ, REGISTER_URL=str(register_path), REGISTER_ACTOR="tietosuojavastaava")
    return subprocess.run([sys.executable, "-m", "contact_register.cli", "request", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def test_cli_refuses_an_extension_after_the_first_month_and_records_who_was_told(tmp_path):
    path = tmp_path / "register.sqlite"
    helsinki_today = datetime.now(ZoneInfo("Europe/Helsinki")).date()
    old = _cli("new", "--kind", "access", "--email", "vanha@esimerkki.fi", "--received",
               (helsinki_today - timedelta(days=40)).isoformat(), register_path=path)
    assert old.returncode == 0, old.stderr
    late = _cli("extend", old.stdout.strip(), "--until", (helsinki_today + timedelta(days=10)).isoformat(),
                "--reason", "complex", "--told-on", helsinki_today.isoformat(), "--told-how", "email",
                register_path=path)
    assert late.returncode == 2, late.stdout
    assert "first month" in late.stderr
    fresh = _cli("new", "--kind", "access", "--email", "uusi@esimerkki.fi", "--received",
                 (helsinki_today - timedelta(days=5)).isoformat(), register_path=path).stdout.strip()
    until = (helsinki_today + timedelta(days=50)).isoformat()
    untold = _cli("extend", fresh, "--until", until, "--reason", "many systems", register_path=path)
    assert untold.returncode == 2 and "told" in untold.stderr
    told = _cli("extend", fresh, "--until", until, "--reason", "many systems", "--told-on",
                helsinki_today.isoformat(), "--told-how", "email to the requester", register_path=path)
    assert told.returncode == 0, told.stderr
    shown = _cli("show", fresh, register_path=path).stdout
    assert f"requester told on {helsinki_today.isoformat()} by email to the requester" in shown
    case = json.loads(_cli("show", fresh, "--json", register_path=path).stdout)
    assert (case["due_on"], case["extension_told_on"], case["extension_told_how"]) == (
        until, helsinki_today.isoformat(), "email to the requester")
    ext = [r for r in case["audit"] if r["action"] == "deadline_extended"]
    assert [(r["detail"]["told_on"], r["detail"]["told_how"]) for r in ext] == [
        (helsinki_today.isoformat(), "email to the requester")]
    assert json.loads(_cli("show", old.stdout.strip(), "--json", register_path=path).stdout)["extension_told_on"] is None


def test_a_register_made_before_the_told_columns_gains_them(register_url):
    old = open_register(register_url)
    cid = old.new_case("access", ids(), actor="dpo", received_on="2026-03-10").case_id
    with old.backend.transaction() as tx:  # as a register made by the earlier release
        tx.execute("ALTER TABLE cases DROP COLUMN extension_told_on")
        tx.execute("ALTER TABLE cases DROP COLUMN extension_told_how")
    old.close()
    reg = open_register(register_url)
    case = reg.extend(cid, new_due_on="2026-05-10", reason="complex", told_on="2026-03-11", told_how="phone",
                      actor="dpo", today=date(2026, 3, 11))
    assert (case.due_on, case.extension_told_on, case.extension_told_how) == ("2026-05-10", "2026-03-11", "phone")
    reg.close()


def test_second_access_request_within_a_year_is_flagged(reg):
    first = reg.new_case("access", ids(), actor="dpo", received_on="2025-01-05")
    assert not first.possibly_chargeable
    # Same phone written differently, other email: the same person by phone.
    second = reg.new_case("access", ids(emails=["other@x.fi"], phones=["+358401234567"]), actor="dpo",
                          received_on="2025-09-01")
    assert second.possibly_chargeable
    assert "flag_possibly_chargeable" in [r["action"] for r in reg.audit_trail(second.case_id)]
    # An erasure request is not an access request; a year later it is free again.
    assert not reg.new_case("erasure", ids(), actor="dpo", received_on="2025-09-02").possibly_chargeable
    assert not reg.new_case("access", ids(emails=["z@x.fi"], phones=[]), actor="dpo",
                            received_on="2025-09-03").possibly_chargeable
    # The flag survives closing: the identifiers are deleted, the keyed hashes stay.
    reg.close_case(first.case_id, outcome="answered", actor="dpo", force=True)
    reg.close_case(second.case_id, outcome="answered", actor="dpo", force=True)
    assert reg.get(first.case_id).identifiers == []
    third = reg.new_case("access", ids(emails=[" MATTI.virtanen@yritys.fi"], phones=[]), actor="dpo",
                         received_on="2025-10-01")
    assert third.possibly_chargeable
    fourth = reg.new_case("access", ids(emails=["matti.virtanen@yritys.fi"], phones=[]), actor="dpo",
                          received_on="2026-11-20")
    # Nothing in the 12 months before 2026-11-20: the last access case was on 2025-10-01.
    assert not fourth.possibly_chargeable


def test_system_states_held_failed_manual_and_close(reg):
    case = reg.new_case("erasure", ids(), actor="dpo", systems=["pipedrive", "netvisor", "docue"])
    cid = case.case_id
    with pytest.raises(RegisterError, match="reason and an end date"):
        reg.set_system_state(cid, "netvisor", "held", actor="job")
    with pytest.raises(RegisterError, match="error"):
        reg.set_system_state(cid, "pipedrive", "failed", actor="job")
    with pytest.raises(RegisterError, match="state must be"):
        reg.set_system_state(cid, "pipedrive", "vanished", actor="job")
    reg.set_system_state(cid, "netvisor", "held", actor="job", detail="accounting act: invoices kept 6 years",
                         held_until="2032-12-31")
    reg.set_system_state(cid, "pipedrive", "failed", actor="job", error="RetryableError: 503")
    reg.set_system_state(cid, "docue", "manual_open", actor="job", detail="ask Docue support")
    with pytest.raises(RegisterError, match="docue, netvisor, pipedrive"):  # manual, held, failed
        reg.close_case(cid, outcome="erased", actor="dpo")
    reg.set_system_state(cid, "docue", "manual_answered", actor="dpo", detail="Docue confirmed")
    reg.set_system_state(cid, "pipedrive", "done", actor="job", records=3)
    reg.approve(cid, action="erasure", actor="dpo2", note="checked")
    with pytest.raises(RegisterError, match="already approved"):
        reg.approve(cid, action="erasure", actor="dpo2")
    assert reg.approvals_for(cid, "erasure") == ["dpo2"]
    # A held system keeps the case open (its follow-up erasure needs the identifiers) ...
    with pytest.raises(RegisterError, match="netvisor"):
        reg.close_case(cid, outcome="erased; invoices held", actor="dpo")
    # ... unless the officer forces it, which the trail records.
    closed = reg.close_case(cid, outcome="erased; invoices held", actor="dpo", force=True)
    assert closed.status == "closed" and closed.identifiers == []
    assert closed.systems["netvisor"].held_until == "2032-12-31"
    assert closed.systems["pipedrive"].records == 3
    with pytest.raises(RegisterError, match="closed"):
        reg.verify(cid, method="passport", actor="dpo")
    actions = [r["action"] for r in reg.audit_trail(cid)]
    assert actions.count("system_state") == 3 + 5 and actions[-1] == "case_closed" and "approved" in actions


def test_a_case_opened_by_the_pipeline_is_verified_in_the_same_transaction(reg):
    case = reg.new_case("erasure", ids(), actor="retention_review", verified_method="retention review")
    assert case.verified and case.verified_method == "retention review" and case.verified_by == "retention_review"
    actions = [r["action"] for r in reg.audit_trail(case.case_id)]
    assert actions[:2] == ["case_created", "identity_verified"]
    assert not reg.new_case("erasure", ids(), actor="dpo").verified  # by default a person verifies


def _closing_subject(reg):
    """A rectification case with identifiers and corrected values: personal data all of it."""
    from contact_register.requests.rectification.corrections import save_corrections

    case = reg.new_case("rectification", validate_identifiers(["Sanni.Sulkija@Firma.fi"], ["040 765 1122"],
                                                             "Sanni Sulkija"), actor="dpo", systems=["pipedrive"])
    save_corrections(reg, case.case_id, {"email": "sanni.uusi@toinen-firma.fi", "phone": "+358 50 998 7766",
                                         "name": "Sanni Avattu"}, actor="dpo")
    reg.set_system_state(case.case_id, "pipedrive", "done", actor="job", records=1)
    needles = {"email": ["sanni.sulkija@firma.fi", "sanni.uusi@toinen-firma.fi"],
               "name": ["Sanni Sulkija", "sanni sulkija", "Sanni Avattu"],
               "phone": phone_variants("+358407651122") + phone_variants("+358509987766")}
    return case.case_id, needles


def test_closing_a_case_leaves_no_identifier_or_correction_in_the_sqlite_file_or_wal(tmp_path):
    path = tmp_path / "register.sqlite"
    reg = open_register(str(path))
    other = reg.new_case("access", validate_identifiers(["pysyy.auki@esimerkki.fi"]), actor="dpo")
    cid, needles = _closing_subject(reg)
    files = [path, Path(f"{path}-wal")]
    found = {kind for _, kind, _ in scan(files, needles)}
    assert found == {"email", "name", "phone"}  # the scan sees them before
    reg.close_case(cid, outcome="rectified", actor="dpo")
    assert not scan(files, needles), "deleted identifiers or corrections still in the register file or its WAL"
    assert scan(files, {"email": ["pysyy.auki@esimerkki.fi"]})  # the open case's are kept
    reg.close()
    check = open_register(str(path))
    assert check.get(cid).status == "closed" and check.get(cid).identifiers == []
    assert check.get(other.case_id).identifiers
    check.close()


def test_closing_waits_for_compaction_and_says_so_when_another_reader_holds_the_wal(tmp_path):
    path = tmp_path / "register.sqlite"
    reg = open_register(str(path))
    cid, needles = _closing_subject(reg)
    reader = sqlite3.connect(str(path))
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM cases").fetchone()  # holds a snapshot: the WAL cannot be emptied
    from contact_register.requests.cases.casebook import CompactionPending

    with pytest.raises(CompactionPending, match="closed.*request compact"):
        reg.close_case(cid, outcome="rectified", actor="dpo")
    assert reg.get(cid).status == "closed"
    reader.rollback()
    reader.close()
    compacted = _cli("compact", register_path=path)
    assert compacted.returncode == 0 and "register compacted" in compacted.stdout, compacted.stderr
    assert not scan([path, Path(f"{path}-wal")], needles)
    reg.close()


def _pg_relation_bytes(reg, tables) -> bytes:
    """The bytes of the tables' and their indexes' files on the server's disk (superuser)."""
    with reg.backend.transaction() as tx:
        rels = [r[0] for r in tx.execute(
            "SELECT c.oid::regclass::text FROM pg_class c WHERE c.oid = ANY(?::regclass[]) "
            "UNION SELECT i.indexrelid::regclass::text FROM pg_index i WHERE i.indrelid = ANY(?::regclass[])",
            [list(tables), list(tables)])]
    reg.backend._con.execute("CHECKPOINT")  # shared buffers written to the files
    data = b""
    with reg.backend.transaction() as tx:
        for rel in rels:
            data += tx.one("SELECT pg_read_binary_file(pg_relation_filepath(?::regclass))", [rel])[0]
    return data


def test_closing_a_case_on_postgresql_removes_corrections_and_rewrites_the_tables(pg_url):
    reg = open_register(pg_url)
    cid, needles = _closing_subject(reg)
    tables = ("case_identifiers", "case_corrections")
    before = _pg_relation_bytes(reg, tables)
    for value in ("sanni.sulkija@firma.fi", "sanni.uusi@toinen-firma.fi", "Sanni Avattu"):
        assert value.encode() in before
    reg.close_case(cid, outcome="rectified", actor="dpo")
    with reg.backend.transaction() as tx:
        assert tx.one("SELECT count(*) FROM case_corrections WHERE case_id = ?", [cid])[0] == 0
        assert tx.one("SELECT count(*) FROM case_identifiers WHERE case_id = ?", [cid])[0] == 0
    after = _pg_relation_bytes(reg, tables)
    for value in [v for vs in needles.values() for v in vs]:
        assert value.encode() not in after, "a deleted value is still in the table's files (dead tuple)"
    reg.close()


def test_audit_trail_is_append_only_in_the_database(reg, register_url):
    case = reg.new_case("access", ids(), actor="dpo")
    before = reg.audit_trail(case.case_id)
    # Straight past the API: the database itself refuses.
    if reg.kind == "sqlite":
        con = sqlite3.connect(register_url)
        for stmt in ("UPDATE audit SET actor = 'someone else'", "DELETE FROM audit"):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                con.execute(stmt)
        con.close()
    else:
        import psycopg

        with psycopg.connect(register_url, autocommit=True) as con:
            for stmt in ("UPDATE audit SET actor = 'someone else'", "DELETE FROM audit", "TRUNCATE audit"):
                with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                    con.execute(stmt)
    assert reg.audit_trail(case.case_id) == before
    assert not hasattr(reg, "update_audit") and not hasattr(reg, "delete_audit")


@pytest.mark.parametrize("bad, field", [
    (dict(emails=["x@example.fi'; DROP TABLE cases; --"]), "email"),
    (dict(emails=["' OR 1=1 --"]), "email"),
    (dict(emails=["a" * 10_000 + "@example.fi"]), "too long"),
    (dict(name="N" * 10_240), "too long"),
    (dict(organization="Oy " + "x" * 10_240), "too long"),
    (dict(name="Matti \udcff Virtanen"), "Unicode"),
    (dict(emails=["matti\ud800@example.fi"]), "Unicode"),
    (dict(phones=["not a phone"]), "phone"),
    (dict(phones=["123"]), "phone"),
    (dict(phones=["+358 40 123 4567 8888 9999"]), "phone"),
    (dict(name="Matti\x00Virtanen"), "control"),
    (dict(emails=[], phones=[], name=None), "at least one"),
])
def test_bad_identifiers_are_refused_and_nothing_is_written(reg, bad, field):
    reg.new_case("access", ids(), actor="dpo")
    before = counts(reg)
    given = dict(emails=["ok@example.fi"], phones=[], name=None)
    given.update(bad)
    with pytest.raises(InvalidIdentifier, match=field) as err:
        reg.new_case("access", validate_identifiers(**given), actor="dpo")
    # The message names the field and the problem, never the value.
    for value in [v for v in bad.values() if isinstance(v, str)] + [v for l in bad.values() if isinstance(l, list) for v in l]:
        if len(value) > 3:
            assert value not in str(err.value)
    assert counts(reg) == before
    with reg.backend.transaction() as tx:
        assert tx.one("SELECT count(*) FROM cases")[0] == 1  # the table is still there, unharmed


def test_sql_looking_but_valid_identifiers_are_stored_verbatim(reg):
    # An apostrophe and '=' are legal in an email's local part: stored as given, bound as data.
    case = reg.new_case("access", validate_identifiers(emails=["o'brien=1@example.fi"], name="Robert'); DROP TABLE cases;--"),
                        actor="dpo")
    got = reg.get(case.case_id)
    assert ("email", "o'brien=1@example.fi", "o'brien=1@example.fi") in got.identifiers
    assert ("name", "Robert'); DROP TABLE cases;--", "cases drop robert table") in got.identifiers
    assert len(reg.list_cases()) == 1


def test_a_failure_inside_the_transaction_leaves_no_half_case(reg):
    before = counts(reg)
    # An unknown system state fails after the case row and identifiers were inserted.
    with pytest.raises(RegisterError):
        with reg.backend.transaction() as tx:
            tx.execute("INSERT INTO cases (case_id, kind, status, received_on, original_due_on, due_on, created_at, "
                       "created_by) VALUES ('X-1', 'access', 'open', '2026-01-01', '2026-02-01', '2026-02-01', 'now', 'dpo')")
            reg._set_state(tx, "X-1", "pipedrive", "exploded", "dpo")
    assert counts(reg) == before
    with pytest.raises(CaseNotFound):
        reg.get("X-1")


def test_unknown_case_and_bad_dates(reg):
    with pytest.raises(CaseNotFound):
        reg.get("ACC-20260101-000000")
    with pytest.raises(CaseNotFound):
        reg.verify("x" * 10_000, method="m", actor="dpo")
    with pytest.raises(RegisterError, match="date"):
        reg.new_case("access", ids(), actor="dpo", received_on="31.1.2026")
    with pytest.raises(RegisterError, match="future"):
        reg.new_case("access", ids(), actor="dpo", received_on=datetime.now(ZoneInfo("Europe/Helsinki")).date() + timedelta(days=1))
    with pytest.raises(RegisterError, match="kind"):
        reg.new_case("complaint", ids(), actor="dpo")


def test_concurrent_writers_from_several_connections(register_url):
    """Several runs (here threads with their own connections) write at once; nothing is lost."""
    setup = open_register(register_url)
    case = setup.new_case("erasure", ids(), actor="dpo")
    setup.close()
    errors = []

    def worker(n):
        try:
            r = open_register(register_url)
            for i in range(10):
                r.set_system_state(case.case_id, f"system{n}", "pending" if i % 2 else "found", actor=f"run{n}",
                                   records=i)
            r.close()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    check = open_register(register_url)
    got = check.get(case.case_id)
    assert {s: st.records for s, st in got.systems.items()} == {f"system{n}": 9 for n in range(4)}
    assert sum(1 for r in check.audit_trail(case.case_id) if r["action"] == "system_state") == 40
    seqs = [r["seq"] for r in check.audit_trail(case.case_id)]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    check.close()


def test_register_description_has_every_processor_of_the_notice():
    desc = load_description()
    names = {p["name"] for p in desc["processors"]}
    for expected in ("Pipedrive CRM", "Google Workspace", "Docue", "Trustmary", "Netvisor", "Request Tracker",
                     "Matomo", "Dealfront"):
        assert expected in names
    assert desc["controller"]["business_id"] == "2411828-1"
    assert desc["contact"]["privacy_officer"]["email"] == "tietosuoja@secapp.fi"
    assert {b["article"] for b in desc["legal_bases"]} == {"GDPR 6(1)(b)", "GDPR 6(1)(f)"}
    assert any("kerran vuodessa" in r["fi"] and "once a year" in r["en"] for r in desc["rights"])
    for p in desc["processors"]:
        assert p["holds"]["fi"] and p["holds"]["en"]
