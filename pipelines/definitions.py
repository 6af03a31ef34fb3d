"""The Dagster code location: assets, resources, the nightly job and its schedule."""

from dagster import AssetSelection, DefaultScheduleStatus, Definitions, EnvVar, ScheduleDefinition, define_asset_job

from assets.pipedrive.assets import raw_pipedrive
from assets.resources import PipedriveResource, StorageResource
from assets.warehouse.assets import warehouse

nightly_sync = define_asset_job(
    "nightly_sync",
    # Every asset: each system's raw sync, then the warehouse build that depends on them all.
    selection=AssetSelection.all(),
    description="Pull every system into its raw store, rebuild the warehouse and publish it.",
    tags={"register/job": "nightly_sync"},
)

nightly_sync_schedule = ScheduleDefinition(
    name="nightly_sync_schedule",
    job=nightly_sync,
    cron_schedule="0 2 * * *",
    execution_timezone="Europe/Helsinki",
    default_status=DefaultScheduleStatus.RUNNING,
)

defs = Definitions(
    assets=[raw_pipedrive, warehouse],
    jobs=[nightly_sync],
    schedules=[nightly_sync_schedule],
    resources={
        "pipedrive": PipedriveResource(
            base_url=EnvVar("PIPEDRIVE_BASE_URL"),
            api_token=EnvVar("PIPEDRIVE_API_TOKEN"),
        ),
        "storage": StorageResource(),
    },
)
