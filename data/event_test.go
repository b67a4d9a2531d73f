package data_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"gridmap/data"
	"gridmap/data/pgtest"
	"gridmap/geo"
	"gridmap/grid"
)

// cst is the city's offset (Asia/Shanghai has had no DST since 1991).
var cst = time.FixedZone("CST", 8*3600)

// evCity is the small demo city with a locator and a point inside each grid.
type evCity struct {
	s       *data.Store
	loc     *grid.Locator
	grids   []string              // base grid codes, sorted
	pt      map[string][2]float64 // a point inside each grid
	streets []string
}

func newEvCity(t *testing.T) *evCity {
	t.Helper()
	s := pgtest.NewDemo(t)
	ctx := context.Background()
	units, err := s.CurrentUnits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := &evCity{s: s, loc: grid.NewLocator(units), pt: map[string][2]float64{}}
	rows, err := s.Pool.Query(ctx, `SELECT code, ST_X(p), ST_Y(p) FROM (SELECT code, ST_PointOnSurface(geom) p FROM units
		WHERE valid_to IS NULL AND layer = 'base' AND level = 'grid') x ORDER BY code`)
	if err != nil {
		t.Fatal(err)
	}
	var code string
	var p [2]float64
	if _, err := pgx.ForEachRow(rows, []any{&code, &p[0], &p[1]}, func() error {
		c.grids = append(c.grids, code)
		c.pt[code] = p
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	c.streets = objStrings(t, s.Pool, `SELECT code FROM units WHERE valid_to IS NULL AND layer = 'base' AND level = 'street' ORDER BY code`)
	if len(c.grids) < 100 || len(c.streets) < 2 {
		t.Fatalf("demo city: %d grids, %d streets", len(c.grids), len(c.streets))
	}
	return c
}

// report is a report of class at the point of grid g.
func (c *evCity) report(t *testing.T, g, class string) data.NewEvent {
	t.Helper()
	p, ok := c.pt[g]
	if !ok {
		t.Fatalf("no grid %s", g)
	}
	loc := c.loc.Locate(p[0], p[1])
	if loc.Grid == nil || loc.Grid.Code != g {
		t.Fatalf("the point of grid %s locates to %+v", g, loc.Grid)
	}
	return data.NewEvent{Class: class, Lon: p[0], Lat: p[1], CRS: geo.WGS84, InputLon: p[0], InputLat: p[1], Location: loc,
		Description: "垃圾堆放 near " + g, Source: grid.SourceGridWorker, Reporter: "网格员" + g[len(g)-3:],
		Media: []string{"https://media.example/" + g + ".jpg"}}
}

// reportAt reports and fails the test on a whole-batch error.
func (c *evCity) reportAt(t *testing.T, now time.Time, evs ...data.NewEvent) []data.ReportResult {
	t.Helper()
	res, err := c.s.ReportEventsAt(context.Background(), evs, now)
	if err != nil {
		t.Fatalf("ReportEventsAt: %v", err)
	}
	if len(res) != len(evs) {
		t.Fatalf("%d results for %d reports", len(res), len(evs))
	}
	return res
}

// created reports and expects every report to create an event.
func (c *evCity) created(t *testing.T, now time.Time, evs ...data.NewEvent) []*data.Event {
	t.Helper()
	var out []*data.Event
	for i, r := range c.reportAt(t, now, evs...) {
		if r.Err != nil || r.Event == nil || r.Replayed {
			t.Fatalf("report %d: %+v", i, r)
		}
		out = append(out, r.Event)
	}
	return out
}

func countEvents(t *testing.T, s *data.Store) int {
	t.Helper()
	var n int
	if err := s.Pool.QueryRow(context.Background(), `SELECT count(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// checkEventCounts compares event_counts with a count of the events.
func checkEventCounts(t *testing.T, s *data.Store) {
	t.Helper()
	kept := objStrings(t, s.Pool, `SELECT grid_code || '/' || status || '=' || n FROM event_counts WHERE n > 0 ORDER BY 1`)
	truth := objStrings(t, s.Pool, `SELECT grid_code || '/' || status || '=' || count(*) FROM events GROUP BY grid_code, status ORDER BY 1`)
	if !reflect.DeepEqual(kept, truth) {
		t.Errorf("event_counts %v\nGROUP BY events %v", kept, truth)
	}
	if neg := objStrings(t, s.Pool, `SELECT grid_code || '/' || status FROM event_counts WHERE n < 0`); len(neg) > 0 {
		t.Errorf("negative event_counts: %v", neg)
	}
}

// feedRow is a feed entry's body as subscribers receive it.
type feedRow struct {
	data.FeedBody
	Seq int64 `json:"seq"`
}

func readFeed(t *testing.T, s *data.Store, after int64) ([]data.FeedEntry, []feedRow) {
	t.Helper()
	var entries []data.FeedEntry
	for {
		batch, err := s.ReadFeed(context.Background(), after, 500)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, batch...)
		if len(batch) < 500 {
			break
		}
		after = batch[len(batch)-1].Seq
	}
	bodies := make([]feedRow, len(entries))
	for i, e := range entries {
		if err := json.Unmarshal(e.Body, &bodies[i]); err != nil {
			t.Fatalf("feed body %s: %v", e.Body, err)
		}
		if bodies[i].Seq != e.Seq {
			t.Errorf("feed entry %d: body seq %d", e.Seq, bodies[i].Seq)
		}
		if i > 0 && e.Seq <= entries[i-1].Seq {
			t.Errorf("feed out of order: %d after %d", e.Seq, entries[i-1].Seq)
		}
	}
	return entries, bodies
}

func newestSeq(t *testing.T, s *data.Store) int64 {
	t.Helper()
	_, newest, err := s.FeedBounds(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return newest
}

// TestReportEventsCodesAndRouting: codes are district + local date + a
// six-digit sequence, consecutive per district and day across batches;
// department and deadline come from the class and the working calendar;
// the report is log entry 1 and a feed row; event_counts stay exact.
func TestReportEventsCodesAndRouting(t *testing.T) {
	t.Parallel()
	c := newEvCity(t)
	s, ctx := c.s, context.Background()
	monday10 := time.Date(2026, 11, 23, 10, 0, 0, 0, cst) // a Monday without holidays around
	g0, g1, g2 := c.grids[0], c.grids[50], c.grids[150]
	district := g0[:6]

	before := newestSeq(t, s)
	batch1 := c.created(t, monday10, c.report(t, g0, "0102"), c.report(t, g1, "0101"), c.report(t, g2, "0105"))
	batch2 := c.created(t, monday10.Add(time.Minute), c.report(t, g1, "0102"), c.report(t, g0, "0401"))
	all := append(slices.Clone(batch1), batch2...)
	for i, e := range all {
		want := fmt.Sprintf("%s20261123%06d", district, i+1)
		if e.Code != want {
			t.Errorf("event %d: code %s, want %s (consecutive per district and day)", i, e.Code, want)
		}
		d, day, seq, err := grid.ParseEventCode(e.Code)
		if err != nil || d != district || day.Format(time.DateOnly) != "2026-11-23" || seq != i+1 {
			t.Errorf("ParseEventCode(%s) = %s %s %d %v", e.Code, d, day, seq, err)
		}
	}
	// The local date counts: 23:30 UTC on the 23rd is the 24th in the city.
	late := c.created(t, time.Date(2026, 11, 23, 23, 30, 0, 0, time.UTC), c.report(t, g2, "0102"))
	if want := district + "20261124000001"; late[0].Code != want {
		t.Errorf("a report at 07:30 local on the 24th: code %s, want %s", late[0].Code, want)
	}
	var lastSeq int
	if err := s.Pool.QueryRow(ctx, `SELECT last FROM event_code_seq WHERE district = $1 AND day = '2026-11-23'`, district).Scan(&lastSeq); err != nil || lastSeq != 5 {
		t.Errorf("event_code_seq last = %d (%v), want 5", lastSeq, err)
	}

	// Department and deadline. 0102 暴露垃圾: 4 working hours from Monday
	// 10:00 = 10:00–12:00 and 14:00–16:00 → 16:00 the same day.
	cfg, err := s.EventConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantDeadline := []time.Time{
		time.Date(2026, 11, 23, 16, 0, 0, 0, cst), // 0102 at 10:00
		time.Date(2026, 12, 21, 18, 0, 0, 0, cst), // 0101: 20 working days after Monday 23rd: Tue 24th … Mon 21 Dec
		time.Date(2026, 11, 25, 18, 0, 0, 0, cst), // 0105: 2 working days
		time.Date(2026, 11, 23, 16, 1, 0, 0, cst), // 0102 at 10:01
		time.Date(2026, 11, 23, 14, 1, 0, 0, cst), // 0401: 2 working hours from 10:01: 1 h 59 min before lunch, 1 min after
	}
	for i, e := range all {
		class := cfg.Classes[e.Class]
		if e.Department != class.Department || e.DepartmentName != cfg.Departments[class.Department].Name || e.DepartmentName == "" {
			t.Errorf("%s (%s): department %s %s, want %s", e.Code, e.Class, e.Department, e.DepartmentName, class.Department)
		}
		if e.ClassName != class.Name {
			t.Errorf("%s: class name %q, want %q", e.Code, e.ClassName, class.Name)
		}
		reported := monday10
		if i >= len(batch1) {
			reported = monday10.Add(time.Minute)
		}
		calc, err := cfg.Calendar.Deadline(reported, class.Limit)
		if err != nil {
			t.Fatal(err)
		}
		if !e.Deadline.Equal(calc) {
			t.Errorf("%s (%s, %s): deadline %s, calendar says %s", e.Code, e.Class, class.Limit, e.Deadline, calc)
		}
		if !e.Deadline.Equal(wantDeadline[i]) {
			t.Errorf("%s (%s): deadline %s, want %s", e.Code, e.Class, e.Deadline, wantDeadline[i])
		}
		if !e.ReportedAt.Equal(reported) || !e.UpdatedAt.Equal(reported) || e.Status != grid.StatusReported || e.Version != 1 {
			t.Errorf("%s: reported %s updated %s status %s version %d", e.Code, e.ReportedAt, e.UpdatedAt, e.Status, e.Version)
		}
		if e.Overdue {
			t.Errorf("%s is overdue at its own report time", e.Code)
		}
	}
	// 0101 私搭乱建 reported on a Friday at 17:00: 20 working days counted
	// from Monday → Friday 18 December 18:00.
	friday := c.created(t, time.Date(2026, 11, 20, 17, 0, 0, 0, cst), c.report(t, g0, "0101"))[0]
	if want := time.Date(2026, 12, 18, 18, 0, 0, 0, cst); !friday.Deadline.Equal(want) {
		t.Errorf("0101 from Friday 17:00: deadline %s, want %s", friday.Deadline, want)
	}
	if want := district + "20261120000001"; friday.Code != want {
		t.Errorf("Friday's report: code %s, want %s", friday.Code, want)
	}

	// As stored: GET answers what the report returned, with log entry 1.
	for _, e := range append(all, late[0], friday) {
		got, err := s.GetEvent(ctx, e.Code, true)
		if err != nil {
			t.Fatalf("GetEvent %s: %v", e.Code, err)
		}
		if got.Class != e.Class || got.GridCode != e.GridCode || got.Department != e.Department || !got.Deadline.Equal(e.Deadline) ||
			!got.ReportedAt.Equal(e.ReportedAt) || got.Lon != e.Lon || got.Lat != e.Lat || got.Description != e.Description ||
			got.Reporter != e.Reporter || got.Source != "grid_worker" || got.CRS != "wgs84" || !reflect.DeepEqual(got.Media, e.Media) {
			t.Errorf("stored %+v\nreturned %+v", got, e)
		}
		if got.Overdue != time.Now().After(got.Deadline) {
			t.Errorf("%s: overdue %v now, deadline %s", e.Code, got.Overdue, got.Deadline)
		}
		if len(got.Log) != 1 || got.Log[0].N != 1 || got.Log[0].To != grid.StatusReported || got.Log[0].From != "" ||
			got.Log[0].Actor != e.Reporter || !got.Log[0].At.Equal(e.ReportedAt) {
			t.Errorf("%s: log %+v", e.Code, got.Log)
		}
		var loc grid.Location
		if err := json.Unmarshal(got.Location, &loc); err != nil || loc.Grid == nil || loc.Grid.Code != e.GridCode ||
			loc.District == nil || loc.District.Code != district || loc.Street == nil || loc.Street.Code != e.GridCode[:9] ||
			loc.Community == nil || loc.Community.Code != e.GridCode[:12] {
			t.Errorf("%s: location %s (%v)", e.Code, got.Location, err)
		}
		if _, loc := got.ReportedAt.Zone(); loc != 8*3600 {
			t.Errorf("%s: reported_at in zone offset %d, want the city's", e.Code, loc)
		}
	}
	// A report without a reporter is logged under its source.
	anon := c.report(t, g1, "0102")
	anon.Reporter, anon.Source = "", grid.SourceHotline
	a := c.created(t, monday10.Add(2*time.Minute), anon)[0]
	if got, err := s.GetEvent(ctx, a.Code, true); err != nil || got.Log[0].Actor != "hotline" {
		t.Errorf("anonymous report: log %+v (%v), want actor hotline", got, err)
	}

	// One feed row per event, in commit order, carrying what subscribers need.
	entries, bodies := readFeed(t, s, before)
	if len(entries) != len(all)+3 {
		t.Fatalf("%d feed entries, want %d", len(entries), len(all)+3)
	}
	byCode := map[string]*data.Event{}
	for _, e := range append(all, late[0], friday, a) {
		byCode[e.Code] = e
	}
	for i, f := range entries {
		e := byCode[f.EventCode]
		b := bodies[i]
		if e == nil || f.Kind != "created" || f.Status != "reported" || f.From != "" || f.Class != e.Class || f.GridCode != e.GridCode ||
			f.Lon != e.Lon || f.Lat != e.Lat {
			t.Errorf("feed entry %+v for %+v", f, e)
			continue
		}
		delete(byCode, f.EventCode)
		if b.Type != "created" || b.Code != e.Code || b.Status != grid.StatusReported || b.Department != e.Department ||
			!b.Deadline.Equal(e.Deadline) || !b.ReportedAt.Equal(e.ReportedAt) || b.Version != 1 || b.ClassName != e.ClassName ||
			b.GridCode != e.GridCode || b.Actor != e.Log[0].Actor {
			t.Errorf("feed body %+v for %+v", b, e)
		}
	}
	if len(byCode) != 0 {
		t.Errorf("events without a feed row: %v", byCode)
	}
	checkEventCounts(t, s)
}

// TestReportEventsPartialBatch: a report with an unknown class (or no
// grid) fails alone; the rest of its batch is written.
func TestReportEventsPartialBatch(t *testing.T) {
	t.Parallel()
	c := newEvCity(t)
	s := c.s
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, cst)
	before, seq := countEvents(t, s), newestSeq(t, s)
	outside := c.report(t, c.grids[3], "0102")
	outside.Location.Grid = nil
	res := c.reportAt(t, now, c.report(t, c.grids[0], "0102"), c.report(t, c.grids[1], "9999"), c.report(t, c.grids[2], "0101"), outside)
	if res[0].Err != nil || res[2].Err != nil || res[0].Event == nil || res[2].Event == nil {
		t.Fatalf("valid reports: %+v, %+v", res[0], res[2])
	}
	wantInvalid(t, res[1].Err, "class", "9999")
	wantInvalid(t, res[3].Err, "position")
	if res[1].Event != nil || res[3].Event != nil {
		t.Errorf("failed reports carry events: %+v %+v", res[1].Event, res[3].Event)
	}
	// The failed ones took no code number: the valid ones are 1 and 2.
	district := c.grids[0][:6]
	if res[0].Event.Code != district+"20261123000001" || res[2].Event.Code != district+"20261123000002" {
		t.Errorf("codes %s %s", res[0].Event.Code, res[2].Event.Code)
	}
	if n := countEvents(t, s); n != before+2 {
		t.Errorf("%d events, want %d", n, before+2)
	}
	if entries, _ := readFeed(t, s, seq); len(entries) != 2 {
		t.Errorf("%d feed rows, want 2", len(entries))
	}
	if n := len(objStrings(t, s.Pool, `SELECT event_code FROM event_log`)); n != 2 {
		t.Errorf("%d log rows, want 2", n)
	}
	// A batch of invalid reports only writes nothing at all.
	res = c.reportAt(t, now, c.report(t, c.grids[1], "nope"))
	wantInvalid(t, res[0].Err, "class")
	if n := countEvents(t, s); n != before+2 {
		t.Errorf("%d events after an all-invalid batch, want %d", n, before+2)
	}
	checkEventCounts(t, s)
}

// TestReportEventsIdempotency: the same key and body answer the first
// event (Replayed); another body is an *IdempotencyError; a key twice in
// one batch follows its first report; concurrent twins make one event.
func TestReportEventsIdempotency(t *testing.T) {
	t.Parallel()
	c := newEvCity(t)
	s, ctx := c.s, context.Background()
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, cst)
	keyed := func(g, class, key, hash string) data.NewEvent {
		e := c.report(t, g, class)
		e.IdempotencyKey, e.BodyHash = key, []byte(hash)
		return e
	}
	first := c.created(t, now, keyed(c.grids[0], "0102", "k1", "h1"))[0]
	before := countEvents(t, s)

	// Same key, same body: the first event, as it is now.
	if _, err := s.TransitionEventAt(ctx, first.Code, data.Transition{To: grid.StatusRegistered, Actor: "centre"}, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	seq := newestSeq(t, s)
	res := c.reportAt(t, now.Add(time.Hour), keyed(c.grids[0], "0102", "k1", "h1"))
	if r := res[0]; r.Err != nil || !r.Replayed || r.Event == nil || r.Event.Code != first.Code || r.Event.Status != grid.StatusRegistered || r.Event.Version != 2 {
		t.Fatalf("replay: %+v (event %+v)", r, r.Event)
	}
	// Same key, other body.
	res = c.reportAt(t, now.Add(time.Hour), keyed(c.grids[5], "0101", "k1", "h2"))
	var ie *data.IdempotencyError
	if !errors.As(res[0].Err, &ie) || ie.Key != "k1" || ie.Event != first.Code || res[0].Event != nil {
		t.Fatalf("reused key: %+v", res[0])
	}
	if !strings.Contains(ie.Error(), first.Code) {
		t.Errorf("IdempotencyError %q does not name the event", ie)
	}
	if n := countEvents(t, s); n != before {
		t.Errorf("%d events after replays, want %d", n, before)
	}
	if newestSeq(t, s) != seq {
		t.Errorf("a replay wrote to the feed")
	}

	// A key twice in one batch: the second follows the first.
	res = c.reportAt(t, now, keyed(c.grids[1], "0102", "k2", "x"), keyed(c.grids[1], "0102", "k2", "x"),
		keyed(c.grids[2], "0102", "k3", "a"), keyed(c.grids[2], "0102", "k3", "b"), c.report(t, c.grids[3], "0102"))
	if res[0].Err != nil || res[0].Replayed || res[0].Event == nil {
		t.Fatalf("leader k2: %+v", res[0])
	}
	if res[1].Err != nil || !res[1].Replayed || res[1].Event == nil || res[1].Event.Code != res[0].Event.Code || res[1].Event.Version != 1 {
		t.Errorf("follower k2: %+v, leader %s", res[1], res[0].Event.Code)
	}
	if res[2].Err != nil || res[2].Event == nil {
		t.Fatalf("leader k3: %+v", res[2])
	}
	if !errors.As(res[3].Err, &ie) || ie.Key != "k3" || ie.Event != res[2].Event.Code {
		t.Errorf("follower k3 with another body: %+v", res[3])
	}
	if res[4].Err != nil {
		t.Errorf("unkeyed report in the batch: %v", res[4].Err)
	}
	if n := countEvents(t, s); n != before+3 {
		t.Errorf("%d events, want %d (k2, k3 and the unkeyed one)", n, before+3)
	}
	// A key whose first report was invalid did not take the key.
	res = c.reportAt(t, now, keyed(c.grids[4], "nope", "k4", "a"), keyed(c.grids[4], "0102", "k4", "a"))
	wantInvalid(t, res[0].Err, "class")
	if res[1].Err != nil || res[1].Replayed || res[1].Event == nil {
		t.Fatalf("valid report after an invalid one with the same key: %+v", res[1])
	}
	if r := c.reportAt(t, now, keyed(c.grids[4], "0102", "k4", "a"))[0]; !r.Replayed || r.Event == nil || r.Event.Code != res[1].Event.Code {
		t.Errorf("k4 replay: %+v", r)
	}
	keys := objStrings(t, s.Pool, `SELECT key || '=' || coalesce(event_code, 'NULL') FROM event_idempotency ORDER BY key`)
	want := []string{"k1=" + first.Code, "k2=" + res0code(t, s, "k2"), "k3=" + res0code(t, s, "k3"), "k4=" + res[1].Event.Code}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("event_idempotency %v, want %v", keys, want)
	}

	// Concurrent twins, each in its own transaction: one event. (Bounded
	// in time: a twin waiting on the leader's key must not starve it.)
	const twins = 24
	var wg sync.WaitGroup
	start := make(chan struct{})
	results := make([]data.ReportResult, twins)
	errs := make([]error, twins)
	tctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for i := range twins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, err := s.ReportEventsAt(tctx, []data.NewEvent{keyed(c.grids[9], "0102", "twin", "same")}, now)
			errs[i] = err
			if err == nil {
				results[i] = r[0]
			}
		}()
	}
	before = countEvents(t, s)
	close(start)
	wg.Wait()
	createdN, code := 0, ""
	for i, r := range results {
		if errs[i] != nil || r.Err != nil || r.Event == nil {
			t.Fatalf("twin %d: %v %+v", i, errs[i], r)
		}
		if !r.Replayed {
			createdN++
		}
		if code == "" {
			code = r.Event.Code
		}
		if r.Event.Code != code {
			t.Errorf("twin %d answered %s, another %s", i, r.Event.Code, code)
		}
	}
	if createdN != 1 {
		t.Errorf("%d twins created an event, want 1", createdN)
	}
	if n := countEvents(t, s); n != before+1 {
		t.Errorf("%d events after %d twins, want %d", n, twins, before+1)
	}
	checkEventCounts(t, s)
}

// TestReportEventsKeyWaitDoesNotStarvePool: reports waiting on another
// report's Idempotency-Key hold pool connections; the report they wait
// for must finish with the connection it has. Deterministic: a pool of
// two, both connections taken by twins blocked on the key; when the key's
// first holder goes away one twin leads and the other waits on it.
func TestReportEventsKeyWaitDoesNotStarvePool(t *testing.T) {
	t.Parallel()
	c := newEvCity(t)
	s, ctx := c.s, context.Background()
	small, err := data.Open(ctx, s.URL())
	if err != nil {
		t.Fatal(err)
	}
	pc, err := pgxpool.ParseConfig(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	pc.MaxConns = 2
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		t.Fatal(err)
	}
	small.Pool.Close()
	small.Pool = pool
	t.Cleanup(small.Close)
	if _, err := small.EventConfig(ctx); err != nil { // loaded before the pool is busy
		t.Fatal(err)
	}

	// Someone else holds the key (an uncommitted insert).
	holder, err := pgx.Connect(ctx, s.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(ctx)
	htx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := htx.Exec(ctx, `INSERT INTO event_idempotency (key, body_hash) VALUES ('starve', 'x')`); err != nil {
		t.Fatal(err)
	}
	ev := c.report(t, c.grids[3], "0102")
	ev.IdempotencyKey, ev.BodyHash = "starve", []byte("same")
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	type outcome struct {
		res []data.ReportResult
		err error
	}
	out := make(chan outcome, 2)
	for range 2 {
		go func() {
			r, err := small.ReportEventsAt(tctx, []data.NewEvent{ev}, time.Date(2026, 11, 23, 10, 0, 0, 0, cst))
			out <- outcome{r, err}
		}()
	}
	// Both twins wait on the key, each on a connection of its own.
	for deadline := time.Now().Add(10 * time.Second); ; {
		var waiting int
		if err := s.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
			AND wait_event_type = 'Lock' AND query LIKE '%event_idempotency%'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d twins wait on the key, want 2", waiting)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := htx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	created, replayed := 0, 0
	for range 2 {
		o := <-out
		if o.err != nil {
			t.Errorf("twin: %v (the leader could not get a second pool connection while its twin held the last one "+
				"waiting on the leader's key: a statement of the report runs on s.Pool instead of its own connection)", o.err)
			continue
		}
		switch r := o.res[0]; {
		case r.Err != nil:
			t.Errorf("twin: %v", r.Err)
		case r.Replayed:
			replayed++
		default:
			created++
		}
	}
	if !t.Failed() && (created != 1 || replayed != 1) {
		t.Errorf("%d created, %d replayed; want 1 and 1", created, replayed)
	}
}

func res0code(t *testing.T, s *data.Store, key string) string {
	t.Helper()
	out := objStrings(t, s.Pool, `SELECT event_code FROM events e JOIN event_idempotency k ON k.event_code = e.code WHERE k.key = $1`, key)
	if len(out) != 1 {
		t.Fatalf("key %s: events %v", key, out)
	}
	return out[0]
}

type step struct {
	at    string // HH:MM on Monday 23 November
	to    grid.EventStatus
	dept  string
	actor string
}

// TestTransitionEventLoop drives an event around the whole loop, with
// re-dispatches and a failed verification, and checks that every illegal
// or stale move writes nothing.
func TestTransitionEventLoop(t *testing.T) {
	t.Parallel()
	c := newEvCity(t)
	s, ctx := c.s, context.Background()
	day := func(hm string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04", "2026-11-23 "+hm, cst)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	ev := c.created(t, day("10:00"), c.report(t, c.grids[7], "0102"))[0]
	code := ev.Code

	// state checks that nothing moved after a refused move.
	type state struct {
		version, logN int
		seq           int64
	}
	snap := func() state {
		e, err := s.GetEvent(ctx, code, true)
		if err != nil {
			t.Fatal(err)
		}
		return state{e.Version, len(e.Log), newestSeq(t, s)}
	}
	refused := func(what string, tr data.Transition, check func(error)) {
		t.Helper()
		was := snap()
		_, err := s.TransitionEventAt(ctx, code, tr, day("23:00"))
		if err == nil {
			t.Fatalf("%s: accepted", what)
		}
		check(err)
		if now := snap(); now != was {
			t.Errorf("%s: refused, but the event moved from %+v to %+v", what, was, now)
		}
	}
	transitionErr := func(from, to grid.EventStatus, allowed []grid.EventStatus, reason string) func(error) {
		return func(err error) {
			t.Helper()
			var te *grid.TransitionError
			if !errors.As(err, &te) {
				t.Fatalf("%v (%T), want a *grid.TransitionError", err, err)
			}
			if te.From != from || te.To != to || !reflect.DeepEqual(te.Allowed, allowed) || !strings.Contains(te.Reason, reason) {
				t.Errorf("TransitionError %+v, want %s→%s allowed %v reason ~%q", te, from, to, allowed, reason)
			}
		}
	}

	refused("reported→closed", data.Transition{To: grid.StatusClosed, Actor: "x"},
		transitionErr(grid.StatusReported, grid.StatusClosed, []grid.EventStatus{grid.StatusRegistered, grid.StatusRejected}, ""))
	refused("stale If-Match", data.Transition{To: grid.StatusRegistered, Actor: "x", IfVersion: 2}, func(err error) {
		var se *data.StaleError
		if !errors.As(err, &se) || se.Current != `"1"` || se.Code != code {
			t.Errorf("stale: %v (%T)", err, err)
		}
	})
	refused("no actor", data.Transition{To: grid.StatusRegistered}, func(err error) { wantInvalid(t, err, "actor") })
	refused("department on registration", data.Transition{To: grid.StatusRegistered, Actor: "x", Department: "swj"},
		func(err error) { wantInvalid(t, err, "department") })
	if _, err := s.TransitionEventAt(ctx, "44030820261123999999", data.Transition{To: grid.StatusRegistered, Actor: "x"}, day("10:01")); !errors.Is(err, data.ErrNotFound) {
		t.Errorf("unknown event: %v, want ErrNotFound", err)
	}

	steps := []step{
		{"10:05", grid.StatusRegistered, "", "受理员"},
		{"10:10", grid.StatusDispatched, "", "派遣员"},
		{"10:20", grid.StatusDispatched, "swj", "派遣员"}, // re-dispatch from dispatched
		{"10:30", grid.StatusHandling, "", "水务局"},
		{"11:00", grid.StatusDispatched, "cgj", "派遣员"}, // re-dispatch from handling
		{"11:10", grid.StatusHandling, "", "城管"},
		{"12:00", grid.StatusHandled, "", "城管"},
		{"13:00", grid.StatusReturned, "", "网格员"},
		{"13:30", grid.StatusDispatched, "", "派遣员"},
		{"14:00", grid.StatusHandling, "", "城管"},
		{"15:00", grid.StatusHandled, "", "城管"},
		{"15:30", grid.StatusVerified, "", "网格员"},
		{"16:30", grid.StatusClosed, "", "受理员"},
	}
	dept := ev.Department
	for i, st := range steps {
		cur, err := s.GetEvent(ctx, code, false)
		if err != nil {
			t.Fatal(err)
		}
		// Refusals along the way.
		switch cur.Status {
		case grid.StatusDispatched:
			refused("re-dispatch without department", data.Transition{To: grid.StatusDispatched, Actor: "x"},
				transitionErr(grid.StatusDispatched, grid.StatusDispatched, []grid.EventStatus{grid.StatusHandling, grid.StatusDispatched, grid.StatusSuspended}, "must name the department"))
			refused("re-dispatch to the same department", data.Transition{To: grid.StatusDispatched, Actor: "x", Department: cur.Department},
				transitionErr(grid.StatusDispatched, grid.StatusDispatched, []grid.EventStatus{grid.StatusHandling, grid.StatusDispatched, grid.StatusSuspended}, "other than the current"))
			refused("re-dispatch to an unknown department", data.Transition{To: grid.StatusDispatched, Actor: "x", Department: "nosuch"},
				func(err error) { wantInvalid(t, err, "department", "nosuch") })
		case grid.StatusHandled:
			refused("handled→closed", data.Transition{To: grid.StatusClosed, Actor: "x"},
				transitionErr(grid.StatusHandled, grid.StatusClosed, []grid.EventStatus{grid.StatusVerified, grid.StatusReturned}, ""))
		}
		at := day(st.at)
		note := fmt.Sprintf("step %d", i+1)
		got, err := s.TransitionEventAt(ctx, code, data.Transition{To: st.to, Actor: st.actor, Note: note, Department: st.dept, IfVersion: cur.Version}, at)
		if err != nil {
			t.Fatalf("step %d %s→%s: %v", i+1, cur.Status, st.to, err)
		}
		if st.dept != "" {
			dept = st.dept
		}
		if got.Status != st.to || got.Version != cur.Version+1 || !got.UpdatedAt.Equal(at) || got.Department != dept || got.DepartmentName == "" {
			t.Errorf("step %d: %s v%d updated %s dept %s %s", i+1, got.Status, got.Version, got.UpdatedAt, got.Department, got.DepartmentName)
		}
		if got.ETag() != fmt.Sprintf(`"%d"`, got.Version) {
			t.Errorf("ETag %s for version %d", got.ETag(), got.Version)
		}
		if len(got.Log) != i+2 {
			t.Fatalf("step %d: %d log entries", i+1, len(got.Log))
		}
		l := got.Log[i+1]
		if l.N != i+2 || l.From != cur.Status || l.To != st.to || l.Actor != st.actor || l.Note != note || l.Department != st.dept || !l.At.Equal(at) {
			t.Errorf("step %d: log entry %+v", i+1, l)
		}
		// The feed row of the move.
		entries, bodies := readFeed(t, s, newestSeq(t, s)-1)
		if len(entries) != 1 || entries[0].EventCode != code || entries[0].Kind != "transition" || entries[0].From != string(cur.Status) ||
			entries[0].Status != string(st.to) {
			t.Fatalf("step %d: feed %+v", i+1, entries)
		}
		if b := bodies[0]; b.Type != "transition" || b.From != cur.Status || b.Status != st.to || b.Actor != st.actor || b.Note != note ||
			b.Version != got.Version || b.Department != dept || !b.At.Equal(at) {
			t.Errorf("step %d: feed body %+v", i+1, b)
		}
	}
	final, err := s.GetEvent(ctx, code, true)
	if err != nil {
		t.Fatal(err)
	}
	// Handled first at 12:00 (the second "handled" keeps it), closed at 16:30.
	if final.HandledAt == nil || !final.HandledAt.Equal(day("12:00")) || final.ClosedAt == nil || !final.ClosedAt.Equal(day("16:30")) {
		t.Errorf("handled_at %v closed_at %v", final.HandledAt, final.ClosedAt)
	}
	if final.Overdue {
		t.Errorf("a closed event is overdue")
	}
	if len(final.Log) != len(steps)+1 || final.Version != len(steps)+1 {
		t.Errorf("%d log entries, version %d", len(final.Log), final.Version)
	}
	refused("closed→anything", data.Transition{To: grid.StatusDispatched, Actor: "x"},
		transitionErr(grid.StatusClosed, grid.StatusDispatched, nil, ""))

	// The side branch: rejected is final and closes the event.
	r := c.created(t, day("10:00"), c.report(t, c.grids[8], "0101"))[0]
	rej, err := s.TransitionEventAt(ctx, r.Code, data.Transition{To: grid.StatusRejected, Actor: "受理员", Note: "重复上报"}, day("10:30"))
	if err != nil {
		t.Fatal(err)
	}
	if rej.Status != grid.StatusRejected || rej.ClosedAt == nil || !rej.ClosedAt.Equal(day("10:30")) || rej.HandledAt != nil {
		t.Errorf("rejected: %+v", rej)
	}
	if _, err := s.TransitionEventAt(ctx, r.Code, data.Transition{To: grid.StatusRegistered, Actor: "x"}, day("10:40")); err == nil {
		t.Errorf("a rejected event moved on")
	}
	checkEventCounts(t, s)
}

// evSet is a set of events over many days, classes and grids, in every
// status; model holds each event as the store last returned it.
type evSet struct {
	*evCity
	model map[string]*data.Event
}

func buildEventSet(t *testing.T) *evSet {
	t.Helper()
	c := newEvCity(t)
	ctx := context.Background()
	es := &evSet{evCity: c, model: map[string]*data.Event{}}
	classes := []string{"0101", "0102", "0105", "0201", "0401", "0303"}
	// Batches of five share reported_at: pages must break ties by code.
	starts := []time.Time{
		time.Date(2025, 6, 2, 9, 30, 0, 0, cst),
		time.Date(2025, 6, 3, 10, 0, 0, 0, cst),
		time.Date(2025, 6, 3, 10, 0, 0, 1000, cst),
		time.Date(2025, 12, 31, 23, 59, 0, 0, cst),
		time.Date(2026, 1, 1, 0, 0, 0, 0, cst),
		time.Date(2026, 3, 11, 15, 20, 0, 0, cst),
		time.Date(2027, 1, 5, 10, 0, 0, 0, cst), // deadlines in the future
		time.Date(2027, 1, 5, 11, 0, 0, 0, cst),
	}
	n := 0
	for _, at := range starts {
		var evs []data.NewEvent
		for range 5 {
			g := c.grids[(n*37)%len(c.grids)]
			evs = append(evs, c.report(t, g, classes[n%len(classes)]))
			n++
		}
		for _, e := range c.created(t, at, evs...) {
			es.model[e.Code] = e
		}
	}
	// Moves: every third event registered, some dispatched, handled (late
	// or on time), closed, rejected, returned.
	codes := es.codes()
	for i, code := range codes {
		e := es.model[code]
		var path []grid.EventStatus
		switch i % 7 {
		case 0:
			path = []grid.EventStatus{grid.StatusRegistered}
		case 1:
			path = []grid.EventStatus{grid.StatusRegistered, grid.StatusDispatched, grid.StatusHandling, grid.StatusHandled}
		case 2:
			path = []grid.EventStatus{grid.StatusRegistered, grid.StatusDispatched, grid.StatusHandling, grid.StatusHandled, grid.StatusVerified, grid.StatusClosed}
		case 3:
			path = []grid.EventStatus{grid.StatusRejected}
		case 4:
			path = []grid.EventStatus{grid.StatusRegistered, grid.StatusDispatched, grid.StatusHandling, grid.StatusHandled, grid.StatusReturned}
		case 5:
			path = []grid.EventStatus{grid.StatusRegistered, grid.StatusDispatched}
		}
		at := e.ReportedAt
		for j, to := range path {
			// Some handled within their deadline, some after it.
			step := time.Duration(i%5+1) * 37 * time.Minute
			if i%2 == 0 {
				step = time.Duration(i%4+1) * 26 * time.Hour
			}
			at = at.Add(step)
			got, err := c.s.TransitionEventAt(ctx, code, data.Transition{To: to, Actor: "a", Note: fmt.Sprint(j)}, at)
			if err != nil {
				t.Fatalf("%s → %s: %v", code, to, err)
			}
			es.model[code] = got
		}
	}
	// The model's overdue at the time of the query.
	return es
}

// codes lists the model newest first, as lists are ordered.
func (es *evSet) codes() []string {
	out := make([]string, 0, len(es.model))
	for c := range es.model {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := es.model[out[i]], es.model[out[j]]
		if !a.ReportedAt.Equal(b.ReportedAt) {
			return a.ReportedAt.After(b.ReportedAt)
		}
		return out[i] > out[j]
	})
	return out
}

func (es *evSet) where(keep func(e *data.Event) bool) []string {
	out := []string{}
	for _, c := range es.codes() {
		if keep(es.model[c]) {
			out = append(out, c)
		}
	}
	return out
}

// listEvents pages through a filter and returns every code in order.
func listEvents(t *testing.T, s *data.Store, f data.EventFilter) []string {
	t.Helper()
	out := []string{}
	seen := map[string]bool{}
	for page := 0; ; page++ {
		p, err := s.ListEvents(context.Background(), f)
		if err != nil {
			t.Fatalf("ListEvents %+v: %v", f, err)
		}
		limit := f.Limit
		if limit == 0 {
			limit = 100
		}
		if len(p.Events) > limit {
			t.Fatalf("page of %d, limit %d", len(p.Events), limit)
		}
		for _, e := range p.Events {
			if seen[e.Code] {
				t.Fatalf("%s on two pages", e.Code)
			}
			seen[e.Code] = true
			out = append(out, e.Code)
		}
		if p.Next == "" {
			return out
		}
		if len(p.Events) != limit || page > 1000 {
			t.Fatalf("a short page (%d of %d) with a next cursor", len(p.Events), limit)
		}
		f.Cursor = p.Next
	}
}

func TestListEventsFiltersAndPages(t *testing.T) {
	t.Parallel()
	es := buildEventSet(t)
	s := es.s
	now := time.Now()
	overdue := func(e *data.Event) bool { return e.Status.Open() && e.Deadline.Before(now) }
	street := es.grids[0][:9]
	community := es.grids[40][:12]
	var bbox [4]float64
	if err := s.Pool.QueryRow(context.Background(), `SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM
		(SELECT ST_Extent(geom) e FROM units WHERE valid_to IS NULL AND layer = 'base' AND code = $1) x`, street).
		Scan(&bbox[0], &bbox[1], &bbox[2], &bbox[3]); err != nil {
		t.Fatal(err)
	}
	from := time.Date(2025, 6, 3, 10, 0, 0, 0, cst)
	to := time.Date(2026, 1, 1, 0, 0, 0, 0, cst)
	yes, no := true, false
	cases := []struct {
		name string
		f    data.EventFilter
		keep func(e *data.Event) bool
	}{
		{"all", data.EventFilter{}, func(e *data.Event) bool { return true }},
		{"status registered", data.EventFilter{Statuses: []grid.EventStatus{grid.StatusRegistered}}, func(e *data.Event) bool { return e.Status == grid.StatusRegistered }},
		{"status closed,rejected", data.EventFilter{Statuses: []grid.EventStatus{grid.StatusClosed, grid.StatusRejected}},
			func(e *data.Event) bool { return e.Status == grid.StatusClosed || e.Status == grid.StatusRejected }},
		{"class 0102", data.EventFilter{Classes: []string{"0102"}}, func(e *data.Event) bool { return e.Class == "0102" }},
		{"department swj", data.EventFilter{Departments: []string{"swj"}}, func(e *data.Event) bool { return e.Department == "swj" }},
		{"unit district", data.EventFilter{Unit: es.grids[0][:6]}, func(e *data.Event) bool { return true }},
		{"unit street", data.EventFilter{Unit: street}, func(e *data.Event) bool { return strings.HasPrefix(e.GridCode, street) }},
		{"unit community", data.EventFilter{Unit: community}, func(e *data.Event) bool { return strings.HasPrefix(e.GridCode, community) }},
		{"unit grid", data.EventFilter{Unit: es.grids[0]}, func(e *data.Event) bool { return e.GridCode == es.grids[0] }},
		{"bbox", data.EventFilter{BBox: &bbox}, func(e *data.Event) bool {
			return e.Lon >= bbox[0] && e.Lon <= bbox[2] && e.Lat >= bbox[1] && e.Lat <= bbox[3]
		}},
		{"overdue", data.EventFilter{Overdue: &yes}, overdue},
		{"not overdue", data.EventFilter{Overdue: &no}, func(e *data.Event) bool { return !overdue(e) }},
		{"from", data.EventFilter{From: &from}, func(e *data.Event) bool { return !e.ReportedAt.Before(from) }},
		{"to", data.EventFilter{To: &to}, func(e *data.Event) bool { return e.ReportedAt.Before(to) }},
		{"from to", data.EventFilter{From: &from, To: &to}, func(e *data.Event) bool { return !e.ReportedAt.Before(from) && e.ReportedAt.Before(to) }},
		{"combined", data.EventFilter{Statuses: []grid.EventStatus{grid.StatusReported, grid.StatusRegistered, grid.StatusDispatched}, Overdue: &yes, From: &from},
			func(e *data.Event) bool {
				return (e.Status == grid.StatusReported || e.Status == grid.StatusRegistered || e.Status == grid.StatusDispatched) && overdue(e) && !e.ReportedAt.Before(from)
			}},
	}
	for _, tc := range cases {
		want := es.where(tc.keep)
		if tc.name != "all" && tc.name != "unit district" && (len(want) == 0 || len(want) == len(es.model)) {
			t.Errorf("%s: the set selects %d of %d events: not a test of the filter", tc.name, len(want), len(es.model))
		}
		for _, limit := range []int{0, 1, 7, 40, 1000} {
			f := tc.f
			f.Limit = limit
			if got := listEvents(t, s, f); !reflect.DeepEqual(got, want) {
				t.Errorf("%s, limit %d:\n got %v\nwant %v", tc.name, limit, got, want)
			}
		}
	}
	// A page answers events as GetEvent does.
	p, err := s.ListEvents(context.Background(), data.EventFilter{Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range p.Events {
		m := es.model[e.Code]
		if e.Status != m.Status || e.Version != m.Version || !e.Deadline.Equal(m.Deadline) || e.Department != m.Department || e.Log != nil {
			t.Errorf("listed %+v, model %+v", e, m)
		}
	}
	// Errors.
	if _, err := s.ListEvents(context.Background(), data.EventFilter{Limit: 1001}); !isFilterErr(err, "limit") {
		t.Errorf("limit 1001: %v", err)
	}
	for _, cur := range []string{"nope", "e30", p.Next + "x"} {
		if _, err := s.ListEvents(context.Background(), data.EventFilter{Cursor: cur}); !isFilterErr(err, "cursor") {
			t.Errorf("cursor %q: %v", cur, err)
		}
	}
}

func isFilterErr(err error, param string) bool {
	var fe *data.FilterError
	return errors.As(err, &fe) && fe.Param == param
}

func TestEventStats(t *testing.T) {
	t.Parallel()
	es := buildEventSet(t)
	s, ctx := es.s, context.Background()
	district := es.grids[0][:6]
	now := time.Now()
	// truth counts the model's events of unit (a code prefix) by key.
	truth := func(unit string, key func(e *data.Event) string, from, to *time.Time) (all data.EventCount, by map[string]data.EventCount) {
		by = map[string]data.EventCount{}
		var hs, cs []float64
		byH, byC := map[string][]float64{}, map[string][]float64{}
		for _, e := range es.model {
			if !strings.HasPrefix(e.GridCode, unit) || from != nil && e.ReportedAt.Before(*from) || to != nil && !e.ReportedAt.Before(*to) {
				continue
			}
			k := key(e)
			c := by[k]
			for _, x := range []*data.EventCount{&all, &c} {
				x.Total++
				if e.Status.Open() && e.Deadline.Before(now) {
					x.Overdue++
				}
				if e.HandledAt != nil {
					x.Handled++
					if !e.HandledAt.After(e.Deadline) {
						x.OnTime++
					}
				}
				if e.Status == grid.StatusClosed {
					x.Closed++
				}
			}
			if e.HandledAt != nil {
				h := e.HandledAt.Sub(e.ReportedAt).Hours()
				hs, byH[k] = append(hs, h), append(byH[k], h)
			}
			if e.Status == grid.StatusClosed {
				h := e.ClosedAt.Sub(e.ReportedAt).Hours()
				cs, byC[k] = append(cs, h), append(byC[k], h)
			}
			by[k] = c
		}
		mean := func(v []float64) *float64 {
			if len(v) == 0 {
				return nil
			}
			var s float64
			for _, x := range v {
				s += x
			}
			m := s / float64(len(v))
			return &m
		}
		all.AvgHandlingHours, all.AvgClosingHours = mean(hs), mean(cs)
		for k, c := range by {
			c.AvgHandlingHours, c.AvgClosingHours = mean(byH[k]), mean(byC[k])
			by[k] = c
		}
		return all, by
	}
	same := func(what string, got data.EventCount, want data.EventCount) {
		t.Helper()
		approx := func(a, b *float64) bool {
			if a == nil || b == nil {
				return a == nil && b == nil
			}
			return math.Abs(*a-*b) < 1e-6
		}
		if got.Total != want.Total || got.Overdue != want.Overdue || got.Handled != want.Handled || got.OnTime != want.OnTime ||
			got.Closed != want.Closed || !approx(got.AvgHandlingHours, want.AvgHandlingHours) || !approx(got.AvgClosingHours, want.AvgClosingHours) {
			t.Errorf("%s: %s\nwant %s", what, fmtCount(got), fmtCount(want))
		}
	}
	byStatus := func(e *data.Event) string { return string(e.Status) }
	byClass := func(e *data.Event) string { return e.Class }
	from := time.Date(2025, 6, 3, 0, 0, 0, 0, cst)
	to := time.Date(2027, 1, 1, 0, 0, 0, 0, cst)
	for _, tc := range []struct {
		unit, by string
		key      func(e *data.Event) string
		from, to *time.Time
	}{
		{district, "status", byStatus, nil, nil},
		{district, "class", byClass, nil, nil},
		{district, "class", byClass, &from, &to},
		{es.grids[0][:9], "status", byStatus, nil, nil},
		{es.grids[0][:12], "class", byClass, &from, nil},
		{es.grids[0], "status", byStatus, nil, nil},
	} {
		name := fmt.Sprintf("%s by %s from %v to %v", tc.unit, tc.by, tc.from, tc.to)
		st, err := s.EventStats(ctx, tc.unit, tc.by, tc.from, tc.to)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if st.By != tc.by || st.Unit.Code != tc.unit || st.Unit.Name == "" {
			t.Errorf("%s: by %s unit %+v", name, st.By, st.Unit)
		}
		all, by := truth(tc.unit, tc.key, tc.from, tc.to)
		if tc.unit == district && tc.from == nil && all.Total != int64(len(es.model)) {
			t.Fatalf("truth counts %d of %d events", all.Total, len(es.model))
		}
		same(name+": unit", st.Unit.All, all)
		if len(st.Unit.By) != len(by) {
			t.Errorf("%s: groups %v, want %d", name, keysOf(st.Unit.By), len(by))
		}
		for k, w := range by {
			if st.Unit.By[k] == nil {
				t.Errorf("%s: no group %s", name, k)
				continue
			}
			same(name+": "+k, *st.Unit.By[k], w)
		}
		// Children: each as the truth says, summing to the unit.
		wantChildren := objStrings(t, s.Pool, `SELECT code FROM units WHERE valid_to IS NULL AND layer = 'base' AND parent_code = $1 ORDER BY code`, tc.unit)
		if len(st.Children) != len(wantChildren) {
			t.Fatalf("%s: %d children, want %d", name, len(st.Children), len(wantChildren))
		}
		var sum data.EventCount
		sumBy := map[string]int64{}
		for i, ch := range st.Children {
			if ch.Code != wantChildren[i] || ch.Name == "" || ch.Level == "" {
				t.Errorf("%s: child %d %+v, want %s", name, i, ch, wantChildren[i])
			}
			call, cby := truth(ch.Code, tc.key, tc.from, tc.to)
			same(name+": child "+ch.Code, ch.All, call)
			for k, w := range cby {
				if ch.By[k] == nil || ch.By[k].Total != w.Total {
					t.Errorf("%s: child %s group %s: %+v, want %d", name, ch.Code, k, ch.By[k], w.Total)
				}
			}
			sum.Total += ch.All.Total
			sum.Overdue += ch.All.Overdue
			sum.Handled += ch.All.Handled
			sum.Closed += ch.All.Closed
			for k, c := range ch.By {
				sumBy[k] += c.Total
			}
		}
		if len(st.Children) > 0 {
			if sum.Total != st.Unit.All.Total || sum.Overdue != st.Unit.All.Overdue || sum.Handled != st.Unit.All.Handled || sum.Closed != st.Unit.All.Closed {
				t.Errorf("%s: children sum %+v, unit %+v", name, sum, st.Unit.All)
			}
			for k, c := range st.Unit.By {
				if sumBy[k] != c.Total {
					t.Errorf("%s: children's %s sum to %d, unit %d", name, k, sumBy[k], c.Total)
				}
			}
		}
	}
	// The set has what the figures are about.
	all, _ := truth(district, byStatus, nil, nil)
	if all.Overdue == 0 || all.Handled == 0 || all.Closed == 0 || all.OnTime == 0 || all.OnTime == all.Handled {
		t.Errorf("the event set lacks overdue, handled, closed, on-time or late events: %s", fmtCount(all))
	}
	// Errors.
	if _, err := s.EventStats(ctx, district, "department", nil, nil); !isFilterErr(err, "by") {
		t.Errorf("by=department: %v", err)
	}
	if _, err := s.EventStats(ctx, "440399", "status", nil, nil); !errors.Is(err, data.ErrNotFound) {
		t.Errorf("unknown unit: %v", err)
	}
	// An empty range: zeros and null means.
	far := time.Date(2030, 1, 1, 0, 0, 0, 0, cst)
	st, err := s.EventStats(ctx, district, "status", &far, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Unit.All.Total != 0 || st.Unit.All.AvgHandlingHours != nil || len(st.Unit.By) != 0 {
		t.Errorf("empty range: %+v", st.Unit)
	}
}

func keysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func fmtCount(c data.EventCount) string {
	f := func(p *float64) string {
		if p == nil {
			return "nil"
		}
		return fmt.Sprintf("%.6f", *p)
	}
	return fmt.Sprintf("total %d overdue %d handled %d on time %d closed %d avg handling %s closing %s",
		c.Total, c.Overdue, c.Handled, c.OnTime, c.Closed, f(c.AvgHandlingHours), f(c.AvgClosingHours))
}

// TestPruneEventsAndFeedBounds: pruning drops feed rows and keys past
// their retention and moves the pruned mark; new rows continue above it.
func TestPruneEventsAndFeedBounds(t *testing.T) {
	t.Parallel()
	c := newEvCity(t)
	s, ctx := c.s, context.Background()
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, cst)
	// The city's import is in the feed already: a unit change.
	pruned, city, err := s.FeedBounds(ctx)
	if err != nil || pruned != 0 || city != 1 {
		t.Fatalf("fresh FeedBounds %d %d %v, want 0 1 (the city's import)", pruned, city, err)
	}
	keyed := c.report(t, c.grids[0], "0102")
	keyed.IdempotencyKey, keyed.BodyHash = "prune-key", []byte("h")
	first := c.created(t, now, keyed, c.report(t, c.grids[1], "0101"), c.report(t, c.grids[2], "0101"))
	if _, err := s.TransitionEventAt(ctx, first[1].Code, data.Transition{To: grid.StatusRegistered, Actor: "a"}, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	entries, _ := readFeed(t, s, city)
	if len(entries) != 4 {
		t.Fatalf("%d feed entries, want 4", len(entries))
	}
	maxSeq := entries[3].Seq
	if pruned, newest, err := s.FeedBounds(ctx); err != nil || pruned != 0 || newest != maxSeq {
		t.Fatalf("FeedBounds %d %d %v, want 0 %d", pruned, newest, err, maxSeq)
	}
	// Within retention: nothing goes.
	if n, k, err := s.PruneEvents(ctx, time.Hour, time.Hour); err != nil || n != 0 || k != 0 {
		t.Errorf("PruneEvents(1h): %d %d %v", n, k, err)
	}
	// Zero feed retention: every row goes; keys stay (1 h).
	n, k, err := s.PruneEvents(ctx, 0, time.Hour)
	if err != nil || n != 5 || k != 0 {
		t.Errorf("PruneEvents(0, 1h): %d rows %d keys %v, want 5 (the city's and the 4 events') 0", n, k, err)
	}
	if pruned, newest, err := s.FeedBounds(ctx); err != nil || pruned != maxSeq || newest != maxSeq {
		t.Errorf("after pruning: FeedBounds %d %d %v, want %d %d", pruned, newest, err, maxSeq, maxSeq)
	}
	if rest, _ := readFeed(t, s, 0); len(rest) != 0 {
		t.Errorf("%d feed rows after pruning all", len(rest))
	}
	// Pruning again changes nothing, and the mark never goes back.
	if n, _, err := s.PruneEvents(ctx, 0, time.Hour); err != nil || n != 0 {
		t.Errorf("second prune: %d %v", n, err)
	}
	if pruned, _, _ := s.FeedBounds(ctx); pruned != maxSeq {
		t.Errorf("pruned mark %d after an empty prune, want %d", pruned, maxSeq)
	}
	// The key is still remembered …
	if r := c.reportAt(t, now, keyed)[0]; !r.Replayed || r.Event.Code != first[0].Code {
		t.Errorf("replay after feed pruning: %+v", r)
	}
	// … until its retention ends.
	if _, k, err := s.PruneEvents(ctx, time.Hour, 0); err != nil || k != 1 {
		t.Errorf("PruneEvents(1h, 0): %d keys %v, want 1", k, err)
	}
	again := c.reportAt(t, now, keyed)[0]
	if again.Err != nil || again.Replayed || again.Event.Code == first[0].Code {
		t.Errorf("a forgotten key: %+v, want a new event", again)
	}
	// New rows continue above the mark; the events themselves stay.
	after, _ := readFeed(t, s, 0)
	if len(after) != 1 || after[0].Seq <= maxSeq || after[0].EventCode != again.Event.Code {
		t.Errorf("feed after pruning %+v", after)
	}
	if pruned, newest, _ := s.FeedBounds(ctx); pruned != maxSeq || newest != after[0].Seq {
		t.Errorf("FeedBounds %d %d, want %d %d", pruned, newest, maxSeq, after[0].Seq)
	}
	if n := countEvents(t, s); n != 4 {
		t.Errorf("%d events, want 4: pruning the feed must not drop events", n)
	}
}

// TestEventConfigEdits: a class, calendar or hours edit applies to the
// next report, on this store and on another store (another server) on
// the same database; events already reported keep their deadline.
func TestEventConfigEdits(t *testing.T) {
	t.Parallel()
	c := newEvCity(t)
	s, ctx := c.s, context.Background()
	other, err := data.Open(ctx, s.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)
	monday10 := time.Date(2026, 11, 23, 10, 0, 0, 0, cst)
	g := c.grids[11]
	report := func(st *data.Store, class string) *data.Event {
		t.Helper()
		res, err := st.ReportEventsAt(ctx, []data.NewEvent{c.report(t, g, class)}, monday10)
		if err != nil || res[0].Err != nil {
			t.Fatalf("report: %v %+v", err, res)
		}
		return res[0].Event
	}
	at := func(day, hm string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04", day+" "+hm, cst)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	expectDeadline := func(what string, e *data.Event, dept string, want time.Time) {
		t.Helper()
		if !e.Deadline.Equal(want) || e.Department != dept {
			t.Errorf("%s: department %s deadline %s, want %s %s", what, e.Department, e.Deadline, dept, want)
		}
	}
	// Both stores have the configuration cached.
	e1 := report(s, "0102")
	expectDeadline("before the edit", e1, "cgj", at("2026-11-23", "16:00"))
	expectDeadline("other store before the edit", report(other, "0102"), "cgj", at("2026-11-23", "16:00"))

	row, err := s.EventClass(ctx, "0102")
	if err != nil {
		t.Fatal(err)
	}
	cls := row.EventClass
	cls.Limit = grid.Limit{Amount: 8, Unit: grid.WorkingHours}
	put, created, err := s.PutEventClass(ctx, cls, row.Version)
	if err != nil || created || put.Version != row.Version+1 || put.Limit != cls.Limit {
		t.Fatalf("PutEventClass: %+v created %v %v", put, created, err)
	}
	// 8 working hours from Monday 10:00: 2 + 4 on Monday, 2 on Tuesday → 11:00.
	expectDeadline("after the edit", report(s, "0102"), "cgj", at("2026-11-24", "11:00"))
	expectDeadline("other store after the edit", report(other, "0102"), "cgj", at("2026-11-24", "11:00"))

	// An edit through the other store reaches this one.
	cls.Department, cls.Limit = "swj", grid.Limit{Amount: 1, Unit: grid.WorkingDays}
	if _, _, err := other.PutEventClass(ctx, cls, put.Version); err != nil {
		t.Fatal(err)
	}
	e := report(s, "0102")
	expectDeadline("edit from the other store", e, "swj", at("2026-11-24", "18:00"))
	if e.DepartmentName != "水务局" {
		t.Errorf("department name %q", e.DepartmentName)
	}
	// The calendar: Tuesday a holiday → Wednesday.
	if err := other.PutCalendarDay(ctx, data.CalendarDay{Day: "2026-11-24", Kind: grid.Holiday, Name: "test"}); err != nil {
		t.Fatal(err)
	}
	expectDeadline("holiday on Tuesday", report(s, "0102"), "swj", at("2026-11-25", "18:00"))
	// Working hours: the day ends at 17:30.
	if err := other.PutWorkHours(ctx, data.WorkHours{Timezone: "Asia/Shanghai", Periods: "13:30-17:30, 08:30-12:00"}); err != nil {
		t.Fatal(err)
	}
	expectDeadline("new hours", report(s, "0102"), "swj", at("2026-11-25", "17:30"))
	cal, err := s.Calendar(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cal.Periods != "08:30-12:00,13:30-17:30" || cal.Timezone != "Asia/Shanghai" || !slices.ContainsFunc(cal.Days, func(d data.CalendarDay) bool {
		return d.Day == "2026-11-24" && d.Kind == grid.Holiday && d.Name == "test"
	}) {
		t.Errorf("calendar %+v", cal)
	}
	// Clearing the day brings Tuesday back.
	if err := s.PutCalendarDay(ctx, data.CalendarDay{Day: "2026-11-24"}); err != nil {
		t.Fatal(err)
	}
	expectDeadline("holiday cleared", report(other, "0102"), "swj", at("2026-11-24", "17:30"))

	// The first event kept its deadline and department.
	got, err := s.GetEvent(ctx, e1.Code, false)
	if err != nil || !got.Deadline.Equal(e1.Deadline) || got.Department != "cgj" {
		t.Errorf("an event reported before the edits: %+v %v", got, err)
	}

	// Refusals.
	if _, _, err := s.PutEventClass(ctx, cls, row.Version); err == nil {
		t.Errorf("a stale If-Match was accepted")
	} else {
		var se *data.StaleError
		if !errors.As(err, &se) || se.Current != fmt.Sprintf(`"%d"`, row.Version+2) {
			t.Errorf("stale: %v", err)
		}
	}
	bad := cls
	bad.Department = "nosuch"
	_, _, err = s.PutEventClass(ctx, bad, 0)
	wantInvalid(t, err, "department", "nosuch")
	bad = cls
	bad.Limit.Unit = "working_weeks"
	_, _, err = s.PutEventClass(ctx, bad, 0)
	wantInvalid(t, err, "class", "working_weeks")
	fresh := grid.EventClass{Code: "9901", Name: "测试类", Department: "jdb", Limit: grid.Limit{Amount: 3, Unit: grid.WorkingHours}}
	if _, _, err := s.PutEventClass(ctx, fresh, 1); !errors.Is(err, data.ErrNotFound) {
		t.Errorf("If-Match on a new class: %v, want ErrNotFound", err)
	}
	row2, created, err := s.PutEventClass(ctx, fresh, 0)
	if err != nil || !created || row2.Version != 1 || row2.DepartmentName == "" {
		t.Fatalf("new class: %+v %v %v", row2, created, err)
	}
	// The new class is reportable at once, from the other store too.
	expectDeadline("new class", report(other, "9901"), "jdb", at("2026-11-23", "14:30"))
	if err := s.PutWorkHours(ctx, data.WorkHours{Timezone: "Mars/Olympus", Periods: "09:00-12:00"}); err == nil {
		t.Errorf("unknown time zone accepted")
	} else {
		wantInvalid(t, err, "timezone")
	}
	if err := s.PutWorkHours(ctx, data.WorkHours{Timezone: "Asia/Shanghai", Periods: "12:00-09:00"}); err == nil {
		t.Errorf("backwards period accepted")
	} else {
		wantInvalid(t, err, "periods")
	}
	if err := s.PutCalendarDay(ctx, data.CalendarDay{Day: "2026-11-31", Kind: grid.Holiday}); err == nil {
		t.Errorf("2026-11-31 accepted")
	} else {
		wantInvalid(t, err, "day")
	}
	if err := s.PutCalendarDay(ctx, data.CalendarDay{Day: "2026-11-30", Kind: "vacation"}); err == nil {
		t.Errorf("kind vacation accepted")
	} else {
		wantInvalid(t, err, "kind")
	}
	if _, err := s.PutDepartment(ctx, data.Department{Code: "a b", Name: "x"}); err == nil {
		t.Errorf("department code with a space accepted")
	} else {
		wantInvalid(t, err, "code")
	}
	if created, err := s.PutDepartment(ctx, data.Department{Code: "new-dept", Name: "新部门"}); err != nil || !created {
		t.Errorf("new department: %v %v", created, err)
	}
	if created, err := s.PutDepartment(ctx, data.Department{Code: "new-dept", Name: "改名"}); err != nil || created {
		t.Errorf("renamed department: %v %v", created, err)
	}
	cfg, err := other.EventConfig(ctx)
	if err != nil || cfg.Departments["new-dept"].Name != "改名" || cfg.Classes["9901"].Department != "jdb" {
		t.Errorf("the other store's config: %v %+v", err, cfg.Departments["new-dept"])
	}
}

// TestEventsConcurrentReportsAndMoves: reports from many goroutines get unique,
// gapless numbers; concurrent moves of events in the same grid (whose
// count rows they all update) all succeed and keep event_counts exact;
// the feed holds one row per report and move, in seq order.
func TestEventsConcurrentReportsAndMoves(t *testing.T) {
	t.Parallel()
	c := newEvCity(t)
	s, ctx := c.s, context.Background()
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, cst)
	start := newestSeq(t, s)
	const workers, each = 10, 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	var codes []string
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				// Two grids only: every move touches the same count rows.
				g := c.grids[(w+i)%2]
				res, err := s.ReportEventsAt(ctx, []data.NewEvent{c.report(t, g, "0102")}, now)
				if err != nil || res[0].Err != nil {
					errs <- fmt.Errorf("report: %v %v", err, res)
					return
				}
				mu.Lock()
				codes = append(codes, res[0].Event.Code)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	sort.Strings(codes)
	for i, code := range codes {
		if want := fmt.Sprintf("%s20261123%06d", c.grids[0][:6], i+1); code != want {
			t.Fatalf("code %d is %s, want %s (unique and gapless)", i, code, want)
		}
	}
	// Every event moved concurrently through four steps.
	path := []data.Transition{
		{To: grid.StatusRegistered, Actor: "a"}, {To: grid.StatusDispatched, Actor: "a"},
		{To: grid.StatusHandling, Actor: "a"}, {To: grid.StatusHandled, Actor: "a"},
	}
	errs = make(chan error, len(codes))
	for i, code := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j, tr := range path {
				if i%3 == 0 && j == 3 {
					return // some stay in handling
				}
				if _, err := s.TransitionEventAt(ctx, code, tr, now.Add(time.Duration(j+1)*time.Minute)); err != nil {
					errs <- fmt.Errorf("%s → %s: %v", code, tr.To, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	checkEventCounts(t, s)
	entries, _ := readFeed(t, s, start)
	moves := len(codes)*len(path) - (len(codes)+2)/3
	if len(entries) != len(codes)+moves {
		t.Errorf("%d feed rows, want %d reports + %d moves", len(entries), len(codes), moves)
	}
	// Per event, its feed rows follow its log.
	versions := map[string]int{}
	for _, f := range entries {
		var b feedRow
		if err := json.Unmarshal(f.Body, &b); err != nil {
			t.Fatal(err)
		}
		if b.Version != versions[f.EventCode]+1 {
			t.Errorf("%s: feed row of version %d after version %d", f.EventCode, b.Version, versions[f.EventCode])
		}
		versions[f.EventCode] = b.Version
	}
}
