"""Rectifiers by system: ``load_rectifiers() -> {system: handler}``. A handler either corrects
through an API (``plan``/``apply``, :class:`pipelines.rectification.base.Rectifier`) or answers
without one (``answer``: a manual task or "not applicable", ``without_api.py``). A processor of
register.yaml with neither becomes a manual task in the case."""

from __future__ import annotations

from pipelines.rectification.netvisor import NetvisorRectifier
from pipelines.rectification.pipedrive import PipedriveRectifier
from pipelines.rectification.request_tracker import RequestTrackerRectifier
from pipelines.rectification.without_api import ANSWERS


def load_rectifiers() -> dict:
    handlers = [PipedriveRectifier(), NetvisorRectifier(), RequestTrackerRectifier(), *ANSWERS]
    return {h.system: h for h in handlers}
