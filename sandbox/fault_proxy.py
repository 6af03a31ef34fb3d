"""A fault-injecting HTTP proxy in front of a real service (Request Tracker is not imitated).

It is an `Imitation` whose `dispatch` forwards the request upstream, so the sandbox's own
server and `FaultPlan` do the misbehaving exactly as for the imitated APIs: 429 with
Retry-After, 5xx, slow answers, dropped connections, truncated and malformed bodies. Page
faults apply to JSON collections shaped like REST2's (``items`` with ``page``/``per_page``
paging): "duplicate" repeats a page's first items at its end, "shift" starts a page with the
last items of the previous one (fetched upstream with ``page - 1``).

Writes pass through like reads, so a test must not fault a write it cannot repeat safely.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any
from urllib.parse import urlencode

import requests

from .base import PAGE_FAULT_OVERLAP, Imitation, Request, Response
from .server import _Server  # the sandbox's own server: the same fault handling as the imitations

# Hop-by-hop headers and the ones `requests` has already acted on (decoding, framing).
_DROP_REQUEST = {"host", "content-length", "connection", "accept-encoding", "keep-alive"}
_ID = re.compile(r"/\d+(?=/|$)")  # ids in paths: stats count per route, not per record
_DROP_RESPONSE = {"content-length", "content-encoding", "transfer-encoding", "connection", "keep-alive"}


class ForwardingImitation(Imitation):
    name = "fault-proxy"

    def __init__(self, upstream: str, timeout_s: float = 60.0) -> None:
        super().__init__()
        self.upstream = upstream.rstrip("/")
        self.timeout_s = timeout_s
        self._local = threading.local()  # one pooled session per server thread

    def route_of(self, method: str, path: str) -> str:
        return f"{method} {_ID.sub('/{id}', path)}"

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def _forward(self, req: Request, query: dict[str, str]) -> requests.Response:
        # The query arrives parsed into a dict (the sandbox server's Request): a repeated key
        # would keep its last value only, which the clients proxied here never send.
        url = self.upstream + req.path + (f"?{urlencode(query)}" if query else "")
        headers = {k: v for k, v in req.headers.items() if k.lower() not in _DROP_REQUEST}
        return self._session().request(req.method, url, data=req.body or None, headers=headers,
                                       timeout=self.timeout_s, allow_redirects=False)

    def dispatch(self, req: Request) -> Response:
        upstream = self._forward(req, req.query)
        body = upstream.content
        if req.page_fault and upstream.status_code == 200:
            body = self._page_fault(req, body)
        headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _DROP_RESPONSE}
        return Response(upstream.status_code, body, headers)

    def _page_fault(self, req: Request, body: bytes) -> bytes:
        try:
            data: Any = json.loads(body)
        except ValueError:
            return body
        if not isinstance(data, dict) or not isinstance(data.get("items"), list):
            return body  # not a collection: nothing to repeat
        items = data["items"]
        if req.page_fault == "duplicate":
            data["items"] = items + items[:PAGE_FAULT_OVERLAP]
        else:
            page = int(req.query.get("page") or 1)
            if page <= 1:
                return body
            previous = self._forward(req, dict(req.query, page=str(page - 1)))
            if previous.status_code != 200:
                return body
            data["items"] = previous.json().get("items", [])[-PAGE_FAULT_OVERLAP:] + items
        return json.dumps(data).encode("utf-8")


class FaultProxy:
    """Serves a `ForwardingImitation` on a free local port: ``with FaultProxy(url) as proxy``;
    ``proxy.url`` replaces the service's url, ``proxy.imitation.set_faults(...)`` plans faults."""

    def __init__(self, upstream: str, host: str = "127.0.0.1") -> None:
        self.imitation = ForwardingImitation(upstream)
        self._server = _Server((host, 0), self.imitation)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="fault-proxy", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.close_open_connections()
        self._server.server_close()
        self._thread.join(timeout=5)
