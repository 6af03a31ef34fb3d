"""Pipedrive restriction: a label or custom field that means "processing restricted" is set on
the person's records, verified by reading back, and removed again when the restriction is lifted.

Settings (read when the job runs):

- ``PIPEDRIVE_RESTRICTION_LABEL_ID``: id of a person label (e.g. "Käsittely rajoitettu");
- ``PIPEDRIVE_RESTRICTION_FIELD`` / ``PIPEDRIVE_RESTRICTION_FIELD_VALUE``: a custom field key and
  its value (digits are sent as a number, i.e. an enum option id); lifting clears the field.

With neither, the restriction is a manual task saying so. The marketing status is left alone
on purpose: Pipedrive allows one change of it per person, so it could not be restored on lift;
a restricted person is kept out of marketing by the warehouse's ``restricted`` flag.
"""

from __future__ import annotations

import os

from connectors.errors import NotFoundError
from contact_register.requests.marketing_ban.pipedrive import BanSettings, PipedriveBanner
from contact_register.requests.writeback.base import Clients, Outcome, WritebackSubject

SYSTEM = "pipedrive"
NOT_CONFIGURED = ("no restriction label or field configured (PIPEDRIVE_RESTRICTION_LABEL_ID or "
                  "PIPEDRIVE_RESTRICTION_FIELD/_VALUE): mark the person restricted in Pipedrive by hand")


def restriction_settings() -> BanSettings | None:
    """The restriction mark, in the ban's shape (a label and/or a field); None when unset."""
    label = os.environ.get("PIPEDRIVE_RESTRICTION_LABEL_ID", "").strip()
    if label and not label.isdigit():
        raise ValueError("PIPEDRIVE_RESTRICTION_LABEL_ID must be a label id (a whole number)")
    key = os.environ.get("PIPEDRIVE_RESTRICTION_FIELD", "").strip() or None
    value: str | int | None = os.environ.get("PIPEDRIVE_RESTRICTION_FIELD_VALUE", "").strip() or None
    if key and value is None:
        raise ValueError("PIPEDRIVE_RESTRICTION_FIELD needs PIPEDRIVE_RESTRICTION_FIELD_VALUE")
    if not label and not key:
        return None
    return BanSettings(int(label) if label else None, key, int(value) if isinstance(value, str) and value.isdigit()
                       else value)


def _marked(settings: BanSettings, person: dict) -> bool:
    return bool(set(settings.marks(person)) - {"status"})  # the marketing status is not this mark


def _unmark_changes(settings: BanSettings, person: dict) -> dict:
    changes: dict = {}
    labels = list(person.get("label_ids") or [])
    if settings.label_id is not None and settings.label_id in labels:
        changes["label_ids"] = [label for label in labels if label != settings.label_id]
    custom = person.get("custom_fields") if isinstance(person.get("custom_fields"), dict) else {}
    if settings.field_key and custom.get(settings.field_key) == settings.field_value:
        changes["custom_fields"] = {settings.field_key: None}
    return changes


class PipedriveRestrictor:
    system = SYSTEM

    def restrict(self, clients: Clients, subject: WritebackSubject, *, dry_run: bool = False
                 ) -> tuple[Outcome, list[str]]:
        """(outcome, ids of the person records that carry the mark)."""
        settings = restriction_settings()
        if settings is None:
            return Outcome(SYSTEM, "manual_open", detail=NOT_CONFIGURED), []
        client = clients.client(SYSTEM)
        persons = PipedriveBanner()._persons(client, subject)
        if not persons:
            return Outcome(SYSTEM, "not_found", detail="no live person record"), []
        todo = {pid: p for pid, p in persons.items() if not _marked(settings, p)}
        if dry_run:
            return Outcome(SYSTEM, "pending", len(persons), detail=f"dry run: {len(todo)} records would be marked"), []
        for pid, person in todo.items():
            client.update("persons", pid, settings.changes_for(person))
        unmarked = [pid for pid in persons if not _marked(settings, client.get("persons", pid))]
        # The records that do carry the mark are returned even when others failed: the register
        # must know them, or lifting the restriction later would leave them marked for good.
        marked = [str(pid) for pid in persons if pid not in unmarked]
        if unmarked:
            return Outcome(SYSTEM, "failed", len(persons), error=(
                f"{len(unmarked)} person records do not read back restricted: ids "
                f"{', '.join(map(str, unmarked[:20]))}")), marked
        return Outcome(SYSTEM, "done", len(persons), detail=(
            f"{len(persons)} person records marked restricted ({len(todo)} now)")), marked

    def lift(self, clients: Clients, record_ids: list[str]) -> Outcome:
        settings = restriction_settings()
        if settings is None:
            return Outcome(SYSTEM, "manual_open", detail=NOT_CONFIGURED.replace("mark", "unmark"))
        client = clients.client(SYSTEM)
        still, lifted = [], 0
        for rid in record_ids:
            try:
                person = client.get("persons", int(rid))
            except NotFoundError:
                continue  # deleted meanwhile: nothing carries the mark
            changes = _unmark_changes(settings, person)
            if changes:
                client.update("persons", int(rid), changes)
                lifted += 1
            if _marked(settings, client.get("persons", int(rid))):
                still.append(rid)
        if still:
            return Outcome(SYSTEM, "failed", len(record_ids), error=(
                f"{len(still)} person records still read back restricted: ids {', '.join(still[:20])}"))
        return Outcome(SYSTEM, "done", len(record_ids), detail=f"restriction lifted from {lifted} person records")
