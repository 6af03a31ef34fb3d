-- Identity resolution, part 2: clusters and the review table.
-- Inputs: id_rec, id_pairs, id_links, id_label (from identity.py).

-- Each record's cluster is the smallest record key in its component; how it was linked is the
-- strongest link it takes part in (operator > email > phone > score > name_org, email_name,
-- then probability; name_org and email_name links have none).
CREATE OR REPLACE TABLE staging.record_clusters AS
WITH best AS (
    SELECT rid, arg_max(rule, (CASE rule WHEN 'operator_confirm' THEN 4 WHEN 'email' THEN 3
                                          WHEN 'phone' THEN 2 WHEN 'score' THEN 1 ELSE 0 END,
                               coalesce(probability, 0))) AS rule,
           max(probability) FILTER (WHERE rule = 'score') AS best_score,
           max(probability) AS any_score
    FROM (SELECT l AS rid, rule, probability FROM id_links UNION ALL SELECT r, rule, probability FROM id_links)
    GROUP BY rid
),
comp AS (
    SELECT r.rid, r.record_key, coalesce(l.c, r.rid) AS c FROM id_rec AS r LEFT JOIN id_label AS l USING (rid)
)
SELECT c.record_key,
       min(c.record_key) OVER (PARTITION BY c.c) AS cluster,
       coalesce(b.rule, 'single') AS rule,
       CASE WHEN b.rule IS NULL THEN NULL WHEN b.rule = 'score' THEN b.best_score ELSE b.any_score END AS score
FROM comp AS c LEFT JOIN best AS b USING (rid);

-- Uncertain pairs for an operator, unless the pair already ended up in one cluster anyway
-- (then there is nothing to decide) or an operator decided it.
CREATE OR REPLACE TABLE identity_review AS
SELECT p.left_key, p.right_key, round(p.probability, 4) AS probability, round(p.weight, 2) AS weight,
       p.name_level, p.email_level, p.phone_level, p.org_level
FROM id_pairs AS p
JOIN staging.record_clusters AS a ON a.record_key = p.left_key
JOIN staging.record_clusters AS b ON b.record_key = p.right_key
WHERE p.decision = 'review' AND p.operator_decision IS NULL AND a.cluster <> b.cluster
ORDER BY p.probability DESC, p.left_key, p.right_key;
