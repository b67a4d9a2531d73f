package tiles

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// The tile envelope with the buffer, in 4326, for the index condition.
const envelope4326 = `ST_Transform(ST_TileEnvelope($1, $2, $3, margin => 0.015625), 4326)`

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

const countObjectsInTile = `SELECT count(*) FROM (SELECT 1 FROM objects WHERE geom && ` + envelope4326 + ` LIMIT $4) x`

// Renderer builds tiles from PostGIS.
type Renderer struct {
	Pool      *pgxpool.Pool
	Catalogue *Catalogue
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
	var out []byte
	for _, s := range l.Visible(z) {
		var q string
		var args = []any{z, x, y}
		switch {
		case s.ID == "object_counts" && z < ObjectsMinZoom:
			q = countQuery(countLevel(z))
		case s.ID == "object_counts":
			// From z14 counts stand in for objects only where a tile would
			// pass the cap: per grid, never a silently cut list.
			var n int
			if err := r.Pool.QueryRow(ctx, countObjectsInTile, z, x, y, ObjectCap+1).Scan(&n); err != nil {
				return nil, err
			}
			if n <= ObjectCap {
				continue
			}
			q = countQuery("grid")
		case s.ID == "objects":
			var n int
			if err := r.Pool.QueryRow(ctx, countObjectsInTile, z, x, y, ObjectCap+1).Scan(&n); err != nil {
				return nil, err
			}
			if n > ObjectCap {
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
