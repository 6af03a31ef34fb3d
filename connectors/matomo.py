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
from typing import Any
from urllib.parse import quote

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
        """Visits matching a segment, and whether Matomo's 401 cap may have cut the answer."""
        body = self.call("PrivacyManager.findDataSubjects", [("idSite", self.site_ids), ("segment", segment)])
        if not isinstance(body, list) or not all(isinstance(v, dict) and "idVisit" in v and "idSite" in v
                                                 for v in body):
            raise BadPayloadError("findDataSubjects did not answer a list of visits", system="matomo")
        return body, len(body) >= FIND_LIMIT

    def find_visits(self, emails: Iterable[str], visitor_ids: Iterable[str] = ()) -> tuple[list[dict], bool]:
        """The person's visits: those with their userId, then every visit of the same
        visitorIds (plus ``visitor_ids`` already known to be theirs). Returns (visits newest
        first, capped) where ``capped`` says a search hit the 401 limit (an export then says so;
        an erasure deletes and searches again)."""
        found: dict[tuple[int, int], dict] = {}
        capped = False
        for email in sorted({e.strip().lower() for e in emails if e and e.strip()}):
            visits, cut = self.find(f"userId=={quote(self.user_id_for(email), safe='')}")
            capped |= cut
            found.update((_visit_key(v), v) for v in visits)
        visitor_ids = sorted({str(v.get("visitorId")) for v in found.values() if v.get("visitorId")}
                             | set(visitor_ids))
        for start in range(0, len(visitor_ids), 20):  # keep the segment (and the URL-sized form) short
            segment = ",".join(f"visitorId=={quote(v, safe='')}" for v in visitor_ids[start:start + 20])
            visits, cut = self.find(segment)
            capped |= cut
            found.update((_visit_key(v), v) for v in visits)
        ordered = sorted(found.values(), key=lambda v: (str(v.get("lastActionDateTime")), int(v["idVisit"])),
                         reverse=True)
        return ordered, capped

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
            visits, _capped = self.find_visits(emails, seen_visitors)
            if not visits:
                return totals
            seen_visitors |= {str(v["visitorId"]) for v in visits if v.get("visitorId")}
            for table, n in self.delete_visits(visits).items():
                totals[table] = totals.get(table, 0) + n
        raise BadRequestError(f"visits still found after {MAX_ERASE_ROUNDS} delete rounds", system="matomo")
