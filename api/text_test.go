package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// Issue 10: text PostgreSQL cannot take (a NUL), or that encoding/json
// would silently change (bytes that are not UTF-8, lone surrogate
// escapes), and dates PostgreSQL cannot take (year 0000) are a 4xx naming
// where they are, on every route, and nothing is written.

// sendText is do with a content type and headers.
func (e *apiEnv) sendText(method, path, ctype, body string, header map[string]string) reply {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, e.url+path, rd)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for k, v := range header {
		req.Header[k] = []string{v}
	}
	resp, err := http.DefaultClient.Do(e.authorize(req))
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// textState adds the tables of classes, departments and the calendar to
// tableState: the writes of this file reach them too.
func textState(t *testing.T, e *apiEnv) string {
	t.Helper()
	var sb strings.Builder
	sb.WriteString(tableState(t, e))
	for _, table := range []string{"object_classes", "event_classes", "departments", "work_calendar", "work_hours", "event_idempotency", "layers"} {
		h := sqlStrings(t, e.store, `SELECT count(*)::text || ':' || md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM `+table+` x`)[0]
		fmt.Fprintf(&sb, "%s=%s ", table, h)
	}
	return sb.String()
}

// Bad text as it travels: percent-encoded in a URL, raw in a body or
// header, and as JSON escapes.
var (
	badURLText = map[string]string{"NUL": "a%00b", "invalid UTF-8": "a%FFb", "truncated UTF-8": "%E4%B8"}
	badJSONStr = map[string]string{
		"NUL escape":       `"a\u0000b"`,
		"lone surrogate":   `"\ud800"`,
		"lone low":         `"x\udfffy"`,
		"invalid UTF-8":    "\"a\xffb\"",
		"overlong UTF-8":   "\"\xc0\xaf\"",
		"surrogate UTF-8":  "\"\xed\xa0\x80\"",
		"truncated UTF-8":  "\"\xe4\xb8\"",
		"reversed pair":    `"\udc00\ud800"`,
		"high then letter": `"\ud83dA"`,
	}
	badDates = []string{"0000-01-01", "0000-12-31T23:00:00Z", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"}
)

// routeValues fill a route's path variables with values that route
// accepts, so that a refusal is about the bad one.
var routeValues = map[string]string{
	"code": demoDistrict, "day": "2026-12-24", "layer": "grid", "z": "12", "x": "3340", "y": "1785",
	"name": "demo", "fontstack": "Noto Sans Regular", "range": "0-255", "file": "app.css",
}

// queryNames are every query parameter a route reads.
var queryNames = []string{"level", "parent", "bbox", "geometry", "cursor", "limit", "layer", "lon", "lat", "crs",
	"class", "within", "near", "radius", "nearest", "k", "unit", "status", "overdue", "from", "to", "by", "of",
	"format", "on_error", "reason", "repair", "complete", "tolerance", "source", "department", "last_event_id", "q"}

var varRE = regexp.MustCompile(`\{([a-z]+)\}`)

func fillRoute(tpl string, bad map[string]string) string {
	return varRE.ReplaceAllStringFunc(tpl, func(m string) string {
		name := m[1 : len(m)-1]
		if v, ok := bad[name]; ok {
			return v
		}
		return routeValues[name]
	})
}

// TestBadTextSweep sends bad text in every place of every registered
// route: no answer is a 500, and nothing is written.
func TestBadTextSweep(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	routes := e.srv.Routes()
	if len(routes) < 30 {
		t.Fatalf("only %d routes: %v", len(routes), routes)
	}
	beforeTables, before := tableState(t, e), textState(t, e)
	tpls := make([]string, 0, len(routes))
	for tpl := range routes {
		tpls = append(tpls, tpl)
	}
	sort.Strings(tpls)
	check := func(r reply, what string) {
		t.Helper()
		if r.Status >= 500 {
			t.Errorf("%s: %s", what, r)
		}
	}
	for _, tpl := range tpls {
		for _, m := range routes[tpl] {
			stream := tpl == "/v1/events/stream"
			// Path variables.
			for _, v := range varRE.FindAllStringSubmatch(tpl, -1) {
				for kind, bad := range badURLText {
					path := fillRoute(tpl, map[string]string{v[1]: bad})
					r := e.sendText(m, path, "", "", nil)
					if r.Status != http.StatusBadRequest {
						t.Errorf("%s %s (%s in {%s}): %s", m, path, kind, v[1], r)
					}
				}
				if v[1] == "day" || v[1] == "code" {
					check(e.sendText(m, fillRoute(tpl, map[string]string{v[1]: "0000-01-01"}), "", "", nil), m+" "+tpl+" year 0000")
				}
			}
			// Query parameters: refused before the route runs, naming them.
			for _, name := range queryNames {
				for kind, bad := range badURLText {
					path := fillRoute(tpl, nil) + "?" + name + "=" + bad
					r := e.sendText(m, path, "", "", nil)
					if r.Status != http.StatusBadRequest || m != http.MethodHead && !strings.Contains(string(r.Body), `"param":"`+name+`"`) {
						t.Errorf("%s %s (%s): %s", m, path, kind, r)
					}
				}
			}
			if !stream {
				for _, name := range []string{"from", "to", "as_of", "since", "before", "after"} {
					for _, d := range badDates {
						path := fillRoute(tpl, nil) + "?" + name + "=" + strings.ReplaceAll(d, "+", "%2B")
						check(e.sendText(m, path, "", "", nil), m+" "+path)
					}
				}
			}
			// Headers gridmap reads.
			for _, h := range []string{"Idempotency-Key", "X-Actor", "If-Match", "If-None-Match", "Last-Event-ID"} {
				for _, v := range []string{" ", "a\xffb", "\xe4\xb8"} {
					if stream && (h != "Last-Event-ID" || v == " ") {
						continue // a header the stream ignores would keep it open
					}
					body, ctype := "", ""
					if m == http.MethodPost || m == http.MethodPut {
						body, ctype = "{}", "application/json"
					}
					check(e.sendText(m, fillRoute(tpl, nil), ctype, body, map[string]string{h: v}), fmt.Sprintf("%s %s %s: %q", m, tpl, h, v))
				}
			}
			if m != http.MethodPost && m != http.MethodPut {
				continue
			}
			// Bodies: every member a route reads, one at a time, in JSON;
			// the same in CSV, NDJSON and GeoJSON on the importers.
			for _, member := range bodyMembers {
				for kind, bad := range badJSONStr {
					body := strings.ReplaceAll(member, "BAD", bad)
					r := e.sendText(m, fillRoute(tpl, nil), "application/json", body, nil)
					if r.Status < 400 || r.Status >= 500 {
						t.Errorf("%s %s %s (%s): %s", m, tpl, body, kind, r)
					}
				}
			}
			for _, d := range badDates {
				for _, member := range []string{"occurred_at", "day"} {
					check(e.sendText(m, fillRoute(tpl, nil), "application/json", `{"`+member+`":"`+d+`"}`, nil), m+" "+tpl+" "+member+" "+d)
				}
			}
			if strings.Contains(tpl, ":import") || strings.Contains(tpl, ":validate") {
				for kind, bad := range badJSONStr {
					for _, f := range []struct{ ctype, body string }{
						{"application/geo+json", featureCollection(`{"type":"Feature","properties":{"code":` + bad + `,"name":` + bad + `},"geometry":{"type":"Point","coordinates":[114.2,22.6]}}`)},
						{"application/x-ndjson", `{"type":"Feature","properties":{"code":` + bad + `},"geometry":{"type":"Point","coordinates":[114.2,22.6]}}` + "\n"},
						{"text/csv", "code,class,name,lon,lat\nX1,0101," + strings.Trim(bad, `"`) + ",114.2,22.6\n"},
					} {
						r := e.sendText(m, fillRoute(tpl, nil), f.ctype, f.body, nil)
						if r.Status < 400 || r.Status >= 500 {
							t.Errorf("%s %s %s (%s): %s", m, tpl, f.ctype, kind, r)
						}
					}
				}
			}
		}
	}
	expectUnchanged(t, e, beforeTables, "bad text on every route")
	if after := textState(t, e); after != before {
		t.Errorf("bad text changed the store:\n before %s\n after  %s", before, after)
	}
}

// bodyMembers are the JSON bodies of every POST and PUT with one member
// set to BAD (a string), covering each member that is stored as text.
var bodyMembers = []string{
	`{"code":BAD}`, `{"name":BAD}`, `{"class":BAD}`, `{"major":BAD}`, `{"major_name":BAD}`, `{"minor":BAD}`,
	`{"department":BAD}`, `{"description":BAD}`, `{"source":BAD}`, `{"reporter":BAD}`, `{"media":[BAD]}`,
	`{"to":BAD}`, `{"actor":BAD}`, `{"note":BAD}`, `{"kind":BAD}`, `{"timezone":BAD}`, `{"periods":BAD}`,
	`{"crs":BAD}`, `{"occurred_at":BAD}`, `{"limit":{"unit":BAD}}`,
	`{"type":"Feature","properties":{"code":"X1","class":"0101","attrs":{"owner":BAD}},"geometry":{"type":"Point","coordinates":[114.2,22.6]}}`,
	`{"type":"Feature","properties":{"code":"X1","class":"0101","attrs":{"a":{"b":[1,BAD]}}},"geometry":{"type":"Point","coordinates":[114.2,22.6]}}`,
	`{"type":"Feature","properties":{"code":BAD,"class":"0101"},"geometry":{"type":"Point","coordinates":[114.2,22.6]}}`,
	`{"type":"Feature","properties":{"code":"X1","class":"0101","name":BAD},"geometry":{"type":"Point","coordinates":[114.2,22.6]}}`,
	`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"440399","level":"district","name":BAD},"geometry":{"type":"Polygon","coordinates":[[[113,22],[113.1,22],[113.1,22.1],[113,22]]]}}]}`,
	`{"points":[[114.2,22.6]],"crs":BAD}`,
}

// textVariant is one kind of bad text in a JSON string, with the answer
// it gets: not UTF-8 is not JSON (400), an escape that names no storable
// character is an invalid member (422).
type textVariant struct {
	name, json string
	status     int
	typ        string
}

var textVariants = []textVariant{
	{"NUL escape", `"a\u0000b"`, http.StatusUnprocessableEntity, typeInvalid},
	{"lone surrogate", `"\ud800"`, http.StatusUnprocessableEntity, typeInvalid},
	{"invalid UTF-8", "\"a\xffb\"", http.StatusBadRequest, typeBadRequest},
}

// TestBadTextRefused: each place of each route that takes text, with
// each kind of bad text: the status, the problem's type and the member or
// parameter it names, and no table changed.
func TestBadTextRefused(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	x, y, _ := demoPoint(t, e, "")
	obj := demoDistrict + "0101000009"
	expect(t, e.post("/v1/objects", objFeatureJSON(obj, "0101", pointJSON(x, y), "")), http.StatusCreated, ctGeoJSON, nil)
	report := fmt.Sprintf(`{"class":"0102","lon":%s,"lat":%s,"source":"grid_worker","description":DESC}`, num(x), num(y))
	ev := e.reportEvent(strings.Replace(report, "DESC", `"路边垃圾"`, 1))
	tables, before := tableState(t, e), textState(t, e)

	// JSON bodies: one member BAD at a time, with the rest valid.
	for _, c := range []struct {
		method, path, body, member string
	}{
		{"POST", "/v1/objects", objFeatureJSON(demoDistrict+"0101000010", "0101", pointJSON(x, y), `{"owner":BAD}`), "attrs.owner"},
		{"POST", "/v1/objects", objFeatureJSON(demoDistrict+"0101000010", "0101", pointJSON(x, y), `{"a":{"b":[1,BAD]}}`), "attrs.a.b[1]"},
		{"POST", "/v1/objects", objFeatureJSON(demoDistrict+"0101000010", "0101", pointJSON(x, y), `{BAD:1}`), "attrs.*"},
		{"POST", "/v1/objects", `{"type":"Feature","geometry":` + pointJSON(x, y) + `,"properties":{"code":BAD,"class":"0101"}}`, "code"},
		{"POST", "/v1/objects", `{"type":"Feature","geometry":` + pointJSON(x, y) + `,"properties":{"code":"` + demoDistrict + `0101000010","class":"0101","name":BAD}}`, "name"},
		{"PUT", "/v1/objects/" + obj, objFeatureJSON(obj, "0101", pointJSON(x, y), `{"owner":BAD}`), "attrs.owner"},
		{"POST", "/v1/classes", `{"code":"shop","kind":"building","major":"05","major_name":"房屋土地","name":BAD,"geometry_types":["Point"]}`, "name"},
		{"POST", "/v1/classes", `{"code":BAD,"kind":"building","major":"05","major_name":"房屋土地","name":"商铺","geometry_types":["Point"]}`, "code"},
		{"PUT", "/v1/event-classes/9901", `{"name":BAD,"department":"jtj","limit":{"amount":3,"unit":"working_hours"}}`, "name"},
		{"PUT", "/v1/event-classes/9901", `{"name":"x","department":"jtj","limit":{"amount":3,"unit":BAD}}`, "limit.unit"},
		{"PUT", "/v1/departments/wgzx", `{"name":BAD}`, "name"},
		{"PUT", "/v1/calendar/hours", `{"timezone":BAD,"periods":"09:00-12:00"}`, "timezone"},
		{"PUT", "/v1/calendar/days/2026-12-24", `{"kind":"holiday","name":BAD}`, "name"},
		{"POST", "/v1/events", strings.Replace(report, "DESC", "BAD", 1), "description"},
		{"POST", "/v1/events", strings.Replace(report, `"description":DESC`, `"media":["https://x/1.jpg",BAD]`, 1), "media[1]"},
		{"POST", "/v1/events/" + ev.ID + "/transitions", `{"to":"registered","actor":BAD}`, "actor"},
		{"POST", "/v1/events/" + ev.ID + "/transitions", `{"to":"registered","note":BAD}`, "note"},
		{"POST", "/v1/locate", `{"points":[[114.2,22.6]],"note":BAD}`, "note"},
	} {
		for _, v := range textVariants {
			t.Run(c.method+" "+c.path+" "+c.member+"/"+v.name, func(t *testing.T) {
				r := e.sendText(c.method, c.path, "application/json", strings.Replace(c.body, "BAD", v.json, 1), nil)
				member := c.member
				if strings.HasSuffix(member, ".*") { // a member name: named as it decodes
					member = strings.TrimSuffix(member, "*") + map[string]string{"NUL escape": `a\u0000b`, "lone surrogate": "\uFFFD", "invalid UTF-8": "a\uFFFDb"}[v.name]
				}
				expectProblem(t, r, v.status, v.typ, member, member, "byte")
			})
		}
	}

	// Path segments and query parameters, refused before any route runs.
	for _, c := range []struct{ path, param string }{
		{"/v1/units/44%00", "path"},
		{"/v1/units/%FF/children", "path"},
		{"/v1/objects/" + obj + "%00", "path"},
		{"/v1/event-classes/%ED%A0%80", "path"}, // a surrogate encoded as UTF-8
		{"/v1/units?parent=44%00", "parent"},
		{"/v1/units?cursor=%FF", "cursor"},
		{"/v1/objects?class=01%0001", "class"},
		{"/v1/objects?within=%C0%AF", "within"},
		{"/v1/events?unit=440308%00", "unit"},
		{"/v1/stats/" + demoDistrict + "?by=class%00", "by"},
		{"/v1/topology/issues?parent=%00", "parent"},
		{"/v1/units?%FF=1", "query"},
	} {
		t.Run(c.path, func(t *testing.T) {
			for _, m := range []string{"GET", "PUT", "DELETE"} {
				expectProblem(t, e.sendText(m, c.path, "", "", nil), http.StatusBadRequest, typeBadParam, c.param)
			}
		})
	}
	expectProblem(t, e.sendText("POST", "/v1/objects:import?reason=%00", "text/csv", "lon,lat\n", nil), http.StatusBadRequest, typeBadParam, "reason")

	// Dates PostgreSQL has no year for.
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/v1/events?from=0000-01-01", ""},
		{"GET", "/v1/events?to=0000-06-01T00:00:00Z", ""},
		{"GET", "/v1/events?from=0001-01-01T00:00:00%2B14:00", ""},
		{"GET", "/v1/stats/" + demoDistrict + "?by=status&from=0000-01-01", ""},
		{"GET", "/v1/stats/" + demoDistrict + "?by=status&to=0000-01-01", ""},
	} {
		param := "from"
		if strings.Contains(c.path, "to=") {
			param = "to"
		}
		expectProblem(t, e.sendText(c.method, c.path, "", c.body, nil), http.StatusBadRequest, typeBadParam, param, "0001 to 9999")
	}
	expectProblem(t, e.put("/v1/calendar/days/0000-01-01", `{"kind":"holiday"}`), http.StatusBadRequest, typeBadParam, "day", "0000")
	expectProblem(t, e.del("/v1/calendar/days/0000-01-01"), http.StatusBadRequest, typeBadParam, "day", "0000")
	for _, d := range []string{"0000-01-01T00:00:00Z", "0001-01-01T00:00:00+08:00"} {
		body := strings.Replace(report, `"description":DESC`, `"occurred_at":"`+d+`"`, 1)
		expectProblem(t, e.post("/v1/events", body), http.StatusUnprocessableEntity, typeInvalid, "occurred_at", d)
	}

	// Headers: blank is not "no key"; not UTF-8 is not a name.
	valid := strings.Replace(report, "DESC", `"又一堆"`, 1)
	for _, c := range []struct{ method, path, body, header, value string }{
		{"POST", "/v1/events", valid, "Idempotency-Key", "   "},
		{"POST", "/v1/events", valid, "Idempotency-Key", ""},
		{"POST", "/v1/events", valid, "Idempotency-Key", "\t"},
		{"POST", "/v1/events", valid, "Idempotency-Key", "k\xffey"},
		{"POST", "/v1/units:validate", featureCollection(testDistrict), "X-Actor", "a\xffb"},
		{"POST", "/v1/units:import", featureCollection(testDistrict), "X-Actor", " "},
	} {
		expectProblem(t, e.sendText(c.method, c.path, "application/json", c.body, map[string]string{c.header: c.value}), http.StatusBadRequest, typeBadParam, c.header, c.header)
	}

	// Imports: the row or feature, and the member or column.
	for _, v := range textVariants {
		feature := func(code, props string) string {
			return fmt.Sprintf(`{"type":"Feature","geometry":%s,"properties":{"code":%q,"class":"0101"%s}}`, pointJSON(x, y), code, props)
		}
		good, bad := feature(demoDistrict+"0101000011", ""), feature(demoDistrict+"0101000012", `,"attrs":{"owner":`+v.json+`}`)
		for _, c := range []struct {
			format, body string
			pos          int64
			want         string
		}{
			{"geojson", featureCollection(good, bad), 1, "properties.attrs.owner"},
			{"ndjson", good + "\n" + bad + "\n", 2, "properties.attrs.owner"},
			{"ndjson", good + "\n" + feature(demoDistrict+"0101000012", `,"name":`+v.json) + "\n", 2, "properties.name"},
			{"csv", fmt.Sprintf("code,class,lon,lat,name\n%s,0101,%s,%s,ok\n%s,0101,%s,%s,%s\n", demoDistrict+"0101000011", num(x), num(y), demoDistrict+"0101000012", num(x), num(y), csvText(v)), 3, "column 5 (name)"},
			{"csv", fmt.Sprintf("code,class,lon,lat,attrs\n%s,0101,%s,%s,{}\n%s,0101,%s,%s,\"{\"\"owner\"\":%s}\"\n", demoDistrict+"0101000011", num(x), num(y), demoDistrict+"0101000012", num(x), num(y), strings.ReplaceAll(v.json, `"`, `""`)), 3, "column 5 (attrs)"},
		} {
			t.Run("objects:import/"+c.format+"/"+c.want+"/"+v.name, func(t *testing.T) {
				var p importProblem
				expect(t, e.post("/v1/objects:import?format="+c.format, c.body), http.StatusUnprocessableEntity, ctProblem, &p)
				if p.Type != typeViolations || p.Rows != 2 || p.Rejected != 1 || len(p.Errors) != 1 {
					t.Fatalf("problem %+v, want 1 of 2 rows rejected", p)
				}
				if got := p.Errors[0]; got.Pos != c.pos || !strings.Contains(got.Reason, c.want) {
					t.Errorf("error %+v, want at %d naming %s", got, c.pos, c.want)
				}
			})
		}
		for _, path := range []string{"/v1/units:validate", "/v1/units:import"} {
			t.Run(path+"/"+v.name, func(t *testing.T) {
				bad := strings.Replace(testStreetW, `"properties":{`, `"properties":{"name":`+v.json+`,`, 1)
				if bad == testStreetW {
					t.Fatalf("no properties in %s", testStreetW)
				}
				r := e.post(path, featureCollection(testDistrict, bad, testStreetE))
				var p struct {
					Type       string `json:"type"`
					Violations []struct {
						Feature *int   `json:"feature"`
						Message string `json:"message"`
					} `json:"violations"`
				}
				expect(t, r, http.StatusUnprocessableEntity, ctProblem, &p)
				if p.Type != typeViolations || len(p.Violations) == 0 || p.Violations[0].Feature == nil || *p.Violations[0].Feature != 1 ||
					!strings.Contains(p.Violations[0].Message, "features[1]: properties.name:") {
					t.Errorf("%s", r)
				}
			})
		}
	}
	expectUnchanged(t, e, tables, "bad text")
	if after := textState(t, e); after != before {
		t.Errorf("bad text changed the store:\n before %s\n after  %s", before, after)
	}

	// The same values without the bad text are taken: the checks refuse
	// the text, not the request.
	expect(t, e.post("/v1/objects", objFeatureJSON(demoDistrict+"0101000010", "0101", pointJSON(x, y), `{"owner":"\ud83d\ude00 \\u0000 \ufffd"}`)), http.StatusCreated, ctGeoJSON, nil)
	expect(t, e.put("/v1/departments/wgzx", `{"name":"网格\u4e2d\u5fc3"}`), http.StatusCreated, ctJSON, nil)
	expect(t, e.get("/v1/events?from=0001-01-02"), http.StatusOK, ctGeoJSON, nil)
}

// csvText is a variant as a CSV field: the JSON escapes are JSON's, so the
// raw bytes they stand for.
func csvText(v textVariant) string {
	switch v.name {
	case "NUL escape":
		return "a\x00b"
	case "lone surrogate":
		return "\xed\xa0\x80" // the surrogate as (invalid) UTF-8
	}
	return strings.Trim(v.json, `"`)
}

// A query pair that is not valid percent-encoding is refused naming it:
// net/url would drop it, and the filter the client meant would be ignored.
func TestQueryPercentEncodingRefused(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	for _, c := range []struct{ path, param string }{
		{"/v1/units?level=%zz", "level"},
		{"/v1/units?level=district&parent=44%2", "parent"},
		{"/v1/objects?%zzclass=0101", "query"},
		{"/v1/events?status=reported&unit=%E4%B8", ""},
	} {
		r := e.get(c.path)
		if c.param == "" {
			// Valid percent-encoding of bytes that are not UTF-8: the text
			// check names it instead.
			expectProblem(t, r, http.StatusBadRequest, typeBadParam, "unit")
			continue
		}
		expectProblem(t, r, http.StatusBadRequest, typeBadParam, c.param, "percent-encoding")
	}
}
