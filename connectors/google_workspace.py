"""Google Workspace client on google-api-python-client, with domain-wide delegation.

One service object per API is built once (discovery documents ship inside the package, so
``build`` works offline) over a plain ``httplib2.Http``; every call is executed with the
impersonated user's ``AuthorizedHttp`` (``execute(http=...)``), so 50 mailboxes cost 5 builds,
not 250. Batch parts carry no Authorization of their own: the outer batch request's header
applies to every part. ``BatchHttpRequest`` ignores ``api_endpoint``, so it gets the batch URI
built from the configured endpoint.

Retries: requests run with ``execute(num_retries=0)`` inside the shared loop
(``connectors.http.retry_call``) rather than ``num_retries=N``: the library's loop sleeps
``random() * 2**n`` seconds, ignores ``Retry-After`` and does not retry truncated or malformed
bodies, nor failed batch parts. This module maps Google's failures onto ``connectors.errors``
and classifies them: 429, 5xx, 403 rate-limit reasons, transport errors and unreadable bodies
are retried with capped jittered backoff (a Retry-After is waited, up to ``backoff_max_s``).

Personal data: user emails, search queries and group keys travel in URLs; error messages keep
only the method and the path with every segment holding "@" replaced, never the query string.
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import google_auth_httplib2
import httplib2
from google.auth import exceptions as gauth_errors
from google.oauth2 import service_account
from googleapiclient.discovery import build
from googleapiclient.errors import BatchError, HttpError
from googleapiclient.http import BatchHttpRequest

from connectors.errors import (AuthError, BadPayloadError, BadRequestError, ConnectorError, FatalError,
                               NotFoundError, RateLimitedError, RetryableError)
from connectors.http import Retry, RetryPolicy, retry_call

log = logging.getLogger("connectors.google_workspace")
SYSTEM = "google"

SCOPES_READ = (
    "https://www.googleapis.com/auth/admin.directory.user.readonly",
    "https://www.googleapis.com/auth/admin.directory.group.readonly",  # groups.list?userKey= (find, export)
    "https://www.googleapis.com/auth/gmail.readonly",
    "https://www.googleapis.com/auth/calendar.readonly",
    "https://www.googleapis.com/auth/drive.readonly",
    "https://www.googleapis.com/auth/contacts.readonly",
    "https://www.googleapis.com/auth/contacts.other.readonly",
)
SCOPES_WRITE = (
    "https://mail.google.com/",  # needed by messages.batchDelete (permanent deletion)
    "https://www.googleapis.com/auth/calendar.events",
    "https://www.googleapis.com/auth/drive",
    "https://www.googleapis.com/auth/contacts",
    "https://www.googleapis.com/auth/contacts.other.readonly",
    "https://www.googleapis.com/auth/admin.directory.user.readonly",
    "https://www.googleapis.com/auth/admin.directory.group.readonly",  # groups.list needs it; .member does not cover it
    "https://www.googleapis.com/auth/admin.directory.group.member",  # members.delete
)
METADATA_HEADERS = ["From", "To", "Cc", "Bcc", "Reply-To", "Date", "Subject", "Message-ID"]
PERSON_FIELDS = "names,emailAddresses,phoneNumbers,organizations,metadata"
DRIVE_FILE_FIELDS = "id,name,mimeType,owners,permissions,modifiedTime,trashed"
RATE_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"}


class HistoryExpired(NotFoundError):
    """Gmail answered 404 to history.list: the stored historyId is too old; resync the user."""


class SyncTokenExpired(NotFoundError):
    """Calendar 410 / People EXPIRED_SYNC_TOKEN / Drive invalid page token: resync the user."""


@dataclass
class GoogleSettings:
    service_account_info: dict
    admin_subject: str
    domain: str = ""
    api_endpoint: str | None = None  # e.g. the sandbox's "http://127.0.0.1:PORT/"; None = Google
    token_uri: str | None = None  # overrides the key file's token_uri
    timeout_s: float = 60.0
    max_attempts: int = 6
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    batch_size: int = 50  # Gmail allows 100 per batch; 50 is kinder to per-user rate limits
    page_size: int = 500
    scopes: tuple[str, ...] = SCOPES_READ


@dataclass
class ClientStats:
    requests: int = 0  # HTTP requests on the wire, token requests included
    retries: int = 0
    batched_calls: int = 0


class _CountingHttp(httplib2.Http):
    def __init__(self, stats: ClientStats, **kw: Any) -> None:
        super().__init__(**kw)
        self._stats = stats

    def request(self, *args: Any, **kwargs: Any):  # type: ignore[override]
        self._stats.requests += 1
        return super().request(*args, **kwargs)


def safe_path(uri: str | None) -> str:
    """The URL's path with personal segments (anything with '@') hidden, no query string."""
    path = urlsplit(uri or "").path
    return "/".join("{redacted}" if "@" in seg or "%40" in seg else seg for seg in path.split("/"))


def _error_reason(content: bytes | str | None) -> tuple[str, str]:
    """(reason, short message) from Google's error envelope."""
    try:
        err = json.loads(content or b"{}").get("error")
    except (ValueError, AttributeError):
        return "", ""
    if not isinstance(err, dict):
        return str(err or ""), ""
    reasons = [e.get("reason", "") for e in err.get("errors") or [] if isinstance(e, dict)]
    reasons += [d.get("reason", "") for d in err.get("details") or [] if isinstance(d, dict)]
    reason = next((r for r in reasons if r in RATE_REASONS or r == "EXPIRED_SYNC_TOKEN"), reasons[0] if reasons else "")
    return reason, str(err.get("status") or "")


def map_http_error(exc: HttpError, method: str = "") -> ConnectorError:
    status = exc.resp.status if exc.resp is not None else None
    reason, status_text = _error_reason(exc.content)
    kw = dict(system=SYSTEM, status=status, method=method, path=safe_path(exc.uri))
    message = f"{reason or 'error'} {status_text}".strip()
    if status == 429 or (status == 403 and reason in RATE_REASONS):
        retry_after = None
        try:
            retry_after = float(exc.resp.get("retry-after")) if exc.resp.get("retry-after") else None
        except (TypeError, ValueError):
            pass
        return RateLimitedError(message, retry_after=retry_after, **kw)
    if status is not None and status >= 500:
        return RetryableError(message, **kw)
    if status == 400 and reason == "EXPIRED_SYNC_TOKEN":
        return SyncTokenExpired(message, **kw)
    if status in (401, 403):
        return AuthError(message, **kw)
    if status in (404, 410):
        return NotFoundError(message, **kw)
    if status in (400, 409, 412, 422):
        return BadRequestError(message, **kw)
    return FatalError(message, **kw)


TRANSPORT_ERRORS = (OSError, socket.timeout, http.client.HTTPException, httplib2.HttpLib2Error,
                    gauth_errors.TransportError)


class GoogleWorkspaceClient:
    def __init__(self, settings: GoogleSettings, sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self.stats = ClientStats()
        # googleapiclient logs every URL at INFO ("URL being requested: ..."); Gmail search
        # queries and group keys in those URLs name people, so its chatter stops at WARNING.
        for name in ("googleapiclient.discovery", "googleapiclient.http", "googleapiclient.model"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self._sleep = sleep
        self._rng = random.Random()
        info = dict(settings.service_account_info)
        if settings.token_uri:
            info["token_uri"] = settings.token_uri
        self._base_creds = service_account.Credentials.from_service_account_info(info, scopes=list(settings.scopes))
        self._http = _CountingHttp(self.stats, timeout=settings.timeout_s)
        self._user_http: dict[str, google_auth_httplib2.AuthorizedHttp] = {}
        self._services: dict[str, Any] = {}

    # ------------------------------------------------------------------ plumbing
    def service(self, api: str) -> Any:
        if api not in self._services:
            name, version, prefix = {"admin": ("admin", "directory_v1", ""), "gmail": ("gmail", "v1", ""),
                                     "calendar": ("calendar", "v3", "calendar/v3/"), "drive": ("drive", "v3", "drive/v3/"),
                                     "people": ("people", "v1", "")}[api]
            options = {"api_endpoint": self.settings.api_endpoint + prefix} if self.settings.api_endpoint else None
            self._services[api] = build(name, version, http=self._http, static_discovery=True,
                                        cache_discovery=False, client_options=options)
        return self._services[api]

    def gmail(self) -> Any:
        return self.service("gmail")

    def http_for(self, user: str) -> google_auth_httplib2.AuthorizedHttp:
        if user not in self._user_http:
            creds = self._base_creds.with_subject(user)
            self._user_http[user] = google_auth_httplib2.AuthorizedHttp(creds, http=self._http)
        return self._user_http[user]

    def _refresh_token(self, user: str) -> None:
        """Fetch the user's access token before the call when it is missing or expired. Done
        here because google-auth raises TypeError (not RefreshError) on a token answer that is
        not JSON, which inside ``request.execute`` would look like a bug rather than a fault."""
        creds = self.http_for(user).credentials
        if creds.valid:
            return
        try:
            creds.refresh(google_auth_httplib2.Request(self._http))
        except (TypeError, KeyError, ValueError) as exc:
            raise RetryableError(f"token answer unreadable: {type(exc).__name__}", system=SYSTEM, method="POST",
                                 path="/token") from None

    def _retry_policy(self) -> RetryPolicy:
        # A Retry-After longer than backoff_max_s is shortened to it (classify_error), so no
        # named wait is ever too long to wait out here.
        return RetryPolicy(max_attempts=self.settings.max_attempts, backoff_base_s=self.settings.backoff_base_s,
                           backoff_max_s=self.settings.backoff_max_s, max_wait_s=self.settings.backoff_max_s)

    def _retry(self, fn: Callable[[int], Any], classify: Callable[[Exception], Retry | BaseException]) -> Any:
        def on_retry(_number: int, _error: ConnectorError, _wait: float) -> None:
            self.stats.retries += 1

        return retry_call(fn, classify, self._retry_policy(), sleep=self._sleep, rng=self._rng, on_retry=on_retry)

    def _classify(self, exc: Exception) -> Retry | BaseException:
        """Worth another attempt: what the callers mapped to RetryableError (429, 5xx, 403
        rate-limit reasons, transport errors, a failed token refresh) or BadPayloadError
        (truncated or malformed bodies). A Retry-After is waited, up to ``backoff_max_s``."""
        if isinstance(exc, (RetryableError, BadPayloadError)):
            return Retry(exc, wait_s=self._named_wait(exc))
        return exc

    def _named_wait(self, err: ConnectorError) -> float | None:
        retry_after = getattr(err, "retry_after", None)
        return None if retry_after is None else min(retry_after, self.settings.backoff_max_s)

    def execute(self, request: Any, user: str) -> Any:
        """Run one API request as ``user`` with retries; raise connectors.errors classes.
        Writes are retried too: the ones used here are idempotent in effect (trash, patch with
        the full attendee list, group modify) or deletes whose callers treat a later 404 as done."""
        method = getattr(request, "method", "")
        path = safe_path(getattr(request, "uri", ""))

        def attempt(number: int) -> Any:
            try:
                self._refresh_token(user)
                result = request.execute(http=self.http_for(user), num_retries=0)
            except HttpError as exc:
                raise map_http_error(exc, method) from None
            except gauth_errors.RefreshError as exc:
                # A token answer we could not read (a fault) looks like a refresh error too:
                # retry a few times before calling it an authorisation failure.
                if number <= 2:
                    raise RetryableError(f"token refresh failed: {type(exc).__name__}", system=SYSTEM, method="POST",
                                         path="/token") from None
                raise AuthError("token refresh refused (check domain-wide delegation and scopes)", system=SYSTEM,
                                path="/token") from None
            except TRANSPORT_ERRORS as exc:
                raise RetryableError(f"transport: {type(exc).__name__}", system=SYSTEM, method=method,
                                     path=path) from None
            except ValueError as exc:  # JSON the model could not parse (truncated/malformed body)
                raise BadPayloadError(f"unreadable response: {type(exc).__name__}", system=SYSTEM, method=method,
                                      path=path) from None
            if isinstance(result, str) and result.strip():
                # googleapiclient hands back the raw text of a JSON body it cannot parse
                # (truncated, garbled); media downloads are bytes, body-less answers empty.
                raise BadPayloadError("unreadable response: not JSON", system=SYSTEM, method=method, path=path)
            return result

        return self._retry(attempt, self._classify)

    def pages(self, make: Callable[[str | None], Any], user: str) -> Iterator[dict]:
        token = None
        while True:
            page = self.execute(make(token), user)
            yield page
            token = page.get("nextPageToken")
            if not token:
                return

    # ------------------------------------------------------------------ Directory
    def users(self) -> list[dict]:
        admin = self.service("admin").users()
        out: list[dict] = []
        for page in self.pages(lambda t: admin.list(customer="my_customer", maxResults=500, pageToken=t,
                                                    orderBy="email"), self.settings.admin_subject):
            out.extend(u for u in page.get("users") or [] if isinstance(u, dict))
        return out

    def groups_of(self, address: str) -> list[str]:
        """Addresses of the Google Groups the address is a direct member of (``groups.list`` with
        ``userKey``, which must not be combined with ``customer``; 200 a page at most)."""
        groups = self.service("admin").groups()
        out: list[str] = []
        for page in self.pages(lambda t: groups.list(userKey=address, maxResults=200, pageToken=t),
                               self.settings.admin_subject):
            out.extend(str(g["email"]) for g in page.get("groups") or [] if isinstance(g, dict) and g.get("email"))
        return out

    def group_members(self, group: str) -> list[str]:
        """Member addresses of one group (``members.list``, 200 a page at most)."""
        members = self.service("admin").members()
        out: list[str] = []
        for page in self.pages(lambda t: members.list(groupKey=group, maxResults=200, pageToken=t),
                               self.settings.admin_subject):
            out.extend(str(m["email"]) for m in page.get("members") or [] if isinstance(m, dict) and m.get("email"))
        return out

    # ------------------------------------------------------------------ Gmail
    def gmail_profile(self, user: str) -> dict:
        return self.execute(self.gmail().users().getProfile(userId="me"), user)

    def gmail_ids(self, user: str, q: str | None = None, include_spam_trash: bool = True) -> Iterator[list[str]]:
        msgs = self.gmail().users().messages()
        for page in self.pages(lambda t: msgs.list(userId="me", q=q, includeSpamTrash=include_spam_trash,
                                                   maxResults=self.settings.page_size, pageToken=t), user):
            yield [m["id"] for m in page.get("messages") or [] if isinstance(m, dict) and m.get("id")]

    def gmail_get_many(self, user: str, ids: list[str], fmt: str = "metadata") -> tuple[dict[str, dict], list[str]]:
        """Fetch messages in batches of ``batch_size``. Returns ({id: message}, ids gone (404))."""
        msgs = self.gmail().users().messages()
        got: dict[str, dict] = {}
        gone: list[str] = []
        pending = list(dict.fromkeys(ids))
        batch_uri = (self.settings.api_endpoint or "https://gmail.googleapis.com/") + "batch/gmail/v1"
        for start in range(0, len(pending), self.settings.batch_size):
            todo = pending[start:start + self.settings.batch_size]
            # Give up only after rounds without progress: per-user rate limits let a few parts
            # through each round, and that is progress (the count of attempts starts again).
            progressed = False

            def round_(_number: int) -> None:
                nonlocal todo, progressed
                failed: list[str] = []
                errors: list[ConnectorError] = []
                before = len(todo)
                progressed = False

                def done(request_id: str, response: Any, exception: Exception | None) -> None:
                    if exception is None:
                        if isinstance(response, dict):
                            got[request_id] = response
                        else:
                            failed.append(request_id)
                        return
                    err = map_http_error(exception, "GET") if isinstance(exception, HttpError) else \
                        BadPayloadError(type(exception).__name__, system=SYSTEM)
                    if isinstance(err, NotFoundError):
                        gone.append(request_id)
                    elif isinstance(err, (RetryableError, BadPayloadError)):
                        failed.append(request_id)
                        errors.append(err)
                    else:
                        raise err

                batch = BatchHttpRequest(callback=done, batch_uri=batch_uri)
                kw = {"metadataHeaders": METADATA_HEADERS} if fmt == "metadata" else {}
                for mid in todo:
                    batch.add(msgs.get(userId="me", id=mid, format=fmt, **kw), request_id=mid)
                try:
                    batch.execute(http=self.http_for(user))
                except HttpError as exc:
                    raise map_http_error(exc, "POST") from None
                except (BatchError, KeyError, ValueError) as exc:
                    raise BadPayloadError(f"unreadable batch response: {type(exc).__name__}", system=SYSTEM,
                                          method="POST", path="/batch/gmail/v1") from None
                except gauth_errors.RefreshError:
                    raise RetryableError("token refresh failed", system=SYSTEM, path="/token") from None
                except TRANSPORT_ERRORS as exc:
                    raise RetryableError(f"transport: {type(exc).__name__}", system=SYSTEM, method="POST",
                                         path="/batch/gmail/v1") from None
                self.stats.batched_calls += len(todo)
                todo = failed
                if todo:
                    progressed = len(todo) < before
                    raise errors[0] if errors else RetryableError("batch parts kept failing", system=SYSTEM)

            def classify(exc: Exception) -> Retry | BaseException:
                verdict = self._classify(exc)
                return replace(verdict, progressed=True) if isinstance(verdict, Retry) and progressed else verdict

            self._retry(round_, classify)
        return got, gone

    def gmail_history(self, user: str, start_history_id: str) -> Iterator[dict]:
        hist = self.gmail().users().history()
        try:
            yield from self.pages(lambda t: hist.list(userId="me", startHistoryId=start_history_id,
                                                      maxResults=self.settings.page_size, pageToken=t), user)
        except NotFoundError as exc:
            raise HistoryExpired("history id expired", system=SYSTEM, status=exc.status, method="GET",
                                 path=exc.path) from None

    # ------------------------------------------------------------------ Calendar
    def calendar_events(self, user: str, sync_token: str | None = None, q: str | None = None) -> Iterator[dict]:
        events = self.service("calendar").events()
        try:
            yield from self.pages(lambda t: events.list(calendarId="primary", syncToken=sync_token, q=q,
                                                        maxResults=250 if sync_token else 2500, pageToken=t,
                                                        showDeleted=None if sync_token else False), user)
        except NotFoundError as exc:
            if sync_token and exc.status == 410:
                raise SyncTokenExpired("calendar sync token expired", system=SYSTEM, status=410, path=exc.path) from None
            raise

    # ------------------------------------------------------------------ Drive
    def drive_start_token(self, user: str) -> str:
        return str(self.execute(self.service("drive").changes().getStartPageToken(), user)["startPageToken"])

    def drive_files(self, user: str, q: str = "'me' in owners and trashed = false") -> Iterator[dict]:
        files = self.service("drive").files()
        yield from self.pages(lambda t: files.list(q=q, pageSize=1000, pageToken=t,
                                                   fields=f"nextPageToken, files({DRIVE_FILE_FIELDS})"), user)

    def drive_changes(self, user: str, page_token: str) -> Iterator[dict]:
        changes = self.service("drive").changes()
        token: str | None = page_token
        while token:
            try:
                page = self.execute(changes.list(pageToken=token, pageSize=1000, includeRemoved=True,
                                                 fields=f"nextPageToken,newStartPageToken,changes(fileId,removed,time,file({DRIVE_FILE_FIELDS}))"),
                                    user)
            except (NotFoundError, BadRequestError) as exc:
                raise SyncTokenExpired("drive page token invalid", system=SYSTEM, status=exc.status) from None
            yield page
            token = page.get("nextPageToken")

    # ------------------------------------------------------------------ People
    def connections(self, user: str, sync_token: str | None = None) -> Iterator[dict]:
        people = self.service("people").people().connections()
        try:
            yield from self.pages(lambda t: people.list(resourceName="people/me", personFields=PERSON_FIELDS,
                                                        pageSize=1000, pageToken=t, syncToken=sync_token,
                                                        requestSyncToken=True), user)
        except NotFoundError as exc:
            if sync_token:
                raise SyncTokenExpired("people sync token expired", system=SYSTEM, status=exc.status) from None
            raise

    def other_contacts(self, user: str) -> Iterator[dict]:
        others = self.service("people").otherContacts()
        yield from self.pages(lambda t: others.list(readMask="names,emailAddresses,phoneNumbers", pageSize=1000,
                                                    pageToken=t), user)

    def close(self) -> None:
        for conn in list(self._http.connections.values()):
            try:
                conn.close()
            except OSError:
                pass
        self._http.connections.clear()


def settings_from_env(env: dict[str, str], **overrides: Any) -> GoogleSettings:
    """Settings from GOOGLE_* variables (tests, bench and the sandbox use this; Dagster uses EnvVar)."""
    if env.get("GOOGLE_SERVICE_ACCOUNT_FILE"):
        with open(env["GOOGLE_SERVICE_ACCOUNT_FILE"], encoding="utf-8") as f:
            info = json.load(f)
    else:
        info = json.loads(env["GOOGLE_SERVICE_ACCOUNT_JSON"])
    return GoogleSettings(service_account_info=info, admin_subject=env["GOOGLE_ADMIN_SUBJECT"],
                          domain=env.get("GOOGLE_DOMAIN", ""), api_endpoint=env.get("GOOGLE_API_ENDPOINT") or None,
                          token_uri=env.get("GOOGLE_TOKEN_URI") or None, **overrides)
