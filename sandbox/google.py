"""Imitation of the parts of Google Workspace the connector uses, on one port.

- OAuth token endpoint (``POST /token``): JWT-bearer grant signed (RS256) with a service-account
  key this imitation generates; the ``sub`` claim picks the impersonated user (domain-wide
  delegation). ``env()`` hands out the key file's JSON, as a real admin would. Delegation is
  granted per scope in the Admin console (``delegated_scopes``; None grants every scope): a
  token asked for a scope not granted is refused whole with 401 ``unauthorized_client``,
  "Client is unauthorized to retrieve access tokens using this method, or client not authorized
  for any of the scopes requested." (Google's "Using OAuth 2.0 for Server to Server
  Applications", error codes table, developers.google.com/identity/protocols/oauth2/service-account;
  the RFC 6749 5.2 error body). ``tests/test_contract_google.py`` holds the refusal to it.
- Admin Directory: ``users.list`` (admin only); Google Groups (``dir_groups``: group address ->
  member addresses): ``groups.list`` (also by ``userKey``: the groups one address belongs to),
  ``members.list`` and ``members.delete``; pages of at most 200 as the reference says.
- Gmail: profile, messages.list (``q`` with from:/to:/cc:/bcc: terms, ``includeSpamTrash``),
  messages.get (minimal/metadata/full/raw), trash, delete, batchDelete, history.list with
  expiry (404 below the retained history), and the multipart batch endpoint
  ``POST /batch/gmail/v1`` (at most 100 parts; the outer Authorization applies to every part).
- Calendar: events.list with page and sync tokens (410 Gone when expired; cancelled events in
  incremental answers), events.patch (``sendUpdates`` recorded).
- Drive: files.list (``'x' in owners|readers|writers``), files.get (``alt=media``),
  changes.getStartPageToken / changes.list, permissions.delete.
- People: connections.list with ``requestSyncToken``/``syncToken`` (expired: 400
  FAILED_PRECONDITION with reason EXPIRED_SYNC_TOKEN, as the People API does), otherContacts.list
  (read only), deleteContact, contact groups (list, create, get, members:modify).
- Per-user rate limits (off by default; ``per_user_qps``): Gmail and People answer 429
  rateLimitExceeded, Calendar and Drive 403 userRateLimitExceeded.

Answers follow the discovery documents shipped in google-api-python-client
(``googleapiclient/discovery_cache/documents/*.json``; ``tests/test_contract_google.py`` holds
every answer the connector reads to them): every resource carries the ``kind`` and ``etag``
its schema declares, times are RFC 3339, ``int64`` values are strings. The ``fields`` system
parameter (partial response, https://developers.google.com/workspace/drive/api/guides/fields-parameter)
is honoured on every JSON answer; People's ``personFields``/``readMask`` return only the fields
asked for, ``metadata`` (sources, objectType) included when asked.
Gmail's ``metadataHeaders`` filter is not applied: stored messages hold only the headers the
sync reads anyway. Errors use Google's JSON envelope ``{"error": {code, message, errors, status}}``.
All state sits behind one re-entrant lock (a batch dispatches its parts under it).
"""

from __future__ import annotations

import base64
import copy
import json
import re
import secrets
import threading
import time
from collections import deque
from email.parser import BytesParser
from email.policy import compat32
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .base import ApiError, Imitation, Request, Response, faulted_page, json_response
from .world import World

STATUS_TEXT = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
               405: "METHOD_NOT_ALLOWED", 409: "ABORTED", 410: "GONE", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL"}
REASONS = {400: "badRequest", 401: "authError", 403: "forbidden", 404: "notFound", 410: "deleted",
           429: "rateLimitExceeded", 500: "backendError"}
GMAIL_ADDRESS_HEADERS = ("from", "to", "cc", "bcc")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# Which OAuth scopes let a token call an API, as Google enforces it: a read needs the API's
# read-only scope or a broader one, a write a write scope. The sync asks for read-only scopes
# and the write-back jobs for write ones, so a job that forgot to ask fails here as it would
# against Google. (Gmail batch requests are not checked: their inner requests are reads.)
_SCOPE = "https://www.googleapis.com/auth/"
_API_SCOPES = {  # path prefix -> (scopes that allow reading, scopes that allow writing)
    "/gmail/": ({"https://mail.google.com/", _SCOPE + "gmail.readonly", _SCOPE + "gmail.modify"},
                {"https://mail.google.com/"}),
    "/calendar/": ({_SCOPE + "calendar", _SCOPE + "calendar.readonly", _SCOPE + "calendar.events"},
                   {_SCOPE + "calendar", _SCOPE + "calendar.events"}),
    "/drive/": ({_SCOPE + "drive", _SCOPE + "drive.readonly"}, {_SCOPE + "drive"}),
    "/v1/otherContacts": ({_SCOPE + "contacts.other.readonly"}, set()),
    "/v1/": ({_SCOPE + "contacts", _SCOPE + "contacts.readonly"}, {_SCOPE + "contacts"}),
    "/admin/directory/v1/users": ({_SCOPE + "admin.directory.user.readonly", _SCOPE + "admin.directory.user"},
                                  {_SCOPE + "admin.directory.user"}),
    # members.list/delete (groups/{g}/members...) before groups.list: the longer prefix first.
    "/admin/directory/v1/groups/": ({_SCOPE + "admin.directory.group.member", _SCOPE + "admin.directory.group",
                                     _SCOPE + "admin.directory.group.member.readonly",
                                     _SCOPE + "admin.directory.group.readonly"},
                                    {_SCOPE + "admin.directory.group.member", _SCOPE + "admin.directory.group"}),
    "/admin/directory/v1/groups": ({_SCOPE + "admin.directory.group", _SCOPE + "admin.directory.group.readonly"},
                                   {_SCOPE + "admin.directory.group"}),
}


def all_scopes() -> frozenset[str]:
    """Every scope some API of the imitation accepts."""
    return frozenset(scope for read, write in _API_SCOPES.values() for scope in read | write)


# People API masks: personFields of people.connections.list and readMask of otherContacts.list
# (the values each method's discovery description lists).
_PERSON_FIELDS = frozenset("addresses ageRanges biographies birthdays calendarUrls clientData coverPhotos emailAddresses "
                           "events externalIds genders imClients interests locales locations memberships metadata "
                           "miscKeywords names nicknames occupations organizations phoneNumbers photos relations "
                           "sipAddresses skills urls userDefined".split())
_OTHER_CONTACT_FIELDS = frozenset({"emailAddresses", "metadata", "names", "phoneNumbers", "photos"})
_PEOPLE_EPOCH = 1_700_000_000  # update times of contacts: this plus their change sequence


def _parse_fields(mask: str) -> dict:
    """The ``fields`` parameter (``a,b/c,d(e,f)``) as a tree: name -> subtree, empty = whole."""
    tokens = re.findall(r"[^,()/\s]+|[,()/]", mask)
    pos = 0

    def selection() -> dict:
        nonlocal pos
        tree: dict = {}
        while True:
            node = tree
            while True:
                if pos >= len(tokens) or tokens[pos] in ",()/":
                    raise ApiError(400, "Invalid field selection", "invalidParameter")
                name = tokens[pos]
                pos += 1
                if pos < len(tokens) and tokens[pos] == "/":
                    pos += 1
                    node = node.setdefault(name, {})
                    continue
                break
            sub: dict = {}
            if pos < len(tokens) and tokens[pos] == "(":
                pos += 1
                sub = selection()
                if pos >= len(tokens) or tokens[pos] != ")":
                    raise ApiError(400, "Invalid field selection", "invalidParameter")
                pos += 1
            node[name] = sub if not node.get(name) else node[name] | sub
            if pos < len(tokens) and tokens[pos] == ",":
                pos += 1
                continue
            return tree

    tree = selection()
    if pos != len(tokens):
        raise ApiError(400, "Invalid field selection", "invalidParameter")
    return tree


def _select(value: Any, tree: dict) -> Any:
    """Keep only the selected fields (lists: of each element), as Google's partial response does."""
    if not tree or "*" in tree:
        return value
    if isinstance(value, list):
        return [_select(v, tree) for v in value]
    if isinstance(value, dict):
        return {k: _select(v, tree[k]) for k, v in value.items() if k in tree}
    return value


def _scope_allows(granted: frozenset, method: str, path: str) -> bool:
    for prefix, (read, write) in _API_SCOPES.items():
        if path.startswith(prefix):
            return bool(granted & (read if method == "GET" else write))
    return True  # batch endpoints and anything unlisted


def _page_token(obj: dict) -> str:
    return _b64url(json.dumps(obj).encode())


def _read_token(token: str) -> dict:
    try:
        obj = json.loads(_unb64url(token))
        if isinstance(obj, dict):
            return obj
    except (ValueError, TypeError):
        pass
    raise ApiError(400, "Invalid page token", "invalid")


def _int(q: dict[str, str], name: str, default: int, maximum: int) -> int:
    raw = q.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"Invalid value for {name}", "invalid") from None
    if value < 1:
        raise ApiError(400, f"Invalid value for {name}", "invalid")
    return min(value, maximum)


def _rfc3339(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(epoch))


class GoogleImitation(Imitation):
    name = "google"

    def __init__(self, world: World, per_user_qps: float | None = None):
        super().__init__()
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        gw = world.derive("google")
        self._lock = threading.RLock()
        self.domain = gw.domain
        self.per_user_qps = per_user_qps
        self._windows: dict[Any, deque[float]] = {}
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._public_key = key.public_key()
        self.key_id = secrets.token_hex(20)
        self.private_key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()).decode()
        self.client_email = "contact-register@sandbox-project.iam.gserviceaccount.com"
        self.tokens: dict[str, tuple[str, float]] = {}  # access token -> (user email, expiry)
        # The scopes the Admin console's domain-wide delegation grants this client; None = all.
        self.delegated_scopes: frozenset[str] | None = None
        self.token_requests = 0
        self.batched_calls = 0  # parts inside batch requests (each batch is one HTTP request)
        self.send_updates: list[str] = []  # sendUpdates value of every events.patch
        self.users = [{"kind": "admin#directory#user", "id": u.id, "etag": f'"u{u.id[-6:]}"',
                       "primaryEmail": u.email, "isAdmin": u.is_admin, "suspended": False,
                       "name": {"givenName": u.given, "familyName": u.family, "fullName": f"{u.given} {u.family}"},
                       "creationTime": "2023-01-02T08:00:00.000Z"} for u in gw.users]
        self.admin_email = next(u["primaryEmail"] for u in self.users if u["isAdmin"])
        self._hid = 1000
        self._seq = 0
        self.mail: dict[str, dict] = {}
        self.cal: dict[str, dict] = {}
        self.files: dict[str, dict] = {}  # file id -> file (with "_owner", "_seq", "_removed")
        self.people: dict[str, dict] = {}
        for i, u in enumerate(self.users):
            email = u["primaryEmail"]
            msgs = {}
            for m in gw.messages[i]:
                self._hid += 1
                msg = copy.deepcopy({k: v for k, v in m.items() if k != "truth"})
                msg["headers"] = [list(h) for h in m["headers"]]
                msg["historyId"] = self._hid
                msgs[m["id"]] = msg
            self.mail[email] = {"messages": msgs, "history": [], "floor": self._hid}
            events = {}
            for e in gw.events[i]:
                ev = copy.deepcopy({k: v for k, v in e.items() if k != "startEpoch"})
                ev.update(status="confirmed", updated=_rfc3339(e["startEpoch"]), _seq=self._next_seq())
                events[e["id"]] = ev
            self.cal[email] = {"events": events, "floor": 0}
            for f in gw.files[i]:
                file = copy.deepcopy({k: v for k, v in f.items() if k != "modifiedEpoch"})
                file.update(modifiedTime=_rfc3339(f["modifiedEpoch"]), trashed=False, _owner=email,
                            _seq=self._next_seq(), _removed=False)
                self.files[file["id"]] = file
            conns = {}
            for p in gw.contacts[i]:
                person = copy.deepcopy(p)
                person["_seq"] = self._next_seq()
                conns[p["resourceName"]] = person
            self.people[email] = {"connections": conns, "deleted": {}, "floor": 0,
                                  "other": {p["resourceName"]: copy.deepcopy(p) for p in gw.other_contacts[i]},
                                  "groups": {}}
        # Google Groups used as mailing lists: some humans subscribed.
        humans = world.humans
        self.dir_groups = {f"uutiskirje@{self.domain}": {h.email for h in humans[: max(1, len(humans) // 3)]},
                           f"asiakasraati@{self.domain}": {h.email for h in humans[::7]}}
        self._dir_ids: dict[str, str] = {}
        self._register_routes()

    # ------------------------------------------------------------------ helpers for tests/bench
    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _next_hid(self) -> int:
        self._hid += 1
        return self._hid

    def env(self, url: str) -> dict[str, str]:
        info = {"type": "service_account", "project_id": "sandbox-project", "private_key_id": self.key_id,
                "private_key": self.private_key_pem, "client_email": self.client_email,
                "client_id": "100000000000000000001", "token_uri": f"{url}/token"}
        return {"GOOGLE_SERVICE_ACCOUNT_JSON": json.dumps(info), "GOOGLE_API_ENDPOINT": f"{url}/",
                "GOOGLE_TOKEN_URI": f"{url}/token", "GOOGLE_ADMIN_SUBJECT": self.admin_email,
                "GOOGLE_DOMAIN": self.domain}

    def user_emails(self) -> list[str]:
        return [u["primaryEmail"] for u in self.users]

    def add_message(self, user: str, headers: list[tuple[str, str]], labels: tuple[str, ...] = ("INBOX",),
                    body: str = "Hei\n") -> str:
        with self._lock:
            mid = secrets.token_hex(8)
            hid = self._next_hid()
            msg = {"id": mid, "threadId": mid, "labelIds": list(labels), "internalDate": str(int(time.time() * 1000)),
                   "headers": [list(h) for h in headers], "body": body, "historyId": hid}
            self.mail[user]["messages"][mid] = msg
            self.mail[user]["history"].append((hid, "messagesAdded", mid, list(labels)))
            return mid

    def delete_message(self, user: str, mid: str) -> None:
        with self._lock:
            box = self.mail[user]
            msg = box["messages"].pop(mid)
            box["history"].append((self._next_hid(), "messagesDeleted", mid, msg["labelIds"]))

    def relabel(self, user: str, mid: str, add: tuple[str, ...] = (), remove: tuple[str, ...] = ()) -> None:
        with self._lock:
            msg = self.mail[user]["messages"][mid]
            hid = self._next_hid()
            msg["labelIds"] = [l for l in msg["labelIds"] if l not in remove] + [l for l in add if l not in msg["labelIds"]]
            msg["historyId"] = hid
            if add:
                self.mail[user]["history"].append((hid, "labelsAdded", mid, list(add)))
            if remove:
                self.mail[user]["history"].append((hid, "labelsRemoved", mid, list(remove)))

    def expire_history(self, user: str) -> None:
        """Forget the user's history: any stored startHistoryId now answers 404."""
        with self._lock:
            self.mail[user]["floor"] = self._next_hid()
            self.mail[user]["history"].clear()

    def expire_calendar_sync(self, user: str) -> None:
        with self._lock:
            self.cal[user]["floor"] = self._next_seq()

    def expire_people_sync(self, user: str) -> None:
        with self._lock:
            self.people[user]["floor"] = self._next_seq()

    def put_event(self, user: str, event: dict) -> None:
        """Plant an event. Every real event has a start and an end (both required by
        events.insert): a planted one without them gets the coming hour."""
        with self._lock:
            ev = copy.deepcopy(event)
            ev.setdefault("status", "confirmed")
            ev.setdefault("start", {"dateTime": _rfc3339(time.time() + 3600).replace(".000", "")})
            ev.setdefault("end", {"dateTime": _rfc3339(time.time() + 7200).replace(".000", "")})
            ev.update(updated=_rfc3339(time.time()), _seq=self._next_seq())
            self.cal[user]["events"][ev["id"]] = ev

    def cancel_event(self, user: str, event_id: str) -> None:
        with self._lock:
            ev = self.cal[user]["events"][event_id]
            ev.update(status="cancelled", updated=_rfc3339(time.time()), _seq=self._next_seq())

    def put_file(self, user: str, file: dict) -> None:
        with self._lock:
            f = copy.deepcopy(file)
            f.update(_owner=user, _seq=self._next_seq(), _removed=False, trashed=False,
                     modifiedTime=_rfc3339(time.time()))
            f.setdefault("content", "")
            self.files[f["id"]] = f

    def remove_file(self, file_id: str) -> None:
        with self._lock:
            self.files[file_id].update(_removed=True, _seq=self._next_seq())

    def put_contact(self, user: str, person: dict) -> None:
        with self._lock:
            p = copy.deepcopy(person)
            p["_seq"] = self._next_seq()
            self.people[user]["connections"][p["resourceName"]] = p
            self.people[user]["deleted"].pop(p["resourceName"], None)

    def delete_contact(self, user: str, resource_name: str) -> None:
        with self._lock:
            box = self.people[user]
            box["connections"].pop(resource_name)
            box["deleted"][resource_name] = self._next_seq()

    def live_files(self, user: str) -> list[dict]:
        with self._lock:
            return [f for f in self.files.values() if f["_owner"] == user and not f["_removed"]]

    # ------------------------------------------------------------------ hooks
    def dispatch(self, req: Request) -> Response:
        with self._lock:
            return super().dispatch(req)

    def error_response(self, req: Request, status: int, message: str, code: str | None = None) -> Response:
        reason = code if code and not code.startswith("ERR_") else REASONS.get(status, "backendError")
        body = {"error": {"code": status, "message": message,
                          "errors": [{"domain": "global", "reason": reason, "message": message}],
                          "status": STATUS_TEXT.get(status, "UNKNOWN")}}
        if code == "EXPIRED_SYNC_TOKEN":
            body["error"]["status"] = "FAILED_PRECONDITION"
            body["error"]["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                         "reason": "EXPIRED_SYNC_TOKEN", "domain": "people.googleapis.com"}]
        return json_response(status, body)

    def authenticate(self, req: Request) -> Response | None:
        if req.path == "/token":
            return None
        auth = req.headers.get("Authorization") or ""
        token = auth[7:] if auth.startswith("Bearer ") else ""
        held = self.tokens.get(token)
        if held is None or held[1] < time.time():
            return self.error_response(req, 401, "Request had invalid authentication credentials.", "authError")
        req.token = held[0]
        if not _scope_allows(held[2], req.method, req.path):
            return self.error_response(req, 403, "Request had insufficient authentication scopes.",
                                       "insufficientPermissions")
        return None

    def admit(self, req: Request) -> tuple[Response | None, dict[str, str]]:
        if self.per_user_qps is None or req.path == "/token" or req.path.startswith("/batch/"):
            return None, {}
        api = req.path.strip("/").split("/", 1)[0]
        now = time.monotonic()
        win = self._windows.setdefault((req.token, api), deque())
        while win and win[0] <= now - 1.0:
            win.popleft()
        if len(win) >= self.per_user_qps:
            if api in ("calendar", "drive"):
                return self.error_response(req, 403, "User rate limit exceeded.", "userRateLimitExceeded"), {}
            return self.error_response(req, 429, "User-rate limit exceeded.", "rateLimitExceeded"), {"Retry-After": "1"}
        win.append(now)
        return None, {}

    # ------------------------------------------------------------------ routes
    def _partial(self, handler):
        """Apply the request's ``fields`` mask to a JSON answer (every Google API takes it)."""
        def answer(req: Request, **params: str) -> Response:
            tree = _parse_fields(req.query["fields"]) if req.query.get("fields") else None
            resp = handler(req, **params)
            if tree is None or resp.status != 200 or not resp.headers.get("Content-Type", "").startswith("application/json"):
                return resp
            return json_response(200, _select(json.loads(resp.body), tree))
        return answer

    def _register_routes(self) -> None:
        def r(method: str, template: str, handler) -> None:
            self.router.add(method, template, self._partial(handler))

        r("POST", "/token", self._token)
        r("GET", "/admin/directory/v1/users", self._users)
        r("GET", "/admin/directory/v1/groups", self._groups_list)
        r("GET", "/admin/directory/v1/groups/{group}/members", self._group_members)
        r("DELETE", "/admin/directory/v1/groups/{group}/members/{member}", self._group_member_delete)
        g = "/gmail/v1/users/{user}"
        r("GET", g + "/profile", self._profile)
        r("GET", g + "/messages", self._messages)
        r("POST", g + "/messages/batchDelete", self._batch_delete)
        r("GET", g + "/messages/{mid}", self._message)
        r("DELETE", g + "/messages/{mid}", self._message_delete)
        r("POST", g + "/messages/{mid}/trash", self._message_trash)
        r("GET", g + "/history", self._history)
        r("POST", "/batch/gmail/v1", self._batch)
        r("GET", "/calendar/v3/calendars/{cal}/events", self._events)
        r("PATCH", "/calendar/v3/calendars/{cal}/events/{eid}", self._event_patch)
        r("GET", "/drive/v3/files", self._files)
        r("GET", "/drive/v3/files/{fid}", self._file)
        r("DELETE", "/drive/v3/files/{fid}/permissions/{pid}", self._permission_delete)
        r("GET", "/drive/v3/changes/startPageToken", self._start_token)
        r("GET", "/drive/v3/changes", self._changes)
        r("GET", "/v1/people/me/connections", self._connections)
        r("DELETE", "/v1/people/{rid}:deleteContact", self._contact_delete)
        r("GET", "/v1/otherContacts", self._other_contacts)
        r("GET", "/v1/contactGroups", self._groups)
        r("POST", "/v1/contactGroups", self._group_create)
        r("GET", "/v1/contactGroups/{gid}", self._group_get)
        r("POST", "/v1/contactGroups/{gid}/members:modify", self._group_modify)

    # -- OAuth
    def _token(self, req: Request) -> Response:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        self.token_requests += 1
        form = dict(parse_qsl(req.body.decode("utf-8", "replace")))
        bad = lambda why: json_response(400, {"error": "invalid_grant", "error_description": why})  # noqa: E731
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return json_response(400, {"error": "unsupported_grant_type"})
        try:
            head, payload, sig = form.get("assertion", "").split(".")
            self._public_key.verify(_unb64url(sig), f"{head}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
            claims = json.loads(_unb64url(payload))
        except (ValueError, InvalidSignature, TypeError):
            return bad("Invalid JWT Signature.")
        if claims.get("iss") != self.client_email or not str(claims.get("aud", "")).endswith("/token"):
            return bad("Invalid JWT: issuer or audience")
        if not isinstance(claims.get("exp"), (int, float)) or claims["exp"] < time.time() - 300:
            return bad("Invalid JWT: Token must be a short-lived token")
        subject = claims.get("sub")
        if subject not in self.mail:
            return bad("Invalid email or User ID")
        requested = frozenset(str(claims.get("scope", "")).split())
        if self.delegated_scopes is not None and not requested <= self.delegated_scopes:
            # Domain-wide delegation is granted per scope in the Admin console; asking for one
            # not granted is refused as a whole (RFC 6749 5.2 error as Google words it).
            return json_response(401, {"error": "unauthorized_client", "error_description":
                                        "Client is unauthorized to retrieve access tokens using this method, or "
                                        "client not authorized for any of the scopes requested."})
        token = "ya29." + secrets.token_urlsafe(24)
        self.tokens[token] = (subject, time.time() + 3600, frozenset(str(claims.get("scope", "")).split()))
        return json_response(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    # -- Directory
    def _require_admin(self, req: Request) -> None:
        if req.token != self.admin_email:
            raise ApiError(403, "Not Authorized to access this resource/api", "forbidden")

    def _users(self, req: Request) -> Response:
        self._require_admin(req)
        if req.query.get("customer") != "my_customer" and req.query.get("domain") != self.domain:
            raise ApiError(400, "Bad Request", "badRequest")
        size = _int(req.query, "maxResults", 100, 500)
        start = _read_token(req.query["pageToken"])["o"] if req.query.get("pageToken") else 0
        page = faulted_page(self.users, start, size, req.page_fault)
        body: dict[str, Any] = {"kind": "admin#directory#users", "etag": f'"us{len(self.users)}"',
                                "users": copy.deepcopy(page)}
        if start + size < len(self.users):
            body["nextPageToken"] = _page_token({"o": start + size})
        return json_response(200, body)

    def _dir_id(self, key: str) -> str:
        """A stable opaque id for a group or member address (a counter, nothing derived from it)."""
        if key not in self._dir_ids:
            self._dir_ids[key] = f"0{len(self._dir_ids) + 1:020d}"
        return self._dir_ids[key]

    def _group_out(self, email: str) -> dict:
        return {"kind": "admin#directory#group", "id": self._dir_id(email), "etag": f'"g{len(self.dir_groups[email])}"',
                "email": email, "name": email.split("@")[0].capitalize(), "description": "",
                "directMembersCount": str(len(self.dir_groups[email])), "adminCreated": True}

    def _groups_list(self, req: Request) -> Response:
        """groups.list. With ``userKey`` (an email or a user id): the groups the address is a
        direct member of, in any domain unless ``domain`` narrows it; ``userKey`` together with
        ``customer`` is refused, as the discovery document says ("Cannot be used with the
        customer parameter"). Without it, ``customer`` or ``domain`` is required.
        https://developers.google.com/workspace/admin/directory/reference/rest/v1/groups/list"""
        self._require_admin(req)
        q = req.query
        user_key = q.get("userKey", "").strip().lower()
        if user_key and q.get("customer"):
            raise ApiError(400, "Bad Request", "badRequest")
        if not user_key and q.get("customer") != "my_customer" and not q.get("domain"):
            raise ApiError(400, "Bad Request", "badRequest")
        user_key = next((u["primaryEmail"].lower() for u in self.users if u["id"] == user_key), user_key)
        groups = sorted(g for g, members in self.dir_groups.items()
                        if (not user_key or user_key in {m.lower() for m in members})
                        and (not q.get("domain") or g.lower().endswith("@" + q["domain"].lower())))
        size = _int(q, "maxResults", 200, 200)
        start = _read_token(q["pageToken"])["o"] if q.get("pageToken") else 0
        body: dict[str, Any] = {"kind": "admin#directory#groups", "etag": f'"gs{len(groups)}"'}
        page = faulted_page(groups, start, size, req.page_fault)
        if page:
            body["groups"] = [self._group_out(g) for g in page]
        if start + size < len(groups):
            body["nextPageToken"] = _page_token({"o": start + size})
        return json_response(200, body)

    def _group_members(self, req: Request, group: str) -> Response:
        """members.list, at most 200 a page (``maxResults``), as the reference says."""
        self._require_admin(req)
        group = unquote(group)
        members = self.dir_groups.get(group)
        if members is None:
            raise ApiError(404, "Resource Not Found: groupKey", "notFound")
        ordered = sorted(members)
        size = _int(req.query, "maxResults", 200, 200)
        start = _read_token(req.query["pageToken"])["o"] if req.query.get("pageToken") else 0
        body: dict[str, Any] = {"kind": "admin#directory#members", "etag": f'"m{len(ordered)}"'}
        page = faulted_page(ordered, start, size, req.page_fault)
        if page:
            body["members"] = [{"kind": "admin#directory#member", "etag": f'"m{self._dir_id(m)}"', "id": self._dir_id(m),
                                "email": m, "role": "MEMBER", "type": "USER", "status": "ACTIVE"} for m in page]
        if start + size < len(ordered):
            body["nextPageToken"] = _page_token({"o": start + size})
        return json_response(200, body)

    def _group_member_delete(self, req: Request, group: str, member: str) -> Response:
        self._require_admin(req)
        group, member = unquote(group), unquote(member)
        members = self.dir_groups.get(group)
        if members is None:
            raise ApiError(404, "Resource Not Found: groupKey", "notFound")
        # memberKey: the member's address (any case) or its id, as the reference allows.
        match = next((m for m in members if m.lower() == member.lower() or self._dir_ids.get(m) == member), None)
        if match is None:
            raise ApiError(404, "Resource Not Found: memberKey", "notFound")
        members.discard(match)
        return Response(204, b"")

    # -- Gmail
    def _box(self, req: Request, user: str) -> dict:
        if user not in ("me", req.token):
            raise ApiError(403, "Delegation denied", "forbidden")
        return self.mail[req.token]

    def _current_hid(self, req: Request) -> int:
        return self._hid

    def _profile(self, req: Request, user: str) -> Response:
        box = self._box(req, user)
        return json_response(200, {"emailAddress": req.token, "messagesTotal": len(box["messages"]),
                                   "threadsTotal": len({m["threadId"] for m in box["messages"].values()}),
                                   "historyId": str(self._hid)})

    @staticmethod
    def _matches(msg: dict, q: str) -> bool:
        terms = re.findall(r"(from|to|cc|bcc):\(?\"?([^\s\"()}]+)", q, flags=re.I)
        if not terms:
            return True
        headers = {}
        for name, value in msg["headers"]:
            headers.setdefault(name.lower(), []).append(value.lower())
        for field, needle in terms:
            fields = (field.lower(),) if field.lower() != "to" else ("to",)
            for f in fields:
                if any(needle.lower() in v for v in headers.get(f, ())):
                    return True
        return False

    def _messages(self, req: Request, user: str) -> Response:
        box = self._box(req, user)
        q = req.query.get("q", "")
        spam_trash = req.query.get("includeSpamTrash", "false").lower() == "true"
        size = _int(req.query, "maxResults", 100, 500)
        msgs = sorted(box["messages"].values(), key=lambda m: (-int(m["internalDate"]), m["id"]))
        hits = [m for m in msgs if (spam_trash or not {"SPAM", "TRASH"} & set(m["labelIds"])) and self._matches(m, q)]
        start = _read_token(req.query["pageToken"])["o"] if req.query.get("pageToken") else 0
        page = faulted_page(hits, start, size, req.page_fault)
        body: dict[str, Any] = {"resultSizeEstimate": len(hits)}
        if page:
            body["messages"] = [{"id": m["id"], "threadId": m["threadId"]} for m in page]
        if start + size < len(hits):
            body["nextPageToken"] = _page_token({"o": start + size})
        return json_response(200, body)

    def _raw(self, msg: dict) -> bytes:
        lines = [f"{n}: {v}" for n, v in msg["headers"]]
        lines += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=UTF-8", "", msg.get("body", "")]
        return "\r\n".join(lines).encode("utf-8")

    def _message(self, req: Request, user: str, mid: str) -> Response:
        box = self._box(req, user)
        msg = box["messages"].get(mid)
        if msg is None:
            raise ApiError(404, "Requested entity was not found.", "notFound")
        fmt = req.query.get("format", "full")
        out: dict[str, Any] = {"id": msg["id"], "threadId": msg["threadId"], "labelIds": list(msg["labelIds"]),
                               "snippet": msg.get("body", "")[:60], "historyId": str(msg["historyId"]),
                               "internalDate": msg["internalDate"], "sizeEstimate": len(self._raw(msg))}
        if fmt == "raw":
            out["raw"] = _b64url(self._raw(msg))
        elif fmt in ("metadata", "full"):
            out["payload"] = {"mimeType": "text/plain", "headers": [{"name": n, "value": v} for n, v in msg["headers"]]}
            if fmt == "full":
                data = msg.get("body", "").encode("utf-8")
                out["payload"]["body"] = {"size": len(data), "data": _b64url(data)}
        elif fmt != "minimal":
            raise ApiError(400, "Invalid format", "invalidArgument")
        return json_response(200, out)

    def _message_delete(self, req: Request, user: str, mid: str) -> Response:
        box = self._box(req, user)
        if mid not in box["messages"]:
            raise ApiError(404, "Requested entity was not found.", "notFound")
        self.delete_message(req.token, mid)
        return Response(204, b"")

    def _batch_delete(self, req: Request, user: str) -> Response:
        box = self._box(req, user)
        ids = req.json().get("ids") or []
        if not isinstance(ids, list) or len(ids) > 1000:
            raise ApiError(400, "ids must be a list of at most 1000", "invalidArgument")
        for mid in ids:
            if mid in box["messages"]:
                self.delete_message(req.token, mid)
        return Response(204, b"")

    def _message_trash(self, req: Request, user: str, mid: str) -> Response:
        box = self._box(req, user)
        if mid not in box["messages"]:
            raise ApiError(404, "Requested entity was not found.", "notFound")
        self.relabel(req.token, mid, add=("TRASH",), remove=("INBOX",))
        return self._message(Request("GET", req.path, {"format": "minimal"}, req.headers, b"", token=req.token),
                             user, mid)

    def _history(self, req: Request, user: str) -> Response:
        box = self._box(req, user)
        try:
            start = int(req.query.get("startHistoryId", ""))
        except ValueError:
            raise ApiError(400, "Invalid startHistoryId", "invalidArgument") from None
        if start < box["floor"]:
            raise ApiError(404, "Requested entity was not found.", "notFound")
        size = _int(req.query, "maxResults", 100, 500)
        records = [h for h in box["history"] if h[0] > start]
        offset = _read_token(req.query["pageToken"])["o"] if req.query.get("pageToken") else 0
        page = faulted_page(records, offset, size, req.page_fault)
        out = []
        for hid, kind, mid, labels in page:
            ref = {"id": mid, "threadId": mid, "labelIds": labels}
            rec: dict[str, Any] = {"id": str(hid), "messages": [ref]}
            if kind in ("messagesAdded", "messagesDeleted"):
                rec[kind] = [{"message": ref}]
            else:
                rec[kind] = [{"message": ref, "labelIds": labels}]
            out.append(rec)
        body: dict[str, Any] = {"historyId": str(self._hid)}
        if out:
            body["history"] = out
        if offset + size < len(records):
            body["nextPageToken"] = _page_token({"o": offset + size})
        return json_response(200, body)

    def _batch(self, req: Request) -> Response:
        ctype = req.headers.get("Content-Type", "")
        msg = BytesParser(policy=compat32).parsebytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + req.body)
        if not msg.is_multipart():
            raise ApiError(400, "Batch request is not multipart/mixed", "badRequest")
        parts = msg.get_payload()
        if len(parts) > 100:
            raise ApiError(400, "Too many requests in batch (max 100)", "badRequest")
        boundary = "batch_" + secrets.token_hex(8)
        out = []
        for part in parts:
            raw = part.get_payload(decode=False)
            raw = raw if isinstance(raw, str) else ""
            head, _, body = raw.replace("\r\n", "\n").partition("\n\n")
            lines = head.split("\n")
            try:
                method, target, _proto = lines[0].split(" ", 2)
            except ValueError:
                raise ApiError(400, "Malformed batch part", "badRequest") from None
            sub_headers = BytesParser(policy=compat32).parsebytes(("\n".join(lines[1:]) + "\n\n").encode())
            if not sub_headers.get("Authorization") and req.headers.get("Authorization"):
                sub_headers["Authorization"] = req.headers["Authorization"]
            url = urlsplit(target)
            if not url.path.startswith("/gmail/"):
                resp = self.error_response(req, 400, "Batch is for gmail only", "badRequest")
            else:
                sub = Request(method.upper(), url.path, dict(parse_qsl(url.query, keep_blank_values=True)),
                              sub_headers, body.encode())
                sub.route = self.route_of(sub.method, sub.path)
                self.batched_calls += 1
                resp = Imitation.dispatch(self, sub)
            cid = part.get("Content-ID", "<x + 0>")
            reason = {200: "OK", 204: "No Content"}.get(resp.status, "Error")
            headers = "".join(f"{k}: {v}\r\n" for k, v in resp.headers.items())
            out.append(f"--{boundary}\r\nContent-Type: application/http\r\nContent-ID: <response-{cid[1:]}\r\n\r\n"
                       f"HTTP/1.1 {resp.status} {reason}\r\n{headers}Content-Length: {len(resp.body)}\r\n\r\n"
                       + resp.body.decode("utf-8") + "\r\n")
        payload = "".join(out) + f"--{boundary}--\r\n"
        return Response(200, payload.encode("utf-8"), {"Content-Type": f"multipart/mixed; boundary={boundary}"})

    # -- Calendar
    def _calendar(self, req: Request, cal: str) -> dict:
        if cal not in ("primary", req.token):
            raise ApiError(404, "Not Found", "notFound")
        return self.cal[req.token]

    @staticmethod
    def _event_out(ev: dict) -> dict:
        head = {"kind": "calendar#event", "etag": f'"{ev["_seq"]}"'}
        if ev["status"] == "cancelled":  # "only the id field is guaranteed" for deleted events
            return head | {"id": ev["id"], "status": "cancelled", "updated": ev["updated"]}
        return head | {k: copy.deepcopy(v) for k, v in ev.items() if not k.startswith("_")}

    def _events(self, req: Request, cal: str) -> Response:
        box = self._calendar(req, cal)
        q = req.query
        size = _int(q, "maxResults", 250, 2500)
        if q.get("pageToken"):
            state = _read_token(q["pageToken"])
        elif q.get("syncToken"):
            if q.get("q") or q.get("updatedMin") or q.get("timeMin"):
                raise ApiError(400, "syncToken cannot be combined with q, updatedMin or timeMin", "invalid")
            since = _read_token(q["syncToken"]).get("s", -1)
            if since < box["floor"]:
                raise ApiError(410, "Sync token is no longer valid, a full sync is required.", "fullSyncRequired")
            state = {"o": 0, "s": since, "at": self._seq}
        else:
            state = {"o": 0, "s": None, "at": self._seq, "q": q.get("q", "").lower(),
                     "d": q.get("showDeleted", "false") == "true"}
        events = sorted(box["events"].values(), key=lambda e: e["id"])
        if state.get("s") is not None:
            hits = [e for e in events if state["s"] < e["_seq"]]
        else:
            needle = state.get("q", "")
            hits = [e for e in events if (state.get("d") or e["status"] != "cancelled")
                    and (not needle or needle in json.dumps(self._event_out(e)).lower())]
        page = faulted_page(hits, state["o"], size, req.page_fault)
        body: dict[str, Any] = {"kind": "calendar#events", "etag": f'"{self._seq}"',
                                "items": [self._event_out(e) for e in page]}
        if state["o"] + size < len(hits):
            body["nextPageToken"] = _page_token(dict(state, o=state["o"] + size))
        else:
            body["nextSyncToken"] = _page_token({"s": self._seq})
        return json_response(200, body)

    def _event_patch(self, req: Request, cal: str, eid: str) -> Response:
        box = self._calendar(req, cal)
        ev = box["events"].get(eid)
        if ev is None or ev["status"] == "cancelled":
            raise ApiError(404, "Not Found", "notFound")
        changes = req.json()
        if not isinstance(changes, dict):
            raise ApiError(400, "Body must be an object", "invalid")
        self.send_updates.append(req.query.get("sendUpdates", "(default)"))
        for key, value in changes.items():
            if key in ("attendees", "summary", "description"):
                ev[key] = value  # a patched list replaces the whole list, as in the real API
        ev.update(updated=_rfc3339(time.time()), _seq=self._next_seq())
        return json_response(200, self._event_out(ev))

    # -- Drive
    @staticmethod
    def _file_out(f: dict) -> dict:
        out = {k: copy.deepcopy(v) for k, v in f.items() if not k.startswith("_") and k != "content"}
        out["owners"] = [{"kind": "drive#user", "emailAddress": p["emailAddress"]}
                         | ({"displayName": p["displayName"]} if p.get("displayName") else {})
                         for p in f["permissions"] if p.get("role") == "owner"]
        return out

    def _files(self, req: Request) -> Response:
        q = req.query.get("q", "")
        size = _int(req.query, "pageSize", 100, 1000)
        mine = [f for f in self.files.values() if f["_owner"] == req.token and not f["_removed"]]
        clauses = re.findall(r"'([^']*)'\s+in\s+(owners|readers|writers)", q)
        if "trashed = false" in q or "trashed=false" in q:
            mine = [f for f in mine if not f["trashed"]]

        def hit(f: dict) -> bool:
            for who, role in clauses:
                who = req.token if who == "me" else who.lower()
                for p in f["permissions"]:
                    if p.get("emailAddress", "").lower() != who:
                        continue
                    if role == "owners" and p["role"] == "owner" or role == "writers" and p["role"] in ("owner", "writer") \
                            or role == "readers":
                        return True
            return not clauses

        hits = sorted((f for f in mine if hit(f)), key=lambda f: f["id"])
        start = _read_token(req.query["pageToken"])["o"] if req.query.get("pageToken") else 0
        body: dict[str, Any] = {"files": [self._file_out(f) for f in faulted_page(hits, start, size, req.page_fault)]}
        if start + size < len(hits):
            body["nextPageToken"] = _page_token({"o": start + size})
        return json_response(200, body)

    def _owned(self, req: Request, fid: str) -> dict:
        f = self.files.get(fid)
        if f is None or f["_removed"] or f["_owner"] != req.token:
            raise ApiError(404, f"File not found: {fid}.", "notFound")
        return f

    def _file(self, req: Request, fid: str) -> Response:
        f = self._owned(req, fid)
        if req.query.get("alt") == "media":
            return Response(200, f.get("content", "").encode("utf-8"), {"Content-Type": "application/octet-stream"})
        return json_response(200, self._file_out(f))

    def _permission_delete(self, req: Request, fid: str, pid: str) -> Response:
        f = self._owned(req, fid)
        perm = next((p for p in f["permissions"] if p["id"] == pid), None)
        if perm is None:
            raise ApiError(404, f"Permission not found: {pid}.", "notFound")
        if perm["role"] == "owner":
            raise ApiError(403, "The owner of a file cannot be removed.", "cannotRemoveOwner")
        f["permissions"].remove(perm)
        f.update(_seq=self._next_seq(), modifiedTime=_rfc3339(time.time()))
        return Response(204, b"")

    def _start_token(self, req: Request) -> Response:
        return json_response(200, {"kind": "drive#startPageToken", "startPageToken": str(self._seq + 1)})

    def _changes(self, req: Request) -> Response:
        try:
            start = int(req.query.get("pageToken", ""))
        except ValueError:
            raise ApiError(400, "Invalid Value", "invalid") from None
        size = _int(req.query, "pageSize", 100, 1000)
        mine = sorted((f for f in self.files.values() if f["_owner"] == req.token), key=lambda f: f["_seq"])
        first = next((i for i, f in enumerate(mine) if f["_seq"] >= start), len(mine))
        changed = mine[first:]
        # A shifted page replays changes from before the token; the next token still follows
        # the page's last genuine change.
        page = faulted_page(mine, first, size, req.page_fault)
        items = []
        for f in page:
            item: dict[str, Any] = {"kind": "drive#change", "changeType": "file", "fileId": f["id"],
                                    "removed": f["_removed"], "time": f["modifiedTime"]}
            if not f["_removed"]:
                item["file"] = self._file_out(f)
            items.append(item)
        body: dict[str, Any] = {"changes": items}
        if len(changed) > size:
            body["nextPageToken"] = str(changed[size - 1]["_seq"] + 1)
        else:
            body["newStartPageToken"] = str(self._seq + 1)
        return json_response(200, body)

    # -- People
    @staticmethod
    def _person_out(p: dict, fields: set[str], source: str) -> dict:
        """A Person as the People API answers: resourceName and etag always, then only the
        fields the mask asked for; ``metadata`` (when asked) names the person's source."""
        rn = p["resourceName"]
        seq = p.get("_seq", 0)
        out: dict[str, Any] = {"resourceName": rn, "etag": f"%E{seq or rn.rsplit('/', 1)[-1][-8:]}"}
        for key in sorted(fields):
            if key == "metadata":
                out["metadata"] = {"sources": [{"type": source, "id": rn.rsplit("/", 1)[-1].lstrip("c"),
                                                "etag": out["etag"], "updateTime": _rfc3339(_PEOPLE_EPOCH + seq)}],
                                   "objectType": "PERSON"}
            elif key in p:
                out[key] = copy.deepcopy(p[key])
        return out

    @staticmethod
    def _person_mask(raw: str | None, allowed: frozenset[str], name: str) -> set[str]:
        fields = {f.strip() for f in (raw or "").split(",") if f.strip()}
        if not fields:
            raise ApiError(400, f"{name} mask is required. Please specify one or more valid paths.", "invalid")
        wrong = sorted(fields - allowed)
        if wrong:
            raise ApiError(400, f"Invalid {name} mask path: \"{wrong[0]}\".", "invalid")
        return fields

    def _connections(self, req: Request) -> Response:
        box = self.people[req.token]
        q = req.query
        fields = self._person_mask(q.get("personFields"), _PERSON_FIELDS, "personFields")
        size = _int(q, "pageSize", 100, 1000)
        if q.get("pageToken"):
            state = _read_token(q["pageToken"])
        elif q.get("syncToken"):
            since = _read_token(q["syncToken"]).get("s", -1)
            if since < box["floor"]:
                raise ApiError(400, "Sync token is expired. Clear local cache and retry call without the sync token.",
                               "EXPIRED_SYNC_TOKEN")
            state = {"o": 0, "s": since}
        else:
            state = {"o": 0, "s": None}
        conns = sorted(box["connections"].values(), key=lambda p: p["resourceName"])
        if state["s"] is not None:
            items = [self._person_out(p, fields, "CONTACT") for p in conns if p["_seq"] > state["s"]]
            # Deleted since the token: "a person with PersonMetadata.deleted set to true".
            items += [self._person_out({"resourceName": rn, "_seq": seq}, {"metadata"}, "CONTACT")
                      for rn, seq in sorted(box["deleted"].items()) if seq > state["s"]]
            for item in items:
                if item["resourceName"] in box["deleted"]:
                    item["metadata"]["deleted"] = True
        else:
            items = [self._person_out(p, fields, "CONTACT") for p in conns]
        page = faulted_page(items, state["o"], size, req.page_fault)
        body: dict[str, Any] = {"connections": page, "totalItems": len(items)}
        if state["o"] + size < len(items):
            body["nextPageToken"] = _page_token(dict(state, o=state["o"] + size))
        elif q.get("requestSyncToken", "false").lower() == "true" or state["s"] is not None:
            body["nextSyncToken"] = _page_token({"s": self._seq})
        return json_response(200, body)

    def _other_contacts(self, req: Request) -> Response:
        fields = self._person_mask(req.query.get("readMask"), _OTHER_CONTACT_FIELDS, "readMask")
        others = sorted(self.people[req.token]["other"].values(), key=lambda p: p["resourceName"])
        size = _int(req.query, "pageSize", 100, 1000)
        start = _read_token(req.query["pageToken"])["o"] if req.query.get("pageToken") else 0
        page = faulted_page(others, start, size, req.page_fault)
        body: dict[str, Any] = {"otherContacts": [self._person_out(p, fields, "OTHER_CONTACT") for p in page],
                                "totalSize": len(others)}
        if start + size < len(others):
            body["nextPageToken"] = _page_token({"o": start + size})
        return json_response(200, body)

    def _contact_delete(self, req: Request, rid: str) -> Response:
        rn = f"people/{rid}"
        if rn not in self.people[req.token]["connections"]:
            raise ApiError(404, "Requested entity was not found.", "notFound")
        self.delete_contact(req.token, rn)
        for group in self.people[req.token]["groups"].values():
            if rn in group["memberResourceNames"]:
                group["memberResourceNames"].remove(rn)
        return json_response(200, {})

    def _groups(self, req: Request) -> Response:
        groups = self.people[req.token]["groups"].values()
        return json_response(200, {"contactGroups": [self._contact_group_out(g, 0) for g in groups],
                                   "totalItems": len(groups)})

    @staticmethod
    def _contact_group_out(group: dict, max_members: int) -> dict:
        out = {k: copy.deepcopy(v) for k, v in group.items() if k != "memberResourceNames"}
        out["etag"] = f"%E{group['resourceName'][-6:]}{len(group['memberResourceNames'])}"
        out["memberCount"] = len(group["memberResourceNames"])
        if max_members and group["memberResourceNames"]:
            out["memberResourceNames"] = list(group["memberResourceNames"])[:max_members]
        return out

    def _group_create(self, req: Request) -> Response:
        name = (req.json().get("contactGroup") or {}).get("name")
        if not isinstance(name, str) or not name.strip():
            raise ApiError(400, "contactGroup.name is required", "invalid")
        groups = self.people[req.token]["groups"]
        if any(g["name"] == name for g in groups.values()):
            raise ApiError(409, "Contact group name already exists", "duplicate")
        rn = f"contactGroups/{secrets.token_hex(6)}"
        groups[rn] = {"resourceName": rn, "name": name, "groupType": "USER_CONTACT_GROUP", "memberResourceNames": []}
        return json_response(200, self._contact_group_out(groups[rn], 0))

    def _group_get(self, req: Request, gid: str) -> Response:
        group = self.people[req.token]["groups"].get(f"contactGroups/{gid}")
        if group is None:
            raise ApiError(404, "Requested entity was not found.", "notFound")
        return json_response(200, self._contact_group_out(group, _int(req.query, "maxMembers", 10**6, 10**6)))

    def _group_modify(self, req: Request, gid: str) -> Response:
        box = self.people[req.token]
        group = box["groups"].get(f"contactGroups/{gid}")
        if group is None:
            raise ApiError(404, "Requested entity was not found.", "notFound")
        body = req.json()
        missing = []
        for rn in body.get("resourceNamesToAdd") or []:
            if rn not in box["connections"]:
                missing.append(rn)
            elif rn not in group["memberResourceNames"]:
                group["memberResourceNames"].append(rn)
        for rn in body.get("resourceNamesToRemove") or []:
            if rn in group["memberResourceNames"]:
                group["memberResourceNames"].remove(rn)
        out: dict[str, Any] = {}
        if missing:
            out["notFoundResourceNames"] = missing
        return json_response(200, out)
