-- Every identifier of every person-like source record, raw and normalised.
-- Input: staging.source_persons (the union of every system's staging.<system>_persons).
CREATE OR REPLACE TABLE person_identifiers AS
WITH src AS (SELECT * FROM staging.source_persons)
SELECT system, record_kind, record_id, 'email' AS kind, value AS value_raw, normalize_email(value) AS value_norm
FROM (SELECT system, record_kind, record_id, unnest(emails) AS value FROM src)
UNION ALL
SELECT system, record_kind, record_id, 'phone', value, normalize_phone(value)
FROM (SELECT system, record_kind, record_id, unnest(phones) AS value FROM src)
UNION ALL
SELECT system, record_kind, record_id, 'name', name,
       nullif(trim(regexp_replace(lower(strip_accents(name)), '\s+', ' ', 'g')), '')
FROM src WHERE name IS NOT NULL
UNION ALL
SELECT system, record_kind, record_id, 'organization', organization,
       nullif(trim(regexp_replace(lower(organization), '\s+', ' ', 'g')), '')
FROM src WHERE organization IS NOT NULL;
