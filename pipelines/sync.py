"""The sync area of the code location: each system's raw sync asset, the nightly job that runs
every asset (syncs, then the warehouse that depends on them all) and its schedule."""

from dagster import AssetSelection, DefaultScheduleStatus, Definitions, ScheduleDefinition, define_asset_job

from assets.google.assets import raw_google
from assets.netvisor.assets import raw_netvisor
from assets.pipedrive.assets import raw_pipedrive
from assets.request_tracker.assets import raw_request_tracker
from pipelines.concurrency import SYSTEM_RUN_LIMITS, tags_for

nightly_sync = define_asset_job(
    "nightly_sync",
    # Every asset of the merged code location: each system's raw sync, then the warehouse build
    # that depends on them all (the selection is resolved once the areas are merged).
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
    assets=[raw_pipedrive, raw_google, raw_request_tracker, raw_netvisor],
    jobs=[nightly_sync],
    schedules=[nightly_sync_schedule],
)
