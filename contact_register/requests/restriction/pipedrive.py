"""Pipedrive restriction: a label or custom field that means "processing restricted" is set on
the person's records, verified by reading back, and removed again when the restriction is lifted.

Settings (read when the job runs, ``contact_register/requests/writeback/pipedrive.py``):

- ``PIPEDRIVE_RESTRICTION_LABEL_ID``: id of a person label (e.g. "Käsittely rajoitettu");
- ``PIPEDRIVE_RESTRICTION_FIELD`` / ``PIPEDRIVE_RESTRICTION_FIELD_VALUE``: a custom field key and
  its value (digits are sent as a number, i.e. an enum option id); lifting clears the field.

With neither, the restriction is a manual task saying so. The marketing status is left alone
on purpose: Pipedrive allows one change of it per person, so it could not be restored on lift;
a restricted person is kept out of marketing by the warehouse's ``restricted`` flag.
"""

from __future__ import annotations

from connectors.errors import NotFoundError
from contact_register.requests.writeback.base import Clients, Outcome, WritebackSubject
from contact_register.requests.writeback.pipedrive import (RESTRICTION_SETTINGS, PipedriveMark, mark_from_env,
                                                           subject_persons)

SYSTEM = "pipedrive"
NOT_CONFIGURED = ("no restriction label or field configured (PIPEDRIVE_RESTRICTION_LABEL_ID or "
                  "PIPEDRIVE_RESTRICTION_FIELD/_VALUE): mark the person restricted in Pipedrive by hand")


def restriction_mark() -> PipedriveMark | None:
    """The restriction mark (a label and/or a field); None when neither is configured."""
    mark = mark_from_env(RESTRICTION_SETTINGS)
    return mark if mark.is_set() else None


def _marked(mark: PipedriveMark, person: dict) -> bool:
    return bool(set(mark.marks(person)) - {"status"})  # the marketing status is not this mark


class PipedriveRestrictor:
    system = SYSTEM

    def restrict(self, clients: Clients, subject: WritebackSubject, *, dry_run: bool = False
                 ) -> tuple[Outcome, list[str]]:
        """(outcome, ids of the person records that carry the mark)."""
        settings = restriction_mark()
        if settings is None:
            return Outcome(SYSTEM, "manual_open", detail=NOT_CONFIGURED), []
        client = clients.client(SYSTEM)
        persons = subject_persons(client, subject)
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
        settings = restriction_mark()
        if settings is None:
            return Outcome(SYSTEM, "manual_open", detail=NOT_CONFIGURED.replace("mark", "unmark"))
        client = clients.client(SYSTEM)
        still, lifted = [], 0
        for rid in record_ids:
            try:
                person = client.get("persons", int(rid))
            except NotFoundError:
                continue  # deleted meanwhile: nothing carries the mark
            changes = settings.removal_for(person)
            if changes:
                client.update("persons", int(rid), changes)
                lifted += 1
            if _marked(settings, client.get("persons", int(rid))):
                still.append(rid)
        if still:
            return Outcome(SYSTEM, "failed", len(record_ids), error=(
                f"{len(still)} person records still read back restricted: ids {', '.join(still[:20])}"))
        return Outcome(SYSTEM, "done", len(record_ids), detail=f"restriction lifted from {lifted} person records")
