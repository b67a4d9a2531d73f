package tiles

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/maptile"
)

func constRender(b []byte) func(context.Context) ([]byte, error) {
	return func(context.Context) ([]byte, error) { return b, nil }
}

func TestCacheHitMissAndEntry(t *testing.T) {
	t.Parallel()
	c := NewCache(1 << 20)
	ctx := context.Background()
	k := Key{"units", 14, 13390, 7140}
	mvt := bytes.Repeat([]byte("feature "), 500)
	e1, hit, err := c.Get(ctx, k, constRender(mvt))
	if err != nil || hit {
		t.Fatalf("first Get: hit=%v err=%v, want a miss", hit, err)
	}
	e2, hit, err := c.Get(ctx, k, func(context.Context) ([]byte, error) { t.Fatal("rendered on a hit"); return nil, nil })
	if err != nil || !hit || e2 != e1 {
		t.Fatalf("second Get: hit=%v err=%v same=%v, want the same entry from memory", hit, err, e2 == e1)
	}
	got, err := e1.MVT()
	if err != nil || !bytes.Equal(got, mvt) {
		t.Fatalf("MVT() does not give back the rendered bytes (err %v)", err)
	}
	if len(e1.Gzip) >= len(mvt) || e1.Empty || e1.Size != len(mvt) {
		t.Errorf("entry: %d gzip bytes of %d, empty %v, size %d", len(e1.Gzip), len(mvt), e1.Empty, e1.Size)
	}
	again, _ := NewEntry(mvt)
	if again.ETag != e1.ETag {
		t.Errorf("ETag differs for the same bytes: %s %s", again.ETag, e1.ETag)
	}
	st := c.Stats()
	if st.Hits != 1 || st.Misses != 1 || st.Renders != 1 || st.Entries != 1 || st.Bytes <= int64(len(e1.Gzip)) {
		t.Errorf("stats %+v", st)
	}
	empty, _, _ := c.Get(ctx, Key{"units", 14, 0, 0}, constRender(nil))
	if !empty.Empty || empty.Gzip != nil {
		t.Errorf("an empty render is not an empty entry: %+v", empty)
	}
}

func TestCacheRenderErrorIsNotKept(t *testing.T) {
	t.Parallel()
	c := NewCache(1 << 20)
	k := Key{"units", 1, 0, 0}
	boom := errors.New("boom")
	if _, _, err := c.Get(context.Background(), k, func(context.Context) ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("err %v, want boom", err)
	}
	if _, hit, err := c.Get(context.Background(), k, constRender([]byte("x"))); hit || err != nil {
		t.Fatalf("after a failed render: hit=%v err=%v", hit, err)
	}
}

func TestCacheConcurrentMissesRenderOnce(t *testing.T) {
	t.Parallel()
	c := NewCache(1 << 20)
	k := Key{"objects", 10, 836, 446}
	release := make(chan struct{})
	var renders atomic.Int32
	render := func(context.Context) ([]byte, error) {
		renders.Add(1)
		<-release
		return []byte("tile"), nil
	}
	const n = 32
	var wg sync.WaitGroup
	entries := make([]*Entry, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e, _, err := c.Get(context.Background(), k, render)
			if err != nil {
				t.Error(err)
			}
			entries[i] = e
		}()
	}
	// Let every goroutine reach the cache before the render ends.
	for deadline := time.Now().Add(5 * time.Second); c.Stats().Misses < n && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if r := renders.Load(); r != 1 {
		t.Errorf("%d concurrent misses rendered %d times, want 1", n, r)
	}
	for i, e := range entries {
		if e != entries[0] {
			t.Fatalf("caller %d got another entry", i)
		}
	}
}

func TestCacheByteBoundEvictsLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	const tileBytes = 10000
	random := func() []byte { b := make([]byte, tileBytes); _, _ = rand.Read(b); return b } // incompressible
	c := NewCache(10 * (tileBytes + 200))
	ctx := context.Background()
	first := Key{"units", 14, 0, 0}
	if _, _, err := c.Get(ctx, first, constRender(random())); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 30; i++ {
		if _, _, err := c.Get(ctx, Key{"units", 14, i, 0}, constRender(random())); err != nil {
			t.Fatal(err)
		}
		// Keep the first tile in use: it must never be the one evicted.
		if _, hit, _ := c.Get(ctx, first, constRender(random())); !hit {
			t.Fatalf("after %d tiles the tile in use was evicted", i)
		}
		if st := c.Stats(); st.Bytes > st.MaxBytes {
			t.Fatalf("holds %d bytes, bound %d", st.Bytes, st.MaxBytes)
		}
	}
	st := c.Stats()
	if st.Evictions == 0 || st.Entries > 10 || st.Entries < 5 {
		t.Errorf("stats after 30 tiles of %d bytes under a bound of 10: %+v", tileBytes, st)
	}
	if _, hit, _ := c.Get(ctx, Key{"units", 14, 1, 0}, constRender(random())); hit {
		t.Errorf("the least recently used tile is still cached")
	}
	if _, hit, _ := c.Get(ctx, Key{"units", 14, 29, 0}, constRender(random())); !hit {
		t.Errorf("the most recent tile was evicted")
	}
	// A cache without room keeps nothing.
	none := NewCache(0)
	if _, _, err := none.Get(ctx, first, constRender([]byte("x"))); err != nil {
		t.Fatal(err)
	}
	if _, hit, _ := none.Get(ctx, first, constRender([]byte("x"))); hit || none.Stats().Entries != 0 {
		t.Errorf("a zero-byte cache kept a tile")
	}
}

// keyAt is the tile at zoom z holding the point.
func keyAt(layer string, p orb.Point, z int) Key {
	t := maptile.At(p, maptile.Zoom(z))
	return Key{layer, z, int(t.X), int(t.Y)}
}

func fill(t *testing.T, c *Cache, keys ...Key) {
	t.Helper()
	for _, k := range keys {
		if _, _, err := c.Get(context.Background(), k, constRender([]byte(k.String()))); err != nil {
			t.Fatal(err)
		}
	}
}

func cachedKeys(c *Cache) map[Key]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[Key]bool{}
	for k := range c.items {
		out[k] = true
	}
	return out
}

func TestInvalidateExactly(t *testing.T) {
	t.Parallel()
	// A 3×3 block of z14 tiles around the centre tile, their parents and
	// children, in two tilesets.
	centre := maptile.At(orb.Point{114.2, 22.55}, 14)
	var keys []Key
	for _, layer := range []string{"units", "objects"} {
		for dy := -1; dy <= 1; dy++ {
			for dx := -1; dx <= 1; dx++ {
				keys = append(keys, Key{layer, 14, int(centre.X) + dx, int(centre.Y) + dy})
			}
		}
		keys = append(keys, Key{layer, 13, int(centre.X) / 2, int(centre.Y) / 2}, Key{layer, 6, int(centre.X) >> 8, int(centre.Y) >> 8})
	}
	b := centre.Bound()
	mid := b.Center()
	w, h := b.Max[0]-b.Min[0], b.Max[1]-b.Min[1]
	centreKey := Key{"units", 14, int(centre.X), int(centre.Y)}
	east := Key{"units", 14, int(centre.X) + 1, int(centre.Y)}

	cases := []struct {
		name    string
		change  Change
		dropped []Key // in tileset units
	}{
		{"a point in the middle of a tile drops it and its ancestors", Change{Geom: mid, MaxZoom: MaxZoom},
			[]Key{centreKey, {"units", 13, centreKey.X / 2, centreKey.Y / 2}, {"units", 6, centreKey.X >> 8, centreKey.Y >> 8}}},
		{"only in the zooms of the change", Change{Geom: mid, MinZoom: 13, MaxZoom: 14},
			[]Key{centreKey, {"units", 13, centreKey.X / 2, centreKey.Y / 2}}},
		{"a point in the east tile's buffer drops both", Change{Geom: orb.Point{b.Max[0] + w*10/4096, mid[1]}, MinZoom: 14, MaxZoom: 14},
			[]Key{centreKey, east}},
		{"a point just past the buffer drops one", Change{Geom: orb.Point{b.Max[0] + w*80/4096, mid[1]}, MinZoom: 14, MaxZoom: 14},
			[]Key{east}},
		{"a line crossing the tile with no vertex in it", Change{Geom: orb.LineString{{b.Min[0] - w/2, mid[1] - h/4}, {b.Max[0] + w/2, mid[1] + h/4}}, MinZoom: 14, MaxZoom: 14},
			// from the west neighbour's buffer, through the centre, to the east one
			[]Key{centreKey, east, {"units", 14, centreKey.X - 1, centreKey.Y}}},
		{"a polygon whose hole holds the tile drops only its ring's tiles", Change{Geom: orb.Polygon{
			ring(b.Min[0]-w*0.9, b.Min[1]-h*0.9, b.Max[0]+w*0.9, b.Max[1]+h*0.9),
			ring(b.Min[0]-w*0.5, b.Min[1]-h*0.5, b.Max[0]+w*0.5, b.Max[1]+h*0.5)}, MinZoom: 14, MaxZoom: 14},
			neighbours(centreKey)},
		{"an L whose bounding box covers the tile but whose shape does not", Change{Geom: orb.Polygon{{
			{b.Min[0] - w*0.9, b.Max[1] + h*0.5}, {b.Min[0] - w*0.9, b.Min[1] - h*0.9}, {b.Max[0] + w*0.9, b.Min[1] - h*0.9},
			{b.Max[0] + w*0.9, b.Min[1] - h*0.5}, {b.Min[0] - w*0.5, b.Min[1] - h*0.5}, {b.Min[0] - w*0.5, b.Max[1] + h*0.5},
			{b.Min[0] - w*0.9, b.Max[1] + h*0.5}}}, MinZoom: 14, MaxZoom: 14},
			[]Key{{"units", 14, centreKey.X - 1, centreKey.Y - 1}, {"units", 14, centreKey.X - 1, centreKey.Y}, {"units", 14, centreKey.X - 1, centreKey.Y + 1},
				{"units", 14, centreKey.X, centreKey.Y + 1}, {"units", 14, centreKey.X + 1, centreKey.Y + 1}}},
		{"a polygon holding the whole block drops it", Change{Geom: orb.Polygon{ring(b.Min[0]-w*3, b.Min[1]-h*3, b.Max[0]+w*3, b.Max[1]+h*3)}, MinZoom: 14, MaxZoom: 14},
			append(neighbours(centreKey), centreKey)},
		{"no geometry drops the zooms", Change{MinZoom: 13, MaxZoom: 14},
			append(neighbours(centreKey), centreKey, Key{"units", 13, centreKey.X / 2, centreKey.Y / 2})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCache(1 << 20)
			fill(t, c, keys...)
			n := c.Invalidate("units", []Change{tc.change})
			left := cachedKeys(c)
			want := map[Key]bool{}
			for _, k := range tc.dropped {
				want[k] = true
			}
			for _, k := range keys {
				if want[k] == left[k] {
					t.Errorf("%v: dropped %v, want %v", k, !left[k], want[k])
				}
			}
			if n != len(tc.dropped) {
				t.Errorf("Invalidate says %d dropped, want %d", n, len(tc.dropped))
			}
		})
	}
}

func ring(minX, minY, maxX, maxY float64) orb.Ring {
	return orb.Ring{{minX, minY}, {maxX, minY}, {maxX, maxY}, {minX, maxY}, {minX, minY}}
}

func neighbours(k Key) []Key {
	var out []Key
	for dy := -1; dy <= 1; dy++ {
		for dx := -1; dx <= 1; dx++ {
			if dx != 0 || dy != 0 {
				out = append(out, Key{k.Layer, k.Z, k.X + dx, k.Y + dy})
			}
		}
	}
	return out
}

// A render running when a change under its tile arrives is served but not
// kept; one elsewhere is kept.
func TestInvalidateDuringRender(t *testing.T) {
	t.Parallel()
	c := NewCache(1 << 20)
	p := orb.Point{114.2, 22.55}
	under, elsewhere := keyAt("units", p, 14), keyAt("units", orb.Point{114.3, 22.6}, 14)
	for _, tc := range []struct {
		k    Key
		kept bool
	}{{under, false}, {elsewhere, true}} {
		started, release := make(chan struct{}), make(chan struct{})
		done := make(chan *Entry)
		go func() {
			e, _, _ := c.Get(context.Background(), tc.k, func(context.Context) ([]byte, error) {
				close(started)
				<-release
				return []byte("old"), nil
			})
			done <- e
		}()
		<-started
		c.Invalidate("units", []Change{{Geom: p, MaxZoom: MaxZoom}})
		close(release)
		if e := <-done; e == nil {
			t.Fatalf("%v: the caller got nothing", tc.k)
		}
		if _, hit, _ := c.Get(context.Background(), tc.k, constRender([]byte("new"))); hit != tc.kept {
			t.Errorf("%v: kept %v, want %v", tc.k, hit, tc.kept)
		}
	}
}

// tileRange never leaves out a tile that meets the bound.
func TestTileRangeCoversEveryTouchedTile(t *testing.T) {
	t.Parallel()
	rng := mrand.New(mrand.NewPCG(1, 2))
	for i := 0; i < 300; i++ {
		lon, lat := 113.7+rng.Float64()*0.9, 22.4+rng.Float64()*0.4
		dw, dh := rng.Float64()*0.02, rng.Float64()*0.02
		bound := orb.Bound{Min: orb.Point{lon, lat}, Max: orb.Point{lon + dw, lat + dh}}
		z := 8 + rng.IntN(9)
		x0, y0, x1, y1 := tileRange(bound, z)
		c := maptile.At(bound.Center(), maptile.Zoom(z))
		for dy := -3; dy <= 3; dy++ {
			for dx := -3; dx <= 3; dx++ {
				k := Key{"units", z, int(c.X) + dx, int(c.Y) + dy}
				if meets(Bound(k), bound) && (k.X < x0 || k.X > x1 || k.Y < y0 || k.Y > y1) {
					t.Fatalf("bound %v z%d: tile %v meets it but is outside the range %d–%d × %d–%d", bound, z, k, x0, x1, y0, y1)
				}
			}
		}
	}
}

func TestSegmentMeets(t *testing.T) {
	t.Parallel()
	b := orb.Bound{Min: orb.Point{0, 0}, Max: orb.Point{1, 1}}
	for _, tc := range []struct {
		p, q orb.Point
		want bool
	}{
		{orb.Point{0.5, 0.5}, orb.Point{0.6, 0.6}, true},   // inside
		{orb.Point{-1, 0.5}, orb.Point{2, 0.5}, true},      // through
		{orb.Point{-1, -1}, orb.Point{2, 2}, true},         // diagonal through
		{orb.Point{-1, 1.5}, orb.Point{1.5, -1}, true},     // cuts the corner
		{orb.Point{-1, 3.5}, orb.Point{3.5, -1}, false},    // passes the corner
		{orb.Point{-1, 1}, orb.Point{2, 1}, true},          // along the edge
		{orb.Point{1, 1}, orb.Point{2, 2}, true},           // touches a corner
		{orb.Point{2, 0}, orb.Point{2, 1}, false},          // parallel outside
		{orb.Point{0.5, 2}, orb.Point{0.5, 1.0001}, false}, // stops short
	} {
		if got := segmentMeets(b, tc.p, tc.q); got != tc.want {
			t.Errorf("segment %v–%v: %v, want %v", tc.p, tc.q, got, tc.want)
		}
	}
}

func TestChangeZooms(t *testing.T) {
	t.Parallel()
	cat, err := NewCatalogue(DefaultZooms)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		layer, kind string
		min, max    int
	}{
		{"units", "district", 0, 10}, {"units", "grid", 13, MaxZoom}, {"units", "", 0, MaxZoom},
		{"objects", "object", ObjectsMinZoom, MaxZoom}, {"objects", "district", 0, 8}, {"objects", "street", 9, 11},
		{"objects", "community", 12, 13}, {"objects", "grid", ObjectsMinZoom, MaxZoom}, {"objects", "", 0, MaxZoom},
	} {
		lo, hi := cat.ChangeZooms(tc.layer, tc.kind)
		if lo != tc.min || hi != tc.max {
			t.Errorf("ChangeZooms(%s, %q) = %d–%d, want %d–%d", tc.layer, tc.kind, lo, hi, tc.min, tc.max)
		}
	}
	// The counts' zooms are where the renderer draws each level's counts.
	for z := 0; z < ObjectsMinZoom; z++ {
		lo, hi := cat.ChangeZooms("objects", countLevel(z))
		if z < lo || z > hi {
			t.Errorf("z%d draws %s counts, outside %d–%d", z, countLevel(z), lo, hi)
		}
	}
}

func ExampleKey_String() {
	fmt.Println(Key{"units", 14, 13390, 7140})
	// Output: units/14/13390/7140
}
