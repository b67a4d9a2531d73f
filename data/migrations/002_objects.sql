-- Managed objects (部件, buildings, enterprises) and their class catalogue.
-- The catalogue is data: seeded from data/seed/object_classes.csv at start,
-- extended through the API and imports.
CREATE TABLE object_classes (
    code           text PRIMARY KEY CHECK (code ~ '^[0-9A-Za-z_]{1,32}$'),
    kind           text NOT NULL CHECK (kind IN ('component', 'building', 'enterprise')),
    major          text NOT NULL DEFAULT '',
    major_name     text NOT NULL DEFAULT '',
    minor          text NOT NULL DEFAULT '',
    name           text NOT NULL CHECK (name <> ''),
    geometry_types text[] NOT NULL CHECK (cardinality(geometry_types) > 0 AND geometry_types <@
        ARRAY['Point', 'MultiPoint', 'LineString', 'MultiLineString', 'Polygon', 'MultiPolygon']),
    created_at     timestamptz NOT NULL DEFAULT now(),
    -- A component class code is its 2-digit major and 2-digit minor class.
    CHECK (kind <> 'component' OR (code ~ '^[0-9]{4}$' AND major || minor = code))
);

-- An object belongs to the base grid that covers it (points) or holds the
-- largest share of it (lines, polygons); its ancestors follow from the
-- grid's code. grid_code is NULL for objects outside every grid: they are
-- kept and reported, never dropped.
CREATE TABLE objects (
    code           text PRIMARY KEY,
    -- A known class, checked once per statement by object_classes_require
    -- (a foreign key checks row by row: 5 s of a 1.6 M-row load).
    class_code     text NOT NULL,
    geom           geometry(Geometry, 4326) NOT NULL,
    attrs          jsonb NOT NULL DEFAULT '{}',
    grid_code      text CHECK (grid_code ~ '^[0-9]{15}$'),
    community_code text GENERATED ALWAYS AS (left(grid_code, 12)) STORED,
    street_code    text GENERATED ALWAYS AS (left(grid_code, 9)) STORED,
    district_code  text GENERATED ALWAYS AS (left(grid_code, 6)) STORED,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX objects_geom ON objects USING gist (geom);
-- "within a unit" is a range on the grid code: every descendant's code
-- starts with the unit's.
CREATE INDEX objects_grid ON objects (grid_code, code);
CREATE INDEX objects_unassigned ON objects (code) WHERE grid_code IS NULL;

-- Counts per grid and class, kept exact by statement-level triggers (one
-- aggregate per statement, so a bulk load pays once). '' is "unassigned".
-- Statistics for any unit sum the rows whose grid code starts with its code.
CREATE TABLE object_counts (
    grid_code  text NOT NULL,
    class_code text NOT NULL,
    n          bigint NOT NULL CHECK (n >= 0),
    PRIMARY KEY (grid_code, class_code)
);

-- Every class code must be in the catalogue: the statement-level stand-in
-- for a foreign key.
CREATE FUNCTION object_classes_require(codes text[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    unknown text;
BEGIN
    SELECT c INTO unknown FROM unnest(codes) c
    WHERE NOT EXISTS (SELECT 1 FROM object_classes WHERE code = c) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'unknown object class %', unknown USING ERRCODE = 'foreign_key_violation';
    END IF;
END $$;

CREATE FUNCTION object_counts_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM object_classes_require(ARRAY(SELECT DISTINCT class_code FROM new_rows));
    INSERT INTO object_counts (grid_code, class_code, n)
    SELECT coalesce(grid_code, ''), class_code, count(*) FROM new_rows GROUP BY 1, 2
    ON CONFLICT (grid_code, class_code) DO UPDATE SET n = object_counts.n + EXCLUDED.n;
    RETURN NULL;
END $$;

CREATE FUNCTION object_counts_remove() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE object_counts c SET n = c.n - d.n
    FROM (SELECT coalesce(grid_code, '') AS grid_code, class_code, count(*) AS n FROM old_rows GROUP BY 1, 2) d
    WHERE c.grid_code = d.grid_code AND c.class_code = d.class_code;
    DELETE FROM object_counts c
    USING (SELECT DISTINCT coalesce(grid_code, '') AS grid_code, class_code FROM old_rows) o
    WHERE c.grid_code = o.grid_code AND c.class_code = o.class_code AND c.n = 0;
    RETURN NULL;
END $$;

-- Decreases are applied with UPDATE and increases with the upsert:
-- PostgreSQL checks a proposed row's CHECK constraints before it looks for
-- a conflict, so an upserted decrease (n < 0) would fail CHECK (n >= 0).
-- Emptied rows are deleted by key, not by scanning the table.
CREATE FUNCTION object_counts_move() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM object_classes_require(ARRAY(SELECT DISTINCT class_code FROM new_rows));
    WITH delta AS (
        SELECT coalesce(grid_code, '') AS grid_code, class_code, -count(*) AS n FROM old_rows GROUP BY 1, 2
        UNION ALL
        SELECT coalesce(grid_code, ''), class_code, count(*) FROM new_rows GROUP BY 1, 2
    ), net AS (
        SELECT grid_code, class_code, sum(n)::bigint AS n FROM delta GROUP BY 1, 2 HAVING sum(n) <> 0
    ), decrease AS (
        UPDATE object_counts c SET n = c.n + net.n
        FROM net
        WHERE net.n < 0 AND c.grid_code = net.grid_code AND c.class_code = net.class_code
    )
    INSERT INTO object_counts (grid_code, class_code, n)
    SELECT grid_code, class_code, n FROM net WHERE n > 0
    ON CONFLICT (grid_code, class_code) DO UPDATE SET n = object_counts.n + EXCLUDED.n;
    DELETE FROM object_counts c
    USING (SELECT DISTINCT coalesce(grid_code, '') AS grid_code, class_code FROM old_rows) o
    WHERE c.grid_code = o.grid_code AND c.class_code = o.class_code AND c.n = 0;
    RETURN NULL;
END $$;

-- A class in use cannot be removed or renamed.
CREATE FUNCTION object_classes_in_use() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM objects WHERE class_code = OLD.code) THEN
        RAISE EXCEPTION 'object class % is in use', OLD.code USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END $$;
CREATE TRIGGER object_classes_keep BEFORE DELETE OR UPDATE OF code ON object_classes
    FOR EACH ROW EXECUTE FUNCTION object_classes_in_use();

CREATE TRIGGER objects_counts_insert AFTER INSERT ON objects
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION object_counts_add();
CREATE TRIGGER objects_counts_delete AFTER DELETE ON objects
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION object_counts_remove();
CREATE TRIGGER objects_counts_update AFTER UPDATE ON objects
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION object_counts_move();

-- The grid an object belongs to: for points the lowest-coded grid that
-- covers it (the locate edge rule); for lines and polygons the grid that
-- holds the largest share of its length or area (MultiPoints: of its
-- points), ties to the lowest code; NULL outside every grid.
CREATE FUNCTION gridmap_assign(g geometry) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT u.code
    FROM units u
    WHERE u.valid_to IS NULL AND u.layer = 'base' AND u.level = 'grid'
      AND u.geom && g AND ST_Intersects(u.geom, g)
    ORDER BY CASE
                 WHEN GeometryType(g) = 'POINT' THEN 0
                 WHEN ST_Dimension(g) = 0 THEN -ST_NumGeometries(ST_Intersection(u.geom, g))
                 WHEN ST_Dimension(g) = 1 THEN -ST_Length(ST_Intersection(u.geom, g))
                 ELSE -ST_Area(ST_Intersection(u.geom, g))
             END,
             u.code
    LIMIT 1
$$;
