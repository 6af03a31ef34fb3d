"""Imitation of Matomo's Reporting API, PrivacyManager methods, written from Matomo's own source
(GitHub matomo-org/matomo; file and function named at each point; Matomo 5.x).

Transport (``core/API/Request.php``, ``core/API/ResponseBuilder.php::getResponseException``,
``plugins/API/Renderer/Json.php``): parameters from the query string and the POST form alike;
``token_auth`` counts only in the POST body (tokens are "POST only" by default since Matomo 5,
matomo-org/matomo#20351): missing, wrong, or sent in the URL answers **HTTP 401** with Matomo's
message (#21789). Exceptions that carry an HTTP code set it: ``NoAccessException`` (a user
without the access a method needs, ``core/Access.php::checkUserHasSomeAdminAccess``) **401**,
``BadRequestException`` (an unknown method, ``core/API/Proxy.php``) **400**; every other error
is **HTTP 200** with ``{"result":"error","message":...}``, e.g. a deactivated plugin
(``PluginDeactivatedException``: "The plugin Live is not enabled. ..."). A scalar answer is
``{"value": ...}`` (``ApiRenderer::renderScalar``). Arrays are PHP form fields
(``visits[0][idsite]=1&visits[0][idvisit]=2``).

- ``PrivacyManager.findDataSubjects(idSite, segment)`` (``plugins/PrivacyManager/API.php``):
  needs some admin access; runs ``Live.getLastVisitsDetails`` over all time with
  ``filter_limit=401`` (newest first) and keeps only ``$columnsToKeep`` (camelCase
  ``idVisit``/``idSite``). Since matomo-org/matomo#23032 (Matomo 5.3) it answers ``[]`` when the
  Live plugin is deactivated and **silently skips sites** whose visitor log or visitor profile
  is off (``live_plugin_active``, ``profile_disabled_sites`` here). So ``[]`` proves nothing.
- The segment is parsed as ``core/Segment.php::__construct`` and
  ``core/Segment/SegmentExpression.php`` do: the whole text is tried URL-decoded and raw and the
  one with more conditions wins; ``;`` (AND) and ``,`` (OR) split unless escaped with a backslash;
  each condition is URL-decoded, split at the first operator (``== != >= > <= < =@ !@ =^ =$``),
  and its value URL-decoded **again** (PHP ``urldecode``: ``+`` is a space). ``name==`` with an
  empty value means "is null or empty" and ``name!=`` "is not null nor empty". **An empty
  segment is no condition at all: everyone's newest visits** (Matomo does not reject it).
  Segments known here: ``userId``, ``visitorId``; others answer "Segment 'x' is not a supported
  segment." (``core/Segment.php``).
- "Anonymize User ID" (``plugins/PrivacyManager/Tracker/RequestProcessor.php::anonymizeUserId``):
  the tracker replaces the userId by ``sha1(userId . salt)`` with a per-install salt
  (``PrivacyManager::getUserIdSalt``) *before* the visitorId is derived from it, so neither can
  be computed from the e-mail (``anonymize_user_ids()`` replays the tracking that way).
- ``PrivacyManager.exportDataSubjects(visits)``: rows per log table, tables in reverse key order
  (``krsort``), values formatted for people (site name, "New"/"Returning", hex visitor id),
  action names in ``log_action_<table>_<column>`` lookups.
- ``PrivacyManager.deleteDataSubjects(visits)``: deleted row counts per table; unknown visits
  count 0, not an error (``Model/DataSubjects.php``, ``tests/Integration/Model/DataSubjectsTest.php``).
- ``Live.isVisitorProfileEnabled(idSite)`` (API method since matomo-org/matomo#22975; false when
  the visitor log or the profile is off, ``plugins/Live/Live.php::checkIsVisitorProfileEnabled``)
  and ``SitesManager.getSitesIdWithAdminAccess`` (``plugins/SitesManager/API.php``): the
  read-only calls a client can use to see which sites a search covers.

Not imitated (our choice): the other 400-odd API methods (unknown method, HTTP 400), formats
other than JSON, segments on other dimensions, MySQL's case-insensitive collation.
"""

from __future__ import annotations

import hashlib
import random
import re
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from .base import ApiError, Imitation, Request, Response, json_response
from .matomo_world import SITES, visitor_id_of
from .world import World

DEFAULT_TOKEN = "sandbox-matomo-token-auth-0123456789abcdef"
VIEW_TOKEN = "sandbox-matomo-view-only-token-0123456789"  # a user with view access only
FIND_LIMIT = 401
AUTH_MESSAGE = ("Unable to authenticate with the provided token. It is either invalid, expired or is required to be "
                "sent as a POST parameter.")
NO_ADMIN = "You can't access this resource as it requires admin access for at least one website."
LIVE_OFF = "The plugin Live is not enabled. You can activate the plugin on Settings > Plugins page in Matomo."
SEGMENT_FIELDS = {"userId": "user_id", "visitorId": "visitor_id"}
# SegmentExpression::parseOperand's pattern, operators in its order (first match wins).
OPERAND = re.compile(r"^(.+?)(==|!=|>=|>|<=|<|=@|!@|=\^|=\$)(.*)")
AND_SPLIT = re.compile(r";(?!$)(?<!\\;)")
OR_SPLIT = re.compile(r",(?!$)(?<!\\,)")
_EMPTY = (None, "", "0")  # MATCH_IS_NULL_OR_EMPTY: "%s IS NULL OR %s = '' OR %s = '0'"
MATCHERS: dict[str, Callable[[Any, str], bool]] = {
    "==": lambda col, v: col is not None and col == v,
    "!=": lambda col, v: col is None or col != v,
    ">=": lambda col, v: col is not None and col >= v,
    ">": lambda col, v: col is not None and col > v,
    "<=": lambda col, v: col is not None and col <= v,
    "<": lambda col, v: col is not None and col < v,
    "=@": lambda col, v: col is not None and v in col,
    "!@": lambda col, v: col is None or v not in col,
    "=^": lambda col, v: col is not None and col.startswith(v),
    "=$": lambda col, v: col is not None and col.endswith(v),
    "::NULL": lambda col, v: col in _EMPTY,
    "::NOT_NULL": lambda col, v: col not in _EMPTY,
}


class SegmentError(Exception):
    pass


def _parse_tree(text: str) -> list[list[tuple[str, str, str]]]:
    """SegmentExpression::parseTree and parseSubExpressions: AND of ORs of (name, op, value)."""
    text = text.strip()
    if not text:
        return []
    ands = [a for a in AND_SPLIT.split(text) if a not in ("", "0")]  # PHP array_filter
    tree = []
    for block in ands:
        ors = []
        for cond in OR_SPLIT.split(block):
            operand = unquote_plus(cond.replace("\\;", ";").replace("\\,", ","))
            m = OPERAND.match(operand)
            if not m:
                raise SegmentError(f"The segment condition '{operand}' is not valid.")
            name, op, value = m[1], m[2], unquote_plus(m[3])
            if value == "":
                if op not in ("==", "!="):
                    raise SegmentError(f"The segment '{operand}' has no value specified. You can leave this value "
                                       "empty only when you use the operators: != (is not) or == (is)")
                op = "::NULL" if op == "==" else "::NOT_NULL"
            if name not in SEGMENT_FIELDS:
                raise SegmentError(f"Segment '{name}' is not a supported segment.")
            ors.append((name, op, value))
        tree.append(ors)
    return tree


def parse_segment(text: str) -> list[list[tuple[str, str, str]]]:
    """core/Segment.php::__construct: the URL-decoded and the raw reading are both tried; the raw
    one is used only when it yields more conditions."""
    text = text.strip()
    decoded_count = raw_count = 0
    if unquote_plus(text) != text:
        try:
            decoded_count = sum(len(ors) for ors in _parse_tree(unquote_plus(text)))
        except SegmentError:
            pass
    try:
        raw = _parse_tree(text)
        raw_count = sum(len(ors) for ors in raw)
    except SegmentError:
        pass
    if raw_count > decoded_count:
        return raw
    return _parse_tree(unquote_plus(text))
VISIT_PARAM = re.compile(r"^visits\[(\d+)\]\[(\w+)\]$")
ACTION_TABLE = "log_action_log_link_visit_action_idaction_url"


def _time(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


class MatomoImitation(Imitation):
    name = "matomo"

    def __init__(self, world: World, token: str = DEFAULT_TOKEN) -> None:
        super().__init__()
        self.token = token
        self.view_token = VIEW_TOKEN
        self.live_plugin_active = True
        self.profile_disabled_sites: set[int] = set()  # visitor log or visitor profile off
        self.user_id_salt = "".join(random.Random(f"matomo-salt:{world.seed}").choices("abcdef0123456789", k=40))
        self.segments_seen: list[list[list[tuple[str, str, str]]]] = []  # parsed findDataSubjects segments
        self._lock = threading.RLock()
        self.action_ids: dict[str, int] = {}  # log_action: url -> idaction (never deleted by a DSR)
        self.visits: dict[tuple[int, int], dict] = {}
        self.link_actions: dict[tuple[int, int], list[dict]] = {}
        self.conversions: dict[tuple[int, int], list[dict]] = {}
        next_link = 1
        for v in world.derive("matomo").visits:
            key = (v.idsite, v.idvisit)
            self.visits[key] = v._asdict()
            rows = []
            for n, url in enumerate(v.actions):
                idaction = self.action_ids.setdefault(f"{SITES[v.idsite]}{url}", len(self.action_ids) + 1)
                rows.append({"idlink_va": next_link, "idaction_url": idaction, "server_time": v.first_action + 40 * n})
                next_link += 1
            self.link_actions[key] = rows
            if v.conversion:
                self.conversions[key] = [{"idgoal": 1, "server_time": v.first_action + 40 * len(v.actions),
                                          "revenue": 0}]
        self.router.add("GET", "/index.php", self.api)
        self.router.add("POST", "/index.php", self.api)

    # -- hooks ------------------------------------------------------------------------------

    def env(self, url: str) -> dict[str, str]:
        return {"MATOMO_BASE_URL": url, "MATOMO_TOKEN_AUTH": self.token, "MATOMO_USER_ID_FORMAT": "email"}

    def error_response(self, req: Request, status: int, message: str, code: str | None = None) -> Response:
        return json_response(status, {"result": "error", "message": message})

    def authenticate(self, req: Request) -> Response | None:
        posted = dict(parse_qsl(req.body.decode("utf-8", "replace"))) if req.method == "POST" else {}
        if posted.get("token_auth") not in (self.token, self.view_token):  # a token in the URL does not count
            return self.error_response(req, 401, AUTH_MESSAGE)
        return None

    # -- settings a deployment may have ----------------------------------------------------

    def anonymize_user_ids(self) -> None:
        """Replay the tracking with "anonymize User ID" on: the stored userId is
        ``sha1(userId . salt)`` and the visitorId derives from that pseudonym."""
        with self._lock:
            for v in self.visits.values():
                if v["user_id"]:
                    v["user_id"] = hashlib.sha1((v["user_id"] + self.user_id_salt).encode()).hexdigest()
                    v["visitor_id"] = visitor_id_of(v["user_id"])

    # -- ground truth helpers for tests -----------------------------------------------------

    def visit_keys_of(self, true_person_id: str) -> set[tuple[int, int]]:
        with self._lock:
            return {k for k, v in self.visits.items() if v["true_person_id"] == true_person_id}

    # -- the API ----------------------------------------------------------------------------

    def api(self, req: Request) -> Response:
        params = dict(req.query)
        if req.method == "POST":
            params.update(parse_qsl(req.body.decode("utf-8", "replace"), keep_blank_values=True))
        if params.get("module") != "API":
            raise ApiError(200, "The module parameter must be API")
        if (params.get("format") or "xml").lower() != "json":
            raise ApiError(200, "This sandbox answers format=JSON only")
        method = params.get("method") or ""
        handler = {"PrivacyManager.findDataSubjects": self.find, "PrivacyManager.exportDataSubjects": self.export,
                   "PrivacyManager.deleteDataSubjects": self.delete, "Live.isVisitorProfileEnabled": self.profile_on,
                   "SitesManager.getSitesIdWithAdminAccess": self.admin_sites}.get(method)
        if handler is None:
            module, _, name = method.partition(".")
            raise ApiError(400, f"The method '{name}' does not exist or is not available in the module '{module}'.")
        if method.startswith("Live.") and not self.live_plugin_active:
            raise ApiError(200, LIVE_OFF)  # PluginDeactivatedException carries no HTTP code
        if method.startswith("PrivacyManager.") and not self._admin(params):
            raise ApiError(401, NO_ADMIN)  # NoAccessException carries HTTP 401
        with self._lock:
            return json_response(200, handler(params))

    def _admin(self, params: dict[str, str]) -> bool:
        return params.get("token_auth") == self.token  # the posted token (authenticate checked it)

    def admin_sites(self, params: dict[str, str]) -> list[int]:
        return sorted(SITES) if self._admin(params) else []

    def profile_on(self, params: dict[str, str]) -> dict[str, bool]:
        site = min(self._sites(params.get("idSite") or ""))
        return {"value": site not in self.profile_disabled_sites}

    def _sites(self, value: str) -> set[int]:
        if value == "all":
            return set(SITES)
        try:
            sites = {int(part) for part in value.split(",") if part.strip()}
        except ValueError:
            raise ApiError(200, "idSite must be an id, a comma-separated list of ids or 'all'") from None
        unknown = sites - set(SITES)
        if unknown or not sites:
            raise ApiError(200, f"An unexpected website was found in the request: website id was set to "
                                f"'{min(unknown) if unknown else ''}' .")
        return sites

    def find(self, params: dict[str, str]) -> list[dict]:
        sites = self._sites(params.get("idSite") or "")
        try:
            segment = parse_segment(params.get("segment") or "")
        except SegmentError as exc:
            raise ApiError(200, str(exc)) from None
        self.segments_seen.append(segment)
        if not self.live_plugin_active:
            return []
        sites -= self.profile_disabled_sites  # skipped silently
        hits = [v for v in self.visits.values()
                if v["idsite"] in sites and all(any(MATCHERS[op](v[SEGMENT_FIELDS[name]] or None, value)
                                                    for name, op, value in ors) for ors in segment)]
        hits.sort(key=lambda v: (self._last_action(v), v["idvisit"]), reverse=True)
        return [self._visit_summary(v) for v in hits[:FIND_LIMIT]]

    def _last_action(self, v: dict) -> float:
        rows = self.link_actions.get((v["idsite"], v["idvisit"])) or []
        return max((r["server_time"] for r in rows), default=v["first_action"])

    def _visit_summary(self, v: dict) -> dict[str, Any]:
        mobile = v["os"] in ("iOS", "Android")
        return {
            "lastActionDateTime": _time(self._last_action(v)), "idVisit": v["idvisit"], "idSite": v["idsite"],
            "siteName": SITES[v["idsite"]], "visitorId": v["visitor_id"], "visitIp": v["ip"],
            "userId": v["user_id"] or None, "deviceType": "Smartphone" if mobile else "Desktop",
            "deviceModel": "Generic Smartphone" if mobile else "Generic Desktop",
            "deviceTypeIcon": "plugins/Morpheus/icons/dist/devices/" + ("smartphone.png" if mobile else "desktop.png"),
            "operatingSystem": v["os"],
            "operatingSystemIcon": f"plugins/Morpheus/icons/dist/os/{v['os'][:3].upper()}.png",
            "browser": v["browser"], "browserFamilyDescription": v["browser"],
            "browserIcon": f"plugins/Morpheus/icons/dist/browsers/{v['browser'][:2].upper()}.png",
            "country": v["country"].upper(), "region": None,
            "countryFlag": f"plugins/Morpheus/icons/dist/flags/{v['country']}.png",
        }

    def _visits_param(self, params: dict[str, str]) -> list[tuple[int, int]]:
        found: dict[int, dict[str, str]] = {}
        for key, value in params.items():
            m = VISIT_PARAM.match(key)
            if m:
                found.setdefault(int(m[1]), {})[m[2]] = value
        if not found:
            raise ApiError(200, "No list of visits given")
        out = []
        for index in sorted(found):
            for key in ("idsite", "idvisit"):
                if not found[index].get(key):
                    raise ApiError(200, f"No {key} key set for visit at index {index}")
            try:
                out.append((int(found[index]["idsite"]), int(found[index]["idvisit"])))
            except ValueError:
                raise ApiError(200, f"idsite and idvisit must be numbers at index {index}") from None
        return out

    def export(self, params: dict[str, str]) -> dict[str, list]:
        tables: dict[str, list] = {"log_visit": [], "log_link_visit_action": [], "log_conversion": [],
                                   "log_conversion_item": [], ACTION_TABLE: []}
        names = {i: url for url, i in self.action_ids.items()}
        used: set[int] = set()
        for key in self._visits_param(params):
            v = self.visits.get(key)
            if v is None:
                continue
            site = f"Site {v['idsite']}"
            rows = self.link_actions.get(key, [])
            tables["log_visit"].append({
                "idvisit": v["idvisit"], "idsite": site, "idvisitor": v["visitor_id"], "user_id": v["user_id"] or None,
                "location_ip": v["ip"], "visit_first_action_time": _time(v["first_action"]),
                "visit_last_action_time": _time(self._last_action(v)), "visit_total_actions": len(rows),
                "visitor_returning": "Returning" if v["user_id"] else "New", "config_browser_name": v["browser"],
                "config_os": v["os"], "location_country": v["country"],
            })
            for r in rows:
                used.add(r["idaction_url"])
                tables["log_link_visit_action"].append({"idlink_va": r["idlink_va"], "idsite": site,
                                                        "idvisit": v["idvisit"], "idvisitor": v["visitor_id"],
                                                        "server_time": _time(r["server_time"]),
                                                        "idaction_url": r["idaction_url"]})
            for c in self.conversions.get(key, []):
                tables["log_conversion"].append({"idvisit": v["idvisit"], "idsite": site, "idgoal": c["idgoal"],
                                                 "server_time": _time(c["server_time"]), "revenue": c["revenue"]})
        tables[ACTION_TABLE] = [{"idaction": i, "name": names[i]} for i in sorted(used)]
        return dict(sorted(tables.items(), reverse=True))  # Matomo krsorts the tables

    def delete(self, params: dict[str, str]) -> dict[str, int]:
        counts = {"log_conversion": 0, "log_conversion_item": 0, "log_link_visit_action": 0, "log_visit": 0}
        for key in self._visits_param(params):
            if self.visits.pop(key, None) is None:
                continue
            counts["log_visit"] += 1
            counts["log_link_visit_action"] += len(self.link_actions.pop(key, []))
            counts["log_conversion"] += len(self.conversions.pop(key, []))
        return counts
