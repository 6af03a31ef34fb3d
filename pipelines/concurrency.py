"""Run-level concurrency: which systems a run touches and how many runs each system's API
tolerates at once.

A job that touches a system carries the run tag ``register/system-<name>: "true"``; the
instance's run queue (``tag_concurrency_limits`` in dagster.yaml) admits at most
``SYSTEM_RUN_LIMITS[name]`` such runs at a time. Netvisor allows one request in flight per
customer, so one run; the others have burst limits that two runs share comfortably. The limits
themselves live in the core (``contact_register/sync/limits.py``), which the sync follows too.
"""

from contact_register.sync.limits import SYSTEM_RUN_LIMITS

__all__ = ["SYSTEM_RUN_LIMITS", "system_tag", "tags_for", "tag_concurrency_limits"]


def system_tag(system: str) -> str:
    return f"register/system-{system}"


def tags_for(systems) -> dict[str, str]:
    """Run tags for a job touching ``systems``."""
    return {system_tag(s): "true" for s in systems}


def tag_concurrency_limits() -> list[dict]:
    """The run queue limits that belong in dagster.yaml (tests compare the two)."""
    return [{"key": system_tag(s), "value": "true", "limit": n} for s, n in SYSTEM_RUN_LIMITS.items()]
