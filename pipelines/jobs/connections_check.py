"""The ``connections_check`` job: ``contact-register doctor`` launchable from the Dagster UI.

The same read-only checks (``contact_register/doctor.py``) over the settings of the code location's
environment. The step's metadata is the doctor's table (statuses, counts, setting and scope
names: no personal data); the run fails when a configured system fails a check, naming it.
"""

from dagster import Failure, MetadataValue, OpExecutionContext, Output, job, op

from contact_register.doctor import FAIL, run_checks


@op(tags={"register/step": "connections_check"})
def check_connections(context: OpExecutionContext):
    """Check every configured system: URL, credentials, rights and scopes, one page, clock."""
    report = run_checks()
    failures = [f for f in report.findings if f.status == FAIL]
    table = "\n".join(["| system | check | status | detail / remedy |", "|---|---|---|---|"] + [
        f"| {f.system} | {f.check} | {f.status} | {(f.detail + (' -> ' + f.remedy if f.remedy and f.status != 'OK' else '')).strip(' ->')} |"
        for f in report.findings])
    metadata = {"checks": MetadataValue.md(table), "failed": len(failures),
                "systems_checked": len({f.system for f in report.findings if f.status != "not configured"})}
    if failures:
        raise Failure(
            description="; ".join(f"{f.system} {f.check}: {f.remedy or f.detail}" for f in failures)[:2000],
            metadata=metadata)
    yield Output(len(report.findings), metadata=metadata)


@job(description="Read-only checks of every configured system (contact-register doctor).",
     tags={"register/job": "connections_check"})
def connections_check():
    check_connections()
