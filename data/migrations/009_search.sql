-- Search (GET /v1/search): substring matches on unit names and event
-- descriptions.
--
-- pg_trgm's GIN indexes serve LIKE/ILIKE '%…%' for patterns of three
-- characters or more. In this cluster's C.UTF-8 locale CJK characters are
-- word characters, so 梅沙街道 has the trigrams "  梅", " 梅沙", "梅沙街",
-- "沙街道", "街道 " (TestSearchIndexesCJK).
--
-- A pattern of one or two characters has no trigram, and Chinese searches
-- are often that short (梅沙). A GIN index on the characters of lower(text)
-- (regexp_split_to_array(…, ''), built in C, as cheap to maintain as the
-- trigram index) finds the rows holding every character of such a query;
-- LIKE rechecks them. (pg_bigm would index bigrams, but is not packaged
-- for this cluster, and a bigram function in SQL or PL/pgSQL costs an event
-- report 5 to 30 times what these indexes do: docs/benchmarks.md, Search.)
--
-- Codes are matched by prefix on B-tree ranges: objects_pkey, events_pkey,
-- and for units a code index of their own (units_current_code leads with
-- the layer, and a search spans layers).
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE INDEX units_current_name_trgm ON units USING gin (name gin_trgm_ops) WHERE valid_to IS NULL;
CREATE INDEX units_current_name_chars ON units USING gin (regexp_split_to_array(lower(name), '')) WHERE valid_to IS NULL;
CREATE INDEX events_description_trgm ON events USING gin (description gin_trgm_ops);
CREATE INDEX events_description_chars ON events USING gin (regexp_split_to_array(lower(description), ''));
CREATE INDEX units_current_code_any_layer ON units (code) WHERE valid_to IS NULL;
