-- Search (GET /v1/search): substring matches on unit names and event
-- descriptions. pg_trgm's GIN indexes serve LIKE/ILIKE '%…%' for patterns
-- of three characters or more; in this cluster's C.UTF-8 locale CJK
-- characters count as word characters, so 梅沙街道 has the trigrams
-- "  梅", " 梅沙", "梅沙街", "沙街道", "街道 ". A pattern of one or two
-- characters has no trigram and is answered by scanning (see
-- docs/benchmarks.md, Search). Codes are matched by prefix on the existing
-- B-tree indexes (units_current_code, objects_pkey, events_pkey).
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE INDEX units_current_name_trgm ON units USING gin (name gin_trgm_ops) WHERE valid_to IS NULL;
CREATE INDEX events_description_trgm ON events USING gin (description gin_trgm_ops);
