"""Generic pieces every imitated API shares: routing, request/response values, request
statistics, fault planning and the `Imitation` base class with its hooks (auth, rate limiting,
error envelope). The HTTP plumbing that calls into an imitation lives in `sandbox.server`.
"""

from __future__ import annotations

import json
import random
import re
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

ALL_KINDS = ("429", "5xx", "slow", "drop", "truncate", "malformed")
# Page faults: a 200 whose list overlaps the previous page ("shift": the page starts a few
# records early) or repeats records within itself ("duplicate"). Only list endpoints that
# read ``Request.page_fault`` honour them; elsewhere they change nothing.
PAGE_KINDS = ("shift", "duplicate")
PAGE_FAULT_OVERLAP = 3  # records a shifted or duplicated page repeats


def faulted_page(items: Sequence[Any], start: int, size: int, fault: str | None) -> list[Any]:
    """``items[start:start + size]`` as an offset-paged list endpoint serves it, misbehaving as
    ``fault`` asks: "shift" starts the page a few records early (they were on the previous
    page: at-least-once paging), "duplicate" repeats its first records at its end."""
    first = max(0, start - PAGE_FAULT_OVERLAP) if fault == "shift" else start
    page = list(items[first:start + size])
    if fault == "duplicate":
        page += page[:PAGE_FAULT_OVERLAP]
    return page


class ApiError(Exception):
    """Raised by handlers; the imitation renders it in its own error envelope."""

    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Message
    body: bytes
    route: str = ""  # "METHOD template", the key used in stats
    params: dict[str, str] = field(default_factory=dict)
    token: str | None = None  # set by the auth hook
    page_fault: str | None = None  # "shift" or "duplicate": see PAGE_KINDS

    def json(self) -> Any:
        if not self.body:
            return {}
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, f"Request body is not valid JSON: {exc}") from None


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, obj: Any, headers: dict[str, str] | None = None) -> Response:
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    try:
        body = text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (planted by a robustness test) cannot be UTF-8; JSON can still carry
        # it as a \ud800 escape, which is what a real API would send.
        body = json.dumps(obj, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    return Response(status, body, {"Content-Type": "application/json; charset=utf-8", **(headers or {})})


class Router:
    """Method + path template ("/api/v2/persons/{id}") -> handler. `{id}` matches digits only,
    other `{name}` parameters any single path segment."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, str, re.Pattern[str], Callable[..., Response]]] = []

    def add(self, method: str, template: str, handler: Callable[..., Response]) -> None:
        pattern = re.sub(r"\{(\w+)\}", lambda m: rf"(?P<{m[1]}>\d+)" if m[1] == "id" else rf"(?P<{m[1]}>[^/]+)",
                         re.escape(template).replace(r"\{", "{").replace(r"\}", "}"))
        self._routes.append((method.upper(), template, re.compile(pattern + "$"), handler))

    def match(self, method: str, path: str) -> tuple[Callable[..., Response] | None, str | None, dict[str, str]]:
        """(handler, template, params); handler None with a template means wrong method (405);
        both None means no such path (404)."""
        path_template = None
        for route_method, template, regex, handler in self._routes:
            m = regex.match(path)
            if m:
                if route_method == method:
                    return handler, template, m.groupdict()
                path_template = path_template or template
        return None, path_template, {}


class Stats:
    """Thread-safe request counters keyed by "METHOD route-template"."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routes: Counter[str] = Counter()
        self._faults = 0

    def count(self, route: str) -> None:
        with self._lock:
            self._routes[route] += 1

    def count_fault(self) -> None:
        with self._lock:
            self._faults += 1

    def requests_by_route(self) -> dict[str, int]:
        with self._lock:
            return dict(self._routes)

    def total_requests(self) -> int:
        with self._lock:
            return sum(self._routes.values())

    def faults_injected(self) -> int:
        with self._lock:
            return self._faults

    def reset_stats(self) -> None:
        with self._lock:
            self._routes.clear()
            self._faults = 0


class FaultPlan:
    """Decides, per API request and before it is processed, whether and how to misbehave.
    A seeded RNG makes a test's fault sequence repeatable for the same request order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.clear()

    def set(self, rate: float, kinds: Sequence[str] = ALL_KINDS, seed: int = 1, burst: int = 1,
            cycle: bool = False) -> None:
        """``cycle``: take the kinds in turn rather than at random, so that a test with as many
        faults as kinds is sure to see every kind."""
        kinds = tuple(kinds)
        unknown = set(kinds) - set(ALL_KINDS) - set(PAGE_KINDS)
        if unknown or not kinds:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; choose from {ALL_KINDS + PAGE_KINDS}")
        if not 0.0 <= rate <= 1.0 or burst < 1:
            raise ValueError("rate must be in [0, 1] and burst >= 1")
        with self._lock:
            self.rate, self.kinds, self.burst, self.cycle = float(rate), kinds, int(burst), cycle
            self._rng = random.Random(seed)
            self._left_in_burst = 0
            self.drawn = Counter()

    def clear(self) -> None:
        with self._lock:
            self.rate, self.kinds, self.burst, self.cycle = 0.0, ALL_KINDS, 1, False
            self._rng = random.Random(1)
            self._left_in_burst = 0
            self.drawn: Counter[str] = Counter()  # kinds injected since the plan was last set

    def draw(self) -> tuple[str, int] | None:
        """(kind, status for 5xx) or None."""
        with self._lock:
            if self._left_in_burst > 0:
                self._left_in_burst -= 1
            elif self.rate > 0 and self._rng.random() < self.rate:
                self._left_in_burst = self.burst - 1
            else:
                return None
            if self.cycle:
                kind = self.kinds[sum(self.drawn.values()) % len(self.kinds)]
            else:
                kind = self._rng.choice(self.kinds)
            self.drawn[kind] += 1
            return kind, self._rng.choice((500, 502, 503, 504))


class Imitation:
    """Base class of an imitated API. Subclasses register routes on `self.router` and may
    override the hooks `authenticate`, `admit` (rate limiting, budgets), `error_response`,
    `rate_limit_fault_headers`, `normalize_path` and `env`."""

    name = "base"

    def __init__(self) -> None:
        self.router = Router()
        self.stats = Stats()
        self.faults = FaultPlan()
        self.slow_seconds = 3.0  # long enough to trip a client's 1-2 s read timeout
        # Seconds the server's clock (its Date header) is off: a misconfiguration the doctor
        # must name, since signatures, tokens and change cursors compare times.
        self.clock_skew_s = 0.0

    # -- stats and faults, also reachable as imitation.stats.* --
    def requests_by_route(self) -> dict[str, int]:
        return self.stats.requests_by_route()

    def total_requests(self) -> int:
        return self.stats.total_requests()

    def faults_injected(self) -> int:
        return self.stats.faults_injected()

    def reset_stats(self) -> None:
        self.stats.reset_stats()

    def set_faults(self, rate: float, kinds: Sequence[str] = ALL_KINDS, seed: int = 1, burst: int = 1) -> None:
        if rate <= 0:
            self.faults.clear()
        else:
            self.faults.set(rate, kinds, seed, burst)

    def clear_faults(self) -> None:
        self.faults.clear()

    # -- hooks --
    def env(self, url: str) -> dict[str, str]:
        return {}

    def normalize_path(self, path: str) -> str:
        return path

    def authenticate(self, req: Request) -> Response | None:
        """Return an error response to refuse the request, None to accept it."""
        return None

    def admit(self, req: Request) -> tuple[Response | None, dict[str, str]]:
        """Rate limiting hook: (refusal or None, headers to add to the response)."""
        return None, {}

    def error_response(self, req: Request, status: int, message: str, code: str | None = None) -> Response:
        return json_response(status, {"error": message, "code": code})

    def rate_limit_fault_headers(self) -> dict[str, str]:
        return {"Retry-After": "1"}

    # -- request processing --
    def route_of(self, method: str, path: str) -> str:
        _handler, template, _params = self.router.match(method, self.normalize_path(path))
        return f"{method} {template or '(unmatched)'}"

    def dispatch(self, req: Request) -> Response:
        handler, template, params = self.router.match(req.method, self.normalize_path(req.path))
        if template is None:
            return self.error_response(req, 404, f"Unknown path {req.method} {req.path}", "ERR_NOT_FOUND")
        if handler is None:
            return self.error_response(req, 405, "Method not allowed", "ERR_METHOD_NOT_ALLOWED")
        req.params = params
        refusal = self.authenticate(req)
        if refusal is not None:
            return refusal
        refusal, extra = self.admit(req)
        if refusal is not None:
            return refusal
        try:
            resp = handler(req, **params)
        except ApiError as exc:
            resp = self.error_response(req, exc.status, exc.message, exc.code)
        except Exception as exc:  # a bug or a planted bad record must not kill the server thread
            resp = self.error_response(req, 500, f"Internal error: {type(exc).__name__}", "ERR_INTERNAL")
        resp.headers.update(extra)
        return resp
