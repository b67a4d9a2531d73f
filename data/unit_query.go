package data

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"gridmap/geo"
	"gridmap/grid"
)

// GeometryMode chooses how much geometry a read returns.
type GeometryMode string

const (
	GeometryNone       GeometryMode = "none"
	GeometrySimplified GeometryMode = "simplified"
	GeometryFull       GeometryMode = "full"
)

// SimplifyDegrees is the tolerance of GeometrySimplified: about 10 m,
// enough for an overview map, topology preserved per unit.
const SimplifyDegrees = 0.0001

// UnitFilter selects current units (or, with AsOf, the versions valid
// then). Empty fields do not filter.
type UnitFilter struct {
	Layer string
	// AsOf, when not nil, selects the versions valid at that instant
	// ([valid_from, valid_to)) instead of the current ones.
	AsOf     *time.Time
	Level    grid.Level
	Parent   string
	BBox     *[4]float64 // min lon, min lat, max lon, max lat
	Geometry GeometryMode
	After    string // keyset: codes greater than this
	Limit    int
	// Scopes, when not nil, keep the units in one of these units'
	// subtrees (a scoped reader's, auth.Identity.ReadScopes).
	Scopes []string
}

// UnitRow is one current unit as the read API shows it.
type UnitRow struct {
	Layer      string
	Code       string
	Name       string
	Level      grid.Level
	ParentCode *string
	Complete   bool
	AreaM2     float64
	Version    int
	ValidFrom  string
	Geometry   json.RawMessage // GeoJSON, nil for GeometryNone
	// Revision names this version of the unit: an MD5 (hex) of layer,
	// code, version and valid_from to the microsecond. Every import that
	// changes a unit makes a new version, so it changes with the unit;
	// valid_from keeps it from repeating when a database is rebuilt.
	Revision string
}

func geometryExpr(m GeometryMode) string {
	switch m {
	case GeometryNone:
		return "NULL::text"
	case GeometrySimplified:
		return fmt.Sprintf("ST_AsGeoJSON(ST_SimplifyPreserveTopology(geom, %g), 7)", SimplifyDegrees)
	default:
		return "ST_AsGeoJSON(geom, 9)"
	}
}

// ListUnits returns current units in code order.
func (s *Store) ListUnits(ctx context.Context, f UnitFilter) ([]UnitRow, error) {
	if f.Layer == "" {
		f.Layer = grid.BaseLayer
	}
	q := &sqlQuery{}
	q.where(validAt(q, f.AsOf))
	q.where("layer = " + q.arg(f.Layer))
	if f.Level != "" {
		q.where("level = " + q.arg(string(f.Level)))
	}
	if f.Parent != "" {
		q.where("parent_code = " + q.arg(f.Parent))
	}
	if f.BBox != nil {
		q.where(q.intersects("geom", *f.BBox))
	}
	q.whereInScopes("code", f.Scopes)
	if f.After != "" {
		q.where(unitsByCode.after(q, f.After))
	}
	sql := unitSelect(f.Geometry) + q.whereSQL() + unitsByCode.orderLimit(q, f.Limit)
	return s.queryUnits(ctx, sql, q.args...)
}

// unitsByCode is the order of unit lists.
var unitsByCode = keyset{cols: []string{"code"}}

func unitSelect(m GeometryMode) string {
	return `SELECT layer, code, name, level, parent_code, complete, area_m2, version,
	        to_char(valid_from AT TIME ZONE 'UTC', ` + rfc3339Micro + `), ` + geometryExpr(m) + `,
	        md5(ROW(layer, code, version, extract(epoch FROM valid_from))::text) FROM units`
}

func (s *Store) queryUnits(ctx context.Context, q string, args ...any) ([]UnitRow, error) {
	rows, err := s.Reader(ctx).Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	out := []UnitRow{}
	err = forEach(rows, func() error {
		var u UnitRow
		var level string
		var g *string
		if err := rows.Scan(&u.Layer, &u.Code, &u.Name, &level, &u.ParentCode, &u.Complete, &u.AreaM2, &u.Version, &u.ValidFrom, &g, &u.Revision); err != nil {
			return err
		}
		u.Level = grid.Level(level)
		if g != nil {
			u.Geometry = json.RawMessage(*g)
		}
		out = append(out, u)
		return nil
	})
	return out, err
}

// GetUnit returns the current version of a unit.
func (s *Store) GetUnit(ctx context.Context, layer, code string, m GeometryMode) (*UnitRow, error) {
	return s.GetUnitAsOf(ctx, layer, code, m, nil)
}

// GetUnitAsOf returns the version of a unit valid at asOf (the current one
// when asOf is nil); ErrNotFound when there was none then.
func (s *Store) GetUnitAsOf(ctx context.Context, layer, code string, m GeometryMode, asOf *time.Time) (*UnitRow, error) {
	if layer == "" {
		layer = grid.BaseLayer
	}
	q := &sqlQuery{}
	q.where(validAt(q, asOf))
	q.where("layer = " + q.arg(layer))
	q.where("code = " + q.arg(code))
	us, err := s.queryUnits(ctx, unitSelect(m)+q.whereSQL(), q.args...)
	if err != nil {
		return nil, err
	}
	if len(us) == 0 {
		return nil, ErrNotFound
	}
	return &us[0], nil
}

// Layers lists the layer names in the store.
func (s *Store) Layers(ctx context.Context) ([]string, error) {
	rows, err := s.Reader(ctx).Query(ctx, `SELECT name FROM layers ORDER BY name`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// CountUnits counts current units per level in a layer.
func (s *Store) CountUnits(ctx context.Context, layer string) (map[grid.Level]int, error) {
	rows, err := s.Reader(ctx).Query(ctx, `SELECT level, count(*) FROM units WHERE valid_to IS NULL AND layer = $1 GROUP BY level`, layer)
	if err != nil {
		return nil, err
	}
	out := map[grid.Level]int{}
	err = forEach(rows, func() error {
		var l string
		var n int
		if err := rows.Scan(&l, &n); err != nil {
			return err
		}
		out[grid.Level(l)] = n
		return nil
	})
	return out, err
}

// CurrentUnits loads every current unit with its geometry, for the
// in-memory locator.
func (s *Store) CurrentUnits(ctx context.Context) ([]grid.Unit, error) {
	return loadUnits(ctx, s.Reader(ctx), `WHERE valid_to IS NULL`)
}

// NearestGrid is the current base grid closest to a point and its
// distance in metres (on the sphere); ErrNotFound when there are no grids.
// It tells a reporter whose point fell outside every grid how far off it is.
func (s *Store) NearestGrid(ctx context.Context, lon, lat float64) (code, name string, metres float64, err error) {
	err = s.Reader(ctx).QueryRow(ctx, `
		SELECT code, name, ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography)
		FROM units WHERE valid_to IS NULL AND layer = 'base' AND level = 'grid'
		ORDER BY geom <-> ST_SetSRID(ST_MakePoint($1, $2), 4326) LIMIT 1`, lon, lat).Scan(&code, &name, &metres)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", 0, ErrNotFound
	}
	return code, name, metres, err
}

// loadUnits reads units (by a WHERE clause) for a locator, through q.
func loadUnits(ctx context.Context, q querier, where string, args ...any) ([]grid.Unit, error) {
	rows, err := q.Query(ctx, `SELECT layer, code, name, level, coalesce(parent_code, ''), geom FROM units `+where+` ORDER BY layer, code`, args...)
	if err != nil {
		return nil, err
	}
	var out []grid.Unit
	err = forEach(rows, func() error {
		var u grid.Unit
		var level string
		var wkb []byte
		if err := rows.Scan(&u.Layer, &u.Code, &u.Name, &level, &u.ParentCode, &wkb); err != nil {
			return err
		}
		mp, err := geo.MultiPolygonFromEWKB(wkb)
		if err != nil {
			return fmt.Errorf("unit %s: %w", u.Code, err)
		}
		u.Level, u.Geometry = grid.Level(level), mp
		out = append(out, u)
		return nil
	})
	return out, err
}

// unitRef names a unit in statistics.
type unitRef struct {
	Code, Name string
	Level      grid.Level
}

// childCodeLen is the length of the codes of u's children: the prefix
// that groups its grids by child (a grid groups by itself).
func (u unitRef) childCodeLen() int {
	if n := u.Level.Child().CodeLen(); n > 0 && u.Level != grid.Grid {
		return n
	}
	return len(u.Code)
}

// unitWithChildren reads a current base unit and its children (none for a
// grid), in code order; ErrNotFound when there is no such unit.
func unitWithChildren(ctx context.Context, tx pgx.Tx, code string) (unitRef, []unitRef, error) {
	u := unitRef{Code: code}
	var level string
	err := tx.QueryRow(ctx, `SELECT name, level FROM units WHERE valid_to IS NULL AND layer = $1 AND code = $2`, grid.BaseLayer, code).
		Scan(&u.Name, &level)
	if errors.Is(err, pgx.ErrNoRows) {
		return u, nil, ErrNotFound
	}
	if err != nil {
		return u, nil, err
	}
	u.Level = grid.Level(level)
	rows, err := tx.Query(ctx, `SELECT code, name FROM units WHERE valid_to IS NULL AND layer = $1 AND parent_code = $2 ORDER BY code`, grid.BaseLayer, code)
	if err != nil {
		return u, nil, err
	}
	var children []unitRef
	err = forEach(rows, func() error {
		c := unitRef{Level: u.Level.Child()}
		if err := rows.Scan(&c.Code, &c.Name); err != nil {
			return err
		}
		children = append(children, c)
		return nil
	})
	return u, children, err
}
