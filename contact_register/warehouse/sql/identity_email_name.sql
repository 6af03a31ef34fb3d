-- Identity resolution, nameless records: a record with no name whose personal company address
-- reads as a name ("matti.virtanen@yritys.fi", what a mail system keeps of a sender who gave
-- no display name) is linked to the one person of that name at that company. Real data has
-- many such records (mail-only senders, RT users learnt from mail), and most companies build
-- addresses from the name, so the address carries the name and the organisation.
-- Inputs: id_ids, id_names, id_orgs, id_freemail, id_links and id_label (the components
-- without this rule, from identity.py). Output: id_email_name_links(l, r, rule, probability).
--
-- Precision guards:
--   * only a local part of letters in two or more dot-separated words ("matti.virtanen",
--     "anna-liisa.jarvi"): "mvirtanen" fits every M. Virtanen, "matti.virtanen2" is the
--     second Matti Virtanen at that company, and generic (laskutus@) and free-mail addresses
--     say nothing about the company;
--   * the candidates (same name key, that company by organisation name or company email
--     domain) must all be one person already: two namesakes there link to neither;
--   * a candidate with a numbered variant of the address (matti.virtanen2@) is another
--     Matti Virtanen.
CREATE OR REPLACE TEMP TABLE id_email_name AS
SELECT DISTINCT i.rid, i.value_norm AS email, name_key(split_part(i.value_norm, '@', 1)) AS name_key,
       'tag:' || domain_tag(split_part(i.value_norm, '@', 2)) AS o
FROM id_ids AS i
WHERE i.kind = 'email' AND i.value_norm IS NOT NULL AND NOT i.flag
  AND regexp_full_match(split_part(i.value_norm, '@', 1), '[a-z]+(-[a-z]+)*(\.[a-z]+(-[a-z]+)*)+')
  AND split_part(i.value_norm, '@', 2) NOT IN (SELECT domain FROM id_freemail)
  AND NOT EXISTS (SELECT 1 FROM id_names AS n WHERE n.rid = i.rid AND n.name_key IS NOT NULL);

CREATE OR REPLACE TEMP TABLE id_email_name_links AS
WITH named AS (
    SELECT n.rid, n.name_key, o.o FROM id_names AS n JOIN id_orgs AS o USING (rid)
    WHERE n.name_key IS NOT NULL AND o.o IN (SELECT o FROM id_email_name)
),
candidates AS (
    SELECT e.rid AS src, t.rid AS tgt, coalesce(lt.c, t.rid) AS c, coalesce(ls.c, e.rid) AS src_c
    FROM id_email_name AS e
    JOIN named AS t ON t.name_key = e.name_key AND t.o = e.o
    LEFT JOIN id_label AS lt ON lt.rid = t.rid
    LEFT JOIN id_label AS ls ON ls.rid = e.rid
    WHERE NOT EXISTS (
        SELECT 1 FROM id_ids AS x
        WHERE x.rid = t.rid AND x.kind = 'email' AND x.value_norm <> e.email
          AND regexp_replace(x.value_norm, '\d+@', '@') = e.email)
)
SELECT least(src, min(tgt)) AS l, greatest(src, min(tgt)) AS r, 'email_name' AS rule, NULL::DOUBLE AS probability
FROM candidates
GROUP BY src
HAVING count(DISTINCT c) = 1 AND any_value(c) <> any_value(src_c);
