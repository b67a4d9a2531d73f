package api_test

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"gridmap/api"
	"gridmap/auth"
	"gridmap/data/demo"
	"gridmap/data/pgtest"
	"gridmap/geo"
)

type searchAnswer struct {
	Query   string `json:"query"`
	Results []struct {
		Type  string      `json:"type"`
		Code  string      `json:"code"`
		Label string      `json:"label"`
		Name  string      `json:"name"`
		Level string      `json:"level"`
		Layer string      `json:"layer"`
		Class string      `json:"class"`
		Score int         `json:"score"`
		BBox  *[4]float64 `json:"bbox"`
		Point *[2]float64 `json:"point"`
	} `json:"results"`
}

func (a searchAnswer) codes(typ string) []string {
	var out []string
	for _, r := range a.Results {
		if typ == "" || r.Type == typ {
			out = append(out, r.Code)
		}
	}
	return out
}

func searchFor(t *testing.T, e *apiEnv, query string) searchAnswer {
	t.Helper()
	var a searchAnswer
	expect(t, e.get("/v1/search?"+query), 200, "application/json", &a)
	return a
}

// searchEnv is the demo city with 600 objects and 300 events.
func searchEnv(t *testing.T) *apiEnv {
	t.Helper()
	store := withDemoObjectsSeed(t, pgtest.NewDemo(t), 600, 7)
	if evs, err := demo.Events(context.Background(), store, 300, 7, time.Now()); err != nil || evs.Events != 300 {
		t.Fatalf("demo events: %+v, %v", evs, err)
	}
	return newEnv(t, store, api.Options{})
}

func TestSearchUnitNames(t *testing.T) {
	t.Parallel()
	e := searchEnv(t)
	q := url.QueryEscape
	// 梅沙 is the start of 梅沙街道 and inside its communities 小梅沙居委会 and
	// 大梅沙居委会 and their grids.
	a := searchFor(t, e, "q="+q("梅沙")+"&types=unit&limit=100")
	want := sqlStrings(t, e.store, `SELECT code FROM units WHERE valid_to IS NULL AND name LIKE '%梅沙%'`)
	if got := a.codes("unit"); len(got) != len(want) || len(want) < 10 {
		t.Fatalf("梅沙 found %d units, SQL %d", len(got), len(want))
	}
	first := a.Results[0]
	if first.Name != "梅沙街道" || first.Level != "street" || first.Score != 2 || first.Layer != "base" || first.Label != "梅沙街道" || first.BBox == nil {
		t.Errorf("first hit %+v, want 梅沙街道 as a prefix match with its bbox", first)
	}
	if a.Results[1].Name != "小梅沙居委会" || a.Results[2].Name != "大梅沙居委会" || a.Results[1].Score != 1 || a.Results[3].Level != "grid" {
		t.Errorf("after the street: %+v %+v %+v, want the two communities (names as long: by code), then grids", a.Results[1], a.Results[2], a.Results[3])
	}
	if b := first.BBox; b[0] >= b[2] || b[1] >= b[3] || b[0] < 113 || b[2] > 115 {
		t.Errorf("bbox %v", b)
	}
	// The exact name ranks first; the default limit is 20, over every kind.
	a = searchFor(t, e, "q="+q("大梅沙居委会"))
	if a.Results[0].Name != "大梅沙居委会" || a.Results[0].Score != 3 || a.Query != "大梅沙居委会" {
		t.Errorf("exact name: %+v", a.Results[0])
	}
	if a := searchFor(t, e, "q="+q("梅沙")); len(a.Results) != 20 {
		t.Errorf("%d results, want the default limit 20", len(a.Results))
	}
	// Letters with a case match in any case.
	sqlStrings(t, e.store, `UPDATE units SET name = 'Meisha Grid 1' WHERE valid_to IS NULL AND code = '440308001002001' RETURNING code`)
	if a := searchFor(t, e, "q=MEISHA+grid"); len(a.Results) != 1 || a.Results[0].Code != "440308001002001" || a.Results[0].Score != 2 {
		t.Errorf("MEISHA grid: %+v", a.Results)
	}
	if a := searchFor(t, e, "q=meisha+GRID+1"); len(a.Results) != 1 || a.Results[0].Score != 3 {
		t.Errorf("meisha GRID 1: %+v", a.Results)
	}
	if a := searchFor(t, e, "q=sha+gr"); len(a.Results) != 1 || a.Results[0].Score != 1 {
		t.Errorf("sha gr: %+v", a.Results)
	}
	if a := searchFor(t, e, "q=iS&types=unit"); len(a.Results) != 1 || a.Results[0].Score != 1 {
		t.Errorf("iS (two letters: the characters index): %+v", a.Results)
	}
	// One character: 梅 is in the two 梅沙 communities' names and more.
	a = searchFor(t, e, "q="+q("梅")+"&types=unit&limit=100")
	if want := sqlStrings(t, e.store, `SELECT code FROM units WHERE valid_to IS NULL AND name LIKE '%梅%'`); len(a.Results) != len(want) {
		t.Errorf("梅: %d units, SQL %d", len(a.Results), len(want))
	}
	// Wildcards are text: no name holds % or _.
	for _, s := range []string{"%", "_", `\`, "%梅沙"} {
		if a := searchFor(t, e, "q="+q(s)); len(a.Results) != 0 {
			t.Errorf("q=%s found %v", s, a.codes(""))
		}
	}
}

func TestSearchCodes(t *testing.T) {
	t.Parallel()
	e := searchEnv(t)
	// A unit's whole code first, then the units under it (higher level
	// first), then objects and events whose codes start with it.
	a := searchFor(t, e, "q=440308001&limit=100")
	if r := a.Results[0]; r.Code != "440308001" || r.Score != 3 || r.Type != "unit" {
		t.Fatalf("first hit %+v, want unit 440308001 exact", r)
	}
	if r := a.Results[1]; r.Level != "community" || !strings.HasPrefix(r.Code, "440308001") || r.Score != 2 {
		t.Errorf("second hit %+v, want a community of 440308001", r)
	}
	// A partial code finds its unit.
	a = searchFor(t, e, "q=4403080010&types=unit")
	wantUnits := sqlStrings(t, e.store, `SELECT code FROM units WHERE valid_to IS NULL AND code LIKE '4403080010%' ORDER BY level = 'grid', char_length(name), code LIMIT 20`)
	if got := a.codes("unit"); !slices.Equal(got, wantUnits) {
		t.Errorf("4403080010: %v, want %v", got, wantUnits)
	}
	// Tiers before kinds: on 4403 every unit, object and event starts with
	// it, so the district (exact? no: 440308) comes first and objects come
	// after every unit.
	a = searchFor(t, e, "q=4403&limit=100")
	seenObject := false
	for _, r := range a.Results {
		seenObject = seenObject || r.Type == "object"
		if r.Type == "unit" && seenObject {
			t.Fatalf("unit %s after an object: %v", r.Code, a.codes(""))
		}
	}
	if a.Results[0].Code != "440308" {
		t.Errorf("4403: first %s, want the district", a.Results[0].Code)
	}
	// Objects by their code: whole (exact) or its start; enterprises by
	// their credit code in any case.
	for _, class := range []string{"house", "enterprise"} {
		code := sqlStrings(t, e.store, `SELECT code FROM objects WHERE class_code = $1 ORDER BY code DESC LIMIT 1`, class)[0]
		a = searchFor(t, e, "types=object&q="+strings.ToLower(code))
		if len(a.Results) != 1 || a.Results[0].Code != code || a.Results[0].Score != 3 || a.Results[0].Type != "object" || a.Results[0].Class != class || a.Results[0].Label == "" {
			t.Errorf("object %s: %+v", code, a.Results)
		}
		if p, b := a.Results[0].Point, a.Results[0].BBox; (p == nil) == (b == nil) {
			t.Errorf("object %s: point %v bbox %v, want one", code, p, b)
		}
		a = searchFor(t, e, "types=object&limit=100&q="+code[:len(code)-3])
		if !slices.Contains(a.codes("object"), code) || a.Results[0].Score != 2 {
			t.Errorf("object prefix %s: %v", code[:len(code)-3], a.codes(""))
		}
	}
	// Events by code and by a piece of the description.
	ev := sqlStrings(t, e.store, `SELECT code || '|' || description FROM events ORDER BY code LIMIT 1`)[0]
	code, desc, _ := strings.Cut(ev, "|")
	a = searchFor(t, e, "types=event&q="+code)
	if len(a.Results) != 1 || a.Results[0].Code != code || a.Results[0].Score != 3 || a.Results[0].Point == nil || a.Results[0].Label == "" {
		t.Errorf("event %s: %+v", code, a.Results)
	}
	piece := string([]rune(desc)[2:6])
	a = searchFor(t, e, "types=event&limit=100&q="+url.QueryEscape(piece))
	want := sqlStrings(t, e.store, `SELECT code FROM events WHERE description LIKE '%' || $1 || '%'`, piece)
	if !slices.Contains(a.codes("event"), code) || len(a.Results) != min(len(want), 100) {
		t.Errorf("event text %q: %d hits, SQL %d", piece, len(a.Results), len(want))
	}
}

func TestSearchScoped(t *testing.T) {
	t.Parallel()
	e := searchEnv(t)
	inA := e.as(t, mintToken(t, e.store, "search-a", auth.Viewer, streetA))
	inB := e.as(t, mintToken(t, e.store, "search-b", auth.Viewer, streetB))
	a := searchFor(t, inA, "q="+url.QueryEscape("梅沙")+"&limit=100")
	if len(a.Results) == 0 || a.Results[0].Code != streetA {
		t.Fatalf("scoped to %s: %v", streetA, a.codes(""))
	}
	for _, r := range a.Results {
		if r.Type == "unit" && !strings.HasPrefix(r.Code, streetA) {
			t.Errorf("scoped to %s, found unit %s", streetA, r.Code)
		}
	}
	if a := searchFor(t, inB, "q="+url.QueryEscape("梅沙")+"&types=unit"); len(a.Results) != 0 {
		t.Errorf("scoped to %s, 梅沙 found %v", streetB, a.codes(""))
	}
	// Objects and events by the grid they lie in.
	a = searchFor(t, inB, "q=4403&types=object,event&limit=100")
	if len(a.Results) == 0 {
		t.Fatal("scoped to streetB: no object or event")
	}
	for _, r := range a.Results {
		table := map[string]string{"object": "objects", "event": "events"}[r.Type]
		if g := sqlStrings(t, e.store, `SELECT coalesce(grid_code, '') FROM `+table+` WHERE code = $1`, r.Code)[0]; !strings.HasPrefix(g, streetB) {
			t.Errorf("scoped to %s, found %s %s in grid %q", streetB, r.Type, r.Code, g)
		}
	}
	outside := sqlStrings(t, e.store, `SELECT code FROM objects WHERE grid_code NOT LIKE $1 || '%' ORDER BY code LIMIT 1`, streetB)[0]
	if a := searchFor(t, inB, "q="+outside); len(a.Results) != 0 {
		t.Errorf("scoped to %s, found %v for an object outside", streetB, a.codes(""))
	}
	expectProblem(t, e.as(t, "").get("/v1/search?q=4403"), 401, typeUnauthorized, "")
}

func TestSearchBadParams(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	before := tableState(t, e)
	for _, tc := range []struct {
		query, param, detail string
	}{
		{"", "q", "q is required"},
		{"q=%20%20", "q", "q is required"},
		{"q=" + strings.Repeat("梅", 101), "q", "101 characters; at most 100"},
		{"q=a&limit=0", "limit", "out of range [1, 100]"},
		{"q=a&limit=101", "limit", "out of range [1, 100]"},
		{"q=a&limit=x", "limit", "not an integer"},
		{"q=a&types=unit,grid", "types", `"grid" is not unit, object or event`},
		{"q=a&types=", "", ""},
	} {
		r := e.get("/v1/search?" + tc.query)
		if tc.param == "" {
			expect(t, r, 200, "application/json", nil)
			continue
		}
		expectProblem(t, r, 400, "https://gridmap.dev/problems/bad-parameter", tc.param, tc.detail)
	}
	expectUnchanged(t, e, before, "bad searches")
}

// TestSearchCRS: bbox and point in the CRS asked for, named by Content-Crs.
func TestSearchCRS(t *testing.T) {
	t.Parallel()
	e := searchEnv(t)
	code := sqlStrings(t, e.store, `SELECT code FROM events ORDER BY code LIMIT 1`)[0]
	query := "q=" + url.QueryEscape("梅沙街道") + "&limit=1"
	ev := "types=event&q=" + code
	wgs, wgsEv := searchFor(t, e, query), searchFor(t, e, ev)
	for _, crs := range []geo.CRS{geo.GCJ02, geo.BD09} {
		r := e.get("/v1/search?" + query + "&crs=" + string(crs))
		var a searchAnswer
		expect(t, r, 200, "application/json", &a)
		if h := r.Header.Get("Content-Crs"); h != "<"+crs.URI()+">" {
			t.Errorf("Content-Crs %q, want <%s>", h, crs.URI())
		}
		b, w := a.Results[0].BBox, wgs.Results[0].BBox
		x, y := geo.FromWGS84(crs, w[0], w[1])
		if b[0] != x || b[1] != y || b[0] == w[0] {
			t.Errorf("%s bbox %v from WGS-84 %v", crs, b, w)
		}
		a = searchFor(t, e, ev+"&crs="+crs.URI())
		p, pw := a.Results[0].Point, wgsEv.Results[0].Point
		if x, y := geo.FromWGS84(crs, pw[0], pw[1]); p[0] != x || p[1] != y {
			t.Errorf("%s point %v from WGS-84 %v", crs, p, pw)
		}
	}
	if r := e.get("/v1/search?" + query); r.Header.Get("Content-Crs") != "<"+geo.CRS84URI+">" {
		t.Errorf("WGS-84 Content-Crs %q", r.Header.Get("Content-Crs"))
	}
	expectProblem(t, e.get("/v1/search?q=a&crs=epsg:3857"), 400, "https://gridmap.dev/problems/bad-parameter", "crs", "crs")
}

// BenchmarkHTTPSearch: GET /v1/search on the full demo city from 2×GOMAXPROCS
// clients, each request another query of its kind: the first two
// characters of a community's name (a short Chinese query), a street's
// whole name, the first 9 digits of a grid's code (a street's code: its
// 250-odd units match).
func BenchmarkHTTPSearch(b *testing.B) {
	benchServer(b)
	s := pgtest.SharedFullDemo(b)
	for _, bc := range []struct{ name, sql string }{
		{"community-2-chars", `SELECT DISTINCT left(name, 2) FROM units WHERE valid_to IS NULL AND level = 'community'`},
		{"street-name", `SELECT name FROM units WHERE valid_to IS NULL AND level = 'street'`},
		{"code-9-digits", `SELECT DISTINCT left(code, 9) FROM units WHERE valid_to IS NULL AND level = 'grid'`},
	} {
		rows, err := s.Pool.Query(context.Background(), bc.sql)
		if err != nil {
			b.Fatal(err)
		}
		queries, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name, func(b *testing.B) {
			benchGets(b, "", "searches/s", func(i int) string { return "/v1/search?q=" + url.QueryEscape(queries[i%len(queries)]) })
		})
	}
}
