-- person_records: person_id -> every record about them; persons: one row per human.
-- Expects staging.person_components(record_key, person_id, rule, score) from identity resolution:
-- rule is how the record was linked ('email', 'phone', 'score', 'name_org' (the same full name
-- at the same organisation, nothing contradicting), 'email_name' (a nameless address
-- that reads as the name of one person at that company), 'operator_confirm', or 'single' when
-- nothing links it), score the match probability of that link (NULL for 'single').
-- Records that point at a person record (deals, notes ...) carry rule '<system>:<kind>_id'.
CREATE OR REPLACE TABLE person_records AS
SELECT c.person_id, s.system, s.record_kind, s.record_id, c.rule, CAST(c.score AS DOUBLE) AS score, s.updated_at
FROM staging.source_persons AS s
JOIN staging.person_components AS c ON c.record_key = s.system || ':' || s.record_kind || ':' || s.record_id
UNION ALL
SELECT c.person_id, l.system, l.record_kind, l.record_id, l.system || ':' || l.person_record_kind || '_id', CAST(1.0 AS DOUBLE), l.updated_at
FROM staging.person_links AS l
JOIN staging.person_components AS c
  ON c.record_key = l.system || ':' || l.person_record_kind || ':' || l.person_record_id;

CREATE OR REPLACE TABLE persons AS
WITH keyed AS (
    SELECT c.person_id, s.*
    FROM staging.source_persons AS s
    JOIN staging.person_components AS c ON c.record_key = s.system || ':' || s.record_kind || ':' || s.record_id
),
ids AS (
    SELECT c.person_id, i.kind, i.value_norm
    FROM person_identifiers AS i
    JOIN staging.person_components AS c ON c.record_key = i.system || ':' || i.record_kind || ':' || i.record_id
    WHERE i.value_norm IS NOT NULL AND i.kind IN ('email', 'phone')
),
id_lists AS (
    SELECT person_id,
           list(DISTINCT value_norm ORDER BY value_norm) FILTER (WHERE kind = 'email') AS emails,
           list(DISTINCT value_norm ORDER BY value_norm) FILTER (WHERE kind = 'phone') AS phones
    FROM ids GROUP BY person_id
),
activity AS (
    SELECT person_id, max(updated_at) AS last_activity FROM person_records GROUP BY person_id
),
-- People with a record on the suppression list (staging.suppression_hits, by keyed hashes of
-- their identifiers: assets/suppression/warehouse.py) are banned whatever the systems say.
suppressed AS (
    SELECT DISTINCT c.person_id
    FROM staging.suppression_hits AS h
    JOIN staging.person_components AS c ON c.record_key = h.system || ':' || h.record_kind || ':' || h.record_id
),
-- People under an active restriction of processing (staging.restriction_hits, by keyed hashes:
-- pipelines/restriction/warehouse.py): restricted, hence also kept out of marketing.
restricted AS (
    SELECT DISTINCT c.person_id
    FROM staging.restriction_hits AS h
    JOIN staging.person_components AS c ON c.record_key = h.system || ':' || h.record_kind || ':' || h.record_id
),
base AS (
    SELECT
        person_id,
        arg_max(name, updated_at) AS name,
        list(DISTINCT organization ORDER BY organization) FILTER (WHERE organization IS NOT NULL) AS organizations,
        list(DISTINCT system ORDER BY system) AS systems,
        bool_or(coalesce(marketing_status = 'unsubscribed', false)) AS marketing_ban,
        count(*) AS source_records
    FROM keyed GROUP BY person_id
)
SELECT b.person_id, b.name, coalesce(l.emails, []) AS emails, coalesce(l.phones, []) AS phones,
       coalesce(b.organizations, []) AS organizations, b.systems,
       b.marketing_ban OR s.person_id IS NOT NULL OR r.person_id IS NOT NULL AS marketing_ban, a.last_activity,
       b.source_records, r.person_id IS NOT NULL AS restricted
FROM base AS b
LEFT JOIN id_lists AS l USING (person_id)
LEFT JOIN activity AS a USING (person_id)
LEFT JOIN suppressed AS s USING (person_id)
LEFT JOIN restricted AS r USING (person_id);

-- What analysts may use: everyone but the restricted (GDPR art. 18: storage only).
CREATE OR REPLACE VIEW analyst_persons AS
SELECT * EXCLUDE (restricted) FROM persons WHERE NOT restricted;

CREATE OR REPLACE TABLE marketing_bans AS
SELECT c.person_id, s.system, s.record_kind, s.record_id, 'marketing_status=unsubscribed' AS reason, s.updated_at
FROM staging.source_persons AS s
JOIN staging.person_components AS c ON c.record_key = s.system || ':' || s.record_kind || ':' || s.record_id
WHERE s.marketing_status = 'unsubscribed'
UNION ALL
-- Records whose identifiers are on the suppression list: 'suppression_list:ban' or
-- 'suppression_list:erasure' (an erased person re-collected).
SELECT c.person_id, s.system, s.record_kind, s.record_id, 'suppression_list:' || max(h.reason), s.updated_at  -- erasure over ban
FROM staging.suppression_hits AS h
JOIN staging.source_persons AS s USING (system, record_kind, record_id)
JOIN staging.person_components AS c ON c.record_key = s.system || ':' || s.record_kind || ':' || s.record_id
GROUP BY ALL
UNION ALL
SELECT DISTINCT c.person_id, s.system, s.record_kind, s.record_id, 'restriction', s.updated_at
FROM staging.restriction_hits AS h
JOIN staging.source_persons AS s USING (system, record_kind, record_id)
JOIN staging.person_components AS c ON c.record_key = s.system || ':' || s.record_kind || ':' || s.record_id;
