"""Netvisor eraser: contact persons and private customers, unless bookkeeping law keeps them.

Netvisor has no search by email, so the eraser reads every customer (``customerlist.nv``, then
``getcustomer.nv`` in batches of 500: a few requests even for thousands of customers) and picks
the subject's records with ``matching.is_subject_record``:

- a billing contact person named on invoices is kept until the voucher hold of Kirjanpitolaki
  2:10 § ends (``connectors.legal_hold``): step ``hold`` with the end date, and the record is
  restricted meanwhile (its title gets the policy's ``restriction_title``); otherwise deleted;
- a private customer with invoices is held likewise (``private_customer_rule``, books by
  default: 10 years); without invoices deleted. Once the hold has ended Netvisor still refuses
  to delete a customer with invoices (and the API cannot delete sent invoices): the customer's
  personal fields are blanked (``mask``) and the rest - the name Netvisor requires, the
  invoices - becomes a manual task (``manual_open``), never a permanent failure;
- a company customer whose contact-detail fields name the subject has those fields blanked.
A contact person's hold also counts invoices that name them by e-mail or full name without
their key (``NetvisorClient.legal_hold_for_contact_person``).
Record ids: ``<customer>/<contact person>`` for contact persons, the customer key for customers.
"""

from __future__ import annotations

from datetime import date

from connectors.clock import today_helsinki
from connectors.errors import NotFoundError
from connectors.legal_hold import BOOKS, RULES, LegalHold
from connectors.netvisor import CONTACT_FIELDS, LegalHoldError
from contact_register.requests.erasure.matching import is_subject_record
from contact_register.requests.erasure.policy import PolicyError, system_policy
from contact_register.requests.writeback.base import Clients, Outcome, PlannedStep, WritebackSubject

SYSTEM = "netvisor"


AFTER_HOLD = ("private customer with invoices, bookkeeping hold ended: personal fields blanked; Netvisor "
              "cannot delete a customer with invoices")


def _hold_detail(hold: LegalHold) -> str:
    return f"{hold.law} ({hold.rule}): on {len(hold.basis)} invoices, kept until {hold.ends_on.isoformat()}"


class NetvisorEraser:
    system = SYSTEM

    def __init__(self, policy: dict | None = None) -> None:
        self.policy = policy or system_policy(SYSTEM)
        self.customer_rule = self.policy.get("private_customer_rule", BOOKS)
        if self.customer_rule not in RULES:
            raise PolicyError(f"netvisor private_customer_rule must be one of {RULES}")
        self.restriction_title = str(self.policy.get("restriction_title") or "")

    def _customers(self, client) -> list[dict]:
        ids = [c["netvisor_key"] for c in client.customer_list().items if isinstance(c["netvisor_key"], int)]
        return [c for batch in client.get_customers(ids) for c in batch]

    @staticmethod
    def _hold_step(kind: str, rid: str, hold: LegalHold | None, today: date, action: str, detail: str) -> PlannedStep:
        if hold is not None and hold.active(today):
            return PlannedStep(SYSTEM, kind, rid, "hold", _hold_detail(hold) + "; restricted meanwhile",
                               held_until=hold.ends_on)
        return PlannedStep(SYSTEM, kind, rid, action, detail if hold is None else f"{detail} (hold ended)")

    def plan(self, clients: Clients, subject: WritebackSubject, today: date) -> list[PlannedStep]:
        client = clients.client(SYSTEM)
        steps = []
        for c in self._customers(client):
            cid = c["netvisor_key"]
            if c.get("is_private_customer") == "1" and is_subject_record(
                    subject, name=c.get("name"), emails=[c.get("email"), c.get("contact_person_email")],
                    phones=[c.get("phone"), c.get("contact_person_phone")]):
                hold = client.legal_hold_for_customer(cid, rule=self.customer_rule)
                # After the hold the invoices still bind the customer record: blank, not delete.
                after_hold = "mask" if hold is not None else "delete"
                steps.append(self._hold_step("customer", str(cid), hold, today, after_hold,
                                             AFTER_HOLD if hold is not None else "private customer"))
                continue
            if c.get("is_private_customer") != "1" and is_subject_record(
                    subject, name=c.get("contact_person"), emails=[c.get("contact_person_email")],
                    phones=[c.get("contact_person_phone")]):
                steps.append(PlannedStep(SYSTEM, "customer_contact_details", str(cid), "mask",
                                         "customer's contact-person fields blanked"))
            for cp in c.get("contact_persons") or []:
                name = " ".join(p for p in (cp.get("first_name"), cp.get("last_name")) if p)
                if isinstance(cp.get("id"), int) and is_subject_record(
                        subject, name=name, emails=[cp.get("email")], phones=[cp.get("phone")]):
                    hold = client.legal_hold_for_contact_person(cid, cp["id"])
                    steps.append(self._hold_step("contact_person", f"{cid}/{cp['id']}", hold, today, "delete",
                                                 "billing contact person"))
        return steps

    def _act(self, client, step: PlannedStep) -> None:
        if step.record_kind == "contact_person":
            cid, pid = (int(x) for x in step.record_id.split("/"))
            if step.action == "delete":
                client.delete_contact_person(cid, pid, check_holds=True)
            elif step.action == "hold" and self.restriction_title:
                client.edit_contact_person(cid, pid, title=self.restriction_title)
        elif step.record_kind == "customer" and step.action == "delete":
            client.delete_customer(int(step.record_id))
        elif step.record_kind == "customer" and step.action == "mask":
            client.blank_customer_personal_fields(int(step.record_id))  # a private customer's fields
        elif step.record_kind == "customer_contact_details" and step.action == "mask":
            client.blank_customer_personal_fields(int(step.record_id), CONTACT_FIELDS)

    def execute(self, clients: Clients, subject: WritebackSubject, steps: list[PlannedStep]) -> Outcome:
        if not steps:
            return Outcome(SYSTEM, "not_found")
        client = clients.client(SYSTEM)
        done, held, by_hand = 0, [], []
        for step in steps:
            try:
                self._act(client, step)
            except NotFoundError:
                pass  # deleted already
            except LegalHoldError as exc:  # an invoice appeared between plan and execution
                if exc.hold is None:
                    raise
                if exc.hold.active(date.today()) or step.record_kind != "customer":
                    step = PlannedStep(SYSTEM, step.record_kind, step.record_id, "hold", _hold_detail(exc.hold),
                                       held_until=exc.hold.ends_on)
                else:  # its invoices' hold has ended already: blank what the API allows
                    step = PlannedStep(SYSTEM, step.record_kind, step.record_id, "mask", AFTER_HOLD)
                    self._act(client, step)
            if step.action == "hold":
                held.append(step)
            elif step.record_kind == "customer" and step.action == "mask":
                by_hand.append(step.record_id)
            else:
                done += 1
        if held:
            until = max(s.held_until for s in held)
            detail = (f"{len(held)} records kept under Kirjanpitolaki 2:10 § until {until.isoformat()} and "
                      f"restricted; {done} erased")
            return Outcome(SYSTEM, "held", records=done, detail=detail, held_until=until)
        if by_hand:
            detail = (f"{done} records erased; private customers {', '.join(by_hand[:20])}: personal fields blanked "
                      "after the bookkeeping hold, but Netvisor keeps a customer with invoices: remove the name "
                      "and the invoices by hand in Netvisor (or record why they stay) and answer this task")
            return Outcome(SYSTEM, "manual_open", records=done + len(by_hand), detail=detail)
        return Outcome(SYSTEM, "done", records=done, detail=f"{done} records erased")

    def verify(self, clients: Clients, subject: WritebackSubject) -> list[str]:
        return [f"{s.record_kind}:{s.record_id}" for s in self.plan(clients, subject, today_helsinki())
                if s.action in ("delete", "mask")]
