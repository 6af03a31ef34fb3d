"""Notifications over a real SMTP server on loopback (aiosmtpd) and a local webhook receiver; the
row-count guard that keeps the previous warehouse published; freshness; notice conformance."""

import hashlib
import ipaddress
import json
import os
import socket
import ssl
import threading
from datetime import date, datetime, timedelta, timezone
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from dagster import DagsterInstance, build_run_status_sensor_context, build_sensor_context

from contact_register.warehouse.checks.conformance import Landed, check_conformance
from assets.pipedrive.assets import RAW_PIPEDRIVE_KEYS
from contact_register.sync.raw_store import raw_path
from pipelines.resources import RESOURCES
from pipelines.definitions import defs
from contact_register.notify import Notice, NotifyError
from contact_register.requests.cases import open_register, validate_identifiers
from contact_register.description import load_description
from pipelines.sensors import raw_freshness_alert, run_failure_alert
from sandbox.pipedrive_world import FieldDef
from conftest import make_client
from test_dagster import personal_strings

RECIPIENTS = ["tietosuoja@controller.test", "ops@controller.test"]
WAREHOUSE_KEYS = [k for k in defs.resolve_all_asset_keys() if k.path[0] in
                  ("persons", "person_records", "person_identifiers", "marketing_bans")]
PIPEDRIVE_AND_WAREHOUSE = list(RAW_PIPEDRIVE_KEYS.values()) + WAREHOUSE_KEYS


class Inbox:
    """aiosmtpd handler: keeps every message the server accepts."""

    def __init__(self) -> None:
        self.received: list[dict] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.received.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                              "raw": envelope.original_content or envelope.content})
        return "250 Message accepted for delivery"

    def messages(self):
        return [message_from_bytes(m["raw"], policy=policy.default) for m in self.received]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp(monkeypatch):
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("NOTIFY_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("NOTIFY_SMTP_PORT", str(port))
    monkeypatch.setenv("NOTIFY_SMTP_STARTTLS", "false")  # a relay on loopback speaks plain SMTP
    monkeypatch.setenv("NOTIFY_FROM", "Contact register <pipeline@controller.test>")
    monkeypatch.setenv("NOTIFY_TO", ", ".join(RECIPIENTS))
    monkeypatch.delenv("NOTIFY_WEBHOOK_URL", raising=False)
    yield inbox
    controller.stop()


@pytest.fixture
def webhook(monkeypatch):
    posts: list[dict] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's hook name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            posts.append({"content_type": self.headers["Content-Type"], "body": json.loads(body)})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("NOTIFY_WEBHOOK_URL", f"http://127.0.0.1:{server.server_address[1]}/hooks/chat")
    yield posts
    server.shutdown()
    server.server_close()


@pytest.fixture
def env(sandbox, monkeypatch, tmp_path):
    """The Pipedrive sandbox, temp raw stores, warehouse and register."""
    for key, value in sandbox.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("RAW_DIR", str(tmp_path / "raw"))
    monkeypatch.setenv("WAREHOUSE_PATH", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("REGISTER_URL", str(tmp_path / "register.sqlite"))
    monkeypatch.setenv("IDENTITY_DECISIONS_PATH", str(tmp_path / "identity.duckdb"))
    monkeypatch.delenv("FRESHNESS_MAX_AGE_HOURS", raising=False)
    return tmp_path


def assert_no_personal_data(texts, secrets: set[str]) -> None:
    """``secrets``: every email, phone and full name of the sandbox's Pipedrive (personal_strings)."""
    assert any("@" in s for s in secrets)
    for text in texts:
        leaked = [s for s in secrets if s.lower() in text.lower()]
        assert not leaked, f"{len(leaked)} personal strings in a captured message"


def mail_texts(inbox: Inbox) -> list[str]:
    """Each captured mail as sent (raw) and decoded (headers and body), so that no transfer
    encoding can hide an address."""
    decoded = [f"{m.as_string()}\n{m['Subject']}\n{m.get_content()}" for m in inbox.messages()]
    return [m["raw"].decode("utf-8", "replace") for m in inbox.received] + decoded


def nightly(instance, selection, run_config=None):
    return defs.resolve_job_def("nightly_sync").execute_in_process(
        instance=instance, asset_selection=selection, run_config=run_config or {}, raise_on_error=False)


def report_failure(instance, result) -> None:
    """Evaluate the run-failure sensor on a failed run, as the daemon would."""
    context = build_run_status_sensor_context(
        sensor_name="run_failure_alert", dagster_instance=instance, dagster_run=result.dagster_run,
        dagster_event=result.get_run_failure_event(), resources={"notifier": RESOURCES["notifier"]},
    ).for_run_failure()
    run_failure_alert(context)


def check_results(result) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def file_identity(path: Path) -> tuple:
    st = path.stat()
    return st.st_ino, st.st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest()


def test_failing_nightly_sync_sends_one_mail_to_the_recipients(env, sandbox, smtp, monkeypatch):
    monkeypatch.setenv("PIPEDRIVE_API_TOKEN", "expired-token")
    instance = DagsterInstance.ephemeral()
    result = nightly(instance, list(RAW_PIPEDRIVE_KEYS.values()))
    assert not result.success
    report_failure(instance, result)

    assert len(smtp.received) == 1
    envelope = smtp.received[0]
    assert sorted(envelope["to"]) == sorted(RECIPIENTS)
    assert envelope["from"] == "pipeline@controller.test"
    mail = smtp.messages()[0]
    assert mail["Subject"] == "[contact register] nightly_sync failed"
    assert mail["X-Contact-Register-Notice"] == "run_failure"
    body = mail.get_content()
    assert result.run_id in body and "raw_pipedrive" in body
    assert "raw_pipedrive: AuthError: pipedrive GET /api/v2/personFields -> HTTP 401" in body
    assert "expired-token" not in body
    assert_no_personal_data(mail_texts(smtp), personal_strings(sandbox))


def test_a_run_dagster_will_retry_is_reported_by_its_last_attempt_only(env, sandbox, smtp, monkeypatch):
    monkeypatch.setenv("PIPEDRIVE_API_TOKEN", "expired-token")
    instance = DagsterInstance.ephemeral()
    result = nightly(instance, list(RAW_PIPEDRIVE_KEYS.values()))
    instance.add_run_tags(result.run_id, {"dagster/will_retry": "true"})
    context = build_run_status_sensor_context(
        sensor_name="run_failure_alert", dagster_instance=instance,
        dagster_run=instance.get_run_by_id(result.run_id), dagster_event=result.get_run_failure_event(),
        resources={"notifier": RESOURCES["notifier"]},
    ).for_run_failure()
    run_failure_alert(context)
    assert smtp.received == []


def test_sudden_zero_persons_blocks_the_publish_and_alerts(env, sandbox, smtp):
    instance = DagsterInstance.ephemeral()
    first = nightly(instance, PIPEDRIVE_AND_WAREHOUSE)
    assert first.success
    checks = check_results(first)
    assert checks["row_counts"].passed
    assert checks["last_sync"].passed
    wh = Path(os.environ["WAREHOUSE_PATH"])
    before = file_identity(wh)
    persons_before = len(sandbox.pipedrive.live_ids("persons"))
    secrets = personal_strings(sandbox)  # before the persons go

    # The API now answers with no persons at all, and the raw step's own guard was overridden.
    sandbox.pipedrive.burst_limit = 100_000
    client = make_client(sandbox)
    try:
        for rid in sorted(sandbox.pipedrive.live_ids("persons")):
            client.delete("persons", rid)
    finally:
        client.close()
    assert not sandbox.pipedrive.live_ids("persons")
    raw_override = {"ops": {"raw_pipedrive": {"config": {"reconcile_every_hours": 0, "max_delete_share": 1.0}}}}
    second = nightly(instance, PIPEDRIVE_AND_WAREHOUSE, raw_override)
    assert not second.success
    con = duckdb.connect(str(raw_path(os.environ["RAW_DIR"], "pipedrive")), read_only=True)
    assert con.execute("SELECT count(*) FROM persons").fetchone()[0] == 0  # the raw store did lose them
    con.close()

    # The previous warehouse stays published, byte for byte, and no half build is left.
    assert file_identity(wh) == before
    assert not list(wh.parent.glob(f"{wh.name}.building-*"))
    con = duckdb.connect(str(wh), read_only=True)
    assert con.execute("SELECT count(*) FROM raw_pipedrive.persons").fetchone()[0] == persons_before
    con.close()
    blocked = check_results(second)["row_counts"]
    assert not blocked.passed
    assert blocked.metadata["tables_dropped"].value == ["raw_pipedrive.persons"]
    assert "raw_pipedrive.persons" in blocked.metadata["report"].value

    report_failure(instance, second)
    assert len(smtp.received) == 1
    body = smtp.messages()[0].get_content()
    assert "warehouse not published" in body and f"raw_pipedrive.persons {persons_before} -> 0" in body
    assert_no_personal_data(mail_texts(smtp), secrets)

    # An operator who knows the drop is real lets it through for one run.
    third = nightly(instance, WAREHOUSE_KEYS, {"ops": {"warehouse": {"config": {"max_drop_share": 1.0}}}})
    assert third.success
    assert file_identity(wh) != before
    con = duckdb.connect(str(wh), read_only=True)
    assert con.execute("SELECT count(*) FROM raw_pipedrive.persons").fetchone()[0] == 0
    con.close()


def test_new_pipedrive_custom_field_is_reported_as_undeclared(env, sandbox):
    instance = DagsterInstance.ephemeral()
    first = check_results(nightly(instance, PIPEDRIVE_AND_WAREHOUSE))["notice_conformance"]
    assert not [f for f in first.metadata["undeclared_fields"].value if f.startswith("pipedrive.")]

    # An admin adds a custom field in Pipedrive and fills it for someone.
    sandbox.pipedrive.fields["persons"].append(
        FieldDef("f" * 40, "Syntymäpäivä", "date", None, True))
    client = make_client(sandbox)
    try:
        rid = min(sandbox.pipedrive.live_ids("persons"))
        client.update("persons", rid, {"custom_fields": {"f" * 40: "1980-05-17"}})
    finally:
        client.close()
    second = check_results(nightly(instance, PIPEDRIVE_AND_WAREHOUSE))["notice_conformance"]
    assert not second.passed
    assert "pipedrive.persons:Syntymäpäivä" in second.metadata["undeclared_fields"].value
    report = second.metadata["report"].value
    assert '"Syntymäpäivä"' in report and "custom_fields.persons" in report
    assert "Everything that lands belongs to a declared data category**: at risk" in report
    assert "categories" in second.metadata["promises_at_risk"].value
    assert_no_personal_data([report], personal_strings(sandbox))


def _case(register, kind, email, received, systems=()):
    ids = validate_identifiers([email], [], None, None)
    return register.new_case(kind, ids, actor="officer", received_on=received, systems=systems)


def test_daily_mail_lists_due_overdue_and_manual_tasks_and_posts_to_the_webhook(env, sandbox, smtp, webhook):
    secrets = personal_strings(sandbox)
    emails = sorted(e for e in secrets if "@" in e)
    register = open_register()
    try:
        soon = _case(register, "access", emails[0], date.today() - timedelta(days=25), systems=["pipedrive"])
        report_day = date.fromisoformat(soon.due_on) - timedelta(days=5)
        late = _case(register, "erasure", emails[1], report_day - timedelta(days=45))
        later = _case(register, "access", emails[2], date.today())
        register.set_system_state(later.case_id, "docue", "manual_open", actor="officer")
        closed = _case(register, "objection", emails[3], report_day - timedelta(days=60))
        register.close_case(closed.case_id, outcome="answered", actor="officer")
    finally:
        register.close()

    result = defs.resolve_job_def("deadline_digest").execute_in_process(
        run_config={"ops": {"send_deadline_digest": {"config": {"today": report_day.isoformat()}}}})
    assert result.success
    assert len(smtp.received) == 1 and sorted(smtp.received[0]["to"]) == sorted(RECIPIENTS)
    mail = smtp.messages()[0]
    assert mail["Subject"] == "[contact register] 1 overdue, 1 due soon, 1 manual tasks"
    body = mail.get_content()
    overdue, _, rest = body.partition("Due within 7 days:")
    assert late.case_id in overdue and "days overdue" in overdue
    assert f"{soon.case_id} (access) due {soon.due_on}, in 5 days; open: pipedrive (pending)" in rest
    assert f"{later.case_id}: docue" in rest.split("Manual tasks open")[1]
    assert closed.case_id not in body

    assert len(webhook) == 1
    post = webhook[0]
    assert post["content_type"] == "application/json"
    assert post["body"]["kind"] == "deadlines"
    assert post["body"]["facts"]["overdue"] == [late.case_id]
    assert post["body"]["facts"]["due_soon"] == [soon.case_id]
    assert post["body"]["facts"]["manual_open"] == {later.case_id: ["docue"]}
    assert soon.case_id in post["body"]["text"]
    texts = mail_texts(smtp) + [json.dumps(p["body"], ensure_ascii=False) for p in webhook]
    assert_no_personal_data(texts, secrets)  # the cases' own identifiers are sandbox addresses


def test_stale_system_is_reported_once_per_stale_spell(env, sandbox, smtp):
    assert nightly(DagsterInstance.ephemeral(), list(RAW_PIPEDRIVE_KEYS.values())).success
    resources = {"storage": RESOURCES["storage"], "notifier": RESOURCES["notifier"]}
    fresh = raw_freshness_alert(build_sensor_context(resources=resources))
    assert smtp.received == [] and json.loads(fresh.cursor) == {}

    store = raw_path(os.environ["RAW_DIR"], "pipedrive")
    two_days_ago = datetime.now(timezone.utc) - timedelta(hours=40)
    con = duckdb.connect(str(store))
    con.execute("UPDATE _sync_state SET last_success_at = ? WHERE entity = 'deals'", [two_days_ago])
    con.close()
    first = raw_freshness_alert(build_sensor_context(resources=resources))
    assert len(smtp.received) == 1
    mail = smtp.messages()[0]
    assert mail["Subject"] == "[contact register] stale data: pipedrive"
    assert "more than 36 hours" in mail.get_content() and "40 hours ago" in mail.get_content()
    again = raw_freshness_alert(build_sensor_context(cursor=first.cursor, resources=resources))
    assert len(smtp.received) == 1 and again.cursor == first.cursor
    assert_no_personal_data(mail_texts(smtp), personal_strings(sandbox))


def test_mail_settings_errors_are_clear(monkeypatch, smtp):
    monkeypatch.setenv("NOTIFY_TO", "not an address")
    with pytest.raises(NotifyError, match="NOTIFY_TO"):
        RESOURCES["notifier"].smtp()
    monkeypatch.setenv("NOTIFY_TO", RECIPIENTS[0])
    monkeypatch.setenv("NOTIFY_SMTP_PORT", "smtp")
    with pytest.raises(NotifyError, match="NOTIFY_SMTP_PORT"):
        RESOURCES["notifier"].smtp()
    monkeypatch.setenv("NOTIFY_SMTP_PORT", str(free_port()))  # nobody listens there
    with pytest.raises(NotifyError, match="mail through 127.0.0.1"):
        RESOURCES["notifier"].send(Notice("test", "test", ("x",)))


def test_conformance_names_each_promise_at_risk():
    desc = load_description()
    landed = Landed(
        tables={"pipedrive": {"persons": ["id", "name", "emails", "record", "shoe_size"]},
                "hubspot": {"contacts": ["id", "email"]}},
        rows={"pipedrive": 10, "hubspot": 3},
        custom_fields=[("persons", "LinkedIn"), ("persons", "Syntymäpäivä")],
    )
    report = check_conformance(landed, desc, exporters=["pipedrive"])
    assert report.at_risk() == ["processors", "categories", "exports"]
    text = report.markdown()
    assert "hubspot holds data in the warehouse but is not a processor" in text
    assert "raw_pipedrive.persons: shoe_size lands without a data category" in text
    assert "raw_hubspot.contacts: (the whole table)" in text
    assert '"Syntymäpäivä"' in text and '"LinkedIn"' not in text
    declared_api = sorted(p["system"] for p in desc["processors"] if p["export"] == "api" and p["system"] != "pipedrive")
    assert declared_api and all(s in report.risks["exports"][0] for s in declared_api)
    assert set(report.undeclared_fields) == {"raw_pipedrive.persons.shoe_size", "raw_hubspot.contacts",
                                             "pipedrive.persons:Syntymäpäivä"}

    kept = check_conformance(Landed(tables={"pipedrive": {"persons": ["id", "name"]}}, rows={"pipedrive": 1}),
                             desc, exporters=[p["system"] for p in desc["processors"]])
    assert kept.passed and "every promise checked is kept" in kept.markdown()


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "contact-register test relay")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "relay.pem", tmp_path / "relay.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def test_starttls_and_login_with_a_private_ca(monkeypatch, tmp_path):
    cert_file, key_file = _self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert_file, key_file)
    logins = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append((mechanism, auth_data.login, session.ssl is not None))
        return AuthResult(success=auth_data.login == b"notifier" and auth_data.password == b"s3cret")

    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, tls_context=server_tls, require_starttls=True,
                            authenticator=authenticator, auth_required=True)
    controller.start()
    try:
        for key, value in {"NOTIFY_SMTP_HOST": "127.0.0.1", "NOTIFY_SMTP_PORT": str(port), "NOTIFY_SMTP_USER": "notifier",
                           "NOTIFY_SMTP_PASSWORD": "s3cret", "NOTIFY_FROM": "pipeline@controller.test",
                           "NOTIFY_TO": RECIPIENTS[0]}.items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("NOTIFY_SMTP_STARTTLS", raising=False)  # on by default
        monkeypatch.delenv("NOTIFY_WEBHOOK_URL", raising=False)
        notice = Notice("test", "relay check", ("one line",))
        with pytest.raises(NotifyError, match="CERTIFICATE_VERIFY_FAILED"):  # the system CAs do not know it
            RESOURCES["notifier"].send(notice)
        monkeypatch.setenv("NOTIFY_SMTP_CA_FILE", str(cert_file))
        assert RESOURCES["notifier"].send(notice) == ["mail"]
    finally:
        controller.stop()
    assert len(inbox.received) == 1 and inbox.received[0]["to"] == [RECIPIENTS[0]]
    assert [(login, over_tls) for _, login, over_tls in logins] == [(b"notifier", True)]


def test_a_library_message_is_left_out_of_the_failure_notice(smtp, webhook):
    """A library's exception may quote the value it choked on (here a surname): the mail and the
    webhook carry its class only; the project's own Failure keeps its message."""
    from dagster import Failure, job, op

    surname = "Virtanen-Testinimi"

    @op
    def chokes():
        raise ValueError(f"Could not convert string '{surname}' to INT32")

    @op
    def refuses():
        raise Failure("case E-1 has no approval for erasure")

    @job
    def choking_job():
        chokes()

    @job
    def refusing_job():
        refuses()

    instance = DagsterInstance.ephemeral()
    for failing in (choking_job, refusing_job):
        result = failing.execute_in_process(instance=instance, raise_on_error=False)
        assert not result.success
        report_failure(instance, result)
    texts = mail_texts(smtp) + [json.dumps(p) for p in webhook]
    assert len(smtp.received) == 2 and len(webhook) == 2
    assert not [t for t in texts if surname in t]
    assert any("chokes: ValueError (message left out" in t for t in texts)
    assert any("refuses: Failure: case E-1 has no approval for erasure" in t for t in texts)
