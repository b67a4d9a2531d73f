-- Events (事件): reports located to a grid, routed to a department with a
-- working-time deadline, driven through the closed loop, logged, and fed
-- to live subscribers. Classes, departments and the working calendar are
-- data, seeded from data/seed/*.csv and edited through the API.

CREATE TABLE departments (
    code       text PRIMARY KEY CHECK (code ~ '^[0-9A-Za-z_-]{1,32}$'),
    name       text NOT NULL CHECK (name <> ''),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Per class: the responsible department and the deadline in working time.
CREATE TABLE event_classes (
    code            text PRIMARY KEY CHECK (code ~ '^[0-9A-Za-z_]{1,32}$'),
    major           text NOT NULL DEFAULT '',
    major_name      text NOT NULL DEFAULT '',
    minor           text NOT NULL DEFAULT '',
    name            text NOT NULL CHECK (name <> ''),
    department_code text NOT NULL REFERENCES departments (code),
    limit_amount    int NOT NULL CHECK (limit_amount BETWEEN 1 AND 10000),
    limit_unit      text NOT NULL CHECK (limit_unit IN ('working_hours', 'working_days')),
    version         int NOT NULL DEFAULT 1,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- The working calendar: Monday to Friday are working days and weekends are
-- not, unless a row here says otherwise (holidays; makeup working days).
CREATE TABLE work_calendar (
    day  date PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('holiday', 'workday')),
    name text NOT NULL DEFAULT ''
);

-- The working periods of a working day and the city's time zone (one row).
CREATE TABLE work_hours (
    id       boolean PRIMARY KEY DEFAULT true CHECK (id),
    timezone text NOT NULL DEFAULT 'Asia/Shanghai',
    periods  text NOT NULL DEFAULT '09:00-12:00,14:00-18:00'
);
INSERT INTO work_hours DEFAULT VALUES;

-- Servers keep classes, departments and the calendar in memory and reload
-- them when this version moves: every reporting transaction reads it, so a
-- deadline is never computed from a stale rule, on any server.
CREATE TABLE event_config (
    id      boolean PRIMARY KEY DEFAULT true CHECK (id),
    version bigint NOT NULL DEFAULT 1
);
INSERT INTO event_config DEFAULT VALUES;

CREATE FUNCTION event_config_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE event_config SET version = version + 1;
    RETURN NULL;
END $$;
CREATE TRIGGER departments_config AFTER INSERT OR UPDATE OR DELETE ON departments
    FOR EACH STATEMENT EXECUTE FUNCTION event_config_bump();
CREATE TRIGGER event_classes_config AFTER INSERT OR UPDATE OR DELETE ON event_classes
    FOR EACH STATEMENT EXECUTE FUNCTION event_config_bump();
CREATE TRIGGER work_calendar_config AFTER INSERT OR UPDATE OR DELETE ON work_calendar
    FOR EACH STATEMENT EXECUTE FUNCTION event_config_bump();
CREATE TRIGGER work_hours_config AFTER INSERT OR UPDATE OR DELETE ON work_hours
    FOR EACH STATEMENT EXECUTE FUNCTION event_config_bump();

CREATE FUNCTION gridmap_open_status(status text) RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT status IN ('reported', 'registered', 'dispatched', 'handling', 'returned')
$$;

-- An event: code = district (6) + local report date (8) + daily sequence (6).
-- grid_code is where it was located on arrival; location keeps the whole
-- chain and the other layers' units as they were then (boundaries move).
CREATE TABLE events (
    code            text PRIMARY KEY CHECK (code ~ '^[0-9]{20}$'),
    class_code      text NOT NULL REFERENCES event_classes (code),
    status          text NOT NULL CHECK (status IN ('reported', 'registered', 'dispatched', 'handling',
                                                    'handled', 'verified', 'closed', 'rejected', 'returned')),
    geom            geometry(Point, 4326) NOT NULL,
    crs             text NOT NULL DEFAULT 'wgs84',
    input_lon       double precision NOT NULL,
    input_lat       double precision NOT NULL,
    grid_code       text NOT NULL CHECK (grid_code ~ '^[0-9]{15}$'),
    community_code  text GENERATED ALWAYS AS (left(grid_code, 12)) STORED,
    street_code     text GENERATED ALWAYS AS (left(grid_code, 9)) STORED,
    district_code   text GENERATED ALWAYS AS (left(grid_code, 6)) STORED,
    location        jsonb NOT NULL,
    department_code text NOT NULL REFERENCES departments (code),
    description     text NOT NULL DEFAULT '',
    source          text NOT NULL,
    reporter        text NOT NULL DEFAULT '',
    media           text[] NOT NULL DEFAULT '{}',
    occurred_at     timestamptz,
    reported_at     timestamptz NOT NULL,
    deadline        timestamptz NOT NULL,
    handled_at      timestamptz, -- first time it reached handled
    closed_at       timestamptz, -- closed or rejected
    updated_at      timestamptz NOT NULL,
    version         int NOT NULL DEFAULT 1
);
CREATE INDEX events_geom ON events USING gist (geom);
CREATE INDEX events_grid ON events (grid_code, code);
CREATE INDEX events_reported ON events (reported_at, code);
CREATE INDEX events_status ON events (status, reported_at, code);
-- Overdue is derived (an open event past its deadline): this finds them.
CREATE INDEX events_open_deadline ON events (deadline, code)
    WHERE status IN ('reported', 'registered', 'dispatched', 'handling', 'returned');

-- Every transition, the report first (n = 1).
CREATE TABLE event_log (
    event_code      text NOT NULL REFERENCES events (code) ON DELETE CASCADE,
    n               int NOT NULL,
    from_status     text,
    to_status       text NOT NULL,
    actor           text NOT NULL,
    note            text NOT NULL DEFAULT '',
    department_code text,
    at              timestamptz NOT NULL,
    PRIMARY KEY (event_code, n)
);

-- Idempotency-Key → the event it created and a hash of the request body.
-- The key is inserted first in the reporting transaction: a second request
-- with the same key waits on the first's row and then answers its event.
CREATE TABLE event_idempotency (
    key        text PRIMARY KEY,
    body_hash  bytea NOT NULL,
    event_code text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX event_idempotency_created ON event_idempotency (created_at);

-- The last sequence number given per district and local date.
CREATE TABLE event_code_seq (
    district text NOT NULL,
    day      date NOT NULL,
    last     int NOT NULL,
    PRIMARY KEY (district, day)
);

-- The live feed (a transactional outbox): one row per creation and
-- transition. seq is taken under an advisory lock held to commit, so seq
-- order is commit order and a reader that has seen seq n has seen every
-- committed row below it: "seq > last" never skips one (SSE resume).
CREATE SEQUENCE event_feed_seq;
CREATE TABLE event_feed (
    seq        bigint PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    kind       text NOT NULL CHECK (kind IN ('created', 'transition')),
    event_code text NOT NULL,
    status     text NOT NULL,
    from_status text,
    class_code text NOT NULL,
    grid_code  text NOT NULL,
    lon        double precision NOT NULL,
    lat        double precision NOT NULL,
    body       jsonb NOT NULL
);
CREATE INDEX event_feed_at ON event_feed (at);
-- The highest seq pruned: a subscriber resuming from below it has missed
-- rows (a gap above it is an aborted transaction's, and lost nothing).
CREATE TABLE event_feed_pruned (
    id      boolean PRIMARY KEY DEFAULT true CHECK (id),
    through bigint NOT NULL DEFAULT 0
);
INSERT INTO event_feed_pruned DEFAULT VALUES;

-- Events per grid and status, kept exact by statement triggers, for the
-- low-zoom count tiles.
CREATE TABLE event_counts (
    grid_code text NOT NULL,
    status    text NOT NULL,
    n         bigint NOT NULL CHECK (n >= 0),
    PRIMARY KEY (grid_code, status)
);

CREATE FUNCTION event_counts_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO event_counts (grid_code, status, n)
    SELECT grid_code, status, count(*) FROM new_rows GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (grid_code, status) DO UPDATE SET n = event_counts.n + EXCLUDED.n;
    RETURN NULL;
END $$;

CREATE FUNCTION event_counts_remove() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE event_counts c SET n = c.n - d.n
    FROM (SELECT grid_code, status, count(*) AS n FROM old_rows GROUP BY 1, 2) d
    WHERE c.grid_code = d.grid_code AND c.status = d.status;
    RETURN NULL;
END $$;

CREATE FUNCTION event_counts_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Net change per (grid, status): decrements as an UPDATE (an INSERT
    -- candidate with a negative n would fail the CHECK before ON CONFLICT
    -- is considered), increments as an upsert; they touch different rows.
    WITH delta AS (
        SELECT grid_code, status, sum(d)::bigint AS d FROM (
            SELECT grid_code, status, 1 AS d FROM new_rows
            UNION ALL
            SELECT grid_code, status, -1 FROM old_rows) x
        GROUP BY 1, 2 HAVING sum(d) <> 0),
    dec AS (
        UPDATE event_counts c SET n = c.n + x.d FROM delta x
        WHERE x.d < 0 AND c.grid_code = x.grid_code AND c.status = x.status)
    INSERT INTO event_counts (grid_code, status, n)
    SELECT grid_code, status, d FROM delta WHERE d > 0 ORDER BY 1, 2
    ON CONFLICT (grid_code, status) DO UPDATE SET n = event_counts.n + EXCLUDED.n;
    RETURN NULL;
END $$;

CREATE TRIGGER events_counts_insert AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION event_counts_add();
CREATE TRIGGER events_counts_update AFTER UPDATE ON events
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION event_counts_change();
CREATE TRIGGER events_counts_delete AFTER DELETE ON events
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION event_counts_remove();
CREATE FUNCTION event_counts_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE event_counts;
    RETURN NULL;
END $$;
CREATE TRIGGER events_counts_truncate AFTER TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION event_counts_truncate();

-- Tiles: the events tileset draws single events (kind 'event') and per-unit
-- counts by status below (kind = the unit's level). A statement records
-- the old and new points of the events it added, removed or changed in what
-- the tiles show, and the count points of every unit whose counts changed.
CREATE FUNCTION tile_changes_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    evs text;   -- geom, grid_code, counted (its unit counts changed) of the changed events
    changed text;
    n bigint;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        INSERT INTO tile_changes (layer, geom) VALUES ('events', NULL);
        PERFORM tile_changes_notify();
        RETURN NULL;
    END IF;
    evs := CASE TG_OP
        WHEN 'INSERT' THEN 'SELECT geom, grid_code, true AS counted FROM new_rows'
        WHEN 'DELETE' THEN 'SELECT geom, grid_code, true AS counted FROM old_rows'
        ELSE $q$
            SELECT o.geom, o.grid_code, (n.code IS NULL OR (o.grid_code, o.status, o.deadline) IS DISTINCT FROM (n.grid_code, n.status, n.deadline)) AS counted
            FROM old_rows o LEFT JOIN new_rows n ON n.code = o.code
            WHERE n.code IS NULL OR NOT o.geom = n.geom
               OR (o.class_code, o.grid_code, o.status, o.deadline) IS DISTINCT FROM (n.class_code, n.grid_code, n.status, n.deadline)
            UNION ALL
            SELECT n.geom, n.grid_code, (o.code IS NULL OR (o.grid_code, o.status, o.deadline) IS DISTINCT FROM (n.grid_code, n.status, n.deadline))
            FROM new_rows n LEFT JOIN old_rows o ON o.code = n.code
            WHERE o.code IS NULL OR NOT o.geom = n.geom
               OR (o.class_code, o.grid_code, o.status, o.deadline) IS DISTINCT FROM (n.class_code, n.grid_code, n.status, n.deadline)$q$
    END;
    EXECUTE 'SELECT count(*) FROM (' || evs || ') c' INTO n;
    IF n = 0 THEN
        RETURN NULL;
    END IF;
    changed := 'SELECT ''event'' AS kind, geom FROM (' || evs || ') ch
        UNION ALL
        SELECT u.level, ST_PointOnSurface(u.geom) FROM units u
        WHERE u.valid_to IS NULL AND u.layer = ''base'' AND u.code IN (
            SELECT left(g.grid_code, k)
            FROM (SELECT DISTINCT grid_code FROM (' || evs || ') ch WHERE counted) g, unnest(ARRAY[6, 9, 12, 15]) k)';
    EXECUTE tile_changes_insert(changed, ARRAY['events'], n > tile_changes_bulk_limit());
    PERFORM tile_changes_notify();
    RETURN NULL;
END $$;

CREATE TRIGGER events_tiles_insert AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tile_changes_events();
CREATE TRIGGER events_tiles_update AFTER UPDATE ON events
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tile_changes_events();
CREATE TRIGGER events_tiles_delete AFTER DELETE ON events
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION tile_changes_events();
CREATE TRIGGER events_tiles_truncate AFTER TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION tile_changes_events();

-- Units: the events tileset draws their count points (with names and
-- codes) as the objects tileset does.
CREATE OR REPLACE FUNCTION tile_changes_units() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed text;
    n bigint;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        INSERT INTO tile_changes (layer, geom) VALUES ('units', NULL), ('objects', NULL), ('events', NULL);
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
    -- In the objects and events tilesets a unit is its count point;
    -- objects it moves to another grid are recorded by the objects trigger.
    EXECUTE tile_changes_insert('SELECT kind, ST_PointOnSurface(geom) AS geom FROM (' || changed || ') u',
                                ARRAY['objects', 'events'], n > tile_changes_bulk_limit());
    PERFORM tile_changes_notify();
    RETURN NULL;
END $$;

-- A renamed class changes the class_name drawn on every event.
CREATE FUNCTION tile_changes_event_classes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM old_rows o JOIN new_rows n ON n.code = o.code WHERE n.name <> o.name) THEN
        INSERT INTO tile_changes (layer, kind, geom) VALUES ('events', 'event', NULL);
        PERFORM tile_changes_notify();
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER event_classes_tiles_update AFTER UPDATE ON event_classes
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tile_changes_event_classes();
