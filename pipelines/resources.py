"""Every Dagster resource of the code location, by key, and every setting it takes from the
environment: required ones (secrets, endpoints) as ``EnvVar`` (Dagster stores the variable's
name, never its value); optional ones by the name of their variable in ``optional_env``, read
when a run uses them (``assets.resources.SettingsResource`` says why they are not ``EnvVar``).
Nothing else in assets/ or pipelines/ reads the environment."""

from dagster import EnvVar

from assets.resources import (GoogleWorkspaceResource, NetvisorResource, RequestTrackerResource, PipedriveResource,
    StorageResource, DocueResource, MatomoResource, TrustmaryResource, RegisterResource, NotifierResource)

RESOURCES = {
    "pipedrive": PipedriveResource(
        base_url=EnvVar("PIPEDRIVE_BASE_URL"),
        api_token=EnvVar("PIPEDRIVE_API_TOKEN"),
    ),
    # The service-account key as JSON or as a key file; the endpoints are set by the sandbox only.
    "google": GoogleWorkspaceResource(
        admin_subject=EnvVar("GOOGLE_ADMIN_SUBJECT"),
        optional_env={"service_account_json": "GOOGLE_SERVICE_ACCOUNT_JSON",
                      "service_account_file": "GOOGLE_SERVICE_ACCOUNT_FILE", "domain": "GOOGLE_DOMAIN",
                      "api_endpoint": "GOOGLE_API_ENDPOINT", "token_uri": "GOOGLE_TOKEN_URI"},
    ),
    # RT 5 REST2: a token (RT_TOKEN) or basic auth (RT_USER/RT_PASSWORD); the unused ones may be empty.
    "request_tracker": RequestTrackerResource(
        url=EnvVar("RT_URL"),
        token=EnvVar("RT_TOKEN"),
        user=EnvVar("RT_USER"),
        password=EnvVar("RT_PASSWORD"),
        optional_env={"site_config": "RT_SITE_CONFIG", "site_config_dir": "RT_SITE_CONFIG_DIR"},
    ),
    "netvisor": NetvisorResource(
        base_url=EnvVar("NETVISOR_BASE_URL"),
        sender=EnvVar("NETVISOR_SENDER"),
        customer_id=EnvVar("NETVISOR_CUSTOMER_ID"),
        partner_id=EnvVar("NETVISOR_PARTNER_ID"),
        customer_key=EnvVar("NETVISOR_CUSTOMER_KEY"),
        partner_key=EnvVar("NETVISOR_PARTNER_KEY"),
        organisation_id=EnvVar("NETVISOR_ORGANISATION_ID"),
        # The per-customer lock file lives with the raw stores.
        optional_env={"lock_dir": "RAW_DIR"},
    ),
    # The smaller processors, read and changed live by the data-subject jobs (not synced).
    "trustmary": TrustmaryResource(base_url=EnvVar("TRUSTMARY_BASE_URL"), api_key=EnvVar("TRUSTMARY_API_KEY")),
    "matomo": MatomoResource(base_url=EnvVar("MATOMO_BASE_URL"), token_auth=EnvVar("MATOMO_TOKEN_AUTH"),
                             optional_env={"user_id_format": "MATOMO_USER_ID_FORMAT", "site_ids": "MATOMO_SITE_IDS"}),
    "docue": DocueResource(base_url=EnvVar("DOCUE_BASE_URL"), api_token=EnvVar("DOCUE_API_TOKEN")),
    "storage": StorageResource(optional_env={
        "raw_dir": "RAW_DIR", "warehouse_path": "WAREHOUSE_PATH", "identity_decisions_path": "IDENTITY_DECISIONS_PATH",
        "freshness_max_age_hours": "FRESHNESS_MAX_AGE_HOURS"}),
    # The request register (default SQLite data/register.sqlite; a PostgreSQL URL holds a password)
    # and the export folder.
    "register": RegisterResource(optional_env={
        "url": "REGISTER_URL", "export_dir": "EXPORT_DIR", "export_expire_days": "EXPORT_EXPIRE_DAYS"}),
    # Mail and webhook; read when a notice is sent, so an installation without mail still loads.
    "notifier": NotifierResource(optional_env={
        "smtp_host": "NOTIFY_SMTP_HOST", "smtp_port": "NOTIFY_SMTP_PORT", "smtp_starttls": "NOTIFY_SMTP_STARTTLS",
        "smtp_user": "NOTIFY_SMTP_USER", "smtp_password": "NOTIFY_SMTP_PASSWORD", "sender": "NOTIFY_FROM",
        "recipients": "NOTIFY_TO", "smtp_ca_file": "NOTIFY_SMTP_CA_FILE", "webhook_url": "NOTIFY_WEBHOOK_URL",
        "dagster_url": "NOTIFY_DAGSTER_URL"}),
}
