"""Imitation of Matomo's Reporting API, PrivacyManager methods (facts: see the docstring of
connectors/matomo.py).

Like the real ``index.php?module=API``: parameters from the query string and the POST form
alike; ``token_auth`` counts only in the POST body (tokens are "POST only" by default since
Matomo 5): missing, wrong, or sent in the URL answers HTTP 401 with Matomo's message; other
errors answer **HTTP 200** with ``{"result":"error","message":...}``; array parameters are PHP
form fields (``visits[0][idsite]=1&visits[0][idvisit]=2``).

- ``PrivacyManager.findDataSubjects(idSite, segment)``: ``idSite`` an id, a comma list or
  ``all``; ``segment`` with ``==`` conditions on ``userId`` / ``visitorId`` (values URL-encoded
  inside the segment, as Matomo requires), ``,`` = OR binding tighter than ``;`` = AND; newest
  visit first, at most 401 visits (``filter_limit=401`` inside Matomo); only the documented
  columns, with camelCase ``idVisit``/``idSite``.
- ``PrivacyManager.exportDataSubjects(visits)``: rows per log table, tables in reverse key order,
  values formatted for people (site name, "New"/"Returning", hex visitor id), action names in
  ``log_action_<table>_<column>`` lookups.
- ``PrivacyManager.deleteDataSubjects(visits)``: deleted row counts per table; unknown visits
  count 0, not an error.
"""

from __future__ import annotations

import re
import threading
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, unquote

from .base import ApiError, Imitation, Request, Response, json_response
from .matomo_world import SITES
from .world import World

DEFAULT_TOKEN = "sandbox-matomo-token-auth-0123456789abcdef"
FIND_LIMIT = 401
AUTH_MESSAGE = ("Unable to authenticate with the provided token. It is either invalid, expired or is required to be "
                "sent as a POST parameter.")
SEGMENT_FIELDS = {"userId": "user_id", "visitorId": "visitor_id"}
VISIT_PARAM = re.compile(r"^visits\[(\d+)\]\[(\w+)\]$")
ACTION_TABLE = "log_action_log_link_visit_action_idaction_url"


def _time(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


class MatomoImitation(Imitation):
    name = "matomo"

    def __init__(self, world: World, token: str = DEFAULT_TOKEN) -> None:
        super().__init__()
        self.token = token
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
        if posted.get("token_auth") != self.token:  # a token in the URL does not count
            return self.error_response(req, 401, AUTH_MESSAGE)
        return None

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
                   "PrivacyManager.deleteDataSubjects": self.delete}.get(method)
        if handler is None:
            module, _, name = method.partition(".")
            raise ApiError(200, f"The method '{name}' does not exist or is not available in the module '{module}'.")
        with self._lock:
            return json_response(200, handler(params))

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

    def _segment(self, text: str) -> list[list[tuple[str, str]]]:
        """AND of ORs of (store key, value)."""
        if not text:
            raise ApiError(200, "A segment is required to find data subjects")
        out = []
        for block in text.split(";"):
            ors = []
            for cond in block.split(","):
                name, op, value = cond.partition("==")
                if not op or name not in SEGMENT_FIELDS:
                    raise ApiError(200, f"The segment condition '{name}' is not supported.")
                ors.append((SEGMENT_FIELDS[name], unquote(value)))
            out.append(ors)
        return out

    def find(self, params: dict[str, str]) -> list[dict]:
        sites = self._sites(params.get("idSite") or "")
        segment = self._segment(params.get("segment") or "")
        hits = [v for v in self.visits.values()
                if v["idsite"] in sites and all(any(v[k] == val for k, val in ors) for ors in segment)]
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
