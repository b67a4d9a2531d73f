-- Issue 16, field work: attachments of events (photos, videos) and patrols.

-- An attachment: the blob is stored content-addressed (media.Storage) under
-- sha256; the row says which event it belongs to. No foreign key to events:
-- the insert checks the event in its transaction, and events may become
-- partitioned (migration 010), which a plain key reference would block.
CREATE TABLE attachments (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_code  text NOT NULL CHECK (event_code ~ '^[0-9]{20}$'),
    sha256      text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    media_type  text NOT NULL CHECK (media_type IN ('image/jpeg', 'image/png', 'video/mp4')),
    size_bytes  bigint NOT NULL CHECK (size_bytes > 0),
    name        text NOT NULL DEFAULT '',
    -- The position in the photo's EXIF (WGS-84), its distance from the
    -- event's and whether that was farther than the limit then in force.
    gps         geometry(Point, 4326),
    distance_m  double precision,
    far         boolean NOT NULL DEFAULT false,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_code, sha256)
);
CREATE INDEX attachments_sha256 ON attachments (sha256);

-- A patrol point as a worker's phone sent it (WGS-84). flag says why a
-- point is kept but left out of tracks: 'jump' (faster than the speed
-- limit from the point before it) or 'inaccurate' (an accuracy radius
-- over the limit). grid_code is the base grid it fell in
-- on arrival (NULL outside every grid).
CREATE TABLE patrol_points (
    worker      bigint NOT NULL REFERENCES people (id),
    t           timestamptz NOT NULL,
    geom        geometry(Point, 4326) NOT NULL,
    accuracy_m  real CHECK (accuracy_m >= 0),
    grid_code   text,
    flag        text CHECK (flag IN ('jump', 'inaccurate')),
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (worker, t)
);

-- The latest unflagged point of each worker: what the wall's live
-- positions read (a small table, one row a worker, polled).
CREATE TABLE patrol_last (
    worker    bigint PRIMARY KEY REFERENCES people (id),
    t         timestamptz NOT NULL,
    geom      geometry(Point, 4326) NOT NULL,
    grid_code text
);
CREATE INDEX patrol_last_t ON patrol_last (t);

-- Per worker and local day: the track (the day's unflagged points in time
-- order) and, per grid, the share of the grid within the coverage radius
-- of the track and the time spent in it. Derived from patrol_points; stale
-- marks a day that has points newer than its figures (ingest only marks;
-- the next read computes, so ingest stays a plain insert).
CREATE TABLE patrol_days (
    worker     bigint NOT NULL REFERENCES people (id),
    day        date NOT NULL,
    stale      boolean NOT NULL DEFAULT true,
    track      geometry(LineString, 4326),
    points     int NOT NULL DEFAULT 0,
    flagged    int NOT NULL DEFAULT 0,
    length_m   double precision NOT NULL DEFAULT 0,
    seconds    double precision NOT NULL DEFAULT 0,
    first_t    timestamptz,
    last_t     timestamptz,
    PRIMARY KEY (worker, day)
);
CREATE INDEX patrol_days_stale ON patrol_days (day) WHERE stale;
CREATE INDEX patrol_days_track ON patrol_days USING gist (track);

CREATE TABLE patrol_day_grids (
    worker    bigint NOT NULL,
    day       date NOT NULL,
    grid_code text NOT NULL,
    share     double precision NOT NULL CHECK (share >= 0 AND share <= 1),
    seconds   double precision NOT NULL DEFAULT 0,
    -- The part of the grid within the radius of the track (WGS-84): the
    -- union over workers gives a day's coverage of the grid.
    covered   geometry(MultiPolygon, 4326),
    PRIMARY KEY (worker, day, grid_code),
    FOREIGN KEY (worker, day) REFERENCES patrol_days (worker, day) ON DELETE CASCADE
);
CREATE INDEX patrol_day_grids_day ON patrol_day_grids (day, grid_code);

-- The UTM zone (WGS-84, EPSG 326xx north, 327xx south) of a geometry's
-- centre: where buffers in metres and area shares are computed.
CREATE FUNCTION gridmap_utm_srid(g geometry) RETURNS int LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN ST_Y(c) >= 0 THEN 32600 ELSE 32700 END
           + least(60, greatest(1, floor((ST_X(c) + 180) / 6)::int + 1))
    FROM (SELECT ST_Centroid(ST_Envelope(g)) c) x
$$;
