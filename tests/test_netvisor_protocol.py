"""The Netvisor protocol as Netvisor documents it (issue 16), client and imitation over real HTTP.

Facts and where each is published: the docstrings of connectors/netvisor.py and
sandbox/netvisor.py. Expected values here are written out by hand.
"""

import hashlib
import re
from datetime import datetime, timezone

import pytest
import requests

from connectors.netvisor import Credentials, NetvisorAuth, NetvisorClient, parse_server_time
from netvisor_support import FAST_RETRY, fixed_answers, netvisor_client

H = "X-Netvisor-Authentication-"
FINNISH_TIME = re.compile(rb"<TimeStamp>\d{1,2}\.\d{1,2}\.\d{4} \d{2}:\d{2}:\d{2}</TimeStamp>")


def creds_of(sandbox) -> Credentials:
    env = sandbox.env()
    return Credentials(env["NETVISOR_SENDER"], env["NETVISOR_CUSTOMER_ID"], env["NETVISOR_PARTNER_ID"],
                       env["NETVISOR_CUSTOMER_KEY"], env["NETVISOR_PARTNER_KEY"], env["NETVISOR_ORGANISATION_ID"])


def signed(sandbox, path: str, params: dict | None = None) -> requests.PreparedRequest:
    return requests.Request("GET", f"{sandbox.url('netvisor')}/{path}", params=params,
                            auth=NetvisorAuth(creds_of(sandbox))).prepare()


# -- headers and the MAC ----------------------------------------------------------------------

def test_the_client_sends_netvisors_header_names_and_the_hmacsha256_algorithm(netvisor_sandbox):
    headers = signed(netvisor_sandbox, "customerlist.nv").headers
    assert headers[H + "MACHashCalculationAlgorithm"] == "HMACSHA256"
    assert headers["X-Netvisor-Interface-Language"] == "FI"
    assert headers["X-Netvisor-Organisation-ID"] == netvisor_sandbox.env()["NETVISOR_ORGANISATION_ID"]
    assert H + "Language" not in headers and H + "OrganisationId" not in headers
    answer = requests.Session().send(signed(netvisor_sandbox, "customerlist.nv"))
    assert b"<Status>OK</Status>" in answer.content


def test_an_hmac_value_under_the_legacy_sha256_name_is_an_authentication_failure(netvisor_sandbox):
    request = signed(netvisor_sandbox, "customerlist.nv")
    request.headers[H + "MACHashCalculationAlgorithm"] = "SHA256"  # the value is still the HMAC
    answer = requests.Session().send(request)
    assert answer.status_code == 403 and b"AUTHENTICATION_FAILED ::" in answer.content
    assert netvisor_sandbox.netvisor.auth_failures == 1


def test_a_correct_legacy_sha256_mac_is_accepted(netvisor_sandbox):
    # Legacy mode: a plain SHA-256 (no HMAC key) of URL&Sender&CustomerId&Timestamp&Language&
    # OrganisationId&TransactionId&CustomerKey&PartnerKey, as rantalainen's 2020 client sent it.
    c = creds_of(netvisor_sandbox)
    request = signed(netvisor_sandbox, "customerlist.nv")
    h = request.headers
    plain = "&".join((request.url, c.sender, c.customer_id, h[H + "Timestamp"], c.language, c.organisation_id,
                      h[H + "TransactionId"], c.customer_key, c.partner_key))
    h[H + "MACHashCalculationAlgorithm"] = "SHA256"
    h[H + "MAC"] = hashlib.sha256(plain.encode("iso-8859-15")).hexdigest()
    answer = requests.Session().send(request)
    assert b"<Status>OK</Status>" in answer.content


# -- answers: encoding, time stamps, shapes ---------------------------------------------------

def test_the_imitation_declares_utf8_and_writes_finnish_time_stamps(netvisor_sandbox):
    answer = requests.Session().send(signed(netvisor_sandbox, "customerlist.nv"))
    assert answer.content.startswith(b'<?xml version="1.0" encoding="utf-8"')
    assert FINNISH_TIME.search(answer.content), answer.content[:300]


@pytest.mark.parametrize("text, expected", [
    ("7.4.2009 15:53:44", datetime(2009, 4, 7, 12, 53, 44, tzinfo=timezone.utc)),   # EEST, UTC+3
    ("01.01.2018 12:00:00", datetime(2018, 1, 1, 10, 0, 0, tzinfo=timezone.utc)),  # EET, UTC+2
    ("2009-04-07 15:53:44", None),  # not Netvisor's format: no cursor rather than a wrong one
    ("", None),
])
def test_server_time_stamps_are_finnish_local_time(text, expected):
    assert parse_server_time(text) == expected


def test_getcustomer_with_one_id_answers_a_bare_customer_and_an_unknown_id_fails(netvisor_sandbox, tmp_path):
    nv = netvisor_sandbox.netvisor
    cid = next(iter(nv.customers))
    session = requests.Session()
    one = session.send(signed(netvisor_sandbox, "getcustomer.nv", {"id": str(cid)})).content
    assert b"<Customers>" not in one and re.search(rb"</ResponseStatus>\s*<Customer>", one)
    assert b"<AdditionalStreetAddress" in one and b"AdditionalAddressLine" not in one
    unknown = session.send(signed(netvisor_sandbox, "getcustomer.nv", {"id": "987654"})).content
    assert b"<Status>FAILED</Status>" in unknown and b"INVALID_DATA ::" in unknown
    client = netvisor_client(netvisor_sandbox, tmp_path)
    assert client.get_customer(987654) is None
    assert client.get_customer(cid)["netvisor_key"] == cid
    # A batch holding an unknown id still yields every known customer.
    other = sorted(nv.customers)[1]
    got = [c["netvisor_key"] for batch in client.get_customers([cid, 987654, other]) for c in batch]
    assert sorted(got) == sorted([cid, other])
    client.close()


def test_invoice_lists_carry_invoicedate_in_ansi_format_and_the_client_reads_it(netvisor_sandbox, tmp_path):
    nv = netvisor_sandbox.netvisor
    cid = next(iter(nv.customers))
    key = nv.add_invoice(cid, "2024-02-29")
    answer = requests.Session().send(signed(netvisor_sandbox, "salesinvoicelist.nv",
                                            {"customernetvisorkey": str(cid)})).content
    assert b'<Invoicedate format="ansi">2024-02-29</Invoicedate>' in answer
    client = netvisor_client(netvisor_sandbox, tmp_path)
    listed = {i["netvisor_key"]: i for page in client.invoice_pages(customer_id=cid) for i in page.items}
    assert listed[key]["invoice_date"] == "2024-02-29"
    client.close()


def test_contactperson_takes_its_method_in_the_body_not_the_query(netvisor_sandbox, tmp_path):
    nv = netvisor_sandbox.netvisor
    cid = next(c for c, rec in nv.customers.items() if not rec["is_private"])
    pid = nv.add_contact_person(cid, "Eero", "Mäkelä")
    # The old form (method and id in the query, no <method> element) is refused ...
    body = (f'<?xml version="1.0" encoding="utf-8"?><root><contactperson>'
            f'<customeridentifier type="netvisor">{cid}</customeridentifier>'
            f'<contactpersonidentifier type="netvisor">{pid}</contactpersonidentifier>'
            f'<firstname>Eero</firstname><lastname>Mäkelä</lastname><language type="ISO-3166">FI</language>'
            f'</contactperson></root>').encode()
    request = requests.Request("POST", f"{netvisor_sandbox.url('netvisor')}/contactperson.nv",
                               params={"method": "delete", "id": str(pid)}, data=body,
                               auth=NetvisorAuth(creds_of(netvisor_sandbox))).prepare()
    answer = requests.Session().send(request).content
    assert b"INVALID_DATA ::" in answer and pid in nv.contact_persons
    # ... and the client's documented form works.
    client = netvisor_client(netvisor_sandbox, tmp_path)
    assert client.edit_contact_person(cid, pid, email="eero@example.fi")["email"] == "eero@example.fi"
    client.delete_contact_person(cid, pid, check_holds=False)
    assert pid not in nv.contact_persons
    client.close()


def test_blanking_a_private_customer_clears_the_additional_street_address(netvisor_sandbox, tmp_path):
    nv = netvisor_sandbox.netvisor
    private = next(c for c, rec in nv.customers.items() if rec["is_private"])
    nv.touch_customer(private, additional_address="C 12")
    client = netvisor_client(netvisor_sandbox, tmp_path)
    assert client.get_customer(private)["additional_street_address"] == "C 12"
    after = client.blank_customer_personal_fields(private)
    assert after["additional_street_address"] in ("", None)
    assert nv.customers[private]["additional_address"] == ""
    client.close()


# -- answers the client must decode by their own declaration --------------------------------

DECLARED = {
    "/utf8/customerlist.nv": ('<?xml version="1.0" encoding="utf-8"?><Root><ResponseStatus><Status>OK</Status>'
                              '<TimeStamp>7.4.2009 15:53:44</TimeStamp></ResponseStatus><Customerlist><Customer>'
                              '<Netvisorkey>1</Netvisorkey><Name>Pöllänen Åke</Name><Code>1</Code>'
                              '</Customer></Customerlist></Root>').encode("utf-8"),
    "/latin9/customerlist.nv": ('<?xml version="1.0" encoding="ISO-8859-15"?><Root><ResponseStatus><Status>OK'
                                '</Status><TimeStamp>7.4.2009 15:53:44</TimeStamp></ResponseStatus><Customerlist>'
                                '<Customer><Netvisorkey>1</Netvisorkey><Name>Pöllänen Åke €</Name><Code>1</Code>'
                                '</Customer></Customerlist></Root>').encode("iso-8859-15"),
    "/nodecl/customerlist.nv": ('<Root><ResponseStatus><Status>OK</Status><TimeStamp>7.4.2009 15:53:44</TimeStamp>'
                                '</ResponseStatus><Customerlist><Customer><Netvisorkey>1</Netvisorkey>'
                                '<Name>Pöllänen Åke</Name><Code>1</Code></Customer></Customerlist></Root>').encode(),
    # Element case differs between clients' recordings: matched case-insensitively.
    "/lower/customerlist.nv": ('<?xml version="1.0" encoding="utf-8"?><root><responsestatus><status>OK</status>'
                               '<timestamp>7.4.2009 15:53:44</timestamp></responsestatus><customerlist><customer>'
                               '<netvisorkey>1</netvisorkey><name>Pöllänen Åke</name><code>1</code>'
                               '</customer></customerlist></root>').encode(),
}


@pytest.fixture
def declaring_server():
    with fixed_answers(DECLARED) as (url, _hits):
        yield url


@pytest.mark.parametrize("prefix, name", [("utf8", "Pöllänen Åke"), ("latin9", "Pöllänen Åke €"),
                                          ("nodecl", "Pöllänen Åke"), ("lower", "Pöllänen Åke")])
def test_answers_are_decoded_by_what_they_declare(declaring_server, tmp_path, prefix, name):
    client = NetvisorClient(f"{declaring_server}/{prefix}", sender="t", customer_id="c", partner_id="p",
                            customer_key="k", partner_key="q", organisation_id="1234567-8", retry=FAST_RETRY,
                            lock_dir=tmp_path, timeout=(2.0, 5.0))
    listing = client.customer_list()
    client.close()
    assert [c["name"] for c in listing.items] == [name]
    assert listing.server_time == datetime(2009, 4, 7, 12, 53, 44, tzinfo=timezone.utc)
