"""Legal holds (Kirjanpitolaki 2:10 §) and the write operations, against the sandbox over HTTP.

Expected end dates are worked out by hand in the comments, not computed by the code under test.
"""

from datetime import date

import pytest

from connectors.legal_hold import BOOKS, VOUCHER, FinancialYears, retention_end
from connectors.netvisor import LegalHoldError, NetvisorError
from netvisor_support import blank, netvisor_client

CALENDAR = FinancialYears()
JULY = FinancialYears(7, 1)
SEPTEMBER = FinancialYears(9, 1)
# A long first financial year (16 months), then regular years from 1 July.
LONG_FIRST = FinancialYears(7, 1, periods=((date(2023, 3, 1), date(2024, 6, 30)),))


@pytest.mark.parametrize("years, document, voucher_end, books_end", [
    # FY 2024 ends 2024-12-31: vouchers to the end of 2024 + 6 years, books 10 years from FY end.
    (CALENDAR, date(2024, 3, 15), date(2030, 12, 31), date(2034, 12, 31)),
    (CALENDAR, date(2024, 12, 31), date(2030, 12, 31), date(2034, 12, 31)),
    (CALENDAR, date(2025, 1, 1), date(2031, 12, 31), date(2035, 12, 31)),
    # FY 1.7.2023-30.6.2024 ended in calendar year 2024.
    (JULY, date(2024, 3, 15), date(2030, 12, 31), date(2034, 6, 30)),
    # FY 1.7.2024-30.6.2025 ended in 2025.
    (JULY, date(2024, 8, 1), date(2031, 12, 31), date(2035, 6, 30)),
    (JULY, date(2024, 6, 30), date(2030, 12, 31), date(2034, 6, 30)),
    # FY 1.9.2024-31.8.2025.
    (SEPTEMBER, date(2025, 8, 31), date(2031, 12, 31), date(2035, 8, 31)),
    (SEPTEMBER, date(2025, 9, 1), date(2032, 12, 31), date(2036, 8, 31)),
    # The long first year 1.3.2023-30.6.2024 ended in 2024, whatever the month of the document.
    (LONG_FIRST, date(2023, 5, 1), date(2030, 12, 31), date(2034, 6, 30)),
    (LONG_FIRST, date(2024, 7, 1), date(2031, 12, 31), date(2035, 6, 30)),
])
def test_retention_ends_follow_kirjanpitolaki_2_10(years, document, voucher_end, books_end):
    assert retention_end(document, VOUCHER, years) == voucher_end
    assert retention_end(document, BOOKS, years) == books_end


def test_bad_financial_year_settings_are_refused():
    for bad in ("13-01", "02-30", "x", "02-29"):
        with pytest.raises(ValueError):
            FinancialYears.parse(bad)
    with pytest.raises(ValueError):
        FinancialYears(periods=((date(2024, 1, 1), date(2025, 12, 31)),))  # 24 months


def _customer_with_contacts(nv):
    return next(c for c, rec in nv.customers.items() if not rec["is_private"])


@pytest.mark.parametrize("years, expected_end", [
    # Invoices 2019-11-30 and 2025-08-15; the later one decides.
    (CALENDAR, date(2031, 12, 31)),   # FY 2025 ends 2025-12-31
    (JULY, date(2032, 12, 31)),       # FY 1.7.2025-30.6.2026 ends in 2026
    (SEPTEMBER, date(2031, 12, 31)),  # FY 1.9.2024-31.8.2025 ends in 2025
])
def test_a_billing_contact_with_invoices_gets_a_hold_and_is_not_erased(netvisor_sandbox, tmp_path, years, expected_end):
    nv = netvisor_sandbox.netvisor
    cid = _customer_with_contacts(nv)
    pid = nv.add_contact_person(cid, "Pälvi", "Räsänen", email="palvi.rasanen@example.fi")
    old = nv.add_invoice(cid, "2019-11-30", pid)
    new = nv.add_invoice(cid, "2025-08-15", pid)
    client = netvisor_client(netvisor_sandbox, tmp_path, financial_years=years)
    hold = client.legal_hold_for_contact_person(cid, pid)
    assert hold is not None and hold.rule == VOUCHER
    assert hold.ends_on == expected_end
    assert hold.erase_from == date(expected_end.year + 1, 1, 1)
    assert [b["invoice_netvisor_key"] for b in hold.basis] == [old, new]
    assert "Pälvi" not in repr(hold.basis) and "palvi" not in repr(hold.basis)  # no personal data in the basis
    with pytest.raises(LegalHoldError) as caught:
        client.delete_contact_person(cid, pid)
    assert caught.value.hold.ends_on == expected_end
    assert expected_end.isoformat() in str(caught.value)
    assert pid in nv.contact_persons  # nothing was deleted
    client.close()


def test_an_expired_hold_allows_the_erasure(netvisor_sandbox, tmp_path):
    nv = netvisor_sandbox.netvisor
    cid = _customer_with_contacts(nv)
    pid = nv.add_contact_person(cid, "Yrjö", "Östman")
    nv.add_invoice(cid, "2018-03-01", pid)  # FY 2018 -> kept to 2024-12-31
    client = netvisor_client(netvisor_sandbox, tmp_path)
    hold = client.legal_hold_for_contact_person(cid, pid)
    assert hold.ends_on == date(2024, 12, 31) and not hold.active(date(2026, 11, 1))
    client.delete_contact_person(cid, pid)
    assert pid not in nv.contact_persons
    client.close()


def test_erasing_a_contact_person_without_invoices_leaves_nothing_on_re_read(netvisor_sandbox, tmp_path):
    nv = netvisor_sandbox.netvisor
    cid = _customer_with_contacts(nv)
    pid = nv.add_contact_person(cid, "Kyllikki", "Hämäläinen", email="kyllikki.hamalainen@example.fi",
                                phone="040 123 4567")
    client = netvisor_client(netvisor_sandbox, tmp_path)
    assert client.legal_hold_for_contact_person(cid, pid) is None
    client.delete_contact_person(cid, pid)
    customer = client.get_customer(cid)
    assert pid not in [p["id"] for p in customer["contact_persons"]]
    text = repr(customer)
    assert "Kyllikki" not in text and "kyllikki" not in text and "123 4567" not in text
    client.close()


def test_erasing_a_private_customer_without_invoices_leaves_nothing_on_re_read(netvisor_sandbox, tmp_path):
    nv = netvisor_sandbox.netvisor
    cid = next(c for c, rec in nv.customers.items()
               if rec["is_private"] and not any(i["customer_id"] == c for i in nv.invoices.values()))
    name, email = nv.customers[cid]["name"], nv.customers[cid]["email"]
    client = netvisor_client(netvisor_sandbox, tmp_path)
    assert client.legal_hold_for_customer(cid) is None
    client.delete_customer(cid)
    assert client.get_customer(cid) is None
    assert client.customer_list(keyword=name).items == []
    assert cid not in [i["netvisor_key"] for i in client.customer_list().items]
    assert all(email not in repr(c) for c in nv.customers.values())
    client.close()


def test_a_customer_with_invoices_is_not_deleted(netvisor_sandbox, tmp_path):
    nv = netvisor_sandbox.netvisor
    cid = next(c for c, rec in nv.customers.items()
               if rec["is_private"] and not any(i["customer_id"] == c for i in nv.invoices.values()))
    nv.add_invoice(cid, "2025-08-15")
    client = netvisor_client(netvisor_sandbox, tmp_path)
    with pytest.raises(LegalHoldError) as caught:
        client.delete_customer(cid)
    # The invoice of 15 August 2025 is in the sales ledger of the calendar financial year 2025,
    # which ends on 31 December 2025. Books are kept ten years from the end of the financial
    # year: to 31 December 2035, erasable from 1 January 2036.
    assert caught.value.hold.rule == BOOKS
    assert caught.value.hold.ends_on == date(2035, 12, 31)
    assert caught.value.hold.erase_from == date(2036, 1, 1)
    # The sandbox refuses too, like Netvisor, if a caller skips the check.
    with pytest.raises(NetvisorError) as refused:
        client.call("POST", "deletecustomer.nv", {"id": cid})
    assert "INVALID_DATA :: " in str(refused.value)
    assert cid in nv.customers
    client.close()


def test_blanking_a_customers_personal_fields_uses_empty_elements(netvisor_sandbox, tmp_path):
    nv = netvisor_sandbox.netvisor
    cid = next(c for c, rec in nv.customers.items() if not rec["is_private"] and rec["contact_email"]
               and rec["street"])
    before = dict(nv.customers[cid])
    client = netvisor_client(netvisor_sandbox, tmp_path)
    after = client.blank_customer_personal_fields(cid)
    assert [blank(after[k]) for k in ("contact_person", "contact_person_email", "contact_person_phone")] == [None] * 3
    assert nv.customers[cid]["contact_email"] == "" and nv.customers[cid]["contact_person"] == ""
    # Fields not named stay as they were.
    assert after["name"] == before["name"] and after["street_address"] == before["street"]
    private = next(c for c, rec in nv.customers.items() if rec["is_private"])
    after = client.blank_customer_personal_fields(private)
    assert [blank(after[k]) for k in ("email", "phone", "street_address", "post_number")] == [None] * 4
    assert after["name"] == nv.customers[private]["name"]  # Netvisor requires a name
    client.close()


def test_editing_a_contact_person_is_verified(netvisor_sandbox, tmp_path):
    nv = netvisor_sandbox.netvisor
    cid = _customer_with_contacts(nv)
    pid = nv.add_contact_person(cid, "Matti", "Virtanen", email="matti@example.fi")
    client = netvisor_client(netvisor_sandbox, tmp_path)
    after = client.edit_contact_person(cid, pid, email="", last_name="Virtanen-Mäkelä")
    assert blank(after["email"]) is None and after["last_name"] == "Virtanen-Mäkelä"
    with pytest.raises(ValueError):
        client.edit_contact_person(cid, pid, shoe_size="44")
    client.close()


# -- changed and first financial years (KPL 4:3 §: at most 18 months) -------------------------

# A company that kept calendar years, then changed to years starting 1 July with one long year
# 1.1.2024-30.6.2025 (18 months), configured as the operator would write it.
CHANGED = FinancialYears.from_config("07-01", ["2023-01-01/2023-12-31", "2024-01-01/2025-06-30"])


@pytest.mark.parametrize("document, voucher_end, books_end", [
    # The calendar year 2023 ended 31.12.2023: vouchers to the end of 2029, books to 31.12.2033.
    (date(2023, 3, 1), date(2029, 12, 31), date(2033, 12, 31)),
    (date(2023, 12, 31), date(2029, 12, 31), date(2033, 12, 31)),
    # The long year 1.1.2024-30.6.2025 ended in 2025: vouchers to the end of 2031, books to
    # 30.6.2035 - not 31.12.2034, which the MM-DD rule alone would give for a 2024 document.
    (date(2024, 1, 1), date(2031, 12, 31), date(2035, 6, 30)),
    (date(2024, 11, 15), date(2031, 12, 31), date(2035, 6, 30)),
    (date(2025, 6, 30), date(2031, 12, 31), date(2035, 6, 30)),
    # Regular again: 1.7.2025-30.6.2026 ended in 2026.
    (date(2025, 7, 1), date(2032, 12, 31), date(2036, 6, 30)),
    # Before the listed years the MM-DD rule applies, cut at the first listed year:
    # the rule's year 1.7.2022-30.6.2023 ends where the listed 2023 begins, on 31.12.2022.
    (date(2022, 8, 1), date(2028, 12, 31), date(2032, 12, 31)),
])
def test_a_changed_financial_year_from_the_configuration(document, voucher_end, books_end):
    assert retention_end(document, VOUCHER, CHANGED) == voucher_end
    assert retention_end(document, BOOKS, CHANGED) == books_end


def test_a_financial_year_is_at_most_18_calendar_months():
    # 1.3.2023 + 18 months = 1.9.2024, so the longest year ends on 31.8.2024.
    FinancialYears.from_config("01-01", ["2023-03-01/2024-08-31"])
    with pytest.raises(ValueError, match="18 months"):
        FinancialYears.from_config("01-01", ["2023-03-01/2024-09-01"])  # 18 months and a day (550 days)
    # From the end of a month: 31.1.2024 + 18 months = 31.7.2025, so the year ends 30.7.2025.
    FinancialYears.from_config("01-01", ["2024-01-31/2025-07-30"])
    with pytest.raises(ValueError, match="18 months"):
        FinancialYears.from_config("01-01", ["2024-01-31/2025-07-31"])


@pytest.mark.parametrize("periods", [
    ["2024-01-01"],                                  # not a period
    ["2024-01-01/2024-13-01"],                       # not a date
    ["2024-06-30/2024-01-01"],                       # ends before it starts
    ["2024-01-01/2024-12-31", "2024-07-01/2025-06-30"],  # overlapping
])
def test_bad_financial_year_periods_are_refused(periods):
    with pytest.raises(ValueError):
        FinancialYears.from_config("01-01", periods)


def test_the_netvisor_resource_takes_financial_year_periods():
    from assets.resources import NetvisorResource
    resource = NetvisorResource(base_url="http://127.0.0.1:9", sender="s", customer_id="c", partner_id="p",
                                customer_key="k", partner_key="q", organisation_id="1234567-8",
                                financial_year_start="07-01", financial_year_periods=["2024-01-01/2025-06-30"])
    years = resource.financial_years()
    assert years.end_of(date(2024, 3, 1)) == date(2025, 6, 30)


def test_a_hold_arises_from_invoices_naming_the_contact_by_email_or_name(netvisor_sandbox, tmp_path):
    nv = netvisor_sandbox.netvisor
    cid = _customer_with_contacts(nv)
    by_email = nv.add_contact_person(cid, "Iiris", "Koskinen", email="iiris.koskinen@example.fi")
    by_name = nv.add_contact_person(cid, "Onni", "Lahtinen")
    # Invoices typed by hand: the billing contact's name and e-mail are on the invoice, but
    # not the contact person's key (ContactPersonNetvisorKey is empty).
    nv.add_invoice(cid, "2025-08-15", by_email, key_on_invoice=False)
    nv.add_invoice(cid, "2024-02-01", by_name, key_on_invoice=False)
    client = netvisor_client(netvisor_sandbox, tmp_path)
    # Calendar years: vouchers of 2025 are kept to 31.12.2031, of 2024 to 31.12.2030.
    assert client.legal_hold_for_contact_person(cid, by_email).ends_on == date(2031, 12, 31)
    assert client.legal_hold_for_contact_person(cid, by_name).ends_on == date(2030, 12, 31)
    with pytest.raises(LegalHoldError):
        client.delete_contact_person(cid, by_email)
    assert by_email in nv.contact_persons
    client.close()


# -- a private customer with invoices, after the hold (issue 15 item 7) ----------------------

class _Clients:
    def __init__(self, client):
        self._client = client

    def client(self, system):
        assert system == "netvisor"
        return self._client


def _private_subject(nv, cid):
    from contact_register.requests.cases.identifiers import Identifiers
    from contact_register.requests.writeback.base import WritebackSubject
    nv.touch_customer(cid, email="helmi.nieminen@example.fi", name="Nieminen Helmi")
    return WritebackSubject(case_id="c1", identifiers=Identifiers(emails=("helmi.nieminen@example.fi",)),
                            emails=["helmi.nieminen@example.fi"], names=["Helmi Nieminen"])


def test_a_private_customer_with_invoices_is_blanked_and_left_as_a_manual_task_after_the_hold(
        netvisor_sandbox, tmp_path):
    from contact_register.requests.erasure.netvisor import NetvisorEraser
    nv = netvisor_sandbox.netvisor
    cid = next(c for c, rec in nv.customers.items()
               if rec["is_private"] and not any(i["customer_id"] == c for i in nv.invoices.values()))
    subject = _private_subject(nv, cid)
    nv.add_invoice(cid, "2014-05-05")  # FY 2014 ended 31.12.2014: books kept to 31.12.2024
    client = netvisor_client(netvisor_sandbox, tmp_path)
    clients = _Clients(client)
    eraser = NetvisorEraser({"private_customer_rule": "books", "restriction_title": ""})
    # While the hold runs: held, nothing changed.
    held = eraser.plan(clients, subject, date(2024, 12, 31))
    assert [(s.record_kind, s.action, s.held_until) for s in held] == [("customer", "hold", date(2024, 12, 31))]
    # After it: the personal fields the API can blank are blanked, and the rest (the name
    # Netvisor requires, the invoice itself) is a manual task - never a permanent failure.
    steps = eraser.plan(clients, subject, date(2025, 1, 1))
    assert [(s.record_kind, s.record_id, s.action) for s in steps] == [("customer", str(cid), "mask")]
    outcome = eraser.execute(clients, subject, steps)
    assert outcome.state == "manual_open", outcome
    assert str(cid) in outcome.detail
    assert nv.customers[cid]["email"] == "" and nv.customers[cid]["street"] == ""
    assert cid in nv.customers
    assert eraser.verify(clients, subject) == []
    # A re-run finds nothing of the person's left to blank (the case keeps the manual task).
    assert eraser.plan(clients, subject, date(2025, 1, 1)) == []
    client.close()
