package tiles_test

import (
	"context"
	"testing"

	"github.com/paulmach/orb"

	"gridmap/data"
	"gridmap/data/pgtest"
	"gridmap/tiles"
)

// changeEnv is a store, a renderer and a cache kept by Changes.
type changeEnv struct {
	t       *testing.T
	store   *data.Store
	r       *tiles.Renderer
	cache   *tiles.Cache
	changes *tiles.Changes
}

func newChangeEnv(t *testing.T) *changeEnv {
	store := pgtest.NewDemo(t)
	loadObjects(t, store, 2000, 7)
	r := renderer(t, store)
	cache := tiles.NewCache(64 << 20)
	ch, err := tiles.NewChanges(context.Background(), store.Pool, cache, r.Catalogue)
	if err != nil {
		t.Fatal(err)
	}
	return &changeEnv{t: t, store: store, r: r, cache: cache, changes: ch}
}

// fill renders keys into the cache.
func (e *changeEnv) fill(keys []tiles.Key) {
	e.t.Helper()
	for _, k := range keys {
		if _, _, err := e.cache.Get(context.Background(), k, func(ctx context.Context) ([]byte, error) {
			return e.r.Render(ctx, k.Layer, k.Z, k.X, k.Y)
		}); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *changeEnv) sync() tiles.Synced {
	e.t.Helper()
	res, err := e.changes.Sync(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

// touches is the oracle, in PostGIS: does the current geometry of unit
// code (in the units tileset) or its count point (in objects) meet the
// tile's envelope with the invalidation buffer (66 pixels)?
func (e *changeEnv) touches(code string, k tiles.Key) bool {
	e.t.Helper()
	var ok bool
	if err := e.store.Pool.QueryRow(context.Background(), `
		SELECT ST_Intersects(CASE WHEN $5 = 'units' THEN geom ELSE ST_PointOnSurface(geom) END,
		                     ST_Transform(ST_TileEnvelope($2, $3, $4, margin => 66.0 / 4096), 4326))
		FROM units WHERE valid_to IS NULL AND layer = 'base' AND code = $1`, code, k.Z, k.X, k.Y, k.Layer).Scan(&ok); err != nil {
		e.t.Fatal(err)
	}
	return ok
}

// around lists tiles of layer around p: the tile at each zoom and, at z14
// and z16, its eight neighbours.
func around(layer string, p orb.Point) []tiles.Key {
	var out []tiles.Key
	for _, z := range []int{6, 10, 12, 13, 14, 16} {
		k := keyAt(layer, p, z)
		out = append(out, k)
		if z == 14 || z == 16 {
			for dy := -1; dy <= 1; dy++ {
				for dx := -1; dx <= 1; dx++ {
					if dx != 0 || dy != 0 {
						out = append(out, tiles.Key{Layer: layer, Z: z, X: k.X + dx, Y: k.Y + dy})
					}
				}
			}
		}
	}
	return out
}

// gridPair is the lowest-coded grid and the grid farthest from it.
func gridPair(t *testing.T, store *data.Store) (near, far string) {
	t.Helper()
	err := store.Pool.QueryRow(context.Background(), `
		WITH g AS (SELECT code, geom FROM units WHERE valid_to IS NULL AND layer = 'base' AND level = 'grid'),
		     a AS (SELECT code, geom FROM g ORDER BY code LIMIT 1)
		SELECT a.code, (SELECT g.code FROM g ORDER BY ST_Distance(g.geom, a.geom) DESC, g.code LIMIT 1) FROM a`).Scan(&near, &far)
	if err != nil {
		t.Fatal(err)
	}
	return near, far
}

// A renamed grid drops exactly the cached tiles that draw it: in units the
// grid zooms (13–22) where its polygon meets the buffered tile, in objects
// those where its count point does at the zooms where grids carry counts
// (14–22), nothing else.
func TestChangesDropExactlyTheTouchedTiles(t *testing.T) {
	t.Parallel()
	e := newChangeEnv(t)
	ctx := context.Background()
	g, f := gridPair(t, e.store)
	var keys []tiles.Key
	for _, layer := range []string{"units", "objects"} {
		keys = append(keys, around(layer, pointOf(t, e.store, g))...)
		keys = append(keys, around(layer, pointOf(t, e.store, f))...)
	}
	e.fill(keys)
	if res := e.sync(); res.Changes != 0 || res.Dropped != 0 {
		t.Fatalf("changes before any write: %+v", res)
	}
	if _, err := e.store.Pool.Exec(ctx, `UPDATE units SET name = name || ' (renamed)' WHERE valid_to IS NULL AND code = $1`, g); err != nil {
		t.Fatal(err)
	}
	res := e.sync()
	if res.Changes == 0 {
		t.Fatalf("the rename left no change: %+v", res)
	}
	left := map[tiles.Key]bool{}
	for _, k := range keys {
		left[k] = e.cache.Has(k)
	}
	dropped := 0
	for _, k := range keys {
		minZ := 13 // grids are drawn from z13 in units
		if k.Layer == "objects" {
			minZ = tiles.ObjectsMinZoom // and counted per grid from z14
		}
		want := k.Z >= minZ && e.touches(g, k)
		if left[k] == want {
			t.Errorf("%v: dropped %v, want %v", k, !left[k], want)
		}
		if want {
			dropped++
		}
	}
	if dropped == 0 || res.Dropped != dropped {
		t.Errorf("Sync dropped %d tiles, the oracle %d", res.Dropped, dropped)
	}
}

// Transactions commit in any order: one that wrote its change first (lower
// id) but commits after a later one is still seen.
func TestChangesSeeLateCommits(t *testing.T) {
	t.Parallel()
	e := newChangeEnv(t)
	ctx := context.Background()
	g, f := gridPair(t, e.store)
	gk, fk := keyAt("units", pointOf(t, e.store, g), 15), keyAt("units", pointOf(t, e.store, f), 15)
	e.fill([]tiles.Key{gk, fk})

	early, err := e.store.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = early.Rollback(ctx) }()
	if _, err := early.Exec(ctx, `UPDATE units SET name = name || ' (early)' WHERE valid_to IS NULL AND code = $1`, f); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Pool.Exec(ctx, `UPDATE units SET name = name || ' (late)' WHERE valid_to IS NULL AND code = $1`, g); err != nil {
		t.Fatal(err)
	}
	e.sync()
	if got := e.cache.Has(gk); got {
		t.Errorf("the committed change did not drop %v", gk)
	}
	if got := e.cache.Has(fk); !got {
		t.Errorf("an uncommitted change dropped %v", fk)
	}
	if err := early.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	res := e.sync()
	if got := e.cache.Has(fk); got {
		t.Errorf("the change committed last (with the lower id) did not drop %v: %+v", fk, res)
	}
}

// A bulk load is recorded as a bounded number of cell extents, which
// still drop every tile it touched.
func TestChangesBulkLoad(t *testing.T) {
	t.Parallel()
	e := newChangeEnv(t)
	ctx := context.Background()
	g, _ := gridPair(t, e.store)
	keys := around("objects", pointOf(t, e.store, g))
	e.fill(keys)
	var before int64
	if err := e.store.Pool.QueryRow(ctx, `SELECT count(*) FROM tile_changes`).Scan(&before); err != nil {
		t.Fatal(err)
	}
	loadObjects(t, e.store, 3000, 8) // more than the 1,000 recorded one by one
	var rows int64
	if err := e.store.Pool.QueryRow(ctx, `SELECT count(*) FROM tile_changes`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows-before >= 3000 {
		t.Errorf("a bulk load of 3,000 objects wrote %d change rows", rows-before)
	}
	res := e.sync()
	if res.Dropped == 0 {
		t.Errorf("the bulk load dropped nothing: %+v", res)
	}
	// Every cached tile that now renders differently was dropped.
	for _, k := range keys {
		entry, hit, err := e.cache.Get(ctx, k, func(ctx context.Context) ([]byte, error) { return e.r.Render(ctx, k.Layer, k.Z, k.X, k.Y) })
		if err != nil {
			t.Fatal(err)
		}
		fresh, _ := tiles.NewEntry(render(t, e.r, k))
		if hit && entry.ETag != fresh.ETag {
			t.Errorf("%v is stale after the bulk load (%+v)", k, res)
		}
	}
}
