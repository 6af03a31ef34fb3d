"""Dagster resources: configuration of the connectors and stores.

Every setting is declared in ``pipelines/resources.py``: required ones (secrets, endpoints) as
``dagster.EnvVar`` fields, so that Dagster stores the variable's name, never its value; optional
ones by the name of their variable in ``optional_env`` (see ``SettingsResource``). An unset
optional setting means the default (paths keep everything under ``data/``).
"""


import dataclasses
import json
from datetime import timedelta
from email.utils import getaddresses
from pathlib import Path

from dagster import ConfigurableResource, EnvVar, Failure

from connectors.docue import DEFAULT_BASE_URL as DOCUE_URL, DocueClient
from connectors.google_workspace import GoogleSettings, GoogleWorkspaceClient, SCOPES_WRITE
from connectors.legal_hold import FinancialYears
from connectors.matomo import MatomoClient
from connectors.netvisor import Credentials, NetvisorClient
from connectors.pipedrive import PipedriveClient
from connectors.request_tracker import RequestTrackerClient, RtAdminTools
from connectors.trustmary import DEFAULT_BASE_URL as TRUSTMARY_URL, TrustmaryClient
from contact_register.notify.message import Notice
from contact_register.notify.senders import NotifyError, SmtpSettings, post_webhook, send_mail
from contact_register.requests.cases import open_register
from contact_register.requests.cases.casebook import Register
from contact_register.requests.export.export import DEFAULT_EXPIRE_DAYS, DEFAULT_EXPORT_DIR
from contact_register.warehouse import identity_state
from contact_register.warehouse.checks.freshness import parse_max_age

DEFAULT_RAW_DIR = "data/raw"
DEFAULT_WAREHOUSE_PATH = "data/warehouse.duckdb"


class SettingsResource(ConfigurableResource):
    """A resource with optional settings. ``optional_env`` maps a field to the environment
    variable that gives it when the field is left empty; the variable is read when the setting is
    used in a run (``EnvVar.get_value``). Why not an ``EnvVar`` field: Dagster's ``EnvVar`` has no
    default and fails every run on an unset variable, which would make each optional setting
    (mail, paths, Matomo's id format) mandatory for every installation."""

    optional_env: dict[str, str] = {}

    def setting(self, field: str, default: str = "", *, strip: bool = True) -> str:
        """The field's configured value, else its variable's value, else ``default``. ``strip``
        off keeps surrounding blanks (a password may hold them)."""
        value = getattr(self, field)
        if value in ("", 0, None):
            name = self.optional_env.get(field)
            value = (EnvVar(name).get_value("") if name else "") or default
        return str(value).strip() if strip else str(value)


class PipedriveResource(ConfigurableResource):
    """Pipedrive company API: base URL (``https://<company>.pipedrive.com``) and API token."""

    base_url: str
    api_token: str
    page_limit: int = 500
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0
    include_marketing_status: bool = True

    def client(self) -> PipedriveClient:
        return PipedriveClient(
            self.base_url,
            self.api_token,
            page_limit=self.page_limit,
            timeout=(self.connect_timeout_s, self.read_timeout_s),
            include_marketing_status=self.include_marketing_status,
        )


class StorageResource(SettingsResource):
    """Where the raw stores (one DuckDB file per system), the published warehouse and the
    identity decisions live (empty: ``data/raw``, ``data/warehouse.duckdb``, and
    ``identity_decisions.duckdb`` beside the warehouse), and after how many hours a system's
    last successful sync counts as stale (empty: 36)."""

    raw_dir: str = ""
    warehouse_path: str = ""
    identity_decisions_path: str = ""
    freshness_max_age_hours: str = ""

    def raw_dir_path(self) -> Path:
        return Path(self.setting("raw_dir", DEFAULT_RAW_DIR))

    def warehouse_file(self) -> Path:
        return Path(self.setting("warehouse_path", DEFAULT_WAREHOUSE_PATH))

    def identity_state_file(self) -> Path:
        return identity_state.default_path(self.warehouse_file(), configured=self.setting("identity_decisions_path"))

    def max_age(self) -> timedelta:
        return parse_max_age(self.setting("freshness_max_age_hours"))


class GoogleWorkspaceResource(SettingsResource):
    """Service account with domain-wide delegation: its key as JSON (``service_account_json``)
    or the path of the key file (``service_account_file``), both given as ``EnvVar`` so no
    secret value ever enters Dagster's config or event log. Empty endpoints mean Google's own
    (the sandbox sets its own)."""

    admin_subject: str
    service_account_json: str = ""
    service_account_file: str = ""
    domain: str = ""
    api_endpoint: str = ""
    token_uri: str = ""
    timeout_s: float = 60.0
    batch_size: int = 50
    max_attempts: int = 6

    def settings(self) -> GoogleSettings:
        # Read when the step runs, so no secret value enters Dagster's config or event log.
        key_file, key_json = self.setting("service_account_file"), self.setting("service_account_json")
        if key_file:
            with open(key_file, encoding="utf-8") as f:
                info = json.load(f)
        elif key_json:
            info = json.loads(key_json)
        else:
            raise Failure("Google needs GOOGLE_SERVICE_ACCOUNT_JSON or GOOGLE_SERVICE_ACCOUNT_FILE")
        return GoogleSettings(
            service_account_info=info,
            admin_subject=self.admin_subject,
            domain=self.setting("domain"),
            api_endpoint=self.setting("api_endpoint") or None,
            token_uri=self.setting("token_uri") or None,
            timeout_s=self.timeout_s,
            batch_size=self.batch_size,
            max_attempts=self.max_attempts,
        )

    def client(self) -> GoogleWorkspaceClient:
        return GoogleWorkspaceClient(self.settings())

    def write_client(self) -> GoogleWorkspaceClient:
        """For the write-back jobs: the sync reads with read-only scopes; deleting mail, events
        and contacts and changing group membership needs the write ones."""
        return GoogleWorkspaceClient(dataclasses.replace(self.settings(), scopes=SCOPES_WRITE))


class NetvisorResource(SettingsResource):
    """Netvisor: base URL (``https://integration.netvisor.fi``), the integration's sender name,
    customer and partner ids and keys, and the company's organisation id (its Y-tunnus).

    ``lock_dir`` holds the per-customer lock file that keeps every process on this machine
    to one request in flight (empty: ``data/raw``; pipelines/resources.py gives ``RAW_DIR``). ``financial_year_start`` (MM-DD) is the
    first day of the company's financial year, for legal-hold end dates, and
    ``financial_year_periods`` lists every financial year that did not follow it (a first or
    changed year of up to 18 months) as ``YYYY-MM-DD/YYYY-MM-DD``."""

    base_url: str
    sender: str
    customer_id: str
    partner_id: str
    customer_key: str
    partner_key: str
    organisation_id: str
    language: str = "FI"
    lock_dir: str = ""
    financial_year_start: str = "01-01"
    financial_year_periods: list[str] = []
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 60.0

    def credentials(self) -> Credentials:
        """The connector's one description of the credentials (``connectors.netvisor.Credentials``),
        filled from this resource's fields of the same names (Dagster config needs them declared)."""
        return Credentials(**{f.name: getattr(self, f.name) for f in dataclasses.fields(Credentials)})

    def client(self) -> NetvisorClient:
        lock_dir = self.setting("lock_dir", DEFAULT_RAW_DIR)
        return NetvisorClient(
            self.base_url, **dataclasses.asdict(self.credentials()),
            timeout=(self.connect_timeout_s, self.read_timeout_s),
            lock_dir=Path(lock_dir), financial_years=self.financial_years(),
        )

    def financial_years(self) -> FinancialYears:
        return FinancialYears.from_config(self.financial_year_start, self.financial_year_periods)


class RequestTrackerResource(SettingsResource):
    """RT 5 REST2: base URL (``https://rt.example.fi``) and a token, or a user and password.
    ``admin_command_prefix`` runs RT's admin tools (rt-shredder) on the RT host for erasure,
    e.g. ``ssh rt-host sudo -u www-data``; empty runs them locally. ``site_config`` and
    ``site_config_dir`` (RT's ``RT_SITE_CONFIG``/``RT_SITE_CONFIG_DIR``) are passed on to them."""

    url: str
    token: str = ""
    user: str = ""
    password: str = ""
    page_size: int = 100
    timeout_s: float = 30.0
    admin_command_prefix: str = ""
    site_config: str = ""
    site_config_dir: str = ""

    def client(self) -> RequestTrackerClient:
        env = {k: v for k, v in (("RT_SITE_CONFIG", self.setting("site_config")),
                                               ("RT_SITE_CONFIG_DIR", self.setting("site_config_dir")))
               if v}
        return RequestTrackerClient(
            self.url, token=self.token, user=self.user, password=self.password,
            page_size=self.page_size, timeout_s=self.timeout_s,
            admin=RtAdminTools(command_prefix=self.admin_command_prefix.split(), env=env),
        )


class TrustmaryResource(ConfigurableResource):
    """Trustmary Integration API: base URL (``https://api.trustmary.io/v1``) and API key."""

    base_url: str = TRUSTMARY_URL
    api_key: str
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0

    def client(self) -> TrustmaryClient:
        return TrustmaryClient(self.base_url or TRUSTMARY_URL, self.api_key,
                               timeout=(self.connect_timeout_s, self.read_timeout_s))


class MatomoResource(SettingsResource):
    """Matomo: the instance's URL (``https://matomo.example.fi``) and a token of a user with
    admin access to the sites (sent as a POST parameter)."""

    base_url: str
    token_auth: str
    user_id_format: str = ""
    site_ids: str = ""
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 60.0

    def client(self) -> MatomoClient:
        return MatomoClient(
            self.base_url, self.token_auth,
            user_id_format=self.setting("user_id_format", "email"),
            site_ids=self.setting("site_ids", "all"),
            timeout=(self.connect_timeout_s, self.read_timeout_s),
        )


class DocueResource(ConfigurableResource):
    """Docue v2 API, read-only: base URL (``https://api.docue.com/public/v2``) and API token."""

    base_url: str = DOCUE_URL
    api_token: str
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0

    def client(self) -> DocueClient:
        return DocueClient(self.base_url or DOCUE_URL, self.api_token,
                           timeout=(self.connect_timeout_s, self.read_timeout_s))


class RegisterResource(SettingsResource):
    """The request register (``REGISTER_URL``: ``postgresql://...``, or a SQLite path; default
    ``data/register.sqlite``) and where exports land (``EXPORT_DIR``, default ``data/exports``)
    and for how many days (``EXPORT_EXPIRE_DAYS``, default 30). The URL is given as ``EnvVar``,
    so a database password never enters Dagster's storage."""

    url: str = ""
    export_dir: str = ""
    export_expire_days: int = 0

    def open(self) -> Register:
        return open_register(self.setting("url"))

    def export_path(self) -> Path:
        return Path(self.setting("export_dir", DEFAULT_EXPORT_DIR))

    def expire_days(self) -> int:
        text = self.setting("export_expire_days", str(DEFAULT_EXPIRE_DAYS))
        if not text.isdigit() or int(text) == 0:
            raise Failure("EXPORT_EXPIRE_DAYS must be a whole number of days")
        return int(text)


TRUE = {"1", "true", "yes", "on"}


FALSE = {"0", "false", "no", "off"}


def _flag(value: str, name: str) -> bool:
    if value.strip().lower() in TRUE:
        return True
    if value.strip().lower() in FALSE:
        return False
    raise NotifyError(f"{name} must be true or false")


def _addresses(value: str, name: str) -> tuple[str, ...]:
    found = tuple(addr for _, addr in getaddresses([value]) if addr)
    if not found or any("@" not in a for a in found):
        raise NotifyError(f"{name} must be one or more email addresses, separated by commas")
    return found


class NotifierResource(SettingsResource):
    """Where notices go: mail (``NOTIFY_SMTP_*``, ``NOTIFY_FROM``, ``NOTIFY_TO``) and a webhook
    (``NOTIFY_WEBHOOK_URL``), given in pipelines/resources.py. Checked when a notice is sent, so
    an installation without mail still loads. ``dagster_url`` (``NOTIFY_DAGSTER_URL``) is the
    address of the Dagster UI that failure notices link to."""

    smtp_host: str = ""
    smtp_port: int = 0
    smtp_starttls: str = ""
    smtp_user: str = ""
    smtp_password: str = ""
    sender: str = ""
    recipients: str = ""
    smtp_ca_file: str = ""
    webhook_url: str = ""
    dagster_url: str = ""

    def smtp(self) -> SmtpSettings | None:
        """The mail settings, or None when no mail server is configured."""
        host = self.setting("smtp_host")
        if not host:
            return None
        port_text = self.setting("smtp_port", "587")
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise NotifyError("NOTIFY_SMTP_PORT must be a port number")
        sender = self.setting("sender")
        recipients = self.setting("recipients")
        if not sender or not recipients:
            raise NotifyError("mail needs NOTIFY_FROM and NOTIFY_TO besides NOTIFY_SMTP_HOST")
        return SmtpSettings(
            host=host, port=int(port_text), sender=_addresses(sender, "NOTIFY_FROM")[0],
            recipients=_addresses(recipients, "NOTIFY_TO"),
            starttls=_flag(self.setting("smtp_starttls", "true"), "NOTIFY_SMTP_STARTTLS"),
            user=self.setting("smtp_user"),
            password=self.setting("smtp_password", strip=False),
            ca_file=self.setting("smtp_ca_file"),
        )

    def webhook(self) -> str:
        return self.setting("webhook_url")

    def send(self, notice: Notice) -> list[str]:
        """Deliver through every configured channel; returns the channels used (empty when none
        is configured). One failing channel does not stop the other; then NotifyError."""
        used, errors = [], []
        settings, url = self.smtp(), self.webhook()
        if settings is not None:
            try:
                send_mail(settings, notice)
                used.append("mail")
            except NotifyError as exc:
                errors.append(str(exc))
        if url:
            try:
                post_webhook(url, notice)
                used.append("webhook")
            except NotifyError as exc:
                errors.append(str(exc))
        if errors:
            raise NotifyError("; ".join(errors) + (f" (delivered by {', '.join(used)})" if used else ""))
        return used
