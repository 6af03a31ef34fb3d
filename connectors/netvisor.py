"""Netvisor client: the accounting system's billing contacts, customers and sales invoices.

Our own small client over :mod:`connectors.http` (the PyPI packages ``netvisor`` 0.7.0 and
``netvisor-api-client`` are stale and break with current marshmallow). The protocol as Netvisor
and the public client libraries publish it (our own schemas of each answer, with the pages they
come from: ``tests/contracts/netvisor/``):

- Headers (Netvisor's API pages; rantalainen/netvisor-api-client ``src/index.ts``):
  ``X-Netvisor-Authentication-Sender``, ``-CustomerId``, ``-PartnerId``, ``-Timestamp``,
  ``-TimestampUnix``, ``-TransactionId``, ``-MAC``, ``-MACHashCalculationAlgorithm``, and
  ``X-Netvisor-Interface-Language`` and ``X-Netvisor-Organisation-ID`` (these two are not under
  ``Authentication-``). The algorithm is ``HMACSHA256``: the MAC is the lowercase hex
  HMAC-SHA256 of ``URL&Sender&CustomerId&Timestamp&Language&OrganisationId&TransactionId&
  TimestampUnix&CustomerKey&PartnerKey`` keyed with ``CustomerKey&PartnerKey``, both in
  Latin-1. (``SHA256`` names the legacy mode, a plain hash: sending one mode's name with the
  other's value is an authentication failure.) The URL is the full request URL including its
  query string. The headers are computed in a ``requests`` auth hook, which runs for every
  attempt of the shared retry loop: each attempt gets a fresh TransactionId (a repeat is
  refused as ``REQUEST_NOT_UNIQUE``) and a MAC over the URL exactly as sent.
- Answers are ``<Root><ResponseStatus><Status>OK`` or ``<Status>FAILED</Status><Status>CATEGORY
  :: text</Status>``, with ``<TimeStamp>`` in Finnish local time written ``d.m.yyyy hh:mm:ss``
  (``7.4.2009 15:53:44`` in Netvisor's documentation example). The category decides the
  exception class; ``CATEGORY :: text`` stays in the message. Answers are decoded by what they
  declare: Netvisor's own example and the public clients' recordings declare ``utf-8`` or
  nothing (then UTF-8, or the HTTP charset), older ones ISO-8859-15. Parsed with defusedxml (no
  DTDs, no entity expansion: XML bombs are refused). Element case differs between Netvisor's
  pages and the clients' recordings (``Invoicedate``/``InvoiceDate``), so element names are
  matched case-insensitively. Request bodies go out in ISO-8859-15 with a matching declaration.
- One call at a time per customer: the client holds a per-customer lock around every request,
  a thread lock plus an ``fcntl`` lock on a file (``lock_dir``), so two Dagster runs or two
  processes on one machine never overlap either.
- ``customerlist.nv`` (``changedsince`` = ``YYYY-MM-DDTHH:MM:SS`` Finnish local time,
  ``keyword``); ``getcustomer.nv?id=`` answers one bare ``<Customer>`` and an unknown id is
  ``FAILED`` with ``INVALID_DATA``; ``?idlist=`` (≤ 500 ids) answers ``<Customers>`` (a batch
  refused for an unknown id is read again id by id); ``AdditionalStreetAddress`` on read,
  ``additionaladdressline`` on write. ``customer.nv?method=edit&id=`` (an empty element blanks
  a field), ``deletecustomer.nv`` (only customers without invoices), ``contactperson.nv``
  (``method`` add|edit|delete is an element of the posted XML, not a query parameter, with
  ``customeridentifier``, ``contactpersonidentifier``, and ``firstname``, ``lastname`` and
  ``language`` always present: Netvisor's page "Import customer contact person
  contactperson.nv"), ``salesinvoicelist.nv`` (≤ 500 per answer, paged by
  ``invoicesabovenetvisorkey``, filtered by ``lastmodifiedstart`` and ``customernetvisorkey``;
  items carry ``Invoicedate format="ansi"``), ``getsalesinvoice.nv?netvisorkeylist=`` (≤ 500
  keys; an unknown key answers OK with nothing).
- Netvisor has no marketing-ban field: billing contacts are not marketing targets.

Where the documentation leaves a detail open, this client and the sandbox agree on it and say
so: the ``lastmodifiedstart`` timestamp format (same as ``changedsince``), and the write element
names of ``customer.nv`` other than ``additionaladdressline`` (the read names in lower case).
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import logging
import os
import random
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
from connectors.http import HttpClient, Retry, RetryPolicy, retry_call, safe_path
from connectors.legal_hold import BOOKS, VOUCHER, FinancialYears, LegalHold, hold_for

log = logging.getLogger("connectors.netvisor")

SYSTEM = "netvisor"
ENCODING = "ISO-8859-15"  # request bodies (with a matching declaration)
MAC_ALGORITHM = "HMACSHA256"
MAC_TEXT_ENCODING = "latin-1"
MAX_IDS = 500  # getcustomer idlist, getsalesinvoice netvisorkeylist, salesinvoicelist page
HELSINKI = ZoneInfo("Europe/Helsinki")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"  # changedsince / lastmodifiedstart, Finnish local time
# ResponseStatus/TimeStamp: Finnish local time, day and month without leading zeros.
_SERVER_TIME = re.compile(r"^\s*(\d{1,2})\.(\d{1,2})\.(\d{4}) (\d{1,2}):(\d{2}):(\d{2})\s*$")
MARKETING_BAN = "not_applicable"
# Characters XML 1.0 cannot carry at all (not even as character references).
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_DECLARED_ENCODING = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")
_ACCEPTED_ENCODINGS = {"utf-8", "utf8", "iso-8859-15", "iso8859-15", "latin-9", "latin9", "iso-8859-1",
                       "iso8859-1", "latin-1", "latin1"}
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._-]+)", re.I)

# Category of a FAILED answer -> exception class. Anything else is a request we got wrong.
_AUTH_CATEGORIES = {"AUTHENTICATION_FAILED", "PERMISSION_DENIED"}
_RETRY_CATEGORIES = {"REQUEST_NOT_UNIQUE", "SERVICE_UNAVAILABLE", "TOO_MANY_CONCURRENT_REQUESTS"}

# Customer fields that hold personal data, as (section, element) of customer.nv's request,
# with the key of the parsed getcustomer.nv answer (to verify that a blanking took).
CONTACT_FIELDS = (
    ("customercontactdetails", "contactperson"),
    ("customercontactdetails", "contactpersonemail"),
    ("customercontactdetails", "contactpersonphone"),
)
PRIVATE_CUSTOMER_FIELDS = CONTACT_FIELDS + (
    ("customerbaseinformation", "nameextension"),
    ("customerbaseinformation", "streetaddress"),
    ("customerbaseinformation", "additionaladdressline"),
    ("customerbaseinformation", "postnumber"),
    ("customerbaseinformation", "city"),
    ("customerbaseinformation", "phonenumber"),
    ("customerbaseinformation", "faxnumber"),
    ("customerbaseinformation", "email"),
    ("customerbaseinformation", "emailinvoicingaddress"),
    ("customerbaseinformation", "homepageuri"),
    ("customerdeliverydetails", "deliveryname"),
    ("customerdeliverydetails", "deliverystreetaddress"),
    ("customerdeliverydetails", "deliverycity"),
    ("customerdeliverydetails", "deliverypostnumber"),
    ("customerfinvoicedetails", "finvoiceaddress"),
    ("customerfinvoicedetails", "finvoiceroutercode"),
)
_FIELD_KEYS = {
    "contactperson": "contact_person", "contactpersonemail": "contact_person_email",
    "contactpersonphone": "contact_person_phone", "nameextension": "name_extension",
    "streetaddress": "street_address", "additionaladdressline": "additional_street_address",
    "postnumber": "post_number", "city": "city", "phonenumber": "phone", "faxnumber": "fax",
    "email": "email", "emailinvoicingaddress": "email_invoicing_address", "homepageuri": "home_page",
    "deliveryname": "delivery_name", "deliverystreetaddress": "delivery_street_address",
    "deliverycity": "delivery_city", "deliverypostnumber": "delivery_post_number",
    "finvoiceaddress": "finvoice_address", "finvoiceroutercode": "finvoice_router_code",
}
# contactperson.nv request elements (Netvisor's page names them in lower case).
CONTACT_PERSON_FIELDS = {"first_name": "firstname", "last_name": "lastname", "phone": "phonenumber",
                         "email": "email", "title": "title"}

# What the client reads from each answer: parsed key -> element path below the record element
# (matched case-insensitively). tests/test_contract_netvisor.py holds these against our schemas
# of Netvisor's documentation, so a field read here that Netvisor does not send fails there.
CUSTOMER_LIST_ITEM = {
    "netvisor_key": "Netvisorkey", "code": "Code", "name": "Name", "organisation_identifier": "OrganisationIdentifier",
}
CUSTOMER = {
    "netvisor_key": "CustomerBaseInformation/NetvisorKey",
    "code": "CustomerBaseInformation/InternalIdentifier",
    "business_id": "CustomerBaseInformation/ExternalIdentifier",
    "name": "CustomerBaseInformation/Name",
    "name_extension": "CustomerBaseInformation/NameExtension",
    "street_address": "CustomerBaseInformation/StreetAddress",
    "additional_street_address": "CustomerBaseInformation/AdditionalStreetAddress",
    "post_number": "CustomerBaseInformation/PostNumber",
    "city": "CustomerBaseInformation/City",
    "country": "CustomerBaseInformation/Country",
    "phone": "CustomerBaseInformation/PhoneNumber",
    "fax": "CustomerBaseInformation/FaxNumber",
    "email": "CustomerBaseInformation/Email",
    "email_invoicing_address": "CustomerBaseInformation/EmailInvoicingAddress",
    "home_page": "CustomerBaseInformation/HomePageUri",
    "is_active": "CustomerBaseInformation/IsActive",
    "is_private_customer": "CustomerBaseInformation/IsPrivateCustomer",
    "finvoice_address": "CustomerFinvoiceDetails/FinvoiceAddress",
    "finvoice_router_code": "CustomerFinvoiceDetails/FinvoiceRouterCode",
    "delivery_name": "CustomerDeliveryDetails/DeliveryName",
    "delivery_street_address": "CustomerDeliveryDetails/DeliveryStreetAddress",
    "delivery_city": "CustomerDeliveryDetails/DeliveryCity",
    "delivery_post_number": "CustomerDeliveryDetails/DeliveryPostNumber",
    "contact_person": "CustomerContactDetails/ContactPerson",
    "contact_person_email": "CustomerContactDetails/ContactPersonEmail",
    "contact_person_phone": "CustomerContactDetails/ContactPersonPhone",
    "your_default_reference": "CustomerAdditionalInformation/YourDefaultReference",
}
CONTACT_PERSONS_PATH = "CustomerContactPersons/CustomerContactPerson"
CONTACT_PERSON = {
    "id": "ContactPersonID", "first_name": "ContactPersonFirstName", "last_name": "ContactPersonLastName",
    "phone": "ContactPersonPhoneNumber", "email": "ContactPersonEmail",
    "office_id": "ContactPersonOfficeNetvisorKey",
}
INVOICE_LIST_ITEM = {
    "netvisor_key": "NetvisorKey", "invoice_number": "InvoiceNumber", "invoice_date": "Invoicedate",
    "status": "InvoiceStatus", "customer_netvisor_key": "CustomerNetvisorKey", "customer_code": "CustomerCode",
    "customer_name": "CustomerName",
}
INVOICE = {
    "netvisor_key": "SalesInvoiceNetvisorKey", "invoice_number": "SalesInvoiceNumber",
    "invoice_date": "SalesInvoiceDate", "your_reference": "SalesInvoiceYourReference",
    "invoicing_customer_netvisor_key": "InvoicingCustomerNetvisorKey",
    "invoicing_customer_name": "InvoicingCustomerName",
    "invoicing_customer_organization_identifier": "InvoicingCustomerOrganizationIdentifier",
    "invoicing_customer_addressline": "InvoicingCustomerAddressline",
    "invoicing_customer_postnumber": "InvoicingCustomerPostnumber",
    "invoicing_customer_town": "InvoicingCustomerTown",
    "contact_person_netvisor_key": "ContactPersonNetvisorKey",
    "contact_person_first_name": "ContactPersonFirstName",
    "contact_person_last_name": "ContactPersonLastName",
    "contact_person_phone": "ContactPersonPhoneNumber",
    "contact_person_email": "ContactPersonEmail",
}
_INT_KEYS = {"netvisor_key", "id", "office_id", "customer_netvisor_key", "invoicing_customer_netvisor_key",
             "contact_person_netvisor_key"}
# resource -> (path of the record element below Root, fields read): what the contract test checks.
READS = {
    "customerlist.nv": ("Customerlist/Customer", CUSTOMER_LIST_ITEM),
    "getcustomer.nv": ("Customer", CUSTOMER),
    "getcustomer.nv#contact_person": ("Customer/" + CONTACT_PERSONS_PATH, CONTACT_PERSON),
    "salesinvoicelist.nv": ("SalesInvoiceList/SalesInvoice", INVOICE_LIST_ITEM),
    "getsalesinvoice.nv": ("SalesInvoice", INVOICE),
}


class NetvisorError(FatalError):
    """A FAILED answer that is neither an auth problem nor retryable."""


class InvalidDataError(NetvisorError):
    """``INVALID_DATA``: Netvisor's answer to a request it cannot serve, e.g. an unknown id in
    ``getcustomer.nv``."""


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
    """Netvisor's ``HMACSHA256`` MAC: lowercase hex HMAC-SHA256 of the documented '&'-joined
    fields, key ``CustomerKey&PartnerKey``, both in Latin-1."""
    message = "&".join((
        url, creds.sender, creds.customer_id, timestamp, creds.language, creds.organisation_id,
        transaction_id, timestamp_unix, creds.customer_key, creds.partner_key,
    ))
    key = f"{creds.customer_key}&{creds.partner_key}"
    return hmac.new(key.encode(MAC_TEXT_ENCODING, "replace"), message.encode(MAC_TEXT_ENCODING, "replace"),
                    hashlib.sha256).hexdigest()


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
        r.headers.update({
            "X-Netvisor-Authentication-Sender": c.sender,
            "X-Netvisor-Authentication-CustomerId": c.customer_id,
            "X-Netvisor-Authentication-PartnerId": c.partner_id,
            "X-Netvisor-Authentication-Timestamp": timestamp,
            "X-Netvisor-Authentication-TimestampUnix": unix,
            "X-Netvisor-Authentication-TransactionId": transaction_id,
            "X-Netvisor-Interface-Language": c.language,
            "X-Netvisor-Organisation-ID": c.organisation_id,
            "X-Netvisor-Authentication-MACHashCalculationAlgorithm": MAC_ALGORITHM,
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


def parse_xml(body: bytes, content_type: str | None = None) -> ET.Element:
    """Parse a Netvisor answer, decoded by what it declares: the XML declaration's encoding, else
    the HTTP charset, else UTF-8 (XML's default). Raises ValueError subclasses with a clear
    reason: not XML, malformed, an encoding we do not accept, or a DTD/entities (XML bomb)."""
    if not body or not body.strip():
        raise _Malformed("empty body")
    if not body.lstrip().startswith(b"<"):
        raise _Malformed("body is not XML")
    m = _DECLARED_ENCODING.match(body)
    declared = m.group(1).decode("ascii").lower() if m else None
    charset = _CHARSET.search(content_type or "")
    encoding = declared or (charset.group(1).lower() if charset else "utf-8")
    if encoding not in _ACCEPTED_ENCODINGS:
        raise _WrongEncoding(f"declared encoding {encoding!r}, expected UTF-8 or ISO-8859-15")
    source: bytes | str = body
    if declared is None:
        try:  # undeclared: decode ourselves, so the parser does not assume UTF-8 for Latin bytes
            source = body.decode(encoding)
        except UnicodeDecodeError:
            raise _WrongEncoding(f"answer is not valid {encoding} and declares no encoding") from None
    try:
        return SafeET.fromstring(source, forbid_dtd=True, forbid_entities=True, forbid_external=True)
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


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def _blank_to_none(value: str | None) -> str | None:
    return value if value not in (None, "") else None


def _children(el: ET.Element | None, name: str) -> list[ET.Element]:
    """``el``'s children named ``name``, in any letter case."""
    lowered = name.lower()
    return [] if el is None else [c for c in el if c.tag.lower() == lowered]


def _path(el: ET.Element | None, path: str) -> list[ET.Element]:
    """Elements at ``path`` (``A/B/C``) below ``el``, names matched case-insensitively."""
    found = [] if el is None else [el]
    for step in path.split("/"):
        found = [c for parent in found for c in _children(parent, step)]
    return found


def _record(el: ET.Element, fields: dict[str, str]) -> dict:
    """One record's fields by ``fields`` (key -> path), case-insensitively. A missing element is
    None, an empty one ""; keys in ``_INT_KEYS`` become integers (None when not a number)."""
    index: dict[str, dict[str, ET.Element]] = {}

    def child(prefix: str, parent: ET.Element, name: str) -> ET.Element | None:
        children = index.get(prefix)
        if children is None:
            children = index[prefix] = {}
            for c in parent:
                children.setdefault(c.tag.lower(), c)
        return children.get(name.lower())

    out: dict[str, Any] = {}
    for key, path in fields.items():
        node: ET.Element | None = el
        prefix = ""
        for step in path.split("/"):
            node = child(prefix, node, step) if node is not None else None
            prefix = f"{prefix}/{step.lower()}"
        text = None if node is None else (node.text if node.text is not None else "")
        out[key] = _int(text) if key in _INT_KEYS else text
    return out


def parse_server_time(text: str | None) -> datetime | None:
    """``ResponseStatus/TimeStamp``: Finnish local time ``d.m.yyyy hh:mm:ss`` (``7.4.2009
    15:53:44``), as UTC. Anything else is None (no cursor: the next run re-reads rather than
    trusting a time it cannot read). In the autumn's repeated hour the earlier instant is
    taken (fold 0), so a cursor errs towards re-reading."""
    m = _SERVER_TIME.match(text or "")
    if m is None:
        return None
    day, month, year, hour, minute, second = (int(g) for g in m.groups())
    try:
        local = datetime(year, month, day, hour, minute, second, tzinfo=HELSINKI)
    except ValueError:
        return None
    return local.astimezone(timezone.utc)


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
    return _record(el, CUSTOMER_LIST_ITEM)


def parse_customer(el: ET.Element) -> dict:
    """One ``Customer`` of getcustomer.nv, flattened to the fields the register needs, with its
    contact persons."""
    customer = _record(el, CUSTOMER)
    customer["contact_persons"] = [_record(cp, CONTACT_PERSON) for cp in _path(el, CONTACT_PERSONS_PATH)]
    return customer


def parse_invoice_list_item(el: ET.Element) -> dict:
    return _record(el, INVOICE_LIST_ITEM)


def parse_invoice(el: ET.Element) -> dict:
    """The billing-contact fields of one getsalesinvoice.nv ``SalesInvoice`` (no lines, sums
    or attachments: the register needs who, which invoice and when)."""
    return _record(el, INVOICE)


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
        self._rng = random.Random()
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
        # The HTTP layer has already retried what failed on the wire; what is left to judge is
        # Netvisor's own answer: XML damaged on the way, or a FAILED status that says "busy".
        # That error (and only that one: an exhausted HTTP retry is not repeated here) is noted
        # for the classifier.
        transient: ConnectorError | None = None

        def attempt(_number: int) -> ET.Element:
            nonlocal transient
            transient = None
            with self.lock:
                response = self.http.request(
                    method, path, data=data, headers=headers, idempotent=is_read,
                    ok_status=frozenset(range(200, 300)) | {400, 401, 403, 404},
                )
            try:
                root = parse_xml(response.content, response.headers.get("Content-Type"))
            except _Malformed as exc:
                transient = BadPayloadError(f"answer is not valid Netvisor XML: {exc}", status=response.status_code,
                                            **where)
                raise transient from None
            except ValueError as exc:  # wrong encoding, DTD/entities: not transient
                raise BadPayloadError(f"answer refused: {exc}", status=response.status_code, **where) from None
            try:
                self._check_status(root, response.status_code, where)
            except RetryableError as exc:
                transient = exc
                raise
            return root

        def classify(exc: Exception) -> Retry | BaseException:
            return Retry(exc) if is_read and exc is transient else exc

        def on_retry(number: int, error: ConnectorError, wait: float) -> None:
            self.http.stats.retries += 1  # counted like the shared layer's own retries
            log.warning("netvisor %s: %s, retry %d/%d in %.2f s", where["path"], type(error).__name__, number,
                        self.retry.max_attempts - 1, wait)

        return retry_call(attempt, classify, self.retry, sleep=time.sleep, rng=self._rng, on_retry=on_retry)

    @staticmethod
    def _check_status(root: ET.Element, http_status: int, where: dict) -> None:
        if root.tag.lower() != "root":
            raise BadPayloadError(f"answer's root element is {root.tag[:40]!r}, not 'Root'", status=http_status, **where)
        statuses = _path(root, "ResponseStatus/Status")
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
        # Netvisor's code is ours to show; its free text may quote what it refused (a name, an
        # address), so it travels as vendor_text, which describe() and the trail leave out.
        code = re.sub(r"[^A-Z0-9_]", "", category)[:60] or "FAILED"
        if category in _AUTH_CATEGORIES or http_status in (401, 403):
            raise AuthError(f"authentication failed: {code}", status=http_status, vendor_text=detail, **where)
        if category in _RETRY_CATEGORIES:
            raise RetryableError(code, status=http_status, vendor_text=detail, **where)
        if "NOT_FOUND" in category or http_status == 404:
            raise NotFoundError(code, status=http_status, vendor_text=detail, **where)
        if category == "INVALID_DATA":
            raise InvalidDataError(code, status=http_status, vendor_text=detail, **where)
        raise NetvisorError(code, status=http_status, vendor_text=detail, **where)

    @staticmethod
    def _server_time(root: ET.Element) -> datetime | None:
        stamps = _path(root, "ResponseStatus/TimeStamp")
        server_time = parse_server_time(stamps[0].text if stamps else None)
        if server_time is None:
            log.warning("netvisor answer has no readable ResponseStatus/TimeStamp: the next run re-reads everything")
        return server_time

    # -- reads ------------------------------------------------------------------------------

    def customer_list(self, *, changed_since: datetime | None = None, keyword: str | None = None) -> CustomerList:
        """customerlist.nv: every customer (key, code, name, business id), or only those changed
        since ``changed_since`` (inclusive, Finnish local time on the wire)."""
        params = {"changedsince": format_local_time(changed_since) if changed_since else None, "keyword": keyword}
        root = self.call("GET", "customerlist.nv", params)
        containers = _children(root, "Customerlist")
        if not containers:
            raise BadPayloadError("customerlist answer has no Customerlist element", system=SYSTEM, path="customerlist.nv")
        items = [parse_customer_list_item(c) for c in _children(containers[0], "Customer")]
        return CustomerList(self._server_time(root), items)

    def get_customers(self, ids: Iterable[int]) -> Iterator[list[dict]]:
        """getcustomer.nv with idlist batches of ≤ 500: full customers with contact persons.
        A batch refused with INVALID_DATA (an id deleted since it was listed) is read again id by
        id; unknown ids are left out."""
        for batch in _chunks(sorted(set(ids))):
            try:
                root = self.call("GET", "getcustomer.nv", {"idlist": ",".join(str(i) for i in batch)})
            except InvalidDataError:
                yield [c for c in (self.get_customer(i) for i in batch) if c is not None]
                continue
            wrapped = _children(root, "Customers")
            elements = _children(wrapped[0], "Customer") if wrapped else _children(root, "Customer")
            yield [parse_customer(c) for c in elements]

    def get_customer(self, customer_id: int) -> dict | None:
        """getcustomer.nv?id=: one bare ``Customer``; None when Netvisor answers INVALID_DATA
        (its answer to an unknown id)."""
        try:
            root = self.call("GET", "getcustomer.nv", {"id": customer_id})
        except InvalidDataError:
            return None
        for element in _children(root, "Customer"):
            customer = parse_customer(element)
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
            items = [parse_invoice_list_item(e) for e in _path(root, "SalesInvoiceList/SalesInvoice")]
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
            wrapped = _children(root, "SalesInvoices")
            out.extend(parse_invoice(e) for e in _children(wrapped[0] if wrapped else root, "SalesInvoice"))
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
        """The hold on a billing contact: the invoices naming them are vouchers (2:10 § 2 mom.).
        An invoice names them by the contact-person key, or - typed by hand, or the key since
        changed - by the contact's e-mail or full name in its billing-contact fields or its
        "your reference"."""
        person = self._contact_person(customer_id, contact_person_id)
        invoices = [i for i in self.invoices_of_customer(customer_id)
                    if i.get("contact_person_netvisor_key") == contact_person_id
                    or (person is not None and _names_contact(i, person))]
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
        current = self._contact_person(customer_id, contact_person_id)
        if current is None:
            raise NotFoundError(f"contact person {contact_person_id} not found", system=SYSTEM, path="getcustomer.nv")
        self.call("POST", "contactperson.nv", None, self._contact_person_body("edit", customer_id, current, fields))
        after = self._contact_person(customer_id, contact_person_id)
        if after is None:
            raise NotFoundError("contact person vanished after an edit", system=SYSTEM, path="contactperson.nv")
        for key, value in fields.items():
            if key != "title" and (after.get(key) or "") != value:
                raise FatalError(f"edit of contact person field {key} did not take", system=SYSTEM, path="contactperson.nv")
        return after

    def delete_contact_person(self, customer_id: int, contact_person_id: int, *, check_holds: bool = True) -> None:
        """Delete a contact person, after making sure no invoice keeps them under a legal
        hold (``check_holds=False`` only for a hold that has expired by the caller's own
        check). Verified by reading the customer back; one already gone counts as deleted."""
        if check_holds:
            hold = self.legal_hold_for_contact_person(customer_id, contact_person_id)
            if hold is not None and hold.active(today_helsinki()):
                raise LegalHoldError(f"contact person {contact_person_id} is on {len(hold.basis)} invoices: "
                                     f"kept until {hold.ends_on.isoformat()}", hold, system=SYSTEM)
        current = self._contact_person(customer_id, contact_person_id)
        if current is None:
            return
        self.call("POST", "contactperson.nv", None, self._contact_person_body("delete", customer_id, current, {}))
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
        root = ET.Element("root")
        customer = ET.SubElement(root, "customer")
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

    def _contact_person_body(self, method: str, customer_id: int, current: dict, changes: dict[str, str]) -> ET.Element:
        """contactperson.nv's XML: ``method`` is an element, and ``firstname``, ``lastname`` and
        ``language`` are required on every message (Netvisor's page lists them as occurring
        once), so the current names go along with the changes. Netvisor does not return a
        contact person's language: the client's language setting is sent."""
        root = ET.Element("root")
        person = ET.SubElement(root, "contactperson")
        ET.SubElement(person, "method").text = method
        ET.SubElement(person, "customeridentifier", type="netvisor").text = str(customer_id)
        ET.SubElement(person, "contactpersonidentifier", type="netvisor").text = str(current["id"])
        values = {"first_name": current.get("first_name") or "", "last_name": current.get("last_name") or ""}
        values.update(changes)
        ET.SubElement(person, "firstname").text = values.pop("first_name")
        ET.SubElement(person, "lastname").text = values.pop("last_name")
        ET.SubElement(person, "language", type="ISO-3166").text = self.creds.language
        for key, value in values.items():
            ET.SubElement(person, CONTACT_PERSON_FIELDS[key]).text = value
        return root


def _folded(*parts: str | None) -> str:
    return " ".join(" ".join(p for p in parts if p).split()).casefold()


def _names_contact(invoice: dict, person: dict) -> bool:
    """Whether an invoice's billing-contact fields or reference name this contact person: the
    same e-mail, or the same full name (either order, any case and spacing)."""
    email = _folded(person.get("email"))
    if email and "@" in email and _folded(invoice.get("contact_person_email")) == email:
        return True
    first, last = person.get("first_name"), person.get("last_name")
    if not (first and last):
        return False  # one name part alone names too many people
    names = {_folded(first, last), _folded(last, first)}
    return (_folded(invoice.get("contact_person_first_name"), invoice.get("contact_person_last_name")) in names
            or _folded(invoice.get("your_reference")) in names)


def _hold_documents(invoices: list[dict]) -> list[dict]:
    """Invoices as hold documents: key, number and date only (no personal data)."""
    return [{"invoice_netvisor_key": i.get("netvisor_key"), "invoice_number": i.get("invoice_number"),
             "date": parse_date(i.get("invoice_date"))} for i in invoices]


__all__ = [
    "NetvisorClient", "Credentials", "NetvisorAuth", "CustomerLock", "NetvisorError", "InvalidDataError",
    "LegalHoldError",
    "CustomerList", "InvoicePage", "mac", "parse_xml", "to_xml_bytes", "parse_server_time", "format_local_time",
    "SYSTEM", "ENCODING", "MAX_IDS", "MARKETING_BAN", "ConnectorError",
]
