-- Staging for Request Tracker: one row per support user (not staff, not RT's system users),
-- and the tickets each user is a requestor, Cc or AdminCc of.

CREATE OR REPLACE TABLE staging.request_tracker_persons AS
SELECT
    'request_tracker' AS system,
    'user' AS record_kind,
    CAST(u.id AS VARCHAR) AS record_id,
    nullif(trim(u.real_name), '') AS name,
    CAST(NULL AS VARCHAR) AS first_name,
    CAST(NULL AS VARCHAR) AS last_name,
    CAST(NULL AS VARCHAR) AS job_title,
    CASE WHEN nullif(trim(u.email), '') IS NULL THEN [] ELSE [u.email] END AS emails,
    coalesce(u.phones, []) AS phones,
    nullif(trim(u.organization), '') AS organization,
    CAST(NULL AS VARCHAR) AS business_id,
    CAST(NULL AS VARCHAR) AS marketing_status,
    u.last_updated AS updated_at
FROM raw_request_tracker.users AS u
WHERE NOT coalesce(u.privileged, false)
  AND u.name NOT IN ('RT_System', 'Nobody')
  AND (nullif(trim(u.email), '') IS NOT NULL OR nullif(trim(u.real_name), '') IS NOT NULL);

CREATE OR REPLACE TABLE staging.request_tracker_person_links AS
SELECT DISTINCT 'user' AS person_record_kind, CAST(tp.user_id AS VARCHAR) AS person_record_id,
       'ticket' AS record_kind, CAST(tp.ticket_id AS VARCHAR) AS record_id, tp.last_updated AS updated_at
FROM raw_request_tracker.ticket_people AS tp
JOIN raw_request_tracker.users AS u ON u.id = tp.user_id AND NOT coalesce(u.privileged, false);
