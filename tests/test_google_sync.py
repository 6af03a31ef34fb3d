"""Google Workspace sync over real HTTP against the sandbox: full = sandbox content, idle
incremental is cheap, changes arrive, expired cursors resync one user, malformed headers are
stored or reported. Faults: tests/test_faults.py."""

import json

import duckdb
import pytest

from contact_register.sync.google.sync import sync_google
from contact_register.sync.raw_store import open_raw_store
from contact_register.warehouse.build import build_warehouse
from connectors.google_workspace import GoogleWorkspaceClient, settings_from_env
from sandbox.google_world import address_id
from sandbox.server import Sandbox
from sandbox.world import World
from tests.conftest import SMALL_WORLD


def make_google_client(sb, **kw) -> GoogleWorkspaceClient:
    opts = dict(timeout_s=2.0, backoff_base_s=0.01, backoff_max_s=0.05, max_attempts=8, page_size=50)
    opts.update(kw)
    return GoogleWorkspaceClient(settings_from_env(sb.env(), **opts))


def sync(sb, raw_dir, client=None):
    client = client or make_google_client(sb)
    with open_raw_store(raw_dir, "google") as store:
        return sync_google(client, store)


def expected(g) -> dict:
    """What the sandbox holds, in the shapes compared below."""
    ids = {u["primaryEmail"]: u["id"] for u in g.users}
    out = {"messages": {}, "events": {}, "files": {}, "contacts": set()}
    for email, box in g.mail.items():
        for mid, m in box["messages"].items():
            out["messages"][f"{ids[email]}:{mid}"] = (tuple(sorted(m["labelIds"])), len(m["headers"]))
    for email, cal in g.cal.items():
        for eid, ev in cal["events"].items():
            if ev["status"] != "cancelled":
                out["events"][f"{ids[email]}:{eid}"] = tuple(sorted(a["email"] for a in ev.get("attendees", [])))
    for fid, f in g.files.items():
        if not f["_removed"]:
            out["files"][fid] = tuple(sorted(p["id"] for p in f["permissions"]))
    for email, box in g.people.items():
        out["contacts"] |= {f"contact:{ids[email]}/{rn}" for rn in box["connections"]}
        out["contacts"] |= {f"other_contact:{ids[email]}/{rn}" for rn in box["other"]}
    return out


def stored(raw_dir) -> dict:
    con = duckdb.connect(str(raw_dir / "google.duckdb"), read_only=True)
    try:
        out = {"messages": {r[0]: (tuple(sorted(r[1])), len(json.loads(r[2])))
                            for r in con.execute("SELECT id, label_ids, headers FROM gmail_messages").fetchall()},
               "events": {r[0]: tuple(sorted(r[1])) for r in con.execute(
                   "SELECT e.id, list(a.email) FILTER (WHERE a.email IS NOT NULL) FROM calendar_events e "
                   "LEFT JOIN calendar_attendees a ON a.event_key = e.id GROUP BY e.id").fetchall()},
               "files": {r[0]: tuple(sorted(r[1])) for r in con.execute(
                   "SELECT f.id, list(p.permission_id) FILTER (WHERE p.permission_id IS NOT NULL) FROM drive_files f "
                   "LEFT JOIN drive_permissions p ON p.file_id = f.id GROUP BY f.id").fetchall()},
               "contacts": {r[0] for r in con.execute("SELECT id FROM contacts").fetchall()}}
    finally:
        con.close()
    return out


def assert_equal_to_sandbox(g, raw_dir):
    want, got = expected(g), stored(raw_dir)
    for kind in want:
        assert got[kind] == want[kind], kind


def api_of(route: str) -> str:
    path = route.split(" ", 1)[1]
    for prefix, api in (("/gmail/", "gmail"), ("/batch/gmail", "gmail"), ("/calendar/", "calendar"),
                        ("/drive/", "drive"), ("/v1/", "people"), ("/admin/", "directory"), ("/token", "token")):
        if path.startswith(prefix):
            return api
    return path


def requests_per_api(g) -> dict[str, int]:
    out: dict[str, int] = {}
    for route, n in g.requests_by_route().items():
        out[api_of(route)] = out.get(api_of(route), 0) + n
    return out


def test_full_sync_equals_sandbox_and_idle_incremental_is_cheap(google_sandbox, tmp_path):
    g = google_sandbox.google
    result = sync(google_sandbox, tmp_path)
    assert result.users == len(g.users) >= 2
    assert all(r.full_users == len(g.users) for r in result.apis.values())
    assert_equal_to_sandbox(g, tmp_path)
    assert g.batched_calls >= sum(len(b["messages"]) for b in g.mail.values())
    # A fresh client (as in a new nightly run): tokens once per user, then at most 2 per user per API.
    g.reset_stats()
    result = sync(google_sandbox, tmp_path)
    users = len(g.users)
    per_api = requests_per_api(g)
    assert all(r.incremental_users == users for r in result.apis.values())
    assert all(r.upserted == 0 and r.deleted == 0 for r in result.apis.values())  # idle writes nothing
    for api in ("gmail", "calendar", "drive", "people"):
        assert per_api[api] <= 2 * users, (api, per_api)
    assert per_api["directory"] == 1
    assert per_api["token"] <= users + 1
    assert_equal_to_sandbox(g, tmp_path)


def test_additions_changes_and_deletions_between_syncs(google_sandbox, tmp_path):
    g = google_sandbox.google
    sync(google_sandbox, tmp_path)
    alice, bob = g.user_emails()[:2]
    new_mid = g.add_message(alice, [("From", "Uusi Henkilö <uusi.henkilo@esimerkki.fi>"), ("To", alice),
                                    ("Subject", "Hei"), ("Date", "Tue, 3 Nov 2026 10:00:00 +0200")])
    old = sorted(g.mail[alice]["messages"])[:2]
    g.delete_message(alice, old[0])
    g.relabel(alice, old[1], add=("STARRED",))
    ev = next(iter(g.cal[bob]["events"].values()))
    g.put_event(bob, {"id": "evnew1", "summary": "Uusi", "start": {"dateTime": "2026-11-03T10:00:00Z"},
                      "organizer": {"email": bob}, "attendees": [{"email": bob}, {"email": "vieras@esimerkki.fi"}]})
    g.cancel_event(bob, ev["id"])
    files = g.live_files(alice)
    g.remove_file(files[0]["id"])
    g.put_file(alice, {"id": "filenew1", "name": "uusi.docx", "mimeType": "text/plain", "permissions": [
        {"id": "p1", "type": "user", "role": "owner", "emailAddress": alice},
        {"id": "p2", "type": "user", "role": "reader", "emailAddress": "vieras@esimerkki.fi"}]})
    rn = next(iter(g.people[bob]["connections"]))
    g.delete_contact(bob, rn)
    g.put_contact(bob, {"resourceName": "people/cnew1", "names": [{"displayName": "Uusi Kontakti"}],
                        "emailAddresses": [{"value": "uusi.kontakti@esimerkki.fi"}]})
    result = sync(google_sandbox, tmp_path)
    assert all(r.resyncs == 0 for r in result.apis.values())
    assert_equal_to_sandbox(g, tmp_path)
    got = stored(tmp_path)
    uid = {u["primaryEmail"]: u["id"] for u in g.users}
    assert f"{uid[alice]}:{new_mid}" in got["messages"]
    assert f"{uid[alice]}:{old[0]}" not in got["messages"]
    assert "STARRED" in got["messages"][f"{uid[alice]}:{old[1]}"][0]
    assert f"{uid[bob]}:evnew1" in got["events"] and f"{uid[bob]}:{ev['id']}" not in got["events"]
    assert "filenew1" in got["files"] and files[0]["id"] not in got["files"]
    assert f"contact:{uid[bob]}/people/cnew1" in got["contacts"]
    assert f"contact:{uid[bob]}/{rn}" not in got["contacts"]


def test_expired_cursors_resync_only_that_user(google_sandbox, tmp_path):
    g = google_sandbox.google
    sync(google_sandbox, tmp_path)
    alice, bob = g.user_emails()[:2]
    g.expire_history(alice)
    g.expire_calendar_sync(bob)
    g.expire_people_sync(alice)
    g.delete_message(alice, sorted(g.mail[alice]["messages"])[0])  # lost with the history
    g.reset_stats()
    result = sync(google_sandbox, tmp_path)
    assert result.apis["gmail"].resyncs == 1 and result.apis["calendar"].resyncs == 1
    assert result.apis["people"].resyncs == 1 and result.apis["drive"].resyncs == 0
    routes = g.requests_by_route()
    # Only the expired user's mailbox is listed again; the others answer from history.
    assert routes["GET /gmail/v1/users/{user}/profile"] == 1
    assert routes["GET /gmail/v1/users/{user}/history"] == len(g.users)
    per_user_messages = len(g.mail[alice]["messages"])
    assert routes["GET /gmail/v1/users/{user}/messages"] == -(-per_user_messages // 50)
    assert_equal_to_sandbox(g, tmp_path)


def test_per_user_rate_limits_are_retried(tmp_path, monkeypatch):
    monkeypatch.setenv("SANDBOX_GOOGLE_USERS", "2")  # waits are real seconds: keep the world small
    monkeypatch.setenv("SANDBOX_GOOGLE_MESSAGES", "60")
    with Sandbox(World.generate(**SMALL_WORLD), systems=("google",)) as sb:
        sb.google.per_user_qps = 30
        # Rate limits wait at least half the doubling cap (equal jitter): with these settings the
        # waits of one client's attempts add up to more than the imitation's 1-second window, so
        # the parts go through however the machine's load spreads the requests.
        result = sync(sb, tmp_path, make_google_client(sb, backoff_base_s=0.2, backoff_max_s=1.0))
        assert result.retries > 0
        assert_equal_to_sandbox(sb.google, tmp_path)


def test_malformed_headers_are_stored_or_reported(google_sandbox, tmp_path):
    g = google_sandbox.google
    alice = g.user_emails()[0]
    nasty = [("From", "=?utf-8?b?SsOkcnZpbmVuLCBBaW5v?= <aino.jarvinen@esimerkki.fi>"),
             ("To", "=?bogus-charset?Q?x=ZZ?= <a@b.fi>, not an address, broken@, <>"),
             ("Cc", "'; DROP TABLE gmail_messages; --@x.fi"),
             ("Subject", "x" * 100_000), ("Date", "ei päivämäärä")]
    mid = g.add_message(alice, nasty)
    sync(google_sandbox, tmp_path)
    uid = next(u["id"] for u in g.users if u["primaryEmail"] == alice)
    key = f"{uid}:{mid}"
    con = duckdb.connect(str(tmp_path / "google.duckdb"), read_only=True)
    try:
        row = con.execute("SELECT subject, sent_at, address_count FROM gmail_messages WHERE id = ?", [key]).fetchone()
        assert row is not None and len(row[0]) == 100_000 and row[1] is None
        addrs = con.execute("SELECT header, display_name, email, valid FROM gmail_addresses WHERE message_key = ? "
                            "ORDER BY position", [key]).fetchall()
        assert ("from", "Järvinen, Aino", "aino.jarvinen@esimerkki.fi", True) in addrs
        assert any(not valid for _h, _n, _e, valid in addrs)
        problems = {r[0] for r in con.execute("SELECT problem FROM _issues WHERE record_id = ?", [key]).fetchall()}
        assert "unparseable Date header" in problems and "invalid address in To" in problems
        # The world's own variations: missing Date, 500 recipients, encoded names.
        all_problems = {r[0] for r in con.execute("SELECT problem FROM _issues").fetchall()}
        assert {"missing Date header", "more than 100 recipients"} <= all_problems
        assert con.execute("SELECT max(address_count) FROM gmail_messages").fetchone()[0] >= 500
        # Encoded words are decoded; only the one with an unknown charset stays raw, reported.
        assert con.execute("SELECT list(display_name) FROM gmail_addresses WHERE display_name LIKE '%=?%'"
                           ).fetchone()[0] == ["=?bogus-charset?Q?x=ZZ?="]
        assert "undecodable encoded-word display name" in problems
        assert con.execute("SELECT count(*) FROM gmail_messages").fetchone()[0] == sum(
            len(b["messages"]) for b in g.mail.values())
        # No issue row names a person: record ids and problem kinds only.
        for rid, problem in con.execute("SELECT record_id, problem FROM _issues").fetchall():
            assert "@" not in rid and "@" not in problem
    finally:
        con.close()


def test_google_records_reach_the_warehouse(google_sandbox, tmp_path):
    g = google_sandbox.google
    raw = tmp_path / "raw"
    sync(google_sandbox, raw)
    build_warehouse(raw, tmp_path / "wh.duckdb")
    con = duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True)
    try:
        got = {(r[0], r[1]) for r in con.execute(
            "SELECT record_kind, record_id FROM staging.source_persons WHERE system = 'google'").fetchall()}
        linked = con.execute("SELECT count(*) FROM person_records WHERE system = 'google'").fetchone()[0]
    finally:
        con.close()
    truth = {rid for _s, rid, _t in google_sandbox.world.truth("google")}
    assert truth <= {rid for _k, rid in got}
    assert {k for k, _ in got} >= {"gmail_correspondent", "calendar_attendee", "drive_grantee", "contact", "other_contact"}
    # Employees are not register subjects.
    for email in g.user_emails():
        assert f"gmail_correspondent:{address_id(email)}" not in {rid for _k, rid in got}
    assert linked >= len(got)


def test_raw_google_asset_materializes_without_personal_data_in_events(google_sandbox, tmp_path, monkeypatch):
    from dagster import DagsterInstance, materialize

    from assets.resources import GoogleWorkspaceResource
    from pipelines.resources import RESOURCES
    from assets.google.assets import raw_google
    from assets.resources import StorageResource

    g = google_sandbox.google
    for key, value in google_sandbox.env().items():
        monkeypatch.setenv(key, value)
    instance = DagsterInstance.ephemeral()
    resources = {"google": GoogleWorkspaceResource(admin_subject=g.admin_email, optional_env=RESOURCES["google"].optional_env),
                 "storage": StorageResource(raw_dir=str(tmp_path / "raw"))}
    for _ in range(2):
        result = materialize([raw_google], resources=resources, instance=instance)
        assert result.success
        g.expire_history(g.user_emails()[0])  # the second run resyncs one mailbox
    mats = {tuple(e.asset_key.path): e.event_specific_data.materialization.metadata
            for e in result.get_asset_materialization_events()}
    assert mats[("raw_google", "gmail_messages")]["rows"].value == sum(len(b["messages"]) for b in g.mail.values())
    assert mats[("raw_google", "users")]["sync"].value["gmail"]["resyncs"] == 1
    personal = set(g.user_emails())
    for box in g.mail.values():
        for m in box["messages"].values():
            for name, value in m["headers"]:
                if name in ("From", "To", "Cc"):
                    personal |= {a.strip() for a in value.split(",") if "@" in a and len(a.strip()) > 5}
    logs = "\n".join(str(e) for run in instance.get_runs() for e in instance.all_logs(run.run_id))
    assert not [s for s in personal if s in logs]


def test_a_key_the_sandbox_did_not_issue_is_refused_with_auth_error(google_sandbox):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from connectors.errors import AuthError

    settings = settings_from_env(google_sandbox.env(), timeout_s=2.0, backoff_base_s=0.01, backoff_max_s=0.05)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    settings.service_account_info = dict(settings.service_account_info, private_key=other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode())
    with pytest.raises(AuthError) as info:
        GoogleWorkspaceClient(settings).users()
    assert "@" not in str(info.value)
    assert google_sandbox.google.token_requests >= 1 and not google_sandbox.google.tokens
