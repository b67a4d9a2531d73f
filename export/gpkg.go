package export

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/wkb"

	// The pure-Go SQLite (no cgo, so the binary stays static); it is
	// built with the R*Tree module GeoPackage's spatial index needs.
	_ "modernc.org/sqlite"

	"gridmap/geo"
)

// The GeoPackage written is version 1.3 (OGC 12-128r17): application_id
// "GPKG" and user_version 10300. 1.4 changes nothing this file uses but
// the R-tree's update triggers, and GDAL before 3.8 warns about a
// user_version above 1.3; 1.3 is what the readers in the field take.
const (
	gpkgApplicationID = 0x47504B47 // "GPKG"
	gpkgUserVersion   = 10300
)

// SRS ids of the file. WGS-84 is EPSG:4326; GCJ-02 and BD-09 have no
// identifier in any register, so they get rows of their own, in the range
// GDAL uses for SRS it has no code for, under organization "gridmap".
const (
	srsWGS84 = 4326
	srsGCJ02 = 100002
	srsBD09  = 100009
)

const wktWGS84 = `GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563,AUTHORITY["EPSG","7030"]],AUTHORITY["EPSG","6326"]],PRIMEM["Greenwich",0,AUTHORITY["EPSG","8901"]],UNIT["degree",0.0174532925199433,AUTHORITY["EPSG","9122"]],AXIS["Latitude",NORTH],AXIS["Longitude",EAST],AUTHORITY["EPSG","4326"]]`

// gpkgSRS is the srs row of an output CRS. The shifted systems are
// described honestly: a geographic CRS on the WGS 84 ellipsoid whose datum
// is named for what it is — WGS-84 positions moved by a non-linear shift
// no WKT (and no PROJ pipeline) can state — and with no authority, so no
// reader mistakes it for EPSG:4326 and none converts it silently.
func gpkgSRS(crs geo.CRS) (id int, name, org string, orgID int, def, desc string) {
	switch crs {
	case geo.GCJ02:
		return srsGCJ02, "GCJ-02", "gridmap", 2, shiftedWKT("GCJ-02"),
			"GCJ-02 (火星坐标, Amap/Tencent/Google China): WGS 84 positions with the non-linear GCJ-02 obfuscation applied; not a datum, so no PROJ transformation exists; convert with gridmap's crs=gcj02 routes. " + geo.GCJ02URI
	case geo.BD09:
		return srsBD09, "BD-09", "gridmap", 9, shiftedWKT("BD-09"),
			"BD-09 (Baidu): GCJ-02 positions with Baidu's further shift applied; not a datum, so no PROJ transformation exists; convert with gridmap's crs=bd09 routes. " + geo.BD09URI
	}
	return srsWGS84, "WGS 84 geodetic", "EPSG", 4326, wktWGS84, "longitude/latitude coordinates in decimal degrees on the WGS 84 spheroid"
}

func shiftedWKT(name string) string {
	return `GEOGCS["` + name + `",DATUM["` + name + ` (WGS 84 shifted, not a geodetic datum)",SPHEROID["WGS 84",6378137,298.257223563]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433],AXIS["Longitude",EAST],AXIS["Latitude",NORTH]]`
}

// gpkgWriter builds the GeoPackage in a temporary file and streams it on
// Close.
type gpkgWriter struct {
	out    io.Writer
	path   string
	db     *sql.DB
	tx     *sql.Tx
	ins    *sql.Stmt
	idx    *sql.Stmt
	s      geo.Schema
	o      Options
	table  string
	srsID  int32
	geom   bool
	scale  float64
	extent orb.Bound
	any    bool
	fid    int64
	blob   bytes.Buffer
	args   []any
	wkb    *wkb.Encoder
}

// NewGPKG writes a GeoPackage with one table named after the schema: a
// feature table (fid, geom, the id column and the fields) with an R-tree
// spatial index when the schema has a geometry type, an attribute table
// otherwise. Nothing reaches w before Close.
func NewGPKG(w io.Writer, s geo.Schema, o Options) (_ Writer, err error) {
	o = o.withDefaults()
	names, err := columnNames(s, o, "fid", "geom")
	if err != nil {
		return nil, err
	}
	names = names[:len(names)-2]
	if s.Name == "" {
		return nil, errors.New("export: a GeoPackage table needs a name")
	}
	f, err := os.CreateTemp(o.TempDir, "gridmap-export-*.gpkg")
	if err != nil {
		return nil, err
	}
	path := f.Name()
	f.Close()
	g := &gpkgWriter{out: w, path: path, s: s, o: o, table: s.Name, geom: s.GeometryType != "", scale: math.Pow10(o.Precision)}
	defer func() {
		if err != nil {
			g.Abort()
		}
	}()
	// One connection: the pragmas below are per connection, and SQLite
	// writes through one anyway.
	if g.db, err = sql.Open("sqlite", path); err != nil {
		return nil, err
	}
	g.db.SetMaxOpenConns(1)
	ctx := context.Background()
	// The file is a scratch file until Close renames nothing and streams
	// it: no journal, no fsync. The page cache stays at SQLite's default
	// (2 MB), which is what bounds the memory of the build.
	for _, p := range []string{
		fmt.Sprintf("PRAGMA application_id = %d", gpkgApplicationID),
		fmt.Sprintf("PRAGMA user_version = %d", gpkgUserVersion),
		"PRAGMA journal_mode = OFF",
		"PRAGMA synchronous = OFF",
	} {
		if _, err = g.db.ExecContext(ctx, p); err != nil {
			return nil, fmt.Errorf("export: gpkg %s: %w", p, err)
		}
	}
	if g.tx, err = g.db.BeginTx(ctx, nil); err != nil {
		return nil, err
	}
	id, name, org, orgID, def, desc := gpkgSRS(o.CRS)
	g.srsID = int32(id)
	stmts := []string{
		`CREATE TABLE gpkg_spatial_ref_sys (srs_name TEXT NOT NULL, srs_id INTEGER NOT NULL PRIMARY KEY, organization TEXT NOT NULL,
			organization_coordsys_id INTEGER NOT NULL, definition TEXT NOT NULL, description TEXT)`,
		`INSERT INTO gpkg_spatial_ref_sys VALUES ('Undefined cartesian SRS', -1, 'NONE', -1, 'undefined', 'undefined cartesian coordinate reference system'),
			('Undefined geographic SRS', 0, 'NONE', 0, 'undefined', 'undefined geographic coordinate reference system')`,
		`CREATE TABLE gpkg_contents (table_name TEXT NOT NULL PRIMARY KEY, data_type TEXT NOT NULL, identifier TEXT UNIQUE, description TEXT DEFAULT '',
			last_change DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')), min_x DOUBLE, min_y DOUBLE, max_x DOUBLE, max_y DOUBLE, srs_id INTEGER,
			CONSTRAINT fk_gc_r_srs_id FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys(srs_id))`,
		`CREATE TABLE gpkg_geometry_columns (table_name TEXT NOT NULL, column_name TEXT NOT NULL, geometry_type_name TEXT NOT NULL, srs_id INTEGER NOT NULL,
			z TINYINT NOT NULL, m TINYINT NOT NULL, CONSTRAINT pk_geom_cols PRIMARY KEY (table_name, column_name), CONSTRAINT uk_gc_table_name UNIQUE (table_name),
			CONSTRAINT fk_gc_tn FOREIGN KEY (table_name) REFERENCES gpkg_contents(table_name), CONSTRAINT fk_gc_srs FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys (srs_id))`,
		`CREATE TABLE gpkg_extensions (table_name TEXT, column_name TEXT, extension_name TEXT NOT NULL, definition TEXT NOT NULL, scope TEXT NOT NULL,
			CONSTRAINT ge_tce UNIQUE (table_name, column_name, extension_name))`,
	}
	for _, q := range stmts {
		if _, err = g.tx.ExecContext(ctx, q); err != nil {
			return nil, fmt.Errorf("export: gpkg schema: %w", err)
		}
	}
	if id != srsWGS84 {
		// The WGS-84 row is there whatever the output CRS: the
		// specification requires it in every GeoPackage.
		w84, n84, o84, oid84, d84, desc84 := gpkgSRS(geo.WGS84)
		if _, err = g.tx.ExecContext(ctx, `INSERT INTO gpkg_spatial_ref_sys VALUES (?, ?, ?, ?, ?, ?)`, n84, w84, o84, oid84, d84, desc84); err != nil {
			return nil, err
		}
	}
	if _, err = g.tx.ExecContext(ctx, `INSERT INTO gpkg_spatial_ref_sys VALUES (?, ?, ?, ?, ?, ?)`, name, id, org, orgID, def, desc); err != nil {
		return nil, err
	}
	t := quoteIdent(g.table)
	var cols, marks strings.Builder
	cols.WriteString("fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL")
	marks.WriteString("?")
	if g.geom {
		fmt.Fprintf(&cols, ", geom %s", gpkgGeometryType(s.GeometryType))
		marks.WriteString(", ?")
	}
	for i, n := range names {
		typ := "TEXT"
		if i > 0 {
			typ = gpkgColumnType(s.Fields[i-1].Type)
		}
		fmt.Fprintf(&cols, ", %s %s", quoteIdent(n), typ)
		marks.WriteString(", ?")
	}
	if _, err = g.tx.ExecContext(ctx, fmt.Sprintf("CREATE TABLE %s (%s)", t, cols.String())); err != nil {
		return nil, fmt.Errorf("export: gpkg table: %w", err)
	}
	dataType := "attributes"
	if g.geom {
		dataType = "features"
	}
	if _, err = g.tx.ExecContext(ctx, `INSERT INTO gpkg_contents (table_name, data_type, identifier, description, srs_id) VALUES (?, ?, ?, '', ?)`,
		g.table, dataType, g.table, nullIf(!g.geom, id)); err != nil {
		return nil, err
	}
	if g.geom {
		if _, err = g.tx.ExecContext(ctx, `INSERT INTO gpkg_geometry_columns VALUES (?, 'geom', ?, ?, 0, 0)`, g.table, gpkgGeometryType(s.GeometryType), id); err != nil {
			return nil, err
		}
		// The index is filled row by row with the bounds at hand; its
		// triggers (which need the ST_ functions of a GeoPackage reader)
		// come at Close, so none runs during the load.
		if _, err = g.tx.ExecContext(ctx, fmt.Sprintf("CREATE VIRTUAL TABLE %s USING rtree(id, minx, maxx, miny, maxy)", quoteIdent(g.rtree()))); err != nil {
			return nil, fmt.Errorf("export: gpkg spatial index: %w", err)
		}
		if _, err = g.tx.ExecContext(ctx, `INSERT INTO gpkg_extensions VALUES (?, 'geom', 'gpkg_rtree_index', 'http://www.geopackage.org/spec/#extension_rtree', 'write-only')`, g.table); err != nil {
			return nil, err
		}
		if g.idx, err = g.tx.PrepareContext(ctx, fmt.Sprintf("INSERT INTO %s VALUES (?, ?, ?, ?, ?)", quoteIdent(g.rtree()))); err != nil {
			return nil, err
		}
	}
	if g.ins, err = g.tx.PrepareContext(ctx, fmt.Sprintf("INSERT INTO %s VALUES (%s)", t, marks.String())); err != nil {
		return nil, err
	}
	g.args = make([]any, 0, len(names)+2)
	g.wkb = wkb.NewEncoder(&g.blob).SetByteOrder(binary.LittleEndian)
	return g, nil
}

func (g *gpkgWriter) rtree() string { return "rtree_" + g.table + "_geom" }

func nullIf(null bool, v any) any {
	if null {
		return nil
	}
	return v
}

// quoteIdent quotes an SQLite identifier.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// gpkgGeometryType is the geometry_type_name of a schema's geometry type.
func gpkgGeometryType(t string) string {
	switch t {
	case "Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon":
		return strings.ToUpper(t)
	case "GeometryCollection":
		return "GEOMETRYCOLLECTION"
	}
	return "GEOMETRY"
}

func gpkgColumnType(t geo.FieldType) string {
	switch t {
	case geo.Integer:
		return "INTEGER"
	case geo.Real:
		return "DOUBLE"
	case geo.Boolean:
		return "BOOLEAN"
	case geo.Time:
		return "DATETIME"
	}
	return "TEXT"
}

func (g *gpkgWriter) Write(r *geo.Row) error {
	if err := checkRow(g.s, r); err != nil {
		return err
	}
	g.fid++
	g.args = append(g.args[:0], g.fid)
	var bound orb.Bound
	indexed := false
	if g.geom {
		geom := geo.GeometryFromWGS84(g.o.CRS, r.Geometry)
		if geom == nil {
			g.args = append(g.args, nil)
		} else {
			geom = roundGeometry(geom, g.scale)
			empty := isEmpty(geom)
			if !empty {
				bound, indexed = geom.Bound(), true
			}
			if err := g.encode(geom, bound, empty); err != nil {
				return err
			}
			g.args = append(g.args, g.blob.Bytes())
		}
	}
	g.args = append(g.args, r.ID)
	for i, f := range g.s.Fields {
		v, err := gpkgValue(f.Type, r.Values[i])
		if err != nil {
			return err
		}
		g.args = append(g.args, v)
	}
	if _, err := g.ins.Exec(g.args...); err != nil {
		return fmt.Errorf("export: gpkg row %q: %w", r.ID, err)
	}
	if indexed {
		if _, err := g.idx.Exec(g.fid, bound.Min[0], bound.Max[0], bound.Min[1], bound.Max[1]); err != nil {
			return err
		}
		if g.any {
			g.extent = g.extent.Union(bound)
		} else {
			g.extent, g.any = bound, true
		}
	}
	return nil
}

// encode makes the GeoPackage geometry blob of geom: the "GP" header
// (version 0, little-endian, the envelope of anything but a point, the
// empty flag) with the srs id, then ISO WKB.
func (g *gpkgWriter) encode(geom orb.Geometry, b orb.Bound, empty bool) error {
	g.blob.Reset()
	flags := byte(1) // little-endian
	_, point := geom.(orb.Point)
	withEnvelope := !point && !empty
	if withEnvelope {
		flags |= 1 << 1 // envelope [minx, maxx, miny, maxy]
	}
	if empty {
		flags |= 1 << 4
	}
	var h [8]byte
	h[0], h[1], h[2], h[3] = 'G', 'P', 0, flags
	binary.LittleEndian.PutUint32(h[4:], uint32(g.srsID))
	g.blob.Write(h[:])
	if withEnvelope {
		var e [32]byte
		for i, v := range []float64{b.Min[0], b.Max[0], b.Min[1], b.Max[1]} {
			binary.LittleEndian.PutUint64(e[8*i:], math.Float64bits(v))
		}
		g.blob.Write(e[:])
	}
	return g.wkb.Encode(geom)
}

// roundGeometry rounds every position to the writer's precision in place,
// as the text formats do, so the formats of one export agree.
func roundGeometry(g orb.Geometry, scale float64) orb.Geometry {
	round := func(ps []orb.Point) {
		for i := range ps {
			ps[i][0] = math.Round(ps[i][0]*scale) / scale
			ps[i][1] = math.Round(ps[i][1]*scale) / scale
		}
	}
	switch x := g.(type) {
	case orb.Point:
		return orb.Point{math.Round(x[0]*scale) / scale, math.Round(x[1]*scale) / scale}
	case orb.MultiPoint:
		round(x)
	case orb.LineString:
		round(x)
	case orb.Ring:
		round(x)
	case orb.MultiLineString:
		for _, l := range x {
			round(l)
		}
	case orb.Polygon:
		for _, r := range x {
			round(r)
		}
	case orb.MultiPolygon:
		for _, p := range x {
			for _, r := range p {
				round(r)
			}
		}
	case orb.Collection:
		for i, m := range x {
			x[i] = roundGeometry(m, scale)
		}
	}
	return g
}

// gpkgValue is one attribute as SQLite stores it: times as GeoPackage's
// DATETIME text (ISO 8601 in UTC with milliseconds), booleans as 0/1,
// JSON as its text.
func gpkgValue(t geo.FieldType, v any) (any, error) {
	switch x := v.(type) {
	case nil, string, int64, float64:
		return x, nil
	case int:
		return int64(x), nil
	case bool:
		if x {
			return int64(1), nil
		}
		return int64(0), nil
	case time.Time:
		return x.UTC().Format("2006-01-02T15:04:05.000Z"), nil
	}
	return textValue(t, v)
}

func (g *gpkgWriter) Close() error {
	defer g.Abort()
	ctx := context.Background()
	if g.geom {
		t, rt := quoteIdent(g.table), quoteIdent(g.rtree())
		bounds := func(row string) string {
			return fmt.Sprintf("%s.fid, ST_MinX(%[1]s.geom), ST_MaxX(%[1]s.geom), ST_MinY(%[1]s.geom), ST_MaxY(%[1]s.geom)", row)
		}
		// The triggers of the extension (GeoPackage 1.3, annex F.3), so
		// that whoever edits the file keeps the index right.
		name := func(suffix string) string { return quoteIdent(g.rtree() + "_" + suffix) }
		for _, q := range []string{
			fmt.Sprintf("CREATE TRIGGER %s AFTER INSERT ON %s WHEN (new.geom NOT NULL AND NOT ST_IsEmpty(NEW.geom)) BEGIN INSERT OR REPLACE INTO %s VALUES (%s); END", name("insert"), t, rt, bounds("NEW")),
			fmt.Sprintf("CREATE TRIGGER %s AFTER UPDATE OF geom ON %s WHEN OLD.fid = NEW.fid AND (NEW.geom NOTNULL AND NOT ST_IsEmpty(NEW.geom)) BEGIN INSERT OR REPLACE INTO %s VALUES (%s); END", name("update1"), t, rt, bounds("NEW")),
			fmt.Sprintf("CREATE TRIGGER %s AFTER UPDATE OF geom ON %s WHEN OLD.fid = NEW.fid AND (NEW.geom ISNULL OR ST_IsEmpty(NEW.geom)) BEGIN DELETE FROM %s WHERE id = OLD.fid; END", name("update2"), t, rt),
			fmt.Sprintf("CREATE TRIGGER %s AFTER UPDATE ON %s WHEN OLD.fid != NEW.fid AND (NEW.geom NOTNULL AND NOT ST_IsEmpty(NEW.geom)) BEGIN DELETE FROM %s WHERE id = OLD.fid; INSERT OR REPLACE INTO %s VALUES (%s); END", name("update3"), t, rt, rt, bounds("NEW")),
			fmt.Sprintf("CREATE TRIGGER %s AFTER UPDATE ON %s WHEN OLD.fid != NEW.fid AND (NEW.geom ISNULL OR ST_IsEmpty(NEW.geom)) BEGIN DELETE FROM %s WHERE id IN (OLD.fid, NEW.fid); END", name("update4"), t, rt),
			fmt.Sprintf("CREATE TRIGGER %s AFTER DELETE ON %s WHEN old.geom NOT NULL BEGIN DELETE FROM %s WHERE id = OLD.fid; END", name("delete"), t, rt),
		} {
			if _, err := g.tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("export: gpkg index trigger: %w", err)
			}
		}
		if g.any {
			if _, err := g.tx.ExecContext(ctx, `UPDATE gpkg_contents SET min_x = ?, min_y = ?, max_x = ?, max_y = ?`,
				g.extent.Min[0], g.extent.Min[1], g.extent.Max[0], g.extent.Max[1]); err != nil {
				return err
			}
		}
	}
	if err := g.tx.Commit(); err != nil {
		return err
	}
	g.tx = nil
	if err := g.db.Close(); err != nil {
		return err
	}
	g.db = nil
	f, err := os.Open(g.path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(g.out, f)
	return err
}

// Abort closes the database and removes the file; Close calls it too.
func (g *gpkgWriter) Abort() {
	for _, st := range []*sql.Stmt{g.ins, g.idx} {
		if st != nil {
			st.Close()
		}
	}
	g.ins, g.idx = nil, nil
	if g.tx != nil {
		_ = g.tx.Rollback()
		g.tx = nil
	}
	if g.db != nil {
		g.db.Close()
		g.db = nil
	}
	if g.path != "" {
		os.Remove(g.path)
		g.path = ""
	}
}
