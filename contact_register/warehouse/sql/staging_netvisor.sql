-- Staging for Netvisor: billing contact persons and the personal fields of customers.
--
-- Person-like records:
--   contact_person  a customer's contact person (CustomerContactPersons);
--   customer        a private customer (the person is the customer), or a company customer's
--                   contact details (ContactPerson / ContactPersonEmail / ContactPersonPhone),
--                   or a person named in its name extension ("c/o Matti Virtanen").
-- Business ids arrive as 1234567-8, 12345678 or FI12345678: business_id is the Y-tunnus form
-- or NULL. Netvisor has no marketing-ban field (billing contacts are not marketing targets):
-- marketing_status is NULL. updated_at: the latest of when the record last changed and the
-- last invoice naming the person.

CREATE OR REPLACE TEMP TABLE _netvisor_customers AS
SELECT
    c.*,
    CASE
        WHEN regexp_full_match(trim(c.business_id), '[0-9]{7}-[0-9]') THEN trim(c.business_id)
        WHEN regexp_full_match(upper(replace(trim(c.business_id), ' ', '')), '(FI)?[0-9]{8}')
            THEN substr(right(replace(trim(c.business_id), ' ', ''), 8), 1, 7) || '-' || right(trim(c.business_id), 1)
        ELSE NULL
    END AS y_tunnus,
    nullif(trim(regexp_extract(c.name_extension, '^\s*(?:c/o|att\.?|attn\.?)\s+(.+)$', 1, 'i')), '') AS extension_person
FROM raw_netvisor.customers AS c;

CREATE OR REPLACE TEMP TABLE _netvisor_last_invoice AS
SELECT 'contact_person' AS kind, contact_person_id AS id, max(TRY_CAST(invoice_date AS DATE)) AS last_date
FROM raw_netvisor.invoices WHERE contact_person_id IS NOT NULL GROUP BY contact_person_id
UNION ALL
SELECT 'customer', customer_id, max(TRY_CAST(invoice_date AS DATE))
FROM raw_netvisor.invoices WHERE customer_id IS NOT NULL GROUP BY customer_id;

CREATE OR REPLACE TABLE staging.netvisor_persons AS
SELECT
    'netvisor' AS system,
    'contact_person' AS record_kind,
    CAST(p.id AS VARCHAR) AS record_id,
    nullif(trim(concat_ws(' ', p.first_name, p.last_name)), '') AS name,
    p.first_name,
    p.last_name,
    CAST(NULL AS VARCHAR) AS job_title,
    CASE WHEN p.email IS NULL THEN []::VARCHAR[] ELSE [p.email] END AS emails,
    CASE WHEN p.phone IS NULL THEN []::VARCHAR[] ELSE [p.phone] END AS phones,
    c.name AS organization,
    c.y_tunnus AS business_id,
    CAST(NULL AS VARCHAR) AS marketing_status,
    greatest(p.changed_at, CAST(li.last_date AS TIMESTAMPTZ)) AS updated_at
FROM raw_netvisor.contact_persons AS p
LEFT JOIN _netvisor_customers AS c ON c.id = p.customer_id
LEFT JOIN _netvisor_last_invoice AS li ON li.kind = 'contact_person' AND li.id = p.id
UNION ALL
SELECT
    'netvisor',
    'customer',
    CAST(c.id AS VARCHAR),
    CASE WHEN c.is_private THEN c.name ELSE coalesce(c.contact_person, c.extension_person) END,
    CAST(NULL AS VARCHAR),
    CAST(NULL AS VARCHAR),
    CAST(NULL AS VARCHAR),
    CASE WHEN c.is_private
         THEN list_filter([c.email, c.email_invoicing_address, c.contact_person_email], lambda x: x IS NOT NULL)
         ELSE list_filter([c.contact_person_email], lambda x: x IS NOT NULL) END,
    CASE WHEN c.is_private
         THEN list_filter([c.phone, c.contact_person_phone], lambda x: x IS NOT NULL)
         ELSE list_filter([c.contact_person_phone], lambda x: x IS NOT NULL) END,
    CASE WHEN c.is_private THEN NULL ELSE c.name END,
    CASE WHEN c.is_private THEN NULL ELSE c.y_tunnus END,
    CAST(NULL AS VARCHAR),
    greatest(c.changed_at, CAST(li.last_date AS TIMESTAMPTZ))
FROM _netvisor_customers AS c
LEFT JOIN _netvisor_last_invoice AS li ON li.kind = 'customer' AND li.id = c.id
WHERE c.is_private
   OR c.contact_person IS NOT NULL OR c.contact_person_email IS NOT NULL OR c.contact_person_phone IS NOT NULL
   OR c.extension_person IS NOT NULL;

-- Invoices are about their billing contact, and a private customer's invoices about them.
CREATE OR REPLACE TABLE staging.netvisor_person_links AS
SELECT 'contact_person' AS person_record_kind, CAST(i.contact_person_id AS VARCHAR) AS person_record_id,
       'invoice' AS record_kind, CAST(i.id AS VARCHAR) AS record_id,
       CAST(TRY_CAST(i.invoice_date AS DATE) AS TIMESTAMPTZ) AS updated_at
FROM raw_netvisor.invoices AS i
WHERE i.contact_person_id IN (SELECT id FROM raw_netvisor.contact_persons)
UNION ALL
SELECT 'customer', CAST(i.customer_id AS VARCHAR), 'invoice', CAST(i.id AS VARCHAR),
       CAST(TRY_CAST(i.invoice_date AS DATE) AS TIMESTAMPTZ)
FROM raw_netvisor.invoices AS i
JOIN raw_netvisor.customers AS c ON c.id = i.customer_id AND c.is_private;

DROP TABLE _netvisor_customers;
DROP TABLE _netvisor_last_invoice;
