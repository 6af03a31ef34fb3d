"""Erasure inside our own stores, down to the bytes (the last step of an erasure).

``erase_own_stores`` removes one person from everything the project itself keeps:

1. **Raw stores** (``RAW_DIR/<system>.duckdb``): the rows of the person's records (by the record
   ids the warehouse links to them, with the child rows of those records) and every row whose
   text holds one of their personal emails or phone numbers (any common spelling). A DuckDB
   DELETE leaves the rows' bytes in free blocks, so each file is instead copied into a fresh
   file holding only the kept rows (cursors and state tables included), fsynced and renamed
   over the old one. The identity state store (record key -> person id, operator decisions)
   loses the person's record keys the same way.
2. **Warehouse**: rebuilt from the cleaned raw stores and published by rename
   (``contact_register/warehouse/build.py``), then checked. Steps 1 and 2 hold the warehouse lock
   (``build.warehouse_lock``), which every build takes too: a nightly build that copied the raw
   stores before they were cleaned would otherwise write the person's record keys back into the
   identity state store and publish them again. A running build is waited for
   (``WAREHOUSE_LOCK_WAIT_S``), then the step reports itself busy.
3. **Exports**: the zip of this case and of every case about the same subject (cases share
   keyed subject hashes) is deleted; the case keeps the checksum and the trail.
4. **Dagster**: the caller's ``scrub_runs`` deletes the runs and compute logs that
   :meth:`Needles.concerns` proves to be about the person. The core stays Dagster-free; the
   erasure job passes ``pipelines/jobs/erasure_dagster_storage.scrub_dagster``.
5. **Register**: this case's and the related cases' identifiers are replaced by keyed hashes
   (``Register.redact_identifiers``): cases, states and the audit trail stay. This runs last and
   only when everything else succeeded, so a failed attempt can be repeated with the same
   identifiers.

Rows are removed whole, not scrubbed: a raw store is a copy, and the source keeps whatever its
own erasure kept (an unlinked deal, a ticket shared with others). A record the source changed
comes back with the next incremental sync; one it kept unchanged comes back with a
``full_refresh`` (or Netvisor's periodic full re-read). Names alone never select a raw row:
namesakes would go too.

Concurrency: a raw sync holds its store's DuckDB write lock for the whole sync. We attach each
store read-only, which takes DuckDB's shared lock: while we copy, a sync cannot start on that
store (its open fails with "could not set lock"), and while a sync runs, our attach fails; we
retry for ``lock_wait_s`` and then report the store as busy (state ``failed``, nothing of the
register changed: run the step again after the sync). The lock is held until the new file has
been renamed into place, so no sync can write into the old file in between.

``Outcome.detail`` carries counts only.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import re
import time
import traceback
import unicodedata
from email.utils import getaddresses
from pathlib import Path
from typing import Callable

import duckdb
import phonenumbers

from connectors.errors import SafeMessage, describe
from contact_register.sync.google.sync import CHILDREN as GOOGLE_CHILDREN
from contact_register.sync.raw_store import raw_path
from contact_register.warehouse import identity_state
from contact_register.warehouse.build import (WarehouseBusy, remove_abandoned_builds, build_warehouse,
                                    discover_systems, publish, warehouse_lock)
from contact_register.requests.erasure.byte_scan import phone_variants
from contact_register.requests.erasure.matching import narrow_to_personal
from contact_register.requests.cases.casebook import REDACTED_PREFIX, Register
from contact_register.requests.suppression.store import SuppressionList
from contact_register.requests.writeback.base import Outcome, WritebackSubject

log = logging.getLogger("contact_register.requests.erasure.own_stores")

SYSTEM = "own_stores"
LOCK_WAIT_S = 30.0
# How long the erasure waits for a running warehouse build (or another erasure) to finish.
WAREHOUSE_LOCK_WAIT_S = 1800.0

# record kind (as in person_records) -> (raw table, key column), per system. Kinds not listed
# (Google's address-like records, whose ids are hashes of the address) are found by their text.
RECORD_TABLES: dict[str, dict[str, tuple[str, str]]] = {
    "pipedrive": {"person": ("persons", "id"), "deal": ("deals", "id"), "activity": ("activities", "id"),
                  "note": ("notes", "id")},
    "netvisor": {"contact_person": ("contact_persons", "id"), "customer": ("customers", "id"),
                 "invoice": ("invoices", "id")},
    "request_tracker": {"user": ("users", "id"), "ticket": ("tickets", "id")},
    "google": {"gmail_message": ("gmail_messages", "id"), "calendar_event": ("calendar_events", "id"),
               "drive_file": ("drive_files", "id"), "contact": ("contacts", "id"), "other_contact": ("contacts", "id")},
}
# child table -> [(foreign key column, parent table)]: a removed parent's rows go with it.
# Parents are copied before their children (dict order, then the parents' own order).
CHILD_TABLES: dict[str, dict[str, list[tuple[str, str]]]] = {
    # A shared ticket stays; what the person wrote in it (their transactions) goes.
    "request_tracker": {"ticket_people": [("ticket_id", "tickets"), ("user_id", "users")],
                        "transactions": [("ticket_id", "tickets"), ("creator_id", "users")],
                        "attachments": [("transaction_id", "transactions"), ("creator_id", "users")]},
    "google": {child.name: [(fk, parent)] for parent, (child, fk) in GOOGLE_CHILDREN.items() if child is not None},
}
# Tables whose rows each describe one person, or one person's place in a record (an address of a
# message, an attendee): a row holding the subject's email or phone is theirs and goes whole.
PERSON_ROW_TABLES: dict[str, set[str]] = {
    "pipedrive": {"persons"},
    "netvisor": {"contact_persons", "customers"},
    "request_tracker": {"users", "ticket_people"},
    "google": {"users", "contacts", "gmail_addresses", "calendar_attendees", "drive_permissions"},
}
# Records other people can share: table -> SQL over its row ``t`` that holds when someone other
# than the subject (and other than our own staff) is on it; ``{other}`` is filled in with the
# test on a child's ``c.email``. A shared record the subject is on is kept without their part
# (their child rows go, their identifiers are scrubbed from its text); one only they are on goes
# whole. Gmail keeps a mass mailing (a manual task); the others on it must keep it here too.
SHARED_RECORDS: dict[str, dict[str, str]] = {
    "google": {
        "gmail_messages": "EXISTS (SELECT 1 FROM src.main.gmail_addresses AS c WHERE c.message_key = t.id "
                          "AND c.valid AND {other})",
        "calendar_events": "EXISTS (SELECT 1 FROM src.main.calendar_attendees AS c WHERE c.event_key = t.id "
                           "AND c.email IS NOT NULL AND {other})",
        "drive_files": "EXISTS (SELECT 1 FROM src.main.drive_permissions AS c WHERE c.file_id = t.id "
                       "AND c.type = 'user' AND c.email IS NOT NULL AND {other})",
    },
    # A ticket with another requestor or Cc (a customer, not staff).
    "request_tracker": {
        "tickets": "EXISTS (SELECT 1 FROM src.main.ticket_people AS c JOIN src.main.users AS u ON u.id = c.user_id "
                   "WHERE c.ticket_id = t.id AND NOT coalesce(u.privileged, false) "
                   "AND c.user_id NOT IN (SELECT key FROM temp.subject_users))",
    },
}
# Written where a shared record named the person.
ERASED = "[erased]"
# Headers whose value is a list of mailboxes: the person's mailbox is taken out, the rest kept.
ADDRESS_LIST_HEADERS = {"from", "to", "cc", "bcc", "reply-to", "sender"}
# Characters an email's local part may hold (RFC 5322 atext and the dot), lower case.
EMAIL_LOCAL_CHARS = r"a-z0-9!#$%&'*+/=?^_`{|}~.\-"
# Characters written between a phone number's digits ("+358 40-123 45 67", "(040) 123.4567").
PHONE_SEPARATORS = r"[\s().\-/]"


class StoreBusy(SafeMessage, RuntimeError):
    """A store is held by another process (a running sync or build); nothing was changed in it."""


class UnsupportedStore(SafeMessage, RuntimeError):
    """A store holds objects the copy would lose; nothing was changed in it."""


# -- what identifies the person --------------------------------------------------------------


@dataclasses.dataclass
class Needles:
    """The person's personal identifiers as searched in our stores (never logged)."""

    emails: list[str]
    phones: list[str]  # E.164
    names: list[str]

    def email_regex(self) -> str | None:
        """Matches one of the emails in lower-cased text as a whole address: ``aino@firma.fi``
        is not found inside ``maino@firma.fi`` or ``aino@firma.fi.example``. The same pattern
        serves DuckDB (RE2) and Python."""
        if not self.emails:
            return None
        alternatives = "|".join(re.escape(e.lower()) for e in self.emails)
        return rf"(^|[^{EMAIL_LOCAL_CHARS}])({alternatives})($|[^a-z0-9.\-]|\.($|[^a-z0-9\-]))"

    def phone_regex(self) -> str | None:
        """Matches any common spelling of one of the phones in text whose separators were
        removed: +358401234567, 00358401234567, 0401234567; never inside a longer number."""
        spellings = sorted(re.escape(sp) for sp in self.phone_spellings())
        return rf"(^|[^0-9])({'|'.join(spellings)})([^0-9]|$)" if spellings else None

    def phone_spellings(self) -> set[str]:
        """The phones' common spellings without separators: international (+358401234567,
        00358401234567) and national (0401234567, when 7 digits or more); a phone that is not
        E.164 as written."""
        spellings = set()
        for e164 in self.phones:
            try:
                number = phonenumbers.parse(e164, None)
            except phonenumbers.NumberParseException:
                spellings.add(re.sub(PHONE_SEPARATORS, "", e164))  # not E.164: as written
                continue
            nsn = phonenumbers.national_significant_number(number)
            national = re.sub(r"\D", "", phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL))
            spellings |= {f"+{number.country_code}{nsn}", f"00{number.country_code}{nsn}"}
            if len(national) >= 7:
                spellings.add(national)
        return spellings

    @property
    def full_names(self) -> list[str]:
        """The names of two or more words: only these can prove that a text is about the
        person (a first name alone is shared by thousands and hides inside longer words)."""
        return [n for n in self.names if len(n.split()) >= 2]

    def full_name_regex(self) -> str | None:
        """A full name as whole words in casefolded NFC text, in the given order or family name
        first ("Hyvärinen, Essi"); never inside a longer word ("Tessi Hyvärinenkö")."""
        alternatives = set()
        for name in self.full_names:
            words = [re.escape(w) for w in unicodedata.normalize("NFC", name).casefold().split()]
            alternatives.add(r"[\s,]+".join(words))
            alternatives.add(r"[\s,]+".join(words[-1:] + words[:-1]))
        return rf"(?<!\w)(?:{'|'.join(sorted(alternatives))})(?!\w)" if alternatives else None

    @functools.cached_property
    def _compiled(self) -> tuple[re.Pattern | None, re.Pattern | None, re.Pattern | None]:
        email, phone, name = self.email_regex(), self.phone_regex(), self.full_name_regex()
        return (re.compile(email) if email else None, re.compile(phone) if phone else None,
                re.compile(name) if name else None)

    def concerns(self, text: str) -> bool:
        """Whether ``text`` is proven to be about the person: it holds one of their emails (a
        whole address, any case), phones (any common spelling, never inside a longer number) or
        full names (whole words). A single name part or a substring proves nothing."""
        email, phone, name = self._compiled
        if email and email.search(text.lower()):
            return True
        if phone and phone.search(re.sub(PHONE_SEPARATORS, "", text)):
            return True
        return bool(name and name.search(unicodedata.normalize("NFC", text).casefold()))

    @functools.cached_property
    def _redactors(self) -> list[re.Pattern]:
        """The emails and phones as written in text (phones with separators between digits)."""
        out = []
        if self.emails:
            out.append(re.compile(self.email_regex(), re.IGNORECASE))
        spellings = self.phone_spellings()
        if spellings:
            spelled = [f"{PHONE_SEPARATORS}*".join(re.escape(ch) for ch in sp) for sp in sorted(spellings)]
            out.append(re.compile(rf"(^|[^0-9])({'|'.join(spelled)})([^0-9]|$)"))
        return out

    def holds(self, text: str) -> bool:
        """Whether ``text`` holds one of the emails or phones (names are never searched for in
        raw rows: namesakes would go too)."""
        email, phone, _name = self._compiled
        return bool((email and email.search(text.lower())) or
                    (phone and phone.search(re.sub(PHONE_SEPARATORS, "", text))))

    def redact(self, text: str) -> str:
        """``text`` with every email and phone of the person replaced by ``[erased]``."""
        for pattern in self._redactors:
            text = pattern.sub(lambda m: f"{m.group(1)}{ERASED}{m.group(3)}", text)
        return text

    def for_scan(self) -> dict[str, list[str]]:
        return {"email": list(self.emails), "phone": sorted({v for p in self.phones for v in phone_variants(p)}),
                "name": list(self.names)}


def personal_needles(subject: WritebackSubject, warehouse_path: Path) -> Needles:
    """The subject's emails and phones minus role mailboxes and identifiers other persons in the
    warehouse also use (an ``info@`` address must not take colleagues' rows with it)."""
    narrowed = dataclasses.replace(subject, emails=list(subject.emails), phones=list(subject.phones))
    con = duckdb.connect(str(warehouse_path), read_only=True) if warehouse_path.exists() else None
    try:
        narrow_to_personal(narrowed, con)
    finally:
        if con is not None:
            con.close()
    names = {n.strip() for n in subject.names if n and len(n.strip()) >= 3}
    return Needles(sorted({e.lower() for e in narrowed.emails}), sorted(set(narrowed.phones)), sorted(names))


# -- rewriting a DuckDB file ------------------------------------------------------------------


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_path(path: Path) -> str:
    return str(path.resolve()).replace("'", "''")  # ATTACH takes no bound path; the path is ours


def _attach_shared(con: duckdb.DuckDBPyConnection, path: Path, wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            con.execute(f"ATTACH '{_sql_path(path)}' AS src (READ_ONLY)")
            return
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            if time.monotonic() >= deadline:
                raise StoreBusy(f"{path.name} is in use by another process (a sync or build is running); "
                                "run the erasure again after it") from None
            time.sleep(0.5)


# removal(con, schema, table) -> None, or (condition, params), or (condition, params, replacements):
# rows where the condition holds are left out; ``replacements`` maps a column to
# (SQL expression over ``t``, params) for the rows kept (a shared record scrubbed of the person).
Removal = Callable[[duckdb.DuckDBPyConnection, str, str], tuple | None]


def rewrite_without(path: Path, removal: Removal, *, order: Callable[[str], int] = lambda _t: 0,
                    wait_s: float | None = None) -> int:
    """Replace the DuckDB file ``path`` by a fresh copy without the rows ``removal`` selects.

    ``removal(con, schema, table)`` returns ``(SQL condition over src.<schema>.<table>, params)``,
    optionally with a third item, ``{column: (SQL expression over t, params)}`` replacing a
    column's value in the rows kept, or None; it may create temp tables (e.g. the keys it removed, for a child table's condition;
    tables are visited in ``order``). Every table is copied with its constraints, also when
    nothing is removed, so rows deleted earlier (by a sync's reconciliation) leave the file too.
    Returns the number of rows removed."""
    con = duckdb.connect()
    work = path.with_name(f"{path.name}.building-{os.getpid()}")
    try:
        _attach_shared(con, path, LOCK_WAIT_S if wait_s is None else wait_s)
        others = con.execute(
            "SELECT (SELECT count(*) FROM duckdb_views() WHERE database_name = 'src' AND NOT internal) + "
            "(SELECT count(*) FROM duckdb_sequences() WHERE database_name = 'src') + "
            "(SELECT count(*) FROM duckdb_indexes() WHERE database_name = 'src') + "
            "(SELECT count(*) FROM duckdb_types() WHERE database_name = 'src' AND NOT internal) + "
            "(SELECT count(*) FROM duckdb_functions() WHERE database_name = 'src' AND NOT internal)").fetchone()[0]
        if others:  # raw stores hold tables only; anything else would be lost by this copy
            raise UnsupportedStore(f"{path.name} holds views, sequences, indexes, types or macros, "
                               "which this copy does not carry over")
        remove_abandoned_builds(path)
        con.execute(f"ATTACH '{_sql_path(work)}' AS dst")
        removed = 0
        try:
            tables = con.execute("SELECT schema_name, table_name, sql FROM duckdb_tables() WHERE database_name = 'src' "
                                 "ORDER BY schema_name, table_name").fetchall()
            con.execute("USE dst")  # the catalogue's CREATE statements are unqualified
            for schema in sorted({s for s, _, _ in tables} - {"main"}):
                con.execute(f"CREATE SCHEMA {_quote(schema)}")
            for schema, table, create in tables:
                if schema != "main":
                    con.execute(f"SET schema = {_quote(schema)}")
                con.execute(create)
                con.execute("SET schema = 'main'")
            con.execute("USE memory")
            for schema, table, _ in sorted(tables, key=lambda t: (order(t[1]), t[0], t[1])):
                source = f"src.{_quote(schema)}.{_quote(table)}"
                condition = removal(con, schema, table)
                select, params = "*", []
                replacements = condition[2] if condition and len(condition) > 2 else {}
                if replacements:
                    columns = [r[0] for r in con.execute(
                        "SELECT column_name FROM duckdb_columns() WHERE database_name = 'src' AND schema_name = ? "
                        "AND table_name = ? ORDER BY column_index", [schema, table]).fetchall()]
                    parts = []
                    for column in columns:
                        expr, expr_params = replacements.get(column, (f"t.{_quote(column)}", []))
                        parts.append(f"{expr} AS {_quote(column)}")
                        params += expr_params
                    select = ", ".join(parts)
                where = ""
                if condition and condition[0]:
                    where = f"WHERE NOT coalesce(({condition[0]}), false)"
                    params += condition[1]
                con.execute(f"INSERT INTO dst.{_quote(schema)}.{_quote(table)} SELECT {select} FROM {source} AS t {where}",
                            params)
                removed += (con.execute(f"SELECT count(*) FROM {source}").fetchone()[0]
                            - con.execute(f"SELECT count(*) FROM dst.{_quote(schema)}.{_quote(table)}").fetchone()[0])
            con.execute("CHECKPOINT dst")
            con.execute("DETACH dst")
        except BaseException:
            con.execute("USE memory")
            if "dst" in {r[0] for r in con.execute("SELECT database_name FROM duckdb_databases()").fetchall()}:
                con.execute("DETACH dst")
            raise
        # A WAL beside the old file is a crashed writer's leftover: its rows were read above
        # (DuckDB replays it on attach) and it must not be replayed onto the new file.
        Path(f"{path}.wal").unlink(missing_ok=True)
        publish(work, path)  # fsync, rename over the old file, fsync the folder
        return removed
    finally:
        con.close()  # releases the shared lock on the old (now unlinked) file
        for leftover in (work, Path(f"{work}.wal")):
            leftover.unlink(missing_ok=True)


def _columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[tuple[str, str]]:
    """(column, type) of the text-holding columns of a source table."""
    return [(r[0], r[1]) for r in con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = 'src' AND schema_name = ? "
        "AND table_name = ? AND (data_type LIKE '%VARCHAR%' OR data_type = 'JSON' OR data_type LIKE 'STRUCT%' "
        "OR data_type LIKE 'MAP%') ORDER BY column_index", [schema, table]).fetchall()]


def _column_match(column: str, needles: Needles) -> tuple[str, list]:
    """SQL (over ``t``) true when the column's text holds an email or phone of the person."""
    email, phone = needles.email_regex(), needles.phone_regex()
    text = f"CAST(t.{_quote(column)} AS VARCHAR)"
    parts, params = [], []
    if email:
        parts.append(f"regexp_matches(lower({text}), ?)")
        params.append(email)
    if phone:
        parts.append(f"regexp_matches(regexp_replace({text}, '{PHONE_SEPARATORS}', '', 'g'), ?)")
        params.append(phone)
    return " OR ".join(parts), params


def _text_condition(con, schema: str, table: str, needles: Needles, types: tuple[str, ...] | None = None
                    ) -> tuple[str, list]:
    """SQL true when a text column (of one of ``types``, default all) holds an identifier."""
    parts, params = [], []
    for column, data_type in _columns(con, schema, table):
        if types is not None and data_type not in types:
            continue
        condition, condition_params = _column_match(column, needles)
        if condition:
            parts.append(condition)
            params += condition_params
    return " OR ".join(parts), params


SCRUBBABLE = ("VARCHAR", "JSON", "VARCHAR[]")


def _without_mailboxes(value: str, needles: Needles) -> str:
    kept = []
    for name, addr in getaddresses([value]):
        if not addr or needles.holds(addr):
            continue
        if name and any(ch in name for ch in ',;<>"()'):
            name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        kept.append(f"{name} <{addr}>" if name else addr)
    return ", ".join(kept)


def _scrub_json(value, needles: Needles):
    """A record's JSON without the person: an element of a list (an attendee, a permission, an
    address) holding their email or phone is left out; a header [name, value] pair keeps the
    other mailboxes of an address header and goes if it is any other header; other strings
    have the identifier replaced by ``[erased]``."""
    if isinstance(value, list):
        out = []
        for item in value:
            if (isinstance(item, list) and len(item) == 2 and all(isinstance(x, str) for x in item)
                    and needles.holds(item[1])):
                rest = _without_mailboxes(item[1], needles) if item[0].lower() in ADDRESS_LIST_HEADERS else ""
                if rest:
                    out.append([item[0], rest])
            elif isinstance(item, (dict, str)) and needles.holds(json.dumps(item, ensure_ascii=False)):
                continue
            else:
                out.append(_scrub_json(item, needles))
        return out
    if isinstance(value, dict):
        return {k: _scrub_json(v, needles) for k, v in value.items()}
    if isinstance(value, str) and needles.holds(value):
        return needles.redact(value)
    return value


def _scrub_text(text: str | None, needles: Needles) -> str | None:
    if text is None or not needles.holds(text):
        return text
    try:
        value = json.loads(text)
    except ValueError:
        return needles.redact(text)
    if isinstance(value, (dict, list)):
        return json.dumps(_scrub_json(value, needles), ensure_ascii=False)
    return needles.redact(text)


def _register_scrubbers(con: duckdb.DuckDBPyConnection, needles: Needles) -> None:
    varchar, varchars = duckdb.sqltype("VARCHAR"), duckdb.sqltype("VARCHAR[]")
    con.create_function("erase_scrub", lambda text: _scrub_text(text, needles), [varchar], varchar)
    con.create_function("erase_scrub_list", lambda items: [i for i in items if i is None or not needles.holds(i)],
                        [varchars], varchars)


def _scrubbers(con: duckdb.DuckDBPyConnection, schema: str, table: str, needles: Needles) -> dict[str, tuple[str, list]]:
    """Column replacements that take the person's emails and phones out of a kept row (the
    scrub functions must have been registered on ``con``)."""
    out = {}
    for column, data_type in _columns(con, schema, table):
        if data_type not in SCRUBBABLE:
            continue
        match, params = _column_match(column, needles)
        if not match:
            continue
        col = f"t.{_quote(column)}"
        scrubbed = {"VARCHAR": f"erase_scrub({col})", "JSON": f"CAST(erase_scrub(CAST({col} AS VARCHAR)) AS JSON)",
                    "VARCHAR[]": f"erase_scrub_list({col})"}[data_type]
        out[column] = (f"CASE WHEN {match} THEN {scrubbed} ELSE {col} END", params)
    return out


def _temp_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = 'temp' AND table_name = ?",
                            [name]).fetchone()[0])


def _raw_removal(system: str, subject: WritebackSubject, needles: Needles) -> Removal:
    """Which rows of a raw store go, and how shared rows are scrubbed (see PERSON_ROW_TABLES and
    SHARED_RECORDS): the subject's own records (by the warehouse's record ids, with their child
    rows), rows describing the subject (a person-like row holding their email or phone), and
    records only they are on; any other row holding their email or phone is kept with it taken
    out (a note about a colleague that quotes the subject's number keeps its other text)."""
    by_table: dict[str, tuple[str, set[str]]] = {}
    for kind, ids in subject.records_of(system).items():
        if kind in RECORD_TABLES.get(system, {}):
            table, key = RECORD_TABLES[system][kind]
            by_table.setdefault(table, (key, set()))[1].update(str(i) for i in ids)
    children = CHILD_TABLES.get(system, {})
    person_rows = PERSON_ROW_TABLES.get(system, set())
    shared_records = SHARED_RECORDS.get(system, {})
    parents = {parent for links in children.values() for _, parent in links}

    def other_address(con) -> tuple[str, list]:
        """SQL over a child ``c``: an address that is neither the subject's nor our staff's."""
        sql = ("lower(split_part(c.email, '@', 2)) NOT IN (SELECT lower(split_part(primary_email, '@', 2)) "
               "FROM src.main.users WHERE primary_email IS NOT NULL)")
        email = needles.email_regex()
        return (f"{sql} AND NOT regexp_matches(lower(c.email), ?)", [email]) if email else (sql, [])

    registered: list[duckdb.DuckDBPyConnection] = []

    def removal(con, schema, table):
        if schema != "main" or table.startswith("_sync_state"):
            return None
        if not any(c is con for c in registered):  # once per rewrite connection
            _register_scrubbers(con, needles)
            registered.append(con)
        by_id, by_id_params = [], []
        if table in by_table:
            key, ids = by_table[table]
            by_id.append(f"CAST(t.{_quote(key)} AS VARCHAR) IN (SELECT unnest(?::VARCHAR[]))")
            by_id_params.append(sorted(ids))
        for fk, parent in children.get(table, []):
            if _temp_exists(con, f"gone_{parent}"):
                by_id.append(f"t.{_quote(fk)} IN (SELECT key FROM temp.{_quote('gone_' + parent)})")
        text, text_params = _text_condition(con, schema, table, needles)
        # Bookkeeping tables (_rejects: records kept verbatim) and person-like rows go whole.
        whole = table in person_rows or table.startswith("_")
        replacements: dict[str, tuple[str, list]] = {}
        if whole:
            parts, params = by_id + ([text] if text else []), by_id_params + (text_params if text else [])
        elif table in shared_records:
            if system == "request_tracker" and not _temp_exists(con, "subject_users"):
                users_text, users_params = _text_condition(con, "main", "users", needles)
                key, ids = by_table.get("users", ("id", set()))
                con.execute("CREATE OR REPLACE TEMP TABLE subject_users AS SELECT t.id AS key FROM src.main.users AS t "
                            f"WHERE CAST(t.id AS VARCHAR) IN (SELECT unnest(?::VARCHAR[])) "
                            f"{'OR ' + users_text if users_text else ''}", [sorted(ids), *users_params])
            template = shared_records[table]
            other, other_params = other_address(con) if "{other}" in template else ("", [])
            shared = template.format(other=other)
            candidates = by_id + ([text] if text else [])
            if candidates:
                parts = [f"({' OR '.join(f'({c})' for c in candidates)}) AND NOT {shared}"]
                params = by_id_params + (text_params if text else []) + other_params
            else:
                parts, params = [], []
            replacements = _scrubbers(con, schema, table, needles)
        else:
            # Kept and scrubbed, unless the text sits in a column we cannot rewrite (a STRUCT).
            rigid, rigid_params = _text_condition(
                con, schema, table, needles,
                types=tuple(t for _, t in _columns(con, schema, table) if t not in SCRUBBABLE))
            parts, params = by_id + ([rigid] if rigid else []), by_id_params + (rigid_params if rigid else [])
            replacements = _scrubbers(con, schema, table, needles)
        if not parts and not replacements:
            return None
        condition = " OR ".join(f"({p})" for p in parts)
        if table in parents:
            key = by_table.get(table, ("id",))[0]
            con.execute(f"CREATE OR REPLACE TEMP TABLE {_quote('gone_' + table)} AS "
                        f"SELECT t.{_quote(key)} AS key FROM src.main.{_quote(table)} AS t "
                        f"WHERE {condition or 'false'}", params)
        return condition, params, replacements

    return removal


def _child_order(system: str) -> Callable[[str], int]:
    children = list(CHILD_TABLES.get(system, {}))
    return lambda table: 1 + children.index(table) if table in children else 0


def _record_keys(subject: WritebackSubject) -> list[str]:
    return sorted(f"{system}:{kind}:{rid}" for system, kinds in subject.records.items()
                  for kind, ids in kinds.items() for rid in ids)


def _identity_removal(keys: list[str]) -> Removal:
    def removal(_con, schema, table):
        if schema == "main" and table == "record_person":
            return "t.record_key IN (SELECT unnest(?::VARCHAR[]))", [keys]
        if schema == "main" and table == "decisions":
            return ("t.left_key IN (SELECT unnest(?::VARCHAR[])) OR t.right_key IN (SELECT unnest(?::VARCHAR[]))",
                    [keys, keys])
        return None

    return removal


# -- the warehouse ------------------------------------------------------------------------------


def _warehouse_rows_of(warehouse_path: Path, subject: WritebackSubject, needles: Needles) -> int:
    """Rows of the published warehouse that still identify the person (expected: 0)."""
    con = duckdb.connect(str(warehouse_path), read_only=True)
    try:
        keys = _record_keys(subject)
        return con.execute(
            """SELECT count(*) FROM person_identifiers
               WHERE (kind = 'email' AND value_norm IN (SELECT unnest(?::VARCHAR[])))
                  OR (kind = 'phone' AND value_norm IN (SELECT unnest(?::VARCHAR[])))
                  OR system || ':' || record_kind || ':' || record_id IN (SELECT unnest(?::VARCHAR[]))""",
            [needles.emails, needles.phones, keys]).fetchone()[0]
    finally:
        con.close()


# -- exports ------------------------------------------------------------------------------------


def _delete_exports(register: Register, case_ids: list[str], export_dir: Path, actor: str) -> int:
    deleted = 0
    for cid in case_ids:
        case = register.get(cid)
        if case.export_file:
            path = export_dir / Path(case.export_file).name
            if path.exists():
                path.unlink()
                deleted += 1
            register.record_export_removed(cid, file_name=case.export_file, actor=actor, reason="erasure")
        # Unrecorded packages of the case too: a crashed export's part file, an older package.
        if export_dir.is_dir():
            for path in export_dir.iterdir():
                if path.is_file() and (path.name.startswith(f"{cid}-") or path.name.startswith(f".{cid}-")):
                    path.unlink()
                    deleted += 1
    return deleted


# -- the entry point ----------------------------------------------------------------------------


# What the run storage step gets: the person's needles and a dict to fill with what it removed per
# run id (counts only); it returns counts, among them ``dagster_runs_busy`` (unfinished runs that
# concern the person: the step then fails and is run again after they end).
ScrubRuns = Callable[[Needles, dict[str, dict[str, int]]], dict[str, int]]


def erase_own_stores(subject: WritebackSubject, *, raw_dir, warehouse_path, export_dir, register: Register,
                     case_id: str, actor: str, scrub_runs: ScrubRuns, identity_state_path=None) -> Outcome:
    """Remove the person from the raw stores, the warehouse, the exports, the run storage
    (``scrub_runs``, given by the Dagster layer) and (last) the register's identifiers.
    ``identity_state_path`` is the identity state store (default: beside the warehouse).
    Idempotent: a second call finds nothing more to remove. A busy store or an unexpected
    remainder gives state ``failed`` with the reason (no personal data) and leaves the register's
    identifiers in place for the next attempt."""
    raw_dir, warehouse_path, export_dir = Path(raw_dir), Path(warehouse_path), Path(export_dir)
    counts: dict[str, int] = {}
    step = "identifiers"
    try:
        needles = personal_needles(subject, warehouse_path)
        # Cases about the person by their personal identifiers only: one given as a shared
        # mailbox must not pull in colleagues' cases.
        related = register.related_cases(case_id, emails=needles.emails, phones=needles.phones, by_case_keys=False)
        given_names = {value for cid in related for kind, value, _ in register.get(cid).identifiers
                       if kind == "name" and not value.startswith(REDACTED_PREFIX)}
        needles = dataclasses.replace(needles, names=sorted({*needles.names, *given_names}))
        step = "warehouse lock"
        # Steps 1 and 2 under the warehouse lock: a nightly build that copied the raw stores
        # before they were cleaned would otherwise write the person's record keys back into the
        # identity state store and publish them again. A running build is waited for.
        with warehouse_lock(warehouse_path, wait_s=WAREHOUSE_LOCK_WAIT_S):
            step = "raw stores"
            # 1. raw stores and the identity state store
            systems = discover_systems(raw_dir)
            for system in systems:
                removed = rewrite_without(raw_path(raw_dir, system), _raw_removal(system, subject, needles),
                                          order=_child_order(system))
                counts["raw_rows_removed"] = counts.get("raw_rows_removed", 0) + removed
            state = identity_state.default_path(warehouse_path, configured=identity_state_path)
            if state.exists():
                counts["identity_keys_removed"] = rewrite_without(state, _identity_removal(_record_keys(subject)))
            # 2. the warehouse
            step = "warehouse"
            if systems:
                # As the nightly build does, so that suppressed people stay marked as banned.
                build_warehouse(raw_dir, warehouse_path, run_id=f"erasure {case_id}", identity_state_path=state,
                                suppression=SuppressionList(register))
                if _warehouse_rows_of(warehouse_path, subject, needles):
                    raise StoreBusy("the published warehouse still holds the person's identifiers; "
                                    "run the erasure again")
        # 3. exports, 4. Dagster
        step = "exports"
        counts["exports_deleted"] = _delete_exports(register, related, export_dir, actor)
        step = "dagster"
        runs: dict[str, dict[str, int]] = {}
        try:
            counts.update(scrub_runs(needles, runs))
        finally:
            if runs:  # what was removed, per run id (ids and counts only), even if a later run failed
                register.record_event(case_id, "dagster_runs_deleted", {"runs": runs}, actor=actor)
        if counts.get("dagster_runs_busy"):
            raise StoreBusy(f"{counts['dagster_runs_busy']} unfinished Dagster runs hold the person's identifiers; "
                            "run the erasure again after they end")
    except Exception as exc:  # noqa: BLE001 - recorded in the case; a retry repeats the whole step
        # describe(): our own messages are safe to record; a library's may quote a value (a
        # regex with an email in it), so only its type is kept.
        error = f"{step}: {describe(exc)}"
        if not isinstance(exc, (StoreBusy, WarehouseBusy)):  # where it broke, for the operator: frames, no message
            log.warning("own stores, %s: %s at\n%s", step, type(exc).__name__,
                        "".join(traceback.format_tb(exc.__traceback__)))
        return Outcome(system=SYSTEM, state="failed", records=counts.get("raw_rows_removed", 0),
                       detail=_detail(counts), error=error)
    # 5. the register, last: until here a retry still has the identifiers it needs.
    counts["register_identifiers_redacted"] = sum(register.redact_identifiers(cid, actor) for cid in related)
    counts["register_cases"] = len(related)
    return Outcome(system=SYSTEM, state="done", records=counts.get("raw_rows_removed", 0), detail=_detail(counts))


def _detail(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
