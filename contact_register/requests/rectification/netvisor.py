"""Netvisor rectifier: billing contact persons (``contactperson.nv?method=edit``: first and last
name, email, phone), read back by ``NetvisorClient.edit_contact_person`` itself. A title is a
manual task: ``getcustomer.nv`` does not return it, so a written title could not be verified.

Netvisor has no search by email, so the customers are read as the eraser reads them and the
subject's records picked with ``matching.is_subject_record``. A private customer, or a company
customer whose own contact fields name the subject, can only be blanked through our connector,
not edited: those become a manual task (the customer ids are in the case's detail).
"""

from __future__ import annotations

from contact_register.requests.erasure.matching import is_subject_record
from contact_register.requests.rectification.base import Change, Fix, Plan, corrected_single, email_fix, phone_fix
from contact_register.requests.writeback.base import Clients, WritebackSubject

SYSTEM = "netvisor"


def split_name(name: str) -> tuple[str, str]:
    """"Anna Maria Virtanen" -> ("Anna Maria", "Virtanen"): Netvisor keeps first and last name apart."""
    parts = name.split()
    return (" ".join(parts[:-1]), parts[-1]) if len(parts) > 1 else ("", parts[0])


class NetvisorRectifier:
    system = SYSTEM

    def plan(self, clients: Clients, subject: WritebackSubject, fix: Fix) -> Plan:
        client = clients.client(SYSTEM)
        finder = fix.finder(subject)
        plan = Plan()
        by_hand, title_by_hand = [], []
        keys = [c["netvisor_key"] for c in client.customer_list().items if isinstance(c["netvisor_key"], int)]
        for c in (c for batch in client.get_customers(keys) for c in batch):  # with their contact persons
            cid = c["netvisor_key"]
            private = c.get("is_private_customer") == "1"
            if is_subject_record(finder, name=c.get("name") if private else c.get("contact_person"),
                                 emails=[c.get("email") if private else None, c.get("contact_person_email")],
                                 phones=[c.get("phone") if private else None, c.get("contact_person_phone")]):
                by_hand.append(str(cid))
            for cp in c.get("contact_persons") or []:
                name = " ".join(p for p in (cp.get("first_name"), cp.get("last_name")) if p)
                if not isinstance(cp.get("id"), int) or not is_subject_record(
                        finder, name=name, emails=[cp.get("email")], phones=[cp.get("phone")]):
                    continue
                plan.found += 1
                payload = {}
                if fix.name_differs(name):
                    payload["first_name"], payload["last_name"] = split_name(fix.get("name"))
                email = corrected_single(cp.get("email"), *email_fix(fix))
                if email:
                    payload["email"] = email
                phone = corrected_single(cp.get("phone"), *phone_fix(fix))
                if phone:
                    payload["phone"] = phone
                if fix.get("title"):
                    # getcustomer.nv does not return a contact person's title, so a written title
                    # could never be read back (and the plan would never come out empty).
                    title_by_hand.append(f"{cid}/{cp['id']}")
                if payload:
                    plan.changes.append(Change("contact_person", f"{cid}/{cp['id']}", tuple(sorted(payload)), payload))
        manual = []
        if by_hand:
            plan.found += len(by_hand)
            manual.append(f"{len(by_hand)} customer records (ids {', '.join(by_hand[:20])}) name the person in the "
                          "customer's own fields, which the API can only blank: correct them in Netvisor by hand")
        if title_by_hand:
            manual.append(f"the title of contact persons {', '.join(title_by_hand[:20])}: Netvisor's API does not "
                          "return titles, so a correction could not be verified: correct it in Netvisor by hand")
        plan.manual = "; ".join(manual) or plan.manual
        return plan

    def apply(self, clients: Clients, change: Change) -> None:
        cid, pid = (int(x) for x in change.record_id.split("/"))
        clients.client(SYSTEM).edit_contact_person(cid, pid, **change.payload)
