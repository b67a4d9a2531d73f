package api_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/mvt"
	"github.com/paulmach/orb/maptile"

	"gridmap/api"
	"gridmap/data"
	"gridmap/data/demo"
	"gridmap/data/pgtest"
	"gridmap/tiles"
)

const ctMVT = "application/vnd.mapbox-vector-tile"

// tilePath is the tile of layer at zoom z holding the point.
func tilePath(layer string, p orb.Point, z int) string {
	t := maptile.At(p, maptile.Zoom(z))
	return fmt.Sprintf("/tiles/%s/%d/%d/%d.mvt", layer, z, t.X, t.Y)
}

// unitPoint is a point inside the current base unit code.
func unitPoint(t *testing.T, store *data.Store, code string) orb.Point {
	t.Helper()
	var p orb.Point
	if err := store.Pool.QueryRow(context.Background(), `SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p
		FROM units WHERE valid_to IS NULL AND layer = 'base' AND code = $1) x`, code).Scan(&p[0], &p[1]); err != nil {
		t.Fatalf("point of %s: %v", code, err)
	}
	return p
}

// withDemoObjects adds n demo objects to the store.
func withDemoObjects(t *testing.T, store *data.Store, n int64) *data.Store {
	t.Helper()
	return withDemoObjectsSeed(t, store, n, 3)
}

// withDemoObjectsSeed imports n demo objects drawn with seed.
func withDemoObjectsSeed(t *testing.T, store *data.Store, n int64, seed uint64) *data.Store {
	t.Helper()
	ctx := context.Background()
	stream, err := demo.Objects(ctx, store, n, seed, false)
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := store.ImportObjects(ctx, stream, data.ObjectImportOptions{}); err != nil || rep.Inserted != n {
		t.Fatalf("demo objects: %+v %v", rep, err)
	}
	return store
}

// getTile asks for a tile taking gzip as is (Go's client would otherwise
// ask for it and unzip behind our back), with extra headers.
func (e *apiEnv) getTile(path string, header ...string) reply {
	e.t.Helper()
	return e.with(http.MethodGet, path, "", append([]string{"Accept-Encoding", "gzip"}, header...)...)
}

// mvtOf checks a 200 tile answer and returns its uncompressed bytes.
func mvtOf(t *testing.T, r reply) []byte {
	t.Helper()
	expect(t, r, http.StatusOK, ctMVT, nil)
	if r.Header.Get("Content-Encoding") != "gzip" {
		return r.Body
	}
	zr, err := gzip.NewReader(bytes.NewReader(r.Body))
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	return b
}

func expectCache(t *testing.T, r reply, want string) {
	t.Helper()
	if got := r.Header.Get("X-Cache"); got != want {
		t.Errorf("X-Cache %q, want %q: %s", got, want, r)
	}
}

func TestTileParameters(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	for _, tc := range []struct {
		path, param, detail string
	}{
		{"/tiles/units/23/0/0.mvt", "z/x/y", "zoom 23"},
		{"/tiles/units/-1/0/0.mvt", "z/x/y", "zoom -1"},
		{"/tiles/units/2/4/0.mvt", "z/x/y", "x 4"},
		{"/tiles/objects/2/0/4.mvt", "z/x/y", "y 4"},
		{"/tiles/units/3/0/-1.mvt", "z/x/y", "y -1"},
		{"/tiles/units/a/0/0.mvt", "z", `"a"`},
		{"/tiles/units/14/1.5/0.mvt", "x", `"1.5"`},
		{"/tiles/units/14/0/1e3.mvt", "y", `"1e3"`},
		{"/tiles/units/99999999999999999999/0/0.mvt", "z", "not an integer"},
	} {
		expectProblem(t, e.get(tc.path), http.StatusBadRequest, typeBadParam, tc.param, tc.detail)
	}
	expectProblem(t, e.get("/tiles/roads/1/0/0.mvt"), http.StatusNotFound, typeNotFound, "", `"roads"`, "objects, units")
	expectProblem(t, e.get("/tiles/roads.json"), http.StatusNotFound, typeNotFound, "", `"roads"`)
	expectProblem(t, e.do(http.MethodPost, "/tiles/units/1/0/0.mvt", nil), http.StatusMethodNotAllowed, typeNotAllowed, "")
}

// An empty tile (open sea) is 204 No Content, with an ETag, cached too.
func TestTileEmptyIs204(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	path := tilePath("units", orb.Point{116.5, 20.5}, 14)
	r := e.getTile(path)
	if r.Status != http.StatusNoContent || len(r.Body) != 0 || r.Header.Get("Content-Encoding") != "" {
		t.Fatalf("empty tile: %s %v", r, r.Header)
	}
	tag := etagOf(t, r)
	expectCache(t, r, "miss")
	r = e.getTile(path)
	expectCache(t, r, "hit")
	if r.Status != http.StatusNoContent || etagOf(t, r) != tag {
		t.Errorf("second request: %s", r)
	}
	expectNotModified(t, e.getTile(path, "If-None-Match", tag), tag)
}

// The cache: a miss, then hits; the ETag of the uncompressed bytes; 304 on
// If-None-Match; gzip as stored or unzipped for clients that do not take it.
func TestTileCacheAndConditionalRequests(t *testing.T) {
	t.Parallel()
	store := withDemoObjects(t, pgtest.NewDemo(t), 1000)
	e := newEnv(t, store, api.Options{})
	p := unitPoint(t, store, demoDistrict)
	for _, path := range []string{tilePath("units", p, 6), tilePath("units", p, 14), tilePath("objects", p, 10), tilePath("objects", p, 15)} {
		first := e.getTile(path)
		body := mvtOf(t, first)
		expectCache(t, first, "miss")
		tag := etagOf(t, first)
		if first.Header.Get("Content-Encoding") != "gzip" || first.Header.Get("Vary") != "Accept-Encoding" ||
			!strings.Contains(first.Header.Get("Cache-Control"), "must-revalidate") {
			t.Errorf("%s headers: %v", path, first.Header)
		}
		if cl := first.Header.Get("Content-Length"); cl != strconv.Itoa(len(first.Body)) {
			t.Errorf("%s: Content-Length %s for %d bytes", path, cl, len(first.Body))
		}
		layers, err := mvt.Unmarshal(body)
		if err != nil || len(layers) == 0 {
			t.Fatalf("%s: not a vector tile with layers: %v", path, err)
		}
		second := e.getTile(path)
		expectCache(t, second, "hit")
		if etagOf(t, second) != tag || !bytes.Equal(second.Body, first.Body) {
			t.Errorf("%s: the cached answer differs", path)
		}
		expectNotModified(t, e.getTile(path, "If-None-Match", `"other", `+tag), tag)
		// Not taking gzip: the same tile unzipped, the same ETag.
		plain := e.with(http.MethodGet, path, "", "Accept-Encoding", "identity")
		if plain.Header.Get("Content-Encoding") != "" || !bytes.Equal(mvtOf(t, plain), body) || etagOf(t, plain) != tag {
			t.Errorf("%s without gzip: %v, %d bytes", path, plain.Header, len(plain.Body))
		}
		head := e.with(http.MethodHead, path, "", "Accept-Encoding", "gzip")
		if head.Status != http.StatusOK || len(head.Body) != 0 || head.Header.Get("Content-Length") != strconv.Itoa(len(first.Body)) {
			t.Errorf("HEAD %s: %s %v", path, head, head.Header)
		}
	}
	st := e.srv.TileCacheStats()
	if st.Misses != 4 || st.Renders != 4 || st.Hits != 16 || st.Entries != 4 {
		t.Errorf("cache stats %+v, want 4 misses and renders, 16 hits, 4 entries", st)
	}
	expectSamples(t, scrape(t, e),
		"gridmap_tile_cache_hits_total 16", "gridmap_tile_cache_misses_total 4", "gridmap_tile_renders_total 4",
		"gridmap_tile_cache_evictions_total 0", "gridmap_tile_cache_entries 4",
		"gridmap_tile_cache_bytes "+strconv.FormatFloat(float64(st.Bytes), 'g', -1, 64),
		"gridmap_tile_cache_max_bytes "+strconv.FormatFloat(api.DefaultTileCacheBytes, 'g', -1, 64))
}

// The byte bound holds: with room for a few tiles, older ones are evicted.
func TestTileCacheByteBound(t *testing.T) {
	t.Parallel()
	store := pgtest.NewDemo(t)
	const bound = 6000
	e := newEnv(t, store, api.Options{TileCacheBytes: bound})
	p := unitPoint(t, store, demoDistrict)
	c := maptile.At(p, 15)
	n := 0
	for dy := -2; dy <= 2; dy++ {
		for dx := -2; dx <= 2; dx++ {
			path := fmt.Sprintf("/tiles/units/15/%d/%d.mvt", int(c.X)+dx, int(c.Y)+dy)
			if r := e.getTile(path); r.Status == http.StatusOK {
				n++
			}
			if st := e.srv.TileCacheStats(); st.Bytes > bound {
				t.Fatalf("the cache holds %d bytes, bound %d", st.Bytes, bound)
			}
		}
	}
	st := e.srv.TileCacheStats()
	if n < 10 || st.Evictions == 0 || st.Entries >= 25 {
		t.Errorf("%d tiles through a %d-byte cache: %+v", n, bound, st)
	}
	expectSamples(t, scrape(t, e), fmt.Sprintf("gridmap_tile_cache_evictions_total %d", st.Evictions))

	// No cache at all: every request renders.
	none := newEnv(t, store, api.Options{TileCacheBytes: -1})
	path := tilePath("units", p, 14)
	expectCache(t, none.getTile(path), "miss")
	expectCache(t, none.getTile(path), "miss")
}

type tileJSON struct {
	TileJSON     string       `json:"tilejson"`
	Name         string       `json:"name"`
	Scheme       string       `json:"scheme"`
	Tiles        []string     `json:"tiles"`
	MinZoom      int          `json:"minzoom"`
	MaxZoom      int          `json:"maxzoom"`
	Bounds       [4]float64   `json:"bounds"`
	Center       [3]float64   `json:"center"`
	VectorLayers []tileSource `json:"vector_layers"`
}

type tileSource struct {
	ID      string            `json:"id"`
	MinZoom int               `json:"minzoom"`
	MaxZoom int               `json:"maxzoom"`
	Fields  map[string]string `json:"fields"`
}

func TestTileJSON(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	want := map[string][]string{"units": {"district", "street", "community", "grid"}, "objects": {"object_counts", "objects"}}
	for name, sources := range want {
		var tj tileJSON
		expect(t, e.get("/tiles/"+name+".json"), http.StatusOK, ctJSON, &tj)
		if tj.TileJSON != "3.0.0" || tj.Name != name || tj.Scheme != "xyz" || tj.MinZoom != 0 || tj.MaxZoom != tiles.MaxZoom {
			t.Errorf("%s: %+v", name, tj)
		}
		if len(tj.Tiles) != 1 || tj.Tiles[0] != e.url+"/tiles/"+name+"/{z}/{x}/{y}.mvt" {
			t.Errorf("%s tiles %v, want the absolute URL template on %s", name, tj.Tiles, e.url)
		}
		// 盐田区 lies in Shenzhen (113.7–114.7 E, 22.4–22.9 N).
		b := tj.Bounds
		if !(b[0] >= 113.7 && b[2] <= 114.7 && b[1] >= 22.4 && b[3] <= 22.9 && b[0] < b[2] && b[1] < b[3]) {
			t.Errorf("%s bounds %v are not inside Shenzhen", name, b)
		}
		if c := tj.Center; !(c[0] > b[0] && c[0] < b[2] && c[1] > b[1] && c[1] < b[3]) {
			t.Errorf("%s centre %v is outside the bounds %v", name, c, b)
		}
		var ids []string
		for _, s := range tj.VectorLayers {
			ids = append(ids, s.ID)
			if len(s.Fields) == 0 || s.Fields["code"] != "String" || s.MinZoom > s.MaxZoom {
				t.Errorf("%s source %s: %+v", name, s.ID, s)
			}
		}
		if fmt.Sprint(ids) != fmt.Sprint(sources) {
			t.Errorf("%s vector_layers %v, want %v", name, ids, sources)
		}
	}
	// Behind a proxy the URLs follow the client's scheme and host.
	var tj tileJSON
	expect(t, e.with(http.MethodGet, "/tiles/units.json", "", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "maps.example"), http.StatusOK, ctJSON, &tj)
	if tj.Tiles[0] != "https://maps.example/tiles/units/{z}/{x}/{y}.mvt" {
		t.Errorf("behind a proxy: %v", tj.Tiles)
	}
}

// The wall style is a structurally valid MapLibre style on the tilesets.
func TestWallStyle(t *testing.T) {
	t.Parallel()
	e := demoEnv(t)
	var style struct {
		Version int                       `json:"version"`
		Glyphs  string                    `json:"glyphs"`
		Sources map[string]map[string]any `json:"sources"`
		Layers  []map[string]any          `json:"layers"`
	}
	expect(t, e.get("/styles/wall.json"), http.StatusOK, ctJSON, &style)
	if style.Version != 8 || !strings.HasPrefix(style.Glyphs, e.url+"/") || !strings.Contains(style.Glyphs, "{fontstack}") || !strings.Contains(style.Glyphs, "{range}") {
		t.Errorf("style version %d glyphs %q", style.Version, style.Glyphs)
	}
	sourceLayers := map[string]map[string]bool{}
	for name, src := range style.Sources {
		if src["type"] != "vector" || src["url"] != e.url+"/tiles/"+name+".json" {
			t.Errorf("source %s: %v", name, src)
		}
		var tj tileJSON
		expect(t, e.get("/tiles/"+name+".json"), http.StatusOK, ctJSON, &tj)
		sourceLayers[name] = map[string]bool{}
		for _, s := range tj.VectorLayers {
			sourceLayers[name][s.ID] = true
		}
	}
	if len(sourceLayers) != 3 {
		t.Fatalf("sources %v, want units, objects and events", style.Sources)
	}
	types := map[string]bool{"background": true, "fill": true, "line": true, "symbol": true, "circle": true}
	ids := map[string]bool{}
	for i, l := range style.Layers {
		id, _ := l["id"].(string)
		typ, _ := l["type"].(string)
		if id == "" || ids[id] || !types[typ] {
			t.Errorf("layer %d: id %q (seen %v) type %q", i, id, ids[id], typ)
		}
		ids[id] = true
		if typ == "background" {
			if i != 0 {
				t.Errorf("background layer at %d", i)
			}
			continue
		}
		src, _ := l["source"].(string)
		sl, _ := l["source-layer"].(string)
		if !sourceLayers[src][sl] {
			t.Errorf("layer %s: source %q source-layer %q is not in that TileJSON", id, src, sl)
		}
		if mn, ok := l["minzoom"].(float64); ok {
			if mx, ok := l["maxzoom"].(float64); ok && mn >= mx {
				t.Errorf("layer %s: minzoom %v ≥ maxzoom %v", id, mn, mx)
			}
		}
	}
}

// gridmapProcess is `gridmap serve` in a process of its own.
type gridmapProcess struct {
	*apiEnv
	log *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startServe builds the gridmap binary and runs `gridmap serve` on the
// store's database and a free port (ADDR=127.0.0.1:0; the port is read
// from its log). The process is stopped when the test ends.
func startServe(t *testing.T, store *data.Store) *gridmapProcess {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gridmap")
	if out, err := exec.Command("go", "build", "-o", bin, "gridmap/cmd/gridmap").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+store.URL(), "ADDR=127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	cmd.Stdout = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	urlc := make(chan string, 1)
	go func() {
		serving := regexp.MustCompile(`msg=serving url=(http://\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			fmt.Fprintln(logs, sc.Text())
			if m := serving.FindStringSubmatch(sc.Text()); m != nil {
				urlc <- m[1]
			}
		}
	}()
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("gridmap serve log:\n%s", logs)
		}
	})
	var url string
	select {
	case url = <-urlc:
	case <-exited:
		t.Fatalf("gridmap serve exited:\n%s", logs)
	case <-time.After(60 * time.Second):
		t.Fatalf("gridmap serve did not start in 60 s:\n%s", logs)
	}
	tok := adminToken(t, store)
	envTokens.Store(url, tok)
	p := &gridmapProcess{apiEnv: &apiEnv{t: t, store: store, url: url, token: tok}, log: logs}
	expect(t, p.get("/readyz"), http.StatusOK, ctJSON, nil)
	return p
}

// metric reads one sample's value from /metrics.
func metric(t *testing.T, e *apiEnv, name string) float64 {
	t.Helper()
	for _, l := range strings.Split(scrape(t, e), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", l, err)
			}
			return f
		}
	}
	t.Fatalf("no sample %s", name)
	return 0
}

// awaitNewETag polls path on e until its ETag is no longer old.
func awaitNewETag(t *testing.T, e *apiEnv, path, old string) reply {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := e.getTile(path)
		if r.Status != http.StatusOK && r.Status != http.StatusNoContent {
			t.Fatalf("%s: %s", path, r)
		}
		if etagOf(t, r) != old {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s on %s still has ETag %s 15 s after the edit", path, e.url, old)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// An edit made through server A drops, on server B (another process, told
// through PostgreSQL LISTEN/NOTIFY), the tiles over the edit, and only
// those: a tile far away stays cached. A itself answers the new tile at
// once.
func TestTileInvalidationAcrossProcesses(t *testing.T) {
	t.Parallel()
	store := withDemoObjects(t, pgtest.NewDemo(t), 2000)
	a := newEnv(t, store, api.Options{})
	b := startServe(t, store)
	ctx := context.Background()

	// The edited grid, and the grid farthest from it.
	var g, far string
	if err := store.Pool.QueryRow(ctx, `
		WITH gr AS (SELECT code, geom FROM units WHERE valid_to IS NULL AND layer = 'base' AND level = 'grid'),
		     a AS (SELECT code, geom FROM gr ORDER BY code LIMIT 1)
		SELECT a.code, (SELECT gr.code FROM gr ORDER BY ST_Distance(gr.geom, a.geom) DESC LIMIT 1) FROM a`).Scan(&g, &far); err != nil {
		t.Fatal(err)
	}
	// An object in the edited grid, to move.
	var objCode string
	var objPt orb.Point
	if err := store.Pool.QueryRow(ctx, `SELECT code, ST_X(geom), ST_Y(geom) FROM objects
		WHERE grid_code = $1 AND GeometryType(geom) = 'POINT' AND class_code = '0101' ORDER BY code LIMIT 1`, g).Scan(&objCode, &objPt[0], &objPt[1]); err != nil {
		t.Fatalf("an object of class 0101 in grid %s: %v", g, err)
	}
	unitsNear, unitsFar := tilePath("units", unitPoint(t, store, g), 15), tilePath("units", unitPoint(t, store, far), 15)
	objNear, objFar := tilePath("objects", objPt, 15), tilePath("objects", unitPoint(t, store, far), 15)
	if unitsNear == unitsFar || objNear == objFar {
		t.Fatalf("the near and far tiles are the same: %s %s %s %s", unitsNear, unitsFar, objNear, objFar)
	}

	etags := map[string]string{}
	for _, e := range []*apiEnv{a, b.apiEnv} {
		for _, path := range []string{unitsNear, unitsFar, objNear, objFar} {
			first := e.getTile(path)
			expectCache(t, first, "miss")
			tag := etagOf(t, first)
			if old, ok := etags[path]; ok && old != tag {
				t.Fatalf("%s: A and B disagree before any edit (%s, %s)", path, old, tag)
			}
			etags[path] = tag
			expectCache(t, e.getTile(path), "hit")
		}
	}

	// Edit 1: rename grid g through A's units import.
	geom := sqlStrings(t, store, `SELECT ST_AsGeoJSON(geom, 15) FROM units WHERE valid_to IS NULL AND layer = 'base' AND code = $1`, g)[0]
	var rep importReport
	expect(t, a.post("/v1/units:import", featureCollection(fmt.Sprintf(`{"type":"Feature","geometry":%s,"properties":{"code":%q,"name":"改名网格","level":"grid","parent_code":%q}}`,
		geom, g, g[:12]))), http.StatusOK, ctJSON, &rep)
	if rep.Updated != 1 {
		t.Fatalf("rename: %+v", rep)
	}
	// A answers the new tile at once: its own write dropped it.
	r := a.getTile(unitsNear)
	expectCache(t, r, "miss")
	newUnits := etagOf(t, r)
	if newUnits == etags[unitsNear] || !bytes.Contains(mvtOf(t, r), []byte("改名网格")) {
		t.Fatalf("A serves the old tile after its own edit")
	}
	// B learns of it through NOTIFY.
	hitsBefore := metric(t, b.apiEnv, "gridmap_tile_cache_hits_total")
	if r := awaitNewETag(t, b.apiEnv, unitsNear, etags[unitsNear]); etagOf(t, r) != newUnits {
		t.Errorf("B's new tile differs from A's")
	}
	for _, path := range []string{unitsFar, objFar} {
		r := b.getTile(path)
		expectCache(t, r, "hit")
		if etagOf(t, r) != etags[path] {
			t.Errorf("B: %s changed", path)
		}
	}
	if hits := metric(t, b.apiEnv, "gridmap_tile_cache_hits_total"); hits < hitsBefore+2 {
		t.Errorf("B's cache hits went from %v to %v", hitsBefore, hits)
	}
	etags[unitsNear] = newUnits
	objAfterRename := etagOf(t, b.getTile(objNear)) // the grid's count point may have changed it

	// Edit 2: move the object a metre through A's PUT.
	moved := orb.Point{objPt[0] + 0.00001, objPt[1]}
	var f objFeature
	expect(t, a.put("/v1/objects/"+objCode, objFeatureJSON(objCode, "0101", pointJSON(moved[0], moved[1]), "")), http.StatusOK, ctGeoJSON, &f)
	r = a.getTile(objNear)
	expectCache(t, r, "miss")
	newObj := etagOf(t, r)
	if newObj == objAfterRename {
		t.Fatalf("A serves the old objects tile after moving %s", objCode)
	}
	if r := awaitNewETag(t, b.apiEnv, objNear, objAfterRename); etagOf(t, r) != newObj {
		t.Errorf("B's new objects tile differs from A's")
	}
	for _, path := range []string{unitsFar, objFar, unitsNear} { // an object edit leaves the units tiles alone
		r := b.getTile(path)
		// B drops the rename's unit tiles twice, after its in-memory units
		// take the new grid and when it reads the rename's tile_changes row
		// (two listeners, in either order): the second drop may come after
		// the new tile was drawn, and then unitsNear is drawn again here,
		// the same. The far tiles were never dropped.
		if path != unitsNear {
			expectCache(t, r, "hit")
		}
		if etagOf(t, r) != etags[path] {
			t.Errorf("B: %s changed after the object moved", path)
		}
	}
	if st := a.srv.TileCacheStats(); st.Invalidated == 0 {
		t.Errorf("A dropped nothing: %+v", st)
	}
}

// A real client reads the tiles: GDAL's MVT driver finds the layers and as
// many features as the database holds units meeting the tile with its
// buffer.
func TestTilesReadByGDAL(t *testing.T) {
	t.Parallel()
	ogrinfo, err := exec.LookPath("ogrinfo")
	if err != nil {
		t.Fatalf("ogrinfo (GDAL, Debian package gdal-bin) is not installed: `make test` installs it; %v", err)
	}
	store := pgtest.NewDemo(t)
	e := newEnv(t, store, api.Options{})
	community := sqlStrings(t, store, `SELECT min(code) FROM units WHERE valid_to IS NULL AND layer = 'base' AND level = 'community'`)[0]
	tile := maptile.At(unitPoint(t, store, community), 14)
	url := fmt.Sprintf("%s/tiles/units/14/%d/%d.mvt", e.url, tile.X, tile.Y)
	out, err := exec.Command(ogrinfo, "--config", "GDAL_HTTP_HEADERS", "Authorization: Bearer "+e.token, "-ro", "-al", "-so", "MVT:"+url).CombinedOutput()
	if err != nil {
		t.Fatalf("ogrinfo %s: %v\n%s", url, err, out)
	}
	got := map[string]int{}
	var layer string
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "Layer name: "); ok {
			layer = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "Feature Count: "); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			got[layer] = n
		}
	}
	// Units of the levels drawn at z14 meeting the envelope with the 64-pixel
	// buffer (and the half pixel snapped onto its edge).
	want := map[string]int{}
	rows, err := store.Pool.Query(context.Background(), `
		SELECT level, count(*)::int FROM units
		WHERE valid_to IS NULL AND layer = 'base' AND level IN ('community', 'grid')
		  AND ST_Intersects(geom, ST_Transform(ST_TileEnvelope(14, $1, $2, margin => 64.5 / 4096), 4326))
		GROUP BY level`, tile.X, tile.Y)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var level string
		var n int
		if err := rows.Scan(&level, &n); err != nil {
			t.Fatal(err)
		}
		want[level] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	keys := func(m map[string]int) []string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	if fmt.Sprint(keys(got)) != "[community grid]" || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("GDAL reads %v, the database holds %v\n%s", got, want, out)
	}
	if want["grid"] == 0 {
		t.Errorf("the tile holds no grids: pick another")
	}
	t.Logf("GDAL reads %v from %s", got, url)
}
