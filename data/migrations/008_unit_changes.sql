-- The unit change feed: unit changes are entries of the live feed (kind
-- 'unit'), numbered from the same sequence under the same commit-order
-- lock as the events' entries, so one seq orders both and a stream's
-- Last-Event-ID resumes both. The event columns stay for events; a unit
-- entry has the layer, every code it touches (for filters and scopes: the
-- body may list fewer) and the bounding box of the changed area.
ALTER TABLE event_feed DROP CONSTRAINT event_feed_kind_check;
ALTER TABLE event_feed
    ALTER COLUMN event_code DROP NOT NULL,
    ALTER COLUMN status DROP NOT NULL,
    ALTER COLUMN class_code DROP NOT NULL,
    ALTER COLUMN grid_code DROP NOT NULL,
    ALTER COLUMN lon DROP NOT NULL,
    ALTER COLUMN lat DROP NOT NULL,
    ADD COLUMN layer text,
    ADD COLUMN codes text[],
    ADD COLUMN bbox double precision[],
    ADD CONSTRAINT event_feed_kind_check CHECK (kind IN ('created', 'transition', 'unit')),
    ADD CONSTRAINT event_feed_shape CHECK (CASE WHEN kind = 'unit'
        THEN layer IS NOT NULL AND codes IS NOT NULL AND cardinality(bbox) = 4
        ELSE event_code IS NOT NULL AND status IS NOT NULL AND class_code IS NOT NULL AND grid_code IS NOT NULL
             AND lon IS NOT NULL AND lat IS NOT NULL END);
-- GET /v1/units/changes reads only the unit entries.
CREATE INDEX event_feed_units ON event_feed (seq) WHERE kind = 'unit';
