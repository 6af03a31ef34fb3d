"""Docue client, read-only: the contracts a person is a party (signer) of.

Facts it is built on (Docue API docs at apidocs.docue.com and the v2 draft at
apidocs-docue.vercel.app, Docue's privacy policy for third-party signatories; gathered late
2026):

- v2 base ``https://api.docue.com/public/v2`` ("work-in-progress"), ``Authorization: Bearer
  <API_TOKEN>`` (tokens only from Docue's customer service, valid until revoked), ``Accept:
  application/json``. ``include=`` loads relations or their counts; without it a relation is
  just missing from the answer. List routes page with ``page`` + ``per_page``.
- A signer (``signatures[i]``) is ``type`` company|person with ``firstName``, ``lastName``,
  ``email``, ``phoneNumber``, ``countryCode``, ``companyTitle``, ``companyIdent`` (business id):
  the personal data to find and export. No route searches signers, so every document is read
  with ``include=signatures`` and matched here.
- **No delete or anonymise route** is documented, and Docue (a processor) may not touch
  document content without the customer's authorisation: erasing or anonymising a contract
  (under legal retention) is a manual task in Docue's UI or through its support. This client
  has no write method at all.

Inferences (the v2 text stored did not show them): a Laravel-style list envelope
``{"data": [...], "meta": {"current_page", "last_page", ...}}`` and a ``per_page`` cap of 100.
The client also stops on an empty page, so a missing ``meta`` cannot loop it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from connectors.errors import AuthError, BadPayloadError, BadRequestError
from connectors.http import HttpClient, RetryPolicy

DEFAULT_BASE_URL = "https://api.docue.com/public/v2"
MAX_PER_PAGE = 100
MAX_PAGES = 100_000  # a guard against a server that never says "last page"
SIGNER_FIELDS = ("firstName", "lastName", "email", "phoneNumber", "countryCode", "companyTitle", "companyIdent")


@dataclass
class PartySearch:
    """What a search of every document found (see ``DocueClient.find_parties``)."""

    by_email: list[tuple[dict, dict]] = field(default_factory=list)
    without_email: list[tuple[dict, dict]] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)  # reasons, no personal data
    documents_without_signers: int = 0


class DocueClient:
    def __init__(self, base_url: str = DEFAULT_BASE_URL, api_token: str = "", *, per_page: int = MAX_PER_PAGE,
                 timeout: tuple[float, float] = (5.0, 30.0), retry: RetryPolicy = RetryPolicy()) -> None:
        if not api_token:
            # AuthError (missing credentials), so describe() keeps this message in the case
            raise AuthError("Docue needs an API token (DOCUE_API_TOKEN)", system="docue")
        self.per_page = max(1, min(MAX_PER_PAGE, per_page))
        self.http = HttpClient("docue", base_url, timeout=timeout, retry=retry,
                               headers={"Authorization": f"Bearer {api_token}", "Accept": "application/json"})

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> DocueClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def documents(self) -> Iterator[dict]:
        """Every document with its signers."""
        for page in range(1, MAX_PAGES + 1):
            body = self.http.request_json("GET", "documents", params={"include": "signatures", "page": page,
                                                                      "per_page": self.per_page})
            if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                raise BadPayloadError("documents answer has no data list", system="docue")
            yield from (d for d in body["data"] if isinstance(d, dict))
            meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
            last = meta.get("last_page")
            if not body["data"] or (isinstance(last, int) and page >= last):
                return

    def find_parties(self, emails: Iterable[str]) -> PartySearch:
        """The person's signer records.

        - ``by_email``: (document, signer) for every signer with one of the e-mails.
        - ``without_email``: every signer that has no e-mail at all: the caller matches them by
          the subject's full name (``contact_register/requests/erasure/matching.py``). A name is not proof of
          identity: such matches are for the officer to confirm, never acted on.
        - ``unverified``: why the answer cannot prove absence (no ``signatures`` relation in the
          answer, or Docue refusing the include; see the module docstring).

        Phone numbers are not matched: a signer's number is often the company's switchboard, and
        a wrong match would hand one person's contract data to another."""
        wanted = {e.strip().casefold() for e in emails if e and e.strip()}
        found = PartySearch()
        try:
            for doc in self.documents():
                signers = doc.get("signatures")
                if not isinstance(signers, list):
                    # The include was ignored (or the relation renamed): this document's signers
                    # are unknown, so "no match" would be a guess.
                    found.documents_without_signers += 1
                    continue
                for signer in signers:
                    if not isinstance(signer, dict):
                        continue
                    email = str(signer.get("email") or "").strip().casefold()
                    if email:
                        if email in wanted:
                            found.by_email.append((doc, signer))
                    else:
                        found.without_email.append((doc, signer))
        except BadRequestError as exc:
            if exc.status != 400 or "include" not in str(exc).casefold():
                raise
            found.unverified.append("Docue refused include=signatures: signers cannot be read through the API; "
                                    "search the contracts by hand in Docue")
        if found.documents_without_signers:
            found.unverified.append(f"{found.documents_without_signers} documents came without their signers "
                                    "(include=signatures ignored): search them by hand in Docue")
        return found

    def export(self, emails: Iterable[str]) -> dict[str, list[dict]]:
        """The person's signer records (``contract_party``) and the metadata of those documents
        (``contract``). Other parties of the same contracts are left out: they are other people."""
        parties, contracts = [], {}
        for doc, signer in self.find_parties(emails).by_email:
            parties.append({"id": signer.get("id"), "document_id": doc.get("id"), "type": signer.get("type"),
                            **{k: signer.get(k) for k in SIGNER_FIELDS}, "signedAt": signer.get("signedAt")})
            contracts[str(doc.get("id"))] = {k: v for k, v in doc.items() if k != "signatures"}
        return {"contract_party": parties, "contract": list(contracts.values())}
