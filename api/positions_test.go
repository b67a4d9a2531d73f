package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// Issue 10: a position that is not 2 or 3 finite numbers is refused on
// every route and importer that reads positions, naming the member and
// its index, and nothing is written. Each bad position is tried in the
// place it can take in each body: a Point's coordinates, a ring's third
// position, a CSV row's columns, an event's lon and lat, a locate point.

// badPosition is one of the positions the issue lists, with where the
// error must point inside the position ("" the position itself, "[0]"
// its first number) and what the message must say.
type badPosition struct {
	name   string
	json   string
	member string
	msg    string
}

var badPositions = []badPosition{
	{"one number", `[114]`, "", "got 1"},
	{"no number", `[]`, "", "got 0"},
	{"null longitude", `[null,22]`, "[0]", "null"},
	{"string longitude", `["114",22]`, "[0]", "a string"},
	{"four numbers", `[114,22,5,6]`, "", "got 4"},
	{"overflowing latitude", `[114,1e999]`, "[1]", "not a finite number"},
}

// tableState is a digest of every table a write could touch.
func tableState(t *testing.T, e *apiEnv) string {
	t.Helper()
	var sb strings.Builder
	for _, table := range []string{"units", "objects", "events", "event_log", "event_feed", "tile_changes"} {
		h := sqlStrings(t, e.store, `SELECT count(*)::text || ':' || md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM `+table+` x`)[0]
		fmt.Fprintf(&sb, "%s=%s ", table, h)
	}
	return sb.String()
}

func expectUnchanged(t *testing.T, e *apiEnv, before, what string) {
	t.Helper()
	if after := tableState(t, e); after != before {
		t.Errorf("%s changed the store:\n before %s\n after  %s", what, before, after)
	}
}

// ringWith is a closed square ring around (x, y) whose third position is bad.
func ringWith(x, y float64, bad string) string {
	d := 0.0005
	return fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%g,%g],[%g,%g],%s,[%g,%g],[%g,%g]]]}`,
		x-d, y-d, x+d, y-d, bad, x-d, y+d, x-d, y-d)
}

func TestPositionsRefusedByObjectWrites(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	x, y, _ := demoPoint(t, e, "")
	code := demoDistrict + "0101000001"
	expect(t, e.post("/v1/objects", objFeatureJSON(code, "0101", pointJSON(x, y), "")), http.StatusCreated, ctGeoJSON, nil)
	before := tableState(t, e)
	for _, b := range badPositions {
		point := `{"type":"Point","coordinates":` + b.json + `}`
		polygon := ringWith(x, y, b.json)
		for _, c := range []struct {
			name, method, path, body, member string
		}{
			{"POST point", http.MethodPost, "/v1/objects", objFeatureJSON(demoDistrict+"0101000002", "0101", point, ""), "coordinates" + b.member},
			{"PUT point", http.MethodPut, "/v1/objects/" + code, objFeatureJSON(code, "0101", point, ""), "coordinates" + b.member},
			{"POST polygon", http.MethodPost, "/v1/objects", objFeatureJSON(demoDistrict+"0405000001", "0405", polygon, ""), "coordinates[0][2]" + b.member},
		} {
			t.Run(b.name+"/"+c.name, func(t *testing.T) {
				r := e.do(c.method, c.path, strings.NewReader(c.body))
				expectProblem(t, r, http.StatusUnprocessableEntity, typeObjInvalid, "geometry", c.member+": ", b.msg)
			})
		}
	}
	expectUnchanged(t, e, before, "object writes with bad positions")
}

// importProblem is the 422 of an object import with on_error=abort.
type importProblem struct {
	problem
	Rows     int `json:"rows"`
	Rejected int `json:"rejected"`
	Errors   []struct {
		Pos    int64  `json:"pos"`
		Kind   string `json:"kind"`
		Code   string `json:"code"`
		Reason string `json:"reason"`
	} `json:"errors"`
}

func TestPositionsRefusedByObjectImports(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	x, y, _ := demoPoint(t, e, "")
	good := objFeatureJSON(demoDistrict+"0101000001", "0101", pointJSON(x, y), "")
	before := tableState(t, e)
	check := func(t *testing.T, format, body string, pos int64, kind string, reason ...string) {
		t.Helper()
		var p importProblem
		expect(t, e.post("/v1/objects:import?format="+format, body), http.StatusUnprocessableEntity, ctProblem, &p)
		if p.Type != typeViolations || p.Rows != 2 || p.Rejected != 1 || len(p.Errors) != 1 {
			t.Fatalf("problem %+v, want %s with 1 of 2 rows rejected", p, typeViolations)
		}
		got := p.Errors[0]
		if got.Pos != pos || got.Kind != kind || got.Code != demoDistrict+"0101000002" {
			t.Errorf("error %+v, want %s %d", got, kind, pos)
		}
		for _, s := range reason {
			if !strings.Contains(got.Reason, s) {
				t.Errorf("reason %q does not mention %q", got.Reason, s)
			}
		}
	}
	for _, b := range badPositions {
		bad := objFeatureJSON(demoDistrict+"0101000002", "0101", `{"type":"Point","coordinates":`+b.json+`}`, "")
		want := []string{"geometry: coordinates" + b.member + ": ", b.msg}
		t.Run(b.name+"/geojson", func(t *testing.T) {
			check(t, "geojson", featureCollection(good, bad), 1, "feature", want...)
		})
		t.Run(b.name+"/ndjson", func(t *testing.T) {
			check(t, "ndjson", good+"\n"+bad+"\n", 2, "line", want...)
		})
	}
	polygon := objFeatureJSON(demoDistrict+"0101000002", "0101", ringWith(x, y, `[114]`), "")
	t.Run("ring/geojson", func(t *testing.T) {
		check(t, "geojson", featureCollection(good, polygon), 1, "feature", "geometry: coordinates[0][2]: ", "got 1")
	})
	// CSV holds a position in two columns: a missing, empty or non-numeric
	// one is named, and more fields than the header is a row error.
	for _, c := range []struct{ name, lonlat, want string }{
		{"no latitude", "114,", `lat ""`},
		{"no position", ",", `lon ""`},
		{"null longitude", "null,22", `lon "null"`},
		{"text longitude", "x114,22", `lon "x114"`},
		{"four numbers", "114,22,5,6", "6 fields, the header has 4"},
		{"overflowing latitude", "114,1e999", `lat "1e999"`},
		{"hex longitude", "0x72,22", `lon "0x72"`},
		{"infinite latitude", "114,Inf", `lat "Inf"`},
		{"separated digits", "1_14,22", `lon "1_14"`},
	} {
		t.Run(c.name+"/csv", func(t *testing.T) {
			body := fmt.Sprintf("code,class,lon,lat\n%[1]s0101000001,0101,%[2]g,%[3]g\n%[1]s0101000002,0101,%[4]s\n", demoDistrict, x, y, c.lonlat)
			check(t, "csv", body, 3, "line", c.want)
		})
	}
	expectUnchanged(t, e, before, "object imports with bad positions")

	// on_error=skip writes the good row and leaves the bad one out: it is
	// not stored as (114, 0) or (0, 22).
	bad := objFeatureJSON(demoDistrict+"0101000002", "0101", `{"type":"Point","coordinates":[null,22]}`, "")
	expect(t, e.post("/v1/objects:import?format=ndjson&on_error=skip", good+"\n"+bad+"\n"), http.StatusCreated, ctJSON, nil)
	if n := sqlInt(t, e.store, `SELECT count(*) FROM objects WHERE code = $1`, demoDistrict+"0101000002"); n != 0 {
		t.Errorf("the row with a bad position was stored (%d rows)", n)
	}
}

func TestPositionsRefusedByUnitImports(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	before := tableState(t, e)
	for _, b := range badPositions {
		fc := featureCollection(testDistrict, unitFeat("440399001", "street", ringWith(113.02, 22.05, b.json)))
		for _, route := range []string{"/v1/units:import", "/v1/units:validate"} {
			t.Run(b.name+route, func(t *testing.T) {
				p := expectProblem(t, e.post(route, fc), http.StatusUnprocessableEntity, typeViolations, "")
				var found bool
				for _, v := range p.Violations {
					if v.Rule != "invalid_geojson" {
						continue
					}
					found = true
					if v.Feature == nil || *v.Feature != 1 {
						t.Errorf("violation %+v, want feature 1", v)
					}
					for _, s := range []string{"features[1]", "coordinates[0][2]" + b.member + ": ", b.msg} {
						if !strings.Contains(v.Message, s) {
							t.Errorf("message %q does not mention %q", v.Message, s)
						}
					}
				}
				if !found {
					t.Errorf("no invalid_geojson violation: %+v", p.Violations)
				}
			})
		}
	}
	expectUnchanged(t, e, before, "unit imports with bad positions")
}

// An event's position is two members, lon and lat: the bad positions of the
// issue become a missing, null, string or extra member, each a 422 naming it.
func TestPositionsRefusedByEvents(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	g := evGridPoints(t, e.store)[0]
	before := tableState(t, e)
	for _, c := range []struct {
		name  string
		more  []any
		param string
	}{
		{"no latitude", []any{"lat", nil}, "lat"},
		{"no position", []any{"lon", nil, "lat", nil}, "lon"},
		{"null longitude", []any{"lon", json.RawMessage("null")}, "lon"},
		{"string longitude", []any{"lon", "114"}, "lon"},
		{"an altitude and more", []any{"alt", 5, "m", 6}, "alt"},
		{"overflowing latitude", []any{"lat", json.RawMessage("1e999")}, "lat"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.post("/v1/events", evReport("0102", g.lon, g.lat, c.more...))
			expectProblem(t, r, http.StatusUnprocessableEntity, typeObjInvalid, c.param, c.param)
		})
	}
	expectUnchanged(t, e, before, "event reports with bad positions")
}

// A locate point is [lon, lat] exactly (docs/api.md): a bad one is the
// route's 400 bad-parameter naming the point, and the detail names the
// member. Until api/locate.go reads points with geo.ParsePosition,
// [null,22] is located as (0, 22) and the member is not named.
func TestPositionsRefusedByLocateBatch(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	g := evGridPoints(t, e.store)[0]
	before := tableState(t, e)
	for _, b := range badPositions {
		t.Run(b.name, func(t *testing.T) {
			body := fmt.Sprintf(`{"points":[[%g,%g],%s]}`, g.lon, g.lat, b.json)
			expectProblem(t, e.post("/v1/locate", body), http.StatusBadRequest, typeBadParam, "points[1]", "points[1]"+b.member)
		})
	}
	expectUnchanged(t, e, before, "locate batches with bad positions")
}

// Numbers in query parameters are decimal: Go's hex floats, digit
// separators, Inf and NaN are not coordinates anyone meant.
func TestParametersTakeDecimalNumbers(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	for _, c := range []struct{ path, param string }{
		{"/v1/objects?near=0x72,22.5&radius=100", "near"},
		{"/v1/objects?nearest=114.1,NaN&k=3", "nearest"},
		{"/v1/units?bbox=0x1p6,22,115,23", "bbox"},
		{"/v1/units?bbox=113,22,1_15,23", "bbox"},
		{"/v1/locate?lon=0x72&lat=22.5", "lon"},
		{"/v1/locate?lon=114&lat=Inf", "lat"},
	} {
		expectProblem(t, e.get(c.path), http.StatusBadRequest, typeBadParam, c.param, "not a number")
	}
}
