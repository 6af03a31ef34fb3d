"""The privacy officer's desk (contact_register/desk/) over real HTTP: uvicorn serves the app in
a thread on a free port against a temporary SQLite register; ``requests`` is the browser.

Checks what the issue asks of the desk: a visitor without a session only reaches the login
page, every form needs the session's CSRF token, a viewer reads only, an erasure is approved by
another officer than the one who opened it (the register refuses it for the command line too),
logout ends the session, and no identifier appears in a URL or a server log line."""

import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import requests

from connectors.clock import today_helsinki
from contact_register.requests.cases import RegisterError, open_register, validate_identifiers

REPO = Path(__file__).resolve().parents[1]
EMAIL = "maija.meikalainen@esimerkki-oy.fi"
PHONE = "040 987 6543"
NAME = "Maija Meikäläinen"
PASSWORD = {"aino": "aino-salasana-pitka", "ville": "ville-salasana-pitka", "lukija": "lukija-salasana-pitka"}


def cli(*args, env=None, stdin=None):
    return subprocess.run([sys.executable, "-m", "contact_register.cli", *args], input=stdin, cwd=REPO,
                          env=env or os.environ.copy(), capture_output=True, text=True, timeout=120)


def test_erasure_approval_needs_a_second_officer_in_the_register_and_the_cli(tmp_path, monkeypatch):
    url = str(tmp_path / "register.sqlite")
    monkeypatch.setenv("REGISTER_URL", url)
    monkeypatch.delenv("REGISTER_FOUR_EYES", raising=False)
    with open_register(url) as reg:
        case = reg.new_case("erasure", validate_identifiers([EMAIL]), actor="aino")
        with pytest.raises(RegisterError, match="another officer"):
            reg.approve(case.case_id, action="erasure", actor="aino")
        assert reg.approvals_for(case.case_id, "erasure") == []
    refused = cli("request", "--actor", "aino", "approve", case.case_id, "--action", "erasure")
    assert refused.returncode == 2, refused.stderr
    assert "another officer" in refused.stderr
    done = cli("request", "--actor", "ville", "approve", case.case_id, "--action", "erasure")
    assert done.returncode == 0, done.stderr
    with open_register(url) as reg:
        assert reg.approvals_for(case.case_id, "erasure") == ["ville"]
        # Other approvals (an export, a rectification's values) are not four-eyes actions.
        access = reg.new_case("access", validate_identifiers([EMAIL]), actor="aino")
        reg.approve(access.case_id, action="export", actor="aino")
    # Configurable: REGISTER_FOUR_EYES=off lets the opener approve (a one-person office).
    other = None
    with open_register(url) as reg:
        other = reg.new_case("erasure", validate_identifiers([EMAIL]), actor="aino").case_id
    env = dict(os.environ, REGISTER_FOUR_EYES="off")
    assert cli("request", "--actor", "aino", "approve", other, "--action", "erasure", env=env).returncode == 0


# -- the desk over HTTP -----------------------------------------------------------------------

class Captured(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append(self.format(record))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def desk(tmp_path, monkeypatch):
    """The desk served by uvicorn in a thread; officers aino and ville, viewer lukija. Yields
    (base URL, register URL, captured log lines). Dagster is not running (a closed port)."""
    import uvicorn

    from contact_register.desk import create_app
    from contact_register.desk.accounts import create_account

    monkeypatch.delenv("REGISTER_FOUR_EYES", raising=False)
    url = str(tmp_path / "register.sqlite")
    with open_register(url) as reg:
        create_account(reg, "aino", PASSWORD["aino"])
        create_account(reg, "ville", PASSWORD["ville"])
        create_account(reg, "lukija", PASSWORD["lukija"], role="viewer")
    (tmp_path / "exports").mkdir()
    app = create_app(url, export_dir=tmp_path / "exports", raw_dir=tmp_path / "raw",
                     dagster_url=f"http://127.0.0.1:{free_port()}")
    captured = Captured()
    captured.setFormatter(logging.Formatter("%(name)s %(message)s"))
    loggers = [logging.getLogger(n) for n in ("", "uvicorn", "uvicorn.access", "uvicorn.error", "contact_register.desk")]
    for lg in loggers:
        lg.addHandler(captured)
    logging.getLogger("contact_register.desk").setLevel(logging.INFO)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="info", access_log=True))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", url, tmp_path, captured.lines
    server.should_exit = True
    thread.join(timeout=10)
    for lg in loggers:
        lg.removeHandler(captured)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def logged_in(base: str, user: str, seen: list) -> requests.Session:
    s = requests.Session()
    s.hooks["response"].append(lambda r, *a, **k: seen.extend([r.url, r.headers.get("location") or ""]))
    page = s.get(f"{base}/login")
    r = s.post(f"{base}/login", data={"csrf": csrf_of(page.text), "username": user, "password": PASSWORD[user]},
               allow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/", r.text
    return s


def open_erasure_case(base: str, s: requests.Session) -> str:
    form = s.get(f"{base}/cases/new")
    r = s.post(f"{base}/cases/new", allow_redirects=False, data={
        "csrf": csrf_of(form.text), "kind": "erasure", "emails": EMAIL, "phones": PHONE, "name": NAME,
        "verified_method": "signed letter, signature compared"})
    assert r.status_code == 303, r.text
    return r.headers["location"].rsplit("/", 1)[1]


def test_a_visitor_without_a_session_only_reaches_the_login_page(desk):
    base, url, tmp_path, _ = desk
    with open_register(url) as reg:
        case_id = reg.new_case("access", validate_identifiers([EMAIL]), actor="aino").case_id
    for path in ("/", "/digest", "/cases/new", f"/cases/{case_id}", f"/cases/{case_id}/export", "/cases/NOPE-1",
                 "/no/such/page"):
        r = requests.get(base + path, allow_redirects=False)
        assert (r.status_code, r.headers.get("location")) == (303, "/login"), path
    r = requests.post(f"{base}/cases/{case_id}/approve", data={"approval": "export"}, allow_redirects=False)
    assert (r.status_code, r.headers.get("location")) == (303, "/login")
    login = requests.get(f"{base}/cases/{case_id}")  # followed: the login page, nothing of the case
    assert login.url == f"{base}/login" and "password" in login.text and case_id not in login.text
    # A wrong password gives no session.
    s = requests.Session()
    page = s.get(f"{base}/login")
    r = s.post(f"{base}/login", data={"csrf": csrf_of(page.text), "username": "aino", "password": "wrong-password-x"},
               allow_redirects=False)
    assert r.status_code == 401
    assert s.get(f"{base}/cases/{case_id}", allow_redirects=False).status_code == 303


def test_every_form_needs_the_sessions_csrf_token(desk):
    base, url, _, _ = desk
    seen = []
    with open_register(url) as reg:
        case_id = reg.new_case("access", validate_identifiers([EMAIL]), actor="aino").case_id
    s = logged_in(base, "ville", seen)
    assert s.post(f"{base}/cases/{case_id}/approve", data={"approval": "export"}).status_code == 403
    assert s.post(f"{base}/cases/{case_id}/approve", data={"approval": "export", "csrf": "guess"}).status_code == 403
    assert s.post(f"{base}/cases/{case_id}/verify", data={"method": "x"}).status_code == 403
    other = logged_in(base, "aino", seen)  # another session's token is no good either
    token = csrf_of(other.get(f"{base}/cases/{case_id}").text)
    assert s.post(f"{base}/cases/{case_id}/approve", data={"approval": "export", "csrf": token}).status_code == 403
    with open_register(url) as reg:
        assert reg.approvals_for(case_id, "export") == [] and not reg.get(case_id).verified
    # The login form too (double submit: the token in the page must match its cookie).
    r = requests.post(f"{base}/login", data={"username": "aino", "password": PASSWORD["aino"]}, allow_redirects=False)
    assert r.status_code == 403
    # With the token the same approval is recorded, by the logged-in officer.
    good = csrf_of(s.get(f"{base}/cases/{case_id}").text)
    assert s.post(f"{base}/cases/{case_id}/approve", data={"approval": "export", "csrf": good},
                  allow_redirects=False).status_code == 303
    with open_register(url) as reg:
        assert reg.approvals_for(case_id, "export") == ["ville"]


def test_a_viewer_reads_but_cannot_act_or_download(desk):
    base, url, tmp_path, _ = desk
    seen = []
    with open_register(url) as reg:
        case_id = reg.new_case("erasure", validate_identifiers([EMAIL]), actor="aino").case_id
    viewer = logged_in(base, "lukija", seen)
    page = viewer.get(f"{base}/cases/{case_id}")
    assert page.status_code == 200 and case_id in page.text and EMAIL in page.text
    assert "/approve" not in page.text  # no action forms for a viewer
    token = csrf_of(page.text)  # the logout form's token: valid, still not enough
    for action, data in (("approve", {"approval": "erasure"}), ("verify", {"method": "x"}),
                         ("close", {"outcome": "x", "force": "yes"})):
        r = viewer.post(f"{base}/cases/{case_id}/{action}", data={**data, "csrf": token}, allow_redirects=False)
        assert r.status_code == 403, action
    assert viewer.get(f"{base}/cases/new").status_code == 403
    assert viewer.get(f"{base}/cases/{case_id}/export").status_code == 403
    with open_register(url) as reg:
        case = reg.get(case_id, with_audit=True)
    assert case.approvals == [] and case.status == "open" and not case.verified
    assert [r["action"] for r in case.audit] == ["case_created"]


def test_erasure_needs_a_second_officer_at_the_desk_and_nothing_personal_in_urls_or_logs(desk):
    base, url, _, log_lines = desk
    seen = []
    aino = logged_in(base, "aino", seen)
    case_id = open_erasure_case(base, aino)
    page = aino.get(f"{base}/cases/{case_id}")
    assert EMAIL in page.text and NAME in page.text
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert page.headers["x-frame-options"] == "DENY" and page.headers["referrer-policy"] == "no-referrer"
    refused = aino.post(f"{base}/cases/{case_id}/approve", data={"approval": "erasure", "csrf": csrf_of(page.text)})
    assert refused.status_code == 409 and "another officer" in refused.text
    # The real erasure cannot be launched before the approval (the dry run can be asked for).
    assert "needs the approval first" in refused.text
    ville = logged_in(base, "ville", seen)
    token = csrf_of(ville.get(f"{base}/cases/{case_id}").text)
    r = ville.post(f"{base}/cases/{case_id}/approve", data={"approval": "erasure", "csrf": token}, allow_redirects=False)
    assert r.status_code == 303
    # Dagster is not running here: the launch says so, and nothing is recorded as launched.
    failed = ville.post(f"{base}/cases/{case_id}/launch", data={"launch": "erasure_dry_run", "csrf": token})
    assert failed.status_code == 502 and "Dagster" in failed.text
    with open_register(url) as reg:
        case = reg.get(case_id, with_audit=True)
    assert case.approvals[0][:2] == ("erasure", "ville") and case.created_by == "aino"
    assert case.verified_by == "aino"
    assert "desk_run_launched" not in [r["action"] for r in case.audit]
    # Identifiers travelled only in POST bodies and pages: never in a URL, a redirect or a log line.
    assert seen and log_lines
    assert any(case_id in line for line in log_lines)  # the log does name the case
    phone_digits = re.sub(r"\D", "", PHONE)[1:]
    for text in seen + log_lines:
        assert not [s for s in (EMAIL, EMAIL.split("@")[0], NAME, NAME.split()[1]) if s in text], text
        assert phone_digits not in re.sub(r"\D", "", text), text


def test_the_export_is_served_to_an_officer_only_uncached_and_logged(desk):
    import zipfile

    base, url, tmp_path, _ = desk
    seen = []
    with open_register(url) as reg:
        case_id = reg.new_case("access", validate_identifiers([EMAIL]), actor="aino").case_id
        name = f"{case_id}.zip"
        with zipfile.ZipFile(tmp_path / "exports" / name, "w") as zf:
            zf.writestr("manifest.json", "{}")
        reg.record_export(case_id, file_name=name, sha256="0" * 64, size=(tmp_path / "exports" / name).stat().st_size,
                          expires_at="2099-01-01T00:00:00+00:00", actor="test", systems={})
    assert logged_in(base, "lukija", seen).get(f"{base}/cases/{case_id}/export").status_code == 403
    aino = logged_in(base, "aino", seen)
    r = aino.get(f"{base}/cases/{case_id}/export")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    assert r.content == (tmp_path / "exports" / name).read_bytes()
    assert "attachment" in r.headers["content-disposition"]
    with open_register(url) as reg:
        trail = reg.audit_trail(case_id)
    downloads = [row for row in trail if row["action"] == "export_downloaded"]
    assert [(row["actor"], row["detail"]["file"]) for row in downloads] == [("aino", name)]


def test_logout_ends_the_session(desk):
    base, url, _, _ = desk
    seen = []
    s = logged_in(base, "aino", seen)
    page = s.get(f"{base}/")
    assert page.status_code == 200 and "/cases/new" in page.text
    cookie = s.cookies["desk_session"]
    r = s.post(f"{base}/logout", data={"csrf": csrf_of(page.text)}, allow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/login")
    # The old cookie, sent again on purpose, is dead: the session is gone from the register.
    again = requests.get(f"{base}/", cookies={"desk_session": cookie}, allow_redirects=False)
    assert (again.status_code, again.headers["location"]) == (303, "/login")


def test_create_officer_reads_the_password_from_stdin_and_the_account_logs_in(desk):
    base, url, _, _ = desk
    env = dict(os.environ, REGISTER_URL=url)
    short = cli("desk", "create-officer", "uusi", env=env, stdin="lyhyt\n")
    assert short.returncode == 2 and "at least 12" in short.stderr
    made = cli("desk", "create-officer", "uusi", env=env, stdin="uusi-salasana-pitka\n")
    assert made.returncode == 0, made.stderr
    assert cli("desk", "create-officer", "uusi", env=env, stdin="uusi-salasana-pitka\n").returncode == 2  # exists
    PASSWORD["uusi"] = "uusi-salasana-pitka"
    try:
        s = logged_in(base, "uusi", [])
        assert "/cases/new" in s.get(f"{base}/").text  # an officer
    finally:
        del PASSWORD["uusi"]
    with open_register(url) as reg, reg.backend.transaction() as tx:
        stored = tx.one("SELECT password_hash FROM desk_accounts WHERE username = 'uusi'")[0]
    assert stored.startswith("$argon2id$") and "uusi-salasana-pitka" not in stored


def _age_sessions(url: str, *, idle: timedelta = timedelta(0), age: timedelta = timedelta(0)) -> int:
    """Move every session's clocks back, as if that much time had passed since login / the last
    request (the register's own table, changed the way time would change it)."""
    with open_register(url) as reg, reg.backend.transaction() as tx:
        rows = tx.execute("SELECT token_hash, created_at, last_seen FROM desk_sessions")
        for token_hash, created, seen in rows:
            tx.execute("UPDATE desk_sessions SET created_at = ?, last_seen = ? WHERE token_hash = ?",
                       [(datetime.fromisoformat(created) - age).isoformat(timespec="seconds"),
                        (datetime.fromisoformat(seen) - idle).isoformat(timespec="seconds"), token_hash])
    return len(rows)


@pytest.mark.parametrize("idle, age, alive", [
    (timedelta(minutes=29), timedelta(minutes=29), True),   # within both limits
    (timedelta(minutes=31), timedelta(minutes=31), False),  # 30 minutes idle ends it
    (timedelta(minutes=1), timedelta(hours=8, minutes=1), False),  # 8 hours after login, however busy
])
def test_sessions_expire_when_idle_or_old(desk, idle, age, alive):
    base, url, _, _ = desk
    s = logged_in(base, "aino", [])
    assert s.get(f"{base}/", allow_redirects=False).status_code == 200
    assert _age_sessions(url, idle=idle, age=age) == 1
    r = s.get(f"{base}/", allow_redirects=False)
    if alive:
        assert r.status_code == 200
    else:
        assert (r.status_code, r.headers["location"]) == (303, "/login")


def test_the_digest_page_lists_an_overdue_case_and_needs_a_session(desk):
    base, url, _, _ = desk
    with open_register(url) as reg:
        overdue = reg.new_case("access", validate_identifiers([EMAIL]), actor="aino",
                               received_on=(today_helsinki() - timedelta(days=45)).isoformat()).case_id
        fresh = reg.new_case("access", validate_identifiers(["toinen.henkilo@esimerkki-oy.fi"]),
                             actor="aino").case_id
    anonymous = requests.get(f"{base}/digest", allow_redirects=False)
    assert (anonymous.status_code, anonymous.headers["location"]) == (303, "/login")
    page = logged_in(base, "lukija", []).get(f"{base}/digest")
    assert page.status_code == 200
    overdue_items = re.findall(r'<li class="overdue"><a href="/cases/([^"]+)">', page.text)
    assert overdue_items == [overdue] and fresh not in overdue_items
    assert EMAIL not in page.text
