"""Identifier normalisation, registered as DuckDB scalar functions for the staging SQL.

Emails: email-validator checks the syntax and normalises (NFC, IDNA domain); we lower-case the
whole address because no mail system our contacts use treats local parts case-sensitively.
Phones: phonenumbers parses the many ways Finns write numbers (+358 40 123 4567, 040-1234567,
0401234567) with FI as the default region and gives E.164; invalid numbers give NULL.
Names: lower case, diacritics kept apart by DuckDB's strip_accents in SQL, so no function here.
"""

from __future__ import annotations

import functools

import duckdb
import phonenumbers
from email_validator import EmailNotValidError, validate_email

DEFAULT_REGION = "FI"

# Role and shared mailboxes: an address like these never links two people by itself.
GENERIC_LOCAL_PARTS = (
    "info", "laskutus", "laskut", "billing", "invoice", "invoices", "support", "tuki", "asiakastuki",
    "asiakaspalvelu", "myynti", "sales", "office", "toimisto", "admin", "contact", "yhteys",
    "kirjaamo", "hr", "rekry", "noreply", "no-reply", "postmaster", "webmaster", "reception",
    "vaihde", "palaute", "marketing", "markkinointi",
)


@functools.lru_cache(maxsize=65536)
def normalize_email(value: str | None) -> str | None:
    if value is None:
        return None
    text = value.strip().strip("<>").strip()
    if not text or len(text) > 320:
        return None
    try:
        result = validate_email(text, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError:
        return None
    return result.normalized.lower()


@functools.lru_cache(maxsize=65536)
def normalize_phone(value: str | None) -> str | None:
    if value is None:
        return None
    text = value.strip()
    if not text or len(text) > 64:
        return None
    try:
        number = phonenumbers.parse(text, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def register(con: duckdb.DuckDBPyConnection) -> None:
    con.create_function("normalize_email", normalize_email, ["VARCHAR"], "VARCHAR", null_handling="special")
    con.create_function("normalize_phone", normalize_phone, ["VARCHAR"], "VARCHAR", null_handling="special")
