"""Imitation of the Pipedrive REST API.

Sources: Pipedrive's API reference (https://developers.pipedrive.com/docs/api/v1, whose pages
cover v2 too), its OpenAPI files (https://developers.pipedrive.com/docs/api/v1/openapi.yaml and
.../openapi-v2.yaml) and the core-concepts guides (https://pipedrive.readme.io/docs/). Where
these disagree with our research notes, the vendor's documents were followed.

v2 for persons, organizations, deals, activities, fields and person search; v1 for notes,
mail messages, a person's flow (field changes made through the API, notes, activities), person
merge, fields and users. Envelopes, cursor/offset paging, auth styles,
strict validation, soft delete with a 30-day purge, per-token burst windows, the daily token
budget and the rate-limit headers follow the real API as documented there.

Activities carry ``attendees`` (email, name, status, is_organizer, person_id, user_id), written
with POST/PATCH ``/api/v2/activities`` and returned only with ``include_fields=attendees``, as
the Activities reference says. The v1 activity endpoints (``PUT /v1/activities/{id}`` ...) are
deprecated and gone from the current v1 OpenAPI file, so they are not served. ``include_fields``
takes exactly the values the reference lists per entity (counts, next/last activity, mail times,
marketing_status, smart_bcc_email; ``attendees`` for activities) and refuses others with 400.

Out of scope, answered 404 as an unknown route: ``/v1/recents``, the v1 persons, organizations,
deals and activities CRUD and lists (deprecated in favour of v2), leads, products, files,
pipelines and stages, filters, webhooks, mailbox, itemSearch, goals, projects and every other
endpoint not registered in ``_register_routes``. The connector uses none of them.

All state sits behind one lock: requests are short, and one lock makes every response a
consistent snapshot (a page is serialised while the lock is held).
"""
from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
import json
import math
import re
import threading
import time
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from .base import ApiError, Imitation, Request, Response, json_response
from .pipedrive_build import SPARSE_DEFAULTS, V1_FMT, V2_FMT, build_store, field_v1, field_v2
from .pipedrive_schema import validate
from .world import World

DEFAULT_TOKEN = "sandbox-pipedrive-token"
V2_ENTITIES = ("persons", "organizations", "deals", "activities")
STORE_ENTITIES = V2_ENTITIES + ("notes",)
FIELD_ROUTES = {"personFields": "persons", "organizationFields": "organizations", "dealFields": "deals",
                "activityFields": "activities"}
SORTABLE = {"persons": ("id", "update_time", "add_time"), "organizations": ("id", "update_time", "add_time"),
            "deals": ("id", "update_time", "add_time"), "activities": ("id", "update_time", "add_time", "due_date")}
FILTERS = {"persons": ("owner_id", "org_id"), "organizations": ("owner_id",),
           "deals": ("owner_id", "person_id", "org_id", "stage_id", "pipeline_id"),
           "activities": ("owner_id", "person_id", "org_id", "deal_id")}
DEAL_STATUSES = ("open", "won", "lost", "deleted")
# include_fields values per list/get, as the v2 reference lists them (GET /api/v2/persons,
# /organizations, /deals, /activities and their /{id}: https://developers.pipedrive.com/docs/api/v1/Persons,
# .../Organizations, .../Deals, .../Activities; the enum of the include_fields parameter in
# https://developers.pipedrive.com/docs/api/v1/openapi-v2.yaml). A value outside the list is a 400.
_PERSON_COUNTS = ("open_deals_count", "related_open_deals_count", "closed_deals_count",
                  "related_closed_deals_count", "participant_open_deals_count", "participant_closed_deals_count",
                  "email_messages_count", "activities_count", "done_activities_count", "undone_activities_count",
                  "files_count", "notes_count", "followers_count", "won_deals_count", "related_won_deals_count",
                  "lost_deals_count", "related_lost_deals_count")
INCLUDE_FIELDS = {
    "persons": ("next_activity_id", "last_activity_id", *_PERSON_COUNTS, "last_incoming_mail_time",
                "last_outgoing_mail_time", "marketing_status", "doi_status", "smart_bcc_email"),
    "organizations": ("next_activity_id", "last_activity_id", "open_deals_count", "related_open_deals_count",
                      "closed_deals_count", "related_closed_deals_count", "email_messages_count", "people_count",
                      "activities_count", "done_activities_count", "undone_activities_count", "files_count",
                      "notes_count", "followers_count", "won_deals_count", "related_won_deals_count",
                      "lost_deals_count", "related_lost_deals_count", "smart_bcc_email"),
    "deals": ("next_activity_id", "last_activity_id", "first_won_time", "products_count", "files_count",
              "notes_count", "followers_count", "email_messages_count", "activities_count", "done_activities_count",
              "undone_activities_count", "participants_count", "last_incoming_mail_time", "last_outgoing_mail_time",
              "smart_bcc_email", "source_lead_id"),
    "activities": ("attendees",),
}
WRITE_ANSWER_INCLUDES = {"marketing_status", "attendees"}  # POST/PATCH answers carry them (reference examples)
SMART_BCC = "sandbox@pipedrivemail.invalid"  # one Smart BCC address per company
PURGE_AFTER = 30 * 86400
WINDOW_SECONDS = 2.0
ERROR_INFO = "Please check developers.pipedrive.com"
V2_CODES = {400: "ERR_SCHEMA_VALIDATION_FAILED", 404: "ERR_NOT_FOUND", 405: "ERR_METHOD_NOT_ALLOWED",
            429: "ERR_RATE_LIMIT", 500: "ERR_INTERNAL"}
_RFC3339 = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(Z|[+-]\d{2}:\d{2})$")
_V1_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


def _real_clock() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def _bad(message: str) -> ApiError:
    return ApiError(400, message, "ERR_BAD_REQUEST")


def _int_param(q: dict[str, str], name: str) -> int | None:
    if name not in q:
        return None
    try:
        return int(q[name])
    except ValueError:
        raise _bad(f"Parameter '{name}' must be an integer") from None


PAGE_FAULT_OVERLAP = 3  # records a shifted or duplicated page repeats


def _encode_cursor(obj: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        obj = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(obj, dict):
            raise ValueError
        return obj
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _bad("Invalid cursor") from None


def _empty(v: Any) -> bool:
    return v is None or v == "" or v == [] or v == {}


def _sort_value(rec: dict, rid: int, field: str) -> Any:
    if field == "id":
        return rid
    v = rec.get(field)
    return "" if v is None else str(v)


class PipedriveImitation(Imitation):
    name = "pipedrive"

    def __init__(self, world: World, token: str = DEFAULT_TOKEN):
        super().__init__()
        self.token = token
        self.campaigns_enabled = True  # the Campaigns add-on: without it marketing_status is ignored
        self.marketing_status_once = True  # "only allowed once to change the marketing status"
        self.burst_limit = 120  # requests per rolling 2 s per token (Ultimate plan)
        self.search_burst_limit = 10
        self.daily_token_budget = 10_000_000
        self.omit_last_cursor: bool | None = None  # None: alternate null / omitted on last pages
        self.clock: Callable[[], dt.datetime] = _real_clock
        self._offset = 0.0
        self._lock = threading.RLock()
        pw = world.derive("pipedrive")
        self.fields = pw.fields
        self.users = [{"id": uid, "name": name, "email": email} for uid, name, email in pw.users]
        self.user_id = pw.users[0][0]  # the token's owner
        self._data, self._mail = build_store(pw)
        self._deleted_at: dict[str, dict[int, int]] = {e: {} for e in STORE_ENTITIES}
        self._raw: dict[str, set[int]] = {e: set() for e in STORE_ENTITIES}
        self._next_id = {e: max(d, default=0) + 1 for e, d in self._data.items()}
        self._versions = dict.fromkeys(STORE_ENTITIES, 0)
        self._indexes: dict[tuple[str, str], tuple[int, list]] = {}
        self._notes_cache: tuple[Any, int, list[int]] | None = None
        self._ms_changed: set[int] = set()
        self._person_changes: dict[int, list[dict]] = {}  # person id -> personChange data, oldest first
        self._change_seq = 0
        self._windows: dict[Any, deque[float]] = {}
        self._tokens = 0
        self._budget_day: dt.date | None = None
        self._last_pages = 0
        self._register_routes()

    # ------------------------------------------------------------------ public helpers
    def env(self, url: str) -> dict[str, str]:
        return {"PIPEDRIVE_BASE_URL": url.rstrip("/"), "PIPEDRIVE_API_TOKEN": self.token}

    def now(self) -> dt.datetime:
        t = self.clock()
        if t.tzinfo is None:
            t = t.replace(tzinfo=dt.timezone.utc)
        return (t.astimezone(dt.timezone.utc) + dt.timedelta(seconds=self._offset)).replace(microsecond=0)

    def advance(self, seconds: float) -> None:
        """Move the imitation's clock forward (e.g. past the 30-day purge)."""
        with self._lock:
            self._offset += seconds

    def tokens_used(self) -> int:
        with self._lock:
            self._roll_day()
            return self._tokens

    def put_raw(self, entity: str, record: dict, store_id: int | None = None) -> None:
        """Store a record exactly as given (no validation, no defaults) for robustness tests.
        A record whose own ``id`` is not an integer (the broken payload a test wants served)
        is filed under ``store_id``."""
        if entity not in self._data:
            raise KeyError(f"unknown entity {entity!r}; one of {STORE_ENTITIES}")
        rid = record.get("id") if store_id is None else store_id
        if type(rid) is not int:
            raise ValueError("put_raw needs an integer 'id' or a store_id")
        with self._lock:
            self._data[entity][rid] = record
            self._raw[entity].add(rid)
            self._next_id[entity] = max(self._next_id[entity], rid + 1)
            self._changed(entity)

    def live_ids(self, entity: str) -> set[int]:
        with self._lock:
            return {rid for rid, rec in self._data[entity].items() if rec.get("is_deleted") is not True}

    def get(self, entity: str, rid: int) -> dict | None:
        """The stored record as the API would show it (deleted ones included), as a copy."""
        with self._lock:
            rec = self._data[entity].get(rid)
            return copy.deepcopy(self._full(entity, rec)) if rec is not None else None

    def mail_messages(self, person_id: int) -> list[dict]:
        with self._lock:
            return [copy.deepcopy(self._mail_out(m)) for m in self._mail.get(person_id, [])]

    @staticmethod
    def _mail_out(m: dict) -> dict:
        return {**SPARSE_DEFAULTS["mail"], "body_url": f"https://sandbox.invalid/mail/{m['id']}/body", **m}

    # ------------------------------------------------------------------ framework hooks
    def normalize_path(self, path: str) -> str:
        return "/api" + path if path.startswith("/v1/") else path  # v1 also answers under /v1

    def dispatch(self, req: Request) -> Response:
        with self._lock:
            self._purge()
            return super().dispatch(req)

    def authenticate(self, req: Request) -> Response | None:
        token = req.headers.get("x-api-token") or req.query.get("api_token")
        if token != self.token:
            return json_response(401, {"success": False, "error": "unauthorized access", "errorCode": 401})
        req.token = token
        return None

    def error_response(self, req: Request, status: int, message: str, code: str | None = None) -> Response:
        body: dict[str, Any] = {"success": False, "error": message}
        if self.normalize_path(req.path).startswith("/api/v2/"):
            body["code"] = code or V2_CODES.get(status, "ERR_UNKNOWN")
        body.update({"error_info": ERROR_INFO, "data": None, "additional_data": None})
        return json_response(status, body)

    def rate_limit_fault_headers(self) -> dict[str, str]:
        return {"Retry-After": "1", "x-ratelimit-limit": str(self.burst_limit), "x-ratelimit-remaining": "0",
                "x-ratelimit-reset": "1"}

    def admit(self, req: Request) -> tuple[Response | None, dict[str, str]]:
        """Burst windows (per token, rolling 2 s; search has its own 10/2 s) and the daily budget."""
        now = time.monotonic()
        search = req.route.endswith("/search")
        windows = [(self._window(req.token, now), self.burst_limit)]
        if search:
            windows.append((self._window(("search", req.token), now), self.search_burst_limit))
        for win, limit in windows:
            if len(win) >= limit:
                return self._too_many(req, "Request over limit", limit, 0, win, now)
        win, limit = windows[-1]
        cost = self._cost(req.route)
        self._roll_day()
        if self._tokens + cost > self.daily_token_budget:
            # remaining > 0 tells a client that this is the daily budget, not the burst window
            return self._too_many(req, "Daily token budget exhausted", limit, limit - len(win), win, now)
        for w, _ in windows:
            w.append(now)
        self._tokens += cost
        return None, self._rl_headers(limit, limit - len(win), win, now)

    # ------------------------------------------------------------------ rate limiting internals
    def _window(self, key: Any, now: float) -> deque[float]:
        win = self._windows.setdefault(key, deque())
        while win and win[0] <= now - WINDOW_SECONDS:
            win.popleft()
        return win

    @staticmethod
    def _rl_headers(limit: int, remaining: int, win: deque[float], now: float) -> dict[str, str]:
        # Relative seconds until the oldest request leaves the window, as Pipedrive sends it.
        reset = max(1, math.ceil(win[0] + WINDOW_SECONDS - now)) if win else int(WINDOW_SECONDS)
        return {"x-ratelimit-limit": str(limit), "x-ratelimit-remaining": str(max(0, remaining)),
                "x-ratelimit-reset": str(reset)}

    def _too_many(self, req: Request, message: str, limit: int, remaining: int, win: deque[float],
                  now: float) -> tuple[Response, dict[str, str]]:
        resp = self.error_response(req, 429, message, "ERR_RATE_LIMIT")
        resp.headers.update(self._rl_headers(limit, remaining, win, now))
        return resp, {}

    def _roll_day(self) -> None:
        day = self.now().date()  # budget resets at midnight, server time (UTC here)
        if day != self._budget_day:
            self._budget_day, self._tokens = day, 0

    @staticmethod
    def _cost(route: str) -> int:
        method, _, template = route.partition(" ")
        if template.startswith("/api/v2/"):
            if template.endswith("/search"):
                return 20
            if method == "GET":
                return 1 if template.endswith("{id}") else 10
            return {"POST": 5, "PATCH": 5, "DELETE": 3}.get(method, 1)
        if template.endswith("/merge") or template.endswith("/flow"):
            return 40
        if method == "GET":
            return 2 if template.endswith("{id}") else 20
        return {"POST": 10, "PUT": 10, "DELETE": 6}.get(method, 2)

    # ------------------------------------------------------------------ store internals
    def _changed(self, entity: str) -> None:
        self._versions[entity] += 1

    def _purge(self) -> None:
        """Soft-deleted records disappear for good 30 days after their deletion."""
        now = self.now().timestamp()
        for entity, deleted in self._deleted_at.items():
            for rid in [rid for rid, ts in deleted.items() if now - ts >= PURGE_AFTER]:
                del deleted[rid]
                self._data[entity].pop(rid, None)
                self._changed(entity)

    def _index(self, entity: str, sort_by: str) -> list[tuple[Any, int]]:
        """(sort value, id) pairs in ascending order, rebuilt only after a change."""
        version = self._versions[entity]
        cached = self._indexes.get((entity, sort_by))
        if cached and cached[0] == version:
            return cached[1]
        keys = sorted((_sort_value(rec, rid, sort_by), rid) for rid, rec in self._data[entity].items())
        self._indexes[(entity, sort_by)] = (version, keys)
        return keys

    def _full(self, entity: str, rec: dict) -> dict:
        """The record with its sparse defaults filled in; raw (planted) records stay as given."""
        defaults = SPARSE_DEFAULTS.get(entity)
        if defaults is None or rec.get("id") in self._raw[entity]:
            return rec
        out = {**defaults, **rec}
        if entity == "activities" and "participants" not in rec:
            pid = rec.get("person_id")
            out["participants"] = [{"person_id": pid, "primary": True}] if pid else []
        return out

    def _live(self, entity: str, rid: int) -> dict:
        rec = self._data[entity].get(rid)
        if rec is None or rec.get("is_deleted") is True:
            noun = entity[:-1] if entity != "activities" else "activity"
            raise ApiError(404, f"{noun.capitalize()} not found", "ERR_NOT_FOUND")
        return rec

    @staticmethod
    def _include(q: dict[str, str], entity: str) -> set[str]:
        wanted = {v.strip() for v in (q.get("include_fields") or "").split(",") if v.strip()}
        unknown = wanted - set(INCLUDE_FIELDS[entity])
        if unknown:
            raise _bad(f"Parameter 'include_fields' accepts {', '.join(INCLUDE_FIELDS[entity])}")
        return wanted

    def _extras(self, entity: str, rids: list[int], include: set[str]) -> dict[int, dict[str, Any]]:
        """The include_fields values other than marketing_status/attendees (which are stored),
        computed from the store for ``rids`` only when asked for: one pass over the linked
        records. Counts of things the imitation does not model (files, followers, products,
        deal participants) are 0; ``related_*`` counts equal the direct ones (the reference does
        not define "related"; our guess); ``doi_status`` is null (double opt-in is not modelled)."""
        wanted = include - {"marketing_status", "attendees"}
        if not wanted or not rids:
            return {}
        link = {"persons": "person_id", "organizations": "org_id", "deals": "deal_id"}[entity]
        ids = set(rids)
        deals: dict[int, list[dict]] = {}
        acts: dict[int, list[dict]] = {}
        notes: dict[int, int] = {}
        people: dict[int, int] = {}
        if entity != "deals":
            for d in self._data["deals"].values():
                if d.get(link) in ids and d.get("is_deleted") is not True:
                    deals.setdefault(d[link], []).append(d)
        for a in self._data["activities"].values():
            if a.get("is_deleted") is True:
                continue
            full = self._full("activities", a)
            owners = {full.get(link)}
            if entity == "persons":
                owners |= {x.get("person_id") for x in full.get("participants") or [] if isinstance(x, dict)}
            for owner in owners & ids:
                acts.setdefault(owner, []).append(full)
        for n in self._data["notes"].values():
            if n.get(link) in ids:
                notes[n[link]] = notes.get(n[link], 0) + 1
        if entity == "organizations":
            for person in self._data["persons"].values():
                if person.get("org_id") in ids and person.get("is_deleted") is not True:
                    people[person["org_id"]] = people.get(person["org_id"], 0) + 1
        out: dict[int, dict[str, Any]] = {}
        for rid in rids:
            own = deals.get(rid, [])
            by_status = {st: sum(1 for d in own if d.get("status", "open") == st) for st in ("open", "won", "lost")}
            mine = acts.get(rid, [])
            done = [a for a in mine if a.get("done")]
            undone = [a for a in mine if not a.get("done")]
            mail = self._mail.get(rid, []) if entity == "persons" else []
            values: dict[str, Any] = {
                "open_deals_count": by_status["open"], "related_open_deals_count": by_status["open"],
                "closed_deals_count": by_status["won"] + by_status["lost"],
                "related_closed_deals_count": by_status["won"] + by_status["lost"],
                "won_deals_count": by_status["won"], "related_won_deals_count": by_status["won"],
                "lost_deals_count": by_status["lost"], "related_lost_deals_count": by_status["lost"],
                "participant_open_deals_count": 0, "participant_closed_deals_count": 0,
                "email_messages_count": len(mail), "activities_count": len(mine),
                "done_activities_count": len(done), "undone_activities_count": len(undone),
                "files_count": 0, "notes_count": notes.get(rid, 0), "followers_count": 0,
                "people_count": people.get(rid, 0), "products_count": 0, "smart_bcc_email": SMART_BCC,
                "next_activity_id": min(((str(a.get("due_date") or ""), a["id"]) for a in undone),
                                        default=(None, None))[1],
                "last_activity_id": max(((str(a.get("due_date") or ""), a["id"]) for a in done),
                                        default=(None, None))[1],
                "last_incoming_mail_time": self._mail_time(mail, 0),
                "last_outgoing_mail_time": self._mail_time(mail, 1), "doi_status": None,
            }
            if entity == "deals":
                deal = self._data["deals"][rid]
                values.update(first_won_time=deal.get("won_time"), source_lead_id=None,
                              participants_count=1 if deal.get("person_id") else 0)
            out[rid] = {k: values[k] for k in wanted}
        return out

    @staticmethod
    def _mail_time(mail: list[dict], sent: int) -> str | None:
        times = [m["message_time"] for m in mail if m.get("sent_flag", 0) == sent and m.get("message_time")]
        return dt.datetime.strptime(max(times), V1_FMT).strftime(V2_FMT) if times else None

    def _render(self, entity: str, rec: dict, include: set[str] = frozenset(),  # type: ignore[assignment]
                custom_keys: list[str] | None = None, extras: dict[str, Any] | None = None) -> dict:
        out = rec = self._full(entity, rec)
        if entity == "persons" and "marketing_status" in rec:
            out = dict(rec)
            status = out.pop("marketing_status")
            if "marketing_status" in include and self.campaigns_enabled:
                out["marketing_status"] = status
        if entity == "activities" and ("attendees" in include) != ("attendees" in out):
            # attendees only through include_fields=attendees (GET /api/v2/activities reference)
            out = dict(out)
            if "attendees" in include:
                out["attendees"] = []
            else:
                del out["attendees"]
        if extras:
            out = {**out, **extras}
        if custom_keys is not None and isinstance(out.get("custom_fields"), dict):
            out = dict(out)
            out["custom_fields"] = {k: v for k, v in rec["custom_fields"].items() if k in custom_keys}
        return out

    # ------------------------------------------------------------------ routes
    def _register_routes(self) -> None:
        add = self.router.add
        add("GET", "/api/v2/persons/search", self._search_persons)
        for entity in V2_ENTITIES:
            add("GET", f"/api/v2/{entity}", lambda req, e=entity: self._list(req, e))
            add("POST", f"/api/v2/{entity}", lambda req, e=entity: self._create(req, e))
            add("GET", f"/api/v2/{entity}/{{id}}", lambda req, id, e=entity: self._get_one(req, e, int(id)))
            add("PATCH", f"/api/v2/{entity}/{{id}}", lambda req, id, e=entity: self._update(req, e, int(id)))
            add("DELETE", f"/api/v2/{entity}/{{id}}", lambda req, id, e=entity: self._delete(req, e, int(id)))
        for route, entity in FIELD_ROUTES.items():
            add("GET", f"/api/v2/{route}", lambda req, e=entity: self._fields_v2(req, e))
            add("GET", f"/api/v1/{route}", lambda req, e=entity: self._fields_v1(req, e))
        add("GET", "/api/v1/notes", self._list_notes)
        add("POST", "/api/v1/notes", self._create_note)
        add("GET", "/api/v1/notes/{id}", lambda req, id: self._ok_v1(self._note_out(self._note(int(id)))))
        add("PUT", "/api/v1/notes/{id}", lambda req, id: self._update_note(req, int(id)))
        add("DELETE", "/api/v1/notes/{id}", lambda req, id: self._delete_note(int(id)))
        add("GET", "/api/v1/persons/{id}/mailMessages", lambda req, id: self._mail_messages(req, int(id)))
        add("GET", "/api/v1/persons/{id}/flow", lambda req, id: self._person_flow(req, int(id)))
        add("PUT", "/api/v1/persons/{id}/merge", lambda req, id: self._merge(req, int(id)))
        add("GET", "/api/v1/users", lambda req: self._ok_v1([self._user_out(u) for u in self.users]))
        add("GET", "/api/v1/users/me", lambda req: self._ok_v1(self._user_out(self.users[0])))

    # ------------------------------------------------------------------ v2 lists
    @staticmethod
    def _limit(q: dict[str, str]) -> int:
        limit = _int_param(q, "limit")
        if limit is None:
            return 100
        if not 1 <= limit <= 500:
            raise _bad("Parameter 'limit' must be between 1 and 500")
        return limit

    @staticmethod
    def _rfc3339(q: dict[str, str], name: str) -> str | None:
        """RFC3339 with whole seconds only (v2 rejects fractions and spaces), as a V2_FMT string."""
        value = q.get(name)
        if value is None:
            return None
        m = _RFC3339.match(value)
        try:
            if not m:
                raise ValueError
            stamp = dt.datetime.fromisoformat(f"{m[1]}T{m[2]}{'+00:00' if m[3] == 'Z' else m[3]}")
        except ValueError:
            raise _bad(f"Parameter '{name}' must be an RFC3339 timestamp like 2025-01-01T10:20:00Z") from None
        return stamp.astimezone(dt.timezone.utc).strftime(V2_FMT)

    def _last_page_shape(self, body: dict, empty: bool) -> None:
        """Real v2 ends with next_cursor null, or without additional_data at all."""
        omit = self.omit_last_cursor
        if omit is None:
            self._last_pages += 1
            omit = empty or self._last_pages % 2 == 0
        if not omit:
            body["additional_data"] = {"next_cursor": None}

    def _list(self, req: Request, entity: str) -> Response:
        q = req.query
        limit = self._limit(q)
        sort_by = q.get("sort_by", "id")
        direction = q.get("sort_direction", "asc")
        if sort_by not in SORTABLE[entity]:
            raise _bad(f"Parameter 'sort_by' must be one of {', '.join(SORTABLE[entity])}")
        if direction not in ("asc", "desc"):
            raise _bad("Parameter 'sort_direction' must be asc or desc")
        since, until = self._rfc3339(q, "updated_since"), self._rfc3339(q, "updated_until")
        equals = [(f, v) for f in FILTERS[entity] if (v := _int_param(q, f)) is not None]
        ids = None
        if q.get("ids"):
            try:
                ids = {int(x) for x in q["ids"].split(",")}
            except ValueError:
                raise _bad("Parameter 'ids' must be a comma-separated list of integers") from None
            if len(ids) > 100:
                raise _bad("Parameter 'ids' accepts at most 100 ids")
        statuses = set(DEAL_STATUSES[:3])
        if entity == "deals" and q.get("status"):
            statuses = set(q["status"].split(","))
            if statuses - set(DEAL_STATUSES):
                raise _bad("Parameter 'status' must be a list of open, won, lost, deleted")
        include = self._include(q, entity)
        custom_keys = q["custom_fields"].split(",") if q.get("custom_fields") else None
        if custom_keys and len(custom_keys) > 15:
            raise _bad("Parameter 'custom_fields' accepts at most 15 keys")

        keys = self._index(entity, sort_by)
        lo, hi = 0, len(keys)
        if sort_by == "update_time":  # the usual incremental read: jump straight to the range
            if since:
                lo = bisect_left(keys, (since,))
            if until:
                hi = bisect_left(keys, (until,))
        if q.get("cursor"):
            c = _decode_cursor(q["cursor"])
            value, cid = c.get("fieldValue"), c.get("id")
            expected = int if sort_by == "id" else str
            if c.get("field") != sort_by or c.get("sortDirection") != direction or type(cid) is not int \
                    or type(value) is not expected:
                raise _bad("Invalid cursor for this sort_by/sort_direction")
            if direction == "asc":
                lo = max(lo, bisect_right(keys, (value, cid)))
                if req.page_fault == "shift":  # at-least-once paging: overlap the previous page
                    lo = max(0, lo - PAGE_FAULT_OVERLAP)
            else:
                hi = min(hi, bisect_left(keys, (value, cid)))
                if req.page_fault == "shift":
                    hi = min(len(keys), hi + PAGE_FAULT_OVERLAP)

        data = self._data[entity]
        page: list[tuple[Any, int, dict]] = []
        more = False
        for pos in range(lo, hi) if direction == "asc" else range(hi - 1, lo - 1, -1):
            value, rid = keys[pos]
            rec = data.get(rid)
            if rec is None:
                continue
            deleted = rec.get("is_deleted") is True
            if entity == "deals":
                if not ("deleted" in statuses if deleted else rec.get("status") in statuses):
                    continue
            elif deleted:
                continue
            if ids is not None and rid not in ids:
                continue
            if any(rec.get(f) != v for f, v in equals):
                continue
            if since or until:
                updated = str(rec.get("update_time") or "")
                if (since and updated < since) or (until and updated >= until):
                    continue
            if len(page) == limit:
                more = True
                break
            page.append((value, rid, rec))

        extras = self._extras(entity, [rid for _, rid, _ in page], include)
        data = [self._render(entity, r, include, custom_keys, extras.get(rid)) for _, rid, r in page]
        if req.page_fault == "duplicate":  # the same records twice within one page
            data = data + data[:PAGE_FAULT_OVERLAP]
        body: dict[str, Any] = {"success": True, "data": data}
        if more:
            value, rid, _ = page[-1]
            body["additional_data"] = {"next_cursor": _encode_cursor(
                {"field": sort_by, "fieldValue": value, "sortDirection": direction, "id": rid})}
        else:
            self._last_page_shape(body, not page)
        return json_response(200, body)

    # ------------------------------------------------------------------ v2 single records
    def _get_one(self, req: Request, entity: str, rid: int) -> Response:
        include = self._include(req.query, entity)
        rec = self._live(entity, rid)
        return json_response(200, {"success": True, "data": self._render(
            entity, rec, include, extras=self._extras(entity, [rid], include).get(rid))})

    def _defaults(self, entity: str) -> dict[str, Any]:
        custom = {f.key: None for f in self.fields[entity] if f.is_custom}
        common = {"owner_id": self.user_id, "visible_to": 3, "label_ids": [], "is_deleted": False}
        if entity == "persons":
            return {"name": None, "first_name": None, "last_name": None, **common, "org_id": None,
                    "picture_id": None, "emails": [], "phones": [], "job_title": None, "custom_fields": custom,
                    "marketing_status": "no_consent"}
        if entity == "organizations":
            return {"name": None, **common, "address": None, "custom_fields": custom}
        if entity == "deals":
            return {"title": None, "creator_user_id": self.user_id, **common, "value": 0, "currency": "EUR",
                    "person_id": None, "org_id": None, "pipeline_id": 1, "stage_id": 1, "status": "open",
                    "probability": None, "lost_reason": None, "close_time": None, "won_time": None,
                    "lost_time": None, "expected_close_date": None, "custom_fields": custom}
        # v2 activities have no visible_to, label_ids or custom_fields (Activities reference)
        return {"subject": None, "type": "task", "creator_user_id": self.user_id, "owner_id": self.user_id,
                "is_deleted": False, "deal_id": None,
                "lead_id": None, "person_id": None, "org_id": None, "project_id": None, "due_date": None,
                "due_time": None, "duration": None, "busy": False, "done": False, "marked_as_done_time": None,
                "location": None, "participants": [], "note": None, "public_description": None, "priority": None}

    def _apply(self, entity: str, rid: int, rec: dict, changes: dict[str, Any], creating: bool) -> None:
        now = self.now().strftime(V2_FMT)
        for key, value in changes.items():
            if key == "custom_fields":
                merged = dict(rec["custom_fields"]) if isinstance(rec.get("custom_fields"), dict) else {}
                merged.update(value)
                rec["custom_fields"] = merged
            elif key != "marketing_status":
                rec[key] = value
        if entity == "persons":
            if "name" in changes and not ({"first_name", "last_name"} & changes.keys()):
                first, _, last = changes["name"].strip().partition(" ")
                rec["first_name"], rec["last_name"] = first or None, last or None
            elif {"first_name", "last_name"} & changes.keys() and "name" not in changes:
                rec["name"] = " ".join(p for p in (rec.get("first_name"), rec.get("last_name")) if p)
            if not rec.get("name"):
                raise ApiError(400, "Validation failed: name must not be empty", "ERR_SCHEMA_VALIDATION_FAILED")
            self._apply_marketing_status(rid, rec, changes.get("marketing_status"), creating)
        elif entity == "deals" and "status" in changes:
            rec["close_time"] = None if changes["status"] == "open" else now
            rec["won_time"] = now if changes["status"] == "won" else None
            rec["lost_time"] = now if changes["status"] == "lost" else None
        elif entity == "activities" and "done" in changes:
            rec["marked_as_done_time"] = now if changes["done"] else None
        rec["update_time"] = now
        if creating:
            rec["add_time"] = now

    def _apply_marketing_status(self, rid: int, rec: dict, wanted: str | None, creating: bool) -> None:
        emails = rec.get("emails") or []
        has_email = any(isinstance(e, dict) and str(e.get("value") or "").strip() for e in emails)
        current = rec.get("marketing_status", "no_consent")
        if wanted is not None and self.campaigns_enabled and has_email and wanted != current:
            # A forbidden change is silent: the status just stays, as the docs say.
            if creating or not self.marketing_status_once or rid not in self._ms_changed:
                rec["marketing_status"] = wanted
                if not creating:
                    self._ms_changed.add(rid)
        if not has_email:
            rec["marketing_status"] = "no_consent"

    def _create(self, req: Request, entity: str) -> Response:
        changes = validate(entity, req.json(), self.fields[entity], creating=True)
        rid = self._next_id[entity]
        rec = {"id": rid, **self._defaults(entity)}
        self._apply(entity, rid, rec, changes, creating=True)
        self._next_id[entity] = rid + 1
        self._data[entity][rid] = rec
        self._changed(entity)
        return json_response(200, {"success": True, "data": self._render(entity, rec, WRITE_ANSWER_INCLUDES)})

    def _update(self, req: Request, entity: str, rid: int) -> Response:
        rec = self._live(entity, rid)
        changes = validate(entity, req.json(), self.fields[entity], creating=False)
        updated = copy.deepcopy(self._full(entity, rec))  # a failed validation leaves the record untouched
        before = copy.deepcopy(updated)
        self._apply(entity, rid, updated, changes, creating=False)
        self._data[entity][rid] = updated
        if entity == "persons":
            self._log_person_changes(rid, before, updated, req)
        self._changed(entity)
        return json_response(200, {"success": True, "data": self._render(entity, updated, WRITE_ANSWER_INCLUDES)})

    def _delete(self, req: Request, entity: str, rid: int) -> Response:
        rec = self._live(entity, rid)
        now = self.now()
        rec["is_deleted"] = True
        rec["update_time"] = now.strftime(V2_FMT)  # v2 has no delete_time: update_time is it
        self._deleted_at[entity][rid] = int(now.timestamp())
        self._changed(entity)
        return json_response(200, {"success": True, "data": {"id": rid}})

    # ------------------------------------------------------------------ fields
    def _fields_v2(self, req: Request, entity: str) -> Response:
        limit = self._limit(req.query)
        offset = 0
        if req.query.get("cursor"):
            offset = _decode_cursor(req.query["cursor"]).get("offset")
            if type(offset) is not int or offset < 0:
                raise _bad("Invalid cursor")
        items = [field_v2(f) for f in self.fields[entity]]
        body: dict[str, Any] = {"success": True, "data": items[offset:offset + limit]}
        if offset + limit < len(items):
            body["additional_data"] = {"next_cursor": _encode_cursor({"offset": offset + limit})}
        else:
            self._last_page_shape(body, not body["data"])
        return json_response(200, body)

    def _fields_v1(self, req: Request, entity: str) -> Response:
        start, limit = self._v1_paging(req.query)
        return self._v1_page([field_v1(f, i) for i, f in enumerate(self.fields[entity])], start, limit)

    # ------------------------------------------------------------------ v1 helpers
    @staticmethod
    def _ok_v1(data: Any, additional: Any = None, status: int = 200) -> Response:
        body = {"success": True, "data": data}
        if additional is not None:
            body["additional_data"] = additional
        return json_response(status, body)

    @staticmethod
    def _v1_paging(q: dict[str, str]) -> tuple[int, int]:
        start = _int_param(q, "start") or 0
        limit = _int_param(q, "limit")
        limit = 100 if limit is None else limit
        if start < 0 or not 1 <= limit <= 500:
            raise _bad("Parameters 'start' must be >= 0 and 'limit' between 1 and 500")
        return start, limit

    @staticmethod
    def _pagination(start: int, limit: int, total: int) -> dict[str, Any]:
        more = start + limit < total
        pagination: dict[str, Any] = {"start": start, "limit": limit, "more_items_in_collection": more}
        if more:  # next_start is present only when there are more items
            pagination["next_start"] = start + limit
        return {"pagination": pagination}

    def _v1_page(self, items: list, start: int, limit: int) -> Response:
        return self._ok_v1(items[start:start + limit], self._pagination(start, limit, len(items)))

    @staticmethod
    def _v1_body(req: Request) -> dict[str, Any]:
        """v1 takes JSON or form bodies and is lenient about number and flag types."""
        if (req.headers.get("Content-Type") or "").startswith("application/x-www-form-urlencoded"):
            return dict(parse_qsl(req.body.decode("utf-8", "replace"), keep_blank_values=True))
        body = req.json()
        if not isinstance(body, dict):
            raise _bad("Request body must be an object")
        return body

    @staticmethod
    def _v1_int(body: dict, name: str) -> int | None:
        v = body.get(name)
        if v is None or v == "":
            return None
        if type(v) is int or (isinstance(v, str) and v.isdigit()):
            return int(v)
        raise _bad(f"Parameter '{name}' must be an integer")

    @staticmethod
    def _v1_flag(v: Any) -> bool:
        return v in (True, 1, "1", "true", "True")

    def _user_out(self, u: dict) -> dict:
        return {**u, "active_flag": True, "is_admin": 1 if u["id"] == self.user_id else 0, "role_id": 1,
                "icon_url": None, "locale": "fi_FI", "timezone_name": "Europe/Helsinki",
                "created": "2024-01-01 00:00:00", "modified": "2024-01-01 00:00:00", "is_you": u["id"] == self.user_id}

    # ------------------------------------------------------------------ v1 notes
    def _note(self, nid: int) -> dict:
        rec = self._data["notes"].get(nid)
        if rec is None:
            raise ApiError(404, "Note not found")
        return rec

    def _note_out(self, rec: dict) -> dict:
        if rec.get("id") in self._raw["notes"]:
            return rec
        person = self._data["persons"].get(rec.get("person_id"))  # type: ignore[arg-type]
        org = self._data["organizations"].get(rec.get("org_id"))  # type: ignore[arg-type]
        deal = self._data["deals"].get(rec.get("deal_id"))  # type: ignore[arg-type]
        user = next((u for u in self.users if u["id"] == rec.get("user_id")), None)
        return {**SPARSE_DEFAULTS["notes"], **rec,
                "person": {"name": person.get("name")} if person else None,
                "organization": {"name": org.get("name")} if org else None,
                "deal": {"title": deal.get("title")} if deal else None,
                "user": {"email": user["email"], "name": user["name"], "icon_url": None,
                         "is_you": user["id"] == self.user_id} if user else None}

    def _list_notes(self, req: Request) -> Response:
        q = req.query
        start, limit = self._v1_paging(q)
        since = q.get("updated_since")
        if since is not None and not _V1_TIME.match(since):
            since = dt.datetime.strptime(self._rfc3339(q, "updated_since") or "", V2_FMT).strftime(V1_FMT)
        sort = []
        for part in (q.get("sort") or "id ASC").split(","):
            field, _, direction = part.strip().partition(" ")
            direction = direction.strip().upper() or "ASC"
            if field not in ("id", "add_time", "update_time", "user_id") or direction not in ("ASC", "DESC"):
                raise _bad("Parameter 'sort' must look like 'update_time ASC'")
            sort.append((field, direction == "DESC"))
        equals = [(f, v) for f in ("person_id", "org_id", "deal_id", "user_id") if (v := _int_param(q, f)) is not None]
        lead = q.get("lead_id")
        start_date, end_date = q.get("start_date"), q.get("end_date")

        key = (since, tuple(sort), tuple(equals), lead, start_date, end_date)
        version = self._versions["notes"]
        first = max(0, start - PAGE_FAULT_OVERLAP) if req.page_fault == "shift" else start
        by_time = sort in ([("update_time", False)], [("update_time", False), ("id", False)])
        if not (equals or lead or start_date or end_date) and (by_time or (sort == [("id", False)] and not since)):
            # The sync's walks (by update_time from a time, and by id): served from the sorted
            # (value, id) index, as a database index would, instead of filtering and sorting
            # every note for each page. Same records, order and paging as the general path.
            keys = self._index("notes", "update_time" if by_time else "id")
            lo = bisect_left(keys, (since,)) if since else 0
            window = keys[lo + first:lo + start + limit]
            page = [self._note_out(self._data["notes"][rid]) for _, rid in window]
            if req.page_fault == "duplicate":
                page = page + page[:PAGE_FAULT_OVERLAP]
            return self._ok_v1(page, self._pagination(start, limit, len(keys) - lo))
        if self._notes_cache and self._notes_cache[0] == key and self._notes_cache[1] == version:
            ids = self._notes_cache[2]  # offset paging: keep the matching ids between pages
        else:
            notes = self._data["notes"]
            ids = []
            for nid, rec in notes.items():
                if any(rec.get(f) != v for f, v in equals) or (lead and rec.get("lead_id") != lead):
                    continue
                updated, added = str(rec.get("update_time") or ""), str(rec.get("add_time") or "")
                if (since and updated < since) or (start_date and added[:10] < start_date) \
                        or (end_date and added[:10] > end_date):
                    continue
                ids.append(nid)
            for field, desc in reversed(sort):  # stable sorts, least significant key first
                ids.sort(key=lambda i: _sort_value(notes[i], i, field), reverse=desc)
            self._notes_cache = (key, version, ids)
        page = [self._note_out(self._data["notes"][i]) for i in ids[first:start + limit]]
        if req.page_fault == "duplicate":
            page = page + page[:PAGE_FAULT_OVERLAP]
        return self._ok_v1(page, self._pagination(start, limit, len(ids)))

    def _note_changes(self, body: dict) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        if "content" in body:
            if not isinstance(body["content"], str) or not body["content"].strip():
                raise _bad("Parameter 'content' must be a non-empty string")
            changes["content"] = body["content"]
        for name, entity in (("person_id", "persons"), ("org_id", "organizations"), ("deal_id", "deals")):
            if name in body:
                v = self._v1_int(body, name)
                if v is not None and v not in self._data[entity]:
                    raise _bad(f"{entity[:-1].capitalize()} {v} not found")
                changes[name] = v
        if "lead_id" in body:
            changes["lead_id"] = body["lead_id"] or None
        if "user_id" in body:
            changes["user_id"] = self._v1_int(body, "user_id")
        for flag in ("pinned_to_deal_flag", "pinned_to_person_flag", "pinned_to_organization_flag",
                     "pinned_to_lead_flag"):
            if flag in body:
                changes[flag] = self._v1_flag(body[flag])
        return changes

    def _create_note(self, req: Request) -> Response:
        changes = self._note_changes(self._v1_body(req))
        if "content" not in changes:
            raise _bad("Parameter 'content' is required")
        if not any(changes.get(k) for k in ("person_id", "org_id", "deal_id", "lead_id")):
            raise _bad("One of deal_id, person_id, org_id or lead_id is required")
        nid = self._next_id["notes"]
        now = self.now().strftime(V1_FMT)
        rec = {"id": nid, "user_id": self.user_id, "deal_id": None, "person_id": None, "org_id": None,
               "lead_id": None, "project_id": None, "content": "", "add_time": now, "update_time": now,
               "active_flag": True, "pinned_to_deal_flag": False, "pinned_to_person_flag": False,
               "pinned_to_organization_flag": False, "pinned_to_lead_flag": False, "pinned_to_project_flag": False,
               "last_update_user_id": self.user_id}
        rec.update(changes)
        self._next_id["notes"] = nid + 1
        self._data["notes"][nid] = rec
        self._changed("notes")
        return self._ok_v1(self._note_out(rec), status=201)

    def _update_note(self, req: Request, nid: int) -> Response:
        rec = self._note(nid)
        changes = self._note_changes(self._v1_body(req))
        rec.update(changes)
        rec["update_time"] = self.now().strftime(V1_FMT)
        rec["last_update_user_id"] = self.user_id
        self._changed("notes")
        return self._ok_v1(self._note_out(rec))

    def _delete_note(self, nid: int) -> Response:
        self._note(nid)
        del self._data["notes"][nid]  # notes are deleted for good at once
        self._raw["notes"].discard(nid)
        self._changed("notes")
        return self._ok_v1({"id": nid})

    # ------------------------------------------------------------------ v1 mail and merge
    def _mail_messages(self, req: Request, pid: int) -> Response:
        if pid not in self._data["persons"]:
            raise ApiError(404, "Person not found")
        start, limit = self._v1_paging(req.query)
        messages = sorted(self._mail.get(pid, []), key=lambda m: (m["message_time"], m["id"]), reverse=True)
        items = [{"object": "mailMessage", "timestamp": m["message_time"], "data": self._mail_out(m)}
                 for m in messages]
        return self._v1_page(items, start, limit)

    def _log_person_changes(self, pid: int, before: dict, after: dict, req: Request) -> None:
        """One personChange per changed field, shaped as v1 flow's ``data`` (custom fields by
        their hash key; list and object values as JSON text, as v1 reports them)."""
        def flat(rec: dict) -> dict:
            out = {k: v for k, v in rec.items() if k not in ("custom_fields", "update_time", "add_time")}
            out.update(rec.get("custom_fields") or {})
            return out

        old, new = flat(before), flat(after)
        log = self._person_changes.setdefault(pid, [])
        for key in sorted(set(old) | set(new)):
            if old.get(key) == new.get(key):
                continue
            text = [v if v is None or isinstance(v, (str, int, float, bool)) else json.dumps(v, ensure_ascii=False)
                    for v in (old.get(key), new.get(key))]
            self._change_seq += 1
            log.append({"id": self._change_seq, "item_id": pid,
                        "user_id": self.user_id, "field_key": key, "old_value": text[0], "new_value": text[1],
                        "is_bulk_update_flag": None, "log_time": self.now().strftime(V1_FMT),
                        "change_source": "api", "change_source_user_agent": req.headers.get("User-Agent"),
                        "additional_data": []})

    def _person_flow(self, req: Request, pid: int) -> Response:
        """``GET /v1/persons/{id}/flow``: the person's updates, newest first, each
        ``{object, timestamp, data}`` with object personChange, note or activity; ``items``
        (comma-separated objects) narrows them. v1 offset paging."""
        if pid not in self._data["persons"]:
            raise ApiError(404, "Person not found")
        start, limit = self._v1_paging(req.query)
        wanted = {i.strip() for i in (req.query.get("items") or "").split(",") if i.strip()}
        items = [{"object": "personChange", "timestamp": c["log_time"], "data": c}
                 for c in self._person_changes.get(pid, [])]
        items += [{"object": "note", "timestamp": n.get("add_time"), "data": self._note_out(n)}
                  for n in self._data["notes"].values() if n.get("person_id") == pid]
        for a in self._data["activities"].values():
            full = self._full("activities", a)
            participants = full.get("participants") if isinstance(full.get("participants"), list) else []
            linked = {full.get("person_id")} | {p.get("person_id") for p in participants if isinstance(p, dict)}
            if pid in linked and a.get("is_deleted") is not True:
                when = str(full.get("add_time") or "").replace("T", " ").rstrip("Z")
                items.append({"object": "activity", "timestamp": when, "data": full})
        if wanted:
            items = [i for i in items if i["object"] in wanted]
        items.sort(key=lambda i: (str(i["timestamp"] or ""), str(i["data"].get("id"))), reverse=True)
        return self._v1_page(copy.deepcopy(items), start, limit)

    def _merge(self, req: Request, loser_id: int) -> Response:
        """The URL person is removed; merge_with_id survives, keeps its values and takes the
        loser's where its own are empty; related records move to the survivor."""
        survivor_id = self._v1_int(self._v1_body(req), "merge_with_id")
        if survivor_id is None or survivor_id == loser_id:
            raise _bad("Parameter 'merge_with_id' must be another person's id")
        loser = self._live("persons", loser_id)
        survivor = self._live("persons", survivor_id)
        now2, now1 = self.now().strftime(V2_FMT), self.now().strftime(V1_FMT)
        for key, value in self._full("persons", loser).items():
            if key in ("id", "add_time", "update_time", "is_deleted", "marketing_status"):
                continue
            if key == "custom_fields" and isinstance(value, dict) and isinstance(survivor.get(key), dict):
                for ck, cv in value.items():
                    if _empty(survivor[key].get(ck)):
                        survivor[key][ck] = copy.deepcopy(cv)
            elif _empty(survivor.get(key)) and not _empty(value):
                survivor[key] = copy.deepcopy(value)
        survivor["update_time"] = now2
        del self._data["persons"][loser_id]
        self._deleted_at["persons"].pop(loser_id, None)
        self._changed("persons")
        for entity in ("deals", "activities"):
            for rec in self._data[entity].values():
                moved = False
                if rec.get("person_id") == loser_id:
                    rec["person_id"], moved = survivor_id, True
                for p in (rec.get("participants") or []) + (rec.get("attendees") or []):
                    if isinstance(p, dict) and p.get("person_id") == loser_id:
                        p["person_id"], moved = survivor_id, True
                if moved:
                    rec["update_time"] = now2
            self._changed(entity)
        for rec in self._data["notes"].values():
            if rec.get("person_id") == loser_id:
                rec["person_id"], rec["update_time"] = survivor_id, now1
        self._changed("notes")
        moved_mail = self._mail.pop(loser_id, [])
        for m in moved_mail:
            for party in m["from"] + m["to"]:
                if party.get("linked_person_id") == loser_id:
                    party["linked_person_id"], party["linked_person_name"] = survivor_id, survivor.get("name")
        self._mail.setdefault(survivor_id, []).extend(moved_mail)
        return self._ok_v1({"id": survivor_id, "name": survivor.get("name"), "merge_what_id": loser_id})

    # ------------------------------------------------------------------ v2 search
    def _search_persons(self, req: Request) -> Response:
        q = req.query
        term = q.get("term", "")
        exact = q.get("exact_match", "false")
        if exact not in ("true", "false"):
            raise _bad("Parameter 'exact_match' must be true or false")
        exact_match = exact == "true"
        if len(term.strip()) < (1 if exact_match else 2):
            raise _bad("Parameter 'term' must be at least 2 characters (1 with exact_match)")
        wanted = set((q.get("fields") or "name,email,phone,notes,custom_fields").split(","))
        if wanted - {"name", "email", "phone", "notes", "custom_fields"}:
            raise _bad("Parameter 'fields' accepts name, email, phone, notes, custom_fields")
        limit = self._limit(q)
        org_filter = _int_param(q, "organization_id")
        offset = 0
        if q.get("cursor"):
            offset = _decode_cursor(q["cursor"]).get("offset")
            if type(offset) is not int or offset < 0:
                raise _bad("Invalid cursor")
        t = term.strip().lower()
        t_digits = re.sub(r"\D", "", t)
        searchable = {f.key for f in self.fields["persons"] if f.is_custom and f.field_type in (
            "varchar", "varchar_auto", "text", "address", "double", "monetary", "phone")}
        noted: set[int] = set()
        if "notes" in wanted:
            noted = {n.get("person_id") for n in self._data["notes"].values()
                     if t in str(n.get("content") or "").lower()}

        def score_of(value: Any, phone: bool = False) -> float:
            v = str(value if not isinstance(value, dict) else value.get("value", "")).strip().lower()
            if phone and len(t_digits) >= 2:
                v_digits = re.sub(r"\D", "", v)
                if exact_match:
                    return 1.0 if v_digits == t_digits else 0.0
                return 0.5 if t_digits in v_digits else 0.0
            if exact_match:
                return 1.0 if v == t else 0.0
            return 1.0 if v == t else 0.75 if v.startswith(t) else 0.5 if t in v else 0.0

        hits = []
        for rid, rec in self._data["persons"].items():
            if rec.get("is_deleted") is True or (org_filter is not None and rec.get("org_id") != org_filter):
                continue
            score, matched_custom = 0.0, []
            if "name" in wanted:
                score = score_of(rec.get("name") or "")
            if "email" in wanted:
                for e in rec.get("emails") or []:
                    score = max(score, score_of(e.get("value", "") if isinstance(e, dict) else e))
            if "phone" in wanted:
                for p in rec.get("phones") or []:
                    score = max(score, score_of(p.get("value", "") if isinstance(p, dict) else p, phone=True))
            if "custom_fields" in wanted and isinstance(rec.get("custom_fields"), dict):
                for key, value in rec["custom_fields"].items():
                    if key in searchable and value is not None and (s := score_of(value)) > 0:
                        score = max(score, s)
                        matched_custom.append(str(value.get("value") if isinstance(value, dict) else value))
            if rid in noted:
                score = max(score, 0.25)
            if score > 0:
                hits.append((-score, rid, matched_custom))
        hits.sort(key=lambda h: (h[0], h[1]))
        items = []
        for neg_score, rid, matched_custom in hits[offset:offset + limit]:
            rec = self._data["persons"][rid]
            org = self._data["organizations"].get(rec.get("org_id"))  # type: ignore[arg-type]
            items.append({"result_score": -neg_score, "item": {
                "id": rid, "type": "person", "name": rec.get("name"),
                "phones": [p.get("value") for p in rec.get("phones") or [] if isinstance(p, dict)],
                "emails": [e.get("value") for e in rec.get("emails") or [] if isinstance(e, dict)],
                "visible_to": rec.get("visible_to"), "owner": {"id": rec.get("owner_id")},
                "organization": {"id": org["id"], "name": org.get("name"), "address": None} if org else None,
                "custom_fields": matched_custom, "notes": []}})
        more = offset + limit < len(hits)
        return json_response(200, {"success": True, "data": {"items": items}, "additional_data": {
            "next_cursor": _encode_cursor({"offset": offset + limit}) if more else None}})
