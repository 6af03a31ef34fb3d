"""The Dagster code location: the per-area definitions (sync, warehouse, data-subject requests,
notifications) merged, with every resource from ``pipelines/resources.py``."""

from dagster import Definitions

from pipelines import requests, sensors, sync, warehouse
from pipelines.resources import RESOURCES

defs = Definitions.merge(sync.defs, warehouse.defs, requests.defs, sensors.defs, Definitions(resources=RESOURCES))


def resolved_subject_export():
    """The job with the code location's resources, for launching from Python with
    ``dagster.execute_job(reconstructable(resolved_subject_export), instance, run_config)``:
    each step then runs in its own process, as a run launched from the UI does."""
    return defs.resolve_job_def("subject_export")
