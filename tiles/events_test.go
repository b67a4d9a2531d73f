package tiles_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/mvt"

	"gridmap/data"
	"gridmap/data/pgtest"
	"gridmap/geo"
	"gridmap/grid"
	"gridmap/tiles"
)

// evCity is the small demo city with a locator, to report events in it.
type evCity struct {
	t     testing.TB
	store *data.Store
	loc   *grid.Locator
	bbox  orb.Bound // of the district
}

func newEvCity(t testing.TB) *evCity {
	t.Helper()
	store := pgtest.NewDemo(t)
	ctx := context.Background()
	units, err := store.CurrentUnits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := &evCity{t: t, store: store, loc: grid.NewLocator(units)}
	if err := store.Pool.QueryRow(ctx, `SELECT ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom) FROM units
		WHERE valid_to IS NULL AND layer = 'base' AND code = '440308'`).Scan(&c.bbox.Min[0], &c.bbox.Min[1], &c.bbox.Max[0], &c.bbox.Max[1]); err != nil {
		t.Fatal(err)
	}
	return c
}

// report stores one event of class at each point, reported at at, and
// returns their codes.
func (c *evCity) report(at time.Time, class string, pts ...orb.Point) []string {
	c.t.Helper()
	evs := make([]data.NewEvent, len(pts))
	for i, p := range pts {
		evs[i] = data.NewEvent{Class: class, Lon: p[0], Lat: p[1], CRS: geo.WGS84, InputLon: p[0], InputLat: p[1],
			Location: c.loc.Locate(p[0], p[1]), Source: grid.SourceGridWorker}
	}
	res, err := c.store.ReportEventsAt(context.Background(), evs, at)
	if err != nil {
		c.t.Fatal(err)
	}
	codes := make([]string, len(res))
	for i, r := range res {
		if r.Err != nil {
			c.t.Fatalf("report at %v: %v", pts[i], r.Err)
		}
		codes[i] = r.Event.Code
	}
	return codes
}

// move drives an event through the workflow to status to.
func (c *evCity) move(code string, at time.Time, to ...grid.EventStatus) {
	c.t.Helper()
	for i, s := range to {
		if _, err := c.store.TransitionEventAt(context.Background(), code, data.Transition{To: s, Actor: "test"}, at.Add(time.Duration(i)*time.Minute)); err != nil {
			c.t.Fatalf("%s → %s: %v", code, s, err)
		}
	}
}

// randomPoints are n points inside grids of the city.
func (c *evCity) randomPoints(rng *rand.Rand, n int) []orb.Point {
	var out []orb.Point
	for len(out) < n {
		p := orb.Point{c.bbox.Min[0] + rng.Float64()*(c.bbox.Max[0]-c.bbox.Min[0]), c.bbox.Min[1] + rng.Float64()*(c.bbox.Max[1]-c.bbox.Min[1])}
		if c.loc.Locate(p[0], p[1]).Grid != nil {
			out = append(out, p)
		}
	}
	return out
}

// evClock is the render clock of the tests: a Monday morning in Shenzhen.
var evClock = time.Date(2025, 6, 16, 10, 0, 0, 0, time.FixedZone("CST", 8*3600))

// scatter reports n events at random points in the 30 days before
// evClock, of classes with deadlines from 2 working hours to 20 working
// days, and moves some of them on through every state.
func (c *evCity) scatter(n int, seed uint64) {
	c.t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	classes := []string{"0101", "0102", "0103", "0104", "0107"}
	const batch = 100
	var codes []string
	var at []time.Time
	for i := 0; i < n; i += batch {
		when := evClock.Add(-time.Duration(rng.IntN(30*24*60)) * time.Minute)
		cs := c.report(when, classes[rng.IntN(len(classes))], c.randomPoints(rng, min(batch, n-i))...)
		for range cs {
			at = append(at, when)
		}
		codes = append(codes, cs...)
	}
	paths := [][]grid.EventStatus{
		{grid.StatusRegistered},
		{grid.StatusRegistered, grid.StatusDispatched},
		{grid.StatusRegistered, grid.StatusDispatched, grid.StatusHandling},
		{grid.StatusRegistered, grid.StatusDispatched, grid.StatusHandling, grid.StatusHandled},
		{grid.StatusRegistered, grid.StatusDispatched, grid.StatusHandling, grid.StatusHandled, grid.StatusVerified},
		{grid.StatusRegistered, grid.StatusDispatched, grid.StatusHandling, grid.StatusHandled, grid.StatusVerified, grid.StatusClosed},
		{grid.StatusRejected},
		{grid.StatusRegistered, grid.StatusDispatched, grid.StatusHandling, grid.StatusHandled, grid.StatusReturned},
	}
	// One event in four moves on (the rest stay reported), in parallel.
	var wg sync.WaitGroup
	work := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				for j, s := range paths[i%len(paths)] {
					if _, err := c.store.TransitionEventAt(context.Background(), codes[i], data.Transition{To: s, Actor: "test"},
						at[i].Add(time.Duration(j+1)*time.Minute)); err != nil {
						c.t.Errorf("%s → %s: %v", codes[i], s, err)
						return
					}
				}
			}
		}()
	}
	for i := 0; i < len(codes); i += 4 {
		work <- i
	}
	close(work)
	wg.Wait()
	if c.t.Failed() {
		c.t.FailNow()
	}
}

// evRenderer renders at the given clock.
func evRenderer(t testing.TB, store *data.Store, now func() time.Time) *tiles.Renderer {
	t.Helper()
	cat, err := tiles.NewCatalogue(tiles.DefaultZooms)
	if err != nil {
		t.Fatal(err)
	}
	return &tiles.Renderer{Pool: store.Pool, Catalogue: cat, Now: now}
}

func evRender(t *testing.T, r *tiles.Renderer, k tiles.Key) tiles.Rendered {
	t.Helper()
	out, err := r.RenderTile(context.Background(), k.Layer, k.Z, k.X, k.Y)
	if err != nil {
		t.Fatalf("render %v: %v", k, err)
	}
	return out
}

// densest is the point of the event in the z14 tile holding the most
// events.
func densest(t *testing.T, store *data.Store) orb.Point {
	t.Helper()
	var p orb.Point
	if err := store.Pool.QueryRow(context.Background(), `
		WITH e AS (SELECT geom, floor((ST_X(geom) + 180) / 360 * 16384) AS x,
		                  floor((1 - ln(tan(radians(ST_Y(geom))) + 1 / cos(radians(ST_Y(geom)))) / pi()) / 2 * 16384) AS y FROM events),
		     d AS (SELECT x, y FROM e GROUP BY 1, 2 ORDER BY count(*) DESC, 1, 2 LIMIT 1)
		SELECT ST_X(e.geom), ST_Y(e.geom) FROM e JOIN d USING (x, y) LIMIT 1`).Scan(&p[0], &p[1]); err != nil {
		t.Fatal(err)
	}
	return p
}

// eventsNear are the codes of the events within margin (in tile widths)
// of tile k.
func eventsNear(t *testing.T, store *data.Store, k tiles.Key, margin float64) map[string]bool {
	t.Helper()
	rows, err := store.Pool.Query(context.Background(), `SELECT code FROM events
		WHERE ST_Intersects(geom, ST_Transform(ST_TileEnvelope($1, $2, $3, margin => $4), 4326))`, k.Z, k.X, k.Y, margin)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			t.Fatal(err)
		}
		out[c] = true
	}
	return out
}

// statusCounts is the oracle of a count point, from the events table.
func statusCounts(t *testing.T, store *data.Store, code string, now time.Time) map[string]float64 {
	t.Helper()
	rows, err := store.Pool.Query(context.Background(), `SELECT status, deadline FROM events WHERE grid_code LIKE $1 || '%'`, code)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]float64{"total": 0, "open": 0, "overdue": 0}
	for _, s := range []string{"reported", "registered", "dispatched", "handling", "handled", "verified", "closed", "rejected", "returned", "suspended"} {
		out[s] = 0
	}
	for rows.Next() {
		var s string
		var deadline time.Time
		if err := rows.Scan(&s, &deadline); err != nil {
			t.Fatal(err)
		}
		out["total"]++
		out[s]++
		if grid.EventStatus(s).Open() {
			out["open"]++
		}
		if grid.Overdue(grid.EventStatus(s), deadline, now) {
			out["overdue"]++
		}
	}
	return out
}

// Events tiles on ~2,000 events: single events from z13 with their fields
// as the store has them, per-unit counts below that agree with the events
// table, the same bytes twice, and per-grid counts past the cap.
func TestEventTiles(t *testing.T) {
	t.Parallel()
	city := newEvCity(t)
	city.scatter(2000, 1)
	store := city.store
	now := evClock.Add(time.Minute)
	r := evRenderer(t, store, func() time.Time { return now })
	ctx := context.Background()
	p := densest(t, store)

	t.Run("events", func(t *testing.T) {
		seenOverdue, seenOpen := 0, 0
		for _, z := range []int{13, 14, 15} {
			k := keyAt("events", p, z)
			out := evRender(t, r, k)
			layers := decode(t, out.MVT)
			if fmt.Sprint(names(layers)) != "[events]" {
				t.Fatalf("%v: layers %v, want [events]", k, names(layers))
			}
			l := layers["events"]
			if l.Extent != tiles.Extent || l.Version != 2 {
				t.Errorf("%v: extent %d version %d", k, l.Extent, l.Version)
			}
			got := map[string]bool{}
			ids := map[float64]bool{}
			var prev string
			var nextDeadline time.Time
			for _, f := range l.Features {
				code, _ := f.Properties["code"].(string)
				if code <= prev {
					t.Errorf("%v: %s after %s: not ordered by code", k, code, prev)
				}
				prev = code
				got[code] = true
				id, ok := f.ID.(float64)
				if !ok || id <= 0 || id >= 1<<53 || id != math.Trunc(id) || ids[id] {
					t.Errorf("%v %s: id %#v (want a unique integer in (0, 2^53))", k, code, f.ID)
				}
				ids[id] = true
				if _, ok := f.Geometry.(orb.Point); !ok {
					t.Errorf("%v %s: geometry %T", k, code, f.Geometry)
				}
				ev, err := store.GetEvent(ctx, code, false)
				if err != nil {
					t.Fatalf("%s: %v", code, err)
				}
				overdue := grid.Overdue(ev.Status, ev.Deadline, now)
				want := map[string]any{"code": code, "class": ev.Class, "class_name": ev.ClassName, "status": string(ev.Status),
					"overdue": overdue, "age_h": math.Floor(now.Sub(ev.ReportedAt).Hours()),
					"reported_at": float64(ev.ReportedAt.Unix()), "deadline": float64(ev.Deadline.Unix()), "grid_code": ev.GridCode}
				if !reflect.DeepEqual(map[string]any(f.Properties), want) {
					t.Errorf("%v: feature\n%v, want\n%v", k, f.Properties, want)
				}
				if overdue {
					seenOverdue++
				} else if ev.Status.Open() {
					seenOpen++
					if nextDeadline.IsZero() || ev.Deadline.Before(nextDeadline) {
						nextDeadline = ev.Deadline
					}
				}
			}
			// Every event inside the tile and its buffer, nothing beyond
			// (points within half a pixel of the buffer's edge may go
			// either way).
			for c := range eventsNear(t, store, k, 63.5/4096) {
				if !got[c] {
					t.Errorf("%v: event %s is missing", k, c)
				}
			}
			near := eventsNear(t, store, k, 64.5/4096)
			for c := range got {
				if !near[c] {
					t.Errorf("%v: event %s lies outside the tile", k, c)
				}
			}
			if len(got) < 10 {
				t.Errorf("%v: only %d events; the test wants more", k, len(got))
			}
			// Expiry: the first deadline to come of an open event drawn,
			// or a minute.
			want := now.Add(tiles.EventsMaxAge)
			if !nextDeadline.IsZero() && nextDeadline.Before(want) {
				want = nextDeadline
			}
			if !out.Expires.Equal(want) {
				t.Errorf("%v: expires %v, want %v", k, out.Expires, want)
			}
			t.Logf("%v: %d events, %d bytes", k, len(got), len(out.MVT))
		}
		if seenOverdue == 0 || seenOpen == 0 {
			t.Errorf("the tiles show %d overdue and %d open, not overdue events: the test wants both", seenOverdue, seenOpen)
		}
	})

	t.Run("counts", func(t *testing.T) {
		var all float64
		if err := store.Pool.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&all); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			z     int
			level string
		}{{6, "district"}, {8, "district"}, {9, "street"}, {10, "street"}, {11, "street"}, {12, "community"}} {
			// The tile of the count point of p's unit at that level.
			g := city.loc.Locate(p[0], p[1]).Grid.Code
			k := keyAt("events", pointOf(t, store, g[:map[string]int{"district": 6, "street": 9, "community": 12}[tc.level]]), tc.z)
			out := evRender(t, r, k)
			layers := decode(t, out.MVT)
			if fmt.Sprint(names(layers)) != "[event_counts]" {
				t.Fatalf("%v: layers %v, want [event_counts]", k, names(layers))
			}
			var total float64
			var prev string
			for _, f := range layers["event_counts"].Features {
				code, _ := f.Properties["code"].(string)
				if code <= prev {
					t.Errorf("%v: %s after %s: not ordered by code", k, code, prev)
				}
				prev = code
				if f.Properties["level"] != tc.level || f.ID != mustFloat(t, code) || f.Properties["name"] == "" {
					t.Errorf("%v %s: level %v id %v name %v", k, code, f.Properties["level"], f.ID, f.Properties["name"])
				}
				want := statusCounts(t, store, code, now)
				for field, n := range want {
					if f.Properties[field] != n {
						t.Errorf("%v %s: %s = %v, want %v", k, code, field, f.Properties[field], n)
					}
				}
				if len(f.Properties) != len(want)+3 {
					t.Errorf("%v %s: fields %v", k, code, f.Properties)
				}
				if f.Properties["total"] == 0.0 {
					t.Errorf("%v %s: a unit without events is drawn", k, code)
				}
				total += want["total"]
			}
			// Every unit of the level with events whose count point lies in
			// the tile is drawn.
			var units int
			if err := store.Pool.QueryRow(ctx, `SELECT count(*) FROM units u
				WHERE valid_to IS NULL AND layer = 'base' AND level = $1
				  AND ST_Intersects(ST_PointOnSurface(geom), ST_Transform(ST_TileEnvelope($2, $3, $4, margin => 63.5 / 4096), 4326))
				  AND EXISTS (SELECT 1 FROM events e WHERE e.grid_code LIKE u.code || '%')`, tc.level, k.Z, k.X, k.Y).Scan(&units); err != nil {
				t.Fatal(err)
			}
			if n := len(layers["event_counts"].Features); n < units || n == 0 {
				t.Errorf("%v: %d count points, want at least %d", k, n, units)
			}
			if tc.z <= 8 && total != all {
				t.Errorf("%v: the districts count %v events, the table holds %v", k, total, all)
			}
			if out.Expires.IsZero() || out.Expires.After(now.Add(tiles.EventsMaxAge)) || out.Expires.Before(now) {
				t.Errorf("%v: expires %v (now %v)", k, out.Expires, now)
			}
		}
		// The first deadline to come of the open events the z6 tile counts
		// (all of them).
		var next time.Time
		if err := store.Pool.QueryRow(ctx, `SELECT coalesce(min(deadline), $1::timestamptz + interval '1 hour') FROM events
			WHERE status IN ('reported', 'registered', 'dispatched', 'handling', 'returned') AND deadline >= $1::timestamptz`, now).Scan(&next); err != nil {
			t.Fatal(err)
		}
		want := now.Add(tiles.EventsMaxAge)
		if next.Before(want) {
			want = next
		}
		if got := evRender(t, r, keyAt("events", pointOf(t, store, "440308"), 6)).Expires; !got.Equal(want) {
			t.Errorf("z6 expires %v, want %v", got, want)
		}
	})

	t.Run("deterministic", func(t *testing.T) {
		for _, z := range []int{6, 10, 12, 13, 14} {
			k := keyAt("events", p, z)
			a, b := evRender(t, r, k), evRender(t, r, k)
			if string(a.MVT) != string(b.MVT) || len(a.MVT) == 0 {
				t.Errorf("%v: two renders differ (%d and %d bytes)", k, len(a.MVT), len(b.MVT))
			}
		}
	})

	t.Run("cap", func(t *testing.T) {
		k := keyAt("events", p, 14)
		n := len(decode(t, evRender(t, r, k).MVT)["events"].Features)
		capped := *r
		capped.ObjectCap = n - 1
		out := evRender(t, &capped, k)
		layers := decode(t, out.MVT)
		if fmt.Sprint(names(layers)) != "[event_counts]" {
			t.Fatalf("cap %d of %d events: layers %v, want [event_counts]", n-1, n, names(layers))
		}
		var sum float64
		for _, f := range layers["event_counts"].Features {
			code, _ := f.Properties["code"].(string)
			if f.Properties["level"] != "grid" {
				t.Errorf("%s: a count of level %v past the cap", code, f.Properties["level"])
			}
			want := statusCounts(t, store, code, now)
			for field, n := range want {
				if f.Properties[field] != n {
					t.Errorf("grid %s: %s = %v, want %v", code, field, f.Properties[field], n)
				}
			}
			sum += want["total"]
		}
		if sum < float64(n) {
			t.Errorf("the grids counted hold %v events, the tile %d", sum, n)
		}
		if out.Expires.IsZero() {
			t.Error("the capped tile has no expiry")
		}
		capped.ObjectCap = n // exactly the cap: the events themselves
		if got := names(decode(t, evRender(t, &capped, k).MVT)); fmt.Sprint(got) != "[events]" {
			t.Errorf("cap %d of %d events: layers %v", n, n, got)
		}
	})
}

func mustFloat(t *testing.T, code string) float64 {
	t.Helper()
	var f float64
	if _, err := fmt.Sscan(code, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

// An event past its deadline is overdue (open, deadline < now), with its
// age in whole hours; once handled or rejected it is not.
func TestEventTileOverdueAndAge(t *testing.T) {
	t.Parallel()
	city := newEvCity(t)
	ctx := context.Background()
	p := pointOf(t, city.store, "440308")
	// 0102 暴露垃圾 has 4 working hours: reported 75 hours before the
	// clock it is late; 0101 私搭乱建 (20 working days) reported 10
	// minutes before is not.
	old := city.report(evClock.Add(-75*time.Hour), "0102", p)[0]
	fresh := city.report(evClock.Add(-10*time.Minute), "0101", orb.Point{p[0] + 0.0005, p[1]})[0]
	r := evRenderer(t, city.store, func() time.Time { return evClock })
	k := keyAt("events", p, 16)
	props := func() map[string]map[string]any {
		out := map[string]map[string]any{}
		for _, f := range decode(t, render(t, r, k))["events"].Features {
			out[f.Properties["code"].(string)] = f.Properties
		}
		return out
	}
	got := props()
	if got[old]["overdue"] != true || got[old]["status"] != "reported" || got[old]["age_h"] != 75.0 {
		t.Errorf("the old event: %v, want overdue, reported, 75 h old", got[old])
	}
	if got[fresh]["overdue"] != false || got[fresh]["age_h"] != 0.0 {
		t.Errorf("the fresh event: %v, want not overdue, 0 h old", got[fresh])
	}
	ev, _ := city.store.GetEvent(ctx, old, false)
	if !ev.Deadline.Before(evClock) || got[old]["deadline"] != float64(ev.Deadline.Unix()) {
		t.Errorf("the store says deadline %v; the tile %v", ev.Deadline, got[old]["deadline"])
	}
	city.move(old, evClock, grid.StatusRejected)
	if got := props(); got[old]["overdue"] != false || got[old]["status"] != "rejected" {
		t.Errorf("rejected: %v, want not overdue", got[old])
	}
	// The district's count: one open event, none overdue now.
	counts := decode(t, render(t, r, keyAt("events", p, 6)))["event_counts"].Features
	if len(counts) != 1 || counts[0].Properties["total"] != 2.0 || counts[0].Properties["open"] != 1.0 ||
		counts[0].Properties["overdue"] != 0.0 || counts[0].Properties["rejected"] != 1.0 || counts[0].Properties["reported"] != 1.0 {
		t.Errorf("district counts %v", counts)
	}
}

// fakeClock is a settable clock for the renderer and the cache.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// An events tile is not served past the first deadline of an open event
// it draws (or counts), nor more than a minute after it was rendered: the
// cache renders it again, and the overdue flag and counts turn.
func TestEventTileExpiry(t *testing.T) {
	t.Parallel()
	city := newEvCity(t)
	ctx := context.Background()
	p := pointOf(t, city.store, "440308")
	code := city.report(evClock, "0102", p)[0]
	ev, err := city.store.GetEvent(ctx, code, false)
	if err != nil {
		t.Fatal(err)
	}
	deadline := ev.Deadline
	clock := &fakeClock{now: deadline.Add(-30 * time.Second)}
	r := evRenderer(t, city.store, clock.Now)
	cache := tiles.NewCache(1 << 20)
	cache.Now = clock.Now
	get := func(k tiles.Key) (*tiles.Entry, bool) {
		t.Helper()
		e, hit, err := cache.GetRendered(ctx, k, func(ctx context.Context) (tiles.Rendered, error) {
			return r.RenderTile(ctx, k.Layer, k.Z, k.X, k.Y)
		})
		if err != nil {
			t.Fatal(err)
		}
		return e, hit
	}
	feature := func(e *tiles.Entry, layer string) map[string]any {
		t.Helper()
		b, err := e.MVT()
		if err != nil {
			t.Fatal(err)
		}
		fs := decode(t, b)[layer].Features
		if len(fs) != 1 {
			t.Fatalf("%d features in %s, want 1", len(fs), layer)
		}
		return fs[0].Properties
	}
	single, counts := keyAt("events", p, 14), keyAt("events", pointOf(t, city.store, ev.GridCode[:9]), 10)

	for _, k := range []tiles.Key{single, counts} {
		e, hit := get(k)
		if hit || e.Expires.IsZero() || e.Expires.After(deadline) || !e.Expires.After(clock.Now()) {
			t.Fatalf("%v: hit %v, expires %v; want a miss expiring by the deadline %v", k, hit, e.Expires, deadline)
		}
		if left := e.Expires.Sub(clock.Now()); left > 30*time.Second || left < 29*time.Second {
			t.Errorf("%v: expires in %v, want 29–30 s", k, left)
		}
	}
	if f := feature(mustGet(get(single)), "events"); f["overdue"] != false {
		t.Errorf("30 s before the deadline: %v", f)
	}
	if f := feature(mustGet(get(counts)), "event_counts"); f["overdue"] != 0.0 || f["open"] != 1.0 {
		t.Errorf("30 s before the deadline: %v", f)
	}
	// 20 s later: still served from memory.
	clock.Set(deadline.Add(-10 * time.Second))
	for _, k := range []tiles.Key{single, counts} {
		if _, hit := get(k); !hit {
			t.Errorf("%v: a miss before the deadline", k)
		}
	}
	// Past the deadline: rendered again, now overdue.
	clock.Set(deadline.Add(time.Second))
	for _, k := range []tiles.Key{single, counts} {
		e, hit := get(k)
		if hit {
			t.Fatalf("%v: served from memory past the deadline", k)
		}
		if want := clock.Now().Add(tiles.EventsMaxAge); !e.Expires.Equal(want) {
			t.Errorf("%v: expires %v, want %v (a minute: no deadline to come)", k, e.Expires, want)
		}
	}
	if f := feature(mustGet(get(single)), "events"); f["overdue"] != true {
		t.Errorf("past the deadline: %v", f)
	}
	if f := feature(mustGet(get(counts)), "event_counts"); f["overdue"] != 1.0 {
		t.Errorf("past the deadline: %v", f)
	}
	if st := cache.Stats(); st.Expired != 2 || st.Renders != 4 {
		t.Errorf("stats %+v, want 2 expired entries and 4 renders", st)
	}
	// A minute after the render: rendered again (age_h moves).
	clock.Set(deadline.Add(time.Second + tiles.EventsMaxAge - time.Millisecond))
	if _, hit := get(single); !hit {
		t.Error("a miss before the minute is up")
	}
	clock.Set(deadline.Add(time.Second + tiles.EventsMaxAge))
	if _, hit := get(single); hit {
		t.Error("served from memory a minute after the render")
	}
	// Units and empty events tiles do not expire.
	for _, k := range []tiles.Key{keyAt("units", p, 14), keyAt("events", orb.Point{116.5, 20.5}, 14)} {
		if e, _ := get(k); !e.Expires.IsZero() {
			t.Errorf("%v expires at %v", k, e.Expires)
		}
	}
	// An entry rendered at the deadline itself (not overdue yet, but in a
	// microsecond) is served and not kept.
	clock.Set(deadline)
	cache2 := tiles.NewCache(1 << 20)
	cache2.Now = clock.Now
	e, _, err := cache2.GetRendered(ctx, single, func(ctx context.Context) (tiles.Rendered, error) {
		return r.RenderTile(ctx, single.Layer, single.Z, single.X, single.Y)
	})
	if err != nil || !e.Expires.Equal(deadline) || cache2.Has(single) {
		t.Errorf("rendered at the deadline: expires %v, kept %v (%v)", e.Expires, cache2.Has(single), err)
	}
}

func mustGet(e *tiles.Entry, _ bool) *tiles.Entry { return e }

// A new event drops exactly the cached events tiles that draw it or a
// count it changes: the z13+ tiles around its point (and its grid's count
// point, drawn past the cap), the count tiles of its district, street and
// community at their zooms; not a far-away tile. So does a transition, and
// a renamed unit (whose name the count points carry).
func TestEventTileInvalidation(t *testing.T) {
	t.Parallel()
	city := newEvCity(t)
	city.scatter(200, 2)
	store := city.store
	ctx := context.Background()
	r := evRenderer(t, store, nil)
	cache := tiles.NewCache(64 << 20)
	ch, err := tiles.NewChanges(ctx, store.Pool, cache, r.Catalogue)
	if err != nil {
		t.Fatal(err)
	}
	near, far := gridPair(t, store)
	p, fp := pointOf(t, store, near), pointOf(t, store, far)
	var keys []tiles.Key
	seen := map[tiles.Key]bool{}
	for _, q := range []orb.Point{p, fp} {
		ks := around("events", q)
		for _, z := range []int{5, 8, 9, 11, 15} {
			ks = append(ks, keyAt("events", q, z))
		}
		for _, k := range ks {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	fill := func() {
		for _, k := range keys {
			if _, _, err := cache.GetRendered(ctx, k, func(ctx context.Context) (tiles.Rendered, error) {
				return r.RenderTile(ctx, k.Layer, k.Z, k.X, k.Y)
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	syncChanges := func() tiles.Synced {
		res, err := ch.Sync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	// touches: does geometry SQL expression g meet tile k's envelope with
	// the invalidation buffer (66 pixels)?
	touches := func(g string, arg any, k tiles.Key) bool {
		var ok bool
		if err := store.Pool.QueryRow(ctx, `SELECT coalesce(bool_or(ST_Intersects(g, ST_Transform(ST_TileEnvelope($2, $3, $4, margin => 66.0 / 4096), 4326))), false)
			FROM (`+g+`) x`, arg, k.Z, k.X, k.Y).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	unitPoint := `SELECT ST_PointOnSurface(geom) AS g FROM units WHERE valid_to IS NULL AND layer = 'base' AND code = $1`
	level := func(z int) int {
		switch {
		case z <= 8:
			return 6
		case z <= 11:
			return 9
		default:
			return 12
		}
	}
	check := func(what string, wantDropped func(k tiles.Key) bool) {
		t.Helper()
		res := syncChanges()
		dropped := 0
		for _, k := range keys {
			want := wantDropped(k)
			if got := !cache.Has(k); got != want {
				t.Errorf("%s: %v dropped %v, want %v", what, k, got, want)
			}
			if want {
				dropped++
			}
		}
		if dropped == 0 || res.Dropped != dropped {
			t.Errorf("%s: Sync dropped %d tiles, the oracle %d", what, res.Dropped, dropped)
		}
	}

	fill()
	if res := syncChanges(); res.Changes != 0 {
		t.Fatalf("changes before any write: %+v", res)
	}
	// A new event in the near grid.
	code := city.report(time.Now(), "0102", p)[0]
	if ev, err := store.GetEvent(ctx, code, false); err != nil || ev.GridCode != near {
		t.Fatalf("the event is in grid %v, want %s (%v)", ev, near, err)
	}
	check("new event", func(k tiles.Key) bool {
		if k.Z >= tiles.EventsMinZoom {
			return touches(`SELECT geom AS g FROM events WHERE code = $1`, code, k) || touches(unitPoint, near, k)
		}
		return touches(unitPoint, near[:level(k.Z)], k)
	})
	for _, k := range []tiles.Key{keyAt("events", p, 14), keyAt("events", p, 5), keyAt("events", p, 8)} {
		if cache.Has(k) {
			t.Errorf("%v (the event's tile or its district's count) was kept", k)
		}
	}
	if k := keyAt("events", fp, 14); !cache.Has(k) {
		t.Errorf("the far-away tile %v was dropped", k)
	}
	codes := func(k tiles.Key) map[string]bool {
		e, _, err := cache.GetRendered(ctx, k, func(ctx context.Context) (tiles.Rendered, error) {
			return r.RenderTile(ctx, k.Layer, k.Z, k.X, k.Y)
		})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := e.MVT()
		out := map[string]bool{}
		for _, f := range decode(t, b)["events"].Features {
			out[f.Properties["code"].(string)] = true
		}
		return out
	}
	if !codes(keyAt("events", p, 14))[code] {
		t.Error("the new event is not in its tile")
	}

	// A transition changes the event and the counts by status.
	fill()
	city.move(code, time.Now(), grid.StatusRegistered)
	check("transition", func(k tiles.Key) bool {
		if k.Z >= tiles.EventsMinZoom {
			return touches(`SELECT geom AS g FROM events WHERE code = $1`, code, k) || touches(unitPoint, near, k)
		}
		return touches(unitPoint, near[:level(k.Z)], k)
	})

	// A renamed community: its count point's name, at z12 only.
	fill()
	if _, err := store.Pool.Exec(ctx, `UPDATE units SET name = name || ' (renamed)' WHERE valid_to IS NULL AND code = $1`, near[:12]); err != nil {
		t.Fatal(err)
	}
	check("renamed community", func(k tiles.Key) bool {
		return k.Z == 12 && touches(`SELECT geom AS g FROM units WHERE valid_to IS NULL AND layer = 'base' AND code = $1`, near[:12], k)
	})
}

// The render times of events tiles on the small demo with 2,000 events:
// go test ./tiles/ -run '^$' -bench EventTiles.
func BenchmarkEventTiles(b *testing.B) {
	city := newEvCity(b)
	city.scatter(2000, 1)
	r := evRenderer(b, city.store, nil)
	ctx := context.Background()
	// The district's tile at z6; the z10 tile with the most streets' count
	// points; the z14 tile with the most events.
	var p10 orb.Point
	if err := city.store.Pool.QueryRow(ctx, `
		WITH s AS (SELECT ST_PointOnSurface(geom) AS p FROM units WHERE valid_to IS NULL AND layer = 'base' AND level = 'street'),
		     t AS (SELECT p, floor((ST_X(p) + 180) / 360 * 1024) AS x,
		                  floor((1 - ln(tan(radians(ST_Y(p))) + 1 / cos(radians(ST_Y(p)))) / pi()) / 2 * 1024) AS y FROM s),
		     d AS (SELECT x, y FROM t GROUP BY 1, 2 ORDER BY count(*) DESC, 1, 2 LIMIT 1)
		SELECT ST_X(p), ST_Y(p) FROM t JOIN d USING (x, y) LIMIT 1`).Scan(&p10[0], &p10[1]); err != nil {
		b.Fatal(err)
	}
	var p6 orb.Point
	if err := city.store.Pool.QueryRow(ctx, `SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM units
		WHERE valid_to IS NULL AND layer = 'base' AND code = '440308') x`).Scan(&p6[0], &p6[1]); err != nil {
		b.Fatal(err)
	}
	var t14 orb.Point
	if err := city.store.Pool.QueryRow(ctx, `
		WITH e AS (SELECT geom, floor((ST_X(geom) + 180) / 360 * 16384) AS x,
		                  floor((1 - ln(tan(radians(ST_Y(geom))) + 1 / cos(radians(ST_Y(geom)))) / pi()) / 2 * 16384) AS y FROM events),
		     d AS (SELECT x, y FROM e GROUP BY 1, 2 ORDER BY count(*) DESC, 1, 2 LIMIT 1)
		SELECT ST_X(e.geom), ST_Y(e.geom) FROM e JOIN d USING (x, y) LIMIT 1`).Scan(&t14[0], &t14[1]); err != nil {
		b.Fatal(err)
	}
	for _, k := range []tiles.Key{keyAt("events", p6, 6), keyAt("events", p10, 10), keyAt("events", t14, 14)} {
		z := k.Z
		b.Run(fmt.Sprintf("z%d", z), func(b *testing.B) {
			start := time.Now()
			first, err := r.RenderTile(ctx, k.Layer, k.Z, k.X, k.Y)
			if err != nil {
				b.Fatal(err)
			}
			cold := time.Since(start)
			layers, err := mvt.Unmarshal(first.MVT)
			if err != nil {
				b.Fatal(err)
			}
			var desc []string
			for _, l := range layers {
				desc = append(desc, fmt.Sprintf("%s: %d", l.Name, len(l.Features)))
			}
			sort.Strings(desc)
			b.Logf("%v: first render %v, %d bytes, %v", k, cold, len(first.MVT), desc)
			for b.Loop() {
				if _, err := r.RenderTile(ctx, k.Layer, k.Z, k.X, k.Y); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Where a change recorded in tile_changes is drawn, per tileset and kind.
func TestEventChangeZooms(t *testing.T) {
	t.Parallel()
	cat, err := tiles.NewCatalogue(tiles.DefaultZooms)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(cat.Names()); got != "[events objects units]" {
		t.Errorf("tilesets %s", got)
	}
	for _, tc := range []struct {
		layer, kind string
		min, max    int
	}{
		{"events", "event", 13, 22}, {"events", "grid", 13, 22}, {"events", "district", 0, 8},
		{"events", "street", 9, 11}, {"events", "community", 12, 12}, {"events", "", 0, 22}, {"events", "object", 0, 22},
		{"objects", "object", 14, 22}, {"objects", "grid", 14, 22}, {"objects", "community", 12, 13}, {"objects", "event", 0, 22},
		{"units", "grid", 13, 22}, {"units", "district", 0, 10},
	} {
		if lo, hi := cat.ChangeZooms(tc.layer, tc.kind); lo != tc.min || hi != tc.max {
			t.Errorf("%s %q: z%d–%d, want z%d–%d", tc.layer, tc.kind, lo, hi, tc.min, tc.max)
		}
	}
}
