package tiles_test

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strconv"
	"testing"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/mvt"
	"github.com/paulmach/orb/maptile"

	"gridmap/data"
	"gridmap/data/demo"
	"gridmap/data/pgtest"
	"gridmap/tiles"
)

func renderer(t *testing.T, store *data.Store) *tiles.Renderer {
	t.Helper()
	cat, err := tiles.NewCatalogue(tiles.DefaultZooms)
	if err != nil {
		t.Fatal(err)
	}
	return &tiles.Renderer{Pool: store.Pool, Catalogue: cat}
}

// pointOf is a point inside the current base unit code.
func pointOf(t *testing.T, store *data.Store, code string) orb.Point {
	t.Helper()
	var p orb.Point
	err := store.Pool.QueryRow(context.Background(), `SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM units
		WHERE valid_to IS NULL AND layer = 'base' AND code = $1) x`, code).Scan(&p[0], &p[1])
	if err != nil {
		t.Fatalf("point of %s: %v", code, err)
	}
	return p
}

func keyAt(layer string, p orb.Point, z int) tiles.Key {
	t := maptile.At(p, maptile.Zoom(z))
	return tiles.Key{Layer: layer, Z: z, X: int(t.X), Y: int(t.Y)}
}

func render(t *testing.T, r *tiles.Renderer, k tiles.Key) []byte {
	t.Helper()
	b, err := r.Render(context.Background(), k.Layer, k.Z, k.X, k.Y)
	if err != nil {
		t.Fatalf("render %v: %v", k, err)
	}
	return b
}

func decode(t *testing.T, b []byte) map[string]mvt.Layer {
	t.Helper()
	layers, err := mvt.Unmarshal(b)
	if err != nil {
		t.Fatalf("decode MVT: %v", err)
	}
	out := map[string]mvt.Layer{}
	for _, l := range layers {
		if _, dup := out[l.Name]; dup {
			t.Fatalf("layer %s twice", l.Name)
		}
		out[l.Name] = *l
	}
	return out
}

func names(m map[string]mvt.Layer) []string {
	var out []string
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// loadObjects writes n demo objects to the store (codes repeat between
// seeds: a second load updates what the first inserted).
func loadObjects(t *testing.T, store *data.Store, n int64, seed uint64) {
	t.Helper()
	ctx := context.Background()
	stream, err := demo.Objects(ctx, store, n, seed, false)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := store.ImportObjects(ctx, stream, data.ObjectImportOptions{})
	if err != nil || rep.Inserted+rep.Updated != n {
		t.Fatalf("import %d demo objects: %+v %v", n, rep, err)
	}
}

// The same data gives the same bytes, whatever the rows' physical order:
// features are ordered by code (pg_tileserv's are not, so its ETags differ
// between two requests).
func TestRenderIsDeterministic(t *testing.T) {
	t.Parallel()
	store := pgtest.NewDemo(t)
	loadObjects(t, store, 2000, 7)
	r := renderer(t, store)
	p := pointOf(t, store, "440308")
	var keys []tiles.Key
	for _, layer := range []string{"units", "objects"} {
		for _, z := range []int{6, 10, 12, 14, 16} {
			keys = append(keys, keyAt(layer, p, z))
		}
	}
	first := map[tiles.Key][]byte{}
	for _, k := range keys {
		b := render(t, r, k)
		if len(b) == 0 {
			t.Fatalf("%v is empty", k)
		}
		if again := render(t, r, k); !bytes.Equal(b, again) {
			t.Errorf("%v: two renders differ (%d and %d bytes)", k, len(b), len(again))
		}
		first[k] = b
	}
	// Rewrite every row in another physical order; nothing the tiles show
	// changes.
	ctx := context.Background()
	if _, err := store.Pool.Exec(ctx, `
		CREATE TEMP TABLE u AS SELECT * FROM units ORDER BY md5(code);
		CREATE TEMP TABLE o AS SELECT code, class_code, geom, attrs, grid_code, created_at, updated_at FROM objects ORDER BY md5(code);
		DELETE FROM units;
		INSERT INTO units OVERRIDING SYSTEM VALUE SELECT * FROM u ORDER BY md5(code) DESC;
		DELETE FROM objects;
		INSERT INTO objects (code, class_code, geom, attrs, grid_code, created_at, updated_at) SELECT * FROM o ORDER BY md5(code) DESC`); err != nil {
		t.Fatal(err)
	}
	var firstCode string
	if err := store.Pool.QueryRow(ctx, `SELECT code FROM units LIMIT 1`).Scan(&firstCode); err != nil || firstCode == "440308" {
		t.Fatalf("the rows did not move: the first is %s (%v)", firstCode, err)
	}
	for _, k := range keys {
		b := render(t, r, k)
		e1, _ := tiles.NewEntry(first[k])
		e2, _ := tiles.NewEntry(b)
		if !bytes.Equal(b, first[k]) || e1.ETag != e2.ETag {
			t.Errorf("%v: bytes changed after the rows moved (%s → %s)", k, e1.ETag, e2.ETag)
		}
	}
}

// Every feature carries a numeric id: a unit's is its code, an object's a
// hash of its code.
func TestRenderFeatureIDs(t *testing.T) {
	t.Parallel()
	store := pgtest.NewDemo(t)
	loadObjects(t, store, 2000, 7)
	r := renderer(t, store)
	p := pointOf(t, store, "440308")
	seen := map[string]int{}
	for _, k := range []tiles.Key{keyAt("units", p, 6), keyAt("units", p, 10), keyAt("units", p, 12), keyAt("units", p, 14),
		keyAt("objects", p, 9), keyAt("objects", p, 12), keyAt("objects", p, 14)} {
		for name, l := range decode(t, render(t, r, k)) {
			if l.Extent != tiles.Extent {
				t.Errorf("%v %s: extent %d", k, name, l.Extent)
			}
			ids := map[float64]bool{}
			for _, f := range l.Features {
				id, ok := f.ID.(float64)
				if !ok || id <= 0 {
					t.Fatalf("%v %s: feature %v has id %#v", k, name, f.Properties, f.ID)
				}
				if ids[id] {
					t.Errorf("%v %s: id %v twice", k, name, id)
				}
				ids[id] = true
				if code, _ := f.Properties["code"].(string); name != "objects" && strconv.FormatFloat(id, 'f', 0, 64) != code {
					t.Errorf("%v %s: id %.0f, code %s", k, name, id, code)
				}
			}
			seen[name] += len(l.Features)
		}
	}
	for _, name := range []string{"district", "street", "community", "grid", "object_counts", "objects"} {
		if seen[name] == 0 {
			t.Errorf("no %s features in any tile: %v", name, seen)
		}
	}
}

// The tiles at the antimeridian's columns (x = 2^z − 1 holds Shenzhen at
// z1 and z2) are drawn: their buffer past 180° must not wrap the envelope.
func TestRenderAntimeridianColumn(t *testing.T) {
	t.Parallel()
	store := pgtest.NewDemo(t)
	r := renderer(t, store)
	p := pointOf(t, store, "440308")
	for z := 0; z <= 3; z++ {
		k := keyAt("units", p, z)
		if layers := decode(t, render(t, r, k)); len(layers["district"].Features) != 1 {
			t.Errorf("%v: %d districts, want 1", k, len(layers["district"].Features))
		}
	}
}

// A tile with nothing in it is empty: no layers, no bytes (the API answers
// 204).
func TestRenderEmptyTile(t *testing.T) {
	t.Parallel()
	store := pgtest.NewDemo(t)
	r := renderer(t, store)
	ocean := orb.Point{116.5, 20.5} // the South China Sea
	for _, layer := range []string{"units", "objects"} {
		for _, z := range []int{8, 14} {
			if b := render(t, r, keyAt(layer, ocean, z)); len(b) != 0 {
				t.Errorf("%v: %d bytes, want none", keyAt(layer, ocean, z), len(b))
			}
		}
	}
}

// Past the object cap a tile carries per-grid counts instead of objects,
// never a cut list.
func TestRenderObjectCap(t *testing.T) {
	t.Parallel()
	store := pgtest.NewDemo(t)
	loadObjects(t, store, 3000, 7)
	r := renderer(t, store)
	// The z14 tile holding the most objects.
	var x, y, n int
	err := store.Pool.QueryRow(context.Background(), `
		SELECT floor((ST_X(geom) + 180) / 360 * 16384)::int AS x,
		       floor((1 - ln(tan(radians(ST_Y(geom))) + 1 / cos(radians(ST_Y(geom)))) / pi()) / 2 * 16384)::int AS y, count(*)
		FROM objects WHERE GeometryType(geom) = 'POINT' GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT 1`).Scan(&x, &y, &n)
	if err != nil {
		t.Fatal(err)
	}
	// Objects meeting the buffered envelope: the buffer is 64 pixels, and
	// what lies within half a pixel of it is snapped onto its edge.
	var inTile int
	if err := store.Pool.QueryRow(context.Background(), `SELECT count(*) FROM objects
		WHERE ST_Intersects(geom, ST_Transform(ST_TileEnvelope(14, $1, $2, margin => 64.5 / 4096), 4326))`, x, y).Scan(&inTile); err != nil {
		t.Fatal(err)
	}
	if n <= 5 {
		t.Fatalf("the fullest z14 tile holds %d objects; the test needs more than 5", n)
	}
	k := tiles.Key{Layer: "objects", Z: 14, X: x, Y: y}

	full := decode(t, render(t, r, k))
	if fmt.Sprint(names(full)) != "[objects]" || len(full["objects"].Features) != inTile {
		t.Fatalf("default cap: layers %v with %d objects, want [objects] with %d", names(full), len(full["objects"].Features), inTile)
	}

	capped := *r
	capped.ObjectCap = 5
	counts := decode(t, render(t, &capped, k))
	if fmt.Sprint(names(counts)) != "[object_counts]" {
		t.Fatalf("cap 5: layers %v, want [object_counts]", names(counts))
	}
	if len(counts["object_counts"].Features) == 0 {
		t.Fatal("no counts")
	}
	for _, f := range counts["object_counts"].Features {
		code, _ := f.Properties["code"].(string)
		if f.Properties["level"] != "grid" {
			t.Errorf("%s: a count of level %v at z14", code, f.Properties["level"])
		}
		var want float64
		if err := store.Pool.QueryRow(context.Background(), `SELECT count(*) FROM objects WHERE grid_code = $1`, code).Scan(&want); err != nil {
			t.Fatal(err)
		}
		if got := f.Properties["count"]; got != want {
			t.Errorf("grid %s: count %v (%T), want %v", code, got, got, want)
		}
	}
}
