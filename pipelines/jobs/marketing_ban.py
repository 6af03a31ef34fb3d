"""The ``marketing_ban`` Dagster job: an objection case in, the person banned everywhere.

Launch it with the id of an ``objection`` case (``contact-register request new --kind
objection``). The job finds the person in the warehouse (the same matching as the export),
narrows the identifiers to the person's own (no role mailbox or shared number acts on someone
else), puts them on the suppression list first (so the nightly check keeps the promise even if
a system is down now), then bans and verifies per system and records each answer in the case:
done, not_found, not_applicable (with the reason) or failed (with the error). Running it again
is harmless: banned records are only read. ``dry_run`` reads and reports, and records nothing.

An objection to direct marketing must be honoured without conditions (GDPR art. 21(3)) and a
ban harms nobody, so the job does not wait for identity verification; it notes when it is
missing. If an erasure case is open for the same identifiers, the ban still runs (it never
conflicts with an erasure) and the case's trail names the erasure case.
"""

from dagster import Config, Failure, OpExecutionContext, Out, Output, job, op

from connectors.errors import describe
from pipelines.concurrency import tags_for
from contact_register.requests.erasure.flow import resolve_case_subject
from contact_register.requests.marketing_ban.run import ban_everywhere, record_outcomes
from contact_register.requests.cases import RegisterError
from contact_register.requests.cases.casebook import Register
from contact_register.requests.suppression.store import SuppressionKeyError, SuppressionList
from assets.system_resources import SYSTEM_RESOURCES
from pipelines.jobs.writeback_support import systems_table, writeback_session


class MarketingBanConfig(Config):
    case_id: str
    """The objection case (contact-register request new --kind objection ...)."""
    dry_run: bool = False
    """Only read each system and report what would be banned; nothing is written or recorded."""


def open_erasure_cases(register: Register, case_id: str) -> list[str]:
    """Open erasure cases that share an email or phone (by keyed hash) with this case."""
    related = (register.get(c) for c in register.related_cases(case_id) if c != case_id)
    return [c.case_id for c in related if c.kind == "erasure" and c.status == "open"]


@op(
    required_resource_keys={"register", "storage", *SYSTEM_RESOURCES.values()},
    out=Out(dict, description="Per-system state and counts (no personal data)."),
    tags={"register/step": "marketing_ban"},
)
def ban_marketing(context: OpExecutionContext, config: MarketingBanConfig):
    """Ban the case's person in every system, verify by reading back, record it in the case."""
    with writeback_session(context) as (actor, register, clients):
        try:
            case = register.get(config.case_id.strip())
        except RegisterError as exc:
            raise Failure(describe(exc)) from None
        if case.kind != "objection":
            raise Failure(f"case {case.case_id} is a {case.kind} case; marketing_ban answers objection cases")
        if case.status != "open":
            raise Failure(f"case {case.case_id} is closed")
        if not case.verified:
            context.log.warning(f"case {case.case_id}: identity not verified; banning anyway (art. 21(3))")
        warehouse = context.resources.storage.warehouse_file()
        if not warehouse.exists():
            raise Failure(f"no warehouse at {warehouse.name}: run nightly_sync first")
        subject, dropped = resolve_case_subject(case, warehouse)
        if not subject.emails and not subject.phones:
            raise Failure(f"case {case.case_id}: no personal email or phone to ban by "
                          f"(dropped as shared: {sum(dropped.values())})")
        erasures = open_erasure_cases(register, case.case_id)
        suppressed = {}
        if not config.dry_run:
            try:
                suppressed = SuppressionList(register).add_subject(subject, reason="ban", actor=actor)
            except SuppressionKeyError as exc:
                raise Failure(describe(exc)) from None
            if erasures:
                register.record_event(case.case_id, "concurrent_erasure", {
                    "erasure_cases": erasures,
                    "note": "the ban runs anyway; the suppression list keeps both the ban and the erasure"},
                    actor=actor)
        outcomes = ban_everywhere(clients, subject, dry_run=config.dry_run)
        if not config.dry_run:
            record_outcomes(register, case.case_id, outcomes, actor=actor)

    metadata = {
        "case_id": case.case_id, "dry_run": config.dry_run, "persons_found": len(subject.person_ids),
        "identifiers_dropped_as_shared": sum(dropped.values()), "open_erasure_cases": len(erasures),
        "suppression_hashes": sum(suppressed.values()),
    }
    for system, o in outcomes.items():
        metadata[system] = f"{o.state}: {o.records} records"
        context.log.info(f"{system}: {o.state}, {o.records} records")
    metadata["systems"] = systems_table(("system", "state", "records", "detail"),
                                        [(s, o.state, o.records, o.error or o.detail) for s, o in outcomes.items()])
    failed = sorted(s for s, o in outcomes.items() if o.state == "failed")
    if failed:
        raise Failure(f"marketing ban failed in {', '.join(failed)} (recorded in case {case.case_id})",
                      metadata=metadata)
    yield Output({"case_id": case.case_id, "systems": {s: o.state for s, o in outcomes.items()}}, metadata=metadata)


@job(
    name="marketing_ban",
    description="Answer an objection to direct marketing: ban the person in every system, verified, "
                "and put them on the suppression list.",
    tags={"register/job": "marketing_ban", **tags_for(SYSTEM_RESOURCES)},
)
def marketing_ban():
    ban_marketing()
