package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"gridmap/api"
	"gridmap/data/pgtest"
)

type ref struct {
	Code string `json:"code"`
	Name string `json:"name"`
}

type chain struct {
	District  *ref `json:"district"`
	Street    *ref `json:"street"`
	Community *ref `json:"community"`
	Grid      *ref `json:"grid"`
}

type location struct {
	Lon float64 `json:"lon"`
	Lat float64 `json:"lat"`
	chain
	Layers map[string]chain `json:"layers"`
}

func (c chain) codes() [4]string {
	var out [4]string
	for i, r := range []*ref{c.District, c.Street, c.Community, c.Grid} {
		if r != nil {
			out[i] = r.Code
		}
	}
	return out
}

// num writes a float so that the server parses the very same float64.
func num(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func locatePath(x, y float64) string { return "/v1/locate?lon=" + num(x) + "&lat=" + num(y) }

// wantChain asks PostGIS for the unit of each base level covering the point,
// lowest code first (the edge rule).
func wantChain(t *testing.T, e *apiEnv, layer string, x, y float64) [4]string {
	t.Helper()
	var out [4]string
	for i, level := range []string{"district", "street", "community", "grid"} {
		codes := sqlStrings(t, e.store, `SELECT code FROM units WHERE valid_to IS NULL AND layer=$1 AND level=$2
			AND ST_Covers(geom, ST_SetSRID(ST_MakePoint($3, $4), 4326)) ORDER BY code LIMIT 1`, layer, level, x, y)
		if len(codes) == 1 {
			out[i] = codes[0]
		}
	}
	return out
}

func unitName(t *testing.T, e *apiEnv, code string) string {
	t.Helper()
	return sqlStrings(t, e.store, `SELECT name FROM units WHERE valid_to IS NULL AND layer='base' AND code=$1`, code)[0]
}

func TestLocateInside(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	grids := sqlStrings(t, e.store, `SELECT code FROM units WHERE level='grid' ORDER BY code`)
	for _, code := range []string{grids[0], grids[len(grids)/2], grids[len(grids)-1]} {
		t.Run(code, func(t *testing.T) {
			x, y, _ := demoPoint(t, e, code)
			r := e.get(locatePath(x, y))
			var loc location
			expect(t, r, http.StatusOK, ctJSON, &loc)
			if loc.Lon != x || loc.Lat != y {
				t.Errorf("echoed point %v %v, want %v %v", loc.Lon, loc.Lat, x, y)
			}
			want := [4]string{demoDistrict, code[:9], code[:12], code}
			if got := loc.codes(); got != want {
				t.Fatalf("chain %v, want %v", got, want)
			}
			if pg := wantChain(t, e, "base", x, y); pg != want {
				t.Errorf("PostGIS says %v", pg)
			}
			for i, r := range []*ref{loc.District, loc.Street, loc.Community, loc.Grid} {
				if r.Name == "" || r.Name != unitName(t, e, r.Code) {
					t.Errorf("level %d: name %q for %s", i, r.Name, r.Code)
				}
				if i > 0 {
					parent := loc.codes()[i-1]
					if !strings.HasPrefix(r.Code, parent) {
						t.Errorf("%s is not under %s", r.Code, parent)
					}
				}
			}
			if loc.District.Name != demoDistrictZH {
				t.Errorf("district name %q", loc.District.Name)
			}
			// "layers" is an object, empty when there is only the base layer.
			var raw map[string]json.RawMessage
			if err := json.Unmarshal(r.Body, &raw); err != nil {
				t.Fatal(err)
			}
			if string(raw["layers"]) != "{}" {
				t.Errorf(`"layers" is %s, want {}`, raw["layers"])
			}
		})
	}
}

func TestLocateOutside(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	for _, p := range [][2]float64{{0, 0}, {-180, -90}, {180, 90}, {114.0, 22.0}} {
		r := e.get(locatePath(p[0], p[1]))
		expect(t, r, http.StatusOK, ctJSON, nil)
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(r.Body, &raw); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"district", "street", "community", "grid"} {
			if v, ok := raw[k]; !ok || string(v) != "null" {
				t.Errorf("%v: %q is %s, want null", p, k, v)
			}
		}
		if string(raw["layers"]) != "{}" {
			t.Errorf("%v: layers %s", p, raw["layers"])
		}
	}
	// An empty store answers too.
	e2 := newEnv(t, pgtest.New(t), api.Options{})
	var loc location
	expect(t, e2.get("/v1/locate?lon=114.2&lat=22.6"), http.StatusOK, ctJSON, &loc)
	if loc.codes() != [4]string{} || len(loc.Layers) != 0 {
		t.Errorf("empty store: %+v", loc)
	}
}

func TestLocateBadParams(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pgtest.New(t), api.Options{})
	cases := []struct{ query, param, inDetail string }{
		{"", "lon", "required"},
		{"lat=22.5", "lon", "required"},
		{"lon=&lat=22.5", "lon", "required"},
		{"lon=114", "lat", "required"},
		{"lon=abc&lat=22.5", "lon", `"abc"`},
		{"lon=114&lat=abc", "lat", `"abc"`},
		{"lon=200&lat=22.5", "lon", "out of range"},
		{"lon=-180.0001&lat=22.5", "lon", "out of range"},
		{"lon=114&lat=-91", "lat", "out of range"},
		{"lon=114&lat=90.5", "lat", "out of range"},
		{"lon=NaN&lat=22", "lon", "not a number"},
		{"lon=114&lat=Inf", "lat", "not a number"},
		{"lon=114,1&lat=22", "lon", "not a number"},
		{"lon=abc&lat=abc", "lon", `"abc"`}, // the first bad one is named
	}
	for _, c := range cases {
		t.Run(c.query, func(t *testing.T) {
			p := expectProblem(t, e.get("/v1/locate?"+c.query), http.StatusBadRequest, typeBadParam, c.param, c.inDetail)
			if !strings.Contains(p.Detail, c.param) || p.Instance != "/v1/locate" {
				t.Errorf("detail %q instance %q", p.Detail, p.Instance)
			}
		})
	}
}

// sharedVertex finds a vertex covered by exactly two base grids, preferably
// of different communities, inside the district (a vertex on the district's
// outer edge may lie a rounding error outside it, and then PostGIS finds no
// district or street there).
func sharedVertex(t *testing.T, e *apiEnv) (x, y float64, grids []string) {
	t.Helper()
	var codes []string
	err := e.store.Pool.QueryRow(context.Background(), `
		WITH g AS (SELECT code, geom FROM units WHERE valid_to IS NULL AND layer='base' AND level='grid'),
		v AS (SELECT DISTINCT ST_X(d.geom) AS x, ST_Y(d.geom) AS y FROM g, ST_DumpPoints(g.geom) d),
		c AS (
			SELECT v.x, v.y, array_agg(g.code ORDER BY g.code) AS codes
			FROM v JOIN g ON ST_Covers(g.geom, ST_SetSRID(ST_MakePoint(v.x, v.y), 4326))
			GROUP BY v.x, v.y
		)
		SELECT x, y, codes FROM c
		WHERE cardinality(codes) = 2
		  AND (SELECT count(DISTINCT level) FROM units u WHERE u.valid_to IS NULL AND u.layer='base' AND u.level <> 'grid'
		       AND ST_Covers(u.geom, ST_SetSRID(ST_MakePoint(x, y), 4326))) = 3
		ORDER BY left(codes[1], 12) = left(codes[2], 12), codes[1], x, y
		LIMIT 1`).Scan(&x, &y, &codes)
	if err != nil {
		t.Fatalf("no vertex shared by two grids: %v", err)
	}
	return x, y, codes
}

func TestLocateSharedVertex(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	x, y, grids := sharedVertex(t, e)
	t.Logf("vertex %s %s of %v", num(x), num(y), grids)
	var loc location
	expect(t, e.get(locatePath(x, y)), http.StatusOK, ctJSON, &loc)
	if loc.Grid == nil || loc.Grid.Code != grids[0] {
		t.Fatalf("grid %+v on the vertex shared by %v, want the lowest code %s", loc.Grid, grids, grids[0])
	}
	want := wantChain(t, e, "base", x, y)
	if got := loc.codes(); got != want {
		t.Errorf("chain %v, PostGIS with the edge rule says %v", got, want)
	}
	if got := loc.codes(); got[2] != got[3][:12] || got[1] != got[2][:9] || got[0] != got[1][:6] {
		t.Errorf("chain %v is not consistent", got)
	}
}

func TestLocateBatch(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	grids := sqlStrings(t, e.store, `SELECT code FROM units WHERE level='grid' ORDER BY code`)
	x1, y1, _ := demoPoint(t, e, grids[len(grids)-1])
	x2, y2, _ := demoPoint(t, e, grids[3])
	vx, vy, _ := sharedVertex(t, e)
	pts := [][2]float64{{x1, y1}, {0, 0}, {vx, vy}, {x2, y2}, {x1, y1}}
	body, _ := json.Marshal(map[string]any{"points": pts})
	var batch struct {
		Results []json.RawMessage `json:"results"`
	}
	expect(t, e.post("/v1/locate", string(body)), http.StatusOK, ctJSON, &batch)
	if len(batch.Results) != len(pts) {
		t.Fatalf("%d results for %d points", len(batch.Results), len(pts))
	}
	for i, p := range pts {
		var one, got any
		r := e.get(locatePath(p[0], p[1]))
		expect(t, r, http.StatusOK, ctJSON, &one)
		if err := json.Unmarshal(batch.Results[i], &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, one) {
			t.Errorf("results[%d] = %s\nGET answers %s", i, batch.Results[i], r.Body)
		}
	}
	// Results follow the input order.
	var locs struct {
		Results []location `json:"results"`
	}
	_ = json.Unmarshal(mustJSON(t, batch), &locs)
	if locs.Results[0].Grid == nil || locs.Results[0].Grid.Code != grids[len(grids)-1] || locs.Results[1].Grid != nil ||
		locs.Results[3].Grid == nil || locs.Results[3].Grid.Code != grids[3] {
		t.Errorf("results out of order: %+v", locs.Results)
	}

	var empty map[string]json.RawMessage
	expect(t, e.post("/v1/locate", `{"points":[]}`), http.StatusOK, ctJSON, &empty)
	if string(empty["results"]) != "[]" {
		t.Errorf("no points: results %s, want []", empty["results"])
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLocateBatchErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pgtest.New(t), api.Options{MaxLocatePoints: 5})
	points := func(n int) string {
		ps := make([]string, n)
		for i := range ps {
			ps[i] = "[114.1,22.5]"
		}
		return `{"points":[` + strings.Join(ps, ",") + `]}`
	}
	expect(t, e.post("/v1/locate", points(5)), http.StatusOK, ctJSON, nil)

	for _, body := range []string{
		points(6),
		points(5000), // over the byte bound as well
		`{"points":[` + strings.Repeat(" ", 10000) + `[114.1,22.5]]}`,
	} {
		p := expectProblem(t, e.post("/v1/locate", body), http.StatusRequestEntityTooLarge, typeTooLarge, "", "at most 5 points")
		if p.Limit == nil || *p.Limit != 5 {
			t.Errorf("limit %v, want 5", p.Limit)
		}
	}
	expectProblem(t, e.post("/v1/locate", points(6)), http.StatusRequestEntityTooLarge, typeTooLarge, "", "this one has 6")

	cases := []struct {
		name, body string
		status     int
		typ, param string
		inDetail   string
	}{
		{"malformed JSON", `{"points":[[114.1,22.5],}`, http.StatusBadRequest, typeBadRequest, "", "points"},
		{"empty body", ``, http.StatusBadRequest, typeBadRequest, "", "points"},
		{"an array", `[[114.1,22.5]]`, http.StatusBadRequest, typeBadRequest, "", "points"},
		{"points is not an array", `{"points":{"a":1}}`, http.StatusBadRequest, typeBadRequest, "", "points"},
		{"no points", `{}`, http.StatusBadRequest, typeBadParam, "points", "points"},
		{"null points", `{"points":null}`, http.StatusBadRequest, typeBadParam, "points", "points"},
		{"one number", `{"points":[[114.1,22.5],[114.1]]}`, http.StatusBadRequest, typeBadParam, "points[1]", "points[1]"},
		{"three numbers", `{"points":[[114.1,22.5,3]]}`, http.StatusBadRequest, typeBadParam, "points[0]", "[lon, lat]"},
		{"a string", `{"points":[[114.1,22.5],[114.1,22.5],"here"]}`, http.StatusBadRequest, typeBadParam, "points[2]", `"here"`},
		{"strings", `{"points":[["114.1","22.5"]]}`, http.StatusBadRequest, typeBadParam, "points[0]", "two numbers"},
		{"an object", `{"points":[{"lon":114.1,"lat":22.5}]}`, http.StatusBadRequest, typeBadParam, "points[0]", "[lon, lat]"},
		{"null point", `{"points":[null]}`, http.StatusBadRequest, typeBadParam, "points[0]", "points[0]"},
		{"longitude out of range", `{"points":[[114.1,22.5],[200,22.5]]}`, http.StatusBadRequest, typeBadParam, "points[1]", "longitude 200"},
		{"latitude out of range", `{"points":[[114.1,-91]]}`, http.StatusBadRequest, typeBadParam, "points[0]", "latitude -91"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			expectProblem(t, e.post("/v1/locate", c.body), c.status, c.typ, c.param, c.inDetail)
		})
	}
}

// TestLocateReadYourWrites: an import through the API is located by the
// very next request, in the base layer and in a new layer.
func TestLocateReadYourWrites(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	var loc location
	expect(t, e.get("/v1/locate?lon=113.02&lat=22.05"), http.StatusOK, ctJSON, &loc)
	if loc.District != nil {
		t.Fatalf("located before the import: %+v", loc)
	}
	expect(t, e.post("/v1/units:import", testCity), http.StatusCreated, ctJSON, nil)
	loc = location{}
	expect(t, e.get("/v1/locate?lon=113.02&lat=22.05"), http.StatusOK, ctJSON, &loc)
	if got := loc.codes(); got != [4]string{"440399", "440399001", "", ""} {
		t.Errorf("right after the import: %v", got)
	}
	if loc.Street == nil || loc.Street.Name != "unit 440399001" {
		t.Errorf("street %+v", loc.Street)
	}
	var batch struct {
		Results []location `json:"results"`
	}
	expect(t, e.post("/v1/locate", `{"points":[[113.07,22.05]]}`), http.StatusOK, ctJSON, &batch)
	if len(batch.Results) != 1 || batch.Results[0].codes() != [4]string{"440399", "440399002", "", ""} {
		t.Errorf("batch after the import: %+v", batch.Results)
	}

	// A boundary edit moves the point at once.
	moved := featureCollection(unitFeat("440399001", "street", square(113.0, 22.0, 113.01, 22.1)),
		unitFeat("440399002", "street", square(113.01, 22.0, 113.1, 22.1)))
	expect(t, e.post("/v1/units:import", moved), http.StatusOK, ctJSON, nil)
	loc = location{}
	expect(t, e.get("/v1/locate?lon=113.02&lat=22.05"), http.StatusOK, ctJSON, &loc)
	if loc.Street == nil || loc.Street.Code != "440399002" {
		t.Errorf("after the edit the street is %+v, want 440399002", loc.Street)
	}

	// A new layer shows under "layers".
	x, y, grid := demoPoint(t, e, "")
	expect(t, e.post("/v1/units:import?layer=police&tolerance=100000", policeLayer(x, y)), http.StatusCreated, ctJSON, nil)
	for _, c := range []struct {
		dx     float64
		street string
	}{{-0.005, "440308001"}, {0.005, "440308002"}, {0.00005, "440308001"}} { // the last one lies in both
		loc = location{}
		expect(t, e.get(locatePath(x+c.dx, y)), http.StatusOK, ctJSON, &loc)
		police, ok := loc.Layers["police"]
		if !ok || len(loc.Layers) != 1 {
			t.Fatalf("layers %+v, want police", loc.Layers)
		}
		if got := police.codes(); got != [4]string{"440308", c.street, "", ""} {
			t.Errorf("dx %g: police chain %v, want 440308 %s", c.dx, got, c.street)
		}
		if pg := wantChain(t, e, "police", x+c.dx, y); pg != police.codes() {
			t.Errorf("dx %g: PostGIS says %v", c.dx, pg)
		}
		if pg := wantChain(t, e, "base", x+c.dx, y); pg != loc.codes() {
			t.Errorf("dx %g: base chain %v, PostGIS says %v", c.dx, loc.codes(), pg)
		}
	}
	loc = location{}
	expect(t, e.get(locatePath(x, y)), http.StatusOK, ctJSON, &loc)
	if loc.Grid == nil || loc.Grid.Code != grid {
		t.Errorf("base grid %+v, want %s", loc.Grid, grid)
	}
	loc = location{}
	expect(t, e.get("/v1/locate?lon=0&lat=0"), http.StatusOK, ctJSON, &loc)
	if p, ok := loc.Layers["police"]; !ok || p.codes() != [4]string{} {
		t.Errorf("outside: layers %+v, want police with nulls", loc.Layers)
	}
}

// follower is a second server on the same store that follows unit changes
// through LISTEN/NOTIFY, like another process would.
func follower(t *testing.T, e *apiEnv) (*apiEnv, func()) {
	t.Helper()
	e2 := newEnv(t, e.store, api.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e2.srv.FollowUnits(ctx)
	}()
	stop := func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Errorf("FollowUnits did not return after its context ended")
		}
	}
	t.Cleanup(stop)
	return e2, stop
}

// listenerPID waits until a session of the store LISTENs on the units
// channel and returns its pid.
func listenerPID(t *testing.T, e *apiEnv, notPID int) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		var pids []int
		rows, err := e.store.Pool.Query(context.Background(), `SELECT pid FROM pg_stat_activity
			WHERE datname = current_database() AND query LIKE 'LISTEN %units%' AND pid <> $1`, notPID)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var p int
			if err := rows.Scan(&p); err != nil {
				t.Fatal(err)
			}
			pids = append(pids, p)
		}
		rows.Close()
		if len(pids) == 1 {
			return pids[0]
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no session LISTENs on the units channel within 5 s")
	return 0
}

// waitLocated polls e's locator for up to 5 s until the point is in the
// district; it says how long that took.
func waitLocated(t *testing.T, e *apiEnv, lon, lat float64, district string) (time.Duration, bool) {
	t.Helper()
	start := time.Now()
	for time.Since(start) < 5*time.Second {
		var loc location
		expect(t, e.get(locatePath(lon, lat)), http.StatusOK, ctJSON, &loc)
		if loc.District != nil && loc.District.Code == district {
			return time.Since(start), true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start), false
}

// TestLocateCrossProcessFreshness: a unit imported through one server is
// located by another one on the same database, without a restart.
func TestLocateCrossProcessFreshness(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	e2, _ := follower(t, e)
	listenerPID(t, e, 0)
	var loc location
	expect(t, e2.get("/v1/locate?lon=113.02&lat=22.05"), http.StatusOK, ctJSON, &loc)
	if loc.District != nil {
		t.Fatalf("located before the import: %+v", loc)
	}
	expect(t, e.post("/v1/units:import", testCity), http.StatusCreated, ctJSON, nil)
	took, ok := waitLocated(t, e2, 113.02, 22.05, "440399")
	if !ok {
		t.Fatalf("the second server did not locate the imported unit within %v", took)
	}
	t.Logf("the second server saw the import after %v", took)
	// A dry run changes nothing anywhere.
	expect(t, e.post("/v1/units:validate", featureCollection(unitFeat("440398", "district", square(112.0, 22.0, 112.1, 22.1)))), http.StatusOK, ctJSON, nil)
	time.Sleep(200 * time.Millisecond)
	loc = location{}
	expect(t, e2.get("/v1/locate?lon=112.05&lat=22.05"), http.StatusOK, ctJSON, &loc)
	if loc.District != nil {
		t.Errorf("a validated unit is located by the follower: %+v", loc.District)
	}
}

// TestLocateFreshnessAfterLostListener: FollowUnits promises to refresh
// after a lost connection, when notices may have been missed. The listening
// session is killed, a unit is imported while it is down, and the follower
// must still see it once it has reconnected.
func TestLocateFreshnessAfterLostListener(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	e2, _ := follower(t, e)
	pid := listenerPID(t, e, 0)
	var killed bool
	if err := e.store.Pool.QueryRow(context.Background(), `SELECT pg_terminate_backend($1)`, pid).Scan(&killed); err != nil || !killed {
		t.Fatalf("terminate the listener %d: %v %v", pid, killed, err)
	}
	// Imported while nobody listens: its notice is lost.
	expect(t, e.post("/v1/units:import", testCity), http.StatusCreated, ctJSON, nil)
	newPID := listenerPID(t, e, pid)
	t.Logf("listener %d killed, %d listening again", pid, newPID)
	if took, ok := waitLocated(t, e2, 113.02, 22.05, "440399"); !ok {
		t.Fatalf("after its listener reconnected the follower still does not locate the unit imported meanwhile (waited %v)", took)
	}
	// Later changes arrive through the new listener as before.
	expect(t, e.post("/v1/units:import", featureCollection(unitFeat("440398", "district", square(112.0, 22.0, 112.1, 22.1)))), http.StatusCreated, ctJSON, nil)
	if took, ok := waitLocated(t, e2, 112.05, 22.05, "440398"); !ok {
		t.Errorf("the follower missed an import after reconnecting (waited %v)", took)
	}
}
