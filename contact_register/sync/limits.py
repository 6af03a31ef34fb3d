"""How much concurrency each system's API tolerates: the one table the sync (requests in flight)
and the Dagster run queue (runs at once, ``pipelines/concurrency.py``) both follow.

Netvisor allows one request in flight per customer, so one; the others have burst limits that
two share comfortably.
"""

SYSTEM_RUN_LIMITS: dict[str, int] = {
    "pipedrive": 2,
    "google": 2,
    "netvisor": 1,
    "request_tracker": 2,
}
