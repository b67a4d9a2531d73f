package tiles

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// The tile envelope with the buffer, in 4326, for the index condition. The
// buffer is clipped to the Web Mercator square first: past ±180° the
// transform wraps, and a tile at the antimeridian (x = 0 or 2^z − 1; for
// Shenzhen z1 and z2) would get an inverted box that meets nothing.
const envelope4326 = `ST_Transform(ST_ClipByBox2D(ST_TileEnvelope($1, $2, $3, margin => 0.015625),
    ST_MakeEnvelope(-20037508.342789244, -20037508.342789244, 20037508.342789244, 20037508.342789244, 3857)), 4326)`

// unitQuery renders one level. Geometry is simplified in 4326 to one tile
// pixel ($4 degrees) before it is transformed, so a district's thousands of
// vertices are not projected only to be snapped away; features are ordered
// by code and carry the code as id, so the same data gives the same bytes.
func unitQuery(level string) string {
	return fmt.Sprintf(`
SELECT ST_AsMVT(t, %[1]s, 4096, 'geom', 'id' ORDER BY t.code) FROM (
    SELECT u.code::bigint AS id, u.code, u.name, u.level, coalesce(u.parent_code, '') AS parent_code,
           ST_AsMVTGeom(ST_Transform(ST_Simplify(u.geom, $4, true), 3857), ST_TileEnvelope($1, $2, $3), 4096, 64, true) AS geom
    FROM units u
    WHERE u.valid_to IS NULL AND u.layer = 'base' AND u.level = %[1]s AND u.geom && %[2]s
) t WHERE t.geom IS NOT NULL`, quote(level), envelope4326)
}

func quote(s string) string { return "'" + s + "'" }

// objectQuery renders single objects; ids are the first 60 bits of the
// code's MD5 (object codes are not all numeric).
var objectQuery = `
SELECT ST_AsMVT(t, 'objects', 4096, 'geom', 'id' ORDER BY t.code) FROM (
    SELECT ('x' || left(md5(o.code), 15))::bit(60)::bigint AS id, o.code, o.class_code AS class, c.name AS class_name,
           coalesce(o.grid_code, '') AS grid_code,
           ST_AsMVTGeom(ST_Transform(o.geom, 3857), ST_TileEnvelope($1, $2, $3), 4096, 64, true) AS geom
    FROM objects o JOIN object_classes c ON c.code = o.class_code
    WHERE o.geom && ` + envelope4326 + `
) t WHERE t.geom IS NOT NULL`

// countQuery renders objects per unit of a level as one point each (on the
// unit's surface, so it falls in exactly one tile).
func countQuery(level string) string {
	return fmt.Sprintf(`
SELECT ST_AsMVT(t, 'object_counts', 4096, 'geom', 'id' ORDER BY t.code) FROM (
    SELECT u.code::bigint AS id, u.code, u.name, u.level,
           (SELECT coalesce(sum(c.n), 0)::bigint FROM object_counts c
            WHERE c.grid_code >= u.code AND c.grid_code < gridmap_code_upper(u.code)) AS count,
           ST_AsMVTGeom(ST_Transform(ST_PointOnSurface(u.geom), 3857), ST_TileEnvelope($1, $2, $3), 4096, 64, true) AS geom
    FROM units u
    WHERE u.valid_to IS NULL AND u.layer = 'base' AND u.level = %s AND u.geom && %s
) t WHERE t.geom IS NOT NULL AND t.count > 0`, quote(level), envelope4326)
}

// countObjectsInTile counts (up to $4) the objects that meet the buffered
// tile envelope: the features the objects query would draw, and the rule
// tile invalidation applies (a geometry meeting the envelope), so that an
// object whose bounding box only grazes the tile changes neither.
const countObjectsInTile = `SELECT count(*) FROM (SELECT 1 FROM objects
    WHERE geom && ` + envelope4326 + ` AND (GeometryType(geom) = 'POINT' OR ST_Intersects(geom, ` + envelope4326 + `))
    LIMIT $4) x`

// Renderer builds tiles from PostGIS.
type Renderer struct {
	Pool      *pgxpool.Pool
	Catalogue *Catalogue
	// ObjectCap is the most object features a tile carries (0: ObjectCap).
	ObjectCap int
}

func (r *Renderer) objectCap() int {
	if r.ObjectCap > 0 {
		return r.ObjectCap
	}
	return ObjectCap
}

// ErrNoLayer is a tileset name the catalogue does not have.
type ErrNoLayer struct{ Name string }

func (e *ErrNoLayer) Error() string { return fmt.Sprintf("no tileset %q", e.Name) }

// Render returns the uncompressed MVT of a tile: the visible source layers,
// each an ST_AsMVT, concatenated (an MVT is a list of layers, so the bytes
// of single-layer tiles append). An empty result has no features at all.
func (r *Renderer) Render(ctx context.Context, layer string, z, x, y int) ([]byte, error) {
	l, ok := r.Catalogue.Layer(layer)
	if !ok {
		return nil, &ErrNoLayer{layer}
	}
	if err := CheckTile(z, x, y); err != nil {
		return nil, err
	}
	// From z14 single objects are drawn unless the tile would pass the
	// cap; then per-grid counts stand in for them: never a cut list.
	overCap := func() (bool, error) { return false, nil }
	if z >= ObjectsMinZoom {
		var counted, over bool
		overCap = func() (bool, error) {
			if !counted {
				var n int
				if err := r.Pool.QueryRow(ctx, countObjectsInTile, z, x, y, r.objectCap()+1).Scan(&n); err != nil {
					return false, fmt.Errorf("render %s/%d/%d/%d: count objects: %w", layer, z, x, y, err)
				}
				counted, over = true, n > r.objectCap()
			}
			return over, nil
		}
	}
	var out []byte
	for _, s := range l.Visible(z) {
		var q string
		var args = []any{z, x, y}
		switch {
		case s.ID == "object_counts" && z < ObjectsMinZoom:
			q = countQuery(countLevel(z))
		case s.ID == "object_counts":
			over, err := overCap()
			if err != nil {
				return nil, err
			}
			if !over {
				continue
			}
			q = countQuery("grid")
		case s.ID == "objects":
			over, err := overCap()
			if err != nil {
				return nil, err
			}
			if over {
				continue
			}
			q = s.query
		default:
			q = s.query
			args = append(args, pixelDegrees(z))
		}
		var b []byte
		if err := r.Pool.QueryRow(ctx, q, args...).Scan(&b); err != nil {
			return nil, fmt.Errorf("render %s/%d/%d/%d %s: %w", layer, z, x, y, s.ID, err)
		}
		out = append(out, b...)
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
