package tiles

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/mvt"

	"gridmap/grid"
)

// twoNeighbours are two units side by side whose shared edge is a wiggly
// line of many vertices (finer than a pixel at low zoom), and a third
// enclosed in the first as a hole (a closed shared loop, no junction).
func twoNeighbours() []grid.Unit {
	rng := rand.New(rand.NewPCG(1, 2))
	const x0, x1, x2, y0, y1 = 114.00, 114.05, 114.10, 22.50, 22.55
	var edge []orb.Point // top to bottom
	for i := 0; i <= 400; i++ {
		edge = append(edge, orb.Point{x1 + (rng.Float64()-0.5)*0.004, y1 - (y1-y0)*float64(i)/400})
	}
	left := orb.Ring{{x0, y1}}
	left = append(left, edge...)
	left = append(left, orb.Point{x0, y0}, orb.Point{x0, y1})
	right := orb.Ring{{x2, y0}}
	for i := len(edge) - 1; i >= 0; i-- {
		right = append(right, edge[i])
	}
	right = append(right, orb.Point{x2, y1}, orb.Point{x2, y0})
	var hole orb.Ring
	for i := 0; i < 200; i++ {
		a := 2 * math.Pi * float64(i) / 200
		r := 0.01 * (1 + 0.1*math.Sin(7*a))
		hole = append(hole, orb.Point{114.02 + r*math.Cos(a), 22.525 + r*math.Sin(a)})
	}
	hole = append(hole, hole[0])
	inner := orb.Ring(append([]orb.Point(nil), hole...))
	unit := func(code string, p orb.Polygon) grid.Unit {
		return grid.Unit{Layer: grid.BaseLayer, Code: code, Name: code, Level: grid.Grid, ParentCode: code[:12], Geometry: orb.MultiPolygon{p}}
	}
	return []grid.Unit{
		unit("440300000000001", orb.Polygon{left, hole}),
		unit("440300000000002", orb.Polygon{right}),
		unit("440300000000003", orb.Polygon{inner}),
	}
}

func testTileset(t *testing.T) *Tileset {
	t.Helper()
	z := DefaultZooms
	z.Grid = [2]int{0, MaxZoom}
	cat, err := NewCatalogue(z)
	if err != nil {
		t.Fatal(err)
	}
	l, _ := cat.Tileset("units")
	return l
}

// vertexSet is every vertex of the decoded features, by feature id.
func vertexSet(t *testing.T, b []byte) map[uint64]map[orb.Point]bool {
	t.Helper()
	layers, err := mvt.Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	out := map[uint64]map[orb.Point]bool{}
	for _, l := range layers {
		for _, f := range l.Features {
			id := uint64(f.ID.(float64))
			out[id] = map[orb.Point]bool{}
			var rings []orb.Ring
			switch g := f.Geometry.(type) {
			case orb.Polygon:
				rings = g
			case orb.MultiPolygon:
				for _, p := range g {
					rings = append(rings, p...)
				}
			}
			for _, r := range rings {
				for _, p := range r {
					out[id][p] = true
				}
			}
		}
	}
	return out
}

// Neighbours keep exactly the same vertices along their shared edge at
// every zoom (no slivers), and a hole and the unit filling it the same
// loop, while the edge is simplified: fewer vertices at low zoom.
func TestMemUnitsSharedEdgesStayShared(t *testing.T) {
	l := testTileset(t)
	m := NewMemUnits(twoNeighbours())
	for _, z := range []int{8, 10, 12, 14, 16} {
		n := float64(uint64(1) << uint(z))
		// the tile on the shared edge, and the tile on the hole
		for _, at := range []orb.Point{{114.05, 22.525}, {114.02, 22.535}} {
			p := mercator(at)
			x, y := int(p[0]*n), int(p[1]*n)
			vs := vertexSet(t, m.RenderUnits(l, z, x, y))
			a, b, c := vs[440300000000001], vs[440300000000002], vs[440300000000003]
			// beyond the wiggle of the edge, in this tile's pixels
			east := (mercator(orb.Point{114.0521, 0})[0]*n - float64(x)) * Extent
			shared, enclosed := 0, 0
			for q := range b {
				if q[0] > east || q[1] <= -Buffer || q[1] >= Extent+Buffer || q[0] <= -Buffer {
					continue // the right unit's own corners and sides, or the buffer's border
				}
				if !a[q] {
					t.Errorf("z%d/%d/%d: vertex %v of the right unit is not on the left unit", z, x, y, q)
				}
				shared++
			}
			for q := range c {
				if q[0] <= -Buffer || q[0] >= Extent+Buffer || q[1] <= -Buffer || q[1] >= Extent+Buffer {
					continue
				}
				if !a[q] {
					t.Errorf("z%d/%d/%d: vertex %v of the enclosed unit is not on the hole", z, x, y, q)
				}
				enclosed++
			}
			if at[0] == 114.05 && z <= 10 && shared >= 400 {
				t.Errorf("z%d: the shared edge keeps %d of its 401 vertices: not simplified", z, shared)
			}
			t.Logf("z%d/%d/%d: %d shared vertices, %d on the enclosed unit", z, x, y, shared, enclosed)
		}
	}
}

// Apply gives what a build over the same units gives, tile for tile, and
// Changed names the units whose drawing moved.
func TestMemUnitsApplyMatchesBuild(t *testing.T) {
	l := testTileset(t)
	us := twoNeighbours()
	old := NewMemUnits(us[:2])
	// the third unit added, and the first with the hole for it
	cur := old.Apply(us, nil)
	want := NewMemUnits(us)
	for _, z := range []int{9, 12, 15} {
		p := mercator(orb.Point{114.05, 22.525})
		n := float64(uint64(1) << uint(z))
		x, y := int(p[0]*n), int(p[1]*n)
		if got, w := cur.RenderUnits(l, z, x, y), want.RenderUnits(l, z, x, y); string(got) != string(w) {
			t.Errorf("z%d: applied and built tiles differ (%d and %d bytes)", z, len(got), len(w))
		}
	}
	changed := map[string]int{}
	for _, c := range Changed(old, cur) {
		changed[fmt.Sprint(c.Geom.Bound())]++
	}
	if len(Changed(old, cur)) == 0 {
		t.Fatal("no change found")
	}
	if len(Changed(cur, want)) != 0 {
		t.Errorf("an applied and a built snapshot of the same units differ: %v", Changed(cur, want))
	}
	if cur.Len() != 3 || old.Len() != 2 {
		t.Errorf("units %d and %d", old.Len(), cur.Len())
	}
	gone := cur.Apply(nil, []grid.UnitKey{{Layer: grid.BaseLayer, Code: "440300000000003"}})
	if gone.Len() != 2 || len(Changed(cur, gone)) == 0 {
		t.Errorf("removal: %d units, %d changes", gone.Len(), len(Changed(cur, gone)))
	}
}

// Readers of a snapshot go on undisturbed while Apply derives others from
// it (run with -race): nothing Apply writes is shared with its input.
func TestMemUnitsApplyWhileReading(t *testing.T) {
	// A tiny overlay: the level is laid out again and reindexed often.
	defer func(f func(int) int) { overlayMax = f }(overlayMax)
	overlayMax = func(int) int { return 3 }
	l := testTileset(t)
	us := twoNeighbours()
	base := NewMemUnits(us)
	p := mercator(orb.Point{114.05, 22.525})
	want := map[int]string{}
	for z := 8; z <= 16; z += 2 {
		n := float64(uint64(1) << uint(z))
		want[z] = string(base.RenderUnits(l, z, int(p[0]*n), int(p[1]*n)))
	}
	done := make(chan struct{})
	errs := make(chan string, 1)
	go func() {
		defer close(errs)
		for {
			select {
			case <-done:
				return
			default:
			}
			for z, w := range want {
				n := float64(uint64(1) << uint(z))
				if got := string(base.RenderUnits(l, z, int(p[0]*n), int(p[1]*n))); got != w {
					errs <- fmt.Sprintf("z%d: the snapshot's tile changed under Apply", z)
					return
				}
			}
		}
	}()
	cur := base
	for i := range 200 {
		u := us[i%3]
		u.Geometry = orb.Clone(u.Geometry).(orb.MultiPolygon)
		u.Geometry[0][0][1][0] += 1e-4 * float64(i%7)
		u.Name = fmt.Sprint("step ", i)
		var rm []grid.UnitKey
		if i%5 == 4 {
			rm = append(rm, grid.UnitKey{Layer: grid.BaseLayer, Code: us[(i+1)%3].Code})
		}
		cur = cur.Apply([]grid.Unit{u}, rm)
		if i%5 == 0 {
			cur = base.Apply([]grid.Unit{u}, nil)
		}
	}
	close(done)
	if e, ok := <-errs; ok {
		t.Fatal(e)
	}
}
