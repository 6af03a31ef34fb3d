"""Rectifiers by system: ``load_rectifiers() -> {system: handler}``. A handler either corrects
through an API (``plan``/``apply``, :class:`contact_register.requests.rectification.base.Rectifier`) or answers
without one (``answer``: a manual task or "not applicable", ``without_api.py``). A processor of
register.yaml with neither becomes a manual task in the case."""

from __future__ import annotations

from contact_register.requests.rectification.netvisor import NetvisorRectifier
from contact_register.requests.rectification.pipedrive import PipedriveRectifier
from contact_register.requests.rectification.request_tracker import RequestTrackerRectifier
from contact_register.requests.rectification.without_api import ANSWERS


def load_rectifiers() -> dict:
    handlers = [PipedriveRectifier(), NetvisorRectifier(), RequestTrackerRectifier(), *ANSWERS]
    return {h.system: h for h in handlers}
