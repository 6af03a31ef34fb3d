"""Pipedrive client: API v2 for persons, organizations, deals and activities; v1 (through
pipedrive-python-lib) for notes, mail messages, merge and the v1 field lists.

Facts this client is built on (Pipedrive's docs and changelog, 2025-26):
- v2 lists page with an opaque ``cursor`` (``additional_data.next_cursor``; on the last page it
  is null or ``additional_data`` is missing altogether), ``limit`` ≤ 500, ``updated_since`` is
  inclusive and wants ``YYYY-MM-DDTHH:MM:SSZ`` (fractional seconds are a 400).
- Deletions are invisible to ``updated_since`` polling, except for deals when
  ``status=...,deleted`` is asked for; everything else needs an id reconciliation walk.
- ``x-ratelimit-reset`` is *relative* seconds. A 429 with ``x-ratelimit-remaining`` > 0 means the
  company's daily token budget is spent: it resets at the server's midnight, so we stop instead
  of retrying (repeated 429s earn a Cloudflare 403).
- ``marketing_status`` needs the Campaigns add-on and an illegal change is silently ignored:
  :meth:`PipedriveClient.set_marketing_status` reads it back.
- pipedrive-python-lib speaks only v1 and calls ``requests.request`` with no session, timeout or
  retry; :class:`_V1Client` overrides its ``_request`` so every call goes through our HTTP layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterator

import requests
from pipedrive.client import Client as _PipedriveLibClient

from connectors.errors import BadPayloadError, SettingMissing
from connectors.http import HttpClient, RateLimitHeaders, RetryPolicy, parse_retry_after

SYSTEM = "pipedrive"
MAX_LIMIT = 500
V2_ENTITIES = ("persons", "organizations", "deals", "activities")
V1_ENTITIES = ("notes",)
ENTITIES = V2_ENTITIES + V1_ENTITIES
FIELD_ENDPOINTS = {
    "persons": "personFields",
    "organizations": "organizationFields",
    "deals": "dealFields",
    "activities": "activityFields",
}
MARKETING_STATUSES = ("no_consent", "unsubscribed", "subscribed", "archived")


@dataclass(frozen=True)
class Endpoint:
    """How one entity is listed: the dlt-style table of settings."""

    entity: str
    version: int
    path: str
    params: dict[str, str] = field(default_factory=dict)


ENDPOINTS: dict[str, Endpoint] = {
    "persons": Endpoint("persons", 2, "api/v2/persons", {"include_fields": "marketing_status"}),
    "organizations": Endpoint("organizations", 2, "api/v2/organizations"),
    # Deleted deals stay listable for 30 days with status=deleted: the one delete feed there is.
    "deals": Endpoint("deals", 2, "api/v2/deals", {"status": "open,won,lost,deleted"}),
    # Attendees (email, name) come only when asked for; the erasure needs to see them.
    "activities": Endpoint("activities", 2, "api/v2/activities", {"include_fields": "attendees"}),
    "notes": Endpoint("notes", 1, "notes"),
}


def format_v2_time(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> datetime | None:
    """Parse v2 RFC3339 (``2024-01-01T00:00:00Z``, optional fraction) or v1
    ``YYYY-MM-DD HH:MM:SS`` (UTC). Returns None for anything else."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace(" ", "T", 1)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


@dataclass
class Page:
    records: list[dict]
    raw_count: int


class _V1Client(_PipedriveLibClient):
    """pipedrive-python-lib with its transport replaced by our HTTP layer."""

    def __init__(self, base_url: str, http: HttpClient) -> None:
        super().__init__(domain=f"{base_url.rstrip('/')}/api/")
        self._http = http

    def _request(self, method, url, headers=None, params=None, **kwargs):  # noqa: D401
        return self._http.request_json(
            method.upper(), url, params=params, headers=headers,
            json_body=kwargs.get("json"), data=kwargs.get("data"),
        )


def _classify_429(response: requests.Response) -> float | None:
    """Burst 429 -> seconds to wait; daily-budget 429 -> None (do not retry)."""
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if retry_after is not None:
        return retry_after
    try:
        remaining = float(response.headers.get("x-ratelimit-remaining", "0"))
        reset = float(response.headers.get("x-ratelimit-reset", "2"))
    except ValueError:
        return 2.0
    if remaining < 1:
        return max(reset, 0.1)
    return None  # window not used up, yet refused: the daily budget is exhausted


class PipedriveClient:
    """One client object for one Pipedrive company (one API token)."""

    def __init__(
        self,
        base_url: str,
        api_token: str,
        *,
        page_limit: int = MAX_LIMIT,
        timeout: tuple[float, float] = (5.0, 30.0),
        retry: RetryPolicy = RetryPolicy(),
        include_marketing_status: bool = True,
    ) -> None:
        if not base_url:
            raise SettingMissing("Pipedrive base URL is empty (set PIPEDRIVE_BASE_URL)")
        if not api_token:
            raise SettingMissing("Pipedrive API token is empty (set PIPEDRIVE_API_TOKEN)")
        if not 1 <= page_limit <= MAX_LIMIT:
            raise ValueError(f"page_limit must be 1..{MAX_LIMIT}")
        self.page_limit = page_limit
        self.include_marketing_status = include_marketing_status
        self.http = HttpClient(
            SYSTEM,
            base_url,
            headers={"x-api-token": api_token, "Accept": "application/json"},
            timeout=timeout,
            retry=retry,
            rate_limit_headers=RateLimitHeaders("x-ratelimit-remaining", "x-ratelimit-reset"),
            classify_429=_classify_429,
        )
        self.v1 = _V1Client(base_url, self.http)

    def close(self) -> None:
        self.http.close()

    # -- reading ----------------------------------------------------------------------------

    def iter_pages(self, entity: str, updated_since: datetime | None = None) -> Iterator[Page]:
        """Every record of ``entity`` changed at or after ``updated_since`` (all if None), in
        ascending ``update_time`` order, a page at a time."""
        endpoint = ENDPOINTS[entity]
        if endpoint.version == 2:
            yield from self._iter_v2(endpoint, updated_since)
        else:
            yield from self._iter_v1_by_time(endpoint, updated_since)

    def _v2_params(self, endpoint: Endpoint) -> dict[str, str]:
        params = dict(endpoint.params)
        if endpoint.entity == "persons" and not self.include_marketing_status:
            params.pop("include_fields", None)
        return params

    def _iter_v2(self, endpoint: Endpoint, updated_since: datetime | None) -> Iterator[Page]:
        params = self._v2_params(endpoint)
        params.update(limit=str(self.page_limit), sort_by="update_time", sort_direction="asc")
        if updated_since is not None:
            params["updated_since"] = format_v2_time(updated_since)
        yield from self._walk_v2(endpoint.path, params)

    def _walk_v2(self, path: str, params: dict[str, str]) -> Iterator[Page]:
        cursor: str | None = None
        while True:
            query = dict(params, cursor=cursor) if cursor else params
            body = self.http.request_json("GET", path, params=query)
            records = _envelope_list(body, path)
            yield Page(records, len(records))
            additional = body.get("additional_data") or {}
            cursor = additional.get("next_cursor") if isinstance(additional, dict) else None
            if not cursor:
                return

    def _iter_v1_by_time(self, endpoint: Endpoint, updated_since: datetime | None) -> Iterator[Page]:
        """v1 lists page by offset, and offsets shift when a record changes mid-walk (it moves
        to the end of an update_time sort), which would skip a record. So the walk is keyed on
        time instead: each page asks again from the last update_time seen (inclusive, so the
        boundary records come back and are deduplicated downstream); only when a whole page
        shares one timestamp does it step by offset within that second.

        Paging by offset within one fixed ``updated_since`` was considered (issue 18) and not
        taken: it skips a record whenever one already read changes mid-walk, and detecting
        that needs an overlap re-read per page anyway. Re-anchoring each page is keyset
        paging: the server seeks its (update_time, id) index instead of counting an offset,
        and the repeated boundary records cost about one page in 500 (201 requests for 100k
        notes)."""
        since = updated_since
        start = 0
        while True:
            params: dict[str, Any] = {"limit": self.page_limit, "start": start, "sort": "update_time ASC, id ASC"}
            if since is not None:
                params["updated_since"] = format_v2_time(since)
            body = self.v1.notes.get_all_notes(params=params)
            records = _envelope_list(body, endpoint.path)
            yield Page(records, len(records))
            pagination = ((body.get("additional_data") or {}).get("pagination") or {})
            if not pagination.get("more_items_in_collection") or not records:
                return
            # The newest time on the page, not the last record's: a page may repeat records.
            # Records without a readable time are stored (and reported) by the sync; paging
            # then falls back to the offset.
            times = [parse_time(r.get("update_time")) for r in records if isinstance(r, dict)]
            last = max((t for t in times if t is not None), default=None)
            if last is None or (since is not None and last <= since):
                start += len({r.get("id") for r in records if isinstance(r, dict)})
            else:
                since, start = last, 0

    def iter_ids(self, entity: str) -> Iterator[list[int]]:
        """All live ids of ``entity``, a page at a time: the cheapest walk there is (one list
        request per 500 ids) for reconciling deletions, which polling cannot see."""
        endpoint = ENDPOINTS[entity]
        if endpoint.version == 2:
            params = self._v2_params(endpoint)
            params.pop("include_fields", None)
            if entity == "deals":
                params["status"] = "open,won,lost"
            params.update(limit=str(self.page_limit), sort_by="id", sort_direction="asc")
            for page in self._walk_v2(endpoint.path, params):
                yield [r["id"] for r in page.records if isinstance(r, dict) and isinstance(r.get("id"), int)]
        else:
            start = 0
            while True:
                body = self.v1.notes.get_all_notes(params={"limit": self.page_limit, "start": start, "sort": "id ASC"})
                records = _envelope_list(body, endpoint.path)
                yield [r["id"] for r in records if isinstance(r, dict) and isinstance(r.get("id"), int)]
                pagination = ((body.get("additional_data") or {}).get("pagination") or {})
                if not pagination.get("more_items_in_collection") or not records:
                    return
                start = pagination.get("next_start", start + len(records))

    def fields(self, entity: str) -> list[dict]:
        """Field definitions (v2 shape: field_code, field_name, field_type, options)."""
        path = f"api/v2/{FIELD_ENDPOINTS[entity]}"
        out: list[dict] = []
        for page in self._walk_v2(path, {"limit": str(MAX_LIMIT)}):
            out.extend(page.records)
        return out

    def get(self, entity: str, record_id: int) -> dict:
        if ENDPOINTS[entity].version == 1:
            return _envelope_obj(self.v1.notes.get_note(record_id), entity)
        params = self._v2_params(ENDPOINTS[entity])
        params.pop("status", None)
        return _envelope_obj(self.http.request_json("GET", f"api/v2/{entity}/{record_id}", params=params), entity)

    def search_persons(self, term: str, *, exact_match: bool = False, fields: str = "email,phone,name") -> list[dict]:
        """Person search (v2). The term travels in the query string, which our HTTP layer
        never logs."""
        params: dict[str, str] = {"term": term, "fields": fields, "limit": str(MAX_LIMIT)}
        if exact_match:
            params["exact_match"] = "true"
        items: list[dict] = []
        for page in self._walk_v2("api/v2/persons/search", params):
            items.extend(page.records)
        return items

    def linked_to_person(self, entity: str, person_id: int) -> list[dict]:
        """The person's deals or activities (v2 list filtered by ``person_id``), e.g. to erase
        or export what hangs off a person."""
        if entity not in ("deals", "activities"):
            raise ValueError("linked_to_person lists deals or activities")
        params = dict(self._v2_params(ENDPOINTS[entity]), person_id=str(person_id), limit=str(self.page_limit))
        if entity == "deals":
            params["status"] = "open,won,lost"
        return [r for page in self._walk_v2(ENDPOINTS[entity].path, params) for r in page.records]

    def notes_for_person(self, person_id: int) -> list[dict]:
        return self._v1_list(lambda p: self.v1.notes.get_all_notes(params=p), {"person_id": person_id})

    def mail_messages(self, person_id: int) -> list[dict]:
        return self._v1_list(
            lambda p: self.v1._get(f"{self.v1.BASE_URL}persons/{person_id}/mailMessages", params=p), {}
        )

    def person_flow(self, person_id: int) -> list[dict]:
        """The person's change history (v1 ``/persons/{id}/flow``): field changes, notes, activities."""
        return self._v1_list(
            lambda p: self.v1._get(f"{self.v1.BASE_URL}persons/{person_id}/flow", params=p), {}
        )

    def _v1_list(self, fetch, params: dict) -> list[dict]:
        out: list[dict] = []
        start = 0
        while True:
            body = fetch(dict(params, start=start, limit=self.page_limit))
            records = _envelope_list(body, "v1 list")
            out.extend(records)
            pagination = ((body.get("additional_data") or {}).get("pagination") or {})
            if not pagination.get("more_items_in_collection") or not records:
                return out
            start = pagination.get("next_start", start + len(records))

    # -- writing (for the erasure and marketing-ban jobs) --------------------------------

    def create(self, entity: str, body: dict) -> dict:
        if entity == "notes":
            return _envelope_obj(self.v1.notes.create_note(body), entity)
        return _envelope_obj(self.http.request_json("POST", f"api/v2/{entity}", json_body=body), entity)

    def update(self, entity: str, record_id: int, changes: dict) -> dict:
        """PATCH (v2) or PUT (v1 notes). Custom fields go in ``custom_fields``; null clears."""
        if entity == "notes":
            return _envelope_obj(self.v1.notes.update_note(record_id, changes), entity)
        return _envelope_obj(
            self.http.request_json("PATCH", f"api/v2/{entity}/{record_id}", json_body=changes), entity
        )

    def delete(self, entity: str, record_id: int) -> None:
        """Soft delete (Pipedrive purges after 30 days; notes are deleted at once)."""
        if entity == "notes":
            self.v1.notes.delete_note(record_id)
        else:
            self.http.request_json("DELETE", f"api/v2/{entity}/{record_id}")

    def set_marketing_status(self, person_id: int, status: str) -> str | None:
        """Set and read back: Pipedrive ignores a forbidden change silently. Returns the status
        the person actually has afterwards."""
        if status not in MARKETING_STATUSES:
            raise ValueError(f"unknown marketing status {status!r}")
        self.update("persons", person_id, {"marketing_status": status})
        return self.get("persons", person_id).get("marketing_status")

    def merge_persons(self, person_id: int, merge_with_id: int) -> dict:
        """v1 merge: ``person_id`` disappears into ``merge_with_id``."""
        body = self.http.request_json(
            "PUT", f"{self.v1.BASE_URL}persons/{person_id}/merge", json_body={"merge_with_id": merge_with_id}
        )
        return _envelope_obj(body, "persons")


def _envelope_list(body: Any, what: str) -> list[dict]:
    if not isinstance(body, dict) or body.get("success") is not True:
        raise BadPayloadError("response is not a success envelope", system=SYSTEM, path=what)
    data = body.get("data")
    if data is None:
        return []
    if isinstance(data, dict) and isinstance(data.get("items"), list):  # search results
        return data["items"]
    if not isinstance(data, list):
        raise BadPayloadError("envelope data is not a list", system=SYSTEM, path=what)
    return data


def _envelope_obj(body: Any, what: str) -> dict:
    if not isinstance(body, dict) or body.get("success") is not True or not isinstance(body.get("data"), dict):
        raise BadPayloadError("response is not a success envelope with an object", system=SYSTEM, path=what)
    return body["data"]
