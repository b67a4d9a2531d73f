package api_test

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"
	"github.com/paulmach/orb/project"

	"gridmap/geo"
)

// Issue 14 item 6: crs= on every route that reads or answers coordinates.

const (
	ctsGCJ02 = "<" + geo.GCJ02URI + ">"
	ctsBD09  = "<" + geo.BD09URI + ">"
	ctsCRS84 = "<" + geo.CRS84URI + ">"
)

// convertGeoJSON converts a GeoJSON geometry with f.
func convertGeoJSON(t *testing.T, raw json.RawMessage, f func(lon, lat float64) (float64, float64)) string {
	t.Helper()
	g, err := geojson.UnmarshalGeometry(raw)
	if err != nil {
		t.Fatalf("geometry %s: %v", raw, err)
	}
	out, err := json.Marshal(geojson.NewGeometry(project.Geometry(g.Geometry(), func(p orb.Point) orb.Point {
		p[0], p[1] = f(p[0], p[1])
		return p
	})))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// positions lists every position of a GeoJSON geometry in order.
func positions(t *testing.T, raw json.RawMessage) []orb.Point {
	t.Helper()
	g, err := geojson.UnmarshalGeometry(raw)
	if err != nil {
		t.Fatalf("geometry %s: %v", raw, err)
	}
	var out []orb.Point
	project.Geometry(g.Geometry(), func(p orb.Point) orb.Point { out = append(out, p); return p })
	return out
}

// sameInCRS checks that got (an answer in crs) is want (WGS-84) converted
// position by position, within tol degrees.
func sameInCRS(t *testing.T, what string, crs geo.CRS, got, want json.RawMessage, tol float64) {
	t.Helper()
	g, w := positions(t, got), positions(t, want)
	if len(g) != len(w) || len(g) == 0 {
		t.Errorf("%s: %d positions, want %d", what, len(g), len(w))
		return
	}
	worst := 0.0
	for i := range g {
		x, y := geo.FromWGS84(crs, w[i][0], w[i][1])
		worst = max(worst, math.Abs(g[i][0]-x), math.Abs(g[i][1]-y))
	}
	if worst > tol {
		t.Errorf("%s: positions off by up to %g° from the %s conversion of WGS-84's", what, worst, crs)
	}
}

func expectContentCRS(t *testing.T, r reply, want string) {
	t.Helper()
	if got := r.Header.Get("Content-Crs"); got != want {
		t.Errorf("%s: Content-Crs %q, want %q", r.Header.Get("Content-Type"), got, want)
	}
}

func TestCRSLocate(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	grids := evGridPoints(t, e.store)
	type loc struct {
		Lon, Lat float64
		Grid     *struct{ Code string }
	}
	var batch []string
	var want []string
	for i, g := range grids[:12] {
		for _, c := range []geo.CRS{geo.GCJ02, geo.BD09} {
			x, y := geo.FromWGS84(c, g.lon, g.lat)
			r := e.get(fmt.Sprintf("/v1/locate?lon=%s&lat=%s&crs=%s", num(x), num(y), c))
			var got loc
			expect(t, r, http.StatusOK, ctJSON, &got)
			expectContentCRS(t, r, "<"+c.URI()+">")
			if got.Grid == nil || got.Grid.Code != g.code {
				t.Errorf("%s twin of grid %s's point located in %+v", c, g.code, got.Grid)
			}
			if got.Lon != x || got.Lat != y {
				t.Errorf("echo %v,%v, want the position sent %v,%v", got.Lon, got.Lat, x, y)
			}
			if i%2 == 0 && c == geo.GCJ02 {
				batch = append(batch, fmt.Sprintf("[%s,%s]", num(x), num(y)))
				want = append(want, g.code)
			}
		}
	}
	// The shift matters: some GCJ-02 positions read as WGS-84 fall in
	// another grid (else the test above proves nothing).
	moved := 0
	for _, g := range grids {
		x, y := geo.WGS84ToGCJ02(g.lon, g.lat)
		var got loc
		expect(t, e.get(fmt.Sprintf("/v1/locate?lon=%s&lat=%s", num(x), num(y))), http.StatusOK, ctJSON, &got)
		if got.Grid == nil || got.Grid.Code != g.code {
			moved++
		}
	}
	if moved == 0 {
		t.Fatal("no grid point moves to another grid under the GCJ-02 shift")
	}
	// A URI names the system too, and the batch takes crs.
	r := e.post("/v1/locate?crs="+url.QueryEscape(geo.GCJ02URI), `{"points":[`+strings.Join(batch, ",")+`]}`)
	var res struct{ Results []loc }
	expect(t, r, http.StatusOK, ctJSON, &res)
	expectContentCRS(t, r, ctsGCJ02)
	for i, l := range res.Results {
		if l.Grid == nil || l.Grid.Code != want[i] {
			t.Errorf("batch point %d: %+v, want grid %s", i, l.Grid, want[i])
		}
	}
	// WGS-84 answers say so.
	expectContentCRS(t, e.get("/v1/locate?lon=114.2&lat=22.6"), ctsCRS84)
	// A bad coordinate says which system it was read in.
	expectProblem(t, e.get("/v1/locate?lon=190&lat=22.6&crs=gcj02"), http.StatusBadRequest, typeBadParam, "lon", "190", "gcj02")
	expectProblem(t, e.post("/v1/locate?crs=bd09", `{"points":[[114,95]]}`), http.StatusBadRequest, typeBadParam, "points[0]", "95", "bd09")
}

// demoObject creates an object at a point of the lowest grid, sent in crs;
// it returns the code, the WGS-84 position and the answer.
func createInCRS(t *testing.T, e *apiEnv, code string, crs geo.CRS, lon, lat float64) (objFeature, reply) {
	t.Helper()
	x, y := geo.FromWGS84(crs, lon, lat)
	r := e.post("/v1/objects?crs="+string(crs), objFeatureJSON(code, "0101", pointJSON(x, y), ""))
	var f objFeature
	expect(t, r, http.StatusCreated, ctGeoJSON, &f)
	return f, r
}

func TestCRSObjects(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	grids := evGridPoints(t, e.store)
	g := grids[3]
	code := fmt.Sprintf("%s0101%06d", demoDistrict, 880001)
	sentX, sentY := geo.WGS84ToGCJ02(g.lon, g.lat)
	f, r := createInCRS(t, e, code, geo.GCJ02, g.lon, g.lat)
	expectContentCRS(t, r, ctsGCJ02)
	// Stored at the WGS-84 position, assigned by it.
	var x, y float64
	row := sqlStrings(t, e.store, `SELECT ST_X(geom)::text || ' ' || ST_Y(geom)::text || ' ' || coalesce(grid_code, '') FROM objects WHERE code = $1`, code)[0]
	var grid string
	fmt.Sscan(row, &x, &y, &grid)
	if math.Abs(x-g.lon) > 1e-6 || math.Abs(y-g.lat) > 1e-6 || grid != g.code {
		t.Errorf("stored at %v,%v in %s, want the WGS-84 %v,%v in %s", x, y, grid, g.lon, g.lat, g.code)
	}
	// Answered, and read back, at the position sent.
	for _, got := range []objFeature{f, getObj(t, e, "/v1/objects/"+code+"?crs=gcj02", ctsGCJ02)} {
		p := positions(t, got.Geometry)[0]
		if math.Abs(p[0]-sentX) > 1e-6 || math.Abs(p[1]-sentY) > 1e-6 {
			t.Errorf("read back at %v, want the GCJ-02 position sent %v,%v", p, sentX, sentY)
		}
	}
	// Without crs: WGS-84; in BD-09: the BD-09 conversion.
	sameInCRS(t, "GET in wgs84", geo.WGS84, getObj(t, e, "/v1/objects/"+code, ctsCRS84).Geometry, json.RawMessage(pointJSON(x, y)), 1e-9)
	sameInCRS(t, "GET in bd09", geo.BD09, getObj(t, e, "/v1/objects/"+code+"?crs=bd09", ctsBD09).Geometry, json.RawMessage(pointJSON(x, y)), 1e-8)

	// PUT in bd09 moves it to another grid's point.
	h := grids[40]
	bx, by := geo.WGS84ToBD09(h.lon, h.lat)
	r = e.put("/v1/objects/"+code+"?crs=bd09", objFeatureJSON(code, "0101", pointJSON(bx, by), ""))
	var put objFeature
	expect(t, r, http.StatusOK, ctGeoJSON, &put)
	expectContentCRS(t, r, ctsBD09)
	if p := positions(t, put.Geometry)[0]; math.Abs(p[0]-bx) > 1e-6 || math.Abs(p[1]-by) > 1e-6 || str(put.Properties.GridCode) != h.code {
		t.Errorf("PUT in bd09 answered %v in %s, want %v,%v in %s", p, str(put.Properties.GridCode), bx, by, h.code)
	}
	row = sqlStrings(t, e.store, `SELECT ST_X(geom)::text || ' ' || ST_Y(geom)::text FROM objects WHERE code = $1`, code)[0]
	fmt.Sscan(row, &x, &y)
	if math.Abs(x-h.lon) > 1e-6 || math.Abs(y-h.lat) > 1e-6 {
		t.Errorf("PUT in bd09 stored %v,%v, want %v,%v", x, y, h.lon, h.lat)
	}

	// A few more objects, then the spatial queries in GCJ-02 select what
	// their WGS-84 twins select.
	for i, gg := range grids[10:30] {
		createInCRS(t, e, fmt.Sprintf("%s0101%06d", demoDistrict, 880100+i), geo.WGS84, gg.lon, gg.lat)
	}
	lo, hi := grids[10], grids[20]
	box := [4]float64{min(lo.lon, hi.lon) - 0.002, min(lo.lat, hi.lat) - 0.002, max(lo.lon, hi.lon) + 0.002, max(lo.lat, hi.lat) + 0.002}
	gx0, gy0 := geo.WGS84ToGCJ02(box[0], box[1])
	gx1, gy1 := geo.WGS84ToGCJ02(box[2], box[3])
	for _, c := range []struct{ wgs, gcj string }{
		{fmt.Sprintf("bbox=%s,%s,%s,%s", num(box[0]), num(box[1]), num(box[2]), num(box[3])),
			fmt.Sprintf("bbox=%s,%s,%s,%s", num(gx0), num(gy0), num(gx1), num(gy1))},
		{fmt.Sprintf("near=%s,%s&radius=1500", num(lo.lon), num(lo.lat)), "near=" + gcjParam(lo.lon, lo.lat) + "&radius=1500"},
		{fmt.Sprintf("nearest=%s,%s&k=5", num(lo.lon), num(lo.lat)), "nearest=" + gcjParam(lo.lon, lo.lat) + "&k=5"},
	} {
		var w, gc objCollection
		expect(t, e.get("/v1/objects?"+c.wgs), http.StatusOK, ctGeoJSON, &w)
		r := e.get("/v1/objects?" + c.gcj + "&crs=gcj02")
		expect(t, r, http.StatusOK, ctGeoJSON, &gc)
		expectContentCRS(t, r, ctsGCJ02)
		if len(w.Features) < 2 || !slices.Equal(w.codes(), gc.codes()) {
			t.Errorf("%s selects %v; its GCJ-02 twin %v", c.wgs, w.codes(), gc.codes())
			continue
		}
		for i := range w.Features {
			sameInCRS(t, c.gcj+" "+w.Features[i].ID, geo.GCJ02, gc.Features[i].Geometry, w.Features[i].Geometry, 1e-8)
			if d1, d2 := w.Features[i].Properties.DistanceM, gc.Features[i].Properties.DistanceM; (d1 == nil) != (d2 == nil) || d1 != nil && math.Abs(*d1-*d2) > 0.01 {
				t.Errorf("%s: distance %v, its twin's %v (distances are WGS-84's)", w.Features[i].ID, d1, d2)
			}
		}
	}
	// The unassigned list answers in crs too.
	r = e.get("/v1/objects/unassigned?crs=gcj02")
	expect(t, r, http.StatusOK, ctGeoJSON, nil)
	expectContentCRS(t, r, ctsGCJ02)

	// A bad position says which system it was read in; nothing written.
	before := tableState(t, e)
	expectProblem(t, e.post("/v1/objects?crs=gcj02", objFeatureJSON(demoDistrict+"0101880999", "0101", pointJSON(114.2, 91), "")),
		http.StatusUnprocessableEntity, typeObjInvalid, "geometry", "91", "gcj02")
	expectProblem(t, e.get("/v1/objects?near=200,22&radius=5&crs=gcj02"), http.StatusBadRequest, typeBadParam, "near", "200", "gcj02")
	expectUnchanged(t, e, before, "refused positions in gcj02")
}

func gcjParam(lon, lat float64) string {
	x, y := geo.WGS84ToGCJ02(lon, lat)
	return num(x) + "," + num(y)
}

func getObj(t *testing.T, e *apiEnv, path, cts string) objFeature {
	t.Helper()
	r := e.get(path)
	var f objFeature
	expect(t, r, http.StatusOK, ctGeoJSON, &f)
	expectContentCRS(t, r, cts)
	return f
}

func TestCRSObjectImport(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	grids := evGridPoints(t, e.store)
	var csv strings.Builder
	csv.WriteString("code,class,lon,lat\n")
	for i, g := range grids[:20] {
		x, y := geo.WGS84ToGCJ02(g.lon, g.lat)
		fmt.Fprintf(&csv, "%s0101%06d,0101,%s,%s\n", demoDistrict, 870000+i, num(x), num(y))
	}
	r := e.do(http.MethodPost, "/v1/objects:import?format=csv&crs=gcj02", strings.NewReader(csv.String()))
	if r.Status != http.StatusCreated {
		t.Fatalf("import: %s", r)
	}
	for i, g := range grids[:20] {
		row := sqlStrings(t, e.store, `SELECT (abs(ST_X(geom) - $2) < 1e-6 AND abs(ST_Y(geom) - $3) < 1e-6)::text || ' ' || coalesce(grid_code, '')
			FROM objects WHERE code = $1`, fmt.Sprintf("%s0101%06d", demoDistrict, 870000+i), g.lon, g.lat)
		if row[0] != "true "+g.code {
			t.Errorf("row %d stored: %s, want at the WGS-84 position in %s", i, row[0], g.code)
		}
	}
	// GeoJSON lines in bd09.
	g := grids[25]
	bx, by := geo.WGS84ToBD09(g.lon, g.lat)
	line := objFeatureJSON(demoDistrict+"0101870100", "0101", pointJSON(bx, by), "") + "\n"
	r = e.do(http.MethodPost, "/v1/objects:import?format=ndjson&crs=bd09", strings.NewReader(line))
	if r.Status != http.StatusCreated {
		t.Fatalf("ndjson import: %s", r)
	}
	if got := sqlStrings(t, e.store, `SELECT coalesce(grid_code, '') FROM objects WHERE code = $1 AND abs(ST_X(geom) - $2) < 1e-6 AND abs(ST_Y(geom) - $3) < 1e-6`,
		demoDistrict+"0101870100", g.lon, g.lat); len(got) != 1 || got[0] != g.code {
		t.Errorf("bd09 line stored: %v, want in %s", got, g.code)
	}
	// A row out of range says which system it was read in; nothing
	// written (on_error=abort).
	before := tableState(t, e)
	r = e.do(http.MethodPost, "/v1/objects:import?format=csv&crs=gcj02", strings.NewReader("code,class,lon,lat\n"+demoDistrict+"0101870200,0101,114.2,95\n"))
	if r.Status != http.StatusUnprocessableEntity || !strings.Contains(string(r.Body), "gcj02") {
		t.Errorf("out-of-range row in gcj02: %s", r)
	}
	expectUnchanged(t, e, before, "a refused import in gcj02")
}

func TestCRSUnits(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	_, _, grid := demoPoint(t, e, "")
	community := grid[:12]
	// One unit: every vertex is the GCJ-02 conversion of WGS-84's; the
	// derived numbers are WGS-84's.
	var w, g, b unitFeature
	expect(t, e.get("/v1/units/"+grid), http.StatusOK, ctGeoJSON, &w)
	r := e.get("/v1/units/" + grid + "?crs=gcj02")
	expect(t, r, http.StatusOK, ctGeoJSON, &g)
	expectContentCRS(t, r, ctsGCJ02)
	sameInCRS(t, "unit in gcj02", geo.GCJ02, g.Geometry, w.Geometry, 1e-8)
	if g.Properties.AreaM2 != w.Properties.AreaM2 || g.Properties.AreaM2 == 0 {
		t.Errorf("area_m2 %v in gcj02, %v in wgs84", g.Properties.AreaM2, w.Properties.AreaM2)
	}
	expect(t, e.get("/v1/units/"+grid+"?crs=bd09&geometry=simplified"), http.StatusOK, ctGeoJSON, &b)
	var ws unitFeature
	expect(t, e.get("/v1/units/"+grid+"?geometry=simplified"), http.StatusOK, ctGeoJSON, &ws)
	sameInCRS(t, "simplified unit in bd09", geo.BD09, b.Geometry, ws.Geometry, 1e-8)

	// Children and history.
	var wc, gc unitCollection
	expect(t, e.get("/v1/units/"+community+"/children"), http.StatusOK, ctGeoJSON, &wc)
	r = e.get("/v1/units/" + community + "/children?crs=gcj02")
	expect(t, r, http.StatusOK, ctGeoJSON, &gc)
	expectContentCRS(t, r, ctsGCJ02)
	if len(wc.Features) != demoGridsPer || !slices.Equal(wc.codes(), gc.codes()) {
		t.Fatalf("children %v, in gcj02 %v", wc.codes(), gc.codes())
	}
	for i := range wc.Features {
		sameInCRS(t, "child "+wc.Features[i].ID, geo.GCJ02, gc.Features[i].Geometry, wc.Features[i].Geometry, 1e-8)
	}
	var wh, gh unitCollection
	expect(t, e.get("/v1/units/"+grid+"/history"), http.StatusOK, ctGeoJSON, &wh)
	r = e.get("/v1/units/" + grid + "/history?crs=gcj02")
	expect(t, r, http.StatusOK, ctGeoJSON, &gh)
	expectContentCRS(t, r, ctsGCJ02)
	sameInCRS(t, "history", geo.GCJ02, gh.Features[0].Geometry, wh.Features[0].Geometry, 1e-8)

	// A bbox in GCJ-02 selects what its WGS-84 twin selects (one whose
	// edges lie well inside units: a bbox around one community's centre).
	c := sqlStrings(t, e.store, `SELECT ST_X(p)::text || ' ' || ST_Y(p)::text FROM (SELECT ST_PointOnSurface(geom) p FROM units WHERE code = $1) x`, community)[0]
	var cx, cy float64
	fmt.Sscan(c, &cx, &cy)
	for _, d := range []float64{0.003, 0.01, 0.03} {
		x0, y0 := geo.WGS84ToGCJ02(cx-d, cy-d)
		x1, y1 := geo.WGS84ToGCJ02(cx+d, cy+d)
		var wl, gl unitCollection
		expect(t, e.get(fmt.Sprintf("/v1/units?level=grid&geometry=none&bbox=%s,%s,%s,%s", num(cx-d), num(cy-d), num(cx+d), num(cy+d))), http.StatusOK, ctGeoJSON, &wl)
		expect(t, e.get(fmt.Sprintf("/v1/units?level=grid&geometry=none&crs=gcj02&bbox=%s,%s,%s,%s", num(x0), num(y0), num(x1), num(y1))), http.StatusOK, ctGeoJSON, &gl)
		if len(wl.Features) == 0 || !slices.Equal(wl.codes(), gl.codes()) {
			t.Errorf("bbox ±%g: %v; in gcj02 %v", d, wl.codes(), gl.codes())
		}
		// Taken as WGS-84, the GCJ-02 box selects something else (so the
		// conversion is what makes them equal).
		var raw unitCollection
		expect(t, e.get(fmt.Sprintf("/v1/units?level=grid&geometry=none&bbox=%s,%s,%s,%s", num(x0), num(y0), num(x1), num(y1))), http.StatusOK, ctGeoJSON, &raw)
		if d == 0.003 && slices.Equal(raw.codes(), wl.codes()) {
			t.Errorf("bbox ±%g: the GCJ-02 box read as WGS-84 selects the same grids %v", d, raw.codes())
		}
	}
	expectProblem(t, e.get("/v1/units?bbox=114,22,190,23&crs=bd09"), http.StatusBadRequest, typeBadParam, "bbox", "190", "bd09")
}

// TestCRSUnitImport: units imported in BD-09 are stored as WGS-84
// polygons, and a refused import answers its findings in BD-09.
func TestCRSUnitImport(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	_, _, grid := demoPoint(t, e, "")
	// The district's grids, read in bd09 and imported back in bd09: the
	// store gets the same WGS-84 polygons (to the transforms' 1e-9°).
	var fc unitCollection
	community := grid[:12]
	expect(t, e.get("/v1/units/"+community+"/children?crs=bd09"), http.StatusOK, ctGeoJSON, &fc)
	var feats []string
	for _, f := range fc.Features {
		feats = append(feats, fmt.Sprintf(`{"type":"Feature","geometry":%s,"properties":{"code":%q,"name":%q,"level":"grid"}}`, f.Geometry, f.ID, f.Properties.Name+"·"))
	}
	body := `{"type":"FeatureCollection","features":[` + strings.Join(feats, ",") + `]}`
	before := map[string]string{}
	for _, f := range fc.Features {
		before[f.ID] = sqlStrings(t, e.store, `SELECT ST_AsText(geom) FROM units WHERE valid_to IS NULL AND code = $1`, f.ID)[0]
	}
	r := e.do(http.MethodPost, "/v1/units:import?crs=bd09", strings.NewReader(body))
	if r.Status != http.StatusOK && r.Status != http.StatusCreated {
		t.Fatalf("import in bd09: %s", r)
	}
	for code, wkt := range before {
		d := sqlStrings(t, e.store, `SELECT (ST_HausdorffDistance(geom, ST_GeomFromText($2, 4326)) < 1e-7 AND version > 1)::text
			FROM units WHERE valid_to IS NULL AND code = $1`, code, wkt)
		if len(d) != 1 || d[0] != "true" {
			t.Errorf("grid %s imported in bd09: not a new version within 1e-7° of its WGS-84 outline (%v)", code, d)
		}
	}
	if n := sqlStrings(t, e.store, `SELECT count(*)::text FROM units WHERE valid_to IS NULL AND parent_code = $1 AND name LIKE '%·'`, community)[0]; n != fmt.Sprint(demoGridsPer) {
		t.Errorf("%s grids renamed by the import, want %d", n, demoGridsPer)
	}

	// Refused: a grid moved 0.003° east overlaps its neighbours; the
	// findings' geometry is in bd09, nothing is written.
	state := tableState(t, e)
	moved := convertGeoJSON(t, fc.Features[0].Geometry, func(x, y float64) (float64, float64) { return x + 0.003, y })
	bad := fmt.Sprintf(`{"type":"FeatureCollection","features":[{"type":"Feature","geometry":%s,"properties":{"code":%q,"name":"x","level":"grid"}}]}`, moved, fc.Features[0].ID)
	for _, path := range []string{"/v1/units:import?crs=bd09", "/v1/units:validate?crs=bd09"} {
		r = e.do(http.MethodPost, path, strings.NewReader(bad))
		var p problem
		expect(t, r, http.StatusUnprocessableEntity, ctProblem, &p)
		expectContentCRS(t, r, ctsBD09)
		withGeom := 0
		for _, v := range p.Violations {
			if len(v.Geometry) == 0 {
				continue
			}
			withGeom++
			// Drawn in bd09 it lies on the moved grid (sent in bd09):
			// back in WGS-84 it meets the stored grid moved the same way.
			wgs := convertGeoJSON(t, v.Geometry, geo.BD09ToWGS84)
			movedWGS := convertGeoJSON(t, json.RawMessage(moved), geo.BD09ToWGS84)
			if ok := sqlStrings(t, e.store, `SELECT (ST_Distance(ST_GeomFromGeoJSON($1), ST_GeomFromGeoJSON($2)) < 1e-7)::text`, wgs, movedWGS)[0]; ok != "true" {
				t.Errorf("%s: violation %s geometry is not on the moved grid once converted from bd09", path, v.Rule)
			}
		}
		if withGeom == 0 {
			t.Errorf("%s: no violation with geometry: %s", path, r)
		}
	}
	expectUnchanged(t, e, state, "a refused import in bd09")
}

func TestCRSReshape(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	a, b := neighbourGrids(t, e)
	geom, _, _ := grabFrom(t, e, a, b, 0.0005)
	gcj := convertGeoJSON(t, json.RawMessage(geom), geo.WGS84ToGCJ02)
	path := "/v1/units/" + a

	// Without neighbours=adjust: refused, the overlap drawn in gcj02.
	before := tableState(t, e)
	var wv, gv editViolationsBody
	expect(t, e.with(http.MethodPut, path+"?reason=x", unitFeatureJSON(geom, ""), "If-Match", unitETag(t, e, a)), http.StatusUnprocessableEntity, ctProblem, &wv)
	r := e.with(http.MethodPut, path+"?reason=x&crs=gcj02", unitFeatureJSON(gcj, ""), "If-Match", unitETag(t, e, a))
	expect(t, r, http.StatusUnprocessableEntity, ctProblem, &gv)
	expectContentCRS(t, r, ctsGCJ02)
	if len(gv.ViolationsGeoJSON.Features) == 0 || len(gv.ViolationsGeoJSON.Features) != len(wv.ViolationsGeoJSON.Features) {
		t.Fatalf("violations_geojson in gcj02 %d, in wgs84 %d", len(gv.ViolationsGeoJSON.Features), len(wv.ViolationsGeoJSON.Features))
	}
	for i := range wv.ViolationsGeoJSON.Features {
		g := gv.ViolationsGeoJSON.Features[i].Geometry
		back := convertGeoJSON(t, g, geo.GCJ02ToWGS84)
		if ok := sqlStrings(t, e.store, `SELECT (ST_HausdorffDistance(ST_GeomFromGeoJSON($1), ST_GeomFromGeoJSON($2)) < 1e-6)::text`, back, string(wv.ViolationsGeoJSON.Features[i].Geometry))[0]; ok != "true" {
			t.Errorf("violation %d in gcj02, converted back, is not the WGS-84 one", i)
		}
	}
	expectUnchanged(t, e, before, "a refused reshape in gcj02")

	// The reshape in gcj02: stored as the WGS-84 outline, answered in gcj02.
	var got editAnswer
	r = e.with(http.MethodPut, path+"?reason=x&neighbours=adjust&crs=gcj02", unitFeatureJSON(gcj, ""), "If-Match", unitETag(t, e, a))
	expect(t, r, http.StatusOK, ctJSON, &got)
	expectContentCRS(t, r, ctsGCJ02)
	if ok := sqlStrings(t, e.store, `SELECT (ST_HausdorffDistance(geom, ST_GeomFromGeoJSON($2)) < 1e-6)::text FROM units WHERE valid_to IS NULL AND code = $1`, a, geom)[0]; ok != "true" {
		t.Errorf("reshaped in gcj02: not stored at the WGS-84 outline")
	}
	fs := got.UnitsGeoJSON.Features
	if len(fs) != 2 {
		t.Fatalf("units_written_geojson: %d features", len(fs))
	}
	for _, f := range fs {
		stored := sqlStrings(t, e.store, `SELECT ST_AsGeoJSON(geom, 9) FROM units WHERE valid_to IS NULL AND code = $1`, f.Properties.Code)[0]
		back := convertGeoJSON(t, f.Geometry, geo.GCJ02ToWGS84)
		if ok := sqlStrings(t, e.store, `SELECT (ST_HausdorffDistance(ST_GeomFromGeoJSON($1), ST_GeomFromGeoJSON($2)) < 1e-6)::text`, back, stored)[0]; ok != "true" {
			t.Errorf("units_written_geojson %s is not the stored outline in gcj02", f.Properties.Code)
		}
	}
	backArea := convertGeoJSON(t, got.ChangedArea, geo.GCJ02ToWGS84)
	if ok := sqlStrings(t, e.store, `SELECT ST_Intersects(ST_GeomFromGeoJSON($1), geom)::text FROM units WHERE valid_to IS NULL AND code = $2`, backArea, b)[0]; ok != "true" {
		t.Errorf("changed_area in gcj02 does not meet %s once converted back", b)
	}
}

func TestCRSEvents(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	grids := evGridPoints(t, e.store)
	g := grids[7]
	x, y := geo.WGS84ToGCJ02(g.lon, g.lat)
	// ?crs= names the system of lon and lat, and of the answer's geometry;
	// the properties keep the position as reported.
	r := e.post("/v1/events?crs=gcj02", evReport("0102", x, y))
	var f evFeature
	expect(t, r, http.StatusCreated, ctGeoJSON, &f)
	expectContentCRS(t, r, ctsGCJ02)
	if math.Abs(f.Geometry.Coordinates[0]-x) > 1e-6 || math.Abs(f.Geometry.Coordinates[1]-y) > 1e-6 {
		t.Errorf("answered at %v, want the GCJ-02 position sent %v,%v", f.Geometry.Coordinates, x, y)
	}
	if f.Properties.CRS != "gcj02" || f.Properties.InputLon != x || f.Properties.InputLat != y || f.Properties.GridCode != g.code {
		t.Errorf("properties crs %q input %v,%v grid %s", f.Properties.CRS, f.Properties.InputLon, f.Properties.InputLat, f.Properties.GridCode)
	}
	var sx, sy float64
	fmt.Sscan(sqlStrings(t, e.store, `SELECT ST_X(geom)::text || ' ' || ST_Y(geom)::text FROM events WHERE code = $1`, f.ID)[0], &sx, &sy)
	if math.Abs(sx-g.lon) > 1e-6 || math.Abs(sy-g.lat) > 1e-6 {
		t.Errorf("stored %v,%v, want the WGS-84 %v,%v", sx, sy, g.lon, g.lat)
	}
	// The same in the body and the query: fine; read back in any system.
	r = e.post("/v1/events?crs=bd09", evReport("0102", geoBD(g.lon, g.lat)[0], geoBD(g.lon, g.lat)[1], "crs", "BD-09"))
	expect(t, r, http.StatusCreated, ctGeoJSON, nil)
	for _, c := range []geo.CRS{geo.WGS84, geo.GCJ02, geo.BD09} {
		r := e.get("/v1/events/" + f.ID + "?crs=" + string(c))
		var got evFeature
		expect(t, r, http.StatusOK, ctGeoJSON, &got)
		expectContentCRS(t, r, "<"+c.URI()+">")
		wx, wy := geo.FromWGS84(c, sx, sy)
		if math.Abs(got.Geometry.Coordinates[0]-wx) > 1e-8 || math.Abs(got.Geometry.Coordinates[1]-wy) > 1e-8 {
			t.Errorf("GET in %s: %v, want %v,%v", c, got.Geometry.Coordinates, wx, wy)
		}
	}
	// A bbox in GCJ-02 around the position sent finds it, at that position.
	d := 0.0005
	r = e.get(fmt.Sprintf("/v1/events?crs=gcj02&bbox=%s,%s,%s,%s", num(x-d), num(y-d), num(x+d), num(y+d)))
	var list struct{ Features []evFeature }
	expect(t, r, http.StatusOK, ctGeoJSON, &list)
	expectContentCRS(t, r, ctsGCJ02)
	found := false
	for _, lf := range list.Features {
		if lf.ID == f.ID {
			found = true
			if math.Abs(lf.Geometry.Coordinates[0]-x) > 1e-6 || math.Abs(lf.Geometry.Coordinates[1]-y) > 1e-6 {
				t.Errorf("listed at %v, want %v,%v", lf.Geometry.Coordinates, x, y)
			}
		}
	}
	if !found {
		t.Errorf("bbox in gcj02 around the position sent does not find event %s", f.ID)
	}
	// Read as WGS-84, the GCJ-02 box is hundreds of metres off: no event.
	expect(t, e.get(fmt.Sprintf("/v1/events?bbox=%s,%s,%s,%s", num(x-d), num(y-d), num(x+d), num(y+d))), http.StatusOK, ctGeoJSON, &list)
	for _, lf := range list.Features {
		if lf.ID == f.ID {
			t.Errorf("the GCJ-02 box read as WGS-84 finds event %s", f.ID)
		}
	}

	// Disagreeing systems: 400 naming crs, nothing written.
	before := tableState(t, e)
	expectProblem(t, e.post("/v1/events?crs=bd09", evReport("0102", x, y, "crs", "gcj02")), http.StatusBadRequest, typeBadParam, "crs", "bd09", "gcj02")
	expectProblem(t, e.post("/v1/events?crs=wgs84", evReport("0102", x, y, "crs", "gcj02")), http.StatusBadRequest, typeBadParam, "crs", "wgs84", "gcj02")
	expectProblem(t, e.get("/v1/events?bbox=114,22,115,95&crs=gcj02"), http.StatusBadRequest, typeBadParam, "bbox", "95", "gcj02")
	expectUnchanged(t, e, before, "refused events in another crs")
}

func geoBD(lon, lat float64) [2]float64 {
	x, y := geo.WGS84ToBD09(lon, lat)
	return [2]float64{x, y}
}

// TestCRSBadValue: an unknown crs is a 400 naming crs and listing what is
// accepted, on every route that takes it, and nothing is written.
func TestCRSBadValue(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	x, y, grid := demoPoint(t, e, "")
	obj := demoDistrict + "0101860001"
	expect(t, e.post("/v1/objects", objFeatureJSON(obj, "0101", pointJSON(x, y), "")), http.StatusCreated, ctGeoJSON, nil)
	ev := e.reportEvent(evReport("0102", x, y)).ID
	before := tableState(t, e)
	tag := unitETag(t, e, grid)
	unitBody := unitFeatureJSON(sqlStrings(t, e.store, `SELECT ST_AsGeoJSON(geom, 9) FROM units WHERE valid_to IS NULL AND code = $1`, grid)[0], "n")
	fc := `{"type":"FeatureCollection","features":[]}`
	for _, bad := range []string{"epsg:3857", "GCJ", "urn:gridmap:def:crs:wgs84"} {
		q := "crs=" + url.QueryEscape(bad)
		for _, c := range []struct{ method, path, body string }{
			{"GET", "/v1/locate?lon=114.2&lat=22.6&" + q, ""},
			{"POST", "/v1/locate?" + q, `{"points":[[114.2,22.6]]}`},
			{"GET", "/v1/units?" + q, ""},
			{"GET", "/v1/units/" + grid + "?" + q, ""},
			{"GET", "/v1/units/" + grid[:12] + "/children?" + q, ""},
			{"GET", "/v1/units/" + grid + "/history?" + q, ""},
			{"POST", "/v1/units:import?" + q, fc},
			{"POST", "/v1/units:validate?" + q, fc},
			{"PUT", "/v1/units/" + grid + "?reason=x&" + q, unitBody},
			{"POST", "/v1/units?reason=x&" + q, unitBody},
			{"POST", "/v1/units/" + grid + ":split?reason=x&" + q, `{"line":{"type":"LineString","coordinates":[[114,22],[115,23]]}}`},
			{"POST", "/v1/units:merge?reason=x&" + q, `{"codes":["a","b"],"keep":"a"}`},
			{"GET", "/v1/objects?bbox=114,22,115,23&" + q, ""},
			{"POST", "/v1/objects?" + q, objFeatureJSON(demoDistrict+"0101860002", "0101", pointJSON(x, y), "")},
			{"GET", "/v1/objects/" + obj + "?" + q, ""},
			{"PUT", "/v1/objects/" + obj + "?" + q, objFeatureJSON(obj, "0101", pointJSON(x+0.0001, y), "")},
			{"POST", "/v1/objects:import?format=csv&" + q, "code,class,lon,lat\n" + demoDistrict + "0101860003,0101,114.2,22.6\n"},
			{"GET", "/v1/objects/unassigned?" + q, ""},
			{"GET", "/v1/events?" + q, ""},
			{"POST", "/v1/events?" + q, evReport("0102", x, y)},
			{"GET", "/v1/events/" + ev + "?" + q, ""},
		} {
			t.Run(bad+" "+c.method+" "+c.path, func(t *testing.T) {
				r := e.with(c.method, c.path, c.body, "If-Match", tag)
				expectProblem(t, r, http.StatusBadRequest, typeBadParam, "crs", bad, "wgs84, gcj02, bd09", geo.GCJ02URI)
			})
		}
	}
	expectUnchanged(t, e, before, "requests with an unknown crs")
}
