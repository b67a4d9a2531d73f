package geo

import (
	"maps"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/paulmach/orb"
)

// ---------------------------------------------------------------------------
// Reference implementation: a straightforward even-odd crossing test over
// every edge, with exact rational arithmetic (math/big.Rat) for the
// on-segment check and for the crossing position. It knows nothing of slabs
// or float filters, so it is an independent oracle for Prepared.Covers.
// ---------------------------------------------------------------------------

func ratOf(f float64) *big.Rat { return new(big.Rat).SetFloat64(f) }

// refOrient is the exact sign of (b-a) x (c-a): +1 when c is left of a→b,
// -1 when right, 0 when the three points are collinear.
func refOrient(a, b, c orb.Point) int {
	bx := new(big.Rat).Sub(ratOf(b[0]), ratOf(a[0]))
	by := new(big.Rat).Sub(ratOf(b[1]), ratOf(a[1]))
	cx := new(big.Rat).Sub(ratOf(c[0]), ratOf(a[0]))
	cy := new(big.Rat).Sub(ratOf(c[1]), ratOf(a[1]))
	l := new(big.Rat).Mul(bx, cy)
	r := new(big.Rat).Mul(by, cx)
	return l.Cmp(r)
}

// refOnSegment reports whether c lies exactly on the closed segment a–b.
func refOnSegment(a, b, c orb.Point) bool {
	if c[0] < math.Min(a[0], b[0]) || c[0] > math.Max(a[0], b[0]) ||
		c[1] < math.Min(a[1], b[1]) || c[1] > math.Max(a[1], b[1]) {
		return false
	}
	return refOrient(a, b, c) == 0
}

// refCrossesRight reports whether the horizontal line through p meets the
// edge a–b strictly right of p. The caller has checked that the edge spans
// p's y by the half-open rule, so a.y != b.y.
func refCrossesRight(a, b, p orb.Point) bool {
	if p[0] < math.Min(a[0], b[0]) {
		return true
	}
	if p[0] > math.Max(a[0], b[0]) {
		return false
	}
	// xi = a.x + (p.y - a.y) * (b.x - a.x) / (b.y - a.y), exactly.
	t := new(big.Rat).Sub(ratOf(p[1]), ratOf(a[1]))
	t.Mul(t, new(big.Rat).Sub(ratOf(b[0]), ratOf(a[0])))
	t.Quo(t, new(big.Rat).Sub(ratOf(b[1]), ratOf(a[1])))
	xi := t.Add(t, ratOf(a[0]))
	return ratOf(p[0]).Cmp(xi) < 0
}

// refCovers is ST_Covers for a valid (multi)polygon: on any ring → true,
// otherwise the even-odd rule over all rings of all parts.
func refCovers(mp orb.MultiPolygon, p orb.Point) bool {
	for _, v := range p {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	inside := false
	for _, poly := range mp {
		for _, ring := range poly {
			for i := 0; i+1 < len(ring); i++ {
				a, b := ring[i], ring[i+1]
				if refOnSegment(a, b, p) {
					return true
				}
				if (a[1] > p[1]) != (b[1] > p[1]) && refCrossesRight(a, b, p) {
					inside = !inside
				}
			}
		}
	}
	return inside
}

// TestReferenceSelfCheck makes sure the oracle itself is right on a few
// cases worked out by hand, so a disagreement points at Covers.
func TestReferenceSelfCheck(t *testing.T) {
	tri := orb.MultiPolygon{{{{0, 0}, {1, 0}, {1, 1}, {0, 0}}}}
	cases := []struct {
		p    orb.Point
		want bool
	}{
		{orb.Point{0.5, 0.5}, true},
		{orb.Point{0.75, 0.25}, true},
		{orb.Point{0.25, 0.75}, false},
		{orb.Point{0.5, math.Nextafter(0.5, 1)}, false},
		{orb.Point{0.5, math.Nextafter(0.5, 0)}, true},
		{orb.Point{1, 1}, true},
		{orb.Point{2, 0}, false},
		{orb.Point{math.NaN(), 0}, false},
	}
	for _, c := range cases {
		if got := refCovers(tri, c.p); got != c.want {
			t.Errorf("refCovers(triangle, %v) = %v, want %v", c.p, got, c.want)
		}
	}
	if refOrient(orb.Point{0, 0}, orb.Point{1, 0}, orb.Point{0, 1}) != 1 ||
		refOrient(orb.Point{0, 0}, orb.Point{1, 0}, orb.Point{0, -1}) != -1 ||
		refOrient(orb.Point{0, 0}, orb.Point{1, 1}, orb.Point{3, 3}) != 0 {
		t.Error("refOrient signs are wrong")
	}
}

// ---------------------------------------------------------------------------
// Hand-made shapes.
// ---------------------------------------------------------------------------

func sq(x0, y0, x1, y1 float64) orb.Ring {
	return orb.Ring{{x0, y0}, {x1, y0}, {x1, y1}, {x0, y1}, {x0, y0}}
}

func reversed(r orb.Ring) orb.Ring {
	out := make(orb.Ring, len(r))
	for i, p := range r {
		out[len(r)-1-i] = p
	}
	return out
}

var (
	// Right triangle whose hypotenuse runs (1,1)→(0,0): the diagonal y = x.
	triangle = orb.MultiPolygon{{{{0, 0}, {1, 0}, {1, 1}, {0, 0}}}}

	// Square 0..10 with a square hole 3..7.
	squareWithHole = orb.MultiPolygon{{sq(0, 0, 10, 10), reversed(sq(3, 3, 7, 7))}}

	// The same, wound the other way round (outer clockwise, hole ccw).
	squareWithHoleCW = orb.MultiPolygon{{reversed(sq(0, 0, 10, 10)), sq(3, 3, 7, 7)}}

	// A U shape: the notch 1..2 × 1..3 is open at the top, so the line y = 3
	// has a gap between two collinear horizontal edges.
	uShape = orb.MultiPolygon{{{{0, 0}, {3, 0}, {3, 3}, {2, 3}, {2, 1}, {1, 1}, {1, 3}, {0, 3}, {0, 0}}}}

	// Diamond with a diamond hole: all edges diagonal.
	diamondWithHole = orb.MultiPolygon{{
		{{0, -4}, {4, 0}, {0, 4}, {-4, 0}, {0, -4}},
		{{0, -2}, {-2, 0}, {0, 2}, {2, 0}, {0, -2}},
	}}

	// Two separate squares.
	twoParts = orb.MultiPolygon{{sq(0, 0, 1, 1)}, {sq(2, 2, 3, 3)}}

	// A square with a hole and an island inside the hole.
	islandInHole = orb.MultiPolygon{{sq(0, 0, 10, 10), sq(3, 3, 7, 7)}, {sq(4, 4, 6, 6)}}

	// A square written with repeated consecutive vertices.
	withRepeats = orb.MultiPolygon{{{{0, 0}, {0, 0}, {2, 0}, {2, 0}, {2, 2}, {0, 2}, {0, 2}, {0, 0}}}}

	// A real-world sized grid cell near Shenzhen.
	cell = orb.MultiPolygon{{sq(113.90, 22.55, 113.91, 22.56)}}

	// Zero-height "polygon": its bound is flat, so one slab holds every edge.
	flat = orb.MultiPolygon{{{{0, 0}, {1, 0}, {2, 0}, {0, 0}}}}
)

func TestPreparedCovers(t *testing.T) {
	up := func(v float64) float64 { return math.Nextafter(v, math.Inf(1)) }
	down := func(v float64) float64 { return math.Nextafter(v, math.Inf(-1)) }
	cases := []struct {
		name string
		mp   orb.MultiPolygon
		p    orb.Point
		want bool
	}{
		// triangle
		{"triangle/interior", triangle, orb.Point{0.75, 0.25}, true},
		{"triangle/exterior inside bound", triangle, orb.Point{0.25, 0.75}, false},
		{"triangle/exterior outside bound", triangle, orb.Point{2, 0.5}, false},
		{"triangle/on diagonal edge midpoint", triangle, orb.Point{0.5, 0.5}, true},
		{"triangle/on diagonal edge 0.1", triangle, orb.Point{0.1, 0.1}, true},
		{"triangle/on diagonal edge 0.3", triangle, orb.Point{0.3, 0.3}, true},
		{"triangle/on diagonal edge near top", triangle, orb.Point{0.9999999, 0.9999999}, true},
		{"triangle/1 ulp above diagonal", triangle, orb.Point{0.5, up(0.5)}, false},
		{"triangle/1 ulp below diagonal", triangle, orb.Point{0.5, down(0.5)}, true},
		{"triangle/1 ulp left of diagonal", triangle, orb.Point{down(0.3), 0.3}, false},
		{"triangle/1 ulp right of diagonal", triangle, orb.Point{up(0.3), 0.3}, true},
		{"triangle/vertex (0,0)", triangle, orb.Point{0, 0}, true},
		{"triangle/vertex (1,0)", triangle, orb.Point{1, 0}, true},
		{"triangle/vertex (1,1)", triangle, orb.Point{1, 1}, true},
		{"triangle/on horizontal edge", triangle, orb.Point{0.3, 0}, true},
		{"triangle/on vertical edge", triangle, orb.Point{1, 0.3}, true},
		{"triangle/diagonal extended past (1,1)", triangle, orb.Point{1.5, 1.5}, false},
		{"triangle/diagonal extended past (0,0)", triangle, orb.Point{-0.5, -0.5}, false},
		{"triangle/just below bottom edge", triangle, orb.Point{0.5, down(0)}, false},
		{"triangle/just right of vertical edge", triangle, orb.Point{up(1), 0.5}, false},

		// square with hole
		{"hole/interior", squareWithHole, orb.Point{1, 1}, true},
		{"hole/interior right of hole", squareWithHole, orb.Point{8, 5}, true},
		{"hole/inside hole", squareWithHole, orb.Point{5, 5}, false},
		{"hole/on hole bottom edge", squareWithHole, orb.Point{5, 3}, true},
		{"hole/on hole top edge", squareWithHole, orb.Point{5, 7}, true},
		{"hole/on hole left edge", squareWithHole, orb.Point{3, 5}, true},
		{"hole/on hole right edge", squareWithHole, orb.Point{7, 5}, true},
		{"hole/hole vertex", squareWithHole, orb.Point{7, 7}, true},
		{"hole/1 ulp inside hole", squareWithHole, orb.Point{5, up(3)}, false},
		{"hole/1 ulp outside hole", squareWithHole, orb.Point{5, down(3)}, true},
		{"hole/on outer right edge", squareWithHole, orb.Point{10, 5}, true},
		{"hole/on outer top edge", squareWithHole, orb.Point{5, 10}, true},
		{"hole/outer corner", squareWithHole, orb.Point{0, 10}, true},
		{"hole/outside", squareWithHole, orb.Point{11, 5}, false},
		{"hole/ray through hole vertices", squareWithHole, orb.Point{1, 3}, true},
		{"hole/ray along hole top edge", squareWithHole, orb.Point{1, 7}, true},
		{"hole-cw/inside hole", squareWithHoleCW, orb.Point{5, 5}, false},
		{"hole-cw/on hole edge", squareWithHoleCW, orb.Point{3, 4}, true},
		{"hole-cw/interior", squareWithHoleCW, orb.Point{9, 9}, true},

		// U shape: horizontal edges and rays through vertices
		{"u/interior below notch", uShape, orb.Point{1.5, 0.5}, true},
		{"u/in notch", uShape, orb.Point{1.5, 2}, false},
		{"u/on notch bottom (horizontal edge)", uShape, orb.Point{1.5, 1}, true},
		{"u/gap between collinear top edges", uShape, orb.Point{1.5, 3}, false},
		{"u/on top edge", uShape, orb.Point{2.5, 3}, true},
		{"u/top-left corner", uShape, orb.Point{0, 3}, true},
		{"u/notch corner", uShape, orb.Point{2, 1}, true},
		{"u/ray through notch vertices left", uShape, orb.Point{0.5, 1}, true},
		{"u/ray through notch vertices right", uShape, orb.Point{2.5, 1}, true},
		{"u/ray along top edges", uShape, orb.Point{0.5, 3}, true},
		{"u/left arm", uShape, orb.Point{0.5, 2}, true},
		{"u/right arm", uShape, orb.Point{2.5, 2}, true},
		{"u/left of shape at notch height", uShape, orb.Point{-0.5, 1}, false},

		// diamond: diagonal edges only
		{"diamond/interior", diamondWithHole, orb.Point{3, 0.5}, true},
		{"diamond/in hole", diamondWithHole, orb.Point{0.5, 0.5}, false},
		{"diamond/on outer edge", diamondWithHole, orb.Point{2, 2}, true},
		{"diamond/on outer edge 2", diamondWithHole, orb.Point{-1.25, -2.75}, true},
		{"diamond/on hole edge", diamondWithHole, orb.Point{1, 1}, true},
		{"diamond/on hole edge 2", diamondWithHole, orb.Point{-0.5, -1.5}, true},
		{"diamond/hole vertex", diamondWithHole, orb.Point{2, 0}, true},
		{"diamond/outer vertex", diamondWithHole, orb.Point{-4, 0}, true},
		{"diamond/corner of bound", diamondWithHole, orb.Point{3.9, 3.9}, false},
		{"diamond/ray through hole and outer vertices", diamondWithHole, orb.Point{-3, 0}, true},

		// multipolygon
		{"two parts/first", twoParts, orb.Point{0.5, 0.5}, true},
		{"two parts/second", twoParts, orb.Point{2.5, 2.5}, true},
		{"two parts/between, inside bound", twoParts, orb.Point{1.5, 1.5}, false},
		{"two parts/beside first", twoParts, orb.Point{1.5, 0.5}, false},
		{"two parts/edge of second", twoParts, orb.Point{2, 2.5}, true},
		{"two parts/vertex of first", twoParts, orb.Point{1, 1}, true},
		{"island/in island", islandInHole, orb.Point{5, 5}, true},
		{"island/in hole around island", islandInHole, orb.Point{3.5, 3.5}, false},
		{"island/on island edge", islandInHole, orb.Point{4, 5}, true},
		{"island/on hole edge", islandInHole, orb.Point{3, 5}, true},
		{"island/outer part", islandInHole, orb.Point{1, 5}, true},

		// repeated vertices, real coordinates, degenerate inputs
		{"repeats/interior", withRepeats, orb.Point{1, 1}, true},
		{"repeats/on repeated vertex", withRepeats, orb.Point{2, 0}, true},
		{"repeats/on edge", withRepeats, orb.Point{0, 1}, true},
		{"repeats/outside", withRepeats, orb.Point{3, 1}, false},
		{"cell/interior", cell, orb.Point{113.905, 22.555}, true},
		{"cell/on south edge", cell, orb.Point{113.905, 22.55}, true},
		{"cell/on west edge", cell, orb.Point{113.90, 22.5512345}, true},
		{"cell/corner", cell, orb.Point{113.91, 22.56}, true},
		{"cell/1 ulp south", cell, orb.Point{113.905, down(22.55)}, false},
		{"cell/east", cell, orb.Point{113.92, 22.555}, false},
		{"flat/on the line", flat, orb.Point{0.5, 0}, true},
		{"flat/vertex", flat, orb.Point{2, 0}, true},
		{"empty multipolygon", orb.MultiPolygon{}, orb.Point{0, 0}, false},
		{"NaN x", squareWithHole, orb.Point{math.NaN(), 1}, false},
		{"NaN y", squareWithHole, orb.Point{1, math.NaN()}, false},
		{"+Inf", squareWithHole, orb.Point{math.Inf(1), 1}, false},
		{"-Inf", squareWithHole, orb.Point{1, math.Inf(-1)}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if ref := refCovers(c.mp, c.p); ref != c.want {
				t.Fatalf("test table disagrees with the reference: refCovers(%v) = %v", c.p, ref)
			}
			if got := Prepare(c.mp).Covers(c.p); got != c.want {
				t.Errorf("Covers(%v) = %v, want %v", c.p, got, c.want)
			}
		})
	}
}

func TestPrepareBound(t *testing.T) {
	for _, mp := range []orb.MultiPolygon{triangle, squareWithHole, twoParts, cell, circle(5000, 114.05, 22.55, 0.08)} {
		if got, want := Prepare(mp).Bound, mp.Bound(); got != want {
			t.Errorf("Prepare(...).Bound = %v, want %v", got, want)
		}
	}
}

// TestPrepareSlabIndex checks the index invariant Covers relies on: every
// edge whose y-range contains y is listed in slab(y).
func TestPrepareSlabIndex(t *testing.T) {
	cases := []struct {
		name      string
		mp        orb.MultiPolygon
		wantSlabs int
	}{
		{"triangle (one slab)", triangle, 1},
		{"square with hole (3 slabs)", squareWithHole, 8/4 + 1},
		{"flat (one slab)", flat, 1},
		{"circle 5000", circle(5000, 114.05, 22.55, 0.08), 5000/4 + 1},
		{"circle 40000 (capped)", circle(40000, 0, 0, 1), 4096},
		{"mixed", mixedPolygon(), -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := Prepare(c.mp)
			if c.wantSlabs >= 0 && p.slabs() != c.wantSlabs {
				t.Errorf("%d slabs, want %d", p.slabs(), c.wantSlabs)
			}
			in := make([]map[int32]bool, p.slabs())
			for s := range in {
				in[s] = map[int32]bool{}
				for _, i := range p.slabList(s) {
					in[s][i] = true
				}
			}
			rng := rand.New(rand.NewPCG(7, 7))
			b := p.Bound
			for k := 0; k < 2000; k++ {
				y := b.Min[1] + rng.Float64()*(b.Max[1]-b.Min[1])
				if k%2 == 0 { // exactly at an edge end
					e := p.edges[rng.IntN(len(p.edges))]
					y = e.y1
				}
				s := p.slab(y)
				for i, e := range p.edges {
					if math.Min(e.y1, e.y2) <= y && y <= math.Max(e.y1, e.y2) && !in[s][int32(i)] {
						t.Fatalf("edge %d %v spans y=%v but is not in slab %d", i, e, y, s)
					}
				}
			}
		})
	}
}

// ---------------------------------------------------------------------------
// Large rings against the reference.
// ---------------------------------------------------------------------------

// circle is a closed ring of n distinct vertices around (cx, cy).
func circle(n int, cx, cy, r float64) orb.MultiPolygon {
	return orb.MultiPolygon{{circleRing(n, cx, cy, r)}}
}

func circleRing(n int, cx, cy, r float64) orb.Ring {
	ring := make(orb.Ring, n+1)
	for i := 0; i < n; i++ {
		a := 2 * math.Pi * float64(i) / float64(n)
		ring[i] = orb.Point{cx + r*math.Cos(a), cy + r*math.Sin(a)}
	}
	ring[n] = ring[0]
	return ring
}

// mixedPolygon is a 5000-vertex circle in which some edges are snapped
// horizontal or vertical, with a square hole holding an island, a diamond
// hole, a 300-vertex circular hole, and a separate triangle.
func mixedPolygon() orb.MultiPolygon {
	const n = 5000
	outer := circleRing(n, 114.05, 22.55, 0.08)
	for i := 0; i+1 < n; i++ {
		switch i % 8 {
		case 2:
			outer[i+1][1] = outer[i][1] // horizontal edge i → i+1
		case 5:
			outer[i+1][0] = outer[i][0] // vertical edge i → i+1
		}
	}
	outer[n] = outer[0]
	squareHole := reversed(sq(114.02, 22.53, 114.04, 22.56))
	diamondHole := orb.Ring{{114.08, 22.535}, {114.065, 22.55}, {114.08, 22.565}, {114.095, 22.55}, {114.08, 22.535}}
	roundHole := reversed(circleRing(300, 114.05, 22.60, 0.01))
	return orb.MultiPolygon{
		{outer, squareHole, diamondHole, roundHole},
		{sq(114.025, 22.535, 114.035, 22.545)},
		{{{114.2, 22.5}, {114.25, 22.5}, {114.25, 22.55}, {114.2, 22.5}}},
	}
}

// coarseStar is a 24-vertex star around (0.1, -0.2) with a triangular hole.
func coarseStar() orb.MultiPolygon {
	const n = 24
	ring := make(orb.Ring, n+1)
	for i := 0; i < n; i++ {
		r := 1.0
		if i%2 == 1 {
			r = 0.4
		}
		a := 2*math.Pi*float64(i)/float64(n) + 0.1
		ring[i] = orb.Point{0.1 + r*math.Cos(a), -0.2 + r*math.Sin(a)}
	}
	ring[n] = ring[0]
	hole := orb.Ring{{0.0, -0.3}, {0.3, -0.25}, {0.05, 0.1}, {0.0, -0.3}}
	return orb.MultiPolygon{{ring, hole}}
}

type segment struct{ a, b orb.Point }

// pointSets draws about 20,000 test points in categories that probe the
// boundary rule: uniform points, vertices, rays through vertices, points
// a few ulps off vertices, midpoints of axis-aligned edges (exactly on the
// boundary) and their neighbours, and points interpolated on diagonal edges
// (on or within an ulp of the boundary, where only exact arithmetic knows).
func pointSets(mp orb.MultiPolygon, seed uint64) map[string][]orb.Point {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var verts []orb.Point
	var axis, diag []segment
	for _, poly := range mp {
		for _, ring := range poly {
			for i := 0; i+1 < len(ring); i++ {
				a, b := ring[i], ring[i+1]
				verts = append(verts, a)
				switch {
				case a == b:
				case a[0] == b[0] || a[1] == b[1]:
					axis = append(axis, segment{a, b})
				default:
					diag = append(diag, segment{a, b})
				}
			}
		}
	}
	b := mp.Bound()
	w, h := b.Max[0]-b.Min[0], b.Max[1]-b.Min[1]
	randX := func() float64 { return b.Min[0] - 0.05*w + rng.Float64()*1.1*w }
	randY := func() float64 { return b.Min[1] - 0.05*h + rng.Float64()*1.1*h }
	nudge := func(v float64) float64 {
		k := rng.IntN(3) + 1
		dir := math.Inf(1)
		if rng.IntN(2) == 0 {
			dir = math.Inf(-1)
		}
		for ; k > 0; k-- {
			v = math.Nextafter(v, dir)
		}
		return v
	}
	vert := func() orb.Point { return verts[rng.IntN(len(verts))] }
	const per = 2500
	sets := map[string][]orb.Point{}
	add := func(name string, gen func() orb.Point) {
		for i := 0; i < per; i++ {
			sets[name] = append(sets[name], gen())
		}
	}
	add("uniform", func() orb.Point { return orb.Point{randX(), randY()} })
	add("vertices", vert)
	add("rays_through_vertices", func() orb.Point { return orb.Point{randX(), vert()[1]} })
	add("columns_through_vertices", func() orb.Point { return orb.Point{vert()[0], randY()} })
	add("near_vertices", func() orb.Point {
		v := vert()
		switch rng.IntN(3) {
		case 0:
			return orb.Point{nudge(v[0]), v[1]}
		case 1:
			return orb.Point{v[0], nudge(v[1])}
		}
		return orb.Point{nudge(v[0]), nudge(v[1])}
	})
	if len(axis) > 0 {
		add("axis_edge_midpoints", func() orb.Point {
			s := axis[rng.IntN(len(axis))]
			return orb.Point{(s.a[0] + s.b[0]) / 2, (s.a[1] + s.b[1]) / 2}
		})
		add("near_axis_edge_midpoints", func() orb.Point {
			s := axis[rng.IntN(len(axis))]
			p := orb.Point{(s.a[0] + s.b[0]) / 2, (s.a[1] + s.b[1]) / 2}
			if s.a[0] == s.b[0] {
				p[0] = nudge(p[0])
			} else {
				p[1] = nudge(p[1])
			}
			return p
		})
	}
	if len(diag) > 0 {
		add("on_diagonal_edges", func() orb.Point {
			s := diag[rng.IntN(len(diag))]
			t := rng.Float64()
			return orb.Point{s.a[0] + t*(s.b[0]-s.a[0]), s.a[1] + t*(s.b[1]-s.a[1])}
		})
	}
	return sets
}

func TestPreparedCoversMatchesReference(t *testing.T) {
	shapes := []struct {
		name     string
		mp       orb.MultiPolygon
		minSlabs int
	}{
		{"circle5000", circle(5000, 114.05, 22.55, 0.08), 1000},
		{"mixed5000", mixedPolygon(), 1000},
		{"unit_circle5000", circle(5000, 0, 0, 1), 1000},
		// Few long edges near the origin: edge lengths comparable to the
		// coordinates, where a float determinant is least reliable.
		{"coarse_star24", coarseStar(), 1},
	}
	for si, s := range shapes {
		p := Prepare(s.mp)
		if p.slabs() < s.minSlabs {
			t.Fatalf("%s: only %d slabs; the test means to exercise a large index", s.name, p.slabs())
		}
		sets := pointSets(s.mp, uint64(si+1))
		for _, cat := range slices.Sorted(maps.Keys(sets)) {
			pts := sets[cat]
			t.Run(s.name+"/"+cat, func(t *testing.T) {
				bad, covered := 0, 0
				for _, pt := range pts {
					want := refCovers(s.mp, pt)
					if want {
						covered++
					}
					if got := p.Covers(pt); got != want {
						bad++
						if bad <= 5 {
							t.Errorf("Covers(orb.Point{%v, %v}) = %v, reference says %v", pt[0], pt[1], got, want)
						}
					}
				}
				if bad > 0 {
					t.Errorf("%d of %d points disagree with the exact reference", bad, len(pts))
				}
				t.Logf("%d points, %d covered", len(pts), covered)
			})
		}
	}
}

// ---------------------------------------------------------------------------
// Exactness of the orientation predicate.
// ---------------------------------------------------------------------------

// TestOrientMatchesExactArithmetic checks orient on nearly collinear
// triples, the only inputs where its float filter defers to the fallback
// that the comment calls exact. Points are interpolated on random segments,
// so the true determinant is zero or a few ulps away from it.
func TestOrientMatchesExactArithmetic(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	bad := 0
	const n = 200000
	for i := 0; i < n; i++ {
		a := orb.Point{rng.Float64()*2 - 1, rng.Float64()*2 - 1}
		b := orb.Point{rng.Float64()*2 - 1, rng.Float64()*2 - 1}
		s := rng.Float64()
		c := orb.Point{a[0] + s*(b[0]-a[0]), a[1] + s*(b[1]-a[1])}
		got, want := orient(a[0], a[1], b[0], b[1], c[0], c[1]), refOrient(a, b, c)
		if got != want {
			bad++
			if bad <= 5 {
				t.Errorf("orient(%v, %v, %v, %v, %v, %v) = %d, exact sign is %d", a[0], a[1], b[0], b[1], c[0], c[1], got, want)
			}
		}
	}
	if bad > 0 {
		t.Errorf("orient disagrees with exact arithmetic on %d of %d nearly collinear triples", bad, n)
	}
}

// TestCoversNearDiagonalEdgeIsExact is one concrete case of the above
// turned into a polygon: c lies strictly right of the edge a→b (outside the
// triangle a, b, d), by less than the rounding error of a float64
// determinant.
func TestCoversNearDiagonalEdgeIsExact(t *testing.T) {
	a := orb.Point{0.03042525700413079, 0.6272799219801937}
	b := orb.Point{-0.5714722548352502, -0.238685621400628}
	c := orb.Point{-0.16101316674547084, 0.35185250221951747}
	d := orb.Point{1, -1}
	if refOrient(a, b, d) != 1 || refOrient(a, b, c) != -1 {
		t.Fatal("test setup: d must be left of a→b and c right of it")
	}
	tri := orb.MultiPolygon{{{a, b, d, a}}}
	if refCovers(tri, c) {
		t.Fatal("test setup: the reference must find c outside")
	}
	if Prepare(tri).Covers(c) {
		t.Errorf("Covers(%v) = true for a point strictly outside the triangle %v: orient(b→a, c) = %d, exact sign %d",
			c, tri[0], orient(b[0], b[1], a[0], a[1], c[0], c[1]), refOrient(b, a, c))
	}
}

// ---------------------------------------------------------------------------
// Benchmark.
// ---------------------------------------------------------------------------

func BenchmarkPreparedCovers(b *testing.B) {
	mp := circle(5000, 114.05, 22.55, 0.08)
	p := Prepare(mp)
	rng := rand.New(rand.NewPCG(3, 4))
	bd := mp.Bound()
	pts := make([]orb.Point, 4096)
	for i := range pts {
		pts[i] = orb.Point{
			bd.Min[0] + rng.Float64()*(bd.Max[0]-bd.Min[0]),
			bd.Min[1] + rng.Float64()*(bd.Max[1]-bd.Min[1]),
		}
	}
	n := 0
	for i := 0; b.Loop(); i++ {
		if p.Covers(pts[i&4095]) {
			n++
		}
	}
	benchSink = n
}

var benchSink int

func BenchmarkPrepare(b *testing.B) {
	mp := circle(5000, 114.05, 22.55, 0.08)
	for b.Loop() {
		Prepare(mp)
	}
}
