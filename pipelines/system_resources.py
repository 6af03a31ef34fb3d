"""Which Dagster resource opens each system's API client (its ``client()`` method).

Jobs that talk to the systems (subject export live reads, erasure, marketing ban) build their
``required_resource_keys`` and their client factories from this one table; a new system adds a
line here and its resource in ``definitions.py``.
"""

SYSTEM_RESOURCES: dict[str, str] = {
    "pipedrive": "pipedrive",
    "google": "google",
    "netvisor": "netvisor",
    "request_tracker": "request_tracker",
    "trustmary": "trustmary",
    "matomo": "matomo",
    "docue": "docue",
}


def client_factories(resources, systems=None) -> dict:
    """system -> factory, for the systems given (default all) whose resource is present."""
    out = {}
    for system, key in SYSTEM_RESOURCES.items():
        if systems is not None and system not in systems:
            continue
        res = getattr(resources, key, None)
        if res is not None:
            out[system] = res.client
    return out
