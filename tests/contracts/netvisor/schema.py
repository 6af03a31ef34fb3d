"""Our own schemas of Netvisor's answers, written from Netvisor's documentation pages.

Each answer is a tree of ``E(name, occurs, children, attrs)``; ``occurs`` as the pages write it
("1", "0..1", "0..n"). Names are spelled as the pages spell them. Where a page leaves an
element out but real answers carry it (as the public client rantalainen/netvisor-api-client
reads them), it is listed as "0..1" with that note. Nothing here is copied from another
project: the trees are typed from the pages' element tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class E:
    name: str
    occurs: str = "1"
    children: tuple["E", ...] = ()
    attrs: frozenset[str] = field(default_factory=frozenset)

    @property
    def required(self) -> bool:
        return self.occurs == "1"

    def child(self, name: str, *, ignore_case: bool = False) -> "E | None":
        for c in self.children:
            if c.name == name or (ignore_case and c.name.lower() == name.lower()):
                return c
        return None


def leaves(occurs: str, *names: str) -> tuple[E, ...]:
    return tuple(E(n, occurs) for n in names)


# Every answer: "Netvisor API" pages, the response example of the interface description
# (Status OK, TimeStamp "7.4.2009 15:53:44", declared utf-8); a failure repeats Status with
# "CATEGORY :: text".
RESPONSE_STATUS = E("ResponseStatus", "1", (E("Status", "1..2"), E("TimeStamp", "1")))

# https://support.netvisor.fi/en/support/solutions/articles/77000554179-get-customer-list-customerlist-nv
CUSTOMERLIST = E("Root", "1", (RESPONSE_STATUS, E("Customerlist", "1", (
    E("Customer", "0..n", leaves("1", "Netvisorkey", "Name", "Code", "OrganisationIdentifier", "CustomerGroupID",
                                 "CustomerGroupName", "Uri")),
))))

# https://support.netvisor.fi/en/support/solutions/articles/77000554180-get-customer-details-getcustomer-nv
# (id: one bare Customer; idlist: Customers around them, as the public clients read it)
CUSTOMER = E("Customer", "1", (
    E("CustomerBaseInformation", "1", (
        *leaves("1", "NetvisorKey", "InternalIdentifier", "ExternalIdentifier"),
        *leaves("0..1", "OrganizationUnitNumber", "CustomerGroupNetvisorKey", "CustomerGroupName"),
        *leaves("1", "Name", "NameExtension", "StreetAddress", "AdditionalStreetAddress", "City", "PostNumber"),
        E("Country", "0..1", attrs=frozenset({"type"})),
        *leaves("1", "PhoneNumber", "FaxNumber", "Email", "EmailInvoicingAddress", "HomePageUri", "IsActive",
                "IsPrivateCustomer"),
    )),
    E("CustomerFinvoiceDetails", "1", leaves("1", "FinvoiceAddress", "FinvoiceRouterCode")),
    E("CustomerDeliveryDetails", "1", (
        *leaves("1", "DeliveryName", "DeliveryStreetAddress", "DeliveryCity", "DeliveryPostNumber"),
        E("DeliveryCountry", "0..1", attrs=frozenset({"type"})),
    )),
    E("CustomerContactDetails", "1", leaves("1", "ContactPerson", "ContactPersonEmail", "ContactPersonPhone")),
    E("CustomerContactPersons", "0..1", (
        E("CustomerContactPerson", "0..n", leaves("1", "ContactPersonID", "ContactPersonFirstName",
                                                  "ContactPersonLastName", "ContactPersonPhoneNumber",
                                                  "ContactPersonEmail", "ContactPersonOfficeNetvisorKey")),
    )),
    E("CustomerAdditionalInformation", "1", leaves(
        "0..1", "Comment", "CustomerAgreementIdentifier", "ReferenceNumber", "UseCreditorReferenceNumber",
        "YourDefaultReference", "DefaultTextBeforeInvoiceLines", "DefaultTextAfterInvoiceLines",
        "DefaultPaymentTerm", "DefaultSalesPerson", "DiscountPercentage", "PriceGroup", "InvoicingLanguage",
        "TaxHandlingType", "BalanceLimit", "EuStandardFinvoice")),
))
GETCUSTOMER_ONE = E("Root", "1", (RESPONSE_STATUS, CUSTOMER))
GETCUSTOMER_LIST = E("Root", "1", (RESPONSE_STATUS, E("Customers", "1", (E(
    "Customer", "0..n", CUSTOMER.children),))))

# https://support.netvisor.fi/en/support/solutions/articles/77000554148-get-sales-invoice-or-order-list-salesinvoicelist-nv
SALESINVOICELIST = E("Root", "1", (RESPONSE_STATUS, E("SalesInvoiceList", "1", (
    E("SalesInvoice", "0..n", (
        *leaves("1", "NetvisorKey", "InvoiceNumber"),
        E("Invoicedate", "1", attrs=frozenset({"format"})),
        E("InvoiceStatus", "1", attrs=frozenset({"substatus", "isincollection"})),
        *leaves("1", "CustomerCode", "CustomerName"),
        E("CustomerNetvisorKey", "0..1"),  # real answers (public clients); not in the page's table
        *leaves("1", "ReferenceNumber", "InvoiceSum", "OpenSum", "Uri"),
    )),
))))

# https://support.netvisor.fi/en/support/solutions/articles/77000554151-get-sales-invoice-details-getsalesinvoice-nv-getorder-nv
# (netvisorkeylist: SalesInvoices around them). Only the parts the register reads, plus those
# a fixture carries; invoice lines, sums and attachments are left out of our schema.
SALES_INVOICE = E("SalesInvoice", "1", (
    *leaves("1", "SalesInvoiceNetvisorKey", "SalesInvoiceNumber"),
    E("SalesInvoiceDate", "1", attrs=frozenset({"format"})),
    *leaves("0..1", "SalesInvoiceReferencenumber", "SalesInvoiceOurReference"),
    E("SalesInvoiceYourReference", "1"),
    *leaves("1", "InvoicingCustomerName", "InvoicingCustomerNetvisorKey", "InvoicingCustomerOrganizationIdentifier",
            "InvoicingCustomerAddressline", "InvoicingCustomerPostnumber", "InvoicingCustomerTown"),
    *leaves("0..1", "InvoicingCustomerNameExtension", "InvoicingCustomerAdditionalAddressLine",
            "InvoicingCustomerCountryCode"),
    *leaves("0..1", "ContactPersonNetvisorKey", "ContactPersonFirstName", "ContactPersonLastName",
            "ContactPersonPhoneNumber", "ContactPersonEmail"),
))
GETSALESINVOICE_LIST = E("Root", "1", (RESPONSE_STATUS, E("SalesInvoices", "1", (E(
    "SalesInvoice", "0..n", SALES_INVOICE.children),))))

# The answer to a write (customer.nv, contactperson.nv: "Replies/InsertedDataIdentifier"), and
# a write or delete answered with the status only.
REPLIES = E("Root", "1", (RESPONSE_STATUS, E("Replies", "0..1", (E("InsertedDataIdentifier", "1"),))))

# resource (as connectors.netvisor.READS names it) -> (schema, path of the record element).
RESOURCES = {
    "customerlist.nv": (CUSTOMERLIST, "Customerlist/Customer"),
    "getcustomer.nv": (GETCUSTOMER_ONE, "Customer"),
    "getcustomer.nv#contact_person": (GETCUSTOMER_ONE, "Customer/CustomerContactPersons/CustomerContactPerson"),
    "salesinvoicelist.nv": (SALESINVOICELIST, "SalesInvoiceList/SalesInvoice"),
    "getsalesinvoice.nv": (GETSALESINVOICE_LIST, "SalesInvoices/SalesInvoice"),
}
