"""Pipedrive eraser: the person goes (deleted, or masked field by field if the policy says
``person: mask``); what hangs off them stays as the company's business record but loses them.

- deal: the link to the person is cleared (``deal_fields``);
- activity: the person is cleared and dropped from the participants and the attendees (the
  other attendees stay), and the subject line is replaced by a fixed text (``activity_fields``).
  A subject is free text ("Tapaaminen: <name>"): a first name, initials or a nickname in it
  cannot be proven absent by matching, so the whole subject goes; the activity keeps its type,
  dates, deal, organisation and other participants as the company's record. Attendees are
  read with ``include_fields=attendees`` (the API leaves them out otherwise);
- note: a note only about the person is deleted; one also on a deal or organisation keeps its
  place with its text replaced (``note_fields``);
- mail message: Pipedrive mirrors the user's mailbox and its API cannot delete a message, so
  each is a manual task (the mail itself is erased in Google Workspace).

Persons are found by the warehouse's links plus a live exact-email search (only hits whose name
is the subject's count, see ``matching``). Linked records are handled first and the person
last, so a run killed midway finds everything again on the next run.
"""

from __future__ import annotations

from datetime import date

from contact_register.warehouse.normalize import normalize_email
from connectors.clock import today_helsinki
from connectors.errors import NotFoundError
from contact_register.requests.erasure.matching import is_subject_record
from contact_register.requests.erasure.policy import PolicyError, mask_value, system_policy
from contact_register.requests.writeback.base import Clients, Outcome, PlannedStep, WritebackSubject
from contact_register.requests.writeback.pipedrive import contact_values, subject_persons

SYSTEM = "pipedrive"
ENTITY = {"person": "persons", "deal": "deals", "activity": "activities", "note": "notes"}
ORDER = {"note": 0, "activity": 1, "deal": 2, "person": 3, "mail_message": 4}


def _ints(values) -> set[int]:
    return {int(v) for v in values if str(v).isdigit()}


class PipedriveEraser:
    system = SYSTEM

    def __init__(self, policy: dict | None = None) -> None:
        self.policy = policy or system_policy(SYSTEM)
        if self.policy.get("person", "delete") not in ("delete", "mask"):
            raise PolicyError("pipedrive person policy must be delete or mask")

    # -- finding -------------------------------------------------------------------------

    def _get(self, client, kind: str, rid: int) -> dict | None:
        try:
            rec = client.get(ENTITY[kind], rid)
        except NotFoundError:
            return None
        if kind == "note":  # v1 notes say active_flag; v2 records say is_deleted
            return None if rec.get("active_flag") is False else rec
        return None if rec.get("is_deleted") is True else rec

    def _is_masked(self, person: dict, subject: WritebackSubject) -> bool:
        fixed = (self.policy.get("person_fields", {}).get("name") or {}).get("fixed")
        return self.policy.get("person") == "mask" and person.get("name") == fixed and not is_subject_record(
            subject, name=None, emails=contact_values(person.get("emails")), phones=contact_values(person.get("phones")))

    def _persons(self, client, subject: WritebackSubject) -> dict[int, dict]:
        """The subject's live, not yet masked person records."""
        return subject_persons(client, subject, keep=lambda person: not self._is_masked(person, subject))

    @staticmethod
    def _subject_attendee(attendee, person_ids: set[int], emails: set[str]) -> bool:
        if not isinstance(attendee, dict):
            return False
        email = attendee.get("email")
        return attendee.get("person_id") in person_ids or (
            isinstance(email, str) and normalize_email(email) in emails)

    @staticmethod
    def _names_subject(text, subject: WritebackSubject) -> bool:
        """The free text still holds one of the subject's full names or emails (a check on
        activities found through the warehouse whose links are already cleared)."""
        if not isinstance(text, str):
            return False
        folded = " ".join(text.casefold().split())
        return any(" ".join(n.casefold().split()) in folded for n in subject.names if n and n.strip()) or any(
            e.casefold() in folded for e in subject.emails if e)

    def _note_done(self, note: dict) -> bool:
        fixed = (self.policy.get("note_fields", {}).get("content") or {}).get("fixed")
        return fixed is not None and note.get("content") == fixed

    def plan(self, clients: Clients, subject: WritebackSubject, today: date) -> list[PlannedStep]:
        client = clients.client(SYSTEM)
        persons = self._persons(client, subject)
        pids = set(persons)
        linked = subject.records_of(SYSTEM)
        steps: dict[tuple[str, int], PlannedStep] = {}

        def add(kind: str, rid: int, action: str, detail: str) -> None:
            steps.setdefault((kind, rid), PlannedStep(SYSTEM, kind, str(rid), action, detail))

        deals = {d["id"]: d for pid in pids for d in client.linked_to_person("deals", pid)}
        activities = {a["id"]: a for pid in pids for a in client.linked_to_person("activities", pid)}
        notes = {n["id"]: n for pid in pids for n in client.notes_for_person(pid)}
        # Records the warehouse links to the person that the live lists may no longer show
        # (e.g. the person was deleted by an earlier, interrupted run).
        all_pids = pids | _ints(linked.get("person", []))
        emails = {normalize_email(e) for e in subject.emails if e} - {None}
        for kind, found in (("deal", deals), ("activity", activities), ("note", notes)):
            for rid in _ints(linked.get(kind, [])) - set(found):
                rec = self._get(client, kind, rid)
                if rec is not None:
                    found[rid] = rec
            for rid, rec in found.items():
                on_person = rec.get("person_id") in all_pids or any(
                    isinstance(p, dict) and p.get("person_id") in all_pids for p in rec.get("participants") or [])
                if kind == "activity":
                    on_person = on_person or self._names_subject(rec.get("subject"), subject) or any(
                        self._subject_attendee(a, all_pids, emails) for a in rec.get("attendees") or [])
                if kind == "note":
                    if rec.get("person_id") not in all_pids or self._note_done(rec):
                        continue
                    if rec.get("deal_id") or rec.get("org_id"):
                        add(kind, rid, "mask", "note also on a deal or organisation: text replaced")
                    else:
                        add(kind, rid, "delete", "note only about the person")
                elif on_person:
                    add(kind, rid, "mask", f"{kind} kept as a business record: link to the person cleared")
        for pid in pids:
            if self.policy.get("person") == "mask":
                add("person", pid, "mask", "policy: person masked field by field")
            else:
                add("person", pid, "delete", "policy: person deleted")
            for m in client.mail_messages(pid):
                data = m.get("data", m) if isinstance(m, dict) else {}
                if isinstance(data.get("id"), int):
                    add("mail_message", data["id"], "manual",
                        "mail message mirrored from a user's mailbox: the API cannot delete it")
        return sorted(steps.values(), key=lambda s: (ORDER[s.record_kind], int(s.record_id)))

    # -- acting --------------------------------------------------------------------------

    def _mask(self, client, kind: str, rid: int, person_ids: set[int], emails: set[str]) -> None:
        rules = self.policy.get(f"{kind}_fields") or {}
        rec = self._get(client, kind, rid)
        if rec is None:
            return
        changes = {}
        for fieldname, rule in rules.items():
            if rule == "drop_subject" and fieldname == "participants":
                changes[fieldname] = [{"person_id": p["person_id"], "primary": bool(p.get("primary"))}
                                      for p in rec.get(fieldname) or []
                                      if isinstance(p, dict) and p.get("person_id") not in person_ids]
            elif rule == "drop_subject" and fieldname == "attendees":
                # The others stay as they were; keys the API left empty are not written back.
                changes[fieldname] = [{k: v for k, v in a.items() if v is not None}
                                      for a in rec.get(fieldname) or []
                                      if isinstance(a, dict) and not self._subject_attendee(a, person_ids, emails)]
            elif rule == "drop_subject":
                raise PolicyError(f"drop_subject applies to participants or attendees, not {fieldname}")
            else:
                changes[fieldname] = mask_value(rule, rec.get(fieldname), email_domain=self.policy["mask_email_domain"])
        client.update(ENTITY[kind], rid, changes)

    def execute(self, clients: Clients, subject: WritebackSubject, steps: list[PlannedStep]) -> Outcome:
        client = clients.client(SYSTEM)
        person_ids = {int(s.record_id) for s in steps if s.record_kind == "person"} | _ints(
            subject.records_of(SYSTEM).get("person", []))
        emails = {normalize_email(e) for e in subject.emails if e} - {None}
        done, manual = 0, 0
        for step in sorted(steps, key=lambda s: ORDER[s.record_kind]):
            rid = int(step.record_id)
            try:
                if step.action == "delete":
                    client.delete(ENTITY[step.record_kind], rid)
                elif step.action == "mask":
                    self._mask(client, step.record_kind, rid, person_ids, emails)
                elif step.action == "manual":
                    manual += 1
                    continue
            except NotFoundError:
                pass  # gone already: an earlier run (or someone) got there first
            done += 1
        if not steps:
            return Outcome(SYSTEM, "not_found")
        kinds = {}
        for s in steps:
            kinds[f"{s.record_kind} {s.action}"] = kinds.get(f"{s.record_kind} {s.action}", 0) + 1
        detail = ", ".join(f"{k}: {n}" for k, n in sorted(kinds.items()))
        if manual:
            return Outcome(SYSTEM, "manual_open", records=done, detail=f"{detail}; {manual} manual tasks")
        return Outcome(SYSTEM, "done", records=done, detail=detail)

    def verify(self, clients: Clients, subject: WritebackSubject) -> list[str]:
        return [f"{s.record_kind}:{s.record_id}" for s in self.plan(clients, subject, today_helsinki())
                if s.action in ("delete", "mask")]
