package data

import (
	"bytes"
	"context"
	"embed"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/paulmach/orb"

	"gridmap/geo"
	"gridmap/grid"
)

//go:embed seed/*.csv
var seedFiles embed.FS

// seedClasses loads the class catalogue's seed, leaving existing classes
// as they are.
func (s *Store) seedClasses(ctx context.Context) error {
	classes, err := SeedClasses()
	if err != nil {
		return err
	}
	batch := &pgx.Batch{}
	for _, c := range classes {
		batch.Queue(`INSERT INTO object_classes (code, kind, major, major_name, minor, name, geometry_types)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (code) DO NOTHING`,
			c.Code, string(c.Kind), c.Major, c.MajorName, c.Minor, c.Name, c.GeometryTypes)
	}
	return s.Pool.SendBatch(ctx, batch).Close()
}

// SeedClasses reads data/seed/object_classes.csv.
func SeedClasses() ([]grid.Class, error) {
	raw, err := seedFiles.ReadFile("seed/object_classes.csv")
	if err != nil {
		return nil, err
	}
	return ReadClasses(bytes.NewReader(raw))
}

// ReadClasses reads a class catalogue in the seed's CSV form (header
// code,kind,major,major_name,minor,name,geometry_types; types |-separated),
// naming the line of the first bad row.
func ReadClasses(in io.Reader) ([]grid.Class, error) {
	r := csv.NewReader(in)
	r.FieldsPerRecord = 7
	if _, err := r.Read(); err != nil {
		return nil, fmt.Errorf("class CSV header: %w", err)
	}
	var out []grid.Class
	for line := 2; ; line++ {
		rec, err := r.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("class CSV: %w", err)
		}
		c := grid.Class{Code: rec[0], Kind: grid.ObjectKind(rec[1]), Major: rec[2], MajorName: rec[3], Minor: rec[4], Name: rec[5],
			GeometryTypes: strings.Split(rec[6], "|")}
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("class CSV line %d: %w", line, err)
		}
		out = append(out, c)
	}
}

// Classes returns the catalogue by code.
func (s *Store) Classes(ctx context.Context) (map[string]grid.Class, error) {
	rows, err := s.Pool.Query(ctx, `SELECT code, kind, major, major_name, minor, name, geometry_types FROM object_classes ORDER BY code`)
	if err != nil {
		return nil, err
	}
	out := map[string]grid.Class{}
	err = forEach(rows, func() error {
		var c grid.Class
		var kind string
		if err := rows.Scan(&c.Code, &kind, &c.Major, &c.MajorName, &c.Minor, &c.Name, &c.GeometryTypes); err != nil {
			return err
		}
		c.Kind = grid.ObjectKind(kind)
		out[c.Code] = c
		return nil
	})
	return out, err
}

// AddClass adds a class to the catalogue.
func (s *Store) AddClass(ctx context.Context, c grid.Class) error {
	if err := c.Validate(); err != nil {
		return invalid("class", "%v", err)
	}
	_, err := s.Pool.Exec(ctx, `INSERT INTO object_classes (code, kind, major, major_name, minor, name, geometry_types)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, c.Code, string(c.Kind), c.Major, c.MajorName, c.Minor, c.Name, c.GeometryTypes)
	if isPgCode(err, "23505") {
		return fmt.Errorf("class %s: %w", c.Code, ErrExists)
	}
	return err
}

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
	err = pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		// Grids stay as they are until this object is assigned and stored
		// (a units import holds the same lock exclusively).
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
		var g *string
		if err := tx.QueryRow(ctx, `SELECT gridmap_assign(ST_GeomFromEWKB($1))`, wkb).Scan(&g); err != nil {
			return err
		}
		o.Grid = deref(g)
		if err := checkDistrict(c, o.Code, o.Grid); err != nil {
			return err
		}
		const returning = ` RETURNING ` + objectColumns + `, ` + objectETag
		var err error
		switch mode {
		case saveCreate:
			row, err = scanObjectETag(tx.QueryRow(ctx, `
				INSERT INTO objects (code, class_code, geom, attrs, grid_code)
				VALUES ($1, $2, ST_GeomFromEWKB($3), $4, $5)
				ON CONFLICT (code) DO NOTHING`+returning,
				o.Code, o.Class, wkb, string(o.Attrs), g))
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("object %s: %w", o.Code, ErrExists)
			}
			created = err == nil
			return err
		case saveReplace:
			row, err = scanObjectETag(tx.QueryRow(ctx, `
				UPDATE objects SET class_code = $2, geom = ST_GeomFromEWKB($3), attrs = $4, grid_code = $5, updated_at = now()
				WHERE code = $1`+returning,
				o.Code, o.Class, wkb, string(o.Attrs), g))
			if errors.Is(err, pgx.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		// xmax is 0 on a freshly inserted row version.
		row, err = scanObjectETag(tx.QueryRow(ctx, `
			INSERT INTO objects (code, class_code, geom, attrs, grid_code)
			VALUES ($1, $2, ST_GeomFromEWKB($3), $4, $5)
			ON CONFLICT (code) DO UPDATE SET class_code = EXCLUDED.class_code, geom = EXCLUDED.geom,
				attrs = EXCLUDED.attrs, grid_code = EXCLUDED.grid_code, updated_at = now()`+returning+`, xmax = 0`,
			o.Code, o.Class, wkb, string(o.Attrs), g), &created)
		return err
	})
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

// ObjectRow is a stored object as the API shows it.
type ObjectRow struct {
	grid.Object
	GeoJSON   json.RawMessage
	Distance  *float64 // metres, for near/nearest queries
	ClassName string
	CreatedAt string
	UpdatedAt string
	// ETag is the object's strong entity-tag, quotes included (set by
	// GetObject and the writes, not by the list queries).
	ETag string
}

const objectColumns = `code, class_code, (SELECT c.name FROM object_classes c WHERE c.code = class_code),
	ST_AsGeoJSON(geom, 9), attrs::text, coalesce(grid_code, ''),
	to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')`

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
	dest := append([]any{&o.Code, &o.Class, &o.ClassName, &gj, &attrs, &o.Grid, &o.CreatedAt, &o.UpdatedAt}, extra...)
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
	o, err := scanObjectETag(s.Pool.QueryRow(ctx, `SELECT `+objectColumns+`, `+objectETag+` FROM objects WHERE code = $1`, code))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	return o, err
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
	if len(ifMatch) == 0 {
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
		if err := lockObject(ctx, tx, code, ifMatch); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM objects WHERE code = $1`, code)
		return err
	})
}

// ReassignAfterBoundaryChange moves exactly the objects whose grid changes
// when a grid's geometry goes from oldGeom to newGeom, inside the caller's
// transaction (after the unit row itself was updated). Only objects that
// touch the old or the new geometry can change; each is assigned again by
// gridmap_assign and updated only if its grid differs. It returns the codes
// of the moved objects.
func ReassignAfterBoundaryChange(ctx context.Context, tx pgx.Tx, oldGeom, newGeom orb.Geometry) ([]string, error) {
	oldB, err := geo.EWKB(oldGeom)
	if err != nil {
		return nil, err
	}
	newB, err := geo.EWKB(newGeom)
	if err != nil {
		return nil, err
	}
	return reassignRegion(ctx, tx, `SELECT ST_Union(ST_GeomFromEWKB($1), ST_GeomFromEWKB($2)) AS g`, oldB, newB)
}

// AddClasses adds classes in one transaction, leaving existing codes as
// they are; it returns how many were added and the codes that existed.
func (s *Store) AddClasses(ctx context.Context, classes []grid.Class) (int, []string, error) {
	added := 0
	var existing []string
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		for _, c := range classes {
			if err := c.Validate(); err != nil {
				return invalid("class", "%v", err)
			}
			tag, err := tx.Exec(ctx, `INSERT INTO object_classes (code, kind, major, major_name, minor, name, geometry_types)
				VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (code) DO NOTHING`,
				c.Code, string(c.Kind), c.Major, c.MajorName, c.Minor, c.Name, c.GeometryTypes)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 1 {
				added++
			} else {
				existing = append(existing, c.Code)
			}
		}
		return nil
	})
	return added, existing, err
}
