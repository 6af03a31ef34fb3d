"""Erasers by system: ``ERASERS[system] -> Eraser`` (``contact_register.requests.writeback.base.Eraser``).

A system joins with one line in its own module (``register_eraser(TrustmaryEraser())``); the
erasure job imports the modules named in ``ERASER_MODULES`` so their registrations run. A
processor of register.yaml with no eraser becomes a manual task in the case.
"""

from __future__ import annotations

import importlib

from contact_register.requests.writeback.base import Eraser

ERASERS: dict[str, Eraser] = {}
# Modules that register erasers for the smaller processors when they exist.
ERASER_MODULES = ("contact_register.requests.erasure.trustmary", "contact_register.requests.erasure.matomo", "contact_register.requests.erasure.docue")


def register_eraser(eraser: Eraser) -> Eraser:
    ERASERS[eraser.system] = eraser
    return eraser


def load_erasers() -> dict[str, Eraser]:
    """Every eraser: the four built in, plus those of the optional modules that are present."""
    from contact_register.requests.erasure.google import GoogleEraser
    from contact_register.requests.erasure.netvisor import NetvisorEraser
    from contact_register.requests.erasure.pipedrive import PipedriveEraser
    from contact_register.requests.erasure.request_tracker import RequestTrackerEraser

    built_in = (PipedriveEraser, GoogleEraser, NetvisorEraser, RequestTrackerEraser)
    for cls in built_in:
        if cls.system not in ERASERS:
            register_eraser(cls())
    for module in ERASER_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise  # the module exists but is broken: say so
    # The big systems first, in a fixed order (the run page lists them so), then the others.
    order = [cls.system for cls in built_in] + sorted(set(ERASERS) - {cls.system for cls in built_in})
    return {system: ERASERS[system] for system in order}
