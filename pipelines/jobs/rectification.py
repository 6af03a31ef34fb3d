"""The ``rectification`` Dagster job: a rectification case's corrected name, email, phone or
title pushed into every system that holds the old value, read back, recorded per system.

Launch it with the case id only: the corrected values are personal data and live in the
register beside the case's identifiers (``contact-register request new --kind rectification
--correct email=... --stdin``), never in the run config. ``dry_run: true`` records the plan
(record ids and field names) and writes nothing. A real run needs the officer's approval that
the corrected values are accurate (``contact-register request approve CASE --action
rectification``). The flow is ``contact_register/requests/rectification/flow.py``.

The warehouse shows the corrected values after the next ``nightly_sync``.
"""

from dagster import Config, Failure, OpExecutionContext, Out, Output, job, op

from connectors.errors import describe
from pipelines.concurrency import tags_for
from contact_register.requests.rectification.flow import RectificationRefused, run_rectification
from contact_register.requests.rectification.registry import RECTIFIERS
from contact_register.requests.cases import RegisterError
from assets.system_resources import SYSTEM_RESOURCES
from pipelines.jobs.writeback_support import systems_table, writeback_session


class RectificationConfig(Config):
    case_id: str
    """The rectification case (its corrected values are in the register, not here)."""
    dry_run: bool = False
    """Plan only: record which records and fields would change, write nothing."""


@op(
    required_resource_keys={"register", "storage", *SYSTEM_RESOURCES.values()},
    out=Out(dict, description="Per-system state, records found and fields changed (no personal data)."),
    tags={"register/step": "rectification"},
)
def rectify_subject(context: OpExecutionContext, config: RectificationConfig):
    """Plan, check the approval, correct in every system, read back, record."""
    with writeback_session(context) as (actor, register, clients):
        try:
            result = run_rectification(register, config.case_id.strip(), clients=clients, handlers=RECTIFIERS,
                                       actor=actor, warehouse_path=context.resources.storage.warehouse_file(),
                                       dry_run=config.dry_run, log=context.log.info)
        except (RectificationRefused, RegisterError) as exc:
            raise Failure(describe(exc)) from None
    rows = []
    metadata = {"case_id": result.case_id, "dry_run": result.dry_run, "persons_found": result.persons_found}
    for system, r in result.systems.items():
        fields = ", ".join(f"{f} {n}" for f, n in sorted(r.fields.items()))
        rows.append((system, r.state, r.found, r.changed, fields, r.error or r.detail))
        metadata[system] = r.state
    metadata["systems"] = systems_table(("system", "state", "records", "changed", "fields", "note"), rows)
    if result.stopped:
        raise Failure(result.stopped, metadata=metadata)
    failed = result.failed()
    if failed:
        raise Failure(f"rectification of case {result.case_id} incomplete in {', '.join(sorted(failed))} "
                      "(recorded in the case); run again once fixed:\n"
                      + "\n".join(f"{s}: {r.error}" for s, r in sorted(failed.items())), metadata=metadata)
    yield Output({"case_id": result.case_id, "dry_run": result.dry_run,
                  "systems": {s: r.state for s, r in result.systems.items()}}, metadata=metadata)


@job(
    name="rectification",
    description="Correct a person's name, email, phone or title (GDPR art. 16) in every system that holds "
                "the old value, verified by reading back.",
    tags={"register/job": "rectification", **tags_for(SYSTEM_RESOURCES)},
)
def rectification():
    rectify_subject()
