"""Every Dagster resource of the code location, by key: secrets and endpoints as
``EnvVar`` (Dagster stores the variable's name, never its value); settings the
resources read from the environment when a step runs are named beside them."""

from dagster import EnvVar

from assets.resources import (GoogleWorkspaceResource, NetvisorResource, RequestTrackerResource, PipedriveResource,
    StorageResource, DocueResource, MatomoResource, TrustmaryResource, RegisterResource, NotifierResource)

RESOURCES = {
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
}
