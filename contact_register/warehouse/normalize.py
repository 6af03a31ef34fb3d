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


# --- Fast paths for the bulk of well-formed identifiers --------------------------------------
# Calling the Python normalisers costs ~25 µs a value, too slow for a million records. Most
# values are plain: a lower-case ASCII address, or a Finnish number with separators. SQL macros
# normalise those in DuckDB and hand only the rest to the Python functions above. The fast paths
# accept a value only where the slow path provably gives the same answer (tests compare them):
# emails without anything email-validator treats specially, and numbers whose national part
# matches Finland's mobile or fixed-line pattern taken from phonenumbers' own metadata.

# Last labels of email-validator's special-use domains (it rejects them; the fast path must too).
_SPECIAL_TLDS = ("arpa", "invalid", "local", "localhost", "onion", "test")
EMAIL_FAST_RE = (
    r"[a-z0-9_%+\-]+(\.[a-z0-9_%+\-]+)*@([a-z0-9]([a-z0-9\-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}"
)


def _phone_patterns() -> tuple[str, str]:
    meta = phonenumbers.PhoneMetadata.metadata_for_region(DEFAULT_REGION)
    return meta.mobile.national_number_pattern, meta.fixed_line.national_number_pattern


def _sql_literal(text: str) -> str:
    # Only for our own constants (regular expressions from phonenumbers' metadata), never data.
    return "'" + text.replace("'", "''") + "'"


def register_macros(con: duckdb.DuckDBPyConnection) -> None:
    """SQL macros norm_email(x) and norm_phone(x): fast path in SQL, Python for the rest."""
    mobile, fixed = _phone_patterns()
    special = ", ".join(_sql_literal(t) for t in _SPECIAL_TLDS)
    con.execute(f"""
        CREATE OR REPLACE MACRO email_fast_form(x) AS lower(regexp_replace(x, '^[\\s<]+|[\\s>]+$', '', 'g'));
        CREATE OR REPLACE MACRO norm_email(x) AS CASE
            WHEN x IS NULL THEN NULL
            WHEN length(x) <= 254
                 AND regexp_full_match(email_fast_form(x), {_sql_literal(EMAIL_FAST_RE)})
                 AND length(split_part(email_fast_form(x), '@', 1)) <= 64
                 AND split_part(email_fast_form(x), '.', -1) NOT IN ({special})
                 AND NOT contains(email_fast_form(x), 'xn--')  -- punycode: email-validator decodes it
            THEN email_fast_form(x)
            ELSE normalize_email(x) END;
        CREATE OR REPLACE MACRO phone_compact(x) AS regexp_replace(x, '[\\s\\-().]', '', 'g');
        CREATE OR REPLACE MACRO phone_national(c) AS CASE
            WHEN starts_with(c, '+358') THEN substr(c, 5)
            WHEN starts_with(c, '00358') THEN substr(c, 6)
            WHEN starts_with(c, '0') AND NOT starts_with(c, '00') THEN substr(c, 2)
            END;
        CREATE OR REPLACE MACRO norm_phone(x) AS CASE
            WHEN x IS NULL THEN NULL
            WHEN length(x) <= 64
                 AND (regexp_full_match(coalesce(phone_national(phone_compact(x)), ''), {_sql_literal(mobile)})
                      OR regexp_full_match(coalesce(phone_national(phone_compact(x)), ''), {_sql_literal(fixed)}))
            THEN '+358' || phone_national(phone_compact(x))
            ELSE normalize_phone(x) END;
    """)
