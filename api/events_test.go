package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gridmap/data"
	"gridmap/geo"
	"gridmap/grid"
)

// Problem types of events (docs/api.md).
const (
	typeInvalid     = "https://gridmap.dev/problems/invalid"
	typeOutside     = "https://gridmap.dev/problems/outside-grids"
	typeIllegalMove = "https://gridmap.dev/problems/illegal-transition"
	typeKeyReused   = "https://gridmap.dev/problems/idempotency-key-reused"
)

// evFeature is an event as the API answers it.
type evFeature struct {
	Type     string `json:"type"`
	ID       string `json:"id"`
	Geometry struct {
		Type        string     `json:"type"`
		Coordinates [2]float64 `json:"coordinates"`
	} `json:"geometry"`
	Properties evProps `json:"properties"`
}

type evProps struct {
	Code           string        `json:"code"`
	Class          string        `json:"class"`
	ClassName      string        `json:"class_name"`
	Status         string        `json:"status"`
	CRS            string        `json:"crs"`
	InputLon       float64       `json:"input_lon"`
	InputLat       float64       `json:"input_lat"`
	GridCode       string        `json:"grid_code"`
	Location       grid.Location `json:"location"`
	Department     string        `json:"department"`
	DepartmentName string        `json:"department_name"`
	Description    string        `json:"description"`
	Source         string        `json:"source"`
	Reporter       string        `json:"reporter"`
	Media          []string      `json:"media"`
	OccurredAt     *time.Time    `json:"occurred_at"`
	ReportedAt     time.Time     `json:"reported_at"`
	Deadline       time.Time     `json:"deadline"`
	HandledAt      *time.Time    `json:"handled_at"`
	ClosedAt       *time.Time    `json:"closed_at"`
	UpdatedAt      time.Time     `json:"updated_at"`
	Version        int           `json:"version"`
	Overdue        bool          `json:"overdue"`
	Log            []evLogEntry  `json:"log"`
}

type evLogEntry struct {
	N          int       `json:"n"`
	From       string    `json:"from"`
	To         string    `json:"to"`
	Actor      string    `json:"actor"`
	Note       string    `json:"note"`
	Department string    `json:"department"`
	At         time.Time `json:"at"`
}

type evCollection struct {
	Type           string      `json:"type"`
	Features       []evFeature `json:"features"`
	NumberReturned int         `json:"numberReturned"`
	Links          []struct {
		Rel  string `json:"rel"`
		Href string `json:"href"`
		Type string `json:"type"`
	} `json:"links"`
}

func (c evCollection) next() string {
	for _, l := range c.Links {
		if l.Rel == "next" {
			return l.Href
		}
	}
	return ""
}

// evProblem is a problem with the extensions of event answers.
type evProblem struct {
	problem
	Allowed     []string `json:"allowed"`
	From        string   `json:"from"`
	To          string   `json:"to"`
	ETag        string   `json:"etag"`
	Event       string   `json:"event"`
	Lon         float64  `json:"lon"`
	Lat         float64  `json:"lat"`
	NearestGrid *struct {
		Code      string  `json:"code"`
		Name      string  `json:"name"`
		DistanceM float64 `json:"distance_m"`
	} `json:"nearest_grid"`
}

func expectEvProblem(t *testing.T, r reply, status int, typ, param string, inDetail ...string) evProblem {
	t.Helper()
	expectProblem(t, r, status, typ, param, inDetail...)
	var p evProblem
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// evReport is the body of POST /v1/events.
func evReport(class string, lon, lat float64, more ...any) string {
	m := map[string]any{"class": class, "lon": lon, "lat": lat, "source": "grid_worker"}
	for i := 0; i+1 < len(more); i += 2 {
		if more[i+1] == nil {
			delete(m, more[i].(string))
		} else {
			m[more[i].(string)] = more[i+1]
		}
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// evGrids lists the demo's grids with a point inside each.
type evGrid struct {
	code     string
	lon, lat float64
}

func evGridPoints(t *testing.T, s *data.Store) []evGrid {
	t.Helper()
	rows, err := s.Pool.Query(context.Background(), `SELECT code, ST_X(p), ST_Y(p) FROM (SELECT code, ST_PointOnSurface(geom) p
		FROM units WHERE valid_to IS NULL AND layer = 'base' AND level = 'grid') x ORDER BY code`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []evGrid
	for rows.Next() {
		var g evGrid
		if err := rows.Scan(&g.code, &g.lon, &g.lat); err != nil {
			t.Fatal(err)
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil || len(out) == 0 {
		t.Fatalf("grids: %d, %v", len(out), err)
	}
	return out
}

// reportEvent posts a report and expects it created.
func (e *apiEnv) reportEvent(body string, header ...string) evFeature {
	e.t.Helper()
	r := e.with(http.MethodPost, "/v1/events", body, header...)
	var f evFeature
	expect(e.t, r, http.StatusCreated, ctGeoJSON, &f)
	if loc := r.Header.Get("Location"); loc != "/v1/events/"+f.ID {
		e.t.Errorf("Location %q for event %s", loc, f.ID)
	}
	if tag := r.Header.Get("ETag"); tag != fmt.Sprintf(`"%d"`, f.Properties.Version) {
		e.t.Errorf("ETag %q for version %d", tag, f.Properties.Version)
	}
	return f
}

// move posts a transition and returns the answer.
func (e *apiEnv) move(code, to string, more ...string) reply {
	e.t.Helper()
	m := map[string]string{"to": to}
	var header []string
	for i := 0; i+1 < len(more); i += 2 {
		if strings.HasPrefix(more[i], "If-") {
			header = append(header, more[i], more[i+1])
		} else {
			m[more[i]] = more[i+1]
		}
	}
	b, _ := json.Marshal(m)
	return e.with(http.MethodPost, "/v1/events/"+code+"/transitions", string(b), header...)
}

func (e *apiEnv) moved(code, to string, more ...string) evFeature {
	e.t.Helper()
	var f evFeature
	r := e.move(code, to, more...)
	expect(e.t, r, http.StatusOK, ctGeoJSON, &f)
	if f.Properties.Status != to {
		e.t.Fatalf("moved to %s, answered %s", to, f.Properties.Status)
	}
	if tag := r.Header.Get("ETag"); tag != fmt.Sprintf(`"%d"`, f.Properties.Version) {
		e.t.Errorf("ETag %q for version %d", tag, f.Properties.Version)
	}
	return f
}

func (e *apiEnv) getEvent(code string) evFeature {
	e.t.Helper()
	var f evFeature
	expect(e.t, e.get("/v1/events/"+code), http.StatusOK, ctGeoJSON, &f)
	return f
}

func countRows(t *testing.T, s *data.Store, table string) int {
	t.Helper()
	return sqlInt(t, s, `SELECT count(*) FROM `+table)
}

// cityCalendar builds the working calendar GET /v1/calendar describes.
func cityCalendar(t *testing.T, e *apiEnv) *grid.Calendar {
	t.Helper()
	var c data.Calendar
	expect(t, e.get("/v1/calendar"), http.StatusOK, ctJSON, &c)
	loc, err := time.LoadLocation(c.Timezone)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := grid.ParsePeriods(c.Periods)
	if err != nil {
		t.Fatal(err)
	}
	over := map[string]grid.DayKind{}
	for _, d := range c.Days {
		over[d.Day] = d.Kind
	}
	cal, err := grid.NewCalendar(loc, ps, over)
	if err != nil {
		t.Fatal(err)
	}
	return cal
}

func TestReportEventAPI(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	grids := evGridPoints(t, e.store)
	g := grids[10]
	occurred := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	before := time.Now()
	f := e.reportEvent(evReport("0102", g.lon, g.lat, "description", "路边垃圾堆放", "reporter", "李四", "source", "app",
		"media", []string{"https://media.example/a.jpg", "http://media.example/b.mp4"}, "occurred_at", occurred.Format(time.RFC3339)))
	after := time.Now()
	p := f.Properties
	if f.Type != "Feature" || f.ID != p.Code || f.Geometry.Type != "Point" || f.Geometry.Coordinates != [2]float64{g.lon, g.lat} {
		t.Errorf("feature %s %s geometry %+v", f.Type, f.ID, f.Geometry)
	}
	if p.Class != "0102" || p.ClassName != "暴露垃圾" || p.Status != "reported" || p.CRS != "wgs84" || p.InputLon != g.lon || p.InputLat != g.lat ||
		p.GridCode != g.code || p.Department != "cgj" || p.DepartmentName != "城市管理和综合执法局" || p.Description != "路边垃圾堆放" ||
		p.Source != "app" || p.Reporter != "李四" || !reflect.DeepEqual(p.Media, []string{"https://media.example/a.jpg", "http://media.example/b.mp4"}) ||
		p.OccurredAt == nil || !p.OccurredAt.Equal(occurred) || p.Version != 1 || p.Overdue || p.HandledAt != nil || p.ClosedAt != nil {
		t.Errorf("properties %+v", p)
	}
	if p.ReportedAt.Before(before.Add(-time.Millisecond)) || p.ReportedAt.After(after.Add(time.Millisecond)) || !p.UpdatedAt.Equal(p.ReportedAt) {
		t.Errorf("reported_at %s, updated_at %s, not between %s and %s", p.ReportedAt, p.UpdatedAt, before, after)
	}
	if _, off := p.ReportedAt.Zone(); off != 8*3600 {
		t.Errorf("reported_at %s: want the city's time", p.ReportedAt)
	}
	// Location: the whole chain.
	if l := p.Location; l.Grid == nil || l.Grid.Code != g.code || l.Community == nil || l.Community.Code != g.code[:12] ||
		l.Street == nil || l.Street.Code != g.code[:9] || l.District == nil || l.District.Code != demoDistrict {
		t.Errorf("location %+v", p.Location)
	}
	// The code: district, local report date, sequence 1.
	wantCode := demoDistrict + p.ReportedAt.Format("20060102") + "000001"
	if p.Code != wantCode {
		t.Errorf("code %s, want %s", p.Code, wantCode)
	}
	// The deadline: 4 working hours of the city's calendar.
	cal := cityCalendar(t, e)
	if want, _ := cal.Deadline(p.ReportedAt, grid.Limit{Amount: 4, Unit: grid.WorkingHours}); !p.Deadline.Equal(want) {
		t.Errorf("deadline %s, want %s", p.Deadline, want)
	}
	if len(p.Log) != 1 || p.Log[0].N != 1 || p.Log[0].To != "reported" || p.Log[0].Actor != adminActor || !p.Log[0].At.Equal(p.ReportedAt) {
		t.Errorf("log %+v", p.Log)
	}
	// GET answers the same, with its ETag; a matching If-None-Match is a 304.
	r := e.get("/v1/events/" + p.Code)
	var got evFeature
	expect(t, r, http.StatusOK, ctGeoJSON, &got)
	if !reflect.DeepEqual(got.Properties.Log, p.Log) || got.Properties.Deadline != p.Deadline || got.Geometry != f.Geometry {
		t.Errorf("GET %+v\nPOST %+v", got, f)
	}
	tag := etagOf(t, r)
	if tag != `"1"` {
		t.Errorf("ETag %s, want \"1\"", tag)
	}
	expectNotModified(t, e.with(http.MethodGet, "/v1/events/"+p.Code, "", "If-None-Match", tag), tag)
	// The next report of the district and day takes the next number.
	f2 := e.reportEvent(evReport("0101", grids[100].lon, grids[100].lat))
	if day := f2.Properties.ReportedAt.Format("20060102"); day == p.ReportedAt.Format("20060102") && f2.ID != demoDistrict+day+"000002" {
		t.Errorf("second code %s, want %s", f2.ID, demoDistrict+day+"000002")
	}
	if f2.Properties.Reporter != "" || f2.Properties.Log[0].Actor != adminActor || f2.Properties.Media == nil || len(f2.Properties.Media) != 0 {
		t.Errorf("anonymous report: reporter %q, actor %q, media %v", f2.Properties.Reporter, f2.Properties.Log[0].Actor, f2.Properties.Media)
	}
}

// TestReportEventCRS: a position from a Chinese map is converted to
// WGS-84; the position as sent is kept.
func TestReportEventCRS(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	grids := evGridPoints(t, e.store)
	for i, tc := range []struct {
		crs, stored string
		from        func(lon, lat float64) (float64, float64)
		to          func(lon, lat float64) (float64, float64)
	}{
		{"gcj02", "gcj02", geo.WGS84ToGCJ02, geo.GCJ02ToWGS84},
		{"GCJ-02", "gcj02", geo.WGS84ToGCJ02, geo.GCJ02ToWGS84},
		{"bd09", "bd09", geo.WGS84ToBD09, geo.BD09ToWGS84},
		{"wgs84", "wgs84", func(x, y float64) (float64, float64) { return x, y }, func(x, y float64) (float64, float64) { return x, y }},
	} {
		g := grids[20+i*30]
		inLon, inLat := tc.from(g.lon, g.lat)
		wantLon, wantLat := tc.to(inLon, inLat)
		if tc.crs != "wgs84" && (inLon == g.lon || geo.OutsideChina(g.lon, g.lat)) {
			t.Fatalf("%s: no shift at %v", tc.crs, g)
		}
		f := e.reportEvent(evReport("0102", inLon, inLat, "crs", tc.crs))
		p := f.Properties
		if f.Geometry.Coordinates != [2]float64{wantLon, wantLat} {
			t.Errorf("%s: geometry %v, want the WGS-84 %v", tc.crs, f.Geometry.Coordinates, [2]float64{wantLon, wantLat})
		}
		if p.InputLon != inLon || p.InputLat != inLat || p.CRS != tc.stored {
			t.Errorf("%s: input %v,%v crs %q, want %v,%v %q", tc.crs, p.InputLon, p.InputLat, p.CRS, inLon, inLat, tc.stored)
		}
		if p.GridCode != g.code {
			t.Errorf("%s: located in %s, want %s", tc.crs, p.GridCode, g.code)
		}
		// As stored.
		var x, y float64
		if err := e.store.Pool.QueryRow(context.Background(), `SELECT ST_X(geom), ST_Y(geom) FROM events WHERE code = $1`, f.ID).Scan(&x, &y); err != nil || x != wantLon || y != wantLat {
			t.Errorf("%s: stored %v,%v (%v)", tc.crs, x, y, err)
		}
	}
	// The shift is real: the GCJ-02 position, taken as WGS-84, is tens to
	// hundreds of metres off (not necessarily in another grid, so only the
	// distance is checked).
	g := grids[5]
	gx, gy := geo.WGS84ToGCJ02(g.lon, g.lat)
	if d := metresApart(g.lon, g.lat, gx, gy); d < 100 || d > 1000 {
		t.Errorf("GCJ-02 shift %.0f m", d)
	}
}

// metresApart is the distance of two nearby points (equirectangular).
func metresApart(lon1, lat1, lon2, lat2 float64) float64 {
	const r = 6371008.8
	x := (lon2 - lon1) * math.Pi / 180 * math.Cos((lat1+lat2)/2*math.Pi/180)
	y := (lat2 - lat1) * math.Pi / 180
	return r * math.Hypot(x, y)
}

// TestReportEventBadInput: each bad report is a problem naming what is
// wrong, and none of them writes anything.
func TestReportEventBadInput(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	grids := evGridPoints(t, e.store)
	g := grids[0]
	var maxLon float64
	if err := e.store.Pool.QueryRow(context.Background(), `SELECT ST_XMax(ST_Extent(geom)) FROM units WHERE valid_to IS NULL`).Scan(&maxLon); err != nil {
		t.Fatal(err)
	}
	events, feed, keys := countRows(t, e.store, "events"), countRows(t, e.store, "event_feed"), countRows(t, e.store, "event_idempotency")
	ok := func(more ...any) string { return evReport("0102", g.lon, g.lat, more...) }
	many := make([]string, 21)
	for i := range many {
		many[i] = fmt.Sprintf("https://media.example/%d.jpg", i)
	}
	cases := []struct {
		name   string
		body   string
		header []string
		status int
		typ    string
		param  string
		detail []string
	}{
		{"malformed JSON", `{"class": "0102", "lon": `, nil, 400, typeBadRequest, "", nil},
		{"empty body", ``, nil, 400, typeBadRequest, "", nil},
		{"an array", `[1, 2]`, nil, 400, typeBadRequest, "", nil},
		{"trailing data", ok() + `{}`, nil, 400, typeBadRequest, "", nil},
		{"unknown member", ok("descripton", "typo"), nil, 422, typeInvalid, "descripton", []string{"descripton"}},
		{"lon a string", ok("lon", "114.2"), nil, 422, typeInvalid, "lon", nil},
		{"missing class", ok("class", nil), nil, 422, typeInvalid, "class", nil},
		{"missing lon", ok("lon", nil), nil, 422, typeInvalid, "lon", nil},
		{"missing lat", ok("lat", nil), nil, 422, typeInvalid, "lat", nil},
		{"missing source", ok("source", nil), nil, 422, typeInvalid, "source", nil},
		{"unknown source", ok("source", "pigeon"), nil, 422, typeInvalid, "source", []string{"pigeon", "grid_worker"}},
		{"lon out of range", ok("lon", 181.5), nil, 422, typeInvalid, "lon", []string{"181.5"}},
		{"lat out of range", ok("lat", -90.5), nil, 422, typeInvalid, "lat", []string{"-90.5"}},
		{"wrong crs", ok("crs", "epsg:3857"), nil, 422, typeInvalid, "crs", []string{"epsg:3857", "gcj02"}},
		{"unknown class", ok("class", "9999"), nil, 422, typeInvalid, "class", []string{"9999"}},
		{"unknown class with a key", ok("class", "9998"), []string{"Idempotency-Key", "bad-class-key"}, 422, typeInvalid, "class", nil},
		{"outside every grid", ok("lon", maxLon+0.2), nil, 422, typeOutside, "lon", []string{"outside every grid", "nearest grid"}},
		{"ftp media", ok("media", []string{"https://ok.example/a.jpg", "ftp://media.example/a.jpg"}), nil, 422, typeInvalid, "media[1]", []string{"ftp://"}},
		{"relative media", ok("media", []string{"/a.jpg"}), nil, 422, typeInvalid, "media[0]", nil},
		{"too many media", ok("media", many), nil, 422, typeInvalid, "media", []string{"21"}},
		{"occurred in the future", ok("occurred_at", time.Now().Add(time.Hour).Format(time.RFC3339)), nil, 422, typeInvalid, "occurred_at", []string{"future"}},
		{"occurred_at not a time", ok("occurred_at", "yesterday"), nil, 422, typeInvalid, "occurred_at", []string{"yesterday"}},
		{"description too long", ok("description", strings.Repeat("长", 4001)), nil, 422, typeInvalid, "description", []string{"4001"}},
		{"reporter too long", ok("reporter", strings.Repeat("r", 201)), nil, 422, typeInvalid, "reporter", nil},
		{"oversize body", ok("description", strings.Repeat("x", 70<<10)), nil, 413, typeTooLarge, "", nil},
		{"key too long", ok(), []string{"Idempotency-Key", strings.Repeat("k", 256)}, 400, typeBadRequest, "", []string{"Idempotency-Key"}},
		{"key not ASCII", ok(), []string{"Idempotency-Key", "ключ"}, 400, typeBadRequest, "", []string{"Idempotency-Key"}},
		{"key with a tab", ok(), []string{"Idempotency-Key", "a\tb"}, 400, typeBadRequest, "", []string{"Idempotency-Key"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.with(http.MethodPost, "/v1/events", c.body, c.header...)
			p := expectEvProblem(t, r, c.status, c.typ, c.param, c.detail...)
			if c.typ == typeOutside {
				if p.NearestGrid == nil || p.NearestGrid.Code == "" || p.NearestGrid.DistanceM <= 0 || p.Lon != maxLon+0.2 {
					t.Errorf("outside: nearest_grid %+v lon %v", p.NearestGrid, p.Lon)
				}
			}
		})
	}
	// Nothing half-written.
	if n := countRows(t, e.store, "events"); n != events {
		t.Errorf("%d events after bad reports, want %d", n, events)
	}
	if n := countRows(t, e.store, "event_feed"); n != feed {
		t.Errorf("%d feed rows after bad reports, want %d", n, feed)
	}
	if n := countRows(t, e.store, "event_idempotency"); n != keys {
		t.Errorf("%d idempotency keys after bad reports, want %d", n, keys)
	}
	if n := countRows(t, e.store, "event_log"); n != 0 {
		t.Errorf("%d log rows after bad reports", n)
	}
	// The wrong method.
	r := e.do(http.MethodDelete, "/v1/events", nil)
	expectProblem(t, r, http.StatusMethodNotAllowed, typeNotAllowed, "")
	if a := allowOf(r); a != "GET, POST" {
		t.Errorf("Allow %q", a)
	}
}

// postClient has a timeout: a report that never answers fails the test
// rather than hanging it.
var postClient = &http.Client{Timeout: 20 * time.Second}

func postWithKey(base, body, key string) (reply, error) {
	req, err := http.NewRequest(http.MethodPost, base+"/v1/events", strings.NewReader(body))
	if err != nil {
		return reply{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	authorizeFor(req, base)
	resp, err := postClient.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: []byte(b.String())}, nil
}

// unblockLockWaiters ends the sessions of the test's database that wait
// on a row lock, so that a deadlock between pool connections and row
// locks (which PostgreSQL cannot see) ends and the server can shut down.
func unblockLockWaiters(t *testing.T, s *data.Store) int {
	t.Helper()
	return sqlInt(t, s, `SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()) x`)
}

// TestReportEventIdempotencyAPI: fifty clients send the same report with
// the same Idempotency-Key at the same moment: one event, one 201, the
// rest 200 Idempotent-Replayed, all with the same code.
func TestReportEventIdempotencyAPI(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	grids := evGridPoints(t, e.store)
	g := grids[33]
	body := evReport("0102", g.lon, g.lat, "description", "井盖缺失", "reporter", "王五")
	before := countRows(t, e.store, "events")
	const n = 50
	replies := make([]reply, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			replies[i], errs[i] = postWithKey(e.url, body, "b1f2c3d4-0000-4000-8000-000000000001")
		}()
	}
	close(start)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(25 * time.Second):
		// Deadlocked: free it so the server can stop, then fail.
		for {
			unblockLockWaiters(t, e.store)
			select {
			case <-done:
			case <-time.After(time.Second):
				continue
			}
			break
		}
		t.Fatalf("concurrent reports with one Idempotency-Key did not all answer within 25 s (deadlock); errors: %v", errs)
	}
	created, code := 0, ""
	for i, r := range replies {
		if errs[i] != nil {
			t.Fatalf("client %d: %v", i, errs[i])
		}
		var f evFeature
		switch r.Status {
		case http.StatusCreated:
			created++
			if r.Header.Get("Idempotent-Replayed") != "" {
				t.Errorf("201 with Idempotent-Replayed")
			}
		case http.StatusOK:
			if r.Header.Get("Idempotent-Replayed") != "true" {
				t.Errorf("client %d: 200 without Idempotent-Replayed: true", i)
			}
		default:
			t.Fatalf("client %d: %s", i, r)
		}
		expect(t, r, r.Status, ctGeoJSON, &f)
		if code == "" {
			code = f.ID
		}
		if f.ID != code || f.Properties.Code != code || r.Header.Get("Location") != "/v1/events/"+code {
			t.Errorf("client %d: event %s (Location %s), another got %s", i, f.ID, r.Header.Get("Location"), code)
		}
	}
	if created != 1 {
		t.Errorf("%d answers were 201, want exactly 1", created)
	}
	if n := countRows(t, e.store, "events"); n != before+1 {
		t.Errorf("%d events, want %d", n, before+1)
	}
	// The same report with other spacing and member order is the same report.
	var m map[string]any
	_ = json.Unmarshal([]byte(body), &m)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(keys)))
	var b strings.Builder
	b.WriteString("{\n")
	for i, k := range keys {
		v, _ := json.Marshal(m[k])
		fmt.Fprintf(&b, "  %q :  %s", k, v)
		if i < len(keys)-1 {
			b.WriteString(",\n")
		}
	}
	b.WriteString("\n}")
	r, err := postWithKey(e.url, b.String(), "b1f2c3d4-0000-4000-8000-000000000001")
	if err != nil || r.Status != http.StatusOK || r.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("reordered body: %v %s", err, r)
	}
	// The same key with another body.
	r, err = postWithKey(e.url, evReport("0101", g.lon, g.lat), "b1f2c3d4-0000-4000-8000-000000000001")
	if err != nil {
		t.Fatal(err)
	}
	p := expectEvProblem(t, r, http.StatusUnprocessableEntity, typeKeyReused, "", code)
	if p.Event != code {
		t.Errorf("problem names event %q, want %s", p.Event, code)
	}
	// A replay answers the event as it is now.
	e.moved(code, "registered")
	r, _ = postWithKey(e.url, body, "b1f2c3d4-0000-4000-8000-000000000001")
	var f evFeature
	expect(t, r, http.StatusOK, ctGeoJSON, &f)
	if f.Properties.Status != "registered" || f.Properties.Version != 2 || r.Header.Get("ETag") != `"2"` {
		t.Errorf("replay after a move: %s v%d ETag %s", f.Properties.Status, f.Properties.Version, r.Header.Get("ETag"))
	}
	if n := countRows(t, e.store, "events"); n != before+1 {
		t.Errorf("%d events, want %d", n, before+1)
	}
}

// TestEventTransitionsAPI drives an event through every legal step to
// closed, and checks each refusal.
func TestEventTransitionsAPI(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	grids := evGridPoints(t, e.store)
	f := e.reportEvent(evReport("0102", grids[3].lon, grids[3].lat, "reporter", "网格员甲"))
	code := f.ID
	feed := countRows(t, e.store, "event_feed")

	refuse := func(r reply, status int, typ, param string, inDetail ...string) evProblem {
		t.Helper()
		p := expectEvProblem(t, r, status, typ, param, inDetail...)
		if n := countRows(t, e.store, "event_feed"); n != feed {
			t.Errorf("a refused move wrote to the feed (%d rows, want %d)", n, feed)
		}
		return p
	}
	// Illegal: 409 with the allowed moves.
	p := refuse(e.move(code, "closed"), http.StatusConflict, typeIllegalMove, "", "reported", "closed")
	if !reflect.DeepEqual(p.Allowed, []string{"registered", "rejected"}) || p.From != "reported" || p.To != "closed" {
		t.Errorf("409: allowed %v from %q to %q", p.Allowed, p.From, p.To)
	}
	refuse(e.move(code, "done"), http.StatusUnprocessableEntity, typeInvalid, "to", "done")
	refuse(e.move(code, ""), http.StatusUnprocessableEntity, typeInvalid, "to")
	// The actor is the credential's: a body naming one is refused.
	refuse(e.with(http.MethodPost, "/v1/events/"+code+"/transitions", `{"to": "registered", "actor": "x"}`), http.StatusUnprocessableEntity, typeInvalid, "actor", "credential")
	refuse(e.move(code, "registered", "note", strings.Repeat("n", 4001)), http.StatusUnprocessableEntity, typeInvalid, "note")
	refuse(e.move(code, "registered", "department", "swj"), http.StatusUnprocessableEntity, typeInvalid, "department")
	refuse(e.with(http.MethodPost, "/v1/events/"+code+"/transitions", `{"to": "registered", "who": 1}`), http.StatusUnprocessableEntity, typeInvalid, "who")
	refuse(e.with(http.MethodPost, "/v1/events/"+code+"/transitions", `{"to": `), http.StatusBadRequest, typeBadRequest, "")
	// Stale and malformed preconditions.
	p = refuse(e.move(code, "registered", "If-Match", `"7"`), http.StatusPreconditionFailed, typeStale, "", `"1"`)
	if p.ETag != `"1"` {
		t.Errorf("412: etag %q, want \"1\"", p.ETag)
	}
	refuse(e.move(code, "registered", "If-Match", `"abc"`), http.StatusPreconditionFailed, typeStale, "")
	refuse(e.move(code, "registered", "If-Match", `W/"1"`), http.StatusPreconditionFailed, typeStale, "")
	// Unknown events.
	expectProblem(t, e.move("44030820261123999999", "registered"), http.StatusNotFound, typeNotFound, "", "44030820261123999999")

	type step struct{ to, actor, dept, ifMatch string }
	steps := []step{
		{"registered", "受理员", "", `"1"`},
		{"dispatched", "派遣员", "", ""},
		{"dispatched", "派遣员", "swj", ""}, // re-dispatch from dispatched
		{"handling", "水务局", "", `"4"`},
		{"dispatched", "派遣员", "cgj", ""}, // re-dispatch from handling
		{"handling", "城管", "", ""},
		{"handled", "城管", "", ""},
		{"returned", "网格员甲", "", ""},
		{"dispatched", "派遣员", "", ""},
		{"handling", "城管", "", ""},
		{"handled", "城管", "", ""},
		{"verified", "网格员甲", "", ""},
		{"closed", "受理员", "", "*"},
	}
	dept := "cgj"
	var firstHandled *time.Time
	for i, st := range steps {
		cur := e.getEvent(code).Properties
		if cur.Status == "dispatched" {
			p := refuse(e.move(code, "dispatched"), http.StatusConflict, typeIllegalMove, "", "department")
			if !reflect.DeepEqual(p.Allowed, []string{"handling", "dispatched", "suspended"}) {
				t.Errorf("re-dispatch without a department: allowed %v", p.Allowed)
			}
			refuse(e.move(code, "dispatched", "department", cur.Department), http.StatusConflict, typeIllegalMove, "", cur.Department)
			refuse(e.move(code, "dispatched", "department", "nosuch"), http.StatusUnprocessableEntity, typeInvalid, "department", "nosuch")
			refuse(e.move(code, "dispatched", "department", "no such"), http.StatusUnprocessableEntity, typeInvalid, "department")
		}
		more := []string{"note", fmt.Sprintf("step %d", i+1)}
		if st.dept != "" {
			more = append(more, "department", st.dept)
			dept = st.dept
		}
		if st.ifMatch != "" {
			more = append(more, "If-Match", st.ifMatch)
		}
		got := e.moved(code, st.to, more...)
		feed++
		gp := got.Properties
		if gp.Version != cur.Version+1 || gp.Department != dept || gp.DepartmentName == "" || len(gp.Log) != i+2 {
			t.Errorf("step %d: version %d department %s %q, %d log entries", i+1, gp.Version, gp.Department, gp.DepartmentName, len(gp.Log))
		}
		if st.to == "handled" && firstHandled == nil {
			firstHandled = gp.HandledAt
		}
	}
	// GET: the whole log.
	final := e.getEvent(code).Properties
	if final.Status != "closed" || final.ClosedAt == nil || final.HandledAt == nil || firstHandled == nil || !final.HandledAt.Equal(*firstHandled) || final.Overdue {
		t.Errorf("closed event: %+v", final)
	}
	if len(final.Log) != len(steps)+1 {
		t.Fatalf("%d log entries, want %d", len(final.Log), len(steps)+1)
	}
	prev := "reported"
	for i, st := range steps {
		l := final.Log[i+1]
		if l.N != i+2 || l.From != prev || l.To != st.to || l.Actor != adminActor || l.Department != st.dept || l.Note != fmt.Sprintf("step %d", i+1) ||
			l.At.Before(final.Log[i].At) {
			t.Errorf("log entry %d: %+v", i+2, l)
		}
		prev = st.to
	}
	// Closed is final: 409 with nothing allowed.
	p = refuse(e.move(code, "dispatched", "department", "swj"), http.StatusConflict, typeIllegalMove, "", "final")
	if p.Allowed == nil || len(p.Allowed) != 0 {
		t.Errorf("from closed: allowed %v, want []", p.Allowed)
	}
	// The side branch.
	r := e.reportEvent(evReport("0101", grids[4].lon, grids[4].lat))
	rej := e.moved(r.ID, "rejected", "note", "重复上报").Properties
	if rej.ClosedAt == nil || rej.HandledAt != nil || rej.Version != 2 {
		t.Errorf("rejected: %+v", rej)
	}
	// Codes: unknown 404, malformed 400.
	expectProblem(t, e.get("/v1/events/44030820261123999999"), http.StatusNotFound, typeNotFound, "", "44030820261123999999")
	for _, bad := range []string{"abc", "4403082026112300000", "44030820261399000001", "44030820261123000000", "00000020261123000001"} {
		expectProblem(t, e.get("/v1/events/"+bad), http.StatusBadRequest, typeBadParam, "code", bad)
	}
	// Methods.
	for _, c := range []struct{ method, path, allow string }{
		{http.MethodGet, "/v1/events/" + code + "/transitions", "POST"},
		{http.MethodDelete, "/v1/events/" + code, "GET"},
		{http.MethodPut, "/v1/events/stream", "GET"},
	} {
		r := e.do(c.method, c.path, nil)
		expectProblem(t, r, http.StatusMethodNotAllowed, typeNotAllowed, "")
		if a := allowOf(r); a != c.allow {
			t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, a, c.allow)
		}
	}
	// event_counts follow the moves.
	kept := sqlStrings(t, e.store, `SELECT grid_code || '/' || status || '=' || n FROM event_counts WHERE n > 0 ORDER BY 1`)
	truth := sqlStrings(t, e.store, `SELECT grid_code || '/' || status || '=' || count(*) FROM events GROUP BY grid_code, status ORDER BY 1`)
	if !reflect.DeepEqual(kept, truth) {
		t.Errorf("event_counts %v, events %v", kept, truth)
	}
}

// seedEventSet reports events through the store at fixed past and future
// times (so some are overdue) and moves some of them.
func seedEventSet(t *testing.T, e *apiEnv) []string {
	t.Helper()
	ctx := context.Background()
	grids := evGridPoints(t, e.store)
	loc := e.srv.Locator()
	cst := time.FixedZone("CST", 8*3600)
	classes := []string{"0101", "0102", "0105", "0201", "0401"}
	var codes []string
	n := 0
	for _, at := range []time.Time{
		time.Date(2025, 6, 2, 9, 30, 0, 0, cst),
		time.Date(2025, 6, 3, 10, 0, 0, 0, cst),
		time.Date(2025, 12, 31, 23, 0, 0, 0, cst),
		time.Date(2026, 3, 11, 15, 0, 0, 0, cst),
		time.Date(2027, 1, 5, 10, 0, 0, 0, cst),
		time.Date(2027, 1, 6, 10, 0, 0, 0, cst),
	} {
		var evs []data.NewEvent
		for range 5 {
			g := grids[(n*29)%len(grids)]
			l := loc.Locate(g.lon, g.lat)
			evs = append(evs, data.NewEvent{Class: classes[n%len(classes)], Lon: g.lon, Lat: g.lat, InputLon: g.lon, InputLat: g.lat,
				Location: l, Source: grid.SourceHotline})
			n++
		}
		res, err := e.store.ReportEventsAt(ctx, evs, at)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			codes = append(codes, r.Event.Code)
		}
	}
	for i, code := range codes {
		var path []grid.EventStatus
		switch i % 5 {
		case 1:
			path = []grid.EventStatus{grid.StatusRegistered}
		case 2:
			path = []grid.EventStatus{grid.StatusRegistered, grid.StatusDispatched, grid.StatusHandling, grid.StatusHandled}
		case 3:
			path = []grid.EventStatus{grid.StatusRejected}
		case 4:
			path = []grid.EventStatus{grid.StatusRegistered, grid.StatusDispatched}
		}
		for _, to := range path {
			if _, err := e.store.TransitionEvent(ctx, code, data.Transition{To: to, Actor: "seed"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return codes
}

// pageEvents follows links.next from first and returns the codes in order.
func pageEvents(t *testing.T, e *apiEnv, first string, limit int) []string {
	t.Helper()
	out := []string{}
	seen := map[string]bool{}
	firstURL, _ := url.Parse(first)
	for next, i := first, 0; next != ""; i++ {
		if i > 500 {
			t.Fatalf("paging %s does not end", first)
		}
		var c evCollection
		expect(t, e.get(next), http.StatusOK, ctGeoJSON, &c)
		if c.Type != "FeatureCollection" || c.Features == nil || c.NumberReturned != len(c.Features) || (limit > 0 && len(c.Features) > limit) {
			t.Fatalf("%s: %s, %d features, numberReturned %d", next, c.Type, len(c.Features), c.NumberReturned)
		}
		for _, f := range c.Features {
			if seen[f.ID] {
				t.Fatalf("%s: %s twice", first, f.ID)
			}
			seen[f.ID] = true
			out = append(out, f.ID)
		}
		next = c.next()
		if next != "" {
			if len(c.Features) != limit && limit > 0 {
				t.Errorf("a short page (%d of %d) with a next link", len(c.Features), limit)
			}
			u, err := url.Parse(next)
			if err != nil {
				t.Fatal(err)
			}
			// The next link keeps every filter.
			for k, v := range firstURL.Query() {
				if k != "cursor" && !reflect.DeepEqual(u.Query()[k], v) {
					t.Errorf("next link %s lost %s=%v", next, k, v)
				}
			}
		}
	}
	return out
}

func TestListEventsAPI(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	codes := seedEventSet(t, e)
	if len(codes) != 30 {
		t.Fatalf("%d events", len(codes))
	}
	street := sqlStrings(t, e.store, `SELECT left(grid_code, 9) FROM events GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1`)[0]
	bboxS := bboxOf(t, e.store, street)
	var bb [4]float64
	for i, v := range strings.Split(bboxS, ",") {
		bb[i], _ = strconv.ParseFloat(v, 64)
	}
	truth := func(where string, args ...any) []string {
		return sqlStrings(t, e.store, `SELECT code FROM events WHERE `+where+` ORDER BY reported_at DESC, code DESC`, args...)
	}
	open := `status IN ('reported', 'registered', 'dispatched', 'handling', 'returned')`
	cases := []struct {
		query string
		want  []string
	}{
		{"", truth("true")},
		{"status=registered", truth("status = 'registered'")},
		{"status=registered,dispatched", truth("status IN ('registered', 'dispatched')")},
		{"status=registered&status=rejected", truth("status IN ('registered', 'rejected')")},
		{"class=0102", truth("class_code = '0102'")},
		{"class=0102,0105&department=swj", truth("class_code IN ('0102', '0105') AND department_code = 'swj'")},
		{"unit=" + street, truth("grid_code LIKE $1 || '%'", street)},
		{"unit=" + demoDistrict, truth("true")},
		{"bbox=" + bboxS, truth("ST_Intersects(geom, ST_MakeEnvelope($1, $2, $3, $4, 4326))", bb[0], bb[1], bb[2], bb[3])},
		{"overdue=true", truth(open + " AND deadline < now()")},
		{"overdue=false", truth("NOT (" + open + " AND deadline < now())")},
		{"from=2025-06-03", truth("reported_at >= '2025-06-03T00:00:00+08:00'")},
		{"from=2025-06-03T10:00:00%2B08:00&to=2027-01-01", truth("reported_at >= '2025-06-03T10:00:00+08:00' AND reported_at < '2027-01-01T00:00:00+08:00'")},
		{"to=2026-01-01T00:00:00Z", truth("reported_at < '2026-01-01T00:00:00Z'")},
		{"status=reported&overdue=true&unit=" + demoDistrict, truth("status = 'reported' AND deadline < now()")},
	}
	for _, c := range cases {
		if c.query != "" && c.query != "unit="+demoDistrict && (len(c.want) == 0 || len(c.want) == len(codes)) {
			t.Errorf("%s selects %d of %d: not a test of the filter", c.query, len(c.want), len(codes))
		}
		for _, limit := range []int{0, 4, 1000} {
			q := c.query
			if limit > 0 {
				q += "&limit=" + strconv.Itoa(limit)
			}
			if got := pageEvents(t, e, "/v1/events?"+strings.TrimPrefix(q, "&"), limit); !reflect.DeepEqual(got, c.want) {
				t.Errorf("%s:\n got %v\nwant %v", q, got, c.want)
			}
		}
	}
	// A listed event is the feature GET answers, without the log.
	var c evCollection
	expect(t, e.get("/v1/events?limit=2"), http.StatusOK, ctGeoJSON, &c)
	for _, f := range c.Features {
		g := e.getEvent(f.ID)
		g.Properties.Log = nil
		if !reflect.DeepEqual(f, g) {
			t.Errorf("listed %+v\nGET %+v", f, g)
		}
	}
	// Bad parameters: a 400 naming each.
	for _, b := range []struct{ query, param string }{
		{"status=nope", "status"},
		{"status=registered,nope", "status"},
		{"class=9999", "class"},
		{"department=nosuch", "department"},
		{"unit=440399", "unit"},
		{"bbox=1,2,3", "bbox"},
		{"bbox=114.3,22.5,114.2,22.6", "bbox"},
		{"bbox=a,b,c,d", "bbox"},
		{"overdue=maybe", "overdue"},
		{"from=garbage", "from"},
		{"to=2026-13-01", "to"},
		{"from=2026-01-02&to=2026-01-01", "to"},
		{"limit=0", "limit"},
		{"limit=1001", "limit"},
		{"limit=x", "limit"},
		{"cursor=garbage", "cursor"},
	} {
		expectProblem(t, e.get("/v1/events?"+b.query), http.StatusBadRequest, typeBadParam, b.param)
	}
}

type evStatsBody struct {
	Of       string      `json:"of"`
	By       string      `json:"by"`
	From     *time.Time  `json:"from"`
	To       *time.Time  `json:"to"`
	Unit     evStatsUnit `json:"unit"`
	Children []evStatsUnit
}

type evStatsUnit struct {
	Code  string                     `json:"code"`
	Name  string                     `json:"name"`
	Level string                     `json:"level"`
	All   data.EventCount            `json:"all"`
	By    map[string]data.EventCount `json:"by"`
}

func TestEventStatsAPI(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	seedEventSet(t, e)
	counts := func(key, where string) map[string]int64 {
		out := map[string]int64{}
		for _, s := range sqlStrings(t, e.store, `SELECT k || '=' || count(*) FROM (SELECT `+key+` AS k FROM events WHERE `+where+`) x GROUP BY k`) {
			k, v, _ := strings.Cut(s, "=")
			out[k], _ = strconv.ParseInt(v, 10, 64)
		}
		return out
	}
	check := func(path, key, where string) evStatsBody {
		t.Helper()
		var b evStatsBody
		expect(t, e.get(path), http.StatusOK, ctJSON, &b)
		if b.Of != "events" || b.Unit.Code != demoDistrict || b.Unit.Name != demoDistrictZH {
			t.Errorf("%s: of %q unit %+v", path, b.Of, b.Unit)
		}
		want := counts(key, where)
		var total int64
		for k, n := range want {
			total += n
			if b.Unit.By[k].Total != n {
				t.Errorf("%s: %s = %d, want %d", path, k, b.Unit.By[k].Total, n)
			}
		}
		if len(b.Unit.By) != len(want) || b.Unit.All.Total != total {
			t.Errorf("%s: groups %d (want %d), total %d (want %d)", path, len(b.Unit.By), len(want), b.Unit.All.Total, total)
		}
		if len(b.Children) != demoStreets {
			t.Fatalf("%s: %d children", path, len(b.Children))
		}
		var sum, overdue int64
		for _, c := range b.Children {
			sum += c.All.Total
			overdue += c.All.Overdue
			wantC := counts(key, where+" AND grid_code LIKE '"+c.Code+"%'")
			for k, n := range wantC {
				if c.By[k].Total != n {
					t.Errorf("%s: child %s %s = %d, want %d", path, c.Code, k, c.By[k].Total, n)
				}
			}
		}
		if sum != b.Unit.All.Total || overdue != b.Unit.All.Overdue {
			t.Errorf("%s: children sum to %d (%d overdue), unit %d (%d)", path, sum, overdue, b.Unit.All.Total, b.Unit.All.Overdue)
		}
		wantOverdue := int64(sqlInt(t, e.store, `SELECT count(*) FROM events WHERE `+where+
			` AND status IN ('reported', 'registered', 'dispatched', 'handling', 'returned') AND deadline < now()`))
		if b.Unit.All.Overdue != wantOverdue {
			t.Errorf("%s: %d overdue, want %d", path, b.Unit.All.Overdue, wantOverdue)
		}
		return b
	}
	b := check("/v1/stats/"+demoDistrict+"?by=status", "status", "true")
	if b.By != "status" || b.Unit.All.Handled == 0 || b.Unit.All.AvgHandlingHours == nil || b.Unit.All.Overdue == 0 {
		t.Errorf("by status: %+v", b.Unit.All)
	}
	b = check("/v1/stats/"+demoDistrict+"?of=events&by=class&from=2025-06-03&to=2027-01-01T00:00:00%2B08:00", "class_code",
		"reported_at >= '2025-06-03T00:00:00+08:00' AND reported_at < '2027-01-01T00:00:00+08:00'")
	if b.By != "class" || b.From == nil || b.To == nil {
		t.Errorf("by class with a range: by %q from %v to %v", b.By, b.From, b.To)
	}
	check("/v1/stats/"+demoDistrict+"?of=events", "status", "true")
	check("/v1/stats/"+demoDistrict+"?from=2025-06-03", "status", "reported_at >= '2025-06-03T00:00:00+08:00'")
	// Objects still answer objects.
	for _, path := range []string{"/v1/stats/" + demoDistrict, "/v1/stats/" + demoDistrict + "?by=class", "/v1/stats/" + demoDistrict + "?of=objects"} {
		var ob map[string]any
		expect(t, e.get(path), http.StatusOK, ctJSON, &ob)
		if ob["of"] != "objects" || ob["by"] != "class" {
			t.Errorf("%s: of %v by %v, want objects by class", path, ob["of"], ob["by"])
		}
	}
	// Errors.
	expectProblem(t, e.get("/v1/stats/"+demoDistrict+"?of=events&by=nope"), http.StatusBadRequest, typeBadParam, "by")
	expectProblem(t, e.get("/v1/stats/"+demoDistrict+"?of=things"), http.StatusBadRequest, typeBadParam, "of")
	expectProblem(t, e.get("/v1/stats/"+demoDistrict+"?by=status&from=garbage"), http.StatusBadRequest, typeBadParam, "from")
	expectProblem(t, e.get("/v1/stats/440399?by=status"), http.StatusNotFound, typeNotFound, "")
}

func TestEventConfigAPI(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	grids := evGridPoints(t, e.store)
	g := grids[7]
	// Classes.
	var list struct {
		Classes []data.EventClassRow `json:"classes"`
	}
	expect(t, e.get("/v1/event-classes"), http.StatusOK, ctJSON, &list)
	seed, err := data.SeedEventClasses()
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Classes) != len(seed) || !slices.IsSortedFunc(list.Classes, func(a, b data.EventClassRow) int { return strings.Compare(a.Code, b.Code) }) {
		t.Fatalf("%d classes, want %d, sorted", len(list.Classes), len(seed))
	}
	for _, c := range list.Classes {
		if c.DepartmentName == "" || c.Version != 1 || c.Limit.Validate() != nil {
			t.Errorf("class %+v", c)
		}
	}
	r := e.get("/v1/event-classes/0102")
	var c0102 data.EventClassRow
	expect(t, r, http.StatusOK, ctJSON, &c0102)
	if etagOf(t, r) != `"1"` || c0102.Name != "暴露垃圾" || c0102.Limit != (grid.Limit{Amount: 4, Unit: grid.WorkingHours}) {
		t.Errorf("0102: %+v %s", c0102, r.Header.Get("ETag"))
	}
	expectNotModified(t, e.with(http.MethodGet, "/v1/event-classes/0102", "", "If-None-Match", `"1"`), `"1"`)
	expectProblem(t, e.get("/v1/event-classes/nope"), http.StatusNotFound, typeNotFound, "")

	class := `{"name": "共享单车乱停放", "department": "jtj", "limit": {"amount": 3, "unit": "working_hours"}}`
	r = e.put("/v1/event-classes/9901", class)
	var row data.EventClassRow
	expect(t, r, http.StatusCreated, ctJSON, &row)
	if etagOf(t, r) != `"1"` || row.Code != "9901" || row.DepartmentName != "交通运输局" {
		t.Errorf("created %+v %s", row, r.Header.Get("ETag"))
	}
	// A report of the new class: its department and deadline.
	f := e.reportEvent(evReport("9901", g.lon, g.lat))
	cal := cityCalendar(t, e)
	if want, _ := cal.Deadline(f.Properties.ReportedAt, grid.Limit{Amount: 3, Unit: grid.WorkingHours}); f.Properties.Department != "jtj" || !f.Properties.Deadline.Equal(want) {
		t.Errorf("report of 9901: %s %s, want jtj %s", f.Properties.Department, f.Properties.Deadline, want)
	}
	// Replace with If-Match: the next report follows.
	r = e.with(http.MethodPut, "/v1/event-classes/9901", `{"code": "9901", "name": "共享单车乱停放", "department": "cgj", "limit": {"amount": 2, "unit": "working_days"}}`, "If-Match", `"1"`)
	expect(t, r, http.StatusOK, ctJSON, &row)
	if etagOf(t, r) != `"2"` || row.Department != "cgj" || row.Version != 2 {
		t.Errorf("replaced %+v", row)
	}
	f2 := e.reportEvent(evReport("9901", g.lon, g.lat))
	if want, _ := cal.Deadline(f2.Properties.ReportedAt, grid.Limit{Amount: 2, Unit: grid.WorkingDays}); f2.Properties.Department != "cgj" || !f2.Properties.Deadline.Equal(want) {
		t.Errorf("report after the edit: %s %s, want cgj %s", f2.Properties.Department, f2.Properties.Deadline, want)
	}
	if got := e.getEvent(f.ID).Properties; got.Department != "jtj" || !got.Deadline.Equal(f.Properties.Deadline) {
		t.Errorf("the earlier report changed: %s %s", got.Department, got.Deadline)
	}
	// Refusals.
	p := expectEvProblem(t, e.with(http.MethodPut, "/v1/event-classes/9901", class, "If-Match", `"1"`), http.StatusPreconditionFailed, typeStale, "")
	if p.ETag != `"2"` {
		t.Errorf("stale class: etag %q, want \"2\"", p.ETag)
	}
	expectProblem(t, e.with(http.MethodPut, "/v1/event-classes/9902", class, "If-Match", `"1"`), http.StatusNotFound, typeNotFound, "")
	expectProblem(t, e.put("/v1/event-classes/9903", `{"name": "x", "department": "jtj", "limit": {"amount": 3, "unit": "working_weeks"}}`),
		http.StatusUnprocessableEntity, typeInvalid, "class", "working_weeks")
	expectProblem(t, e.put("/v1/event-classes/9903", `{"name": "x", "department": "jtj", "limit": {"amount": 0, "unit": "working_days"}}`),
		http.StatusUnprocessableEntity, typeInvalid, "class")
	expectProblem(t, e.put("/v1/event-classes/9903", `{"name": "x", "department": "nosuch", "limit": {"amount": 3, "unit": "working_days"}}`),
		http.StatusUnprocessableEntity, typeInvalid, "department", "nosuch")
	expectProblem(t, e.put("/v1/event-classes/9903", `{"code": "9904", "name": "x", "department": "jtj", "limit": {"amount": 3, "unit": "working_days"}}`),
		http.StatusBadRequest, typeBadParam, "code")
	expectProblem(t, e.put("/v1/event-classes/9903", `{"name": "x", "dept": "jtj"}`), http.StatusUnprocessableEntity, typeInvalid, "dept")
	if n := sqlInt(t, e.store, `SELECT count(*) FROM event_classes WHERE code IN ('9902', '9903', '9904')`); n != 0 {
		t.Errorf("%d refused classes stored", n)
	}

	// Departments.
	var deps struct {
		Departments []data.Department `json:"departments"`
	}
	expect(t, e.get("/v1/departments"), http.StatusOK, ctJSON, &deps)
	if !slices.Contains(deps.Departments, data.Department{Code: "cgj", Name: "城市管理和综合执法局"}) {
		t.Errorf("departments %v", deps.Departments)
	}
	expect(t, e.put("/v1/departments/wgzx", `{"name": "网格中心"}`), http.StatusCreated, ctJSON, nil)
	expect(t, e.put("/v1/departments/wgzx", `{"name": "网格管理中心"}`), http.StatusOK, ctJSON, nil)
	expectProblem(t, e.put("/v1/departments/wgzx2", `{"name": ""}`), http.StatusUnprocessableEntity, typeInvalid, "name")
	expectProblem(t, e.put("/v1/departments/a.b", `{"name": "x"}`), http.StatusUnprocessableEntity, typeInvalid, "code")
	// A re-dispatch to the new department.
	f3 := e.reportEvent(evReport("0102", g.lon, g.lat))
	e.moved(f3.ID, "registered")
	e.moved(f3.ID, "dispatched")
	if got := e.moved(f3.ID, "dispatched", "department", "wgzx").Properties; got.DepartmentName != "网格管理中心" {
		t.Errorf("re-dispatched to %s %q", got.Department, got.DepartmentName)
	}

	// The calendar.
	var cal0 data.Calendar
	expect(t, e.get("/v1/calendar"), http.StatusOK, ctJSON, &cal0)
	if cal0.Timezone != "Asia/Shanghai" || cal0.Periods != "09:00-12:00,14:00-18:00" ||
		!slices.Contains(cal0.Days, data.CalendarDay{Day: "2026-10-01", Kind: grid.Holiday, Name: "国庆节"}) {
		t.Errorf("calendar %+v", cal0)
	}
	// A holiday inside the deadline of a 20-working-day class moves it
	// one working day on; clearing it moves it back.
	d0 := e.reportEvent(evReport("0101", g.lon, g.lat)).Properties
	loc := d0.ReportedAt.Location()
	holiday := "2026-12-01"
	if h, _ := time.ParseInLocation(time.DateOnly, holiday, loc); !h.After(d0.ReportedAt) || h.After(d0.Deadline) || !cal.IsWorkday(h) {
		// Another day (the test runs after 2026-11): the next working day.
		d := d0.ReportedAt
		for {
			d = d.AddDate(0, 0, 1)
			if cal.IsWorkday(d) {
				break
			}
		}
		holiday = d.Format(time.DateOnly)
	}
	expect(t, e.put("/v1/calendar/days/"+holiday, `{"kind": "holiday", "name": "测试假日"}`), http.StatusOK, ctJSON, nil)
	withHoliday := cityCalendar(t, e)
	if withHoliday.IsWorkday(mustDay(t, holiday, loc)) {
		t.Fatalf("%s is still a working day", holiday)
	}
	d1 := e.reportEvent(evReport("0101", g.lon, g.lat)).Properties
	want1, _ := withHoliday.Deadline(d1.ReportedAt, grid.Limit{Amount: 20, Unit: grid.WorkingDays})
	if !d1.Deadline.Equal(want1) || d1.Deadline.Format(time.DateOnly) == d0.Deadline.Format(time.DateOnly) {
		t.Errorf("with %s a holiday: deadline %s, want %s (without it %s)", holiday, d1.Deadline, want1, d0.Deadline)
	}
	r = e.del("/v1/calendar/days/" + holiday)
	if r.Status != http.StatusNoContent {
		t.Fatalf("DELETE day: %s", r)
	}
	d2 := e.reportEvent(evReport("0101", g.lon, g.lat)).Properties
	if want, _ := cal.Deadline(d2.ReportedAt, grid.Limit{Amount: 20, Unit: grid.WorkingDays}); !d2.Deadline.Equal(want) {
		t.Errorf("holiday cleared: deadline %s, want %s", d2.Deadline, want)
	}
	expectProblem(t, e.put("/v1/calendar/days/"+holiday, `{"kind": "vacation"}`), http.StatusUnprocessableEntity, typeInvalid, "kind")
	expectProblem(t, e.put("/v1/calendar/days/"+holiday, `{"name": "x"}`), http.StatusUnprocessableEntity, typeInvalid, "kind")
	expectProblem(t, e.put("/v1/calendar/days/2026-13-01", `{"kind": "holiday"}`), http.StatusBadRequest, typeBadParam, "day")
	expectProblem(t, e.put("/v1/calendar/days/2026-12-02", `{"day": "2026-12-03", "kind": "holiday"}`), http.StatusBadRequest, typeBadParam, "day")
	// Working hours.
	for _, bad := range []struct{ body, param string }{
		{`{"timezone": "Asia/Shanghai", "periods": "18:00-09:00"}`, "periods"},
		{`{"timezone": "Asia/Shanghai", "periods": "09:00-12:00,11:00-13:00"}`, "periods"},
		{`{"timezone": "Asia/Shanghai", "periods": "9-12"}`, "periods"},
		{`{"timezone": "Asia/Shanghai", "periods": ""}`, "periods"},
		{`{"timezone": "Mars/Olympus", "periods": "09:00-12:00"}`, "timezone"},
		{`{"timezone": "Asia/Shanghai", "periods": "09:00-12:00", "lunch": true}`, "lunch"},
	} {
		expectProblem(t, e.put("/v1/calendar/hours", bad.body), http.StatusUnprocessableEntity, typeInvalid, bad.param)
	}
	var cal1 data.Calendar
	expect(t, e.put("/v1/calendar/hours", `{"timezone": "Asia/Shanghai", "periods": "14:00-17:30, 08:30-12:00"}`), http.StatusOK, ctJSON, &cal1)
	if cal1.Periods != "08:30-12:00,14:00-17:30" {
		t.Errorf("periods %q", cal1.Periods)
	}
	d3 := e.reportEvent(evReport("0101", g.lon, g.lat)).Properties
	if d3.Deadline.Hour() != 17 || d3.Deadline.Minute() != 30 {
		t.Errorf("deadline %s under the new hours, want 17:30", d3.Deadline)
	}
	// Methods.
	for _, c := range []struct{ method, path, allow string }{
		{http.MethodGet, "/v1/calendar/days/2026-12-01", "DELETE, PUT"},
		{http.MethodPost, "/v1/calendar/hours", "PUT"},
		{http.MethodDelete, "/v1/event-classes/0102", "GET, PUT"},
		{http.MethodPost, "/v1/departments", "GET"},
	} {
		r := e.do(c.method, c.path, nil)
		expectProblem(t, r, http.StatusMethodNotAllowed, typeNotAllowed, "")
		if a := allowOf(r); a != c.allow {
			t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, a, c.allow)
		}
	}
}

// allowOf is the Allow header's methods, sorted.
func allowOf(r reply) string {
	var got []string
	for _, v := range r.Header.Values("Allow") {
		for _, m := range strings.Split(v, ",") {
			got = append(got, strings.TrimSpace(m))
		}
	}
	sort.Strings(got)
	return strings.Join(got, ", ")
}

func mustDay(t *testing.T, day string, loc *time.Location) time.Time {
	t.Helper()
	d, err := time.ParseInLocation(time.DateOnly, day, loc)
	if err != nil {
		t.Fatal(err)
	}
	return d.Add(12 * time.Hour)
}

// TestEventTransitionRace: twenty clients make the same move at once;
// with If-Match one wins and the rest get 412, without it one wins and the
// rest get 409 (the move is no longer legal). One log entry, one feed row.
func TestEventTransitionRace(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	grids := evGridPoints(t, e.store)
	for _, withIfMatch := range []bool{true, false} {
		f := e.reportEvent(evReport("0102", grids[1].lon, grids[1].lat))
		feed := countRows(t, e.store, "event_feed")
		const n = 20
		replies := make([]reply, n)
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var h []string
				if withIfMatch {
					h = []string{"If-Match", `"1"`}
				}
				<-start
				replies[i], errs[i] = e.send(http.MethodPost, "/v1/events/"+f.ID+"/transitions", fmt.Sprintf(`{"to": "registered", "note": "client %d"}`, i), h...)
			}()
		}
		close(start)
		wg.Wait()
		won := -1
		for i, r := range replies {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			switch {
			case r.Status == http.StatusOK:
				if won >= 0 {
					t.Errorf("If-Match %v: clients %d and %d both moved the event", withIfMatch, won, i)
				}
				won = i
			case withIfMatch:
				expectEvProblem(t, r, http.StatusPreconditionFailed, typeStale, "", `"2"`)
			default:
				expectEvProblem(t, r, http.StatusConflict, typeIllegalMove, "")
			}
		}
		if won < 0 {
			t.Fatalf("If-Match %v: nobody moved the event", withIfMatch)
		}
		got := e.getEvent(f.ID).Properties
		if got.Version != 2 || len(got.Log) != 2 || got.Log[1].Note != fmt.Sprintf("client %d", won) || got.Log[1].Actor != adminActor {
			t.Errorf("If-Match %v: version %d, log %+v, winner %d", withIfMatch, got.Version, got.Log, won)
		}
		if n := countRows(t, e.store, "event_feed"); n != feed+1 {
			t.Errorf("If-Match %v: %d feed rows, want %d", withIfMatch, n, feed+1)
		}
	}
}
