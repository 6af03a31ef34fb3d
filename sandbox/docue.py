"""Imitation of Docue's v2 API, read-only (facts: see the docstring of connectors/docue.py).

Published (apidocs-docue.vercel.app, the v2 draft "work-in-progress and may have errors and
omissions"; apidocs.docue.com for the legacy API): base ``/public/v2``, ``Authorization: Bearer
<API_TOKEN>``, ``include=`` loading relations or their counts ("If relation data is missing a
response, just try adding the corresponding include"), ``page`` + ``per_page`` paging, dates
``Y-m-d`` or ISO 8601, ``GET /documents/{id}/download`` returning the file. No write, delete or
anonymise route is published: other methods answer 405 here.

**Our guesses** (Docue publishes none of them; ``contact-register doctor --shapes`` on a real
account settles them):

- that ``signatures`` (and ``signatures_count``) is an include of ``/documents`` at all. The
  legacy API names signers only on *create* (``signatures[i][type|firstName|lastName|email|
  phoneNumber|countryCode|companyTitle|companyIdent|redirectUrl]``); the response fields here
  (those names plus ``id`` and ``signedAt``) are our guess from that form;
- the Laravel-style envelope ``{"data": [...], "links", "meta": {current_page, last_page,
  per_page, total}}``, a single object as ``{"data": {...}}``, ``per_page`` default 15, cap 100;
- errors as ``{"message": ...}`` (401 ``Unauthenticated.``), and an unknown include refused with
  HTTP 400 as Laravel's query builders do.

Because the include is a guess, ``signatures_include`` makes the imitation behave as each
plausible real service would: ``"supported"`` (default), ``"ignored"`` (the include is silently
dropped: documents come without signers) or ``"refused"`` (HTTP 400 for ``signatures``). The
connector must answer "unverified" for the last two, never "not found".
"""

from __future__ import annotations

import threading
import zlib
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

from .base import ApiError, Imitation, Request, Response, json_response
from .world import World

DEFAULT_TOKEN = "sandbox-docue-api-token"
BASE = "/public/v2"
DEFAULT_PER_PAGE = 15
MAX_PER_PAGE = 100
INCLUDES = ("signatures", "folder", "signatures_count")
INCLUDE_MODES = ("supported", "ignored", "refused")


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


def _int(req: Request, name: str, default: int) -> int:
    raw = req.query.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ApiError(422, f"The {name} must be a positive integer.")
    return int(raw)


class DocueImitation(Imitation):
    name = "docue"

    def __init__(self, world: World, token: str = DEFAULT_TOKEN) -> None:
        super().__init__()
        self.token = token
        self.signatures_include = "supported"  # one of INCLUDE_MODES: see the module docstring
        self._lock = threading.RLock()
        dw = world.derive("docue")
        self.documents: dict[int, dict] = {d.id: d._asdict() for d in dw.documents}
        self.signatures: dict[int, list[dict]] = {}
        for s in dw.signatures:
            self.signatures.setdefault(s.document_id, []).append(s._asdict())
        self.router.add("GET", f"{BASE}/documents", self.list_documents)
        self.router.add("GET", f"{BASE}/documents/{{id}}", self.get_document)
        self.router.add("GET", f"{BASE}/documents/{{id}}/download", self.download)

    def env(self, url: str) -> dict[str, str]:
        return {"DOCUE_BASE_URL": f"{url}{BASE}", "DOCUE_API_TOKEN": self.token}

    def authenticate(self, req: Request) -> Response | None:
        scheme, _, token = (req.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or token.strip() != self.token:
            return self.error_response(req, 401, "Unauthenticated.")
        return None

    def error_response(self, req: Request, status: int, message: str, code: str | None = None) -> Response:
        return json_response(status, {"message": message})

    # -- ground truth helpers for tests -----------------------------------------------------

    def signatures_of(self, true_person_id: str) -> list[dict]:
        with self._lock:
            return [s for sigs in self.signatures.values() for s in sigs if s["true_person_id"] == true_person_id]

    # -- routes -----------------------------------------------------------------------------

    def _includes(self, req: Request) -> set[str]:
        wanted = {part.strip() for part in (req.query.get("include") or "").split(",") if part.strip()}
        signer_includes = {"signatures", "signatures_count"}
        if self.signatures_include == "ignored":  # a server that drops what it does not know
            return wanted & (set(INCLUDES) - signer_includes)
        known = set(INCLUDES) - (signer_includes if self.signatures_include == "refused" else set())
        unknown = wanted - known
        if unknown:
            raise ApiError(400, f"Requested include(s) `{','.join(sorted(unknown))}` are not allowed. "
                                f"Allowed include(s) are `{','.join(sorted(known))}`.")
        return wanted

    def _document_json(self, d: dict, includes: set[str]) -> dict[str, Any]:
        out: dict[str, Any] = {"id": d["id"], "name": d["name"], "language": d["language"], "status": d["status"],
                               "signingMethod": "canvas", "created_at": _iso(d["created_at"]),
                               "updated_at": _iso(d["created_at"])}
        sigs = self.signatures.get(d["id"], [])
        if "signatures" in includes:
            out["signatures"] = [{
                "id": s["id"], "type": s["type"], "firstName": s["first_name"], "lastName": s["last_name"],
                "email": s["email"] or None, "phoneNumber": s["phone"] or None, "countryCode": "FI",
                "companyTitle": s["title"] or None, "companyIdent": s["company_ident"] or None,
                "signedAt": _iso(s["signed_at"]),
            } for s in sigs]
        if "signatures_count" in includes:
            out["signatures_count"] = len(sigs)
        if "folder" in includes:
            out["folder"] = {"id": zlib.crc32(d["company"].encode()) % 10_000, "name": d["company"]}
        return out

    def list_documents(self, req: Request) -> Response:
        includes = self._includes(req)
        page = _int(req, "page", 1)
        per_page = min(MAX_PER_PAGE, _int(req, "per_page", DEFAULT_PER_PAGE))
        with self._lock:
            ids = sorted(self.documents)
            chunk = [self._document_json(self.documents[i], includes)
                     for i in ids[(page - 1) * per_page:page * per_page]]
        last = max(1, -(-len(ids) // per_page))
        host = req.headers.get("Host", "")

        def link(p: int | None) -> str | None:
            if p is None:
                return None
            query = {k: v for k, v in req.query.items() if k != "page"} | {"page": str(p)}
            return f"http://{host}{BASE}/documents?{urlencode(query)}"

        return json_response(200, {
            "data": chunk,
            "links": {"first": link(1), "last": link(last), "prev": link(page - 1 if page > 1 else None),
                      "next": link(page + 1 if page < last else None)},
            "meta": {"current_page": page, "last_page": last, "per_page": per_page, "total": len(ids)},
        })

    def get_document(self, req: Request, id: str) -> Response:  # noqa: A002 - the route's parameter name
        includes = self._includes(req)
        with self._lock:
            doc = self.documents.get(int(id))
            if doc is None:
                raise ApiError(404, "Document not found.")
            return json_response(200, {"data": self._document_json(doc, includes)})

    def download(self, req: Request, id: str) -> Response:  # noqa: A002
        with self._lock:
            doc = self.documents.get(int(id))
            if doc is None:
                raise ApiError(404, "Document not found.")
        body = (b"%PDF-1.4\n% sandbox document " + str(doc["id"]).encode() + b"\n%%EOF\n")
        return Response(200, body, {"Content-Type": "application/pdf"})
