"""The officer's actions that take more than one register call, shared by the command line
(``contact-register request``) and the desk (``contact_register.desk``), so both apply the
same rules: opening a case (identifiers validated, every processor pending, a rectification's
corrected values) and answering a system's manual task."""

from __future__ import annotations

from typing import Any

from contact_register.description import load_description
from contact_register.requests.cases import InvalidIdentifier, Register, RegisterError, validate_identifiers
from contact_register.requests.cases.casebook import Case
from contact_register.requests.rectification.corrections import save_corrections, validate_corrections

ANSWERABLE_STATES = ("manual_open", "pending")


def open_case(register: Register, kind: str, given: dict[str, Any], *, actor: str, received_on: str | None = None,
              note: str | None = None, corrections: dict[str, Any] | None = None) -> Case:
    """Open a case for the identifiers ``given`` (``emails``, ``phones``, ``name``,
    ``organization``) with a pending state for every processor of ``register.yaml``.
    Raises :class:`InvalidIdentifier` (nothing created) or :class:`RegisterError`."""
    corrections = validate_corrections(corrections) if corrections else {}
    if corrections and kind != "rectification":
        raise InvalidIdentifier("corrections belong to a rectification case (--kind rectification)")
    identifiers = validate_identifiers(**{k: given.get(k) for k in ("emails", "phones", "name", "organization")})
    systems = [p["system"] for p in load_description()["processors"]]
    case = register.new_case(kind, identifiers, actor=actor, received_on=received_on or None, note=note,
                             systems=systems)
    if corrections:
        save_corrections(register, case.case_id, corrections, actor=actor)
    return case


def answer_task(register: Register, case_id: str, system: str, *, note: str, actor: str) -> Case:
    """Record the answer to ``system``'s manual task (state ``manual_answered`` with ``note``)."""
    state = register.get(case_id).systems.get(system)
    if state is None or state.state not in ANSWERABLE_STATES:
        raise RegisterError(f"{system} has no open task in case {case_id}" + (f" (it is {state.state})" if state else ""))
    register.set_system_state(case_id, system, "manual_answered", actor=actor, detail=note)
    return register.get(case_id)
