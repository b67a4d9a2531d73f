package api_test

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"gridmap/api"
	"gridmap/data/pgtest"
)

// Test units live far from the demo city (盐田区 is near 114.2–114.35 E):
// district 440399 is the square 113.0–113.1 × 22.0–22.1, cut at 113.05
// into two streets.
func square(x0, y0, x1, y1 float64) string {
	return fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%g,%g],[%g,%g],[%g,%g],[%g,%g],[%g,%g]]]}`,
		x0, y0, x1, y0, x1, y1, x0, y1, x0, y0)
}

// bowtie is a self-intersecting ring crossing itself at 113.05 22.05.
const bowtie = `{"type":"Polygon","coordinates":[[[113.0,22.0],[113.1,22.1],[113.1,22.0],[113.0,22.1],[113.0,22.0]]]}`

func unitFeat(code, level, geometry string, extra ...string) string {
	props := fmt.Sprintf(`"code":%q,"name":"unit %s","level":%q`, code, code, level)
	for _, e := range extra {
		props += "," + e
	}
	return fmt.Sprintf(`{"type":"Feature","properties":{%s},"geometry":%s}`, props, geometry)
}

func featureCollection(features ...string) string {
	return `{"type":"FeatureCollection","features":[` + strings.Join(features, ",") + `]}`
}

var (
	testDistrict = unitFeat("440399", "district", square(113.0, 22.0, 113.1, 22.1))
	testStreetW  = unitFeat("440399001", "street", square(113.0, 22.0, 113.05, 22.1))
	testStreetE  = unitFeat("440399002", "street", square(113.05, 22.0, 113.1, 22.1))
	testCity     = featureCollection(testDistrict, testStreetW, testStreetE)
)

// importReport is the body of a successful import or validation.
type importReport struct {
	Units      int         `json:"units"`
	Inserted   int         `json:"inserted"`
	Updated    int         `json:"updated"`
	Unchanged  int         `json:"unchanged"`
	DryRun     bool        `json:"dry_run"`
	Violations []violation `json:"violations"`
	Warnings   []violation `json:"warnings"`
	Seconds    *float64    `json:"seconds"`
}

func rulesOf(vs []violation) map[string]int {
	m := map[string]int{}
	for _, v := range vs {
		m[v.Rule]++
	}
	return m
}

// demoPoint is a point inside the demo grid with the lowest code (or the
// given one), with the grid's street.
func demoPoint(t *testing.T, e *apiEnv, gridCode string) (x, y float64, code string) {
	t.Helper()
	q := `SELECT ST_X(p), ST_Y(p), code FROM (SELECT code, ST_PointOnSurface(geom) p FROM units
	      WHERE level='grid' AND layer='base' AND ($1 = '' OR code = $1) ORDER BY code LIMIT 1) x`
	if err := e.store.Pool.QueryRow(context.Background(), q, gridCode).Scan(&x, &y, &code); err != nil {
		t.Fatalf("demo point: %v", err)
	}
	return x, y, code
}

// overlapSquare is a square of ±half degrees around a point inside a demo
// grid, checked to lie inside that grid's street (so it overlaps exactly
// that street and nothing else of the district is hurt), with its area.
func overlapSquare(t *testing.T, e *apiEnv, half float64) (geom, street string, area float64) {
	t.Helper()
	x, y, grid := demoPoint(t, e, "")
	geom = square(x-half, y-half, x+half, y+half)
	street = grid[:9]
	var covered bool
	if err := e.store.Pool.QueryRow(context.Background(), `
		SELECT ST_CoveredBy(ST_SetSRID(ST_GeomFromGeoJSON($1), 4326), geom), ST_Area(ST_SetSRID(ST_GeomFromGeoJSON($1), 4326)::geography)
		FROM units WHERE code = $2`, geom, street).Scan(&covered, &area); err != nil {
		t.Fatal(err)
	}
	if !covered {
		t.Fatalf("test square %s is not inside street %s; pick a smaller one", geom, street)
	}
	return geom, street, area
}

func countAllUnits(t *testing.T, e *apiEnv) int {
	t.Helper()
	return sqlInt(t, e.store, `SELECT count(*) FROM units`)
}

// expectNothingWritten checks that a failed request left the store as it
// was: the number of unit versions, and no current unit with the listed codes.
func expectNothingWritten(t *testing.T, e *apiEnv, units int, codes ...string) {
	t.Helper()
	if n := countAllUnits(t, e); n != units {
		t.Errorf("%d unit versions after a failed request, want %d", n, units)
	}
	for _, c := range codes {
		expectProblem(t, e.get("/v1/units/"+c+"?geometry=none"), http.StatusNotFound, typeNotFound, "", c)
	}
}

func TestImportAndReimport(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	req, err := http.NewRequest(http.MethodPost, e.url+"/v1/units:import?reason=test+load", strings.NewReader(testCity))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(e.authorize(req))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	var rep importReport
	expect(t, reply{Status: resp.StatusCode, Header: resp.Header, Body: body}, http.StatusCreated, ctJSON, &rep)
	if rep.Units != 3 || rep.Inserted != 3 || rep.Updated+rep.Unchanged != 0 || len(rep.Violations)+len(rep.Warnings) != 0 {
		t.Errorf("first import: %+v, want 3 inserted", rep)
	}
	var by, why string
	if err := e.store.Pool.QueryRow(context.Background(), `SELECT changed_by, change_reason FROM units WHERE code='440399'`).Scan(&by, &why); err != nil {
		t.Fatal(err)
	}
	if by != adminActor || why != "test load" {
		t.Errorf("audit: changed_by %q, change_reason %q; want %s, test load", by, why, adminActor)
	}

	// The same collection again: nothing to do.
	rep = importReport{}
	expect(t, e.post("/v1/units:import", testCity), http.StatusOK, ctJSON, &rep)
	if rep.Units != 3 || rep.Inserted != 0 || rep.Updated != 0 || rep.Unchanged != 3 || rep.DryRun {
		t.Errorf("re-import: %+v, want 3 unchanged", rep)
	}
	if rep.Violations == nil || rep.Warnings == nil || len(rep.Violations)+len(rep.Warnings) != 0 || rep.Seconds == nil {
		t.Errorf("re-import report lacks empty violations/warnings arrays or seconds: %+v", rep)
	}

	var f unitFeature
	expect(t, e.get("/v1/units/440399"), http.StatusOK, ctGeoJSON, &f)
	if f.Properties.Name != "unit 440399" || f.Properties.Level != "district" || f.Properties.Version != 1 || geometryType(t, f.Geometry) != "MultiPolygon" {
		t.Errorf("imported district: %+v", f.Properties)
	}
	// 0.1° × 0.1° at 22° N ≈ 10.32 km × 11.07 km.
	if a := f.Properties.AreaM2; a < 113e6 || a > 116e6 {
		t.Errorf("area_m2 %.0f, want about 114 km²", a)
	}
	var fc unitCollection
	expect(t, e.get("/v1/units/440399/children?geometry=none"), http.StatusOK, ctGeoJSON, &fc)
	if got := fc.codes(); !reflect.DeepEqual(got, []string{"440399001", "440399002"}) {
		t.Errorf("children %v", got)
	}
	fc = unitCollection{}
	expect(t, e.get("/v1/units?level=district&geometry=none"), http.StatusOK, ctGeoJSON, &fc)
	if got := fc.codes(); !reflect.DeepEqual(got, []string{demoDistrict, "440399"}) {
		t.Errorf("districts %v", got)
	}

	// A changed boundary is a new version: 200 with one update.
	moved := featureCollection(unitFeat("440399001", "street", square(113.0, 22.0, 113.04, 22.1)),
		unitFeat("440399002", "street", square(113.04, 22.0, 113.1, 22.1)))
	rep = importReport{}
	expect(t, e.post("/v1/units:import", moved), http.StatusOK, ctJSON, &rep)
	if rep.Updated != 2 || rep.Inserted != 0 {
		t.Errorf("boundary edit: %+v, want 2 updated", rep)
	}
	f = unitFeature{}
	expect(t, e.get("/v1/units/440399001?geometry=none"), http.StatusOK, ctGeoJSON, &f)
	if f.Properties.Version != 2 {
		t.Errorf("version after the edit %d, want 2", f.Properties.Version)
	}
}

func TestImportCreatedReport(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pgtest.New(t), api.Options{})
	var rep importReport
	expect(t, e.post("/v1/units:import", testCity), http.StatusCreated, ctJSON, &rep)
	if rep.Units != 3 || rep.Inserted != 3 || rep.Updated != 0 || rep.Unchanged != 0 || len(rep.Violations) != 0 || len(rep.Warnings) != 0 {
		t.Errorf("first import: %+v, want 3 inserted, nothing else", rep)
	}
	if n := countAllUnits(t, e); n != 3 {
		t.Errorf("%d units stored, want 3", n)
	}
}

// TestImportNormalisesCodes: codes sent as JSON numbers are read as digits,
// a 14-digit (CJ/T 213-2005) grid code is widened to 15 digits, and a
// district's parent city code is dropped.
func TestImportNormalisesCodes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pgtest.New(t), api.Options{})
	doc := featureCollection(
		`{"type":"Feature","properties":{"code":440399,"name":"d","level":"district","parent_code":"4403"},"geometry":`+square(113.0, 22.0, 113.1, 22.1)+`}`,
		`{"type":"Feature","properties":{"code":440399001,"name":"s","level":"street"},"geometry":`+square(113.0, 22.0, 113.1, 22.1)+`}`,
		unitFeat("440399001001", "community", square(113.0, 22.0, 113.1, 22.1)),
		unitFeat("44039900100101", "grid", square(113.0, 22.0, 113.1, 22.1)),
	)
	var rep importReport
	expect(t, e.post("/v1/units:import", doc), http.StatusCreated, ctJSON, &rep)
	if rep.Inserted != 4 || len(rep.Warnings) != 0 {
		t.Fatalf("import: %+v", rep)
	}
	var fc unitCollection
	expect(t, e.get("/v1/units?geometry=none"), http.StatusOK, ctGeoJSON, &fc)
	want := []string{"440399", "440399001", "440399001001", "440399001001001"}
	if got := fc.codes(); !reflect.DeepEqual(got, want) {
		t.Fatalf("codes %v, want %v", got, want)
	}
	if p := fc.Features[0].Properties.ParentCode; p != nil {
		t.Errorf("district parent_code %q, want null", *p)
	}
	if p := fc.Features[3].Properties.ParentCode; p == nil || *p != "440399001001" {
		t.Errorf("grid parent_code %v, want 440399001001", p)
	}
	var loc location
	expect(t, e.get("/v1/locate?lon=113.05&lat=22.05"), http.StatusOK, ctJSON, &loc)
	if got := loc.codes(); got != [4]string(want) {
		t.Errorf("located %v, want %v", got, want)
	}
}

func TestImportEveryViolationAtOnce(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	before := countAllUnits(t, e)
	sq, street, area := overlapSquare(t, e, 0.0005)
	doc := featureCollection(
		unitFeat("440399", "district", bowtie),                            // features[0]: self-intersection
		unitFeat("440308009", "street", sq),                               // features[1]: overlaps a demo street
		unitFeat("440398001", "street", square(112.0, 22.0, 112.1, 22.1)), // features[2]: parent 440398 exists nowhere
	)
	for _, path := range []string{"/v1/units:import", "/v1/units:validate"} {
		t.Run(path, func(t *testing.T) {
			p := expectProblem(t, e.post(path, doc), http.StatusUnprocessableEntity, typeViolations, "",
				"3 violation(s) in 3 feature(s)", "nothing was written")
			want := map[string]int{"invalid_geometry": 1, "overlap": 1, "unknown_parent": 1}
			if got := rulesOf(p.Violations); !reflect.DeepEqual(got, want) {
				t.Fatalf("violations %v, want %v: %+v", got, want, p.Violations)
			}
			if p.Warnings == nil {
				t.Errorf("a 422 without a warnings array")
			}
			if p.Units != 3 {
				t.Errorf("units %d, want 3", p.Units)
			}
			for _, v := range p.Violations {
				if v.Severity != "error" || v.Message == "" || v.Feature == nil {
					t.Errorf("violation lacks severity, message or feature: %+v", v)
					continue
				}
				switch v.Rule {
				case "invalid_geometry":
					if *v.Feature != 0 || !reflect.DeepEqual(v.Codes, []string{"440399"}) {
						t.Errorf("invalid_geometry names features[%d] %v", *v.Feature, v.Codes)
					}
					if !strings.Contains(v.Message, "Self-intersection") || !strings.Contains(v.Message, "113.050000 22.050000") {
						t.Errorf("invalid_geometry message %q", v.Message)
					}
					if len(v.Location) != 2 || math.Abs(v.Location[0]-113.05) > 1e-9 || math.Abs(v.Location[1]-22.05) > 1e-9 {
						t.Errorf("invalid_geometry location %v, want [113.05 22.05]", v.Location)
					}
					if gt := geometryType(t, v.Geometry); gt != "Polygon" && gt != "MultiPolygon" {
						t.Errorf("invalid_geometry geometry %s", v.Geometry)
					}
				case "overlap":
					if *v.Feature != 1 || !reflect.DeepEqual(v.Codes, []string{street, "440308009"}) {
						t.Errorf("overlap names features[%d] %v, want 1 [%s 440308009]", *v.Feature, v.Codes, street)
					}
					if gt := geometryType(t, v.Geometry); gt != "Polygon" && gt != "MultiPolygon" {
						t.Errorf("overlap geometry %s", v.Geometry)
					}
					if v.AreaM2 == nil || math.Abs(*v.AreaM2-area) > area*0.01 {
						t.Errorf("overlap area_m2 %v, want about %.0f", v.AreaM2, area)
					}
					if !strings.Contains(v.Message, street+" and 440308009 overlap") {
						t.Errorf("overlap message %q", v.Message)
					}
				case "unknown_parent":
					if *v.Feature != 2 || !reflect.DeepEqual(v.Codes, []string{"440398001", "440398"}) {
						t.Errorf("unknown_parent names features[%d] %v", *v.Feature, v.Codes)
					}
					if !strings.Contains(v.Message, "440398") {
						t.Errorf("unknown_parent message %q", v.Message)
					}
				}
			}
			// Reports read in file order.
			for i, v := range p.Violations {
				if *v.Feature != i {
					t.Errorf("violations[%d] is about features[%d]", i, *v.Feature)
				}
			}
			expectNothingWritten(t, e, before, "440399", "440308009", "440398001")
			// The locator did not move either.
			x, y, _ := demoPoint(t, e, "")
			var loc location
			expect(t, e.get(fmt.Sprintf("/v1/locate?lon=%v&lat=%v", x, y)), http.StatusOK, ctJSON, &loc)
			if loc.Street == nil || loc.Street.Code != street {
				t.Errorf("after a failed import the point is in street %+v, want %s", loc.Street, street)
			}
		})
	}
}

func TestImportFeatureErrors(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	before := countAllUnits(t, e)
	cases := []struct {
		name  string
		feat  string
		rule  string
		codes []string
		inMsg string
	}{
		{"letters in a code", unitFeat("44039900A", "street", square(113.0, 22.0, 113.05, 22.1)), "bad_code", []string{"44039900A"}, "digit"},
		{"street code out of range", unitFeat("440399600", "street", square(113.0, 22.0, 113.05, 22.1)), "bad_code", []string{"440399600"}, "digits 7-9"},
		{"missing code", `{"type":"Feature","properties":{"name":"x","level":"street"},"geometry":` + square(113, 22, 113.1, 22.1) + `}`, "bad_code", []string{}, "missing"},
		{"missing name", `{"type":"Feature","properties":{"code":"440399","level":"district"},"geometry":` + square(113, 22, 113.1, 22.1) + `}`, "missing_name", []string{"440399"}, "name"},
		{"unknown level", unitFeat("440399001", "town", square(113.0, 22.0, 113.05, 22.1)), "bad_level", []string{"440399001"}, "unknown level"},
		{"bad layer", unitFeat("440399", "district", square(113.0, 22.0, 113.1, 22.1), `"layer":"Police!"`), "bad_layer", []string{"440399"}, "Police!"},
		{"line instead of polygon", unitFeat("440399", "district", `{"type":"LineString","coordinates":[[113.0,22.0],[113.1,22.1]]}`), "invalid_geojson", []string{"440399"}, "Polygon"},
		{"longitude out of range", unitFeat("440399", "district", square(113.0, 22.0, 213.1, 22.1)), "invalid_geojson", []string{"440399"}, "longitude out of range"},
		{"no geometry", `{"type":"Feature","properties":{"code":"440399","name":"x","level":"district"},"geometry":null}`, "invalid_geojson", []string{"440399"}, "geometry is missing"},
		{"child outside its parent", unitFeat("440308009", "street", square(113.0, 22.0, 113.05, 22.1)), "outside_parent", []string{"440308009", demoDistrict}, "outside its parent " + demoDistrict},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := expectProblem(t, e.post("/v1/units:import", featureCollection(c.feat)), http.StatusUnprocessableEntity, typeViolations, "")
			if len(p.Violations) != 1 {
				t.Fatalf("violations %+v, want one %s", p.Violations, c.rule)
			}
			v := p.Violations[0]
			if v.Rule != c.rule || !reflect.DeepEqual(v.Codes, c.codes) || !strings.Contains(v.Message, c.inMsg) || v.Feature == nil || *v.Feature != 0 {
				t.Errorf("violation %+v, want rule %s codes %v message with %q about features[0]", v, c.rule, c.codes, c.inMsg)
			}
			if c.rule == "outside_parent" && (v.AreaM2 == nil || *v.AreaM2 <= 0 || len(v.Geometry) == 0) {
				t.Errorf("outside_parent without area or geometry: %+v", v)
			}
		})
	}
	// Two violations in one collection: a duplicate code.
	p := expectProblem(t, e.post("/v1/units:import", featureCollection(testDistrict, testStreetW, testStreetW)), http.StatusUnprocessableEntity, typeViolations, "")
	if got := rulesOf(p.Violations); !reflect.DeepEqual(got, map[string]int{"duplicate_code": 1}) || !strings.Contains(p.Violations[0].Message, "first at features[1]") {
		t.Errorf("duplicate code: %+v", p.Violations)
	}
	expectNothingWritten(t, e, before, "440399", "440399001", "440308009")
}

func TestImportMalformedBody(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	before := countAllUnits(t, e)
	cases := []struct {
		name, body string
		inDetail   []string
	}{
		{"syntax error on line 4", "{\n  \"type\": \"FeatureCollection\",\n  \"features\": [\n    {\"type\": \"Feature\",, }\n  ]\n}",
			[]string{"malformed JSON", "line 4, column 24"}},
		{"unterminated", `{"type":"FeatureCollection","features":[`, []string{"malformed JSON", "line 1"}},
		{"empty body", ``, []string{"JSON"}},
		{"features is an object", "{\"type\":\"FeatureCollection\",\n\"features\":{}}", []string{"line 2"}},
		{"a Feature", unitFeat("440399", "district", square(113, 22, 113.1, 22.1)), []string{`"Feature"`, "FeatureCollection"}},
		{"no type", `{"features":[]}`, []string{"FeatureCollection"}},
		{"an array", `[]`, []string{"line 1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, path := range []string{"/v1/units:import", "/v1/units:validate"} {
				expectProblem(t, e.post(path, c.body), http.StatusBadRequest, typeBadRequest, "", c.inDetail...)
			}
		})
	}
	expectNothingWritten(t, e, before)
}

func TestImportQueryParams(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	before := countAllUnits(t, e)
	cases := []struct{ query, param, inDetail string }{
		{"repair=maybe", "repair", `"maybe"`},
		{"complete=yes", "complete", `"yes"`},
		{"tolerance=abc", "tolerance", "not a number"},
		{"tolerance=-1", "tolerance", "out of range"},
		{"tolerance=NaN", "tolerance", "not a number"},
		{"layer=Police!", "layer", `"Police!"`},
		{"layer=1police", "layer", `"1police"`},
	}
	for _, c := range cases {
		for _, path := range []string{"/v1/units:import", "/v1/units:validate"} {
			t.Run(path+"?"+c.query, func(t *testing.T) {
				expectProblem(t, e.post(path+"?"+c.query, testCity), http.StatusBadRequest, typeBadParam, c.param, c.inDetail)
			})
		}
	}
	expectNothingWritten(t, e, before, "440399")
}

func TestImportRepair(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	before := countAllUnits(t, e)
	doc := featureCollection(unitFeat("440399", "district", bowtie))
	for _, q := range []string{"", "?repair=false"} {
		p := expectProblem(t, e.post("/v1/units:import"+q, doc), http.StatusUnprocessableEntity, typeViolations, "")
		if got := rulesOf(p.Violations); !reflect.DeepEqual(got, map[string]int{"invalid_geometry": 1}) {
			t.Errorf("without repair: %+v", p.Violations)
		}
	}
	expectNothingWritten(t, e, before, "440399")

	var rep importReport
	expect(t, e.post("/v1/units:import?repair=true", doc), http.StatusCreated, ctJSON, &rep)
	if rep.Inserted != 1 || len(rep.Violations) != 0 {
		t.Fatalf("repair import: %+v", rep)
	}
	if got := rulesOf(rep.Warnings); !reflect.DeepEqual(got, map[string]int{"repaired": 1}) {
		t.Fatalf("warnings %+v, want one repaired", rep.Warnings)
	}
	w := rep.Warnings[0]
	// The bowtie's lobes are triangles of base 0.1° and height 0.05°: half
	// the 114 km² square in all.
	if w.Severity != "warning" || !reflect.DeepEqual(w.Codes, []string{"440399"}) || w.AreaM2 == nil || *w.AreaM2 < 55e6 || *w.AreaM2 > 59e6 ||
		!strings.Contains(w.Message, "Self-intersection") || !strings.Contains(w.Message, "repaired") {
		t.Errorf("repaired warning %+v (area %v)", w, w.AreaM2)
	}
	var f unitFeature
	expect(t, e.get("/v1/units/440399"), http.StatusOK, ctGeoJSON, &f)
	if geometryType(t, f.Geometry) != "MultiPolygon" {
		t.Errorf("repaired unit geometry %s", f.Geometry)
	}
	var valid bool
	if err := e.store.Pool.QueryRow(context.Background(), `SELECT ST_IsValid(geom) FROM units WHERE code='440399'`).Scan(&valid); err != nil || !valid {
		t.Errorf("stored repaired unit valid=%v err=%v", valid, err)
	}
}

func TestImportComplete(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pgtest.New(t), api.Options{})
	// The west street leaves 113.04–113.05 uncovered: ≈ 1.03 km × 11.07 km.
	doc := featureCollection(testDistrict, unitFeat("440399001", "street", square(113.0, 22.0, 113.04, 22.1)), testStreetE)
	checkGap := func(v violation, severity string) {
		t.Helper()
		if v.Rule != "gap" || v.Severity != severity || !reflect.DeepEqual(v.Codes, []string{"440399"}) || v.AreaM2 == nil ||
			*v.AreaM2 < 11.1e6 || *v.AreaM2 > 11.7e6 || len(v.Geometry) == 0 || !strings.Contains(v.Message, "440399") {
			t.Errorf("gap %+v (area %v), want a %s on 440399 of about 11.4 km²", v, v.AreaM2, severity)
		}
	}
	p := expectProblem(t, e.post("/v1/units:import?complete=true", doc), http.StatusUnprocessableEntity, typeViolations, "", "1 violation(s)")
	if len(p.Violations) != 1 {
		t.Fatalf("violations %+v, want one gap", p.Violations)
	}
	checkGap(p.Violations[0], "error")
	if !strings.Contains(p.Violations[0].Message, "declared complete") {
		t.Errorf("gap message %q does not say the unit is complete", p.Violations[0].Message)
	}
	expectNothingWritten(t, e, 0, "440399", "440399001")

	// Without complete the gap is a warning and the import goes through.
	var rep importReport
	expect(t, e.post("/v1/units:import?complete=false", doc), http.StatusCreated, ctJSON, &rep)
	if rep.Inserted != 3 || len(rep.Violations) != 0 || len(rep.Warnings) != 1 {
		t.Fatalf("import with a gap: %+v", rep)
	}
	checkGap(rep.Warnings[0], "warning")
	var issues struct {
		Issues []violation `json:"issues"`
	}
	expect(t, e.get("/v1/topology/issues?parent=440399"), http.StatusOK, ctJSON, &issues)
	if len(issues.Issues) != 1 {
		t.Fatalf("stored issues %+v, want the gap", issues.Issues)
	}
	checkGap(issues.Issues[0], "warning")
}

func TestImportTolerance(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	before := countAllUnits(t, e)
	sq, street, area := overlapSquare(t, e, 0.0005) // ≈ 11,500 m² inside one demo street
	doc := featureCollection(unitFeat("440308009", "street", sq))
	expectProblem(t, e.post("/v1/units:import", doc), http.StatusUnprocessableEntity, typeViolations, "")
	expectProblem(t, e.post(fmt.Sprintf("/v1/units:import?tolerance=%.0f", area/2), doc), http.StatusUnprocessableEntity, typeViolations, "")
	expectNothingWritten(t, e, before, "440308009")

	var rep importReport
	expect(t, e.post(fmt.Sprintf("/v1/units:import?tolerance=%.0f", area*2), doc), http.StatusCreated, ctJSON, &rep)
	if rep.Inserted != 1 || len(rep.Violations) != 0 {
		t.Fatalf("import within tolerance: %+v", rep)
	}
	expect(t, e.get("/v1/units/440308009"), http.StatusOK, ctGeoJSON, nil)

	// What the import let through, the stored check (default 1 m²) reports.
	var got struct {
		Parent       string      `json:"parent"`
		UnitsChecked int         `json:"units_checked"`
		Issues       []violation `json:"issues"`
	}
	expect(t, e.get("/v1/topology/issues?parent="+demoDistrict), http.StatusOK, ctJSON, &got)
	if got.UnitsChecked != 1+demoStreets+1 || len(got.Issues) != 1 {
		t.Fatalf("issues after a tolerated overlap: %+v", got)
	}
	v := got.Issues[0]
	if v.Rule != "overlap" || !reflect.DeepEqual(v.Codes, []string{street, "440308009"}) || v.AreaM2 == nil ||
		math.Abs(*v.AreaM2-area) > area*0.01 || len(v.Geometry) == 0 || v.Feature != nil {
		t.Errorf("stored overlap %+v", v)
	}
	// …and the same tolerance hides it.
	got.Issues = nil
	expect(t, e.get(fmt.Sprintf("/v1/topology/issues?parent=%s&tolerance=%.0f", demoDistrict, area*2)), http.StatusOK, ctJSON, &got)
	if got.Issues == nil || len(got.Issues) != 0 {
		t.Errorf("issues above the tolerance: %+v", got.Issues)
	}
}

// policeLayer is a district 440308 of layer police around a point of the
// demo, cut at x into two streets that overlap by 0.0001° (≈ 10 m × 2.2 km).
func policeLayer(x, y float64) string {
	return featureCollection(
		unitFeat("440308", "district", square(x-0.01, y-0.01, x+0.01, y+0.01)),
		unitFeat("440308001", "street", square(x-0.01, y-0.01, x+0.0001, y+0.01)),
		unitFeat("440308002", "street", square(x, y-0.01, x+0.01, y+0.01)),
	)
}

func TestImportLayer(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	before := countAllUnits(t, e)
	x, y, _ := demoPoint(t, e, "")
	doc := policeLayer(x, y)
	// The layer's own rules apply: its streets overlap.
	p := expectProblem(t, e.post("/v1/units:import?layer=police", doc), http.StatusUnprocessableEntity, typeViolations, "")
	if got := rulesOf(p.Violations); !reflect.DeepEqual(got, map[string]int{"overlap": 1}) ||
		!reflect.DeepEqual(p.Violations[0].Codes, []string{"440308001", "440308002"}) {
		t.Fatalf("police overlap: %+v", p.Violations)
	}
	// Nothing written: not even the layer.
	expectNothingWritten(t, e, before)
	expectProblem(t, e.get("/v1/units?layer=police"), http.StatusBadRequest, typeBadParam, "layer", `"police"`)

	var rep importReport
	expect(t, e.post("/v1/units:import?layer=police&tolerance=100000", doc), http.StatusCreated, ctJSON, &rep)
	if rep.Inserted != 3 {
		t.Fatalf("police import: %+v", rep)
	}
	var fc unitCollection
	expect(t, e.get("/v1/units?layer=police&geometry=none"), http.StatusOK, ctGeoJSON, &fc)
	if got := fc.codes(); !reflect.DeepEqual(got, []string{"440308", "440308001", "440308002"}) {
		t.Errorf("police units %v", got)
	}
	for _, f := range fc.Features {
		if f.Properties.Layer != "police" {
			t.Errorf("unit %s in layer %q", f.ID, f.Properties.Layer)
		}
	}
	// The base layer is untouched.
	var f unitFeature
	expect(t, e.get("/v1/units/440308001?geometry=none"), http.StatusOK, ctGeoJSON, &f)
	if f.Properties.Layer != "base" || f.Properties.Name == "unit 440308001" {
		t.Errorf("base street after a police import: %+v", f.Properties)
	}
	f = unitFeature{}
	expect(t, e.get("/v1/units/440308001?layer=police&geometry=none"), http.StatusOK, ctGeoJSON, &f)
	if f.Properties.Layer != "police" || f.Properties.Name != "unit 440308001" {
		t.Errorf("police street: %+v", f.Properties)
	}

	var issues struct {
		Layer  string      `json:"layer"`
		Issues []violation `json:"issues"`
	}
	expect(t, e.get("/v1/topology/issues?layer=police&parent=440308"), http.StatusOK, ctJSON, &issues)
	if issues.Layer != "police" || !reflect.DeepEqual(rulesOf(issues.Issues), map[string]int{"overlap": 1}) {
		t.Errorf("police issues: %+v", issues)
	}
	// 0.0001° × 0.02° at 22.6° N ≈ 10.3 m × 2,214 m.
	if a := issues.Issues[0].AreaM2; a == nil || *a < 21000 || *a > 24000 {
		t.Errorf("police overlap area %v", a)
	}
	expect(t, e.get("/v1/topology/issues?parent="+demoDistrict), http.StatusOK, ctJSON, &issues)
	if len(issues.Issues) != 0 {
		t.Errorf("the base layer has issues after a police import: %+v", issues.Issues)
	}
}

func TestValidateWritesNothing(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	before := countAllUnits(t, e)
	var rep importReport
	expect(t, e.post("/v1/units:validate", testCity), http.StatusOK, ctJSON, &rep)
	if !rep.DryRun || rep.Units != 3 || rep.Inserted+rep.Updated+rep.Unchanged != 0 || len(rep.Violations) != 0 {
		t.Errorf("validate: %+v, want a dry run of 3 units", rep)
	}
	rep = importReport{}
	expect(t, e.post("/v1/units:validate?repair=true", featureCollection(unitFeat("440399", "district", bowtie))), http.StatusOK, ctJSON, &rep)
	if !rep.DryRun || !reflect.DeepEqual(rulesOf(rep.Warnings), map[string]int{"repaired": 1}) {
		t.Errorf("validate with repair: %+v", rep)
	}
	rep = importReport{}
	x, y, _ := demoPoint(t, e, "")
	expect(t, e.post("/v1/units:validate?layer=police&tolerance=100000", policeLayer(x, y)), http.StatusOK, ctJSON, &rep)
	if !rep.DryRun || rep.Units != 3 {
		t.Errorf("validate a new layer: %+v", rep)
	}
	expectNothingWritten(t, e, before, "440399", "440399001")
	expectProblem(t, e.get("/v1/units?layer=police"), http.StatusBadRequest, typeBadParam, "layer")
	var loc location
	expect(t, e.get("/v1/locate?lon=113.02&lat=22.05"), http.StatusOK, ctJSON, &loc)
	if loc.District != nil {
		t.Errorf("a validated unit is located: %+v", loc.District)
	}
}

func TestImportBodyLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pgtest.New(t), api.Options{MaxImportBytes: 1024})
	small := featureCollection(testDistrict)
	if len(small) >= 1024 {
		t.Fatalf("test body is %d bytes", len(small))
	}
	big := small + strings.Repeat(" ", 1100-len(small)) // valid JSON, too long
	for _, path := range []string{"/v1/units:import", "/v1/units:validate"} {
		p := expectProblem(t, e.post(path, big), http.StatusRequestEntityTooLarge, typeTooLarge, "", "1024 bytes")
		if p.LimitBytes == nil || *p.LimitBytes != 1024 {
			t.Errorf("limit_bytes %v, want 1024", p.LimitBytes)
		}
	}
	// Far over the limit too (the server stops reading early).
	expectProblem(t, e.post("/v1/units:import", featureCollection(strings.Repeat(testDistrict+",", 2000)+testDistrict)),
		http.StatusRequestEntityTooLarge, typeTooLarge, "", "1024")
	expectNothingWritten(t, e, 0, "440399")
	// Just under the limit passes.
	expect(t, e.post("/v1/units:import", small+strings.Repeat(" ", 1024-len(small))), http.StatusCreated, ctJSON, nil)
}
