package data_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/planar"

	"gridmap/data"
	"gridmap/data/demo"
	"gridmap/data/pgtest"
	"gridmap/geo"
	"gridmap/grid"
)

func oiImport(t *testing.T, s *data.Store, format geo.Format, body string, onError data.OnError) (*data.ObjectImportReport, error) {
	t.Helper()
	st, err := geo.NewStream(strings.NewReader(body), format)
	if err != nil {
		return nil, err
	}
	return s.ImportObjects(context.Background(), st, data.ObjectImportOptions{OnError: onError})
}

func oiCount(t *testing.T, s *data.Store) int64 {
	t.Helper()
	var n int64
	if err := s.Pool.QueryRow(context.Background(), `SELECT count(*) FROM objects`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// oiCountsExact checks the trigger-kept counts against a fresh aggregate.
func oiCountsExact(t *testing.T, s *data.Store) {
	t.Helper()
	var diff int
	err := s.Pool.QueryRow(context.Background(), `
		SELECT count(*) FROM (
			SELECT grid_code, class_code, n FROM object_counts
			EXCEPT SELECT coalesce(grid_code, ''), class_code, count(*) FROM objects GROUP BY 1, 2
			UNION ALL
			SELECT coalesce(grid_code, ''), class_code, count(*) FROM objects GROUP BY 1, 2
			EXCEPT SELECT grid_code, class_code, n FROM object_counts) d`).Scan(&diff)
	if err != nil {
		t.Fatal(err)
	}
	if diff != 0 {
		t.Errorf("object_counts differs from the objects in %d rows", diff)
	}
}

// A point inside the small demo's grid 440308001001001 and its code parts.
func oiInside(t *testing.T, s *data.Store) (lon, lat float64, gridCode string) {
	t.Helper()
	err := s.Pool.QueryRow(context.Background(), `
		SELECT ST_X(p), ST_Y(p), code FROM (SELECT code, ST_PointOnSurface(geom) p FROM units
		WHERE valid_to IS NULL AND level = 'grid' ORDER BY code LIMIT 1) x`).Scan(&lon, &lat, &gridCode)
	if err != nil {
		t.Fatal(err)
	}
	return
}

func TestImportObjectsFormats(t *testing.T) {
	t.Parallel()
	s := pgtest.NewDemo(t)
	lon, lat, g := oiInside(t, s)
	d := g[:6]
	fc := fmt.Sprintf(`{"type":"FeatureCollection","features":[
		{"type":"Feature","properties":{"code":"%[3]s0101000001","class":"0101","attrs":{"material":"cast iron"}},"geometry":{"type":"Point","coordinates":[%[1]f,%[2]f]}},
		{"type":"Feature","properties":{"code":"%[3]s0402000001","class":"0402","species":"榕树"},"geometry":{"type":"Point","coordinates":[%[1]f,%[2]f]}},
		{"type":"Feature","properties":{"code":"%[3]s0405000001","class":"0405"},"geometry":{"type":"Polygon","coordinates":[[[%[1]f,%[2]f],[%[4]f,%[2]f],[%[4]f,%[5]f],[%[1]f,%[2]f]]]}}]}`,
		lon, lat, d, lon+0.0001, lat+0.0001)
	rep, err := oiImport(t, s, geo.FormatGeoJSON, fc, "")
	if err != nil || rep.Inserted != 3 || rep.Rejected != 0 {
		t.Fatalf("GeoJSON import: %+v, %v", rep, err)
	}
	o, err := s.GetObject(context.Background(), d+"0402000001")
	if err != nil || o.Grid != g || !strings.Contains(string(o.Attrs), "榕树") {
		t.Errorf("tree: %+v, %v; want grid %s and its species in attrs", o, err, g)
	}
	nd := fmt.Sprintf(`{"type":"Feature","properties":{"code":"%[3]s0118000001","class":"0118"},"geometry":{"type":"Point","coordinates":[%[1]f,%[2]f]}}
`+"\x1e"+`{"type":"Feature","properties":{"code":"%[3]s0118000002","class":"0118"},"geometry":{"type":"Point","coordinates":[%[1]f,%[2]f]}}
`, lon, lat, d)
	if rep, err := oiImport(t, s, geo.FormatNDJSON, nd, ""); err != nil || rep.Inserted != 2 {
		t.Fatalf("NDJSON import: %+v, %v", rep, err)
	}
	csv := fmt.Sprintf("code,class,lon,lat,attrs,owner\n%[3]s0305000001,0305,%[1]f,%[2]f,\"{\"\"volume\"\": 240}\",环卫所\n", lon, lat, d)
	if rep, err := oiImport(t, s, geo.FormatCSV, csv, ""); err != nil || rep.Inserted != 1 {
		t.Fatalf("CSV import: %+v, %v", rep, err)
	}
	if n := oiCount(t, s); n != 6 {
		t.Errorf("%d objects, want 6", n)
	}
	// Re-importing the same GeoJSON changes nothing; a changed attribute updates.
	if rep, _ := oiImport(t, s, geo.FormatGeoJSON, fc, ""); rep.Unchanged != 3 || rep.Inserted+rep.Updated != 0 {
		t.Errorf("re-import: %+v", rep)
	}
	if rep, _ := oiImport(t, s, geo.FormatGeoJSON, strings.Replace(fc, "cast iron", "composite", 1), ""); rep.Updated != 1 || rep.Unchanged != 2 {
		t.Errorf("import with one change: %+v", rep)
	}
	oiCountsExact(t, s)
}

func TestImportObjectsBadRows(t *testing.T) {
	t.Parallel()
	s := pgtest.NewDemo(t)
	lon, lat, g := oiInside(t, s)
	d := g[:6]
	row := func(code, class string, x, y float64) string {
		return fmt.Sprintf("%s,%s,%f,%f\n", code, class, x, y)
	}
	body := "code,class,lon,lat\n" +
		row(d+"0101000001", "0101", lon, lat) + // 2: good
		row(d+"0102000001", "9999", lon, lat) + // 3: unknown class
		row(d+"0101000002", "0102", lon, lat) + // 4: digits 7-10 are not the class
		row("4403030101000001", "0101", lon, lat) + // 5: names another district than where it lies
		row(d+"0405000001", "0405", lon, lat) + // 6: green land must be a polygon
		row(d+"0101000003", "0101", 200, lat) + // 7: longitude out of range
		row(d+"0101000001", "0101", lon, lat) + // 8: duplicate of line 2
		d + "0101000004,0101,abc,22.5\n" + // 9: not a number
		row(d+"0101000005", "0101", 10, 10) + // 10: good, outside every grid
		row("91440300708461136T", "enterprise", lon, lat) + // 11: good (Huawei's real USCC)
		row("91440300708461136X", "enterprise", lon, lat) + // 12: wrong check character
		d + "0101000006,0101,114.1" // 13: cut short
	wantLines := []int64{3, 4, 5, 6, 7, 8, 9, 12, 13}

	// A self-intersecting green area in NDJSON is a bad row too (GEOS
	// would throw on it during assignment).
	bowtie := fmt.Sprintf(`{"type":"Feature","properties":{"code":"%[1]s0405000002","class":"0405"},"geometry":{"type":"Polygon","coordinates":[[[%[2]f,%[3]f],[%[4]f,%[5]f],[%[4]f,%[3]f],[%[2]f,%[5]f],[%[2]f,%[3]f]]]}}`,
		d, lon, lat, lon+0.0001, lat+0.0001)
	good := fmt.Sprintf(`{"type":"Feature","properties":{"code":"%s0101000009","class":"0101"},"geometry":{"type":"Point","coordinates":[%f,%f]}}`, d, lon, lat)
	nrep, err := oiImport(t, s, geo.FormatNDJSON, good+"\n"+bowtie+"\n", data.OnErrorSkip)
	if err != nil || nrep.Inserted != 1 || nrep.Rejected != 1 || nrep.Errors[0].Pos != 2 || !strings.Contains(nrep.Errors[0].Reason, "Self-intersection") {
		t.Fatalf("invalid polygon: %+v, %v", nrep, err)
	}
	if _, err := s.Pool.Exec(context.Background(), `TRUNCATE objects; TRUNCATE object_counts`); err != nil {
		t.Fatal(err)
	}

	rep, err := oiImport(t, s, geo.FormatCSV, body, data.OnErrorAbort)
	if err != nil {
		t.Fatal(err)
	}
	var lines []int64
	for _, e := range rep.Errors {
		lines = append(lines, e.Pos)
		if e.Kind != geo.PosLine || e.Reason == "" {
			t.Errorf("row error without kind or reason: %+v", e)
		}
	}
	sort.Slice(lines, func(i, j int) bool { return lines[i] < lines[j] })
	if fmt.Sprint(lines) != fmt.Sprint(wantLines) || !rep.Aborted || rep.Rows != 12 {
		t.Errorf("rejected lines %v (rows %d, aborted %v), want %v:\n%+v", lines, rep.Rows, rep.Aborted, wantLines, rep.Errors)
	}
	if n := oiCount(t, s); n != 0 {
		t.Errorf("an aborted import wrote %d objects", n)
	}

	rep, err = oiImport(t, s, geo.FormatCSV, body, data.OnErrorSkip)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Aborted || rep.Inserted != 3 || rep.Unassigned != 1 || rep.Rejected != int64(len(wantLines)) {
		t.Errorf("skip: %+v", rep)
	}
	unassigned, err := s.GetObject(context.Background(), d+"0101000005")
	if err != nil || unassigned.Grid != "" {
		t.Errorf("object outside every grid: %+v, %v; want stored without a grid", unassigned, err)
	}
	oiCountsExact(t, s)
}

func TestImportObjectsTruncated(t *testing.T) {
	t.Parallel()
	s := pgtest.NewDemo(t)
	lon, lat, g := oiInside(t, s)
	fc := fmt.Sprintf(`{"type":"FeatureCollection","features":[
		{"type":"Feature","properties":{"code":"%s0101000001","class":"0101"},"geometry":{"type":"Point","coordinates":[%f,%f]}},
		{"type":"Feature","properties":{"code":"%s0101000002","class":"0101"},"geometry":{"type":"Po`, g[:6], lon, lat, g[:6])
	_, err := oiImport(t, s, geo.FormatGeoJSON, fc, data.OnErrorSkip)
	var fatal *data.FatalImportError
	if !errors.As(err, &fatal) || !strings.Contains(err.Error(), "feature 1") || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("truncated FeatureCollection: %v; want a fatal error naming feature 1", err)
	}
	if n := oiCount(t, s); n != 0 {
		t.Errorf("a truncated import wrote %d objects", n)
	}
	if _, err := oiImport(t, s, geo.FormatCSV, "code,class\nx,0101\n", ""); err == nil || !strings.Contains(err.Error(), "lon and lat") {
		t.Errorf("CSV without lon/lat: %v", err)
	}
}

// TestImportAssignmentMatchesBruteForce loads 100,000 demo objects (points
// and polygons, through the empty-table bulk path), then checks every
// point against a brute-force point-in-polygon over all grids and every
// polygon against a brute-force largest-share over all grids in PostGIS.
// A second import of the same stream goes through the merge path.
func TestImportAssignmentMatchesBruteForce(t *testing.T) {
	t.Parallel()
	s := pgtest.NewDemo(t)
	ctx := context.Background()
	st, err := demo.Objects(ctx, s, 100000, 5, false)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := s.ImportObjects(ctx, st, data.ObjectImportOptions{})
	if err != nil || rep.Inserted != 100000 || rep.Rejected != 0 {
		t.Fatalf("import: %+v, %v", rep, err)
	}
	units, err := s.CurrentUnits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var grids []grid.Unit
	for _, u := range units {
		if u.Level == grid.Grid {
			grids = append(grids, u)
		}
	}
	sort.Slice(grids, func(i, j int) bool { return grids[i].Code < grids[j].Code })
	rows, err := s.Pool.Query(ctx, `SELECT code, ST_X(geom), ST_Y(geom), coalesce(grid_code, '') FROM objects WHERE GeometryType(geom) = 'POINT'`)
	if err != nil {
		t.Fatal(err)
	}
	points, wrong := 0, 0
	for rows.Next() {
		var code, got string
		var p orb.Point
		if err := rows.Scan(&code, &p[0], &p[1], &got); err != nil {
			t.Fatal(err)
		}
		want := ""
		for _, g := range grids { // lowest code first
			if planar.MultiPolygonContains(g.Geometry, p) {
				want = g.Code
				break
			}
		}
		points++
		if got != want {
			wrong++
			if wrong <= 5 {
				t.Errorf("object %s at %v: grid %q, brute force %q", code, p, got, want)
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var polys, polyWrong int
	err = s.Pool.QueryRow(ctx, `
		WITH share AS (
			SELECT o.code, o.grid_code, u.code AS g,
			       row_number() OVER (PARTITION BY o.code ORDER BY ST_Area(ST_Intersection(o.geom, u.geom)) DESC, u.code) AS r
			FROM objects o CROSS JOIN units u
			WHERE GeometryType(o.geom) <> 'POINT' AND u.valid_to IS NULL AND u.level = 'grid'
			  AND ST_Intersects(o.geom, u.geom)
		)
		SELECT count(*), count(*) FILTER (WHERE grid_code IS DISTINCT FROM g) FROM share WHERE r = 1`).Scan(&polys, &polyWrong)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d points (%d wrong), %d polygons (%d wrong)", points, wrong, polys, polyWrong)
	if points < 90000 || polys < 1000 || wrong+polyWrong > 0 {
		t.Errorf("assignment differs from brute force: %d of %d points, %d of %d polygons", wrong, points, polyWrong, polys)
	}
	oiCountsExact(t, s)

	st, _ = demo.Objects(ctx, s, 100000, 5, false)
	rep, err = s.ImportObjects(ctx, st, data.ObjectImportOptions{})
	if err != nil || rep.Unchanged != 100000 {
		t.Errorf("re-import through the merge path: %+v, %v", rep, err)
	}
}

// TestClassIntegrityInSQL: the catalogue guards itself without a foreign
// key: a statement with an unknown class fails whole, and a class in use
// cannot be removed.
func TestClassIntegrityInSQL(t *testing.T) {
	t.Parallel()
	s := pgtest.NewDemo(t)
	ctx := context.Background()
	lon, lat, g := oiInside(t, s)
	_, err := s.Pool.Exec(ctx, `
		INSERT INTO objects (code, class_code, geom, grid_code) VALUES
		($1, '0101', ST_SetSRID(ST_MakePoint($3, $4), 4326), $5),
		($2, 'nope', ST_SetSRID(ST_MakePoint($3, $4), 4326), $5)`, g[:6]+"0101000001", g[:6]+"0101000002", lon, lat, g)
	if err == nil || !strings.Contains(err.Error(), "unknown object class nope") {
		t.Fatalf("insert with an unknown class: %v", err)
	}
	if n := oiCount(t, s); n != 0 {
		t.Errorf("%d objects written by a failed statement", n)
	}
	if _, err := s.Pool.Exec(ctx, `INSERT INTO objects (code, class_code, geom, grid_code) VALUES ($1, '0101', ST_SetSRID(ST_MakePoint($2, $3), 4326), $4)`,
		g[:6]+"0101000001", lon, lat, g); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool.Exec(ctx, `UPDATE objects SET class_code = 'nope'`); err == nil || !strings.Contains(err.Error(), "unknown object class") {
		t.Errorf("update to an unknown class: %v", err)
	}
	if _, err := s.Pool.Exec(ctx, `DELETE FROM object_classes WHERE code = '0101'`); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("deleting a class in use: %v", err)
	}
	if _, err := s.Pool.Exec(ctx, `DELETE FROM object_classes WHERE code = '0609'`); err != nil {
		t.Errorf("deleting an unused class: %v", err)
	}
	oiCountsExact(t, s)
}

// TestUnitImportMovesObjects: re-importing two neighbouring grids with a
// moved boundary re-assigns exactly the objects in the strip that changed
// hands, in the import's transaction.
func TestUnitImportMovesObjects(t *testing.T) {
	t.Parallel()
	s := pgtest.NewDemo(t)
	ctx := context.Background()
	st, err := demo.Objects(ctx, s, 20000, 9, true)
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := s.ImportObjects(ctx, st, data.ObjectImportOptions{}); err != nil || rep.Inserted != 20000 {
		t.Fatalf("objects: %+v, %v", rep, err)
	}
	// Grid a takes from its neighbour b the part of b within ~150 m of a.
	var a, b, parent string
	var aNew, bNew []byte
	var inStrip int
	err = s.Pool.QueryRow(ctx, `
		WITH pair AS (
			SELECT x.code AS a, y.code AS b, x.parent_code, x.geom AS ga, y.geom AS gb
			FROM units x JOIN units y ON y.parent_code = x.parent_code AND y.code > x.code
			     AND ST_Relate(x.geom, y.geom, '****1****')
			WHERE x.valid_to IS NULL AND y.valid_to IS NULL AND x.level = 'grid'
			ORDER BY x.code, y.code LIMIT 1
		), strip AS (
			SELECT *, ST_CollectionExtract(ST_Intersection(gb, ST_Buffer(ga, 0.0015)), 3) AS s FROM pair
		)
		SELECT a, b, parent_code,
		       ST_AsEWKB(ST_Multi(ST_CollectionExtract(ST_Union(ga, s), 3))),
		       ST_AsEWKB(ST_Multi(ST_CollectionExtract(ST_Difference(gb, s), 3))),
		       (SELECT count(*) FROM objects o WHERE o.grid_code = b AND ST_Intersects(o.geom, s))
		FROM strip`).Scan(&a, &b, &parent, &aNew, &bNew, &inStrip)
	if err != nil {
		t.Fatal(err)
	}
	var drafts []grid.Draft
	for i, u := range []struct {
		code string
		wkb  []byte
	}{{a, aNew}, {b, bNew}} {
		mp, err := geo.MultiPolygonFromEWKB(u.wkb)
		if err != nil {
			t.Fatal(err)
		}
		drafts = append(drafts, grid.Draft{Feature: i, Unit: grid.Unit{Layer: grid.BaseLayer, Code: u.code, Name: "网格 " + u.code,
			Level: grid.Grid, ParentCode: parent, Geometry: mp}})
	}
	rep, err := s.ImportUnits(ctx, drafts, nil, data.UnitImportOptions{})
	if err != nil || !rep.OK() || rep.Updated != 2 {
		t.Fatalf("boundary move: %+v, %v", rep, err)
	}
	var wrong int
	if err := s.Pool.QueryRow(ctx, `SELECT count(*) FROM objects WHERE grid_code IS DISTINCT FROM gridmap_assign(geom)`).Scan(&wrong); err != nil {
		t.Fatal(err)
	}
	t.Logf("grids %s and %s: %d objects in the strip, %d moved", a, b, inStrip, rep.ObjectsMoved)
	if wrong != 0 || inStrip == 0 || rep.ObjectsMoved != inStrip {
		t.Errorf("%d objects left on a stale grid; %d moved, %d were in the strip", wrong, rep.ObjectsMoved, inStrip)
	}
	oiCountsExact(t, s)
}
