"""Request Tracker 5 over REST2, on the ``rt`` package (python-rt, ``rt.rest2.Rt``).

python-rt 3.x names its REST2 class ``rt.rest2.Rt`` (there is no ``Rest2`` alias) and speaks
HTTP through ``httpx2``, not ``requests``: the shared layer in ``connectors.http`` cannot carry
it. This module therefore gives the same guarantees around it: every call goes through
``_call``, which maps python-rt's and httpx2's exceptions into ``connectors.errors`` and runs
the call in the shared retry loop (``connectors.http.retry_call``, jittered backoff by
``RetryPolicy``); python-rt's DEBUG logger (which
prints request bodies) is held at INFO so personal data never reaches logs. Single records come
from python-rt's methods (``get_user``, ``get_ticket``, ``get_attachment``); the collection
searches it lacks (users, transactions, attachments by id, with ``fields`` and ``per_page``)
use its configured session against the same REST2 endpoints.

What the sync reads (``iter_*`` yield pages of dicts):
- users ``LastUpdated >= cursor``; tickets by TicketSQL ``LastUpdated >= 'cursor'`` with their
  Requestor/Cc/AdminCc lists; ticket transactions and attachment *metadata* by ascending id
  (both are append-only in RT, so ``id > last id`` is an exact cursor); id walks for deletions.
- RT's dates have one-second resolution and TicketSQL dates are read in the API user's
  time zone: give the API user the UTC time zone (the cursor is inclusive, repeats are harmless).

Subject export (``export_subject``): the user records, every ticket where they are a
requestor/Cc/AdminCc, each ticket's transactions with full correspondence and attachments
(base64 content), so the package is complete.

Erasure primitives: ``rename_user``, ``get_user`` and RT's admin tools (``RtAdminTools``:
rt-shredder, rt-munge-attachments). Which tickets are shredded, munged or kept, and why
rt-shredder rather than RT's "Anonymize" action, is erasure policy:
``contact_register/requests/erasure/request_tracker.py``.
- The admin tools run on the RT host: ``RtAdminTools(command_prefix=...)`` (e.g. ``ssh rt-host
  sudo -u www-data``, or nothing when RT runs locally), with ``RT_SITE_CONFIG`` passed through.
  Their arguments (the person's e-mail and names for rt-munge-attachments) travel on stdin: the
  command line is ``perl - /usr/sbin/rt-<tool>-5``, so ``ps`` and sudo's log never show them.
Marketing ban: not applicable; RT holds support correspondence, not marketing consents.
"""

from __future__ import annotations

import logging
import os
import random
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import httpx2
import rt.exceptions
import rt.rest2

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
from connectors.http import Retry, RetryPolicy, parse_retry_after, retry_call

SYSTEM = "request_tracker"
log = logging.getLogger("connectors.request_tracker")
# python-rt logs full request and response bodies at DEBUG: they hold personal data.
logging.getLogger("rt.rest2").setLevel(logging.INFO)

USER_FIELDS = ("id", "Name", "EmailAddress", "RealName", "NickName", "Organization", "WorkPhone", "MobilePhone",
               "HomePhone", "PagerPhone", "Privileged", "Disabled", "Created", "LastUpdated")
WRITABLE_USER_FIELDS = ("Name", "EmailAddress", "RealName", "NickName", "Organization", "WorkPhone", "MobilePhone",
                        "HomePhone", "PagerPhone")
TICKET_FIELDS = ("Subject", "Status", "Queue", "Created", "LastUpdated", "Resolved", "Creator",
                 "Requestor", "Cc", "AdminCc", "EffectiveId")
TRANSACTION_FIELDS = ("Type", "ObjectType", "ObjectId", "Created", "Creator", "Field", "OldValue", "NewValue")
# Not "Parent": REST2 in RT 5.0.3 answers 500 for it on top-level attachments.
ATTACHMENT_FIELDS = ("TransactionId", "ContentType", "Filename", "ContentLength", "Created", "Creator")
WATCHER_ROLES = ("Requestor", "Cc", "AdminCc")
NO_DATE = "1970-01-01T00:00:00Z"


def parse_time(value: Any) -> datetime | None:
    """REST2 dates: ``2026-11-25T15:12:41Z``; RT's "not set" is the epoch."""
    if not isinstance(value, str) or not value or value.startswith("1970-01-01"):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc)
    except ValueError:
        return None


def ticketsql_time(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class Stats:
    requests: int = 0
    retries: int = 0


# Runs one of RT's admin scripts with its arguments read from stdin (NUL-terminated, after the
# program's __END__) instead of the command line, in the same perl process (``do``, not exec,
# which would put them back on a command line). The arguments of rt-munge-attachments are the
# person's e-mail and names: on a command line they would be in ``ps``, /proc/*/cmdline and
# sudo's log on the RT host. The command line is only ``perl - /usr/sbin/<tool>``, which also
# passes through ``ssh host sudo -u www-data`` without any quoting.
STDIN_ARGS_PROGRAM = r"""
my $tool = shift @ARGV;
-r $tool or die "cannot read $tool\n";
{ local $/ = "\0"; @ARGV = <DATA>; chomp @ARGV; }
$0 = $tool;
do $tool;
die $@ if $@;
__END__
"""


class RtAdminTools:
    """RT's command-line tools (``rt-shredder``, ``rt-munge-attachments``) on the RT host.
    Their arguments go on stdin (``STDIN_ARGS_PROGRAM``), never on a command line."""

    def __init__(self, *, command_prefix: Sequence[str] = (), env: dict[str, str] | None = None,
                 shredder: str = "/usr/sbin/rt-shredder-5", munge: str = "/usr/sbin/rt-munge-attachments-5",
                 timeout_s: float = 600.0) -> None:
        self.prefix = list(command_prefix)
        self.env = dict(env or {})
        self.shredder = shredder
        self.munge = munge
        self.timeout_s = timeout_s

    def _run(self, tool: str, args: list[str]) -> None:
        if any("\0" in a for a in args):
            raise ValueError("an admin tool argument cannot hold a NUL character")
        stdin = STDIN_ARGS_PROGRAM.encode() + b"".join(a.encode("utf-8") + b"\0" for a in args)
        env = dict(os.environ, **self.env)
        done = subprocess.run(self.prefix + ["perl", "-", tool], input=stdin, env=env, capture_output=True,
                              timeout=self.timeout_s)
        if done.returncode != 0:
            # The tools' output names objects and may quote data: log only the tool and code.
            raise FatalError(f"{Path(tool).name} exited with {done.returncode}", system=SYSTEM)

    def shred(self, plugin: str, *, sqldump: Path | None) -> None:
        dump = ["--sqldump", str(sqldump)] if sqldump else ["--no-sqldump"]
        self._run(self.shredder, ["--force", *dump, "--plugin", plugin])

    def munge_tickets(self, ticket_ids: Sequence[int], search: str, replacement: str) -> None:
        self._run(self.munge, [f"--tickets={','.join(str(i) for i in ticket_ids)}",
                               f"--search={search}", f"--replacement={replacement}"])


class RequestTrackerClient:
    def __init__(
        self,
        url: str,
        *,
        token: str = "",
        user: str = "",
        password: str = "",
        timeout_s: float = 30.0,
        page_size: int = 100,
        retry: RetryPolicy = RetryPolicy(max_attempts=5, backoff_base_s=0.3, backoff_max_s=10.0),
        admin: RtAdminTools | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        base = url.rstrip("/")
        if not base.endswith("/REST/2.0"):
            base += "/REST/2.0"
        auth = None if token else (httpx2.BasicAuth(user, password) if user else None)
        self.rt = rt.rest2.Rt(base + "/", http_auth=auth, token=token or None, http_timeout=int(timeout_s))
        self.api = base
        self.page_size = page_size
        self.retry = retry
        self.admin = admin
        self.stats = Stats()
        self._sleep = sleep
        self._rng = random.Random()
        self.rt.session.event_hooks["request"].append(self._count)

    def _count(self, request) -> None:
        self.stats.requests += 1

    def close(self) -> None:
        self.rt.session.close()

    def __enter__(self) -> "RequestTrackerClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- transport --------------------------------------------------------------------------

    def _call(self, what: str, fn: Callable[[], Any], *, read: bool = False) -> Any:
        """Run one python-rt call with retries; map its failures into connectors.errors.
        A ``read`` is also retried when its answer is damaged (truncated or garbled JSON); a
        write is not, since a damaged answer may hide a write that happened."""
        def classify(exc: Exception) -> Retry | BaseException:
            error = _map_error(exc, what)
            if isinstance(error, RetryableError) or (read and isinstance(error, BadPayloadError)):
                return Retry(error, wait_s=getattr(error, "retry_after", None))
            return error

        def on_retry(_number: int, _error: ConnectorError, _wait: float) -> None:
            self.stats.retries += 1

        return retry_call(lambda _number: fn(), classify, self.retry, sleep=self._sleep, rng=self._rng,
                          on_retry=on_retry)

    def _json(self, method: str, path: str, *, params: dict | None = None, body: Any = None,
              read: bool | None = None) -> Any:
        """``read``: the call changes nothing (default: GET), so a damaged answer is retried."""
        def go():
            response = self.rt.session.request(method, f"{self.api}/{path}", params=params, json=body)
            _check(response, method, path)
            try:
                return response.json()
            except ValueError as exc:
                raise BadPayloadError("response is not JSON", system=SYSTEM, method=method, path=path) from exc

        return self._call(f"{method} {path}", go, read=method == "GET" if read is None else read)

    def get_json(self, path: str, params: dict | None = None) -> Any:
        """One read of a REST2 path (``rt``, ``users``, ``tickets`` ...), answered as RT sent it:
        what ``contact-register doctor`` checks and records the shape of."""
        return self._json("GET", path, params=params)

    def _collection(self, path: str, *, filters: list | None = None, params: dict | None = None) -> Iterator[list[dict]]:
        """Pages of a REST2 collection (``GET``, or ``POST`` with a JSON filter list)."""
        page = 1
        while True:
            query = dict(params or {}, page=page, per_page=self.page_size)
            data = self._json("POST" if filters is not None else "GET", path, params=query, body=filters, read=True)
            if not isinstance(data, dict) or not isinstance(data.get("items"), list):
                raise BadPayloadError("collection without items", system=SYSTEM, path=path)
            yield data["items"]
            pages = data.get("pages")
            if not data["items"] or (isinstance(pages, int) and page >= pages) or (pages is None and not data.get("next_page")):
                return
            page += 1

    # -- sync -------------------------------------------------------------------------------

    def iter_users(self, since: datetime | None = None) -> Iterator[list[dict]]:
        """Users changed at or after ``since`` (all when None), newest first.

        REST2 ignores filters on fields that are not "public" (``LastUpdated`` is not) without
        an error, so the incremental read walks the users ordered by ``LastUpdated`` descending
        and stops at the first older one. Disabled users are included: they still hold data."""
        params = {"fields": ",".join(USER_FIELDS), "orderby": "LastUpdated", "order": "DESC"}
        filters = [{"field": "Disabled", "operator": ">=", "value": 0}]
        for items in self._collection("users", filters=filters, params=params):
            if since is None:
                yield items
                continue
            fresh = [u for u in items if (parse_time(u.get("LastUpdated")) or since) >= since]
            if fresh:
                yield fresh
            if len(fresh) < len(items):
                return

    def iter_tickets(self, since: datetime | None = None) -> Iterator[list[dict]]:
        query = "id > 0" if since is None else f"LastUpdated >= '{ticketsql_time(since)}'"
        params = {
            "query": query, "orderby": "LastUpdated", "order": "ASC", "fields": ",".join(TICKET_FIELDS),
            "fields[Queue]": "Name", "fields[Creator]": "id",
            **{f"fields[{role}]": "id,EmailAddress" for role in WATCHER_ROLES},
        }
        yield from self._collection("tickets", params=params)

    def iter_transactions(self, after_id: int = 0) -> Iterator[list[dict]]:
        filters = [{"field": "id", "operator": ">", "value": after_id}, {"field": "ObjectType", "value": "RT::Ticket"}]
        params = {"fields": ",".join(TRANSACTION_FIELDS), "fields[Creator]": "id", "orderby": "id", "order": "ASC"}
        yield from self._collection("transactions", filters=filters, params=params)

    def iter_attachments(self, after_id: int = 0) -> Iterator[list[dict]]:
        filters = [{"field": "id", "operator": ">", "value": after_id}]
        params = {"fields": ",".join(ATTACHMENT_FIELDS), "fields[Creator]": "id", "orderby": "id", "order": "ASC"}
        yield from self._collection("attachments", filters=filters, params=params)

    def privileged_user_ids(self) -> set[int]:
        """Staff: users RT calls privileged (members of its SystemInternal "Privileged" group).

        REST2 offers no cheaper way to ask: user collections leave ``Privileged`` empty (it is
        computed, not a column), and ``/groups``, ``/group/N/members`` and ``/user/N/groups``
        serve user-defined groups only (``LimitToUserDefinedGroups``/``LoadUserDefinedGroup``
        in RT 5's RT::REST2::Resource::Groups, GroupMembers and UserGroups). The single user
        record does carry it, so each user is read once: one request per user and run, since
        promoting a user does not change the user's ``LastUpdated``."""
        ids: set[int] = set()
        for page in self.iter_ids("users"):
            for uid in page:
                try:
                    user = self._json("GET", f"user/{uid}")
                except NotFoundError:
                    continue  # shredded between the listing and this read
                if str(user.get("Privileged")) == "1":
                    ids.add(uid)
        return ids

    def iter_ids(self, kind: str) -> Iterator[list[int]]:
        if kind == "users":
            pages = self._collection("users", filters=[{"field": "Disabled", "operator": ">=", "value": 0}],
                                     params={"fields": "id"})
        elif kind == "tickets":
            pages = self._collection("tickets", params={"query": "id > 0", "fields": "id"})
        else:
            raise ValueError(kind)
        for items in pages:
            yield [int(i["id"]) for i in items if str(i.get("id", "")).isdigit()]

    # -- lookups ----------------------------------------------------------------------------

    def find_users(self, email: str) -> list[dict]:
        """Users whose address is ``email`` (case-insensitively; RT keeps the case it first saw)."""
        wanted = email.strip().casefold()
        if not wanted:
            return []
        found = []
        # LIKE narrows the search on the server; the exact comparison happens here.
        for items in self._collection(
            "users",
            filters=[{"field": "EmailAddress", "operator": "LIKE", "value": wanted},
                     {"field": "Disabled", "operator": ">=", "value": 0}],
            params={"fields": ",".join(USER_FIELDS)},
        ):
            found.extend(u for u in items if str(u.get("EmailAddress") or "").strip().casefold() == wanted)
        return found

    def update_user(self, user_id: int, fields: dict[str, str]) -> dict:
        """Change a user's fields (``RealName``, ``EmailAddress``, ``Name``, ``WorkPhone`` ...) and
        read the user back. REST2 answers 200 with a list of messages even when RT refused a
        field, so the caller compares the returned user with what it asked for."""
        unknown = set(fields) - set(WRITABLE_USER_FIELDS)
        if unknown:
            raise ValueError(f"unknown or read-only user fields {sorted(unknown)}")
        self._json("PUT", f"user/{int(user_id)}", body=fields)
        return self._json("GET", f"user/{int(user_id)}")

    def rename_user(self, user_id: int, name: str) -> None:
        """Set the user's ``Name`` (no read-back: the erasure shreds the user by that name next)."""
        self._json("PUT", f"user/{int(user_id)}", body={"Name": name})

    def get_user(self, user_id: int) -> dict:
        """One user record; NotFoundError once it is gone (shredded)."""
        return self._call("GET user", lambda: self.rt.get_user(user_id), read=True)

    def tickets_of_user(self, user_id: int) -> list[dict]:
        query = " OR ".join(f"{role}.id = {int(user_id)}" for role in WATCHER_ROLES)
        params = {"query": query, "fields": ",".join(TICKET_FIELDS), "fields[Creator]": "id",
                  **{f"fields[{role}]": "id,EmailAddress" for role in WATCHER_ROLES}}
        out: list[dict] = []
        for items in self._collection("tickets", params=params):
            out.extend(items)
        return out

    def ticket_transactions(self, ticket_id: int) -> list[dict]:
        out: list[dict] = []
        params = {"fields": ",".join(TRANSACTION_FIELDS), "fields[Creator]": "id", "orderby": "id"}
        for items in self._collection(f"ticket/{int(ticket_id)}/history", params=params):
            out.extend(items)
        return out

    def attachment(self, attachment_id: int) -> dict:
        return self._call("GET attachment", lambda: self.rt.get_attachment(attachment_id), read=True)

    def ticket_attachments(self, ticket_id: int) -> list[dict]:
        out: list[dict] = []
        for items in self._collection(f"ticket/{int(ticket_id)}/attachments", filters=[],
                                      params={"fields": ",".join(ATTACHMENT_FIELDS), "fields[Creator]": "id"}):
            out.extend(items)
        return out

    # -- data-subject requests --------------------------------------------------------------

    def export_subject(self, email: str) -> dict:
        """Everything RT holds about the person with ``email``: user records, their tickets,
        every transaction of those tickets, and each attachment with its content (base64)."""
        users = self.find_users(email)
        out = {"system": SYSTEM, "query": {"email": email}, "users": users, "tickets": []}
        seen: set[int] = set()
        for user in users:
            for ticket in self.tickets_of_user(int(user["id"])):
                tid = int(ticket["id"])
                if tid in seen:
                    continue
                seen.add(tid)
                attachments = []
                for meta in self.ticket_attachments(tid):
                    full = self.attachment(int(meta["id"]))
                    attachments.append({
                        "id": int(meta["id"]), "transaction_id": ref_id(full.get("TransactionId")),
                        "content_type": full.get("ContentType"), "filename": full.get("Filename"),
                        "headers": full.get("Headers"), "content_base64": full.get("Content") or "",
                    })
                out["tickets"].append({"ticket": ticket, "transactions": self.ticket_transactions(tid),
                                       "attachments": attachments})
        return out

    def marketing_ban(self, email: str) -> dict:
        return {"system": SYSTEM, "status": "not_applicable",
                "reason": "Request Tracker holds support correspondence, not marketing consents or lists."}


def ref_id(value: Any) -> int | None:
    """The id in a REST2 reference (``{"id": "7", ...}``), a number or a numeric string."""
    if isinstance(value, dict):
        value = value.get("id")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def watcher_ids(value: Any) -> list[int]:
    """The user ids in a ticket's watcher list (Requestor, Cc, AdminCc)."""
    if not isinstance(value, list):
        return []
    return [i for i in (ref_id(v) for v in value) if i is not None]


def _check(response, method: str, path: str) -> None:
    status = response.status_code
    if status in (200, 201):
        return
    where = dict(system=SYSTEM, method=method, path=path.split("?")[0], status=status)
    if status in (401, 403):
        raise AuthError("not authorised", **where)
    if status == 404:
        raise NotFoundError("not found", **where)
    if status in (400, 422):
        raise BadRequestError("request refused", **where)
    if status == 429:
        raise RateLimitedError("rate limited", retry_after=parse_retry_after(response.headers.get("Retry-After")),
                               **where)
    if status >= 500:
        raise RetryableError("server error", **where)
    raise FatalError("unexpected status", **where)


def _map_error(exc: Exception, what: str) -> ConnectorError:
    if isinstance(exc, ConnectorError):
        return exc
    where = dict(system=SYSTEM, method=what.split(" ")[0], path=what.split(" ", 1)[-1])
    if isinstance(exc, (rt.exceptions.ConnectionError, httpx2.TransportError)):
        return RetryableError(type(exc).__name__, **where)
    if isinstance(exc, rt.exceptions.AuthorizationError):
        return AuthError("not authorised", status=401, **where)
    if isinstance(exc, rt.exceptions.NotFoundError):
        return NotFoundError("not found", status=404, **where)
    if isinstance(exc, (rt.exceptions.BadRequestError, rt.exceptions.InvalidQueryError, rt.exceptions.APISyntaxError)):
        return BadRequestError("request refused", status=400, **where)
    if isinstance(exc, rt.exceptions.UnexpectedResponseError):
        status = getattr(exc, "status_code", None)
        if status == 403:
            return AuthError("forbidden", status=status, **where)
        if status is not None and (status == 429 or status >= 500):
            return RetryableError("server error", status=status, **where)
        return BadPayloadError("unexpected response", status=status, **where)
    if isinstance(exc, rt.exceptions.RtError):
        return FatalError(type(exc).__name__, **where)
    return FatalError(f"unexpected {type(exc).__name__}", **where)
