package tiles

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"gridmap/geo"
)

// The tile envelope with the buffer, in 4326, for the index condition. The
// buffer is clipped to the Web Mercator square first: past ±180° the
// transform wraps, and a tile at the antimeridian (x = 0 or 2^z − 1; for
// Shenzhen z1 and z2) would get an inverted box that meets nothing.
const envelope4326 = `ST_Transform(ST_ClipByBox2D(ST_TileEnvelope($1, $2, $3, margin => 0.015625),
    ST_MakeEnvelope(-20037508.342789244, -20037508.342789244, 20037508.342789244, 20037508.342789244, 3857)), 4326)`

// tileSQL writes the queries of one coordinate system. Web Mercator tiles
// of WGS-84 (the zero value) are drawn by PostGIS: the envelope comes from
// $1/$2/$3 (z/x/y), ST_AsMVTGeom projects and clips, ST_AsMVT encodes.
// Tiles drawn in GCJ-02 (tiles/crs.go) select by a WGS-84 box ($1..$4:
// min lon, min lat, max lon, max lat) covering the GCJ-02 tile, and read the
// features as rows with WKB geometry, for Go to convert, project, clip and
// encode; their other parameters come one place later ($4 is $5).
type tileSQL struct{ gcj bool }

// env is the buffered tile envelope in 4326, for the index condition.
func (m tileSQL) env() string {
	if m.gcj {
		return "ST_MakeEnvelope($1, $2, $3, $4, 4326)"
	}
	return envelope4326
}

// p is the query's parameter n (4 or 5) of the WGS-84 numbering.
func (m tileSQL) p(n int) string {
	if m.gcj {
		n++
	}
	return fmt.Sprintf("$%d", n)
}

// geom is the geometry column of expression e; clip cuts polygons to the
// selection box in SQL (a district drawn at z10 need not send the
// vertices of its far side).
func (m tileSQL) geom(e string, clip bool) string {
	switch {
	case !m.gcj:
		return "ST_AsMVTGeom(ST_Transform(" + e + ", 3857), ST_TileEnvelope($1, $2, $3), 4096, 64, true)"
	case clip:
		return "ST_AsBinary(ST_ClipByBox2D(" + e + ", " + m.env() + "))"
	}
	return "ST_AsBinary(" + e + ")"
}

// layer is the query of source layer name from the rows of inner (with an
// id, a code and a geom column); cond is a further condition on them.
func (m tileSQL) layer(name, inner, cond string) string {
	if m.gcj {
		return fmt.Sprintf("\nSELECT t.* FROM (%s) t WHERE t.geom IS NOT NULL%s ORDER BY t.code", inner, cond)
	}
	return fmt.Sprintf("\nSELECT ST_AsMVT(t, %s, 4096, 'geom', 'id' ORDER BY t.code) FROM (%s) t WHERE t.geom IS NOT NULL%s", quote(name), inner, cond)
}

// unitQuery renders one level. Geometry is simplified in 4326 to one tile
// pixel ($4 degrees) before it is transformed, so a district's thousands of
// vertices are not projected only to be snapped away; features are ordered
// by code and carry the code as id, so the same data gives the same bytes.
func unitQuery(m tileSQL, level string) string { return unitQueryWhere(m, level, "u.valid_to IS NULL") }

// unitAsOfQuery renders one level as it was at instant $5: the versions
// valid then, found by the GiST index of every version (units_history_geom).
func unitAsOfQuery(m tileSQL, level string) string {
	return unitQueryWhere(m, level, fmt.Sprintf("u.valid_from <= %[1]s::timestamptz AND (u.valid_to IS NULL OR u.valid_to > %[1]s::timestamptz)", m.p(5)))
}

func unitQueryWhere(m tileSQL, level, valid string) string {
	return m.layer(level, fmt.Sprintf(`
    SELECT u.code::bigint AS id, u.code, u.name, u.level, coalesce(u.parent_code, '') AS parent_code,
           %[4]s AS geom
    FROM units u
    WHERE %[3]s AND u.layer = 'base' AND u.level = %[1]s AND u.geom && %[2]s
`, quote(level), m.env(), valid, m.geom("ST_Simplify(u.geom, "+m.p(4)+", true)", true)), "")
}

func quote(s string) string { return "'" + s + "'" }

// objectQuery renders single objects; ids are the first 60 bits of the
// code's MD5 (object codes are not all numeric).
func objectQuery(m tileSQL) string {
	return m.layer("objects", `
    SELECT ('x' || left(md5(o.code), 15))::bit(60)::bigint AS id, o.code, o.class_code AS class, c.name AS class_name,
           coalesce(o.grid_code, '') AS grid_code,
           `+m.geom("o.geom", true)+` AS geom
    FROM objects o JOIN object_classes c ON c.code = o.class_code
    WHERE o.geom && `+m.env()+`
`, "")
}

// countQuery renders objects per unit of a level as one point each (on the
// unit's surface, so it falls in exactly one tile).
func countQuery(m tileSQL) func(level string) string {
	return func(level string) string {
		return m.layer("object_counts", fmt.Sprintf(`
    SELECT u.code::bigint AS id, u.code, u.name, u.level,
           (SELECT coalesce(sum(c.n), 0)::bigint FROM object_counts c
            WHERE c.grid_code >= u.code AND c.grid_code < gridmap_code_upper(u.code)) AS count,
           %s AS geom
    FROM units u
    WHERE u.valid_to IS NULL AND u.layer = 'base' AND u.level = %s AND u.geom && %s
`, m.geom("ST_PointOnSurface(u.geom)", false), quote(level), m.env()), " AND t.count > 0")
	}
}

// countObjectsInTile counts (up to $4) the objects that meet the buffered
// tile envelope: the features the objects query would draw, and the rule
// tile invalidation applies (a geometry meeting the envelope), so that an
// object whose bounding box only grazes the tile changes neither.
func countObjectsInTile(m tileSQL) string {
	return `SELECT count(*) FROM (SELECT 1 FROM objects
    WHERE geom && ` + m.env() + ` AND (GeometryType(geom) = 'POINT' OR ST_Intersects(geom, ` + m.env() + `))
    LIMIT ` + m.p(4) + `) x`
}

// eventIDExpr is an event's feature id: the first 53 bits of the MD5 of
// its code. The 20-digit code does not fit 64 bits, and a packing of its
// parts (district, date, sequence) would need 56: ids are read as doubles
// by MapLibre (vector-tile-js), where ids above 2^53 round, so consecutive
// packed ids would collapse into one while 53 hashed bits stay exact
// (a collision among a million events has odds of about 1 in 18,000, and
// would only make two features share a feature-state).
const eventIDExpr = `(('x' || left(md5(e.code), 14))::bit(56)::bigint >> 3)`

// eventQuery renders single events at render time $4: overdue and age_h
// are computed against it, and the second column is the earliest deadline
// of a drawn open event not yet passed (when its overdue flag turns). In
// GCJ-02 the rows carry next each, for the features Go keeps.
func eventQuery(m tileSQL) string {
	now := m.p(4) + "::timestamptz"
	q := `
WITH e AS (
    SELECT ` + eventIDExpr + ` AS id, e.code, e.class_code AS class, c.name AS class_name, e.status,
           (e.status IN ` + openStatuses + ` AND e.deadline < ` + now + `) AS overdue,
           greatest(floor(extract(epoch FROM ` + now + ` - e.reported_at) / 3600), 0)::bigint AS age_h,
           floor(extract(epoch FROM e.reported_at))::bigint AS reported_at,
           floor(extract(epoch FROM e.deadline))::bigint AS deadline,
           e.grid_code,
           CASE WHEN e.status IN ` + openStatuses + ` AND e.deadline >= ` + now + ` THEN e.deadline END AS next,
           ` + m.geom("e.geom", false) + ` AS geom
    FROM events e JOIN event_classes c ON c.code = e.class_code
    WHERE e.geom && ` + m.env() + `
)`
	if m.gcj {
		return q + `
SELECT id, code, class, class_name, status, overdue, age_h, reported_at, deadline, grid_code, geom, next
FROM e ORDER BY code`
	}
	return q + `
SELECT (SELECT ST_AsMVT(t, 'events', 4096, 'geom', 'id' ORDER BY t.code) FROM (
            SELECT id, code, class, class_name, status, overdue, age_h, reported_at, deadline, grid_code, geom
            FROM e WHERE geom IS NOT NULL) t),
       (SELECT min(next) FROM e WHERE geom IS NOT NULL)`
}

// eventCountQuery renders the events per unit of a level as one point on
// the unit's surface: total and per status from event_counts (kept exact
// by triggers), open the sum of the open states, overdue (open and past
// the deadline at render time $4) from the open events themselves, by the
// partial index events_open_deadline. Units without events are left out.
// The second column is the earliest deadline still to come of an open
// event the tile counts (when an overdue count grows), looked for only
// within EventsMaxAge (the tile expires then anyway): a short range of the
// partial index, however many events the units hold.
func eventCountQuery(m tileSQL) func(level string) string {
	return func(level string) string { return eventCountQueryIn(m, level) }
}

func eventCountQueryIn(m tileSQL, level string) string {
	var sums, cols strings.Builder
	for _, st := range eventStatuses {
		fmt.Fprintf(&sums, ",\n                   coalesce(sum(c.n) FILTER (WHERE c.status = %s), 0)::bigint AS %s", quote(st), st)
		fmt.Fprintf(&cols, ", %s", st)
	}
	last := fmt.Sprintf(`
SELECT (SELECT ST_AsMVT(t, 'event_counts', 4096, 'geom', 'id' ORDER BY t.code) FROM (
            SELECT id, code, name, level, total, open, overdue%s, geom FROM n) t),
       (SELECT min(next) FROM n)`, cols.String())
	if m.gcj {
		last = fmt.Sprintf(`
SELECT id, code, name, level, total, open, overdue%s, geom, next FROM n ORDER BY code`, cols.String())
	}
	now := m.p(4) + "::timestamptz"
	return fmt.Sprintf(`
WITH u AS (
    SELECT u.code, u.name, u.level, gridmap_code_upper(u.code) AS upper,
           %[7]s AS geom
    FROM units u
    WHERE u.valid_to IS NULL AND u.layer = 'base' AND u.level = %[1]s AND u.geom && %[2]s
), n AS (
    SELECT u.code::bigint AS id, u.code, u.name, u.level, s.*,
           (SELECT count(*) FROM events e WHERE e.status IN %[3]s AND e.deadline < %[8]s
                AND e.grid_code >= u.code AND e.grid_code < u.upper AND s.open > 0) AS overdue,
           (SELECT min(e.deadline) FROM events e WHERE e.status IN %[3]s
                AND e.deadline >= %[8]s AND e.deadline < %[8]s + interval '%[6]d seconds'
                AND e.grid_code >= u.code AND e.grid_code < u.upper AND s.open > 0) AS next,
           u.geom
    FROM u, LATERAL (
            SELECT coalesce(sum(c.n), 0)::bigint AS total,
                   coalesce(sum(c.n) FILTER (WHERE c.status IN %[3]s), 0)::bigint AS open%[4]s
            FROM event_counts c WHERE c.grid_code >= u.code AND c.grid_code < u.upper) s
    WHERE u.geom IS NOT NULL AND s.total > 0
)%[5]s`, quote(level), m.env(), openStatuses, sums.String(), last, int(EventsMaxAge/time.Second),
		m.geom("ST_PointOnSurface(u.geom)", false), now)
}

// countEventsInTile counts (up to $4) the events the events query would
// draw in tile $1/$2/$3.
func countEventsInTile(m tileSQL) string {
	return `SELECT count(*) FROM (SELECT 1 FROM events WHERE geom && ` + m.env() + ` LIMIT ` + m.p(4) + `) x`
}

// pool is the pool a render reads from.
func (r *Renderer) pool(ctx context.Context) *pgxpool.Pool {
	if r.Read != nil {
		return r.Read(ctx)
	}
	return r.Pool
}

// Renderer builds tiles from PostGIS.
type Renderer struct {
	Pool *pgxpool.Pool
	// Read, when set, picks the pool of each render (a replica's when it
	// has replayed what the render must show; data.Store.Reader); else
	// Pool.
	Read      func(context.Context) *pgxpool.Pool
	Catalogue *Catalogue
	// ObjectCap is the most object (event) features a tile carries (0:
	// ObjectCap).
	ObjectCap int
	// Now is the clock of the tiles that depend on it (events; nil:
	// time.Now).
	Now func() time.Time
	// Units, when set, is the current in-memory copy of the units: the
	// units tileset's current WGS-84 tiles are drawn from it instead of
	// PostGIS (memunits.go).
	Units func() *MemUnits
	// UnitsIn, when set, is the in-memory copy of the units to draw the
	// units tileset's tile in crs as of asOf from (nil asOf: now), in
	// place of Units: nil when PostGIS must draw it (an instant whose
	// versions may still change; docs/design-notes.md, unit tiles from
	// memory). The api keeps the copies of past instants and GCJ-02.
	UnitsIn func(ctx context.Context, asOf *time.Time, crs geo.CRS) (*MemUnits, error)
}

// memUnits is the in-memory copy to draw a units tile from, nil for
// PostGIS.
func (r *Renderer) memUnits(ctx context.Context, asOf *time.Time, crs geo.CRS) (*MemUnits, error) {
	switch {
	case r.UnitsIn != nil:
		return r.UnitsIn(ctx, asOf, crs)
	case r.Units != nil && asOf == nil && crs == geo.WGS84:
		return r.Units(), nil
	}
	return nil, nil
}

func (r *Renderer) objectCap() int {
	if r.ObjectCap > 0 {
		return r.ObjectCap
	}
	return ObjectCap
}

func (r *Renderer) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// ErrNoLayer is a tileset name the catalogue does not have.
type ErrNoLayer struct{ Name string }

func (e *ErrNoLayer) Error() string { return fmt.Sprintf("no tileset %q", e.Name) }

// Rendered is a rendered tile and how long it holds.
type Rendered struct {
	MVT []byte // uncompressed; empty: no features
	// Expires, when not zero, is the first moment the tile may differ
	// without any change of data, by the clock alone: an events tile
	// expires EventsMaxAge after it was rendered, or earlier at the first
	// deadline still to come of an open event it draws or counts. A tile
	// with a zero Expires holds until a change of its data (tile_changes).
	Expires time.Time
}

// Render returns the uncompressed MVT of a tile (RenderTile without the
// expiry).
func (r *Renderer) Render(ctx context.Context, layer string, z, x, y int) ([]byte, error) {
	t, err := r.RenderTile(ctx, layer, z, x, y)
	return t.MVT, err
}

// ErrNoAsOf is a tileset that cannot be drawn as of a past instant (only
// units keep their history).
type ErrNoAsOf struct{ Name string }

func (e *ErrNoAsOf) Error() string {
	return fmt.Sprintf("tileset %q has no history: only units can be drawn as of an instant", e.Name)
}

// RenderTile renders a tile: the visible source layers, each an ST_AsMVT,
// concatenated (an MVT is a list of layers, so the bytes of single-layer
// tiles append); an empty result has no features at all. Tiles that depend
// on the clock are rendered at r.Now and carry their expiry.
func (r *Renderer) RenderTile(ctx context.Context, layer string, z, x, y int) (Rendered, error) {
	return r.RenderTileAt(ctx, layer, z, x, y, nil)
}

// RenderTileAt is RenderTile as of an instant: with asOf, the unit
// versions valid then (only tilesets with history, HasHistory; others are
// an *ErrNoAsOf).
func (r *Renderer) RenderTileAt(ctx context.Context, layer string, z, x, y int, asOf *time.Time) (Rendered, error) {
	return r.RenderTileIn(ctx, layer, z, x, y, asOf, geo.WGS84)
}

// RenderTileIn is RenderTileAt drawn in a coordinate system: WGS-84, or
// GCJ-02 for base maps drawn in it (Amap, Tencent); BD-09 is an
// *ErrTileCRS. The tile grid is Web Mercator's either way: a GCJ-02 tile
// z/x/y covers the GCJ-02 positions that Web Mercator puts in z/x/y, and
// holds the same source layers, attributes, ids and order as the WGS-84
// tile, every vertex converted (tiles/crs.go).
func (r *Renderer) RenderTileIn(ctx context.Context, layer string, z, x, y int, asOf *time.Time, crs geo.CRS) (Rendered, error) {
	var out Rendered
	l, ok := r.Catalogue.Tileset(layer)
	if !ok {
		return out, &ErrNoLayer{layer}
	}
	if asOf != nil && !l.HasHistory() {
		return out, &ErrNoAsOf{layer}
	}
	if err := CheckTile(z, x, y); err != nil {
		return out, err
	}
	m, err := tileSQLOf(crs)
	if err != nil {
		return out, err
	}
	if l.singlesFrom == 0 && l.HasHistory() {
		mu, err := r.memUnits(ctx, asOf, crs)
		if err != nil {
			return out, fmt.Errorf("render %s/%d/%d/%d: %w", layer, z, x, y, err)
		}
		if mu != nil {
			out.MVT = mu.RenderUnits(l, z, x, y)
			return out, nil
		}
	}
	// The first parameters: z/x/y, or in GCJ-02 the WGS-84 box to select.
	var base []any
	var gt *gcjTile
	if m.gcj {
		gt = newGCJTile(z, x, y)
		base = gt.boxArgs()
	} else {
		base = []any{z, x, y}
	}
	// From the singles' zoom (objects z14, events z13) single features are
	// drawn unless the tile would pass the cap; then per-grid counts stand
	// in for them: never a cut list.
	var counted, over bool
	overCap := func() (bool, error) {
		if !counted {
			var n int
			if err := r.pool(ctx).QueryRow(ctx, l.inTile[m.i()], append(base, r.objectCap()+1)...).Scan(&n); err != nil {
				return false, fmt.Errorf("render %s/%d/%d/%d: count features: %w", layer, z, x, y, err)
			}
			counted, over = true, n > r.objectCap()
		}
		return over, nil
	}
	now := r.now()
	for _, s := range l.Visible(z) {
		var q string
		var args = append([]any(nil), base...)
		switch {
		case l.singlesFrom == 0 && asOf != nil:
			q = s.asOfQuery[m.i()]
			args = append(args, pixelDegrees(z), *asOf)
		case l.singlesFrom == 0:
			q = s.query[m.i()]
			args = append(args, pixelDegrees(z))
		case s.countOf != nil && z < l.singlesFrom:
			q = s.countOf(m)(countLevel(z))
		case s.countOf != nil:
			over, err := overCap()
			if err != nil {
				return Rendered{}, err
			}
			if !over {
				continue
			}
			q = s.countOf(m)("grid")
		default:
			over, err := overCap()
			if err != nil {
				return Rendered{}, err
			}
			if over {
				continue
			}
			q = s.query[m.i()]
		}
		if s.timed {
			args = append(args, now)
		}
		var b []byte
		var next *time.Time
		switch {
		case gt != nil:
			b, next, err = gt.render(ctx, r.pool(ctx), s.ID, q, args)
		case s.timed:
			err = r.pool(ctx).QueryRow(ctx, q, args...).Scan(&b, &next)
		default:
			err = r.pool(ctx).QueryRow(ctx, q, args...).Scan(&b)
		}
		if err != nil {
			return Rendered{}, fmt.Errorf("render %s/%d/%d/%d %s: %w", layer, z, x, y, s.ID, err)
		}
		if s.timed && len(b) > 0 { // nothing drawn: nothing moves with the clock
			if out.Expires.IsZero() {
				out.Expires = now.Add(EventsMaxAge)
			}
			if next != nil && next.Before(out.Expires) {
				out.Expires = *next
			}
		}
		out.MVT = append(out.MVT, b...)
	}
	return out, nil
}

// pixelDegrees is one tile pixel in degrees of longitude at zoom z.
func pixelDegrees(z int) float64 {
	return 360.0 / float64(Extent) / float64(uint64(1)<<uint(z))
}

// TileError is a z/x/y outside the tile pyramid.
type TileError struct{ Msg string }

func (e *TileError) Error() string { return e.Msg }

// CheckTile accepts 0 ≤ z ≤ MaxZoom and 0 ≤ x, y < 2^z.
func CheckTile(z, x, y int) error {
	if z < 0 || z > MaxZoom {
		return &TileError{fmt.Sprintf("zoom %d is outside 0–%d", z, MaxZoom)}
	}
	n := 1 << uint(z)
	if x < 0 || x >= n {
		return &TileError{fmt.Sprintf("x %d is outside 0–%d at zoom %d", x, n-1, z)}
	}
	if y < 0 || y >= n {
		return &TileError{fmt.Sprintf("y %d is outside 0–%d at zoom %d", y, n-1, z)}
	}
	return nil
}
