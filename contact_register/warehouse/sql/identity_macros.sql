-- Name, organisation and business id normalisation used by person_identifiers.sql and the
-- identity resolver. Plain SQL: these run on every record, so they must be vectorised.

-- Letters only, accents stripped (ä->a, å->a, é->e), hyphens and punctuation split words.
CREATE OR REPLACE MACRO name_tokens(x) AS
    list_filter(string_split(regexp_replace(lower(strip_accents(x)), '[^\pL]+', ' ', 'g'), ' '), lambda t: t <> '');
-- Word order does not matter: "Virtanen Matti" and "Matti Virtanen" get the same key.
CREATE OR REPLACE MACRO name_key(x) AS array_to_string(list_sort(name_tokens(x)), ' ');
-- Legal forms carry no identity: "Oy Sisu Rakennus Ab" and "Sisu Rakennus Oy" are one company.
CREATE OR REPLACE MACRO org_key(x) AS array_to_string(list_filter(
    string_split(regexp_replace(lower(strip_accents(x)), '[^\pL\pN]+', ' ', 'g'), ' '),
    lambda t: t <> '' AND t NOT IN ('oy', 'oyj', 'ab', 'abp', 'ky', 'tmi', 'ry', 'ltd', 'inc', 'gmbh', 'as', 'llc')), ' ');
-- A company's email domain is usually its name run together: "Betoni Lehtonen Oy" and
-- betonilehtonen.fi get the same tag "betonilehtonen".
CREATE OR REPLACE MACRO org_tag(key) AS nullif(replace(key, ' ', ''), '');
CREATE OR REPLACE MACRO domain_tag(domain) AS
    nullif(regexp_replace(regexp_replace(domain, '\.[^.]+$', ''), '[^a-z0-9]', '', 'g'), '');
-- Y-tunnus "1234567-8"; a VAT number "FI12345678" is the same id without the hyphen.
CREATE OR REPLACE MACRO business_id_norm(x) AS CASE
    WHEN regexp_full_match(trim(x), '\d{7}-\d') THEN trim(x)
    WHEN regexp_full_match(upper(replace(trim(x), ' ', '')), 'FI\d{8}')
        THEN substr(upper(replace(trim(x), ' ', '')), 3, 7) || '-' || substr(upper(replace(trim(x), ' ', '')), 10, 1)
    END;
-- The short form of a two-word address: "joonas.laine" and "jlaine" are one person's address
-- and its alias ("anna-liisa.jarvi-hamalainen" -> "ajarvihamalainen"); anything else
-- ("joonas.laine2", "joonas.k.laine") keeps its own form, hyphens removed.
CREATE OR REPLACE MACRO email_alias_form(local) AS
    replace(regexp_replace(local, '^([a-z])[a-z-]*\.([a-z-]+)$', '\1\2'), '-', '');
-- Key of a company address up to that aliasing: "jlaine@itatekniikka.fi".
CREATE OR REPLACE MACRO email_alias_key(email) AS
    email_alias_form(split_part(email, '@', 1)) || '@' || split_part(email, '@', 2);
