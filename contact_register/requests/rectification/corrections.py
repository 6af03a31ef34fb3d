"""The corrected values of a rectification case (GDPR art. 16), kept in the register.

The requester identifies themselves with their current (wrong) details, the case's identifiers;
the corrected name, email, phone or title are recorded beside them in ``case_corrections``
(``contact-register request new --kind rectification --correct email=... --stdin``). They are
personal data like the identifiers: they never go into a Dagster run config, a log or the audit
trail (which records only which fields were given), and are deleted when the case closes.
"""

from __future__ import annotations

from contact_register.requests.cases.casebook import Register, RegisterError
from contact_register.requests.cases.identifiers import (
    MAX_TEXT,
    InvalidIdentifier,
    clean_text,
    name_key,
    normalize_email_strict,
    normalize_phone_strict,
)

FIELDS = ("name", "email", "phone", "title")


def validate_corrections(given: dict[str, object]) -> dict[str, str]:
    """field -> corrected value: emails lower-cased, phones in E.164, names with letters.
    Raises :class:`InvalidIdentifier` naming the field (never the value)."""
    unknown = sorted(set(given) - set(FIELDS))
    if unknown:
        raise InvalidIdentifier(f"correction: unknown field(s) {', '.join(unknown)} (use {', '.join(FIELDS)})")
    out: dict[str, str] = {}
    for field, value in given.items():
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if field == "email":
            out[field] = normalize_email_strict(value, "corrected email")
        elif field == "phone":
            out[field] = normalize_phone_strict(value, "corrected phone")
        else:
            text = clean_text(value, f"corrected {field}", MAX_TEXT)
            if field == "name" and not name_key(text):
                raise InvalidIdentifier("corrected name: has no letters")
            out[field] = text
    if not out:
        raise InvalidIdentifier("correction: give at least one of " + ", ".join(FIELDS))
    return out


def parse_pairs(pairs: list[str]) -> dict[str, str]:
    """``["email=x@y.fi", "phone=040..."]`` (the CLI's ``--correct``) -> validated corrections."""
    given: dict[str, object] = {}
    for pair in pairs:
        field, sep, value = pair.partition("=")
        if not sep:
            raise InvalidIdentifier("correction: expected FIELD=VALUE")
        given[field.strip()] = value
    return validate_corrections(given)


def save_corrections(register: Register, case_id: str, corrections: dict[str, str], *, actor: str) -> None:
    """Record (or replace) the corrected values of an open rectification case."""
    corrections = validate_corrections(corrections)
    with register.backend.transaction() as tx:
        case = register._open_case(tx, case_id)
        if case.kind != "rectification":
            raise RegisterError(f"case {case_id} is a {case.kind} case; corrections belong to rectification cases")
        for field, value in sorted(corrections.items()):
            tx.execute("DELETE FROM case_corrections WHERE case_id = ? AND field = ?", [case_id, field])
            tx.execute("INSERT INTO case_corrections (case_id, field, value) VALUES (?, ?, ?)",
                       [case_id, field, value])
        Register._audit(tx, case_id, actor, "corrections_recorded", {"fields": sorted(corrections)})


def load_corrections(register: Register, case_id: str) -> dict[str, str]:
    with register.backend.transaction() as tx:
        register._case_row(tx, case_id)
        return {r[0]: r[1] for r in tx.execute(
            "SELECT field, value FROM case_corrections WHERE case_id = ? ORDER BY field", [case_id])}
