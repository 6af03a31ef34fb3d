"""The ``restriction`` Dagster job: restrict processing of a person (GDPR art. 18), or lift it.

Launch it with the id of a verified ``restriction`` case. The person is marked restricted in
Pipedrive (a configurable label or field, ``contact_register/requests/restriction/pipedrive.py``); the other
systems answer "not applicable" or a manual task with the reason; the register keeps keyed
hashes of the person's emails and phones, so from the next ``nightly_sync`` on the warehouse
flags them ``restricted`` (``persons.restricted``, ``marketing_ban`` set, a ``restriction`` row in
``marketing_bans``) and ``analyst_persons`` leaves them out. ``dry_run`` reads and records nothing.

``lift: true`` lifts it, once the operator has recorded the decision (``contact-register request
lift-restriction CASE --reason ...``; the person is told before, art. 18(3)); it works after the
case closed too. The flow is ``contact_register/requests/restriction/flow.py``.
"""

from dagster import Config, Failure, OpExecutionContext, Out, Output, job, op

from connectors.errors import describe
from pipelines.concurrency import tags_for
from contact_register.requests.cases import RegisterError
from contact_register.requests.restriction.flow import RestrictionRefused, lift_restriction, run_restriction
from pipelines.jobs.writeback_support import systems_table, writeback_session


class RestrictionConfig(Config):
    case_id: str
    """The restriction case (contact-register request new --kind restriction ...)."""
    lift: bool = False
    """Lift the restriction (needs the operator's recorded decision) instead of applying it."""
    dry_run: bool = False
    """Only read and report; nothing is written or recorded."""


@op(
    required_resource_keys={"register", "storage", "pipedrive"},
    out=Out(dict, description="Per-system state (no personal data)."),
    tags={"register/step": "restriction"},
)
def restrict_subject(context: OpExecutionContext, config: RestrictionConfig):
    """Mark (or unmark) the person restricted, verify by reading back, record it in the case."""
    case_id = config.case_id.strip()
    with writeback_session(context, systems=("pipedrive",)) as (actor, register, clients):
        try:
            if config.lift:
                result = lift_restriction(register, case_id, clients=clients, actor=actor, dry_run=config.dry_run)
            else:
                result = run_restriction(register, case_id, clients=clients, actor=actor, dry_run=config.dry_run,
                                         warehouse_path=context.resources.storage.warehouse_file())
        except (RestrictionRefused, RegisterError) as exc:
            raise Failure(describe(exc)) from None
    metadata = {"case_id": case_id, "lift": config.lift, "dry_run": config.dry_run,
                "persons_found": result.persons_found}
    for system, o in result.outcomes.items():
        metadata[system] = o.state
    metadata["systems"] = systems_table(("system", "state", "records", "detail"),
                                        [(s, o.state, o.records, o.error or o.detail) for s, o in result.outcomes.items()])
    if result.failed():
        raise Failure(f"restriction{' lift' if config.lift else ''} of case {case_id} failed in "
                      f"{', '.join(result.failed())} (recorded in the case); run again once fixed", metadata=metadata)
    yield Output({"case_id": case_id, "lift": config.lift, "systems": {s: o.state for s, o in result.outcomes.items()}},
                 metadata=metadata)


@job(
    name="restriction",
    description="Restrict processing of a person (GDPR art. 18) in every system and the warehouse, or lift it.",
    tags={"register/job": "restriction", **tags_for(("pipedrive",))},
)
def restriction():
    restrict_subject()
