"""The Dagster code location: the nightly job runs end to end and leaks no personal data."""

import os
import subprocess
import sys
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path

import duckdb
from dagster import DagsterInstance
from dagster._utils.schedules import schedule_execution_time_iterator

from pipelines.definitions import defs
from tests.conftest import demo_dagster_home

REPO = Path(__file__).resolve().parents[1]


def personal_strings(sandbox) -> set[str]:
    """Every email, phone and full name the sandbox's Pipedrive holds."""
    out = set()
    for rid in sandbox.pipedrive.live_ids("persons"):
        p = sandbox.pipedrive.get("persons", rid)
        for item in (p.get("emails") or []) + (p.get("phones") or []):
            if isinstance(item, dict) and isinstance(item.get("value"), str) and len(item["value"].strip()) > 5:
                out.add(item["value"].strip())
        if isinstance(p.get("name"), str) and " " in p["name"]:
            out.add(p["name"])
    return out


def fire_times(schedule_name: str, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` times Dagster's scheduler fires the schedule after ``after`` (the
    iterator the scheduler daemon runs on the schedule's cron and time zone), in UTC."""
    schedule = defs.resolve_schedule_def(schedule_name)
    times = schedule_execution_time_iterator(after.timestamp(), schedule.cron_schedule, schedule.execution_timezone)
    return [t.astimezone(timezone.utc) for t in islice(times, count)]


def test_nightly_sync_runs_at_two_every_night_helsinki_time():
    # Written out by hand: 02:00 in Helsinki is 00:00 UTC in winter (EET, +2) and 23:00 UTC the
    # day before in summer (EEST, +3); summer time began on Sunday 29 March 2026 at 03:00.
    assert fire_times("nightly_sync_schedule", datetime(2026, 3, 28, 12, 0, tzinfo=timezone.utc), 3) == [
        datetime(2026, 3, 29, 0, 0, tzinfo=timezone.utc),
        datetime(2026, 3, 29, 23, 0, tzinfo=timezone.utc),
        datetime(2026, 3, 30, 23, 0, tzinfo=timezone.utc),
    ]
    assert defs.resolve_schedule_def("nightly_sync_schedule").job_name == "nightly_sync"
    assert defs.resolve_job_def("nightly_sync") is not None


def test_nightly_sync_in_process_publishes_and_keeps_pii_out_of_events(pipedrive_env, sandbox, tmp_path):
    instance = DagsterInstance.ephemeral()
    result = defs.resolve_job_def("nightly_sync").execute_in_process(instance=instance)
    assert result.success
    wh = Path(os.environ["WAREHOUSE_PATH"])
    con = duckdb.connect(str(wh), read_only=True)
    persons = con.execute("SELECT count(*) FROM persons").fetchone()[0]
    con.close()
    assert persons > 0
    mats = {
        tuple(e.asset_key.path): e.event_specific_data.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    assert mats[("persons",)]["rows"].value == persons
    assert mats[("raw_pipedrive", "persons")]["rows"].value == len(sandbox.pipedrive.live_ids("persons"))
    logs = "\n".join(str(e) for e in instance.all_logs(result.run_id))
    leaked = [s for s in personal_strings(sandbox) if s in logs]
    assert not leaked, f"{len(leaked)} personal strings in Dagster's event log"


def test_nightly_sync_from_the_command_line_like_the_demo(pipedrive_env, sandbox, tmp_path):
    home = demo_dagster_home(tmp_path / "dagster")
    env = dict(os.environ, DAGSTER_HOME=str(home))
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("dagster")), "job", "execute", "-m", "pipelines.definitions", "-j", "nightly_sync"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert Path(os.environ["WAREHOUSE_PATH"]).exists()
    instance = DagsterInstance.from_config(str(home))
    runs = instance.get_runs()
    assert len(runs) == 1 and runs[0].job_name == "nightly_sync" and runs[0].is_success
    # Nothing Dagster stored (run storage, event logs, compute logs) holds personal data.
    secrets = personal_strings(sandbox)
    for path in home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for s in secrets:
                assert s.encode() not in data, f"personal data in {path.relative_to(home)}"
    assert secrets
    output = proc.stdout + proc.stderr
    assert not [s for s in secrets if s in output]
