"""The Dagster code location: assets, resources, the nightly job and its schedule."""

from dagster import AssetSelection, DefaultScheduleStatus, Definitions, ScheduleDefinition, define_asset_job

from assets.checks.asset_checks import last_sync, notice_conformance
from assets.google.assets import raw_google
from assets.netvisor.assets import raw_netvisor
from assets.pipedrive.assets import raw_pipedrive
from assets.request_tracker.assets import raw_request_tracker
from assets.suppression.assets import suppression_check
from assets.warehouse.assets import warehouse
from pipelines.concurrency import SYSTEM_RUN_LIMITS, tags_for
from pipelines.jobs.connections_check import connections_check
from pipelines.jobs.erasure import erasure, erasure_hold_sensor
from pipelines.jobs.marketing_ban import marketing_ban
from pipelines.jobs.rectification import rectification
from pipelines.jobs.restriction import restriction
from pipelines.jobs.retention_review import retention_review, retention_review_schedule
from pipelines.jobs.subject_export import subject_export
from pipelines.resources import RESOURCES
from pipelines.sensors import deadline_digest, deadline_digest_schedule, raw_freshness_alert, run_failure_alert

nightly_sync = define_asset_job(
    "nightly_sync",
    # Every asset: each system's raw sync, then the warehouse build that depends on them all.
    selection=AssetSelection.all(),
    description="Pull every system into its raw store, rebuild the warehouse and publish it.",
    # Touches every system; safe to retry: each step resumes from its stored cursor.
    tags={"register/job": "nightly_sync", "dagster/max_retries": "2", **tags_for(SYSTEM_RUN_LIMITS)},
)

nightly_sync_schedule = ScheduleDefinition(
    name="nightly_sync_schedule",
    job=nightly_sync,
    cron_schedule="0 2 * * *",
    execution_timezone="Europe/Helsinki",
    default_status=DefaultScheduleStatus.RUNNING,
)

defs = Definitions(
    assets=[raw_pipedrive, raw_google, raw_request_tracker, raw_netvisor, warehouse, suppression_check],
    asset_checks=[last_sync, notice_conformance],
    jobs=[nightly_sync, subject_export, erasure, marketing_ban, deadline_digest, rectification,
          restriction, retention_review, connections_check],
    schedules=[nightly_sync_schedule, deadline_digest_schedule, retention_review_schedule],
    sensors=[erasure_hold_sensor, run_failure_alert, raw_freshness_alert],
    resources=RESOURCES,
)


def resolved_subject_export():
    """The job with the code location's resources, for launching from Python with
    ``dagster.execute_job(reconstructable(resolved_subject_export), instance, run_config)``:
    each step then runs in its own process, as a run launched from the UI does."""
    return defs.resolve_job_def("subject_export")
