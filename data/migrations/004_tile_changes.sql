-- Tile invalidation. Every committed change to what the tiles draw leaves
-- here, per tileset, the geometries it touched (old and new), and a NOTIFY
-- on gridmap_tiles when the statement ends. Each server reads the rows it has
-- not seen yet (by transaction snapshot: the rows of transactions that were
-- not visible at its previous read, so a transaction that commits after a
-- later one is never skipped) and drops exactly the cached tiles whose
-- buffered envelope meets one of the geometries, at the zooms where what
-- changed is drawn (tiles.Catalogue.ChangeZooms):
--   kind  in tileset units: the level of the unit (drawn at that level's
--         zooms); in tileset objects: 'object' (single objects, drawn from
--         z14) or the level of a unit whose object count changed (its count
--         point is drawn where objects are counted per unit of that level);
--         NULL: every zoom.
--   geom  NULL: the whole tileset.
-- Rows live an hour: a server that lost its listener for longer clears its
-- cache instead of catching up.
CREATE TABLE tile_changes (
    id         bigserial PRIMARY KEY,
    layer      text NOT NULL,
    kind       text,
    geom       geometry(Geometry, 4326),
    xid        xid8 NOT NULL DEFAULT pg_current_xact_id(),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tile_changes_xid ON tile_changes (xid);
CREATE INDEX tile_changes_created ON tile_changes (created_at);

-- The INSERT that records what a query yields (columns kind and geom) for
-- the given tilesets. Up to tile_changes_bulk_limit() rows are recorded as
-- they are; beyond that (bulk loads) as the extents of the geometries
-- grouped by kind and by the 0.01° cell of their lower-left corner, which
-- bounds what a bulk load writes (a few thousand rows for a city) at the
-- price of dropping some tiles next to the changed ones.
--
-- A trigger's transition tables are visible only to queries run on its own
-- SPI connection, so the triggers EXECUTE the text this returns instead of
-- calling a function that would run it.
CREATE FUNCTION tile_changes_insert(changed text, layers text[], bulk boolean) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN bulk THEN
        'INSERT INTO tile_changes (layer, kind, geom)
         SELECT l, kind, ST_SetSRID(e::geometry, 4326)
         FROM (SELECT kind, ST_Extent(geom) AS e FROM (' || changed || ') c
               GROUP BY kind, floor(ST_XMin(geom) * 100), floor(ST_YMin(geom) * 100)) x,
              unnest(' || quote_literal(layers::text) || '::text[]) l'
    ELSE
        'INSERT INTO tile_changes (layer, kind, geom)
         SELECT l, kind, geom FROM (' || changed || ') c, unnest(' || quote_literal(layers::text) || '::text[]) l'
    END
$$;

-- Above this many changed rows a statement is a bulk load.
CREATE FUNCTION tile_changes_bulk_limit() RETURNS bigint LANGUAGE sql IMMUTABLE AS $$ SELECT 1000::bigint $$;

-- Tell the servers, and prune rows older than an hour (rows another
-- transaction is pruning are left to it: no writer waits on another here).
CREATE FUNCTION tile_changes_notify() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('gridmap_tiles', currval(pg_get_serial_sequence('tile_changes', 'id'))::text);
    DELETE FROM tile_changes WHERE id IN (
        SELECT id FROM tile_changes WHERE created_at < now() - interval '1 hour' FOR UPDATE SKIP LOCKED);
END $$;

-- Units: the current base units a statement added, closed, removed or
-- changed (old and new geometry). They are drawn in the units tileset, and
-- their count points (ST_PointOnSurface, as the tiles draw them) in the
-- objects tileset.
CREATE FUNCTION tile_changes_units() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed text;
    n bigint;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        INSERT INTO tile_changes (layer, geom) VALUES ('units', NULL), ('objects', NULL);
        PERFORM tile_changes_notify();
        RETURN NULL;
    END IF;
    changed := CASE TG_OP
        WHEN 'INSERT' THEN $q$SELECT level AS kind, geom FROM new_rows WHERE layer = 'base' AND valid_to IS NULL$q$
        WHEN 'DELETE' THEN $q$SELECT level AS kind, geom FROM old_rows WHERE layer = 'base' AND valid_to IS NULL$q$
        ELSE $q$
            SELECT o.level AS kind, o.geom FROM old_rows o LEFT JOIN new_rows n ON n.id = o.id
            WHERE o.layer = 'base' AND o.valid_to IS NULL
              AND (n.id IS NULL OR NOT o.geom = n.geom
                   OR (o.layer, o.code, o.level, o.name, o.parent_code, o.valid_to IS NULL)
                      IS DISTINCT FROM (n.layer, n.code, n.level, n.name, n.parent_code, n.valid_to IS NULL))
            UNION ALL
            SELECT n.level, n.geom FROM new_rows n LEFT JOIN old_rows o ON o.id = n.id
            WHERE n.layer = 'base' AND n.valid_to IS NULL
              AND (o.id IS NULL OR NOT o.geom = n.geom
                   OR (o.layer, o.code, o.level, o.name, o.parent_code, o.valid_to IS NULL)
                      IS DISTINCT FROM (n.layer, n.code, n.level, n.name, n.parent_code, n.valid_to IS NULL))$q$
    END;
    EXECUTE 'SELECT count(*) FROM (' || changed || ') c' INTO n;
    IF n = 0 THEN
        RETURN NULL;
    END IF;
    EXECUTE tile_changes_insert(changed, ARRAY['units'], n > tile_changes_bulk_limit());
    -- In the objects tileset a unit is its count point; objects it moves
    -- to another grid are recorded by the objects trigger.
    EXECUTE tile_changes_insert('SELECT kind, ST_PointOnSurface(geom) AS geom FROM (' || changed || ') u',
                                ARRAY['objects'], n > tile_changes_bulk_limit());
    PERFORM tile_changes_notify();
    RETURN NULL;
END $$;

-- Objects: old and new geometries of the objects a statement added,
-- removed or changed in what the tiles show (geometry, class, grid), and
-- the count points (ST_PointOnSurface, as the tiles draw them) of every
-- unit whose object count changed: the grid and its community, street and
-- district, before and after.
CREATE FUNCTION tile_changes_objects() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    objs text;   -- geom, grid_code, moved (its grid count changed) of the changed objects
    changed text;
    n bigint;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        INSERT INTO tile_changes (layer, geom) VALUES ('objects', NULL);
        PERFORM tile_changes_notify();
        RETURN NULL;
    END IF;
    objs := CASE TG_OP
        WHEN 'INSERT' THEN 'SELECT geom, grid_code, true AS moved FROM new_rows'
        WHEN 'DELETE' THEN 'SELECT geom, grid_code, true AS moved FROM old_rows'
        ELSE $q$
            SELECT o.geom, o.grid_code, (n.code IS NULL OR o.grid_code IS DISTINCT FROM n.grid_code) AS moved
            FROM old_rows o LEFT JOIN new_rows n ON n.code = o.code
            WHERE n.code IS NULL OR NOT o.geom = n.geom OR (o.class_code, o.grid_code) IS DISTINCT FROM (n.class_code, n.grid_code)
            UNION ALL
            SELECT n.geom, n.grid_code, (o.code IS NULL OR o.grid_code IS DISTINCT FROM n.grid_code)
            FROM new_rows n LEFT JOIN old_rows o ON o.code = n.code
            WHERE o.code IS NULL OR NOT o.geom = n.geom OR (o.class_code, o.grid_code) IS DISTINCT FROM (n.class_code, n.grid_code)$q$
    END;
    EXECUTE 'SELECT count(*) FROM (' || objs || ') c' INTO n;
    IF n = 0 THEN
        RETURN NULL;
    END IF;
    -- objs twice rather than a materialised CTE: a bulk load of 1.6 M rows
    -- spends 0.9 s here instead of 1.2 s.
    changed := 'SELECT ''object'' AS kind, geom FROM (' || objs || ') ch
        UNION ALL
        SELECT u.level, ST_PointOnSurface(u.geom) FROM units u
        WHERE u.valid_to IS NULL AND u.layer = ''base'' AND u.code IN (
            SELECT left(g.grid_code, k)
            FROM (SELECT DISTINCT grid_code FROM (' || objs || ') ch WHERE moved AND grid_code IS NOT NULL) g, unnest(ARRAY[6, 9, 12, 15]) k)';
    EXECUTE tile_changes_insert(changed, ARRAY['objects'], n > tile_changes_bulk_limit());
    PERFORM tile_changes_notify();
    RETURN NULL;
END $$;

-- A renamed class changes the class_name of every single object drawn.
CREATE FUNCTION tile_changes_classes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM old_rows o JOIN new_rows n ON n.code = o.code WHERE n.name <> o.name) THEN
        INSERT INTO tile_changes (layer, kind, geom) VALUES ('objects', 'object', NULL);
        PERFORM tile_changes_notify();
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER units_tiles_insert AFTER INSERT ON units
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tile_changes_units();
CREATE TRIGGER units_tiles_update AFTER UPDATE ON units
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tile_changes_units();
CREATE TRIGGER units_tiles_delete AFTER DELETE ON units
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION tile_changes_units();
CREATE TRIGGER units_tiles_truncate AFTER TRUNCATE ON units
    FOR EACH STATEMENT EXECUTE FUNCTION tile_changes_units();

CREATE TRIGGER objects_tiles_insert AFTER INSERT ON objects
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tile_changes_objects();
CREATE TRIGGER objects_tiles_update AFTER UPDATE ON objects
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tile_changes_objects();
CREATE TRIGGER objects_tiles_delete AFTER DELETE ON objects
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION tile_changes_objects();
CREATE TRIGGER objects_tiles_truncate AFTER TRUNCATE ON objects
    FOR EACH STATEMENT EXECUTE FUNCTION tile_changes_objects();

CREATE TRIGGER object_classes_tiles_update AFTER UPDATE ON object_classes
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tile_changes_classes();
