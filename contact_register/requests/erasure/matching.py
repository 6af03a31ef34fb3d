"""Which identifiers and records are the subject's own, for the erasers' live look-ups.

The warehouse links the subject's records, but an eraser also searches each system live (a
record the last sync has not seen must go too). A live search by a shared identifier would
hit other people: ``info@`` or a switchboard number. So before any eraser runs:

- :func:`narrow_to_personal` keeps only identifiers that are the subject's alone: role
  mailboxes (``info@``, ``laskutus@`` ...) go, and so does any email or phone the warehouse
  also finds on records of other persons;
- :func:`is_subject_record` accepts a live hit only when it carries one of those identifiers
  and, where both sides have a name, the same name (word order and accents aside).
"""

from __future__ import annotations

import duckdb

from contact_register.warehouse.identity import generic_local_parts
from contact_register.warehouse.normalize import normalize_email, normalize_phone
from contact_register.requests.cases.identifiers import name_key
from contact_register.requests.writeback.base import WritebackSubject


def _shared_with_others(con: duckdb.DuckDBPyConnection, subject: WritebackSubject) -> set[tuple[str, str]]:
    if not subject.emails and not subject.phones:
        return set()
    rows = con.execute(
        """SELECT DISTINCT i.kind, i.value_norm FROM person_identifiers i JOIN person_records r
             ON r.system = i.system AND r.record_kind = i.record_kind AND r.record_id = i.record_id
           WHERE ((i.kind = 'email' AND i.value_norm IN (SELECT unnest(?::VARCHAR[])))
               OR (i.kind = 'phone' AND i.value_norm IN (SELECT unnest(?::VARCHAR[]))))
             AND r.person_id NOT IN (SELECT unnest(?::VARCHAR[]))""",
        [subject.emails, subject.phones, subject.person_ids or [""]],
    ).fetchall()
    return {(k, v) for k, v in rows}


def narrow_to_personal(subject: WritebackSubject, con: duckdb.DuckDBPyConnection | None) -> dict[str, int]:
    """Drop shared identifiers from ``subject.emails``/``phones`` in place; returns how many of
    each reason were dropped (counts only, for the case)."""
    generic = set(generic_local_parts())
    shared = _shared_with_others(con, subject) if con is not None else set()
    dropped = {"role_mailbox": 0, "shared_with_others": 0}
    emails = []
    for e in subject.emails:
        if e.split("@", 1)[0] in generic:
            dropped["role_mailbox"] += 1
        elif ("email", e) in shared:
            dropped["shared_with_others"] += 1
        else:
            emails.append(e)
    phones = []
    for p in subject.phones:
        if ("phone", p) in shared:
            dropped["shared_with_others"] += 1
        else:
            phones.append(p)
    subject.emails, subject.phones = emails, phones
    return dropped


def is_subject_record(subject: WritebackSubject, *, name: str | None, emails=(), phones=()) -> bool:
    """A live record is the subject's when it carries one of their personal identifiers and its
    name (if it has one and the subject has any) is one of theirs."""
    mine_e = set(subject.emails)
    mine_p = set(subject.phones)
    hit = any(normalize_email(e) in mine_e for e in emails if e) or \
        any(normalize_phone(p) in mine_p for p in phones if p)
    if not hit:
        return False
    keys = {name_key(n) for n in subject.names if n}
    if not keys or not name or not name.strip():
        return True
    return name_key(name) in keys


def is_subject_full_name(subject: WritebackSubject, name: str | None) -> bool:
    """A record that has no e-mail is a *candidate* of the subject's when its full name is one of
    theirs: at least two name words on both sides (a first name alone matches too many people),
    word order and accents aside. Never proof: callers list such records for the officer to
    confirm and act on none of them."""
    key = name_key(name or "")
    if len(key.split()) < 2:
        return False
    return key in {name_key(n) for n in subject.names if n and len(name_key(n).split()) >= 2}
