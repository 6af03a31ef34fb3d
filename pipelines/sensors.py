"""Sensors and the daily digest that tell operators what needs them (delivery: contact_register/notify).

- ``run_failure_alert``: one notice per failed run of any job of this code location
  (``nightly_sync`` and every request job); a run the instance will retry is reported only when
  its last attempt fails.
- ``raw_freshness_alert`` (hourly): systems whose raw tables have not been refreshed for
  ``FRESHNESS_MAX_AGE_HOURS`` (default 36); once per stale spell, not every hour.
- ``deadline_digest`` job, 08:00 Europe/Helsinki: overdue cases, cases due within 7 days, open
  manual tasks, stale systems; it also deletes export packages past their expiry date.
"""

import json
from datetime import date

from dagster import (
    Config,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    Definitions,
    OpExecutionContext,
    Output,
    RunFailureSensorContext,
    ScheduleDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    job,
    op,
    run_failure_sensor,
    sensor,
)

from contact_register.warehouse.checks.freshness import raw_store_syncs, utcnow
from assets.resources import StorageResource, RegisterResource, NotifierResource
from connectors.clock import today_helsinki
from connectors.errors import VENDOR_TEXT_MARK, ConnectorError, SafeMessage
from pipelines.jobs.subject_export import purge_expired
from contact_register.notify.notices import StepFailure, deadline_notice, freshness_notice, run_failure_notice

# Set by Dagster on a failed run when its run-retry policy will launch another attempt.
WILL_RETRY_TAG = "dagster/will_retry"
NOT_CONFIGURED = "no mail server (NOTIFY_SMTP_HOST) or webhook (NOTIFY_WEBHOOK_URL) configured"


def _safe_class_names() -> set[str]:
    """Exceptions whose messages are written to carry no personal data: Dagster's ``Failure``
    (our ops' descriptions), Dagster's own errors, connector errors and SafeMessage classes."""
    names, todo = {"Failure"}, [ConnectorError, SafeMessage]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo += cls.__subclasses__()
    return names


def _error_text(event) -> str:
    error = getattr(event.event_specific_data, "error", None)
    if error is None:
        return event.message or "failed"
    # Dagster wraps the step's own exception ("Error occurred while executing op ..."): show that one.
    while error.cls_name.startswith("Dagster") and error.cause is not None:
        error = error.cause
    if not (error.cls_name.startswith("Dagster") or error.cls_name in _safe_class_names()):
        # A library's message may quote a value it choked on (a name, an address), and the notice
        # may go to a chat webhook: as describe() does for cases, the class name only.
        return f"{error.cls_name} (message left out, it may quote personal data: see the run's log)"
    # The message starts with the exception's dotted class path; the class name is enough. A
    # connector error's message ends with the vendor's own text, which may quote personal data.
    message = error.message.strip().split(VENDOR_TEXT_MARK, 1)[0]
    prefix = message.split(": ", 1)
    return f"{error.cls_name}: {prefix[1] if len(prefix) == 2 and '.' in prefix[0] else message}"


@run_failure_sensor(
    name="run_failure_alert",
    description="Mails the operators when a run of any job fails (after its last retry).",
    default_status=DefaultSensorStatus.RUNNING,
)
def run_failure_alert(context: RunFailureSensorContext, notifier: NotifierResource):
    run = context.dagster_run
    if run.tags.get(WILL_RETRY_TAG) == "true":
        return SkipReason(f"run {run.run_id} will be retried; the last attempt reports")
    failures = [StepFailure(e.step_key or "run", _error_text(e)) for e in context.get_step_failure_events()]
    notice = run_failure_notice(run.job_name, run.run_id, failures, run_message=context.failure_event.message or "",
                                ui_url=notifier.setting("dagster_url"))
    used = notifier.send(notice)
    if not used:
        return SkipReason(f"{run.job_name} failed but {NOT_CONFIGURED}")
    context.log.info(f"reported the failure of {run.job_name} run {run.run_id} by {', '.join(used)}")


@sensor(
    name="raw_freshness_alert",
    description="Warns when a system's raw tables have not been refreshed for FRESHNESS_MAX_AGE_HOURS (default 36).",
    minimum_interval_seconds=3600,
    default_status=DefaultSensorStatus.RUNNING,
)
def raw_freshness_alert(context: SensorEvaluationContext, storage: StorageResource, notifier: NotifierResource):
    # The cursor remembers which stale systems were reported, with the sync time they were
    # reported at: a system is reported again only after it was refreshed and went stale again.
    reported: dict = json.loads(context.cursor) if context.cursor else {}
    now, max_age = utcnow(), storage.max_age()
    stale = [s for s in raw_store_syncs(storage.raw_dir_path()) if s.is_stale(now, max_age)]
    current = {s.system: s.last_success.isoformat() if s.last_success else None for s in stale}
    new = [s for s in stale if s.system not in reported or reported[s.system] != current[s.system]]
    if not new:
        return SensorResult(skip_reason=SkipReason(f"{len(stale)} stale systems, none newly"),
                            cursor=json.dumps(current, sort_keys=True))
    used = notifier.send(freshness_notice(new, max_age=max_age, now=now))
    if not used:
        return SkipReason(f"{len(new)} stale systems but {NOT_CONFIGURED}")  # cursor kept: report once configured
    return SensorResult(skip_reason=SkipReason(f"reported {len(new)} stale systems by {', '.join(used)}"),
                        cursor=json.dumps(current, sort_keys=True))


class DeadlineDigestConfig(Config):
    soon_days: int = 7
    """Cases due within this many days are listed."""
    today: str = ""
    """The day to report for (YYYY-MM-DD); empty means today."""


@op(tags={"register/step": "deadline_digest"})
def send_deadline_digest(context: OpExecutionContext, config: DeadlineDigestConfig, register: RegisterResource,
                         storage: StorageResource, notifier: NotifierResource):
    """Delete expired export packages, then mail the overdue cases, the cases due soon, the open
    manual tasks and the stale systems."""
    today = date.fromisoformat(config.today) if config.today else today_helsinki()
    now, max_age = utcnow(), storage.max_age()
    stale = [s for s in raw_store_syncs(storage.raw_dir_path()) if s.is_stale(now, max_age)]
    reg = register.open()
    try:
        # Daily, so a package leaves the export folder on time even when no other export runs.
        purged = purge_expired(reg, register.export_path(), actor=f"dagster:{context.run.run_id}")
        notice = deadline_notice(reg, today=today, soon_days=config.soon_days, stale=stale, now=now)
    finally:
        reg.close()
    context.log.info(f"{purged} expired export packages deleted")
    if notice is None:
        context.log.info("nothing due, overdue or open: no mail")
        return Output({}, metadata={"sent_by": "nobody (nothing to report)", "expired_exports_removed": purged})
    used = notifier.send(notice)
    counts = {k: len(v) for k, v in notice.facts.items()}
    context.log.info(f"digest {counts} " + (f"sent by {', '.join(used)}" if used else f"not sent: {NOT_CONFIGURED}"))
    return Output(counts, metadata={**counts, "sent_by": ", ".join(used) or f"nobody: {NOT_CONFIGURED}",
                                    "expired_exports_removed": purged})


@job(name="deadline_digest", description="The daily mail: overdue cases, cases due within 7 days, open manual "
     "tasks and stale systems.", tags={"register/job": "deadline_digest"})
def deadline_digest():
    send_deadline_digest()


deadline_digest_schedule = ScheduleDefinition(
    name="deadline_digest_schedule",
    job=deadline_digest,
    cron_schedule="0 8 * * *",
    execution_timezone="Europe/Helsinki",
    default_status=DefaultScheduleStatus.RUNNING,
)

# The notifications area of the code location, merged in pipelines/definitions.py.
defs = Definitions(
    jobs=[deadline_digest],
    schedules=[deadline_digest_schedule],
    sensors=[run_failure_alert, raw_freshness_alert],
)
