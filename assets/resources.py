"""Dagster resources: configuration of the connectors and stores, read from the environment.

Secrets and endpoints are given with ``dagster.EnvVar`` in ``pipelines/definitions.py`` so
that Dagster stores the variable's name, never its value. Paths have defaults that keep
everything under ``data/``; they are read from the environment when a step runs.
"""


import dataclasses
import json
import os
from email.utils import getaddresses
from pathlib import Path

from dagster import ConfigurableResource, Failure

from connectors.docue import DEFAULT_BASE_URL as DOCUE_URL, DocueClient
from connectors.google_workspace import GoogleSettings, GoogleWorkspaceClient, SCOPES_WRITE
from connectors.legal_hold import FinancialYears
from connectors.matomo import MatomoClient
from connectors.netvisor import NetvisorClient
from connectors.pipedrive import PipedriveClient
from connectors.request_tracker import RequestTrackerClient, RtAdminTools
from connectors.trustmary import DEFAULT_BASE_URL as TRUSTMARY_URL, TrustmaryClient
from contact_register.notify.message import Notice
from contact_register.notify.senders import NotifyError, SmtpSettings, post_webhook, send_mail
from contact_register.requests.cases import open_register
from contact_register.requests.cases.casebook import Register
from contact_register.requests.export.export import DEFAULT_EXPIRE_DAYS, DEFAULT_EXPORT_DIR

DEFAULT_RAW_DIR = "data/raw"
DEFAULT_WAREHOUSE_PATH = "data/warehouse.duckdb"


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


class StorageResource(ConfigurableResource):
    """Where the raw stores (one DuckDB file per system) and the published warehouse live.
    Empty values fall back to ``RAW_DIR`` / ``WAREHOUSE_PATH`` and then to the defaults."""

    raw_dir: str = ""
    warehouse_path: str = ""

    def raw_dir_path(self) -> Path:
        return Path(self.raw_dir or os.environ.get("RAW_DIR") or DEFAULT_RAW_DIR)

    def warehouse_file(self) -> Path:
        return Path(self.warehouse_path or os.environ.get("WAREHOUSE_PATH") or DEFAULT_WAREHOUSE_PATH)


class GoogleWorkspaceResource(ConfigurableResource):
    """Service account with domain-wide delegation. The key itself is read from
    ``GOOGLE_SERVICE_ACCOUNT_JSON`` or the file named by ``GOOGLE_SERVICE_ACCOUNT_FILE`` when the
    step runs, so no secret value ever enters Dagster's config or event log. Empty endpoint
    settings fall back to ``GOOGLE_API_ENDPOINT`` / ``GOOGLE_TOKEN_URI`` (the sandbox sets them),
    then to Google's own endpoints."""

    admin_subject: str
    domain: str = ""
    api_endpoint: str = ""
    token_uri: str = ""
    timeout_s: float = 60.0
    batch_size: int = 50
    max_attempts: int = 6

    def settings(self) -> GoogleSettings:
        if os.environ.get("GOOGLE_SERVICE_ACCOUNT_FILE"):
            with open(os.environ["GOOGLE_SERVICE_ACCOUNT_FILE"], encoding="utf-8") as f:
                info = json.load(f)
        else:
            info = json.loads(os.environ["GOOGLE_SERVICE_ACCOUNT_JSON"])
        return GoogleSettings(
            service_account_info=info,
            admin_subject=self.admin_subject,
            domain=self.domain or os.environ.get("GOOGLE_DOMAIN", ""),
            api_endpoint=self.api_endpoint or os.environ.get("GOOGLE_API_ENDPOINT") or None,
            token_uri=self.token_uri or os.environ.get("GOOGLE_TOKEN_URI") or None,
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


class NetvisorResource(ConfigurableResource):
    """Netvisor: base URL (``https://integration.netvisor.fi``), the integration's sender name,
    customer and partner ids and keys, and the company's organisation id (its Y-tunnus).

    ``lock_dir`` holds the per-customer lock file that keeps every process on this machine
    to one request in flight (empty: ``RAW_DIR``). ``financial_year_start`` (MM-DD) is the
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

    def client(self) -> NetvisorClient:
        lock_dir = self.lock_dir or os.environ.get("RAW_DIR") or DEFAULT_RAW_DIR
        return NetvisorClient(
            self.base_url, sender=self.sender, customer_id=self.customer_id, partner_id=self.partner_id,
            customer_key=self.customer_key, partner_key=self.partner_key, organisation_id=self.organisation_id,
            language=self.language, timeout=(self.connect_timeout_s, self.read_timeout_s),
            lock_dir=Path(lock_dir), financial_years=self.financial_years(),
        )

    def financial_years(self) -> FinancialYears:
        return FinancialYears.from_config(self.financial_year_start, self.financial_year_periods)


class RequestTrackerResource(ConfigurableResource):
    """RT 5 REST2: base URL (``https://rt.example.fi``) and a token, or a user and password.
    ``admin_command_prefix`` runs RT's admin tools (rt-shredder) on the RT host for erasure,
    e.g. ``ssh rt-host sudo -u www-data``; empty runs them locally."""

    url: str
    token: str = ""
    user: str = ""
    password: str = ""
    page_size: int = 100
    timeout_s: float = 30.0
    admin_command_prefix: str = ""

    def client(self) -> RequestTrackerClient:
        env = {k: v for k, v in os.environ.items() if k in ("RT_SITE_CONFIG", "RT_SITE_CONFIG_DIR")}
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


class MatomoResource(ConfigurableResource):
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
            user_id_format=self.user_id_format or os.environ.get("MATOMO_USER_ID_FORMAT") or "email",
            site_ids=self.site_ids or os.environ.get("MATOMO_SITE_IDS") or "all",
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


class RegisterResource(ConfigurableResource):
    """The request register (``REGISTER_URL``: ``postgresql://...``, or a SQLite path; default
    ``data/register.sqlite``) and where exports land (``EXPORT_DIR``, default ``data/exports``)
    and for how many days (``EXPORT_EXPIRE_DAYS``, default 30). Read from the environment when
    a step runs, so a database password never enters Dagster's storage."""

    url: str = ""
    export_dir: str = ""
    export_expire_days: int = 0

    def open(self) -> Register:
        return open_register(self.url or os.environ.get("REGISTER_URL", ""))

    def export_path(self) -> Path:
        return Path(self.export_dir or os.environ.get("EXPORT_DIR") or DEFAULT_EXPORT_DIR)

    def expire_days(self) -> int:
        if self.export_expire_days:
            return self.export_expire_days
        try:
            return int(os.environ.get("EXPORT_EXPIRE_DAYS") or DEFAULT_EXPIRE_DAYS)
        except ValueError:
            raise Failure("EXPORT_EXPIRE_DAYS must be a whole number of days") from None


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


class NotifierResource(ConfigurableResource):
    """Where notices go. Empty fields fall back to the ``NOTIFY_*`` environment variables
    (see the module docstring) when a notice is sent."""

    smtp_host: str = ""
    smtp_port: int = 0
    smtp_starttls: str = ""
    smtp_user: str = ""
    smtp_password: str = ""
    sender: str = ""
    recipients: str = ""
    smtp_ca_file: str = ""
    webhook_url: str = ""

    def _get(self, value, env: str, default: str = "") -> str:
        return str(value) if value else os.environ.get(env, default).strip()

    def smtp(self) -> SmtpSettings | None:
        """The mail settings, or None when no mail server is configured."""
        host = self._get(self.smtp_host, "NOTIFY_SMTP_HOST")
        if not host:
            return None
        port_text = self._get(self.smtp_port, "NOTIFY_SMTP_PORT", "587")
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise NotifyError("NOTIFY_SMTP_PORT must be a port number")
        sender = self._get(self.sender, "NOTIFY_FROM")
        recipients = self._get(self.recipients, "NOTIFY_TO")
        if not sender or not recipients:
            raise NotifyError("mail needs NOTIFY_FROM and NOTIFY_TO besides NOTIFY_SMTP_HOST")
        return SmtpSettings(
            host=host, port=int(port_text), sender=_addresses(sender, "NOTIFY_FROM")[0],
            recipients=_addresses(recipients, "NOTIFY_TO"),
            starttls=_flag(self._get(self.smtp_starttls, "NOTIFY_SMTP_STARTTLS", "true"), "NOTIFY_SMTP_STARTTLS"),
            user=self._get(self.smtp_user, "NOTIFY_SMTP_USER"),
            password=self.smtp_password or os.environ.get("NOTIFY_SMTP_PASSWORD", ""),
            ca_file=self._get(self.smtp_ca_file, "NOTIFY_SMTP_CA_FILE"),
        )

    def webhook(self) -> str:
        return self._get(self.webhook_url, "NOTIFY_WEBHOOK_URL")

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
