package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"gridmap/api"
	"gridmap/data"
	"gridmap/data/pgtest"
)

// Problem types of the object API.
const (
	typeObjInvalid  = "https://gridmap.dev/problems/invalid"
	typeObjConflict = "https://gridmap.dev/problems/conflict"
)

type objFeature struct {
	Type       string          `json:"type"`
	ID         string          `json:"id"`
	Geometry   json.RawMessage `json:"geometry"`
	Properties struct {
		Code          string          `json:"code"`
		Class         string          `json:"class"`
		ClassName     string          `json:"class_name"`
		Attrs         json.RawMessage `json:"attrs"`
		GridCode      *string         `json:"grid_code"`
		CommunityCode *string         `json:"community_code"`
		StreetCode    *string         `json:"street_code"`
		DistrictCode  *string         `json:"district_code"`
		CreatedAt     string          `json:"created_at"`
		UpdatedAt     string          `json:"updated_at"`
		DistanceM     *float64        `json:"distance_m"`
	} `json:"properties"`
}

type objCollection struct {
	Type           string       `json:"type"`
	Features       []objFeature `json:"features"`
	NumberReturned int          `json:"numberReturned"`
	Links          []struct {
		Rel  string `json:"rel"`
		Href string `json:"href"`
		Type string `json:"type"`
	} `json:"links"`
}

func (c objCollection) next() string {
	for _, l := range c.Links {
		if l.Rel == "next" {
			return l.Href
		}
	}
	return ""
}

func (c objCollection) codes() []string {
	out := []string{}
	for _, f := range c.Features {
		out = append(out, f.Properties.Code)
	}
	return out
}

func objFeatureJSON(code, class, geometry, attrs string) string {
	props := fmt.Sprintf(`"code":%q,"class":%q`, code, class)
	if attrs != "" {
		props += `,"attrs":` + attrs
	}
	return fmt.Sprintf(`{"type":"Feature","geometry":%s,"properties":{%s}}`, geometry, props)
}

func pointJSON(x, y float64) string {
	return fmt.Sprintf(`{"type":"Point","coordinates":[%s,%s]}`, num(x), num(y))
}

func (e *apiEnv) put(path, body string) reply {
	e.t.Helper()
	return e.do(http.MethodPut, path, strings.NewReader(body))
}

func (e *apiEnv) del(path string) reply { e.t.Helper(); return e.do(http.MethodDelete, path, nil) }

// assignedGrid is what gridmap_assign says for a GeoJSON geometry ("" outside).
func assignedGrid(t *testing.T, e *apiEnv, geometry string) string {
	t.Helper()
	return sqlStrings(t, e.store, `SELECT coalesce(gridmap_assign(ST_SetSRID(ST_GeomFromGeoJSON($1), 4326)), '')`, geometry)[0]
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func checkObjFeature(t *testing.T, f objFeature, code, class, className, grid string) {
	t.Helper()
	p := f.Properties
	if f.Type != "Feature" || f.ID != code || p.Code != code || p.Class != class || p.ClassName != className {
		t.Errorf("feature %s id %s props %+v; want code %s class %s (%s)", f.Type, f.ID, p, code, class, className)
	}
	if str(p.GridCode) != grid {
		t.Errorf("%s: grid_code %q, want %q", code, str(p.GridCode), grid)
	}
	if grid == "" {
		if p.GridCode != nil || p.CommunityCode != nil || p.StreetCode != nil || p.DistrictCode != nil {
			t.Errorf("%s: unassigned object with codes %+v", code, p)
		}
	} else if str(p.CommunityCode) != grid[:12] || str(p.StreetCode) != grid[:9] || str(p.DistrictCode) != grid[:6] {
		t.Errorf("%s: ancestors %s %s %s of grid %s", code, str(p.CommunityCode), str(p.StreetCode), str(p.DistrictCode), grid)
	}
	for _, ts := range []string{p.CreatedAt, p.UpdatedAt} {
		if _, err := time.Parse(time.RFC3339, ts); err != nil {
			t.Errorf("%s: timestamp %q: %v", code, ts, err)
		}
	}
	if p.Attrs == nil || p.Attrs[0] != '{' {
		t.Errorf("%s: attrs %s", code, p.Attrs)
	}
}

func TestClassesAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pgtest.New(t), api.Options{})
	var body struct {
		Classes []struct {
			Code          string   `json:"code"`
			Kind          string   `json:"kind"`
			Major         string   `json:"major"`
			MajorName     string   `json:"major_name"`
			Minor         string   `json:"minor"`
			Name          string   `json:"name"`
			GeometryTypes []string `json:"geometry_types"`
		} `json:"classes"`
	}
	expect(t, e.get("/v1/classes"), http.StatusOK, ctJSON, &body)
	seed, err := data.SeedClasses()
	if err != nil {
		t.Fatal(err)
	}
	if len(body.Classes) != len(seed) {
		t.Errorf("%d classes, seed has %d", len(body.Classes), len(seed))
	}
	var codes []string
	for _, c := range body.Classes {
		codes = append(codes, c.Code)
		if c.Code == "0101" && (c.Name != "上水井盖" || c.Kind != "component" || c.MajorName != "公用设施" || !reflect.DeepEqual(c.GeometryTypes, []string{"Point"})) {
			t.Errorf("class 0101: %+v", c)
		}
	}
	if !sort.StringsAreSorted(codes) {
		t.Errorf("classes not in code order: %v", codes)
	}

	shop := `{"code":"shop","kind":"building","major":"05","major_name":"房屋土地","name":"商铺","geometry_types":["Point","Polygon"]}`
	r := e.post("/v1/classes", shop)
	var added map[string]any
	expect(t, r, http.StatusCreated, ctJSON, &added)
	if added["code"] != "shop" || added["name"] != "商铺" || added["kind"] != "building" {
		t.Errorf("added %v", added)
	}
	expect(t, e.get("/v1/classes"), http.StatusOK, ctJSON, &body)
	if len(body.Classes) != len(seed)+1 {
		t.Errorf("after adding: %d classes", len(body.Classes))
	}
	expectProblem(t, e.post("/v1/classes", shop), http.StatusConflict, typeObjConflict, "", "shop")
	expectProblem(t, e.post("/v1/classes", `{"code":"0101","kind":"component","major":"01","minor":"01","name":"x","geometry_types":["Point"]}`),
		http.StatusConflict, typeObjConflict, "", "0101")
	// Validation: 422 naming the member.
	expectProblem(t, e.post("/v1/classes", `{"code":"0199","kind":"component","major":"01","minor":"98","name":"x","geometry_types":["Point"]}`),
		http.StatusUnprocessableEntity, typeObjInvalid, "class", "0199")
	expectProblem(t, e.post("/v1/classes", `{"code":"tower","kind":"building","name":"x","geometry_types":["Circle"]}`),
		http.StatusUnprocessableEntity, typeObjInvalid, "class", "Circle")
	expectProblem(t, e.post("/v1/classes", `{"code":"tower","kind":"building","name":"x"}`),
		http.StatusUnprocessableEntity, typeObjInvalid, "class", "geometry_types")
	expectProblem(t, e.post("/v1/classes", `{"code":"tower","kind":"building","name":"x","geometry_types":"Point"}`),
		http.StatusUnprocessableEntity, typeObjInvalid, "geometry_types", "array")
	expectProblem(t, e.post("/v1/classes", `{"code":"tower",`), http.StatusBadRequest, typeBadRequest, "")
	expectProblem(t, e.post("/v1/classes", `{"code":"tower","name":"`+strings.Repeat("x", 1<<20)+`"}`), http.StatusRequestEntityTooLarge, typeTooLarge, "")
	expect(t, e.get("/v1/classes"), http.StatusOK, ctJSON, &body)
	if len(body.Classes) != len(seed)+1 {
		t.Errorf("refused classes were stored: %d classes", len(body.Classes))
	}
}

func TestObjectLifecycleAPI(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	x, y, gridA := demoPoint(t, e, "")
	code := demoDistrict + "0101000001"
	geom := pointJSON(x, y)

	// Create.
	r := e.post("/v1/objects", objFeatureJSON(code, "0101", geom, `{"material":"铸铁","diameter_mm":700}`))
	var f objFeature
	expect(t, r, http.StatusCreated, ctGeoJSON, &f)
	checkObjFeature(t, f, code, "0101", "上水井盖", gridA)
	if loc := r.Header.Get("Location"); loc != "/v1/objects/"+code {
		t.Errorf("Location %q", loc)
	}
	var attrs map[string]any
	if err := json.Unmarshal(f.Properties.Attrs, &attrs); err != nil || attrs["material"] != "铸铁" || attrs["diameter_mm"] != 700.0 {
		t.Errorf("attrs %s", f.Properties.Attrs)
	}
	var g struct {
		Type        string    `json:"type"`
		Coordinates []float64 `json:"coordinates"`
	}
	if err := json.Unmarshal(f.Geometry, &g); err != nil || g.Type != "Point" || len(g.Coordinates) != 2 ||
		abs(g.Coordinates[0]-x) > 1e-9 || abs(g.Coordinates[1]-y) > 1e-9 {
		t.Errorf("geometry %s, want Point %v %v", f.Geometry, x, y)
	}
	if f.Properties.DistanceM != nil {
		t.Errorf("distance_m on a plain object")
	}

	// Read.
	var got objFeature
	expect(t, e.get("/v1/objects/"+code), http.StatusOK, ctGeoJSON, &got)
	if !reflect.DeepEqual(got, f) {
		t.Errorf("GET differs from the POST answer:\n%+v\n%+v", got, f)
	}
	expectProblem(t, e.get("/v1/objects/"+demoDistrict+"0101999999"), http.StatusNotFound, typeNotFound, "", demoDistrict+"0101999999")

	// The code is taken.
	x2, y2, gridB := demoPoint(t, e, sqlStrings(t, e.store, `SELECT max(code) FROM units WHERE level = 'grid'`)[0])
	if gridB == gridA {
		t.Fatal("the test needs two grids")
	}
	expectProblem(t, e.post("/v1/objects", objFeatureJSON(code, "0101", pointJSON(x2, y2), "")), http.StatusConflict, typeObjConflict, "", code)
	expect(t, e.get("/v1/objects/"+code), http.StatusOK, ctGeoJSON, &got)
	if str(got.Properties.GridCode) != gridA {
		t.Errorf("a refused create moved the object to %s", str(got.Properties.GridCode))
	}

	// Replace: moved, it is assigned again; the code may be left out of the body.
	// Back-date the object so the PUT's updated_at is visibly later (whole seconds).
	if _, err := e.store.Pool.Exec(context.Background(), `UPDATE objects SET created_at = created_at - interval '1 hour', updated_at = updated_at - interval '1 hour' WHERE code = $1`, code); err != nil {
		t.Fatal(err)
	}
	expect(t, e.get("/v1/objects/"+code), http.StatusOK, ctGeoJSON, &f)
	r = e.put("/v1/objects/"+code, `{"type":"Feature","geometry":`+pointJSON(x2, y2)+`,"properties":{"class":"0101","attrs":{"material":"复合材料"}}}`)
	expect(t, r, http.StatusOK, ctGeoJSON, &got)
	checkObjFeature(t, got, code, "0101", "上水井盖", gridB)
	if got.Properties.CreatedAt != f.Properties.CreatedAt || got.Properties.UpdatedAt <= f.Properties.UpdatedAt {
		t.Errorf("after PUT: created %s updated %s; before %s %s", got.Properties.CreatedAt, got.Properties.UpdatedAt, f.Properties.CreatedAt, f.Properties.UpdatedAt)
	}
	if !strings.Contains(string(got.Properties.Attrs), "复合材料") || strings.Contains(string(got.Properties.Attrs), "diameter") {
		t.Errorf("PUT replaces attrs: %s", got.Properties.Attrs)
	}
	if g := sqlStrings(t, e.store, `SELECT grid_code FROM objects WHERE code = $1`, code)[0]; g != gridB {
		t.Errorf("stored grid %s, want %s", g, gridB)
	}
	// A fetched feature can be PUT back as it is (read-only members are ignored).
	raw := e.get("/v1/objects/" + code).Body
	expect(t, e.put("/v1/objects/"+code, string(raw)), http.StatusOK, ctGeoJSON, nil)

	expectProblem(t, e.put("/v1/objects/"+code, objFeatureJSON(demoDistrict+"0101000002", "0101", geom, "")), http.StatusBadRequest, typeBadParam, "code", demoDistrict+"0101000002")
	unknown := demoDistrict + "0101000077"
	expectProblem(t, e.put("/v1/objects/"+unknown, objFeatureJSON(unknown, "0101", geom, "")), http.StatusNotFound, typeNotFound, "", unknown)
	expectProblem(t, e.put("/v1/objects/"+code, objFeatureJSON(code, "0101", `{"type":"Point","coordinates":[114,95]}`, "")),
		http.StatusUnprocessableEntity, typeObjInvalid, "geometry", "latitude")
	expectProblem(t, e.put("/v1/objects/"+code, `{"type":"Feature"`), http.StatusBadRequest, typeBadRequest, "")
	if n := sqlInt(t, e.store, `SELECT count(*) FROM objects WHERE code = $1`, unknown); n != 0 {
		t.Errorf("PUT of an unknown code created it")
	}

	// Outside every grid: kept, unassigned.
	far := demoDistrict + "0101000003"
	expect(t, e.post("/v1/objects", objFeatureJSON(far, "0101", pointJSON(113.0, 21.0), "null")), http.StatusCreated, ctGeoJSON, &got)
	checkObjFeature(t, got, far, "0101", "上水井盖", "")
	if string(got.Properties.Attrs) != "{}" {
		t.Errorf("attrs null stored as %s", got.Properties.Attrs)
	}
	var fc objCollection
	expect(t, e.get("/v1/objects/unassigned"), http.StatusOK, ctGeoJSON, &fc)
	if !reflect.DeepEqual(fc.codes(), []string{far}) || fc.NumberReturned != 1 || fc.next() != "" {
		t.Errorf("unassigned: %v", fc.codes())
	}

	// Other kinds and geometries.
	poly := fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%s,%s],[%s,%s],[%s,%s],[%s,%s],[%s,%s]]]}`,
		num(x), num(y), num(x+0.0004), num(y), num(x+0.0004), num(y+0.0004), num(x), num(y+0.0004), num(x), num(y))
	house := demoDistrict + "0000000000001"
	expect(t, e.post("/v1/objects", objFeatureJSON(house, "house", poly, `{"floors":12}`)), http.StatusCreated, ctGeoJSON, &got)
	checkObjFeature(t, got, house, "house", "房屋（楼栋）", assignedGrid(t, e, poly))
	ent := "91440300708461136T"
	expect(t, e.post("/v1/objects", objFeatureJSON(ent, "enterprise", geom, `{"name":"某公司"}`)), http.StatusCreated, ctGeoJSON, &got)
	checkObjFeature(t, got, ent, "enterprise", "法人（企业、机构）", gridA)

	// Delete.
	r = e.del("/v1/objects/" + code)
	if r.Status != http.StatusNoContent || len(r.Body) != 0 {
		t.Errorf("DELETE: %s", r)
	}
	expectProblem(t, e.get("/v1/objects/"+code), http.StatusNotFound, typeNotFound, "", code)
	expectProblem(t, e.del("/v1/objects/"+code), http.StatusNotFound, typeNotFound, "", code)
	if n := sqlInt(t, e.store, `SELECT coalesce(sum(n), 0) FROM object_counts`); n != 3 {
		t.Errorf("object_counts holds %d objects, want 3", n)
	}
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}

func TestCreateObjectErrors(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	x, y, _ := demoPoint(t, e, "")
	pt := pointJSON(x, y)
	code := demoDistrict + "0101000001"
	square := fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%s,%s],[%s,%s],[%s,%s],[%s,%s],[%s,%s]]]}`,
		num(x), num(y), num(x+0.001), num(y), num(x+0.001), num(y+0.001), num(x), num(y+0.001), num(x), num(y))
	bowtie := fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%s,%s],[%s,%s],[%s,%s],[%s,%s],[%s,%s]]]}`,
		num(x), num(y), num(x+0.001), num(y+0.001), num(x+0.001), num(y), num(x), num(y+0.001), num(x), num(y))
	cases := []struct {
		name, body string
		status     int
		typ, param string
		inDetail   []string
	}{
		{"unknown class", objFeatureJSON(code, "9999", pt, ""), 422, typeObjInvalid, "class", []string{`"9999"`}},
		{"missing class", `{"type":"Feature","geometry":` + pt + `,"properties":{"code":"` + code + `"}}`, 422, typeObjInvalid, "class", nil},
		{"class digits", objFeatureJSON(demoDistrict+"0102000001", "0101", pt, ""), 422, typeObjInvalid, "code", []string{"digits 7-10", "0102"}},
		{"district digits", objFeatureJSON("4403030101000001", "0101", pt, ""), 422, typeObjInvalid, "code", []string{"440303", demoDistrict}},
		{"not a district", objFeatureJSON("0003080101000001", "0101", pt, ""), 422, typeObjInvalid, "code", []string{"digits 1-6"}},
		{"code length", objFeatureJSON("44030801010001", "0101", pt, ""), 422, typeObjInvalid, "code", []string{"16 digits"}},
		{"missing code", `{"type":"Feature","geometry":` + pt + `,"properties":{"class":"0101"}}`, 422, typeObjInvalid, "code", nil},
		{"USCC check character", objFeatureJSON("91440300708461136U", "enterprise", pt, ""), 422, typeObjInvalid, "code", []string{"check character"}},
		{"geometry type", objFeatureJSON(code, "0101", square, ""), 422, typeObjInvalid, "geometry", []string{"Point", "Polygon"}},
		{"longitude", objFeatureJSON(code, "0101", `{"type":"Point","coordinates":[181,22]}`, ""), 422, typeObjInvalid, "geometry", []string{"longitude"}},
		{"latitude", objFeatureJSON(code, "0101", `{"type":"Point","coordinates":[114,-91]}`, ""), 422, typeObjInvalid, "geometry", []string{"latitude"}},
		{"no geometry", `{"type":"Feature","geometry":null,"properties":{"code":"` + code + `","class":"0101"}}`, 422, typeObjInvalid, "geometry", []string{"missing"}},
		{"unknown geometry type", objFeatureJSON(code, "0101", `{"type":"Circle","coordinates":[114,22]}`, ""), 422, typeObjInvalid, "geometry", nil},
		{"geometry collection", objFeatureJSON(code, "0101", `{"type":"GeometryCollection","geometries":[`+pt+`]}`, ""), 422, typeObjInvalid, "geometry", nil},
		{"self-intersection", objFeatureJSON(demoDistrict+"0405000001", "0405", bowtie, ""), 422, typeObjInvalid, "geometry", []string{"Self-intersection"}},
		{"open ring", objFeatureJSON(demoDistrict+"0405000001", "0405", `{"type":"Polygon","coordinates":[[[114,22],[114.1,22],[114.1,22.1],[114,22.1]]]}`, ""), 422, typeObjInvalid, "geometry", []string{"closed"}},
		{"attrs array", objFeatureJSON(code, "0101", pt, `[1,2]`), 422, typeObjInvalid, "attrs", []string{"JSON object"}},
		{"attrs string", objFeatureJSON(code, "0101", pt, `"x"`), 422, typeObjInvalid, "attrs", nil},
		{"code a number", `{"type":"Feature","geometry":` + pt + `,"properties":{"code":4403080101000001,"class":"0101"}}`, 422, typeObjInvalid, "code", []string{"string"}},
		{"malformed JSON", `{"type":"Feature","geometry":` + pt, 400, typeBadRequest, "", nil},
		{"trailing garbage", objFeatureJSON(code, "0101", pt, "") + "x", 400, typeBadRequest, "", nil},
		{"not a Feature", `{"type":"FeatureCollection","features":[]}`, 400, typeBadRequest, "", []string{"FeatureCollection"}},
		{"an array", `[]`, 400, typeBadRequest, "", nil},
		{"too large", objFeatureJSON(code, "0101", pt, `{"x":"`+strings.Repeat("a", 1<<20)+`"}`), 413, typeTooLarge, "", []string{"1048576"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := expectProblem(t, e.post("/v1/objects", c.body), c.status, c.typ, c.param, c.inDetail...)
			if p.Instance != "/v1/objects" {
				t.Errorf("instance %q", p.Instance)
			}
		})
	}
	if n := sqlInt(t, e.store, `SELECT count(*) FROM objects`); n != 0 {
		t.Errorf("%d objects stored by refused requests", n)
	}
}

// objSeed stores n random points over the demo (and a margin outside it)
// through SQL, assigned by gridmap_assign; every fourth is a 路灯 (0118).
func objSeed(t *testing.T, e *apiEnv, n int) {
	t.Helper()
	var ext [4]float64
	if err := e.store.Pool.QueryRow(context.Background(), `SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) e FROM units) x`).
		Scan(&ext[0], &ext[1], &ext[2], &ext[3]); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(41, 43))
	var codes, classes []string
	var xs, ys []float64
	for i := range n {
		class := "0101"
		if i%4 == 3 {
			class = "0118"
		}
		codes = append(codes, fmt.Sprintf("%s%s%06d", demoDistrict, class, i+1))
		classes = append(classes, class)
		xs = append(xs, ext[0]-0.01+rng.Float64()*(ext[2]-ext[0]+0.02))
		ys = append(ys, ext[1]-0.01+rng.Float64()*(ext[3]-ext[1]+0.02))
	}
	if _, err := e.store.Pool.Exec(context.Background(), `
		INSERT INTO objects (code, class_code, geom, grid_code)
		SELECT c, k, g, gridmap_assign(g)
		FROM (SELECT c, k, ST_SetSRID(ST_MakePoint(x, y), 4326) AS g
		      FROM unnest($1::text[], $2::text[], $3::float8[], $4::float8[]) AS u(c, k, x, y)) z`, codes, classes, xs, ys); err != nil {
		t.Fatal(err)
	}
}

// pageThrough follows rel=next links from first to the end.
func pageThrough(t *testing.T, e *apiEnv, first string) (features []objFeature, pages []int) {
	t.Helper()
	firstURL, _ := url.Parse(first)
	next := first
	for next != "" {
		if len(pages) > 2000 {
			t.Fatalf("paging from %s does not end", first)
		}
		var fc objCollection
		expect(t, e.get(next), http.StatusOK, ctGeoJSON, &fc)
		if fc.Type != "FeatureCollection" || fc.Features == nil || fc.NumberReturned != len(fc.Features) {
			t.Fatalf("%s: type %q, %d features, numberReturned %d", next, fc.Type, len(fc.Features), fc.NumberReturned)
		}
		features = append(features, fc.Features...)
		pages = append(pages, len(fc.Features))
		next = fc.next()
		if next == "" {
			continue
		}
		if len(fc.Features) == 0 {
			t.Fatalf("%s: an empty page links to %s", first, next)
		}
		u, err := url.Parse(next)
		if err != nil || u.Path != firstURL.Path || u.Query().Get("cursor") == "" {
			t.Fatalf("next link %q", next)
		}
		for k, v := range firstURL.Query() {
			if k != "cursor" && !reflect.DeepEqual(u.Query()[k], v) {
				t.Errorf("next link drops or changes %s: %q vs %q", k, u.Query()[k], v)
			}
		}
	}
	return features, pages
}

func featureCodes(fs []objFeature) []string {
	out := []string{}
	for _, f := range fs {
		out = append(out, f.Properties.Code)
	}
	return out
}

func TestListObjectsAPI(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	objSeed(t, e, 900)
	s := e.store
	x, y, _ := demoPoint(t, e, "")
	community := sqlStrings(t, s, `SELECT code FROM units WHERE level = 'community' ORDER BY code LIMIT 1 OFFSET 3`)[0]
	bbox := fmt.Sprintf("%s,%s,%s,%s", num(x-0.02), num(y-0.015), num(x+0.02), num(y+0.015))
	near := num(x) + "," + num(y)
	nearSQL := `SELECT code FROM objects WHERE ST_DWithin(geom::geography, ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography, $3, false) AND ($4 = '' OR class_code = $4)
		ORDER BY ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography, false), code`
	nearestSQL := `SELECT code FROM objects WHERE ($3 = '' OR class_code = $3)
		ORDER BY ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography, false), code LIMIT $4`
	cases := []struct {
		name, query string
		want        []string
		pages       []int
		distance    bool
	}{
		{"bbox", "bbox=" + bbox + "&limit=7",
			sqlStrings(t, s, `SELECT code FROM objects WHERE ST_Intersects(geom, ST_MakeEnvelope($1, $2, $3, $4, 4326)) ORDER BY code`, x-0.02, y-0.015, x+0.02, y+0.015), nil, false},
		{"bbox class", "bbox=" + bbox + "&class=0118",
			sqlStrings(t, s, `SELECT code FROM objects WHERE ST_Intersects(geom, ST_MakeEnvelope($1, $2, $3, $4, 4326)) AND class_code = '0118' ORDER BY code`, x-0.02, y-0.015, x+0.02, y+0.015), nil, false},
		{"bbox empty", "bbox=0,0,1,1", []string{}, []int{0}, false},
		{"within district", "within=" + demoDistrict + "&limit=100",
			sqlStrings(t, s, `SELECT code FROM objects WHERE grid_code LIKE $1 || '%' ORDER BY grid_code, code`, demoDistrict), nil, false},
		{"within community", "within=" + community + "&limit=3",
			sqlStrings(t, s, `SELECT code FROM objects WHERE grid_code LIKE $1 || '%' ORDER BY grid_code, code`, community), nil, false},
		{"within street class", "within=" + community[:9] + "&class=0101&limit=10",
			sqlStrings(t, s, `SELECT code FROM objects WHERE grid_code LIKE $1 || '%' AND class_code = '0101' ORDER BY grid_code, code`, community[:9]), nil, false},
		{"near", "near=" + near + "&radius=1500&limit=6", sqlStrings(t, s, nearSQL, x, y, 1500.0, ""), nil, true},
		{"near class", "near=" + near + "&radius=50000&class=0118", sqlStrings(t, s, nearSQL, x, y, 50000.0, "0118"), nil, true},
		{"nearest", "nearest=" + near + "&k=25&limit=10", sqlStrings(t, s, nearestSQL, x, y, "", 25), []int{10, 10, 5}, true},
		{"nearest exact pages", "nearest=" + near + "&k=20&limit=10", sqlStrings(t, s, nearestSQL, x, y, "", 20), []int{10, 10}, true},
		{"nearest class", "nearest=" + near + "&k=1000&class=0118", sqlStrings(t, s, nearestSQL, x, y, "0118", 1000), nil, true},
		{"nearest one", "nearest=114,22&k=1", sqlStrings(t, s, nearestSQL, 114.0, 22.0, "", 1), []int{1}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if len(c.want) == 0 && c.name != "bbox empty" {
				t.Fatalf("the case selects nothing")
			}
			features, pages := pageThrough(t, e, "/v1/objects?"+c.query)
			if got := featureCodes(features); !reflect.DeepEqual(got, c.want) {
				t.Errorf("codes (%d) %v\nwant (%d) %v", len(got), got, len(c.want), c.want)
			}
			if c.pages != nil && !reflect.DeepEqual(pages, c.pages) {
				t.Errorf("pages %v, want %v", pages, c.pages)
			}
			prev := -1.0
			for _, f := range features {
				p := f.Properties
				if (p.DistanceM != nil) != c.distance {
					t.Fatalf("%s: distance_m %v", p.Code, p.DistanceM)
				}
				if c.distance {
					if *p.DistanceM < prev {
						t.Errorf("%s at %.3f m after %.3f m", p.Code, *p.DistanceM, prev)
					}
					prev = *p.DistanceM
				}
				if p.ClassName == "" || p.CreatedAt == "" || geometryType(t, f.Geometry) != "Point" {
					t.Errorf("feature %+v", p)
				}
			}
		})
	}
	// Distances agree with PostGIS.
	var fc objCollection
	expect(t, e.get("/v1/objects?nearest="+near+"&k=3"), http.StatusOK, ctGeoJSON, &fc)
	for _, f := range fc.Features {
		var d float64
		if err := s.Pool.QueryRow(context.Background(), `SELECT ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography, false) FROM objects WHERE code = $3`,
			x, y, f.Properties.Code).Scan(&d); err != nil {
			t.Fatal(err)
		}
		if abs(*f.Properties.DistanceM-d) > 0.001 {
			t.Errorf("%s: distance_m %.4f, PostGIS %.4f", f.Properties.Code, *f.Properties.DistanceM, d)
		}
	}
	// Default page size 100.
	expect(t, e.get("/v1/objects?within="+demoDistrict), http.StatusOK, ctGeoJSON, &fc)
	if len(fc.Features) != 100 || fc.next() == "" {
		t.Errorf("default page: %d features, next %q", len(fc.Features), fc.next())
	}
	// Unassigned, page by page.
	want := sqlStrings(t, s, `SELECT code FROM objects WHERE grid_code IS NULL ORDER BY code`)
	if len(want) < 5 {
		t.Fatalf("only %d unassigned objects", len(want))
	}
	features, pages := pageThrough(t, e, "/v1/objects/unassigned?limit=4")
	if got := featureCodes(features); !reflect.DeepEqual(got, want) || len(pages) != (len(want)+3)/4 {
		t.Errorf("unassigned %v in pages %v, want %v", got, pages, want)
	}
	for _, f := range features {
		if f.Properties.GridCode != nil {
			t.Errorf("unassigned %s has grid %s", f.Properties.Code, *f.Properties.GridCode)
		}
	}
}

func TestListObjectsBadParams(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	objSeed(t, e, 20)
	var fc objCollection
	expect(t, e.get("/v1/objects?nearest=114.3,22.6&k=5&limit=2"), http.StatusOK, ctGeoJSON, &fc)
	distCursor, _ := url.Parse(fc.next())
	cases := []struct {
		query, param string
		inDetail     []string
	}{
		{"", "bbox,within,near,nearest", []string{"exactly one"}},
		{"class=0101", "bbox,within,near,nearest", nil},
		{"bbox=114,22,115,23&within=440308", "bbox,within", []string{"got 2"}},
		{"near=114,22&radius=10&nearest=114,22&k=1", "near,nearest", nil},
		{"bbox=114,22,115,23&within=440308&near=114,22&radius=5&nearest=114,22&k=3", "bbox,within,near,nearest", []string{"got 4"}},
		{"radius=100", "radius", []string{"near"}},
		{"bbox=114,22,115,23&radius=100", "radius", []string{"near"}},
		{"near=114,22", "radius", []string{"radius"}},
		{"near=114,22&radius=0", "radius", []string{"more than 0"}},
		{"near=114,22&radius=-5", "radius", []string{"out of range"}},
		{"near=114,22&radius=50001", "radius", []string{"out of range"}},
		{"near=114,22&radius=abc", "radius", []string{"not a number"}},
		{"near=114,22&radius=NaN", "radius", []string{"not a number"}},
		{"k=5", "k", []string{"nearest"}},
		{"within=440308&k=5", "k", []string{"nearest"}},
		{"nearest=114,22", "k", nil},
		{"nearest=114,22&k=0", "k", []string{"out of range"}},
		{"nearest=114,22&k=1001", "k", []string{"out of range"}},
		{"nearest=114,22&k=two", "k", []string{"not an integer"}},
		{"near=114&radius=5", "near", []string{"lon,lat"}},
		{"near=114,22,1&radius=5", "near", []string{"lon,lat"}},
		{"near=200,22&radius=5", "near", []string{"longitude"}},
		{"near=114,95&radius=5", "near", []string{"latitude"}},
		{"nearest=a,b&k=5", "nearest", []string{"not a number"}},
		{"bbox=114,22,115", "bbox", []string{"minLon,minLat,maxLon,maxLat"}},
		{"bbox=115,22,114,23", "bbox", []string{"minimum exceeds maximum"}},
		{"within=440399", "within", []string{`"440399"`}},
		{"within=abc", "within", nil},
		{"bbox=114,22,115,23&class=9999", "class", []string{`"9999"`}},
		{"bbox=114,22,115,23&limit=0", "limit", []string{"out of range"}},
		{"bbox=114,22,115,23&limit=10001", "limit", []string{"out of range"}},
		{"bbox=114,22,115,23&cursor=nonsense", "cursor", nil},
		{"bbox=114,22,115,23&cursor=" + url.QueryEscape(distCursor.Query().Get("cursor")), "cursor", nil},
	}
	for _, c := range cases {
		t.Run(c.query, func(t *testing.T) {
			p := expectProblem(t, e.get("/v1/objects?"+c.query), http.StatusBadRequest, typeBadParam, c.param, c.inDetail...)
			if p.Instance != "/v1/objects" {
				t.Errorf("instance %q", p.Instance)
			}
		})
	}
	expectProblem(t, e.get("/v1/objects/unassigned?limit=0"), http.StatusBadRequest, typeBadParam, "limit")
	expectProblem(t, e.get("/v1/objects/unassigned?cursor=x"), http.StatusBadRequest, typeBadParam, "cursor")
}

type statsUnit struct {
	Code    string `json:"code"`
	Name    string `json:"name"`
	Level   string `json:"level"`
	Total   int    `json:"total"`
	ByClass map[string]struct {
		Name  string `json:"name"`
		Count int    `json:"count"`
	} `json:"by_class"`
}

type statsBody struct {
	Unit     statsUnit   `json:"unit"`
	Children []statsUnit `json:"children"`
	By       string      `json:"by"`
}

func TestStatsAPI(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	objSeed(t, e, 600)
	s := e.store
	truth := func(unit, class string) int {
		return sqlInt(t, s, `SELECT count(*) FROM objects WHERE grid_code LIKE $1 || '%' AND ($2 = '' OR class_code = $2)`, unit, class)
	}
	check := func(path, unit string) statsBody {
		t.Helper()
		var st statsBody
		expect(t, e.get(path), http.StatusOK, ctJSON, &st)
		name := sqlStrings(t, s, `SELECT name FROM units WHERE code = $1`, unit)[0]
		level := sqlStrings(t, s, `SELECT level FROM units WHERE code = $1`, unit)[0]
		if st.By != "class" || st.Unit.Code != unit || st.Unit.Name != name || st.Unit.Level != level {
			t.Errorf("%s: by %q unit %+v", path, st.By, st.Unit)
		}
		for _, u := range append([]statsUnit{st.Unit}, st.Children...) {
			if u.Total != truth(u.Code, "") {
				t.Errorf("%s: %s total %d, want %d", path, u.Code, u.Total, truth(u.Code, ""))
			}
			sum := 0
			for class, c := range u.ByClass {
				sum += c.Count
				if c.Count != truth(u.Code, class) || c.Name != map[string]string{"0101": "上水井盖", "0118": "路灯", "0102": "污水井盖"}[class] {
					t.Errorf("%s: %s class %s %+v, want %d", path, u.Code, class, c, truth(u.Code, class))
				}
			}
			if sum != u.Total {
				t.Errorf("%s: %s classes add up to %d, total %d", path, u.Code, sum, u.Total)
			}
		}
		want := sqlStrings(t, s, `SELECT code FROM units WHERE parent_code = $1 ORDER BY code`, unit)
		var got []string
		for _, c := range st.Children {
			got = append(got, c.Code)
			if c.Name == "" || c.Level != "" {
				t.Errorf("%s: child %+v", path, c)
			}
		}
		if st.Children == nil || (len(want) > 0 && !reflect.DeepEqual(got, want)) || (len(want) == 0 && len(got) != 0) {
			t.Errorf("%s: children %v, want %v", path, got, want)
		}
		return st
	}
	st := check("/v1/stats/"+demoDistrict+"?by=class", demoDistrict)
	if st.Unit.Total == 0 || len(st.Children) != demoStreets || len(st.Unit.ByClass) != 2 {
		t.Fatalf("district stats %+v", st)
	}
	check("/v1/stats/"+demoDistrict, demoDistrict)
	street := st.Children[2].Code
	check("/v1/stats/"+street, street)
	community := sqlStrings(t, s, `SELECT code FROM units WHERE parent_code = $1 ORDER BY code LIMIT 1`, street)[0]
	check("/v1/stats/"+community+"?by=class", community)
	x, y, grid := demoPoint(t, e, community+"001")
	st = check("/v1/stats/"+grid, grid)
	before := st.Unit.Total

	// Writes through the API show at once.
	code := demoDistrict + "0102000001"
	expect(t, e.post("/v1/objects", objFeatureJSON(code, "0102", pointJSON(x, y), "")), http.StatusCreated, ctGeoJSON, nil)
	st = check("/v1/stats/"+grid, grid)
	if st.Unit.Total != before+1 || st.Unit.ByClass["0102"].Count != 1 || st.Unit.ByClass["0102"].Name != "污水井盖" {
		t.Errorf("after a create: %+v", st.Unit)
	}
	x2, y2, grid2 := demoPoint(t, e, "")
	expect(t, e.put("/v1/objects/"+code, objFeatureJSON(code, "0102", pointJSON(x2, y2), "")), http.StatusOK, ctGeoJSON, nil)
	st = check("/v1/stats/"+grid, grid)
	if st.Unit.Total != before {
		t.Errorf("after a move away: %+v", st.Unit)
	}
	check("/v1/stats/"+grid2, grid2)
	check("/v1/stats/"+demoDistrict, demoDistrict)
	if r := e.del("/v1/objects/" + code); r.Status != http.StatusNoContent {
		t.Fatalf("delete: %s", r)
	}
	check("/v1/stats/"+grid2, grid2)

	expectProblem(t, e.get("/v1/stats/440399"), http.StatusNotFound, typeNotFound, "", `"440399"`)
	expectProblem(t, e.get("/v1/stats/"+demoDistrict+"?of=objects&by=status"), http.StatusBadRequest, typeBadParam, "by", `"status"`)
	expectProblem(t, e.get("/v1/stats/"+demoDistrict+"?of=roads"), http.StatusBadRequest, typeBadParam, "of", `"roads"`)
}

func TestObjectRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pgtest.New(t), api.Options{})
	cases := []struct{ method, path, allow string }{
		{http.MethodDelete, "/v1/classes", "GET, POST"},
		{http.MethodPut, "/v1/objects", "GET, POST"},
		{http.MethodPost, "/v1/objects/4403080101000001", "DELETE, GET, PUT"},
		{http.MethodPatch, "/v1/objects/4403080101000001", "DELETE, GET, PUT"},
		{http.MethodPost, "/v1/objects/unassigned", "DELETE, GET, PUT"}, // PUT and DELETE reach /v1/objects/{code}
		{http.MethodDelete, "/v1/stats/440308", "GET"},
	}
	for _, c := range cases {
		r := e.do(c.method, c.path, nil)
		expectProblem(t, r, http.StatusMethodNotAllowed, typeNotAllowed, "")
		var got []string
		for _, v := range r.Header.Values("Allow") {
			for _, m := range strings.Split(v, ",") {
				got = append(got, strings.TrimSpace(m))
			}
		}
		sort.Strings(got)
		if strings.Join(got, ", ") != c.allow {
			t.Errorf("%s %s: Allow %v, want %s", c.method, c.path, got, c.allow)
		}
	}
	expectProblem(t, e.get("/v1/stats"), http.StatusNotFound, typeNotFound, "")
	expectProblem(t, e.get("/v1/objects/a/b"), http.StatusNotFound, typeNotFound, "")
}
