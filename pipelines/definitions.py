"""The Dagster code location: assets, resources, the nightly job and its schedule."""

from dagster import AssetSelection, DefaultScheduleStatus, Definitions, EnvVar, ScheduleDefinition, define_asset_job

from assets.google.assets import GoogleWorkspaceResource, raw_google
from assets.netvisor.assets import NetvisorResource, raw_netvisor
from assets.pipedrive.assets import raw_pipedrive
from assets.request_tracker.assets import RequestTrackerResource, raw_request_tracker
from assets.checks.asset_checks import last_sync, notice_conformance
from assets.resources import PipedriveResource, StorageResource
from assets.small_processors import DocueResource, MatomoResource, TrustmaryResource
from assets.suppression.assets import suppression_check
from assets.warehouse.assets import warehouse
from pipelines.concurrency import SYSTEM_RUN_LIMITS, tags_for
from pipelines.jobs.connections_check import connections_check
from pipelines.jobs.erasure import erasure, erasure_hold_sensor
from pipelines.jobs.marketing_ban import marketing_ban
from pipelines.jobs.rectification import rectification
from pipelines.jobs.restriction import restriction
from pipelines.jobs.retention_review import retention_review, retention_review_schedule
from pipelines.jobs.subject_export import RegisterResource, subject_export
from pipelines.notify import NotifierResource
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
    resources={
        "pipedrive": PipedriveResource(
            base_url=EnvVar("PIPEDRIVE_BASE_URL"),
            api_token=EnvVar("PIPEDRIVE_API_TOKEN"),
        ),
        # The service-account key is read from GOOGLE_SERVICE_ACCOUNT_JSON/_FILE when the step runs.
        "google": GoogleWorkspaceResource(admin_subject=EnvVar("GOOGLE_ADMIN_SUBJECT")),
        # RT 5 REST2: a token (RT_TOKEN) or basic auth (RT_USER/RT_PASSWORD); the unused ones may be empty.
        "request_tracker": RequestTrackerResource(
            url=EnvVar("RT_URL"),
            token=EnvVar("RT_TOKEN"),
            user=EnvVar("RT_USER"),
            password=EnvVar("RT_PASSWORD"),
        ),
        "netvisor": NetvisorResource(
            base_url=EnvVar("NETVISOR_BASE_URL"),
            sender=EnvVar("NETVISOR_SENDER"),
            customer_id=EnvVar("NETVISOR_CUSTOMER_ID"),
            partner_id=EnvVar("NETVISOR_PARTNER_ID"),
            customer_key=EnvVar("NETVISOR_CUSTOMER_KEY"),
            partner_key=EnvVar("NETVISOR_PARTNER_KEY"),
            organisation_id=EnvVar("NETVISOR_ORGANISATION_ID"),
        ),
        # The smaller processors, read and changed live by the data-subject jobs (not synced).
        "trustmary": TrustmaryResource(base_url=EnvVar("TRUSTMARY_BASE_URL"), api_key=EnvVar("TRUSTMARY_API_KEY")),
        "matomo": MatomoResource(base_url=EnvVar("MATOMO_BASE_URL"), token_auth=EnvVar("MATOMO_TOKEN_AUTH")),
        "docue": DocueResource(base_url=EnvVar("DOCUE_BASE_URL"), api_token=EnvVar("DOCUE_API_TOKEN")),
        "storage": StorageResource(),
        # The request register (REGISTER_URL, default SQLite data/register.sqlite) and the
        # export folder (EXPORT_DIR, EXPORT_EXPIRE_DAYS), read from the environment at run time.
        "register": RegisterResource(),
        # Mail (NOTIFY_SMTP_*, NOTIFY_FROM, NOTIFY_TO) and webhook (NOTIFY_WEBHOOK_URL), read when a
        # notice is sent so that an installation without mail still loads.
        "notifier": NotifierResource(),
    },
)
