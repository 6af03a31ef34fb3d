"""Erasure inside our own stores, checked byte by byte.

The nightly sync fills the raw stores and the warehouse from the sandboxes and the real RT; a
subject export launched with identifiers in its run config puts them into Dagster's storage, the
register and an export zip. After ``erase_own_stores`` a byte scan (UTF-8, UTF-16 LE/BE, and the
rows of every DuckDB file) of every file the project owns finds none of the person's emails,
phones or names, while a control person is still everywhere they were.
"""

import functools
import os
import subprocess
import sys
import time
import zipfile
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import phonenumbers
import psycopg2
import pytest
from dagster import Config, DagsterInstance, build_reconstructable_job, execute_job, job, op, reconstructable

from contact_register.sync.raw_store import TableSpec, open_raw_store
from pipelines.definitions import defs, resolved_subject_export
from contact_register.requests.erasure import own_stores
from contact_register.requests.erasure.byte_scan import phone_variants, scan
from contact_register.requests.erasure.own_stores import Needles, _raw_removal, erase_own_stores, rewrite_without
from pipelines.jobs.erasure_dagster_storage import scrub_dagster
from contact_register.requests.cases import open_register, validate_identifiers
from contact_register.requests.cases.casebook import REDACTED_PREFIX
from contact_register.requests.cases.identifiers import name_key
from contact_register.requests.writeback.base import WritebackSubject, resolve_subject
from tests.test_dagster_postgres import pg_database as dagster_pg_database  # noqa: F401 - fixture
from tests.test_register import pg_database, pg_url, reg, register_url  # noqa: F401 - fixtures
from tests.conftest import demo_dagster_home

REPO = Path(__file__).resolve().parents[1]


def pick_people(warehouse: Path, count: int = 2) -> list[dict]:
    """Persons present in at least two systems (Request Tracker first), with a personal email and
    a phone no one else uses, and a name no other person's record carries (so that a name found
    after the erasure can only be a leftover)."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        owners = Counter()
        for kind, value, n in con.execute(
            """SELECT i.kind, coalesce(i.value_norm, i.value_raw), count(DISTINCT r.person_id)
               FROM person_identifiers i JOIN person_records r USING (system, record_kind, record_id)
               WHERE i.kind IN ('email', 'phone') GROUP BY ALL""").fetchall():
            owners[(kind, value)] = n
        names = Counter()
        for (value,) in con.execute("SELECT value_raw FROM person_identifiers WHERE kind = 'name' "
                                    "AND value_raw IS NOT NULL").fetchall():
            names[name_key(value)] += 1
        picked = []
        for person_id, name, emails, phones, systems in con.execute(
                "SELECT person_id, name, emails, phones, systems FROM persons WHERE len(systems) >= 2 AND len(emails) >= 1 AND len(phones) >= 1 "
                "ORDER BY list_contains(systems, 'request_tracker') DESC, len(systems) DESC, person_id"
        ).fetchall():
            own = con.execute(
                "SELECT count(*) FROM person_records r JOIN person_identifiers i USING (system, record_kind, record_id) "
                "WHERE r.person_id = ? AND i.kind = 'name'", [person_id]).fetchone()[0]
            if not name or " " not in name or names[name_key(name)] != own:
                continue
            if any(owners[("email", e)] != 1 for e in emails) or any(owners[("phone", p)] != 1 for p in phones):
                continue
            if any(e.split("@")[0] in ("info", "laskutus", "myynti", "toimisto") for e in emails):
                continue
            raw = con.execute(
                "SELECT DISTINCT i.kind, i.value_raw FROM person_records r JOIN person_identifiers i "
                "USING (system, record_kind, record_id) WHERE r.person_id = ? AND i.kind IN ('email', 'phone', 'name') "
                "AND i.value_raw IS NOT NULL", [person_id]).fetchall()
            picked.append({"person_id": person_id, "name": name, "emails": list(emails), "phones": list(phones),
                           "systems": list(systems), "raw": raw})
            if len(picked) == count:
                return picked
    finally:
        con.close()
    pytest.fail("the test world has too few persons with personal identifiers in several systems")


def needles_of(person: dict, given: dict | None = None) -> dict[str, list[str]]:
    """Every spelling of the person's identifiers: normalised, as the sources hold them, as given."""
    out = {"email": set(person["emails"]), "phone": set(), "name": {person["name"]}}
    for p in person["phones"]:
        out["phone"] |= set(phone_variants(p))
    for kind, value in person["raw"]:
        if len(value.strip()) >= 5:
            out[kind].add(value.strip())
    for kind, values in (given or {}).items():
        out[kind] |= set(values)
    return {k: sorted(v) for k, v in out.items()}


def kinds_found(findings, root: Path) -> set[tuple[str, str]]:
    """(top-level folder or file under root, needle kind) of each finding."""
    return {(Path(p.split("!", 1)[0]).relative_to(root).parts[0], kind) for p, kind, _ in findings}


@pytest.fixture
def stores(pipedrive_env, tmp_path, monkeypatch):
    home = demo_dagster_home(tmp_path / "dagster")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("REGISTER_URL", str(tmp_path / "register.sqlite"))
    monkeypatch.setenv("REGISTER_HMAC_KEY", "test-key-for-erasure")
    monkeypatch.setenv("EXPORT_DIR", str(tmp_path / "exports"))
    return tmp_path


def hold_write_lock(path: Path) -> subprocess.Popen:
    """Another process holding a raw store open for writing, as a running sync does."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time\ncon = duckdb.connect(sys.argv[1])\n"
         "print('ready', flush=True)\ntime.sleep(120)", str(path)],
        stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_erasure_leaves_no_byte_of_the_person_in_our_stores(stores, monkeypatch):
    root = stores
    raw_dir, warehouse = Path(os.environ["RAW_DIR"]), Path(os.environ["WAREHOUSE_PATH"])
    export_dir, home = Path(os.environ["EXPORT_DIR"]), Path(os.environ["DAGSTER_HOME"])
    started = time.monotonic()
    with DagsterInstance.from_config(str(home)) as instance:
        sync = defs.resolve_job_def("nightly_sync").execute_in_process(instance=instance, raise_on_error=False)
        assert sync.success, [e.event_specific_data.error.message for e in sync.all_events if e.is_step_failure]
        person, control = pick_people(warehouse)
        # The access request launched from the Launchpad with identifiers: they land in the
        # run's stored config, the register and the zip. The phone is given in national form.
        given_phone = phonenumbers.format_number(phonenumbers.parse(person["phones"][0]),
                                                 phonenumbers.PhoneNumberFormat.NATIONAL)
        config = {"emails": person["emails"][:1], "phones": [given_phone], "name": person["name"],
                  "verified_method": "id card at the front desk", "live_reads": False}
        result = execute_job(reconstructable(resolved_subject_export), instance=instance,
                             run_config={"ops": {"export_subject_data": {"config": config}}})
        assert result.success, [e.event_specific_data.error.message for e in result.all_events if e.is_step_failure]
        export_run = result.run_id
        sync_runs = {r.run_id for r in instance.get_runs() if r.job_name == "nightly_sync"}
    sync_seconds = time.monotonic() - started
    assert (home / "storage" / export_run).is_dir()  # the export step's compute logs and output
    needles = needles_of(person, {"phone": [given_phone]})
    control_needles = needles_of(control)

    # The scan sees the person everywhere before the erasure: raw stores (as rows), the
    # warehouse, the register, Dagster's storage and the export zip.
    before = kinds_found(scan([root], needles), root)
    assert {("raw", "email"), ("warehouse.duckdb", "email"), ("register.sqlite", "email"), ("dagster", "email"),
            ("exports", "email"), ("dagster", "phone")} <= before, sorted(before)

    reg = open_register()
    ids = validate_identifiers(person["emails"][:1], [given_phone], person["name"])
    case = reg.new_case("erasure", ids, actor="dpo", systems=["own_stores"])
    reg.verify(case.case_id, method="id card at the front desk", actor="dpo")
    access_case = next(c for c in reg.list_cases(status="open", kind="access"))
    con = duckdb.connect(str(warehouse), read_only=True)
    subject = resolve_subject(con, case.case_id, ids)
    con.close()
    assert subject.person_ids == [person["person_id"]]
    kwargs = dict(raw_dir=raw_dir, warehouse_path=warehouse, export_dir=export_dir, register=reg,
                  case_id=case.case_id, actor="dpo", scrub_runs=functools.partial(scrub_dagster, home))

    # A sync holding a raw store: the step reports the store busy and changes nothing in the register.
    monkeypatch.setattr(own_stores, "LOCK_WAIT_S", 1.0)
    holder = hold_write_lock(raw_dir / "pipedrive.duckdb")
    try:
        busy = erase_own_stores(subject, **kwargs)
    finally:
        holder.kill()
        holder.wait()
    assert busy.state == "failed" and "in use by another process" in busy.error
    assert reg.get(case.case_id).identifiers_obj() == ids

    t0 = time.monotonic()
    outcome = erase_own_stores(subject, **kwargs)
    erase_seconds = time.monotonic() - t0
    assert outcome.state == "done", outcome.error
    assert outcome.records > 0
    counts = dict(part.rsplit(" ", 1) for part in outcome.detail.split(", "))
    assert int(counts["exports_deleted"]) == 1 and int(counts["dagster_runs_deleted"]) == 1
    assert int(counts["register_cases"]) == 2
    for value in (*needles["email"], *needles["phone"], person["name"]):
        assert value not in outcome.detail

    # Nothing of the person in any file the project owns, in any encoding.
    leftovers = scan([root], needles)
    assert not leftovers, sorted({(Path(p).relative_to(root).as_posix(), k, e) for p, k, e in leftovers})
    # ... while the control person is still in the raw stores, the warehouse and its state.
    still = kinds_found(scan([root], control_needles), root)
    assert {("raw", "email"), ("raw", "phone"), ("raw", "name"), ("warehouse.duckdb", "email"),
            ("warehouse.duckdb", "name")} <= still, sorted(still)

    # Dagster: the export run is gone, the nightly sync runs stay.
    with DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_run_by_id(export_run) is None
        assert not (home / "storage" / export_run).exists()
        assert {r.run_id for r in instance.get_runs()} == sync_runs
    # The register keeps both cases, their states and trails; identifiers are keyed hashes.
    for cid in (case.case_id, access_case.case_id):
        kept = reg.get(cid, with_audit=True)
        assert kept.identifiers and all(v.startswith(REDACTED_PREFIX) for _, v, _ in kept.identifiers)
        assert kept.identifiers_obj().is_empty()
        actions = [a["action"] for a in kept.audit]
        assert actions[0] == "case_created" and actions[-1] == "identifiers_redacted"
    access = reg.get(access_case.case_id, with_audit=True)
    assert access.export_file is None and access.export_sha256
    assert "export_written" in [a["action"] for a in access.audit]
    # The warehouse was rebuilt without the person and still serves everyone else.
    con = duckdb.connect(str(warehouse), read_only=True)
    assert con.execute("SELECT count(*) FROM persons WHERE person_id = ?", [person["person_id"]]).fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM persons WHERE person_id = ?", [control["person_id"]]).fetchone()[0] == 1
    con.close()
    assert not list(warehouse.parent.glob("*.building-*")) and not list(raw_dir.glob("*.building-*"))

    # A second call is harmless: nothing more to remove, the control person untouched.
    again = erase_own_stores(subject, **kwargs)
    assert again.state == "done", again.error
    again_counts = dict(part.rsplit(" ", 1) for part in again.detail.split(", "))
    assert again.records == 0 and int(again_counts["exports_deleted"]) == 0
    assert int(again_counts["register_identifiers_redacted"]) == 0
    assert not scan([root], needles)
    assert ("raw", "email") in kinds_found(scan([root], control_needles), root)
    reg.close()
    print(f"\nperson in {len(person['systems'])} systems ({', '.join(person['systems'])}); "
          f"sync+export {sync_seconds:.1f}s, erase_own_stores {erase_seconds:.1f}s, {outcome.detail}")


# -- the parts on their own -------------------------------------------------------------------



PERSONS = TableSpec("persons", (("id", "BIGINT"), ("name", "VARCHAR"), ("record", "JSON")))
NOTES = TableSpec("notes", (("id", "BIGINT"), ("person_id", "BIGINT"), ("record", "JSON")))


def test_rewrite_drops_deleted_bytes_and_keeps_constraints_and_cursors(tmp_path):
    """A DELETE leaves a row's bytes in the file (shown here with compression off, so the bytes
    are visible); the rewrite leaves neither them nor the person's rows, and the store still works
    for the next sync: primary keys, cursors and other rows are kept."""
    now = datetime(2026, 11, 25, tzinfo=timezone.utc)
    with open_raw_store(tmp_path, "pipedrive") as store:
        store.con.execute("PRAGMA force_compression='uncompressed'")
        for spec in (PERSONS, NOTES):
            store.ensure(spec)
        people = [{"id": i, "name": f"Henkilö {i}", "record": f'{{"email": "h{i}@firma.fi"}}'} for i in range(1, 400)]
        people[6] = {"id": 7, "name": "Aino Aaltonen", "record": '{"email": "Aino.Aaltonen@Firma.fi"}'}
        people[8] = {"id": 9, "name": "Veikko Vanha", "record": '{"email": "veikko.vanha@firma.fi"}'}
        people[10] = {"id": 11, "name": "Saino Aaltonen", "record": '{"email": "saino.aaltonen@firma.fi"}'}  # not hers
        store.apply_page(PERSONS, people, cursor=now, now=now)
        store.apply_page(NOTES, [
            {"id": 1, "person_id": 7, "record": '{"content": "soitto"}'},  # linked by id only
            {"id": 2, "person_id": 3, "record": '{"content": "soita +358 40 123 4567"}'},  # the phone, spaced
            {"id": 3, "person_id": 3, "record": '{"content": "tilaus 04012345678"}'},  # a longer number: not hers
        ], now=now)
        store.con.execute("DELETE FROM persons WHERE id = 9")  # gone at the source: a reconciliation
        store.con.execute("CHECKPOINT")
    path = tmp_path / "pipedrive.duckdb"
    gone = {"email": ["veikko.vanha@firma.fi"]}
    assert scan([path], gone) == [(str(path), "email", "utf-8")]  # the deleted row's bytes are still there

    subject = WritebackSubject(case_id="ERA-1", identifiers=validate_identifiers(["aino.aaltonen@firma.fi"]),
                               records={"pipedrive": {"note": ["1"]}}, emails=["aino.aaltonen@firma.fi"],
                               phones=["+358401234567"])
    needles = Needles(subject.emails, subject.phones, [])
    removed = rewrite_without(path, _raw_removal("pipedrive", subject, needles))
    # Person 7 (a person row with her email, any case) and note 1 (hers, by id) go; note 2 is
    # about person 3 and only quotes her phone: it stays, with the number taken out.
    assert removed == 2
    # (Her email is still a substring of the other Aaltonen's address, so the scan looks for her name.)
    assert not scan([path], {**gone, "name": ["Aino Aaltonen"]})
    assert (str(path), "name", "duckdb-rows") in scan([path], {"name": ["Henkilö 8"]})
    assert not list(tmp_path.glob("*.building-*"))
    with open_raw_store(tmp_path, "pipedrive") as store:
        assert store.state("persons").cursor == now
        assert store.con.execute("SELECT id, CAST(record AS VARCHAR) FROM notes ORDER BY id").fetchall() == [
            (2, '{"content": "soita [erased]"}'), (3, '{"content": "tilaus 04012345678"}')]
        store.apply_page(PERSONS, [{"id": 8, "name": "Henkilö 8", "record": "{}"}], now=now)  # upsert by key
        assert store.count(PERSONS) == 397
        assert [r[0] for r in store.con.execute("SELECT id FROM persons WHERE id IN (7, 9, 11)").fetchall()] == [11]
        with pytest.raises(duckdb.ConstraintException):
            store.con.execute("INSERT INTO persons VALUES (8, 'x', '{}')")


def test_rows_of_a_removed_record_go_with_it(tmp_path):
    """Request Tracker: the person's ticket takes its people, transactions and their attachments
    along (they carry no email to be found by), other tickets keep theirs."""
    from contact_register.sync.request_tracker.sync import SPECS

    now = datetime(2026, 11, 25, tzinfo=timezone.utc)
    with open_raw_store(tmp_path, "request_tracker") as store:
        for spec in SPECS.values():
            store.ensure(spec)
        store.con.execute("CREATE TABLE ticket_people (ticket_id BIGINT, user_id BIGINT, role VARCHAR, "
                          "last_updated TIMESTAMPTZ)")
        store.con.execute("INSERT INTO tickets (id, subject) VALUES (1, 'hers'), (2, 'other')")
        store.con.execute("INSERT INTO ticket_people VALUES (1, 10, 'Requestor', NULL), (2, 11, 'Requestor', NULL)")
        store.con.execute("INSERT INTO transactions (id, ticket_id) VALUES (100, 1), (101, 1), (200, 2)")
        store.con.execute("INSERT INTO attachments (id, transaction_id, filename) VALUES "
                          "(1000, 100, 'a.pdf'), (1001, 101, 'b.pdf'), (2000, 200, 'c.pdf')")
        store.mark("tickets", cursor=now)
    subject = WritebackSubject(case_id="ERA-1", identifiers=validate_identifiers(name="Aino Aaltonen"),
                               records={"request_tracker": {"ticket": ["1"]}})
    removal = _raw_removal("request_tracker", subject, Needles([], [], []))
    path = tmp_path / "request_tracker.duckdb"
    assert rewrite_without(path, removal, order=own_stores._child_order("request_tracker")) == 1 + 1 + 2 + 2
    con = duckdb.connect(str(path), read_only=True)
    try:
        for table, column, kept in (("tickets", "id", 2), ("ticket_people", "ticket_id", 2),
                                    ("transactions", "id", 200), ("attachments", "id", 2000)):
            assert [r[0] for r in con.execute(f"SELECT {column} FROM {table}").fetchall()] == [kept], table
        assert con.execute("SELECT cursor FROM _sync_state WHERE entity = 'tickets'").fetchone()[0] == now
    finally:
        con.close()


def test_byte_scan_finds_every_encoding_and_names_no_value(tmp_path):
    (tmp_path / "a.txt").write_bytes("x MATTI.Virtanen@Yritys.fi y".encode("utf-8"))
    (tmp_path / "b.txt").write_bytes("Matti Virtanen".encode("utf-16-le"))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.txt").write_bytes("puh. 040 1234567".encode("utf-16-be"))
    with zipfile.ZipFile(tmp_path / "d.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("attachments/Matti Virtanen.txt", "matti.virtanen@yritys.fi " * 100)
    needles = {"email": ["matti.virtanen@yritys.fi"], "name": ["Matti Virtanen"], "phone": phone_variants("+358401234567")}
    found = scan([tmp_path], needles)
    assert (str(tmp_path / "a.txt"), "email", "utf-8") in found
    assert (str(tmp_path / "b.txt"), "name", "utf-16-le") in found
    assert (str(tmp_path / "sub" / "c.txt"), "phone", "utf-16-be") in found
    assert (f"{tmp_path / 'd.zip'}!member-0", "email", "utf-8") in found
    # Deflated: the zip's own bytes show the member's file name, only the member its content.
    assert [f[1] for f in found if f[0] == str(tmp_path / "d.zip")] == ["name"]
    assert not [f for f in found if f[0].startswith(str(tmp_path / "b.txt")) and f[1] == "email"]
    assert "Virtanen" not in repr(found).replace(str(tmp_path), "")
    assert scan([tmp_path / "missing"], needles) == []
    with pytest.raises(ValueError) as err:
        scan([tmp_path], {"email": ["x"]})
    assert "x" not in str(err.value).replace("text", "").replace("at least", "")


def test_redact_identifiers_keeps_the_case_and_its_trail(reg, register_url):
    ids = validate_identifiers(["Aino.Aaltonen@Firma.fi"], ["040 765 4321"], "Aino Aaltonen")
    access = reg.new_case("access", ids, actor="dpo", systems=["pipedrive"])
    case = reg.new_case("erasure", ids, actor="dpo", systems=["pipedrive"])
    reg.set_system_state(case.case_id, "pipedrive", "done", actor="dpo", records=2)
    reg.approve(case.case_id, action="erasure", actor="dpo2")  # four eyes: not the opener
    other = reg.new_case("access", validate_identifiers(["someone@else.fi"]), actor="dpo")
    assert reg.related_cases(case.case_id) == sorted([access.case_id, case.case_id])
    trail = reg.audit_trail(case.case_id)

    assert reg.redact_identifiers(case.case_id, "dpo") == 3
    kept = reg.get(case.case_id, with_audit=True)
    assert len(kept.identifiers) == 3 and all(v.startswith(REDACTED_PREFIX) and n == v for _, v, n in kept.identifiers)
    assert kept.identifiers_obj().is_empty()
    assert kept.systems["pipedrive"].state == "done" and kept.approvals
    assert kept.audit[:len(trail)] == trail and kept.audit[-1]["action"] == "identifiers_redacted"
    assert reg.redact_identifiers(case.case_id, "dpo") == 0  # again: nothing left to replace
    assert len(reg.audit_trail(case.case_id)) == len(kept.audit)
    # The keyed hashes still tie the cases together, and a new request by the same person.
    assert reg.related_cases(case.case_id) == sorted([access.case_id, case.case_id])
    assert reg.related_cases(access.case_id, by_case_keys=False) == [access.case_id]
    assert reg.related_cases(other.case_id, emails=["aino.aaltonen@firma.fi"]) == sorted(
        [access.case_id, case.case_id, other.case_id])
    reg.redact_identifiers(access.case_id, "dpo")
    if reg.kind == "sqlite":
        files = [Path(register_url), Path(register_url + "-wal")]
        assert not scan(files, {"email": ["aino.aaltonen@firma.fi"], "name": ["Aino Aaltonen", "aaltonen aino"],
                                "phone": phone_variants("+358407654321")})
        assert scan(files, {"email": ["someone@else.fi"]})
    else:
        with reg.backend.transaction() as tx:
            assert not tx.execute("SELECT 1 FROM case_identifiers WHERE value ILIKE ? OR value_norm ILIKE ?",
                                  ["%aaltonen%", "%aaltonen%"])




class ProbeConfig(Config):
    emails: list[str] = []
    name: str = ""


@op
def probe(context, config: ProbeConfig):
    context.log.info("probe ran")  # like subject_export: the identifiers live in the run config only


@job
def probe_job():
    probe()


def test_dagster_runs_with_identifiers_leave_postgres_storage(dagster_pg_database, tmp_path, monkeypatch):
    """The production instance (PostgreSQL run and event storage): the run launched with the
    person's identifiers is deleted through the API, another person's run stays."""
    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "pipelines" / "dagster.production.yaml").read_text())
    monkeypatch.setenv("DAGSTER_PG_URL", dagster_pg_database)
    people = {"aino": (["Aino.Aaltonen@Firma.fi"], "Aino Aaltonen"), "eero": (["eero.esimerkki@firma.fi"], "Eero Esimerkki")}
    with DagsterInstance.from_config(str(home)) as instance:
        runs = {}
        for who, (emails, name) in people.items():
            runs[who] = probe_job.execute_in_process(
                run_config={"ops": {"probe": {"config": {"emails": emails, "name": name}}}}, instance=instance).run_id
    counts = scrub_dagster(home, Needles(["aino.aaltonen@firma.fi"], [], ["Aino Aaltonen"]))
    assert counts["dagster_runs_deleted"] == 1 and counts["dagster_runs_busy"] == 0
    with DagsterInstance.from_config(str(home)) as instance:
        assert [r.run_id for r in instance.get_runs()] == [runs["eero"]]
    con = psycopg2.connect(dagster_pg_database.replace("postgresql+psycopg2://", "postgresql://"))
    try:
        cur = con.cursor()
        for needle, expected in (("%aaltonen%", False), ("%esimerkki%", True)):
            cur.execute("SELECT count(*) > 0 FROM runs WHERE run_body ILIKE %s", [needle])
            assert cur.fetchone()[0] == expected
        for who, expected in (("aino", False), ("eero", True)):
            cur.execute("SELECT count(*) > 0 FROM event_logs WHERE run_id = %s", [runs[who]])
            assert cur.fetchone()[0] == expected
    finally:
        con.close()


@op
def leaky_print():
    print(os.environ["PROBE_TEXT"])  # a library that prints what it was given: only the compute log holds it


@job
def leaky_job():
    leaky_print()


def make_leaky_job():
    return leaky_job


def test_a_kept_runs_compute_log_holding_an_identifier_is_deleted(tmp_path, monkeypatch):
    home = demo_dagster_home(tmp_path / "dagster")
    monkeypatch.setenv("PROBE_TEXT", "yhteys: Aino.Aaltonen@firma.fi, 040 765 4321")
    # Each step in its own process, so that its output is captured as a compute log.
    recon = build_reconstructable_job("tests.test_erasure_own_stores", "make_leaky_job")
    with DagsterInstance.from_config(str(home)) as instance:
        leaky = execute_job(recon, instance=instance).run_id
        monkeypatch.setenv("PROBE_TEXT", "yhteys: eero.esimerkki@firma.fi")
        other = execute_job(recon, instance=instance).run_id
    needles = Needles(["aino.aaltonen@firma.fi"], ["+358407654321"], [])
    assert {Path(p).relative_to(home).parts[1] for p, _, _ in scan([home], needles.for_scan())} == {leaky}
    counts = scrub_dagster(home, needles)
    assert counts["dagster_runs_deleted"] == 0 and counts["dagster_log_files_deleted"] >= 1
    assert not scan([home], needles.for_scan())
    assert scan([home / "storage" / other], {"email": ["eero.esimerkki@firma.fi"]})
    with DagsterInstance.from_config(str(home)) as instance:
        assert {r.run_id for r in instance.get_runs()} == {leaky, other}  # the runs themselves stay
