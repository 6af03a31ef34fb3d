"""Erasers by system: ``ERASERS[system] -> eraser class`` (``contact_register.requests.writeback.base.Eraser``),
the one explicit table of them. A system joins with one line here. A processor of register.yaml
with no eraser becomes a manual task in the case.

The table holds classes, not instances: making an eraser reads the erasure policy
(``ERASURE_POLICY_PATH``), which belongs to the run, so the job makes them when it starts
(``make_erasers()``). The big systems come first, in a fixed
order (the run page lists them so), then the others by name.
"""

from __future__ import annotations

from contact_register.requests.erasure.docue import DocueEraser
from contact_register.requests.erasure.google import GoogleEraser
from contact_register.requests.erasure.matomo import MatomoEraser
from contact_register.requests.erasure.netvisor import NetvisorEraser
from contact_register.requests.erasure.pipedrive import PipedriveEraser
from contact_register.requests.erasure.request_tracker import RequestTrackerEraser
from contact_register.requests.erasure.trustmary import TrustmaryEraser
from contact_register.requests.writeback.base import Eraser

ERASERS: dict[str, type[Eraser]] = {eraser.system: eraser for eraser in (
    PipedriveEraser,
    GoogleEraser,
    NetvisorEraser,
    RequestTrackerEraser,
    DocueEraser,
    MatomoEraser,
    TrustmaryEraser,
)}


def make_erasers() -> dict[str, Eraser]:
    """One eraser per system for this run, in the table's order (each reads the policy now)."""
    return {system: eraser() for system, eraser in ERASERS.items()}
