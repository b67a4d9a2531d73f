package data

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/jackc/pgx/v5"

	"gridmap/grid"
)

// Limits of object queries.
const (
	DefaultObjectLimit = 100
	MaxObjectLimit     = 10000
	MaxRadiusM         = 50000
	MaxNearestK        = 1000
	// SphereRadiusM is the radius of the sphere distances are measured on:
	// PostGIS's for geography with use_spheroid = false, the mean radius
	// (2a + b) / 3 of WGS 84.
	SphereRadiusM = 6371008.7714
)

// ObjectFilter selects objects for ListObjects: exactly one of BBox,
// Within, Near (with Radius) and Nearest (with K), optionally narrowed to a
// class.
type ObjectFilter struct {
	BBox    *[4]float64 // min lon, min lat, max lon, max lat: objects intersecting it
	Within  string      // a unit code: objects whose grid code starts with it
	Near    *[2]float64 // lon, lat: objects within Radius metres (on the sphere)
	Radius  float64
	Nearest *[2]float64 // lon, lat: the K nearest objects (on the sphere)
	K       int
	Class   string
	// Scopes, when not nil, keep the objects whose grid lies in one of
	// these units' subtrees (a scoped reader's, auth.Identity.ReadScopes).
	Scopes []string
	Limit  int    // page size: default 100, at most 10000
	Cursor string // ObjectPage.Next of the previous page
}

// ObjectPage is one page of a list: the objects and, when more follow, the
// cursor of the next page.
type ObjectPage struct {
	Objects []ObjectRow
	Next    string
}

// check validates a filter and fills in defaults.
func (f *ObjectFilter) check() error {
	var given []string
	for i, set := range []bool{f.BBox != nil, f.Within != "", f.Near != nil, f.Nearest != nil} {
		if set {
			given = append(given, []string{"bbox", "within", "near", "nearest"}[i])
		}
	}
	if len(given) != 1 {
		param := strings.Join(given, ",")
		if param == "" {
			param = "bbox,within,near,nearest"
		}
		return filterErr(param, "give exactly one of bbox, within, near (with radius) and nearest (with k); got %d", len(given))
	}
	if f.Limit == 0 {
		f.Limit = DefaultObjectLimit
	}
	if f.Limit < 1 || f.Limit > MaxObjectLimit {
		return filterErr("limit", "limit=%d is out of range [1, %d]", f.Limit, MaxObjectLimit)
	}
	if f.BBox != nil {
		b := f.BBox
		for i, lim := range []float64{180, 90, 180, 90} {
			if math.IsNaN(b[i]) || b[i] < -lim || b[i] > lim {
				return filterErr("bbox", "bbox value %d (%g) is out of range [%g, %g]", i+1, b[i], -lim, lim)
			}
		}
		if b[0] > b[2] || b[1] > b[3] {
			return filterErr("bbox", "bbox minimum exceeds maximum: want minLon,minLat,maxLon,maxLat")
		}
	}
	if f.Within != "" && (len(f.Within) < 6 || len(f.Within) > 15 || strings.Trim(f.Within, "0123456789") != "") {
		return filterErr("within", "within=%q is not a unit code (6 to 15 digits)", f.Within)
	}
	if f.Near != nil {
		if err := checkLonLat("near", *f.Near); err != nil {
			return err
		}
		if !(f.Radius > 0 && f.Radius <= MaxRadiusM) {
			return filterErr("radius", "radius=%g metres is out of range: more than 0, at most %d", f.Radius, MaxRadiusM)
		}
	} else if f.Radius != 0 {
		return filterErr("radius", "radius goes with near=lon,lat")
	}
	if f.Nearest != nil {
		if err := checkLonLat("nearest", *f.Nearest); err != nil {
			return err
		}
		if f.K < 1 || f.K > MaxNearestK {
			return filterErr("k", "k=%d is out of range [1, %d]", f.K, MaxNearestK)
		}
	} else if f.K != 0 {
		return filterErr("k", "k goes with nearest=lon,lat")
	}
	return nil
}

func checkLonLat(param string, p [2]float64) error {
	if math.IsNaN(p[0]) || p[0] < -180 || p[0] > 180 {
		return filterErr(param, "%s: longitude %g is out of range [-180, 180]", param, p[0])
	}
	if math.IsNaN(p[1]) || p[1] < -90 || p[1] > 90 {
		return filterErr(param, "%s: latitude %g is out of range [-90, 90]", param, p[1])
	}
	return nil
}

// ListObjects answers one page of a spatial or unit query.
//
//   - bbox: objects whose geometry intersects the box, by code.
//   - within: objects assigned to the unit or its descendants (their grid
//     code starts with the unit's), by grid code then code: a range scan of
//     the (grid_code, code) index.
//   - near: objects within Radius metres of the point on the sphere, by
//     distance then code; Distance is set.
//   - nearest: the K objects nearest the point on the sphere (ties to the
//     lowest code), by distance then code; Distance is set. Paging walks
//     through those K.
func (s *Store) ListObjects(ctx context.Context, f ObjectFilter) (*ObjectPage, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	switch {
	case f.BBox != nil:
		q := &sqlQuery{}
		q.where(q.intersects("geom", *f.BBox))
		return s.codeOrdered(ctx, q, f)
	case f.Within != "":
		return s.within(ctx, f)
	case f.Near != nil:
		return s.near(ctx, f)
	default:
		return s.nearest(ctx, f)
	}
}

// UnassignedObjects lists the objects outside every grid, by code.
func (s *Store) UnassignedObjects(ctx context.Context, limit int, after string) (*ObjectPage, error) {
	f := ObjectFilter{Limit: limit, Cursor: after}
	if f.Limit == 0 {
		f.Limit = DefaultObjectLimit
	}
	if f.Limit < 1 || f.Limit > MaxObjectLimit {
		return nil, filterErr("limit", "limit=%d is out of range [1, %d]", f.Limit, MaxObjectLimit)
	}
	q := &sqlQuery{}
	q.where("grid_code IS NULL")
	return s.codeOrdered(ctx, q, f)
}

// The orders of object lists.
var (
	objectsByCode     = keyset{cols: []string{"code"}}
	objectsByGrid     = keyset{cols: []string{"grid_code", "code"}} // the (grid_code, code) index
	objectsByDistance = keyset{cols: []string{"dist", "code"}}
)

func (s *Store) codeOrdered(ctx context.Context, q *sqlQuery, f ObjectFilter) (*ObjectPage, error) {
	after, err := decodeCursor(f.Cursor, orderCode)
	if err != nil {
		return nil, err
	}
	if f.Class != "" {
		q.where("class_code = " + q.arg(f.Class))
	}
	q.whereInScopes("grid_code", f.Scopes)
	if after != nil {
		q.where(objectsByCode.after(q, after.Code))
	}
	sql := `SELECT ` + objectColumns + ` FROM objects` + q.whereSQL() + objectsByCode.orderLimit(q, f.Limit+1)
	rows, err := s.queryObjects(ctx, s.Reader(ctx), sql, false, q.args...)
	if err != nil {
		return nil, err
	}
	return page(rows, f.Limit, func(o ObjectRow) cursor { return cursor{Order: orderCode, Code: o.Code} }), nil
}

func (s *Store) within(ctx context.Context, f ObjectFilter) (*ObjectPage, error) {
	after, err := decodeCursor(f.Cursor, orderGrid)
	if err != nil {
		return nil, err
	}
	q := &sqlQuery{}
	// A range on the grid code rather than LIKE, so the (grid_code, code)
	// index is scanned in order. The upper bound is the code plus one
	// (same width), not code || '~': punctuation sorts before digits in
	// most non-C collations, which would make that range empty.
	q.where("grid_code >= " + q.arg(f.Within) + " AND grid_code < " + q.arg(codeRangeEnd(f.Within)))
	if f.Class != "" {
		q.where("class_code = " + q.arg(f.Class))
	}
	q.whereInScopes("grid_code", f.Scopes)
	if after != nil {
		q.where(objectsByGrid.after(q, after.Grid, after.Code))
	}
	sql := `SELECT ` + objectColumns + ` FROM objects` + q.whereSQL() + objectsByGrid.orderLimit(q, f.Limit+1)
	rows, err := s.queryObjects(ctx, s.Reader(ctx), sql, false, q.args...)
	if err != nil {
		return nil, err
	}
	return page(rows, f.Limit, func(o ObjectRow) cursor { return cursor{Order: orderGrid, Grid: o.Grid, Code: o.Code} }), nil
}

// codeRangeEnd is an exclusive upper bound for the codes that start with
// code: code + 1 at the same width (digit strings compare digit by digit in
// every collation). All nines give 16 nines, above every 15-digit grid code.
func codeRangeEnd(code string) string {
	b := []byte(code)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < '9' {
			b[i]++
			return string(b)
		}
		b[i] = '0'
	}
	return strings.Repeat("9", 16)
}

// nearQuery is the radius search: a bounding-box prefilter on the
// geometry's GiST index, then ST_DWithin on the sphere. The caller adds
// ordering and limits to "SELECT … FROM (inner) o".
func nearQuery(q *sqlQuery, pt [2]float64, radius float64, class string, scopes []string) string {
	ptSQL := fmt.Sprintf("ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography", q.arg(pt[0]), q.arg(pt[1]))
	boxes := searchBoxes(pt, radius)
	var pre []string
	for _, b := range boxes {
		pre = append(pre, "o.geom && "+q.envelope(b))
	}
	r := q.arg(radius)
	cond := "(" + strings.Join(pre, " OR ") + ") AND ST_DWithin(o.geom::geography, " + ptSQL + ", " + r + ", false)"
	if class != "" {
		cond += " AND o.class_code = " + q.arg(class)
	}
	if scopes != nil {
		cond += " AND " + q.inScopes("o.grid_code", scopes)
	}
	return `SELECT o.*, ST_Distance(o.geom::geography, ` + ptSQL + `, false) AS dist FROM objects o WHERE ` + cond
}

// searchBoxes are longitude/latitude boxes that hold every point within
// radius metres of pt on the sphere: the latitude band of the spherical
// cap and its longitude extent asin(sin δ / cos φ); the whole band of
// longitudes when the cap holds a pole, two boxes when it crosses the
// antimeridian. They are a prefilter only (ST_DWithin decides), widened
// by a margin for rounding and for object edges that, as great-circle
// arcs, bulge past their planar bounding box (≈ 6 m covers edges of tens
// of kilometres at mid latitudes).
func searchBoxes(pt [2]float64, radius float64) [][4]float64 {
	const margin = 1e-6 // radians, ≈ 6.4 m
	delta := radius/SphereRadiusM + margin
	deg := 180 / math.Pi
	lat := pt[1] / deg
	minLat, maxLat := (lat-delta)*deg, (lat+delta)*deg
	if delta >= math.Pi/2 || minLat <= -90 || maxLat >= 90 {
		return [][4]float64{{-180, math.Max(minLat, -90), 180, math.Min(maxLat, 90)}}
	}
	s := math.Sin(delta) / math.Cos(lat)
	if s >= 1 {
		return [][4]float64{{-180, minLat, 180, maxLat}}
	}
	dLon := math.Asin(s) * deg
	lo, hi := pt[0]-dLon, pt[0]+dLon
	switch {
	case lo < -180:
		return [][4]float64{{-180, minLat, hi, maxLat}, {lo + 360, minLat, 180, maxLat}}
	case hi > 180:
		return [][4]float64{{lo, minLat, 180, maxLat}, {-180, minLat, hi - 360, maxLat}}
	}
	return [][4]float64{{lo, minLat, hi, maxLat}}
}

func (s *Store) near(ctx context.Context, f ObjectFilter) (*ObjectPage, error) {
	after, err := decodeCursor(f.Cursor, orderDistance)
	if err != nil {
		return nil, err
	}
	q := &sqlQuery{}
	inner := nearQuery(q, *f.Near, f.Radius, f.Class, f.Scopes)
	if after != nil {
		q.where(objectsByDistance.after(q, after.Dist, after.Code))
	}
	sql := `SELECT ` + objectColumns + `, dist FROM (` + inner + `) o` + q.whereSQL() + objectsByDistance.orderLimit(q, f.Limit+1)
	rows, err := s.queryObjects(ctx, s.Reader(ctx), sql, true, q.args...)
	if err != nil {
		return nil, err
	}
	return page(rows, f.Limit, distanceCursor), nil
}

func distanceCursor(o ObjectRow) cursor {
	return cursor{Order: orderDistance, Code: o.Code, Dist: *o.Distance}
}

// nearest finds the exact K nearest on the sphere in two steps, in one
// snapshot: the K nearest by planar distance in degrees (KNN on the GiST
// index) are K objects, so the K-th nearest on the sphere is no farther
// than the farthest of them, D; every object within D is then fetched by
// the radius search and the K best kept.
func (s *Store) nearest(ctx context.Context, f ObjectFilter) (*ObjectPage, error) {
	after, err := decodeCursor(f.Cursor, orderDistance)
	if err != nil {
		return nil, err
	}
	pt := *f.Nearest
	var rows []ObjectRow
	err = s.readSnapshot(ctx, func(tx pgx.Tx) error {
		q := &sqlQuery{}
		ptGeom := fmt.Sprintf("ST_SetSRID(ST_MakePoint(%s, %s), 4326)", q.arg(pt[0]), q.arg(pt[1]))
		cand := `SELECT geom FROM objects WHERE true`
		if f.Class != "" {
			cand += ` AND class_code = ` + q.arg(f.Class)
		}
		if f.Scopes != nil {
			cand += ` AND ` + q.inScopes("grid_code", f.Scopes)
		}
		cand += ` ORDER BY geom <-> ` + ptGeom + ` LIMIT ` + q.arg(f.K)
		var d *float64
		if err := tx.QueryRow(ctx, `SELECT max(ST_Distance(c.geom::geography, `+ptGeom+`::geography, false)) FROM (`+cand+`) c`, q.args...).Scan(&d); err != nil {
			return err
		}
		if d == nil {
			rows = []ObjectRow{}
			return nil // no objects
		}
		// A hair wider than D: ST_DWithin need not round as ST_Distance does.
		radius := *d*(1+1e-9) + 1e-3
		q = &sqlQuery{}
		inner := nearQuery(q, pt, radius, f.Class, f.Scopes)
		inner += objectsByDistance.orderLimit(q, f.K)
		if after != nil {
			q.where(objectsByDistance.after(q, after.Dist, after.Code))
		}
		sql := `SELECT ` + objectColumns + `, dist FROM (` + inner + `) o` + q.whereSQL() + objectsByDistance.orderLimit(q, f.Limit+1)
		var err error
		rows, err = s.queryObjects(ctx, tx, sql, true, q.args...)
		return err
	})
	if err != nil {
		return nil, err
	}
	return page(rows, f.Limit, distanceCursor), nil
}

func (s *Store) queryObjects(ctx context.Context, db querier, sql string, withDistance bool, args ...any) ([]ObjectRow, error) {
	rows, err := db.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	out := []ObjectRow{}
	err = forEach(rows, func() error {
		var extra []any
		var d float64
		if withDistance {
			extra = append(extra, &d)
		}
		o, err := scanObject(rows, extra...)
		if err != nil {
			return err
		}
		if withDistance {
			o.Distance = &d
		}
		out = append(out, *o)
		return nil
	})
	return out, err
}

// page cuts the limit+1 rows a query fetched to limit, with the cursor of
// the next page when there were more.
func page(rows []ObjectRow, limit int, next func(ObjectRow) cursor) *ObjectPage {
	p := &ObjectPage{}
	p.Objects, p.Next = nextPage(rows, limit, next)
	return p
}

// ObjectRow is a stored object as the API shows it.
type ObjectRow struct {
	grid.Object
	GeoJSON   json.RawMessage
	Distance  *float64 // metres, for near/nearest queries
	ClassName string
	CreatedAt string
	UpdatedAt string
	UpdatedBy string // the actor of the last write ("" before access control)
	// ETag is the object's strong entity-tag, quotes included (set by
	// GetObject and the writes, not by the list queries).
	ETag string
}

const objectColumns = `code, class_code, (SELECT c.name FROM object_classes c WHERE c.code = class_code),
	ST_AsGeoJSON(geom, 9), attrs::text, coalesce(grid_code, ''),
	to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), updated_by`

// objectETag is an object row's strong entity-tag: an MD5 of everything
// its representation is made of (code, class, geometry as EWKB, attributes,
// grid) and of updated_at to the microsecond, so every write changes it,
// even one that writes the same content back (no A-B-A). Computed in SQL
// from settings-independent text: hex EWKB, canonical jsonb text, the epoch
// as a numeric; the record's text form quotes what needs quoting.
const objectETag = `'"' || md5(ROW(code, class_code, encode(ST_AsEWKB(geom), 'hex'), attrs::text, grid_code,
	extract(epoch FROM updated_at))::text) || '"'`

func scanObject(row pgx.Row, extra ...any) (*ObjectRow, error) {
	var o ObjectRow
	var gj, attrs string
	dest := append([]any{&o.Code, &o.Class, &o.ClassName, &gj, &attrs, &o.Grid, &o.CreatedAt, &o.UpdatedAt, &o.UpdatedBy}, extra...)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	o.GeoJSON, o.Attrs = json.RawMessage(gj), json.RawMessage(attrs)
	o.Community, o.Street, o.District = prefix(o.Grid, 12), prefix(o.Grid, 9), prefix(o.Grid, 6)
	return &o, nil
}

// scanObjectETag scans objectColumns, objectETag and extra.
func scanObjectETag(row pgx.Row, extra ...any) (*ObjectRow, error) {
	var etag string
	o, err := scanObject(row, append([]any{&etag}, extra...)...)
	if err != nil {
		return nil, err
	}
	o.ETag = etag
	return o, nil
}

// GetObject returns one object, with its ETag.
func (s *Store) GetObject(ctx context.Context, code string) (*ObjectRow, error) {
	o, err := scanObjectETag(s.Reader(ctx).QueryRow(ctx, `SELECT `+objectColumns+`, `+objectETag+` FROM objects WHERE code = $1`, code))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	return o, err
}
