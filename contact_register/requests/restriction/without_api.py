"""How the systems without a restriction mark answer a restriction (state, reason).

Restriction (art. 18) limits processing to storage, legal claims and what the person consents
to. Where a system has no per-person mark, the warehouse's ``restricted`` flag keeps the person
out of marketing and of the analysts' view, and these answers say what else applies.
"""

from __future__ import annotations

ANSWERS: dict[str, tuple[str, str]] = {
    "google": ("manual_open", "Google Workspace has no per-person restriction mark: take the person off any "
                              "mailing-list group by hand while restricted; mail and calendar stay stored only"),
    "netvisor": ("not_applicable", "Netvisor holds billing records kept under Kirjanpitolaki 2:10 §; art. 18(2) "
                                   "allows that storage and legal use, and Netvisor has no restriction mark"),
    "request_tracker": ("not_applicable", "Request Tracker holds support requests the person sent; they are only "
                                          "stored, and RT has no restriction mark"),
    "trustmary": ("manual_open", "Trustmary has no restriction mark: take the person off its lists and do not "
                                 "publish their reviews while restricted"),
    "matomo": ("not_applicable", "Matomo analyses visits, not persons; tracking consent is the visitor's own setting"),
    "docue": ("not_applicable", "Docue holds signed contracts, kept for legal claims (art. 18(2))"),
    "dealfront": ("manual_open", "Dealfront: exclude the person from its lists and exports by hand"),
    "secapp": ("manual_open", "Secapp service: check the person's user account and chats by hand"),
}
