package api_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gridmap/api"
	"gridmap/data"
	"gridmap/data/demo"
	"gridmap/data/pgtest"
	"gridmap/tiles"
	"gridmap/tiles/pmtiles"
)

// pmtilesEnv is the small demo with 300 objects, exported to demo.pmtiles
// (units + objects, z0–14) in a directory the server serves.
func pmtilesEnv(t *testing.T) (*apiEnv, *tiles.Renderer, pmtiles.Stats, string) {
	t.Helper()
	ctx := context.Background()
	e := demoEnv(t)
	st, err := demo.Objects(ctx, e.store, 300, 11, false)
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := e.store.ImportObjects(ctx, st, data.ObjectImportOptions{}); err != nil || rep.Inserted != 300 {
		t.Fatalf("import objects: %+v %v", rep, err)
	}
	cat, err := tiles.NewCatalogue(tiles.DefaultZooms)
	if err != nil {
		t.Fatal(err)
	}
	r := &tiles.Renderer{Pool: e.store.Pool, Catalogue: cat}
	dir := t.TempDir()
	path := filepath.Join(dir, "demo.pmtiles")
	stats, err := pmtiles.ExportFile(ctx, r, pmtiles.Options{Layers: []string{"units", "objects"}, MinZoom: 0, MaxZoom: 14, Workers: 2}, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.srv.ServePMTiles(dir); err != nil {
		t.Fatal(err)
	}
	return e, r, stats, path
}

func lonLatTile(z int, lon, lat float64) (int, int) {
	n := math.Exp2(float64(z))
	s := math.Sin(lat * math.Pi / 180)
	return int((lon + 180) / 360 * n), int((0.5 - math.Log((1+s)/(1-s))/(4*math.Pi)) * n)
}

func render(t *testing.T, r *tiles.Renderer, z, x, y int) []byte {
	t.Helper()
	var out []byte
	for _, l := range []string{"units", "objects"} {
		b, err := r.Render(context.Background(), l, z, x, y)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

func TestPMTilesTiles(t *testing.T) {
	t.Parallel()
	e, r, stats, _ := pmtilesEnv(t)

	// A z14 tile on a grid: gzip as stored, or plain for a client that
	// does not take gzip; both the renderer's bytes.
	lon, lat, _ := demoPoint(t, e, "")
	x, y := lonLatTile(14, lon, lat)
	path := fmt.Sprintf("/pmtiles/demo/14/%d/%d.mvt", x, y)
	want := render(t, r, 14, x, y)
	if len(want) == 0 {
		t.Fatalf("tile %s renders empty", path)
	}
	gz := e.with(http.MethodGet, path, "", "Accept-Encoding", "gzip")
	if gz.Status != 200 || gz.Header.Get("Content-Encoding") != "gzip" || gz.Header.Get("Content-Type") != "application/vnd.mapbox-vector-tile" || gz.Header.Get("ETag") == "" {
		t.Fatalf("gzip tile: %d %v", gz.Status, gz.Header)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz.Body))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(zr)
	if !bytes.Equal(got, want) {
		t.Errorf("gzip tile: %d bytes unzipped, the renderer gives %d", len(got), len(want))
	}
	plain := e.with(http.MethodGet, path, "", "Accept-Encoding", "identity")
	if plain.Status != 200 || plain.Header.Get("Content-Encoding") != "" || !bytes.Equal(plain.Body, want) || plain.Header.Get("ETag") == gz.Header.Get("ETag") {
		t.Errorf("plain tile: %d %v, %d bytes, want %d", plain.Status, plain.Header, len(plain.Body), len(want))
	}
	if nm := e.with(http.MethodGet, path, "", "Accept-Encoding", "gzip", "If-None-Match", gz.Header.Get("ETag")); nm.Status != http.StatusNotModified {
		t.Errorf("If-None-Match: %d", nm.Status)
	}
	if head := e.with(http.MethodHead, path, "", "Accept-Encoding", "gzip"); head.Status != 200 || len(head.Body) != 0 || head.Header.Get("Content-Length") != fmt.Sprint(len(gz.Body)) {
		t.Errorf("HEAD: %d %v", head.Status, head.Header)
	}

	// A tile of the bbox without features is left out of the archive: 204.
	var empty string
	x0, y1 := lonLatTile(14, stats.Bounds[0], stats.Bounds[1])
	x1, y0 := lonLatTile(14, stats.Bounds[2], stats.Bounds[3])
	for tx := x0; tx <= x1 && empty == ""; tx++ {
		for ty := y0; ty <= y1 && empty == ""; ty++ {
			if len(render(t, r, 14, tx, ty)) == 0 {
				empty = fmt.Sprintf("/pmtiles/demo/14/%d/%d.mvt", tx, ty)
			}
		}
	}
	if empty == "" {
		t.Fatal("no empty z14 tile found in the demo's bbox")
	}
	if r := e.get(empty); r.Status != http.StatusNoContent || len(r.Body) != 0 {
		t.Errorf("empty tile %s: %s", empty, r)
	}

	// Errors: unknown archive, outside the archive's zooms or bounds, z/x/y out of range.
	expectProblem(t, e.get("/pmtiles/nope/0/0/0.mvt"), 404, typeNotFound, "", `"nope"`, "demo")
	expectProblem(t, e.get(fmt.Sprintf("/pmtiles/demo/15/%d/%d.mvt", 2*x, 2*y)), 404, typeNotFound, "", "zooms 0–14")
	expectProblem(t, e.get("/pmtiles/demo/10/0/0.mvt"), 404, typeNotFound, "", "outside the bounds")
	expectProblem(t, e.get("/pmtiles/demo/23/0/0.mvt"), 400, typeBadParam, "z/x/y", "zoom 23")
	expectProblem(t, e.get("/pmtiles/demo/2/4/0.mvt"), 400, typeBadParam, "z/x/y", "x 4")
	expectProblem(t, e.get("/pmtiles/demo/2/a/0.mvt"), 400, typeBadParam, "x")
	expectProblem(t, e.get("/pmtiles/..%2Fdemo/0/0/0.mvt"), 404, typeNotFound, "")
}

func TestPMTilesTileJSON(t *testing.T) {
	t.Parallel()
	e, _, stats, _ := pmtilesEnv(t)
	var tj struct {
		TileJSON     string     `json:"tilejson"`
		Name         string     `json:"name"`
		Description  string     `json:"description"`
		Attribution  string     `json:"attribution"`
		Tiles        []string   `json:"tiles"`
		MinZoom      int        `json:"minzoom"`
		MaxZoom      int        `json:"maxzoom"`
		Bounds       [4]float64 `json:"bounds"`
		Center       [3]float64 `json:"center"`
		VectorLayers []struct {
			ID      string            `json:"id"`
			MinZoom int               `json:"minzoom"`
			MaxZoom int               `json:"maxzoom"`
			Fields  map[string]string `json:"fields"`
		} `json:"vector_layers"`
	}
	expect(t, e.get("/pmtiles/demo.json"), 200, ctJSON, &tj)
	if tj.TileJSON != "3.0.0" || len(tj.Tiles) != 1 || tj.Tiles[0] != e.url+"/pmtiles/demo/{z}/{x}/{y}.mvt" || tj.MinZoom != 0 || tj.MaxZoom != 14 ||
		tj.Name == "" || tj.Description == "" || tj.Attribution == "" {
		t.Errorf("tilejson: %+v", tj)
	}
	for i := range tj.Bounds {
		if math.Abs(tj.Bounds[i]-stats.Bounds[i]) > 1e-7 {
			t.Errorf("bounds %v, exported %v", tj.Bounds, stats.Bounds)
		}
	}
	ids := map[string][2]int{}
	for _, v := range tj.VectorLayers {
		if len(v.Fields) == 0 {
			t.Errorf("vector layer %s without fields", v.ID)
		}
		ids[v.ID] = [2]int{v.MinZoom, v.MaxZoom}
	}
	if len(ids) != 6 || ids["grid"] != [2]int{13, 14} || ids["objects"] != [2]int{14, 14} || ids["district"] != [2]int{0, 10} {
		t.Errorf("vector layers: %v", ids)
	}
	// The tiles URL of the TileJSON answers.
	if r := e.get(strings.NewReplacer("{z}", "0", "{x}", "0", "{y}", "0").Replace(strings.TrimPrefix(tj.Tiles[0], e.url))); r.Status != 200 {
		t.Errorf("tile 0/0/0 of the TileJSON: %s", r)
	}
	var list struct {
		Archives []struct{ Name, TileJSON, URL string } `json:"archives"`
	}
	expect(t, e.get("/pmtiles"), 200, ctJSON, &list)
	if len(list.Archives) != 1 || list.Archives[0].Name != "demo" || list.Archives[0].TileJSON != e.url+"/pmtiles/demo.json" || list.Archives[0].URL != e.url+"/pmtiles/demo.pmtiles" {
		t.Errorf("list: %+v", list)
	}
	expectProblem(t, e.get("/pmtiles/nope.json"), 404, typeNotFound, "", `"nope"`)
}

func TestPMTilesRange(t *testing.T) {
	t.Parallel()
	e, _, _, path := pmtilesEnv(t)
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	full := e.with(http.MethodGet, "/pmtiles/demo.pmtiles", "", "Accept-Encoding", "gzip")
	if full.Status != 200 || !bytes.Equal(full.Body, file) || full.Header.Get("Content-Type") != "application/vnd.pmtiles" ||
		full.Header.Get("Accept-Ranges") != "bytes" || full.Header.Get("Content-Encoding") != "" {
		t.Fatalf("whole archive: %d %v, %d bytes of %d", full.Status, full.Header, len(full.Body), len(file))
	}
	etag := full.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	// What MapLibre's pmtiles protocol asks first: the header and root directory.
	head := e.with(http.MethodGet, "/pmtiles/demo.pmtiles", "", "Range", "bytes=0-16383")
	n := min(16384, len(file))
	if head.Status != http.StatusPartialContent || head.Header.Get("Content-Range") != fmt.Sprintf("bytes 0-%d/%d", n-1, len(file)) ||
		!bytes.Equal(head.Body, file[:n]) || !bytes.HasPrefix(head.Body, []byte("PMTiles\x03")) {
		t.Fatalf("Range 0-16383: %d %v, %d bytes", head.Status, head.Header, len(head.Body))
	}
	mid := e.with(http.MethodGet, "/pmtiles/demo.pmtiles", "", "Range", "bytes=200-299", "If-Range", etag)
	if mid.Status != http.StatusPartialContent || mid.Header.Get("Content-Range") != fmt.Sprintf("bytes 200-299/%d", len(file)) || !bytes.Equal(mid.Body, file[200:300]) {
		t.Errorf("Range 200-299: %d %v", mid.Status, mid.Header)
	}
	// A changed archive (another ETag) answers whole, not a part of the new file.
	if stale := e.with(http.MethodGet, "/pmtiles/demo.pmtiles", "", "Range", "bytes=200-299", "If-Range", `"old"`); stale.Status != 200 || len(stale.Body) != len(file) {
		t.Errorf("If-Range with an old ETag: %d, %d bytes", stale.Status, len(stale.Body))
	}
	if nm := e.with(http.MethodGet, "/pmtiles/demo.pmtiles", "", "If-None-Match", etag); nm.Status != http.StatusNotModified {
		t.Errorf("If-None-Match: %d", nm.Status)
	}
	if beyond := e.with(http.MethodGet, "/pmtiles/demo.pmtiles", "", "Range", fmt.Sprintf("bytes=%d-", len(file)+10)); beyond.Status != http.StatusRequestedRangeNotSatisfiable {
		t.Errorf("Range beyond the end: %d", beyond.Status)
	}
	if h := e.with(http.MethodHead, "/pmtiles/demo.pmtiles", ""); h.Status != 200 || h.Header.Get("Content-Length") != fmt.Sprint(len(file)) {
		t.Errorf("HEAD: %d %v", h.Status, h.Header)
	}
	expectProblem(t, e.get("/pmtiles/nope.pmtiles"), 404, typeNotFound, "", `"nope"`, "demo")
	if r := e.post("/pmtiles/demo.pmtiles", "{}"); r.Status != http.StatusMethodNotAllowed {
		t.Errorf("POST: %s", r)
	}
}

func TestPMTilesNotConfigured(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pgtest.New(t), api.Options{})
	expectProblem(t, e.get("/pmtiles/demo/0/0/0.mvt"), 404, typeNotFound, "", "--pmtiles-dir")
	expectProblem(t, e.get("/pmtiles/demo.json"), 404, typeNotFound, "", "--pmtiles-dir")
	expectProblem(t, e.get("/pmtiles/demo.pmtiles"), 404, typeNotFound, "", "--pmtiles-dir")
	var list struct {
		Archives []any `json:"archives"`
	}
	expect(t, e.get("/pmtiles"), 200, ctJSON, &list)
	if list.Archives == nil || len(list.Archives) != 0 {
		t.Errorf("list: %+v", list)
	}
	if err := e.srv.ServePMTiles(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing directory was accepted")
	}
}
