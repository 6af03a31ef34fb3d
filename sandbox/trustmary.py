"""Imitation of Trustmary's Integration API v1 (facts: see the docstring of connectors/trustmary.py).

What it does like the real service (help.trustmary.com/api, the "Contacts / Lists - Developers"
articles, Trustmary's own repositories trustmary/wordpress and trustmary/trustmary-codetest):
``Authorization: Apikey <key>`` (``Bearer`` accepted too, as one third-party reference
documents), JSON only, ``GET /v1/test``, contacts keyed by e-mail
(``GET /v1/contacts?email=&offset=&includeAll=``, at most 1000 per request, ``offset`` in steps
of 1000), upsert by ``POST /v1/contacts`` with ``addToLists`` / ``removeFromLists`` and
``field_<NAME>`` custom fields, answering ``{"contact", "action": IMPORT_CREATE|IMPORT_UPDATE,
"listsUpdated"}``, ``DELETE /v1/contacts`` with ``{"email"}`` as a soft delete (``deleted_at``
set; ``includeAll=true`` still returns the contact), ``GET /v1/lists``, ``GET /v1/surveys`` and
``GET /v1/survey/{id}/responses``. There is no unsubscribe route and no reviews route.

- The contact list is published in two shapes: wrapped ``{"contacts": [...]}`` (the Contacts
  article) and a bare array (the Redoc sample). ``contacts_shape`` ("wrapped", "bare") picks one,
  so the connector is held to both.
- A survey answer's ``contact`` is the contact **object** (survey-answer webhook article), or
  null when the answer came without a known contact.
- Custom fields must exist before they are written (help.trustmary.com/api, ``/v1/fields``): an
  upsert with a ``field_<NAME>`` that is not defined is refused (422). ``GET /v1/fields`` lists
  them. The account starts with the ``marketing_ban`` field the deployment guide asks for.

Our guesses, where the vendor documents nothing (the connector relies on none of them beyond the
status codes): errors are plain ``{"message": ...}`` bodies with 401/404/422; e-mail lookups
ignore case; ``{"surveys": [...]}``, ``{"responses": [...]}`` and ``{"fields": [{"id", "name",
"label", "type"}]}`` envelopes; each response shaped like the survey-answer webhook payload; no
route creates a custom field (done in the app).
"""

from __future__ import annotations

import random
import threading
from datetime import datetime, timezone
from typing import Any

from .base import ApiError, Imitation, Request, Response, json_response
from .trustmary_world import short_id
from .world import World

PAGE = 1000
DEFAULT_API_KEY = "sandbox-trustmary-key"


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _offset(req: Request) -> int:
    raw = req.query.get("offset") or "0"
    if not raw.isdigit():
        raise ApiError(422, "offset must be a non-negative integer")
    return int(raw)


class TrustmaryImitation(Imitation):
    name = "trustmary"

    def __init__(self, world: World, api_key: str = DEFAULT_API_KEY) -> None:
        super().__init__()
        self.api_key = api_key
        self.contacts_shape = "wrapped"  # or "bare": both are published (module docstring)
        self.custom_fields: dict[str, dict] = {"marketing_ban": {"id": "fld_marketing_ban", "name": "marketing_ban",
                                                                 "label": "Marketing ban", "type": "text"}}
        self.organization_id = short_id(random.Random(f"trustmary-org:{world.seed}"))
        self._rng = random.Random(f"trustmary-ids:{world.seed}")
        self._lock = threading.RLock()
        tw = world.derive("trustmary")
        self.lists: dict[str, dict] = {lid: {"id": lid, "name": name, "type": "contact", "source": "list",
                                             "created_at": created, "updated_at": created, "deleted_at": None}
                                       for lid, name, created in tw.lists}
        self.contacts: dict[str, dict] = {}
        for c in tw.contacts:
            self.contacts[c.id] = {"id": c.id, "email": c.email, "eid": c.eid, "name": c.name, "phone": c.phone,
                                   "company": c.company, "type": "customer", "status": c.status,
                                   "created_at": c.created_at, "updated_at": c.updated_at, "deleted_at": None,
                                   "last_action": "IMPORT_CREATE", "lists": set(c.lists), "fields": {}}
        self.surveys: dict[str, dict] = {sid: {"id": sid, "name": name, "type": kind, "created_at": created}
                                         for sid, name, kind, created in tw.surveys}
        self.responses: list[dict] = [r._asdict() for r in tw.responses]
        for path, method, handler in (
            ("/v1/test", "GET", self.test), ("/v1/test", "POST", self.test),
            ("/v1/contacts", "GET", self.list_contacts), ("/v1/contacts", "POST", self.upsert_contact),
            ("/v1/contacts", "DELETE", self.delete_contact), ("/v1/lists", "GET", self.list_lists),
            ("/v1/fields", "GET", self.list_fields),
            ("/v1/surveys", "GET", self.list_surveys), ("/v1/survey/{survey_id}/responses", "GET", self.responses_of),
        ):
            self.router.add(method, path, handler)

    # -- hooks ------------------------------------------------------------------------------

    def env(self, url: str) -> dict[str, str]:
        return {"TRUSTMARY_BASE_URL": f"{url}/v1", "TRUSTMARY_API_KEY": self.api_key}

    def authenticate(self, req: Request) -> Response | None:
        scheme, _, key = (req.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() not in ("apikey", "bearer") or key.strip() != self.api_key:
            return self.error_response(req, 401, "Unauthorized")
        return None

    def error_response(self, req: Request, status: int, message: str, code: str | None = None) -> Response:
        return json_response(status, {"message": message})

    # -- ground truth helpers for tests -----------------------------------------------------

    def contacts_by_email(self, email: str, include_deleted: bool = False) -> list[dict]:
        with self._lock:
            return [dict(c, lists=sorted(c["lists"])) for c in self.contacts.values()
                    if c["email"].strip().lower() == email.strip().lower()
                    and (include_deleted or c["deleted_at"] is None)]

    # -- rendering --------------------------------------------------------------------------

    def _contact_json(self, c: dict) -> dict[str, Any]:
        out = {k: c[k] for k in ("id", "email", "eid", "name", "phone", "company", "type", "status", "last_action")}
        out.update(c["fields"])  # custom fields travel as field_<NAME> keys of the contact
        # List memberships are not part of the documented contact object; only writes change them.
        out.update(created_at=iso(c["created_at"]), updated_at=iso(c["updated_at"]), deleted_at=iso(c["deleted_at"]))
        return out

    # -- routes -----------------------------------------------------------------------------

    def test(self, req: Request) -> Response:
        return json_response(200, {"message": "Your API key is working", "organization_id": self.organization_id,
                                   "organization_name": "Sandbox Oy", "api_key_name": "contact-register"})

    def list_contacts(self, req: Request) -> Response:
        offset = _offset(req)
        email = (req.query.get("email") or "").strip().lower()
        include_all = (req.query.get("includeAll") or "").lower() == "true"
        with self._lock:
            rows = [c for c in self.contacts.values()
                    if (include_all or c["deleted_at"] is None) and (not email or c["email"].strip().lower() == email)]
            page = [self._contact_json(c) for c in rows[offset:offset + PAGE]]
        return json_response(200, page if self.contacts_shape == "bare" else {"contacts": page})

    def list_fields(self, req: Request) -> Response:
        return json_response(200, {"fields": list(self.custom_fields.values())})

    def _find_live(self, email: str) -> dict | None:
        """The contact an upsert or delete acts on: the e-mail's contact, preferring a live one."""
        matches = [c for c in self.contacts.values() if c["email"].strip().lower() == email]
        return next((c for c in matches if c["deleted_at"] is None), matches[0] if matches else None)

    def upsert_contact(self, req: Request) -> Response:
        body = req.json()
        email = body.get("email") if isinstance(body, dict) else None
        if not isinstance(email, str) or "@" not in email or len(email) > 254:
            raise ApiError(422, "email is required and must be a valid email address")
        add, remove = body.get("addToLists") or [], body.get("removeFromLists") or []
        if not isinstance(add, list) or not isinstance(remove, list):
            raise ApiError(422, "addToLists and removeFromLists must be arrays of list ids")
        # A list id or a [list id, segment id] tuple; a segment only triggers automations.
        add_ids = [x[0] if isinstance(x, list) and x else x for x in add]
        unknown = [x for x in add_ids + remove if not isinstance(x, str) or x not in self.lists]
        if unknown:
            raise ApiError(422, "unknown list id")
        undefined = sorted(k[len("field_"):] for k in body if k.startswith("field_")
                           and k[len("field_"):] not in self.custom_fields)
        if undefined:
            raise ApiError(422, f"unknown custom field: {', '.join(undefined)}")
        now = datetime.now(timezone.utc).timestamp()
        with self._lock:
            contact = self._find_live(email.strip().lower())
            if contact is None:
                cid = short_id(self._rng)
                contact = {"id": cid, "email": email.strip(), "eid": "", "name": "", "phone": "", "company": "",
                           "type": "customer", "status": "active", "created_at": now, "deleted_at": None,
                           "lists": set(), "fields": {}}
                self.contacts[cid] = contact
                action = "IMPORT_CREATE"
            else:
                action = "IMPORT_UPDATE"
                contact["deleted_at"] = None  # an upsert brings a deleted contact back
            for key in ("name", "eid", "phone", "company", "type"):
                if isinstance(body.get(key), str):
                    contact[key] = body[key]
            contact["fields"].update({k: v for k, v in body.items()
                                      if k.startswith("field_") and isinstance(v, (str, int, float))})
            before = set(contact["lists"])
            contact["lists"] = (before | set(add_ids)) - set(remove)
            contact.update(updated_at=now, last_action=action)
            changed = len(before ^ contact["lists"])
            return json_response(200, {"contact": self._contact_json(contact), "action": action,
                                       "listsUpdated": changed})

    def delete_contact(self, req: Request) -> Response:
        body = req.json()
        email = body.get("email") if isinstance(body, dict) else None
        if not isinstance(email, str) or not email.strip():
            raise ApiError(422, "email is required")
        with self._lock:
            contact = self._find_live(email.strip().lower())
            if contact is None or contact["deleted_at"] is not None:
                raise ApiError(404, "Contact not found")
            now = datetime.now(timezone.utc).timestamp()
            contact.update(deleted_at=now, updated_at=now, last_action="DELETE")
            return json_response(200, {"contact": self._contact_json(contact)})

    def list_lists(self, req: Request) -> Response:
        offset = _offset(req)
        with self._lock:
            rows = []
            for lst in list(self.lists.values())[offset:offset + PAGE]:
                count = sum(1 for c in self.contacts.values() if c["deleted_at"] is None and lst["id"] in c["lists"])
                rows.append(dict(lst, count=count, created_at=iso(lst["created_at"]),
                                 updated_at=iso(lst["updated_at"]), deleted_at=iso(lst["deleted_at"])))
        return json_response(200, {"lists": rows})

    def list_surveys(self, req: Request) -> Response:
        offset = _offset(req)
        kind = req.query.get("type")
        rows = [dict(s, created_at=iso(s["created_at"])) for s in self.surveys.values()
                if not kind or s["type"] == kind]
        return json_response(200, {"surveys": rows[offset:offset + PAGE]})

    def responses_of(self, req: Request, survey_id: str) -> Response:
        survey = self.surveys.get(survey_id)
        if survey is None:
            raise ApiError(404, "Survey not found")
        offset = _offset(req)
        with self._lock:
            rows = [r for r in self.responses if r["survey_id"] == survey_id][offset:offset + PAGE]
        return json_response(200, {"responses": [{
            "survey_id": survey_id, "survey_name": survey["name"], "answer_id": r["answer_id"],
            "answer_values": {"nps": r["nps"], "comment": r["comment"], "name": r["name"], "email": r["email"],
                              "organization": r["organization"], "imageFilename": r["image_filename"],
                              "publicConsent": "true" if r["public_consent"] else "",
                              "noPublicConsent": "" if r["public_consent"] else "true"},
            "created_at": iso(r["created_at"]), "organization_id": self.organization_id,
            "contact": self._contact_json(self.contacts[r["contact_id"]]) if r["contact_id"] in self.contacts else None,
        } for r in rows]})
