"""The exception tree every connector raises.

Callers decide what to do by class, never by parsing messages:

    ConnectorError
    ├── RetryableError          worth trying again later (5xx, timeouts, dropped connections)
    │   └── RateLimitedError    the vendor said "slow down"; ``retry_after`` says how long
    ├── BadPayloadError         the answer could not be understood (not JSON, wrong shape)
    └── FatalError              trying again will not help
        ├── AuthError           401/403: wrong or missing credentials, or no permission
        ├── NotFoundError       404/410: the thing does not exist (any more)
        └── BadRequestError     400/422: we sent something the vendor refuses

Messages carry the system, the HTTP method, the path without its query string, the status and
the vendor's short error text: never request bodies, query strings or record contents, because
those hold personal data.
"""

from __future__ import annotations


VENDOR_TEXT_MARK = " (vendor said: "  # starts the vendor's text at the end of a message


class ConnectorError(Exception):
    def __init__(
        self,
        message: str,
        *,
        system: str = "",
        status: int | None = None,
        method: str = "",
        path: str = "",
        vendor_text: str = "",
    ) -> None:
        self.system = system
        self.status = status
        self.method = method
        self.path = path
        # The vendor's own error text may quote what it refused (an address, a name): kept on the
        # exception for whoever holds it, left out of describe() and so of every record.
        self.vendor_text = vendor_text
        where = " ".join(p for p in (system, method, path) if p)
        status_text = f" -> HTTP {status}" if status is not None else ""
        self.own_text = f"{where}{status_text}: {message}" if where else message
        super().__init__(self.own_text + (f"{VENDOR_TEXT_MARK}{vendor_text})" if vendor_text else ""))


class RetryableError(ConnectorError):
    """Transient: the same request may succeed later."""


class RateLimitedError(RetryableError):
    """The vendor refused for rate reasons. ``retry_after`` is seconds, or None if unknown."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)


class BadPayloadError(ConnectorError):
    """The response body is not what the API promises (malformed JSON, wrong envelope)."""


class FatalError(ConnectorError):
    """Permanent for this request: retrying cannot help."""


class AuthError(FatalError):
    """Authentication failed or the credentials lack permission (401, 403)."""


class NotFoundError(FatalError):
    """The requested object does not exist (404) or is gone for good (410)."""


class BadRequestError(FatalError):
    """The vendor rejected the request as invalid (400, 422)."""


class SafeMessage:
    """Mixin for the project's own exceptions whose messages are written to carry no personal
    data (ids, counts, states, field names), so :func:`describe` may show them."""


class SettingMissing(SafeMessage, ValueError):
    """A connector setting (URL, token, id) is empty: the message names the setting."""


def describe(exc: BaseException, limit: int = 1500) -> str:
    """An exception as text for logs, cases and Dagster: the class name, plus the message for
    connector errors (without the vendor's text) and :class:`SafeMessage` exceptions. A foreign exception's text may quote
    personal data (a URL with an address in it, a library echoing a value), so it is left out."""
    if isinstance(exc, ConnectorError):
        return f"{type(exc).__name__}: {exc.own_text}"[:limit]
    if isinstance(exc, SafeMessage):
        return f"{type(exc).__name__}: {exc}"[:limit]
    return type(exc).__name__
