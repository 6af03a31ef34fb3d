"""Cases of the request register: intake, verification, deadlines, per-system states,
approvals, export records, closing, and the audit trail that records every one of them.

Every public method runs in one transaction that also appends its audit row, so an action is
either recorded completely or not at all. Audit details carry ids, dates, counts and states,
never the identifiers themselves.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable

from connectors.clock import today_helsinki
from connectors.errors import SafeMessage
from contact_register.requests.cases.identifiers import Identifiers, clean_text
from contact_register.requests.cases.backend import _KINDS, _STATES, Backend, CompactionBusy, Tx, open_backend

CASE_KINDS = _KINDS
SYSTEM_STATES = _STATES
KIND_PREFIX = {"access": "ACC", "erasure": "ERA", "restriction": "RES", "objection": "OBJ", "rectification": "REC"}
ANSWER_MONTHS = 1  # GDPR art. 12(3): one month ...
MAX_MONTHS = 3  # ... extendable by two further months
FREE_ACCESS_DAYS = 365  # privacy notice: an access request is free once a year
# States that keep a case from closing (without force): work still to do, a failure to retry,
# or a hold whose follow-up erasure needs the case open (closing deletes the identifiers).
OPEN_SYSTEM_STATES = ("pending", "manual_open", "failed", "held")
MAX_NOTE = 2000
REDACTED_PREFIX = "hmac-sha256:"  # case_identifiers value of an identifier replaced by its keyed hash
# Four eyes: these approvals must come from another person than the one who opened the case.
# On by default; REGISTER_FOUR_EYES=off turns it off (an office with one officer).
FOUR_EYES_ACTIONS = ("erasure",)


def four_eyes_on() -> bool:
    return os.environ.get("REGISTER_FOUR_EYES", "on").strip().lower() not in ("off", "0", "false", "no")


class RegisterError(SafeMessage, Exception):
    """A request the register refuses (wrong state, bad date, missing reason ...)."""


class CaseNotFound(RegisterError):
    pass


class CompactionPending(RegisterError):
    """The action is recorded, but the register could not be compacted yet, so deleted values may
    still sit in its free pages or WAL until ``Register.compact`` (``request compact``) succeeds."""


def add_months(day: date, months: int) -> date:
    """Same day ``months`` later, clamped to the month's end (31 Jan + 1 month = 28/29 Feb)."""
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def checked_text(value: Any, what: str, *, required: bool = True, limit: int = MAX_NOTE) -> str | None:
    """An officer's free text (actor, note, reason ...): None when blank and not ``required``,
    else :func:`~contact_register.requests.cases.identifiers.clean_text` with line breaks allowed."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise RegisterError(f"{what} is required")
        return None
    return clean_text(value, what, limit, error=RegisterError, line_breaks=True)


def _day(value: date | str | None, what: str) -> date | None:
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise RegisterError(f"{what} must be a date YYYY-MM-DD") from None


@dataclass
class SystemState:
    system: str
    state: str
    records: int | None
    detail: str | None
    error: str | None
    held_until: str | None
    updated_at: str
    updated_by: str


@dataclass
class Case:
    case_id: str
    kind: str
    status: str
    received_on: str
    original_due_on: str
    due_on: str
    extension_reason: str | None
    verified_method: str | None
    verified_by: str | None
    verified_at: str | None
    possibly_chargeable: bool
    created_at: str
    created_by: str
    closed_at: str | None
    outcome: str | None
    export_file: str | None
    export_sha256: str | None
    export_bytes: int | None
    export_expires_at: str | None
    extension_told_on: str | None = None
    extension_told_how: str | None = None
    identifiers: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, value, value_norm)
    systems: dict[str, SystemState] = field(default_factory=dict)
    approvals: list[tuple[str, str, str, str | None]] = field(default_factory=list)
    audit: list[dict] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return self.verified_at is not None

    def identifiers_obj(self) -> Identifiers:
        raw: dict[str, list[str]] = {}
        emails, phones, name, org = [], [], None, None
        for kind, value, norm in self.identifiers:
            if norm.startswith(REDACTED_PREFIX):
                continue  # an erased person's identifier lives on only as its keyed hash
            raw.setdefault(kind, []).append(value)
            if kind == "email":
                emails.append(norm)
            elif kind == "phone":
                phones.append(norm)
            elif kind == "name":
                name = value
            elif kind == "organization":
                org = value
        return Identifiers(tuple(emails), tuple(phones), name, org, raw)

    def summary(self) -> dict:
        """The case without identifiers: safe for logs, Dagster metadata and listings."""
        return {
            "case_id": self.case_id, "kind": self.kind, "status": self.status, "received_on": self.received_on,
            "due_on": self.due_on, "extended": self.due_on != self.original_due_on,
            "verified": self.verified, "possibly_chargeable": self.possibly_chargeable,
            "systems": {s: st.state for s, st in self.systems.items()},
        }


CASE_COLUMNS = (
    "case_id, kind, status, received_on, original_due_on, due_on, extension_reason, verified_method, "
    "verified_by, verified_at, possibly_chargeable, created_at, created_by, closed_at, outcome, "
    "export_file, export_sha256, export_bytes, export_expires_at, extension_told_on, extension_told_how"
)


class Register:
    def __init__(self, backend: Backend, hmac_key: bytes | None = None) -> None:
        self.backend = backend
        self._hmac_key = hmac_key

    @property
    def kind(self) -> str:
        return self.backend.kind

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> Register:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------

    def _key(self, tx: Tx) -> bytes:
        """The HMAC key: ``REGISTER_HMAC_KEY`` if set; otherwise one generated at first use and
        kept in the register (weaker: whoever reads the register can test guesses)."""
        if self._hmac_key is None:
            env = os.environ.get("REGISTER_HMAC_KEY")
            if env:
                self._hmac_key = env.encode()
            else:
                tx.execute("INSERT INTO register_meta (key, value) VALUES ('hmac_key', ?) ON CONFLICT DO NOTHING",
                           [secrets.token_hex(32)])
                self._hmac_key = tx.one("SELECT value FROM register_meta WHERE key = 'hmac_key'")[0].encode()
        return self._hmac_key

    def subject_hash(self, tx: Tx, kind: str, norm: str) -> str:
        return hmac.new(self._key(tx), f"{kind}:{norm}".encode(), hashlib.sha256).hexdigest()

    @staticmethod
    def _audit(tx: Tx, case_id: str | None, actor: str, action: str, detail: dict | None = None) -> None:
        tx.execute("INSERT INTO audit (case_id, at, actor, action, detail) VALUES (?, ?, ?, ?, ?)",
                   [case_id, _now(), actor, action, json.dumps(detail or {}, ensure_ascii=False, sort_keys=True)])

    @staticmethod
    def _case_row(tx: Tx, case_id: str) -> tuple:
        if not isinstance(case_id, str) or not case_id or len(case_id) > 64:
            raise CaseNotFound("no such case")
        row = tx.one(f"SELECT {CASE_COLUMNS} FROM cases WHERE case_id = ?", [case_id])
        if row is None:
            raise CaseNotFound(f"no case {case_id}")
        return row

    def _open_case(self, tx: Tx, case_id: str) -> Case:
        case = Case(*self._case_row(tx, case_id))
        if case.status != "open":
            raise RegisterError(f"case {case_id} is closed")
        return case

    # -- intake -----------------------------------------------------------------------------

    def new_case(
        self,
        kind: str,
        identifiers: Identifiers,
        *,
        actor: str,
        received_on: date | str | None = None,
        systems: Iterable[str] = (),
        note: str | None = None,
        verified_method: str | None = None,
        today: date | None = None,
    ) -> Case:
        """Open a case. ``identifiers`` must come from :func:`validate_identifiers`. A second
        access request for the same email or phone within 12 months is flagged as possibly
        chargeable. ``verified_method`` records the verification in the same transaction (for
        cases the pipeline opens itself, e.g. the retention review, so no half-made case stays).
        ``today`` (default: today in Helsinki) is the received date when none is given."""
        if kind not in CASE_KINDS:
            raise RegisterError(f"kind must be one of {', '.join(CASE_KINDS)}")
        if not isinstance(identifiers, Identifiers) or identifiers.is_empty():
            raise RegisterError("identifiers must be validated first (validate_identifiers)")
        actor = checked_text(actor, "actor", limit=200)
        note = checked_text(note, "note", required=False)
        verified_method = checked_text(verified_method, "verification method", required=False, limit=500)
        today = today or today_helsinki()
        received = _day(received_on, "received date") or today
        if received > today:
            raise RegisterError(f"received date is in the future (today is {today.isoformat()} in Helsinki)")
        due = add_months(received, ANSWER_MONTHS)
        systems = list(dict.fromkeys(systems))
        with self.backend.transaction() as tx:
            case_id = None
            for _ in range(10):
                candidate = f"{KIND_PREFIX[kind]}-{received:%Y%m%d}-{secrets.token_hex(3)}"
                if tx.one("SELECT 1 FROM cases WHERE case_id = ?", [candidate]) is None:
                    case_id = candidate
                    break
            if case_id is None:
                raise RegisterError("could not allocate a case id")
            hashes = sorted({self.subject_hash(tx, k, n) for k, _, n in identifiers.pairs() if k in ("email", "phone")})
            chargeable = False
            if kind == "access" and hashes:
                since = (received - timedelta(days=FREE_ACCESS_DAYS)).isoformat()
                marks = ", ".join("?" for _ in hashes)
                chargeable = tx.one(
                    f"SELECT count(*) FROM cases c JOIN case_subject_keys k ON k.case_id = c.case_id "
                    f"WHERE c.kind = 'access' AND c.received_on >= ? AND c.received_on <= ? AND k.key_hash IN ({marks})",
                    [since, received.isoformat(), *hashes],
                )[0] > 0
            now = _now()
            tx.execute(
                "INSERT INTO cases (case_id, kind, status, received_on, original_due_on, due_on, possibly_chargeable, "
                "created_at, created_by) VALUES (?, ?, 'open', ?, ?, ?, ?, ?, ?)",
                [case_id, kind, received.isoformat(), due.isoformat(), due.isoformat(), int(chargeable), now, actor],
            )
            for k, value, norm in identifiers.pairs():
                tx.execute("INSERT INTO case_identifiers (case_id, kind, value, value_norm) VALUES (?, ?, ?, ?)",
                           [case_id, k, value, norm])
            for h in hashes:
                tx.execute("INSERT INTO case_subject_keys (case_id, key_hash) VALUES (?, ?)", [case_id, h])
            counts = {k: sum(1 for p in identifiers.pairs() if p[0] == k) for k in ("email", "phone", "name", "organization")}
            self._audit(tx, case_id, actor, "case_created", {
                "kind": kind, "received_on": received.isoformat(), "due_on": due.isoformat(),
                "identifier_counts": counts, "possibly_chargeable": chargeable, "note": note,
            })
            if verified_method:
                tx.execute("UPDATE cases SET verified_method = ?, verified_by = ?, verified_at = ? WHERE case_id = ?",
                           [verified_method, actor, now, case_id])
                self._audit(tx, case_id, actor, "identity_verified", {"method": verified_method})
            if chargeable:
                self._audit(tx, case_id, actor, "flag_possibly_chargeable",
                            {"reason": "another access request for the same identifier within 12 months"})
            for system in systems:
                self._set_state(tx, case_id, system, "pending", actor)
        return self.get(case_id)

    def verify(self, case_id: str, *, method: str, actor: str) -> Case:
        """Record how the requester's identity was verified, and by whom."""
        method = checked_text(method, "verification method", limit=500)
        actor = checked_text(actor, "actor", limit=200)
        with self.backend.transaction() as tx:
            self._open_case(tx, case_id)
            now = _now()
            tx.execute("UPDATE cases SET verified_method = ?, verified_by = ?, verified_at = ? WHERE case_id = ?",
                       [method, actor, now, case_id])
            self._audit(tx, case_id, actor, "identity_verified", {"method": method})
        return self.get(case_id)

    def extend(self, case_id: str, *, new_due_on: date | str, reason: str, told_on: date | str | None,
               told_how: str | None, actor: str, today: date | None = None) -> Case:
        """Extend the deadline (GDPR art. 12(3)): only within the first month after receipt (up to
        the original due date), with a reason, and once the requester was told of it and why
        (``told_on``, ``told_how``); the new date may be at most three months after receipt.
        ``today`` defaults to today in Helsinki."""
        reason = checked_text(reason, "extension reason")
        actor = checked_text(actor, "actor", limit=200)
        new_due = _day(new_due_on, "new due date")
        today = today or today_helsinki()
        with self.backend.transaction() as tx:
            case = self._open_case(tx, case_id)
            received = date.fromisoformat(case.received_on)
            first_month_ends = date.fromisoformat(case.original_due_on)
            if today > first_month_ends:
                raise RegisterError(
                    f"too late to extend: an extension must be decided and told to the requester within the first "
                    f"month after receipt (by {first_month_ends.isoformat()}); answer the request now")
            told = _day(told_on, "told-on date")
            if told is None:
                raise RegisterError("the requester must be told of the extension and its reasons first: "
                                    "give the date they were told (--told-on) and how (--told-how)")
            told_how = checked_text(told_how, "how the requester was told (--told-how)", limit=200)
            if told < received:
                raise RegisterError(f"told-on date is before the request was received ({case.received_on})")
            if told > today:
                raise RegisterError(f"told-on date is in the future (today is {today.isoformat()} in Helsinki)")
            limit = add_months(received, MAX_MONTHS)
            if new_due <= date.fromisoformat(case.due_on):
                raise RegisterError(f"new due date must be after the current one ({case.due_on})")
            if new_due > limit:
                raise RegisterError(f"new due date is past the legal maximum of three months ({limit.isoformat()})")
            tx.execute("UPDATE cases SET due_on = ?, extension_reason = ?, extension_told_on = ?, "
                       "extension_told_how = ? WHERE case_id = ?",
                       [new_due.isoformat(), reason, told.isoformat(), told_how, case_id])
            self._audit(tx, case_id, actor, "deadline_extended",
                        {"from": case.due_on, "to": new_due.isoformat(), "reason": reason,
                         "told_on": told.isoformat(), "told_how": told_how})
        return self.get(case_id)

    def approve(self, case_id: str, *, action: str, actor: str, note: str | None = None) -> Case:
        """Record an approval (e.g. of an erasure before it runs, or of an export before it is sent).
        An erasure's approver must not be the case's opener (four eyes, see :func:`four_eyes_on`)."""
        action = checked_text(action, "action", limit=100)
        actor = checked_text(actor, "actor", limit=200)
        note = checked_text(note, "note", required=False)
        with self.backend.transaction() as tx:
            case = self._open_case(tx, case_id)
            if action in FOUR_EYES_ACTIONS and four_eyes_on() and actor == case.created_by:
                raise RegisterError(f"four eyes: {action} must be approved by another officer than the one who "
                                    f"opened the case ({actor}); REGISTER_FOUR_EYES=off turns the rule off")
            if tx.one("SELECT 1 FROM approvals WHERE case_id = ? AND action = ? AND approved_by = ?",
                      [case_id, action, actor]):
                raise RegisterError(f"{actor} has already approved {action} for this case")
            tx.execute("INSERT INTO approvals (case_id, action, approved_by, approved_at, note) VALUES (?, ?, ?, ?, ?)",
                       [case_id, action, actor, _now(), note])
            self._audit(tx, case_id, actor, "approved", {"action": action, "note": note})
        return self.get(case_id)

    def approvals_for(self, case_id: str, action: str) -> list[str]:
        with self.backend.transaction() as tx:
            return [r[0] for r in tx.execute(
                "SELECT approved_by FROM approvals WHERE case_id = ? AND action = ? ORDER BY approved_at", [case_id, action])]

    # -- per-system states ------------------------------------------------------------------

    def _set_state(self, tx: Tx, case_id: str, system: str, state: str, actor: str, *, records: int | None = None,
                   detail: str | None = None, error: str | None = None, held_until: str | None = None) -> None:
        if state not in SYSTEM_STATES:
            raise RegisterError(f"state must be one of {', '.join(SYSTEM_STATES)}")
        if not isinstance(system, str) or not system or len(system) > 64:
            raise RegisterError("system must be a short name")
        if state == "held" and not (detail and held_until):
            raise RegisterError("a held state needs a reason and an end date")
        if state == "failed" and not error:
            raise RegisterError("a failed state needs the error")
        tx.execute(
            "INSERT INTO case_systems (case_id, system, state, records, detail, error, held_until, updated_at, updated_by) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (case_id, system) DO UPDATE SET state = excluded.state, "
            "records = excluded.records, detail = excluded.detail, error = excluded.error, "
            "held_until = excluded.held_until, updated_at = excluded.updated_at, updated_by = excluded.updated_by",
            [case_id, system, state, records, detail, error, held_until, _now(), actor],
        )
        self._audit(tx, case_id, actor, "system_state", {
            "system": system, "state": state, "records": records, "detail": detail, "error": error,
            "held_until": held_until,
        })

    def set_system_state(self, case_id: str, system: str, state: str, *, actor: str, records: int | None = None,
                         detail: str | None = None, error: str | None = None,
                         held_until: date | str | None = None) -> None:
        """pending, found, not_found, done, failed (with error), manual_open / manual_answered
        (a task for a person), held (with a reason in ``detail`` and an end date)."""
        actor = checked_text(actor, "actor", limit=200)
        detail = checked_text(detail, "detail", required=False)
        error = checked_text(error, "error", required=False)
        until = _day(held_until, "held until")
        with self.backend.transaction() as tx:
            self._open_case(tx, case_id)
            self._set_state(tx, case_id, system, state, actor, records=records, detail=detail, error=error,
                            held_until=until.isoformat() if until else None)

    def record_export(self, case_id: str, *, file_name: str, sha256: str, size: int, expires_at: str,
                      actor: str, systems: dict[str, dict]) -> str | None:
        """The export's file, checksum and expiry, plus each system's outcome, in one transaction.
        Returns the file name of the export this one replaces (to be deleted by the caller and
        recorded with :meth:`record_export_removed`), or None."""
        with self.backend.transaction() as tx:
            case = self._open_case(tx, case_id)
            for system, outcome in systems.items():
                self._set_state(tx, case_id, system, outcome["state"], actor, records=outcome.get("records"),
                                detail=outcome.get("detail"), error=outcome.get("error"))
            tx.execute("UPDATE cases SET export_file = ?, export_sha256 = ?, export_bytes = ?, export_expires_at = ? "
                       "WHERE case_id = ?", [file_name, sha256, size, expires_at, case_id])
            replaced = case.export_file if case.export_file and case.export_file != file_name else None
            self._audit(tx, case_id, actor, "export_written",
                        {"file": file_name, "sha256": sha256, "bytes": size, "expires_at": expires_at,
                         "replaces": replaced})
        return replaced

    def record_export_removed(self, case_id: str, *, file_name: str, actor: str, reason: str,
                              file_existed: bool | None = None) -> None:
        """Record that an export package was deleted (``reason``: expired, replaced ...);
        ``file_existed`` False when it was already gone from the export folder."""
        with self.backend.transaction() as tx:
            self._case_row(tx, case_id)
            # The checksum stays (proof of what was sent); the file name goes with the file.
            tx.execute("UPDATE cases SET export_file = NULL, export_expires_at = NULL WHERE case_id = ? "
                       "AND export_file = ?", [case_id, file_name])
            self._audit(tx, case_id, actor, "export_removed",
                        {"file": file_name, "reason": reason, "file_existed": file_existed})

    def record_event(self, case_id: str, action: str, detail: dict, *, actor: str) -> None:
        """Append an event to a case's trail, open or closed (e.g. a marketing ban applied again
        to a re-entered record long after the case closed). ``detail``: ids, counts, states."""
        action = checked_text(action, "action", limit=100)
        actor = checked_text(actor, "actor", limit=200)
        with self.backend.transaction() as tx:
            self._case_row(tx, case_id)
            self._audit(tx, case_id, actor, action, detail)

    def related_cases(self, case_id: str, *, emails: Iterable[str] = (), phones: Iterable[str] = (),
                      by_case_keys: bool = True) -> list[str]:
        """The case and every case about the same subject: sharing one of the case's keyed
        subject hashes (unless ``by_case_keys`` is False: a requester may have given a shared
        mailbox), or the hash of one of the given normalised ``emails`` / ``phones``."""
        with self.backend.transaction() as tx:
            self._case_row(tx, case_id)
            keys = {r[0] for r in tx.execute("SELECT key_hash FROM case_subject_keys WHERE case_id = ?", [case_id])
                    } if by_case_keys else set()
            keys |= {self.subject_hash(tx, "email", e) for e in emails}
            keys |= {self.subject_hash(tx, "phone", p) for p in phones}
            found = {case_id}
            for key in sorted(keys):
                found |= {r[0] for r in tx.execute("SELECT case_id FROM case_subject_keys WHERE key_hash = ?", [key])}
        return sorted(found)

    def redact_identifiers(self, case_id: str, actor: str) -> int:
        """Replace the case's identifiers by keyed hashes (after an erasure): the case, its states,
        approvals and audit trail stay; the values go. Returns how many were replaced (0 when
        already done). The store is then compacted, also on a repeat (an earlier compaction may
        have failed): SQLite is vacuumed so the old values leave the file's free pages and WAL;
        on PostgreSQL ``case_identifiers`` and ``case_corrections`` are rewritten with VACUUM FULL,
        but copies in the server's WAL, WAL archive and backups age out only with their retention."""
        actor = checked_text(actor, "actor", limit=200)
        with self.backend.transaction() as tx:
            self._case_row(tx, case_id)
            rows = tx.execute("SELECT kind, value_norm FROM case_identifiers WHERE case_id = ?", [case_id])
            redacted = 0
            for kind, norm in rows:
                if norm.startswith(REDACTED_PREFIX):
                    continue
                digest = self.subject_hash(tx, kind, norm)
                tx.execute("UPDATE case_identifiers SET value = ?, value_norm = ? "
                           "WHERE case_id = ? AND kind = ? AND value_norm = ?",
                           [REDACTED_PREFIX + digest, REDACTED_PREFIX + digest, case_id, kind, norm])
                if kind in ("email", "phone"):
                    tx.execute("INSERT INTO case_subject_keys (case_id, key_hash) VALUES (?, ?) ON CONFLICT DO NOTHING",
                               [case_id, digest])
                redacted += 1
            # A rectification's corrected values are the person's identifiers too.
            redacted += len(tx.execute("DELETE FROM case_corrections WHERE case_id = ? RETURNING field", [case_id]))
            if redacted:
                self._audit(tx, case_id, actor, "identifiers_redacted", {"identifiers": redacted})
        self._compact_after(f"case {case_id}: identifiers replaced by keyed hashes")
        return redacted

    def compact(self) -> None:
        """Compact the store (see the backends' ``compact``): deleted identifiers leave its
        files. Raises :class:`RegisterError` when another connection keeps it busy."""
        try:
            self.backend.compact()
        except CompactionBusy as exc:
            raise RegisterError(f"register not compacted: {exc}; try again") from None

    def _compact_after(self, done: str) -> None:
        try:
            self.backend.compact()
        except CompactionBusy as exc:
            raise CompactionPending(f"{done}, but the register is not compacted yet ({exc}), so the deleted values "
                                    "may remain in its free pages or WAL: run `contact-register request compact`"
                                    ) from None

    def expired_exports(self, now: datetime | None = None) -> list[tuple[str, str]]:
        now_s = (now or datetime.now(timezone.utc)).isoformat(timespec="seconds")
        with self.backend.transaction() as tx:
            return [(r[0], r[1]) for r in tx.execute(
                "SELECT case_id, export_file FROM cases WHERE export_file IS NOT NULL AND export_expires_at <= ?",
                [now_s])]

    # -- closing ----------------------------------------------------------------------------

    def close_case(self, case_id: str, *, outcome: str, actor: str, force: bool = False) -> Case:
        """Close the case. Open per-system work (pending, manual task open, failed, held) blocks
        closing unless ``force``. The identifiers given and a rectification's corrected values are
        deleted, then the store is compacted so their bytes leave its files too (raises
        :class:`CompactionPending`, the case closed, when that must be retried): accountability
        needs only the keyed hashes, the states and the audit trail."""
        outcome = checked_text(outcome, "outcome", limit=500)
        actor = checked_text(actor, "actor", limit=200)
        with self.backend.transaction() as tx:
            self._open_case(tx, case_id)
            marks = ", ".join("?" for _ in OPEN_SYSTEM_STATES)
            still_open = [r[0] for r in tx.execute(
                f"SELECT system FROM case_systems WHERE case_id = ? AND state IN ({marks}) ORDER BY system",
                [case_id, *OPEN_SYSTEM_STATES])]
            if still_open and not force:
                raise RegisterError(f"systems still open: {', '.join(still_open)} (answer them or force)")
            n_ids = tx.one("SELECT count(*) FROM case_identifiers WHERE case_id = ?", [case_id])[0]
            tx.execute("DELETE FROM case_identifiers WHERE case_id = ?", [case_id])
            tx.execute("DELETE FROM case_corrections WHERE case_id = ?", [case_id])  # a rectification's new values
            tx.execute("UPDATE cases SET status = 'closed', closed_at = ?, outcome = ? WHERE case_id = ?",
                       [_now(), outcome, case_id])
            self._audit(tx, case_id, actor, "case_closed",
                        {"outcome": outcome, "forced_open_systems": still_open if force else [],
                         "identifiers_deleted": n_ids})
        self._compact_after(f"case {case_id} is closed")
        return self.get(case_id)

    # -- reading ----------------------------------------------------------------------------

    def get(self, case_id: str, *, with_audit: bool = False) -> Case:
        with self.backend.transaction() as tx:
            row = self._case_row(tx, case_id)
            case = Case(*row[:10], bool(row[10]), *row[11:])
            case.identifiers = [tuple(r) for r in tx.execute(
                "SELECT kind, value, value_norm FROM case_identifiers WHERE case_id = ? ORDER BY kind, value_norm",
                [case_id])]
            for r in tx.execute("SELECT system, state, records, detail, error, held_until, updated_at, updated_by "
                                "FROM case_systems WHERE case_id = ? ORDER BY system", [case_id]):
                case.systems[r[0]] = SystemState(*r)
            case.approvals = [tuple(r) for r in tx.execute(
                "SELECT action, approved_by, approved_at, note FROM approvals WHERE case_id = ? ORDER BY approved_at",
                [case_id])]
            if with_audit:
                case.audit = self._audit_rows(tx, case_id)
        return case

    @staticmethod
    def _audit_rows(tx: Tx, case_id: str | None) -> list[dict]:
        rows = tx.execute("SELECT seq, case_id, at, actor, action, detail FROM audit WHERE case_id = ? ORDER BY seq",
                          [case_id])
        return [{"seq": r[0], "case_id": r[1], "at": r[2], "actor": r[3], "action": r[4], "detail": json.loads(r[5])}
                for r in rows]

    def audit_trail(self, case_id: str) -> list[dict]:
        with self.backend.transaction() as tx:
            self._case_row(tx, case_id)
            return self._audit_rows(tx, case_id)

    def list_cases(self, *, status: str | None = "open", kind: str | None = None) -> list[Case]:
        sql, params = f"SELECT {CASE_COLUMNS} FROM cases WHERE 1 = 1", []
        if status:
            sql += " AND status = ?"
            params.append(status)
        if kind:
            sql += " AND kind = ?"
            params.append(kind)
        with self.backend.transaction() as tx:
            rows = tx.execute(sql + " ORDER BY due_on, case_id", params)
        return [Case(*r[:10], bool(r[10]), *r[11:]) for r in rows]

    def due(self, *, today: date | None = None, soon_days: int = 7) -> dict[str, list[Case]]:
        """Open cases past their due date (``overdue``) and due within ``soon_days`` (``due_soon``).
        A case whose only remaining work is a legal hold's follow-up (every other system answered)
        is listed under ``held`` instead: it stays open for years by design, and counting it as
        overdue every day would bury the cases that really are."""
        today = today or today_helsinki()
        horizon = today + timedelta(days=soon_days)
        out: dict[str, list[Case]] = {"overdue": [], "due_soon": [], "held": []}
        for case in self.list_cases(status="open"):
            due = date.fromisoformat(case.due_on)
            if due > horizon:
                continue
            # own_stores waits for the hold too (the erasure erases our stores last).
            states = {st.state for name, st in self.get(case.case_id).systems.items() if name != "own_stores"}
            if "held" in states and not states & {"pending", "manual_open", "failed"}:
                out["held"].append(case)
            elif due < today:
                out["overdue"].append(case)
            else:
                out["due_soon"].append(case)
        return out


def open_register(url: str | None = None) -> Register:
    """``url`` or ``REGISTER_URL``; empty means SQLite at ``data/register.sqlite``."""
    return Register(open_backend(url if url is not None else os.environ.get("REGISTER_URL", "")))
