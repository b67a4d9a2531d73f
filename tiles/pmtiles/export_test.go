package pmtiles

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	pm "github.com/protomaps/go-pmtiles/pmtiles"

	"gridmap/data"
	"gridmap/data/demo"
	"gridmap/data/pgtest"
	"gridmap/tiles"
)

// demoRenderer is the small demo city with a few hundred objects.
func demoRenderer(t *testing.T) *tiles.Renderer {
	t.Helper()
	ctx := context.Background()
	s := pgtest.NewDemo(t)
	st, err := demo.Objects(ctx, s, 400, 3, false)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := s.ImportObjects(ctx, st, data.ObjectImportOptions{})
	if err != nil || rep.Inserted != 400 {
		t.Fatalf("import objects: %+v, %v", rep, err)
	}
	cat, err := tiles.NewCatalogue(tiles.DefaultZooms)
	if err != nil {
		t.Fatal(err)
	}
	return &tiles.Renderer{Pool: s.Pool, Catalogue: cat}
}

// verify runs go-pmtiles' verifier, which logs some faults instead of
// returning them.
func verify(t *testing.T, path string) {
	t.Helper()
	var logBuf bytes.Buffer
	if err := pm.Verify(log.New(&logBuf, "", 0), path); err != nil {
		t.Fatalf("pmtiles verify: %v\n%s", err, logBuf.String())
	}
	if strings.Contains(logBuf.String(), "Invalid") {
		t.Fatalf("pmtiles verify:\n%s", logBuf.String())
	}
}

// archive is an archive read back with go-pmtiles' own reader functions.
type archive struct {
	header  pm.HeaderV3
	meta    map[string]any
	entries []pm.EntryV3
	file    []byte
}

func readArchive(t *testing.T, path string) *archive {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	a := &archive{file: b}
	if a.header, err = pm.DeserializeHeader(b[:pm.HeaderV3LenBytes]); err != nil {
		t.Fatal(err)
	}
	h := a.header
	if a.meta, err = pm.DeserializeMetadata(bytes.NewReader(b[h.MetadataOffset:h.MetadataOffset+h.MetadataLength]), h.InternalCompression); err != nil {
		t.Fatal(err)
	}
	err = pm.IterateEntries(h, func(off, n uint64) ([]byte, error) { return b[off : off+n], nil }, func(e pm.EntryV3) {
		a.entries = append(a.entries, e)
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// tile is the stored, gunzipped tile of id (nil: not in the archive).
func (a *archive) tile(t *testing.T, id uint64) []byte {
	t.Helper()
	i := sort.Search(len(a.entries), func(i int) bool { return a.entries[i].TileID > id }) - 1
	if i < 0 || id >= a.entries[i].TileID+uint64(a.entries[i].RunLength) {
		return nil
	}
	e := a.entries[i]
	start := a.header.TileDataOffset + e.Offset
	zr, err := gzip.NewReader(bytes.NewReader(a.file[start : start+uint64(e.Length)]))
	if err != nil {
		t.Fatalf("tile %d: %v", id, err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("tile %d: %v", id, err)
	}
	return raw
}

func TestExportDemo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := demoRenderer(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "demo.pmtiles")
	var calls int
	var last Progress
	st, err := ExportFile(ctx, r, Options{Layers: []string{"units", "objects"}, MinZoom: 0, MaxZoom: 14, Workers: 2,
		Progress: func(p Progress) { calls++; last = p }}, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stats: %+v", st)
	if int64(calls) != st.Rendered || last.Done != st.Rendered || last.Total != st.Rendered || last.Written != st.Tiles {
		t.Errorf("progress: %d calls, last %+v; stats %+v", calls, last, st)
	}
	if st.Tiles == 0 || st.Unique == 0 || st.Unique > st.Tiles || st.Entries > st.Tiles || st.MinZoom != 0 || st.MaxZoom != 14 || len(st.Zooms) != 15 {
		t.Fatalf("stats: %+v", st)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Size() != st.Bytes {
		t.Fatalf("archive size %v, stats say %d (%v)", fi, st.Bytes, err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	verify(t, path)

	a := readArchive(t, path)
	h := a.header
	if h.SpecVersion != 3 || h.TileType != pm.Mvt || h.TileCompression != pm.Gzip || h.InternalCompression != pm.Gzip || !h.Clustered {
		t.Errorf("header: %+v", h)
	}
	if h.MinZoom != 0 || h.MaxZoom != 14 || h.CenterZoom < h.MinZoom || h.CenterZoom > h.MaxZoom {
		t.Errorf("header zooms: %d–%d, centre %d", h.MinZoom, h.MaxZoom, h.CenterZoom)
	}
	units, _ := r.Catalogue.Tileset("units")
	tj, err := tiles.Describe(ctx, r.Pool, units, "")
	if err != nil {
		t.Fatal(err)
	}
	got := [4]float64{float64(h.MinLonE7) / 1e7, float64(h.MinLatE7) / 1e7, float64(h.MaxLonE7) / 1e7, float64(h.MaxLatE7) / 1e7}
	for i := range got {
		if math.Abs(got[i]-tj.Bounds[i]) > 1e-7 {
			t.Errorf("bounds %v, the store's district extent is %v", got, tj.Bounds)
			break
		}
	}
	if st.Bounds != tj.Bounds {
		t.Errorf("stats bounds %v, want %v", st.Bounds, tj.Bounds)
	}
	if h.AddressedTilesCount != uint64(st.Tiles) || h.TileEntriesCount != uint64(st.Entries) || h.TileContentsCount != uint64(st.Unique) {
		t.Errorf("header counts %d/%d/%d, stats %+v", h.AddressedTilesCount, h.TileEntriesCount, h.TileContentsCount, st)
	}

	// Metadata: names and the vector layers of both tilesets, zooms cut to the archive's.
	for _, k := range []string{"name", "description", "attribution"} {
		if s, _ := a.meta[k].(string); s == "" {
			t.Errorf("metadata %s missing: %v", k, a.meta)
		}
	}
	type vl struct {
		ID               string
		MinZoom, MaxZoom int
		Fields           map[string]string
		Description      string
	}
	var vls []vl
	raw, _ := json.Marshal(a.meta["vector_layers"])
	if err := json.Unmarshal(raw, &vls); err != nil {
		t.Fatal(err)
	}
	want := map[string][2]int{"district": {0, 10}, "street": {9, 12}, "community": {11, 14}, "grid": {13, 14}, "object_counts": {0, 14}, "objects": {14, 14}}
	if len(vls) != len(want) {
		t.Errorf("vector_layers: %+v", vls)
	}
	for _, v := range vls {
		if z, ok := want[v.ID]; !ok || z != [2]int{v.MinZoom, v.MaxZoom} || len(v.Fields) == 0 || v.Description == "" {
			t.Errorf("vector layer %+v, want zooms %v", v, want[v.ID])
		}
	}

	// Entries ascend; run lengths add up; contents are deduplicated.
	offsets := map[uint64]bool{}
	var addressed uint64
	for i, e := range a.entries {
		if i > 0 && e.TileID < a.entries[i-1].TileID+uint64(a.entries[i-1].RunLength) {
			t.Fatalf("entry %d %+v does not follow %+v", i, e, a.entries[i-1])
		}
		offsets[e.Offset] = true
		addressed += uint64(e.RunLength)
	}
	if addressed != uint64(st.Tiles) || len(offsets) != int(st.Unique) {
		t.Errorf("%d addressed, %d contents; stats %+v", addressed, len(offsets), st)
	}

	// Every tile of the bbox: the archive holds exactly the renderer's
	// tiles with features, the concatenation of units and objects.
	var rendered, withFeatures int64
	for z := 0; z <= 14; z++ {
		for _, id := range coverRange(z, tj.Bounds).ids() {
			_, x, y := pm.IDToZxy(id)
			var want []byte
			for _, l := range []string{"units", "objects"} {
				b, err := r.Render(ctx, l, z, int(x), int(y))
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, b...)
			}
			rendered++
			got := a.tile(t, id)
			if len(want) > 0 {
				withFeatures++
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("tile %d/%d/%d: archive holds %d bytes, the renderer gives %d", z, x, y, len(got), len(want))
			}
		}
	}
	if rendered != st.Rendered || withFeatures != st.Tiles {
		t.Errorf("%d tiles in the bbox, %d with features; stats %+v", rendered, withFeatures, st)
	}

	// The same data gives the same archive.
	path2 := filepath.Join(dir, "again.pmtiles")
	if _, err := ExportFile(ctx, r, Options{Layers: []string{"units", "objects"}, MinZoom: 0, MaxZoom: 14, Workers: 1}, path2); err != nil {
		t.Fatal(err)
	}
	b2, _ := os.ReadFile(path2)
	if !bytes.Equal(a.file, b2) {
		t.Errorf("a second export (one worker) differs: %d vs %d bytes", len(a.file), len(b2))
	}

	testDir(t, dir, a)
}

// testDir serves the archive just written.
func testDir(t *testing.T, dir string, a *archive) {
	ctx := context.Background()
	d, err := OpenDir(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if names := d.Names(); !reflect.DeepEqual(names, []string{"again", "demo"}) {
		t.Errorf("names %v", names)
	}
	e := a.entries[len(a.entries)/2]
	z, x, y := pm.IDToZxy(e.TileID)
	tile, err := d.Tile(ctx, "demo", int(z), int(x), int(y))
	if err != nil {
		t.Fatal(err)
	}
	start := a.header.TileDataOffset + e.Offset
	if !bytes.Equal(tile.Data, a.file[start:start+uint64(e.Length)]) || tile.Encoding != "gzip" || tile.ETag == "" {
		t.Errorf("tile %d/%d/%d: %d bytes, %q, etag %q", z, x, y, len(tile.Data), tile.Encoding, tile.ETag)
	}
	if _, err := d.Tile(ctx, "nope", 0, 0, 0); !errors.Is(err, ErrNoArchive) {
		t.Errorf("unknown archive: %v", err)
	}
	if _, err := d.Tile(ctx, "../demo", 0, 0, 0); !errors.Is(err, ErrNoArchive) {
		t.Errorf("path outside the directory: %v", err)
	}
	if _, err := d.Tile(ctx, "demo", 15, 0, 0); !errors.Is(err, ErrNoTile) {
		t.Errorf("zoom beyond the archive: %v", err)
	}
	if _, err := d.Tile(ctx, "demo", 10, 0, 0); !errors.Is(err, ErrNoTile) {
		t.Errorf("tile outside the bounds: %v", err)
	}
	info, err := d.Info("demo")
	if err != nil {
		t.Fatal(err)
	}
	tjBytes, err := info.TileJSON("http://host/pmtiles/demo")
	if err != nil {
		t.Fatal(err)
	}
	var tj struct {
		TileJSON     string   `json:"tilejson"`
		Tiles        []string `json:"tiles"`
		MinZoom      int      `json:"minzoom"`
		MaxZoom      int      `json:"maxzoom"`
		VectorLayers []any    `json:"vector_layers"`
	}
	if err := json.Unmarshal(tjBytes, &tj); err != nil {
		t.Fatal(err)
	}
	if tj.TileJSON != "3.0.0" || len(tj.Tiles) != 1 || tj.Tiles[0] != "http://host/pmtiles/demo/{z}/{x}/{y}.mvt" || tj.MaxZoom != 14 || len(tj.VectorLayers) != 6 {
		t.Errorf("tilejson: %s", tjBytes)
	}
}

func TestExportErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := demoRenderer(t)
	dir := t.TempDir()
	atlantic := [4]float64{-40, 10, -39, 11}
	for _, c := range []struct {
		name string
		o    Options
		want string
	}{
		{"unknown layer", Options{Layers: []string{"units", "roads"}, MaxZoom: 3}, `no tileset "roads"`},
		{"no layer", Options{MaxZoom: 3}, "no layers"},
		{"twice", Options{Layers: []string{"units", "units"}, MaxZoom: 3}, "twice"},
		{"live events", Options{Layers: []string{"units", "events"}, MaxZoom: 3}, "changes with the clock"},
		{"zooms", Options{Layers: []string{"units"}, MinZoom: 5, MaxZoom: 3}, "minzoom"},
		{"zoom too deep", Options{Layers: []string{"units"}, MaxZoom: 23}, "maxzoom"},
		{"empty bbox", Options{Layers: []string{"units"}, MaxZoom: 3, BBox: &[4]float64{114, 22, 113, 23}}, "empty"},
		{"bbox outside", Options{Layers: []string{"units"}, MaxZoom: 3, BBox: &[4]float64{114, 22, 200, 23}}, "outside"},
		{"too many tiles", Options{Layers: []string{"units"}, MaxZoom: 12, BBox: &[4]float64{-180, -85, 180, 85}}, "more than the limit"},
		{"nothing there", Options{Layers: []string{"units", "objects"}, MinZoom: 6, MaxZoom: 8, BBox: &atlantic}, "nothing to write"},
	} {
		path := filepath.Join(dir, "x.pmtiles")
		if _, err := ExportFile(ctx, r, c.o, path); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
		if _, err := os.Stat(path); err == nil {
			t.Errorf("%s: an archive was written", c.name)
		}
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("files left: %v", left)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Export(cancelled, r, Options{Layers: []string{"units"}, MaxZoom: 10}, io.Discard); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}

	// A store without districts has no extent to default to.
	empty := &tiles.Renderer{Pool: pgtest.New(t).Pool, Catalogue: r.Catalogue}
	if _, err := Export(ctx, empty, Options{Layers: []string{"units"}, MaxZoom: 3}, io.Discard); err == nil || !strings.Contains(err.Error(), "bbox") {
		t.Errorf("empty store: %v", err)
	}
}

// TestWriteArchiveLeaves writes a directory too large for the root (leaf
// directories) and checks it with the verifier and the reader.
func TestWriteArchiveLeaves(t *testing.T) {
	t.Parallel()
	var entries []pm.EntryV3
	var tileData bytes.Buffer
	contents := [][]byte{[]byte("aaaa"), []byte("bbbbbb"), []byte("c")}
	var offsets [3]uint64
	for i, c := range contents {
		offsets[i] = uint64(tileData.Len())
		tileData.Write(c)
	}
	for z := 0; z <= 9; z++ {
		n := 1 << z
		for id := pm.ZxyToID(uint8(z), 0, 0); id < pm.ZxyToID(uint8(z), 0, 0)+uint64(n*n); id++ {
			if id%7 == 3 {
				continue // gaps, so that entries do not all merge into runs
			}
			c := int(id % 3)
			if last := len(entries) - 1; last >= 0 && entries[last].Offset == offsets[c] && entries[last].TileID+uint64(entries[last].RunLength) == id {
				entries[last].RunLength++
				continue
			}
			entries = append(entries, pm.EntryV3{TileID: id, Offset: offsets[c], Length: uint32(len(contents[c])), RunLength: 1})
		}
	}
	var addressed uint64
	for _, e := range entries {
		addressed += uint64(e.RunLength)
	}
	meta, _ := pm.SerializeMetadata(map[string]any{"name": "synthetic"}, pm.Gzip)
	h := pm.HeaderV3{AddressedTilesCount: addressed, TileContentsCount: 3, TileCompression: pm.NoCompression, TileType: pm.Mvt,
		MinLonE7: -1e9, MinLatE7: -5e8, MaxLonE7: 1e9, MaxLatE7: 5e8, CenterZoom: 2}
	path := filepath.Join(t.TempDir(), "leaves.pmtiles")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	n, leaves, err := writeArchive(f, h, entries, meta, bytes.NewReader(tileData.Bytes()), uint64(tileData.Len()))
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d entries, %d addressed, %d leaf directories, %d bytes", len(entries), addressed, leaves, n)
	if leaves == 0 {
		t.Fatalf("%d entries fit the root: the test needs leaf directories", len(entries))
	}
	verify(t, path)
	a := readArchive(t, path)
	if !reflect.DeepEqual(a.entries, entries) {
		t.Fatalf("read back %d entries, wrote %d", len(a.entries), len(entries))
	}
}
