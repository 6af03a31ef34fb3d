"""Own-store erasure removes exactly the subject, nothing else (issue 15, items 1, 2, 8, 15).

- Dagster: a run or compute-log file goes only when it is proven to concern the case: the
  subject's email or phone (whole, with boundaries), or their full name as whole words; never a
  single name part, never a substring ("Essi" is inside "suppression_check").
- Raw stores: a record other people share loses only the subject's part.
- Nothing derived from an identifier without a key (md5 of an email) is kept after erasure.
- The warehouse build and the erasure's rewrite take the same lock.
"""

import os
import shutil
from pathlib import Path

import pytest
from dagster import Config, DagsterInstance, build_reconstructable_job, execute_job, job, op

from pipelines.erasure.own_stores import erase_own_stores
from pipelines.register import open_register, validate_identifiers
from pipelines.writeback.base import WritebackSubject

REPO = Path(__file__).resolve().parents[1]

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
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copy(REPO / "pipelines" / "dagster.yaml", home / "dagster.yaml")
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
                               dagster_home=home)
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
