"""The marketing_ban job on the sandboxes (Pipedrive, Google Workspace, Netvisor) and the real
RT: each system read back after the ban, every answer recorded in the case, a second run only
reads, a dry run changes nothing; Pipedrive's silent refusal of the status and the label
fallback; nothing personal in Dagster's event log."""

import pytest
from dagster import DagsterInstance

from contact_register.requests.export.google_find import find
from pipelines.definitions import defs
from contact_register.requests.export.exporters import Clients
from contact_register.requests.marketing_ban.pipedrive import PipedriveBanner
from contact_register.requests.marketing_ban.registry import BANNERS
from contact_register.requests.cases import open_register, validate_identifiers
from contact_register.requests.suppression.store import SuppressionList
from contact_register.requests.writeback.base import WritebackSubject
from tests.conftest import make_client
from tests.test_google_sync import make_google_client


CORE = ("pipedrive", "google", "netvisor", "request_tracker")


@pytest.fixture
def ban_env(pipedrive_env, google_sandbox, tmp_path, monkeypatch):
    monkeypatch.setenv("SUPPRESSION_KEY_FILE", str(tmp_path / "suppression.key"))
    monkeypatch.setenv("GOOGLE_MAILING_LISTS", f"uutiskirje@{google_sandbox.google.domain}")
    monkeypatch.delenv("PIPEDRIVE_BAN_LABEL_ID", raising=False)
    monkeypatch.delenv("PIPEDRIVE_BAN_FIELD", raising=False)
    return tmp_path


def pipedrive_records(world, human) -> list:
    return [p for p in world.derive("pipedrive").persons if p.true_person_id == human.true_person_id]


def pick_human(world, google, *, skip=()) -> object:
    """A human in Pipedrive (every record with an email), on the mailing list and in a mailbox's
    contacts, whose address is personal."""
    members = google.dir_groups[f"uutiskirje@{google.domain}"]
    contacts = {e["value"].lower() for box in google.people.values() for p in box["connections"].values()
                for e in p.get("emailAddresses", [])}
    for h in world.humans:
        recs = pipedrive_records(world, h)
        if (h.true_person_id not in skip and recs and all(r.emails for r in recs) and h.email in members
                and h.email in contacts):
            return h
    pytest.fail("the test world has no human in Pipedrive, on the mailing list and in contacts")


def run_nightly(instance):
    """nightly_sync in process; returns the result after checking the steps this feature needs."""
    result = defs.resolve_job_def("nightly_sync").execute_in_process(instance=instance, raise_on_error=False)
    for step in ("warehouse", "suppression_check"):
        assert result.is_node_success(step), result.failure_data_for_node(step)
    return result


def run_ban(instance, case_id, *, dry_run=False):
    return defs.resolve_job_def("marketing_ban").execute_in_process(
        instance=instance, raise_on_error=False,
        run_config={"ops": {"ban_marketing": {"config": {"case_id": case_id, "dry_run": dry_run}}}})


def objection_case(human) -> str:
    ids = validate_identifiers([human.email], [human.phone_e164], f"{human.first_name} {human.last_name}")
    with open_register() as reg:
        return reg.new_case("objection", ids, actor="tietosuojavastaava").case_id


def pd_state(sandbox, world, human) -> dict[int, tuple]:
    pd = sandbox.pipedrive
    ids = {int(rid) for _, rid, t in world.truth("pipedrive") if t == human.true_person_id}
    return {pid: (pd.get("persons", pid)["marketing_status"], pd.get("persons", pid)["update_time"]) for pid in ids}


def personal_strings(human) -> list[str]:
    return [human.email, human.email.upper(), human.phone_e164, human.phone_e164[4:], human.last_name]


def test_ban_job_bans_everywhere_verifies_and_is_idempotent(ban_env, sandbox, google_sandbox, small_world):
    g = google_sandbox.google
    instance = DagsterInstance.ephemeral()
    run_nightly(instance)
    h = pick_human(small_world, g)
    case_id = objection_case(h)
    before = pd_state(sandbox, small_world, h)
    assert before and any(status != "unsubscribed" for status, _ in before.values())

    # A dry run reads and reports, and changes nothing anywhere.
    dry = run_ban(instance, case_id, dry_run=True)
    assert dry.success
    assert pd_state(sandbox, small_world, h) == before and h.email in g.dir_groups[f"uutiskirje@{g.domain}"]
    with open_register() as reg:
        assert reg.get(case_id).systems == {}
        assert SuppressionList(reg).is_empty()

    result = run_ban(instance, case_id)
    assert result.success
    # Ground truth in each system.
    after = pd_state(sandbox, small_world, h)
    assert {status for status, _ in after.values()} == {"unsubscribed"}
    assert h.email not in g.dir_groups[f"uutiskirje@{g.domain}"]
    client = make_google_client(google_sandbox)
    found = find(client, h.email)
    assert found.contacts
    for c in found.contacts:
        groups = g.people[c["user"]]["groups"].values()
        assert any(gr["name"] == "Ei markkinointia" and c["resource_name"] in gr["memberResourceNames"]
                   for gr in groups)
    with open_register() as reg:
        case = reg.get(case_id, with_audit=True)
        states = {s: st.state for s, st in case.systems.items()}
        assert set(states) == set(BANNERS)  # every system with a banner answered
        assert {s: states[s] for s in CORE} == {"pipedrive": "done", "google": "done",
                                                "netvisor": "not_applicable", "request_tracker": "not_applicable"}
        assert case.systems["pipedrive"].records == len(after)
        assert "Netvisor" in case.systems["netvisor"].detail
        assert any(a["action"] == "suppression_added" for a in case.audit)
        assert SuppressionList(reg).reasons_of(case_id) == ["ban"]

    # Again: harmless, and Pipedrive is only read (no person changes its update time).
    again = run_ban(instance, case_id)
    assert again.success
    assert pd_state(sandbox, small_world, h) == after
    with open_register() as reg:
        assert {s: st.state for s, st in reg.get(case_id).systems.items()}["pipedrive"] == "done"

    logs = "\n".join(str(e) for e in instance.all_logs(result.run_id) + instance.all_logs(dry.run_id))
    leaked = [s for s in personal_strings(h) if s in logs]
    assert not leaked, f"{len(leaked)} personal strings in the event log"


def test_ban_job_refuses_other_case_kinds_and_a_missing_warehouse(ban_env):
    instance = DagsterInstance.ephemeral()
    ids = validate_identifiers(["joku.muu@esimerkki.fi"])
    with open_register() as reg:
        access = reg.new_case("access", ids, actor="a").case_id
        objection = reg.new_case("objection", ids, actor="a").case_id
    result = run_ban(instance, access)
    assert not result.success
    assert "objection" in str(result.failure_data_for_node("ban_marketing").error)
    # Without a warehouse the job says so, before anything is written.
    result = run_ban(instance, objection)
    assert not result.success and "nightly_sync" in str(result.failure_data_for_node("ban_marketing").error)


def subject_for(human, case_id="OBJ-TEST") -> WritebackSubject:
    ids = validate_identifiers([human.email])
    return WritebackSubject(case_id=case_id, identifiers=ids, emails=[human.email],
                            names=[f"{human.first_name} {human.last_name}"])


def test_pipedrive_silent_refusal_fails_loudly_and_the_label_fallback_sticks(sandbox, small_world, monkeypatch):
    monkeypatch.delenv("PIPEDRIVE_BAN_LABEL_ID", raising=False)
    h = next(h for h in small_world.humans
             if pipedrive_records(small_world, h) and all(r.emails for r in pipedrive_records(small_world, h)))
    client = make_client(sandbox)
    pids = [p.id for p in pipedrive_records(small_world, h)]
    for pid in pids:  # the once-only rule: each person's one status change is used up
        current = client.get("persons", pid)["marketing_status"]
        client.set_marketing_status(pid, "archived" if current != "archived" else "subscribed")
    clients = Clients({"pipedrive": lambda: make_client(sandbox)})
    banner = PipedriveBanner()
    subject = subject_for(h)
    outcome = banner.ban(clients, subject)
    assert outcome.state == "failed" and "PIPEDRIVE_BAN_LABEL_ID" in outcome.error
    assert sorted(int(r.split(":")[1]) for r in banner.verify(clients, subject)) == sorted(pids)
    assert h.email not in outcome.error

    monkeypatch.setenv("PIPEDRIVE_BAN_LABEL_ID", "24")
    outcome = banner.ban(clients, subject)
    assert outcome.state == "done" and outcome.records == len(pids)
    assert banner.verify(clients, subject) == []
    for pid in pids:
        rec = sandbox.pipedrive.get("persons", pid)
        assert 24 in rec["label_ids"] and rec["marketing_status"] != "unsubscribed"
    clients.close()


def test_a_rerun_keeps_the_officers_answer_to_a_manual_task(ban_env):
    from contact_register.requests.marketing_ban.run import ban_everywhere, record_outcomes

    ids = validate_identifiers(["joku.muu@esimerkki.fi"])
    with open_register() as reg:
        case_id = reg.new_case("objection", ids, actor="a").case_id
        subject = WritebackSubject(case_id=case_id, identifiers=ids, emails=["joku.muu@esimerkki.fi"])
        outcomes = ban_everywhere(Clients({}), subject, systems=["dealfront", "netvisor"])
        assert {s: o.state for s, o in outcomes.items()} == {"dealfront": "manual_open", "netvisor": "not_applicable"}
        record_outcomes(reg, case_id, outcomes, actor="dagster:1")
        reg.set_system_state(case_id, "dealfront", "manual_answered", actor="tietosuojavastaava",
                             detail="excluded in Dealfront")
        record_outcomes(reg, case_id, outcomes, actor="dagster:2")  # the job run again
        systems = reg.get(case_id).systems
        assert systems["dealfront"].state == "manual_answered" and systems["dealfront"].detail == "excluded in Dealfront"
        assert systems["netvisor"].state == "not_applicable"
