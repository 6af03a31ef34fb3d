"""The data-subject requests area of the code location: one job per right, the sensor that
resumes erasures whose legal hold has ended, the retention review and its schedule, and the
connections check the request jobs rely on."""

from dagster import Definitions

from pipelines.jobs.connections_check import connections_check
from pipelines.jobs.erasure import erasure, erasure_hold_sensor
from pipelines.jobs.marketing_ban import marketing_ban
from pipelines.jobs.rectification import rectification
from pipelines.jobs.restriction import restriction
from pipelines.jobs.retention_review import retention_review, retention_review_schedule
from pipelines.jobs.subject_export import subject_export

defs = Definitions(
    jobs=[subject_export, erasure, marketing_ban, rectification, restriction, retention_review, connections_check],
    schedules=[retention_review_schedule],
    sensors=[erasure_hold_sensor],
)
