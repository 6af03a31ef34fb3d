"""Own-store erasure removes exactly the subject, nothing else (issue 15, items 1, 2, 8, 15).

- Dagster: a run or compute-log file goes only when it is proven to concern the case: the
  subject's email or phone (whole, with boundaries), or their full name as whole words; never a
  single name part, never a substring ("Essi" is inside "suppression_check").
- Raw stores: a record other people share loses only the subject's part.
- Nothing derived from an identifier without a key (md5 of an email) is kept after erasure.
- The warehouse build and the erasure's rewrite take the same lock.
"""

import functools
import json
import logging
import threading
from pathlib import Path

import pytest
from dagster import Config, DagsterInstance, build_reconstructable_job, execute_job, job, op

from contact_register.requests.erasure.own_stores import erase_own_stores
from pipelines.jobs.erasure_dagster_storage import scrub_dagster
from contact_register.requests.cases import open_register, validate_identifiers
from contact_register.requests.writeback.base import WritebackSubject
from tests.conftest import demo_dagster_home


ESSI_EMAIL = "essi.hyvarinen@kauppa-esimerkki.fi"
ESSI_PHONE = "+358407654321"


class PrintConfig(Config):
    text: str = ""
    emails: list[str] = []


@op
def suppression_check(context):
    # An unrelated step whose name holds "essi" (su-ppr-ESSI-on): nothing about the subject.
    context.log.info("suppression check: 0 new records")


@job
def nightly_like():
    suppression_check()


@op
def print_text(config: PrintConfig):
    print(config.text)  # a library that prints what it was given: only the compute log holds it


@job
def printing_job():
    print_text()


def make_printing_job():
    return printing_job


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = demo_dagster_home(tmp_path / "dagster")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("REGISTER_URL", str(tmp_path / "register.sqlite"))
    monkeypatch.setenv("REGISTER_HMAC_KEY", "test-key-for-collateral-erasure")
    monkeypatch.setenv("SUPPRESSION_KEY_FILE", str(tmp_path / "suppression.key"))
    return home


def printed(instance, text: str) -> str:
    """A run whose step runs in its own process, so its stdout lands in a compute-log file."""
    recon = build_reconstructable_job("tests.test_erasure_collateral", "make_printing_job")
    result = execute_job(recon, instance=instance,
                         run_config={"ops": {"print_text": {"config": {"text": text}}}})
    assert result.success
    return result.run_id


def test_only_runs_proven_to_concern_the_subject_are_deleted(home, tmp_path):
    """The subject's records include the bare display name "Essi". Runs that merely contain
    "essi" (a step name) or the first name alone, or another person's longer name, stay; the run
    launched with her email and the run whose log prints her full name go, and the case trail
    names the deleted run ids with counts, no personal data."""
    with DagsterInstance.from_config(str(home)) as instance:
        unrelated = nightly_like.execute_in_process(instance=instance).run_id
        with_email = printing_job.execute_in_process(
            instance=instance, run_config={"ops": {"print_text": {"config": {"emails": [ESSI_EMAIL]}}}}).run_id
        full_name = printed(instance, "asiakas: ESSI  Hyvärinen, soitettu")
        first_name_only = printed(instance, "Essi soitti, palataan asiaan")
        other_person = printed(instance, "Tessi Hyvärinenkö ja essi.hyvarinen@kauppa-esimerkki.fi.example")
    assert (home / "storage" / full_name).is_dir()

    reg = open_register()
    ids = validate_identifiers([ESSI_EMAIL], [ESSI_PHONE], "Essi Hyvärinen")
    case = reg.new_case("erasure", ids, actor="dpo", systems=["own_stores"])
    subject = WritebackSubject(case_id=case.case_id, identifiers=ids, emails=[ESSI_EMAIL], phones=[ESSI_PHONE],
                               names=["Essi", "Essi Hyvärinen"])
    outcome = erase_own_stores(subject, raw_dir=tmp_path / "raw", warehouse_path=tmp_path / "warehouse.duckdb",
                               export_dir=tmp_path / "exports", register=reg, case_id=case.case_id, actor="dpo",
                               scrub_runs=functools.partial(scrub_dagster, home))
    assert outcome.state == "done", outcome.error

    with DagsterInstance.from_config(str(home)) as instance:
        kept = {r.run_id for r in instance.get_runs()}
    assert kept == {unrelated, first_name_only, other_person}
    assert not (home / "storage" / full_name).exists()
    for run_id in (first_name_only, other_person):  # their compute logs stay too
        assert list((home / "storage" / run_id).rglob("*.out")) or list((home / "storage" / run_id).rglob("*.err"))

    events = [a for a in reg.get(case.case_id, with_audit=True).audit if a["action"] == "dagster_runs_deleted"]
    assert len(events) == 1
    detail = events[0]["detail"]
    assert set(detail["runs"]) == {with_email, full_name}
    assert all(counts["events"] > 0 for counts in detail["runs"].values())
    assert detail["runs"][full_name]["log_files"] >= 1
    text = repr(detail).casefold()
    assert "essi" not in text and "hyv" not in text and "7654321" not in text
    reg.close()


# -- item 15: the erasure and a nightly build take the same lock -------------------------------


def pipedrive_store(raw_dir: Path, people: list[dict]) -> None:
    from datetime import datetime, timezone

    from contact_register.sync.pipedrive.extract import SPECS
    from contact_register.sync.raw_store import open_raw_store

    now = datetime(2026, 11, 25, tzinfo=timezone.utc)
    with open_raw_store(raw_dir, "pipedrive") as store:
        for spec in SPECS.values():
            store.ensure(spec)
        store.apply_page(SPECS["persons"], people, cursor=now, now=now)


def identity_keys(state: Path) -> set[str]:
    import duckdb

    con = duckdb.connect(str(state), read_only=True)
    try:
        return {r[0] for r in con.execute("SELECT record_key FROM record_person").fetchall()}
    finally:
        con.close()


class Flag(logging.Handler):
    """Sets an event when a log record with ``text`` is emitted (from any thread)."""

    def __init__(self, text: str) -> None:
        super().__init__(logging.INFO)
        self.text, self.seen = text, threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.seen.set()


def test_a_build_racing_the_erasure_cannot_put_the_person_back(home, tmp_path, monkeypatch):
    """A nightly build is paused after it copied the raw stores (the person still in them) and
    before it writes the identity state store. The erasure started meanwhile must wait for it
    (it logs that it waits, and the raw store still holds the person while the build is
    paused); once the build has finished, the erasure runs, and in the end neither the identity
    state store nor the warehouse has a trace of the person, while the other person stays."""
    import duckdb

    from contact_register.warehouse import build as build_module
    from contact_register.warehouse.build import build_warehouse
    from contact_register.requests.suppression.store import SuppressionList
    from contact_register.requests.writeback.base import resolve_subject

    raw_dir, warehouse = tmp_path / "raw", tmp_path / "warehouse.duckdb"
    state = warehouse.with_name("identity_decisions.duckdb")
    monkeypatch.setenv("IDENTITY_DECISIONS_PATH", str(state))
    pipedrive_store(raw_dir, [
        {"id": 1, "name": "Essi Hyvärinen", "emails": [ESSI_EMAIL], "phones": [ESSI_PHONE]},
        {"id": 2, "name": "Olli Muu", "emails": ["olli.muu@toinen-esimerkki.fi"], "phones": ["+358401112223"]}])
    reg = open_register()
    build_warehouse(raw_dir, warehouse, identity_state_path=state, suppression=SuppressionList(reg))
    assert identity_keys(state) == {"pipedrive:person:1", "pipedrive:person:2"}
    ids = validate_identifiers([ESSI_EMAIL], [ESSI_PHONE], "Essi Hyvärinen")
    case = reg.new_case("erasure", ids, actor="dpo", systems=["own_stores"])
    con = duckdb.connect(str(warehouse), read_only=True)
    subject = resolve_subject(con, case.case_id, ids)
    con.close()
    assert subject.records == {"pipedrive": {"person": ["1"]}}

    # The nightly build pauses inside identity resolution (raw stores copied, state not yet written).
    inside, release = threading.Event(), threading.Event()
    real_resolve = build_module.identity.resolve

    def paused_resolve(*args, **kwargs):
        if threading.current_thread().name == "nightly-build":
            inside.set()
            assert release.wait(120), "the test never released the build"
        return real_resolve(*args, **kwargs)

    monkeypatch.setattr(build_module.identity, "resolve", paused_resolve)
    errors: list[BaseException] = []

    def run(fn):
        def wrapped():
            try:
                fn()
            except BaseException as exc:  # noqa: BLE001 - reported by the test below
                errors.append(exc)
        return wrapped

    nightly = threading.Thread(name="nightly-build", target=run(lambda: build_warehouse(
        raw_dir, warehouse, identity_state_path=state, suppression=SuppressionList(open_register()))))
    outcome = {}
    erasure = threading.Thread(name="erasure", target=run(lambda: outcome.setdefault("own", erase_own_stores(
        subject, raw_dir=raw_dir, warehouse_path=warehouse, export_dir=tmp_path / "exports", register=open_register(),
        case_id=case.case_id, actor="dpo", scrub_runs=functools.partial(scrub_dagster, home)))))
    waits = Flag("waiting for the warehouse lock")
    logging.getLogger("assets.warehouse").addHandler(waits)
    logging.getLogger("assets.warehouse").setLevel(logging.INFO)
    try:
        nightly.start()
        assert inside.wait(120), "the build never reached identity resolution"
        erasure.start()
        # Either the erasure waits for the lock, or (without one) it runs to its end.
        while not waits.seen.is_set() and erasure.is_alive():
            erasure.join(0.2)
        waited = waits.seen.is_set()
        # While the build is paused the erasure must not have touched the raw store yet.
        con = duckdb.connect(str(raw_dir / "pipedrive.duckdb"), read_only=True)
        untouched = con.execute("SELECT count(*) FROM persons WHERE id = 1").fetchone()[0] == 1
        con.close()
    finally:
        release.set()
        nightly.join(300)
        erasure.join(300)
        logging.getLogger("assets.warehouse").removeHandler(waits)
    assert not errors, errors
    assert outcome["own"].state == "done", outcome["own"].error

    assert identity_keys(state) == {"pipedrive:person:2"}
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        assert con.execute("SELECT list(record_id ORDER BY record_id) FROM person_records").fetchone()[0] == ["2"]
    finally:
        con.close()
    assert waited and untouched, "the erasure did not wait for the running build"
    reg.close()


# -- a Google raw store as the sync writes it ---------------------------------------------------

ANNA = "anna.myyja@yritys-esimerkki.fi"  # our employee: the mailbox owner
OTHERS = ["olli.muu@toinen-esimerkki.fi", "pia.kolmas@kolmas-esimerkki.fi", "ville.neljas@neljas-esimerkki.fi"]


def gmail(mid: str, headers: list[tuple[str, str]]) -> dict:
    """A Gmail API message resource (users.messages.get, format=metadata)."""
    return {"id": mid, "threadId": mid, "labelIds": ["INBOX"], "historyId": "7", "internalDate": "1764000000000",
            "payload": {"headers": [{"name": n, "value": v} for n, v in headers]}}


def google_store(raw_dir: Path) -> None:
    """One shared message (a newsletter-like mail to Essi and three other outsiders, which Gmail
    keeps as a manual task) and one of her own (her question to our employee)."""
    from datetime import datetime, timezone

    from contact_register.sync.google.sync import ADDRESSES, ALL_SPECS, MESSAGES, USERS, message_rows
    from contact_register.sync.raw_store import open_raw_store

    now = datetime(2026, 11, 25, tzinfo=timezone.utc)
    shared = gmail("m-shared", [
        ("From", f"Anna Myyjä <{ANNA}>"), ("To", f"Essi Hyvärinen <{ESSI_EMAIL}>, Olli Muu <{OTHERS[0]}>"),
        ("Cc", f"{OTHERS[1]}"), ("Bcc", f"Ville Neljäs <{OTHERS[2]}>"),
        ("Date", "Tue, 24 Nov 2026 10:00:00 +0200"), ("Subject", "Joulukuun tarjoukset"),
        ("Received", f"from mx.example by mail.example for <{ESSI_EMAIL}>")])
    own = gmail("m-own", [
        ("From", f"Essi Hyvärinen <{ESSI_EMAIL}>"), ("To", f"Anna Myyjä <{ANNA}>"),
        ("Date", "Wed, 25 Nov 2026 09:00:00 +0200"), ("Subject", "Kysymys laskusta")])
    with open_raw_store(raw_dir, "google") as store:
        for spec in ALL_SPECS:
            store.ensure(spec)
        store.apply_page(USERS, [{"id": "u1", "primary_email": ANNA, "full_name": "Anna Myyjä"}], now=now)
        messages, addresses = [], []
        for msg in (shared, own):
            row, children = message_rows("u1", msg, now, [])
            messages.append(row)
            addresses += children
        store.apply_page(MESSAGES, messages, now=now)
        store.apply_page(ADDRESSES, addresses, now=now)


def built_subject(raw_dir: Path, warehouse: Path, reg, ids):
    """The warehouse built from the raw stores, an erasure case and its subject resolved in it."""
    import duckdb

    from contact_register.warehouse.build import build_warehouse
    from contact_register.requests.suppression.store import SuppressionList
    from contact_register.requests.writeback.base import resolve_subject

    build_warehouse(raw_dir, warehouse, suppression=SuppressionList(reg))
    case = reg.new_case("erasure", ids, actor="dpo", systems=["own_stores"])
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return resolve_subject(con, case.case_id, ids)
    finally:
        con.close()


def erase(subject, reg, tmp_path: Path, home: Path):
    return erase_own_stores(subject, raw_dir=tmp_path / "raw", warehouse_path=tmp_path / "warehouse.duckdb",
                            export_dir=tmp_path / "exports", register=reg, case_id=subject.case_id, actor="dpo",
                            scrub_runs=functools.partial(scrub_dagster, home))


# -- item 8: nothing derived from an identifier without a key is kept ----------------------------


def test_no_unkeyed_hash_of_the_email_is_kept_after_erasure(home, tmp_path, monkeypatch):
    """Google's address-like record ids are md5(email) in the warehouse. The erasure puts the
    subject's records on the suppression list first (as the erasure flow does); after the
    erasure no file under the test's folder may hold the md5, sha1 or sha256 of her email: the
    byte scan finds them before (in the warehouse) and not after."""
    from contact_register.requests.erasure.byte_scan import scan
    from contact_register.requests.suppression.store import add_subject

    monkeypatch.setenv("IDENTITY_DECISIONS_PATH", str(tmp_path / "identity_decisions.duckdb"))
    google_store(tmp_path / "raw")
    reg = open_register()
    subject = built_subject(tmp_path / "raw", tmp_path / "warehouse.duckdb", reg,
                            validate_identifiers([ESSI_EMAIL], [], "Essi Hyvärinen"))
    assert "gmail_correspondent" in subject.records["google"]
    add_subject(reg, subject, reason="erasure", actor="dpo")
    needles = {"email": [ESSI_EMAIL]}
    before = {(Path(p).name, kind) for p, kind, _ in scan([tmp_path], needles)}
    assert ("warehouse.duckdb", "email-md5") in before, sorted(before)

    outcome = erase(subject, reg, tmp_path, home)
    assert outcome.state == "done", outcome.error
    after = {(Path(p).relative_to(tmp_path).as_posix(), kind, enc) for p, kind, enc in scan([tmp_path], needles)}
    assert not after, sorted(after)
    reg.close()


def test_byte_scan_finds_unkeyed_hashes_of_identifiers(tmp_path):
    import hashlib

    from contact_register.requests.erasure.byte_scan import scan

    md5 = hashlib.md5(ESSI_EMAIL.encode()).hexdigest().upper()  # any case
    sha256 = hashlib.sha256(ESSI_PHONE.encode()).hexdigest()
    (tmp_path / "ids.txt").write_text(f"gmail_correspondent:{md5}\n")
    (tmp_path / "phone.bin").write_bytes(f"x{sha256}y".encode("utf-16-le"))
    (tmp_path / "other.txt").write_text(hashlib.sha1(b"olli.muu@toinen-esimerkki.fi").hexdigest())
    found = scan([tmp_path], {"email": [ESSI_EMAIL.upper()], "phone": [ESSI_PHONE, "040 765 4321"]})
    # (ASCII in UTF-16 LE, read one byte further on, is also UTF-16 BE: both may be reported.)
    assert {(Path(p).name, kind) for p, kind, _ in found} == {("ids.txt", "email-md5"), ("phone.bin", "phone-sha256")}
    assert (str(tmp_path / "phone.bin"), "phone-sha256", "utf-16-le") in found


def test_record_ids_kept_in_plain_text_are_keyed_on_first_use(home):
    import hashlib

    from contact_register.requests.suppression.store import SuppressionList

    reg = open_register()
    case = reg.new_case("erasure", validate_identifiers([ESSI_EMAIL]), actor="dpo")
    plain = "gmail_correspondent:" + hashlib.md5(ESSI_EMAIL.encode()).hexdigest()
    with reg.backend.transaction() as tx:  # as an earlier version stored it
        tx.execute("INSERT INTO suppression_records (system, record_kind, record_id, case_id, state, handled_at) "
                   "VALUES ('google', 'gmail_correspondent', ?, ?, 'listed', '2026-11-01')", [plain, case.case_id])
    supp = SuppressionList(reg)
    assert ("google", "gmail_correspondent", plain) in supp.handled()
    assert ("google", "gmail_correspondent", plain + "0") not in supp.handled()
    with reg.backend.transaction() as tx:
        stored = [r[0] for r in tx.execute("SELECT record_id FROM suppression_records")]
    assert len(stored) == 1 and stored[0].startswith("hmac:") and plain not in stored[0]
    reg.close()


# -- item 2: a shared record loses only the subject's part ---------------------------------------


def test_a_shared_message_keeps_everyone_but_the_subject(home, tmp_path, monkeypatch):
    """The mail to Essi and three other outsiders stays in the raw store for them, without her
    address row and without her address in its headers (To, and the Received header that names
    her); her own message to our employee goes whole. The other recipients stay in the
    warehouse."""
    import duckdb

    from contact_register.requests.erasure.byte_scan import scan

    monkeypatch.setenv("IDENTITY_DECISIONS_PATH", str(tmp_path / "identity_decisions.duckdb"))
    google_store(tmp_path / "raw")
    reg = open_register()
    subject = built_subject(tmp_path / "raw", tmp_path / "warehouse.duckdb", reg,
                            validate_identifiers([ESSI_EMAIL], [], "Essi Hyvärinen"))
    assert sorted(subject.records["google"]["gmail_message"]) == ["u1:m-own", "u1:m-shared"]
    outcome = erase(subject, reg, tmp_path, home)
    assert outcome.state == "done", outcome.error

    con = duckdb.connect(str(tmp_path / "raw" / "google.duckdb"), read_only=True)
    try:
        assert [r[0] for r in con.execute("SELECT id FROM gmail_messages").fetchall()] == ["u1:m-shared"]
        kept = con.execute("SELECT header, email FROM gmail_addresses WHERE message_key = 'u1:m-shared' "
                           "ORDER BY position").fetchall()
        assert kept == [("from", ANNA), ("to", OTHERS[0]), ("cc", OTHERS[1]), ("bcc", OTHERS[2])]
        headers = dict(json.loads(con.execute("SELECT headers FROM gmail_messages").fetchone()[0]))
        assert headers["To"] == f"Olli Muu <{OTHERS[0]}>"
        assert headers["Subject"] == "Joulukuun tarjoukset" and "Received" not in headers
        assert con.execute("SELECT count(*) FROM gmail_addresses WHERE message_key = 'u1:m-own'").fetchone()[0] == 0
    finally:
        con.close()
    assert not scan([tmp_path], {"email": [ESSI_EMAIL], "name": ["Essi Hyvärinen"]})
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    try:
        kept = {r[0] for r in con.execute("SELECT value_norm FROM person_identifiers WHERE kind = 'email'").fetchall()}
    finally:
        con.close()
    assert set(OTHERS) <= kept and ESSI_EMAIL not in kept
    reg.close()


def test_a_ticket_with_another_requestor_keeps_them(tmp_path):
    """Request Tracker: ticket 1 is hers alone and goes with everything in it; ticket 3 also has
    another requestor: it stays with their people row and their message, and loses her people
    row and the message she wrote (with its attachment)."""
    from datetime import datetime, timezone

    import duckdb

    from contact_register.sync.raw_store import open_raw_store
    from contact_register.sync.request_tracker.sync import SPECS
    from contact_register.requests.erasure import own_stores
    from contact_register.requests.erasure.own_stores import Needles, _raw_removal, rewrite_without

    now = datetime(2026, 11, 25, tzinfo=timezone.utc)
    with open_raw_store(tmp_path, "request_tracker") as store:
        for spec in SPECS.values():
            store.ensure(spec)
        store.con.execute("CREATE TABLE ticket_people (ticket_id BIGINT, user_id BIGINT, role VARCHAR, "
                          "last_updated TIMESTAMPTZ)")
        store.con.execute(f"INSERT INTO users (id, name, email, privileged) VALUES (10, 'essi', '{ESSI_EMAIL}', false), "
                          f"(11, 'olli', '{OTHERS[0]}', false), (12, 'tuki', 'tuki@yritys-esimerkki.fi', true)")
        store.con.execute("INSERT INTO tickets (id, subject) VALUES (1, 'hers'), (3, 'shared')")
        store.con.execute("INSERT INTO ticket_people VALUES (1, 10, 'Requestor', NULL), (1, 12, 'Owner', NULL), "
                          "(3, 10, 'Requestor', NULL), (3, 11, 'Requestor', NULL), (3, 12, 'Owner', NULL)")
        store.con.execute("INSERT INTO transactions (id, ticket_id, creator_id) VALUES "
                          "(100, 1, 10), (300, 3, 10), (301, 3, 11), (302, 3, 12)")
        store.con.execute("INSERT INTO attachments (id, transaction_id, creator_id) VALUES "
                          "(1000, 100, 10), (3000, 300, 10), (3010, 301, 11)")
    subject = WritebackSubject(case_id="ERA-1", identifiers=validate_identifiers([ESSI_EMAIL]),
                               records={"request_tracker": {"user": ["10"], "ticket": ["1", "3"]}}, emails=[ESSI_EMAIL])
    path = tmp_path / "request_tracker.duckdb"
    rewrite_without(path, _raw_removal("request_tracker", subject, Needles([ESSI_EMAIL], [], [])),
                    order=own_stores._child_order("request_tracker"))
    con = duckdb.connect(str(path), read_only=True)
    try:
        def ids(sql):
            return con.execute(sql).fetchall()
        assert ids("SELECT id FROM tickets ORDER BY id") == [(3,)]
        assert ids("SELECT id FROM users ORDER BY id") == [(11,), (12,)]
        assert ids("SELECT ticket_id, user_id FROM ticket_people ORDER BY ALL") == [(3, 11), (3, 12)]
        assert ids("SELECT id FROM transactions ORDER BY id") == [(301,), (302,)]
        assert ids("SELECT id FROM attachments ORDER BY id") == [(3010,)]
    finally:
        con.close()
