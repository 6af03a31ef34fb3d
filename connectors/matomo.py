"""Matomo client: the PrivacyManager's data-subject tools (find, export, delete visits).

Facts it is built on (Matomo's ``plugins/PrivacyManager/API.php``, ``plugins/API/Renderer/Json.php``,
the FAQ on secure tokens and matomo-org/matomo#20351/#21789; gathered late 2026):

- Every call is ``index.php?module=API&method=...&format=JSON``. Since Matomo 5 tokens are
  "POST only" by default: ``token_auth`` goes in the POST form body, never the URL; a token in
  the URL, a wrong or an expired one answers **HTTP 401**. Other errors come back with HTTP 200
  as ``{"result":"error","message":...}``. Arrays are PHP form fields
  (``visits[0][idsite]=1&visits[0][idvisit]=2``).
- ``PrivacyManager.findDataSubjects(idSite, segment)``: ``idSite`` an id, a list or ``all``;
  reporting-API segment syntax (``userId==...``, ``visitorId==...``, ``,`` = OR, ``;`` = AND,
  values URL-encoded inside the segment); answers visits with camelCase ``idVisit``/``idSite``,
  **at most 401** per call (``filter_limit=401`` inside). Sites without visitor log and profile
  are skipped silently.
- ``PrivacyManager.exportDataSubjects(visits)`` answers rows per log table;
  ``PrivacyManager.deleteDataSubjects(visits)`` answers deleted row counts per table (unknown
  visits count 0: a repeated delete is harmless) and invalidates the affected reports.
- **An empty answer proves nothing** (matomo-org/matomo#23032, Matomo 5.3): ``findDataSubjects``
  answers ``[]`` when the Live plugin is off and silently skips sites whose visitor log or
  profile is off; with "anonymize User ID" on, Matomo stores ``sha1(userId . salt)`` (salt
  private to the install, ``Tracker/RequestProcessor.php::anonymizeUserId``) and derives the
  visitorId from that, so a search by the e-mail finds nothing and the setting cannot be read
  through the API. So a search reports, besides the visits, what keeps it from proving absence
  (``VisitSearch.unverified``): sites ``Live.isVisitorProfileEnabled`` says are skipped, the
  Live plugin off, an address it cannot search exactly, and always "nothing found". Callers turn
  those into manual tasks, never "not found".
- **Never an empty or broad segment**: Matomo does not reject an empty segment (no condition:
  everyone's visits), ``userId==`` means "userId is empty" (every anonymous visit), and it
  URL-decodes a segment up to three times (``core/Segment.php``, ``SegmentExpression.php``:
  ``+`` becomes a space, ``%2C`` a comma). So segments are only ever ORs of ``userId==`` /
  ``visitorId==`` with values from an alphabet no decoding changes (``[a-z0-9._@-]``; hex
  visitorIds); an address outside it is not searched but reported for a search by hand.
- Matomo knows no e-mail: the person is found by ``userId``, which the tracked site sets. How
  it derives the userId from the e-mail is a deployment fact (``user_id_format``: the
  lower-cased e-mail, or its SHA-256 hex). The visits of the same browser without a userId
  are found by the ``visitorId`` of the identified visits (Matomo derives the visitorId from
  the userId by default). There is no marketing channel in Matomo: a ban is not applicable.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from connectors.errors import AuthError, BadPayloadError, BadRequestError
from connectors.http import HttpClient, RetryPolicy

FIND_LIMIT = 401  # Matomo's own cap per findDataSubjects call
USER_ID_FORMATS = ("email", "sha256")
MAX_ERASE_ROUNDS = 50  # 50 x 401 visits of one person is far beyond any real visitor
_EMAILISH = re.compile(r"\S+@\S+")
_HEX_ID = re.compile(r"\b[0-9a-fA-F]{16,}\b")
# Texts of Matomo's refusals: a bad token (HTTP 401) or a user without admin access to a site,
# which Matomo answers with HTTP 200 and an error body.
_AUTH_HINTS = ("Unable to authenticate", "You can't access this resource")
# Values that read the same after any number of URL-decodings and contain no segment syntax.
SAFE_USER_ID = re.compile(r"^[a-z0-9._@-]+$")
VISITOR_ID = re.compile(r"^[0-9a-f]{16}$")
SEGMENT_FIELDS = {"userId": SAFE_USER_ID, "visitorId": VISITOR_ID}
OR_CHUNK = 20  # conditions per segment: keeps the form short
NOTHING_FOUND = ("no visit found by the person's userId; an empty answer from Matomo does not prove there is none "
                 "(the Live plugin, a site's visitor log or profile, or 'anonymize User ID' storing a salted SHA-1 "
                 "all make it answer nothing): search by hand in Matomo's GDPR tool")
LIVE_OFF = "the Live plugin is off, so Matomo answers every search with nothing: search by hand or turn it on"


def exact_segment(name: str, values: Iterable[str]) -> str:
    """``name==v1,name==v2,...``: an OR of exact matches, never empty or broad. Raises ValueError
    for an unknown segment, no values, or a value outside the safe alphabet (a caller's bug:
    values are checked before)."""
    pattern = SEGMENT_FIELDS.get(name)
    values = list(values)
    if pattern is None or not values or not all(isinstance(v, str) and pattern.match(v) for v in values):
        raise ValueError("refusing to build an empty, broad or inexact Matomo segment")
    return ",".join(f"{name}=={v}" for v in values)


@dataclass
class VisitSearch:
    """The visits a search found (newest first), whether Matomo's 401 cap may have cut them, and
    what keeps the answer from proving absence: key ("live", "site:<id>", "address:<n>",
    "nothing_found", "coverage") -> reason, without personal data."""

    visits: list[dict] = field(default_factory=list)
    capped: bool = False
    unverified: dict[str, str] = field(default_factory=dict)


def _visit_key(v: dict) -> tuple[int, int]:
    return int(v["idSite"]), int(v["idVisit"])


class MatomoClient:
    def __init__(self, base_url: str, token_auth: str, *, user_id_format: str = "email", site_ids: str = "all",
                 timeout: tuple[float, float] = (5.0, 60.0), retry: RetryPolicy = RetryPolicy()) -> None:
        if not token_auth:
            # AuthError (missing credentials), so describe() keeps this message in the case
            raise AuthError("Matomo needs an auth token (MATOMO_TOKEN_AUTH)", system="matomo")
        if user_id_format not in USER_ID_FORMATS:
            raise ValueError(f"MATOMO_USER_ID_FORMAT must be one of {', '.join(USER_ID_FORMATS)}")
        self.token_auth = token_auth
        self.user_id_format = user_id_format
        self.site_ids = site_ids or "all"
        self.http = HttpClient("matomo", base_url, timeout=timeout, retry=retry, headers={"Accept": "application/json"})

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> MatomoClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, method: str, form: list[tuple[str, str]] | None = None) -> Any:
        """One API method; the token travels in the POST body. All three PrivacyManager calls
        are safe to repeat (reads, and a delete of deleted visits counts 0), so retried."""
        body = self.http.request_json(
            "POST", "index.php", params={"module": "API", "method": method, "format": "JSON"},
            data=[("token_auth", self.token_auth), *(form or [])], idempotent=True)
        if isinstance(body, dict) and body.get("result") == "error":
            # The message may quote the segment: e-mail-looking words are masked, and so are
            # user ids hashed from an e-mail and visitor ids (long hex strings).
            message = _EMAILISH.sub("{email}", str(body.get("message") or ""))
            message = _HEX_ID.sub("{id}", message)[:200]
            error = AuthError if any(hint in message for hint in _AUTH_HINTS) else BadRequestError
            raise error(f"Matomo answered an error: {message}", system="matomo", method="POST", path="/index.php")
        return body

    # -- finding ----------------------------------------------------------------------------

    def user_id_for(self, email: str) -> str:
        folded = email.strip().lower()
        return hashlib.sha256(folded.encode("utf-8")).hexdigest() if self.user_id_format == "sha256" else folded

    def find(self, segment: str) -> tuple[list[dict], bool]:
        """Visits matching a segment built by ``exact_segment``, and whether Matomo's 401 cap may
        have cut the answer."""
        body = self.call("PrivacyManager.findDataSubjects", [("idSite", self.site_ids), ("segment", segment)])
        if not isinstance(body, list) or not all(isinstance(v, dict) and "idVisit" in v and "idSite" in v
                                                 for v in body):
            raise BadPayloadError("findDataSubjects did not answer a list of visits", system="matomo")
        return body, len(body) >= FIND_LIMIT

    def coverage(self) -> dict[str, str]:
        """What the searched sites hide from ``findDataSubjects`` (read-only calls): the Live
        plugin off, or a site whose visitor log or profile is off. Empty when every site is
        searched."""
        try:
            if self.site_ids == "all":
                sites = self.call("SitesManager.getSitesIdWithAdminAccess")
            else:
                sites = [part.strip() for part in self.site_ids.split(",") if part.strip()]
            if not isinstance(sites, list) or not sites:
                return {"coverage": "no site with admin access to search: check the token's user in Matomo"}
            hidden = {}
            for site in sites:
                answer = self.call("Live.isVisitorProfileEnabled", [("idSite", str(site))])
                if not (isinstance(answer, dict) and answer.get("value") is True):
                    hidden[f"site:{site}"] = (f"site {site}: visitor log or visitor profile is off, so Matomo skips it "
                                              "in every search: search by hand or turn them on")
            return hidden
        except BadRequestError as exc:
            if "plugin Live is not enabled" in str(exc):
                return {"live": LIVE_OFF}
            # e.g. a Matomo before 5.3 without Live.isVisitorProfileEnabled (HTTP 400)
            return {"coverage": "Matomo could not say which sites a search covers (Live.isVisitorProfileEnabled "
                                "failed): search by hand in Matomo's GDPR tool"}

    def _find_all(self, name: str, values: list[str], found: dict, search: VisitSearch) -> None:
        for start in range(0, len(values), OR_CHUNK):
            visits, cut = self.find(exact_segment(name, values[start:start + OR_CHUNK]))
            search.capped |= cut
            found.update((_visit_key(v), v) for v in visits)

    def find_visits(self, emails: Iterable[str], visitor_ids: Iterable[str] = ()) -> VisitSearch:
        """The person's visits: those with their userId, then every visit of the same
        visitorIds (plus ``visitor_ids`` already known to be theirs); ``capped`` says a search hit
        the 401 limit (an export then says so; an erasure deletes and searches again), and
        ``unverified`` what the answer cannot prove (see the module docstring)."""
        search = VisitSearch()
        user_ids = []
        for n, email in enumerate(sorted({e.strip().lower() for e in emails if e and e.strip()}), start=1):
            user_id = self.user_id_for(email)
            if SAFE_USER_ID.match(user_id):
                user_ids.append(user_id)
            else:
                search.unverified[f"address:{n}"] = (
                    f"address {n} has characters Matomo's segment decoding would change (only a-z 0-9 . _ @ - "
                    "are searched exactly): search it by hand in Matomo's GDPR tool")
        found: dict[tuple[int, int], dict] = {}
        if user_ids:
            self._find_all("userId", user_ids, found, search)
        known = {str(v.get("visitorId")) for v in found.values() if v.get("visitorId")} | set(visitor_ids)
        self._find_all("visitorId", sorted(v for v in known if VISITOR_ID.match(v)), found, search)
        search.visits = sorted(found.values(), key=lambda v: (str(v.get("lastActionDateTime")), int(v["idVisit"])),
                               reverse=True)
        if not user_ids and not known:
            return search  # nothing to search by: nothing was asked of Matomo
        search.unverified.update(self.coverage())
        if not search.visits and user_ids:
            search.unverified["nothing_found"] = NOTHING_FOUND
        return search

    # -- export and delete ------------------------------------------------------------------

    @staticmethod
    def _visits_form(visits: list[dict]) -> list[tuple[str, str]]:
        form = []
        for i, v in enumerate(visits):  # export/delete take lower-case keys, find answers camelCase
            form += [(f"visits[{i}][idsite]", str(v["idSite"])), (f"visits[{i}][idvisit]", str(v["idVisit"]))]
        return form

    def export_visits(self, visits: list[dict]) -> dict[str, list]:
        if not visits:
            return {}
        body = self.call("PrivacyManager.exportDataSubjects", self._visits_form(visits))
        if not isinstance(body, dict):
            raise BadPayloadError("exportDataSubjects did not answer an object of tables", system="matomo")
        return {k: v for k, v in body.items() if isinstance(v, list)}

    def delete_visits(self, visits: list[dict]) -> dict[str, int]:
        if not visits:
            return {}
        body = self.call("PrivacyManager.deleteDataSubjects", self._visits_form(visits))
        if not isinstance(body, dict):
            raise BadPayloadError("deleteDataSubjects did not answer row counts", system="matomo")
        return {k: int(v) for k, v in body.items() if isinstance(v, int)}

    def erase(self, emails: Iterable[str]) -> dict[str, int]:
        """Delete every visit of the person, searching again after each delete (a search shows
        at most 401 visits). Returns the summed row counts per table."""
        emails = list(emails)
        totals: dict[str, int] = {}
        # Remembered across rounds: once a round deleted the identified visits, the rest of a
        # visitor's anonymous visits are found only by the visitorIds seen before.
        seen_visitors: set[str] = set()
        for _ in range(MAX_ERASE_ROUNDS):
            visits = self.find_visits(emails, seen_visitors).visits
            if not visits:
                return totals
            seen_visitors |= {str(v["visitorId"]) for v in visits if v.get("visitorId")}
            for table, n in self.delete_visits(visits).items():
                totals[table] = totals.get(table, 0) + n
        raise BadRequestError(f"visits still found after {MAX_ERASE_ROUNDS} delete rounds", system="matomo")
