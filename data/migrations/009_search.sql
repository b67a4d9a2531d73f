-- Search (GET /v1/search): substring matches on unit names and event
-- descriptions.
--
-- pg_trgm's GIN indexes serve LIKE/ILIKE '%…%' for patterns of three
-- characters or more. In this cluster's C.UTF-8 locale CJK characters are
-- word characters, so 梅沙街道 has the trigrams "  梅", " 梅沙", "梅沙街",
-- "沙街道", "街道 " (TestSearchTrigramsCJK).
--
-- A pattern of one or two characters has no trigram, and Chinese searches
-- are often that short (梅沙). gridmap_grams(t) is every one- and
-- two-character substring of lower(t); a GIN index on it answers
-- gridmap_grams(col) @> gridmap_grams(q) for such a q, and LIKE rechecks.
-- (pg_bigm would do the same, but is not packaged for this cluster.)
--
-- Codes are matched by prefix on B-tree ranges: objects_pkey, events_pkey,
-- and for units a code index of their own (units_current_code leads with
-- the layer, and a search spans layers).
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE FUNCTION gridmap_grams(t text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT substr(l.s, i, n)), '{}')
    FROM (SELECT lower(t) AS s) l, generate_series(1, char_length(l.s)) i, (VALUES (1), (2)) v(n)
    WHERE i + n - 1 <= char_length(l.s)
$$;

CREATE INDEX units_current_name_trgm ON units USING gin (name gin_trgm_ops) WHERE valid_to IS NULL;
CREATE INDEX units_current_name_grams ON units USING gin (gridmap_grams(name)) WHERE valid_to IS NULL;
CREATE INDEX events_description_trgm ON events USING gin (description gin_trgm_ops);
CREATE INDEX events_description_grams ON events USING gin (gridmap_grams(description));
CREATE INDEX units_current_code_any_layer ON units (code) WHERE valid_to IS NULL;
