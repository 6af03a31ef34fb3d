"""Trustmary client: contacts by e-mail (find, read, delete, remove from lists) and the survey
answers that name them.

Facts it is built on (Trustmary's Integration API 1.0.0, help.trustmary.com/api, the
"Contacts / Lists / Reviews - Developers" articles, Trustmary's own WordPress plugin and
code-test client; gathered late 2026):

- Base ``https://api.trustmary.io/v1``; ``Authorization: Apikey <key>`` (the vendor's own code;
  one third-party reference says ``Bearer``); JSON only. ``GET /v1/test`` checks the key.
- A contact is keyed by its e-mail: ``GET /v1/contacts?email=&offset=&includeAll=`` answers
  ``{"contacts": [...]}`` (the Contacts article) or a bare array (the Redoc sample): both are
  accepted, for every list route. At most 1000 per request, ``offset`` in steps of 1000;
  ``includeAll=true`` also returns deleted contacts. There is no get-by-id route.
- ``POST /v1/contacts`` is an **upsert by e-mail** (``addToLists``, ``removeFromLists``,
  ``field_<NAME>`` custom fields, which the contact object returns as such, ...),
  answering ``{"contact", "action": IMPORT_CREATE|IMPORT_UPDATE, "listsUpdated": N}``. So list
  removal is only ever sent for a contact that was just found: posting an unknown e-mail would
  create the very contact we are removing.
- ``DELETE /v1/contacts`` with ``{"email"}`` answers ``{"contact"}``; deletion is soft
  (``deleted_at`` is set and ``includeAll`` still shows the contact).
- ``GET /v1/lists`` -> ``{"lists": [...]}``; ``GET /v1/surveys``, ``GET /v1/survey/{id}/responses``
  (offset paging; answers carry ``answer_values.email``/``name`` and ``contact``, a contact
  **object** or null). Per-contact filtering of answers is not documented, so answers are found
  by reading every survey's; an answer without any e-mail is returned apart, for the caller to
  match by full name (for the officer to confirm, never acted on).
- Custom fields must exist before they are written (``/v1/fields``); ``custom_fields()`` reads
  their names so a writer can check first. No route to create one is published.
- Not in the API: a contact's list memberships (lists show only a ``count``), an unsubscribe or
  consent route (``status`` is read-only), a reviews route
  (reviews, testimonial photos on Trustmary's CDN and videos are handled in the app: a manual
  task), deleting survey answers, purging a soft-deleted contact. Rate limits and the error body
  are undocumented: statuses are mapped by ``connectors.http``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from connectors.errors import AuthError, BadPayloadError, NotFoundError
from connectors.http import HttpClient, RetryPolicy

DEFAULT_BASE_URL = "https://api.trustmary.io/v1"
PAGE_SIZE = 1000  # fixed by the API


def _folded(emails: Iterable[str]) -> list[str]:
    return sorted({e.strip().casefold() for e in emails if e and e.strip()})


@dataclass
class AnswerSearch:
    matched: list[dict] = field(default_factory=list)  # by one of the e-mails or contact ids
    without_email: list[dict] = field(default_factory=list)  # neither the answer nor its contact has an e-mail


def _contact_of(answer: dict) -> dict:
    contact = answer.get("contact")
    return contact if isinstance(contact, dict) else {}


class TrustmaryClient:
    def __init__(self, base_url: str = DEFAULT_BASE_URL, api_key: str = "", *,
                 timeout: tuple[float, float] = (5.0, 30.0), retry: RetryPolicy = RetryPolicy()) -> None:
        if not api_key:
            # AuthError (missing credentials), so describe() keeps this message in the case
            raise AuthError("Trustmary needs an API key (TRUSTMARY_API_KEY)", system="trustmary")
        self.http = HttpClient("trustmary", base_url, timeout=timeout, retry=retry,
                               headers={"Authorization": f"Apikey {api_key}", "Accept": "application/json"})

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> TrustmaryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reads ------------------------------------------------------------------------------

    def check(self) -> dict:
        """``GET /v1/test``: the organisation the key belongs to."""
        return self._object(self.http.request_json("GET", "test"), "message", str)

    def _pages(self, path: str, key: str, params: dict[str, Any] | None = None) -> Iterator[dict]:
        offset = 0
        while True:
            body = self.http.request_json("GET", path, params={**(params or {}), "offset": offset})
            rows = self._rows(body, key)
            yield from (r for r in rows if isinstance(r, dict))
            if len(rows) < PAGE_SIZE:
                return
            offset += PAGE_SIZE

    @staticmethod
    def _rows(body: Any, key: str) -> list:
        """A list answer, wrapped ``{key: [...]}`` or bare ``[...]`` (both are published)."""
        if isinstance(body, list):
            return body
        if isinstance(body, dict) and isinstance(body.get(key), list):
            return body[key]
        raise BadPayloadError(f"answer is neither a list nor has a {key!r} list", system="trustmary")

    @staticmethod
    def _object(body: Any, key: str, kind: type) -> dict:
        if not isinstance(body, dict) or not isinstance(body.get(key), kind):
            raise BadPayloadError(f"answer has no {key!r} of the expected type", system="trustmary")
        return body

    def contacts(self, email: str, *, include_deleted: bool = False) -> list[dict]:
        """The contacts of one e-mail (Trustmary compares them; we keep only exact matches
        ignoring case, in case the service widened its match)."""
        params = {"email": email.strip()}
        if include_deleted:
            params["includeAll"] = "true"
        wanted = email.strip().casefold()
        return [c for c in self._pages("contacts", "contacts", params)
                if str(c.get("email") or "").strip().casefold() == wanted]

    def find_contacts(self, emails: Iterable[str], *, include_deleted: bool = False) -> list[dict]:
        out: dict[str, dict] = {}
        for email in _folded(emails):
            for c in self.contacts(email, include_deleted=include_deleted):
                out[str(c.get("id"))] = c
        return [out[k] for k in sorted(out)]

    def lists(self) -> list[dict]:
        return list(self._pages("lists", "lists"))

    def surveys(self) -> list[dict]:
        return list(self._pages("surveys", "surveys"))

    def custom_fields(self) -> set[str]:
        """Names of the custom fields defined in the account (``GET /v1/fields``)."""
        return {str(f.get("name")) for f in self._pages("fields", "fields") if f.get("name")}

    def search_responses(self, emails: Iterable[str], contact_ids: Iterable[str] = ()) -> AnswerSearch:
        """Every survey answer that names one of the e-mails or contact ids (in its values or its
        contact object), and apart every answer with no e-mail at all (read from all surveys:
        the API cannot filter answers by person)."""
        wanted, ids = set(_folded(emails)), {str(i) for i in contact_ids}
        found = AnswerSearch()
        for survey in self.surveys():
            for r in self._pages(f"survey/{survey.get('id')}/responses", "responses"):
                values = r.get("answer_values") if isinstance(r.get("answer_values"), dict) else {}
                contact = _contact_of(r)
                addresses = {str(a or "").strip().casefold() for a in (values.get("email"), contact.get("email"))} - {""}
                if addresses & wanted or (contact.get("id") is not None and str(contact.get("id")) in ids):
                    found.matched.append(r)
                elif not addresses:
                    found.without_email.append(r)
        return found

    def survey_responses(self, emails: Iterable[str], contact_ids: Iterable[str] = ()) -> list[dict]:
        """The answers that name one of the e-mails or contact ids (``search_responses``)."""
        return self.search_responses(emails, contact_ids).matched

    # -- writes -----------------------------------------------------------------------------

    def update_existing(self, email: str, *, remove_from_lists: list[str] = (),
                        fields: dict[str, str] | None = None) -> int:
        """Take an existing contact off lists and/or set its ``field_<NAME>`` custom fields;
        returns Trustmary's ``listsUpdated``. Raises NotFoundError when the e-mail has no live
        contact (the upsert would create one)."""
        if not self.contacts(email):
            raise NotFoundError("no live contact for this e-mail", system="trustmary")
        body: dict[str, Any] = {"email": email.strip(), "removeFromLists": list(remove_from_lists)}
        body.update({f"field_{name}": value for name, value in (fields or {}).items()})
        # Safe to repeat: removing a gone membership or setting a set field changes nothing.
        answer = self._object(self.http.request_json("POST", "contacts", json_body=body, idempotent=True),
                              "contact", dict)
        updated = answer.get("listsUpdated", 0)
        return updated if isinstance(updated, int) else 0

    def delete_contact(self, email: str) -> dict | None:
        """Soft-delete the e-mail's contact; None when there is none (already deleted: a
        repeated erasure is harmless)."""
        try:
            body = self.http.request_json("DELETE", "contacts", json_body={"email": email.strip()})
        except NotFoundError:
            return None
        return self._object(body, "contact", dict)["contact"]
