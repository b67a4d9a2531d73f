-- Events, their log and the live feed, partitioned by month (native
-- declarative partitioning), converted in place with their rows inside
-- this migration's transaction. docs/design-notes.md, "Partitioned
-- events", says why the keys are what they are; in short:
--
--  * events and event_log by reported_on, the local report date that the
--    event code carries (district 6 + date 8 + number 6). A unique index
--    of a partitioned table must hold the partition key, so the primary
--    key is (code, reported_on); a CHECK ties reported_on to the code's
--    date, which makes (code, reported_on) unique exactly when code is.
--    A lookup by code knows its partition from the code alone, and an
--    event's log lies in the partition of the same month as the event.
--  * event_feed by seq, whose value carries the UTC month it was given in:
--    yyyymm * 10^10 + a global counter. "seq > cursor", the feed's one
--    read, then prunes to the cursor's month and later, the primary key
--    stays (seq), and dropping a month's partition is the retention.

-- The local report date of an event code.
CREATE FUNCTION gridmap_event_day(code text) RETURNS date LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT make_date(substr(code, 7, 4)::int, substr(code, 11, 2)::int, substr(code, 13, 2)::int)
$$;

-- The first seq of a month (any day of it) and the month of a seq.
CREATE FUNCTION gridmap_feed_month_base(month date) RETURNS bigint LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT (extract(year FROM month)::bigint * 100 + extract(month FROM month)::bigint) * 10000000000
$$;

-- ---------------------------------------------------------------- events
DROP INDEX events_geom, events_grid, events_reported, events_status, events_open_deadline,
    events_description_trgm, events_description_chars;
ALTER TABLE event_log DROP CONSTRAINT event_log_event_code_fkey;
ALTER TABLE events DROP CONSTRAINT events_pkey;
ALTER TABLE events RENAME TO events_unpartitioned;
ALTER TABLE event_log DROP CONSTRAINT event_log_pkey;
ALTER TABLE event_log RENAME TO event_log_unpartitioned;

CREATE TABLE events (
    code            text NOT NULL CONSTRAINT events_code_check CHECK (code ~ '^[0-9]{20}$'),
    reported_on     date NOT NULL,
    class_code      text NOT NULL CONSTRAINT events_class_code_fkey REFERENCES event_classes (code),
    status          text NOT NULL CONSTRAINT events_status_check CHECK (status IN ('reported', 'registered', 'dispatched', 'handling',
                                                    'handled', 'verified', 'closed', 'rejected', 'returned')),
    geom            geometry(Point, 4326) NOT NULL,
    crs             text NOT NULL DEFAULT 'wgs84',
    input_lon       double precision NOT NULL,
    input_lat       double precision NOT NULL,
    grid_code       text NOT NULL CONSTRAINT events_grid_code_check CHECK (grid_code ~ '^[0-9]{15}$'),
    community_code  text GENERATED ALWAYS AS (left(grid_code, 12)) STORED,
    street_code     text GENERATED ALWAYS AS (left(grid_code, 9)) STORED,
    district_code   text GENERATED ALWAYS AS (left(grid_code, 6)) STORED,
    location        jsonb NOT NULL,
    department_code text NOT NULL CONSTRAINT events_department_code_fkey REFERENCES departments (code),
    description     text NOT NULL DEFAULT '',
    source          text NOT NULL,
    reporter        text NOT NULL DEFAULT '',
    media           text[] NOT NULL DEFAULT '{}',
    occurred_at     timestamptz,
    reported_at     timestamptz NOT NULL,
    deadline        timestamptz NOT NULL,
    handled_at      timestamptz,
    closed_at       timestamptz,
    updated_at      timestamptz NOT NULL,
    version         int NOT NULL DEFAULT 1,
    CONSTRAINT events_reported_on_code CHECK (reported_on = gridmap_event_day(code)),
    PRIMARY KEY (code, reported_on)
) PARTITION BY RANGE (reported_on);

CREATE TABLE event_log (
    event_code      text NOT NULL,
    reported_on     date NOT NULL, -- the event's
    n               int NOT NULL,
    from_status     text,
    to_status       text NOT NULL,
    actor           text NOT NULL,
    note            text NOT NULL DEFAULT '',
    department_code text,
    at              timestamptz NOT NULL,
    PRIMARY KEY (event_code, reported_on, n)
) PARTITION BY RANGE (reported_on);

-- The partitions of the months of first to last (any days of them) not
-- made yet, for events and event_log alike; how many months were added.
-- A partition is made empty and attached (SHARE UPDATE EXCLUSIVE on the
-- parent, which lets reads and writes go on) rather than made with
-- PARTITION OF (ACCESS EXCLUSIVE, which queues every query behind the
-- longest running one). Callers serialise on an advisory lock, so two
-- servers starting at once do not both make a month.
CREATE FUNCTION gridmap_event_partitions(first date, last date) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    m date := date_trunc('month', first)::date;
    made int := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('gridmap.partitions'));
    WHILE m <= last LOOP
        IF to_regclass(format('events_%s', to_char(m, 'YYYYMM'))) IS NULL THEN
            EXECUTE format('CREATE TABLE %I (LIKE events INCLUDING DEFAULTS INCLUDING GENERATED INCLUDING CONSTRAINTS)',
                           'events_' || to_char(m, 'YYYYMM'));
            EXECUTE format('ALTER TABLE events ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                           'events_' || to_char(m, 'YYYYMM'), m, (m + interval '1 month')::date);
            EXECUTE format('CREATE TABLE %I (LIKE event_log INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                           'event_log_' || to_char(m, 'YYYYMM'));
            EXECUTE format('ALTER TABLE event_log ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                           'event_log_' || to_char(m, 'YYYYMM'), m, (m + interval '1 month')::date);
            -- A log entry's event is in the same month's partition. The key
            -- goes from partition to partition, not from parent to parent:
            -- a check against the partitioned events runs a pruned plan of
            -- every partition per row, which made a batch of 16 reports
            -- 0.8-1 ms dearer (docs/benchmarks.md); against one partition it
            -- is the index probe it was before partitioning.
            EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I FOREIGN KEY (event_code, reported_on) REFERENCES %I (code, reported_on) ON DELETE CASCADE',
                           'event_log_' || to_char(m, 'YYYYMM'), 'event_log_' || to_char(m, 'YYYYMM') || '_event_fkey',
                           'events_' || to_char(m, 'YYYYMM'));
            made := made + 1;
        END IF;
        m := (m + interval '1 month')::date;
    END LOOP;
    RETURN made;
END $$;

SELECT gridmap_event_partitions(min(d), max(d))
FROM (SELECT gridmap_event_day(code) AS d FROM events_unpartitioned) e
HAVING count(*) > 0;

INSERT INTO events (code, reported_on, class_code, status, geom, crs, input_lon, input_lat, grid_code, location,
    department_code, description, source, reporter, media, occurred_at, reported_at, deadline, handled_at, closed_at,
    updated_at, version)
SELECT code, gridmap_event_day(code), class_code, status, geom, crs, input_lon, input_lat, grid_code, location,
    department_code, description, source, reporter, media, occurred_at, reported_at, deadline, handled_at, closed_at,
    updated_at, version
FROM events_unpartitioned;
INSERT INTO event_log (event_code, reported_on, n, from_status, to_status, actor, note, department_code, at)
SELECT event_code, gridmap_event_day(event_code), n, from_status, to_status, actor, note, department_code, at
FROM event_log_unpartitioned;
DROP TABLE event_log_unpartitioned;
-- Its triggers go with it; event_counts already counts the rows copied.
DROP TABLE events_unpartitioned;

-- Indexes after the rows (one sort per index, not a descent per row);
-- each is made on every partition, now and when one is attached.
CREATE INDEX events_geom ON events USING gist (geom);
CREATE INDEX events_grid ON events (grid_code, code);
CREATE INDEX events_reported ON events (reported_at, code);
CREATE INDEX events_status ON events (status, reported_at, code);
-- Overdue is derived (an open event past its deadline): this finds them.
CREATE INDEX events_open_deadline ON events (deadline, code)
    WHERE status IN ('reported', 'registered', 'dispatched', 'handling', 'returned');
CREATE INDEX events_description_trgm ON events USING gin (description gin_trgm_ops);
CREATE INDEX events_description_chars ON events USING gin (regexp_split_to_array(lower(description), ''));

-- The statement triggers of 005, on the partitioned table (statement
-- triggers fire for the table a statement names; their transition tables
-- hold the rows of every partition it touched).
CREATE TRIGGER events_counts_insert AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION event_counts_add();
CREATE TRIGGER events_counts_update AFTER UPDATE ON events
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION event_counts_change();
CREATE TRIGGER events_counts_delete AFTER DELETE ON events
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION event_counts_remove();
CREATE TRIGGER events_counts_truncate AFTER TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION event_counts_truncate();
CREATE TRIGGER events_tiles_insert AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tile_changes_events();
CREATE TRIGGER events_tiles_update AFTER UPDATE ON events
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tile_changes_events();
CREATE TRIGGER events_tiles_delete AFTER DELETE ON events
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION tile_changes_events();
CREATE TRIGGER events_tiles_truncate AFTER TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION tile_changes_events();

-- ------------------------------------------------------------ event_feed
DROP INDEX event_feed_at, event_feed_units;
ALTER TABLE event_feed DROP CONSTRAINT event_feed_pkey;
ALTER TABLE event_feed RENAME TO event_feed_unpartitioned;

CREATE TABLE event_feed (
    seq         bigint PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    kind        text NOT NULL CONSTRAINT event_feed_kind_check CHECK (kind IN ('created', 'transition', 'unit')),
    event_code  text,
    status      text,
    from_status text,
    class_code  text,
    grid_code   text,
    lon         double precision,
    lat         double precision,
    body        jsonb NOT NULL,
    layer       text,
    codes       text[],
    bbox        double precision[],
    CONSTRAINT event_feed_shape CHECK (CASE WHEN kind = 'unit'
        THEN layer IS NOT NULL AND codes IS NOT NULL AND cardinality(bbox) = 4
        ELSE event_code IS NOT NULL AND status IS NOT NULL AND class_code IS NOT NULL AND grid_code IS NOT NULL
             AND lon IS NOT NULL AND lat IS NOT NULL END)
) PARTITION BY RANGE (seq);
CREATE INDEX event_feed_at ON event_feed (at);
-- GET /v1/units/changes reads only the unit entries.
CREATE INDEX event_feed_units ON event_feed (seq) WHERE kind = 'unit';

-- The month whose seqs are given now: it only moves forward (a clock set
-- back across the 1st would otherwise give seqs below ones already given,
-- which a reader past them would never see).
CREATE TABLE event_feed_month (
    id    boolean PRIMARY KEY DEFAULT true CHECK (id),
    month date NOT NULL
);
INSERT INTO event_feed_month (month) VALUES (date_trunc('month', now() AT TIME ZONE 'UTC')::date);

-- The counter part of seq: ten digits, and an error rather than a seq in
-- the next month's range once they are used up.
ALTER SEQUENCE event_feed_seq MAXVALUE 9999999999;

-- The base of the seqs given now (add nextval('event_feed_seq')): call it
-- under the feed lock, once per statement ((SELECT event_feed_seq_base())).
CREATE FUNCTION event_feed_seq_base() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    m date := date_trunc('month', clock_timestamp() AT TIME ZONE 'UTC')::date;
    cur date;
BEGIN
    SELECT month INTO cur FROM event_feed_month;
    IF m > cur THEN
        UPDATE event_feed_month SET month = m;
    ELSE
        m := cur;
    END IF;
    RETURN gridmap_feed_month_base(m);
END $$;

-- The feed partitions of the months of first to last not made yet.
CREATE FUNCTION gridmap_feed_partitions(first date, last date) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    m date := date_trunc('month', first)::date;
    made int := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('gridmap.partitions'));
    WHILE m <= last LOOP
        IF to_regclass(format('event_feed_%s', to_char(m, 'YYYYMM'))) IS NULL THEN
            EXECUTE format('CREATE TABLE %I (LIKE event_feed INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                           'event_feed_' || to_char(m, 'YYYYMM'));
            EXECUTE format('ALTER TABLE event_feed ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)',
                           'event_feed_' || to_char(m, 'YYYYMM'), gridmap_feed_month_base(m),
                           gridmap_feed_month_base((m + interval '1 month')::date));
            made := made + 1;
        END IF;
        m := (m + interval '1 month')::date;
    END LOOP;
    RETURN made;
END $$;

-- The rows of before: their seqs (below 10^10) stay what clients hold as
-- Last-Event-ID, in a partition of their own below the first month's.
CREATE TABLE event_feed_before (LIKE event_feed INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
DO $$
BEGIN
    EXECUTE format('ALTER TABLE event_feed ATTACH PARTITION event_feed_before FOR VALUES FROM (MINVALUE) TO (%s)',
                   gridmap_feed_month_base((SELECT month FROM event_feed_month)));
END $$;
INSERT INTO event_feed (seq, at, kind, event_code, status, from_status, class_code, grid_code, lon, lat, body, layer, codes, bbox)
SELECT seq, at, kind, event_code, status, from_status, class_code, grid_code, lon, lat, body, layer, codes, bbox
FROM event_feed_unpartitioned;
DROP TABLE event_feed_unpartitioned;

-- Partitions ahead: for events and their log, this month (and the local
-- date's, which may be a day behind UTC's) and the next `months`; for the
-- feed this month and the next only: every month of the feed after a
-- follower's cursor is in the plan of its read (an empty one too), and the
-- read runs on every commit's notice. The servers call it on start (after
-- migrating) and every hour, a month before the next is needed.
CREATE FUNCTION gridmap_partitions_ahead(months int) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    today date := (now() AT TIME ZONE 'UTC')::date;
    month date := greatest(today, (SELECT e.month FROM event_feed_month e));
BEGIN
    RETURN gridmap_event_partitions(today - 1, (today + make_interval(months => months))::date)
         + gridmap_feed_partitions(month, (month + interval '1 month')::date);
END $$;
SELECT gridmap_partitions_ahead(3);

-- Retention of the feed: drops the partitions wholly before the month
-- `months` back from this one (months = 0 keeps this month only), and
-- records the highest seq dropped as pruned (a Last-Event-ID below it is
-- told it missed entries). Events and their logs are records and stay.
CREATE FUNCTION gridmap_feed_retain(months int) RETURNS TABLE (dropped text, entries bigint, max_seq bigint) LANGUAGE plpgsql AS $$
DECLARE
    keep bigint;
    p record;
BEGIN
    IF months < 0 THEN
        RAISE EXCEPTION 'feed retention of % months: at least 0', months USING ERRCODE = '22023';
    END IF;
    keep := gridmap_feed_month_base((date_trunc('month', now() AT TIME ZONE 'UTC') - make_interval(months => months))::date);
    FOR p IN
        SELECT c.oid::regclass AS part,
               substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \(''?(-?[0-9]+)''?\)')::bigint AS upper
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'event_feed'::regclass
        ORDER BY 2
    LOOP
        EXIT WHEN p.upper > keep;
        dropped := p.part::text;
        EXECUTE format('SELECT count(*), max(seq) FROM %s', p.part) INTO entries, max_seq;
        UPDATE event_feed_pruned SET through = greatest(through, max_seq) WHERE max_seq IS NOT NULL;
        EXECUTE format('DROP TABLE %s', p.part);
        RETURN NEXT;
    END LOOP;
END $$;
