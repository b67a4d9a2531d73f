package data

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/paulmach/orb"

	"gridmap/geo"
	"gridmap/grid"
)

// CheckObject applies the rules an object must meet before it is stored:
// a known class, a code that fits it, an allowed geometry type, positions
// in range, attributes that are a JSON object.
func CheckObject(classes map[string]grid.Class, o *grid.Object) (grid.Class, error) {
	c, ok := classes[o.Class]
	if !ok {
		return c, invalid("class", "unknown class %q (GET /v1/classes lists them; add one with POST /v1/classes)", o.Class)
	}
	if err := grid.ValidateObjectCode(c, o.Code); err != nil {
		return c, invalid("code", "%v", err)
	}
	if o.Geometry == nil {
		return c, invalid("geometry", "geometry is missing")
	}
	if !c.Allows(o.Geometry) {
		return c, invalid("geometry", "class %s (%s) allows %s, not %s", c.Code, c.Name, strings.Join(c.GeometryTypes, ", "), o.Geometry.GeoJSONType())
	}
	if err := geo.CheckRange(o.Geometry); err != nil {
		return c, invalid("geometry", "%v", err)
	}
	if err := checkShape(o.Geometry); err != nil {
		return c, invalid("geometry", "%v", err)
	}
	if len(o.Attrs) == 0 {
		o.Attrs = json.RawMessage("{}")
	} else if t := bytes.TrimSpace(o.Attrs); len(t) == 0 || t[0] != '{' || !json.Valid(t) {
		return c, invalid("attrs", "attributes must be a JSON object")
	}
	return c, nil
}

// checkShape rejects what PostGIS cannot build or would store as nothing:
// empty geometries, lines of fewer than two positions, rings that are not
// closed or have fewer than three distinct corners. (Self-intersections are
// PostGIS's to find: SaveObject asks ST_IsValidDetail.)
func checkShape(g orb.Geometry) error {
	line := func(path string, l orb.LineString) error {
		if len(l) < 2 {
			return fmt.Errorf("%s: a line needs at least 2 positions, this one has %d", path, len(l))
		}
		return nil
	}
	switch g := g.(type) {
	case orb.MultiPoint:
		if len(g) == 0 {
			return fmt.Errorf("geometry is empty")
		}
	case orb.LineString:
		return line("coordinates", g)
	case orb.MultiLineString:
		if len(g) == 0 {
			return fmt.Errorf("geometry is empty")
		}
		for i, l := range g {
			if err := line(fmt.Sprintf("coordinates[%d]", i), l); err != nil {
				return err
			}
		}
	case orb.Polygon:
		if len(g) == 0 {
			return fmt.Errorf("geometry is empty")
		}
		if _, err := geo.MultiPolygonOf(g); err != nil {
			return errors.New(strings.Replace(err.Error(), "coordinates[0][", "coordinates[", 1))
		}
	case orb.MultiPolygon:
		if _, err := geo.MultiPolygonOf(g); err != nil {
			return err
		}
	}
	return nil
}

// checkDistrict: a code that names a district must name the one the object
// lies in (unassigned objects cannot be checked).
func checkDistrict(c grid.Class, code, gridCode string) error {
	if d := prefix(gridCode, 6); d != "" {
		if cd := grid.CodeDistrict(c, code); cd != "" && cd != d {
			return invalid("code", "object code %s names district %s, but the object lies in district %s (grid %s)", code, cd, d, gridCode)
		}
	}
	return nil
}

// SaveObject inserts or replaces one object, assigning it to its grid in
// the same transaction. It reports whether the object is new. With
// mustExist, an unknown code is ErrNotFound and nothing is written.
func (s *Store) SaveObject(ctx context.Context, o *grid.Object, mustExist bool) (created bool, err error) {
	mode := saveUpsert
	if mustExist {
		mode = saveReplace
	}
	_, created, err = s.saveObject(ctx, o, mode, nil)
	return created, err
}

// CreateObject inserts a new object, assigned to its grid; a code that is
// taken is ErrExists and nothing is written.
func (s *Store) CreateObject(ctx context.Context, o *grid.Object) error {
	_, _, err := s.saveObject(ctx, o, saveCreate, nil)
	return err
}

// ReplaceObject replaces an existing object, assigning it to its grid, and
// returns the row it stored (with its new ETag). An unknown code is
// ErrNotFound. With a precondition (ifMatch not empty) the object's row is
// locked (SELECT … FOR UPDATE) in the writing transaction and its current
// ETag compared there, before anything else: a mismatch is a *StaleError
// (errors.Is ErrStale) and nothing is written, so of two writers holding
// the same ETag exactly one wins. The precondition is checked before the
// object's rules, so a stale writer learns that first.
func (s *Store) ReplaceObject(ctx context.Context, o *grid.Object, ifMatch IfMatch) (*ObjectRow, error) {
	row, _, err := s.saveObject(ctx, o, saveReplace, ifMatch)
	return row, err
}

// IfMatch is the precondition of a conditional write: the ETags
// (ObjectRow.ETag, quotes included, compared byte for byte, so a weak tag
// never matches) the object may have now; "*" matches any existing object.
// Empty (nil) means no precondition.
type IfMatch []string

func (m IfMatch) matches(current string) bool {
	for _, t := range m {
		if t == "*" || t == current {
			return true
		}
	}
	return false
}

// lockObject locks an object's row in tx and checks ifMatch against its
// current ETag: ErrNotFound when there is no such object, a *StaleError
// when the ETag differs.
func lockObject(ctx context.Context, tx pgx.Tx, code string, ifMatch IfMatch) error {
	var current string
	err := tx.QueryRow(ctx, `SELECT `+objectETag+` FROM objects WHERE code = $1 FOR UPDATE`, code).Scan(&current)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	if !ifMatch.matches(current) {
		return &StaleError{Code: code, Current: current}
	}
	return nil
}

type saveMode int

const (
	saveUpsert  saveMode = iota
	saveCreate           // insert only
	saveReplace          // update only
)

// saveObject writes o and returns the stored row. ifMatch is honoured in
// saveReplace mode only.
func (s *Store) saveObject(ctx context.Context, o *grid.Object, mode saveMode, ifMatch IfMatch) (row *ObjectRow, created bool, err error) {
	if mode != saveReplace {
		ifMatch = nil
	}
	classes, err := s.Classes(ctx)
	if err != nil {
		return nil, false, err
	}
	// A broken rule is answered after the precondition (when there is
	// one): a stale writer is told first that it is stale.
	c, ruleErr := CheckObject(classes, o)
	var wkb []byte
	if ruleErr == nil {
		if wkb, err = geo.EWKB(o.Geometry); err != nil {
			ruleErr = invalid("geometry", "%v", err)
		}
	}
	if ruleErr != nil && len(ifMatch) == 0 {
		return nil, false, ruleErr
	}
	write := func(tx pgx.Tx) error {
		// No import of units runs until this object is stored (it holds
		// this lock exclusively); edits may, and assignLocked orders this
		// write against them.
		if err := lockUnits(ctx, tx, true); err != nil {
			return err
		}
		if len(ifMatch) > 0 {
			if err := lockObject(ctx, tx, o.Code, ifMatch); err != nil {
				return err
			}
			if ruleErr != nil {
				return ruleErr
			}
		}
		// gridmap_assign intersects lines and polygons with grids; GEOS
		// throws on an invalid input, so say what is wrong first.
		var valid bool
		var reason string
		if err := tx.QueryRow(ctx, `SELECT valid, coalesce(reason, '') FROM ST_IsValidDetail(ST_GeomFromEWKB($1))`, wkb).Scan(&valid, &reason); err != nil {
			return err
		}
		if !valid {
			return invalid("geometry", "invalid geometry: %s", reason)
		}
		g, err := assignLocked(ctx, tx, wkb)
		if err != nil {
			return err
		}
		o.Grid = deref(g)
		if err := guardObject(ctx, tx, o.Code, mode, &o.Grid); err != nil {
			return err
		}
		if err := checkDistrict(c, o.Code, o.Grid); err != nil {
			return err
		}
		const returning = ` RETURNING ` + objectColumns + `, ` + objectETag
		switch mode {
		case saveCreate:
			row, err = scanObjectETag(tx.QueryRow(ctx, `
				INSERT INTO objects (code, class_code, geom, attrs, grid_code, updated_by)
				VALUES ($1, $2, ST_GeomFromEWKB($3), $4, $5, $6)
				ON CONFLICT (code) DO NOTHING`+returning,
				o.Code, o.Class, wkb, string(o.Attrs), g, actorOf(ctx)))
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("object %s: %w", o.Code, ErrExists)
			}
			created = err == nil
			return err
		case saveReplace:
			row, err = scanObjectETag(tx.QueryRow(ctx, `
				UPDATE objects SET class_code = $2, geom = ST_GeomFromEWKB($3), attrs = $4, grid_code = $5, updated_at = now(), updated_by = $6
				WHERE code = $1`+returning,
				o.Code, o.Class, wkb, string(o.Attrs), g, actorOf(ctx)))
			if errors.Is(err, pgx.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		// xmax is 0 on a freshly inserted row version.
		row, err = scanObjectETag(tx.QueryRow(ctx, `
			INSERT INTO objects (code, class_code, geom, attrs, grid_code, updated_by)
			VALUES ($1, $2, ST_GeomFromEWKB($3), $4, $5, $6)
			ON CONFLICT (code) DO UPDATE SET class_code = EXCLUDED.class_code, geom = EXCLUDED.geom,
				attrs = EXCLUDED.attrs, grid_code = EXCLUDED.grid_code, updated_at = now(), updated_by = EXCLUDED.updated_by`+returning+`, xmax = 0`,
			o.Code, o.Class, wkb, string(o.Attrs), g, actorOf(ctx)), &created)
		return err
	}
	// A deadlock with an edit (which re-assigns objects while holding the
	// grids this write waits for) is retried.
	err = retryTx(ctx, func() error { return pgx.BeginFunc(ctx, s.Pool, write) })
	if err != nil {
		return nil, false, err
	}
	o.Community, o.Street, o.District = prefix(o.Grid, 12), prefix(o.Grid, 9), prefix(o.Grid, 6)
	return row, created, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func prefix(s string, n int) string {
	if len(s) < n {
		return ""
	}
	return s[:n]
}

// DeleteObject removes one object.
func (s *Store) DeleteObject(ctx context.Context, code string) error {
	return s.DeleteObjectIf(ctx, code, nil)
}

// DeleteObjectIf removes one object if its ETag matches ifMatch (see
// ReplaceObject): the row is locked and compared in the deleting
// transaction. An unknown code is ErrNotFound, a mismatch a *StaleError;
// nothing is deleted then. An empty ifMatch deletes unconditionally.
func (s *Store) DeleteObjectIf(ctx context.Context, code string, ifMatch IfMatch) error {
	if len(ifMatch) == 0 && !guarded(ctx) {
		tag, err := s.Pool.Exec(ctx, `DELETE FROM objects WHERE code = $1`, code)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		return nil
	}
	return pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		if len(ifMatch) > 0 {
			if err := lockObject(ctx, tx, code, ifMatch); err != nil {
				return err
			}
		}
		if err := guardObject(ctx, tx, code, saveReplace, nil); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM objects WHERE code = $1`, code)
		return err
	})
}

// guardObject runs the context's guard on the grids a write of one object
// touches: the one it is in now (locked until the write commits, unless it
// is created) and, unless it is deleted (after nil), the one it goes to
// ("" outside every grid). An object to replace or delete that does not
// exist is ErrNotFound.
func guardObject(ctx context.Context, tx pgx.Tx, code string, mode saveMode, after *string) error {
	if !guarded(ctx) {
		return nil
	}
	units := []string{}
	if mode != saveCreate {
		var before *string
		err := tx.QueryRow(ctx, `SELECT grid_code FROM objects WHERE code = $1 FOR UPDATE`, code).Scan(&before)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			if mode == saveReplace {
				return ErrNotFound
			}
		case err != nil:
			return err
		default:
			units = append(units, deref(before))
		}
	}
	if after != nil {
		units = append(units, *after)
	}
	return checkUnits(ctx, units...)
}
