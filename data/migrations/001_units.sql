-- Units of the hierarchy, with boundary history: every edit closes the
-- current row (valid_to) and inserts the next version, so "which grid was
-- this point in on a given day" is a query on [valid_from, valid_to).
CREATE EXTENSION IF NOT EXISTS postgis;

CREATE TABLE layers (
    name       text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,31}$'),
    title      text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO layers (name, title) VALUES ('base', '行政区划 administrative hierarchy');

CREATE TABLE units (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    layer         text NOT NULL DEFAULT 'base' REFERENCES layers (name),
    code          text NOT NULL CHECK (code ~ '^[0-9]{6}([0-9]{3}){0,3}$'),
    level         text NOT NULL CHECK (level IN ('district', 'street', 'community', 'grid')),
    name          text NOT NULL,
    parent_code   text,
    complete      boolean NOT NULL DEFAULT false,
    geom          geometry(MultiPolygon, 4326) NOT NULL,
    area_m2       double precision NOT NULL,
    version       integer NOT NULL DEFAULT 1 CHECK (version > 0),
    valid_from    timestamptz NOT NULL DEFAULT now(),
    valid_to      timestamptz,
    changed_by    text NOT NULL DEFAULT '',
    change_reason text NOT NULL DEFAULT '',
    CHECK (valid_to IS NULL OR valid_to >= valid_from),
    CHECK ((level = 'district') = (parent_code IS NULL)),
    UNIQUE (layer, code, version)
);

-- Current versions: one per code and layer, and the indexes every read uses.
CREATE UNIQUE INDEX units_current_code ON units (layer, code) WHERE valid_to IS NULL;
CREATE INDEX units_current_level ON units (layer, level, code) WHERE valid_to IS NULL;
CREATE INDEX units_current_parent ON units (layer, parent_code, code) WHERE valid_to IS NULL;
CREATE INDEX units_current_geom ON units USING gist (geom) WHERE valid_to IS NULL;
-- History: by code and time, and by place for "as of" queries.
CREATE INDEX units_history_code ON units (layer, code, valid_from);
CREATE INDEX units_history_geom ON units USING gist (geom);

-- Area in m² of a geometry whose edges are straight in longitude/latitude,
-- as units are drawn. ST_Area(geography) treats edges as geodesics, which
-- gives a long thin sliver along a straight boundary a phantom area of
-- thousands of m²; the topology tolerance must measure the sliver itself.
-- Degrees² are scaled at the geometry's mean latitude (spherical Earth,
-- R = 6371008.8 m): within 0.1 % for anything the size of a district.
CREATE FUNCTION gridmap_area_m2(g geometry) RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT ST_Area(g) * 12364345868.14 * cos(radians((ST_YMin(g) + ST_YMax(g)) / 2))
$$;
