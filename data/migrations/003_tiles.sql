-- The first code after every code that starts with c (c's digits read as a
-- number, plus one): "grid_code >= c AND grid_code < gridmap_code_upper(c)"
-- is a B-tree range over all descendants of unit c in any collation.
CREATE FUNCTION gridmap_code_upper(c text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT lpad((c::numeric + 1)::text, length(c), '0')
$$;
