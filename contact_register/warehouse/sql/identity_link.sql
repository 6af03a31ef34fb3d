-- Identity resolution, part 1: candidate pairs by blocking, comparison, and the link decision.
-- Inputs: staging.source_persons, person_identifiers, and temp tables made by identity.py:
--   id_params(max_block, prior, link_p, review_p), id_generic(local_part), id_freemail(domain),
--   id_decisions(left_key, right_key, decision) with left_key < right_key.
-- Output: id_rec (record_key -> rid), id_pairs (every compared pair with levels, weight,
-- probability and decision: 'link' with its rule, 'review', or 'none').

-- Records and their identifiers come keyed by small integer ids (id_src, id_ids, id_names from
-- person_identifiers.sql): every join below is on integers.
CREATE OR REPLACE TEMP TABLE id_rec AS SELECT rid, record_key, updated_at FROM id_src;

-- Which name words are given names: the data votes. A word written first is a given name, one
-- written last a surname ("Virtanen Matti" is the rare order, so the majority decides).
CREATE OR REPLACE TEMP TABLE id_token_role AS
SELECT t, sum(CASE WHEN pos = 1 THEN 1 WHEN pos = n THEN -1 ELSE 0 END) AS given_votes
FROM (SELECT unnest(tokens) AS t, unnest(range(1, len(tokens) + 1)) AS pos, len(tokens) AS n
      FROM id_names WHERE len(tokens) >= 2)
GROUP BY t;

CREATE OR REPLACE TEMP TABLE id_name_parts AS
SELECT x.rid,
       list(x.t) FILTER (WHERE coalesce(tr.given_votes, 0) > 0 OR x.n = 1) AS given,
       list(x.t) FILTER (WHERE coalesce(tr.given_votes, 0) <= 0 AND x.n > 1) AS surname
FROM (SELECT rid, unnest(list_distinct(tokens)) AS t, len(tokens) AS n FROM id_names) AS x
LEFT JOIN id_token_role AS tr ON tr.t = x.t
GROUP BY x.rid;

-- How common each name is: an exact match on a rare name is stronger evidence (the
-- term-frequency adjustment of the Fellegi-Sunter model).
CREATE OR REPLACE TEMP TABLE id_name_tf AS
SELECT name_key, count(*) / (SELECT count(*) FROM id_names) AS tf FROM id_names GROUP BY name_key;

-- Organisation evidence per record: business ids, and name tags from organisation names and
-- company (not free-mail) email domains. value_norm of an organisation is already without
-- legal form, case, accents and punctuation ("ITÄTEKNIIKKA OY" -> "itatekniikka").
CREATE OR REPLACE TEMP TABLE id_orgs_direct AS
SELECT DISTINCT rid, CASE WHEN kind = 'business_id' THEN 'bid:' || value_norm
                          WHEN kind = 'organization' THEN 'tag:' || org_tag(value_norm)
                          ELSE 'tag:' || domain_tag(value_norm) END AS o
FROM id_ids
WHERE value_norm IS NOT NULL AND (kind IN ('business_id', 'organization') OR (kind = 'email_domain' AND NOT flag))
UNION
-- A town after the first word is a branch, not another company: "Sisämedia Oulu" is also
-- "sisamedia", as its domain sisamedia.fi. (A town as the first word names the company:
-- "Salo Rakennus" stays "salorakennus".)
SELECT i.rid, 'tag:' || org_tag(array_to_string(
           list_filter(string_split(i.value_norm, ' '), lambda t, n: n = 1 OR NOT list_contains(w.towns, t)), ' '))
FROM id_ids AS i, id_towns AS w
WHERE i.kind = 'organization' AND i.value_norm IS NOT NULL;

-- A business id stands for the organisation names written beside it on any record (a billing
-- customer has both), so a record with only the id meets records with only the name. An id
-- seen with many names is unreliable and stands only for itself.
CREATE OR REPLACE TEMP TABLE id_bid_tags AS
SELECT b.o AS bid, t.o AS tag
FROM id_orgs_direct AS b JOIN id_orgs_direct AS t ON t.rid = b.rid AND starts_with(t.o, 'tag:')
WHERE starts_with(b.o, 'bid:')
GROUP BY b.o, t.o
QUALIFY count(*) OVER (PARTITION BY b.o) <= 4;

CREATE OR REPLACE TEMP TABLE id_orgs AS
SELECT rid, o FROM id_orgs_direct WHERE o IS NOT NULL
UNION
SELECT d.rid, bt.tag FROM id_orgs_direct AS d JOIN id_bid_tags AS bt ON bt.bid = d.o;

-- How common each organisation is among the records (its term frequency).
CREATE OR REPLACE TEMP TABLE id_org_tf AS
SELECT o, count(*) / (SELECT count(*) FROM id_rec) AS tf FROM id_orgs GROUP BY o;

-- Blocking: records are compared only when they share an email, a phone, or the same name
-- together with the same organisation, business id or company email domain. Equality joins.
CREATE OR REPLACE TEMP TABLE id_block AS
SELECT DISTINCT via, v, rid FROM (
    SELECT 'email' AS via, value_norm AS v, rid FROM id_ids WHERE kind = 'email' AND value_norm IS NOT NULL AND NOT flag
    UNION ALL
    SELECT 'phone', value_norm, rid FROM id_ids WHERE kind = 'phone' AND value_norm IS NOT NULL
    UNION ALL
    SELECT 'name_org', n.name_key || '|' || o.o, rid FROM id_names AS n JOIN id_orgs AS o USING (rid)
    WHERE n.name_key IS NOT NULL
);
-- A block bigger than max_block is a shared identifier (a switchboard, a team address) or a
-- very common name at one big company: pairs from it would be mostly wrong, so it gives none.
CREATE OR REPLACE TEMP TABLE id_pair_via AS
WITH small AS (
    SELECT via, v FROM id_block GROUP BY via, v
    HAVING count(*) BETWEEN 2 AND (SELECT max_block FROM id_params)
),
b AS (SELECT id_block.* FROM id_block JOIN small USING (via, v))
SELECT a.via, a.v, a.rid AS l, b.rid AS r
FROM b AS a JOIN b ON a.via = b.via AND a.v = b.v AND a.rid < b.rid;

-- Every usable identifier of the records in some pair, as lists for the comparison.
CREATE OR REPLACE TEMP TABLE id_feat AS
WITH cand AS (SELECT l AS rid FROM id_pair_via UNION SELECT r FROM id_pair_via)
SELECT c.rid, n.name_key, coalesce(p.given, []) AS given, coalesce(p.surname, []) AS surname,
       coalesce(i.emails, []) AS emails, coalesce(i.email_stems, []) AS email_stems,
       coalesce(i.phones, []) AS phones, coalesce(i.email_alias_keys, []) AS email_alias_keys,
       coalesce(o.orgs, []) AS orgs
FROM cand AS c
LEFT JOIN id_names AS n USING (rid)
LEFT JOIN id_name_parts AS p USING (rid)
LEFT JOIN (
    SELECT rid,
           list_distinct(list(value_norm) FILTER (WHERE kind = 'email')) AS emails,
           list_distinct(list(regexp_replace(value_norm, '\d+@', '@')) FILTER (WHERE kind = 'email')) AS email_stems,
           list_distinct(list(value_norm) FILTER (WHERE kind = 'phone')) AS phones,
           -- company (not free-mail) addresses up to the short alias: joonas.laine@ -> jlaine@
           list_distinct(list(email_alias_key(value_norm)) FILTER (
               WHERE kind = 'email' AND split_part(value_norm, '@', 2) NOT IN (SELECT domain FROM id_freemail))) AS email_alias_keys
    FROM id_ids
    WHERE value_norm IS NOT NULL AND ((kind = 'email' AND NOT flag) OR kind = 'phone')
      AND rid IN (SELECT rid FROM cand)
    GROUP BY rid
) AS i USING (rid)
LEFT JOIN (SELECT rid, list(o) AS orgs FROM id_orgs WHERE rid IN (SELECT rid FROM cand) GROUP BY rid) AS o USING (rid);

-- Name agreement levels: exact key, typo-close, shared given name with a changed surname
-- (marriage), given name plus part of a double surname, surname only (a relative or colleague),
-- nothing in common, or a name missing on one side.
CREATE OR REPLACE MACRO id_name_level(ln, lg, ls, rn, rg, rs) AS CASE
    WHEN ln IS NULL OR rn IS NULL THEN 'missing'
    WHEN ln = rn THEN 'exact'
    WHEN list_has_any(lg, rg) AND list_has_any(ls, rs) THEN 'partial'
    WHEN len(lg) > 0 AND len(ls) > 0 AND len(rg) > 0 AND len(rs) > 0
         AND NOT list_has_any(lg, rg) AND NOT list_has_any(ls, rs)
         AND jaro_winkler_similarity(ln, rn) >= 0.94 THEN 'fuzzy'
    WHEN list_has_any(lg, rg) THEN 'given'
    WHEN list_has_any(ls, rs) THEN 'surname'
    ELSE 'none' END;

CREATE OR REPLACE TEMP TABLE id_pair_names AS
SELECT DISTINCT p.l, p.r, id_name_level(a.name_key, a.given, a.surname, b.name_key, b.given, b.surname) AS name_level
FROM (SELECT DISTINCT l, r FROM id_pair_via) AS p
JOIN id_feat AS a ON a.rid = p.l
JOIN id_feat AS b ON b.rid = p.r;

-- An email or phone shared by people whose names do not fit together is a shared mailbox or a
-- switchboard: it never links anyone by itself.
CREATE OR REPLACE TEMP TABLE id_shared AS
SELECT DISTINCT v.via, v.v
FROM id_pair_via AS v JOIN id_pair_names AS n USING (l, r)
WHERE v.via IN ('email', 'phone') AND n.name_level IN ('surname', 'none')
UNION
-- A fixed line (not a Finnish mobile, +3584x / +35850) given by differently named people is a
-- switchboard, even when they share a given name; a shared mobile with a shared given name
-- stays personal (a married-name change).
SELECT DISTINCT v.via, v.v
FROM id_pair_via AS v JOIN id_pair_names AS n USING (l, r)
WHERE v.via = 'phone' AND n.name_level NOT IN ('exact', 'missing') AND NOT regexp_matches(v.v, '^\+358(4|50)')
UNION
SELECT via, v FROM id_block WHERE via IN ('email', 'phone') GROUP BY via, v
HAVING count(*) > (SELECT max_block FROM id_params);

CREATE OR REPLACE TEMP TABLE id_pairs AS
WITH agree AS (
    SELECT v.l, v.r,
           bool_or(v.via = 'email' AND s.v IS NULL) AS email_personal,
           bool_or(v.via = 'email') AS email_any,
           bool_or(v.via = 'phone' AND s.v IS NULL) AS phone_personal,
           bool_or(v.via = 'phone') AS phone_any
    FROM id_pair_via AS v LEFT JOIN id_shared AS s USING (via, v)
    GROUP BY v.l, v.r
),
levels AS (
    SELECT p.l, p.r, n.name_level,
           CASE WHEN p.email_personal THEN 'agree'
                WHEN p.email_any THEN 'shared'
                WHEN len(a.emails) = 0 OR len(b.emails) = 0 THEN 'missing'
                WHEN list_has_any(a.email_stems, b.email_stems) THEN 'numbered'  -- matti.virtanen2@ is another Matti
                WHEN list_has_any(a.email_alias_keys, b.email_alias_keys) THEN 'alias'  -- joonas.laine@ and jlaine@
                -- two other personal addresses at one company: a namesake colleague (joonas.k.laine@)
                WHEN list_has_any(list_transform(a.email_alias_keys, lambda k: split_part(k, '@', 2)),
                                  list_transform(b.email_alias_keys, lambda k: split_part(k, '@', 2))) THEN 'other_at_domain'
                ELSE 'disagree' END AS email_level,
           CASE WHEN p.phone_personal THEN 'agree'
                WHEN p.phone_any THEN 'shared'
                WHEN len(a.phones) = 0 OR len(b.phones) = 0 THEN 'missing'
                ELSE 'disagree' END AS phone_level,
           CASE WHEN len(a.orgs) = 0 OR len(b.orgs) = 0 THEN 'missing'
                WHEN list_has_any(a.orgs, b.orgs) THEN 'agree'
                ELSE 'disagree' END AS org_level,
           tf.tf AS name_tf, ow.org_w
    FROM agree AS p
    JOIN id_pair_names AS n USING (l, r)
    JOIN id_feat AS a ON a.rid = p.l
    JOIN id_feat AS b ON b.rid = p.r
    LEFT JOIN id_name_tf AS tf ON tf.name_key = a.name_key AND n.name_level = 'exact'
    LEFT JOIN (
        -- the rarest organisation the two share decides the weight of the agreement
        SELECT l, r, max(log2(0.85 / t.tf)) AS org_w
        FROM (SELECT p2.l, p2.r, unnest(list_intersect(a2.orgs, b2.orgs)) AS o
              FROM agree AS p2 JOIN id_feat AS a2 ON a2.rid = p2.l JOIN id_feat AS b2 ON b2.rid = p2.r)
        JOIN id_org_tf AS t USING (o)
        GROUP BY l, r
    ) AS ow USING (l, r)
),
-- Match weights: log2 of m/u, the Fellegi-Sunter Bayes factor of each comparison level.
weighted AS (
    SELECT *,
        CASE name_level
            WHEN 'exact' THEN greatest(3.0, least(14.0, log2(0.85 / name_tf)))
            WHEN 'fuzzy' THEN 4.0 WHEN 'partial' THEN 3.0 WHEN 'given' THEN -1.0
            WHEN 'surname' THEN -6.0 WHEN 'none' THEN -8.0 ELSE 0.0 END
      + CASE email_level WHEN 'agree' THEN 14.0 WHEN 'numbered' THEN -12.0 WHEN 'other_at_domain' THEN -10.0 WHEN 'disagree' THEN -0.5 ELSE 0.0 END
      + CASE phone_level WHEN 'agree' THEN 13.0 WHEN 'shared' THEN 1.0 WHEN 'disagree' THEN -5.0 ELSE 0.0 END
      + CASE org_level WHEN 'agree' THEN greatest(1.0, least(14.0, org_w)) WHEN 'disagree' THEN -2.0 ELSE 0.0 END AS weight
    FROM levels
),
scored AS (
    -- Prior: about one true match among all the records a record could be paired with.
    SELECT *, 1.0 / (1.0 + pow(2.0, -((SELECT prior FROM id_params) - log2((SELECT count(*) FROM id_rec) + 1) + weight)))
           AS probability
    FROM weighted
)
SELECT s.*, ra.record_key AS left_key, rb.record_key AS right_key, d.decision AS operator_decision,
       CASE
           WHEN d.decision = 'split' THEN 'none'
           WHEN d.decision = 'confirm' THEN 'link'
           -- Deterministic rules: a personal email with a fitting name; a personal phone with a
           -- fitting name (a shared given name covers a married-name change).
           WHEN email_level = 'agree' AND name_level NOT IN ('surname', 'none') THEN 'link'
           WHEN phone_level = 'agree' AND name_level IN ('exact', 'fuzzy', 'partial', 'given') THEN 'link'
           -- Without an agreeing personal email or phone the evidence is a name at an
           -- organisation: identity_name_org.sql decides those, knowing the namesakes there.
           WHEN probability >= (SELECT link_p FROM id_params) AND 'agree' IN (email_level, phone_level) THEN 'link'
           WHEN probability >= (SELECT review_p FROM id_params) THEN 'review'
           ELSE 'none' END AS decision,
       CASE
           WHEN d.decision IS NOT NULL THEN 'operator_' || d.decision
           WHEN email_level = 'agree' AND name_level NOT IN ('surname', 'none') THEN 'email'
           WHEN phone_level = 'agree' AND name_level IN ('exact', 'fuzzy', 'partial', 'given') THEN 'phone'
           ELSE 'score' END AS rule
FROM scored AS s
JOIN id_rec AS ra ON ra.rid = s.l
JOIN id_rec AS rb ON rb.rid = s.r
LEFT JOIN id_decisions AS d ON d.left_key = ra.record_key AND d.right_key = rb.record_key;
