"""The suppression list: people who must never be marketed to again, kept as keyed hashes.

The privacy notice promises that a person who forbade marketing, or was erased, is not
contacted again even if their details are re-collected from a public source later. To keep
that promise without keeping their identifiers, the register stores, per case, an HMAC-SHA256
of each normalised identifier:

- emails lower-cased and IDNA-normalised, phones in E.164, both by the warehouse's own
  normalisers (``contact_register/warehouse/normalize.py``), so ``Matti.Virtanen@Yritys.FI`` and
  ``040 123 4567`` hash like the warehouse's ``matti.virtanen@yritys.fi`` and ``+358401234567``;
- the name as its word-order free key (``contact_register/requests/cases/identifiers.name_key``), used only
  to confirm a phone hit: a phone matches a record only if the record's name agrees (or either
  side has no name), because switchboard numbers are shared; an email matches by itself (role
  mailboxes such as ``info@`` are never added);
- the reason (``ban`` or ``erasure``), the case and the date.

The records the list has seen (``suppression_records``: present when the person was listed, or
banned again since) are kept as keyed hashes too: ``record_id`` holds ``hmac:`` + HMAC-SHA256
of ``system:kind:id``. Some record ids are derived from an identifier (Google's address-like
records are ``kind:md5(address)``), and an unkeyed hash of an email is the email to anyone who
can guess it; record ids kept in plain text before this were rewritten on first use.

The key comes from ``SUPPRESSION_KEY`` (production: a secret of at least 32 characters, kept
apart from the register, so that whoever reads the register cannot test guesses). For the demo
and tests ``SUPPRESSION_KEY_FILE`` may name a file instead, generated (mode 0600) on first
use. With neither set, adding to or checking against a non-empty list is a clear error. The
register remembers a fingerprint of the key, so a changed key is refused instead of silently
matching nobody.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Iterable

import duckdb

from connectors.clock import today_helsinki
from connectors.errors import SafeMessage
from contact_register.warehouse.identity import generic_local_parts
from contact_register.warehouse.normalize import normalize_email, normalize_phone
from contact_register.requests.cases.casebook import Register, RegisterError
from contact_register.requests.cases.identifiers import name_key
from contact_register.requests.writeback.base import WritebackSubject

REASONS = ("ban", "erasure")
MIN_KEY_CHARS = 32
KEY_CHECK_META = "suppression_key_check"
HASH_BATCH = 50_000
RECORD_HASH_PREFIX = "hmac:"


class SuppressionKeyError(SafeMessage, RuntimeError):
    """The key is missing, too short, or not the one the list was made with."""


def load_key() -> bytes:
    """``SUPPRESSION_KEY``, else the key in ``SUPPRESSION_KEY_FILE`` (generated if missing)."""
    env = os.environ.get("SUPPRESSION_KEY", "")
    if env:
        if len(env) < MIN_KEY_CHARS:
            raise SuppressionKeyError(f"SUPPRESSION_KEY must be at least {MIN_KEY_CHARS} characters")
        return env.encode()
    path = os.environ.get("SUPPRESSION_KEY_FILE", "")
    if not path:
        raise SuppressionKeyError(
            "SUPPRESSION_KEY is not set: the suppression list needs a secret key (at least "
            f"{MIN_KEY_CHARS} characters; keep it apart from the register). For a demo, "
            "SUPPRESSION_KEY_FILE=data/suppression.key generates one into that file.")
    key_file = Path(path)
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
    key = key_file.read_text(encoding="utf-8").strip()
    if len(key) < MIN_KEY_CHARS:
        raise SuppressionKeyError(f"the key in SUPPRESSION_KEY_FILE must be at least {MIN_KEY_CHARS} characters")
    return key.encode()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def subject_values(subject: WritebackSubject) -> dict[str, set[str]]:
    """The subject's normalised emails (role mailboxes left out), phones and name keys."""
    generic = set(generic_local_parts())
    emails = {e for e in (normalize_email(v) for v in subject.emails) if e and e.split("@", 1)[0] not in generic}
    phones = {p for p in (normalize_phone(v) for v in subject.phones) if p}
    names = {k for k in (name_key(n) for n in subject.names if n) if k}
    return {"email": emails, "phone": phones, "name": names}


class SuppressionList:
    """The list in the request register. ``key`` defaults to :func:`load_key`, read on first need."""

    def __init__(self, register: Register, key: bytes | None = None) -> None:
        self.register = register
        self._key = key
        self._checked = False
        self._keyed: hmac.HMAC | None = None

    # -- the key ------------------------------------------------------------------------

    def key(self) -> bytes:
        if self._key is None:
            self._key = load_key()
        if not self._checked:
            check = hmac.new(self._key, b"suppression-key-check", hashlib.sha256).hexdigest()
            with self.register.backend.transaction() as tx:
                tx.execute("INSERT INTO register_meta (key, value) VALUES (?, ?) ON CONFLICT DO NOTHING",
                           [KEY_CHECK_META, check])
                stored = tx.one("SELECT value FROM register_meta WHERE key = ?", [KEY_CHECK_META])[0]
            if not hmac.compare_digest(stored, check):
                raise SuppressionKeyError("the suppression key is not the one the list was made with "
                                          "(SUPPRESSION_KEY / SUPPRESSION_KEY_FILE changed?)")
            self._checked = True
            self._hash_plain_records()
        return self._key

    def _hash_plain_records(self) -> None:
        """Replace record ids stored in plain text (before they were keyed) by their keyed hash."""
        with self.register.backend.transaction() as tx:
            plain = [tuple(r) for r in tx.execute(
                "SELECT system, record_kind, record_id FROM suppression_records WHERE record_id NOT LIKE ?",
                [RECORD_HASH_PREFIX + "%"])]
            for system, kind, rid in plain:
                tx.execute("UPDATE suppression_records SET record_id = ? WHERE system = ? AND record_kind = ? "
                           "AND record_id = ?", [self.record_hash(system, kind, rid), system, kind, rid])

    def hash(self, kind: str, value_norm: str) -> str:
        if self._keyed is None:
            self._keyed = hmac.new(self.key(), digestmod=hashlib.sha256)
        h = self._keyed.copy()  # the key's set-up is done once, not per value
        h.update(f"{kind}:{value_norm}".encode())
        return h.hexdigest()

    def record_hash(self, system: str, kind: str, record_id: str) -> str:
        """What ``suppression_records.record_id`` holds for a source record."""
        return RECORD_HASH_PREFIX + self.hash("record", f"{system}:{kind}:{record_id}")

    # -- adding -------------------------------------------------------------------------

    def add_subject(self, subject: WritebackSubject, *, reason: str, actor: str) -> dict[str, int]:
        """Put the subject's identifiers on the list under their case (idempotent). Returns how
        many hashes of each kind the case now has on the list."""
        if reason not in REASONS:
            raise RegisterError(f"suppression reason must be one of {', '.join(REASONS)}")
        values = subject_values(subject)
        if not values["email"] and not values["phone"]:
            raise RegisterError("nothing to suppress: the subject has no personal email or phone")
        rows = [(kind, self.hash(kind, v)) for kind, vs in values.items() for v in sorted(vs)]
        today = today_helsinki().isoformat()
        with self.register.backend.transaction() as tx:
            if tx.one("SELECT 1 FROM cases WHERE case_id = ?", [subject.case_id]) is None:
                raise RegisterError(f"no case {subject.case_id}")
            added = 0
            for kind, h in rows:
                if tx.one("SELECT 1 FROM suppression_entries WHERE case_id = ? AND kind = ? AND key_hash = ?",
                          [subject.case_id, kind, h]) is None:
                    tx.execute("INSERT INTO suppression_entries (case_id, kind, key_hash, reason, added_on, added_by) "
                               "VALUES (?, ?, ?, ?, ?, ?)", [subject.case_id, kind, h, reason, today, actor])
                    added += 1
            # The records the person has now are covered by this case: the nightly check acts
            # only on records that appear later (a re-entry), not on these.
            now = _now()
            for system, kinds in subject.records.items():
                for kind, rids in kinds.items():
                    for rid in rids:
                        tx.execute("INSERT INTO suppression_records (system, record_kind, record_id, case_id, state, "
                                   "handled_at) VALUES (?, ?, ?, ?, 'listed', ?) ON CONFLICT DO NOTHING",
                                   [system, kind, self.record_hash(system, kind, str(rid)), subject.case_id, now])
            counts = {k: n for k, n in tx.execute(
                "SELECT kind, count(*) FROM suppression_entries WHERE case_id = ? GROUP BY kind", [subject.case_id])}
            if added:
                Register._audit(tx, subject.case_id, actor, "suppression_added",
                                {"reason": reason, "added": added, "on_list": counts})
        return counts

    # -- reading ------------------------------------------------------------------------

    def is_empty(self) -> bool:
        with self.register.backend.transaction() as tx:
            return tx.one("SELECT count(*) FROM suppression_entries")[0] == 0

    def reasons_of(self, case_id: str) -> list[str]:
        with self.register.backend.transaction() as tx:
            return [r[0] for r in tx.execute(
                "SELECT DISTINCT reason FROM suppression_entries WHERE case_id = ? ORDER BY reason", [case_id])]

    def _entries(self) -> list[tuple[str, str, str, str]]:
        with self.register.backend.transaction() as tx:
            return [tuple(r) for r in tx.execute("SELECT case_id, kind, key_hash, reason FROM suppression_entries")]

    def match(self, con: duckdb.DuckDBPyConnection, ids_table: str, out_table: str) -> int:
        """Match identifiers against the list, in DuckDB.

        ``ids_table`` (a table or view on ``con``, a name of our own) has ``rec_key``, ``kind``
        ('email', 'phone', 'name') and ``value_norm``. Creates the temp table ``out_table``
        (``rec_key, case_id, reason, matched_by``): one row per record and case it hits.
        Returns the number of rows. Only the hashes leave Python; identifiers stay in DuckDB.
        """
        con.execute(f"CREATE OR REPLACE TEMP TABLE {out_table} (rec_key VARCHAR, case_id VARCHAR, "
                    "reason VARCHAR, matched_by VARCHAR)")
        entries = self._entries()
        if not entries:
            return 0
        by_hash: dict[str, list[tuple[str, str, str]]] = {}
        for case_id, kind, h, reason in entries:
            by_hash.setdefault(h, []).append((case_id, kind, reason))
        matched: list[tuple[str, str, str, str]] = []  # kind, value_norm, case_id, reason
        reader = con.sql(f"SELECT DISTINCT kind, value_norm FROM {ids_table} "
                         "WHERE kind IN ('email', 'phone') AND value_norm IS NOT NULL").to_arrow_reader(HASH_BATCH)
        for batch in reader:
            for kind, value in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist()):
                for case_id, entry_kind, reason in by_hash.get(self.hash(kind, value), ()):
                    if entry_kind == kind:
                        matched.append((kind, value, case_id, reason))
        _temp_table(con, "_supp_matched", ("kind", "value_norm", "case_id", "reason"), matched)
        con.execute(f"""CREATE OR REPLACE TEMP TABLE _supp_candidates AS
            SELECT DISTINCT i.rec_key, m.kind, m.case_id, m.reason
            FROM {ids_table} AS i JOIN _supp_matched AS m USING (kind, value_norm)""")
        names = con.execute(f"""SELECT DISTINCT rec_key, value_norm FROM {ids_table}
            WHERE kind = 'name' AND value_norm IS NOT NULL
              AND rec_key IN (SELECT rec_key FROM _supp_candidates WHERE kind = 'phone')""").fetchall()
        _temp_table(con, "_supp_record_names", ("rec_key", "name_hash"),
                    [(rec, self.hash("name", v)) for rec, v in names])
        _temp_table(con, "_supp_case_names", ("case_id", "name_hash"),
                    [(case_id, h) for case_id, kind, h, _ in entries if kind == "name"])
        # A phone hit counts only where the names agree or either side has none.
        con.execute(f"""INSERT INTO {out_table}
            SELECT rec_key, case_id, any_value(reason), min(kind)  -- 'email' before 'phone'
            FROM _supp_candidates AS c
            WHERE c.kind = 'email'
               OR NOT EXISTS (SELECT 1 FROM _supp_case_names n WHERE n.case_id = c.case_id)
               OR NOT EXISTS (SELECT 1 FROM _supp_record_names r WHERE r.rec_key = c.rec_key)
               OR EXISTS (SELECT 1 FROM _supp_record_names r JOIN _supp_case_names n USING (name_hash)
                          WHERE r.rec_key = c.rec_key AND n.case_id = c.case_id)
            GROUP BY rec_key, case_id""")
        for table in ("_supp_matched", "_supp_candidates", "_supp_record_names", "_supp_case_names"):
            con.execute(f"DROP TABLE {table}")
        return con.execute(f"SELECT count(*) FROM {out_table}").fetchall()[0][0]

    # -- records the nightly check has acted on -------------------------------------------

    def _stored(self, condition: str) -> dict[tuple[str, str, str], str]:
        self.key()  # checks the key and hashes any plain record ids first
        with self.register.backend.transaction() as tx:
            return {(r[0], r[1], r[2]): r[3] for r in tx.execute(
                f"SELECT system, record_kind, record_id, case_id FROM suppression_records WHERE {condition}")}

    def handled(self) -> KeyedRecords:
        """(system, record_kind, record_id) already banned again or flagged (not the failed ones):
        ``(system, kind, id) in handled()``."""
        return KeyedRecords(self, self._stored("state <> 'failed'"))

    def retry_cases(self) -> KeyedRecords:
        """Records whose re-ban failed or was cut short -> the case it was started under, so a
        retry continues that case instead of opening another: ``retry_cases()[(system, kind, id)]``."""
        return KeyedRecords(self, self._stored("state = 'failed'"))

    def mark_handled(self, records: Iterable[tuple[str, str, str]], *, case_id: str, state: str) -> None:
        now = _now()
        rows = [(system, kind, self.record_hash(system, kind, str(rid))) for system, kind, rid in records]
        with self.register.backend.transaction() as tx:
            for system, kind, keyed in rows:
                tx.execute(
                    "INSERT INTO suppression_records (system, record_kind, record_id, case_id, state, handled_at) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (system, record_kind, record_id) DO UPDATE SET "
                    "case_id = excluded.case_id, state = excluded.state, handled_at = excluded.handled_at",
                    [system, kind, keyed, case_id, state, now])


class KeyedRecords:
    """Stored suppression records, looked up by a source record ``(system, kind, id)``: the
    lookup hashes the id as it was stored (the plain ids are never read back)."""

    def __init__(self, suppression: SuppressionList, stored: dict[tuple[str, str, str], str]) -> None:
        self._suppression, self._stored = suppression, stored

    def _key(self, record: tuple[str, str, str]) -> tuple[str, str, str]:
        system, kind, rid = record
        return system, kind, self._suppression.record_hash(system, kind, str(rid))

    def __contains__(self, record: tuple[str, str, str]) -> bool:
        return self._key(record) in self._stored

    def __getitem__(self, record: tuple[str, str, str]) -> str:
        """The case the record was handled (or started) under."""
        return self._stored[self._key(record)]

    def __len__(self) -> int:
        return len(self._stored)


def _temp_table(con: duckdb.DuckDBPyConnection, name: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """A VARCHAR temp table from Python rows, passed as bound lists (never formatted into SQL)."""
    cols = ", ".join(f"unnest(?::VARCHAR[]) AS {c}" for c in columns)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT {cols}",
                [[row[i] for row in rows] for i in range(len(columns))])


def add_subject(register: Register, subject: WritebackSubject, *, reason: str, actor: str) -> dict[str, int]:
    """For the erasure and marketing-ban jobs: put ``subject`` (its ``case_id``, ``emails``,
    ``phones``, ``names``) on the suppression list with ``reason`` 'ban' or 'erasure'."""
    return SuppressionList(register).add_subject(subject, reason=reason, actor=actor)
