"""The monthly ``retention_review`` job: the register description's retention rules applied to
the published warehouse; each stale person becomes an erasure case awaiting approval.

The rules (``retention[].review_rules`` in ``contact_register/register.yaml``) and what "stale",
"customer" and "ended" mean are in ``contact_register/requests/retention/review.py``. Each new case carries the
person's identifiers from the warehouse and the note "retention review: rule ..."; the officer
approves it (``contact-register request approve CASE --action erasure``) and runs the normal
``erasure`` job. Persons under a legal hold, restricted, or with an open case are skipped and
counted by reason; a second review opens no duplicates. Run metadata holds counts and case ids
only. ``dry_run`` counts without opening cases.
"""

from datetime import date

import duckdb
from dagster import (
    Config,
    DefaultScheduleStatus,
    Failure,
    OpExecutionContext,
    Out,
    Output,
    ScheduleDefinition,
    job,
    op,
)

from connectors.clock import today_helsinki
from connectors.legal_hold import FinancialYears
from contact_register.description import DescriptionError
from contact_register.requests.retention.review import run_review
from contact_register.requests.retention.rules import review_rules


class RetentionReviewConfig(Config):
    dry_run: bool = False
    """Count the stale persons and the cases a run would open; open none."""
    as_of: str = ""
    """Review as of this date (YYYY-MM-DD; default today), e.g. to preview next month's review."""
    financial_year_start: str = "01-01"
    """MM-DD the company's financial year starts on (for the bookkeeping holds of invoices)."""
    financial_year_periods: list[str] = []
    """Every financial year that did not follow that rule (a first or changed year of up to 18
    months), as YYYY-MM-DD/YYYY-MM-DD: the same setting as the Netvisor resource's."""


@op(
    required_resource_keys={"register", "storage"},
    out=Out(dict, description="Counts per rule and skip reason, and the new case ids."),
    tags={"register/step": "retention_review"},
)
def review_retention(context: OpExecutionContext, config: RetentionReviewConfig):
    """Apply the retention rules and open an erasure case for each stale person."""
    try:
        rules = review_rules()
        today = date.fromisoformat(config.as_of) if config.as_of.strip() else today_helsinki()
        years = FinancialYears.from_config(config.financial_year_start, config.financial_year_periods)
    except (DescriptionError, ValueError) as exc:
        raise Failure(f"retention review cannot start: {exc}") from None
    warehouse = context.resources.storage.warehouse_file()
    if not warehouse.exists():
        raise Failure(f"no warehouse at {warehouse.name}: run nightly_sync first")
    register = context.resources.register.open()
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        result = run_review(con, register, rules=rules, actor=f"dagster:{context.run.run_id}", today=today,
                            years=years, dry_run=config.dry_run)
    finally:
        con.close()
        register.close()
    metadata = {
        "as_of": today.isoformat(), "dry_run": config.dry_run, "persons_reviewed": result.persons,
        "rules": {rule: f"{months} months" for rule, months in rules.items()},
        "stale_by_rule": dict(result.stale), "skipped_by_reason": dict(result.skipped),
        "cases_opened": len(result.case_ids), "cases": result.case_ids, "would_open": result.would_open,
        "undated_persons": result.undated,
    }
    context.log.info(f"retention review: {sum(result.stale.values())} stale of {result.persons} persons, "
                     f"{len(result.case_ids)} erasure cases opened, skipped {dict(result.skipped)}")
    yield Output({"cases": result.case_ids, "stale": dict(result.stale), "skipped": dict(result.skipped)},
                 metadata=metadata)


@job(
    name="retention_review",
    description="Apply the retention rules of the register description: each stale person becomes an erasure "
                "case awaiting approval.",
    tags={"register/job": "retention_review"},
)
def retention_review():
    review_retention()


retention_review_schedule = ScheduleDefinition(
    name="retention_review_schedule",
    job=retention_review,
    cron_schedule="0 6 1 * *",  # the 1st of each month, after the night's sync
    execution_timezone="Europe/Helsinki",
    default_status=DefaultScheduleStatus.RUNNING,
)
