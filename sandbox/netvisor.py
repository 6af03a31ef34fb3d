"""Imitation of Netvisor's XML API (facts: see the docstring of connectors/netvisor.py).

What it checks like the real service: the ``X-Netvisor-Authentication-*`` headers and the
HMAC-SHA256 MAC (a wrong key answers ``AUTHENTICATION_FAILED``), a fresh TransactionId on every
request (a repeat answers ``REQUEST_NOT_UNIQUE``), one call at a time per customer (a second
concurrent call is refused and counted in ``violations``), ISO-8859-15 XML both ways with the
``<Root><ResponseStatus>`` envelope (FAILED answers carry ``CATEGORY :: text`` in a second
``Status``), ≤ 500 ids per idlist/netvisorkeylist and per sales-invoice list page, empty
elements blanking fields on edit, and ``deletecustomer.nv`` refusing customers with invoices.
Invoices keep a snapshot of their billing contact, as real invoices do.

Times on the wire are Finnish local time (``YYYY-MM-DD HH:MM:SS``); ``changedsince`` and
``lastmodifiedstart`` are inclusive at second resolution.
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

ENCODING = "ISO-8859-15"
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
CONTACT_PERSON_FIELDS = {"FirstName": "first_name", "LastName": "last_name", "PhoneNumber": "phone",
                         "Email": "email", "Title": "title"}


def _local(ts: float) -> str:
    return datetime.fromtimestamp(ts, HELSINKI).strftime("%Y-%m-%d %H:%M:%S")


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
        if h.get(H + "MACHashCalculationAlgorithm") != "SHA256":
            return self._refuse_auth("Unsupported MAC algorithm")
        if h.get(H + "CustomerId") != c["customer_id"] or h.get(H + "PartnerId") != c["partner_id"]:
            return self._refuse_auth("Unknown customer or partner")
        org = h.get("X-Netvisor-Organisation-ID") or h.get(H + "OrganisationId") or ""
        if org != c["organisation_id"]:
            return self._refuse_auth("Organisation not found")
        language = h.get(H + "Language") or h.get("X-Netvisor-Interface-Language") or ""
        url = f"http://{h.get('Host', '')}{req.path}" + (f"?{urlencode(req.query)}" if req.query else "")
        message = "&".join((url, h[H + "Sender"], h[H + "CustomerId"], h[H + "Timestamp"], language, org,
                            h[H + "TransactionId"], h[H + "TimestampUnix"], c["customer_key"], c["partner_key"]))
        expected = hmac.new(f"{c['customer_key']}&{c['partner_key']}".encode(ENCODING, "replace"),
                            message.encode(ENCODING, "replace"), hashlib.sha256).hexdigest()
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
        now = _local(time.time())
        if failed is None:
            head = f"<ResponseStatus><Status>OK</Status><TimeStamp>{now}</TimeStamp></ResponseStatus>"
        else:
            head = (f"<ResponseStatus><Status>FAILED</Status>{_e('Status', failed)}"
                    f"<TimeStamp>{now}</TimeStamp></ResponseStatus>")
        text = f'<?xml version="1.0" encoding="{ENCODING}" standalone="yes"?>\n<Root>{head}{inner}</Root>'
        return Response(status, text.encode(ENCODING, "xmlcharrefreplace"),
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
        ids = _ids(req.query.get("idlist") or req.query.get("id"), "idlist")
        with self._lock:
            parts = [self._customer_xml(cid) for cid in ids if cid in self.customers]
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
            f"{_e('AdditionalAddressLine', c['additional_address'])}{_e('City', c['city'])}"
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
                f"{_e('InvoiceDate', inv['date'], ANSI_ATTR)}"
                f"{_e('InvoiceStatus', inv['status'], STATUS_ATTR)}"
                f"{_e('CustomerNetvisorKey', inv['customer_id'])}{_e('CustomerCode', inv['customer_code'])}"
                f"{_e('CustomerName', inv['customer_name'])}{_e('Uri', f'/getsalesinvoice.nv?netvisorkey={key}')}"
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
        customer_el = root.find("Customer")
        if customer_el is None:
            raise ApiError(200, "INVALID_DATA :: Customer element is missing")
        changes: dict[str, str] = {}
        for section in customer_el:
            fields = CUSTOMER_FIELDS.get(section.tag)
            if fields is None:
                raise ApiError(200, f"INVALID_DATA :: Unknown element {section.tag[:40]}")
            for el in section:
                if el.tag not in fields:
                    raise ApiError(200, f"INVALID_DATA :: Unknown element {el.tag[:40]}")
                changes[fields[el.tag]] = el.text or ""  # an empty element blanks the field
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
        method = req.query.get("method")
        if method not in ("add", "edit", "delete"):
            raise ApiError(200, "INVALID_DATA :: method must be add, edit or delete")
        root = self._body(req)
        el = root.find("ContactPerson")
        if el is None:
            raise ApiError(200, "INVALID_DATA :: ContactPerson element is missing")
        customer_text = el.findtext("CustomerIdentifier") or ""
        if not customer_text.strip().isdigit():
            raise ApiError(200, "INVALID_DATA :: CustomerIdentifier is missing")
        cid = int(customer_text)
        changes = {}
        for child in el:
            if child.tag in CONTACT_PERSON_FIELDS:
                changes[CONTACT_PERSON_FIELDS[child.tag]] = child.text or ""
            elif child.tag not in ("CustomerIdentifier", "ContactPersonIdentifier"):
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
                pid = int(req.query["id"]) if (req.query.get("id") or "").isdigit() else -1
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

    def add_invoice(self, customer_id: int, date: str, contact_person_id: int | None = None) -> int:
        """A new invoice (tests): snapshot of the customer and contact person as they are now."""
        with self._lock:
            key = max(self.invoices, default=0) + 1
            c = self.customers[customer_id]
            p = self.contact_persons.get(contact_person_id) if contact_person_id else None
            self.invoices[key] = {
                "id": key, "number": str(10000 + key), "date": date, "status": "open", "customer_id": customer_id,
                "contact_person_id": contact_person_id, "your_reference": "", "modified_at": time.time(),
                "customer_name": c["name"], "customer_code": c["code"], "customer_business_id": c["business_id"],
                "address": c["street"], "post_number": c["post_number"], "town": c["city"],
                "cp_first": p["first_name"] if p else "", "cp_last": p["last_name"] if p else "",
                "cp_phone": p["phone"] if p else "", "cp_email": p["email"] if p else "",
            }
            return key
