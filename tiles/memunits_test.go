package tiles_test

import (
	"context"
	"fmt"
	"math"
	"sort"
	"testing"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/clip"
	"github.com/paulmach/orb/encoding/mvt"
	"github.com/paulmach/orb/maptile"
	"github.com/paulmach/orb/planar"

	"gridmap/data"
	"gridmap/data/pgtest"
	"gridmap/grid"
	"gridmap/tiles"
)

func currentUnits(t testing.TB, store *data.Store) []grid.Unit {
	t.Helper()
	_, stored, err := store.CurrentUnitVersions(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]grid.Unit, len(stored))
	for i, u := range stored {
		out[i] = u.Unit
	}
	return out
}

// unitTiles lists every tile at zoom z that a unit of a level visible
// there meets (with the render buffer), sorted.
func unitTiles(l *tiles.Tileset, units []grid.Unit, z int) []tiles.Key {
	visible := map[string]bool{}
	for _, s := range l.Visible(z) {
		visible[s.ID] = true
	}
	seen := map[tiles.Key]bool{}
	for _, u := range units {
		if u.Layer != grid.BaseLayer || !visible[string(u.Level)] {
			continue
		}
		b := u.Geometry.Bound()
		lo := maptile.Fraction(orb.Point{b.Min[0], b.Max[1]}, maptile.Zoom(z))
		hi := maptile.Fraction(orb.Point{b.Max[0], b.Min[1]}, maptile.Zoom(z))
		const m = float64(tiles.Buffer) / tiles.Extent
		for x := int(math.Floor(lo[0] - m)); x <= int(math.Floor(hi[0]+m)); x++ {
			for y := int(math.Floor(lo[1] - m)); y <= int(math.Floor(hi[1]+m)); y++ {
				seen[tiles.Key{Layer: "units", Z: z, X: x, Y: y}] = true
			}
		}
	}
	var out []tiles.Key
	for k := range seen {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.X != b.X {
			return a.X < b.X
		}
		return a.Y < b.Y
	})
	return out
}

// visibleArea is the area of g within the tile proper: the buffer is
// drawn by the neighbouring tile, and where the two renderers cut a long
// edge at the buffer's border one pixel apart, the difference there is
// the whole border's length.
func visibleArea(g orb.Geometry) float64 {
	c := clip.Geometry(orb.Bound{Max: orb.Point{tiles.Extent, tiles.Extent}}, orb.Clone(g))
	if c == nil {
		return 0
	}
	return planar.Area(c)
}

// visiblePerimeter is the length of g's rings within the tile.
func visiblePerimeter(g orb.Geometry) float64 {
	c := clip.Geometry(orb.Bound{Max: orb.Point{tiles.Extent, tiles.Extent}}, orb.Clone(g))
	if c == nil {
		return 0
	}
	var s float64
	ring := func(r orb.Ring) {
		for i := 1; i < len(r); i++ {
			s += math.Hypot(r[i][0]-r[i-1][0], r[i][1]-r[i-1][1])
		}
	}
	switch c := c.(type) {
	case orb.Polygon:
		for _, r := range c {
			ring(r)
		}
	case orb.MultiPolygon:
		for _, p := range c {
			for _, r := range p {
				ring(r)
			}
		}
	}
	return s
}

type drawn struct {
	code      string
	id        any
	props     string
	area      float64 // px² within the tile
	perimeter float64 // px within the tile
}

func features(t *testing.T, b []byte) map[string][]drawn {
	t.Helper()
	layers, err := mvt.Unmarshal(b)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	out := map[string][]drawn{}
	for _, l := range layers {
		if l.Extent != tiles.Extent || l.Version != 2 {
			t.Fatalf("layer %s: extent %d version %d", l.Name, l.Extent, l.Version)
		}
		var fs []drawn
		for _, f := range l.Features {
			fs = append(fs, drawn{code: fmt.Sprint(f.Properties["code"]), id: f.ID,
				props: fmt.Sprintf("%v/%v/%v/%v", f.Properties["code"], f.Properties["name"], f.Properties["level"], f.Properties["parent_code"]),
				area:  visibleArea(f.Geometry), perimeter: visiblePerimeter(f.Geometry)})
		}
		out[l.Name] = fs
	}
	return out
}

// Unit tiles drawn from memory match PostGIS's over every tile of the
// full demo city at z6, z10, z12 and z14 that a unit meets (and the z6
// tile with the grid layer at every zoom, 19,700 grids): the same layers
// in the same order, the same features (codes, ids, attributes) in the
// same order, and each feature's visible area within what one pixel of
// simplification allows. The two renderers simplify by different rules
// (PostGIS per polygon in degrees, memory per shared arc in Web Mercator),
// each to one pixel, so an edge may lie up to a pixel apart: the area
// difference is bounded by 1 px² plus the visible perimeter × 1 px.
//
// A feature may be drawn by one side only when it is tiny (≤ 8 px²
// visible): at z6 with every grid, PostGIS's per-polygon simplification
// collapses a grid of a few pixels to a thin triangle that snapping to the
// tile grid empties (ST_AsMVTGeom then drops it), while the arc-wise
// simplification keeps its corners (junctions) and draws its 1–5 px²
// (2,492 of 19,700 grids); and a sliver in the buffer may snap to nothing
// on one side. The test logs how many features differ and by how much.
func TestMemoryUnitTilesMatchPostGIS(t *testing.T) {
	t.Parallel()
	store := pgtest.NewFullDemo(t)
	units := currentUnits(t, store)
	mem := tiles.NewMemUnits(units)
	ctx := context.Background()
	// The default zooms, and the grid layer at every zoom (issue 17's
	// comparison with pg_tileserv: 19,700 grids in the z6 tile).
	every := tiles.DefaultZooms
	every.Grid = [2]int{0, tiles.MaxZoom}
	for _, c := range []struct {
		name  string
		zooms tiles.Zooms
		at    []int
	}{{"default zooms", tiles.DefaultZooms, []int{6, 10, 12, 14}}, {"grids at every zoom", every, []int{6}}} {
		cat, err := tiles.NewCatalogue(c.zooms)
		if err != nil {
			t.Fatal(err)
		}
		pg := &tiles.Renderer{Pool: store.Pool, Catalogue: cat}
		mr := &tiles.Renderer{Pool: store.Pool, Catalogue: cat, Units: func() *tiles.MemUnits { return mem }}
		l, _ := cat.Tileset("units")
		for _, z := range c.at {
			compareUnitTiles(t, fmt.Sprintf("%s, z%d", c.name, z), unitTiles(l, units, z),
				func(k tiles.Key) ([]byte, error) { return pg.Render(ctx, "units", k.Z, k.X, k.Y) },
				func(k tiles.Key) ([]byte, error) { return mr.Render(ctx, "units", k.Z, k.X, k.Y) })
		}
	}
}

// compareUnitTiles draws keys both ways (pg: PostGIS, mem: from memory)
// and compares them: the same layers in the same
// order, the same features (codes, ids, attributes) in the same order,
// visible areas within 1 px² plus the visible perimeter × 1 px, and a
// feature drawn by one side only no larger than oneSidedMax px². It logs
// the differences.
func compareUnitTiles(t *testing.T, label string, keys []tiles.Key, pg, mem func(tiles.Key) ([]byte, error)) {
	t.Helper()
	const oneSidedMax = 8
	var worst, worstRel, sum float64
	var n, over, oneSided, drawnTiles int
	var pgOnly, memOnly float64 // the largest visible area of a feature drawn by one side only
	for _, k := range keys {
		a, err := pg(k)
		if err != nil {
			t.Fatal(err)
		}
		b, err := mem(k)
		if err != nil {
			t.Fatal(err)
		}
		if len(a) > 0 {
			drawnTiles++
		}
		fa, fb := features(t, a), features(t, b)
		if la, lb := layerOrder(t, a), layerOrder(t, b); fmt.Sprint(la) != fmt.Sprint(lb) {
			t.Errorf("%s %v: layers %v (PostGIS) vs %v (memory)", label, k, la, lb)
			continue
		}
		for name, pa := range fa {
			pb := fb[name]
			i, j := 0, 0
			for i < len(pa) || j < len(pb) {
				switch {
				case j == len(pb) || (i < len(pa) && pa[i].code < pb[j].code):
					oneSided++
					pgOnly = math.Max(pgOnly, pa[i].area)
					if pa[i].area > oneSidedMax {
						t.Errorf("%s %v %s: %s drawn by PostGIS only, %.1f px² visible", label, k, name, pa[i].code, pa[i].area)
					}
					i++
					continue
				case i == len(pa) || pb[j].code < pa[i].code:
					oneSided++
					memOnly = math.Max(memOnly, pb[j].area)
					if pb[j].area > oneSidedMax {
						t.Errorf("%s %v %s: %s drawn from memory only, %.1f px² visible", label, k, name, pb[j].code, pb[j].area)
					}
					j++
					continue
				}
				x, y := pa[i], pb[j]
				i, j = i+1, j+1
				if x.props != y.props || fmt.Sprint(x.id) != fmt.Sprint(y.id) {
					t.Errorf("%s %v %s: %s id %v vs %s id %v", label, k, name, x.props, x.id, y.props, y.id)
					continue
				}
				d := math.Abs(x.area - y.area)
				n++
				sum += d
				worst = math.Max(worst, d)
				if d > 1 {
					over++
				}
				allowed := 1 + math.Max(x.perimeter, y.perimeter)
				worstRel = math.Max(worstRel, d/allowed)
				if d > allowed {
					t.Errorf("%s %v %s %s: visible area %.1f px² (PostGIS) vs %.1f px² (memory), perimeter %.0f px",
						label, k, name, x.code, x.area, y.area, x.perimeter)
				}
			}
		}
	}
	if drawnTiles == 0 {
		t.Errorf("%s: none of %d tiles drew anything", label, len(keys))
	}
	t.Logf("%s: %d tiles, %d features; area difference mean %.2f px², max %.1f px² (%.2f of the bound), %d over 1 px²; %d drawn by one side only (largest %.1f px² by PostGIS only, %.1f px² from memory only)",
		label, len(keys), n, sum/float64(max(n, 1)), worst, worstRel, over, oneSided, pgOnly, memOnly)
}

func layerOrder(t *testing.T, b []byte) []string {
	t.Helper()
	layers, err := mvt.Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range layers {
		out = append(out, l.Name)
	}
	return out
}

// BenchmarkMemoryUnitTiles renders random unit tiles of z13–15 holding
// units from memory, and the whole-city z6 tile (docs/benchmarks.md).
func BenchmarkMemoryUnitTiles(b *testing.B) {
	store := pgtest.NewFullDemo(b)
	units := currentUnits(b, store)
	mem := tiles.NewMemUnits(units)
	cat, err := tiles.NewCatalogue(tiles.DefaultZooms)
	if err != nil {
		b.Fatal(err)
	}
	l, _ := cat.Tileset("units")
	var keys []tiles.Key
	for z := 13; z <= 15; z++ {
		keys = append(keys, unitTiles(l, units, z)...)
	}
	b.Run("z13-15", func(b *testing.B) {
		n := 0
		for i := 0; b.Loop(); i++ {
			k := keys[(i*7919)%len(keys)]
			n += len(mem.RenderUnits(l, k.Z, k.X, k.Y))
		}
		b.ReportMetric(float64(n)/float64(b.N), "B/tile")
	})
	b.Run("z6", func(b *testing.B) {
		for b.Loop() {
			mem.RenderUnits(l, 6, 52, 27)
		}
	})
	// The grid layer at every zoom (issue 17's comparison): 19,700 grids
	// in the z6 tile.
	zs := tiles.DefaultZooms
	zs.Grid = [2]int{0, tiles.MaxZoom}
	all, err := tiles.NewCatalogue(zs)
	if err != nil {
		b.Fatal(err)
	}
	lall, _ := all.Tileset("units")
	b.Run("z6-all-grids", func(b *testing.B) {
		n := 0
		for b.Loop() {
			n = len(mem.RenderUnits(lall, 6, 52, 27))
		}
		b.ReportMetric(float64(n), "B/tile")
	})
	b.Run("z6-all-grids-gzip", func(b *testing.B) {
		mvt := mem.RenderUnits(lall, 6, 52, 27)
		for b.Loop() {
			if _, err := tiles.NewEntry(mvt); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("entry-z13-15", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			k := keys[(i*7919)%len(keys)]
			if _, err := tiles.NewEntry(mem.RenderUnits(l, k.Z, k.X, k.Y)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
