-- Staging for Pipedrive: one row per person-like record, and the records that point at a person.

CREATE OR REPLACE TABLE staging.pipedrive_persons AS
SELECT
    'pipedrive' AS system,
    'person' AS record_kind,
    CAST(p.id AS VARCHAR) AS record_id,
    p.name,
    p.first_name,
    p.last_name,
    p.job_title,
    coalesce(p.emails, []) AS emails,
    coalesce(p.phones, []) AS phones,
    o.name AS organization,
    CAST(NULL AS VARCHAR) AS business_id,
    p.marketing_status,
    p.update_time AS updated_at
FROM raw_pipedrive.persons AS p
LEFT JOIN raw_pipedrive.organizations AS o ON o.id = p.org_id;

-- Records about a person by Pipedrive's own reference (person_id, activity participants).
CREATE OR REPLACE TABLE staging.pipedrive_person_links AS
SELECT 'person' AS person_record_kind, CAST(person_id AS VARCHAR) AS person_record_id, 'deal' AS record_kind,
       CAST(id AS VARCHAR) AS record_id, update_time AS updated_at
FROM raw_pipedrive.deals WHERE person_id IS NOT NULL
UNION ALL
SELECT 'person', CAST(pid AS VARCHAR), 'activity', CAST(id AS VARCHAR), update_time
FROM (
    SELECT id, update_time,
           unnest(list_distinct(list_concat(coalesce(participant_person_ids, []),
                                            CASE WHEN person_id IS NULL THEN [] ELSE [person_id] END))) AS pid
    FROM raw_pipedrive.activities
)
UNION ALL
SELECT 'person', CAST(person_id AS VARCHAR), 'note', CAST(id AS VARCHAR), update_time
FROM raw_pipedrive.notes WHERE person_id IS NOT NULL;
