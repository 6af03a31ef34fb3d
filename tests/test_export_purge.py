"""Export packages leave the export folder when they are replaced or expire, and the case's trail
says so: a re-run of subject_export deletes the package it replaces at once; the daily deadline
digest deletes expired ones even when no other export runs."""

import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from dagster import DagsterInstance

from contact_register.warehouse.build import build_warehouse
from pipelines.definitions import defs
from contact_register.requests.cases import open_register, validate_identifiers
from tests.test_pipedrive_sync import run_sync


@pytest.fixture
def export_env(sandbox, tmp_path, monkeypatch):
    """Pipedrive synced into a raw store and a warehouse; register and export folder in tmp."""
    for key, value in sandbox.env().items():
        monkeypatch.setenv(key, value)
    # The other systems are never called (no live reads), but the job's resources need settings.
    for key in ("GOOGLE_ADMIN_SUBJECT", "RT_URL", "RT_TOKEN", "RT_USER", "RT_PASSWORD", "NETVISOR_BASE_URL",
                "NETVISOR_SENDER", "NETVISOR_CUSTOMER_ID", "NETVISOR_PARTNER_ID", "NETVISOR_CUSTOMER_KEY",
                "NETVISOR_PARTNER_KEY", "NETVISOR_ORGANISATION_ID", "TRUSTMARY_API_KEY", "TRUSTMARY_BASE_URL",
                "MATOMO_BASE_URL", "MATOMO_TOKEN_AUTH", "DOCUE_API_TOKEN", "DOCUE_BASE_URL"):
        monkeypatch.setenv(key, os.environ.get(key) or "http://127.0.0.1:9/unused")
    monkeypatch.setenv("RAW_DIR", str(tmp_path / "raw"))
    monkeypatch.setenv("WAREHOUSE_PATH", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("REGISTER_URL", str(tmp_path / "register.sqlite"))
    monkeypatch.setenv("EXPORT_DIR", str(tmp_path / "exports"))
    monkeypatch.setenv("EXPORT_EXPIRE_DAYS", "14")
    monkeypatch.delenv("NOTIFY_SMTP_HOST", raising=False)
    monkeypatch.delenv("NOTIFY_WEBHOOK_URL", raising=False)
    run_sync(sandbox, tmp_path / "raw")
    build_warehouse(str(tmp_path / "raw"), str(tmp_path / "warehouse.duckdb"))
    return tmp_path


def _export(case_id):
    result = defs.resolve_job_def("subject_export").execute_in_process(
        run_config={"ops": {"export_subject_data": {"config": {"case_id": case_id, "live_reads": False}}}},
        instance=DagsterInstance.ephemeral())
    assert result.success
    return result


def test_a_rerun_deletes_the_package_it_replaces_and_the_trail_says_so(export_env, small_world):
    human = small_world.humans[0]
    with open_register() as reg:
        case = reg.new_case("access", validate_identifiers([human.email]), actor="dpo", systems=["pipedrive"])
        reg.verify(case.case_id, method="email reply", actor="dpo")
    folder = export_env / "exports"
    _export(case.case_id)
    with open_register() as reg:
        first = reg.get(case.case_id).export_file
    assert (folder / first).exists()
    time.sleep(1.1)  # package names carry the second they were made
    _export(case.case_id)
    with open_register() as reg:
        got = reg.get(case.case_id, with_audit=True)
    assert got.export_file != first
    assert sorted(p.name for p in folder.iterdir()) == [got.export_file]
    removed = [r["detail"] for r in got.audit if r["action"] == "export_removed"]
    assert removed == [{"file": first, "reason": "replaced by a new export", "file_existed": True}]
    written = [r["detail"]["replaces"] for r in got.audit if r["action"] == "export_written"]
    assert written == [None, first]


def test_the_daily_digest_deletes_expired_packages_without_another_export(export_env):
    folder = export_env / "exports"
    folder.mkdir()
    now = datetime.now(timezone.utc)
    with open_register() as reg:
        made = {}
        for label, expires in (("expired", now - timedelta(hours=1)), ("valid", now + timedelta(days=3))):
            case = reg.new_case("access", validate_identifiers([f"{label}@esimerkki.fi"]), actor="dpo")
            name = f"{case.case_id}-20260101T000000Z.zip"
            (folder / name).write_bytes(b"PK\x05\x06" + b"\x00" * 18)
            reg.record_export(case.case_id, file_name=name, sha256="ab" * 32, size=22, systems={}, actor="dpo",
                              expires_at=expires.isoformat(timespec="seconds"))
            made[label] = (case.case_id, name)
        gone = made["expired"][0]
        reg.close_case(gone, outcome="answered", actor="dpo")  # a closed case's package expires too
    result = defs.resolve_job_def("deadline_digest").execute_in_process(instance=DagsterInstance.ephemeral())
    assert result.success
    assert sorted(p.name for p in folder.iterdir()) == [made["valid"][1]]
    with open_register() as reg:
        expired = reg.get(gone, with_audit=True)
        assert expired.export_file is None and expired.export_sha256 == "ab" * 32
        assert [r["detail"] for r in expired.audit if r["action"] == "export_removed"] == [
            {"file": made["expired"][1], "reason": "expired", "file_existed": True}]
        assert reg.get(made["valid"][0]).export_file == made["valid"][1]
