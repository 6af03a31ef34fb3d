"""The request register: data-subject cases, their deadlines, per-system states and the
append-only audit trail. SQLite (WAL) embedded by default, PostgreSQL when ``REGISTER_URL``
is a ``postgresql://`` URL. It lives outside the warehouse so it survives rebuilds.

Public API: :func:`open_register` -> :class:`Register`; :mod:`.identifiers` validates what a
requester gives; :mod:`.description` loads ``contact_register/register.yaml``.
"""

from contact_register.requests.cases.casebook import (
    CASE_KINDS,
    SYSTEM_STATES,
    Case,
    CaseNotFound,
    Register,
    RegisterError,
    open_register,
)
from contact_register.requests.cases.identifiers import Identifiers, InvalidIdentifier, validate_identifiers

__all__ = [
    "CASE_KINDS", "SYSTEM_STATES", "Case", "CaseNotFound", "Register", "RegisterError", "open_register",
    "Identifiers", "InvalidIdentifier", "validate_identifiers",
]
