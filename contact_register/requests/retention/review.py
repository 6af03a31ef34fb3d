"""Find the people whose data has outlived its purpose and open an erasure case for each.

With the rules of ``rules.py`` (months per rule) and the published warehouse:

- ``prospect_inactive``: a person who is not a customer (no won Pipedrive deal, no Netvisor
  billing record) and whose ``last_activity`` is older than the rule's months;
- ``former_customer``: a customer without an open deal whose relationship ended (the later of
  the last invoice naming them and the last change of a won deal) and whose last activity are
  both older than the rule's months. An invoiced contract ends in the data when the invoices
  stop; a contract invoiced less than yearly needs a longer period here.

"Activity" is the latest change of any of the person's records, except Netvisor's customer and
contact-person records, whose API gives no change time: for them the invoices naming them
count. A person with no dated record at all is counted as undated and not reviewed.

A stale person is skipped, with the reason counted, when they are under a legal hold (invoices
naming them still inside the Kirjanpitolaki 2:10 § period: voucher rule for a billing contact,
books rule for a private customer; an undated invoice holds until someone looks), restricted
(art. 18: they asked us to keep the data), have an open case of any kind (which includes the
erasure case an earlier review opened: a second review duplicates nothing), or have no usable
identifiers. Everyone else becomes an ``erasure`` case with their identifiers from the
warehouse and a note naming the rule; the case is marked verified by the review itself (there
is no requester) and waits for an approval, after which the normal ``erasure`` job runs it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date

import duckdb

from contact_register.requests.suppression.check import warehouse_identifiers
from connectors.clock import today_helsinki
from connectors.legal_hold import BOOKS, VOUCHER, FinancialYears, retention_end
from contact_register.requests.cases.casebook import Register, add_months
from contact_register.description import load_description

REVIEW_METHOD = "retention review: no requester, identifiers from the warehouse"
# Netvisor's API gives customers and contact persons no change time: the raw store's changed_at
# is when a sync saw them, so their activity is the invoices naming them (linked records).
UNDATED_RECORDS = "r.system = 'netvisor' AND r.record_kind IN ('contact_person', 'customer')"
HOLD_RULE = {"netvisor:contact_person_id": VOUCHER, "netvisor:customer_id": BOOKS}


@dataclass
class Stale:
    person_id: str
    rule: str
    last_activity: date | None
    ended_on: date | None = None


@dataclass
class ReviewResult:
    """Counts and case ids only (Dagster metadata)."""

    persons: int = 0
    stale: Counter = field(default_factory=Counter)  # rule -> persons
    skipped: Counter = field(default_factory=Counter)  # reason -> persons
    case_ids: list[str] = field(default_factory=list)
    would_open: int = 0  # dry run: cases a real run would open
    undated: int = 0  # persons without any dated record: not reviewable


def _has_table(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?",
                            [schema, table]).fetchall()[0][0])


def _rows_if(con: duckdb.DuckDBPyConnection, schema: str, table: str, sql: str) -> list[tuple]:
    """The query's rows, or none when the warehouse has no such raw table (a system not synced)."""
    return con.execute(sql).fetchall() if _has_table(con, schema, table) else []


def _facts(con: duckdb.DuckDBPyConnection) -> dict[str, dict]:
    """person_id -> last_activity, restricted, won_at, open_deal, billing, invoices [(rule, date)]."""
    facts = {pid: {"last_activity": last, "restricted": bool(restricted), "won_at": None, "open_deal": False,
                   "billing": False, "invoices": []}
             for pid, last, restricted in con.execute(f"""
                 SELECT p.person_id, CAST(max(r.updated_at) FILTER (WHERE NOT ({UNDATED_RECORDS})) AS DATE),
                        p.restricted
                 FROM persons AS p LEFT JOIN person_records AS r USING (person_id)
                 GROUP BY p.person_id, p.restricted""").fetchall()}
    for pid, status, changed in _rows_if(con, "raw_pipedrive", "deals", """
            SELECT r.person_id, d.status, CAST(d.update_time AS DATE) FROM person_records AS r
            JOIN raw_pipedrive.deals AS d ON r.system = 'pipedrive' AND r.record_kind = 'deal'
             AND r.record_id = CAST(d.id AS VARCHAR)"""):
        f = facts.get(pid)
        if f is None:
            continue
        if status == "won" and changed is not None:
            f["won_at"] = max(f["won_at"] or changed, changed)
        elif status == "open":
            f["open_deal"] = True
    for (pid,) in con.execute("SELECT DISTINCT person_id FROM person_records WHERE system = 'netvisor' "
                              "AND record_kind IN ('contact_person', 'customer')").fetchall():
        if pid in facts:
            facts[pid]["billing"] = True
    for pid, rule, day in _rows_if(con, "raw_netvisor", "invoices", """
            SELECT r.person_id, r.rule, TRY_CAST(i.invoice_date AS DATE) FROM person_records AS r
            JOIN raw_netvisor.invoices AS i ON r.system = 'netvisor' AND r.record_kind = 'invoice'
             AND r.record_id = CAST(i.id AS VARCHAR)"""):
        if pid in facts:
            facts[pid]["invoices"].append((HOLD_RULE.get(rule, VOUCHER), day))
            facts[pid]["billing"] = True
    return facts


def stale_persons(con: duckdb.DuckDBPyConnection, rules: dict[str, int], today: date
                  ) -> tuple[list[Stale], dict, int]:
    """The stale persons, the facts about everyone, and how many persons have no dated record."""
    facts = _facts(con)
    out, undated = [], 0
    for pid, f in sorted(facts.items()):
        last = f["last_activity"]
        if last is None:
            undated += 1  # no dated record (e.g. a billing contact never invoiced): nothing to measure
            continue
        customer = f["billing"] or f["won_at"] is not None
        if not customer and "prospect_inactive" in rules:
            if last < add_months(today, -rules["prospect_inactive"]):
                out.append(Stale(pid, "prospect_inactive", last))
        elif customer and "former_customer" in rules and not f["open_deal"]:
            invoiced = [d for _r, d in f["invoices"] if d is not None]
            ended = max([d for d in (f["won_at"], *invoiced) if d is not None], default=last)
            cutoff = add_months(today, -rules["former_customer"])
            if ended < cutoff and last < cutoff:
                out.append(Stale(pid, "former_customer", last, ended))
    return out, facts, undated


def legal_hold_end(invoices: list[tuple[str, date | None]], years: FinancialYears) -> date | None:
    """The last day the invoices naming the person must be kept (date.max for an undated one)."""
    if not invoices:
        return None
    return max(date.max if day is None else retention_end(day, rule, years) for rule, day in invoices)


def _open_case_keys(register: Register) -> set[str]:
    with register.backend.transaction() as tx:
        return {r[0] for r in tx.execute(
            "SELECT k.key_hash FROM case_subject_keys AS k JOIN cases AS c ON c.case_id = k.case_id "
            "WHERE c.status = 'open'")}


def _hashes(register: Register, ids) -> set[str]:
    with register.backend.transaction() as tx:
        return {register.subject_hash(tx, kind, norm) for kind, _v, norm in ids.pairs() if kind in ("email", "phone")}


def run_review(con: duckdb.DuckDBPyConnection, register: Register, *, rules: dict[str, int], actor: str,
               today: date | None = None, years: FinancialYears = FinancialYears(),
               dry_run: bool = False) -> ReviewResult:
    today = today or today_helsinki()
    stale, facts, undated = stale_persons(con, rules, today)
    result = ReviewResult(persons=len(facts), undated=undated)
    open_keys = _open_case_keys(register)
    systems = [p["system"] for p in load_description()["processors"]]
    for s in stale:
        result.stale[s.rule] += 1
        f = facts[s.person_id]
        hold = legal_hold_end(f["invoices"], years)
        if hold is not None and hold >= today:
            result.skipped["legal_hold"] += 1
            continue
        if f["restricted"]:
            result.skipped["restricted"] += 1
            continue
        ids = warehouse_identifiers(con, s.person_id)
        if ids is None:
            result.skipped["no_usable_identifiers"] += 1
            continue
        if _hashes(register, ids) & open_keys:
            result.skipped["open_case"] += 1
            continue
        if dry_run:
            result.would_open += 1
            continue
        case = register.new_case("erasure", ids, actor=actor, systems=systems, verified_method=REVIEW_METHOD, note=(
            f"retention review: rule {s.rule} ({rules[s.rule]} months), person {s.person_id}"))
        register.record_event(case.case_id, "retention_review", {
            "rule": s.rule, "months": rules[s.rule], "person_id": s.person_id,
            "last_activity": s.last_activity.isoformat(), "relationship_ended": s.ended_on.isoformat() if s.ended_on
            else None, "awaiting": "approval (contact-register request approve CASE --action erasure)"}, actor=actor)
        open_keys |= _hashes(register, ids)  # the same human twice in one review: one case
        result.case_ids.append(case.case_id)
    return result
