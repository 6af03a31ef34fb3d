"""Subject-export readers of the smaller processors, which the nightly sync does not keep:
everything is read live by the person's own e-mails (``PersonRef.emails``: never a shared
mailbox).

- Trustmary: the contacts (deleted ones too: Trustmary keeps them) and the survey answers that
  name the person. Reviews, testimonial photos and videos have no API route: a note says so.
- Matomo: every visit found by the person's userId and visitorIds, exported table by table as
  ``PrivacyManager.exportDataSubjects`` gives them (``log_visit``, ``log_link_visit_action``, ...).
- Docue: the person's contract-party (signer) records and the metadata of those contracts. The
  contract files themselves name the other parties too and are not put in the package.

Listed, with the others, in ``registry.py``.
"""

from __future__ import annotations

from contact_register.requests.export.exporters import Exporter, Clients, PersonRef, SystemExport


class TrustmaryExporter(Exporter):
    def __init__(self) -> None:
        super().__init__("trustmary", {})

    def live(self, ctx: Clients, person: PersonRef, out: SystemExport) -> None:
        if not person.emails:
            return
        client = ctx.client("trustmary")
        contacts = client.find_contacts(person.emails, include_deleted=True)
        answers = client.survey_responses(person.emails, [c.get("id") for c in contacts])
        out.merge("contact", contacts)
        out.merge("survey_answer", answers, key="answer_id")
        if contacts or answers:
            out.notes.append("reviews, testimonial photos and videos are not readable through Trustmary's API: "
                             "checked by hand in the Trustmary app")


class MatomoExporter(Exporter):
    def __init__(self) -> None:
        super().__init__("matomo", {})

    def live(self, ctx: Clients, person: PersonRef, out: SystemExport) -> None:
        if not person.emails:
            return
        client = ctx.client("matomo")
        search = client.find_visits(person.emails)
        if search.capped:
            out.notes.append("a visit search reached Matomo's limit of 401 visits: older visits may be missing")
        out.notes += [f"unverified: {reason}" for _key, reason in sorted(search.unverified.items())]
        out.unverified = bool(search.unverified)
        for table, rows in client.export_visits(search.visits).items():
            if rows:
                out.records[table] = rows


class DocueExporter(Exporter):
    def __init__(self) -> None:
        super().__init__("docue", {})

    def live(self, ctx: Clients, person: PersonRef, out: SystemExport) -> None:
        if not person.emails:
            return
        found = ctx.client("docue").export(person.emails)
        out.merge("contract_party", found["contract_party"])
        out.merge("contract", found["contract"])
        if found["contract"]:
            out.notes.append("the contract documents themselves also name the other parties: "
                             "copies are given by hand after redaction")
