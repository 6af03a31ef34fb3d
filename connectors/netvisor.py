"""Netvisor client: the accounting system's billing contacts, customers and sales invoices.

Our own small client over :mod:`connectors.http` (the PyPI packages ``netvisor`` 0.7.0 and
``netvisor-api-client`` are stale and break with current marshmallow). Protocol facts it is
built on (Netvisor's API documentation and the client libraries):

- Every request carries the ``X-Netvisor-Authentication-*`` headers (Sender, CustomerId,
  PartnerId, Timestamp, TimestampUnix, TransactionId, Language, OrganisationId,
  MACHashCalculationAlgorithm = ``SHA256``) and ``X-Netvisor-Authentication-MAC``: lowercase hex
  HMAC-SHA256 over ``URL&Sender&CustomerId&Timestamp&Language&OrganisationId&TransactionId&
  TimestampUnix&CustomerKey&PartnerKey`` keyed with ``CustomerKey&PartnerKey``. The URL is the
  full request URL including its query string. The headers are computed in a ``requests`` auth
  hook, which runs for every attempt of the shared retry loop: each attempt gets a fresh
  TransactionId (a repeat is refused as ``REQUEST_NOT_UNIQUE``) and a MAC over the URL exactly
  as sent.
- Bodies are XML in ISO-8859-15 both ways. Answers are ``<Root><ResponseStatus><Status>OK``
  or ``<Status>FAILED</Status><Status>CATEGORY :: text</Status>``; the category decides the
  exception class and ``CATEGORY :: text`` stays in the message. Responses are parsed with
  defusedxml (no DTDs, no entity expansion: XML bombs are refused) and must declare
  ISO-8859-15.
- One call at a time per customer: the client holds a per-customer lock around every request,
  a thread lock plus an ``fcntl`` lock on a file (``lock_dir``), so two Dagster runs or two
  processes on one machine never overlap either.
- ``customerlist.nv`` (``changedsince`` = ``YYYY-MM-DDTHH:MM:SS`` Finnish local time,
  ``keyword``), ``getcustomer.nv?idlist=`` (≤ 500 ids, with ``CustomerContactPersons``),
  ``customer.nv?method=edit&id=`` (an empty element blanks a field), ``deletecustomer.nv``
  (only customers without invoices), ``contactperson.nv?method=edit|delete``,
  ``salesinvoicelist.nv`` (≤ 500 per answer, paged by ``invoicesabovenetvisorkey``, filtered by
  ``lastmodifiedstart`` and ``customernetvisorkey``), ``getsalesinvoice.nv?netvisorkeylist=``
  (≤ 500 keys; an unknown key answers OK with nothing).
- Netvisor has no marketing-ban field: billing contacts are not marketing targets.

Where the documentation leaves a detail open, this client and the sandbox agree on it and say
so: the query-parameter form of ``contactperson.nv`` (method and id in the query, fields in
the body) and the ``lastmodifiedstart`` timestamp format (same as ``changedsince``).
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import logging
import os
import re
import tempfile
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import defusedxml.ElementTree as SafeET
import requests
from defusedxml import DefusedXmlException

from connectors.clock import today_helsinki
from connectors.errors import (
    AuthError,
    BadPayloadError,
    ConnectorError,
    FatalError,
    NotFoundError,
    RetryableError,
    SettingMissing,
)
from connectors.http import HttpClient, RetryPolicy, safe_path
from connectors.legal_hold import BOOKS, VOUCHER, FinancialYears, LegalHold, hold_for

log = logging.getLogger("connectors.netvisor")

SYSTEM = "netvisor"
ENCODING = "ISO-8859-15"
MAX_IDS = 500  # getcustomer idlist, getsalesinvoice netvisorkeylist, salesinvoicelist page
HELSINKI = ZoneInfo("Europe/Helsinki")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
MARKETING_BAN = "not_applicable"
# Characters XML 1.0 cannot carry at all (not even as character references).
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_DECLARED_ENCODING = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")
_ACCEPTED_ENCODINGS = {"iso-8859-15", "iso8859-15", "latin-9", "latin9"}

# Category of a FAILED answer -> exception class. Anything else is a request we got wrong.
_AUTH_CATEGORIES = {"AUTHENTICATION_FAILED", "PERMISSION_DENIED"}
_RETRY_CATEGORIES = {"REQUEST_NOT_UNIQUE", "SERVICE_UNAVAILABLE", "TOO_MANY_CONCURRENT_REQUESTS"}

# Customer fields that hold personal data (contact details of a person, or a private
# customer's own address and contacts), as (section, element) of customer.nv.
CONTACT_FIELDS = (
    ("CustomerContactDetails", "ContactPerson"),
    ("CustomerContactDetails", "ContactPersonEmail"),
    ("CustomerContactDetails", "ContactPersonPhone"),
)
PRIVATE_CUSTOMER_FIELDS = CONTACT_FIELDS + (
    ("CustomerBaseInformation", "NameExtension"),
    ("CustomerBaseInformation", "StreetAddress"),
    ("CustomerBaseInformation", "AdditionalAddressLine"),
    ("CustomerBaseInformation", "PostNumber"),
    ("CustomerBaseInformation", "City"),
    ("CustomerBaseInformation", "PhoneNumber"),
    ("CustomerBaseInformation", "FaxNumber"),
    ("CustomerBaseInformation", "Email"),
    ("CustomerBaseInformation", "EmailInvoicingAddress"),
    ("CustomerBaseInformation", "HomePageUri"),
    ("CustomerDeliveryDetails", "DeliveryName"),
    ("CustomerDeliveryDetails", "DeliveryStreetAddress"),
    ("CustomerDeliveryDetails", "DeliveryCity"),
    ("CustomerDeliveryDetails", "DeliveryPostNumber"),
    ("CustomerFinvoiceDetails", "FinvoiceAddress"),
    ("CustomerFinvoiceDetails", "FinvoiceRouterCode"),
)
# The parsed-customer key of each of those elements (for verifying a blanking took).
_FIELD_KEYS = {
    "ContactPerson": "contact_person", "ContactPersonEmail": "contact_person_email",
    "ContactPersonPhone": "contact_person_phone", "NameExtension": "name_extension",
    "StreetAddress": "street_address", "AdditionalAddressLine": "additional_address_line",
    "PostNumber": "post_number", "City": "city", "PhoneNumber": "phone", "FaxNumber": "fax",
    "Email": "email", "EmailInvoicingAddress": "email_invoicing_address", "HomePageUri": "home_page",
    "DeliveryName": "delivery_name", "DeliveryStreetAddress": "delivery_street_address",
    "DeliveryCity": "delivery_city", "DeliveryPostNumber": "delivery_post_number",
    "FinvoiceAddress": "finvoice_address", "FinvoiceRouterCode": "finvoice_router_code",
}
CONTACT_PERSON_FIELDS = {"first_name": "FirstName", "last_name": "LastName", "phone": "PhoneNumber",
                         "email": "Email", "title": "Title"}


class NetvisorError(FatalError):
    """A FAILED answer that is neither an auth problem nor retryable."""


class LegalHoldError(FatalError):
    """An erasure was asked of a record that bookkeeping law requires to be kept."""

    def __init__(self, message: str, hold: LegalHold | None = None, **kw: Any) -> None:
        self.hold = hold
        super().__init__(message, **kw)


@dataclass(frozen=True)
class Credentials:
    sender: str
    customer_id: str
    partner_id: str
    customer_key: str
    partner_key: str
    organisation_id: str
    language: str = "FI"


def mac(url: str, creds: Credentials, timestamp: str, transaction_id: str, timestamp_unix: str) -> str:
    """Netvisor's MAC: lowercase hex HMAC-SHA256 of the documented '&'-joined fields."""
    message = "&".join((
        url, creds.sender, creds.customer_id, timestamp, creds.language, creds.organisation_id,
        transaction_id, timestamp_unix, creds.customer_key, creds.partner_key,
    ))
    key = f"{creds.customer_key}&{creds.partner_key}"
    return hmac.new(key.encode(ENCODING, "replace"), message.encode(ENCODING, "replace"), hashlib.sha256).hexdigest()


class NetvisorAuth(requests.auth.AuthBase):
    """Signs each prepared request: runs again for every retry attempt, so every attempt has a
    fresh TransactionId and a MAC over the URL as actually sent."""

    def __init__(self, creds: Credentials, clock: Callable[[], float] = time.time) -> None:
        self.creds = creds
        self.clock = clock

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        now = self.clock()
        timestamp = datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        unix = str(int(now))
        transaction_id = uuid.uuid4().hex
        c = self.creds
        # Language and organisation go out under both names in use: the Authentication-*
        # spelling of our notes and Netvisor's Interface-Language / Organisation-ID.
        r.headers.update({
            "X-Netvisor-Authentication-Sender": c.sender,
            "X-Netvisor-Authentication-CustomerId": c.customer_id,
            "X-Netvisor-Authentication-PartnerId": c.partner_id,
            "X-Netvisor-Authentication-Timestamp": timestamp,
            "X-Netvisor-Authentication-TimestampUnix": unix,
            "X-Netvisor-Authentication-TransactionId": transaction_id,
            "X-Netvisor-Interface-Language": c.language,
            "X-Netvisor-Authentication-Language": c.language,
            "X-Netvisor-Organisation-ID": c.organisation_id,
            "X-Netvisor-Authentication-OrganisationId": c.organisation_id,
            "X-Netvisor-Authentication-MACHashCalculationAlgorithm": "SHA256",
            "X-Netvisor-Authentication-MAC": mac(r.url or "", c, timestamp, transaction_id, unix),
        })
        return r


class CustomerLock:
    """At most one request in flight per Netvisor customer: a thread lock for this process and
    an exclusive ``flock`` on a lock file shared by every process on the machine."""

    def __init__(self, lock_dir: str | Path | None, base_url: str, creds: Credentials) -> None:
        ident = hashlib.sha256(f"{base_url.rstrip('/')}|{creds.customer_id}|{creds.organisation_id}".encode()).hexdigest()[:16]
        directory = Path(lock_dir) if lock_dir else Path(tempfile.gettempdir())
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"netvisor-{ident}.lock"
        self._thread_lock = threading.Lock()
        self._fd: int | None = None
        self.waited_s = 0.0

    def __enter__(self) -> "CustomerLock":
        started = time.monotonic()
        self._thread_lock.acquire()
        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._thread_lock.release()
            raise
        self.waited_s += time.monotonic() - started
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@dataclass
class CustomerList:
    server_time: datetime | None  # the answer's ResponseStatus/TimeStamp: the next cursor
    items: list[dict]


@dataclass
class InvoicePage:
    server_time: datetime | None
    items: list[dict]


# -- XML helpers --------------------------------------------------------------------------


def to_xml_bytes(root: ET.Element) -> bytes:
    """Serialise a request body in ISO-8859-15; characters outside it become character
    references, which every XML parser turns back into the same characters."""
    for el in root.iter():
        for value in (el.text, *el.attrib.values()):
            if value and _XML_INVALID.search(value):
                raise ValueError("a value holds characters XML cannot carry (control characters or lone surrogates)")
    body = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="{ENCODING}" standalone="yes"?>\n{body}'.encode(ENCODING, "xmlcharrefreplace")


def parse_xml(body: bytes) -> ET.Element:
    """Parse a Netvisor answer. Raises ValueError subclasses with a clear reason: not XML,
    malformed, declared in another encoding, or carrying a DTD/entities (XML bomb)."""
    if not body or not body.strip():
        raise _Malformed("empty body")
    m = _DECLARED_ENCODING.match(body)
    if m is None:
        if body.lstrip().startswith(b"<"):
            raise _WrongEncoding("no XML declaration: Netvisor declares ISO-8859-15 on every answer")
        raise _Malformed("body is not XML")
    declared = m.group(1).decode("ascii").lower()
    if declared not in _ACCEPTED_ENCODINGS:
        raise _WrongEncoding(f"declared encoding {declared!r}, expected ISO-8859-15")
    try:
        return SafeET.fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise _Hostile(f"refused: {type(exc).__name__} (DTD or entity declarations are not allowed)") from None
    except ET.ParseError as exc:
        raise _Malformed(f"malformed XML ({str(exc)[:120]})") from None


class _Malformed(ValueError):
    """Probably damaged on the way (truncated, garbled): worth another try for reads."""


class _WrongEncoding(ValueError):
    pass


class _Hostile(ValueError):
    pass


def _text(el: ET.Element | None, path: str) -> str | None:
    if el is None:
        return None
    found = el.find(path)
    if found is None:
        return None
    return found.text if found.text is not None else ""


def _blank_to_none(value: str | None) -> str | None:
    return value if value not in (None, "") else None


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def _find_ci(root: ET.Element, name: str) -> ET.Element | None:
    """Netvisor's element case is not consistent across resources: match case-insensitively."""
    lowered = name.lower()
    for el in root.iter():
        if el.tag.lower() == lowered:
            return el
    return None


def parse_local_time(text: str | None) -> datetime | None:
    """``YYYY-MM-DD HH:MM:SS`` (or with ``T``, optional fraction) in Finnish local time."""
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=HELSINKI)
    return parsed.astimezone(timezone.utc)


def format_local_time(value: datetime) -> str:
    return value.astimezone(HELSINKI).strftime(TIME_FORMAT)


def parse_date(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text.strip()[:10])
    except ValueError:
        return None


def _chunks(ids: list[int], size: int = MAX_IDS) -> Iterator[list[int]]:
    for i in range(0, len(ids), size):
        yield ids[i:i + size]


# -- record parsing -------------------------------------------------------------------------


def parse_customer_list_item(el: ET.Element) -> dict:
    return {
        "netvisor_key": _int(_text(el, "Netvisorkey") or _text(el, "NetvisorKey")),
        "code": _text(el, "Code"),
        "name": _text(el, "Name"),
        "organisation_identifier": _text(el, "OrganisationIdentifier"),
    }


def parse_customer(el: ET.Element) -> dict:
    """One ``Customer`` of getcustomer.nv, flattened to the fields the register needs."""
    base = el.find("CustomerBaseInformation")
    fin = el.find("CustomerFinvoiceDetails")
    delivery = el.find("CustomerDeliveryDetails")
    contact = el.find("CustomerContactDetails")
    extra = el.find("CustomerAdditionalInformation")
    persons = []
    for cp in el.findall("CustomerContactPersons/CustomerContactPerson"):
        persons.append({
            "id": _int(_text(cp, "ContactPersonID")),
            "first_name": _text(cp, "ContactPersonFirstName"),
            "last_name": _text(cp, "ContactPersonLastName"),
            "phone": _text(cp, "ContactPersonPhoneNumber"),
            "email": _text(cp, "ContactPersonEmail"),
            "office_id": _int(_text(cp, "ContactPersonOfficeNetvisorKey")),
        })
    return {
        "netvisor_key": _int(_text(base, "NetvisorKey")),
        "code": _text(base, "InternalIdentifier"),
        "business_id": _text(base, "ExternalIdentifier"),
        "name": _text(base, "Name"),
        "name_extension": _text(base, "NameExtension"),
        "street_address": _text(base, "StreetAddress"),
        "additional_address_line": _text(base, "AdditionalAddressLine"),
        "post_number": _text(base, "PostNumber"),
        "city": _text(base, "City"),
        "country": _text(base, "Country"),
        "phone": _text(base, "PhoneNumber"),
        "fax": _text(base, "FaxNumber"),
        "email": _text(base, "Email"),
        "email_invoicing_address": _text(base, "EmailInvoicingAddress"),
        "home_page": _text(base, "HomePageUri"),
        "is_active": _text(base, "IsActive"),
        "is_private_customer": _text(base, "IsPrivateCustomer"),
        "finvoice_address": _text(fin, "FinvoiceAddress"),
        "finvoice_router_code": _text(fin, "FinvoiceRouterCode"),
        "delivery_name": _text(delivery, "DeliveryName"),
        "delivery_street_address": _text(delivery, "DeliveryStreetAddress"),
        "delivery_city": _text(delivery, "DeliveryCity"),
        "delivery_post_number": _text(delivery, "DeliveryPostNumber"),
        "contact_person": _text(contact, "ContactPerson"),
        "contact_person_email": _text(contact, "ContactPersonEmail"),
        "contact_person_phone": _text(contact, "ContactPersonPhone"),
        "your_default_reference": _text(extra, "YourDefaultReference"),
        "contact_persons": persons,
    }


def parse_invoice_list_item(el: ET.Element) -> dict:
    status = el.find("InvoiceStatus")
    return {
        "netvisor_key": _int(_text(el, "NetvisorKey")),
        "invoice_number": _text(el, "InvoiceNumber"),
        "invoice_date": _text(el, "InvoiceDate"),
        "status": status.text if status is not None else None,
        "customer_netvisor_key": _int(_text(el, "CustomerNetvisorKey")),
        "customer_code": _text(el, "CustomerCode"),
        "customer_name": _text(el, "CustomerName"),
    }


def parse_invoice(el: ET.Element) -> dict:
    """The billing-contact fields of one getsalesinvoice.nv ``SalesInvoice`` (no lines, sums
    or attachments: the register needs who, which invoice and when)."""
    return {
        "netvisor_key": _int(_text(el, "SalesInvoiceNetvisorKey")),
        "invoice_number": _text(el, "SalesInvoiceNumber"),
        "invoice_date": _text(el, "SalesInvoiceDate"),
        "your_reference": _text(el, "SalesInvoiceYourReference"),
        "invoicing_customer_netvisor_key": _int(_text(el, "InvoicingCustomerNetvisorKey")),
        "invoicing_customer_name": _text(el, "InvoicingCustomerName"),
        "invoicing_customer_organization_identifier": _text(el, "InvoicingCustomerOrganizationIdentifier"),
        "invoicing_customer_addressline": _text(el, "InvoicingCustomerAddressline"),
        "invoicing_customer_postnumber": _text(el, "InvoicingCustomerPostnumber"),
        "invoicing_customer_town": _text(el, "InvoicingCustomerTown"),
        "contact_person_netvisor_key": _int(_text(el, "ContactPersonNetvisorKey")),
        "contact_person_first_name": _text(el, "ContactPersonFirstName"),
        "contact_person_last_name": _text(el, "ContactPersonLastName"),
        "contact_person_phone": _text(el, "ContactPersonPhoneNumber"),
        "contact_person_email": _text(el, "ContactPersonEmail"),
    }


# -- the client -------------------------------------------------------------------------------


class NetvisorClient:
    """One Netvisor company (customer id + organisation id) over the shared HTTP layer."""

    def __init__(
        self,
        base_url: str,
        *,
        sender: str,
        customer_id: str,
        partner_id: str,
        customer_key: str,
        partner_key: str,
        organisation_id: str,
        language: str = "FI",
        timeout: tuple[float, float] = (5.0, 60.0),
        retry: RetryPolicy = RetryPolicy(),
        lock_dir: str | Path | None = None,
        financial_years: FinancialYears = FinancialYears(),
    ) -> None:
        for name, value in (("customer_id", customer_id), ("partner_id", partner_id), ("customer_key", customer_key),
                            ("partner_key", partner_key), ("organisation_id", organisation_id), ("sender", sender)):
            if not value:
                raise SettingMissing(f"Netvisor setting {name} is empty")
        self.creds = Credentials(sender, customer_id, partner_id, customer_key, partner_key, organisation_id, language)
        self.retry = retry
        # pool_size 1: never more than one connection, as never more than one call at a time.
        self.http = HttpClient(SYSTEM, base_url, timeout=timeout, retry=retry, pool_size=1)
        self.http.session.auth = NetvisorAuth(self.creds)
        self.lock = CustomerLock(lock_dir, base_url, self.creds)
        self.financial_years = financial_years

    def close(self) -> None:
        self.http.close()
        self.lock.close()

    def __enter__(self) -> "NetvisorClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport --------------------------------------------------------------------------

    def call(self, method: str, resource: str, params: dict[str, Any] | None = None,
             body: ET.Element | None = None) -> ET.Element:
        """One Netvisor call: signed, serialised per customer, parsed, FAILED mapped to an
        exception. Reads are retried when the answer is damaged; writes are not (a damaged
        answer to a write may hide a write that happened)."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        path = resource + ("?" + urlencode(query) if query else "")
        data = to_xml_bytes(body) if body is not None else None
        headers = {"Content-Type": f"text/xml; charset={ENCODING}"} if data is not None else None
        is_read = method.upper() == "GET"
        where = {"system": SYSTEM, "method": method.upper(), "path": safe_path(self.http.url(resource))}
        attempts = self.retry.max_attempts if is_read else 1
        for attempt in range(1, attempts + 1):
            with self.lock:
                response = self.http.request(
                    method, path, data=data, headers=headers, idempotent=is_read,
                    ok_status=frozenset(range(200, 300)) | {400, 401, 403, 404},
                )
            try:
                root = parse_xml(response.content)
            except _Malformed as exc:
                error = BadPayloadError(f"answer is not valid Netvisor XML: {exc}", status=response.status_code, **where)
                if attempt == attempts:
                    raise error from None
                wait = self.http._backoff(attempt, error)  # the shared layer's jittered backoff
                self.http.stats.retries += 1  # counted like the shared layer's own retries
                log.warning("netvisor %s: damaged answer, retry %d/%d in %.2f s", where["path"], attempt, attempts - 1, wait)
                time.sleep(wait)
                continue
            except ValueError as exc:  # wrong encoding, DTD/entities: not transient
                raise BadPayloadError(f"answer refused: {exc}", status=response.status_code, **where) from None
            try:
                self._check_status(root, response.status_code, where)
            except RetryableError as error:
                if attempt == attempts:
                    raise
                self.http.stats.retries += 1
                time.sleep(self.http._backoff(attempt, error))
                continue
            return root
        raise AssertionError("unreachable")

    @staticmethod
    def _check_status(root: ET.Element, http_status: int, where: dict) -> None:
        if root.tag != "Root":
            raise BadPayloadError(f"answer's root element is {root.tag[:40]!r}, not 'Root'", status=http_status, **where)
        statuses = root.findall("ResponseStatus/Status")
        if not statuses:
            raise BadPayloadError("answer has no ResponseStatus/Status", status=http_status, **where)
        first = (statuses[0].text or "").strip()
        if first == "OK":
            if http_status >= 400:
                raise BadPayloadError("answer says OK with an HTTP error status", status=http_status, **where)
            return
        if first != "FAILED":
            raise BadPayloadError(f"unknown ResponseStatus {first[:40]!r}", status=http_status, **where)
        detail = " | ".join((s.text or "").strip() for s in statuses[1:])[:300] or "FAILED without a reason"
        category = detail.split("::", 1)[0].strip().upper()
        if category in _AUTH_CATEGORIES or http_status in (401, 403):
            raise AuthError(f"authentication failed: {detail}", status=http_status, **where)
        if category in _RETRY_CATEGORIES:
            raise RetryableError(detail, status=http_status, **where)
        if "NOT_FOUND" in category or http_status == 404:
            raise NotFoundError(detail, status=http_status, **where)
        raise NetvisorError(detail, status=http_status, **where)

    @staticmethod
    def _server_time(root: ET.Element) -> datetime | None:
        return parse_local_time(_text(root, "ResponseStatus/TimeStamp"))

    # -- reads ------------------------------------------------------------------------------

    def customer_list(self, *, changed_since: datetime | None = None, keyword: str | None = None) -> CustomerList:
        """customerlist.nv: every customer (key, code, name, business id), or only those changed
        since ``changed_since`` (inclusive, Finnish local time on the wire)."""
        params = {"changedsince": format_local_time(changed_since) if changed_since else None, "keyword": keyword}
        root = self.call("GET", "customerlist.nv", params)
        container = root.find("Customerlist")
        if container is None:
            container = _find_ci(root, "Customerlist")
        if container is None:
            raise BadPayloadError("customerlist answer has no Customerlist element", system=SYSTEM, path="customerlist.nv")
        return CustomerList(self._server_time(root), [parse_customer_list_item(c) for c in container.findall("Customer")])

    def get_customers(self, ids: Iterable[int]) -> Iterator[list[dict]]:
        """getcustomer.nv with idlist batches of ≤ 500: full customers with contact persons.
        Unknown ids are simply absent from the answer."""
        for batch in _chunks(sorted(set(ids))):
            root = self.call("GET", "getcustomer.nv", {"idlist": ",".join(str(i) for i in batch)})
            yield [parse_customer(c) for c in root.iter("Customer")]

    def get_customer(self, customer_id: int) -> dict | None:
        for batch in self.get_customers([customer_id]):
            for customer in batch:
                if customer["netvisor_key"] == customer_id:
                    return customer
        return None

    def invoice_pages(self, *, modified_since: datetime | None = None, customer_id: int | None = None) -> Iterator[InvoicePage]:
        """salesinvoicelist.nv, ≤ 500 per answer, paged by ascending NetvisorKey."""
        above = 0
        while True:
            params = {
                "invoicesabovenetvisorkey": above or None,
                "lastmodifiedstart": format_local_time(modified_since) if modified_since else None,
                "customernetvisorkey": customer_id,
            }
            root = self.call("GET", "salesinvoicelist.nv", params)
            container = _find_ci(root, "SalesInvoiceList")
            items = [parse_invoice_list_item(e) for e in container.findall("SalesInvoice")] if container is not None else []
            yield InvoicePage(self._server_time(root), items)
            keys = [i["netvisor_key"] for i in items if isinstance(i["netvisor_key"], int)]
            if len(items) < MAX_IDS or not keys or max(keys) <= above:
                return
            above = max(keys)

    def get_invoices(self, keys: Iterable[int]) -> list[dict]:
        """getsalesinvoice.nv with netvisorkeylist batches of ≤ 500 (unknown keys: absent)."""
        out: list[dict] = []
        for batch in _chunks(sorted(set(keys))):
            root = self.call("GET", "getsalesinvoice.nv", {"netvisorkeylist": ",".join(str(k) for k in batch)})
            out.extend(parse_invoice(e) for e in root.iter("SalesInvoice"))
        return out

    def invoices_of_customer(self, customer_id: int) -> list[dict]:
        """Every invoice of a customer with its billing-contact fields (a subject export's
        invoice part: numbers, dates, who was the contact)."""
        listed = [i for page in self.invoice_pages(customer_id=customer_id) for i in page.items]
        details = {d["netvisor_key"]: d for d in self.get_invoices(i["netvisor_key"] for i in listed if i["netvisor_key"])}
        return [dict(item, **{k: v for k, v in details.get(item["netvisor_key"], {}).items() if v is not None})
                for item in listed]

    # -- legal holds ------------------------------------------------------------------------

    def legal_hold_for_contact_person(self, customer_id: int, contact_person_id: int,
                                      financial_years: FinancialYears | None = None) -> LegalHold | None:
        """The hold on a billing contact: the invoices naming them are vouchers (2:10 § 2 mom.)."""
        invoices = [i for i in self.invoices_of_customer(customer_id)
                    if i.get("contact_person_netvisor_key") == contact_person_id]
        return hold_for(SYSTEM, "contact_person", str(contact_person_id), _hold_documents(invoices),
                        financial_years or self.financial_years, rule=VOUCHER)

    def legal_hold_for_customer(self, customer_id: int, financial_years: FinancialYears | None = None,
                                rule: str = BOOKS) -> LegalHold | None:
        """The hold on a (private) customer: their invoices are in the sales ledger, part of the
        books (10 years from the end of the financial year), and are vouchers (6 years from
        the end of that calendar year); ``rule`` picks one, books by default (the longer)."""
        invoices = self.invoices_of_customer(customer_id)
        return hold_for(SYSTEM, "customer", str(customer_id), _hold_documents(invoices),
                        financial_years or self.financial_years, rule=rule)

    # -- writes -----------------------------------------------------------------------------

    def edit_contact_person(self, customer_id: int, contact_person_id: int, **fields: str) -> dict:
        """Change fields of a contact person (``first_name``, ``last_name``, ``phone``, ``email``,
        ``title``); an empty string blanks a field. Returns the contact person as re-read."""
        unknown = set(fields) - set(CONTACT_PERSON_FIELDS)
        if unknown:
            raise ValueError(f"unknown contact person fields {sorted(unknown)}")
        body = self._contact_person_body(customer_id, contact_person_id)
        person = body.find("ContactPerson")
        for key, value in fields.items():
            ET.SubElement(person, CONTACT_PERSON_FIELDS[key]).text = value
        self.call("POST", "contactperson.nv", {"method": "edit", "id": contact_person_id}, body)
        current = self._contact_person(customer_id, contact_person_id)
        if current is None:
            raise NotFoundError("contact person vanished after an edit", system=SYSTEM, path="contactperson.nv")
        for key, value in fields.items():
            if key != "title" and (current.get(key) or "") != value:
                raise FatalError(f"edit of contact person field {key} did not take", system=SYSTEM, path="contactperson.nv")
        return current

    def delete_contact_person(self, customer_id: int, contact_person_id: int, *, check_holds: bool = True) -> None:
        """Delete a contact person, after making sure no invoice keeps them under a legal
        hold (``check_holds=False`` only for a hold that has expired by the caller's own
        check). Verified by reading the customer back."""
        if check_holds:
            hold = self.legal_hold_for_contact_person(customer_id, contact_person_id)
            if hold is not None and hold.active(today_helsinki()):
                raise LegalHoldError(f"contact person {contact_person_id} is on {len(hold.basis)} invoices: "
                                     f"kept until {hold.ends_on.isoformat()}", hold, system=SYSTEM)
        self.call("POST", "contactperson.nv", {"method": "delete", "id": contact_person_id},
                  self._contact_person_body(customer_id, contact_person_id))
        if self._contact_person(customer_id, contact_person_id) is not None:
            raise FatalError(f"contact person {contact_person_id} still exists after delete", system=SYSTEM,
                             path="contactperson.nv")

    def blank_customer_personal_fields(self, customer_id: int,
                                       fields: Iterable[tuple[str, str]] | None = None) -> dict:
        """Blank a customer's personal fields with empty elements (``customer.nv?method=edit``).
        Default: the contact details; for a private customer also address, phones, emails and
        e-invoice address. The name stays (Netvisor requires one). Verified by re-reading."""
        current = self.get_customer(customer_id)
        if current is None:
            raise NotFoundError(f"customer {customer_id} not found", system=SYSTEM, path="getcustomer.nv")
        if fields is None:
            fields = PRIVATE_CUSTOMER_FIELDS if current.get("is_private_customer") == "1" else CONTACT_FIELDS
        fields = tuple(fields)
        root = ET.Element("Root")
        customer = ET.SubElement(root, "Customer")
        sections: dict[str, ET.Element] = {}
        for section, element in fields:
            if element not in _FIELD_KEYS:
                raise ValueError(f"unknown customer field {element}")
            if section not in sections:
                sections[section] = ET.SubElement(customer, section)
            ET.SubElement(sections[section], element)  # empty element: blank the field
        self.call("POST", "customer.nv", {"method": "edit", "id": customer_id}, root)
        after = self.get_customer(customer_id)
        if after is None:
            raise NotFoundError(f"customer {customer_id} vanished after an edit", system=SYSTEM, path="customer.nv")
        left = [el for _s, el in fields if _blank_to_none(after.get(_FIELD_KEYS[el])) is not None]
        if left:
            raise FatalError(f"blanking did not take for {len(left)} fields", system=SYSTEM, path="customer.nv")
        return after

    def delete_customer(self, customer_id: int) -> None:
        """Delete a customer that has no invoices (Netvisor refuses the others; we check first
        so the answer is a clear LegalHoldError rather than a vendor error)."""
        invoices = [i for page in self.invoice_pages(customer_id=customer_id) for i in page.items]
        if invoices:
            hold = hold_for(SYSTEM, "customer", str(customer_id), _hold_documents(invoices), self.financial_years, rule=BOOKS)
            raise LegalHoldError(f"customer {customer_id} has {len(invoices)} invoices and cannot be deleted",
                                 hold, system=SYSTEM)
        self.call("POST", "deletecustomer.nv", {"id": customer_id})
        if self.get_customer(customer_id) is not None:
            raise FatalError(f"customer {customer_id} still exists after delete", system=SYSTEM, path="deletecustomer.nv")

    def marketing_ban(self, *_args: Any, **_kw: Any) -> str:
        """Netvisor has no marketing-ban field: billing contacts are not marketing targets."""
        return MARKETING_BAN

    # -- helpers ----------------------------------------------------------------------------

    def _contact_person(self, customer_id: int, contact_person_id: int) -> dict | None:
        customer = self.get_customer(customer_id)
        for cp in (customer or {}).get("contact_persons", []):
            if cp["id"] == contact_person_id:
                return cp
        return None

    @staticmethod
    def _contact_person_body(customer_id: int, contact_person_id: int) -> ET.Element:
        root = ET.Element("Root")
        person = ET.SubElement(root, "ContactPerson")
        ET.SubElement(person, "CustomerIdentifier", type="netvisor").text = str(customer_id)
        ET.SubElement(person, "ContactPersonIdentifier", type="netvisor").text = str(contact_person_id)
        return root


def _hold_documents(invoices: list[dict]) -> list[dict]:
    """Invoices as hold documents: key, number and date only (no personal data)."""
    return [{"invoice_netvisor_key": i.get("netvisor_key"), "invoice_number": i.get("invoice_number"),
             "date": parse_date(i.get("invoice_date"))} for i in invoices]


__all__ = [
    "NetvisorClient", "Credentials", "NetvisorAuth", "CustomerLock", "NetvisorError", "LegalHoldError",
    "CustomerList", "InvoicePage", "mac", "parse_xml", "to_xml_bytes", "parse_local_time", "format_local_time",
    "SYSTEM", "ENCODING", "MAX_IDS", "MARKETING_BAN", "ConnectorError",
]
