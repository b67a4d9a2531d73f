package api_test

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/paulmach/orb"

	"gridmap/api"
	"gridmap/data/pgtest"
)

// TestEditDropsOnlyChangedTiles: a reshape drops from the tile cache the
// tiles over the area that changed, and only those: the tile over the band
// the grid took is a miss with the new outline (and name), a units tile and
// an objects tile far away stay hits with their ETags.
func TestEditDropsOnlyChangedTiles(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pgtest.NewDemo(t), api.Options{})
	a, b := neighbourGrids(t, e)
	geom, lon, lat := grabFrom(t, e, a, b, 0.0005)
	far := sqlStrings(t, e.store, `
		SELECT g.code FROM units g, units x WHERE g.valid_to IS NULL AND x.valid_to IS NULL AND g.level = 'grid' AND x.code = $1
		ORDER BY ST_Distance(g.geom, x.geom) DESC LIMIT 1`, a)[0]
	near := tilePath("units", orb.Point{lon, lat}, 15)
	farUnits, farObjects := tilePath("units", unitPoint(t, e.store, far), 15), tilePath("objects", unitPoint(t, e.store, far), 15)
	if near == farUnits {
		t.Fatalf("the near and far tiles are one: %s", near)
	}
	etags := map[string]string{}
	for _, path := range []string{near, farUnits, farObjects} {
		r := e.getTile(path)
		expectCache(t, r, "miss")
		etags[path] = etagOf(t, r)
		expectCache(t, e.getTile(path), "hit")
	}

	var got editAnswer
	expect(t, e.with(http.MethodPut, "/v1/units/"+a+"?neighbours=adjust&reason=road+moved", unitFeatureJSON(geom, "边界新网格"), "If-Match", unitETag(t, e, a)),
		http.StatusOK, ctJSON, &got)
	if len(got.UnitsWritten) != 2 {
		t.Fatalf("reshape: %+v", got)
	}
	r := e.getTile(near)
	expectCache(t, r, "miss")
	if etagOf(t, r) == etags[near] || !bytes.Contains(mvtOf(t, r), []byte("边界新网格")) {
		t.Errorf("the tile over the changed area is the old one")
	}
	expectCache(t, e.getTile(near), "hit")
	for _, path := range []string{farUnits, farObjects} {
		r := e.getTile(path)
		expectCache(t, r, "hit")
		if etagOf(t, r) != etags[path] {
			t.Errorf("%s changed", path)
		}
	}
}

// TestMemoryTilesFollowEdits: after a reshape (two grids written), the
// unit tiles the editing server draws from its updated in-memory copy are
// byte for byte those of a server that built its copy afresh from the
// store, at every zoom of the grids and of their community.
func TestMemoryTilesFollowEdits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pgtest.NewDemo(t), api.Options{TileRenderer: api.TileRendererMemory})
	a, b := neighbourGrids(t, e)
	geom, lon, lat := grabFrom(t, e, a, b, 0.0005)
	for z := 11; z <= 16; z++ {
		e.getTile(tilePath("units", orb.Point{lon, lat}, z)) // cached before the edit
	}
	var got editAnswer
	expect(t, e.with(http.MethodPut, "/v1/units/"+a+"?neighbours=adjust&reason=road+moved", unitFeatureJSON(geom, "边界新网格"), "If-Match", unitETag(t, e, a)),
		http.StatusOK, ctJSON, &got)
	fresh := newEnv(t, e.store, api.Options{TileRenderer: api.TileRendererMemory})
	for z := 11; z <= 16; z++ {
		path := tilePath("units", orb.Point{lon, lat}, z)
		if x, y := mvtOf(t, e.getTile(path)), mvtOf(t, fresh.getTile(path)); !bytes.Equal(x, y) {
			t.Errorf("%s: the edited server's tile (%d B) is not the fresh server's (%d B)", path, len(x), len(y))
		}
	}
}
