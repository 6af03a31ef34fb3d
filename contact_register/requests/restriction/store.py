"""Active restrictions in the request register: keyed hashes of the person's emails and phones
(``restriction_keys``, the register's own HMAC as in ``case_subject_keys``) and the source
records marked restricted (``restriction_marks``). They outlive the case's identifiers, so the
warehouse keeps flagging the person and the marks can be lifted after the case closed; lifting
deletes both (the audit trail keeps the fact)."""

from __future__ import annotations

from connectors.clock import today_helsinki
from contact_register.requests.cases.casebook import Register, RegisterError, checked_text
from contact_register.requests.writeback.base import WritebackSubject

LIFT_DECIDED = "restriction_lift_decided"


def add_restriction(register: Register, subject: WritebackSubject, marks: list[tuple[str, str, str]], *,
                    actor: str) -> dict[str, int]:
    """Record the subject's keys and the marked records under their case (idempotent)."""
    today = today_helsinki().isoformat()
    with register.backend.transaction() as tx:
        for kind, values in (("email", subject.emails), ("phone", subject.phones)):
            for value in values:
                key = register.subject_hash(tx, kind, value)
                tx.execute("INSERT INTO restriction_keys (case_id, kind, key_hash, added_on) VALUES (?, ?, ?, ?) "
                           "ON CONFLICT DO NOTHING", [subject.case_id, kind, key, today])
        for system, kind, rid in marks:
            tx.execute("INSERT INTO restriction_marks (case_id, system, record_kind, record_id) VALUES (?, ?, ?, ?) "
                       "ON CONFLICT DO NOTHING", [subject.case_id, system, kind, rid])
        counts = {"keys": tx.one("SELECT count(*) FROM restriction_keys WHERE case_id = ?", [subject.case_id])[0],
                  "marks": tx.one("SELECT count(*) FROM restriction_marks WHERE case_id = ?", [subject.case_id])[0]}
        Register._audit(tx, subject.case_id, actor, "restriction_recorded", counts)
    return counts


def marks_of(register: Register, case_id: str) -> list[tuple[str, str, str]]:
    with register.backend.transaction() as tx:
        return [tuple(r) for r in tx.execute(
            "SELECT system, record_kind, record_id FROM restriction_marks WHERE case_id = ? "
            "ORDER BY system, record_kind, record_id", [case_id])]


def is_active(register: Register, case_id: str) -> bool:
    with register.backend.transaction() as tx:
        return any(tx.one(f"SELECT count(*) FROM {table} WHERE case_id = ?", [case_id])[0]
                   for table in ("restriction_keys", "restriction_marks"))


def active_keys(register: Register) -> dict[str, list[str]]:
    """key hash -> case ids, of every active restriction."""
    out: dict[str, list[str]] = {}
    with register.backend.transaction() as tx:
        for case_id, key_hash in tx.execute("SELECT case_id, key_hash FROM restriction_keys"):
            out.setdefault(key_hash, []).append(case_id)
    return out


def remove_restriction(register: Register, case_id: str, *, actor: str, detail: dict) -> None:
    """The restriction is lifted: its keys and marks go, the trail records it."""
    with register.backend.transaction() as tx:
        register._case_row(tx, case_id)
        tx.execute("DELETE FROM restriction_keys WHERE case_id = ?", [case_id])
        tx.execute("DELETE FROM restriction_marks WHERE case_id = ?", [case_id])
        Register._audit(tx, case_id, actor, "restriction_lifted", detail)


def record_lift_decision(register: Register, case_id: str, *, reason: str, actor: str) -> None:
    """The operator's decision to lift (art. 18(3): the person is told before the lift), which
    the ``restriction`` job's ``lift: true`` requires."""
    reason = checked_text(reason, "reason for lifting", limit=500)
    if not is_active(register, case_id):
        raise RegisterError(f"case {case_id} has no active restriction")
    register.record_event(case_id, LIFT_DECIDED, {"reason": reason}, actor=actor)


def lift_decided(register: Register, case_id: str) -> bool:
    """A lift decision recorded after the restriction was last applied."""
    trail = register.audit_trail(case_id)
    applied = max((a["seq"] for a in trail if a["action"] == "restriction_recorded"), default=0)
    return any(a["action"] == LIFT_DECIDED and a["seq"] > applied for a in trail)
