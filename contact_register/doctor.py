"""Proof on day one that every configured system answers as the pipeline needs it.

``contact-register doctor`` and the Dagster job ``connections_check`` run the same read-only
checks: for each system whose settings are present, the URL answers, the credentials are
accepted, the permissions and scopes the sync and the data-subject jobs need are granted, one
page of each entity can be read, the rate-limit headers are there and the server's clock agrees
with ours. A failure names the setting or the console page that fixes it.

Nothing personal is printed or stored: findings carry HTTP statuses, counts, header values,
seconds and scope names. ``--shapes DIR`` writes the *structure* of each answer (field or
element paths and value types, never values) so an operator can send it to the developers, who
diff it against the imitation with ``--compare-shapes DIR`` while pointed at the sandbox.

Everything here is plain Python over the connectors (no Dagster): the CLI and the job wrap it.
"""

from __future__ import annotations

import email.utils
import json
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import requests

from connectors.errors import AuthError, BadPayloadError, ConnectorError, NotFoundError, RetryableError
from connectors.http import RetryPolicy
from contact_register import settings

OK, FAIL, WARN, NOT_CONFIGURED = "OK", "FAIL", "WARN", "not configured"
# A doctor answers quickly: a down system is reported, not waited out.
DOCTOR_RETRY = RetryPolicy(max_attempts=2, backoff_base_s=0.2, backoff_max_s=1.0, max_wait_s=5.0)
DOCTOR_TIMEOUT = (5.0, 20.0)
# Signed requests (Netvisor) and token grants (Google) carry our time; cursors compare times.
MAX_CLOCK_SKEW_S = 60.0
SYSTEMS = ("pipedrive", "google", "netvisor", "request_tracker", "trustmary", "matomo", "docue")
# The settings whose presence means "this system is configured".
CONFIGURED_BY = {
    "pipedrive": ("PIPEDRIVE_BASE_URL",),
    "google": ("GOOGLE_ADMIN_SUBJECT",),
    "netvisor": ("NETVISOR_BASE_URL",),
    "request_tracker": ("RT_URL",),
    "trustmary": ("TRUSTMARY_API_KEY",),
    "matomo": ("MATOMO_BASE_URL",),
    "docue": ("DOCUE_API_TOKEN",),
}


@dataclass(frozen=True)
class Finding:
    system: str
    check: str
    status: str
    detail: str = ""  # statuses, counts, seconds, names of settings or scopes: never personal data
    remedy: str = ""


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    shapes: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # "system/call" -> path -> types

    @property
    def ok(self) -> bool:
        return not any(f.status == FAIL for f in self.findings)

    def table(self) -> str:
        rows = [("system", "check", "status", "detail / remedy")]
        for f in self.findings:
            text = f.detail if f.status in (OK, NOT_CONFIGURED) or not f.remedy else f"{f.detail} -> {f.remedy}".strip(" ->")
            rows.append((f.system, f.check, f.status, text))
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        return "\n".join(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip() for r in rows)


# -- shapes: structure without values ------------------------------------------------------------

def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def json_shape(value: Any) -> dict[str, list[str]]:
    """Every path of a JSON value (``data[].emails[].value``) with the types seen there."""
    out: dict[str, set[str]] = {}

    def walk(v: Any, path: str) -> None:
        out.setdefault(path or ".", set()).add(_kind(v))
        if isinstance(v, dict):
            for key, child in v.items():
                walk(child, f"{path}.{key}" if path else str(key))
        elif isinstance(v, list):
            for child in v:
                walk(child, f"{path}[]")

    walk(value, "")
    return {p: sorted(t) for p, t in sorted(out.items())}


def xml_shape(root: ET.Element) -> dict[str, list[str]]:
    """Every element path of an XML answer with ``text``/``empty``, attributes as ``@name``."""
    out: dict[str, set[str]] = {}

    def walk(el: ET.Element, path: str) -> None:
        here = f"{path}/{el.tag}" if path else el.tag
        out.setdefault(here, set()).add("text" if (el.text or "").strip() else "empty")
        for name in el.attrib:
            out.setdefault(f"{here}@{name}", set()).add("text")
        for child in el:
            walk(child, here)

    walk(root, "")
    return {p: sorted(t) for p, t in sorted(out.items())}


def write_shapes(report: Report, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for key, shape in sorted(report.shapes.items()):
        path = folder / (key.replace("/", "__") + ".json")
        path.write_text(json.dumps(shape, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written


def read_shapes(folder: Path) -> dict[str, dict[str, list[str]]]:
    if not folder.is_dir():
        raise FileNotFoundError(f"no shapes folder at {folder}")
    return {p.stem.replace("__", "/"): json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))}


def compare_shapes(live: Mapping[str, Mapping[str, list[str]]], here: Mapping[str, Mapping[str, list[str]]]) -> list[str]:
    """Differences between the shapes an operator sent (``live``) and ours (``here``), as lines.
    A ``null`` on one side only is not a difference: vendors send null for empty values."""
    lines = []
    for call in sorted(set(live) | set(here)):
        if call not in here:
            lines.append(f"{call}: answered live, not read here")
            continue
        if call not in live:
            lines.append(f"{call}: read here, not in the live shapes")
            continue
        a, b = live[call], here[call]
        for path in sorted(set(a) - set(b)):
            lines.append(f"{call}: {path} only live ({'|'.join(a[path])})")
        for path in sorted(set(b) - set(a)):
            lines.append(f"{call}: {path} only here ({'|'.join(b[path])})")
        for path in sorted(set(a) & set(b)):
            ta, tb = set(a[path]) - {"null"}, set(b[path]) - {"null"}
            if ta and tb and ta != tb:
                lines.append(f"{call}: {path} is {'|'.join(sorted(ta))} live, {'|'.join(sorted(tb))} here")
    return lines


# -- the checks --------------------------------------------------------------------------------

def _clock_skew(server_time: str | datetime | None) -> float | None:
    """Seconds the server's clock is ahead of ours, from an HTTP Date header or a time the
    answer itself carries (Netvisor's ResponseStatus/TimeStamp); None if there is none."""
    if isinstance(server_time, str):
        try:
            server_time = email.utils.parsedate_to_datetime(server_time)
        except (TypeError, ValueError):
            return None
    if server_time is None or server_time.tzinfo is None:
        return None
    return server_time.timestamp() - time.time()


class _Probe:
    """Runs one system's checks, turning connector errors into findings with their remedy."""

    def __init__(self, system: str, report: Report, remedies: Mapping[type, str]) -> None:
        self.system = system
        self.report = report
        self.remedies = remedies
        self.failed = False

    def add(self, check: str, status: str, detail: str = "", remedy: str = "") -> None:
        self.report.findings.append(Finding(self.system, check, status, detail, remedy))
        self.failed = self.failed or status == FAIL

    def run(self, check: str, fn: Callable[[], str | tuple[str, ...]]) -> bool:
        """Run ``fn``; it returns an OK detail, or (status, detail[, remedy]). A connector error
        becomes a FAIL with the remedy of its class. Returns whether the check passed."""
        try:
            result = fn()
        except ConnectorError as exc:
            self.add(check, FAIL, _error_detail(exc), self._remedy(exc))
            return False
        except (OSError, ValueError, KeyError, TypeError) as exc:  # settings unreadable, odd answers
            self.add(check, FAIL, type(exc).__name__, self.remedies.get(ValueError, ""))
            return False
        status, detail, remedy = (*result, "")[:3] if isinstance(result, tuple) else (OK, result, "")
        self.add(check, status, detail, remedy)
        return status != FAIL

    def _remedy(self, exc: ConnectorError) -> str:
        if isinstance(exc, RetryableError) and exc.status is None:
            return self.remedies[ConnectionError]
        for kind in (AuthError, NotFoundError, BadPayloadError):
            if isinstance(exc, kind) and kind in self.remedies:
                return self.remedies[kind]
        return self.remedies.get(ConnectorError, "see the error; re-run the doctor once it is fixed")

    def clock(self, server_time: str | datetime | None) -> None:
        skew = _clock_skew(server_time)
        if skew is None:
            self.add("clock", WARN, "the server's answer told no time")
        elif abs(skew) > MAX_CLOCK_SKEW_S:
            self.add("clock", FAIL, f"server clock {skew:+.0f} s from ours",
                     "synchronise this machine's clock (NTP, e.g. systemd-timesyncd); signatures, tokens and "
                     "change cursors compare times")
        else:
            self.add("clock", OK, f"skew {skew:+.1f} s")


def _error_detail(exc: ConnectorError) -> str:
    status = f"HTTP {exc.status}" if exc.status is not None else "no answer"
    return f"{type(exc).__name__}, {status}"


def _env(env: Mapping[str, str], name: str) -> str:
    return (env.get(name) or "").strip()


def check_pipedrive(env: Mapping[str, str], report: Report) -> None:
    from connectors.pipedrive import ENDPOINTS, FIELD_ENDPOINTS, PipedriveClient

    p = _Probe("pipedrive", report, {
        ConnectionError: "PIPEDRIVE_BASE_URL does not answer: it is https://<company>.pipedrive.com",
        NotFoundError: "PIPEDRIVE_BASE_URL is not a Pipedrive company URL (https://<company>.pipedrive.com, no path)",
        AuthError: "PIPEDRIVE_API_TOKEN was refused: copy the token of the integration user from Pipedrive, "
                   "Personal preferences > API",
        BadPayloadError: "PIPEDRIVE_BASE_URL answers, but not as Pipedrive's API: check the URL",
    })
    client = PipedriveClient(_env(env, "PIPEDRIVE_BASE_URL"), _env(env, "PIPEDRIVE_API_TOKEN"),
                             timeout=DOCTOR_TIMEOUT, retry=DOCTOR_RETRY)
    try:
        first: dict[str, requests.Response] = {}

        def connect() -> str:
            first["r"] = client.http.request("GET", "api/v1/users/me")
            return f"HTTP {first['r'].status_code}"

        if not p.run("token", connect):
            return
        report.shapes["pipedrive/users.me"] = json_shape(first["r"].json())
        headers = first["r"].headers
        if headers.get("x-ratelimit-limit") and headers.get("x-ratelimit-remaining") is not None:
            p.add("rate limit", OK, f"limit {headers['x-ratelimit-limit']}, remaining {headers['x-ratelimit-remaining']}"
                  f" per {headers.get('x-ratelimit-reset', '?')} s window")
        else:
            p.add("rate limit", WARN, "no x-ratelimit-* headers: pacing falls back to Retry-After")
        p.clock(headers.get("Date"))
        for entity, endpoint in ENDPOINTS.items():
            def page(entity=entity, endpoint=endpoint) -> str:
                params = dict(endpoint.params, limit="50")
                path = endpoint.path if endpoint.version == 2 else f"api/v1/{endpoint.path}"
                body = client.http.request_json("GET", path, params=params)
                report.shapes[f"pipedrive/{entity}.list"] = json_shape(body)
                data = body.get("data") if isinstance(body, dict) else None
                if not isinstance(data, list) and data is not None:
                    raise BadPayloadError("no data list", system="pipedrive")
                if entity == "persons":
                    _marketing_status(p, data or [])
                return f"{len(data or [])} records on the first page"
            p.run(entity, page)
        for entity, name in FIELD_ENDPOINTS.items():
            def fields(entity=entity, name=name) -> str:
                body = client.http.request_json("GET", f"api/v2/{name}", params={"limit": "500"})
                report.shapes[f"pipedrive/{name}.list"] = json_shape(body)
                return f"{len(body.get('data') or [])} field definitions"
            p.run(f"{entity} fields", fields)
    finally:
        client.close()


def _marketing_status(p: _Probe, persons: list) -> None:
    rows = [r for r in persons if isinstance(r, dict)]
    if not rows:
        p.add("marketing status", WARN, "no persons to look at")
    elif any("marketing_status" in r for r in rows):
        p.add("marketing status", OK, "persons carry marketing_status")
    else:
        p.add("marketing status", FAIL, "persons come without marketing_status",
              "the marketing ban needs Pipedrive's Campaigns add-on (Tools and apps > Campaigns); without it, "
              "set PipedriveResource include_marketing_status false and use a ban label or field")


def check_google(env: Mapping[str, str], report: Report) -> None:
    from google.auth import exceptions as gauth_errors
    from google.auth.transport.requests import Request as AuthRequest
    from google.oauth2 import service_account

    from connectors.google_workspace import SCOPES_READ, SCOPES_WRITE, GoogleWorkspaceClient, settings_from_env

    p = _Probe("google", report, {
        ConnectionError: "the Google endpoint does not answer: check GOOGLE_API_ENDPOINT (unset for Google itself)",
        AuthError: "the service account may not act for GOOGLE_ADMIN_SUBJECT: check domain-wide delegation in the "
                   "Admin console (Security > Access and data control > API controls)",
        NotFoundError: "GOOGLE_DOMAIN or GOOGLE_ADMIN_SUBJECT names no user or domain of this Workspace",
        ValueError: "GOOGLE_SERVICE_ACCOUNT_JSON / GOOGLE_SERVICE_ACCOUNT_FILE is not a readable service-account key",
    })
    settings: dict[str, Any] = {}

    def key() -> str:
        settings["s"] = settings_from_env(dict(env), timeout_s=DOCTOR_TIMEOUT[1], max_attempts=DOCTOR_RETRY.max_attempts,
                                          backoff_base_s=0.2, backoff_max_s=1.0)
        info = settings["s"].service_account_info
        if info.get("type") != "service_account" or not info.get("client_email") or not info.get("private_key"):
            raise ValueError("not a service-account key")
        return "service-account key readable"

    if not p.run("key", key):
        return
    s = settings["s"]
    info = dict(s.service_account_info)
    if s.token_uri:
        info["token_uri"] = s.token_uri
    client_id = str(info.get("client_id") or "?")
    http = requests.Session()
    try:
        try:
            answer = http.post(info["token_uri"], data={}, timeout=DOCTOR_TIMEOUT)
            p.clock(answer.headers.get("Date"))
        except requests.RequestException:
            p.add("token endpoint", FAIL, "no answer", "GOOGLE_TOKEN_URI (or the key's token_uri) does not answer")
            return
        # Domain-wide delegation is granted per scope in the Admin console: ask for each alone.
        for scope in dict.fromkeys(SCOPES_READ + SCOPES_WRITE):
            creds = service_account.Credentials.from_service_account_info(info, scopes=[scope]).with_subject(s.admin_subject)
            short = scope.rsplit("/", 1)[-1] or scope
            try:
                creds.refresh(AuthRequest(session=http))
            except gauth_errors.RefreshError:
                p.add(f"scope {short}", FAIL, "token refused",
                      f"grant {scope} to client id {client_id} under domain-wide delegation (Admin console > "
                      "Security > Access and data control > API controls > Manage domain-wide delegation)")
            except (gauth_errors.TransportError, requests.RequestException):
                p.add(f"scope {short}", FAIL, "no answer", "the token endpoint does not answer")
            else:
                p.add(f"scope {short}", OK, "granted")
    finally:
        http.close()
    if p.failed:
        return
    client = GoogleWorkspaceClient(s)
    admin = s.admin_subject
    try:
        reads: list[tuple[str, Callable[[], Any]]] = [
            ("directory users", lambda: client.service("admin").users().list(
                customer="my_customer", maxResults=10, projection="basic")),
            ("gmail messages", lambda: client.gmail().users().messages().list(userId="me", maxResults=10)),
            ("calendar events", lambda: client.service("calendar").events().list(calendarId="primary", maxResults=10)),
            ("drive files", lambda: client.service("drive").files().list(pageSize=10)),
            ("people connections", lambda: client.service("people").people().connections().list(
                resourceName="people/me", personFields="names,emailAddresses,metadata", pageSize=10)),
            ("other contacts", lambda: client.service("people").otherContacts().list(
                readMask="names,emailAddresses", pageSize=10)),
        ]
        for name, make in reads:
            def read(name=name, make=make) -> str:
                body = client.execute(make(), admin)
                report.shapes[f"google/{name.replace(' ', '.')}"] = json_shape(body)
                return "one page read"
            p.run(name, read)
    finally:
        client.close()


def check_netvisor(env: Mapping[str, str], report: Report) -> None:
    from connectors.netvisor import MAC_ALGORITHM, NetvisorClient, parse_server_time

    p = _Probe("netvisor", report, {
        ConnectionError: "NETVISOR_BASE_URL does not answer: it is https://integration.netvisor.fi (or the "
                         "test environment's address)",
        AuthError: "Netvisor refused the signature: check NETVISOR_SENDER, NETVISOR_CUSTOMER_ID/_KEY, "
                   "NETVISOR_PARTNER_ID/_KEY and NETVISOR_ORGANISATION_ID (the MAC is HMAC-SHA256, sent as "
                   "HMACSHA256; the keys come from Netvisor's integration settings)",
        NotFoundError: "NETVISOR_BASE_URL has no Netvisor API under it: check the URL",
        BadPayloadError: "NETVISOR_BASE_URL answers, but not as Netvisor: check the URL",
        ValueError: "a Netvisor setting is missing or malformed",
    })
    holder: dict[str, NetvisorClient] = {}

    def make() -> str:
        holder["c"] = NetvisorClient(
            _env(env, "NETVISOR_BASE_URL"), sender=_env(env, "NETVISOR_SENDER"),
            customer_id=_env(env, "NETVISOR_CUSTOMER_ID"), partner_id=_env(env, "NETVISOR_PARTNER_ID"),
            customer_key=_env(env, "NETVISOR_CUSTOMER_KEY"), partner_key=_env(env, "NETVISOR_PARTNER_KEY"),
            organisation_id=_env(env, "NETVISOR_ORGANISATION_ID"), timeout=DOCTOR_TIMEOUT, retry=DOCTOR_RETRY,
            lock_dir=_env(env, "RAW_DIR") or None)
        return "settings complete"

    if not p.run("settings", make):
        return
    client = holder["c"]
    try:
        answered: dict[str, ET.Element] = {}

        def customers() -> str | tuple[str, ...]:
            try:
                root = client.call("GET", "customerlist.nv")
            except AuthError as exc:
                if "algorithm" not in str(exc).lower():
                    raise
                return (FAIL, "the MAC algorithm was refused",
                        f"this Netvisor does not take {MAC_ALGORITHM}: check that NETVISOR_BASE_URL is Netvisor's "
                        "current integration address and ask Netvisor support to enable HMAC-SHA256 for the partner")
            answered["customerlist"] = root
            report.shapes["netvisor/customerlist"] = xml_shape(root)
            return f"{len(list(root.iter('Customer')))} customers listed"

        if not p.run("signature and customers", customers):
            return
        # Netvisor's own clock is in every answer: the time stamp it signs its answers with.
        p.clock(parse_server_time(answered["customerlist"].findtext("ResponseStatus/TimeStamp")))

        def invoices() -> str:
            root = client.call("GET", "salesinvoicelist.nv")
            report.shapes["netvisor/salesinvoicelist"] = xml_shape(root)
            return f"{len(list(root.iter('SalesInvoice')))} invoices listed"

        p.run("invoices", invoices)
    finally:
        client.close()


def check_request_tracker(env: Mapping[str, str], report: Report) -> None:
    from connectors.request_tracker import RequestTrackerClient

    p = _Probe("request_tracker", report, {
        ConnectionError: "RT_URL does not answer: it is the RT web address, e.g. https://rt.example.fi",
        AuthError: "RT refused the login: set RT_TOKEN (an auth token of the integration user: RT > Logged in "
                   "as > Settings > Auth Tokens) or RT_USER/RT_PASSWORD",
        NotFoundError: "RT_URL has no REST2 API under it: RT 5 with REST2 is needed",
        BadPayloadError: "RT_URL answers, but not as RT's REST2: check the URL",
    })
    client = RequestTrackerClient(_env(env, "RT_URL"), token=_env(env, "RT_TOKEN"), user=_env(env, "RT_USER"),
                                  password=_env(env, "RT_PASSWORD"), timeout_s=DOCTOR_TIMEOUT[1], retry=DOCTOR_RETRY)
    try:
        seen: dict[str, Any] = {}

        def login() -> str:
            body = client.get_json("rt")
            seen["rt"] = body
            report.shapes["request_tracker/rt"] = json_shape(body)
            return f"RT {str(body.get('Version', '?'))[:20]}"

        if not p.run("login", login):
            return
        try:
            response = client.rt.session.get(f"{client.api}/rt")
            p.clock(response.headers.get("Date"))
        except Exception:  # noqa: BLE001 - the clock is a courtesy check; login already passed
            p.add("clock", WARN, "no answer to read the Date from")

        def users() -> str | tuple[str, ...]:
            body = client.get_json("users", params={"per_page": 10, "fields": "Name,EmailAddress,RealName"})
            report.shapes["request_tracker/users"] = json_shape(body)
            if not body.get("items"):
                return (FAIL, "no users visible", "give the integration user the global right AdminUsers "
                        "(Admin > Global > User Rights): the sync lists support users")
            return f"{body.get('total', len(body['items']))} users visible"

        p.run("users", users)
        p.run("tickets", lambda: _rt_tickets(client, report))
        _rt_shredder(p, env)
    finally:
        client.close()


def _rt_shredder(p: _Probe, env: Mapping[str, str]) -> None:
    """Erasure runs rt-shredder on the RT host. Where that host is this one (the tool is here),
    list its plugins: proof that the tool starts with the site config and reaches RT's database."""
    tool = _env(env, "RT_SHREDDER") or "/usr/sbin/rt-shredder-5"
    if not Path(tool).exists():
        p.add("shredder", WARN, "rt-shredder is not on this host",
              "erasure runs it through the RT resource's admin_command_prefix: run "
              "'rt-shredder --plugin list' there once as that user")
        return
    extra = {k: env[k] for k in ("RT_SITE_CONFIG", "RT_SITE_CONFIG_DIR") if _env(env, k)}
    try:
        done = subprocess.run([tool, "--plugin", "list"], env={**settings.environment(), **extra}, capture_output=True,
                              timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        p.add("shredder", FAIL, type(exc).__name__, "rt-shredder does not start: check RT's installation")
        return
    # `--plugin list` exits 1 after listing (RT 5.0): the listing is the proof it starts.
    if b"Plugins list" in done.stdout and b"Users" in done.stdout:
        p.add("shredder", OK, "rt-shredder starts and lists its plugins (not a write: its database rights "
                              "show in the first erasure)")
    else:
        p.add("shredder", FAIL, f"rt-shredder exited with {done.returncode}",
              "run it as the user that reads RT's site config (RT_SITE_CONFIG) and its database")


def _rt_tickets(client: Any, report: Report) -> str:
    body = client.get_json("tickets", params={"query": "id > 0", "per_page": 10, "fields": "Subject,Status"})
    report.shapes["request_tracker/tickets"] = json_shape(body)
    return f"{body.get('total', len(body.get('items') or []))} tickets visible"


def check_trustmary(env: Mapping[str, str], report: Report) -> None:
    from connectors.trustmary import DEFAULT_BASE_URL, TrustmaryClient

    p = _Probe("trustmary", report, {
        ConnectionError: "TRUSTMARY_BASE_URL does not answer (unset it for Trustmary's own address)",
        AuthError: "TRUSTMARY_API_KEY was refused: create an API key in Trustmary (Settings > Integrations > API)",
        NotFoundError: "TRUSTMARY_BASE_URL has no Trustmary API under it",
        BadPayloadError: "TRUSTMARY_BASE_URL answers, but not as Trustmary",
    })

    p.run("api key", lambda: _one_read(p, lambda: TrustmaryClient(
        _env(env, "TRUSTMARY_BASE_URL") or DEFAULT_BASE_URL, _env(env, "TRUSTMARY_API_KEY"),
        timeout=DOCTOR_TIMEOUT, retry=DOCTOR_RETRY), "test", {}, "API key accepted"))


def _one_read(p: _Probe, make_client: Callable[[], Any], path: str, params: dict, ok: str) -> str:
    """One GET over a connector's HTTP layer: its shape and the server's clock are recorded."""
    with make_client() as client:
        response = client.http.request("GET", path, params=params)
        p.report.shapes[f"{p.system}/{path}"] = json_shape(response.json())
        p.clock(response.headers.get("Date"))
    return ok


def check_matomo(env: Mapping[str, str], report: Report) -> None:
    from connectors.matomo import MatomoClient

    p = _Probe("matomo", report, {
        ConnectionError: "MATOMO_BASE_URL does not answer: it is the Matomo address, e.g. https://matomo.example.fi",
        AuthError: "MATOMO_TOKEN_AUTH was refused, or lacks admin access: create a token (Personal > Security > "
                   "Auth tokens) for a user with admin access to MATOMO_SITE_IDS",
        NotFoundError: "MATOMO_BASE_URL has no index.php API under it",
        BadPayloadError: "MATOMO_BASE_URL answers, but not as Matomo",
    })

    def run() -> str | tuple[str, str]:
        with MatomoClient(_env(env, "MATOMO_BASE_URL"), _env(env, "MATOMO_TOKEN_AUTH"), timeout=DOCTOR_TIMEOUT,
                          retry=DOCTOR_RETRY) as client:
            sites = client.call("SitesManager.getSitesIdWithAdminAccess")
            report.shapes["matomo/sites.admin"] = json_shape(sites)
            if not isinstance(sites, list) or not sites:
                return (FAIL, "the token has admin access to no site")
            return f"admin access to {len(sites)} sites"

    p.run("token and sites", run)


def check_docue(env: Mapping[str, str], report: Report) -> None:
    from connectors.docue import DEFAULT_BASE_URL, DocueClient

    p = _Probe("docue", report, {
        ConnectionError: "DOCUE_BASE_URL does not answer (unset it for Docue's own address)",
        AuthError: "DOCUE_API_TOKEN was refused: create an API token in Docue's company settings",
        NotFoundError: "DOCUE_BASE_URL has no Docue public API v2 under it",
        BadPayloadError: "DOCUE_BASE_URL answers, but not as Docue",
    })

    p.run("token and documents", lambda: _one_read(p, lambda: DocueClient(
        _env(env, "DOCUE_BASE_URL") or DEFAULT_BASE_URL, _env(env, "DOCUE_API_TOKEN"),
        timeout=DOCTOR_TIMEOUT, retry=DOCTOR_RETRY), "documents", {"page": 1, "per_page": 10},
        "token accepted, documents readable"))


CHECKS: dict[str, Callable[[Mapping[str, str], Report], None]] = {
    "pipedrive": check_pipedrive,
    "google": check_google,
    "netvisor": check_netvisor,
    "request_tracker": check_request_tracker,
    "trustmary": check_trustmary,
    "matomo": check_matomo,
    "docue": check_docue,
}


def configured(env: Mapping[str, str], system: str) -> bool:
    return all(_env(env, name) for name in CONFIGURED_BY[system])


def run_checks(env: Mapping[str, str] | None = None, systems: tuple[str, ...] = SYSTEMS) -> Report:
    """Every check of every configured system among ``systems``."""
    env = settings.environment() if env is None else env
    report = Report()
    for system in systems:
        if not configured(env, system):
            report.findings.append(Finding(system, "settings", NOT_CONFIGURED,
                                           f"{', '.join(CONFIGURED_BY[system])} not set"))
            continue
        CHECKS[system](env, report)
    return report


def iter_failures(report: Report) -> Iterator[Finding]:
    return (f for f in report.findings if f.status == FAIL)
