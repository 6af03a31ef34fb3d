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


def client_factories(resources, systems=None, *, write: bool = False) -> dict:
    """system -> factory, for the systems given (default all) whose resource is present.
    ``write=True`` (the write-back jobs) uses a resource's ``write_client`` where it has one:
    Google grants the sync read-only scopes and the write-back jobs the write ones."""
    out = {}
    for system, key in SYSTEM_RESOURCES.items():
        if systems is not None and system not in systems:
            continue
        res = getattr(resources, key, None)
        if res is not None:
            out[system] = getattr(res, "write_client", res.client) if write else res.client
    return out
