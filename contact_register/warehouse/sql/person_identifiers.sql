-- Every identifier of every person-like source record, as written (value_raw) and normalised
-- (value_norm; NULL when the value is not a valid identifier of its kind).
-- Input: staging.source_persons (the union of every system's staging.<system>_persons), and the
-- temp tables id_generic(local_part) and id_freemail(domain) made by identity.py.
-- Needs the macros of assets/warehouse/normalize.py and identity_macros.sql.
--   email         lower-cased, trimmed, NFC/IDNA via email-validator for the unusual ones
--   phone         E.164, phonenumbers with default region FI
--   name          word-order free key: accents stripped, hyphens split, tokens sorted
--                 ("Virtanen Matti", "matti virtanen", "Matti  Virtanen" -> "matti virtanen")
--   organization  name without legal form and punctuation ("Oy Sisu Rakennus Ab" -> "sisu rakennus")
--   business_id   Y-tunnus 1234567-8 (also from a VAT number FI12345678)
--   email_domain  domain of a valid email address
-- Internally (for identity_link.sql) the same rows are kept in id_ids keyed by a small integer
-- record id, with a flag: a generic mailbox (email) or a free-mail provider (email_domain).

-- One row per record (the newest if a key repeats), numbered.
CREATE OR REPLACE TEMP TABLE id_src AS
SELECT row_number() OVER () AS rid, system || ':' || record_kind || ':' || record_id AS record_key, *
FROM (
    SELECT system, record_kind, record_id, updated_at, emails, phones, organization, business_id,
           coalesce(nullif(trim(name), ''), nullif(trim(concat_ws(' ', first_name, last_name)), '')) AS name
    FROM staging.source_persons
    QUALIFY row_number() OVER (PARTITION BY system, record_kind, record_id ORDER BY updated_at DESC NULLS LAST) = 1
);

-- Emails and phones repeat a lot: normalise each distinct spelling once.
CREATE OR REPLACE TEMP TABLE id_email_raw AS
SELECT rid, value FROM (SELECT rid, unnest(emails) AS value FROM id_src) WHERE value IS NOT NULL AND trim(value) <> '';
CREATE OR REPLACE TEMP TABLE id_email_map AS
SELECT value, norm, split_part(norm, '@', 1) IN (SELECT local_part FROM id_generic) AS generic,
       split_part(norm, '@', 2) AS domain, split_part(norm, '@', 2) IN (SELECT domain FROM id_freemail) AS freemail
FROM (SELECT value, norm_email(value) AS norm FROM (SELECT DISTINCT value FROM id_email_raw));
CREATE OR REPLACE TEMP TABLE id_phone_raw AS
SELECT rid, value FROM (SELECT rid, unnest(phones) AS value FROM id_src) WHERE value IS NOT NULL AND trim(value) <> '';
CREATE OR REPLACE TEMP TABLE id_phone_map AS
SELECT value, norm_phone(value) AS norm FROM (SELECT DISTINCT value FROM id_phone_raw);

CREATE OR REPLACE TEMP TABLE id_names AS
SELECT rid, name, tokens, nullif(array_to_string(list_sort(tokens), ' '), '') AS name_key
FROM (SELECT rid, name, name_tokens(name) AS tokens FROM id_src WHERE name IS NOT NULL);

CREATE OR REPLACE TEMP TABLE id_ids AS
SELECT e.rid, 'email' AS kind, e.value AS value_raw, m.norm AS value_norm, m.generic AS flag
FROM id_email_raw AS e JOIN id_email_map AS m USING (value)
UNION ALL
SELECT e.rid, 'email_domain', e.value, m.domain, m.freemail
FROM id_email_raw AS e JOIN id_email_map AS m USING (value) WHERE m.norm IS NOT NULL
UNION ALL
SELECT p.rid, 'phone', p.value, m.norm, false FROM id_phone_raw AS p JOIN id_phone_map AS m USING (value)
UNION ALL
SELECT rid, 'name', name, name_key, false FROM id_names
UNION ALL
SELECT rid, 'organization', organization, nullif(org_key(organization), ''), false
FROM id_src WHERE organization IS NOT NULL AND trim(organization) <> ''
UNION ALL
SELECT rid, 'business_id', business_id, business_id_norm(business_id), false
FROM id_src WHERE business_id IS NOT NULL AND trim(business_id) <> '';

CREATE OR REPLACE TABLE person_identifiers AS
SELECT s.system, s.record_kind, s.record_id, i.kind, i.value_raw, i.value_norm
FROM id_ids AS i JOIN id_src AS s USING (rid);
