"""The ``subject_export`` Dagster job: one access case in, one zip out.

Launch it with the id of a case made with ``contact-register request new`` (preferred: the
run config then holds no personal data). It can also create the case from Launchpad config,
but then the identifiers are stored in Dagster's run config and must be cleaned up later.
The run's output metadata shows each system's answer and counts, never personal data.
"""

from pathlib import Path
from typing import List

from dagster import (
    ConfigurableResource,
    Config,
    Failure,
    MetadataValue,
    OpExecutionContext,
    Out,
    Output,
    job,
    op,
)

from pipelines.concurrency import tags_for
from contact_register.requests.export.registry import EXPORTERS
from contact_register.requests.export.exporters import Clients
from contact_register.requests.export.export import ExportError, export_subject
from contact_register.requests.cases import InvalidIdentifier, RegisterError, validate_identifiers
from contact_register.requests.cases.casebook import Register
from contact_register.description import load_description
from assets.system_resources import SYSTEM_RESOURCES, client_factories
from assets.resources import RegisterResource


class SubjectExportConfig(Config):
    case_id: str = ""
    """The access case to answer (contact-register request new --kind access ...)."""
    emails: List[str] = []
    """Only without case_id: identifiers for a new case. They stay in this run's stored config."""
    phones: List[str] = []
    name: str = ""
    organization: str = ""
    received_on: str = ""
    """Only without case_id: the date the request arrived (default today)."""
    verified_method: str = ""
    """Only without case_id: how the requester's identity was verified (required then)."""
    live_reads: bool = True
    """Read from the systems' APIs what the sync does not keep (mail, change history)."""


def remove_export(register: Register, export_dir: Path, case_id: str, file_name: str, *, actor: str,
                  reason: str) -> None:
    """Delete one export package and record it in the case's trail (the checksum stays)."""
    path = export_dir / Path(file_name).name
    existed = path.exists()
    path.unlink(missing_ok=True)
    register.record_export_removed(case_id, file_name=file_name, actor=actor, reason=reason, file_existed=existed)


def purge_expired(register: Register, export_dir: Path, actor: str) -> int:
    """Delete export packages past their expiry date (run by every export and by the daily
    deadline digest); the case keeps the checksum and the trail."""
    removed = 0
    for case_id, file_name in register.expired_exports():
        remove_export(register, export_dir, case_id, file_name, actor=actor, reason="expired")
        removed += 1
    return removed


def _case_from_config(context: OpExecutionContext, register: Register, config: SubjectExportConfig, actor: str):
    if config.case_id:
        if config.emails or config.phones or config.name or config.organization:
            raise Failure("give either case_id or identifiers, not both")
        return register.get(config.case_id.strip())
    if not (config.emails or config.phones or config.name):
        raise Failure("give case_id (preferred) or the requester's identifiers")
    if not config.verified_method.strip():
        raise Failure("a case created from the Launchpad needs verified_method (how the identity was verified)")
    context.log.warning(
        "creating the case from run config: the identifiers now live in this run's stored config too; "
        "prefer `contact-register request new` and launching with case_id"
    )
    try:
        ids = validate_identifiers(config.emails, config.phones, config.name or None, config.organization or None)
    except InvalidIdentifier as exc:
        raise Failure(f"bad identifier: {exc}; no case was created") from None
    systems = [p["system"] for p in load_description()["processors"]]
    case = register.new_case("access", ids, actor=actor, received_on=config.received_on or None, systems=systems,
                             note=f"created by Dagster run {context.run.run_id}")
    return register.verify(case.case_id, method=config.verified_method, actor=actor)


@op(
    required_resource_keys={"register", "storage", *SYSTEM_RESOURCES.values()},
    out=Out(dict, description="Per-system outcome and counts (no personal data)."),
    tags={"register/step": "subject_export"},
)
def export_subject_data(context: OpExecutionContext, config: SubjectExportConfig):
    """Find the case's person in the warehouse, read each system, write the zip, record it."""
    actor = f"dagster:{context.run.run_id}"
    res: RegisterResource = context.resources.register
    register = res.open()
    live = None
    try:
        try:
            case = _case_from_config(context, register, config, actor)
        except RegisterError as exc:
            raise Failure(str(exc)) from None
        if case.kind != "access":
            raise Failure(f"case {case.case_id} is a {case.kind} case; subject_export answers access cases")
        if case.status != "open":
            raise Failure(f"case {case.case_id} is closed")
        if not case.verified:
            raise Failure(f"case {case.case_id}: the requester's identity is not verified yet "
                          "(contact-register request verify)")
        export_dir = res.export_path()
        purged = purge_expired(register, export_dir, actor)
        if config.live_reads:
            # Every system with an exporter and a configured resource is read live.
            live = Clients(client_factories(context.resources, systems=set(EXPORTERS)))
        storage = context.resources.storage
        try:
            result = export_subject(
                case={"case_id": case.case_id, "received_on": case.received_on, "due_on": case.due_on},
                identifiers=case.identifiers_obj(), warehouse_path=storage.warehouse_file(),
                export_dir=export_dir, desc=load_description(), live=live, expire_days=res.expire_days(),
            )
        except ExportError as exc:
            raise Failure(str(exc)) from None
        outcomes = {}
        for system, r in result.results.items():
            detail = "; ".join(r.notes) or None
            outcomes[system] = {"state": r.state, "records": r.count(), "detail": detail, "error": r.error}
        replaced = register.record_export(case.case_id, file_name=result.path.name, sha256=result.sha256,
                                          size=result.size, expires_at=result.expires_at.isoformat(timespec="seconds"),
                                          actor=actor, systems=outcomes)
        if replaced:
            # A re-run's package supersedes the earlier one: only the newest is kept for sending.
            remove_export(register, export_dir, case.case_id, replaced, actor=actor, reason="replaced by a new export")
    finally:
        if live is not None:
            live.close()
        register.close()

    summary = {
        "case_id": case.case_id,
        "file": result.path.name,
        "sha256": result.sha256,
        "persons_found": len(result.subject.person_ids),
        "systems": {s: {"state": o["state"], "records": o["records"], "attachments": len(result.results[s].attachments)}
                    for s, o in outcomes.items()},
    }
    table = ["| system | answer | records | files | by kind |", "|---|---|---|---|---|"]
    metadata = {
        "case_id": case.case_id,
        "file": result.path.name,
        "sha256": result.sha256,
        "bytes": result.size,
        "expires_at": result.expires_at.isoformat(timespec="seconds"),
        "persons_found": len(result.subject.person_ids),
        "ambiguous_identifiers": result.subject.ambiguous_identifiers,
        "expired_exports_removed": purged,
        "replaced_export_removed": replaced or "",
    }
    for system, r in result.results.items():
        kinds = ", ".join(f"{k} {n}" for k, n in r.counts().items())
        table.append(f"| {system} | {r.state} | {r.count()} | {len(r.attachments)} | {kinds} |")
        metadata[f"{system}"] = f"{r.state}: {r.count()} records" + (f" ({kinds})" if kinds else "")
        context.log.info(f"{system}: {r.state}, {r.count()} records" + (f" ({kinds})" if kinds else ""))
    metadata["systems"] = MetadataValue.md("\n".join(table))
    yield Output(summary, metadata=metadata)


@job(
    name="subject_export",
    description="Answer an access request (GDPR art. 15): one zip with everything held about the person.",
    tags={"register/job": "subject_export", **tags_for(SYSTEM_RESOURCES)},
)
def subject_export():
    export_subject_data()
