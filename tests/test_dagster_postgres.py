"""Production Dagster: PostgreSQL storage and per-system run limits, on the local PostgreSQL."""

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg2
import pytest
import yaml
from dagster import DagsterInstance, DagsterRunStatus

from pipelines.concurrency import SYSTEM_RUN_LIMITS, tag_concurrency_limits
from pipelines.definitions import defs

REPO = Path(__file__).resolve().parents[1]
PG_ADMIN = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _limits(path: Path) -> list[dict]:
    config = yaml.safe_load(path.read_text())
    return [l for l in config["concurrency"]["runs"]["tag_concurrency_limits"] if l["key"].startswith("register/system-")]


def test_instance_files_carry_the_per_system_limits():
    expected = sorted(tag_concurrency_limits(), key=lambda l: l["key"])
    for name in ("dagster.yaml", "dagster.production.yaml"):
        assert sorted(_limits(REPO / "pipelines" / name), key=lambda l: l["key"]) == expected, name
    tags = defs.resolve_job_def("nightly_sync").tags
    assert all(tags.get(f"register/system-{s}") == "true" for s in SYSTEM_RUN_LIMITS)
    assert tags["dagster/max_retries"] == "2"


@pytest.fixture
def pg_database():
    name = f"dagster_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg2.connect(PG_ADMIN)
    except psycopg2.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN}: {exc}")
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3, which dagster-postgres does not
    # support yet (dagster-io/dagster#33958): name the psycopg2 driver.
    yield PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg2://") + "/" + name
    admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def test_postgres_instance_runs_netvisor_jobs_one_at_a_time(pg_database, tmp_path, monkeypatch):
    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "pipelines" / "dagster.production.yaml").read_text())
    probe_log = tmp_path / "probe.jsonl"
    env = dict(os.environ, DAGSTER_HOME=str(home), DAGSTER_PG_URL=pg_database,
               PROBE_LOG=str(probe_log), PROBE_SECONDS="2")
    dagster = str(Path(sys.executable).with_name("dagster"))
    for _ in range(3):
        subprocess.run([dagster, "job", "launch", "-m", "tests.concurrency_probe", "-j", "netvisor_probe"],
                       cwd=REPO, env=env, check=True, capture_output=True, timeout=120)
    monkeypatch.setenv("DAGSTER_PG_URL", pg_database)
    instance = DagsterInstance.from_config(str(home))
    assert "postgres" in type(instance.run_storage).__module__
    assert [r.status for r in instance.get_runs()] == [DagsterRunStatus.QUEUED] * 3

    daemon = subprocess.Popen([str(Path(sys.executable).with_name("dagster-daemon")), "run", "-m", "tests.concurrency_probe"],
                              cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            statuses = [r.status for r in instance.get_runs()]
            if all(s in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE) for s in statuses):
                break
            time.sleep(1)
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)
    assert statuses == [DagsterRunStatus.SUCCESS] * 3
    spans = sorted((s["start"], s["end"]) for s in map(json.loads, probe_log.read_text().splitlines()))
    assert len(spans) == 3
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert start >= end, "two netvisor runs overlapped"
