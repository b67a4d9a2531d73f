package tiles

import (
	"context"
	"testing"

	"github.com/paulmach/orb"

	"gridmap/geo"
)

// TestCacheInvalidatesGCJ02Tiles: a change (WGS-84 geometry) drops the
// GCJ-02 tiles over its GCJ-02 position and keeps those over its WGS-84
// position only; the WGS-84 tiles go by the WGS-84 position as before.
func TestCacheInvalidatesGCJ02Tiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// A point in Shenzhen and its GCJ-02 position, about 500 m apart: at
	// z17 (300 m tiles) in different tiles.
	p := orb.Point{114.2401, 22.5822}
	x, y := geo.WGS84ToGCJ02(p[0], p[1])
	q := orb.Point{x, y}
	const z = 17
	gcj := CRSLayer("units", geo.GCJ02)
	overGCJ, overWGS := keyAt(gcj, q, z), keyAt(gcj, p, z)
	wgsOverWGS, wgsOverGCJ := keyAt("units", p, z), keyAt("units", q, z)
	if overGCJ.X == overWGS.X && overGCJ.Y == overWGS.Y {
		t.Fatalf("the shift keeps %v in one z%d tile", p, z)
	}
	c := NewCache(1 << 20)
	for _, k := range []Key{overGCJ, overWGS, wgsOverWGS, wgsOverGCJ} {
		if _, _, err := c.Get(ctx, k, constRender([]byte("tile"))); err != nil {
			t.Fatal(err)
		}
	}
	line := orb.LineString{p, {p[0] + 1e-5, p[1]}}
	if n := c.Invalidate("units", []Change{{Geom: line, MinZoom: 0, MaxZoom: MaxZoom}}); n != 2 {
		t.Errorf("dropped %d tiles, want 2", n)
	}
	for k, want := range map[Key]bool{overGCJ: false, overWGS: true, wgsOverWGS: false, wgsOverGCJ: true} {
		if c.Has(k) != want {
			t.Errorf("%v kept: %v, want %v", k, c.Has(k), want)
		}
	}
	// The change's geometry is the caller's: not converted in place.
	if line[0] != p {
		t.Errorf("the change's geometry moved to %v", line)
	}
	// A change without geometry drops every GCJ-02 tile of its zooms.
	if n := c.Invalidate("units", []Change{{MinZoom: z, MaxZoom: z}}); n != 2 {
		t.Errorf("a change without geometry dropped %d, want 2", n)
	}
	// Other tilesets' GCJ-02 tiles are theirs.
	k := keyAt(CRSLayer("objects", geo.GCJ02), q, z)
	if _, _, err := c.Get(ctx, k, constRender([]byte("tile"))); err != nil {
		t.Fatal(err)
	}
	c.Invalidate("units", []Change{{Geom: p, MinZoom: 0, MaxZoom: MaxZoom}})
	if !c.Has(k) {
		t.Errorf("a units change dropped an objects tile")
	}
}
