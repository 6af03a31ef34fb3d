"""Netvisor records -> raw table rows: the fields the register needs, plus the parsed record.

Only what the register needs is kept: who (names, e-mails, phones, addresses of persons and
private customers, business ids) from customers and contact persons; from invoices only what a
bookkeeping hold and the warehouse's links need - the invoice's key, number and date and the
keys of its customer and contact person. An invoice's own copy of its billing contact (name,
e-mail, phone, reference, address) is not kept: it would come back with every full re-read
after an erasure, and the subject export reads it live from Netvisor. No invoice lines, sums
or attachments. Netvisor sends unset fields as empty elements; they
become NULL. Extraction never raises on a bad record: a problem is an issue ``(record_id,
problem)`` whose text names a field, never a value.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from contact_register.sync.raw_store import TableSpec, json_text
from connectors.netvisor import parse_date

TAIL = (("record", "JSON"), ("changed_at", "TIMESTAMPTZ"), ("synced_at", "TIMESTAMPTZ"))

SPECS: dict[str, TableSpec] = {
    "customers": TableSpec("customers", (
        ("id", "BIGINT"), ("code", "VARCHAR"), ("name", "VARCHAR"), ("name_extension", "VARCHAR"),
        ("business_id", "VARCHAR"), ("is_private", "BOOLEAN"), ("is_active", "BOOLEAN"),
        ("email", "VARCHAR"), ("phone", "VARCHAR"), ("email_invoicing_address", "VARCHAR"),
        ("finvoice_address", "VARCHAR"), ("finvoice_router_code", "VARCHAR"),
        ("street_address", "VARCHAR"), ("post_number", "VARCHAR"), ("city", "VARCHAR"),
        ("contact_person", "VARCHAR"), ("contact_person_email", "VARCHAR"), ("contact_person_phone", "VARCHAR"),
    ) + TAIL),
    "contact_persons": TableSpec("contact_persons", (
        ("id", "BIGINT"), ("customer_id", "BIGINT"), ("first_name", "VARCHAR"), ("last_name", "VARCHAR"),
        ("email", "VARCHAR"), ("phone", "VARCHAR"), ("office_id", "BIGINT"),
    ) + TAIL),
    "invoices": TableSpec("invoices", (
        ("id", "BIGINT"), ("invoice_number", "VARCHAR"), ("invoice_date", "VARCHAR"),
        ("customer_id", "BIGINT"), ("contact_person_id", "BIGINT"),
    ) + TAIL),
}
ENTITIES = tuple(SPECS)

_EMAIL_SHAPE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _v(value: Any) -> str | None:
    """Empty elements (unset fields) are NULL; text is kept exactly as Netvisor sent it."""
    if value is None or value == "":
        return None
    return str(value)


def _flag(value: Any) -> bool | None:
    if value in ("1", "true", "True"):
        return True
    if value in ("0", "false", "False"):
        return False
    return None


def _check_email(rid: str, field: str, value: str | None, issues: list) -> None:
    if value is not None and not _EMAIL_SHAPE.match(value.strip()):
        issues.append((rid, f"{field} is not an e-mail address"))


def record_json(record: dict) -> str:
    text, _repaired = json_text(record)
    return text


def customer_row(c: dict, now: datetime, issues: list) -> dict:
    rid = str(c["netvisor_key"])
    record = {k: v for k, v in c.items() if k != "contact_persons"}
    if _flag(c.get("is_private_customer")) is None:
        issues.append((rid, "IsPrivateCustomer is not 0 or 1"))
    for field in ("email", "contact_person_email"):
        _check_email(rid, field, _v(c.get(field)), issues)
    return {
        "id": c["netvisor_key"], "code": _v(c.get("code")), "name": _v(c.get("name")),
        "name_extension": _v(c.get("name_extension")), "business_id": _v(c.get("business_id")),
        "is_private": _flag(c.get("is_private_customer")), "is_active": _flag(c.get("is_active")),
        "email": _v(c.get("email")), "phone": _v(c.get("phone")),
        "email_invoicing_address": _v(c.get("email_invoicing_address")),
        "finvoice_address": _v(c.get("finvoice_address")), "finvoice_router_code": _v(c.get("finvoice_router_code")),
        "street_address": _v(c.get("street_address")), "post_number": _v(c.get("post_number")),
        "city": _v(c.get("city")), "contact_person": _v(c.get("contact_person")),
        "contact_person_email": _v(c.get("contact_person_email")),
        "contact_person_phone": _v(c.get("contact_person_phone")),
        "record": record_json(record), "changed_at": now, "synced_at": now,
    }


def contact_person_row(customer_id: int, p: dict, now: datetime, issues: list) -> dict:
    rid = str(p["id"])
    _check_email(rid, "email", _v(p.get("email")), issues)
    if _v(p.get("first_name")) is None and _v(p.get("last_name")) is None:
        issues.append((rid, "contact person has no name"))
    return {
        "id": p["id"], "customer_id": customer_id, "first_name": _v(p.get("first_name")),
        "last_name": _v(p.get("last_name")), "email": _v(p.get("email")), "phone": _v(p.get("phone")),
        "office_id": p.get("office_id"), "record": record_json(dict(p, customer_id=customer_id)),
        "changed_at": now, "synced_at": now,
    }


def invoice_row(item: dict, detail: dict | None, now: datetime, issues: list) -> dict:
    """An invoice's keys and date only (see the module docstring): the billing-contact fields of
    ``detail`` are read for the contact person's key and then dropped."""
    rid = str(item["netvisor_key"])
    d = detail or {}
    if detail is None:
        issues.append((rid, "invoice details missing from getsalesinvoice"))
    invoice_date = _v(item.get("invoice_date") or d.get("invoice_date"))
    if invoice_date is not None and parse_date(invoice_date) is None:
        issues.append((rid, "InvoiceDate is not a date"))
    row = {
        "id": item["netvisor_key"], "invoice_number": _v(item.get("invoice_number") or d.get("invoice_number")),
        "invoice_date": invoice_date,
        "customer_id": item.get("customer_netvisor_key") or d.get("invoicing_customer_netvisor_key"),
        "contact_person_id": d.get("contact_person_netvisor_key"),
    }
    return dict(row, record=record_json(row), changed_at=now, synced_at=now)
