"""Request Tracker against a real RT 5 (the session fixture `request_tracker` starts and seeds it).

The RT is shared by the whole session (other modules erase and plant people in it), so no test
assumes an id or what an earlier test left: each looks its records up or plants its own. The
erasure tests come last in this module because they change RT.
"""

import base64
import csv
import quopri
import re
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import psutil
import pytest
import requests

from contact_register.sync.raw_store import open_raw_store
from contact_register.sync.request_tracker.sync import sync_request_tracker
from connectors.errors import AuthError, BadRequestError, NotFoundError, RetryableError
from connectors.request_tracker import RequestTrackerClient
from contact_register.requests.erasure.request_tracker import ErasurePolicy, erase
from connectors.http import RetryPolicy
from sandbox.request_tracker import _mime, free_port
from sandbox.request_tracker_world import Attachment, Message, RtUser

REPO = Path(__file__).resolve().parents[1]
COMPARE = {
    "users": "id, name, email, real_name, organization, phones, privileged, disabled, last_updated, record",
    "tickets": "id, subject, status, queue, creator_id, requestor_ids, cc_ids, admincc_ids, last_updated, record",
    "transactions": "id, ticket_id, type, field, creator_id, created",
    "attachments": "id, transaction_id, content_type, filename, content_length, creator_id, created",
}


@pytest.fixture
def client(request_tracker):
    c = RequestTrackerClient(request_tracker.url, user=request_tracker.user, password=request_tracker.password,
                             page_size=7, admin=request_tracker.admin_tools())
    yield c
    c.close()


def snapshot(raw_dir) -> dict:
    with open_raw_store(raw_dir, "request_tracker") as store:
        out = {t: store.con.execute(f"SELECT {cols} FROM {t} ORDER BY id").fetchall() for t, cols in COMPARE.items()}
        out["ticket_people"] = store.con.execute("SELECT * FROM ticket_people ORDER BY ALL").fetchall()
    return out


def run_sync(client, raw_dir, **kw):
    with open_raw_store(raw_dir, "request_tracker") as store:
        return sync_request_tracker(client, store, **kw)


def gateway(rt, raw: bytes) -> None:
    r = requests.post(f"{rt.url}/REST/1.0/NoAuth/mail-gateway",
                      data={"queue": "General", "action": "correspond", "message": raw}, timeout=60)
    assert r.text.startswith("ok"), r.text[:80]


def test_full_sync_matches_rt(client, tmp_path):
    result = run_sync(client, tmp_path)
    assert result.entities["tickets"].mode == "full"
    live_users = {i for page in client.iter_ids("users") for i in page}
    live_tickets = {i for page in client.iter_ids("tickets") for i in page}
    with open_raw_store(tmp_path, "request_tracker") as store:
        assert {r[0] for r in store.con.execute("SELECT id FROM users").fetchall()} == live_users
        assert {r[0] for r in store.con.execute("SELECT id FROM tickets").fetchall()} == live_tickets
        # As many as RT itself counts (the session's RT is shared: other modules shred and plant).
        assert len(live_tickets) == client._json("GET", "tickets", params={"query": "id > 0", "per_page": 1})["total"] > 0
        # Every ticket's requestors as REST2 reports them, one ticket_people row each. (The
        # oldest live ticket: the session's RT is shared, other modules may have shredded #1.)
        first = min(live_tickets)
        ticket = client._json("GET", f"ticket/{first}")
        want = {p["id"] for p in ticket["Requestor"]}  # single records name users by Name
        got = {r[0] for r in store.con.execute(
            "SELECT u.name FROM ticket_people tp JOIN users u ON u.id = tp.user_id "
            "WHERE tp.ticket_id = ? AND tp.role = 'Requestor'", [first]).fetchall()}
        assert got == want and got
        n_txn = store.con.execute("SELECT count(*) FROM transactions").fetchone()[0]
        total = client._json("POST", "transactions", params={"per_page": 1},
                             body=[{"field": "ObjectType", "value": "RT::Ticket"}])["total"]
        assert n_txn == total
        assert store.con.execute("SELECT count(*) FROM attachments WHERE filename = 'liite.pdf'").fetchone()[0] > 0
        assert store.con.execute("SELECT count(*) FROM _rejects").fetchone()[0] == 0


def test_idle_incremental_reads_nothing_new(client, tmp_path):
    run_sync(client, tmp_path)
    before = snapshot(tmp_path)
    result = run_sync(client, tmp_path)
    assert result.entities["transactions"].upserted == 0
    assert result.entities["attachments"].upserted == 0
    assert snapshot(tmp_path) == before


def malformed_mail(email: str, real_name: str) -> bytes:
    """A customer's first mail that RT must take apart: undeclared 8-bit Latin-1 text, a 3 MB
    binary, a PDF whose base64 is broken, MIME without its closing boundary."""
    author = RtUser(0, "x", email, real_name, None, None)
    weird = Message(0, "Liitteenä lokit ja kuvakaappaus, ääkköset latin-1:nä.", False,
                    (Attachment("iso.bin", "application/octet-stream", 3_000_000, "binary"),
                     Attachment("rikki.pdf", "application/pdf", 5000, "bad-base64")),
                    "undeclared-8bit", True)
    return _mime(author, [], "Rikkinäinen viesti \udcff", None, weird.body, weird)


def test_incremental_sync_is_exact_with_malformed_mail(client, request_tracker, tmp_path):
    run_sync(client, tmp_path / "inc")
    time.sleep(1.1)  # RT's clock has one-second resolution; the cursor is inclusive
    gateway(request_tracker, malformed_mail("Outi.Oudoste@Example.FI", "Outi Oudoste"))
    result = run_sync(client, tmp_path / "inc")
    assert result.entities["tickets"].mode == "incremental"
    assert 1 <= result.entities["tickets"].upserted < 10
    run_sync(client, tmp_path / "full")
    assert snapshot(tmp_path / "inc") == snapshot(tmp_path / "full")
    with open_raw_store(tmp_path / "inc", "request_tracker") as store:
        assert store.con.execute(
            "SELECT count(*) FROM users WHERE lower(email) = 'outi.oudoste@example.fi'").fetchone()[0] == 1
        assert store.con.execute(
            "SELECT max(content_length) FROM attachments WHERE filename = 'iso.bin'").fetchone()[0] >= 2_000_000


def test_export_subject_has_correspondence_and_files(client, request_tracker):
    gateway(request_tracker, malformed_mail("Eino.Erikoinen@Example.FI", "Eino Erikoinen"))
    user = next(u for page in client.iter_users() for u in page if str(u.get("EmailAddress", "")).lower()
                == "eino.erikoinen@example.fi")
    package = client.export_subject(user["EmailAddress"].upper())
    assert [u["id"] for u in package["users"]] == [user["id"]]
    assert len(package["tickets"]) == 1
    atts = package["tickets"][0]["attachments"]
    texts = [base64.b64decode(a["content_base64"]).decode("utf-8", "replace") for a in atts
             if (a["content_type"] or "").startswith("text/plain")]
    assert any("kuvakaappaus" in t for t in texts)
    assert any(a["filename"] == "iso.bin" and len(base64.b64decode(a["content_base64"])) == 3_000_000 for a in atts)


def test_token_auth(client, request_tracker):
    token = request_tracker.create_token()
    with RequestTrackerClient(request_tracker.url, token=token) as c:
        assert sum(len(p) for p in c.iter_ids("tickets")) == sum(len(p) for p in client.iter_ids("tickets")) > 0
    with RequestTrackerClient(request_tracker.url, token=token[:-4] + "0000") as c, pytest.raises(AuthError):
        next(c.iter_ids("tickets"))


def test_errors_map_into_the_shared_tree(client, request_tracker):
    bad = RequestTrackerClient(request_tracker.url, user="root", password="wrong")
    with pytest.raises(AuthError):
        next(bad.iter_tickets())
    with pytest.raises(NotFoundError):
        client._json("GET", "ticket/999999")
    with pytest.raises(BadRequestError):
        next(client._collection("tickets", params={"query": "Nonsense ((( = '"}))
    down = RequestTrackerClient(f"http://127.0.0.1:{free_port()}", user="root", password="x",
                                retry=RetryPolicy(max_attempts=2, backoff_base_s=0.01, backoff_max_s=0.01))
    with pytest.raises(RetryableError):
        next(down.iter_users())
    assert client.marketing_ban("a@b.fi")["status"] == "not_applicable"


def test_warehouse_joins_support_users_and_their_tickets(client, tmp_path):
    import duckdb
    from contact_register.warehouse.build import build_warehouse

    run_sync(client, tmp_path / "raw")
    build_warehouse(tmp_path / "raw", tmp_path / "wh.duckdb", systems=["request_tracker"])
    con = duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True)
    with open_raw_store(tmp_path / "raw", "request_tracker") as store:
        customers = store.con.execute(
            "SELECT count(*) FROM users WHERE NOT privileged AND name NOT IN ('RT_System', 'Nobody')").fetchone()[0]
    staged = con.execute("SELECT count(*) FROM staging.request_tracker_persons").fetchone()[0]
    assert staged == customers > 0
    # root is staff: a member of the Privileged group, not a support contact. Its id differs
    # between RT releases' initial data, so it is looked up by name.
    root_id = str(client._json("GET", "user/root")["id"])
    with open_raw_store(tmp_path / "raw", "request_tracker") as store:
        assert store.con.execute("SELECT count(*) FROM users WHERE id = ?", [int(root_id)]).fetchone()[0] == 1
    assert con.execute("SELECT count(*) FROM staging.request_tracker_persons WHERE record_id = ?",
                       [root_id]).fetchone()[0] == 0
    linked = con.execute(
        "SELECT count(DISTINCT record_id) FROM person_records WHERE system = 'request_tracker' AND record_kind = 'user'").fetchone()[0]
    assert linked == staged
    tickets = con.execute(
        "SELECT count(DISTINCT record_id) FROM person_records WHERE system = 'request_tracker' AND record_kind = 'ticket'").fetchone()[0]
    with open_raw_store(tmp_path / "raw", "request_tracker") as store:
        customer_tickets, customer_links = store.con.execute(
            "SELECT count(DISTINCT tp.ticket_id), count(DISTINCT (tp.user_id, tp.ticket_id)) FROM ticket_people tp "
            "JOIN users u ON u.id = tp.user_id WHERE NOT u.privileged").fetchone()
    assert tickets == customer_tickets > 0  # every ticket with a customer on it is linked to them
    assert con.execute("SELECT count(*) FROM staging.request_tracker_person_links").fetchone()[0] == customer_links
    con.close()


# -- erasure ----------------------------------------------------------------------------------


def whole(needle: str) -> re.Pattern:
    """The needle as a whole word, case-insensitive: "Anna Laine" must not match inside
    another person's "Hanna Laine"."""
    return re.compile(r"(?<![\w.+-])" + re.escape(needle) + r"(?![\w-])", re.IGNORECASE)


def db_traces(database, needles) -> list[str]:
    """Tables/columns of RT's SQLite file that still hold any needle (case-insensitive, whole
    words), with attachment content decoded (RT stores it base64 or quoted-printable)."""
    con = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    found = []
    patterns = [whole(n) for n in needles]
    for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
        cols = [c[1] for c in con.execute(f'PRAGMA table_info("{table}")').fetchall()]
        for row in con.execute(f'SELECT * FROM "{table}"'):
            record = dict(zip(cols, row))
            for col, value in record.items():
                if value is None or isinstance(value, (int, float)):
                    continue
                raw = value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogatepass")
                texts = [raw]
                if table == "Attachments" and col == "Content":
                    enc = record.get("ContentEncoding")
                    try:
                        texts.append(base64.b64decode(raw) if enc == "base64" else quopri.decodestring(raw))
                    except ValueError:
                        pass
                for t in texts:
                    for codec in ("utf-8", "latin-1"):
                        if any(p.search(t.decode(codec, "replace")) for p in patterns):
                            found.append(f"{table}.{col}")
    con.close()
    return sorted(set(found))


def pick_person(client, *, shared: bool):
    """A seeded customer with a real name who has a ticket of their own and (if asked) a
    ticket shared with someone else."""
    for page in client.iter_users():
        for u in page:
            if str(u.get("Privileged")) == "1" or not u.get("RealName") or "@" not in str(u.get("EmailAddress")):
                continue
            tickets = client.tickets_of_user(int(u["id"]))
            others = [t for t in tickets if {int(p["id"]) for r in ("Requestor", "Cc") for p in t.get(r) or []} - {int(u["id"])}]
            if tickets and bool(others) == shared:
                return u, tickets
    pytest.skip("the seeded world has no such person")


@pytest.mark.parametrize("policy", ["scrub", "shred_own"])
def test_erasure_leaves_no_trace_in_rest2_or_database(client, request_tracker, tmp_path, policy):
    run_sync(client, tmp_path)
    user, tickets = pick_person(client, shared=True)
    email, name = user["EmailAddress"], user["RealName"]
    assert db_traces(request_tracker.database, [email, name])  # the check can see them
    dump_dir = request_tracker.folder / "shredder"
    report = erase(client, email.upper(), policy=ErasurePolicy(shared_tickets=policy, sqldump_dir=str(dump_dir)))
    assert report.status == "done" and report.verified, report
    assert report.shared_tickets, report
    assert client.find_users(email) == []
    with pytest.raises(NotFoundError):
        client._json("GET", f"user/{user['id']}")
    traces = db_traces(request_tracker.database, [email, name])
    assert traces == [], (traces, report)
    # Not even in free pages: Debian's SQLite (which RT uses) runs with secure_delete on.
    data = request_tracker.database.read_bytes().decode("utf-8", "replace")
    assert not whole(email).search(data), "e-mail bytes in the file"
    assert not whole(name).search(data), "name bytes in the file"
    assert list(dump_dir.glob("*.sql")) == []  # the undo files held the person: deleted
    # Shared tickets survive for the other people; tickets only about this person are gone.
    for tid in report.shared_tickets:
        assert client._json("GET", f"ticket/{tid}")["id"]
    for tid in report.solo_tickets:
        with pytest.raises(NotFoundError):
            client._json("GET", f"ticket/{tid}")
    # The next sync (reconciling) drops the person and their solo tickets from the raw store.
    result = run_sync(client, tmp_path, reconcile_every=timedelta(0))
    assert result.entities["users"].reconciled_deleted >= 1, result.entities["users"]
    with open_raw_store(tmp_path, "request_tracker") as store:
        assert store.con.execute("SELECT count(*) FROM users WHERE id = ?", [int(user["id"])]).fetchone()[0] == 0
        assert store.con.execute("SELECT count(*) FROM ticket_people WHERE user_id = ?", [int(user["id"])]).fetchone()[0] == 0
    # Twice is harmless.
    assert erase(client, email).status == "not_found"


def test_erasure_keeps_the_person_off_every_command_line(client):
    """rt-shredder and rt-munge-attachments run while a watcher reads every process's command
    line (what `ps`, /proc and sudo's log show): the person's e-mail and name are never there."""
    user, _ = pick_person(client, shared=True)
    email, name = user["EmailAddress"], user["RealName"]
    needles = [email.casefold(), name.casefold()]
    seen_tools: list[str] = []
    leaks: set[int] = set()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for proc in psutil.process_iter(["cmdline"]):
                line = " ".join(proc.info["cmdline"] or [])
                if "rt-munge-attachments" in line or "rt-shredder" in line:
                    seen_tools.append(line)
                if any(n in line.casefold() for n in needles):
                    leaks.add(proc.pid)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        report = erase(client, email, names=[name], policy=ErasurePolicy(shared_tickets="scrub"))
    finally:
        stop.set()
        watcher.join()
    assert report.status == "done" and report.shared_tickets, report
    assert any("rt-munge-attachments" in line for line in seen_tools)  # the watcher saw the tools run
    assert not leaks, f"the person's identifiers were on the command lines of {len(leaks)} processes"


def test_erasure_of_unknown_person_is_not_found(client):
    assert erase(client, "ei.ketaan@example.invalid").status == "not_found"
    assert erase(client, "   ").status == "not_found"


def test_erasure_dry_run_changes_nothing(client, request_tracker):
    user, tickets = pick_person(client, shared=False)
    report = erase(client, user["EmailAddress"], dry_run=True)
    assert report.status == "dry_run" and report.solo_tickets
    assert client.find_users(user["EmailAddress"])


def test_bulk_seeded_database_is_written_by_rt_and_cached(tmp_path):
    """The benchmark's seed (RT's own code in one process, before rt-server starts) stores what
    the world says, is reused from the cache, and a real RT started on it serves it to the sync."""
    from sandbox.request_tracker import RequestTracker, seeded_database
    from sandbox.request_tracker_world import derive
    from sandbox.world import World

    world = World.generate(seed=5, persons=30, organizations=6)
    rw = derive(world, users=20, tickets=30)
    cache = tmp_path / "cache"
    db, summary = seeded_database(world, users=20, tickets=30, cache_dir=cache)
    messages = sum(len(t.messages) for t in rw.tickets)
    assert (summary["tickets"], summary["messages"]) == (30, messages)
    assert summary["users"] == sum(u.real_name is not None for u in rw.users)
    con = sqlite3.connect(db)
    try:
        q = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
        assert q("SELECT count(*) FROM Tickets WHERE Type = 'ticket'") == 30
        assert q("SELECT count(*) FROM Transactions WHERE ObjectType = 'RT::Ticket' "
                 "AND Type IN ('Create', 'Correspond')") == messages
        assert q("SELECT count(*) FROM Transactions WHERE Type = 'EmailRecord'") > 0  # RT's scrips ran
        assert q("""SELECT count(*) FROM GroupMembers AS m JOIN Groups AS g ON g.id = m.GroupId
                    WHERE g.Domain = 'RT::Ticket-Role' AND g.Name = 'Cc'""") == sum(len(t.ccs) for t in rw.tickets)
        assert q("SELECT count(*) FROM Attachments WHERE Filename IN ('loki.txt', 'kuvakaappaus.png', 'liite.pdf')") \
            == sum(len(m.attachments) for t in rw.tickets for m in t.messages)
        stored = {r[0] for r in con.execute("SELECT lower(EmailAddress) FROM Users WHERE EmailAddress IS NOT NULL")}
        assert {u.email.lower() for u in rw.users} <= stored  # nameless users learnt from their mail
        assert q("SELECT count(*) FROM Attachments WHERE Subject LIKE '%__RT_TICKET_ID__%'") == 0
    finally:
        con.close()
    started = time.monotonic()
    assert seeded_database(world, users=20, tickets=30, cache_dir=cache) == (db, summary)
    assert time.monotonic() - started < 5  # reused, not seeded again
    assert sorted(p.suffix for p in cache.iterdir()) == [".db", ".json"]
    with RequestTracker.start(database=db) as rt:
        c = RequestTrackerClient(rt.url, user=rt.user, password=rt.password)
        try:
            result = run_sync(c, tmp_path / "raw")
        finally:
            c.close()
    assert result.entities["tickets"].rows == 30
    assert result.entities["users"].rows >= len(rw.users)


# -- the sandbox's command line and the demo --------------------------------------------------


def test_two_served_rts_keep_their_own_state_files(tmp_path):
    """`serve` twice with different --state-file: `env` and `stop` act on the RT of the state
    file they are given, never on the other one."""
    cmd = [sys.executable, "-m", "sandbox.request_tracker"]
    states = [tmp_path / "a.json", tmp_path / "b.json"]
    servers = [subprocess.Popen(cmd + ["serve", "--persons", "6", "--users", "2", "--tickets", "1",
                                       "--state-file", str(s)], cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for s in states]
    try:
        for server, state in zip(servers, states):
            while not state.exists():  # written once the RT answers and is seeded
                assert server.poll() is None, "serve exited before it wrote its state file"
                time.sleep(0.5)
        env = {}
        for state in states:
            out = subprocess.run(cmd + ["env", "--state-file", str(state)], cwd=REPO, capture_output=True,
                                 text=True, check=True).stdout
            env[state] = dict(line.split("=", 1) for line in out.splitlines())
        url_a, url_b = env[states[0]]["RT_URL"], env[states[1]]["RT_URL"]
        assert url_a != url_b
        subprocess.run(cmd + ["stop", "--state-file", str(states[0])], cwd=REPO, check=True)
        assert servers[0].wait(timeout=60) == 0
        assert not states[0].exists()
        # The other RT still serves, and its state still names it.
        assert requests.get(f"{url_b}/REST/2.0/rt", auth=("root", "password"), timeout=10).status_code == 200
        out = subprocess.run(cmd + ["env", "--state-file", str(states[1])], cwd=REPO, capture_output=True,
                             text=True, check=True).stdout
        assert f"RT_URL={url_b}" in out.splitlines()
        gone = subprocess.run(cmd + ["env", "--state-file", str(states[0])], cwd=REPO, capture_output=True, text=True)
        assert gone.returncode == 1 and str(states[0]) in gone.stderr
    finally:
        for server in servers:
            if server.poll() is None:
                server.terminate()
                server.wait(timeout=60)


def test_sandbox_truth_describes_the_demo_rt(tmp_path, monkeypatch):
    """The demo seeds RT from the world its sandbox serves: every RT user the demo's RT holds
    (but RT's own and staff) is a request_tracker record of `python -m sandbox truth`. (A world
    smaller than the default, set the way an operator sets it, keeps the test quick.)"""
    from sandbox import demo

    for size in ("SEED", "DEALS", "ACTIVITIES", "NOTES"):
        monkeypatch.delenv(f"SANDBOX_{size}", raising=False)
    monkeypatch.setenv("SANDBOX_PERSONS", "60")
    monkeypatch.setenv("SANDBOX_ORGANIZATIONS", "12")
    monkeypatch.chdir(tmp_path)  # the demo keeps its files under data/ of the working folder
    sandbox = demo.start_sandbox()
    try:
        rt = demo.start_request_tracker()
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=30)
    try:
        with RequestTrackerClient(rt.url, user=rt.user, password=rt.password) as c:
            staff = c.privileged_user_ids()
            held = {str(u["EmailAddress"]).strip().lower() for page in c.iter_users() for u in page
                    if int(u["id"]) not in staff and u.get("Name") not in ("RT_System", "Nobody")}
    finally:
        rt.stop()
    subprocess.run([sys.executable, "-m", "sandbox", "truth", str(tmp_path / "truth.csv")], cwd=REPO, check=True)
    with open(tmp_path / "truth.csv", newline="", encoding="utf-8") as f:
        truth = {row["record_id"] for row in csv.DictReader(f) if row["system"] == "request_tracker"}
    assert len(held) >= 15
    assert held - truth == set(), f"{len(held - truth)} of the demo RT's {len(held)} users are not in the truth"
