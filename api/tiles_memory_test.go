package api_test

import (
	"bytes"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/mvt"
	"github.com/paulmach/orb/maptile"

	"gridmap/api"
	"gridmap/data/pgtest"
	"gridmap/geo"
)

// logBuffer collects a server's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) count(substrs ...string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range strings.Split(l.b.String(), "\n") {
		all := true
		for _, s := range substrs {
			all = all && strings.Contains(line, s)
		}
		if all {
			n++
		}
	}
	return n
}

// eastEdge is the largest longitude (in the tile's own coordinate system)
// of grid code in the units tile over position q at zoom z.
func eastEdge(t *testing.T, b []byte, q orb.Point, z int, code string) float64 {
	t.Helper()
	layers, err := mvt.Unmarshal(b)
	if err != nil {
		t.Fatalf("mvt: %v", err)
	}
	layers.ProjectToWGS84(maptile.At(q, maptile.Zoom(z)))
	for _, l := range layers {
		if l.Name != "grid" {
			continue
		}
		for _, f := range l.Features {
			if f.Properties["code"] == code {
				return f.Geometry.Bound().Max[0]
			}
		}
	}
	t.Fatalf("no grid %s in the tile", code)
	return 0
}

// TestAsOfAndGCJ02TilesFromMemory: with the memory renderer, a unit tile
// as of an instant before an edit is drawn from a copy of the units valid
// then (built once, logged), in WGS-84 and in GCJ-02, and shows the old
// boundary where PostGIS's renderer draws it; a tile as of an instant
// after the edit is drawn from the current copy (nothing built); and the
// current GCJ-02 tile follows the edit.
func TestAsOfAndGCJ02TilesFromMemory(t *testing.T) {
	t.Parallel()
	var logs logBuffer
	store := pgtest.NewDemo(t)
	e := newEnv(t, store, api.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	pg := newEnv(t, store, api.Options{TileRenderer: api.TileRendererPostGIS, TileCacheBytes: -1})
	expect(t, e.post("/v1/units:import?reason=first+survey", historyCity(113.05)), http.StatusCreated, ctJSON, nil)

	p := orb.Point{113.045, 22.05}
	gx, gy := geo.WGS84ToGCJ02(p[0], p[1])
	gp := orb.Point{gx, gy}
	gcjPath := gcjTilePath("units", p, 13) // holds both lines in GCJ-02
	// The GCJ-02 copy is built by the first GCJ-02 tile, then follows.
	if edge := eastEdge(t, mvtOf(t, e.getTile(gcjPath)), gp, 13, histGridW); math.Abs(edge-gcjLon(113.05, 22.05)) > 1e-4 {
		t.Errorf("GCJ-02 east edge before the move %g", edge)
	}
	if n := logs.count("gcj02 unit tiles copy built"); n != 1 {
		t.Errorf("GCJ-02 copy built %d times", n)
	}
	expectCache(t, e.getTile(gcjPath), "hit")

	// Another server of the store, which learns of the move only when it
	// looks (tests do not follow the units channel).
	var lagLogs logBuffer
	lagging := newEnv(t, store, api.Options{Logger: slog.New(slog.NewTextHandler(&lagLogs, nil))})

	before := time.Now()
	time.Sleep(5 * time.Millisecond)
	expect(t, e.post("/v1/units:import?reason=moved+the+line", historyCity(113.04)), http.StatusOK, ctJSON, nil)

	// The current GCJ-02 tile: dropped by the edit, drawn from the copy
	// derived by Apply, where PostGIS draws it.
	r := e.getTile(gcjPath)
	expectCache(t, r, "miss")
	want := eastEdge(t, mvtOf(t, pg.getTile(gcjPath)), gp, 13, histGridW)
	mem := eastEdge(t, mvtOf(t, r), gp, 13, histGridW)
	if math.Abs(mem-want) > 1e-5 || math.Abs(mem-gcjLon(113.04, 22.05)) > 1e-4 {
		t.Errorf("GCJ-02 east edge after the move %g from memory, %g by PostGIS; want about %g", mem, want, gcjLon(113.04, 22.05))
	}
	if n := logs.count("gcj02 unit tiles copy built"); n != 1 {
		t.Errorf("GCJ-02 copy built %d times: not derived by Apply", n)
	}

	// As of before the move: the old line, from a copy of the units then.
	asOf := "?as_of=" + url.QueryEscape(before.UTC().Format(time.RFC3339Nano))
	for _, c := range []struct {
		crs  string
		path string
		q    orb.Point
		z    int
		want float64
	}{
		{"wgs84", tilePath("units", p, 13) + asOf, p, 13, 113.05},
		{"gcj02", gcjPath + strings.Replace(asOf, "?", "&", 1), gp, 13, gcjLon(113.05, 22.05)},
	} {
		r := settledTile(t, e, c.path)
		expectCache(t, r, "miss")
		mem, want := eastEdge(t, mvtOf(t, r), c.q, c.z, histGridW), eastEdge(t, mvtOf(t, pg.getTile(c.path)), c.q, c.z, histGridW)
		if math.Abs(mem-want) > 1e-5 || math.Abs(mem-c.want) > 1e-4 {
			t.Errorf("%s as of before the move: east edge %g from memory, %g by PostGIS, want about %g", c.crs, mem, want, c.want)
		}
		if n := logs.count("past unit tiles copy built", "crs="+c.crs); n != 1 {
			t.Errorf("%s: past copy built %d times", c.crs, n)
		}
		expectCache(t, e.getTile(c.path), "hit")
	}
	// Another tile of the same instant: the copy is reused.
	other := tilePath("units", orb.Point{113.02, 22.02}, 15) + asOf
	settledTile(t, e, other)
	if n := logs.count("past unit tiles copy built", "crs=wgs84"); n != 1 {
		t.Errorf("past copy built %d times for one instant", n)
	}

	// As of now: the current copy, nothing built.
	now := tilePath("units", p, 13) + "?as_of=" + url.QueryEscape(time.Now().UTC().Format(time.RFC3339Nano))
	if edge := eastEdge(t, mvtOf(t, settledTile(t, e, now)), p, 13, histGridW); math.Abs(edge-113.04) > 1e-4 {
		t.Errorf("as of now: east edge %g", edge)
	}
	if n := logs.count("past unit tiles copy built"); n != 2 {
		t.Errorf("%d past copies built, want 2 (wgs84 and gcj02 before the move)", n)
	}
	// The lagging server's current copy still has the old line: a tile as
	// of now (cached for good) is drawn only once the copy is brought up
	// to the store.
	if edge := eastEdge(t, mvtOf(t, settledTile(t, lagging, now)), p, 13, histGridW); math.Abs(edge-113.04) > 1e-4 {
		t.Errorf("as of now on a lagging server: east edge %g", edge)
	}
	if n := lagLogs.count("past unit tiles copy built"); n != 0 {
		t.Errorf("the lagging server built %d past copies", n)
	}
}

// settledTile fetches a tile as of an instant until the instant is
// settled (the answer is immutable).
func settledTile(t *testing.T, e *apiEnv, path string) reply {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := e.getTile(path)
		if r.Header.Get("Cache-Control") == "public, max-age=31536000, immutable" {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: never settled: %s", path, r)
		}
		time.Sleep(50 * time.Millisecond) // a transaction begun before the instant is still open
	}
}

// gcjLon is the GCJ-02 longitude of a WGS-84 position.
func gcjLon(lon, lat float64) float64 {
	x, _ := geo.WGS84ToGCJ02(lon, lat)
	return x
}

// TestLocateAsOfInstantNoLongerCurrent: an instant remembered as current
// (no version after it) stops being so with the next edit; a locate as of
// it then still answers with the units valid then, not the edited ones.
func TestLocateAsOfInstantNoLongerCurrent(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	expect(t, e.post("/v1/units:import?reason=first+survey", historyCity(113.05)), http.StatusCreated, ctJSON, nil)
	time.Sleep(5 * time.Millisecond)
	at := url.QueryEscape(time.Now().UTC().Format(time.RFC3339Nano))
	path := "/v1/locate?lon=113.045&lat=22.05&as_of=" + at
	// The instant is remembered once settled: tiles as of it are then
	// immutable.
	settledTile(t, e, tilePath("units", orb.Point{113.045, 22.05}, 13)+"?as_of="+at)
	var loc location
	expect(t, e.get(path), http.StatusOK, ctJSON, &loc)
	if loc.codes()[3] != histGridW {
		t.Fatalf("located in %v before the move", loc.codes())
	}
	expect(t, e.post("/v1/units:import?reason=moved+the+line", historyCity(113.04)), http.StatusOK, ctJSON, nil)
	expect(t, e.get(path), http.StatusOK, ctJSON, &loc)
	if loc.codes()[3] != histGridW {
		t.Errorf("as of before the move, located in %v", loc.codes())
	}
}
