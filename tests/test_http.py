"""The shared HTTP layer against a real local HTTP server that answers from a script."""

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from connectors.errors import (
    AuthError,
    BadPayloadError,
    BadRequestError,
    NotFoundError,
    RateLimitedError,
    RetryableError,
)
from connectors.http import HttpClient, RateLimitHeaders, Retry, RetryPolicy, parse_retry_after, retry_call, safe_path


class Scripted:
    """A server answering each request with the next (status, headers, body) of a script."""

    def __init__(self):
        self.script = []
        self.seen = []  # (method, path, monotonic time)
        handler = self._handler()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def _handler(self):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                outer.seen.append((self.command, self.path, time.monotonic()))
                status, headers, body = outer.script.pop(0) if outer.script else (200, {}, {"ok": True})
                if status == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _answer

        return Handler

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def server():
    s = Scripted()
    yield s
    s.close()


def client(server, **kw):
    sleeps = []
    kw.setdefault("retry", RetryPolicy(max_attempts=4, backoff_base_s=0.01, backoff_max_s=0.05))
    c = HttpClient("testsys", server.url, timeout=(2, 2), sleep=lambda s: (sleeps.append(s), time.sleep(s)), **kw)
    return c, sleeps


def test_retries_5xx_then_succeeds(server):
    server.script = [(503, {}, {"error": "maintenance"}), (502, {}, b"<html>bad gateway</html>"), (200, {}, {"x": 1})]
    c, sleeps = client(server)
    assert c.request_json("GET", "/things") == {"x": 1}
    assert c.stats.requests == 3 and c.stats.retries == 2
    assert len(sleeps) == 2


def test_honours_retry_after_seconds(server):
    server.script = [(429, {"Retry-After": "1"}, {"error": "slow down"}), (200, {}, {"x": 2})]
    c, sleeps = client(server)
    assert c.request_json("GET", "/things") == {"x": 2}
    assert sleeps[0] >= 1.0
    assert server.seen[1][2] - server.seen[0][2] >= 1.0


def test_retry_after_http_date():
    future = time.time() + 30
    value = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(future))
    assert 25 <= parse_retry_after(value) <= 31
    assert parse_retry_after("nonsense") is None
    assert parse_retry_after("0") == 0.0


def test_long_retry_after_is_raised_not_waited(server):
    server.script = [(429, {"Retry-After": "3600"}, {"error": "daily limit"})]
    c, sleeps = client(server)
    with pytest.raises(RateLimitedError) as exc:
        c.request_json("GET", "/things")
    assert exc.value.retry_after == 3600
    assert sleeps == [] and c.stats.requests == 1


def test_paces_on_vendor_rate_limit_headers(server):
    server.script = [
        (200, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1"}, {"n": 1}),
        (200, {"x-ratelimit-remaining": "5", "x-ratelimit-reset": "2"}, {"n": 2}),
    ]
    c, sleeps = client(server, rate_limit_headers=RateLimitHeaders("x-ratelimit-remaining", "x-ratelimit-reset"))
    c.request_json("GET", "/a")
    c.request_json("GET", "/b")
    assert server.seen[1][2] - server.seen[0][2] >= 0.9
    assert c.stats.by_status == {200: 2}  # waited instead of provoking a 429


def test_error_classes(server):
    server.script = [
        (401, {}, {"success": False, "error": "unauthorized access", "errorCode": 401}),
        (403, {}, b"<html>cloudflare</html>"),
        (404, {}, {"error": "Not found"}),
        (400, {}, {"error": "bad updated_since"}),
    ]
    c, _ = client(server)
    with pytest.raises(AuthError, match="unauthorized access"):
        c.request_json("GET", "/a")
    with pytest.raises(AuthError):
        c.request_json("GET", "/a")
    with pytest.raises(NotFoundError):
        c.request_json("GET", "/a")
    with pytest.raises(BadRequestError, match="bad updated_since"):
        c.request_json("GET", "/a")
    assert c.stats.requests == 4  # none of these is retried


def test_malformed_json_is_retried_then_reported(server):
    server.script = [(200, {}, b'{"data": [1, 2'), (200, {}, {"data": [1, 2]})]
    c, _ = client(server)
    assert c.request_json("GET", "/a") == {"data": [1, 2]}
    server.script = [(200, {}, b"<html>") for _ in range(4)]
    with pytest.raises(BadPayloadError):
        c.request_json("GET", "/a")


def test_json_the_fast_decoder_refuses_is_still_read(server):
    # A lone surrogate escape is legal JSON text (the syncs replace it and record an issue), and
    # NaN is what Python's json module reads: neither may become a bad payload.
    server.script = [(200, {}, b'{"name": "Bad \\ud800 x", "n": NaN}'), (200, {}, b'{"name": "\\u00e4"}')]
    c, _ = client(server)
    first = c.request_json("GET", "/a")
    assert first["name"] == "Bad \ud800 x" and first["n"] != first["n"]
    assert c.request_json("GET", "/a") == {"name": "\u00e4"}
    assert c.stats.retries == 0


def test_dropped_connection_is_retried_for_get(server):
    server.script = [("drop", {}, b""), (200, {}, {"ok": 1})]
    c, _ = client(server)
    assert c.request_json("GET", "/a") == {"ok": 1}


def test_post_is_not_retried_after_server_error(server):
    server.script = [(500, {}, {"error": "boom"}), (200, {}, {"ok": 1})]
    c, _ = client(server)
    with pytest.raises(RetryableError):
        c.request_json("POST", "/things", json_body={"name": "x"})
    assert c.stats.requests == 1


def test_post_is_retried_after_429(server):
    server.script = [(429, {"Retry-After": "0"}, {}), (201, {}, {"id": 5})]
    c, _ = client(server)
    assert c.request_json("POST", "/things", json_body={"name": "x"}) == {"id": 5}


def test_read_timeout_is_retried(server):
    # A server that never answers the first request within the read timeout.
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(5)
    port = sock.getsockname()[1]
    c = HttpClient("slow", f"http://127.0.0.1:{port}", timeout=(1, 0.3),
                   retry=RetryPolicy(max_attempts=2, backoff_base_s=0.01), sleep=lambda s: None)
    with pytest.raises(RetryableError, match="timed out|connection failed"):
        c.request_json("GET", "/a")
    assert c.stats.requests == 2
    sock.close()


def test_logs_carry_no_personal_data(server, caplog):
    server.script = [(503, {}, {"error": "x"}), (200, {}, {"ok": 1})]
    c, _ = client(server)
    with caplog.at_level(logging.DEBUG, logger="connectors.http"):
        c.request_json("GET", "/users/matti.virtanen@yritys.fi/messages", params={"term": "Virtanen", "q": "0401234567"})
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "retry" in text
    for secret in ("matti.virtanen", "Virtanen", "0401234567"):
        assert secret not in text
    assert safe_path("http://h/users/a%40b.fi/x?q=1") == "/users/{email}/x"


# -- the one retry loop, as Netvisor, Google and RT use it with their own classification --------


def _fails(times: int, error: Exception):
    """A call that raises ``error`` the first ``times`` attempts, then answers its attempt number."""
    seen: list[int] = []

    def fn(attempt: int) -> int:
        seen.append(attempt)
        if len(seen) <= times:
            raise error
        return attempt
    return fn, seen


def test_retry_call_retries_what_classify_allows_then_succeeds():
    fn, seen = _fails(2, ValueError("damaged"))
    sleeps, retried = [], []
    result = retry_call(fn, lambda exc: Retry(RetryableError("damaged answer", system="x")),
                        RetryPolicy(max_attempts=5, backoff_base_s=0.01), sleep=sleeps.append,
                        on_retry=lambda n, err, wait: retried.append((n, type(err).__name__)))
    assert result == 3 and seen == [1, 2, 3]
    assert retried == [(1, "RetryableError"), (2, "RetryableError")] and len(sleeps) == 2


def test_retry_call_gives_up_after_max_attempts_with_the_classified_error():
    fn, seen = _fails(99, ValueError("damaged"))
    with pytest.raises(BadPayloadError) as caught:
        retry_call(fn, lambda exc: Retry(BadPayloadError("unreadable", system="x")),
                   RetryPolicy(max_attempts=3, backoff_base_s=0.01), sleep=lambda s: None)
    assert len(seen) == 3 and isinstance(caught.value.__cause__, ValueError)


def test_retry_call_raises_a_fatal_verdict_at_once():
    fn, seen = _fails(99, KeyError("x"))
    sleeps = []
    with pytest.raises(AuthError):
        retry_call(fn, lambda exc: AuthError("refused", system="x"), RetryPolicy(), sleep=sleeps.append)
    assert seen == [1] and sleeps == []
    # An exception the classifier hands back unchanged is raised as it is.
    fn, seen = _fails(99, KeyError("x"))
    with pytest.raises(KeyError):
        retry_call(fn, lambda exc: exc, RetryPolicy(), sleep=sleeps.append)
    assert seen == [1] and sleeps == []


def test_retry_call_waits_a_named_wait_but_not_a_too_long_one():
    limited = RateLimitedError("rate limited", retry_after=2.0, system="x")
    fn, _ = _fails(1, limited)
    sleeps = []
    retry_call(fn, lambda exc: Retry(exc, wait_s=exc.retry_after), RetryPolicy(max_wait_s=10.0), sleep=sleeps.append)
    assert len(sleeps) == 1 and 2.0 <= sleeps[0] <= 3.0
    fn, seen = _fails(1, limited)
    with pytest.raises(RateLimitedError):
        retry_call(fn, lambda exc: Retry(exc, wait_s=exc.retry_after), RetryPolicy(max_wait_s=1.0), sleep=sleeps.append)
    assert seen == [1] and len(sleeps) == 1


def test_retry_call_starts_counting_again_after_progress():
    # Ten failed rounds that each got part of the work done outlast a limit of three attempts.
    fn, seen = _fails(10, RetryableError("parts left", system="x"))
    result = retry_call(fn, lambda exc: Retry(exc, progressed=True), RetryPolicy(max_attempts=3, backoff_base_s=0.01),
                        sleep=lambda s: None)
    assert len(seen) == 11 and result == seen[-1]
    fn, seen = _fails(10, RetryableError("parts left", system="x"))
    with pytest.raises(RetryableError):
        retry_call(fn, lambda exc: Retry(exc), RetryPolicy(max_attempts=3, backoff_base_s=0.01), sleep=lambda s: None)
    assert len(seen) == 3
