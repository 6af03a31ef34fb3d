"""Rectifiers by system: ``RECTIFIERS[system] -> handler``, the one explicit table of them. A
handler either corrects through an API (``plan``/``apply``,
:class:`contact_register.requests.rectification.base.Rectifier`) or answers without one (``answer``:
a manual task or "not applicable", :class:`~contact_register.requests.rectification.base.Answerer`,
``without_api.py``). A processor of register.yaml with neither becomes a manual task in the case.
The flow asks them in this order."""

from __future__ import annotations

from contact_register.requests.rectification.base import Answerer, Rectifier
from contact_register.requests.rectification.netvisor import NetvisorRectifier
from contact_register.requests.rectification.pipedrive import PipedriveRectifier
from contact_register.requests.rectification.request_tracker import RequestTrackerRectifier
from contact_register.requests.rectification.without_api import ANSWERS

RECTIFIERS: dict[str, Rectifier | Answerer] = {handler.system: handler for handler in (
    PipedriveRectifier(),
    NetvisorRectifier(),
    RequestTrackerRectifier(),
    *ANSWERS,  # Google (contacts by hand), Trustmary, Docue, Dealfront, Secapp: manual; Matomo: not applicable
)}
