"""Identity resolution: which source records are about the same human.

One code path serves the nightly warehouse build and the `contact-register identity resolve`
batch tool: both put records into ``staging.source_persons`` and call :func:`resolve`.

1. ``person_identifiers.sql`` normalises every identifier (emails, E.164 phones, names with
   word order removed, organisation names, business ids, email domains).
2. ``identity_link.sql`` makes candidate pairs by blocking (equality joins on a shared email, a
   shared phone, or the same name at the same organisation), compares them at Fellegi-Sunter
   levels and decides each pair: deterministic rules first (same personal email with a fitting
   name; same personal phone with a fitting name, which includes a married-name change), then
   the summed match weight for the rest, which links only with an agreeing personal email or
   phone. Then, over the components: the same full name at the same organisation (compared
   through normalised keys: legal form, case, accents and punctuation removed, a town after
   the first word dropped, the business id and the names written beside it, the company email
   domain) links unless contradicted by different personal addresses at one company domain,
   two known people with different mobiles, or an operator split (``identity_name_org.sql``:
   name-and-organisation-only records, inverted names, a switchboard or an old mobile). A
   record with no name whose company address reads as a name ("matti.virtanen@yritys.fi")
   joins the one person of that name at that company (``identity_email_name.sql``). Generic
   mailboxes (``info@``, ``laskutus@`` ... see ``generic_local_parts``) never form a block,
   and an email or phone that several differently-named people use counts as shared (a fixed
   line given by people who share only a given name is a switchboard too): it links nobody by
   itself. Pairs between the
   link and review thresholds go to the review table; an operator's confirm or split (kept in
   the :class:`~contact_register.warehouse.identity_state.IdentityState` store, outside the warehouse)
   overrides the decision.
3. Connected components over the linked pairs (label propagation in SQL) are the people.
4. Person ids: with a state store, :func:`assign_person_ids` keeps ids stable across runs (see
   there); without one, the cluster id is derived from the component's smallest record key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources

import duckdb

from contact_register.warehouse import normalize

SQL_DIR = resources.files("contact_register.warehouse") / "sql"
MAX_ROUNDS = 60

# Adjustment (log2) of the prior odds that two records match, which is about 1 / records, and
# the probability thresholds. Tuned on the sandbox world (tests/test_identity.py reports precision and
# recall; `make bench` at 1M records).
PRIOR = -3.0
LINK_P = 0.8
REVIEW_P = 0.2
MAX_BLOCK = 30

FREEMAIL_DOMAINS = (
    "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "hotmail.fi", "live.com", "msn.com",
    "yahoo.com", "icloud.com", "me.com", "kolumbus.fi", "luukku.com", "suomi24.fi", "elisanet.fi",
    "saunalahti.fi", "netti.fi", "welho.com", "protonmail.com", "proton.me", "pp.inet.fi",
)

# Finnish towns as they appear inside company names ("Sisämedia Oulu Oy" is Sisämedia's Oulu
# office, its domain sisamedia.fi), accents stripped and lower case as in organisation keys:
# a selection of the larger municipalities and regional centres.
TOWNS = (
    "helsinki", "espoo", "tampere", "vantaa", "oulu", "turku", "jyvaskyla", "lahti", "kuopio", "pori",
    "kouvola", "joensuu", "lappeenranta", "hameenlinna", "vaasa", "seinajoki", "rovaniemi", "mikkeli",
    "kotka", "salo", "porvoo", "kokkola", "hyvinkaa", "lohja", "jarvenpaa", "rauma", "kajaani", "kerava",
    "savonlinna", "nokia", "kangasala", "ylojarvi", "tuusula", "kirkkonummi", "nurmijarvi", "vihti",
    "raisio", "kaarina", "iisalmi", "kemi", "tornio", "imatra", "raahe", "forssa", "valkeakoski",
    "riihimaki", "sipoo", "mantsala", "aanekoski", "pietarsaari", "maarianhamina", "uusikaupunki",
    "loviisa", "heinola", "kuusamo", "varkaus", "pieksamaki", "kemijarvi", "sodankyla", "inari",
)


def generic_local_parts() -> tuple[str, ...]:
    """Role mailboxes that never link people. IDENTITY_GENERIC_MAILBOXES (comma-separated local
    parts) adds to the built-in list; a leading '=' replaces it."""
    extra = os.environ.get("IDENTITY_GENERIC_MAILBOXES", "").strip()
    base: tuple[str, ...] = normalize.GENERIC_LOCAL_PARTS
    if extra.startswith("="):
        base, extra = (), extra[1:]
    added = tuple(p.strip().lower() for p in extra.split(",") if p.strip())
    return tuple(dict.fromkeys(base + added))


@dataclass
class ResolveResult:
    records: int = 0
    clusters: int = 0
    pairs_compared: int = 0
    links: int = 0
    review: int = 0
    rounds: int = 0


def register(con: duckdb.DuckDBPyConnection) -> None:
    """Functions and macros the identity SQL needs, on a fresh connection."""
    normalize.register(con)
    normalize.register_macros(con)
    _run(con, "identity_macros.sql")


def _run(con: duckdb.DuckDBPyConnection, name: str) -> None:
    con.execute((SQL_DIR / name).read_text(encoding="utf-8"))


def _load_settings(con: duckdb.DuckDBPyConnection, decisions: list[tuple[str, str, str]]) -> None:
    con.execute(
        "CREATE OR REPLACE TEMP TABLE id_params AS SELECT ?::INTEGER AS max_block, ?::DOUBLE AS prior, "
        "?::DOUBLE AS link_p, ?::DOUBLE AS review_p",
        [MAX_BLOCK, PRIOR, LINK_P, REVIEW_P],
    )
    con.execute("CREATE OR REPLACE TEMP TABLE id_generic AS SELECT unnest(?::VARCHAR[]) AS local_part",
                [list(generic_local_parts())])
    con.execute("CREATE OR REPLACE TEMP TABLE id_freemail AS SELECT unnest(?::VARCHAR[]) AS domain",
                [list(FREEMAIL_DOMAINS)])
    con.execute("CREATE OR REPLACE TEMP TABLE id_towns AS SELECT ?::VARCHAR[] AS towns", [list(TOWNS)])
    con.execute("CREATE OR REPLACE TEMP TABLE id_decisions (left_key VARCHAR, right_key VARCHAR, decision VARCHAR)")
    if decisions:
        rows = [(min(a, b), max(a, b), d) for a, b, d in decisions]
        con.executemany("INSERT INTO id_decisions VALUES (?, ?, ?)", rows)
    # The latest decision about a pair wins (the list comes in decision order).
    con.execute("""
        CREATE OR REPLACE TEMP TABLE id_decisions AS
        SELECT left_key, right_key, last(decision ORDER BY seq) AS decision
        FROM (SELECT *, row_number() OVER () AS seq FROM id_decisions) GROUP BY ALL
    """)


def resolve(con: duckdb.DuckDBPyConnection, decisions: list[tuple[str, str, str]] | None = None) -> ResolveResult:
    """Resolve ``staging.source_persons`` into ``staging.record_clusters(record_key, cluster,
    rule, score)`` (cluster: the smallest record key of the component), ``person_identifiers``
    and ``identity_review``. ``decisions``: operator (key, key, 'confirm'|'split') in order."""
    _load_settings(con, decisions or [])
    _run(con, "person_identifiers.sql")
    _run(con, "identity_link.sql")
    result = ResolveResult()
    # Confirmed pairs link even when blocking never compared them.
    con.execute("""
        CREATE OR REPLACE TEMP TABLE id_links AS
        SELECT l, r, rule, probability FROM id_pairs WHERE decision = 'link'
        UNION ALL
        SELECT a.rid, b.rid, 'operator_confirm', 1.0
        FROM id_decisions AS d JOIN id_rec AS a ON a.record_key = d.left_key JOIN id_rec AS b ON b.record_key = d.right_key
        WHERE d.decision = 'confirm'
          AND NOT EXISTS (SELECT 1 FROM id_pairs AS p WHERE p.l = a.rid AND p.r = b.rid)
    """)
    result.rounds = _components(con)
    # A full name at an organisation joins the other records of that name there unless
    # something contradicts (identity_name_org.sql); it needs the components above to tell one
    # person's records from namesakes.
    _run(con, "identity_name_org.sql")
    if con.execute("INSERT INTO id_links SELECT * FROM id_name_org_links").fetchone()[0]:
        result.rounds += _merge_components(con, "id_name_org_links")
    # Nameless records whose address reads as a name join the one person of that name at that
    # company (identity_email_name.sql), among the components so far.
    _run(con, "identity_email_name.sql")
    if con.execute("INSERT INTO id_links SELECT * FROM id_email_name_links").fetchone()[0]:
        result.rounds += _merge_components(con, "id_email_name_links")
    # A split pair that other links still join: the right-hand record loses its automatic
    # links (keeping operator confirmations), then components are recomputed.
    for _ in range(5):
        broken = con.execute("""
            SELECT DISTINCT b.rid FROM id_decisions AS d
            JOIN id_rec AS a ON a.record_key = d.left_key JOIN id_rec AS b ON b.record_key = d.right_key
            JOIN id_label AS la ON la.rid = a.rid JOIN id_label AS lb ON lb.rid = b.rid
            WHERE d.decision = 'split' AND la.c = lb.c
        """).fetchall()
        if not broken:
            break
        con.execute("CREATE OR REPLACE TEMP TABLE id_broken AS SELECT unnest(?::BIGINT[]) AS rid", [[r[0] for r in broken]])
        con.execute("""
            DELETE FROM id_links WHERE rule <> 'operator_confirm'
              AND (l IN (SELECT rid FROM id_broken) OR r IN (SELECT rid FROM id_broken))
        """)
        result.rounds += _components(con)
    _run(con, "identity_clusters.sql")
    counts = con.execute("""
        SELECT (SELECT count(*) FROM id_rec), (SELECT count(DISTINCT cluster) FROM staging.record_clusters),
               (SELECT count(*) FROM id_pairs), (SELECT count(*) FROM id_links), (SELECT count(*) FROM identity_review)
    """).fetchone()
    result.records, result.clusters, result.pairs_compared, result.links, result.review = counts
    return result


def _merge_components(con: duckdb.DuckDBPyConnection, new_links: str) -> int:
    """id_label after adding ``new_links`` (a table of this module's rules), without
    recomputing every component: the new links join whole components, so components of the
    components (a small graph) are merged, and every record takes its merged label (the
    smallest record id, as before)."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE id_merge_links AS
        SELECT coalesce(a.c, e.l) AS l, coalesce(b.c, e.r) AS r
        FROM {new_links} AS e
        LEFT JOIN id_label AS a ON a.rid = e.l LEFT JOIN id_label AS b ON b.rid = e.r
    """)
    rounds = _components(con, "id_merge_links", "id_merge_label")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE id_label AS
        SELECT l.rid, coalesce(m.c, l.c) AS c FROM id_label AS l LEFT JOIN id_merge_label AS m ON m.rid = l.c
        UNION ALL
        SELECT m.rid, m.c FROM id_merge_label AS m WHERE m.rid NOT IN (SELECT rid FROM id_label)
    """)
    return rounds


def _components(con: duckdb.DuckDBPyConnection, links: str = "id_links", labels: str = "id_label") -> int:
    """Connected components of the edges in ``links`` (l, r) into ``labels`` (rid, c): every
    record takes the smallest label among its neighbours, then jumps to its label's label,
    until nothing changes. (Table names are this module's constants, never data.)"""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE id_edge AS
        SELECT l AS a, r AS b FROM {links} UNION ALL SELECT r, l FROM {links};
        CREATE OR REPLACE TEMP TABLE {labels} AS
        SELECT DISTINCT a AS rid, a AS c FROM id_edge;
    """)
    for rounds in range(1, MAX_ROUNDS + 1):
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE id_next AS
            SELECT e.a AS rid, least(min(lb.c), any_value(la.c)) AS c
            FROM id_edge AS e JOIN {labels} AS lb ON lb.rid = e.b JOIN {labels} AS la ON la.rid = e.a
            GROUP BY e.a;
            CREATE OR REPLACE TEMP TABLE id_next AS
            SELECT n.rid, least(n.c, j.c) AS c FROM id_next AS n JOIN id_next AS j ON j.rid = n.c;
        """)
        changed = con.execute(
            f"SELECT count(*) FROM id_next AS n JOIN {labels} AS l USING (rid) WHERE n.c <> l.c"
        ).fetchone()[0]
        con.execute(f"CREATE OR REPLACE TEMP TABLE {labels} AS SELECT * FROM id_next")
        if changed == 0:
            return rounds
    raise RuntimeError("identity components did not converge")


def load_records(con: duckdb.DuckDBPyConnection, rows) -> None:
    """``staging.source_persons`` from an iterable of tuples in build.PERSON_COLUMNS order
    (tests, benchmarks and the batch tool use this; the build unions the staging SQL instead)."""
    con.execute("CREATE SCHEMA IF NOT EXISTS staging")
    con.execute("""
        CREATE OR REPLACE TABLE staging.source_persons (
            system VARCHAR, record_kind VARCHAR, record_id VARCHAR, name VARCHAR, first_name VARCHAR,
            last_name VARCHAR, job_title VARCHAR, emails VARCHAR[], phones VARCHAR[], organization VARCHAR,
            business_id VARCHAR, marketing_status VARCHAR, updated_at TIMESTAMPTZ)
    """)
    con.executemany("INSERT INTO staging.source_persons VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", list(rows))


def pairwise_metrics(con: duckdb.DuckDBPyConnection, truth_table: str = "id_truth") -> dict[str, float | int]:
    """Precision and recall of the pairwise links in ``staging.record_clusters`` against
    ``truth_table(system, record_id, true_person_id)`` (records absent from the truth are left
    out). Counted per group, not per pair, so it is cheap at a million records."""
    row = con.execute(f"""
        WITH j AS (
            SELECT c.cluster, t.true_person_id
            FROM (SELECT cluster, split_part(record_key, ':', 1) AS system,
                         regexp_extract(record_key, '^[^:]*:[^:]*:(.*)$', 1) AS record_id
                  FROM staging.record_clusters) AS c
            JOIN {truth_table} AS t USING (system, record_id)
        ),
        both_ AS (SELECT count(*) AS n FROM j GROUP BY cluster, true_person_id),
        pred AS (SELECT count(*) AS n FROM j GROUP BY cluster),
        true_ AS (SELECT count(*) AS n FROM j GROUP BY true_person_id)
        SELECT (SELECT coalesce(sum(n * (n - 1) / 2), 0) FROM both_),
               (SELECT coalesce(sum(n * (n - 1) / 2), 0) FROM pred),
               (SELECT coalesce(sum(n * (n - 1) / 2), 0) FROM true_),
               (SELECT count(*) FROM j)
    """).fetchone()
    tp, predicted, actual, records = (int(v) for v in row)
    return {
        "records": records, "true_pairs": actual, "predicted_pairs": predicted, "correct_pairs": tp,
        "precision": tp / predicted if predicted else 1.0, "recall": tp / actual if actual else 1.0,
    }
