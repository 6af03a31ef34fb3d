"""The warehouse build: persons from the raw stores, atomic publish under a live reader."""

import subprocess
import sys
import threading
import time

import duckdb
import pytest

from contact_register.warehouse.build import build_warehouse
from contact_register.warehouse.normalize import normalize_email, normalize_phone
from tests.test_pipedrive_sync import run_sync


def test_normalisers():
    assert normalize_email("  Matti.Virtanen@Yritys.FI ") == "matti.virtanen@yritys.fi"
    assert normalize_email("<anna@x.fi>") == "anna@x.fi"
    assert normalize_email("x@y") is None
    assert normalize_email("' OR 1=1 --") is None
    assert normalize_email("a" * 400 + "@x.fi") is None
    for written in ("+358 40 123 4567", "040-1234567", "0401234567", "040 123 4567", "+358401234567"):
        assert normalize_phone(written) == "+358401234567"
    assert normalize_phone("123") is None
    assert normalize_phone("not a phone") is None


def test_build_links_by_email_and_publishes(sandbox, tmp_path, client):
    pd = sandbox.pipedrive
    # Two records of one human (address in different case) and two people sharing laskutus@.
    a = client.create("persons", {"name": "Ville Väisänen", "emails": [{"value": "Ville.Vaisanen@Testi.fi"}]})
    b = client.create("persons", {"name": "Väisänen Ville", "emails": [{"value": " ville.vaisanen@testi.fi "}],
                                  "phones": [{"value": "040-1112223"}]})
    c = client.create("persons", {"name": "Liisa Laine", "emails": [{"value": "laskutus@testi.fi"}]})
    d = client.create("persons", {"name": "Pekka Pyy", "emails": [{"value": "LASKUTUS@testi.fi"}]})
    run_sync(sandbox, tmp_path / "raw")
    wh = tmp_path / "wh.duckdb"
    result = build_warehouse(tmp_path / "raw", wh)
    assert wh.exists() and not list(tmp_path.glob("wh.duckdb.building*"))
    con = duckdb.connect(str(wh), read_only=True)

    def person_of(pid):
        return con.execute(
            "SELECT person_id FROM person_records WHERE system = 'pipedrive' AND record_kind = 'person' AND record_id = ?",
            [str(pid)],
        ).fetchone()[0]

    assert person_of(a["id"]) == person_of(b["id"])
    assert person_of(c["id"]) != person_of(d["id"])
    row = con.execute("SELECT emails, phones, source_records FROM persons WHERE person_id = ?", [person_of(a["id"])]).fetchone()
    assert row == (["ville.vaisanen@testi.fi"], ["+358401112223"], 2)
    # Every live person record belongs to exactly one person.
    n_records = con.execute("SELECT count(*), count(DISTINCT record_id) FROM person_records WHERE record_kind = 'person'").fetchone()
    assert n_records[0] == n_records[1] == len(pd.live_ids("persons"))
    # Deals, activities and notes are attached to their person.
    kinds = {r[0] for r in con.execute("SELECT DISTINCT record_kind FROM person_records").fetchall()}
    assert {"person", "deal", "activity", "note"} <= kinds
    assert result.persons == con.execute("SELECT count(*) FROM persons").fetchone()[0]
    assert con.execute("SELECT count(*) FROM raw_pipedrive.persons").fetchone()[0] == len(pd.live_ids("persons"))
    con.close()


def test_reader_keeps_working_while_a_sync_publishes(sandbox, tmp_path, client):
    raw, wh = tmp_path / "raw", tmp_path / "wh.duckdb"
    run_sync(sandbox, raw)
    build_warehouse(raw, wh)
    reader = duckdb.connect(str(wh), read_only=True)
    before = reader.execute("SELECT count(*) FROM persons").fetchone()[0]
    client.create("persons", {"name": "Uusi Henkilö", "emails": [{"value": "uusi.henkilo@example.fi"}]})

    errors, reads = [], []
    stop = threading.Event()

    def keep_reading():
        while not stop.is_set():
            try:
                reads.append(reader.execute("SELECT count(*), sum(source_records) FROM persons").fetchone())
            except Exception as exc:  # noqa: BLE001 - any error is a failure of the test
                errors.append(exc)
            time.sleep(0.005)

    t = threading.Thread(target=keep_reading)
    t.start()
    try:
        run_sync(sandbox, raw)
        build_warehouse(raw, wh)
        # Another analyst (another process: DuckDB shares one instance per file within a
        # process) connecting after the publish sees the new file.
        after = int(subprocess.run(
            [sys.executable, "-c", "import duckdb, sys; "
             "print(duckdb.connect(sys.argv[1], read_only=True).execute('SELECT count(*) FROM persons').fetchone()[0])",
             str(wh)],
            check=True, capture_output=True, text=True,
        ).stdout)
    finally:
        stop.set()
        t.join()
    assert not errors
    assert len(reads) > 10 and all(r[0] == before for r in reads)  # the old snapshot, consistently
    assert after == before + 1
    reader.close()


def test_failed_build_leaves_published_file_alone(sandbox, tmp_path):
    raw, wh = tmp_path / "raw", tmp_path / "wh.duckdb"
    run_sync(sandbox, raw)
    build_warehouse(raw, wh)
    published = wh.read_bytes()
    with pytest.raises(FileNotFoundError):
        build_warehouse(tmp_path / "no-such-raw", wh)
    assert wh.read_bytes() == published
    assert not list(tmp_path.glob("wh.duckdb.building*"))
