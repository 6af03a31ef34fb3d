"""Netvisor contract: the imitation's answers and our own fixture answers against our schemas of
Netvisor's documentation (tests/contracts/netvisor/schema.py, each with its page), and every
field the connector reads against the same schemas. Fails when the imitation sends an element
Netvisor does not document, leaves out one it always sends, or the connector reads a field
that is not in the contract."""

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import requests

from connectors.netvisor import (
    READS, Credentials, NetvisorAuth, parse_customer, parse_customer_list_item, parse_invoice,
    parse_invoice_list_item, parse_server_time, parse_xml,
)
from contracts.netvisor.schema import (
    CUSTOMERLIST, GETCUSTOMER_LIST, GETCUSTOMER_ONE, GETSALESINVOICE_LIST, REPLIES, RESOURCES, SALESINVOICELIST, E,
)

FIXTURES = Path(__file__).parent / "contracts" / "netvisor" / "fixtures"


def violations(el: ET.Element, schema: E, where: str = "") -> list[str]:
    """Elements or attributes not in the schema (names exactly as documented), and required
    children missing."""
    here = f"{where}/{el.tag}"
    if el.tag != schema.name:
        return [f"{here}: expected {schema.name}"]
    out = [f"{here}@{a}: attribute not in the contract" for a in el.attrib if a not in schema.attrs]
    seen: dict[str, int] = {}
    for child in el:
        spec = schema.child(child.tag)
        if spec is None:
            out.append(f"{here}/{child.tag}: not in the contract")
            continue
        seen[child.tag] = seen.get(child.tag, 0) + 1
        out.extend(violations(child, spec, here))
    for spec in schema.children:
        count = seen.get(spec.name, 0)
        if spec.required and count == 0:
            out.append(f"{here}/{spec.name}: required, missing")
        if spec.occurs in ("1", "0..1") and count > 1:
            out.append(f"{here}/{spec.name}: occurs {count} times, at most once")
    return out


def test_the_validator_notices_drift():
    # So that an empty list of violations below means something.
    root = ET.fromstring("<Root><ResponseStatus><Status>OK</Status><TimeStamp>1.1.2025 0:00:00</TimeStamp>"
                         "</ResponseStatus><Customerlist><Customer><Netvisorkey>1</Netvisorkey><Shoe>44</Shoe>"
                         "</Customer></Customerlist></Root>")
    found = violations(root, CUSTOMERLIST)
    assert "/Root/Customerlist/Customer/Shoe: not in the contract" in found
    assert "/Root/Customerlist/Customer/Name: required, missing" in found


# -- the connector reads only what the contract has ------------------------------------------

def _node(schema: E, path: str) -> E | None:
    node: E | None = schema
    for step in path.split("/"):
        node = node.child(step, ignore_case=True) if node is not None else None
    return node


@pytest.mark.parametrize("resource", sorted(READS))
def test_every_field_the_connector_reads_is_in_the_contract(resource):
    schema, record_path = RESOURCES[resource]
    record = _node(schema, record_path)
    assert record is not None, f"{resource}: record element {record_path} not in the contract"
    path, fields = READS[resource]
    assert path.lower() == record_path.lower().replace("salesinvoices/", "")
    missing = [f"{key} <- {p}" for key, p in fields.items() if _node(record, p) is None]
    assert missing == [], f"{resource}: the connector reads fields Netvisor does not send: {missing}"


# -- our fixtures: valid, and parsed by the client's own parser -------------------------------

@pytest.mark.parametrize("name, schema", [
    ("customerlist.xml", CUSTOMERLIST), ("getcustomer_private.xml", GETCUSTOMER_ONE),
    ("getcustomer_idlist.xml", GETCUSTOMER_LIST), ("salesinvoicelist.xml", SALESINVOICELIST),
    ("getsalesinvoice_list.xml", GETSALESINVOICE_LIST), ("failed_unknown_customer.xml", REPLIES),
])
def test_fixtures_follow_the_contract(name, schema):
    root = parse_xml((FIXTURES / name).read_bytes())
    assert violations(root, schema) == []


def test_the_client_parses_the_fixtures():
    root = parse_xml((FIXTURES / "customerlist.xml").read_bytes())
    assert parse_server_time(root.findtext("ResponseStatus/TimeStamp")).isoformat() == "2025-11-03T07:05:17+00:00"
    items = [parse_customer_list_item(c) for c in root.iter("Customer")]
    assert [(i["netvisor_key"], i["name"], i["organisation_identifier"]) for i in items] == [
        (41, "Kuusisto Pihla", ""), (42, "Savonlinnan Saha Oy", "0912345-6")]

    private = parse_customer(parse_xml((FIXTURES / "getcustomer_private.xml").read_bytes()).find("Customer"))
    assert (private["netvisor_key"], private["is_private_customer"], private["street_address"],
            private["additional_street_address"], private["email"], private["contact_persons"]) == (
        41, "1", "Rantakatu 7", "B 14", "pihla.kuusisto@esimerkki.invalid", [])

    company = parse_customer(parse_xml((FIXTURES / "getcustomer_idlist.xml").read_bytes()).find("Customers/Customer"))
    assert company["contact_person"] == "Lindqvist Aarne" and company["name_extension"] == "c/o Aarne Lindqvist"
    assert [(p["id"], p["first_name"], p["last_name"], p["office_id"]) for p in company["contact_persons"]] == [
        (7001, "Aarne", "Lindqvist", None), (7002, "Talous", "Laskutus", 3)]

    listed = parse_invoice_list_item(parse_xml((FIXTURES / "salesinvoicelist.xml").read_bytes())
                                     .find("SalesInvoiceList/SalesInvoice"))
    assert (listed["netvisor_key"], listed["invoice_date"], listed["status"], listed["customer_netvisor_key"]) == (
        901, "2025-08-15", "open", 42)

    detail = parse_invoice(parse_xml((FIXTURES / "getsalesinvoice_list.xml").read_bytes())
                           .find("SalesInvoices/SalesInvoice"))
    assert (detail["netvisor_key"], detail["contact_person_netvisor_key"], detail["your_reference"]) == (
        901, 7001, "Aarne Lindqvist")


# -- the imitation answers as the contract says ----------------------------------------------

def _get(sandbox, path: str, params: dict) -> ET.Element:
    env = sandbox.env()
    creds = Credentials(env["NETVISOR_SENDER"], env["NETVISOR_CUSTOMER_ID"], env["NETVISOR_PARTNER_ID"],
                        env["NETVISOR_CUSTOMER_KEY"], env["NETVISOR_PARTNER_KEY"], env["NETVISOR_ORGANISATION_ID"])
    answer = requests.Session().send(requests.Request("GET", f"{sandbox.url('netvisor')}/{path}", params=params,
                                                      auth=NetvisorAuth(creds)).prepare())
    return parse_xml(answer.content, answer.headers.get("Content-Type"))


def test_the_imitations_answers_follow_the_contract(netvisor_sandbox):
    nv = netvisor_sandbox.netvisor
    with_persons = next(c for c in nv.customers if nv._persons_of(c))
    private = next(c for c, rec in nv.customers.items() if rec["is_private"])
    invoiced = next(iter(nv.invoices.values()))["customer_id"]
    answers = [
        (_get(netvisor_sandbox, "customerlist.nv", {}), CUSTOMERLIST),
        (_get(netvisor_sandbox, "getcustomer.nv", {"id": str(with_persons)}), GETCUSTOMER_ONE),
        (_get(netvisor_sandbox, "getcustomer.nv", {"id": str(private)}), GETCUSTOMER_ONE),
        (_get(netvisor_sandbox, "getcustomer.nv", {"idlist": ",".join(str(c) for c in sorted(nv.customers)[:50])}),
         GETCUSTOMER_LIST),
        (_get(netvisor_sandbox, "getcustomer.nv", {"id": "987654"}), REPLIES),
        (_get(netvisor_sandbox, "salesinvoicelist.nv", {"customernetvisorkey": str(invoiced)}), SALESINVOICELIST),
        (_get(netvisor_sandbox, "getsalesinvoice.nv", {"netvisorkeylist": ",".join(str(k) for k in
                                                                                  sorted(nv.invoices)[:50])}),
         GETSALESINVOICE_LIST),
    ]
    for root, schema in answers:
        assert violations(root, schema) == []
    # Each answer's TimeStamp is Finnish local time the client can read.
    assert all(parse_server_time(root.findtext("ResponseStatus/TimeStamp")) is not None for root, _ in answers)
