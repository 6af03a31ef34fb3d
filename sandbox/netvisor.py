"""Imitation of Netvisor's XML API, answering as Netvisor documents it.

Where each fact is published (Netvisor's API pages at support.netvisor.fi; the public clients
rantalainen/netvisor-api-client and fastmonkeys/netvisor.py), and our own schemas of every
answer with the page each comes from: ``tests/contracts/netvisor/`` (the contract test holds
this imitation's answers to them):

- Authentication: the ``X-Netvisor-Authentication-*`` headers plus ``X-Netvisor-Interface-Language``
  and ``X-Netvisor-Organisation-ID``. ``MACHashCalculationAlgorithm: HMACSHA256`` is the lowercase
  hex HMAC-SHA256 of ``URL&Sender&CustomerId&Timestamp&Language&OrganisationId&TransactionId&
  TimestampUnix&CustomerKey&PartnerKey`` keyed with ``CustomerKey&PartnerKey`` (Latin-1);
  ``SHA256`` is the legacy plain SHA-256 of ``URL&Sender&CustomerId&Timestamp&Language&
  OrganisationId&TransactionId&CustomerKey&PartnerKey`` (rantalainen's 2020 ``src/index.ts``).
  A wrong key, a missing header, an unknown algorithm or one mode's name with the other's value
  answers ``AUTHENTICATION_FAILED``; ``mac_algorithms`` (both modes by default) narrows the modes
  this server takes, as a server that knew only the legacy mode would answer. A repeated TransactionId answers ``REQUEST_NOT_UNIQUE``;
  a second concurrent call for a customer is refused and counted in ``violations``.
- Answers: ``<?xml version="1.0" encoding="utf-8"?>`` as in Netvisor's documentation example,
  ``<Root><ResponseStatus><Status>OK</Status><TimeStamp>7.4.2009 15:53:44</TimeStamp>`` with the
  time stamp in Finnish local time ``d.m.yyyy hh:mm:ss``; a failure is ``FAILED`` and a second
  ``Status`` with ``CATEGORY :: text``.
- ``customerlist.nv`` (Netvisor's page "Get customer list customerlist.nv"): ``Customerlist/Customer``
  with ``Netvisorkey`` (that case), ``changedsince``/``keyword``.
- ``getcustomer.nv`` ("Get customer details getcustomer.nv"): ``id`` answers a bare ``<Customer>``,
  ``idlist`` (≤ 500) ``<Customers>``; an unknown ``id`` is ``FAILED`` with ``INVALID_DATA``
  (processors notes, checked against Netvisor's behaviour as the public clients record it). For
  ``idlist`` Netvisor's pages say nothing about unknown ids: we answer ``INVALID_DATA`` there
  too, the stricter reading. ``CustomerBaseInformation`` carries ``AdditionalStreetAddress``.
- ``customer.nv?method=edit&id=`` ("Import customer details customer.nv"): request elements in
  lower case (``additionaladdressline`` is the address extension); an empty element blanks a
  field; element names are accepted in any case.
- ``deletecustomer.nv?id=`` refuses customers with invoices.
- ``contactperson.nv`` ("Import customer contact person contactperson.nv"): POST only, ``method``
  (add|edit|delete) is an element of the XML, with ``customeridentifier``,
  ``contactpersonidentifier`` (edit, delete), ``firstname``, ``lastname`` and ``language``
  (required by the page's "occurs 1"). A ``method`` in the query string is not read.
  ``contactpersonaddress`` is also listed as occurring once but is not required here: an empty
  one might blank the address, and no public client sends it.
- ``salesinvoicelist.nv`` ("Get sales invoice or order list"): ≤ 500 per answer, ``NetvisorKey``,
  ``InvoiceNumber``, ``Invoicedate format="ansi"``, ``InvoiceStatus``, ``CustomerNetvisorKey``...;
  ``getsalesinvoice.nv`` ("Get sales invoice details"): ``netvisorkeylist`` (≤ 500) answers
  ``<SalesInvoices>``, an unknown key is left out.

Invoices keep a snapshot of their billing contact, as real invoices do. ``changedsince`` and
``lastmodifiedstart`` are inclusive at second resolution, in Finnish local time.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from bisect import bisect_right
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
from xml.etree.ElementTree import ParseError

from .base import PAGE_FAULT_OVERLAP, ApiError, Imitation, Request, Response
from .world import World

ENCODING = "utf-8"  # answers, as Netvisor's documentation example declares
MAC_TEXT_ENCODING = "latin-1"
HELSINKI = ZoneInfo("Europe/Helsinki")
MAX_IDS = 500
DEFAULTS = {
    "sender": "contact-register",
    "customer_id": "SB_CUST_1",
    "partner_id": "SB_PARTNER_1",
    "customer_key": "sandbox-netvisor-customer-key",
    "partner_key": "sandbox-netvisor-partner-key",
    "organisation_id": "2345678-9",
}
H = "X-Netvisor-Authentication-"
ISO_ATTR = ' type="ISO-3166"'
ANSI_ATTR = ' format="ansi"'
STATUS_ATTR = ' substatus="" isincollection="0"'
# customer.nv element -> store key, per section (the ones edit may change).
CUSTOMER_FIELDS = {
    "CustomerBaseInformation": {
        "InternalIdentifier": "code", "ExternalIdentifier": "business_id", "Name": "name",
        "NameExtension": "name_extension", "StreetAddress": "street", "AdditionalAddressLine": "additional_address",
        "City": "city", "PostNumber": "post_number", "PhoneNumber": "phone", "FaxNumber": "fax", "Email": "email",
        "EmailInvoicingAddress": "email_invoicing", "HomePageUri": "home_page",
    },
    "CustomerFinvoiceDetails": {"FinvoiceAddress": "finvoice_address", "FinvoiceRouterCode": "finvoice_router"},
    "CustomerDeliveryDetails": {
        "DeliveryName": "delivery_name", "DeliveryStreetAddress": "delivery_street",
        "DeliveryCity": "delivery_city", "DeliveryPostNumber": "delivery_post_number",
    },
    "CustomerContactDetails": {
        "ContactPerson": "contact_person", "ContactPersonEmail": "contact_email", "ContactPersonPhone": "contact_phone",
    },
}
# The same, by lower-case name (how requests are matched).
CUSTOMER_FIELDS_CI = {section.lower(): {el.lower(): key for el, key in fields.items()}
                      for section, fields in CUSTOMER_FIELDS.items()}
CONTACT_PERSON_FIELDS = {"firstname": "first_name", "lastname": "last_name", "phonenumber": "phone",
                         "email": "email", "title": "title"}


def _server_time(ts: float) -> str:
    """ResponseStatus/TimeStamp: Finnish local time, ``d.m.yyyy hh:mm:ss`` (``7.4.2009 15:53:44``)."""
    t = datetime.fromtimestamp(ts, HELSINKI)
    return f"{t.day}.{t.month}.{t.year} {t:%H:%M:%S}"


def _lower_children(el) -> dict:
    """Request elements by lower-case name (Netvisor's pages write them in lower case; clients
    send any case)."""
    return {child.tag.lower(): child for child in el}


def _parse_local(text: str, name: str) -> float:
    try:
        parsed = datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    except ValueError:
        raise ApiError(200, f"INVALID_DATA :: Parameter {name} is not a valid date") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=HELSINKI)
    return parsed.timestamp()


def _e(name: str, value: Any, attrs: str = "") -> str:
    if value is None or value == "":
        return f"<{name}{attrs} />"
    return f"<{name}{attrs}>{escape(str(value))}</{name}>"


def _ids(text: str | None, name: str) -> list[int]:
    if not text:
        raise ApiError(200, f"INVALID_DATA :: Parameter {name} is missing")
    try:
        ids = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ApiError(200, f"INVALID_DATA :: Parameter {name} must be a comma-separated list of ids") from None
    if len(ids) > MAX_IDS:
        raise ApiError(200, f"INVALID_DATA_SIZE :: At most {MAX_IDS} ids in {name}")
    return ids


def _page_faulted(parts: list[str], req: Request) -> list[str]:
    """Answers that are not paged (customerlist, the idlist reads) can still repeat records
    ("duplicate"); "shift" needs a previous page, so it changes nothing here."""
    return parts + parts[:PAGE_FAULT_OVERLAP] if req.page_fault == "duplicate" else parts


class NetvisorImitation(Imitation):
    name = "netvisor"

    def __init__(self, world: World, **credentials: str) -> None:
        super().__init__()
        self.credentials = dict(DEFAULTS, **credentials)
        self.latency_s = 0.0  # time a call spends "in flight" inside the server (tests raise it)
        self.violations = 0  # concurrent calls for one customer seen (and refused)
        self.auth_failures = 0
        # The MAC modes this server takes (tests narrow it to show the doctor naming the algorithm).
        self.mac_algorithms = {"HMACSHA256", "SHA256"}
        self.repeated_transactions = 0
        self.next_answer: bytes | None = None  # served verbatim, once, to the next call (tests: hostile XML)
        self._lock = threading.RLock()
        self._flight_lock = threading.Lock()
        self._in_flight: dict[str, int] = {}
        self._seen_transactions: set[tuple[str, str]] = set()
        nw = world.derive("netvisor")
        self.customers: dict[int, dict] = {c.id: dict(c._asdict(), additional_address="", fax="", home_page="",
                                                      delivery_name="", delivery_street="", delivery_city="",
                                                      delivery_post_number="")
                                           for c in nw.customers}
        self.contact_persons: dict[int, dict] = {p.id: dict(p._asdict(), title="") for p in nw.contact_persons}
        by_id = self.contact_persons
        self.invoices: dict[int, dict] = {}
        for inv in nw.invoices:
            rec = inv._asdict()
            customer = self.customers[inv.customer_id]
            p = by_id.get(inv.contact_person_id) if inv.contact_person_id else None
            rec.update(  # the invoice's own snapshot of who was billed
                customer_name=customer["name"], customer_code=customer["code"],
                customer_business_id=customer["business_id"], address=customer["street"],
                post_number=customer["post_number"], town=customer["city"],
                cp_first=p["first_name"] if p else "", cp_last=p["last_name"] if p else "",
                cp_phone=p["phone"] if p else "", cp_email=p["email"] if p else "",
            )
            self.invoices[inv.id] = rec
        self._next_customer = max(self.customers, default=0) + 1
        self._next_contact_person = max(self.contact_persons, default=1_000_000) + 1
        for path, method, handler in (
            ("/customerlist.nv", "GET", self.customer_list), ("/getcustomer.nv", "GET", self.get_customer),
            ("/customer.nv", "POST", self.edit_customer), ("/deletecustomer.nv", "POST", self.delete_customer),
            ("/contactperson.nv", "POST", self.contact_person), ("/salesinvoicelist.nv", "GET", self.invoice_list),
            ("/getsalesinvoice.nv", "GET", self.get_invoice),
        ):
            self.router.add(method, path, handler)

    # -- hooks ------------------------------------------------------------------------------

    def env(self, url: str) -> dict[str, str]:
        c = self.credentials
        return {
            "NETVISOR_BASE_URL": url, "NETVISOR_SENDER": c["sender"], "NETVISOR_CUSTOMER_ID": c["customer_id"],
            "NETVISOR_PARTNER_ID": c["partner_id"], "NETVISOR_CUSTOMER_KEY": c["customer_key"],
            "NETVISOR_PARTNER_KEY": c["partner_key"], "NETVISOR_ORGANISATION_ID": c["organisation_id"],
        }

    def normalize_path(self, path: str) -> str:
        return path.lower()  # Netvisor's resource names are case-insensitive

    def error_response(self, req: Request, status: int, message: str, code: str | None = None) -> Response:
        text = message if "::" in message else f"{code or 'ERROR'} :: {message}"
        return self._envelope("", status=status, failed=text)

    def authenticate(self, req: Request) -> Response | None:
        h = req.headers
        c = self.credentials
        needed = ("Sender", "CustomerId", "PartnerId", "Timestamp", "TimestampUnix", "TransactionId", "MAC",
                  "MACHashCalculationAlgorithm")
        if any(not h.get(H + name) for name in needed):
            return self._refuse_auth("Authentication headers are missing")
        if h.get(H + "CustomerId") != c["customer_id"] or h.get(H + "PartnerId") != c["partner_id"]:
            return self._refuse_auth("Unknown customer or partner")
        org = h.get("X-Netvisor-Organisation-ID") or ""
        if org != c["organisation_id"]:
            return self._refuse_auth("Organisation not found")
        language = h.get("X-Netvisor-Interface-Language") or ""
        url = f"http://{h.get('Host', '')}{req.path}" + (f"?{urlencode(req.query)}" if req.query else "")
        head = (url, h[H + "Sender"], h[H + "CustomerId"], h[H + "Timestamp"], language, org, h[H + "TransactionId"])
        keys = (c["customer_key"], c["partner_key"])
        algorithm = h.get(H + "MACHashCalculationAlgorithm")
        if algorithm not in self.mac_algorithms:
            return self._refuse_auth("Unsupported MAC algorithm")
        if algorithm == "HMACSHA256":
            expected = hmac.new("&".join(keys).encode(MAC_TEXT_ENCODING, "replace"),
                                "&".join(head + (h[H + "TimestampUnix"],) + keys).encode(MAC_TEXT_ENCODING, "replace"),
                                hashlib.sha256).hexdigest()
        elif algorithm == "SHA256":  # legacy: a plain hash, no HMAC key, no TimestampUnix
            expected = hashlib.sha256("&".join(head + keys).encode(MAC_TEXT_ENCODING, "replace")).hexdigest()
        else:
            return self._refuse_auth("Unsupported MAC algorithm")
        if not hmac.compare_digest(expected, h[H + "MAC"]):
            return self._refuse_auth("Integrity check failed: MAC does not match")
        key = (h[H + "CustomerId"], h[H + "TransactionId"])
        with self._lock:
            if key in self._seen_transactions:
                self.repeated_transactions += 1
                return self._envelope("", failed="REQUEST_NOT_UNIQUE :: TransactionId has already been used")
            self._seen_transactions.add(key)
        return None

    def _refuse_auth(self, text: str) -> Response:
        with self._lock:
            self.auth_failures += 1
        return self._envelope("", status=403, failed=f"AUTHENTICATION_FAILED :: {text}")

    def dispatch(self, req: Request) -> Response:
        customer = req.headers.get(H + "CustomerId") or ""
        with self._flight_lock:
            if self._in_flight.get(customer, 0) > 0:
                self.violations += 1
                return self._envelope("", failed="TOO_MANY_CONCURRENT_REQUESTS :: One request at a time per customer")
            self._in_flight[customer] = 1
        try:
            with self._lock:
                canned, self.next_answer = self.next_answer, None
            if canned is not None:
                return Response(200, canned, {"Content-Type": f"text/xml; charset={ENCODING}"})
            if self.latency_s:
                time.sleep(self.latency_s)
            return super().dispatch(req)
        finally:
            with self._flight_lock:
                self._in_flight[customer] = 0

    # -- envelope ---------------------------------------------------------------------------

    def _envelope(self, inner: str, *, status: int = 200, failed: str | None = None) -> Response:
        now = _server_time(time.time())
        if failed is None:
            head = f"<ResponseStatus><Status>OK</Status><TimeStamp>{now}</TimeStamp></ResponseStatus>"
        else:
            head = (f"<ResponseStatus><Status>FAILED</Status>{_e('Status', failed)}"
                    f"<TimeStamp>{now}</TimeStamp></ResponseStatus>")
        text = f'<?xml version="1.0" encoding="{ENCODING}"?>\n<Root>{head}{inner}</Root>'
        return Response(status, text.encode(ENCODING),
                        {"Content-Type": f"text/xml; charset={ENCODING}"})

    def _body(self, req: Request):
        try:
            return SafeET.fromstring(req.body, forbid_dtd=True)
        except (DefusedXmlException, ParseError, ValueError):
            raise ApiError(200, "INVALID_DATA :: Request body is not valid XML") from None

    # -- reads ------------------------------------------------------------------------------

    def customer_list(self, req: Request) -> Response:
        q = req.query
        since = _parse_local(q["changedsince"], "changedsince") if q.get("changedsince") else None
        keyword = (q.get("keyword") or "").lower()
        parts = []
        with self._lock:
            for cid in sorted(self.customers):
                c = self.customers[cid]
                if keyword:
                    if not any(keyword in (c[k] or "").lower() for k in ("name", "code", "business_id")):
                        continue
                elif since is not None and int(c["changed_at"]) < int(since):
                    continue
                parts.append(f"<Customer>{_e('Netvisorkey', cid)}{_e('Name', c['name'])}{_e('Code', c['code'])}"
                             f"{_e('OrganisationIdentifier', c['business_id'])}<CustomerGroupID /><CustomerGroupName />"
                             f"{_e('Uri', f'/getcustomer.nv?id={cid}')}</Customer>")
        return self._envelope(f"<Customerlist>{''.join(_page_faulted(parts, req))}</Customerlist>")

    def get_customer(self, req: Request) -> Response:
        single = req.query.get("id")
        ids = _ids(req.query.get("idlist") if single is None else single, "idlist" if single is None else "id")
        with self._lock:
            if any(cid not in self.customers for cid in ids):
                raise ApiError(200, "INVALID_DATA :: Customer not found")
            parts = [self._customer_xml(cid) for cid in ids]
        if single is not None:
            return self._envelope("".join(parts))  # one id: a bare <Customer>
        return self._envelope(f"<Customers>{''.join(_page_faulted(parts, req))}</Customers>")

    def _customer_xml(self, cid: int) -> str:
        c = self.customers[cid]
        persons = "".join(
            f"<CustomerContactPerson>{_e('ContactPersonID', p['id'])}{_e('ContactPersonFirstName', p['first_name'])}"
            f"{_e('ContactPersonLastName', p['last_name'])}{_e('ContactPersonPhoneNumber', p['phone'])}"
            f"{_e('ContactPersonEmail', p['email'])}<ContactPersonOfficeNetvisorKey /></CustomerContactPerson>"
            for p in self._persons_of(cid)
        )
        return (
            "<Customer><CustomerBaseInformation>"
            f"{_e('NetvisorKey', cid)}{_e('InternalIdentifier', c['code'])}{_e('ExternalIdentifier', c['business_id'])}"
            f"{_e('Name', c['name'])}{_e('NameExtension', c['name_extension'])}{_e('StreetAddress', c['street'])}"
            f"{_e('AdditionalStreetAddress', c['additional_address'])}{_e('City', c['city'])}"
            f"{_e('PostNumber', c['post_number'])}{_e('Country', 'FI', ISO_ATTR)}"
            f"{_e('PhoneNumber', c['phone'])}{_e('FaxNumber', c['fax'])}{_e('Email', c['email'])}"
            f"{_e('EmailInvoicingAddress', c['email_invoicing'])}{_e('HomePageUri', c['home_page'])}"
            f"{_e('IsActive', 1)}{_e('IsPrivateCustomer', 1 if c['is_private'] else 0)}"
            "</CustomerBaseInformation><CustomerFinvoiceDetails>"
            f"{_e('FinvoiceAddress', c['finvoice_address'])}{_e('FinvoiceRouterCode', c['finvoice_router'])}"
            "</CustomerFinvoiceDetails><CustomerDeliveryDetails>"
            f"{_e('DeliveryName', c['delivery_name'])}{_e('DeliveryStreetAddress', c['delivery_street'])}"
            f"{_e('DeliveryCity', c['delivery_city'])}{_e('DeliveryPostNumber', c['delivery_post_number'])}"
            "</CustomerDeliveryDetails><CustomerContactDetails>"
            f"{_e('ContactPerson', c['contact_person'])}{_e('ContactPersonEmail', c['contact_email'])}"
            f"{_e('ContactPersonPhone', c['contact_phone'])}</CustomerContactDetails>"
            f"<CustomerContactPersons>{persons}</CustomerContactPersons>"
            "<CustomerAdditionalInformation><Comment /><YourDefaultReference /></CustomerAdditionalInformation>"
            "</Customer>"
        )

    def _persons_of(self, cid: int) -> list[dict]:
        index = getattr(self, "_persons_index", None)
        if index is None or index[0] != self._persons_version:
            by_customer: dict[int, list[int]] = {}
            for pid, p in self.contact_persons.items():
                by_customer.setdefault(p["customer_id"], []).append(pid)
            self._persons_index = (self._persons_version, by_customer)
        return [self.contact_persons[pid] for pid in self._persons_index[1].get(cid, []) if pid in self.contact_persons]

    _persons_version = 0

    def invoice_list(self, req: Request) -> Response:
        q = req.query
        above = int(q.get("invoicesabovenetvisorkey") or 0) if (q.get("invoicesabovenetvisorkey") or "0").isdigit() else None
        if above is None:
            raise ApiError(200, "INVALID_DATA :: invoicesabovenetvisorkey must be a number")
        since = _parse_local(q["lastmodifiedstart"], "lastmodifiedstart") if q.get("lastmodifiedstart") else None
        customer = q.get("customernetvisorkey")
        customer_id = int(customer) if customer and customer.isdigit() else None
        if customer and customer_id is None:
            raise ApiError(200, "INVALID_DATA :: customernetvisorkey must be a number")

        def wanted(inv: dict) -> bool:
            return (since is None or int(inv["modified_at"]) >= int(since)) and \
                (customer_id is None or inv["customer_id"] == customer_id)

        parts = []
        with self._lock:
            keys = self._sorted_invoice_keys()
            first = bisect_right(keys, above)
            if req.page_fault == "shift":  # at-least-once paging: the page starts with the previous one's end
                replay = [k for k in keys[:first] if wanted(self.invoices[k])][-PAGE_FAULT_OVERLAP:]
                parts = [self._invoice_list_item(k) for k in replay]
            for key in keys[first:]:
                if len(parts) == MAX_IDS:
                    break
                if wanted(self.invoices[key]):
                    parts.append(self._invoice_list_item(key))
        if req.page_fault == "duplicate":
            parts += parts[:PAGE_FAULT_OVERLAP]
        return self._envelope(f"<SalesInvoiceList>{''.join(parts)}</SalesInvoiceList>")

    def _invoice_list_item(self, key: int) -> str:
        inv = self.invoices[key]
        return (f"<SalesInvoice>{_e('NetvisorKey', key)}{_e('InvoiceNumber', inv['number'])}"
                f"{_e('Invoicedate', inv['date'], ANSI_ATTR)}"
                f"{_e('InvoiceStatus', inv['status'], STATUS_ATTR)}"
                f"{_e('CustomerCode', inv['customer_code'])}{_e('CustomerName', inv['customer_name'])}"
                f"{_e('CustomerNetvisorKey', inv['customer_id'])}{_e('ReferenceNumber', inv['number'] + '0')}"
                # The world's invoices have no sums: written as zero, in Netvisor's decimal comma.
                f"{_e('InvoiceSum', '0,00')}{_e('OpenSum', '0,00')}"
                f"{_e('Uri', f'/getsalesinvoice.nv?netvisorkey={key}')}"
                "</SalesInvoice>")

    def _sorted_invoice_keys(self) -> list[int]:
        cached = getattr(self, "_invoice_keys", None)
        if cached is None or len(cached) != len(self.invoices):  # invoices are only ever added
            self._invoice_keys = cached = sorted(self.invoices)
        return cached

    def get_invoice(self, req: Request) -> Response:
        keys = _ids(req.query.get("netvisorkeylist") or req.query.get("netvisorkey"), "netvisorkeylist")
        parts = []
        with self._lock:
            for key in keys:
                inv = self.invoices.get(key)
                if inv is None:
                    continue  # an unknown key answers OK with nothing
                parts.append(
                    f"<SalesInvoice>{_e('SalesInvoiceNetvisorKey', key)}{_e('SalesInvoiceNumber', inv['number'])}"
                    f"{_e('SalesInvoiceDate', inv['date'], ANSI_ATTR)}"
                    f"{_e('SalesInvoiceYourReference', inv['your_reference'])}"
                    f"{_e('InvoicingCustomerNetvisorKey', inv['customer_id'])}"
                    f"{_e('InvoicingCustomerName', inv['customer_name'])}"
                    f"{_e('InvoicingCustomerOrganizationIdentifier', inv['customer_business_id'])}"
                    f"{_e('InvoicingCustomerAddressline', inv['address'])}"
                    f"{_e('InvoicingCustomerPostnumber', inv['post_number'])}{_e('InvoicingCustomerTown', inv['town'])}"
                    f"{_e('ContactPersonNetvisorKey', inv['contact_person_id'])}"
                    f"{_e('ContactPersonFirstName', inv['cp_first'])}{_e('ContactPersonLastName', inv['cp_last'])}"
                    f"{_e('ContactPersonPhoneNumber', inv['cp_phone'])}{_e('ContactPersonEmail', inv['cp_email'])}"
                    "</SalesInvoice>"
                )
        return self._envelope(f"<SalesInvoices>{''.join(_page_faulted(parts, req))}</SalesInvoices>")

    # -- writes -----------------------------------------------------------------------------

    def edit_customer(self, req: Request) -> Response:
        method = req.query.get("method")
        if method != "edit":
            raise ApiError(200, "INVALID_DATA :: Only method=edit is imitated")
        cid = int(req.query["id"]) if (req.query.get("id") or "").isdigit() else None
        root = self._body(req)
        customer_el = _lower_children(root).get("customer")
        if customer_el is None:
            raise ApiError(200, "INVALID_DATA :: customer element is missing")
        changes: dict[str, str] = {}
        for section in customer_el:
            fields = CUSTOMER_FIELDS_CI.get(section.tag.lower())
            if fields is None:
                raise ApiError(200, f"INVALID_DATA :: Unknown element {section.tag[:40]}")
            for el in section:
                if el.tag.lower() not in fields:
                    raise ApiError(200, f"INVALID_DATA :: Unknown element {el.tag[:40]}")
                changes[fields[el.tag.lower()]] = el.text or ""  # an empty element blanks the field
        if "name" in changes and not changes["name"].strip():
            raise ApiError(200, "INVALID_DATA :: Name cannot be empty")
        with self._lock:
            if cid not in self.customers:
                raise ApiError(200, "INVALID_DATA :: Customer not found")
            self.customers[cid].update(changes)
            self.customers[cid]["changed_at"] = time.time()
        return self._envelope(f"<Replies><InsertedDataIdentifier>{cid}</InsertedDataIdentifier></Replies>")

    def delete_customer(self, req: Request) -> Response:
        cid = int(req.query["id"]) if (req.query.get("id") or "").isdigit() else None
        with self._lock:
            if cid not in self.customers:
                raise ApiError(200, "INVALID_DATA :: Customer not found")
            if any(inv["customer_id"] == cid for inv in self.invoices.values()):
                raise ApiError(200, "INVALID_DATA :: Customer has sales invoices and cannot be deleted")
            del self.customers[cid]
            for pid in [p for p, rec in self.contact_persons.items() if rec["customer_id"] == cid]:
                del self.contact_persons[pid]
            self._persons_version += 1
        return self._envelope("")

    def contact_person(self, req: Request) -> Response:
        root = self._body(req)
        el = _lower_children(root).get("contactperson")
        if el is None:
            raise ApiError(200, "INVALID_DATA :: contactperson element is missing")
        given = _lower_children(el)
        method = (given["method"].text or "").strip().lower() if "method" in given else ""
        if method not in ("add", "edit", "delete"):  # read from the XML only, never the query
            raise ApiError(200, "INVALID_DATA :: method must be add, edit or delete")
        for required in ("customeridentifier", "firstname", "lastname", "language"):
            if required not in given:
                raise ApiError(200, f"INVALID_DATA :: {required} is missing")
        customer_text = given["customeridentifier"].text or ""
        if not customer_text.strip().isdigit():
            raise ApiError(200, "INVALID_DATA :: customeridentifier is not a number")
        cid = int(customer_text)
        person_text = (given["contactpersonidentifier"].text or "") if "contactpersonidentifier" in given else ""
        changes = {}
        for name, child in given.items():
            if name in CONTACT_PERSON_FIELDS:
                changes[CONTACT_PERSON_FIELDS[name]] = child.text or ""
            elif name not in ("method", "customeridentifier", "contactpersonidentifier", "language", "isdefault",
                              "officeidentifier", "positionidentifier", "contactpersonaddress"):
                raise ApiError(200, f"INVALID_DATA :: Unknown element {child.tag[:40]}")
        with self._lock:
            if cid not in self.customers:
                raise ApiError(200, "INVALID_DATA :: Customer not found")
            if method == "add":
                pid = self._next_contact_person
                self._next_contact_person += 1
                self.contact_persons[pid] = dict(
                    {"id": pid, "customer_id": cid, "true_person_id": None, "first_name": "", "last_name": "",
                     "phone": "", "email": "", "title": "", "changed_at": time.time()}, **changes)
                self._persons_version += 1
            else:
                pid = int(person_text) if person_text.strip().isdigit() else -1
                person = self.contact_persons.get(pid)
                if person is None or person["customer_id"] != cid:
                    raise ApiError(200, "INVALID_DATA :: Contact person not found for this customer")
                if method == "delete":
                    del self.contact_persons[pid]
                    self._persons_version += 1
                else:
                    person.update(changes)
                    person["changed_at"] = time.time()
            # A contact person is part of the customer: the customer counts as changed.
            self.customers[cid]["changed_at"] = time.time()
        return self._envelope(f"<Replies><InsertedDataIdentifier>{pid}</InsertedDataIdentifier></Replies>")

    # -- helpers for tests, benchmarks and the demo ---------------------------------------

    def live_customer_ids(self) -> list[int]:
        with self._lock:
            return sorted(self.customers)

    def live_contact_person_ids(self) -> list[int]:
        with self._lock:
            return sorted(self.contact_persons)

    def live_invoice_ids(self) -> list[int]:
        with self._lock:
            return sorted(self.invoices)

    def touch_customer(self, cid: int, **changes: Any) -> None:
        with self._lock:
            self.customers[cid].update(changes)
            self.customers[cid]["changed_at"] = time.time()

    def add_contact_person(self, customer_id: int, first_name: str, last_name: str, email: str = "",
                           phone: str = "") -> int:
        """A new contact person (tests), as the Netvisor UI would add one."""
        with self._lock:
            pid = self._next_contact_person
            self._next_contact_person += 1
            self.contact_persons[pid] = {"id": pid, "customer_id": customer_id, "true_person_id": None,
                                         "first_name": first_name, "last_name": last_name, "phone": phone,
                                         "email": email, "title": "", "changed_at": time.time()}
            self._persons_version += 1
            self.customers[customer_id]["changed_at"] = time.time()
            return pid

    def delete_customer_directly(self, cid: int) -> None:
        """Remove a customer as the Netvisor UI would (tests of deletion reconciliation)."""
        with self._lock:
            del self.customers[cid]
            for pid in [p for p, rec in self.contact_persons.items() if rec["customer_id"] == cid]:
                del self.contact_persons[pid]
            self._persons_version += 1

    def add_invoice(self, customer_id: int, date: str, contact_person_id: int | None = None, *,
                    your_reference: str = "", key_on_invoice: bool = True) -> int:
        """A new invoice (tests): snapshot of the customer and contact person as they are now.
        ``key_on_invoice=False`` is an invoice whose billing contact was typed by hand: the
        contact's name, e-mail and phone are on it, but not the contact person's key."""
        with self._lock:
            key = max(self.invoices, default=0) + 1
            c = self.customers[customer_id]
            p = self.contact_persons.get(contact_person_id) if contact_person_id else None
            self.invoices[key] = {
                "id": key, "number": str(10000 + key), "date": date, "status": "open", "customer_id": customer_id,
                "contact_person_id": contact_person_id if key_on_invoice else None, "your_reference": your_reference,
                "modified_at": time.time(),
                "customer_name": c["name"], "customer_code": c["code"], "customer_business_id": c["business_id"],
                "address": c["street"], "post_number": c["post_number"], "town": c["city"],
                "cp_first": p["first_name"] if p else "", "cp_last": p["last_name"] if p else "",
                "cp_phone": p["phone"] if p else "", "cp_email": p["email"] if p else "",
            }
            return key
