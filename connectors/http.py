"""The one HTTP layer every connector uses.

What it gives a connector:
- a pooled ``requests.Session`` with connect/read timeouts on every call;
- retries with full-jitter exponential backoff for 429, 502, 503, 504 and connection-level
  failures (refused, reset, dropped, read timeout, truncated body), honouring ``Retry-After``
  (seconds or HTTP date) and the vendor's rate-limit headers (remaining/reset);
- proactive pacing: when the vendor says the window is used up, the next call waits for the
  reset instead of provoking a 429 (Pipedrive answers repeated 429s with a Cloudflare 403);
- mapping of failures into the exception tree of ``connectors.errors``;
- logs and errors that carry the system, method, path (query string dropped, e-mail-looking
  path segments masked), status, attempt and timings, and never personal data.

The retry loop (``retry_call``) is the only one in the connectors: ``HttpClient`` runs its
requests through it, and the clients that cannot speak through ``HttpClient`` (Google's
discovery client on httplib2, python-rt on httpx2) or that judge an answer after it arrived
(Netvisor's XML status) plug their own error classification into it. It is written here rather
than delegated to urllib3's ``Retry`` or tenacity because the decisions are vendor-specific
(Pipedrive's daily budget 429 must not be retried, its reset header is relative seconds) and
because malformed or truncated bodies must be retried too, which urllib3 never sees.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, TypeVar
from urllib.parse import urlsplit

import orjson
import requests
from requests.adapters import HTTPAdapter

from connectors.errors import (
    AuthError,
    BadPayloadError,
    BadRequestError,
    ConnectorError,
    FatalError,
    NotFoundError,
    RateLimitedError,
    RetryableError,
)

log = logging.getLogger("connectors.http")

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
# Methods whose repetition cannot do harm. A POST is retried only when the request provably
# never reached the server (connect failure) or the server refused it unprocessed (429).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    # A Retry-After longer than this is not waited out inside one call: the caller gets a
    # RateLimitedError and decides (a daily budget resets at midnight, not in a minute).
    max_wait_s: float = 120.0


T = TypeVar("T")


@dataclass(frozen=True)
class Retry:
    """A classifier's verdict that a failed attempt is worth another one.

    ``wait_s``: the vendor named the wait (Retry-After): wait that long (plus a little jitter)
    instead of the backoff; longer than ``RetryPolicy.max_wait_s`` is not waited out: the
    error is raised. ``progressed``: the attempt got part of the work done (a batch whose parts
    partly succeeded), so the count of attempts starts again."""

    error: ConnectorError
    wait_s: float | None = None
    progressed: bool = False


def backoff_s(policy: RetryPolicy, attempt: int, wait_s: float | None, rng: random.Random,
              rate_limited: bool = False) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based): "full jitter" up to a
    cap that doubles each attempt (it spreads the retries of parallel clients), or the vendor's
    named wait plus a little jitter, never less. A rate limit with no named wait gets "equal
    jitter" (at least half the cap): full jitter could retry again and again within the same
    rate window and spend every attempt there (Google asks for exponential backoff that
    really grows)."""
    cap = min(policy.backoff_max_s, policy.backoff_base_s * (2 ** (attempt - 1)))
    if wait_s is not None:
        return wait_s + rng.uniform(0, min(1.0, cap))
    if rate_limited:
        return cap / 2 + rng.uniform(0, cap / 2)
    return rng.uniform(0, cap)


def retry_call(
    fn: Callable[[int], T],
    classify: Callable[[Exception], "Retry | BaseException"],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    on_retry: Callable[[int, ConnectorError, float], None] | None = None,
) -> T:
    """Call ``fn(attempt)`` until it returns, retrying what ``classify`` says is worth it.

    ``classify(exc)`` gets what one attempt raised and answers with a :class:`Retry`, or with
    the exception to raise (the one it got, or the ``connectors.errors`` class it maps to).
    After ``policy.max_attempts`` attempts in a row the last error is raised. ``on_retry(attempt,
    error, wait)`` runs before each wait (statistics, a log line without personal data)."""
    rng = rng or random.Random()
    attempt = 0  # failed attempts in a row, this one included
    while True:
        attempt += 1
        try:
            return fn(attempt)
        except Exception as exc:  # noqa: BLE001 - classified, then retried or raised
            verdict = classify(exc)
            if not isinstance(verdict, Retry):
                if verdict is exc:
                    raise
                raise verdict from exc
            error = verdict.error
            too_long = verdict.wait_s is not None and verdict.wait_s > policy.max_wait_s
            if verdict.progressed:
                attempt = 1
            if too_long or attempt >= policy.max_attempts:
                if error is exc:
                    raise
                raise error from exc
        wait = backoff_s(policy, attempt, verdict.wait_s, rng, isinstance(error, RateLimitedError))
        if on_retry is not None:
            on_retry(attempt, error, wait)
        sleep(wait)


@dataclass(frozen=True)
class RateLimitHeaders:
    """Names of the vendor's rate-limit headers. ``reset`` holds relative seconds."""

    remaining: str | None = None
    reset: str | None = None


@dataclass
class HttpStats:
    requests: int = 0
    retries: int = 0
    waited_s: float = 0.0
    by_status: dict[int, int] = field(default_factory=dict)


def safe_path(url: str) -> str:
    """The URL's path without query string, with e-mail-looking segments masked: loggable."""
    path = urlsplit(url).path or "/"
    return "/".join("{email}" if "@" in part or "%40" in part else part for part in path.split("/"))


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _float_header(headers: Mapping[str, str], name: str | None) -> float | None:
    if not name or name not in headers:
        return None
    try:
        return float(headers[name])
    except (TypeError, ValueError):
        return None


class HttpClient:
    """A pooled, retrying HTTP client for one system.

    ``classify_429`` lets a connector say how long to wait for a particular 429 response, or
    that it must not be retried (return None): the vendor knows whether it is a burst or a
    budget limit.
    """

    def __init__(
        self,
        system: str,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: tuple[float, float] = (5.0, 30.0),
        retry: RetryPolicy = RetryPolicy(),
        rate_limit_headers: RateLimitHeaders = RateLimitHeaders(),
        classify_429: Callable[[requests.Response], float | None] | None = None,
        pool_size: int = 8,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.system = system
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retry = retry
        self.rate_limit_headers = rate_limit_headers
        self.classify_429 = classify_429 or self._default_classify_429
        self.stats = HttpStats()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._not_before = 0.0  # monotonic time before which no request may start
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        if headers:
            self.session.headers.update(headers)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> "HttpClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- public API -----------------------------------------------------------------------

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        ok_status: frozenset[int] | None = None,
    ) -> requests.Response:
        """Send one request, retrying what is retryable; return a successful response."""
        return self._send(method, path, params, json_body, data, headers, idempotent, ok_status, None)

    def request_json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> Any:
        """Like :meth:`request` and decode the JSON body. A body that is not JSON is treated as
        a transient failure (truncated or garbled on the way) and retried; if it persists it
        raises BadPayloadError."""
        return self._send(method, path, params, json_body, data, headers, idempotent, None, _decode_json)

    # -- the loop -------------------------------------------------------------------------

    def _send(self, method, path, params, json_body, data, headers, idempotent, ok_status, decode):
        method = method.upper()
        url = self.url(path)
        where = {"system": self.system, "method": method, "path": safe_path(url)}
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        ok = ok_status or frozenset(range(200, 300))

        def attempt(number: int) -> Any:
            self._wait_for_window()
            started = time.monotonic()
            with self._lock:
                self.stats.requests += 1
            response = self.session.request(
                method, url, params=params, json=json_body, data=data, headers=headers, timeout=self.timeout,
            )
            elapsed_ms = int((time.monotonic() - started) * 1000)
            self._remember_window(response)
            with self._lock:
                self.stats.by_status[response.status_code] = self.stats.by_status.get(response.status_code, 0) + 1
            log.debug("%s %s %s -> %s in %d ms (attempt %d)",
                      self.system, method, where["path"], response.status_code, elapsed_ms, number)
            if response.status_code not in ok:
                raise self._error_for(response, where)
            if decode is None:
                return response
            try:
                return decode(response)
            except ValueError:
                raise BadPayloadError("response body is not valid JSON", status=response.status_code, **where) from None

        def classify(exc: Exception) -> Retry | BaseException:
            # A repeated request must do no harm: only idempotent ones are retried, and a POST
            # only when it provably never reached the server (connect failure) or was refused
            # unprocessed (429).
            if isinstance(exc, requests.exceptions.ConnectionError):
                never_sent = isinstance(exc, requests.exceptions.ConnectTimeout) or _is_connect_refused(exc)
                error = RetryableError(f"connection failed ({type(exc).__name__})", **where)
                return Retry(error) if idempotent or never_sent else error
            if isinstance(exc, requests.exceptions.Timeout):
                error = RetryableError(f"timed out ({type(exc).__name__})", **where)
                return Retry(error) if idempotent else error
            if isinstance(exc, requests.exceptions.RequestException):  # truncated/garbled transfer
                error = RetryableError(f"transfer failed ({type(exc).__name__})", **where)
                return Retry(error) if idempotent else error
            if isinstance(exc, RateLimitedError):
                # No wait named: the connector's classify_429 says it must not be retried.
                return exc if exc.retry_after is None else Retry(exc, wait_s=exc.retry_after)
            if isinstance(exc, (RetryableError, BadPayloadError)):
                return Retry(exc) if idempotent else exc
            return exc

        def on_retry(number: int, error: ConnectorError, wait: float) -> None:
            with self._lock:
                self.stats.retries += 1
                self.stats.waited_s += wait
            log.warning("%s %s %s: %s; retry %d/%d in %.2f s", self.system, method, where["path"],
                        type(error).__name__, number, self.retry.max_attempts - 1, wait)

        return retry_call(attempt, classify, self.retry, sleep=self._sleep, rng=self._rng, on_retry=on_retry)

    def _error_for(self, response: requests.Response, where: dict) -> ConnectorError:
        status = response.status_code
        # Our own words make the message; the vendor's text rides along apart (it may quote
        # personal data), so describe() can leave it out of cases and the audit trail.
        where = dict(where, vendor_text=_vendor_message(response))
        if status == 429:
            wait = self.classify_429(response)
            return RateLimitedError("rate limited", retry_after=wait, status=status, **where)
        if status in RETRYABLE_STATUS:
            return RetryableError("server error", status=status, **where)
        if status in (401, 403):
            return AuthError("authentication failed", status=status, **where)
        if status in (404, 410):
            return NotFoundError("not found", status=status, **where)
        if status in (400, 422):
            return BadRequestError("bad request", status=status, **where)
        if status >= 500:
            return RetryableError("server error", status=status, **where)
        return FatalError("unexpected status", status=status, **where)

    def _default_classify_429(self, response: requests.Response) -> float | None:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if retry_after is not None:
            return retry_after
        reset = _float_header(response.headers, self.rate_limit_headers.reset)
        if reset is not None:
            return reset
        return self.retry.backoff_base_s

    # -- pacing by the vendor's own headers -----------------------------------------------

    def _remember_window(self, response: requests.Response) -> None:
        remaining = _float_header(response.headers, self.rate_limit_headers.remaining)
        reset = _float_header(response.headers, self.rate_limit_headers.reset)
        if remaining is not None and reset is not None and remaining <= 0:
            with self._lock:
                self._not_before = max(self._not_before, time.monotonic() + reset)

    def _wait_for_window(self) -> None:
        with self._lock:
            wait = self._not_before - time.monotonic()
        if wait > 0:
            with self._lock:
                self.stats.waited_s += wait
            log.info("%s: rate-limit window used up, waiting %.2f s", self.system, wait)
            self._sleep(wait)


def _decode_json(response: requests.Response) -> Any:
    if not response.content:
        raise ValueError("empty body")
    try:
        # orjson: a 500-record page decodes several times faster than with the json module
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        # orjson refuses a few bodies the json module reads: lone surrogate escapes (which the
        # syncs replace and record as an issue) and NaN/Infinity. The json module decides, and
        # its ValueError on a body that really is bad stays what callers see.
        return json.loads(response.content)


def _is_connect_refused(exc: Exception) -> bool:
    text = repr(exc)
    return "NewConnectionError" in text or "Connection refused" in text


def _vendor_message(response: requests.Response) -> str:
    """The vendor's short error text, if the body is a JSON error envelope. Capped so a huge or
    hostile body cannot flood logs."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict):
        for key in ("error", "message", "error_description"):
            value = body.get(key)
            if isinstance(value, str):
                return value[:200]
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return value["message"][:200]
    return ""
