"""The ``erasure`` Dagster job: one erasure case, every system, verified (GDPR art. 17).

Launch it with the id of a verified erasure case (``contact-register request new --kind
erasure``, ``verify``). ``dry_run: true`` records the plan in the case and touches nothing.
A real run needs an approval (``contact-register request approve CASE --action erasure``);
without one it records the plan and stops with a message saying so. The flow itself is in
``contact_register/requests/erasure/flow.py``; this module gives it clients, stores and the run page.

Held records (a Netvisor contact on invoices) are followed up by ``erasure_hold_sensor``: once
a day it launches the erasure again for every open case whose hold has ended. The run key
(case id + hold end) makes that one run per hold, and a missed day is caught up on the next
tick, since the sensor looks for every hold that has ended, not for today's.
"""


import functools
from pathlib import Path

from dagster import (
    Config,
    DefaultSensorStatus,
    Failure,
    OpExecutionContext,
    Out,
    Output,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    job,
    op,
    sensor,
)

from connectors.errors import describe
from pipelines.concurrency import tags_for
from pipelines.jobs.erasure_dagster_storage import scrub_dagster
from contact_register.requests.erasure.flow import ErasureRefused, due_followups, run_erasure
from contact_register.requests.erasure.own_stores import erase_own_stores
from contact_register.requests.erasure.registry import make_erasers
from assets.resources import RegisterResource
from contact_register.requests.cases import RegisterError
from contact_register.requests.suppression.store import SuppressionKeyError
from assets.system_resources import SYSTEM_RESOURCES
from pipelines.jobs.writeback_support import systems_table, writeback_session

OP_NAME = "erase_subject"


class ErasureConfig(Config):
    case_id: str
    """The erasure case (contact-register request new --kind erasure ...)."""
    dry_run: bool = False
    """Plan only: record what would be deleted, masked or held, and touch nothing."""


def _report(result) -> tuple[dict, dict]:
    rows = []
    summary = {}
    for system, r in result.systems.items():
        c = r.counts()
        note = "re-verified, untouched" if r.reverified else (r.error or r.detail or "")
        if r.held_until:
            note = f"held until {r.held_until.isoformat()}; {note}"
        rows.append((system, r.state, c.get("delete", 0), c.get("mask", 0), c.get("hold", 0), c.get("manual", 0),
                     r.records, len(r.remaining), note))
        summary[system] = {"state": r.state, "steps": c, "remaining": r.remaining,
                           "held_until": r.held_until.isoformat() if r.held_until else None}
    metadata = {"case_id": result.case_id, "dry_run": result.dry_run, "persons_found": result.persons_found,
                "identifiers_dropped_as_shared": sum(result.identifiers_dropped.values()),
                "systems": systems_table(("system", "state", "delete", "mask", "hold", "manual", "records",
                                          "remaining", "note"), rows)}
    for system, s in summary.items():
        metadata[system] = s["state"]
    return summary, metadata


@op(
    required_resource_keys={"register", "storage", *SYSTEM_RESOURCES.values()},
    out=Out(dict, description="Per-system state, planned step counts and what remains (record ids only)."),
    tags={"register/step": "erasure"},
)
def erase_subject(context: OpExecutionContext, config: ErasureConfig):
    """Plan, check the approval, erase in every system, verify by re-reading, report."""
    res: RegisterResource = context.resources.register
    storage = context.resources.storage
    with writeback_session(context) as (actor, register, clients):

        def own(subject):
            return erase_own_stores(subject, raw_dir=storage.raw_dir_path(), warehouse_path=storage.warehouse_file(),
                                    export_dir=res.export_path(), register=register, case_id=subject.case_id,
                                    actor=actor, identity_state_path=storage.identity_state_file(),
                                    scrub_runs=functools.partial(scrub_dagster, Path(context.instance.root_directory)))

        try:
            result = run_erasure(register, config.case_id.strip(), clients=clients, erasers=make_erasers(),
                                 actor=actor, warehouse_path=storage.warehouse_file(), dry_run=config.dry_run,
                                 own_stores=own, log=context.log.info)
        except (ErasureRefused, RegisterError, SuppressionKeyError) as exc:
            raise Failure(describe(exc)) from None
    summary, metadata = _report(result)
    if result.stopped:
        raise Failure(result.stopped, metadata=metadata)
    failed = result.failed()
    if failed:
        lines = [f"{s}: {r.error}" for s, r in sorted(failed.items())]
        raise Failure(f"erasure of case {result.case_id} incomplete in {len(failed)} systems; run again once "
                      "fixed:\n" + "\n".join(lines), metadata=metadata)
    yield Output({"case_id": result.case_id, "dry_run": result.dry_run, "systems": summary}, metadata=metadata)


@job(
    name="erasure",
    description="Erase a person (GDPR art. 17) in every system: plan, approval, execution, verification.",
    tags={"register/job": "erasure", **tags_for(SYSTEM_RESOURCES)},
)
def erasure():
    erase_subject()


@sensor(job=erasure, minimum_interval_seconds=24 * 3600, default_status=DefaultSensorStatus.RUNNING)
def erasure_hold_sensor(context: SensorEvaluationContext, register: RegisterResource):
    """Once a day: launch the erasure again for every case whose legal hold has ended."""
    with register.open() as reg:
        due = due_followups(reg)
    if not due:
        yield SkipReason("no legal hold has ended")
        return
    for case_id, held_until in due:
        yield RunRequest(run_key=f"{case_id}:{held_until}",
                         run_config={"ops": {OP_NAME: {"config": {"case_id": case_id}}}},
                         tags={"register/case": case_id, "register/followup": "legal_hold_ended"})
