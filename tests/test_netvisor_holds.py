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
               if rec["is_private"] and any(i["customer_id"] == c for i in nv.invoices.values()))
    client = netvisor_client(netvisor_sandbox, tmp_path)
    with pytest.raises(LegalHoldError) as caught:
        client.delete_customer(cid)
    assert caught.value.hold.rule == BOOKS and caught.value.hold.ends_on.year >= 2028
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
