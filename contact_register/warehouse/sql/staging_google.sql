-- Staging for Google Workspace: the people our employees correspond, meet and share files with,
-- and their contacts. Address-like kinds give one row per distinct external address per kind
-- (record id = kind || ':' || md5(lower(address)), so ids carry no personal data); contacts
-- and other contacts give one row each. Addresses in the company's own domains are employees,
-- not register subjects, and are left out. Invalid addresses stay in raw_google only.

CREATE OR REPLACE TEMP TABLE google_internal_domains AS
SELECT DISTINCT lower(split_part(primary_email, '@', 2)) AS domain FROM raw_google.users;

CREATE OR REPLACE TEMP TABLE google_mentions AS
SELECT 'gmail_correspondent' AS kind, lower(trim(a.email)) AS addr, a.display_name,
       'gmail_message' AS record_kind, m.id AS record_id, coalesce(m.internal_date, m.sent_at) AS seen_at
FROM raw_google.gmail_addresses AS a
JOIN raw_google.gmail_messages AS m ON m.id = a.message_key
WHERE a.valid
UNION ALL
SELECT 'calendar_attendee', lower(trim(t.email)), t.display_name, 'calendar_event', e.id, e.updated_at
FROM raw_google.calendar_attendees AS t
JOIN raw_google.calendar_events AS e ON e.id = t.event_key
WHERE t.email LIKE '%_@_%.%'
UNION ALL
SELECT 'drive_grantee', lower(trim(p.email)), p.display_name, 'drive_file', f.id, f.modified_at
FROM raw_google.drive_permissions AS p
JOIN raw_google.drive_files AS f ON f.id = p.file_id
WHERE p.type = 'user' AND p.email LIKE '%_@_%.%';

DELETE FROM google_mentions
WHERE split_part(addr, '@', 2) IN (SELECT domain FROM google_internal_domains);

CREATE OR REPLACE TABLE staging.google_persons AS
SELECT
    'google' AS system,
    kind AS record_kind,
    kind || ':' || md5(addr) AS record_id,
    mode(display_name) AS name,
    CAST(NULL AS VARCHAR) AS first_name,
    CAST(NULL AS VARCHAR) AS last_name,
    CAST(NULL AS VARCHAR) AS job_title,
    [addr] AS emails,
    CAST([] AS VARCHAR[]) AS phones,
    CAST(NULL AS VARCHAR) AS organization,
    CAST(NULL AS VARCHAR) AS business_id,
    CAST(NULL AS VARCHAR) AS marketing_status,
    max(seen_at) AS updated_at
FROM google_mentions
GROUP BY kind, addr
UNION ALL
SELECT
    'google',
    c.kind,
    c.id,
    c.display_name,
    c.given_name,
    c.family_name,
    c.job_title,
    coalesce(c.emails, []),
    coalesce(c.phones, []),
    c.organization,
    CAST(NULL AS VARCHAR),
    CAST(NULL AS VARCHAR),
    c.synced_at
FROM raw_google.contacts AS c
CROSS JOIN (SELECT coalesce(list(domain), []) AS domains FROM google_internal_domains) AS d
-- an employee's own entry in a colleague's contacts is not a register subject
WHERE len(c.emails) = 0
   OR len(list_filter(c.emails, lambda x: NOT list_contains(d.domains, lower(split_part(x, '@', 2))))) > 0;

-- Every message, meeting and file that mentions an address-like person record.
CREATE OR REPLACE TABLE staging.google_person_links AS
SELECT DISTINCT kind AS person_record_kind, kind || ':' || md5(addr) AS person_record_id,
       record_kind, record_id, seen_at AS updated_at
FROM google_mentions;
