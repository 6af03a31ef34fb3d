"""Serves imitations over real HTTP, one port per system.

Built on the standard library's `ThreadingHTTPServer` and a custom `BaseHTTPRequestHandler`
rather than a web framework because (1) it adds no dependency to the project, and (2) fault
injection needs socket-level control that frameworks hide: closing a connection without any
response, or sending a full Content-Length and then half the body. HTTP/1.1 keep-alive is on
(`protocol_version`), so every response carries a Content-Length, as a pooled client expects.

Request logging is silenced on purpose: URLs and bodies may carry names, emails and phones,
and the project never writes personal data to logs.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .base import ALL_KINDS, PAGE_KINDS, ApiError, FaultPlan, Imitation, Request, Response, Router, Stats, json_response
from .docue import DocueImitation
from .google import GoogleImitation
from .matomo import MatomoImitation
from .netvisor import NetvisorImitation
from .pipedrive import PipedriveImitation
from .trustmary import TrustmaryImitation
from .world import World

__all__ = ["Sandbox", "Imitation", "Router", "Stats", "FaultPlan", "Request", "Response", "ApiError",
           "ALL_KINDS", "json_response", "SYSTEMS"]


# system name -> factory(world) -> Imitation. Future systems (google, netvisor) add theirs here
# (and a property on Sandbox, like `pipedrive`; other names resolve through __getattr__).
SYSTEMS: dict[str, Callable[[World], Imitation]] = {"pipedrive": PipedriveImitation, "google": GoogleImitation,
                                                   "netvisor": NetvisorImitation, "trustmary": TrustmaryImitation,
                                                   "matomo": MatomoImitation, "docue": DocueImitation}

GATEWAY_PAGE = (
    "<html><head><title>{code} {reason}</title></head><body><center><h1>{code} {reason}</h1></center>"
    "<hr><center>cloudflare</center></body></html>"
)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a hung client connection must never keep the process alive
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], imitation: Imitation):
        self.imitation = imitation
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request, client_address):  # type: ignore[override]
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):  # type: ignore[override]
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):  # type: ignore[override]
        # The default prints a traceback for every client that hangs up mid-request; a reset
        # connection is normal here (faults, timeouts), and stderr must stay free of request data.
        pass

    def close_open_connections(self) -> None:
        """Unblock keep-alive handler threads so a stopped sandbox really stops answering."""
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sandbox"
    timeout = 120  # idle keep-alive connections give up eventually
    # Headers and body go out in two writes; with Nagle on, each small response waits ~40 ms
    # for the client's delayed ACK.
    disable_nagle_algorithm = True
    server: _Server

    def version_string(self) -> str:
        return self.server_version

    def date_time_string(self, timestamp: float | None = None) -> str:
        # The Date header every answer carries (RFC 9110 6.6.1), off by the imitation's
        # clock_skew_s: a server whose clock is wrong, which the doctor must name.
        now = time.time() if timestamp is None else timestamp
        return super().date_time_string(now + self.server.imitation.clock_skew_s)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - no personal data in logs
        pass

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self) -> None:
        imitation = self.server.imitation
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        req = Request(self.command, parts.path, query, self.headers, body)
        if parts.path.startswith("/_sandbox/"):
            self._write(_control(imitation, req))
            return
        req.route = imitation.route_of(req.method, req.path)
        imitation.stats.count(req.route)
        fault = imitation.faults.draw()
        try:
            if fault is None:
                self._write(imitation.dispatch(req))
            else:
                imitation.stats.count_fault()
                self._fault(imitation, req, *fault)
        except Exception as exc:  # a bug must cost one 500, not the connection thread
            self._write(json_response(500, {"success": False, "error": f"sandbox error: {type(exc).__name__}"}))

    def _fault(self, imitation: Imitation, req: Request, kind: str, status: int) -> None:
        if kind in PAGE_KINDS:
            req.page_fault = kind
            self._write(imitation.dispatch(req))
        elif kind == "slow":
            time.sleep(imitation.slow_seconds)
            self._write(imitation.dispatch(req))  # late but real: a timed-out write may have happened
        elif kind == "429":
            resp = imitation.error_response(req, 429, "Too many requests", "ERR_RATE_LIMIT")
            resp.headers.update(imitation.rate_limit_fault_headers())
            self._write(resp)
        elif kind == "5xx":
            if status in (502, 504):
                reason = "Bad Gateway" if status == 502 else "Gateway Time-out"
                page = GATEWAY_PAGE.format(code=status, reason=reason).encode()
                self._write(Response(status, page, {"Content-Type": "text/html"}))
            else:
                self._write(imitation.error_response(req, status, "Internal server error", "ERR_INTERNAL"))
        elif kind == "drop":
            self.close_connection = True  # nothing written: the client sees the socket close
        elif kind == "truncate":
            # Reads are safe to run, so a truncated read carries real data; writes must not take
            # effect, so they get a stand-in body of similar shape.
            if req.method == "GET":
                resp = imitation.dispatch(req)
            else:
                resp = json_response(200, {"success": True, "data": {"id": 0, "padding": "x" * 200}})
            self._write(resp, truncate=True)
        elif kind == "malformed":
            body = b'{"success":true,"data":[{"id":1,"name":"'
            self._write(Response(200, body, {"Content-Type": "application/json"}))

    def _write(self, resp: Response, truncate: bool = False) -> None:
        try:
            self.send_response(resp.status)
            for key, value in resp.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(resp.body)))
            if truncate:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(resp.body[: len(resp.body) // 2] if truncate else resp.body)
            self.wfile.flush()
        except OSError:  # the client went away (e.g. it timed out during a slow fault)
            self.close_connection = True
        if truncate:
            self.close_connection = True


def _control(imitation: Imitation, req: Request) -> Response:
    """`/_sandbox/*` routes: never faulted, never authenticated, never counted."""
    key = (req.method, req.path.rstrip("/"))
    if key == ("GET", "/_sandbox/health"):
        return json_response(200, {"ok": True, "system": imitation.name})
    if key == ("GET", "/_sandbox/stats"):
        return json_response(200, {"routes": imitation.requests_by_route(), "total": imitation.total_requests(),
                                   "faults": imitation.faults_injected()})
    if key == ("POST", "/_sandbox/stats/reset"):
        imitation.reset_stats()
        return json_response(200, {"ok": True})
    if key == ("POST", "/_sandbox/faults"):
        try:
            spec = req.json()
            imitation.set_faults(float(spec.get("rate", 0)), spec.get("kinds") or ALL_KINDS,
                                 int(spec.get("seed", 1)), int(spec.get("burst", 1)))
        except (ApiError, ValueError, TypeError, AttributeError) as exc:
            return json_response(400, {"ok": False, "error": str(exc)})
        return json_response(200, {"ok": True})
    return json_response(404, {"ok": False, "error": "unknown control route"})


class Sandbox:
    """Runs the chosen systems' imitations, each on its own port (0 = any free port)."""

    def __init__(self, world: World, systems: Iterable[str] = ("pipedrive",), host: str = "127.0.0.1",
                 ports: dict[str, int] | None = None):
        self.world = world
        self.host = host
        self._ports = dict(ports or {})
        self._imitations: dict[str, Imitation] = {}
        for name in systems:
            if name not in SYSTEMS:
                raise ValueError(f"unknown system {name!r}; known: {sorted(SYSTEMS)}")
            self._imitations[name] = SYSTEMS[name](world)
        self._servers: dict[str, _Server] = {}
        self._threads: list[threading.Thread] = []

    def __getattr__(self, name: str) -> Imitation:
        # sb.pipedrive -> the imitation; only called for attributes not found normally.
        imitations = self.__dict__.get("_imitations", {})
        if name in imitations:
            return imitations[name]
        raise AttributeError(name)

    @property
    def pipedrive(self) -> PipedriveImitation:
        return self._imitations["pipedrive"]  # type: ignore[return-value]

    @property
    def systems(self) -> list[str]:
        return list(self._imitations)

    def system(self, name: str) -> Imitation:
        return self._imitations[name]

    def start(self) -> Sandbox:
        for name, imitation in self._imitations.items():
            if name in self._servers:
                continue
            server = _Server((self.host, self._ports.get(name, 0)), imitation)
            self._servers[name] = server
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                      name=f"sandbox-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        for server in self._servers.values():
            server.shutdown()
            server.close_open_connections()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers.clear()
        self._threads.clear()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def url(self, system: str) -> str:
        server = self._servers[system]
        host, port = server.server_address[:2]
        return f"http://{host}:{port}"

    def env(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, imitation in self._imitations.items():
            out.update(imitation.env(self.url(name)))
        return out

    def describe(self) -> dict[str, Any]:
        """What the CLI writes to the state file."""
        return {name: {"url": self.url(name), "env": imitation.env(self.url(name))}
                for name, imitation in self._imitations.items()}
