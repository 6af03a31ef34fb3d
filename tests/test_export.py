"""The subject export end to end: a case made with the CLI or from Launchpad config, the job
launched through Dagster against the Pipedrive sandbox over HTTP, the zip checked against the
sandbox's ground truth."""

import hashlib
import html
import json
import os
import stat
import subprocess
import sys
import zipfile
from collections import defaultdict
from pathlib import Path

import pytest
from dagster import DagsterInstance, execute_job, reconstructable

from contact_register.warehouse.build import build_warehouse
from pipelines.definitions import defs, resolved_subject_export
from contact_register.requests.cases import open_register
from contact_register.description import load_description
from tests.test_pipedrive_sync import run_sync

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def export_env(pipedrive_env, sandbox, tmp_path, monkeypatch):
    """Sandbox synced into raw stores, warehouse built, register and export folder in tmp."""
    run_sync(sandbox, Path(os.environ["RAW_DIR"]))
    build_warehouse(os.environ["RAW_DIR"], os.environ["WAREHOUSE_PATH"])
    monkeypatch.setenv("REGISTER_URL", str(tmp_path / "register.sqlite"))
    monkeypatch.setenv("EXPORT_DIR", str(tmp_path / "exports"))
    monkeypatch.setenv("EXPORT_EXPIRE_DAYS", "14")
    monkeypatch.setenv("REGISTER_ACTOR", "tietosuojavastaava")
    return tmp_path


def cli(*args, stdin=None, env=None):
    return subprocess.run([sys.executable, "-m", "contact_register.cli", "request", *args], input=stdin, cwd=REPO,
                          env=env or os.environ.copy(), capture_output=True, text=True, timeout=120)


class Truth:
    """What the sandbox's Pipedrive holds about one human (by the world's ground truth)."""

    def __init__(self, sandbox, world, human_id):
        pd = sandbox.pipedrive
        self.person_ids = {int(rid) for _, rid, h in world.truth("pipedrive") if h == human_id}
        self.human = next(h for h in world.humans if h.true_person_id == human_id)
        self.deals = {d for d in pd.live_ids("deals") if pd.get("deals", d).get("person_id") in self.person_ids}
        self.activities = set()
        for a in pd.live_ids("activities"):
            rec = pd.get("activities", a)
            linked = {rec.get("person_id")} | {p.get("person_id") for p in rec.get("participants") or []
                                                 if isinstance(p, dict)}
            if linked & self.person_ids:
                self.activities.add(a)
        self.notes = {n for n in pd.live_ids("notes") if pd.get("notes", n).get("person_id") in self.person_ids}
        self.mails = {m["id"] for p in self.person_ids for m in pd.mail_messages(p)}

    def by_kind(self):
        return {"person": self.person_ids, "deal": self.deals, "activity": self.activities, "note": self.notes,
                "mail_message": self.mails}


def read_zip(path):
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        data = {n: zf.read(n) for n in names}
    return data


def ids_in(data, system, kind):
    name = f"{system}/{kind}.json"
    return {r["id"] for r in json.loads(data[name])} if name in data else set()


def pick_humans(world):
    """A human with a namesake at another company who also shares a mailbox with a colleague."""
    pw = world.derive("pipedrive")
    by_name = defaultdict(list)
    for h in world.humans:
        by_name[(h.first_name, h.last_name)].append(h.true_person_id)
    shared = defaultdict(set)
    for p in pw.persons:
        for value, _label, _primary in p.emails:
            if value.split("@")[0] in ("info", "laskutus", "myynti", "toimisto"):
                shared[value].add(p.true_person_id)
    for mailbox, users in sorted(shared.items()):
        for hid in sorted(users):
            h = next(x for x in world.humans if x.true_person_id == hid)
            namesakes = [o for o in by_name[(h.first_name, h.last_name)] if o != hid]
            if namesakes and len(users) > 1:
                return hid, mailbox, namesakes[0], sorted(users - {hid})
    pytest.fail("the test world has no human with both a namesake and a shared mailbox")


def assert_exact(data, truth, others):
    for kind, expected in truth.by_kind().items():
        got = ids_in(data, "pipedrive", kind)
        assert got == expected, f"{kind}: {len(got - expected)} extra, {len(expected - got)} missing"
        for other in others:
            assert not got & other.by_kind()[kind], f"{kind}: someone else's records in the export"


def test_cli_case_exported_through_dagster_matches_ground_truth(export_env, sandbox, small_world, tmp_path):
    hid, mailbox, namesake_id, colleagues = pick_humans(small_world)
    truth = Truth(sandbox, small_world, hid)
    others = [Truth(sandbox, small_world, namesake_id)] + [Truth(sandbox, small_world, c) for c in colleagues]
    h = truth.human
    assert truth.person_ids and all(o.person_ids for o in others)
    # Identifiers on stdin (kept out of shell history and the process list); the shared mailbox
    # is among them, and the name (shared with the namesake) is what settles it.
    given = {"emails": [h.email, mailbox], "phones": [h.phone_e164], "name": f"{h.first_name} {h.last_name}"}
    made = cli("new", "--kind", "access", "--stdin", "--json", stdin=json.dumps(given))
    assert made.returncode == 0, made.stderr
    case_id = json.loads(made.stdout)["case_id"]
    assert cli("verify", case_id, "--method", "signed letter, signature compared").returncode == 0

    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "pipelines" / "dagster.yaml").read_text())
    with DagsterInstance.from_config(str(home)) as instance:
        result = execute_job(reconstructable(resolved_subject_export), instance=instance,
                             run_config={"ops": {"export_subject_data": {"config": {"case_id": case_id}}}})
        assert result.success
        run = instance.get_run_by_id(result.run_id)
        assert run.tags.get("register/system-pipedrive") == "true"
        mats = [e for e in instance.all_logs(result.run_id) if e.dagster_event and e.dagster_event.is_successful_output]
        meta = mats[0].dagster_event.event_specific_data.metadata
        logs = "\n".join(str(e) for e in instance.all_logs(result.run_id))
    expected_total = sum(len(v) for v in truth.by_kind().values())
    assert meta["dealfront"].value == "manual_open: 0 records"  # no API: a manual task
    assert meta["case_id"].value == case_id
    # Nothing personal in Dagster's event log or its stored run config.
    for secret in (h.email, mailbox, h.phone_e164, h.last_name):
        assert secret not in logs
        for path in home.rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), f"personal data in {path.name}"

    case = open_register().get(case_id, with_audit=True)
    zips = list(Path(os.environ["EXPORT_DIR"]).glob("*.zip"))
    assert [z.name for z in zips] == [case.export_file]
    path = zips[0]
    assert path.name.startswith(case_id) and h.last_name.lower() not in path.name.lower()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert hashlib.sha256(path.read_bytes()).hexdigest() == case.export_sha256
    assert case.export_expires_at and case.export_expires_at[:10] > case.received_on
    assert case.systems["secapp"].state == "manual_open"
    assert "export_written" in [a["action"] for a in case.audit]

    data = read_zip(path)
    assert_exact(data, truth, others)
    # The CSV has the same records as the JSON.
    csv_rows = data["pipedrive/person.csv"].decode("utf-8-sig").strip().splitlines()
    assert len(csv_rows) == 1 + len(truth.person_ids)
    manifest = json.loads(data["manifest.json"])
    assert manifest["case_id"] == case_id and manifest["nothing_held"] is False
    assert manifest["systems"]["pipedrive"]["state"] == "found"
    for name, digest in manifest["files"].items():
        assert hashlib.sha256(data[name]).hexdigest() == digest
    # The change history (v1 flow) of the person's records only: their notes and activities.
    flow = json.loads(data["pipedrive/change.json"])
    assert flow and {c["person_id"] for c in flow} <= truth.person_ids
    assert {c["data"]["id"] for c in flow if c["object"] == "note"} <= truth.notes
    assert {c["data"]["id"] for c in flow if c["object"] == "activity"} <= truth.activities
    assert meta["pipedrive"].value.startswith(f"found: {expected_total + len(flow)} records")
    assert case.systems["pipedrive"].state == "found"
    assert case.systems["pipedrive"].records == expected_total + len(flow)
    report = data["report.html"].decode()
    assert_report_names_every_processor(report, manifest)
    # The human-readable part shows the records themselves, not only counts.
    for pid in truth.person_ids:
        record = sandbox.pipedrive.get("persons", pid)
        assert html.escape(record["name"]) in report
        for phone in record.get("phones") or []:
            assert html.escape(phone["value"]) in report


def assert_report_names_every_processor(report, manifest):
    desc = load_description()
    for p in desc["processors"]:
        row_start = report.index(f'data-system="{p["system"]}"')
        row = report[row_start:report.index("</tr>", row_start)]
        assert p["name"].replace("&", "&amp;") in row or p["name"] in row
        answer = {"found": "Tietoja löytyi", "not_found": "Ei tietoja", "failed": "Haku epäonnistui",
                  "manual_open": "Tarkistetaan käsin"}[manifest["systems"][p["system"]]["state"]]
        assert answer in row, p["system"]
    # Both languages, and the art. 15 information.
    for text in ("Käsittelyn tarkoitukset", "Purposes of processing", "GDPR 6(1)(f)", "Säilytysaika", "Retention",
                 "tietosuoja@secapp.fi", "Right to complain", "tietosuojavaltuutetun", "Sources of the data"):
        assert text in report, text


def test_launchpad_case_with_live_mail_and_a_run_config_warning(export_env, sandbox, small_world):
    pw = small_world.derive("pipedrive")
    with_mail = sorted({m.person_id for m in pw.mails})
    human_of = {p.id: p.true_person_id for p in pw.persons}
    hid = human_of[with_mail[0]]
    truth = Truth(sandbox, small_world, hid)
    assert truth.mails
    # A note written after the sync: only the live read can see it.
    from tests.conftest import make_client

    client = make_client(sandbox)
    new_note = client.create("notes", {"content": "Soitettu, palataan asiaan", "person_id": sorted(truth.person_ids)[0]})
    client.close()
    h = truth.human
    instance = DagsterInstance.ephemeral()
    config = {"emails": [h.email], "phones": [h.phone_e164], "name": f"{h.first_name} {h.last_name}",
              "verified_method": "called back the number on record"}
    result = defs.resolve_job_def("subject_export").execute_in_process(
        run_config={"ops": {"export_subject_data": {"config": config}}}, instance=instance)
    assert result.success
    warnings = [e for e in instance.all_logs(result.run_id) if e.level >= 30 and "run config" in (e.user_message or "")]
    assert warnings
    summary = result.output_for_node("export_subject_data")
    reg = open_register()
    case = reg.get(summary["case_id"])
    assert case.verified and case.kind == "access"
    data = read_zip(Path(os.environ["EXPORT_DIR"]) / case.export_file)
    assert ids_in(data, "pipedrive", "mail_message") == truth.mails
    assert ids_in(data, "pipedrive", "note") == truth.notes | {new_note["id"]}
    assert ids_in(data, "pipedrive", "person") == truth.person_ids
    # Re-running for a closed case is refused.
    reg.close_case(case.case_id, outcome="sent", actor="dpo", force=True)
    again = defs.resolve_job_def("subject_export").execute_in_process(
        run_config={"ops": {"export_subject_data": {"config": {"case_id": case.case_id}}}},
        instance=instance, raise_on_error=False)
    assert not again.success


def test_person_found_nowhere_gets_a_valid_nothing_held_answer(export_env):
    made = cli("new", "--kind", "access", "--email", "ei.ketaan@tuntematon-yritys.fi", "--phone", "+358 50 000 0001",
               "--name", "Tuntematon Henkilö", "--json")
    assert made.returncode == 0, made.stderr
    case_id = json.loads(made.stdout)["case_id"]
    # Unverified: the job refuses to disclose anything.
    refused = defs.resolve_job_def("subject_export").execute_in_process(
        run_config={"ops": {"export_subject_data": {"config": {"case_id": case_id}}}},
        instance=DagsterInstance.ephemeral(), raise_on_error=False)
    assert not refused.success
    assert cli("verify", case_id, "--method", "email reply").returncode == 0
    result = defs.resolve_job_def("subject_export").execute_in_process(
        run_config={"ops": {"export_subject_data": {"config": {"case_id": case_id, "live_reads": False}}}},
        instance=DagsterInstance.ephemeral())
    assert result.success
    case = open_register().get(case_id)
    data = read_zip(Path(os.environ["EXPORT_DIR"]) / case.export_file)
    manifest = json.loads(data["manifest.json"])
    assert manifest["nothing_held"] is True and manifest["persons_found"] == 0
    assert manifest["unmatched_identifiers"] == 2
    assert not [n for n in data if n.startswith("pipedrive/") or n.startswith("warehouse/")]
    report = data["report.html"].decode()
    assert "Emme säilytä sinusta tietoja" in report and "We hold no data about you" in report
    assert_report_names_every_processor(report, manifest)
    assert case.systems["pipedrive"].state == "not_found"
    # The case cannot be closed while manual tasks are open; answered, it can.
    shown = cli("show", case_id, "--json")
    assert json.loads(shown.stdout)["systems"]["dealfront"]["state"] == "manual_open"
    due = json.loads(cli("list", "--due", "--soon-days", "40", "--json").stdout)
    assert [(c["case_id"], c["due_state"]) for c in due] == [(case_id, "due soon")]
    assert json.loads(cli("list", "--due", "--json").stdout) == []  # due in a month: neither overdue nor soon
    assert cli("close", case_id, "--outcome", "answered").returncode == 2
    closed = cli("close", case_id, "--outcome", "answered, manual checks done by phone", "--force")
    assert closed.returncode == 0, closed.stderr


def test_bad_identifiers_through_the_cli_and_the_launchpad_create_nothing(export_env):
    bad_args = [
        ["--email", "x@example.fi'; DROP TABLE cases; --"],
        ["--email", "a" * 10_000 + "@example.fi"],
        ["--phone", "ei puhelinnumero"],
        ["--name", "N" * 10_240],
    ]
    for args in bad_args:
        out = cli("new", "--kind", "access", *args)
        assert out.returncode == 2 and "no case was created" in out.stderr
        # A refused address is named once, quoted, to the operator who typed it (so they see
        # which one and why); an over-long value is refused by its length, never echoed.
        assert out.stderr.count("DROP TABLE") <= 1 and "NNNNNNNN" not in out.stderr
        assert "a" * 100 not in out.stderr and len(out.stderr) < 1000
    # Invalid UTF-8 in argv arrives as lone surrogates.
    proc = subprocess.run([sys.executable.encode(), b"-m", b"contact_register.cli", b"request", b"new", b"--kind", b"access",
                           b"--name", b"Matti \xff\xfe Virtanen"], cwd=REPO, capture_output=True, timeout=120)
    assert proc.returncode == 2 and b"Unicode" in proc.stderr
    bad_json = cli("new", "--kind", "access", "--stdin", stdin='{"emails": ["\\ud800@example.fi"]}')
    assert bad_json.returncode == 2 and "Unicode" in bad_json.stderr
    result = defs.resolve_job_def("subject_export").execute_in_process(
        run_config={"ops": {"export_subject_data": {"config": {"phones": ["123"], "verified_method": "x"}}}},
        instance=DagsterInstance.ephemeral(), raise_on_error=False)
    assert not result.success
    listed = cli("list", "--all", "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == []


def test_shared_mailbox_needs_the_name_and_a_name_alone_selects_nobody(export_env, sandbox, small_world):
    import duckdb

    from contact_register.requests.export.export import find_subject
    from contact_register.requests.cases import validate_identifiers

    hid, mailbox, namesake_id, colleagues = pick_humans(small_world)
    h = next(x for x in small_world.humans if x.true_person_id == hid)
    con = duckdb.connect(os.environ["WAREHOUSE_PATH"], read_only=True)

    def persons_of(human_id):
        ids = sorted(str(r) for _, r, t in small_world.truth("pipedrive") if t == human_id)
        return {p for (p,) in con.execute(
            "SELECT DISTINCT person_id FROM person_records WHERE system = 'pipedrive' AND record_kind = 'person' "
            "AND record_id IN (SELECT unnest(?::VARCHAR[]))", [ids]).fetchall()}

    full_name = f"{h.first_name} {h.last_name}"
    alone = find_subject(con, validate_identifiers(emails=[mailbox]))
    assert alone.person_ids == [] and alone.ambiguous_identifiers == 1
    by_name = find_subject(con, validate_identifiers(name=full_name))
    assert by_name.person_ids == []  # the namesake makes a name worthless, and so does the rule
    settled = find_subject(con, validate_identifiers(emails=[mailbox], name=f"{h.last_name} {h.first_name}"))
    assert set(settled.person_ids) == persons_of(hid)
    for other in [namesake_id, *colleagues]:
        assert not persons_of(other) & set(settled.person_ids)
    con.close()


def test_expired_exports_are_deleted_and_the_case_keeps_the_checksum(export_env):
    from datetime import datetime, timedelta, timezone

    from pipelines.jobs.subject_export import purge_expired
    from contact_register.requests.cases import validate_identifiers

    reg = open_register()
    case = reg.new_case("access", validate_identifiers(emails=["x@example.fi"]), actor="dpo")
    folder = Path(os.environ["EXPORT_DIR"])
    folder.mkdir(parents=True)
    old = folder / f"{case.case_id}-20260101T000000Z.zip"
    old.write_bytes(b"zip")
    past = (datetime.now(timezone.utc) - timedelta(days=1)).isoformat(timespec="seconds")
    reg.record_export(case.case_id, file_name=old.name, sha256="ab" * 32, size=3, expires_at=past, actor="dpo",
                      systems={})
    assert purge_expired(reg, folder, "dagster:test") == 1
    assert not old.exists()
    got = reg.get(case.case_id, with_audit=True)
    assert got.export_sha256 == "ab" * 32 and got.export_file is None
    assert got.audit[-1]["action"] == "export_removed"
    assert purge_expired(reg, folder, "dagster:test") == 0


def test_a_failing_api_marks_the_system_failed_and_keeps_what_the_warehouse_holds(export_env, sandbox, small_world):
    from contact_register.requests.export.export import export_subject
    from contact_register.requests.export.exporters import Clients
    from contact_register.requests.cases import validate_identifiers
    from tests.conftest import make_client

    pw = small_world.derive("pipedrive")
    hid = {p.id: p.true_person_id for p in pw.persons}[sorted({m.person_id for m in pw.mails})[0]]
    truth = Truth(sandbox, small_world, hid)
    h = truth.human
    sandbox.pipedrive.set_faults(1.0, ["5xx"])  # every API call fails, after the sync
    result = export_subject(
        case={"case_id": "ACC-20260101-fa11ed"}, identifiers=validate_identifiers([h.email], [h.phone_e164]),
        warehouse_path=os.environ["WAREHOUSE_PATH"], export_dir=os.environ["EXPORT_DIR"],
        desc=load_description(), live=Clients({"pipedrive": lambda: make_client(sandbox)}))
    sandbox.pipedrive.set_faults(0)
    pd = result.results["pipedrive"]
    assert pd.state == "failed" and pd.error.startswith("live read failed: RetryableError")
    data = read_zip(result.path)
    assert ids_in(data, "pipedrive", "person") == truth.person_ids  # the warehouse's part is still there
    assert "pipedrive/mail_message.json" not in data
    manifest = json.loads(data["manifest.json"])
    assert manifest["systems"]["pipedrive"]["state"] == "failed"
    assert "Haku epäonnistui" in data["report.html"].decode()

