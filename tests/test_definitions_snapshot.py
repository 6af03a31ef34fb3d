"""The code location's public surface, frozen: every asset key, asset check, job (with the
config each op or asset takes), schedule, sensor and resource. A change that moves code
around must leave this unchanged; a deliberate change regenerates the snapshot with
``UPDATE_SNAPSHOT=1 .venv/bin/python -m pytest tests/test_definitions_snapshot.py`` and
the diff is reviewed in the commit (the way dagster-open-platform's ``test_defs.py`` guards
its layout). Only public Dagster APIs are used, no ``dagster._core`` imports."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pipelines.definitions import defs

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.json"


def _config(config_type) -> object:
    """A config type as plain data: shapes as {field: ...} (with '?' on optional fields), the
    rest as Dagster's type key (``String``, ``Noneable.Array.StringSourceType``, ...)."""
    fields = getattr(config_type, "fields", None)
    if fields:
        return {name + ("" if field.is_required else "?"): _config(field.config_type)
                for name, field in sorted(fields.items())}
    return config_type.key


def _jobs() -> dict:
    jobs = {}
    for job in defs.resolve_all_job_defs():
        if job.name.startswith("__"):  # Dagster's implicit asset job
            continue
        ops = job.run_config_schema.config_type.fields["ops"].config_type
        jobs[job.name] = {
            "ops": {name: _config(field.config_type) for name, field in sorted(ops.fields.items())},
            "resources": sorted(job.required_resource_keys),
            "tags": {k: v for k, v in sorted(job.tags.items())},
        }
    return dict(sorted(jobs.items()))


def _schedules() -> dict:
    out = {}
    for schedule in defs.schedules:
        resolved = defs.resolve_schedule_def(schedule.name)
        out[resolved.name] = {"cron": resolved.cron_schedule, "timezone": resolved.execution_timezone,
                              "job": resolved.job_name, "default_status": resolved.default_status.value}
    return dict(sorted(out.items()))


def _sensors() -> dict:
    out = {}
    for sensor in defs.sensors:
        resolved = defs.resolve_sensor_def(sensor.name)
        jobs = sorted(t.job_name for t in resolved.targets) if resolved.has_jobs else []
        out[resolved.name] = {"jobs": jobs, "default_status": resolved.default_status.value}
    return dict(sorted(out.items()))


def _resources() -> dict:
    return {key: {"class": type(res).__name__,
                  "fields": sorted(getattr(type(res), "model_fields", {}))}
            for key, res in sorted(defs.resources.items())}


def current() -> dict:
    graph = defs.resolve_asset_graph()
    return {
        "assets": sorted(key.to_user_string() for key in defs.resolve_all_asset_keys()),
        "asset_checks": sorted(f"{key.asset_key.to_user_string()}:{key.name}" for key in graph.asset_check_keys),
        "jobs": _jobs(),
        "schedules": _schedules(),
        "sensors": _sensors(),
        "resources": _resources(),
    }


def test_definitions_match_snapshot():
    now = current()
    if os.environ.get("UPDATE_SNAPSHOT"):
        SNAPSHOT.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
    expected = json.loads(SNAPSHOT.read_text())
    # Section by section, so that a failure names what changed.
    for section in expected:
        assert now.get(section) == expected[section], f"Definitions changed: {section}"
    assert set(now) == set(expected)
