"""The nightly suppression check: people on the list who re-entered a system are banned again.

The warehouse build has matched every record's identifiers against the list
(``staging.suppression_hits``). A hit on a record the register has not seen yet
(``suppression_records``: records present when the person was banned or erased, and records
handled on earlier nights) is a re-entry:

- a banned person: banned again through the same banners, under their objection case (its
  per-system states if the case is open, a trail event if it is closed);
- an erased person re-collected (e.g. from a public source): a new ``objection`` case is opened
  for the operator (due in a month like any request), the erasure case's trail points at it,
  and the person is banned under it, as the privacy notice promises. Whether to erase them
  again is the operator's call; a ban is what the notice promises automatically.

Either way the person's current identifiers join the list under that case, and the records are
marked handled; a system that failed is tried again the next night, under the same case.
Checking every record costs one HMAC per distinct email and phone of the warehouse in the build
(about 3 µs each: some 6 s for a million records with an email and a phone, on a 2-core
machine; nothing while the list is empty), so there is no separate "changed since" tracking: a
record changed to carry a listed identifier is simply a new hit.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import duckdb

from contact_register.requests.erasure.matching import narrow_to_personal
from contact_register.requests.marketing_ban.run import ban_everywhere, record_outcomes
from contact_register.requests.cases import InvalidIdentifier, validate_identifiers
from contact_register.requests.cases.identifiers import MAX_VALUES, Identifiers, normalize_email_strict, normalize_phone_strict
from contact_register.requests.suppression.store import SuppressionList
from contact_register.requests.writeback.base import Clients, resolve_subject

HANDLED_STATES = ("done", "not_found", "not_applicable", "manual_open")


@dataclass
class CheckResult:
    """Counts only (Dagster metadata and logs)."""

    hits: int = 0
    new_records: int = 0
    persons: int = 0
    rebanned: int = 0
    new_cases: int = 0
    retried: int = 0
    failed_systems: int = 0
    states: Counter = field(default_factory=Counter)
    case_ids: list[str] = field(default_factory=list)


def _valid(values, check) -> list[str]:
    out = []
    for v in values or []:
        try:
            out.append(check(v))
        except InvalidIdentifier:
            continue  # the warehouse's lenient normalisation accepts a few the register does not
    return list(dict.fromkeys(out))[:MAX_VALUES]


def warehouse_identifiers(con: duckdb.DuckDBPyConnection, person_id: str) -> Identifiers | None:
    """The person's emails, phones and best name as the warehouse has them, validated for a case."""
    rows = con.execute("SELECT name, emails, phones FROM persons WHERE person_id = ?", [person_id]).fetchall()
    if not rows:
        return None
    name, emails, phones = rows[0]
    emails, phones = _valid(emails, normalize_email_strict), _valid(phones, normalize_phone_strict)
    for given_name in (name or None, None):  # a name that is no name (no letters) is left out
        try:
            return validate_identifiers(emails, phones, given_name)
        except InvalidIdentifier:
            continue
    return None


def run_check(con: duckdb.DuckDBPyConnection, suppression: SuppressionList, clients: Clients, *,
              actor: str) -> CheckResult:
    result = CheckResult()
    if suppression.is_empty():
        return result
    register = suppression.register
    rows = con.execute("""
        SELECT h.system, h.record_kind, h.record_id, h.case_id, h.reason, r.person_id
        FROM staging.suppression_hits AS h JOIN person_records AS r USING (system, record_kind, record_id)
        ORDER BY r.person_id, h.system, h.record_kind, h.record_id""").fetchall()
    result.hits = len({r[:3] for r in rows})
    handled = suppression.handled()
    retry = suppression.retry_cases()
    people: dict[str, dict] = defaultdict(lambda: {"records": set(), "cases": {}})
    for system, kind, rid, case_id, reason, person_id in rows:
        if (system, kind, rid) not in handled:
            people[person_id]["records"].add((system, kind, rid))
            people[person_id]["cases"][case_id] = reason
    result.new_records = len({rec for p in people.values() for rec in p["records"]})
    result.persons = len(people)
    for person_id, found in sorted(people.items()):
        ids = warehouse_identifiers(con, person_id)
        if ids is None:
            result.failed_systems += 1
            result.states["no_usable_identifiers"] += 1
            continue
        erased = sorted(c for c, r in found["cases"].items() if r == "erasure")
        banned = sorted(c for c, r in found["cases"].items() if r == "ban")
        systems = sorted({s for s, _, _ in found["records"]})
        started = sorted({retry[r] for r in found["records"] if r in retry})
        if started:  # a failed or interrupted earlier attempt: continue its case
            target = started[0]
            result.retried += 1
        elif erased:
            case = register.new_case("objection", ids, actor=actor, note=(
                f"re-collected after erasure ({', '.join(erased)}): banned automatically by the nightly "
                "suppression check; decide whether to erase again"))
            target = case.case_id
            # Claimed under the new case at once: a run killed after this point continues
            # this case next night instead of opening another one.
            suppression.mark_handled(found["records"], case_id=target, state="failed")
            for erasure_case in erased:
                register.record_event(erasure_case, "recollected", {
                    "new_case": target, "records": len(found["records"]), "systems": systems}, actor=actor)
            result.new_cases += 1
        else:
            target = banned[0]
            result.rebanned += 1
        # Marked as unfinished under the case first: if this run dies here, the next one
        # continues the same case instead of opening another.
        suppression.mark_handled(found["records"], case_id=target, state="failed")
        subject = resolve_subject(con, target, ids)
        narrow_to_personal(subject, con)
        outcomes = ban_everywhere(clients, subject, systems=systems)
        register.record_event(target, "suppression_reentry", {
            "records": len(found["records"]), "systems": systems, "list_cases": sorted(found["cases"])},
            actor=actor)
        record_outcomes(register, target, outcomes, actor=actor)
        if subject.emails or subject.phones:
            suppression.add_subject(subject, reason="ban", actor=actor)
        for system in systems:
            state = outcomes[system].state if system in outcomes else "failed"
            result.states[state] += 1
            if state not in HANDLED_STATES:
                result.failed_systems += 1
            suppression.mark_handled([r for r in found["records"] if r[0] == system], case_id=target,
                                     state=state if state in HANDLED_STATES else "failed")
        result.case_ids.append(target)
    return result
