package api_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"gridmap/api"
	"gridmap/auth"
	"gridmap/data"
	"gridmap/data/pgtest"
	"gridmap/grid"
	"gridmap/media"
)

// Issue 11, "Tested": who may write what, in and out of scope, with
// nothing written when refused and every refusal audited; scoped reads and
// streams; revocation across servers; credential errors; the actor taken
// from the credential; the audit log; the write rate limit.

const (
	typeUnauthorized = "https://gridmap.dev/problems/unauthorized"
	typeForbidden    = "https://gridmap.dev/problems/forbidden"
	typeRateLimited  = "https://gridmap.dev/problems/rate-limited"
)

// The two streets of the demo city the scoped tests play in: a token
// scoped to streetA, targets in streetB.
const (
	streetA = demoDistrict + "001"
	streetB = demoDistrict + "002"
)

// mintToken creates an API token of role on scopes (none for an admin) and
// returns its text.
func mintToken(t testing.TB, s *data.Store, name string, role auth.Role, scopes ...string) string {
	t.Helper()
	tok, _, err := s.CreateToken(context.Background(), data.NewToken{Name: name, Role: role, Scopes: scopes, CreatedBy: "test"})
	if err != nil {
		t.Fatalf("create token %s (%s on %v): %v", name, role, scopes, err)
	}
	return tok
}

// as is the env sending tok ("" sends no credential), reporting to t.
func (e *apiEnv) as(t *testing.T, tok string) *apiEnv {
	c := *e
	c.t, c.token = t, tok
	return &c
}

// accessState is a digest of every table a write could touch (the audit
// log aside: refusals are written there).
func accessState(t *testing.T, s *data.Store) string {
	t.Helper()
	var sb strings.Builder
	for _, table := range []string{"units", "layers", "objects", "object_classes", "object_counts", "events", "event_log", "event_feed",
		"event_idempotency", "event_code_seq", "event_counts", "event_classes", "departments", "work_calendar", "work_hours",
		"event_config", "tile_changes", "api_tokens", "people", "grid_workers", "grid_worker_log", "event_extensions"} {
		h := sqlStrings(t, s, `SELECT count(*)::text || ':' || md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM `+table+` x`)[0]
		fmt.Fprintf(&sb, "%s=%s ", table, h)
	}
	return sb.String()
}

// auditRow is a row of audit_log.
type auditRow struct {
	ID     int64
	Actor  string
	Method string
	Route  string
	Path   string
	Status int
	Units  []string
	Detail string
}

func maxAuditID(t *testing.T, s *data.Store) int64 {
	t.Helper()
	var id int64
	if err := s.Pool.QueryRow(context.Background(), `SELECT coalesce(max(id), 0) FROM audit_log`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// waitAudit waits (up to 2 s: the entry is written once the answer is
// sent) for the audit entry of the request method path made after entry
// after.
func waitAudit(t *testing.T, s *data.Store, after int64, method, path string) auditRow {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		var a auditRow
		err := s.Pool.QueryRow(context.Background(), `SELECT id, actor, method, route, path, status, units, detail FROM audit_log
			WHERE id > $1 AND method = $2 AND path = $3 ORDER BY id LIMIT 1`, after, method, path).
			Scan(&a.ID, &a.Actor, &a.Method, &a.Route, &a.Path, &a.Status, &a.Units, &a.Detail)
		if err == nil {
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("no audit entry for %s %s after entry %d: %v", method, path, after, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// problemExt decodes a problem with its extensions.
func problemExt(t *testing.T, r reply) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("problem body: %v: %s", err, r)
	}
	return m
}

// expectUnauthorized checks a 401: problem type, reason, the challenge,
// and that the detail does not repeat the credential (or a part of it).
func expectUnauthorized(t *testing.T, r reply, reason, credential string) {
	t.Helper()
	expectProblem(t, r, http.StatusUnauthorized, typeUnauthorized, "")
	m := problemExt(t, r)
	if m["reason"] != reason {
		t.Errorf("reason %v, want %s: %s", m["reason"], reason, r)
	}
	ch := r.Header.Get("WWW-Authenticate")
	if reason == auth.Missing {
		if ch != `Bearer realm="gridmap"` {
			t.Errorf("WWW-Authenticate %q, want Bearer realm=\"gridmap\"", ch)
		}
	} else if !strings.HasPrefix(ch, `Bearer realm="gridmap", error="invalid_token"`) {
		t.Errorf("WWW-Authenticate %q, want an invalid_token challenge", ch)
	}
	if credential != "" {
		parts := append([]string{credential}, strings.FieldsFunc(credential, func(c rune) bool { return c == '.' || c == ' ' })...)
		for _, p := range parts {
			if len(p) >= 8 && (strings.Contains(string(r.Body), p) || strings.Contains(ch, p)) {
				t.Errorf("the 401 repeats the credential (%.12s…): %s", p, r)
			}
		}
	}
}

// expectForbidden checks a 403 refusing action: naming unit when it is a
// scope refusal (unit != "" or outside), the roles that may otherwise.
func expectForbidden(t *testing.T, r reply, action auth.Action, unit string, outside bool) {
	t.Helper()
	p := expectProblem(t, r, http.StatusForbidden, typeForbidden, "")
	m := problemExt(t, r)
	if m["action"] != string(action) {
		t.Errorf("403 action %v, want %s", m["action"], action)
	}
	u, has := m["unit"]
	switch {
	case outside && (!has || u != unit):
		t.Errorf("scope refusal names unit %v, want %q: %s", u, unit, r)
	case outside && unit != "" && !strings.Contains(p.Detail, unit):
		t.Errorf("scope refusal detail %q does not name %s", p.Detail, unit)
	case !outside && has:
		t.Errorf("role refusal names a unit %v: %s", u, r)
	case !outside:
		for _, role := range auth.RolesFor(action) {
			if !strings.Contains(p.Detail, string(role)) {
				t.Errorf("role refusal detail %q does not name the role %s", p.Detail, role)
			}
		}
	}
}

// scopeFixture holds what the write tests aim at: two grids in each of
// the two streets, and an admin env to set things up with.
type scopeFixture struct {
	e                   *apiEnv
	gA, gA2, gB, gB2    evGrid
	mu                  sync.Mutex
	n                   int
	outside             evGrid // a point outside every grid
	gridFeatureCache    map[string]string
	gridFeatureCacheMux sync.Mutex
}

func newScopeFixture(t *testing.T, e *apiEnv) *scopeFixture {
	t.Helper()
	f := &scopeFixture{e: e, outside: evGrid{"", 113.0, 21.0}, gridFeatureCache: map[string]string{}}
	var inA, inB []evGrid
	for _, g := range evGridPoints(t, e.store) {
		switch {
		case strings.HasPrefix(g.code, streetA):
			inA = append(inA, g)
		case strings.HasPrefix(g.code, streetB):
			inB = append(inB, g)
		}
	}
	if len(inA) < 2 || len(inB) < 2 {
		t.Fatalf("grids: %d in %s, %d in %s", len(inA), streetA, len(inB), streetB)
	}
	f.gA, f.gA2, f.gB, f.gB2 = inA[0], inA[len(inA)-1], inB[0], inB[len(inB)-1]
	return f
}

func (f *scopeFixture) next() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	return f.n
}

// grids are the fixture's grids of the street in scope or the other one.
func (f *scopeFixture) grids(in bool) (evGrid, evGrid) {
	if in {
		return f.gA, f.gA2
	}
	return f.gB, f.gB2
}

// objectCode is a fresh object code of the demo district.
func (f *scopeFixture) objectCode() string {
	return fmt.Sprintf("%s0101%06d", demoDistrict, f.next())
}

// object creates (as admin) an object at g and returns its code.
func (f *scopeFixture) object(t *testing.T, g evGrid) string {
	t.Helper()
	code := f.objectCode()
	expect(t, f.e.as(t, f.e.token).post("/v1/objects", objFeatureJSON(code, "0101", pointJSON(g.lon, g.lat), "")), http.StatusCreated, ctGeoJSON, nil)
	return code
}

// event reports (as admin) an event at g and returns its code.
func (f *scopeFixture) event(t *testing.T, g evGrid) string {
	t.Helper()
	return f.e.as(t, f.e.token).reportEvent(evReport("0102", g.lon, g.lat)).ID
}

// gridFeature is the current grid code as an import feature, renamed.
func (f *scopeFixture) gridFeature(t *testing.T, code, name string) string {
	t.Helper()
	f.gridFeatureCacheMux.Lock()
	geom, ok := f.gridFeatureCache[code]
	f.gridFeatureCacheMux.Unlock()
	if !ok {
		geom = sqlStrings(t, f.e.store, `SELECT ST_AsGeoJSON(geom) FROM units WHERE code = $1 AND valid_to IS NULL AND layer = 'base'`, code)[0]
		f.gridFeatureCacheMux.Lock()
		f.gridFeatureCache[code] = geom
		f.gridFeatureCacheMux.Unlock()
	}
	return fmt.Sprintf(`{"type":"Feature","properties":{"code":%q,"name":%q,"level":"grid"},"geometry":%s}`, code, name, geom)
}

// writeReq is one write request.
type writeReq struct {
	path, body string
	header     []string
	// unit is what a caller scoped to the other street is refused on.
	unit string
}

// writeCase is a write route of the matrix.
type writeCase struct {
	route  string // "METHOD template", as api.Server.WriteRoutes names it
	action auth.Action
	ok     int // the status when allowed
	// req sets the request up (as admin) aiming at the street in scope
	// (in) or at the other one.
	req func(t *testing.T, f *scopeFixture, in bool) writeReq
}

func (c writeCase) method() string { m, _, _ := strings.Cut(c.route, " "); return m }

func writeCases() []writeCase {
	return []writeCase{
		{"POST /v1/events", auth.Report, http.StatusCreated, func(t *testing.T, f *scopeFixture, in bool) writeReq {
			g, _ := f.grids(in)
			return writeReq{path: "/v1/events", body: evReport("0102", g.lon, g.lat), unit: g.code}
		}},
		{"POST /v1/events/{code}/transitions", auth.Dispatch, http.StatusOK, func(t *testing.T, f *scopeFixture, in bool) writeReq {
			g, _ := f.grids(in)
			return writeReq{path: "/v1/events/" + f.event(t, g) + "/transitions", body: `{"to":"registered","note":"matrix"}`, unit: g.code}
		}},
		{"POST /v1/events/{code}/attachments", auth.Report, http.StatusCreated, func(t *testing.T, f *scopeFixture, in bool) writeReq {
			g, _ := f.grids(in)
			return writeReq{path: "/v1/events/" + f.event(t, g) + "/attachments", body: string(media.SampleJPEG(g.lon, g.lat)),
				header: []string{"Content-Type", "image/jpeg"}, unit: g.code}
		}},
		{"POST /v1/patrols/points", auth.Report, http.StatusOK, func(t *testing.T, f *scopeFixture, in bool) writeReq {
			g, _ := f.grids(in)
			p, err := f.e.store.CreatePerson(context.Background(), grid.Person{Name: "矩阵巡查", Role: grid.RoleWorker, Status: grid.PersonActive})
			if err != nil {
				t.Fatal(err)
			}
			body := fmt.Sprintf(`{"points": [{"worker": %d, "t": %q, "lon": %v, "lat": %v}]}`, p.ID, time.Now().Add(-time.Hour).Format(time.RFC3339), g.lon, g.lat)
			return writeReq{path: "/v1/patrols/points", body: body, unit: g.code}
		}},
		{"PUT /v1/event-classes/{code}", auth.Administer, http.StatusCreated, func(t *testing.T, f *scopeFixture, in bool) writeReq {
			return writeReq{path: fmt.Sprintf("/v1/event-classes/98%02d", f.next()%100),
				body: `{"name": "矩阵测试", "department": "jtj", "limit": {"amount": 3, "unit": "working_hours"}}`}
		}},
		{"PUT /v1/departments/{code}", auth.Administer, http.StatusCreated, func(t *testing.T, f *scopeFixture, in bool) writeReq {
			return writeReq{path: fmt.Sprintf("/v1/departments/mx%d", f.next()), body: `{"name": "矩阵部门"}`}
		}},
		{"PUT /v1/calendar/hours", auth.Administer, http.StatusOK, func(t *testing.T, f *scopeFixture, in bool) writeReq {
			return writeReq{path: "/v1/calendar/hours", body: fmt.Sprintf(`{"timezone": "Asia/Shanghai", "periods": "08:%02d-12:00,14:00-18:00"}`, f.next()%60)}
		}},
		{"PUT /v1/calendar/days/{day}", auth.Administer, http.StatusOK, func(t *testing.T, f *scopeFixture, in bool) writeReq {
			return writeReq{path: "/v1/calendar/days/" + time.Date(2031, 1, f.next(), 0, 0, 0, 0, time.UTC).Format(time.DateOnly), body: `{"kind": "holiday", "name": "矩阵"}`}
		}},
		{"DELETE /v1/calendar/days/{day}", auth.Administer, http.StatusNoContent, func(t *testing.T, f *scopeFixture, in bool) writeReq {
			day := "/v1/calendar/days/" + time.Date(2032, 1, f.next(), 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
			expect(t, f.e.as(t, f.e.token).put(day, `{"kind": "holiday", "name": "矩阵"}`), http.StatusOK, ctJSON, nil)
			return writeReq{path: day}
		}},
		{"POST /v1/classes", auth.Administer, http.StatusCreated, func(t *testing.T, f *scopeFixture, in bool) writeReq {
			return writeReq{path: "/v1/classes", body: fmt.Sprintf(`{"code":"mx%d","kind":"building","name":"矩阵","geometry_types":["Point"]}`, f.next())}
		}},
		{"POST /v1/objects", auth.Edit, http.StatusCreated, func(t *testing.T, f *scopeFixture, in bool) writeReq {
			g, _ := f.grids(in)
			return writeReq{path: "/v1/objects", body: objFeatureJSON(f.objectCode(), "0101", pointJSON(g.lon, g.lat), ""), unit: g.code}
		}},
		{"PUT /v1/objects/{code}", auth.Edit, http.StatusOK, func(t *testing.T, f *scopeFixture, in bool) writeReq {
			g, g2 := f.grids(in)
			code := f.object(t, g)
			return writeReq{path: "/v1/objects/" + code, body: objFeatureJSON(code, "0101", pointJSON(g2.lon, g2.lat), `{"moved":true}`), unit: g.code}
		}},
		{"DELETE /v1/objects/{code}", auth.Edit, http.StatusNoContent, func(t *testing.T, f *scopeFixture, in bool) writeReq {
			g, _ := f.grids(in)
			return writeReq{path: "/v1/objects/" + f.object(t, g), unit: g.code}
		}},
		{"POST /v1/objects:import", auth.Edit, http.StatusCreated, func(t *testing.T, f *scopeFixture, in bool) writeReq {
			g, g2 := f.grids(in)
			body := objFeatureJSON(f.objectCode(), "0101", pointJSON(g.lon, g.lat), "") + "\n" +
				objFeatureJSON(f.objectCode(), "0101", pointJSON(g2.lon, g2.lat), "") + "\n"
			return writeReq{path: "/v1/objects:import?format=ndjson", body: body, unit: g.code}
		}},
		{"POST /v1/units:import", auth.Edit, http.StatusOK, func(t *testing.T, f *scopeFixture, in bool) writeReq {
			g, _ := f.grids(in)
			return writeReq{path: "/v1/units:import?reason=matrix", body: featureCollection(f.gridFeature(t, g.code, fmt.Sprintf("矩阵网格 %d", f.next()))), unit: g.code}
		}},
		{"PUT /v1/units/{code}", auth.Edit, http.StatusOK, func(t *testing.T, f *scopeFixture, in bool) writeReq {
			g, _ := f.grids(in)
			return writeReq{path: "/v1/units/" + g.code + "?reason=matrix", body: unitFeatureJSON("null", fmt.Sprintf("矩阵改名 %d", f.next())),
				header: []string{"If-Match", unitETag(t, f.e.as(t, f.e.token), g.code)}, unit: g.code}
		}},
		// The other edits run dry (the guard and the audit are the same):
		// the fixture's grids stay for the other cells.
		{"POST /v1/units/{code}:retire", auth.Edit, http.StatusOK, func(t *testing.T, f *scopeFixture, in bool) writeReq {
			g, _ := f.grids(in)
			return writeReq{path: "/v1/units/" + g.code + ":retire?dry_run=true", body: fmt.Sprintf(`{"into":%q,"reason":"matrix"}`, neighbourOf(t, f.e, g.code)),
				header: []string{"If-Match", unitETag(t, f.e.as(t, f.e.token), g.code)}, unit: g.code}
		}},
		{"POST /v1/units:merge", auth.Edit, http.StatusOK, func(t *testing.T, f *scopeFixture, in bool) writeReq {
			g, _ := f.grids(in)
			n := neighbourOf(t, f.e, g.code)
			admin := f.e.as(t, f.e.token)
			return writeReq{path: "/v1/units:merge?dry_run=true", body: fmt.Sprintf(`{"codes":[%q,%q],"keep":%q,"reason":"matrix"}`, g.code, n, g.code),
				header: []string{"If-Match", unitETag(t, admin, g.code) + ", " + unitETag(t, admin, n)}, unit: g.code}
		}},
		{"POST /v1/units", auth.Edit, http.StatusOK, func(t *testing.T, f *scopeFixture, in bool) writeReq {
			g, _ := f.grids(in)
			sq := sqlStrings(t, f.e.store, `SELECT ST_AsGeoJSON(ST_Expand(ST_PointOnSurface(geom), 0.0002), 9) FROM units WHERE valid_to IS NULL AND code = $1`, g.code)[0]
			return writeReq{path: "/v1/units?neighbours=adjust&dry_run=true",
				body: `{"type":"Feature","geometry":` + sq + `,"properties":{"name":"矩阵","parent_code":"` + g.code[:12] + `"},"reason":"matrix"}`, unit: g.code}
		}},
		{"POST /v1/units/{code}:revert", auth.Edit, http.StatusOK, func(t *testing.T, f *scopeFixture, in bool) writeReq {
			g, _ := f.grids(in)
			return writeReq{path: "/v1/units/" + g.code + ":revert?dry_run=true", body: `{"version":1,"reason":"matrix"}`,
				header: []string{"If-Match", unitETag(t, f.e.as(t, f.e.token), g.code)}, unit: g.code}
		}},
		{"POST /v1/units/{code}:split", auth.Edit, http.StatusOK, func(t *testing.T, f *scopeFixture, in bool) writeReq {
			g, _ := f.grids(in)
			line, _, _ := cutAcross(t, f.e, g.code, 0.5)
			return writeReq{path: "/v1/units/" + g.code + ":split?dry_run=true", body: `{"line":` + line + `,"reason":"matrix"}`,
				header: []string{"If-Match", unitETag(t, f.e.as(t, f.e.token), g.code)}, unit: g.code}
		}},
		{"POST /v1/tokens", auth.Administer, http.StatusCreated, func(t *testing.T, f *scopeFixture, in bool) writeReq {
			return writeReq{path: "/v1/tokens", body: fmt.Sprintf(`{"name":"made-%d","role":"viewer","scopes":[%q]}`, f.next(), streetA)}
		}},
		// The people's own moves and extensions: access control lets them
		// through to the event's rules, which refuse a move from reported
		// (409) or a decision on no request (404) for everyone alike; who
		// the person is is TestWorkerLoop's.
		{"POST /v1/events/{code}/work", auth.Report, http.StatusConflict, func(t *testing.T, f *scopeFixture, in bool) writeReq {
			g, _ := f.grids(in)
			return writeReq{path: "/v1/events/" + f.event(t, g) + "/work", body: `{"to":"handling"}`, unit: g.code}
		}},
		{"POST /v1/events/{code}/extensions", auth.Report, http.StatusConflict, func(t *testing.T, f *scopeFixture, in bool) writeReq {
			g, _ := f.grids(in)
			return writeReq{path: "/v1/events/" + f.event(t, g) + "/extensions", body: `{"amount":1,"unit":"working_days","reason":"matrix"}`, unit: g.code}
		}},
		{"POST /v1/events/{code}/extensions/{n}", auth.Report, http.StatusNotFound, func(t *testing.T, f *scopeFixture, in bool) writeReq {
			g, _ := f.grids(in)
			return writeReq{path: "/v1/events/" + f.event(t, g) + "/extensions/1", body: `{"decision":"approve"}`, unit: g.code}
		}},
		{"POST /v1/people", auth.Administer, http.StatusCreated, func(t *testing.T, f *scopeFixture, in bool) writeReq {
			return writeReq{path: "/v1/people", body: fmt.Sprintf(`{"name":"矩阵 %d","role":"worker"}`, f.next())}
		}},
		{"PUT /v1/people/{id}", auth.Administer, http.StatusOK, func(t *testing.T, f *scopeFixture, in bool) writeReq {
			var p struct {
				ID int64 `json:"id"`
			}
			expect(t, f.e.as(t, f.e.token).post("/v1/people", fmt.Sprintf(`{"name":"矩阵 %d","role":"worker"}`, f.next())), http.StatusCreated, ctJSON, &p)
			return writeReq{path: fmt.Sprintf("/v1/people/%d", p.ID), body: `{"name":"矩阵改名","role":"worker"}`}
		}},
		{"POST /v1/people/import", auth.Administer, http.StatusOK, func(t *testing.T, f *scopeFixture, in bool) writeReq {
			return writeReq{path: "/v1/people/import", body: fmt.Sprintf("name,role\n矩阵 %d,worker\n", f.next()), header: []string{"Content-Type", "text/csv"}}
		}},
		{"PUT /v1/grids/{code}/workers", auth.Administer, http.StatusOK, func(t *testing.T, f *scopeFixture, in bool) writeReq {
			g, _ := f.grids(in)
			return writeReq{path: "/v1/grids/" + g.code + "/workers", body: `{"worker":null,"reason":"matrix"}`}
		}},
		{"DELETE /v1/tokens/{name}", auth.Administer, http.StatusOK, func(t *testing.T, f *scopeFixture, in bool) writeReq {
			name := fmt.Sprintf("victim-%d", f.next())
			mintToken(t, f.e.store, name, auth.Viewer, streetA)
			return writeReq{path: "/v1/tokens/" + name}
		}},
	}
}

// TestAccessMatrix: every write route × every role × in and out of scope.
func TestAccessMatrix(t *testing.T) {
	t.Parallel()
	start := time.Now()
	e := newEnv(t, pgtest.NewDemo(t), api.Options{WriteRate: -1})
	f := newScopeFixture(t, e)
	cases := writeCases()

	// The table knows every write route the server has, and no other.
	var table []string
	for _, c := range cases {
		table = append(table, c.route)
	}
	server := e.srv.WriteRoutes()
	sort.Strings(table)
	sort.Strings(server)
	if !reflect.DeepEqual(table, server) {
		t.Fatalf("the matrix's write routes differ from the server's:\n matrix %v\n server %v", table, server)
	}
	// And every route that is not a read (other than the validation,
	// which writes nothing, and batch locate) is a write route.
	for tpl, methods := range e.srv.Routes() {
		for _, m := range methods {
			if m == http.MethodGet || m == http.MethodHead {
				continue
			}
			key := m + " " + tpl
			if !slices.Contains(server, key) && key != "POST /v1/units:validate" && key != "POST /v1/locate" {
				t.Errorf("%s changes nothing? It is not a write route, and the matrix does not know it", key)
			}
		}
	}

	type role struct {
		name  string
		role  auth.Role // "" none
		token string
		actor string
	}
	roles := []role{{name: "none", actor: "anonymous"}}
	for _, r := range []auth.Role{auth.Viewer, auth.Reporter, auth.Dispatcher, auth.Editor} {
		name := "mx-" + string(r)
		roles = append(roles, role{string(r), r, mintToken(t, e.store, name, r, streetA), auth.TokenActor(name)})
	}
	roles = append(roles, role{"admin", auth.Admin, e.token, "token:test-admin"})

	cells, refused := 0, 0
	for _, c := range cases {
		for _, rl := range roles {
			for _, in := range []bool{true, false} {
				where := map[bool]string{true: "in", false: "out"}[in]
				t.Run(c.route+"/"+rl.name+"/"+where, func(t *testing.T) {
					cells++
					req := c.req(t, f, in)
					var want int
					outside := false
					switch {
					case rl.role == "":
						want = http.StatusUnauthorized
					case !rl.role.May(c.action):
						want = http.StatusForbidden
					case rl.role != auth.Admin && !in && req.unit != "":
						want, outside = http.StatusForbidden, true
					default:
						want = c.ok
					}
					before := ""
					if want >= 400 {
						before = accessState(t, e.store)
					}
					mark := maxAuditID(t, e.store)
					r := e.as(t, rl.token).with(c.method(), req.path, req.body, req.header...)
					if r.Status != want {
						t.Fatalf("%s as %s (%s scope): status %d, want %d: %s", c.route, rl.name, where, r.Status, want, r)
					}
					switch want {
					case http.StatusUnauthorized:
						expectUnauthorized(t, r, auth.Missing, "")
					case http.StatusForbidden:
						expectForbidden(t, r, c.action, req.unit, outside)
					}
					a := waitAudit(t, e.store, mark, c.method(), req.path)
					if a.Actor != rl.actor || a.Status != want || a.Route != strings.TrimPrefix(c.route, c.method()+" ") {
						t.Errorf("audit entry %+v, want actor %s, status %d, route %s", a, rl.actor, want, c.route)
					}
					if outside && !slices.Contains(a.Units, req.unit) {
						t.Errorf("audit entry of a scope refusal lists units %v, not %s", a.Units, req.unit)
					}
					if want >= 400 {
						refused++
						if a.Detail == "" {
							t.Errorf("audit entry of a refusal says nothing of why: %+v", a)
						}
						if after := accessState(t, e.store); after != before {
							t.Errorf("a refused %s as %s (%s scope) changed the store:\n before %s\n after  %s", c.route, rl.name, where, before, after)
						}
					}
				})
			}
		}
	}
	t.Logf("%d cells (%d refused) in %v", cells, refused, time.Since(start).Round(time.Millisecond))
}

// TestAccessCrossScopeWritesCommitNothing: 100 writes reaching out of a
// street-scoped caller's street, of every kind; each a 403, and the store
// byte for byte as it was.
func TestAccessCrossScopeWritesCommitNothing(t *testing.T) {
	t.Parallel()
	start := time.Now()
	e := newEnv(t, pgtest.NewDemo(t), api.Options{WriteRate: -1})
	f := newScopeFixture(t, e)
	editor := e.as(t, mintToken(t, e.store, "x-editor", auth.Editor, streetA))
	dispatcher := e.as(t, mintToken(t, e.store, "x-dispatcher", auth.Dispatcher, streetA))
	reporter := e.as(t, mintToken(t, e.store, "x-reporter", auth.Reporter, streetA))
	objA := f.object(t, f.gA)
	objB := f.object(t, f.gB)
	evB := f.event(t, f.gB)
	// 50 rows in scope and one outside it, in the middle.
	var rows []string
	for i := range 50 {
		g := f.gA
		if i%2 == 1 {
			g = f.gA2
		}
		rows = append(rows, objFeatureJSON(f.objectCode(), "0101", pointJSON(g.lon, g.lat), ""))
	}
	rowsWith := func(out evGrid) string {
		all := slices.Insert(slices.Clone(rows), 25, objFeatureJSON(f.objectCode(), "0101", pointJSON(out.lon, out.lat), ""))
		return strings.Join(all, "\n") + "\n"
	}
	unitsOut := featureCollection(f.gridFeature(t, f.gA.code, "越界 A"), f.gridFeature(t, f.gB.code, "越界 B"))

	type attempt struct {
		name         string
		as           *apiEnv
		method, path string
		body         string
		action       auth.Action
		unit         string // the unit named
	}
	kinds := []func() attempt{
		func() attempt {
			return attempt{"create an object in another street", editor, http.MethodPost, "/v1/objects",
				objFeatureJSON(f.objectCode(), "0101", pointJSON(f.gB.lon, f.gB.lat), ""), auth.Edit, f.gB.code}
		},
		func() attempt {
			return attempt{"create an object outside the district", editor, http.MethodPost, "/v1/objects",
				objFeatureJSON(f.objectCode(), "0101", pointJSON(f.outside.lon, f.outside.lat), ""), auth.Edit, ""}
		},
		func() attempt {
			return attempt{"move an object into another street", editor, http.MethodPut, "/v1/objects/" + objA,
				objFeatureJSON(objA, "0101", pointJSON(f.gB2.lon, f.gB2.lat), ""), auth.Edit, f.gB2.code}
		},
		func() attempt {
			return attempt{"move an object out of the district", editor, http.MethodPut, "/v1/objects/" + objA,
				objFeatureJSON(objA, "0101", pointJSON(f.outside.lon, f.outside.lat), ""), auth.Edit, ""}
		},
		func() attempt {
			return attempt{"move another street's object into scope", editor, http.MethodPut, "/v1/objects/" + objB,
				objFeatureJSON(objB, "0101", pointJSON(f.gA.lon, f.gA.lat), ""), auth.Edit, f.gB.code}
		},
		func() attempt {
			return attempt{"delete another street's object", editor, http.MethodDelete, "/v1/objects/" + objB, "", auth.Edit, f.gB.code}
		},
		func() attempt {
			return attempt{"import 50 rows in scope and one in another street", editor, http.MethodPost, "/v1/objects:import?format=ndjson",
				rowsWith(f.gB), auth.Edit, f.gB.code}
		},
		func() attempt {
			return attempt{"import 50 rows in scope and one outside the district", editor, http.MethodPost, "/v1/objects:import?format=ndjson&on_error=skip",
				rowsWith(f.outside), auth.Edit, ""}
		},
		func() attempt {
			return attempt{"import units with one in another street", editor, http.MethodPost, "/v1/units:import", unitsOut, auth.Edit, f.gB.code}
		},
		func() attempt {
			return attempt{"move an event of another street", dispatcher, http.MethodPost, "/v1/events/" + evB + "/transitions",
				`{"to":"registered"}`, auth.Dispatch, f.gB.code}
		},
		func() attempt {
			return attempt{"report in another street (reporter)", reporter, http.MethodPost, "/v1/events",
				evReport("0102", f.gB.lon, f.gB.lat), auth.Report, f.gB.code}
		},
		func() attempt {
			return attempt{"report in another street (dispatcher)", dispatcher, http.MethodPost, "/v1/events",
				evReport("0103", f.gB2.lon, f.gB2.lat), auth.Report, f.gB2.code}
		},
	}
	before := accessState(t, e.store)
	mark := maxAuditID(t, e.store)
	for i := range 100 {
		a := kinds[i%len(kinds)]()
		r := a.as.with(a.method, a.path, a.body)
		if r.Status != http.StatusForbidden {
			t.Errorf("attempt %d (%s): status %d, want 403: %s", i, a.name, r.Status, r)
			continue
		}
		expectForbidden(t, r, a.action, a.unit, true)
	}
	if after := accessState(t, e.store); after != before {
		t.Errorf("100 refused cross-scope writes changed the store:\n before %s\n after  %s", before, after)
	}
	var audited int
	deadline := time.Now().Add(2 * time.Second)
	for {
		audited = sqlInt(t, e.store, `SELECT count(*) FROM audit_log WHERE id > $1 AND status = 403 AND actor LIKE 'token:x-%'`, mark)
		if audited >= 100 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if audited != 100 {
		t.Errorf("%d refusals audited, want 100", audited)
	}
	// The same writes in scope do go through: the refusals were for scope.
	expect(t, editor.post("/v1/objects:import?format=ndjson", strings.Join(rows, "\n")+"\n"), http.StatusCreated, ctJSON, nil)
	t.Logf("100 refused cross-scope writes in %v", time.Since(start).Round(time.Millisecond))
}

// TestAccessScopedReads: a viewer of one street reads that street; the
// wall's tiles stay whole.
func TestAccessScopedReads(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pgtest.NewDemo(t), api.Options{WriteRate: -1})
	f := newScopeFixture(t, e)
	objA, objB := f.object(t, f.gA), f.object(t, f.gB)
	f.object(t, f.outside)
	evA, evB := f.event(t, f.gA), f.event(t, f.gB)
	v := e.as(t, mintToken(t, e.store, "street-viewer", auth.Viewer, streetA))

	var units unitCollection
	expect(t, v.get("/v1/units?geometry=none&limit=10000"), http.StatusOK, ctGeoJSON, &units)
	want := sqlStrings(t, e.store, `SELECT code FROM units WHERE layer = 'base' AND valid_to IS NULL AND starts_with(code, $1) ORDER BY code`, streetA)
	if got := units.codes(); !reflect.DeepEqual(got, want) {
		t.Errorf("units the viewer of %s sees: %v, want %v", streetA, got, want)
	}
	var objs objCollection
	expect(t, v.get("/v1/objects?bbox=113.5,21.5,115,23&limit=1000"), http.StatusOK, ctGeoJSON, &objs)
	if got := objs.codes(); !reflect.DeepEqual(got, []string{objA}) {
		t.Errorf("objects in the whole city's bbox the viewer sees: %v, want only %s", got, objA)
	}
	var evs evCollection
	expect(t, v.get("/v1/events?limit=1000"), http.StatusOK, ctGeoJSON, &evs)
	if len(evs.Features) != 1 || evs.Features[0].ID != evA {
		var got []string
		for _, f := range evs.Features {
			got = append(got, f.ID)
		}
		t.Errorf("events the viewer sees: %v, want only %s", got, evA)
	}
	expect(t, v.get("/v1/stats/"+streetA), http.StatusOK, ctJSON, nil)
	expectForbidden(t, v.get("/v1/stats/"+streetB), auth.Read, streetB, true)
	expectForbidden(t, v.get("/v1/stats/"+demoDistrict), auth.Read, demoDistrict, true)
	expect(t, v.get("/v1/events/"+evA), http.StatusOK, ctGeoJSON, nil)
	expectForbidden(t, v.get("/v1/events/"+evB), auth.Read, f.gB.code, true)
	expect(t, v.get("/v1/objects/"+objA), http.StatusOK, ctGeoJSON, nil)
	expectForbidden(t, v.get("/v1/objects/"+objB), auth.Read, f.gB.code, true)
	expectForbidden(t, v.get("/v1/objects/unassigned"), auth.Read, "", true)
	expectForbidden(t, v.get("/v1/units/"+streetB), auth.Read, streetB, true)
	// The wall's tiles: the whole city, every layer.
	for _, layer := range []string{"units", "objects", "events"} {
		for _, code := range []string{streetA, streetB} {
			p := tilePath(layer, unitPoint(t, e.store, code), 12)
			if r := v.get(p); r.Status != http.StatusOK && r.Status != http.StatusNoContent {
				t.Errorf("GET %s as a scoped viewer: %s", p, r)
			}
		}
	}
	// The admin sees everything.
	objs = objCollection{}
	expect(t, e.get("/v1/objects?bbox=113.5,21.5,115,23&limit=1000"), http.StatusOK, ctGeoJSON, &objs)
	if len(objs.Features) != 2 {
		t.Errorf("the admin sees %v in the bbox", objs.codes())
	}
}

// TestAccessScopedStream: a subscriber scoped to street A hears nothing of
// street B.
func TestAccessScopedStream(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pgtest.NewDemo(t), api.Options{WriteRate: -1})
	f := newScopeFixture(t, e)
	tok := mintToken(t, e.store, "stream-a", auth.Viewer, streetA)
	c := openSSE(t, e.url, "/v1/events/stream", "Authorization", "Bearer "+tok)
	var bCodes []string
	for i := range 5 {
		g := f.gB
		if i%2 == 1 {
			g = f.gB2
		}
		code := f.event(t, g)
		bCodes = append(bCodes, code)
	}
	// A move of a B event too.
	expect(t, e.with(http.MethodPost, "/v1/events/"+bCodes[0]+"/transitions", `{"to":"registered"}`), http.StatusOK, ctGeoJSON, nil)
	evA := f.event(t, f.gA)
	m := decodeFeedMsg(t, c.nextData(5*time.Second))
	if m.Code != evA || !strings.HasPrefix(m.GridCode, streetA) {
		t.Fatalf("the first message to a subscriber scoped to %s is %s of %s (%s), want %s: B's events were %v", streetA, m.Type, m.Code, m.GridCode, evA, bCodes)
	}
	// Nothing else is pending (B's were never sent).
	for {
		n, ok := c.next(300 * time.Millisecond)
		if !ok {
			break
		}
		if n.Comment == "" {
			t.Errorf("a further message to the scoped subscriber: %+v", n)
		}
	}
}

// TestAccessRevocationAcrossServers: a token revoked on one server is
// refused by another within a second.
func TestAccessRevocationAcrossServers(t *testing.T) {
	t.Parallel()
	store := pgtest.NewDemo(t)
	e1 := newEnv(t, store, api.Options{})
	e2 := newEnv(t, store, api.Options{})
	// Both servers follow the token channel (else a lookup asks the
	// database, and the test would not test the notice).
	deadline := time.Now().Add(5 * time.Second)
	for sqlInt(t, store, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %`+data.TokensChannel+`%'`) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the servers do not LISTEN on %s within 5 s", data.TokensChannel)
		}
		time.Sleep(20 * time.Millisecond)
	}
	tok := mintToken(t, store, "roaming", auth.Viewer, streetA)
	for _, e := range []*apiEnv{e1, e2} {
		var me struct {
			Actor string `json:"actor"`
		}
		expect(t, e.as(t, tok).get("/v1/me"), http.StatusOK, ctJSON, &me)
		if me.Actor != "token:roaming" {
			t.Errorf("actor %q", me.Actor)
		}
	}
	// Server 2 has the token in its cache now, and reads a few more times
	// (a cache that answered from memory).
	for range 3 {
		expect(t, e2.as(t, tok).get("/v1/units/"+streetA+"?geometry=none"), http.StatusOK, ctGeoJSON, nil)
	}
	revoked := time.Now()
	expect(t, e1.del("/v1/tokens/roaming"), http.StatusOK, ctJSON, nil)
	// Server 1 refuses it at once.
	expectUnauthorized(t, e1.as(t, tok).get("/v1/me"), auth.Revoked, tok)
	for {
		r := e2.as(t, tok).get("/v1/me")
		if r.Status == http.StatusUnauthorized {
			expectUnauthorized(t, r, auth.Revoked, tok)
			t.Logf("server 2 refused the revoked token %v after the revocation was sent", time.Since(revoked).Round(time.Millisecond))
			break
		}
		if r.Status != http.StatusOK {
			t.Fatalf("server 2: %s", r)
		}
		if time.Since(revoked) > time.Second {
			t.Fatalf("server 2 still takes the token %v after its revocation on server 1", time.Since(revoked).Round(time.Millisecond))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testIDP is an OpenID provider on loopback: discovery and JWKS of a real
// RSA key.
type testIDP struct {
	srv        *httptest.Server
	key, other *rsa.PrivateKey
}

const accessAudience = "gridmap-api"

var accessKeys = sync.OnceValue(func() [2]*rsa.PrivateKey {
	var out [2]*rsa.PrivateKey
	for i := range out {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		out[i] = k
	}
	return out
})

func newTestIDP(t testing.TB) *testIDP {
	k := accessKeys()
	p := &testIDP{key: k[0], other: k[1]}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body any
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			body = map[string]any{"issuer": p.srv.URL, "jwks_uri": p.srv.URL + "/jwks", "id_token_signing_alg_values_supported": []string{"RS256"}}
		case "/jwks":
			body = jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: p.key.Public(), KeyID: "k1", Algorithm: "RS256", Use: "sig"}}}
		default:
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(body)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *testIDP) claims(edit map[string]any) map[string]any {
	now := time.Now()
	c := map[string]any{
		"iss": p.srv.URL, "aud": []string{accessAudience}, "exp": now.Add(time.Hour).Unix(), "iat": now.Add(-time.Minute).Unix(),
		"sub": "0a1b2c3d", "preferred_username": "wang.wu", "roles": []string{"reporter"}, "units": []string{streetA},
	}
	for k, v := range edit {
		c[k] = v
	}
	return c
}

func (p *testIDP) sign(t testing.TB, key *rsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestAccessCredentialErrors: every way a credential fails is a 401 saying
// which, never repeating the credential.
func TestAccessCredentialErrors(t *testing.T) {
	t.Parallel()
	store := pgtest.NewDemo(t)
	p := newTestIDP(t)
	o, err := auth.NewOIDC(auth.OIDCConfig{Issuer: p.srv.URL, Audience: accessAudience})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, store, api.Options{OIDC: o, WriteRate: -1})
	plain := newEnv(t, store, api.Options{WriteRate: -1})
	f := newScopeFixture(t, e)

	get := func(e *apiEnv, header ...string) reply {
		t.Helper()
		return e.as(t, "").with(http.MethodGet, "/v1/me", "", header...)
	}
	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

	// API tokens.
	good := mintToken(t, store, "cred-good", auth.Viewer, streetA)
	revoked := mintToken(t, store, "cred-revoked", auth.Viewer, streetA)
	if _, err := store.RevokeToken(context.Background(), "cred-revoked", "test"); err != nil {
		t.Fatal(err)
	}
	expired := mintToken(t, store, "cred-expired", auth.Viewer, streetA)
	if _, err := store.Pool.Exec(context.Background(), `UPDATE api_tokens SET expires_at = now() - interval '1 hour' WHERE name = 'cred-expired'`); err != nil {
		t.Fatal(err)
	}
	unknown, _ := auth.NewToken()
	// The revocation and the expiry, made in the store, reach both servers
	// by their notices.
	for _, s := range []*apiEnv{e, plain} {
		waitFor(t, 2*time.Second, "the servers hear of the revoked and the expired token", func() bool {
			return get(s, bearer(revoked)...).Status == http.StatusUnauthorized && get(s, bearer(expired)...).Status == http.StatusUnauthorized
		})
	}
	expect(t, get(e, bearer(good)...), http.StatusOK, ctJSON, nil)
	for _, c := range []struct {
		name   string
		header []string
		reason string
		cred   string
	}{
		{"missing", nil, auth.Missing, ""},
		{"basic", []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+good))}, auth.Malformed, good},
		{"two headers", []string{"Authorization", "Bearer " + good, "Authorization", "Bearer " + good}, auth.Malformed, good},
		{"garbage", bearer("not-a-token-at-all"), auth.Malformed, "not-a-token-at-all"},
		{"bearer without a token", []string{"Authorization", "Bearer"}, auth.Malformed, ""},
		{"token cut short", bearer(good[:20]), auth.Malformed, good[:20]},
		{"unknown token", bearer(unknown), auth.Unknown, unknown},
		{"revoked token", bearer(revoked), auth.Revoked, revoked},
		{"expired token", bearer(expired), auth.Expired, expired},
	} {
		t.Run(c.name, func(t *testing.T) {
			expectUnauthorized(t, get(e, c.header...), c.reason, c.cred)
			// A write route answers the same, and the audit log keeps the
			// attempt, without the credential.
			mark := maxAuditID(t, store)
			path := "/v1/events?attempt=" + url.QueryEscape(c.name)
			r := e.as(t, "").with(http.MethodPost, path, evReport("0102", f.gA.lon, f.gA.lat), c.header...)
			expectUnauthorized(t, r, c.reason, c.cred)
			a := waitAudit(t, store, mark, http.MethodPost, path)
			if a.Actor != "anonymous" || a.Status != http.StatusUnauthorized || a.Detail == "" {
				t.Errorf("audit entry %+v, want anonymous 401 with a detail", a)
			}
			if c.cred != "" && len(c.cred) >= 8 && strings.Contains(a.Detail+a.Path, c.cred) {
				t.Errorf("the audit entry holds the credential: %+v", a)
			}
		})
	}

	// OpenID Connect.
	valid := p.sign(t, p.key, p.claims(nil))
	var me struct {
		Actor  string       `json:"actor"`
		Kind   string       `json:"kind"`
		Grants []auth.Grant `json:"grants"`
	}
	expect(t, get(e, bearer(valid)...), http.StatusOK, ctJSON, &me)
	if me.Actor != "oidc:wang.wu" || me.Kind != "oidc" || !reflect.DeepEqual(me.Grants, []auth.Grant{{Role: auth.Reporter, Scopes: []string{streetA}}}) {
		t.Errorf("/v1/me of a JWT: %+v", me)
	}
	mark := maxAuditID(t, store)
	var ev evFeature
	expect(t, e.as(t, "").with(http.MethodPost, "/v1/events", evReport("0102", f.gA.lon, f.gA.lat), bearer(valid)...), http.StatusCreated, ctGeoJSON, &ev)
	if got := sqlStrings(t, store, `SELECT actor FROM event_log WHERE event_code = $1`, ev.ID); !reflect.DeepEqual(got, []string{"oidc:wang.wu"}) {
		t.Errorf("event log actors %v, want oidc:wang.wu", got)
	}
	if a := waitAudit(t, store, mark, http.MethodPost, "/v1/events"); a.Actor != "oidc:wang.wu" || a.Status != http.StatusCreated || !slices.Contains(a.Units, f.gA.code) {
		t.Errorf("audit entry %+v, want oidc:wang.wu 201 on %s", a, f.gA.code)
	}
	// Out of its scope, the JWT's holder is refused like a token's.
	expectForbidden(t, e.as(t, "").with(http.MethodPost, "/v1/events", evReport("0102", f.gB.lon, f.gB.lat), bearer(valid)...), auth.Report, f.gB.code, true)

	none := func(claims map[string]any) string {
		b := base64.RawURLEncoding
		payload, _ := json.Marshal(claims)
		return b.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + b.EncodeToString(payload) + "."
	}
	for _, c := range []struct {
		name, token, reason string
	}{
		{"expired", p.sign(t, p.key, p.claims(map[string]any{"exp": time.Now().Add(-time.Hour).Unix(), "iat": time.Now().Add(-2 * time.Hour).Unix()})), auth.Expired},
		{"wrong issuer", p.sign(t, p.key, p.claims(map[string]any{"iss": "https://idp.elsewhere.example"})), auth.Issuer},
		{"wrong audience", p.sign(t, p.key, p.claims(map[string]any{"aud": []string{"another-app"}})), auth.Audience},
		{"alg none", none(p.claims(nil)), auth.Signature},
		{"bad signature", p.sign(t, p.other, p.claims(nil)), auth.Signature},
		{"tampered payload", func() string {
			parts := strings.Split(valid, ".")
			payload, _ := json.Marshal(p.claims(map[string]any{"roles": []string{"admin"}}))
			return parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2]
		}(), auth.Signature},
	} {
		t.Run("jwt "+c.name, func(t *testing.T) {
			expectUnauthorized(t, get(e, bearer(c.token)...), c.reason, c.token)
		})
	}
	t.Run("jwt without oidc", func(t *testing.T) {
		expectUnauthorized(t, get(plain, bearer(valid)...), auth.NoOIDC, valid)
	})
}

// TestAccessActorFromCredential: who acted is the credential's identity,
// in every log; a body or header saying otherwise is refused.
func TestAccessActorFromCredential(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pgtest.NewDemo(t), api.Options{WriteRate: -1})
	f := newScopeFixture(t, e)
	disp := e.as(t, mintToken(t, e.store, "disp-a", auth.Dispatcher, streetA))
	ed := e.as(t, mintToken(t, e.store, "ed-a", auth.Editor, streetA))
	ev := f.event(t, f.gA)

	before := accessState(t, e.store)
	expectProblem(t, disp.with(http.MethodPost, "/v1/events/"+ev+"/transitions", `{"to":"registered","actor":"someone else"}`),
		http.StatusUnprocessableEntity, typeInvalid, "actor")
	unit := featureCollection(f.gridFeature(t, f.gA.code, "改名网格"))
	expectProblem(t, ed.with(http.MethodPost, "/v1/units:import", unit, "X-Actor", "someone else"), http.StatusBadRequest, typeBadParam, "X-Actor", "credential")
	expectUnchanged := func(what string) {
		t.Helper()
		if after := accessState(t, e.store); after != before {
			t.Errorf("%s changed the store", what)
		}
	}
	expectUnchanged("a refused actor")

	mark := maxAuditID(t, e.store)
	var moved evFeature
	expect(t, disp.with(http.MethodPost, "/v1/events/"+ev+"/transitions", `{"to":"registered"}`), http.StatusOK, ctGeoJSON, &moved)
	if last := moved.Properties.Log[len(moved.Properties.Log)-1]; last.Actor != "token:disp-a" {
		t.Errorf("event log entry actor %q, want token:disp-a", last.Actor)
	}
	if got := sqlStrings(t, e.store, `SELECT actor FROM event_log WHERE event_code = $1 ORDER BY n`, ev); !reflect.DeepEqual(got, []string{"token:test-admin", "token:disp-a"}) {
		t.Errorf("event log actors %v", got)
	}
	if a := waitAudit(t, e.store, mark, http.MethodPost, "/v1/events/"+ev+"/transitions"); a.Actor != "token:disp-a" || a.Status != http.StatusOK {
		t.Errorf("audit %+v", a)
	}

	mark = maxAuditID(t, e.store)
	expect(t, ed.post("/v1/units:import?reason=rename", unit), http.StatusOK, ctJSON, nil)
	if got := sqlStrings(t, e.store, `SELECT changed_by FROM units WHERE code = $1 AND valid_to IS NULL`, f.gA.code); !reflect.DeepEqual(got, []string{"token:ed-a"}) {
		t.Errorf("unit version changed_by %v, want token:ed-a", got)
	}
	if a := waitAudit(t, e.store, mark, http.MethodPost, "/v1/units:import?reason=rename"); a.Actor != "token:ed-a" || !reflect.DeepEqual(a.Units, []string{f.gA.code}) {
		t.Errorf("audit %+v", a)
	}

	code := f.objectCode()
	expect(t, ed.post("/v1/objects", objFeatureJSON(code, "0101", pointJSON(f.gA.lon, f.gA.lat), "")), http.StatusCreated, ctGeoJSON, nil)
	if got := sqlStrings(t, e.store, `SELECT updated_by FROM objects WHERE code = $1`, code); !reflect.DeepEqual(got, []string{"token:ed-a"}) {
		t.Errorf("object updated_by %v after create", got)
	}
	objAdmin := f.object(t, f.gA)
	expect(t, ed.put("/v1/objects/"+objAdmin, objFeatureJSON(objAdmin, "0101", pointJSON(f.gA2.lon, f.gA2.lat), "")), http.StatusOK, ctGeoJSON, nil)
	if got := sqlStrings(t, e.store, `SELECT updated_by FROM objects WHERE code = $1`, objAdmin); !reflect.DeepEqual(got, []string{"token:ed-a"}) {
		t.Errorf("object updated_by %v after a replace", got)
	}
	imported := f.objectCode()
	expect(t, ed.post("/v1/objects:import?format=ndjson", objFeatureJSON(imported, "0101", pointJSON(f.gA.lon, f.gA.lat), "")+"\n"), http.StatusCreated, ctJSON, nil)
	if got := sqlStrings(t, e.store, `SELECT updated_by FROM objects WHERE code = $1`, imported); !reflect.DeepEqual(got, []string{"token:ed-a"}) {
		t.Errorf("object updated_by %v after an import", got)
	}
	if n := sqlInt(t, e.store, `SELECT count(*) FROM audit_log WHERE actor = 'token:ed-a' AND route = '/v1/objects' AND status = 201`); n != 1 {
		t.Errorf("%d audit entries of the object create", n)
	}
}

// TestAccessAudit: GET /v1/audit for admins, with its filters and pages.
func TestAccessAudit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pgtest.NewDemo(t), api.Options{WriteRate: -1})
	f := newScopeFixture(t, e)
	edA := e.as(t, mintToken(t, e.store, "aud-a", auth.Editor, streetA))
	edB := e.as(t, mintToken(t, e.store, "aud-b", auth.Editor, streetB))
	t0 := time.Now().Add(-time.Second)
	for range 3 {
		expect(t, edA.post("/v1/objects", objFeatureJSON(f.objectCode(), "0101", pointJSON(f.gA.lon, f.gA.lat), "")), http.StatusCreated, ctGeoJSON, nil)
	}
	expectForbidden(t, edA.post("/v1/objects", objFeatureJSON(f.objectCode(), "0101", pointJSON(f.gB.lon, f.gB.lat), "")), auth.Edit, f.gB.code, true)
	expect(t, edB.post("/v1/objects", objFeatureJSON(f.objectCode(), "0101", pointJSON(f.gB.lon, f.gB.lat), "")), http.StatusCreated, ctGeoJSON, nil)
	expect(t, e.put("/v1/departments/audit1", `{"name":"审计"}`), http.StatusCreated, ctJSON, nil)
	// Wait for the last entry.
	waitAudit(t, e.store, 0, http.MethodPut, "/v1/departments/audit1")

	type page struct {
		Entries []data.AuditEntry `json:"entries"`
		Links   []struct {
			Rel, Href string
		} `json:"links"`
	}
	list := func(query string) []data.AuditEntry {
		t.Helper()
		var all []data.AuditEntry
		next := "/v1/audit?" + query
		for next != "" {
			var p page
			expect(t, e.get(next), http.StatusOK, ctJSON, &p)
			all = append(all, p.Entries...)
			next = ""
			for _, l := range p.Links {
				if l.Rel == "next" {
					next = l.Href
				}
			}
			if len(all) > 1000 {
				t.Fatal("paging does not end")
			}
		}
		return all
	}
	summary := func(es []data.AuditEntry) []string {
		var out []string
		for _, x := range es {
			out = append(out, fmt.Sprintf("%s %s %s %d %v", x.Actor, x.Method, x.Route, x.Status, x.Units))
		}
		return out
	}
	all := list("")
	if len(all) < 6 {
		t.Fatalf("%d entries: %v", len(all), summary(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i].ID >= all[i-1].ID {
			t.Errorf("entries not newest first: %d after %d", all[i].ID, all[i-1].ID)
		}
	}
	byActor := list("actor=token:aud-a")
	if len(byActor) != 4 {
		t.Errorf("actor=token:aud-a: %v", summary(byActor))
	}
	statuses := map[int]int{}
	for _, x := range byActor {
		statuses[x.Status]++
		if x.Actor != "token:aud-a" {
			t.Errorf("actor filter gives %s", x.Actor)
		}
	}
	if statuses[201] != 3 || statuses[403] != 1 {
		t.Errorf("aud-a's statuses %v, want 3 × 201 and 1 × 403", statuses)
	}
	// The subtree of street B: aud-a's refusal there and aud-b's create.
	inB := list("unit=" + streetB)
	if got := summary(inB); len(got) != 2 || !strings.HasPrefix(got[0], "token:aud-b POST /v1/objects 201") || !strings.HasPrefix(got[1], "token:aud-a POST /v1/objects 403") {
		t.Errorf("unit=%s: %v", streetB, got)
	}
	if got := list("unit=" + f.gB.code); len(got) != 2 {
		t.Errorf("unit=%s (the grid itself): %v", f.gB.code, summary(got))
	}
	if got := list("unit=" + demoDistrict + "&actor=token:aud-a"); len(got) != 4 {
		t.Errorf("district and actor: %v", summary(got))
	}
	// Time.
	if got := list("from=" + url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339))); len(got) != 0 {
		t.Errorf("from an hour ahead: %v", summary(got))
	}
	if got := list("to=" + url.QueryEscape(t0.Add(-time.Hour).Format(time.RFC3339))); len(got) != 0 {
		t.Errorf("to an hour before: %v", summary(got))
	}
	if got := list("actor=token:aud-a&from=" + url.QueryEscape(t0.Format(time.RFC3339)) + "&to=" + url.QueryEscape(time.Now().Add(time.Minute).Format(time.RFC3339))); len(got) != 4 {
		t.Errorf("from and to around the writes: %v", summary(got))
	}
	// Pages of two give the same entries.
	paged := list("limit=2")
	if !reflect.DeepEqual(summary(paged), summary(all)) || len(paged) != len(all) {
		t.Errorf("pages of 2: %v\n all at once: %v", summary(paged), summary(all))
	}
	var first page
	expect(t, e.get("/v1/audit?limit=2"), http.StatusOK, ctJSON, &first)
	if len(first.Entries) != 2 || len(first.Links) == 0 {
		t.Errorf("a first page of 2: %d entries, links %v", len(first.Entries), first.Links)
	}
	// Refusals.
	expectForbidden(t, edA.get("/v1/audit"), auth.Administer, "", false)
	viewer := e.as(t, mintToken(t, e.store, "aud-viewer", auth.Viewer, "*"))
	expectForbidden(t, viewer.get("/v1/audit"), auth.Administer, "", false)
	expectUnauthorized(t, e.as(t, "").get("/v1/audit"), auth.Missing, "")
	expectProblem(t, e.get("/v1/audit?bogus=1"), http.StatusBadRequest, typeBadParam, "bogus", "bogus")
	expectProblem(t, e.get("/v1/audit?unit=abc"), http.StatusBadRequest, typeBadParam, "unit")
	expectProblem(t, e.get("/v1/audit?from=yesterday"), http.StatusBadRequest, typeBadParam, "from")
	expectProblem(t, e.get("/v1/audit?limit=0"), http.StatusBadRequest, typeBadParam, "limit")
}

// TestAccessRateLimit: one credential's burst of writes is cut at its
// limit; another's are not.
func TestAccessRateLimit(t *testing.T) {
	t.Parallel()
	store := pgtest.NewDemo(t)
	e := newEnv(t, store, api.Options{WriteRate: 2, WriteBurst: 3})
	other := e.as(t, mintToken(t, store, "rate-other", auth.Admin))
	var statuses []int
	var last reply
	for i := range 4 {
		last = e.put(fmt.Sprintf("/v1/departments/rate%d", i), `{"name":"限速"}`)
		statuses = append(statuses, last.Status)
	}
	if !reflect.DeepEqual(statuses, []int{201, 201, 201, 429}) {
		t.Fatalf("statuses of 4 quick writes %v, want 201 201 201 429; last: %s", statuses, last)
	}
	expectProblem(t, last, http.StatusTooManyRequests, typeRateLimited, "")
	if ra := last.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After %q", ra)
	}
	if n := sqlInt(t, store, `SELECT count(*) FROM departments WHERE code = 'rate3'`); n != 0 {
		t.Errorf("the refused write was written")
	}
	expect(t, other.put("/v1/departments/rate-other", `{"name":"另一个"}`), http.StatusCreated, ctJSON, nil)
	// Reads are not counted.
	expect(t, e.get("/v1/departments"), http.StatusOK, ctJSON, nil)
	// A refusal for the rate is counted, not audited one by one (a
	// runaway client would flood the log): the other token's later write
	// is in the log, the refused one is not.
	waitAudit(t, store, 0, http.MethodPut, "/v1/departments/rate-other")
	if n := sqlInt(t, store, `SELECT count(*) FROM audit_log WHERE path = '/v1/departments/rate3'`); n != 0 {
		t.Errorf("%d audit entries for the write refused for the rate, want 0", n)
	}
	if m := scrape(t, e); !strings.Contains(m, `gridmap_auth_refused_total{reason="rate-limited"} 1`) {
		t.Errorf("the refusal is not counted in gridmap_auth_refused_total")
	}
}

// TestAccessRevocationEndsStreams: an event stream lasts no longer than its
// credential: revoked on one server, the token's open streams on that
// server and on another end within a second, and a reconnection is a 401.
func TestAccessRevocationEndsStreams(t *testing.T) {
	t.Parallel()
	store := pgtest.NewDemo(t)
	e1 := newEnv(t, store, api.Options{})
	e2 := newEnv(t, store, api.Options{})
	tok := mintToken(t, store, "stream-revoked", auth.Viewer, auth.City)
	// Both servers listen for token changes before the revocation.
	for _, e := range []*apiEnv{e1, e2} {
		waitFor(t, 5*time.Second, "the server follows the tokens", e.srv.TokensFollowed)
	}
	c1 := openSSE(t, e1.url, "/v1/events/stream", "Authorization", "Bearer "+tok)
	c2 := openSSE(t, e2.url, "/v1/events/stream", "Authorization", "Bearer "+tok)
	time.Sleep(200 * time.Millisecond) // both streams are being served
	revoked := time.Now()
	expect(t, e1.with(http.MethodDelete, "/v1/tokens/stream-revoked", ""), http.StatusOK, ctJSON, nil)
	for i, c := range []*sseConn{c1, c2} {
		select {
		case <-c.done:
			t.Logf("server %d ended the revoked token's stream %v after the revocation", i+1, time.Since(revoked).Round(time.Millisecond))
		case <-time.After(time.Second):
			t.Fatalf("server %d still streams to a revoked token a second after its revocation", i+1)
		}
	}
	r := e2.with(http.MethodGet, "/v1/events/stream", "", "Authorization", "Bearer "+tok)
	expectProblem(t, r, http.StatusUnauthorized, typeUnauthorized, "", "revoked")
}

// TestAccessUnknownTokensLimited: made-up tokens from one address cost a
// database lookup each only up to a rate; beyond it they are refused at
// once with 429, while known tokens keep working.
func TestAccessUnknownTokensLimited(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pgtest.NewDemo(t), api.Options{})
	waitFor(t, 5*time.Second, "the server follows the tokens", e.srv.TokensFollowed)
	statuses := map[int]int{}
	for range 40 {
		tok, _ := auth.NewToken()
		r := e.with(http.MethodGet, "/v1/me", "", "Authorization", "Bearer "+tok)
		statuses[r.Status]++
		if r.Status == http.StatusTooManyRequests {
			expectProblem(t, r, http.StatusTooManyRequests, typeRateLimited, "")
		}
	}
	if statuses[http.StatusUnauthorized] < 20 || statuses[http.StatusTooManyRequests] == 0 || statuses[http.StatusUnauthorized]+statuses[http.StatusTooManyRequests] != 40 {
		t.Errorf("40 made-up tokens: %v, want the first 20 or so 401 and the rest 429", statuses)
	}
	expect(t, e.get("/v1/me"), http.StatusOK, ctJSON, nil)
	if r := e.get("/v1/me"); r.Header.Get("X-Content-Type-Options") != "nosniff" || r.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("security headers: %v", r.Header)
	}
}
