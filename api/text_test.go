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
	resp, err := http.DefaultClient.Do(req)
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
