-- Identity resolution, same full name at the same organisation: a record with a full name and
-- an organisation (a survey reference contact or an e-signature signer: often nothing else; or
-- with only the company switchboard or an old mobile, which disagree with the person's other
-- phones) joins the other records of that name at that organisation, when nothing contradicts.
-- The organisation is compared through its normalised keys (id_orgs: the name without legal
-- form, case, accents and punctuation, also without a town after the first word; the business
-- id and the names written beside it; the company email domain).
-- Inputs: id_names, id_orgs, id_ids, id_freemail, id_params, id_decisions, id_rec and id_label
-- (the components so far, from identity.py). Output: id_name_org_links(l, r, rule, probability).
--
-- Contradicting evidence keeps a whole name-at-organisation group apart:
--   * two of its components have different personal addresses at the same company domain:
--     they are namesake colleagues (joonas.laine@ and joonas.laine2@ or joonas.k.laine@), and
--     a record with only the name could be either. An address and its short alias
--     (joonas.laine@, jlaine@) are one person's and contradict nothing;
--   * two of its components each have a personal email and a mobile, and their mobiles differ
--     (each is a known person; an old mobile alone, without an email, contradicts nothing);
--   * an operator split two of its records;
--   * one of its components is in a contradicted group under another key of the organisation;
--   * the group is bigger than max_block (a common name at a big company).
-- Otherwise phones do not contradict: a switchboard or a changed mobile is what these records carry.
CREATE OR REPLACE TEMP TABLE id_no_members AS
SELECT n.name_key || '|' || o.o AS g, n.rid, coalesce(l.c, n.rid) AS c
FROM id_names AS n
JOIN id_orgs AS o USING (rid)
LEFT JOIN id_label AS l USING (rid)
WHERE n.name_key IS NOT NULL AND len(n.tokens) >= 2;  -- a full name, not "Matti" alone

CREATE OR REPLACE TEMP TABLE id_no_groups AS
SELECT g FROM id_no_members GROUP BY g
HAVING count(DISTINCT c) >= 2 AND count(*) <= (SELECT max_block FROM id_params);

-- Company (not free-mail, not generic) address domains of every component in some group.
CREATE OR REPLACE TEMP TABLE id_comp_mail AS
WITH comps AS (SELECT DISTINCT c FROM id_no_members WHERE g IN (SELECT g FROM id_no_groups))
SELECT coalesce(l.c, i.rid) AS c, split_part(i.value_norm, '@', 2) AS domain,
       list_distinct(list(email_alias_key(i.value_norm))) AS alias_keys
FROM id_ids AS i LEFT JOIN id_label AS l USING (rid)
WHERE i.kind = 'email' AND NOT i.flag AND i.value_norm IS NOT NULL
  AND split_part(i.value_norm, '@', 2) NOT IN (SELECT domain FROM id_freemail)
  AND coalesce(l.c, i.rid) IN (SELECT c FROM comps)
GROUP BY ALL;

-- Components with their own email and mobile: two such with different mobiles are two people.
CREATE OR REPLACE TEMP TABLE id_comp_mobile AS
WITH comps AS (SELECT DISTINCT c FROM id_no_members WHERE g IN (SELECT g FROM id_no_groups))
SELECT coalesce(l.c, i.rid) AS c, list_distinct(list(i.value_norm) FILTER (WHERE i.kind = 'phone')) AS mobiles
FROM id_ids AS i LEFT JOIN id_label AS l USING (rid)
WHERE i.value_norm IS NOT NULL AND coalesce(l.c, i.rid) IN (SELECT c FROM comps)
  AND ((i.kind = 'phone' AND regexp_matches(i.value_norm, '^\+358(4|50)')) OR (i.kind = 'email' AND NOT i.flag))
GROUP BY ALL
HAVING bool_or(i.kind = 'email') AND bool_or(i.kind = 'phone');

CREATE OR REPLACE TEMP TABLE id_no_contradicted AS
WITH gm AS (
    SELECT DISTINCT m.g, m.c, cm.domain, cm.alias_keys
    FROM id_no_members AS m JOIN id_comp_mail AS cm USING (c) WHERE m.g IN (SELECT g FROM id_no_groups)
)
SELECT DISTINCT a.g FROM gm AS a JOIN gm AS b ON b.g = a.g AND b.domain = a.domain AND b.c > a.c
WHERE NOT list_has_any(a.alias_keys, b.alias_keys)
UNION
SELECT DISTINCT a.g
FROM id_no_members AS a JOIN id_comp_mobile AS ma ON ma.c = a.c
JOIN id_no_members AS b ON b.g = a.g AND b.c > a.c JOIN id_comp_mobile AS mb ON mb.c = b.c
WHERE a.g IN (SELECT g FROM id_no_groups) AND NOT list_has_any(ma.mobiles, mb.mobiles)
UNION
SELECT a.g
FROM id_decisions AS d
JOIN id_rec AS ra ON ra.record_key = d.left_key JOIN id_rec AS rb ON rb.record_key = d.right_key
LEFT JOIN id_label AS la ON la.rid = ra.rid LEFT JOIN id_label AS lb ON lb.rid = rb.rid
JOIN id_no_members AS a ON a.c = coalesce(la.c, ra.rid)
JOIN id_no_members AS b ON b.c = coalesce(lb.c, rb.rid) AND b.g = a.g
WHERE d.decision = 'split';

-- The organisation has several keys (name, business id, domain), so the namesakes may meet
-- under one key and the name-only record under another: a group that shares a component with
-- a contradicted group is contradicted too. (This also keeps links of two groups from chaining
-- namesakes through a person seen at two organisations: namesakes of one name with addresses
-- at one domain meet in that domain's group.)
INSERT INTO id_no_contradicted
SELECT DISTINCT m.g FROM id_no_members AS m
WHERE m.g IN (SELECT g FROM id_no_groups)
  AND m.c IN (SELECT c FROM id_no_members WHERE g IN (SELECT g FROM id_no_contradicted));

-- Every other component of a clean group links (by one of its records) to the group's first.
CREATE OR REPLACE TEMP TABLE id_name_org_links AS
WITH clean AS (
    SELECT g, c, min(rid) AS rid FROM id_no_members
    WHERE g IN (SELECT g FROM id_no_groups) AND g NOT IN (SELECT g FROM id_no_contradicted)
    GROUP BY g, c
),
firsts AS (SELECT g, arg_min(rid, c) AS first_rid, min(c) AS first_c FROM clean GROUP BY g)
SELECT DISTINCT least(k.rid, f.first_rid) AS l, greatest(k.rid, f.first_rid) AS r, 'name_org' AS rule,
       NULL::DOUBLE AS probability
FROM clean AS k JOIN firsts AS f USING (g)
WHERE k.c <> f.first_c;
