package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"gridmap/api"
	"gridmap/auth"
	"gridmap/data"
	"gridmap/data/pgtest"
)

// Problem types the API promises (docs/api.md).
const (
	typeBadRequest = "https://gridmap.dev/problems/bad-request"
	typeBadParam   = "https://gridmap.dev/problems/bad-parameter"
	typeNotFound   = "https://gridmap.dev/problems/not-found"
	typeTooLarge   = "https://gridmap.dev/problems/too-large"
	typeViolations = "https://gridmap.dev/problems/topology-violations"
	typeUnavail    = "https://gridmap.dev/problems/unavailable"
	typeNotAllowed = "https://gridmap.dev/problems/method-not-allowed"
)

const (
	ctJSON    = "application/json"
	ctGeoJSON = "application/geo+json"
	ctProblem = "application/problem+json"
)

// The small demo city: 盐田区, 5 streets, 24 communities, 8 grids each.
const (
	demoDistrict    = "440308"
	demoDistrictZH  = "盐田区"
	demoStreets     = 5
	demoCommunities = 24
	demoGridsPer    = 8
	demoUnits       = 1 + demoStreets + demoCommunities + demoCommunities*demoGridsPer
)

// apiEnv is one server on one store, reached over real HTTP.
type apiEnv struct {
	t     *testing.T
	store *data.Store
	srv   *api.Server
	url   string
	// token is the credential e.do sends: an admin's, made by newEnv
	// (tokens of other roles: e.token… helpers in auth_test.go).
	token string
}

func newEnv(t *testing.T, store *data.Store, opts api.Options) *apiEnv {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.WriteRate == 0 {
		opts.WriteRate = -1 // tests write faster than a client may; TestWriteRateLimit sets one
	}
	// The token first: the server's first load of the tokens holds it.
	tok := adminToken(t, store)
	srv, err := api.New(context.Background(), store, opts)
	if err != nil {
		t.Fatalf("api.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go srv.FollowEvents(ctx)
	go srv.FollowTokens(ctx)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		cancel()
		srv.Close()
	})
	envTokens.Store(hs.URL, tok)
	return &apiEnv{t: t, store: store, srv: srv, url: hs.URL, token: tok}
}

// envTokens maps a test server's base URL to its env's token, for the
// helpers that are given a base URL rather than an env.
var envTokens sync.Map

// tokenOf is the token of the env serving base.
func tokenOf(base string) string {
	tok, _ := envTokens.Load(base)
	s, _ := tok.(string)
	return s
}

// authorizeFor adds the credential of the env serving base to req, unless
// it has one.
func authorizeFor(req *http.Request, base string) {
	if tok, ok := envTokens.Load(base); ok && req.Header.Get("Authorization") == "" {
		req.Header.Set("Authorization", "Bearer "+tok.(string))
	}
}

// adminActor is the actor of adminToken's requests.
const adminActor = "token:test-admin"

// adminToken is the store's admin token for tests, made once per store.
func adminToken(t testing.TB, store *data.Store) string {
	t.Helper()
	adminTokensMu.Lock()
	defer adminTokensMu.Unlock()
	if tok, ok := adminTokens[store]; ok {
		return tok
	}
	tok, _, err := store.CreateToken(context.Background(), data.NewToken{Name: "test-admin", Role: auth.Admin, CreatedBy: "test"})
	if err != nil {
		t.Fatalf("create admin token: %v", err)
	}
	adminTokens[store] = tok
	return tok
}

var (
	adminTokensMu sync.Mutex
	adminTokens   = map[*data.Store]string{}
)

// authorize adds the env's credential to a request made by hand.
func (e *apiEnv) authorize(req *http.Request) *http.Request {
	if e.token != "" && req.Header.Get("Authorization") == "" {
		req.Header.Set("Authorization", "Bearer "+e.token)
	}
	return req
}

func demoEnv(t *testing.T) *apiEnv { return newEnv(t, pgtest.NewDemo(t), api.Options{}) }

// reply is a response read whole.
type reply struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r reply) String() string {
	b := string(r.Body)
	if len(b) > 600 {
		b = b[:600] + "…"
	}
	return fmt.Sprintf("%d %s: %s", r.Status, r.Header.Get("Content-Type"), b)
}

func (e *apiEnv) do(method, path string, body io.Reader) reply {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, body)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	e.authorize(req)
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

func (e *apiEnv) get(path string) reply { e.t.Helper(); return e.do(http.MethodGet, path, nil) }

func (e *apiEnv) post(path, body string) reply {
	e.t.Helper()
	return e.do(http.MethodPost, path, strings.NewReader(body))
}

// expect checks status and media type and decodes the body into v (when
// not nil).
func expect(t *testing.T, r reply, status int, mediaType string, v any) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r)
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != mediaType {
		t.Fatalf("Content-Type %q, want %s: %s", r.Header.Get("Content-Type"), mediaType, r)
	}
	if v != nil {
		if err := json.Unmarshal(r.Body, v); err != nil {
			t.Fatalf("decode %s body: %v: %s", mediaType, err, r)
		}
	}
}

// problem is the body of every error.
type problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail"`
	Instance string `json:"instance"`
	Param    string `json:"param"`
	// extensions
	Limit      *int        `json:"limit"`
	LimitBytes *int64      `json:"limit_bytes"`
	Violations []violation `json:"violations"`
	Warnings   []violation `json:"warnings"`
	Units      int         `json:"units"`
}

type violation struct {
	Rule     string          `json:"rule"`
	Severity string          `json:"severity"`
	Codes    []string        `json:"codes"`
	Feature  *int            `json:"feature"`
	Message  string          `json:"message"`
	Geometry json.RawMessage `json:"geometry"`
	AreaM2   *float64        `json:"area_m2"`
	Location []float64       `json:"location"`
}

// expectProblem checks a problem+json answer: status, type, a title, the
// status echoed in the body, the param (when param != "", and its absence
// otherwise) and that detail mentions every string in inDetail.
func expectProblem(t *testing.T, r reply, status int, typ, param string, inDetail ...string) problem {
	t.Helper()
	var p problem
	expect(t, r, status, ctProblem, &p)
	if p.Type != typ {
		t.Errorf("problem type %q, want %q: %s", p.Type, typ, r)
	}
	if p.Title == "" {
		t.Errorf("problem without title: %s", r)
	}
	if p.Status != status {
		t.Errorf("problem status %d, want %d: %s", p.Status, status, r)
	}
	if p.Param != param {
		t.Errorf("problem param %q, want %q: %s", p.Param, param, r)
	}
	if p.Detail == "" {
		t.Errorf("problem without detail: %s", r)
	}
	for _, s := range inDetail {
		if !strings.Contains(p.Detail, s) {
			t.Errorf("problem detail %q does not mention %q", p.Detail, s)
		}
	}
	return p
}

// GeoJSON as the API writes it.
type unitFeature struct {
	Type       string          `json:"type"`
	ID         string          `json:"id"`
	Geometry   json.RawMessage `json:"geometry"`
	Properties struct {
		Code       string  `json:"code"`
		Name       string  `json:"name"`
		Level      string  `json:"level"`
		ParentCode *string `json:"parent_code"`
		Layer      string  `json:"layer"`
		AreaM2     float64 `json:"area_m2"`
		Complete   bool    `json:"complete"`
		Version    int     `json:"version"`
		ValidFrom  string  `json:"valid_from"`
	} `json:"properties"`
}

type unitCollection struct {
	Type           string        `json:"type"`
	Features       []unitFeature `json:"features"`
	NumberReturned int           `json:"numberReturned"`
	Links          []struct {
		Rel  string `json:"rel"`
		Href string `json:"href"`
		Type string `json:"type"`
	} `json:"links"`
}

func (c unitCollection) codes() []string {
	out := make([]string, len(c.Features))
	for i, f := range c.Features {
		out[i] = f.Properties.Code
	}
	return out
}

func (c unitCollection) next() string {
	for _, l := range c.Links {
		if l.Rel == "next" {
			return l.Href
		}
	}
	return ""
}

func geometryType(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	if string(raw) == "null" || len(raw) == 0 {
		return "null"
	}
	var g struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatalf("geometry %s: %v", raw, err)
	}
	return g.Type
}

// sqlStrings runs a query answering one text column.
func sqlStrings(t *testing.T, s *data.Store, q string, args ...any) []string {
	t.Helper()
	rows, err := s.Pool.Query(context.Background(), q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func sqlInt(t *testing.T, s *data.Store, q string, args ...any) int {
	t.Helper()
	var n int
	if err := s.Pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func TestHealthz(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pgtest.New(t), api.Options{})
	var body map[string]string
	expect(t, e.get("/healthz"), http.StatusOK, ctJSON, &body)
	if body["status"] != "ok" {
		t.Errorf("healthz %v", body)
	}
	if r := e.do(http.MethodHead, "/healthz", nil); r.Status != http.StatusOK {
		t.Errorf("HEAD /healthz: %s", r)
	}
}

func TestReadyz(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	var body struct {
		Status   string `json:"status"`
		Database string `json:"database"`
		Locator  struct {
			Units int    `json:"units"`
			Built string `json:"built"`
		} `json:"locator"`
	}
	expect(t, e.get("/readyz"), http.StatusOK, ctJSON, &body)
	if body.Status != "ready" || body.Database != "ok" {
		t.Errorf("readyz %+v", body)
	}
	if body.Locator.Units != demoUnits {
		t.Errorf("locator units %d, want %d", body.Locator.Units, demoUnits)
	}
	if _, err := time.Parse(time.RFC3339, body.Locator.Built); err != nil {
		t.Errorf("locator built %q: %v", body.Locator.Built, err)
	}
}

func TestReadyzDatabaseDown(t *testing.T) {
	t.Parallel()
	s := pgtest.New(t)
	e := newEnv(t, s, api.Options{})
	s.Close() // pgtest's cleanup closes it again, which is harmless
	expectProblem(t, e.get("/readyz"), http.StatusServiceUnavailable, typeUnavail, "")
	// Liveness does not depend on the database.
	expect(t, e.get("/healthz"), http.StatusOK, ctJSON, nil)
}

// TestDistrictsPage: the HTML district list, at /districts since the wall
// map took / (web_test.go).
func TestDistrictsPage(t *testing.T) {
	t.Parallel()
	t.Run("demo", func(t *testing.T) {
		e := demoEnv(t)
		r := e.get("/districts")
		expect(t, r, http.StatusOK, "text/html", nil)
		page := string(r.Body)
		for _, want := range []string{
			"<code>" + demoDistrict + "</code>", demoDistrictZH,
			`href="/v1/units/` + demoDistrict + `?geometry=none"`,
			`href="/v1/units/` + demoDistrict + `/children?geometry=none"`,
			`href="/v1/topology/issues?parent=` + demoDistrict + `"`,
			`href="/"`, // back to the wall map
			fmt.Sprintf("1 districts · %d streets · %d communities · %d grids", demoStreets, demoCommunities, demoCommunities*demoGridsPer),
		} {
			if !strings.Contains(page, want) {
				t.Errorf("index page lacks %q", want)
			}
		}
		// The link it shows works.
		expect(t, e.get("/v1/units/"+demoDistrict+"?geometry=none"), http.StatusOK, ctGeoJSON, nil)
		if r := e.do(http.MethodHead, "/districts", nil); r.Status != http.StatusOK {
			t.Errorf("HEAD /districts: %s", r)
		}
	})
	t.Run("empty", func(t *testing.T) {
		e := newEnv(t, pgtest.New(t), api.Options{})
		r := e.get("/districts")
		expect(t, r, http.StatusOK, "text/html", nil)
		if !strings.Contains(string(r.Body), "No units yet") {
			t.Errorf("empty index page: %s", r)
		}
	})
}

func TestRouting(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pgtest.New(t), api.Options{})
	cases := []struct {
		method, path string
		status       int
		typ          string
	}{
		{http.MethodGet, "/nope", http.StatusNotFound, typeNotFound},
		{http.MethodGet, "/v1/nope", http.StatusNotFound, typeNotFound},
		{http.MethodGet, "/v1/units/440308/children/extra", http.StatusNotFound, typeNotFound},
		{http.MethodDelete, "/v1/locate", http.StatusMethodNotAllowed, typeNotAllowed},
		{http.MethodPut, "/v1/locate", http.StatusMethodNotAllowed, typeNotAllowed},
		{http.MethodPatch, "/v1/units", http.StatusMethodNotAllowed, typeNotAllowed},
		{http.MethodGet, "/v1/units:import", http.StatusMethodNotAllowed, typeNotAllowed},
		{http.MethodDelete, "/v1/units/440308", http.StatusMethodNotAllowed, typeNotAllowed},
		{http.MethodPost, "/v1/units/440308/children", http.StatusMethodNotAllowed, typeNotAllowed},
		{http.MethodPut, "/v1/units:validate", http.StatusMethodNotAllowed, typeNotAllowed},
		{http.MethodDelete, "/v1/topology/issues", http.StatusMethodNotAllowed, typeNotAllowed},
		{http.MethodPost, "/healthz", http.StatusMethodNotAllowed, typeNotAllowed},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			p := expectProblem(t, e.do(c.method, c.path, nil), c.status, c.typ, "", c.path)
			if p.Instance != c.path {
				t.Errorf("instance %q, want %q", p.Instance, c.path)
			}
			if c.status == http.StatusMethodNotAllowed && !strings.Contains(p.Detail, c.method) {
				t.Errorf("405 detail %q does not name the method", p.Detail)
			}
		})
	}
}

// TestMethodNotAllowedAllow: RFC 9110 §15.5.6 — a 405 response MUST carry
// an Allow header listing the methods the resource supports.
func TestMethodNotAllowedAllow(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pgtest.New(t), api.Options{})
	cases := []struct{ method, path, allow string }{
		{http.MethodDelete, "/v1/locate", "GET, POST"},
		{http.MethodPost, "/healthz", "GET, HEAD"},
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
			t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, r.Header.Values("Allow"), c.allow)
		}
	}
}

func TestListUnitsFilters(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	s := e.store
	firstStreet := sqlStrings(t, s, `SELECT code FROM units WHERE level='street' ORDER BY code LIMIT 1`)[0]
	firstCommunity := sqlStrings(t, s, `SELECT code FROM units WHERE level='community' ORDER BY code LIMIT 1`)[0]
	// The grids whose geometry meets the community's bounding box: its own
	// eight and a few neighbours.
	nearCommunity := sqlStrings(t, s, `SELECT g.code FROM units g, units c WHERE c.code=$1 AND g.level='grid'
		AND ST_Intersects(g.geom, ST_Envelope(c.geom)) ORDER BY g.code`, firstCommunity)
	if len(nearCommunity) < demoGridsPer || len(nearCommunity) >= demoCommunities*demoGridsPer {
		t.Fatalf("the bbox case selects %d grids; the test needs a handful", len(nearCommunity))
	}
	cases := []struct {
		name  string
		query string
		want  []string // codes, in order
	}{
		{"districts", "level=district", []string{demoDistrict}},
		{"streets", "level=street", sqlStrings(t, s, `SELECT code FROM units WHERE level='street' ORDER BY code`)},
		{"children by parent", "parent=" + demoDistrict, sqlStrings(t, s, `SELECT code FROM units WHERE level='street' ORDER BY code`)},
		{"communities of a street", "parent=" + firstStreet + "&level=community",
			sqlStrings(t, s, `SELECT code FROM units WHERE parent_code=$1 ORDER BY code`, firstStreet)},
		{"grids of a community", "level=grid&parent=" + firstCommunity,
			sqlStrings(t, s, `SELECT code FROM units WHERE parent_code=$1 ORDER BY code`, firstCommunity)},
		{"level and wrong parent", "level=grid&parent=" + demoDistrict, []string{}},
		{"explicit base layer", "layer=base&level=district", []string{demoDistrict}},
		{"everything", "geometry=none", sqlStrings(t, s, `SELECT code FROM units ORDER BY code`)},
		{"bbox far away", "bbox=0,0,1,1", []string{}},
		{"bbox whole world", "level=street&bbox=-180,-90,180,90", sqlStrings(t, s, `SELECT code FROM units WHERE level='street' ORDER BY code`)},
		{"bbox around a community", "level=grid&bbox=" + bboxOf(t, s, firstCommunity), nearCommunity},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var fc unitCollection
			r := e.get("/v1/units?" + c.query)
			expect(t, r, http.StatusOK, ctGeoJSON, &fc)
			if fc.Type != "FeatureCollection" || fc.Features == nil {
				t.Fatalf("not a FeatureCollection with a features array: %s", r)
			}
			if got := fc.codes(); !reflect.DeepEqual(got, c.want) {
				t.Errorf("codes %v, want %v", got, c.want)
			}
			if fc.NumberReturned != len(c.want) {
				t.Errorf("numberReturned %d, want %d", fc.NumberReturned, len(c.want))
			}
			if n := fc.next(); n != "" {
				t.Errorf("a short page links to %q", n)
			}
		})
	}
}

func bboxOf(t *testing.T, s *data.Store, code string) string {
	t.Helper()
	var x0, y0, x1, y1 float64
	if err := s.Pool.QueryRow(context.Background(), `SELECT ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom) FROM units WHERE code=$1`, code).
		Scan(&x0, &y0, &x1, &y1); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%.9f,%.9f,%.9f,%.9f", x0, y0, x1, y1)
}

func TestListUnitsGeometryModes(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	vertices := func(raw json.RawMessage) int { return strings.Count(string(raw), "],[") }
	got := map[string]unitCollection{}
	for _, mode := range []string{"", "none", "simplified", "full"} {
		var fc unitCollection
		expect(t, e.get("/v1/units?level=street&geometry="+mode), http.StatusOK, ctGeoJSON, &fc)
		if len(fc.Features) != demoStreets {
			t.Fatalf("geometry=%s: %d streets", mode, len(fc.Features))
		}
		got[mode] = fc
	}
	for i := range demoStreets {
		def, none, simp, full := got[""].Features[i], got["none"].Features[i], got["simplified"].Features[i], got["full"].Features[i]
		if gt := geometryType(t, none.Geometry); gt != "null" {
			t.Errorf("geometry=none gives %s", gt)
		}
		if gt := geometryType(t, full.Geometry); gt != "MultiPolygon" {
			t.Errorf("geometry=full gives %s", gt)
		}
		if gt := geometryType(t, simp.Geometry); gt != "MultiPolygon" && gt != "Polygon" {
			t.Errorf("geometry=simplified gives %s", gt)
		}
		if string(def.Geometry) != string(full.Geometry) {
			t.Errorf("%s: the default geometry is not the full one", full.ID)
		}
		if vs, vf := vertices(simp.Geometry), vertices(full.Geometry); vs > vf || vs == 0 {
			t.Errorf("%s: simplified has %d vertices, full %d", full.ID, vs, vf)
		}
		if none.Properties.Code != full.Properties.Code || none.Properties.AreaM2 != full.Properties.AreaM2 {
			t.Errorf("properties differ between modes: %+v vs %+v", none.Properties, full.Properties)
		}
	}
}

func TestListUnitsPaging(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	community := sqlStrings(t, e.store, `SELECT code FROM units WHERE level='community' ORDER BY code LIMIT 1`)[0]
	cases := []struct {
		name  string
		first string
		want  []string
		pages []int // features per page
	}{
		{"communities by 5", "/v1/units?level=community&geometry=none&limit=5",
			sqlStrings(t, e.store, `SELECT code FROM units WHERE level='community' ORDER BY code`), []int{5, 5, 5, 5, 4}},
		{"grids by 7 with geometry", "/v1/units?level=grid&limit=7",
			sqlStrings(t, e.store, `SELECT code FROM units WHERE level='grid' ORDER BY code`), nil},
		// 8 grids in pages of 4: the second page is full, so it links to an
		// empty third one.
		{"exact multiple", "/v1/units?parent=" + community + "&geometry=none&limit=4",
			sqlStrings(t, e.store, `SELECT code FROM units WHERE parent_code=$1 ORDER BY code`, community), []int{4, 4, 0}},
		{"all at once", "/v1/units?geometry=none&limit=10000",
			sqlStrings(t, e.store, `SELECT code FROM units ORDER BY code`), []int{demoUnits}},
		{"one by one", "/v1/units?level=street&geometry=none&limit=1",
			sqlStrings(t, e.store, `SELECT code FROM units WHERE level='street' ORDER BY code`), []int{1, 1, 1, 1, 1, 0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var seen []string
			var pages []int
			next := c.first
			for next != "" {
				if len(pages) > 1000 {
					t.Fatalf("paging does not end")
				}
				if !strings.HasPrefix(next, "/v1/units?") {
					t.Fatalf("next link %q is not a /v1/units query", next)
				}
				var fc unitCollection
				expect(t, e.get(next), http.StatusOK, ctGeoJSON, &fc)
				if fc.NumberReturned != len(fc.Features) {
					t.Errorf("numberReturned %d for %d features", fc.NumberReturned, len(fc.Features))
				}
				pages = append(pages, len(fc.Features))
				seen = append(seen, fc.codes()...)
				nxt := fc.next()
				if nxt != "" {
					u, err := url.Parse(nxt)
					if err != nil {
						t.Fatal(err)
					}
					q := u.Query()
					if q.Get("cursor") != fc.Features[len(fc.Features)-1].Properties.Code {
						t.Errorf("next cursor %q, last code on the page %q", q.Get("cursor"), fc.Features[len(fc.Features)-1].Properties.Code)
					}
					first, _ := url.Parse(c.first)
					for k, v := range first.Query() {
						if k != "cursor" && !reflect.DeepEqual(q[k], v) {
							t.Errorf("next link drops or changes %s: %q vs %q", k, q[k], v)
						}
					}
					for _, l := range fc.Links {
						if l.Rel == "next" && l.Type != ctGeoJSON {
							t.Errorf("next link type %q", l.Type)
						}
					}
				}
				next = nxt
			}
			if !reflect.DeepEqual(seen, c.want) {
				t.Errorf("paged codes %v, want %v", seen, c.want)
			}
			if !sort.StringsAreSorted(seen) {
				t.Errorf("codes out of order: %v", seen)
			}
			if c.pages != nil && !reflect.DeepEqual(pages, c.pages) {
				t.Errorf("page sizes %v, want %v", pages, c.pages)
			}
		})
	}
	// A cursor past the end is an empty page, not an error.
	var fc unitCollection
	expect(t, e.get("/v1/units?cursor=999999999999999"), http.StatusOK, ctGeoJSON, &fc)
	if len(fc.Features) != 0 || fc.next() != "" {
		t.Errorf("cursor past the end: %d features, next %q", len(fc.Features), fc.next())
	}
}

func TestListUnitsBadParams(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	cases := []struct {
		query, param string
		inDetail     []string
	}{
		{"level=town", "level", []string{`"town"`, "district", "street", "community", "grid"}},
		{"level=District", "level", []string{`"District"`}},
		{"layer=nope", "layer", []string{`"nope"`, "base"}},
		{"layer=base&level=district&geometry=foo", "geometry", []string{`"foo"`, "none", "simplified", "full"}},
		{"geometry=FULL", "geometry", []string{`"FULL"`}},
		{"bbox=a,b,c,d", "bbox", []string{"not a number"}},
		{"bbox=114,22,115", "bbox", []string{"minLon,minLat,maxLon,maxLat"}},
		{"bbox=114,22,115,23,1", "bbox", []string{"minLon,minLat,maxLon,maxLat"}},
		{"bbox=", "", nil}, // empty bbox is no filter: checked below
		{"bbox=114,22,NaN,23", "bbox", []string{"not a number"}},
		{"bbox=114,22,Inf,23", "bbox", []string{"not a number"}},
		{"bbox=-181,22,115,23", "bbox", []string{"out of range"}},
		{"bbox=114,-91,115,23", "bbox", []string{"out of range"}},
		{"bbox=114,22,181,23", "bbox", []string{"out of range"}},
		{"bbox=114,22,115,91", "bbox", []string{"out of range"}},
		{"bbox=115,22,114,23", "bbox", []string{"minimum exceeds maximum"}},
		{"bbox=114,23,115,22", "bbox", []string{"minimum exceeds maximum"}},
		{"limit=0", "limit", []string{"out of range"}},
		{"limit=-1", "limit", []string{"out of range"}},
		{"limit=10001", "limit", []string{"out of range"}},
		{"limit=abc", "limit", []string{"not an integer"}},
		{"limit=1.5", "limit", []string{"not an integer"}},
	}
	for _, c := range cases {
		t.Run(c.query, func(t *testing.T) {
			r := e.get("/v1/units?" + c.query)
			if c.param == "" {
				expect(t, r, http.StatusOK, ctGeoJSON, nil)
				return
			}
			p := expectProblem(t, r, http.StatusBadRequest, typeBadParam, c.param, c.inDetail...)
			if p.Instance != "/v1/units" {
				t.Errorf("instance %q", p.Instance)
			}
		})
	}
}

func TestGetUnit(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	s := e.store
	street := sqlStrings(t, s, `SELECT code FROM units WHERE level='street' ORDER BY code LIMIT 1`)[0]
	grid := sqlStrings(t, s, `SELECT code FROM units WHERE level='grid' ORDER BY code DESC LIMIT 1`)[0]
	for _, code := range []string{demoDistrict, street, grid[:12], grid} {
		t.Run(code, func(t *testing.T) {
			var f unitFeature
			expect(t, e.get("/v1/units/"+code), http.StatusOK, ctGeoJSON, &f)
			var name, level string
			var parent *string
			var area float64
			if err := s.Pool.QueryRow(context.Background(), `SELECT name, level, parent_code, ST_Area(geom::geography) FROM units WHERE code=$1`, code).
				Scan(&name, &level, &parent, &area); err != nil {
				t.Fatal(err)
			}
			p := f.Properties
			if f.Type != "Feature" || f.ID != code || p.Code != code || p.Name != name || p.Level != level || p.Layer != "base" {
				t.Errorf("feature %s %s props %+v; want code %s name %s level %s layer base", f.Type, f.ID, p, code, name, level)
			}
			if !reflect.DeepEqual(p.ParentCode, parent) {
				t.Errorf("parent_code %v, want %v", deref(p.ParentCode), deref(parent))
			}
			if parent != nil && !strings.HasPrefix(code, *parent) {
				t.Errorf("parent %s is not a prefix of %s", *parent, code)
			}
			if p.AreaM2 <= 0 || p.AreaM2 < area*0.999 || p.AreaM2 > area*1.001 {
				t.Errorf("area_m2 %.1f, PostGIS says %.1f", p.AreaM2, area)
			}
			if p.Version != 1 || p.ValidFrom == "" {
				t.Errorf("version %d valid_from %q", p.Version, p.ValidFrom)
			}
			if gt := geometryType(t, f.Geometry); gt != "MultiPolygon" {
				t.Errorf("geometry type %s, want MultiPolygon", gt)
			}
		})
	}
	var d unitFeature
	expect(t, e.get("/v1/units/"+demoDistrict+"?geometry=none"), http.StatusOK, ctGeoJSON, &d)
	if gt := geometryType(t, d.Geometry); gt != "null" {
		t.Errorf("geometry=none gives %s", gt)
	}
	if d.Properties.Name != demoDistrictZH || d.Properties.ParentCode != nil || !d.Properties.Complete {
		t.Errorf("district %+v, want %s, no parent, complete", d.Properties, demoDistrictZH)
	}

	errs := []struct {
		path, param string
		status      int
		typ         string
		inDetail    []string
	}{
		{"/v1/units/999999", "", http.StatusNotFound, typeNotFound, []string{`"999999"`, `"base"`}},
		{"/v1/units/44030800", "", http.StatusNotFound, typeNotFound, []string{`"44030800"`}},
		{"/v1/units/" + demoDistrict + "?layer=nope", "layer", http.StatusBadRequest, typeBadParam, []string{`"nope"`}},
		{"/v1/units/" + demoDistrict + "?geometry=foo", "geometry", http.StatusBadRequest, typeBadParam, []string{`"foo"`}},
	}
	for _, c := range errs {
		t.Run(c.path, func(t *testing.T) {
			expectProblem(t, e.get(c.path), c.status, c.typ, c.param, c.inDetail...)
		})
	}
}

func deref(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

func TestUnitChildren(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	s := e.store
	community := sqlStrings(t, s, `SELECT code FROM units WHERE level='community' ORDER BY code DESC LIMIT 1`)[0]
	grid := community + "001"
	cases := []struct {
		code, query string
		level       string
		n           int
	}{
		{demoDistrict, "", "street", demoStreets},
		{demoDistrict, "?geometry=none&limit=2", "street", 2},
		{community, "", "grid", demoGridsPer},
		{community[:9], "?geometry=simplified", "community", sqlInt(t, s, `SELECT count(*) FROM units WHERE parent_code=$1`, community[:9])},
		{grid, "", "", 0},
	}
	for _, c := range cases {
		t.Run(c.code+c.query, func(t *testing.T) {
			var fc unitCollection
			expect(t, e.get("/v1/units/"+c.code+"/children"+c.query), http.StatusOK, ctGeoJSON, &fc)
			if fc.Type != "FeatureCollection" || fc.Features == nil {
				t.Fatalf("not a FeatureCollection: %+v", fc)
			}
			want := sqlStrings(t, s, `SELECT code FROM units WHERE parent_code=$1 ORDER BY code`, c.code)
			if c.n < len(want) {
				want = want[:c.n]
				if fc.next() == "" {
					t.Errorf("a full page of children has no next link")
				}
			}
			if got := fc.codes(); !reflect.DeepEqual(got, want) {
				t.Errorf("children %v, want %v", got, want)
			}
			for _, f := range fc.Features {
				if f.Properties.Level != c.level || deref(f.Properties.ParentCode) != c.code || !strings.HasPrefix(f.Properties.Code, c.code) {
					t.Errorf("child %+v of %s", f.Properties, c.code)
				}
			}
		})
	}
	expectProblem(t, e.get("/v1/units/999999/children"), http.StatusNotFound, typeNotFound, "", `"999999"`)
	expectProblem(t, e.get("/v1/units/"+demoDistrict+"/children?layer=nope"), http.StatusBadRequest, typeBadParam, "layer")
	expectProblem(t, e.get("/v1/units/"+demoDistrict+"/children?limit=0"), http.StatusBadRequest, typeBadParam, "limit")
	expectProblem(t, e.get("/v1/units/"+demoDistrict+"/children?geometry=foo"), http.StatusBadRequest, typeBadParam, "geometry")
}

func TestTopologyIssuesDemo(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	type issues struct {
		Layer        string      `json:"layer"`
		Parent       string      `json:"parent"`
		UnitsChecked int         `json:"units_checked"`
		Issues       []violation `json:"issues"`
	}
	var got issues
	r := e.get("/v1/topology/issues?parent=" + demoDistrict)
	expect(t, r, http.StatusOK, ctJSON, &got)
	if got.Issues == nil || len(got.Issues) != 0 {
		t.Errorf("issues on the clean demo: %s", r)
	}
	if got.Layer != "base" || got.Parent != demoDistrict || got.UnitsChecked != 1+demoStreets {
		t.Errorf("answer %+v, want layer base, parent %s, %d units checked", got, demoDistrict, 1+demoStreets)
	}
	// The whole layer.
	got = issues{}
	expect(t, e.get("/v1/topology/issues"), http.StatusOK, ctJSON, &got)
	if len(got.Issues) != 0 || got.UnitsChecked != demoUnits {
		t.Errorf("whole layer: %d issues, %d units checked (want 0, %d)", len(got.Issues), got.UnitsChecked, demoUnits)
	}
	expectProblem(t, e.get("/v1/topology/issues?parent=999999"), http.StatusNotFound, typeNotFound, "", `"999999"`)
	expectProblem(t, e.get("/v1/topology/issues?parent="+demoDistrict+"&layer=nope"), http.StatusBadRequest, typeBadParam, "layer", `"nope"`)
	expectProblem(t, e.get("/v1/topology/issues?layer=nope"), http.StatusBadRequest, typeBadParam, "layer")
	expectProblem(t, e.get("/v1/topology/issues?tolerance=abc"), http.StatusBadRequest, typeBadParam, "tolerance", "not a number")
	expectProblem(t, e.get("/v1/topology/issues?tolerance=-1"), http.StatusBadRequest, typeBadParam, "tolerance", "out of range")
}
