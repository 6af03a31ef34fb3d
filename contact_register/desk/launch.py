"""Starting the request jobs from the desk through Dagster's GraphQL API, with Dagster's own
client (``dagster_graphql.DagsterGraphQLClient``). Only the case id (and the dry-run / lift
switches) goes into the run config: the identifiers stay in the register."""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError

DEFAULT_UI_URL = "http://127.0.0.1:3000"


@dataclass(frozen=True)
class Launch:
    key: str  # the form's value
    job: str
    op: str
    extra: tuple[tuple[str, bool], ...] = ()
    needs_approval: str | None = None  # the approval the run needs before it changes anything


# Which launches a case of each kind offers (op names: pipelines/jobs/*.py).
LAUNCHES = {
    "subject_export": Launch("subject_export", "subject_export", "export_subject_data"),
    "erasure_dry_run": Launch("erasure_dry_run", "erasure", "erase_subject", (("dry_run", True),)),
    "erasure": Launch("erasure", "erasure", "erase_subject", (("dry_run", False),), needs_approval="erasure"),
    "marketing_ban": Launch("marketing_ban", "marketing_ban", "ban_marketing"),
    "rectification": Launch("rectification", "rectification", "rectify_subject"),
    "restriction": Launch("restriction", "restriction", "restrict_subject"),
    "restriction_lift": Launch("restriction_lift", "restriction", "restrict_subject", (("lift", True),)),
}
BY_KIND = {
    "access": ("subject_export",),
    "erasure": ("erasure_dry_run", "erasure"),
    "objection": ("marketing_ban",),
    "rectification": ("rectification",),
    "restriction": ("restriction", "restriction_lift"),
}


class LaunchError(Exception):
    """Dagster could not be reached or refused the run (the message has no personal data)."""


def ui_url() -> str:
    return (os.environ.get("DAGSTER_UI_URL") or DEFAULT_UI_URL).rstrip("/")


def _client(base: str) -> DagsterGraphQLClient:
    parts = urlsplit(base)
    return DagsterGraphQLClient(parts.hostname or "127.0.0.1", port_number=parts.port, use_https=parts.scheme == "https",
                                path_prefix=parts.path.rstrip("/"), timeout=30)


def launch(key: str, case_id: str, *, base: str | None = None) -> str:
    """Submit the run; returns its run id."""
    spec = LAUNCHES[key]
    config = {"case_id": case_id, **dict(spec.extra)}
    try:
        return _client(base or ui_url()).submit_job_execution(
            spec.job, run_config={"ops": {spec.op: {"config": config}}}, tags={"register/launched-by": "desk"})
    except DagsterGraphQLClientError as exc:
        # The client's message repeats the query and its variables: the case id only, but long.
        raise LaunchError(f"Dagster refused or could not be reached ({str(exc).splitlines()[0][:200]})") from None


def run_status(run_id: str, *, base: str | None = None) -> str:
    """The run's status (QUEUED, STARTED, SUCCESS, FAILURE ...), or ``unknown`` if Dagster is away."""
    try:
        return _client(base or ui_url()).get_run_status(run_id).value
    except Exception:  # noqa: BLE001 - a status is a courtesy; the page must render without Dagster
        return "unknown"
